# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ovs_bridge through Ansible for real: ad-hoc runs with --check/--diff, playbooks.

Results come from the json_results stdout callback; the state from ovs-vsctl and ip.
"""

from __future__ import absolute_import, division, print_function

import json

from conftest import as_list, netdev_bridge, opt


def no_traceback(run):
    assert "Traceback" not in run.output, run.output


def test_create_check_mode_diff_and_idempotence(lab, names):
    br, p1, p2 = names.bridge(), names.port(), names.port()
    args = netdev_bridge(br, fail_mode="standalone", external_ids={"owner": "integration"}, ports=[
        {"name": p1, "type": "internal", "addresses": ["10.71.0.1/24"], "up": True},
        {"name": p2, "type": "internal", "tag": 10, "external_ids": {"role": "access"}},
    ])
    scope = [br, p1, p2]
    before = lab.scoped_dump(scope)

    # Check mode: reports the plan, changes nothing.
    check = lab.adhoc(args, check=True, diff=True)
    no_traceback(check)
    assert check.rc == 0, check.output
    predicted = check.result(0)
    assert predicted["changed"] is True
    for change in ("create bridge %s" % br, "add port %s (internal)" % p1, "add port %s (internal)" % p2,
                   "port %s addresses: [10.71.0.1/24]" % p1, "port %s tag: 10" % p2):
        assert change in predicted["changes"]
    assert not any(c.startswith("add port %s " % br) for c in predicted["changes"])
    assert predicted["bridge"] == {"name": br, "uuid": None}
    assert predicted["diff"]["before"] == {}
    after = predicted["diff"]["after"]
    assert after["datapath_type"] == "netdev" and after["fail_mode"] == "standalone"
    assert after["external_ids"] == {"owner": "integration"}
    assert sorted(after["ports"]) == sorted([br, p1, p2])
    assert after["ports"][p2]["tag"] == 10
    assert after["ports"][p1]["addresses"] == ["10.71.0.1/24"] and after["ports"][p1]["up"] is True
    assert lab.scoped_dump(scope) == before
    assert not lab.bridge_exists(br)
    assert lab.link(br) is None and lab.link(p1) is None and lab.link(p2) is None

    # The real run does exactly what check mode said.
    real = lab.adhoc(args, diff=True)
    no_traceback(real)
    assert real.rc == 0, real.output
    done = real.result(0)
    assert done["changed"] is True
    assert done["changes"] == predicted["changes"]
    assert done["diff"]["after"] == predicted["diff"]["after"]
    assert done["diff"]["before"] == predicted["diff"]["before"]
    assert real.doc["stats"]["localhost"]["changed"] == 1

    row = lab.bridge(br)
    assert row["datapath_type"] == "netdev" and opt(row["fail_mode"]) == "standalone"
    assert row["external_ids"] == {"owner": "integration"}
    assert lab.list_ports(br) == sorted([p1, p2])
    assert lab.iface(p1)["type"] == "internal" and lab.iface(p2)["type"] == "internal"
    assert opt(lab.port(p2)["tag"]) == 10 and lab.port(p2)["external_ids"] == {"role": "access"}
    for dev in (br, p1, p2):
        assert lab.is_tap(dev), dev
    assert lab.addresses(p1) == ["10.71.0.1/24"] and lab.link_up(p1)
    assert done["diff"]["after"] == lab.oracle_view(args)
    lab.assert_report(done, args)

    # Second run: nothing to do.
    again = lab.adhoc(args, diff=True)
    no_traceback(again)
    assert again.rc == 0
    res = again.result(0)
    assert res["changed"] is False and res["changes"] == []
    assert res["bridge"] == done["bridge"]
    assert again.doc["stats"]["localhost"]["changed"] == 0


def test_playbook_with_module_defaults_group_create_and_remove(lab, names):
    """The endpoint comes from module_defaults for group/opdbus.infra.ovs (meta/runtime.yml)."""
    br, p1 = names.bridge(), names.port()
    bridge = netdev_bridge(br, ports=[{"name": p1, "type": "internal"}])
    play = {
        "name": "module_defaults",
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/opdbus.infra.ovs": {"ovsdb": lab.ovsdb}},
        "tasks": [
            {"name": "create", "opdbus.infra.ovs_bridge": bridge},
            {"name": "create again", "opdbus.infra.ovs_bridge": bridge},
            {"name": "remember the taps", "ansible.builtin.command": "ip -j link show dev %s" % p1,
             "changed_when": False},
            {"name": "remove", "opdbus.infra.ovs_bridge": {"name": br, "state": "absent"}},
            {"name": "remove again", "opdbus.infra.ovs_bridge": {"name": br, "state": "absent"}},
        ],
    }
    run = lab.playbook([play], diff=True)
    no_traceback(run)
    assert run.rc == 0, run.output
    assert run.result("create")["changed"] is True
    assert run.result("create again")["changed"] is False
    assert json.loads(run.result("remember the taps")["stdout"])[0]["ifname"] == p1
    removed = run.result("remove")
    assert removed["changed"] is True
    assert removed["changes"] == ["remove bridge %s (and its 2 ports)" % br]
    assert removed["diff"]["after"] == {} and sorted(removed["diff"]["before"]["ports"]) == sorted([br, p1])
    assert run.result("remove again")["changed"] is False
    assert not lab.bridge_exists(br)
    assert lab.iface(p1) is None
    assert lab.link(br) is None and lab.link(p1) is None


def test_removal_check_mode_removes_nothing(lab, names):
    br, p1 = names.bridge(), names.port()
    lab.module(netdev_bridge(br, ports=[{"name": p1, "type": "internal"}])).ok()
    uuid = lab.bridge(br)["_uuid"]
    before = lab.scoped_dump([br, p1])

    check = lab.adhoc({"name": br, "state": "absent"}, check=True, diff=True)
    no_traceback(check)
    res = check.result(0)
    assert res["changed"] is True and res["changes"] == ["remove bridge %s (and its 2 ports)" % br]
    assert res["bridge"]["uuid"] == uuid
    assert lab.scoped_dump([br, p1]) == before
    assert lab.is_tap(br) and lab.is_tap(p1)


def test_ovsdb_server_stopped_during_a_play(lab, names, throwaway_ovs):
    ovs = throwaway_ovs()
    br = names.other("d")
    tasks = [
        {"name": "create", "opdbus.infra.ovs_bridge": {"name": br, "datapath_type": "netdev",
                                                       "ovsdb": ovs.endpoint}},
        {"name": "stop ovsdb-server", "ansible.builtin.command": "kill %d" % ovs.ovsdb_pid},
        {"name": "wait until it is gone", "ansible.builtin.wait_for": {"path": str(ovs.sock), "state": "absent",
                                                                       "timeout": 60}},
        {"name": "change", "opdbus.infra.ovs_bridge": {"name": br, "datapath_type": "netdev",
                                                       "ovsdb": ovs.endpoint, "external_ids": {"a": "b"}}},
        {"name": "never reached", "ansible.builtin.debug": {"msg": "unreachable"}},
    ]
    run = lab.playbook(tasks)
    no_traceback(run)
    assert run.rc != 0
    created = run.result("create")
    assert created["changed"] is True and not created.get("failed")
    assert created["bridge"]["uuid"]
    failed = run.result("change")
    assert failed["failed"] is True
    assert "cannot connect to OVSDB at %s" % ovs.endpoint in failed["msg"]
    assert "exception" not in failed and "module_stderr" not in failed
    assert "never reached" not in [t["task"]["name"] for t in run.tasks]


def test_endpoint_that_does_not_exist(lab, names):
    br = names.bridge()
    run = lab.adhoc({"name": br, "datapath_type": "netdev", "ovsdb": "unix:/nonexistent/opdbus/db.sock"})
    no_traceback(run)
    assert run.rc != 0
    res = run.result(0)
    assert res["failed"] is True
    assert "cannot connect to OVSDB at unix:/nonexistent/opdbus/db.sock" in res["msg"]
    assert "No such file or directory" in res["msg"]
    assert not lab.bridge_exists(br)

    res = lab.module({"name": br, "ovsdb": "tcp:127.0.0.1:1"}).failed()
    assert "cannot connect to OVSDB at tcp:127.0.0.1:1: " in res["msg"]


def test_vswitchd_not_running_gives_a_clear_error(lab, names, throwaway_ovs):
    ovs = throwaway_ovs(vswitchd=False)
    br = names.other("v")
    res = lab.module({"name": br, "datapath_type": "netdev", "ovsdb": ovs.endpoint, "timeout": 1}).failed()
    assert "ovs-vswitchd did not apply the change" in res["msg"]
    assert "is ovs-vswitchd running?" in res["msg"]
    # The transaction itself was committed: ovsdb-server has the bridge.
    rows = lab.rows("Bridge", "name=%s" % br, db=ovs.endpoint)
    assert [r["name"] for r in rows] == [br]
    assert as_list(rows[0]["ports"])
