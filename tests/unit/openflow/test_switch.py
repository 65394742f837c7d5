"""Real-switch tests: the codec and connection against ovs-vswitchd 3.x.

They start their own ovs-vswitchd (userspace datapath, private run dir and
network namespace; see conftest.py) and use ``ovs-ofctl`` as the independent
oracle. Normalisations Open vSwitch applies, and that codec.normalize_flow /
normalize_meter reproduce:

* instructions come back in the order meter, apply_actions, clear_actions,
  write_actions, write_metadata, goto_table;
* an empty apply_actions or write_actions instruction disappears;
* a match field with an all-zero mask disappears;
* ct_state's mask is cut to the 8 defined bits (an exact ct_state comes back
  with mask 0xff);
* a meter band's burst_size of 0 comes back as the band's rate (netdev datapath);
* in OF1.5 registers come back as OXM_OF_PKT_REG (xreg) pairs, and a meter
  instruction as a leading meter action (the codec folds both back).
Open vSwitch does not normalise value bits outside a mask: it refuses the flow
(OFPBMC_BAD_WILDCARDS), and the encoder refuses it first.
"""

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.openflow import codec
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.connection import (
    OpenFlowConnection, OpenFlowConnectionError, OpenFlowSwitchError, OpenFlowVersionError, mgmt_socket,
)

from openflow_cases import FLOWS, GROUPS, METERS

pytestmark = pytest.mark.switch

VERSIONS = [codec.OFP13_VERSION, codec.OFP14_VERSION, codec.OFP15_VERSION]
CLEAR = [{"type": "flow_mod", "command": "delete", "flow": {"table": codec.OFPTT_ALL}}]


def dump_flows(ovs, bridge="b0"):
    out = ovs.ofctl("-O", "OpenFlow13", "--no-stats", "--no-names", "dump-flows", ovs.mgmt(bridge))
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def reset(conn):
    conn.bundle(CLEAR)
    conn.send_batch([{"type": "group_mod", "command": "delete", "group": {"group_id": codec.OFPG_ALL}},
                     {"type": "meter_mod", "command": "delete", "meter": {"meter_id": codec.OFPM_ALL}}])


@pytest.mark.parametrize("version", VERSIONS)
def test_negotiates_each_version(ovs, version):
    with ovs.connect(versions=[version]) as conn:
        assert conn.version == version
        assert conn.peer_versions == VERSIONS
        assert conn.features()["datapath_id"] > 0
        assert conn.echo(b"ping")["data"] == b"ping"
        conn.barrier()


def test_picks_highest_common_version(ovs):
    with ovs.connect() as conn:
        assert conn.version == codec.OFP15_VERSION


def test_mgmt_socket_finds_the_bridge(ovs, monkeypatch):
    monkeypatch.setenv("OVS_RUNDIR", ovs.dir)
    with OpenFlowConnection(mgmt_socket("b0"), timeout=5) as conn:
        assert conn.version in VERSIONS


def test_missing_bridge_is_a_connection_error(ovs):
    with pytest.raises(OpenFlowConnectionError) as err:
        OpenFlowConnection(mgmt_socket("nosuch", rundir=ovs.dir), timeout=2).connect()
    assert ovs.mgmt("nosuch") in str(err.value)
    assert "is ovs-vswitchd running and does the bridge exist?" in str(err.value)


def test_protocols_column_limits_the_mgmt_socket(ovs):
    ovs.add_bridge("b1", protocols="OpenFlow10,OpenFlow13")
    with ovs.connect("b1") as conn:
        assert conn.version == codec.OFP13_VERSION
        assert conn.peer_versions == [1, 4]
    with pytest.raises(OpenFlowVersionError) as err:
        ovs.connect("b1", versions=[codec.OFP14_VERSION, codec.OFP15_VERSION]).connect()
    assert "OpenFlow10, OpenFlow13" in str(err.value)
    assert err.value.offered == [1, 4]


