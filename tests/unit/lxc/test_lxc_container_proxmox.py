# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lxc_container module, run as Ansible runs it, with the proxmox backend against the PVE simulator."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.opdbus.infra.tests.proxmox_sim import ProxmoxSimulator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
TOKEN = "root@pam!ansible"
SECRET = "0b7f6c6e-3d1a-4c52-9a57-5d8f2f0e6a11"


@pytest.fixture
def sim():
    simulator = ProxmoxSimulator(nodes=("pve1",), task_duration=0.05, tokens={TOKEN: SECRET})
    simulator.start()
    yield simulator
    simulator.stop()


def collections_root():
    installed = os.path.join(REPO, ".collections")
    return installed if os.path.isdir(os.path.join(installed, "ansible_collections", "opdbus", "infra")) else None


def run_module(tmp_path, sim, check=False, diff=True, module="lxc_container", **args):
    params = dict(backend="proxmox", api_host=sim.host, api_port=sim.port, node="pve1", api_token_id=TOKEN,
                  api_token_secret=SECRET, validate_certs=False, timeout=10)
    params.update(args)
    params["_ansible_check_mode"] = check
    params["_ansible_diff"] = diff
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
    env = dict(os.environ)
    root = collections_root()
    if root:
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.opdbus.infra.plugins.modules." + module, str(path)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module output is not JSON: %s %s" % (proc.stdout, proc.stderr)) from None


WEB = dict(id=150, name="web", template=TEMPLATE, hostname="web", cores=1, memory_mb=512, rootfs_gb=4,
           network=[{"bridge": "vmbr0", "address": "192.0.2.50/24", "gateway": "192.0.2.1"}])


def web(**changes):
    out = dict(WEB)
    out.update(changes)
    return out


def writes(sim):
    return [(r.method, r.template) for r in sim.requests if r.method != "GET"]


def test_create_start_idempotent_and_check_mode_predicts(tmp_path, sim):
    predicted = run_module(tmp_path, sim, check=True, **WEB)
    assert predicted["changed"] is True and predicted["changes"] == ["create from %s" % TEMPLATE, "start"], predicted
    assert writes(sim) == [] and sim.cluster.containers == {} or 150 not in sim.cluster.containers
    real = run_module(tmp_path, sim, **WEB)
    assert real["changes"] == predicted["changes"], real
    assert real["container"]["state"] == "running" and real["container"]["id"] == 150
    assert real["container"]["config"]["memory_mb"] == 512 and real["diff"]["before"] == {"state": "absent"}
    again = run_module(tmp_path, sim, **WEB)
    assert again["changed"] is False and again["changes"] == [], again
    check_again = run_module(tmp_path, sim, check=True, **WEB)
    assert check_again["changed"] is False


def test_update_sends_only_what_changed_and_reports_pending_restart(tmp_path, sim):
    run_module(tmp_path, sim, **WEB)
    before = len(sim.requests)
    out = run_module(tmp_path, sim, **web(memory_mb=1024))
    assert out["changes"] == ["set memory_mb"] and out["restart_required"] is False
    puts = [r for r in sim.requests[before:] if r.method == "PUT"]
    assert len(puts) == 1 and sorted(k for k in puts[0].params if k != "digest") == ["memory"]
    out = run_module(tmp_path, sim, check=True, **web(memory_mb=1024, hostname="web2"))
    assert out["changes"] == ["set hostname"] and out["restart_required"] is True
    assert out["diff"]["after"]["hostname"] == "web2" and out["diff"]["before"]["hostname"] == "web"
    out = run_module(tmp_path, sim, **web(memory_mb=1024, hostname="web2"))
    assert out["changes"] == ["set hostname"] and out["restart_required"] is True
    assert any("next start" in str(w) for w in out.get("warnings", [])), out
    out = run_module(tmp_path, sim, restart_on_change=True, **web(memory_mb=1024, hostname="web3"))
    assert out["changes"] == ["set hostname", "restart (for hostname)"] and out["restart_required"] is False
    assert out["container"]["state"] == "running"


