# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End-to-end and leak tests of the privacy chain on the lab (fixture privacy_lab, privacy_support.py).

The client fetches a page from "the internet" through the chain and the server sees the VPS's
address. Then each hop in turn is taken down - its container stopped, its service stopped, the WARP
tunnel cut at the endpoint - and while it is down the client's request fails and a capture on the
uplink sees zero of the client's packets in the clear; brought back, traffic flows again. A failure
injected mid-apply is rolled back to the working chain; check mode on the converged lab changes
nothing; no secret appears in the ledger, the diff or Ansible's log.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

import pytest

from privacy_support import CLIENT_FILTER


def test_client_fetches_through_the_chain_and_the_server_sees_the_vps(privacy_lab):
    with privacy_lab.capture() as clear, privacy_lab.capture("udp port 2408") as tunnel:
        body = privacy_lab.wait_flowing()
    assert body == "source=%s" % privacy_lab.vps, "the server saw %r, not the VPS %s" % (body, privacy_lab.vps)
    assert privacy_lab.www_log_tail().split()[0] == privacy_lab.vps
    # the uplink carried the WARP tunnel (the capture works) and nothing of the client in the clear
    assert tunnel.packets > 0, "no WARP tunnel packets on the uplink: the capture sees nothing"
    assert clear.packets == 0, "client packets in the clear on the uplink:\n%s" % "\n".join(clear.lines[:10])
    # the direct path (not through the chain) is seen as the client itself: the comparison is meaningful
    direct = privacy_lab.sh(["ip", "netns", "exec", privacy_lab.client_ns, "curl", "-sS", "-m", "5",
                             "http://%s/" % privacy_lab.env.get("OPDBUS_WWW_DIRECT_ADDR", "198.18.1.80")]).stdout.strip()
    assert direct == "source=100.64.0.2"


def _stop_container(plab, name):
    plab.sh(["lxc-stop", "-P", plab.lxcpath, "-n", name, "-t", "30"], timeout=60)
    assert plab.ct_state(name) == "STOPPED"


def _start_container(plab, name):
    plab.sh(["lxc-start", "-P", plab.lxcpath, "-n", name], timeout=60)
    assert plab.ct_state(name) == "RUNNING"


def _unit(hop):
    return "opdbus-privacy-%s.service" % hop


HOPS = {"wireguard": "ct100", "xray": "ct102", "warp": "ct101"}

