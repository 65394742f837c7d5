# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml's roles on a bridge of their own: the privacy sockets in namespaces, packets through the flows.

The chain may only go wg -> warp -> xray -> uplink (replies back); anything else from a privacy port is
dropped, and nothing from the wg hop ever reaches the uplink directly (tcpdump on the uplink is the oracle).
"""

from __future__ import absolute_import, division, print_function

import json
import subprocess
import time

import pytest

HOPS = ("wg", "warp", "xray", "uplink")
ADDR = {"wg": "10.91.0.1", "warp": "10.91.0.2", "xray": "10.91.0.3", "uplink": "10.91.0.254"}
OFPORT = {"wg": 10, "warp": 11, "xray": 12}


def ping(lab, chain, src, dst, count=2, wait=1):
    res = lab.sh(["ip", "netns", "exec", chain["ns"][src], "ping", "-n", "-q", "-c", str(count), "-W", str(wait), ADDR[dst]],
                 check=False, timeout=60)
    return res.returncode == 0


def play(lab, names_of, bridge, uplink):
    roles_vars = {
        "ovs_network_bridge": bridge,
        "ovs_network_datapath_type": "netdev",
        "ovs_network_mgmt_port": names_of["mgmt"],
        "ovs_network_privacy_ports": [{"name": names_of[h], "type": "internal", "tag": 4000,
                                       "ofport_request": OFPORT[h]} for h in ("wg", "warp", "xray")],
        "ovs_network_uplink": uplink,
        "privacy_flows_bridge": bridge,
        "privacy_flows_rundir": lab.env["OVS_RUNDIR"],
    }
    return [{"name": "privacy flows", "hosts": "localhost", "gather_facts": False, "vars": roles_vars,
             "module_defaults": {"group/opdbus.infra.ovs": {"ovsdb": lab.ovsdb}},
             "roles": [{"role": "opdbus.infra.ovs_network"}, {"role": "opdbus.infra.privacy_flows"}]}]


@pytest.fixture
def chain(lab, names):
    bridge = names.bridge()
    names_of = dict((h, names.port()) for h in ("wg", "warp", "xray", "mgmt", "uplink"))
    uplink = names_of["uplink"]
    # Namespaces of this test only (tests may run in parallel workers).
    ns = dict((hop, "opdbus-pf-%s-%s" % (hop, bridge)) for hop in HOPS)
    try:
        lab.add_netns(ns["uplink"])
        lab.sh(["ip", "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", ns["uplink"]], ns=True)
        lab.sh(["ip", "-n", ns["uplink"], "addr", "add", ADDR["uplink"] + "/24", "dev", "eth0"])
        lab.sh(["ip", "-n", ns["uplink"], "link", "set", "eth0", "up"])
        lab.sh(["ip", "link", "set", uplink, "up"], ns=True)
        lab.sh(["ip", "netns", "exec", ns["uplink"], "ethtool", "-K", "eth0", "tx", "off"])
        lab.sh(["ethtool", "-K", uplink, "tx", "off"], ns=True)

        first = lab.playbook(play(lab, names_of, bridge, uplink))
        assert first.rc == 0, first.output
        # The privacy sockets go where containers will hold them: their own namespaces.
        for hop in ("wg", "warp", "xray"):
            lab.add_netns(ns[hop])
            lab.sh(["ip", "link", "set", names_of[hop], "netns", ns[hop]], ns=True)
            lab.sh(["ip", "-n", ns[hop], "addr", "add", ADDR[hop] + "/24", "dev", names_of[hop]])
            lab.sh(["ip", "-n", ns[hop], "link", "set", names_of[hop], "up"])
        yield {"bridge": bridge, "names": names_of, "uplink": uplink, "first": first, "ns": ns}
    finally:
        for name in ns.values():
            lab.del_netns(name)
        lab.sh(["ip", "link", "del", uplink], ns=True, check=False)


def test_the_roles_converge_once(lab, chain):
    again = lab.playbook(play(lab, chain["names"], chain["bridge"], chain["uplink"]))
    assert again.rc == 0, again.output
    stats = json.loads(again.output)["stats"]
    assert stats and all(host["changed"] == 0 and host["ok"] > 0 for host in stats.values()), stats
    # The oracle holds the role's flows and meters.
    mgmt = "%s/%s.mgmt" % (lab.env["OVS_RUNDIR"], chain["bridge"])
    flows = lab.sh(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "--no-stats", mgmt, "cookie=0xd0b0001/-1"],
                   ns=True).stdout
    assert len([ln for ln in flows.splitlines() if "cookie=0xd0b0001" in ln]) == 24
    meters = lab.sh(["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", mgmt], ns=True).stdout
    assert meters.count("type=drop rate=200") == 3


def test_traffic_follows_the_chain_and_nothing_else(lab, chain):
    # Each hop reaches the next one; replies come back.
    assert ping(lab, chain, "wg", "warp")
    assert ping(lab, chain, "warp", "xray")
    assert ping(lab, chain, "xray", "uplink")
    # No hop skips ahead, and the chain does not run backwards.
    assert not ping(lab, chain, "wg", "xray")
    assert not ping(lab, chain, "warp", "wg")
    assert not ping(lab, chain, "xray", "warp")


def test_the_wg_hop_never_reaches_the_uplink_directly(lab, chain):
    """The leak test: a capture on the uplink sees nothing from the wg hop while it tries to get out."""
    link = json.loads(lab.sh(["ip", "-n", chain["ns"]["wg"], "-j", "link", "show", chain["names"]["wg"]]).stdout)[0]
    capture = ["ip", "netns", "exec", chain["ns"]["uplink"], "timeout", "6", "tcpdump", "-n", "-l", "-i", "eth0",
               "ether src %s or src host %s" % (link["address"], ADDR["wg"])]
    with subprocess.Popen(capture, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as dump:
        time.sleep(1.5)  # tcpdump is listening
        assert not ping(lab, chain, "wg", "uplink", count=3, wait=1)
        out, err = dump.communicate(timeout=30)
    assert "listening on eth0" in err, err
    assert out.strip() == "", "frames of the wg hop reached the uplink:\n%s" % out
    assert "0 packets captured" in err, err
