# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input: the module fails with a clear message, no traceback, and the lab is unchanged.

The inputs are aimed at bridges that exist (made with ovs-vsctl, not with the module), so that a
module which applied part of a task before noticing the problem would show up in the dump of the
whole database (and of the devices' addresses) taken before and after.
"""

from __future__ import absolute_import, division, print_function

import secrets

import pytest

from conftest import db_lock


class Victim(object):
    """Names of what the bad inputs are aimed at."""

    def __init__(self):
        prefix = "ib" + secrets.token_hex(2)
        self.br = prefix + "v"        # bridge with ports p1 (internal) and p2 (internal, VLAN 10)
        self.p1 = prefix + "p1"
        self.p2 = prefix + "p2"
        self.fake = prefix + "f"      # fake bridge of br, VLAN 10
        self.other = prefix + "w"     # another bridge, with port wp
        self.wp = prefix + "wp"
        self.new = prefix + "n"       # names that do not exist
        self.newp = prefix + "np"

    def bridge(self, **kwargs):
        args = {"name": self.br, "datapath_type": "netdev"}
        args.update(kwargs)
        return args

    def with_port(self, **port):
        spec = {"name": self.p1, "type": "internal"}
        spec.update(port)
        return self.bridge(ports=[spec])


@pytest.fixture(scope="module")
def victim(lab):
    v = Victim()
    with db_lock(lab, exclusive=False):
        lab.vsctl("add-br", v.br, "--", "set", "Bridge", v.br, "datapath_type=netdev", "external_ids:keep=me",
                  "--", "add-port", v.br, v.p1, "--", "set", "Interface", v.p1, "type=internal",
                  "--", "add-port", v.br, v.p2, "tag=10", "--", "set", "Interface", v.p2, "type=internal",
                  "--", "add-br", v.fake, v.br, "10",
                  "--", "add-br", v.other, "--", "set", "Bridge", v.other, "datapath_type=netdev",
                  "--", "add-port", v.other, v.wp, "--", "set", "Interface", v.wp, "type=internal")
        lab.sh(["ip", "addr", "add", "10.76.0.1/24", "dev", v.p1], ns=True)
    yield v
    with db_lock(lab, exclusive=False):
        for br in (v.fake, v.br, v.other, v.new):
            lab.vsctl("--if-exists", "del-br", br, check=False)


def port(v, **kwargs):
    return v.with_port(**kwargs)


CASES = [
    # names
    ("bridge-name-16-bytes", lambda v: {"name": "a" * 16}, "is 16 bytes long"),
    ("bridge-name-with-slash", lambda v: {"name": "br/0"}, "characters not allowed in an interface name"),
    ("bridge-name-with-space", lambda v: {"name": "br 0"}, "characters not allowed in an interface name"),
    ("bridge-name-empty", lambda v: {"name": ""}, "bridge name must be a non-empty string"),
    ("bridge-name-dotdot", lambda v: {"name": ".."}, "characters not allowed in an interface name"),
    ("port-name-16-bytes", lambda v: v.bridge(ports=[{"name": "p" * 16, "type": "internal"}]), "is 16 bytes long"),
    ("duplicate-port-names", lambda v: v.bridge(ports=[{"name": v.newp, "type": "internal"},
                                                       {"name": v.newp, "type": "internal"}]), "is listed twice"),
    ("local-port-not-internal", lambda v: v.bridge(ports=[{"name": v.br, "type": "system"}]),
     "local port is always of type internal"),
    # port types and their options
    ("unknown-port-type", lambda v: port(v, type="bond"), "value of type must be one of"),
    ("patch-without-peer", lambda v: port(v, type="patch"), "a patch port needs 'peer'"),
    ("patch-peer-to-itself", lambda v: port(v, type="patch", peer=v.p1), "cannot be its own peer"),
    ("peer-on-internal-port", lambda v: port(v, peer="x"), "'peer' applies only to type patch"),
    ("vxlan-without-remote-ip", lambda v: port(v, type="vxlan"), "a vxlan tunnel needs 'remote_ip'"),
    ("bad-remote-ip", lambda v: port(v, type="gre", remote_ip="300.1.1.1"), "'300.1.1.1' is not an IP address"),
    ("remote-ip-on-internal-port", lambda v: port(v, remote_ip="192.0.2.1"),
     "'remote_ip' applies only to tunnel types"),
    ("vxlan-key-out-of-range", lambda v: port(v, type="vxlan", remote_ip="192.0.2.1", key="16777216"),
     "must be 'flow' or an integer 0-16777215"),
    ("gre-key-out-of-range", lambda v: port(v, type="gre", remote_ip="192.0.2.1", key="4294967296"),
     "must be 'flow' or an integer 0-4294967295"),
    ("key-not-a-number", lambda v: port(v, type="geneve", remote_ip="192.0.2.1", key="abc"),
     "key 'abc' must be 'flow' or an integer"),
    ("key-on-internal-port", lambda v: port(v, key="5"), "'key' applies only to tunnel types"),
    ("options-value-dict", lambda v: port(v, options={"csum": {"a": 1}}),
     "must be a string, number or boolean"),
    # VLANs
    ("tag-4096", lambda v: port(v, tag=4096), "tag 4096 is out of range (0-4095)"),
    ("tag-negative", lambda v: port(v, tag=-1), "tag -1 is out of range (0-4095)"),
    ("tag-boolean", lambda v: port(v, tag=True), "tag must be an integer"),
    ("trunk-5000", lambda v: port(v, trunks=[10, 5000]), "trunk VLAN 5000 is out of range"),
    ("access-with-trunks", lambda v: port(v, vlan_mode="access", trunks=[10]), "an access port carries no trunks"),
    ("native-untagged-without-tag", lambda v: port(v, vlan_mode="native-untagged"),
     "vlan_mode native-untagged needs 'tag'"),
    ("trunk-with-tag", lambda v: port(v, vlan_mode="trunk", tag=5), "'tag' has no effect with vlan_mode trunk"),
    # ofport_request
    ("ofport-request-0", lambda v: port(v, ofport_request=0), "ofport_request 0 is out of range (1-65279)"),
    ("ofport-request-70000", lambda v: port(v, ofport_request=70000), "ofport_request 70000 is out of range"),
    # addresses and link state
    ("cidr-bad-octet", lambda v: port(v, addresses=["10.0.0.300/24"]), "'10.0.0.300/24' is not a valid CIDR"),
    ("cidr-without-prefix", lambda v: port(v, addresses=["10.0.0.1"]), "has no prefix length"),
    ("cidr-multicast", lambda v: port(v, addresses=["224.0.0.5/24"]), "cannot be assigned to an interface"),
    ("cidr-unspecified", lambda v: port(v, addresses=["0.0.0.0/0"]), "cannot be assigned to an interface"),
    ("cidr-twice", lambda v: port(v, addresses=["10.0.0.1/24", "10.0.0.1/24"]), "the same address twice"),
    ("addresses-on-system-port", lambda v: port(v, type="system", addresses=["10.0.0.1/24"]),
     "addresses and up apply only to internal ports"),
    ("up-on-patch-port", lambda v: port(v, type="patch", peer="x", up=True),
     "addresses and up apply only to internal ports"),
    # ports and bridges that belong elsewhere
    ("port-of-another-bridge", lambda v: v.bridge(ports=[{"name": v.wp, "type": "internal"}]),
     "already belongs to bridge"),
    ("port-named-like-another-bridge", lambda v: v.bridge(ports=[{"name": v.other, "type": "internal"}]),
     "already belongs to bridge"),
    ("bridge-named-like-a-port", lambda v: {"name": v.wp, "datapath_type": "netdev"}, "is already a port of bridge"),
    ("new-bridge-takes-a-port-of-another", lambda v: {"name": v.new, "datapath_type": "netdev",
                                                      "ports": [{"name": v.p1, "type": "internal"}]},
     "already belongs to bridge"),
    # bridge options
    ("stp-and-rstp", lambda v: v.bridge(stp=True, rstp=True), "stp and rstp are exclusive"),
    ("controller-http", lambda v: v.bridge(controller=["http://x"]), "controller target 'http://x' is not of the form"),
    ("protocol-openflow99", lambda v: v.bridge(protocols=["OpenFlow13", "OpenFlow99"]),
     "value of protocols must be one or more of"),
    ("external-ids-value-list", lambda v: v.bridge(external_ids={"a": [1, 2]}),
     "value of 'a' must be a string, number or boolean"),
    ("unknown-option", lambda v: v.bridge(colour="red"), "Unsupported parameters"),
    ("unknown-port-option", lambda v: port(v, colour="red"), "Unsupported parameters"),
    # fake bridges
    ("fake-without-vlan", lambda v: {"name": v.new, "parent": v.br}, "parameters are required together: parent, vlan"),
    ("fake-with-datapath-type", lambda v: {"name": v.new, "parent": v.br, "vlan": 20, "datapath_type": "netdev"},
     "these options apply only to real bridges: datapath_type"),
    ("fake-parent-missing", lambda v: {"name": v.new, "parent": v.new + "x", "vlan": 20},
     "of fake bridge %r does not exist"),
    ("fake-vlan-0", lambda v: {"name": v.new, "parent": v.br, "vlan": 0}, "fake bridge vlan must be 1-4095"),
    ("fake-vlan-changed", lambda v: {"name": v.fake, "parent": v.br, "vlan": 11},
     "changing a fake bridge's vlan means removing it first"),
    ("fake-bridge-without-parent", lambda v: {"name": v.fake}, "is a fake bridge of"),
    ("real-bridge-as-fake", lambda v: {"name": v.other, "parent": v.br, "vlan": 20}, "is a real bridge"),
    ("fake-bridge-port-with-trunks", lambda v: {"name": v.fake, "parent": v.br, "vlan": 10,
                                                "ports": [{"name": v.newp, "type": "internal", "trunks": [1]}]},
     "ports of a fake bridge take neither trunks nor vlan_mode"),
    # state
    ("ports-with-state-absent", lambda v: {"name": v.br, "state": "absent", "ports": [{"name": v.p1}]},
     "ports cannot be given with state=absent"),
    # connection
    ("endpoint-unknown-method", lambda v: v.bridge(ovsdb="foo:bar"), "unknown method 'foo'"),
    ("endpoint-ssl", lambda v: v.bridge(ovsdb="ssl:127.0.0.1:6640"), "method 'ssl' is not supported"),
    ("endpoint-relative-path", lambda v: v.bridge(ovsdb="unix:db.sock"), "the unix socket path must be absolute"),
    ("timeout-negative", lambda v: v.bridge(timeout=-1), "timeout"),
    ("timeout-zero", lambda v: v.bridge(timeout=0), "timeout must be a positive number"),
]


def _params():
    """(id, make_args(victim), expected substring of msg[, marks])"""
    return [pytest.param(case[1], case[2], id=case[0], marks=case[3:]) for case in CASES]


@pytest.mark.whole_db
@pytest.mark.parametrize("make_args,expected", _params())
def test_bad_input_fails_clearly_and_changes_nothing(lab, victim, make_args, expected):
    args = make_args(victim)
    devices = [victim.br, victim.p1, victim.p2, victim.fake, victim.wp]
    db_before, kernel_before = lab.dump(), lab.link_snapshot(devices)

    run = lab.module(args).failed()  # asserts: failed, rc != 0, a message, one JSON document, no traceback
    msg = run["msg"]
    if "%r" in expected:
        expected = expected % (args["name"],)
    assert expected.lower() in msg.lower(), "message %r does not name the problem (%r)" % (msg, expected)
    assert "\n" not in msg.strip()

    assert lab.dump() == db_before, "the failed run changed OVSDB"
    assert lab.link_snapshot(devices) == kernel_before, "the failed run changed devices"
