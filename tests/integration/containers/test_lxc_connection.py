# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opdbus.infra.lxc connection against real busybox containers in the lab's lxcpath.

Oracles independent of the plugin: the container's root filesystem as the host sees it
(``<lxcpath>/<name>/rootfs``) and ``lxc-info``. The plugin is driven directly (its Connection
object, as Ansible's task executor drives it) and once through ``ansible`` for real.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader

REPO = Path(__file__).resolve().parents[3]
ALL_BYTES = bytes(bytearray(range(256)))


def connection(name, lxcpath):
    conn = connection_loader.get("opdbus.infra.lxc", PlayContext(), None)
    assert conn is not None, "connection plugin opdbus.infra.lxc not found"
    conn.set_options(var_options={"inventory_hostname": name, "ansible_lxc_path": lxcpath})
    return conn


def rootfs(lxcpath, name):
    return Path(lxcpath) / name / "rootfs"


@pytest.fixture
def busybox(lxc_backend, lxcpath, ct_names):
    name = ct_names.new("conn")
    lxc_backend.create({"name": name, "template": "busybox"}, timeout=60)
    lxc_backend.start(name, timeout=30)
    conn = connection(name, lxcpath)
    yield name, conn
    conn.close()


def test_exec_stdin_stdout_stderr_and_exit_codes(busybox):
    name, conn = busybox
    rc, out, err = conn.exec_command("cat; echo to-stderr >&2; exit 7", in_data=b"line one\n\x00\xff tail")
    assert (rc, out, err) == (7, b"line one\n\x00\xff tail", b"to-stderr\n")
    assert conn.exec_command("true") == (0, b"", b"")
    assert conn.exec_command("exit 1")[0] == 1
    assert conn.exec_command("exit 255")[0] == 255
    rc, out, err = conn.exec_command("/no/such/command")
    assert rc == 127 and b"not found" in err
    rc, out, err = conn.exec_command("kill -9 $$")
    assert rc == 137
    # it runs inside the container: its own host name, root, a clean environment, / as working directory
    rc, out, err = conn.exec_command("hostname; id -u; pwd; env | sort")
    lines = out.decode().splitlines()
    assert rc == 0 and lines[0] == name and lines[1] == "0" and lines[2] == "/"
    env = dict(line.split("=", 1) for line in lines[3:] if "=" in line)
    assert env["HOME"] == "/root" and "/usr/bin" in env["PATH"]
    assert not [key for key in env if key.startswith("ANSIBLE") or key.startswith("OPDBUS") or key.startswith("PYTEST")]


def test_large_stdin_and_output(busybox):
    conn = busybox[1]
    blob = os.urandom(3 * 1024 * 1024)
    rc, out, err = conn.exec_command("cat", in_data=blob)
    assert rc == 0 and out == blob and err == b""


def test_put_and_fetch_every_byte(busybox, lxcpath, tmp_path):
    name, conn = busybox
    payload = ALL_BYTES * 64 + os.urandom(200000) + ALL_BYTES[::-1]
    src = tmp_path / "payload.bin"
    src.write_bytes(payload)
    conn.put_file(str(src), "/tmp/payload with space.bin")
    assert (rootfs(lxcpath, name) / "tmp" / "payload with space.bin").read_bytes() == payload
    back = tmp_path / "back.bin"
    conn.fetch_file("/tmp/payload with space.bin", str(back))
    assert back.read_bytes() == payload
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    conn.put_file(str(empty), "/tmp/empty")
    conn.fetch_file("/tmp/empty", str(tmp_path / "empty.back"))
    assert (tmp_path / "empty.back").read_bytes() == b""


def test_transfer_errors(busybox, tmp_path):
    conn = busybox[1]
    src = tmp_path / "x"
    src.write_bytes(b"x")
    with pytest.raises(AnsibleError, match="failed to transfer .* to /no/such/dir/x in container"):
        conn.put_file(str(src), "/no/such/dir/x")
    with pytest.raises(AnsibleError, match="failed to fetch /no/such/file from container"):
        conn.fetch_file("/no/such/file", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_stopped_container(busybox, lxc_backend, lxcpath):
    name, conn = busybox
    assert conn.exec_command("true")[0] == 0
    lxc_backend.stop(name, timeout=5, force=True)
    info = subprocess.run(["lxc-info", "-P", lxcpath, "-n", name, "-sH"], capture_output=True, text=True, check=True)
    assert info.stdout.strip() == "STOPPED"
    with pytest.raises(AnsibleConnectionFailure, match="container %s in %s is not running \\(state STOPPED\\)" % (name, lxcpath)):
        conn.exec_command("true")
    fresh = connection(name, lxcpath)
    with pytest.raises(AnsibleConnectionFailure, match="is not running"):
        fresh.exec_command("true")


def test_missing_container_and_lxcpath(lxcpath, lxc_module, tmp_path):
    with pytest.raises(AnsibleConnectionFailure, match="container opdbus-t-absent does not exist in lxcpath %s" % lxcpath):
        connection("opdbus-t-absent", lxcpath).exec_command("true")
    with pytest.raises(AnsibleConnectionFailure, match="lxcpath .* does not exist"):
        connection("opdbus-t-absent", str(tmp_path / "nope")).exec_command("true")


def test_through_ansible(busybox, lxcpath, tmp_path):
    name = busybox[0]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json_results",
               ANSIBLE_CALLBACK_PLUGINS=str(REPO / "tests" / "integration" / "callback_plugins"), OPDBUS_LXC_PATH=lxcpath)
    proc = subprocess.run([sys.executable, "-m", "ansible", "adhoc", "all", "-i", "%s," % name, "-c", "opdbus.infra.lxc",
                           "-m", "ansible.builtin.raw", "-a", "hostname; printf x >&2; exit 3"],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    docs = [line for line in proc.stdout.splitlines() if line.startswith('{"plays"')]
    assert docs, proc.stdout + proc.stderr
    doc = json.loads(docs[-1])
    result = doc["plays"][0]["tasks"][0]["hosts"][name]
    assert result["rc"] == 3 and result["stdout"].strip() == name and result["stderr"] == "x", result
