# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flow model (plugins/module_utils/openflow/flow.py) against a real Open vSwitch.

Every flow of data/ovs_flows.txt, and a seeded set of random valid flows, is
added to a throwaway ovs-vswitchd with ``ovs-ofctl add-flows`` and read back
with ``ovs-ofctl dump-flows --no-stats``: ``format_flow(parse_flow(flow))``
must print exactly the line the switch reports, and ``parse_flow`` of that
line must give the same canonical flow. The flows go in as few batches as
possible (flows with the same OpenFlow identity would replace each other, so
they go in separate batches), and are found again in the dump by their cookie.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.openflow.codec import OFPP_CONTROLLER, OFPP_LOCAL
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.flow import (
    FlowSyntaxError, flow_equal, flow_from_dict, flow_key, format_actions,
    format_flow, format_match, parse_actions, parse_flow,
)
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.flow import _inet6_ntop as inet6_ntop

from ovs_procs import stop

HERE = os.path.dirname(os.path.abspath(__file__))
FLOWS_FILE = os.path.join(HERE, "data", "ovs_flows.txt")
SCHEMA = os.environ.get("OVS_SCHEMA", "/usr/share/openvswitch/vswitch.ovsschema")
TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-vswitchd", "ovs-ofctl", "ip")
COOKIE_BASE = 0xf10000      # data/ovs_flows.txt
RANDOM_COOKIE_BASE = 0xa00000
SAME_COOKIE_BASE = 0xe00000
BUCKET_GROUP_BASE = 1000
RANDOM_SEED = 20241122
RANDOM_COUNT = 300


def _load_flows():
    flows = []
    with open(FLOWS_FILE) as f:
        for line in f:
            text = line.rstrip("\n")
            if text.strip() and not text.lstrip().startswith("#"):
                flows.append(text)
    return flows


def _with_cookie(cookie, text):
    """The flow text with a cookie (a flow that sets its own keeps it)."""
    if re.search(r"(^|[\s,])cookie[=:]", text):
        return text
    return "cookie=0x%x,%s" % (cookie, text)


def _cookie_of(text):
    m = re.search(r"(?:^|[\s,])cookie[=:]\s*(0x[0-9a-fA-F]+|[0-9]+)", text)
    return int(m.group(1), 0)


# --------------------------------------------------------------------------
# Random valid flows (seeded: the same every run)
# --------------------------------------------------------------------------

def random_flows(seed, count):
    """``count`` random flows Open vSwitch accepts, in varied ovs-ofctl spellings."""
    rnd = random.Random(seed)
    return [_random_flow(rnd) for _n in range(count)]


def _rmac(rnd):
    return ":".join("%02x" % rnd.randrange(256) for _n in range(6))


def _rip4(rnd):
    return ".".join(str(rnd.randrange(256)) for _n in range(4))


def _rip6(rnd):
    return ":".join("%x" % rnd.choice([0, 0, 1, 0xffff, rnd.randrange(65536)]) for _n in range(8))


def _rip4_mask(rnd):
    return rnd.choice([str(rnd.randrange(33)), _rip4(rnd)])


def _rip6_mask(rnd):
    # ovs-ofctl reads a mask starting with a decimal digit as a prefix length: start with a letter.
    return rnd.choice([str(rnd.randrange(129)), "ffff:" + _rip6(rnd).split(":", 1)[1], "fe00::%x" % rnd.randrange(65536)])


def _rhex(bits):
    return lambda rnd: "0x%x" % rnd.randrange(1 << bits)


def _rmasked(rnd, value, mask):
    return value if rnd.randrange(4) == 0 else "%s/%s" % (value, mask(rnd))


PROTOCOL_SPELLINGS = {
    "none": [""], "ip": ["ip", "dl_type=0x0800", "ipv4"], "ipv6": ["ipv6", "dl_type=0x86dd"],
    "arp": ["arp", "dl_type=0x0806"], "rarp": ["rarp"], "lldp": ["dl_type=0x88cc"], "gre": ["ip,nw_proto=47"],
    "tcp": ["tcp", "dl_type=0x0800,nw_proto=6", "ip,ip_proto=6"], "udp": ["udp", "ip,nw_proto=17"], "sctp": ["sctp"],
    "icmp": ["icmp", "ip,nw_proto=1"], "icmp6": ["icmp6", "ipv6,nw_proto=58"], "tcp6": ["tcp6", "ipv6,nw_proto=6"],
    "udp6": ["udp6"], "sctp6": ["sctp6"],
}


def _random_flow(rnd):
    parts = []
    table = rnd.randrange(200) if rnd.random() < 0.3 else 0
    if table:
        parts.append("table=%d" % table)
    if rnd.random() < 0.5:
        parts.append("priority=%d" % rnd.randrange(65536))
    for key in ("idle_timeout", "hard_timeout"):
        if rnd.random() < 0.2:
            parts.append("%s=%d" % (key, rnd.randrange(1000, 65536)))
    parts.extend(f for f in ("send_flow_rem", "reset_counts", "no_packet_counts", "no_byte_counts") if rnd.random() < 0.1)
    ctx = rnd.choice(["none", "none"] + sorted(PROTOCOL_SPELLINGS))
    parts.append(rnd.choice(PROTOCOL_SPELLINGS[ctx]))
    v4 = ctx in ("ip", "tcp", "udp", "sctp", "icmp", "gre")
    v6 = ctx in ("ipv6", "icmp6", "tcp6", "udp6", "sctp6")
    l4 = {"tcp": "tcp", "udp": "udp", "sctp": "sctp", "tcp6": "tcp", "udp6": "udp", "sctp6": "sctp"}.get(ctx)
    opts = []
    if rnd.random() < 0.4:
        opts.append("in_port=%s" % rnd.choice(["1", "2", "65000", "LOCAL", "CONTROLLER", "42"]))
    for side in ("src", "dst"):
        if rnd.random() < 0.3:
            opts.append("%s_%s=%s" % (rnd.choice(["dl", "eth"]), side, _rmasked(rnd, _rmac(rnd), _rmac)))
    vlan = rnd.randrange(8)
    if vlan == 1:
        opts.append("dl_vlan=%d" % rnd.randrange(4096))
    elif vlan == 2:
        opts.append("dl_vlan=%d,dl_vlan_pcp=%d" % (rnd.randrange(4096), rnd.randrange(8)))
    elif vlan == 3:
        opts.append("vlan_tci=0x%04x" % (0x1000 | rnd.randrange(0x10000)))
    elif vlan == 4:
        opts.append("dl_vlan_pcp=%d" % rnd.randrange(8))
    elif vlan == 5:
        opts.append(rnd.choice(["dl_vlan=0xffff", "vlan_tci=0", "vlan_vid=0"]))
    elif vlan == 6:
        mask = 0x1000 | rnd.randrange(0x1000)
        opts.append("vlan_vid=0x%04x/0x%04x" % ((0x1000 | rnd.randrange(0x1000)) & mask, mask))
    tagged = vlan in (1, 2, 3, 4, 6)
    for i in rnd.sample(range(16), rnd.choice([0, 0, 0, 1, 2])):
        opts.append("reg%d=%s" % (i, _rmasked(rnd, _rhex(32)(rnd), _rhex(32))))
    for name, bits in (("metadata", 64), (rnd.choice(["tun_id", "tunnel_id"]), 64), ("ct_mark", 32)):
        if rnd.random() < 0.12:
            opts.append("%s=%s" % (name, _rmasked(rnd, _rhex(bits)(rnd), _rhex(bits))))
    ct_inv = False
    if rnd.random() < 0.25:
        chosen = rnd.sample(["new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"], rnd.randrange(1, 4))
        signs = [rnd.choice("+-") for _n in chosen]
        ct_inv = ("+", "inv") in zip(signs, chosen)
        opts.append("ct_state=" + "".join(sign + name for sign, name in zip(signs, chosen)))
    if rnd.random() < 0.15:
        opts.append("ct_zone=%d" % rnd.randrange(65536))
    if v4:
        for side in ("src", "dst"):
            if rnd.random() < 0.6:
                opts.append("%s_%s=%s" % (rnd.choice(["nw", "ip"]), side, _rmasked(rnd, _rip4(rnd), _rip4_mask)))
    if v6:
        for side in ("src", "dst"):
            if rnd.random() < 0.6:
                opts.append("ipv6_%s=%s" % (side, _rmasked(rnd, _rip6(rnd), _rip6_mask)))
    if (v4 or v6) and rnd.random() < 0.3:
        opts.append(rnd.choice(["nw_tos=%d" % (rnd.randrange(64) * 4), "ip_dscp=%d" % rnd.randrange(64)]))
    if (v4 or v6) and rnd.random() < 0.3:
        opts.append("%s=%d" % (rnd.choice(["nw_ecn", "ip_ecn"]), rnd.randrange(4)))
    if l4:
        for side in ("src", "dst"):
            if rnd.random() < 0.5:
                opts.append("%s%s=%s" % (rnd.choice(["tp_", l4 + "_"]), side,
                                         _rmasked(rnd, str(rnd.randrange(65536)), _rhex(16))))
    if ctx in ("icmp", "icmp6"):
        for what in ("type", "code"):
            if rnd.random() < 0.5:
                names = ["icmp_"] if ctx == "icmp" else ["icmp_", "icmpv6_"]
                opts.append("%s%s=%d" % (rnd.choice(names), what, rnd.randrange(256)))
    if ctx in ("arp", "rarp"):
        if rnd.random() < 0.5:
            opts.append("%s=%s" % (rnd.choice(["nw_src", "arp_spa"]), _rmasked(rnd, _rip4(rnd), _rip4_mask)))
        if rnd.random() < 0.5:
            opts.append("%s=%s" % (rnd.choice(["nw_dst", "arp_tpa"]), _rmasked(rnd, _rip4(rnd), _rip4_mask)))
        if rnd.random() < 0.5:
            opts.append("%s=%d" % (rnd.choice(["nw_proto", "arp_op"]), rnd.randrange(256)))
        for name in ("arp_sha", "arp_tha"):
            if rnd.random() < 0.4:
                opts.append("%s=%s" % (name, _rmasked(rnd, _rmac(rnd), _rmac)))
    rnd.shuffle(opts)
    parts.extend(opts)
    parts.append("actions=" + _random_actions(rnd, ctx, v4, v6, l4, tagged, ct_inv, table))
    return ",".join(p for p in parts if p)


