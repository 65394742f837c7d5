# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""opdbus.infra.privacy_router answers bad input with a clear fail_json before touching anything.

The module runs as Ansible runs it (an args file, this Python). Each case points every endpoint at
paths that do not exist (OVSDB, lxcpath, key_dir): a module that touched anything before validating
would fail differently, or create the key directory - both are checked. Secrets given inline never
appear in the answer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COLLECTIONS = os.path.join(REPO, ".collections")
UUID = "6f1c2a1e-7f0e-4a51-9a37-2f9d8d1f0b11"
PRIVATE = "kFz7Rk0Vd5xvKk5PbqFzZ0K7VvBv0LqWcU6nYQmYV2c="
PUBLIC = "bmXOC+F1FxEMF9dyiK2H5/1SUtzH0JuVo51h2wPfgyo="


def base(tmp_path):
    return {
        "uplink_gateway": "192.0.2.254",
        "key_dir": str(tmp_path / "keys"),
        "ovsdb": "unix:%s" % (tmp_path / "no-such-db.sock"),
        "rundir": str(tmp_path / "no-ovs-rundir"),
        "wireguard": {"clients": [{"name": "laptop", "address": "10.200.0.2"}]},
        "warp": {"endpoint": "198.51.100.2:2408", "public_key": PUBLIC, "private_key": PRIVATE},
        "vps": {"address": "203.0.113.10", "id": UUID},
        "socket_networking": {"uplink_port": "upl0"},
        "containers": {"lxcpath": str(tmp_path / "no-lxc"), "wireguard": {"address": "192.0.2.10/24"},
                       "warp": {"address": "192.0.2.11/24"}, "xray": {"address": "192.0.2.12/24"}},
    }


def run(tmp_path, params):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(params, _ansible_check_mode=False)}))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([COLLECTIONS] + sys.path)
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.opdbus.infra.plugins.modules.privacy_router", str(path)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return json.loads(proc.stdout), proc.stdout + proc.stderr


def _set(params, dotted, value):
    node = params
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


CASES = [
    ("openflow.security_level", 3, "cannot be done by Open vSwitch"),
    ("openflow.padding", True, "OpenFlow has no action that grows a packet"),
    ("openflow.timing", True, "no delay action"),
    ("openflow.morphing", True, "traffic morphing"),
    ("vps.id", "not-a-uuid", "vps.id: is not a UUID"),
    ("warp.private_key", "short", "warp.private_key"),
    ("warp.endpoint", "198.51.100.2", "warp.endpoint must be IPv4:PORT"),
    ("wireguard.clients", [{"name": "laptop", "address": "10.9.9.9"}], "is not a host address of the pool"),
    ("wireguard.clients", [{"name": "a", "address": "10.200.0.2"}, {"name": "a", "address": "10.200.0.3"}], "used twice"),
    ("wireguard.address", "10.200.0.1", "needs a prefix length"),
    ("containers.xray.address", "192.0.2.10/24", "must differ"),
    ("containers.warp.address", "10.1.1.1/24", "not in the network of uplink_gateway"),
    ("socket_networking.xray_port", "priv_wg", "three different ports"),
    ("socket_networking.uplink_port", "a-name-far-too-long-for-linux", "at most 15 bytes"),
    ("xray.security", "tls", "needs server_name"),
    ("xray.ws_path", "no-slash", "xray.ws_path must start with /"),
    ("vps.address", "10.200.0.9", "inside the chain's own networks"),
    ("key_dir", "relative/dir", "key_dir must be an absolute path"),
]


@pytest.mark.parametrize("option,value,expected", CASES, ids=["%s=%s" % (c[0], json.dumps(c[1])[:20]) for c in CASES])
def test_bad_input_fails_clearly_and_touches_nothing(tmp_path, option, value, expected):
    params = copy.deepcopy(base(tmp_path))
    _set(params, option, value)
    if option == "xray.security":
        params["xray"].pop("server_name", None)
    result, output = run(tmp_path, params)
    assert result.get("failed") is True, result
    assert result["msg"].startswith("invalid input: "), result["msg"]
    assert expected in result["msg"], result["msg"]
    assert not result.get("changed")
    assert not (tmp_path / "keys").exists(), "the key directory was made before the input was checked"
    assert PRIVATE not in output and UUID not in output


def test_secrets_are_not_logged_back(tmp_path):
    """A valid input against a missing OVSDB fails at preflight: nothing done, no secret in the answer.

    Run through Ansible itself (ad hoc), since valid input gets as far as the respawn into the system Python."""
    env = dict(os.environ)
    env.update({"ANSIBLE_COLLECTIONS_PATH": COLLECTIONS, "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"),
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "0"})
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local", "-i", "localhost,",
            "-e", "ansible_python_interpreter=%s" % sys.executable,
            "-m", "opdbus.infra.privacy_router", "-a", json.dumps(base(tmp_path))]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False, cwd=str(tmp_path))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "=>" in proc.stdout, output
    assert "FAILED!" in proc.stdout, output
    result = json.loads(proc.stdout.split("=>", 1)[1])
    assert result.get("changes") == [] and result.get("rolled_back") is False, result
    assert "no-such-db.sock" in result["msg"], result["msg"]
    assert "Traceback" not in output
    assert PRIVATE not in output and UUID not in output
    assert not (tmp_path / "keys").exists()
