# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Packets through a bridge the module built: two namespaces ping each other over it."""

from __future__ import absolute_import, division, print_function

from conftest import netdev_bridge

NS_A, NS_B = "opdbus-itA", "opdbus-itB"


def ping(lab, count, wait):
    return lab.sh(["ip", "netns", "exec", NS_A, "ping", "-n", "-q", "-c", str(count), "-W", str(wait), "10.77.0.2"],
                  check=False, timeout=60)


def test_ping_between_two_namespaces_over_the_bridge(lab, names):
    br, veth_a, veth_b = names.bridge(), names.port(), names.port()
    try:
        for ns, veth, addr in ((NS_A, veth_a, "10.77.0.1/24"), (NS_B, veth_b, "10.77.0.2/24")):
            lab.add_netns(ns)
            # One end in the namespace, the other where ovs-vswitchd runs.
            lab.sh(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns], ns=True)
            lab.sh(["ip", "-n", ns, "addr", "add", addr, "dev", "eth0"])
            lab.sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
            lab.sh(["ip", "link", "set", veth, "up"], ns=True)
            # The userspace datapath does not fill in checksums that veth leaves to offload.
            lab.sh(["ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off"])
            lab.sh(["ethtool", "-K", veth, "tx", "off"], ns=True)

        res = lab.apply(netdev_bridge(br, fail_mode="standalone", ports=[
            {"name": veth_a, "type": "system"}, {"name": veth_b}]))
        assert lab.list_ports(br) == sorted([veth_a, veth_b])
        for veth in (veth_a, veth_b):
            assert lab.iface(veth)["type"] == ""
            assert lab.ofport(veth) is not None, lab.iface(veth)["error"]
            assert res["ports"][veth]["ofport"] == lab.ofport(veth)

        up = ping(lab, 3, 2)
        assert up.returncode == 0, "no ping over the bridge:\n%s%s" % (up.stdout, up.stderr)

        lab.apply(netdev_bridge(br, ports=[], ports_exclusive=True))
        assert lab.list_ports(br) == []
        assert lab.link(veth_a) is not None  # a system port's device is not OVS's to delete
        down = ping(lab, 2, 1)
        assert down.returncode != 0, "ping still works without the ports:\n%s" % down.stdout
    finally:
        for ns in (NS_A, NS_B):
            lab.del_netns(ns)  # takes the veth pairs with it
        for veth in (veth_a, veth_b):
            lab.sh(["ip", "link", "del", veth], ns=True, check=False)