def _random_actions(rnd, ctx, v4, v6, l4, tagged, ct_inv, table):
    if rnd.random() < 0.08:
        return "drop"
    items = ["meter:%d" % rnd.randint(1, 3)] if rnd.random() < 0.15 else []
    if (v4 or v6) and not ct_inv and rnd.random() < 0.3:
        items.append(_random_ct(rnd, v4, ctx))
    vlans = 1 if tagged else 0
    for _n in range(rnd.randrange(5)):
        kind = rnd.randrange(16)
        if kind == 0:
            items.append(rnd.choice(["output:%d" % rnd.randrange(1, 65000), "LOCAL", "NORMAL", "FLOOD", "ALL", "IN_PORT",
                                     "in_port", "controller", "controller:%d" % rnd.randrange(65536), "TABLE", "7"]))
        elif kind == 1:
            items.append("group:%d" % rnd.randint(1, 3))
        elif kind == 2:
            items.append(rnd.choice(["mod_dl_src:%s", "mod_dl_dst:%s", "set_field:%s->eth_src"]) % _rmac(rnd))
        elif kind == 3 and v4:
            items.append(rnd.choice(["mod_nw_src:%s", "mod_nw_dst:%s", "set_field:%s->ip_src", "set_field:%s->ip_dst"])
                         % _rip4(rnd))
        elif kind == 3 and v6:
            items.append("set_field:%s->%s" % (_rip6(rnd), rnd.choice(["ipv6_src", "ipv6_dst"])))
        elif kind == 4 and l4:
            items.append(rnd.choice(["mod_tp_src:%d", "mod_tp_dst:%d", "set_field:%%d->%s_dst" % l4]) % rnd.randrange(65536))
        elif kind == 5 and (v4 or v6):
            items.append(rnd.choice(["dec_ttl", "mod_nw_ttl:%d" % rnd.randrange(256), "mod_nw_tos:%d" % (rnd.randrange(64) * 4),
                                     "mod_nw_ecn:%d" % rnd.randrange(4), "set_field:%d->ip_dscp" % rnd.randrange(64)]))
        elif kind == 6 and vlans < 2 and rnd.random() < 0.5:
            items.append("push_vlan:%s" % rnd.choice(["0x8100", "0x88a8"]))
            vlans += 1
        elif kind == 6 and vlans:
            items.append(rnd.choice(["strip_vlan", "pop_vlan"]))
            vlans -= 1
        elif kind == 7 and vlans:
            items.append(rnd.choice(["set_field:%d->vlan_vid" % (0x1000 | rnd.randrange(4096)), "set_vlan_vid:%d" % rnd.randrange(4096),
                                     "mod_vlan_pcp:%d" % rnd.randrange(8), "set_field:%d->vlan_pcp" % rnd.randrange(8)]))
        elif kind == 7:
            items.append(rnd.choice(["mod_vlan_vid:%d", "mod_vlan_pcp:%d"]) % rnd.randrange(8))
            vlans = 1
        elif kind == 8:
            items.append(rnd.choice(["set_field:0x%x->reg%d" % (rnd.randrange(1 << 32), rnd.randrange(16)),
                                     "set_field:0x%x->tun_id" % rnd.randrange(1 << 64), "set_tunnel:%d" % rnd.randrange(1 << 32),
                                     "set_field:0x%x->metadata" % rnd.randrange(1 << 64), "set_field:LOCAL->in_port"]))
        elif kind == 9:
            items.append(rnd.choice(["resubmit:%d" % rnd.randrange(1, 100), "resubmit(,%d)" % rnd.randrange(255),
                                     "resubmit(%d,%d)" % (rnd.randrange(1, 100), rnd.randrange(255)), "resubmit:LOCAL"]))
        elif kind == 10 and (v4 or v6) and not ct_inv:
            items.append(_random_ct(rnd, v4, ctx))
        elif kind == 11:
            items.append("ct_clear")
        elif kind == 12 and ctx in ("arp", "rarp"):
            items.append(rnd.choice(["set_field:%d->arp_op" % rnd.randrange(256), "set_field:%s->arp_spa" % _rip4(rnd),
                                     "set_field:%s->arp_tha" % _rmac(rnd)]))
        elif kind == 13 and ctx in ("icmp", "icmp6"):
            names = ["icmp_type", "icmp_code"] if ctx == "icmp" else ["icmpv6_type", "icmpv6_code"]
            items.append("set_field:%d->%s" % (rnd.randrange(256), rnd.choice(names)))
    if rnd.random() < 0.1:
        items.append("clear_actions")
    if rnd.random() < 0.15:
        inner = rnd.sample(["output:2", "group:1", "set_field:0x1->reg1", "CONTROLLER", "LOCAL", "pop_vlan"], rnd.randrange(1, 3))
        items.append("write_actions(%s)" % ",".join(inner))
    if rnd.random() < 0.1:
        items.append("write_metadata:0x%x%s" % (rnd.randrange(1 << 64), rnd.choice(["", "/0x%x" % rnd.randrange(1 << 64)])))
    if rnd.random() < 0.2 and table < 250:
        items.append("goto_table:%d" % rnd.randrange(table + 1, 254))
    return ",".join(items) if items else "drop"