@pytest.mark.parametrize("version", VERSIONS)
def test_bundle_of_flows_reads_back(ovs, version):
    with ovs.connect(versions=[version]) as conn:
        reset(conn)
        flows = [case[0] for case in FLOWS]
        xids = conn.bundle(CLEAR + [{"type": "flow_mod", "command": "add", "flow": f} for f in flows])
        assert len(xids) == len(flows) + 1
        got = dict((e["cookie"], e) for e in conn.flow_stats())
        assert len(got) == len(flows)
        for flow in flows:
            entry = got[flow["cookie"]]
            assert codec.flow_only(entry) == codec.normalize_flow(flow), hex(flow["cookie"])
            assert entry["packet_count"] == 0 and entry["byte_count"] == 0
            assert "duration_sec" in entry
        # Filtering by table and cookie.
        assert [e["cookie"] for e in conn.flow_stats(table=5)] == [0x50]
        by_cookie = conn.flow_stats(cookie=0x40, cookie_mask=0xf0)
        assert sorted(e["cookie"] for e in by_cookie) == [0x40, 0x41, 0x42, 0x43]
    # The oracle: ovs-ofctl's own reading of the table.
    assert dump_flows(ovs) == sorted(case[1] for case in FLOWS)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("bad,index,names,when", [
    ({"table": 3, "priority": 5, "instructions": [{"type": "goto_table", "table": 1}]},
     1, ("OFPET_BAD_INSTRUCTION", "OFPBIC_BAD_TABLE_ID"), "bundle add"),
    ({"table": 0, "priority": 6, "instructions": [{"type": "apply_actions",
                                                   "actions": [{"type": "group", "group_id": 77}]}]},
     1, ("OFPET_BAD_ACTION", "OFPBAC_BAD_OUT_GROUP"), "bundle commit"),
])
def test_refused_flow_leaves_the_table_unchanged(ovs, version, bad, index, names, when):
    with ovs.connect(versions=[version]) as conn:
        reset(conn)
        conn.bundle([{"type": "flow_mod", "flow": {"table": 0, "priority": 5, "cookie": 1, "match": {"in_port": 1},
                                                   "instructions": []}}])
        before = dump_flows(ovs)
        messages = [{"type": "flow_mod", "flow": {"table": 0, "priority": 9, "cookie": 2, "match": {"in_port": 9},
                                                  "instructions": []}},
                    {"type": "flow_mod", "flow": bad},
                    {"type": "flow_mod", "flow": {"table": 0, "priority": 10, "cookie": 3, "instructions": []}}]
        with pytest.raises(OpenFlowSwitchError) as err:
            conn.bundle(messages)
        exc = err.value
        assert (exc.type_name, exc.code_name) == names
        assert exc.index == index and exc.msg_type == "FLOW_MOD" and exc.context == when
        assert "message %d" % index in str(exc) and names[1] in str(exc)
        assert [e["cookie"] for e in conn.flow_stats()] == [1]
        # The connection is still usable, and the bundle is gone.
        conn.bundle([{"type": "flow_mod", "flow": {"table": 0, "priority": 7, "cookie": 4, "instructions": []}}])
        assert sorted(e["cookie"] for e in conn.flow_stats()) == [1, 4]
    assert len(before) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_overlap_detected_at_commit_names_the_message(ovs, version):
    with ovs.connect(versions=[version]) as conn:
        reset(conn)
        with pytest.raises(OpenFlowSwitchError) as err:
            conn.bundle([
                {"type": "flow_mod", "flow": {"priority": 5, "match": {"in_port": 1}}},
                {"type": "flow_mod", "flow": {"priority": 7, "match": {"in_port": 2}}},
                {"type": "flow_mod", "flow": {"priority": 5, "flags": ["check_overlap"], "match": {"eth_type": 0x800}}},
            ])
        assert (err.value.index, err.value.code_name) == (2, "OFPFMFC_OVERLAP")
        assert conn.flow_stats() == []


