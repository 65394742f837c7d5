# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lxc_container through Ansible with the liblxc backend: real containers on the lab's OVS.

A busybox container gets two NICs on a fresh netdev bridge: a socket NIC (an OVS internal port
moved into the container) and a veth NIC (its host side added to the bridge once the container
runs). A namespace holding another internal port of the bridge pings both. The module runs under
the venv's Python and respawns into the system Python for python3-lxc. Oracles: ovs-vsctl, ip,
ping, lxc-info.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

MODULE = "opdbus.infra.lxc_container"


def task(name, args, **extra):
    out = {"name": name, MODULE: args}
    out.update(extra)
    return out


def test_busybox_on_socket_and_veth_ports(lab, names, ct_names, lxcpath):
    bridge, sock, gw = names.bridge(), names.port(), names.port()
    netns = lab.add_netns("opdbus-%s" % names.other("n"))
    ct = ct_names.new("mod")
    args = {
        "name": ct, "template": "busybox", "lxcpath": lxcpath, "ovsdb": lab.ovsdb, "cores": 1, "memory_mb": 128,
        "network": [
            {"type": "socket", "bridge": bridge, "port": sock, "address": "10.77.0.2/24"},
            {"type": "veth", "bridge": bridge, "address": "10.77.1.2/24"},
        ],
        "state": "started", "timeout": 60,
    }
    setup = lab.playbook([{"name": "bridge", "opdbus.infra.ovs_bridge": {
        "name": bridge, "datapath_type": "netdev", "ovsdb": lab.ovsdb, "ports": [{"name": gw, "type": "internal"}]}}])
    assert setup.rc == 0, setup.output
    lab.sh(["ip", "link", "set", gw, "netns", netns], ns=True)
    lab.sh(["ip", "-n", netns, "addr", "add", "10.77.0.1/24", "dev", gw])
    lab.sh(["ip", "-n", netns, "addr", "add", "10.77.1.1/24", "dev", gw])
    lab.sh(["ip", "-n", netns, "link", "set", gw, "up"])

    check = lab.playbook([task("create", args)], check=True, diff=True)
    assert check.rc == 0, check.output
    predicted = check.result("create")
    assert predicted["changed"] is True
    assert lab.port(sock) is None, "check mode created the socket port"
    run = lab.playbook([task("create", args), task("again", args)], diff=True)
    assert run.rc == 0, run.output
    real = run.result("create")
    assert real["changes"] == predicted["changes"], (predicted["changes"], real["changes"])
    veth = real["container"]["config"]["network"][1]["port"]
    assert real["changes"] == ["add socket port %s to OVS bridge %s" % (sock, bridge), "create from busybox", "start",
                               "add veth port %s to OVS bridge %s" % (veth, bridge)]
    assert run.result("again")["changed"] is False, run.result("again")
    # Oracles: both ports on the bridge, the socket port's tap inside the container, traffic.
    assert sorted(lab.bridge_port_names(bridge)) == sorted([bridge, gw, sock, veth])
    assert lab.iface(sock)["type"] == "internal"
    info = lab.sh(["lxc-info", "-P", lxcpath, "-n", ct, "-s", "-p"]).stdout
    assert "RUNNING" in info
    pid = int([line.split()[-1] for line in info.splitlines() if line.startswith("PID")][0])
    inside = lab.sh(["nsenter", "--net=/proc/%d/ns/net" % pid, "ip", "-o", "addr", "show"]).stdout
    assert "10.77.0.2/24" in inside and "10.77.1.2/24" in inside
    for address in ("10.77.0.2", "10.77.1.2"):
        ping = lab.sh(["ip", "netns", "exec", netns, "ping", "-c", "2", "-W", "2", address], check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr

    # The info module sees it, with both addresses.
    info_run = lab.playbook([{"name": "info", "opdbus.infra.lxc_container_info": {"lxcpath": lxcpath, "names": [ct]}}])
    found = info_run.result("info")["containers"]
    assert [(c["name"], c["state"]) for c in found] == [(ct, "running")], found
    assert found[0]["addresses"] == {"eth0": ["10.77.0.2/24"], "eth1": ["10.77.1.2/24"]}
    assert found[0]["config"]["network"][0]["port"] == sock

    # Stop: the socket port's tap comes back to the host; absent removes the container.
    stopped = lab.playbook([task("stop", dict(args, state="stopped"))])
    assert stopped.rc == 0 and stopped.result("stop")["changes"] == ["stop"], stopped.output
    gone = lab.playbook([task("absent", {"name": ct, "lxcpath": lxcpath, "state": "absent"})])
    assert gone.rc == 0 and gone.result("absent")["changes"] == ["destroy"], gone.output
    assert not os.path.exists(os.path.join(lxcpath, ct))


def test_bad_inputs_fail_before_touching_anything(lab, names, ct_names, lxcpath):
    ct = ct_names.new("bad")
    cases = [
        ({"name": ct, "lxcpath": lxcpath, "template": "busybox", "ovsdb": lab.ovsdb,
          "network": [{"type": "socket", "bridge": "nosuchbr0", "port": names.port()}]}, "OVS bridge nosuchbr0 does not exist"),
        ({"name": ct, "lxcpath": lxcpath}, "template is needed to create it"),
        ({"name": ct, "lxcpath": lxcpath, "template": "busybox", "unprivileged": True}, "unprivileged"),
        ({"name": ct, "lxcpath": lxcpath, "template": "no-such-template"}, "no-such-template"),
        ({"name": ct, "id": 100, "lxcpath": lxcpath, "template": "busybox"}, "id is a Proxmox VE VMID"),
    ]
    for args, message in cases:
        run = lab.playbook([task("bad", args)])
        result = run.result("bad")
        assert result.get("failed") is True and message in result["msg"], (args, result)
        assert "module_stderr" not in result and "exception" not in result, result
        assert not os.path.exists(os.path.join(lxcpath, ct)), "a failed run left %s behind" % ct


def test_changes_live_and_pending_restart(lab, ct_names, lxcpath):
    ct = ct_names.new("chg")
    base = {"name": ct, "template": "busybox", "lxcpath": lxcpath, "cores": 1, "memory_mb": 128, "hostname": "one",
            "state": "started", "timeout": 60}
    run = lab.playbook([task("create", base)])
    assert run.rc == 0, run.output
    # memory applies live: no restart needed; the container's cgroup says so (oracle: lxc-cgroup)
    more = dict(base, memory_mb=256)
    run = lab.playbook([task("more memory", more)], diff=True)
    result = run.result("more memory")
    assert result["changes"] == ["set memory_mb"] and result["restart_required"] is False, result
    assert result["diff"]["before"]["memory_mb"] == 128 and result["diff"]["after"]["memory_mb"] == 256
    limit = lab.sh(["lxc-cgroup", "-P", lxcpath, "-n", ct, "memory.limit_in_bytes"], check=False)
    if limit.returncode != 0:  # a cgroup v2 host
        limit = lab.sh(["lxc-cgroup", "-P", lxcpath, "-n", ct, "memory.max"])
    assert int(limit.stdout.strip()) == 256 * 1024 * 1024
    # a hostname waits for the next start, said as a warning; restart_on_change restarts
    renamed = dict(more, hostname="two")
    run = lab.playbook([task("rename", renamed), task("rename again", renamed)])
    first = run.result("rename")
    assert first["changes"] == ["set hostname"] and first["restart_required"] is True, first
    assert "take effect at its next start" in run.output, run.output
    assert run.result("rename again")["changed"] is False
    pid_before = lab.sh(["lxc-info", "-P", lxcpath, "-n", ct, "-p", "-H"]).stdout.strip()
    run = lab.playbook([task("restart", dict(renamed, hostname="three", restart_on_change=True))])
    result = run.result("restart")
    assert result["changes"] == ["set hostname", "restart (for hostname)"] and result["restart_required"] is False, result
    pid_after = lab.sh(["lxc-info", "-P", lxcpath, "-n", ct, "-p", "-H"]).stdout.strip()
    assert pid_before != pid_after
    uts = lab.sh(["nsenter", "--uts=/proc/%s/ns/uts" % pid_after, "hostname"]).stdout.strip()
    assert uts == "three"