def _random_ct(rnd, v4, ctx):
    args = []
    if rnd.random() < 0.6:
        args.append("commit")
    if rnd.random() < 0.3:
        args.append("table=%d" % rnd.randrange(255))
    if rnd.random() < 0.3:
        args.append("zone=%d" % rnd.randrange(65536))
    elif rnd.random() < 0.2:
        args.append("zone=" + rnd.choice(["NXM_NX_REG%d[0..15]" % rnd.randrange(16), "reg3[16..31]", "OXM_OF_METADATA[8..23]",
                                          "NXM_NX_CT_ZONE[]", "tun_id[0..15]"]))
    if rnd.random() < 0.6:
        if rnd.random() < 0.2 or "commit" not in args:
            args.append("nat")      # without commit, only a bare nat
        else:
            if v4:
                rng = "10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 256))
                if rnd.random() < 0.5:
                    rng += "-11.0.0.1"
                if rnd.random() < 0.5:
                    low = rnd.randrange(1, 60000)
                    rng += ":%d" % low + rnd.choice(["", "-%d" % rnd.randrange(low, 65536)])
            else:
                rng = "2001:db8::%x" % rnd.randrange(1, 65536)
                if rnd.random() < 0.5:
                    rng = "[%s]-[2001:db9::1]:%d" % (rng, rnd.randrange(1, 65536))
            flags = rnd.sample(["persistent", "hash", "random"], rnd.randrange(2))
            args.append("nat(%s=%s%s)" % (rnd.choice(["src", "dst"]), rng, "".join("," + f for f in flags)))
    if "commit" in args and rnd.random() < 0.3:
        args.append("exec(set_field:0x%x->ct_mark)" % rnd.randrange(1 << 32))
    if "commit" in args and rnd.random() < 0.2:
        args.append("force")
    if ctx in ("tcp", "tcp6") and rnd.random() < 0.3:
        args.append("alg=ftp")
    rnd.shuffle(args)
    args.sort(key=lambda a: a.startswith("exec"))   # nat before exec, as the canonical form prints it
    return "ct(%s)" % ",".join(args)


ORACLE_FLOWS = [_with_cookie(COOKIE_BASE + n, text) for n, text in enumerate(_load_flows())]
RANDOM_FLOWS = ["cookie=0x%x,%s" % (RANDOM_COOKIE_BASE + n, text)
                for n, text in enumerate(random_flows(RANDOM_SEED, RANDOM_COUNT))]
# Spellings Open vSwitch keeps and prints differently from this module, for the same flow.
SAME_FLOWS = ["cookie=0x%x,%s" % (SAME_COOKIE_BASE + n, text) for n, text in enumerate([
    "ip,in_port=1,actions=ct(commit,exec(set_field:1->ct_mark),nat(src=10.0.0.1))",
    "ipv6,in_port=2,actions=ct(commit,exec(set_field:2->ct_mark),nat(dst=[2001:db8::1]:80),table=3)",
    "ip,in_port=3,actions=ct(commit,exec(set_field:1->ct_mark,set_field:2->ct_mark),nat)",
])]


# --------------------------------------------------------------------------
# A throwaway Open vSwitch in its own network namespace
# --------------------------------------------------------------------------