CASES = [
    ("container-ct100", lambda p: _stop_container(p, "ct100"), lambda p: _start_container(p, "ct100")),
    ("container-ct102", lambda p: _stop_container(p, "ct102"), lambda p: _start_container(p, "ct102")),
    ("container-ct101", lambda p: _stop_container(p, "ct101"), lambda p: _start_container(p, "ct101")),
    ("service-wireguard", lambda p: p.ct("ct100", "systemctl", "stop", _unit("wireguard")),
     lambda p: p.ct("ct100", "systemctl", "start", _unit("wireguard"))),
    ("service-xray", lambda p: p.ct("ct102", "systemctl", "stop", _unit("xray")),
     lambda p: p.ct("ct102", "systemctl", "start", _unit("xray"))),
    ("service-warp", lambda p: p.ct("ct101", "systemctl", "stop", _unit("warp")),
     lambda p: p.ct("ct101", "systemctl", "start", _unit("warp"))),
    ("tunnel-warp", lambda p: p.sh(["ip", "-n", p.warp_ns, "link", "set", "opdbus-warp", "down"]),
     lambda p: p.sh(["ip", "-n", p.warp_ns, "link", "set", "opdbus-warp", "up"])),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_hop_down_fails_closed_and_comes_back(privacy_lab, case):
    name, down, up = case
    privacy_lab.wait_flowing()
    down(privacy_lab)
    try:
        with privacy_lab.capture() as clear:
            attempts = [privacy_lab.fetch(seconds=5) for _attempt in range(3)]
        assert not any(ok for ok, _body in attempts), "%s down, yet the client got through: %s" % (name, attempts)
        assert clear.packets == 0, "%s down: client packets on the uplink in the clear:\n%s" % (name, "\n".join(clear.lines[:10]))
    finally:
        up(privacy_lab)
    body = privacy_lab.wait_flowing()
    assert body == "source=%s" % privacy_lab.vps


def _chain_flows(plab):
    """The chain's flows as ovs-ofctl prints them (the oracle), without counters, sorted."""
    out = plab.sh(["ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "--no-stats", "unix:%s/ovs-br0.mgmt" % plab.env["OVS_RUNDIR"],
                   "cookie=0xd0b0008/-1"]).stdout
    return sorted(line.strip() for line in out.splitlines() if "cookie=" in line)


def _sha(plab, ct, path):
    return hashlib.sha256(plab.ct(ct, "cat", path).stdout.encode()).hexdigest()


def test_a_failure_mid_apply_rolls_back_to_the_working_chain(privacy_lab):
    privacy_lab.wait_flowing()
    watched = [("ct102", "/etc/opdbus/privacy/xray.json"), ("ct102", "/etc/systemd/system/opdbus-privacy-xray.service")]
    before = dict((w, _sha(privacy_lab, *w)) for w in watched)
    flows_before = _chain_flows(privacy_lab)
    # Security level 1 instead of the lab's 2 changes the flows (one bundle, early), then a binary the container does
    # not have: the files are written and the unit restarted, and it fails to start - everything is undone.
    extra = json.dumps({"privacy_router_xray": {"binary": "/usr/local/bin/xray-not-installed"}, "privacy_router_discover": False,
                        "privacy_router_openflow": {"security_level": 1}})
    proc = privacy_lab.playbook("-e", extra)
    assert proc.returncode != 0, "the broken configuration was applied:\n%s" % proc.stdout[-3000:]
    assert "rolled back to the previous state" in proc.stdout, proc.stdout[-3000:]
    assert "opdbus-privacy-xray.service" in proc.stdout and '"rolled_back": true' in proc.stdout
    assert "flows: delete flow" in proc.stdout or "flows: modify flow" in proc.stdout, "the flows were not changed first"
    after = dict((w, _sha(privacy_lab, *w)) for w in watched)
    assert after == before, "files not restored"
    assert _chain_flows(privacy_lab) == flows_before, "flows not restored"
    assert privacy_lab.ct("ct102", "systemctl", "is-active", "opdbus-privacy-xray.service", check=False).stdout.strip() == "active"
    assert privacy_lab.wait_flowing(60) == "source=%s" % privacy_lab.vps
    again = privacy_lab.playbook()
    assert again.returncode == 0 and again.recap["lab-host"]["changed"] == 0, again.stdout[-3000:]


def test_a_second_run_and_check_mode_change_nothing(privacy_lab):
    again = privacy_lab.playbook()
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.recap["lab-host"]["changed"] == 0 and again.recap["lab-peers"]["changed"] == 0, again.stdout[-3000:]
    check = privacy_lab.playbook("--check", "--diff")
    assert check.returncode == 0, check.stdout[-3000:]
    assert check.recap["lab-host"]["changed"] == 0 and check.recap["lab-peers"]["changed"] == 0, check.stdout[-3000:]
    assert "0 steps pending" in check.stdout


def test_keys_appear_in_no_ledger_record_diff_or_log(privacy_lab):
    first = privacy_lab.first
    secrets = privacy_lab.secrets()
    ledger_files = [p for p in first["ledger"].rglob("*") if p.is_file()]
    records = [p for p in ledger_files if p.name.endswith(".jsonl")]
    assert records, "the ledger recorded nothing: %s" % ledger_files
    texts = {"diff output": first["proc"].stdout + first["proc"].stderr, "ansible log": first["log"].read_text()}
    for path in ledger_files:
        texts["ledger " + path.name] = path.read_bytes().decode("utf-8", "replace")
    # the run did show the chain's files in its diff (with placeholders) and recorded the module's task
    assert "<secret: gateway private key>" in texts["diff output"]
    assert any("privacy_router" in texts["ledger " + p.name] for p in records)
    for label, text in texts.items():
        for secret in secrets:
            assert secret not in text, "a secret (%s...) is in the %s" % (secret[:4], label)
    # the files holding secrets are 0600, their directories 0700
    for path in list(privacy_lab.key_dir.rglob("*.key")) + list(privacy_lab.key_dir.rglob("*.conf")):
        assert path.stat().st_mode & 0o777 == 0o600, "%s is %o" % (path, path.stat().st_mode & 0o777)
    assert privacy_lab.key_dir.stat().st_mode & 0o777 == 0o700
    for ct, path in (("ct100", "/etc/opdbus/privacy/wg0.conf"), ("ct101", "/etc/opdbus/privacy/wgwarp.conf"),
                     ("ct102", "/etc/opdbus/privacy/xray.json")):
        assert privacy_lab.ct(ct, "stat", "-c", "%a", path).stdout.strip() == "600"


def test_the_capture_would_see_a_leak(privacy_lab):
    """The leak test's own control: a packet to "the internet" in the clear on the uplink is counted.

    The host's management port sends one (a host route through the uplink router, for this test only)."""
    route = ["198.18.0.0/24", "via", privacy_lab.env.get("OPDBUS_UPLINK_PEER_IP", "192.0.2.254"), "dev", "mgmt0"]
    privacy_lab.sh(["ip", "route", "add"] + route)
    try:
        with privacy_lab.capture(CLIENT_FILTER) as clear:
            privacy_lab.sh(["ping", "-c", "2", "-W", "1", "-I", "mgmt0", privacy_lab.www], check=False)
    finally:
        privacy_lab.sh(["ip", "route", "del"] + route)
    assert clear.packets >= 2, "the capture on the uplink did not see packets in the clear: %s" % clear.lines