@pytest.mark.parametrize("version", VERSIONS)
def test_meters_and_groups_read_back(ovs, version):
    with ovs.connect(versions=[version]) as conn:
        reset(conn)
        conn.send_batch([{"type": "meter_mod", "command": "add", "meter": m} for m in METERS])
        conn.bundle([{"type": "group_mod", "command": "add", "group": g} for g in GROUPS])
        assert sorted(conn.meters(), key=lambda m: m["meter_id"]) == [codec.normalize_meter(m) for m in METERS]
        assert conn.meters(2) == [codec.normalize_meter(METERS[1])]
        assert sorted(conn.groups(), key=lambda g: g["group_id"]) == [codec.normalize_group(g) for g in GROUPS]
        assert conn.groups(2) == [codec.normalize_group(GROUPS[1])]
        stats = sorted(conn.meter_stats(), key=lambda m: m["meter_id"])
        assert [s["meter_id"] for s in stats] == [1, 2] and len(stats[0]["band_stats"]) == 1
        gstats = sorted(conn.group_stats(), key=lambda g: g["group_id"])
        assert [(g["group_id"], len(g["bucket_stats"])) for g in gstats] == [(1, 2), (2, 2), (3, 1), (4, 2)]

        metered = {"table": 0, "priority": 5, "cookie": 9, "match": {},
                   "instructions": [{"type": "meter", "meter_id": 1},
                                    {"type": "apply_actions", "actions": [{"type": "group", "group_id": 2}]}]}
        conn.bundle([{"type": "flow_mod", "flow": metered}])
        assert [codec.flow_only(e) for e in conn.flow_stats()] == [codec.normalize_flow(metered)]
        assert conn.group_stats(2)[0]["ref_count"] == 1

        # Open vSwitch takes no METER_MOD in a bundle; modify and delete outside one.
        with pytest.raises(OpenFlowSwitchError) as err:
            conn.bundle([{"type": "meter_mod", "command": "add", "meter": dict(METERS[0], meter_id=5)}])
        assert (err.value.index, err.value.code_name) == (0, "OFPBFC_MSG_UNSUP")
        changed = dict(METERS[1], bands=[{"type": "drop", "rate": 70, "burst_size": 0}])
        conn.send_batch([{"type": "meter_mod", "command": "modify", "meter": changed},
                         {"type": "group_mod", "command": "delete", "group": {"group_id": 4}}])
        assert conn.meters(2) == [codec.normalize_meter(changed)]
        assert sorted(g["group_id"] for g in conn.groups()) == [1, 2, 3]

        with pytest.raises(OpenFlowSwitchError) as err:
            conn.send_batch([{"type": "meter_mod", "command": "add", "meter": METERS[0]}])
        assert err.value.code_name == "OFPMMFC_METER_EXISTS" and err.value.index == 0

    meters = ovs.ofctl("-O", "OpenFlow13", "dump-meters", ovs.mgmt("b0"))
    assert "meter=1 kbps burst stats bands=\ntype=drop rate=1000 burst_size=100" in meters
    assert "meter=2 pktps bands=\ntype=drop rate=70" in meters
    groups = ovs.ofctl("-O", "OpenFlow13", "--no-names", "dump-groups", ovs.mgmt("b0"))
    assert "group_id=2,type=select,bucket=weight:10,actions=output:1,bucket=weight:20,actions=output:2" in groups
    assert "group_id=3,type=indirect,bucket=actions=set_field:00:00:00:00:00:01->eth_dst,output:1" in groups


@pytest.mark.parametrize("version", VERSIONS)
def test_multipart_reply_more_is_reassembled(ovs, version, monkeypatch):
    flows = [{"table": 10, "priority": 100, "cookie": 0x1000 + i,
              "match": {"eth_type": 0x800, "ipv4_dst": "10.%d.%d.1" % (i // 256, i % 256)},
              "instructions": [{"type": "apply_actions", "actions": [{"type": "output", "port": 1}]}]}
             for i in range(1200)]
    with ovs.connect(versions=[version]) as conn:
        reset(conn)
        conn.bundle([{"type": "flow_mod", "flow": f} for f in flows])
        # Count the reply's parts on the wire while reading it.
        parts = []
        real_decode = codec.decode

        def counting(data):
            msg = real_decode(data)
            if msg["type"] == "multipart_reply":
                parts.append(msg["flags"])
            return msg
        monkeypatch.setattr(codec, "decode", counting)
        got = conn.flow_stats(table=10)
        monkeypatch.undo()
        assert len(parts) > 1 and parts[0] == ["more"] and parts[-1] == []
        assert sorted(e["cookie"] for e in got) == [f["cookie"] for f in flows]
        conn.bundle(CLEAR)