class Oracle(object):
    """ovsdb-server + ovs-vswitchd with bridge b0, and the dump line of every oracle flow."""

    def __init__(self, path, netns):
        self.dir = path
        self.netns = netns
        self.db = "unix:" + os.path.join(path, "db.sock")
        self.mgmt = os.path.join(path, "b0.mgmt")
        self.lines = {}     # cookie -> dump line
        self.errors = {}    # cookie -> what ovs-ofctl said
        self.buckets = {}   # group id -> the bucket's actions as dump-groups prints them

    def run(self, *argv, **kw):
        check = kw.pop("check", True)
        env = dict(os.environ, OVS_RUNDIR=self.dir, OVS_LOGDIR=self.dir, OVS_DBDIR=self.dir)
        proc = subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=60, check=False, **kw)
        if check and proc.returncode:
            raise RuntimeError("%s failed: %s" % (" ".join(argv), proc.stderr.strip()))
        return proc

    def ofctl(self, *args, **kw):
        return self.run("ovs-ofctl", "-O", "OpenFlow13", *args, **kw)

    def vsctl(self, *args):
        return self.run("ovs-vsctl", "--db=" + self.db, "--timeout=20", *args)

    def start(self):
        d = self.dir
        self.run("ovsdb-tool", "create", os.path.join(d, "conf.db"), SCHEMA)
        self.run("ovsdb-server", os.path.join(d, "conf.db"), "--remote=punix:" + os.path.join(d, "db.sock"),
                 "--pidfile=" + os.path.join(d, "ovsdb-server.pid"), "--unixctl=" + os.path.join(d, "ovsdb-server.ctl"),
                 "--log-file=" + os.path.join(d, "ovsdb-server.log"), "--detach")
        self.vsctl("--no-wait", "init")
        self.run("ip", "netns", "add", self.netns)
        self.run("ip", "netns", "exec", self.netns, "env", "OVS_RUNDIR=" + d,
                 "ovs-vswitchd", self.db, "--pidfile=" + os.path.join(d, "ovs-vswitchd.pid"),
                 "--unixctl=" + os.path.join(d, "ovs-vswitchd.ctl"), "--log-file=" + os.path.join(d, "ovs-vswitchd.log"),
                 "--disable-system", "--detach")
        self.vsctl("add-br", "b0", "--", "set", "bridge", "b0", "datapath_type=netdev",
                   "protocols=OpenFlow13,OpenFlow14,OpenFlow15")
        deadline = time.monotonic() + 10
        while not os.path.exists(self.mgmt):
            if time.monotonic() > deadline:
                raise RuntimeError("%s did not appear" % self.mgmt)
            time.sleep(0.02)
        for n in (1, 2, 3):
            self.ofctl("add-group", self.mgmt, "group_id=%d,type=all,bucket=output:1" % n)
            self.ofctl("add-meter", self.mgmt, "meter=%d,kbps,band=type=drop,rate=1000" % n)

    def stop(self):
        if os.path.exists(os.path.join(self.dir, "db.sock")):
            try:
                self.vsctl("--if-exists", "del-br", "b0")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        stop(os.path.join(self.dir, "ovs-vswitchd.pid"))
        stop(os.path.join(self.dir, "ovsdb-server.pid"))
        if os.path.exists("/run/netns/" + self.netns):
            self.run("ip", "netns", "del", self.netns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def load(self, texts):
        """Add the flows in batches of distinct identities; remember each dump line by cookie."""
        batches = []
        for text in texts:
            try:
                key = flow_key(parse_flow(text))
            except FlowSyntaxError:
                key = ("unparsed", text)
            for batch in batches:
                if key not in batch:
                    batch[key] = text
                    break
            else:
                batches.append({key: text})
        for batch in batches:
            self._load_batch(list(batch.values()))

    def load_buckets(self, first_id, bucket_actions):
        """One group per action list (ids from first_id); remember each bucket's actions as printed."""
        for n, actions in enumerate(bucket_actions):
            self.ofctl("add-group", self.mgmt, "group_id=%d,type=all,bucket=actions=%s" % (first_id + n, actions))
        for line in self.ofctl("dump-groups", self.mgmt).stdout.splitlines():
            m = re.match(r"\s*group_id=(\d+),type=all,bucket=actions=(.*)$", line)
            if m:
                self.buckets[int(m.group(1))] = m.group(2)

    def _load_batch(self, texts):
        self.ofctl("del-flows", self.mgmt)
        path = os.path.join(self.dir, "flows.txt")
        with open(path, "w") as f:
            f.write("\n".join(texts) + "\n")
        if self.ofctl("add-flows", self.mgmt, path, check=False).returncode:
            # Find the culprits one by one; the others still get a line.
            for text in texts:
                proc = self.ofctl("add-flow", self.mgmt, text, check=False)
                if proc.returncode:
                    self.errors[_cookie_of(text)] = proc.stderr.strip()
        dump = self.ofctl("dump-flows", "--no-stats", self.mgmt).stdout
        for line in dump.splitlines():
            line = line.strip()
            m = re.match(r"cookie=(0x[0-9a-f]+), ", line)
            if m:
                self.lines[int(m.group(1), 16)] = line


@pytest.fixture(scope="module")
def oracle():
    missing = [t for t in TOOLS if not shutil.which(t)]
    if not os.path.exists(SCHEMA):
        missing.append(SCHEMA)
    if missing:
        pytest.skip("the Open vSwitch oracle needs %s" % ", ".join(missing))
    if os.geteuid() != 0:
        pytest.skip("the Open vSwitch oracle needs root (a network namespace for ovs-vswitchd)")
    path = tempfile.mkdtemp(prefix="opdbus-ft", dir="/tmp")   # unix socket paths are limited to 107 bytes
    ovs = Oracle(path, "opdbus-flowtest-%d" % os.getpid())
    try:
        ovs.start()
        ovs.load(ORACLE_FLOWS + RANDOM_FLOWS + SAME_FLOWS)
        ovs.load_buckets(BUCKET_GROUP_BASE, BUCKET_ACTIONS)
        yield ovs
    finally:
        ovs.stop()


# --------------------------------------------------------------------------
# The oracle tests
# --------------------------------------------------------------------------

def test_oracle_flows_are_distinct():
    texts = ORACLE_FLOWS + RANDOM_FLOWS + SAME_FLOWS
    assert len(ORACLE_FLOWS) >= 200
    assert len(set(texts)) == len(texts)
    cookies = [_cookie_of(t) for t in texts]
    assert len(set(cookies)) == len(cookies)


def _dump_line(oracle, text):
    cookie = _cookie_of(text)
    assert cookie not in oracle.errors, "Open vSwitch refused %r: %s" % (text, oracle.errors.get(cookie))
    line = oracle.lines.get(cookie)
    assert line is not None, "flow %r is missing from the switch's dump" % text
    return line


def _short_id(text):
    return re.sub(r"^cookie=0x[0-9a-f]+,", "", text)[:80]


@pytest.mark.parametrize("text", ORACLE_FLOWS + RANDOM_FLOWS, ids=_short_id)
def test_flow_as_ovs_reports_it(oracle, text):
    line = _dump_line(oracle, text)
    flow = parse_flow(text)
    # We print the flow as the switch reports it ...
    assert format_flow(flow) == line
    # ... and read the switch's report back as the same canonical flow.
    assert parse_flow(line) == flow
    assert flow_equal(parse_flow(line), flow)
    assert format_flow(parse_flow(line)) == line


# Group bucket action lists: Open vSwitch checks them against no match.
BUCKET_ACTIONS = [
    "output:1", "mod_vlan_vid:10,output:1", "set_field:1.2.3.4->ip_dst,output:2", "mod_dl_src:00:00:00:00:00:01,LOCAL",
    "push_vlan:0x88a8,set_field:4097->vlan_vid,output:3", "strip_vlan,output:4", "dec_ttl,output:5",
    "ct(commit,zone=3),output:6", "set_tunnel:5,set_field:0x1->reg0,resubmit(,2)", "controller(max_len=100)",
    "group:1", "set_field:1->tcp_src,output:7", "mod_nw_tos:8,mod_nw_ecn:1,mod_nw_ttl:4,output:8",
]


@pytest.mark.parametrize("index", range(len(BUCKET_ACTIONS)), ids=lambda n: BUCKET_ACTIONS[n])
def test_bucket_actions_as_ovs_reports_them(oracle, index):
    printed = oracle.buckets.get(BUCKET_GROUP_BASE + index)
    assert printed is not None, "group with bucket actions %r is missing" % BUCKET_ACTIONS[index]
    actions = parse_actions(BUCKET_ACTIONS[index])
    assert format_actions(actions) == printed
    assert parse_actions(printed) == actions


def test_parse_actions_with_a_match():
    assert parse_actions("drop") == [] and parse_actions("") == []
    assert parse_actions("set_field:1.2.3.4->ip_dst", match={"eth_type": 0x0800}) == [
        {"type": "set_field", "field": "ipv4_dst", "value": "1.2.3.4"}]
    assert parse_actions("mod_vlan_vid:5", match={"vlan_vid": 0x1001}) == [
        {"type": "set_field", "field": "vlan_vid", "value": 0x1005}]
    with pytest.raises(FlowSyntaxError, match="set_field ipv4_dst needs an IPv4 match"):
        parse_actions("set_field:1.2.3.4->ip_dst", match={})
    with pytest.raises(FlowSyntaxError, match="goto_table is not allowed inside an action list"):
        parse_actions("output:1,goto_table:2")
    with pytest.raises(FlowSyntaxError, match="mod_tp_dst needs a TCP, UDP or SCTP match"):
        parse_actions("mod_tp_dst:80")


@pytest.mark.parametrize("text", SAME_FLOWS, ids=_short_id)
def test_flow_ovs_spells_differently(oracle, text):
    line = _dump_line(oracle, text)
    assert parse_flow(line) == parse_flow(text)
    assert format_flow(parse_flow(line)) == format_flow(parse_flow(text))


def test_ipv6_text_as_inet_ntop_writes_it():
    rnd = random.Random(RANDOM_SEED)
    for _n in range(20000):
        number = 0
        for _w in range(8):
            number = (number << 16) | rnd.choice([0, 0, 0, 1, 0xffff, rnd.randrange(65536)])
        assert inet6_ntop(number) == socket.inet_ntop(socket.AF_INET6, number.to_bytes(16, "big"))


# --------------------------------------------------------------------------
# The canonical form
# --------------------------------------------------------------------------

def test_documented_example():
    flow = parse_flow("table=0,priority=100,cookie=0x10,in_port=1,tcp,nw_dst=10.0.0.0/8,tp_dst=443,"
                      "actions=ct(commit,zone=5,table=10,nat(src=192.0.2.1-192.0.2.10:1000-2000)),output:2")
    assert flow == {
        "table": 0, "priority": 100, "cookie": 0x10, "idle_timeout": 0, "hard_timeout": 0, "flags": [],
        "match": {"in_port": 1, "eth_type": 0x0800, "ip_proto": 6,
                  "ipv4_dst": {"value": "10.0.0.0", "mask": "255.0.0.0"}, "tcp_dst": 443},
        "instructions": [{"type": "apply_actions", "actions": [
            {"type": "ct", "commit": True, "zone": 5, "table": 10, "alg": None,
             "nat": {"type": "src", "ip_min": "192.0.2.1", "ip_max": "192.0.2.10", "port_min": 1000,
                     "port_max": 2000, "persistent": False, "random": False, "hash": False}},
            {"type": "output", "port": 2}]}],
    }


@pytest.mark.parametrize("text, match", [
    ("dl_vlan=10", {"vlan_vid": 0x100a}),
    ("dl_vlan=0xffff", {"vlan_vid": 0}),
    ("vlan_tci=0", {"vlan_vid": 0}),
    ("dl_vlan_pcp=3", {"vlan_vid": {"value": 0x1000, "mask": 0x1000}, "vlan_pcp": 3}),
    ("vlan_tci=0x1000/0x1000", {"vlan_vid": {"value": 0x1000, "mask": 0x1000}}),
    ("vlan_tci=0x700a", {"vlan_vid": 0x100a, "vlan_pcp": 3}),
    ("ct_state=+trk+est-rel", {"ct_state": {"value": 0x22, "mask": 0x26}}),
    ("ct_state=0x22", {"ct_state": {"value": 0x22, "mask": 0xff}}),
    ("ct_state=est|trk", {"ct_state": {"value": 0x22, "mask": 0xff}}),
    ("in_port=LOCAL", {"in_port": OFPP_LOCAL}),
    ("ip,nw_tos=40", {"eth_type": 0x0800, "ip_dscp": 10}),
    ("arp,nw_src=10.0.0.1,nw_proto=1", {"eth_type": 0x0806, "arp_spa": "10.0.0.1", "arp_op": 1}),
    ("udp6,tp_src=53", {"eth_type": 0x86dd, "ip_proto": 17, "udp_src": 53}),
    ("icmp6,icmp_type=135", {"eth_type": 0x86dd, "ip_proto": 58, "icmpv6_type": 135}),
    ("reg3=0x5/0x4", {"reg3": {"value": 4, "mask": 4}}),
    ("ip,nw_dst=10.1.2.3/8", {"eth_type": 0x0800, "ipv4_dst": {"value": "10.0.0.0", "mask": "255.0.0.0"}}),
    ("ip,nw_dst=10.1.2.3/0", {"eth_type": 0x0800}),
    ("dl_src=AA:BB:CC:DD:EE:FF/ff:ff:ff:ff:ff:ff", {"eth_src": "aa:bb:cc:dd:ee:ff"}),
    ("ipv6,ipv6_src=2001:DB8::1/64", {"eth_type": 0x86dd, "ipv6_src": {"value": "2001:db8::", "mask": "ffff:ffff:ffff:ffff::"}}),
    ("tun_id=5,metadata=0x10/0xf0", {"tunnel_id": 5, "metadata": {"value": 0x10, "mask": 0xf0}}),
])
def test_canonical_match(text, match):
    assert parse_flow(text + ",actions=drop")["match"] == match


@pytest.mark.parametrize("text, instructions", [
    ("drop", []),
    ("", []),
    ("write_actions()", []),
    ("controller", [{"type": "apply_actions", "actions": [{"type": "output", "port": OFPP_CONTROLLER,
                                                           "max_len": 65535}]}]),
    ("controller(max_len=128)", [{"type": "apply_actions", "actions": [{"type": "output", "port": OFPP_CONTROLLER,
                                                                        "max_len": 128}]}]),
    ("meter:1,goto_table:2", [{"type": "meter", "meter_id": 1}, {"type": "goto_table", "table": 2}]),
    ("write_metadata:0x5", [{"type": "write_metadata", "metadata": 5, "mask": 0xffffffffffffffff}]),
    ("resubmit(,10)", [{"type": "apply_actions", "actions": [{"type": "resubmit", "port": None, "table": 10}]}]),
    ("resubmit(in_port,3)", [{"type": "apply_actions", "actions": [{"type": "resubmit", "port": None, "table": 3}]}]),
    ("mod_vlan_vid:10", [{"type": "apply_actions", "actions": [
        {"type": "push_vlan", "ethertype": 0x8100}, {"type": "set_field", "field": "vlan_vid", "value": 0x100a}]}]),
    ("strip_vlan", None),
])
def test_canonical_instructions(text, instructions):
    if instructions is None:
        with pytest.raises(FlowSyntaxError, match="needs a VLAN tag"):
            parse_flow("actions=" + text)
    else:
        assert parse_flow("actions=" + text)["instructions"] == instructions


def test_default_table_and_priority():
    flow = parse_flow("ip,actions=drop", default_table=5, default_priority=7)
    assert (flow["table"], flow["priority"]) == (5, 7)
    assert parse_flow("table=1,priority=2,ip,actions=drop", default_table=5, default_priority=7)["table"] == 1


def test_format_match_and_actions():
    flow = parse_flow("priority=5,tcp,tp_dst=22,actions=output:1,goto_table:2")
    assert format_match(flow["match"], flow["priority"]) == "priority=5,tcp,tp_dst=22"
    assert format_actions(flow["instructions"]) == "output:1,goto_table:2"
    assert format_actions([]) == "drop"


# --------------------------------------------------------------------------
# Identity and equality
# --------------------------------------------------------------------------

def test_flow_key_is_identity():
    a = parse_flow("cookie=0x1,priority=5,tcp,nw_dst=10.0.0.0/8,tp_dst=80,actions=output:1")
    b = parse_flow("tp_dst=80,nw_dst=10.9.9.9/8,priority=5,dl_type=0x0800,nw_proto=6,cookie=0x2,actions=drop")
    assert flow_key(a) == flow_key(b)
    assert hash(flow_key(a)) == hash(flow_key(b))
    assert not flow_equal(a, b)
    assert flow_key(a) != flow_key(parse_flow("priority=6,tcp,nw_dst=10.0.0.0/8,tp_dst=80,actions=output:1"))
    assert flow_key(a) != flow_key(parse_flow("table=1,priority=5,tcp,nw_dst=10.0.0.0/8,tp_dst=80,actions=output:1"))
    assert flow_key(a) != flow_key(parse_flow("priority=5,tcp,nw_dst=10.0.0.0/16,tp_dst=80,actions=output:1"))
    assert len({flow_key(a), flow_key(b)}) == 1


@pytest.mark.parametrize("change", [
    "cookie=0x2", "idle_timeout=5", "hard_timeout=5", "send_flow_rem", "actions=output:2",
])
def test_flow_equal_sees_every_part(change):
    base = "cookie=0x1,priority=5,ip,actions=output:1"
    other = {"cookie": "cookie=0x1", "actions": "actions=output:1"}
    key = change.split("=")[0]
    text = base.replace(other[key], change) if key in other else change + "," + base
    assert flow_equal(parse_flow(base), parse_flow(base))
    assert not flow_equal(parse_flow(base), parse_flow(text))


def test_flow_equal_ignores_spelling():
    a = parse_flow("table=1,priority=9,tcp,tp_dst=443,actions=mod_nw_tos:8,mod_dl_src:00:00:00:00:00:01,goto_table:2")
    b = parse_flow("priority=9,table=1,dl_type=0x800,ip_proto=6,tcp_dst=443,actions=set_field:2->ip_dscp,"
                   "set_field:00:00:00:00:00:01->eth_src,goto_table:2")
    assert flow_equal(a, b)


# --------------------------------------------------------------------------
# The structured syntax
# --------------------------------------------------------------------------

DICT_CASES = [
    ({"priority": 100, "cookie": 16, "match": {"in_port": 1, "eth_type": 0x0800, "ip_proto": 6,
                                               "ipv4_dst": "10.0.0.0/8", "tcp_dst": 443},
      "actions": "ct(commit,zone=5,table=10,nat(src=192.0.2.1-192.0.2.10:1000-2000)),output:2"},
     "table=0,priority=100,cookie=0x10,in_port=1,tcp,nw_dst=10.0.0.0/8,tp_dst=443,"
     "actions=ct(commit,zone=5,table=10,nat(src=192.0.2.1-192.0.2.10:1000-2000)),output:2"),
    ({"match": {"dl_type": "0x0800", "nw_proto": "6", "nw_dst": "10.1.2.3/8", "tp_dst": "443"},
      "actions": [{"type": "output", "port": 2}]},
     "tcp,nw_dst=10.0.0.0/8,tp_dst=443,actions=output:2"),
    ({"match": "tcp,nw_dst=10.0.0.0/8,tp_dst=443", "actions": ["output:2"]},
     "tcp,nw_dst=10.0.0.0/8,tp_dst=443,actions=output:2"),
    ({"match": {"eth_type": 0x0806, "nw_src": "10.0.0.1", "nw_proto": 1}, "actions": "NORMAL"},
     "arp,arp_spa=10.0.0.1,arp_op=1,actions=NORMAL"),
    ({"match": {"vlan_vid": 0x100a}, "actions": [{"type": "pop_vlan"}, {"type": "output", "port": "LOCAL"}]},
     "dl_vlan=10,actions=strip_vlan,LOCAL"),
    ({"match": {"vlan_vid": "tagged", "vlan_pcp": 3}, "actions": "drop"}, "dl_vlan_pcp=3,actions=drop"),
    ({"match": {"vlan_vid": "untagged"}, "actions": []}, "dl_vlan=0xffff,actions=drop"),
    ({"match": {"dl_vlan": 10, "dl_vlan_pcp": 7}, "actions": "drop"}, "vlan_tci=0xf00a,actions=drop"),
    ({"match": {"ct_state": "+trk+est", "ct_zone": 5, "ct_mark": {"value": 1, "mask": "0x1"}},
      "actions": "drop"}, "ct_state=+trk+est,ct_zone=5,ct_mark=0x1/0x1,actions=drop"),
    ({"match": {"ct_state": 0x22}, "actions": "drop"}, "ct_state=est|trk,actions=drop"),
    ({"match": {"ct_state": {"value": 0x20, "mask": 0x21}}, "actions": "drop"}, "ct_state=-new+trk,actions=drop"),
    ({"match": {"reg0": "0x5/0xff", "reg1": {"value": 5, "mask": 0xff}, "tun_id": 9, "metadata": "0x1/0x1"},
      "actions": "drop"}, "reg0=0x5/0xff,reg1=0x5/0xff,tun_id=0x9,metadata=0x1/0x1,actions=drop"),
    ({"match": {"eth_type": 0x86dd, "ipv6_src": "2001:db8::/32", "ip_proto": 58, "icmp_type": 135},
      "actions": "drop"}, "icmp6,ipv6_src=2001:db8::/32,icmp_type=135,actions=drop"),
    ({"match": {"eth_type": 0x0800, "nw_tos": 40, "ip_ecn": 1}, "actions": "drop"}, "ip,ip_dscp=10,nw_ecn=1,actions=drop"),
    ({"table": "1", "priority": "0x10", "idle_timeout": 5, "hard_timeout": "6", "flags": ["send_flow_rem", "check_overlap"],
      "instructions": [{"type": "goto_table", "table": 2}, {"type": "apply_actions", "actions": [
          {"type": "output", "port": "controller", "max_len": 128}]}]},
     "table=1,priority=16,idle_timeout=5,hard_timeout=6,check_overlap,send_flow_rem,actions=controller(max_len=128),"
     "goto_table:2"),
    ({"flags": "send_flow_rem reset_counts",
      "actions": [{"type": "meter", "meter_id": 1}, {"type": "output", "port": 1},
                  {"type": "write_metadata", "metadata": 5, "mask": "0xff"}]},
     "send_flow_rem,reset_counts,actions=meter:1,output:1,write_metadata:0x5/0xff"),
    ({"match": {"eth_type": 0x0800}, "actions": [
        {"type": "ct", "commit": True, "zone": {"field": "reg0", "ofs": 0, "nbits": 16},
         "nat": {"type": "dst", "ip_min": "10.0.0.1", "port_min": 80}, "exec": ["set_field:1->ct_mark"]},
        {"type": "set_field", "field": "ip_dst", "value": "1.2.3.4"}, {"type": "dec_nw_ttl"},
        {"type": "set_nw_ttl", "ttl": 9}, {"type": "resubmit", "table": 3}, {"type": "ct_clear"},
        {"type": "group", "group_id": 1}, {"type": "push_vlan"}]},
     "ip,actions=ct(commit,zone=NXM_NX_REG0[0..15],nat(dst=10.0.0.1:80),exec(set_field:0x1->ct_mark)),"
     "set_field:1.2.3.4->ip_dst,dec_ttl,mod_nw_ttl:9,resubmit(,3),ct_clear,group:1,push_vlan:0x8100"),
    ({"instructions": [{"type": "write_actions", "actions": ["output:1", {"type": "group", "group_id": 2}]},
                       {"type": "clear_actions"}, {"type": "meter", "meter_id": 3}]},
     "actions=meter:3,clear_actions,write_actions(output:1,group:2)"),
    ({"instructions": [{"type": "apply_actions", "actions": []}]}, "actions=drop"),
]


@pytest.mark.parametrize("data, text", DICT_CASES, ids=[t for d, t in DICT_CASES])
def test_dict_syntax_is_equivalent(data, text):
    assert flow_from_dict(data) == parse_flow(text)


def test_dict_does_not_change_its_input():
    data = {"match": {"ct_state": {"value": 0x20, "mask": 0x21}}, "actions": [{"type": "output", "port": "LOCAL"}]}
    copy = {"match": {"ct_state": {"value": 0x20, "mask": 0x21}}, "actions": [{"type": "output", "port": "LOCAL"}]}
    flow_from_dict(data)
    assert data == copy


def test_canonical_flow_is_a_fixed_point():
    for text in ORACLE_FLOWS + RANDOM_FLOWS:
        flow = parse_flow(text)
        data = dict((k, v) for k, v in flow.items() if k != "instructions")
        data["instructions"] = flow["instructions"]
        assert flow_from_dict(data) == flow, text


# --------------------------------------------------------------------------
# Refused input
# --------------------------------------------------------------------------

BAD_FLOWS = [
    ("in_port=1", "missing actions"),
    ("in_port=1,actions:drop", "missing actions"),
    ("in_port = 12,actions=drop", "without spaces around '='"),
    ("in_port=12 actions drop", "missing actions"),
    ("foo=1,actions=drop", "unknown match field or keyword 'foo'"),
    ("tp_dst=80,actions=drop", "needs a transport protocol"),
    ("ip,tp_dst=80,actions=drop", "needs a transport protocol"),
    ("icmp,tp_dst=80,actions=drop", "use icmp_type/icmp_code"),
    ("nw_src=1.2.3.4,actions=drop", "needs an IPv4 or ARP match"),
    ("icmp_type=3,actions=drop", "needs an ICMP match"),
    ("ipv6_src=::1,actions=drop", "ipv6_src needs an IPv6 match"),
    ("nw_proto=6,actions=drop", "ip_proto needs an IPv4 or IPv6 match"),
    ("arp_op=1,actions=drop", "arp_op needs an ARP match"),
    ("ip,nw_tos=4,ipv6,actions=drop", "conflicts with"),
    ("tcp,udp,actions=drop", "conflicts with"),
    ("in_port=1,in_port=2,actions=drop", "in_port is given twice"),
    ("dl_vlan=1,vlan_tci=0x1002,actions=drop", "vlan_vid is given twice"),
    ("table=255,actions=drop", "table 255 is out of range (0..254)"),
    ("priority=65536,actions=drop", "priority 65536 is out of range"),
    ("idle_timeout=65536,actions=drop", "idle_timeout 65536 is out of range"),
    ("hard_timeout=-1,actions=drop", "hard_timeout must be a number"),
    ("cookie=0x1/0xff,actions=drop", "a cookie mask is for matching flows"),
    ("ip,nw_dst=10.0.0.0/33,actions=drop", "prefix length 33 is out of range (0..32)"),
    ("ip,nw_dst=10.0.0.256,actions=drop", "must be an IPv4 address"),
    ("ipv6,ipv6_dst=fe80:::1,actions=drop", "must be an IPv6 address"),
    ("dl_src=aa:bb:cc:dd:ee,actions=drop", "must be a MAC address"),
    ("dl_src=aa:bb:cc:dd:ee:fg,actions=drop", "must be a MAC address"),
    ("in_port=70000,actions=drop", "in_port 70000 is out of range"),
    ("in_port=0x1/0xff,actions=drop", "in_port cannot be masked"),
    ("eth_type=0x800/0xff00,actions=drop", "eth_type cannot be masked"),
    ("dl_vlan=4096,actions=drop", "dl_vlan 4096 is out of range"),
    ("vlan_vid=10,actions=drop", "can never match: write dl_vlan=10"),
    ("vlan_tci=0x6000/0xe000,actions=drop", "without the CFI bit"),
    ("vlan_tci=0x1000/0x3000,actions=drop", "masks part of the PCP bits"),
    ("dl_vlan=0xffff,dl_vlan_pcp=1,actions=drop", "vlan_pcp needs a tagged vlan_vid"),
    ("ip,nw_tos=5,actions=drop", "has ECN bits set"),
    ("ip,ip_dscp=64,actions=drop", "ip_dscp 64 is out of range (0..63)"),
    ("ip,nw_ecn=4,actions=drop", "ip_ecn 4 is out of range (0..3)"),
    ("tcp,tp_dst=65536,actions=drop", "tcp_dst 65536 is out of range"),
    ("arp,arp_op=256,actions=drop", "arp_op 256 is out of range (0..255)"),
    ("ct_state=+trk+foo,actions=drop", "unknown ct_state flag 'foo'"),
    ("ct_state=+trk+trk,actions=drop", "ct_state flag 'trk' given twice"),
    ("ct_state=0x100,actions=drop", "ct_state has undefined bits"),
    ("ct_zone=65536,actions=drop", "ct_zone 65536 is out of range"),
    ("ct_zone=1/0xff,actions=drop", "ct_zone cannot be masked"),
    ("reg16=1,actions=drop", "unknown match field or keyword 'reg16'"),
    ("reg0=0x100000000,actions=drop", "reg0 4294967296 is out of range"),
    ("reg0=010,actions=drop", "is ambiguous: ovs-ofctl reads most numbers with a leading 0 as octal"),
    ("ip,nw_ttl=5,actions=drop", "nw_ttl is not supported"),
    ("tcp,tcp_flags=+syn,actions=drop", "tcp_flags is not supported"),
    ("pkt_mark=1,actions=drop", "pkt_mark is not supported"),
    ("reg0[0..3]=1,actions=drop", "is not supported"),
    ("importance=5,actions=drop", "importance (OpenFlow 1.4+) is not supported"),
    ("tcp=1,actions=drop", "tcp is a protocol shorthand and takes no value"),
    ("send_flow_rem=1,actions=drop", "send_flow_rem is a flag and takes no value"),
    ("in_port=,actions=drop", "match field in_port needs a value"),
    ("actions=foo", "unknown action 'foo'"),
    ("actions=learn(table=1)", "action learn is not supported"),
    ("actions=note:01.02", "action note is not supported"),
    ("actions=load:1->NXM_NX_REG0[]", "action load is not supported"),
    ("actions=enqueue:1:2", "action enqueue is not supported"),
    ("actions=output:NXM_NX_REG0[]", "output to a field is not supported"),
    ("actions=output(port=1,max_len=100)", "output with max_len (a Nicira truncate) is not supported"),
    ("actions=controller(reason=no_match)", "controller option 'reason' is not supported"),
    ("actions=dec_ttl(1,2)", "dec_ttl with controller ids is not supported"),
    ("actions=output:70000", "output port 70000 is out of range"),
    ("actions=output:ANY", "cannot output to ANY"),
    ("actions=drop,output:1", '"drop" must not be accompanied'),
    ("actions=goto_table:1,output:2", "invalid instruction ordering: apply_actions must appear before goto_table"),
    ("actions=output:1,meter:1", "invalid instruction ordering: meter must appear before apply_actions"),
    ("actions=meter:1,meter:2", "duplicate meter instruction"),
    ("actions=meter:0", "meter 0 is out of range"),
    ("actions=write_actions(meter:1)", "meter is not allowed inside write_actions"),
    ("actions=apply_actions(output:1)", "apply_actions is the default instruction"),
    ("table=3,actions=goto_table:3", "goto_table:3 must go to a later table than 3"),
    ("actions=goto_table:255", "goto_table 255 is out of range"),
    ("actions=group:4294967295", "group 4294967295 is out of range"),
    ("actions=set_field:1.2.3.4->ip_dst", "set_field ipv4_dst needs an IPv4 match"),
    ("ip,actions=set_field:1->tcp_src", "set_field tcp_src needs a TCP match"),
    ("actions=set_field:4106->vlan_vid", "set_field vlan_vid needs a VLAN tag"),
    ("dl_vlan=1,actions=set_field:10->vlan_vid", "set_field vlan_vid needs OFPVID_PRESENT"),
    ("ip,actions=set_field:0x5/0xff->reg0", "a masked set_field is not supported"),
    ("actions=set_field:1->eth_type", "eth_type is read-only"),
    ("ip,actions=set_field:1->nw_proto", "ip_proto is read-only"),
    ("ip,actions=set_field:1->ct_mark", "cannot set ct_mark outside of a ct action"),
    ("ip,actions=set_field:8->nw_tos", "use mod_nw_tos:TOS or set_field:DSCP->ip_dscp"),
    ("actions=set_field:1->foo", "unknown set_field field 'foo'"),
    ("actions=set_field:1", "set_field is written set_field:VALUE->FIELD"),
    ("actions=mod_nw_src:1.2.3.4", "set_field ipv4_src needs an IPv4 match"),
    ("ip,actions=mod_nw_tos:5", "mod_nw_tos 5 is not a valid TOS"),
    ("ip,actions=mod_tp_dst:80", "mod_tp_dst needs a TCP, UDP or SCTP match"),
    ("actions=mod_vlan_vid:4096", "mod_vlan_vid 4096 is out of range"),
    ("actions=set_vlan_vid:10", "set_field vlan_vid needs a VLAN tag"),
    ("actions=push_vlan:0x0800", "push_vlan ethertype must be 0x8100 or 0x88a8"),
    ("actions=push_vlan:0x8100,push_vlan:0x8100,push_vlan:0x8100", "at most 2 VLAN headers"),
    ("actions=strip_vlan", "pop_vlan (strip_vlan) needs a VLAN tag"),
    ("actions=dec_ttl", "dec_ttl needs an IPv4 or IPv6 match"),
    ("arp,actions=mod_nw_ttl:3", "mod_nw_ttl needs an IPv4 or IPv6 match"),
    ("actions=resubmit", "resubmit needs a port or a table"),
    ("actions=resubmit(,1,ct)", "resubmit(...,ct) is not supported"),
    ("actions=resubmit(,255)", "resubmit table 255 is out of range"),
    ("actions=ct(commit)", "ct needs an IPv4 or IPv6 match"),
    ("ip,actions=ct(force)", 'ct "force" needs "commit"'),
    ("ip,actions=ct(commit,alg=ftp)", "ct alg=ftp needs a TCP match"),
    ("tcp,actions=ct(commit,alg=tftp)", "ct alg=tftp needs a UDP match"),
    ("ip,actions=ct(commit,alg=http)", "ct alg must be ftp or tftp"),
    ("ip,actions=ct(zone=70000)", "ct zone 70000 is out of range"),
    ("ip,actions=ct(zone=NXM_NX_REG0[])", "a field slice must have 16 bits, not 32"),
    ("ip,actions=ct(zone=NXM_NX_REG0[0..7])", "a field slice must have 16 bits, not 8"),
    ("ip,actions=ct(zone=NXM_OF_IN_PORT[])", "ct zone must be a number (0..65535) or a 16-bit field slice"),
    ("ip,actions=ct(table=255)", "ct table 255 is out of range"),
    ("ip,actions=ct(commit,bogus)", "unknown ct argument 'bogus'"),
    ("ip,ct_state=+inv+trk,actions=ct(commit)", "cannot commit a connection the match says is invalid"),
    ("ip,actions=ct(nat(persistent))", "nat flags (persistent, random, hash) need"),
    ("ip,actions=ct(nat(src=10.0.0.1))", 'ct with nat(src...) needs "commit"'),
    ("ip,actions=ct(table=1,nat(dst))", 'ct with nat(dst...) needs "commit"'),
    ("ip,actions=ct(exec(set_field:1->ct_mark))", 'ct exec(...) needs "commit"'),
    ("ip,actions=ct(commit,nat(src=1.2.3.4,hash,random))", 'nat takes "hash" or "random", not both'),
    ("ip,actions=ct(commit,nat(src=10.0.0.2-10.0.0.1))", "ends before it starts"),
    ("ip,actions=ct(commit,nat(src=10.0.0.1:90-80))", "nat port range 90-80 ends before it starts"),
    ("ip,actions=ct(commit,nat(src=10.0.0.1:0))", "nat port 0 is out of range"),
    ("ip,actions=ct(commit,nat(src=0.0.0.0))", "is the unspecified address"),
    ("ip,actions=ct(commit,nat(src=1.2.3.4,dst=1.2.3.5))", 'nat takes only one of "src" or "dst"'),
    ("ip,actions=ct(commit,nat(src=fe80::1))", "ct nat with IPv6 addresses needs an IPv6 match"),
    ("ip,actions=ct(commit,nat(src=fe80::1:80-90))", "an IPv6 nat range with ports needs the addresses in [brackets]"),
    ("ip,actions=ct(commit,nat(src=1.2.3.4:80:90))", "invalid nat range"),
    ("ip,actions=ct(commit,nat(src=1.2.3.4,foo))", "unknown nat argument 'foo'"),
    ("ip,actions=ct(commit,exec(output:1))", "only set_field to ct_mark is supported inside ct exec"),
    ("ip,actions=ct(commit,exec(set_field:0x1/0x3->ct_mark))", "a masked set_field is not supported"),
    ("ip,actions=nat(src=1.2.3.4)", 'nat is only allowed inside a "ct" action'),
    ("actions=ct(commit", "unbalanced parentheses"),
    ("actions=write_actions", "write_actions is written write_actions(ACTIONS)"),
    ("actions=clear_actions:1", "clear_actions takes no argument"),
    ("actions=ct_clear(1)", "ct_clear takes no argument"),
]


@pytest.mark.parametrize("text, message", BAD_FLOWS, ids=[t for t, m in BAD_FLOWS])
def test_bad_flow_is_refused(text, message):
    with pytest.raises(FlowSyntaxError) as info:
        parse_flow(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
    # The message names the flow as written.
    assert repr(text) in str(info.value)


def test_error_names_the_offending_token():
    with pytest.raises(FlowSyntaxError) as info:
        parse_flow("priority=5,ip,tp_dst=80,actions=output:1")
    assert info.value.token == "tp_dst=80"
    assert info.value.flow == "'priority=5,ip,tp_dst=80,actions=output:1'"
    assert str(info.value).startswith("tp_dst=80: tp_dst needs a transport protocol")


BAD_DICTS = [
    ("not a dict", "a flow must be a dict"),
    ({"match": {"in_port": 1}}, "a flow needs actions or instructions"),
    ({"actions": "drop", "instructions": []}, "give actions or instructions, not both"),
    ({"actions": "drop", "prio": 1}, "unknown flow keys: prio"),
    ({"actions": "drop", "priority": "high"}, "priority must be a number"),
    ({"actions": "drop", "priority": True}, "priority must be a number"),
    ({"actions": "drop", "table": 300}, "table 300 is out of range"),
    ({"actions": "drop", "flags": ["send_flow_removed"]}, "unknown flow flag 'send_flow_removed'"),
    ({"actions": "drop", "match": {"tcp": True}}, "tcp is an ovs-ofctl shorthand"),
    ({"actions": "drop", "match": {"tcp_dst": 80}}, "tcp_dst needs a TCP match"),
    ({"actions": "drop", "match": {"eth_type": 0x800, "tcp_dst": 80}}, "tcp_dst needs a TCP match"),
    ({"actions": "drop", "match": {"bogus": 1}}, "unknown match field 'bogus'"),
    ({"actions": "drop", "match": {"nw_ttl": 1}}, "nw_ttl is not supported"),
    ({"actions": "drop", "match": {"in_port": None}}, "match field in_port needs a value"),
    ({"actions": "drop", "match": {"eth_src": {"value": "aa:bb:cc:dd:ee", "mask": "ff:ff:ff:ff:ff:ff"}}},
     "eth_src must be a MAC address"),
    ({"actions": "drop", "match": {"eth_src": {"value": "aa:bb:cc:dd:ee:ff", "mask": "ff:ff:ff:ff:ff:ff:00"}}},
     "eth_src mask must be a MAC address"),
    ({"actions": "drop", "match": {"reg0": {"mask": 1}}}, "a masked value is {value: ..., mask: ...}"),
    ({"actions": "drop", "match": "in_port=1,priority=3"}, "priority belongs in the flow, not in its match"),
    ({"actions": "drop", "match": ["in_port=1"]}, "match must be a dict or an ovs-ofctl match string"),
    ({"actions": 5}, "actions must be an ovs-ofctl action string or a list"),
    ({"actions": [{"type": "bogus"}]}, "unknown action type 'bogus'"),
    ({"actions": [{"port": 1}]}, "an action is a dict with a type"),
    ({"actions": [{"type": "output"}]}, "action output needs port"),
    ({"actions": [{"type": "output", "port": 1, "max_len": 5}]}, "max_len applies only to output to CONTROLLER"),
    ({"actions": [{"type": "output", "port": 1, "queue": 5}]}, "action output does not take queue"),
    ({"actions": [{"type": "set_field", "field": "ct_mark", "value": 1}]}, "cannot set ct_mark outside of a ct action"),
    ({"actions": [{"type": "output", "port": 1}, {"type": "meter", "meter_id": 1}]},
     "invalid instruction ordering: meter must appear before apply_actions"),
    ({"instructions": "goto_table:1"}, "instructions must be a list"),
    ({"instructions": [{"type": "goto_table", "table": 1}, {"type": "goto_table", "table": 2}]},
     "duplicate goto_table instruction"),
    ({"instructions": [{"type": "apply_actions", "actions": [{"type": "goto_table", "table": 1}]}]},
     "goto_table is an instruction, not allowed inside apply_actions"),
    ({"instructions": [{"type": "apply_actions", "actions": [{"type": "meter", "meter_id": 1}]}]},
     "meter is an instruction, not allowed inside apply_actions"),
    ({"instructions": [{"type": "jump"}]}, "an instruction is a dict with a type among"),
    ({"table": 2, "instructions": [{"type": "goto_table", "table": 1}]}, "goto_table:1 must go to a later table than 2"),
    ({"match": {"eth_type": 0x800}, "actions": [{"type": "ct", "zone": {"field": "in_port", "ofs": 0, "nbits": 16}}]},
     "ct zone field must be one of"),
    ({"match": {"eth_type": 0x800}, "actions": [{"type": "ct", "nat": {"type": "src", "ip_min": "x"}}]},
     "is not made of IP addresses"),
    ({"match": {"eth_type": 0x800}, "actions": [{"type": "ct", "alg": 80}]}, "ct alg must be ftp (21) or tftp (69)"),
    ({"match": {"eth_type": 0x800}, "actions": [{"type": "ct", "exec": [{"type": "output", "port": 1}]}]},
     "only set_field to ct_mark is supported inside ct exec"),
    ({"actions": [{"type": "resubmit"}]}, "resubmit needs a port or a table"),
]


@pytest.mark.parametrize("data, message", BAD_DICTS, ids=[m for d, m in BAD_DICTS])
def test_bad_dict_is_refused(data, message):
    with pytest.raises(FlowSyntaxError) as info:
        flow_from_dict(data)
    assert message in str(info.value)