def test_found_by_name_without_id_and_absent(tmp_path, sim):
    run_module(tmp_path, sim, **WEB)
    by_name = dict(WEB)
    del by_name["id"]
    assert run_module(tmp_path, sim, **by_name)["changed"] is False
    out = run_module(tmp_path, sim, check=True, name="web", state="absent")
    assert out["changes"] == ["stop", "destroy"] and 150 in sim.cluster.containers
    out = run_module(tmp_path, sim, name="web", state="absent")
    assert out["changes"] == ["stop", "destroy"] and out["container"]["state"] == "absent"
    assert run_module(tmp_path, sim, name="web", state="absent")["changed"] is False


def test_stopped_and_restarted(tmp_path, sim):
    run_module(tmp_path, sim, **WEB)
    assert run_module(tmp_path, sim, **web(state="stopped"))["changes"] == ["stop"]
    assert run_module(tmp_path, sim, **web(state="stopped"))["changed"] is False
    assert run_module(tmp_path, sim, **web(state="restarted"))["changes"] == ["start"]
    assert run_module(tmp_path, sim, **web(state="restarted"))["changes"] == ["restart"]


@pytest.mark.parametrize("args, message", [
    (dict(id=151, name="x", network=[{"type": "socket", "bridge": "ovs-br0", "port": "priv_wg"}], template=TEMPLATE),
     "liblxc"),
    (dict(id=152, name="x"), "template is needed to create it"),
    (dict(id=99, name="x", template=TEMPLATE), "id must be between 100 and 999999999"),
    (dict(id=153, name="x", template=TEMPLATE, memory_mb=1), "memory_mb must be at least 16"),
    (dict(id=154, name="x", template=TEMPLATE, network=[{"type": "socket", "bridge": "ovs-br0"}]), "needs port"),
    (dict(id=155, name="x", template=TEMPLATE, network=[{"address": "10.0.0.1"}]), "needs a prefix length"),
    (dict(id=156, name="x", template=TEMPLATE, timeout=0), "timeout must be at least 1 second"),
])
def test_bad_input_fails_cleanly_before_any_write(tmp_path, sim, args, message):
    out = run_module(tmp_path, sim, **args)
    assert out.get("failed") is True and message in out["msg"], out
    assert "Traceback" not in json.dumps(out) and writes(sim) == []


def test_lxc_backend_options_are_refused_clearly(tmp_path, sim):
    out = run_module(tmp_path, sim, backend="lxc", id=150, name="web")
    assert out.get("failed") is True and "id is a Proxmox VE VMID" in out["msg"]
    out = run_module(tmp_path, sim, backend="proxmox", api_host=None, id=150, name="web")
    assert out.get("failed") is True and "api_host" in out["msg"]


def test_info_lists_state_config_and_addresses(tmp_path, sim):
    run_module(tmp_path, sim, **WEB)
    run_module(tmp_path, sim, **web(id=151, name="db", hostname="db", state="stopped",
                                    network=[{"bridge": "vmbr0", "address": "192.0.2.51/24"}]))
    before = len(sim.requests)
    out = run_module(tmp_path, sim, module="lxc_container_info")
    assert out["changed"] is False and [(c["name"], c["id"], c["state"]) for c in out["containers"]] == [
        ("db", 151, "stopped"), ("web", 150, "running")]
    web_ct = out["containers"][1]
    assert web_ct["config"]["memory_mb"] == 512 and web_ct["addresses"]["eth0"] == ["192.0.2.50/24"]
    assert out["containers"][0]["addresses"] == {}
    assert all(r.method == "GET" for r in sim.requests[before:])
    only = run_module(tmp_path, sim, module="lxc_container_info", names=["151"])
    assert [c["name"] for c in only["containers"]] == ["db"]
