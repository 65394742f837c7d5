"""Codec unit tests: round trips, canonical forms, validation, error names."""

import struct

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.openflow import codec
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.codec import OpenFlowCodecError, decode, encode
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.errors import OpenFlowError

from openflow_cases import FLOWS, GROUPS, METERS, NAT_NONE

NAT_SRC = dict(NAT_NONE, type="src")

VERSIONS = [4, 5, 6]
DEFAULTS = {"table": 0, "priority": 0x8000, "cookie": 0, "idle_timeout": 0, "hard_timeout": 0, "flags": [],
            "match": {}, "instructions": []}
NOT_CANONICAL = {0x60}   # CONTROLLER without max_len, an all-ones mask: decode spells them out


def canonical(flow):
    return dict(DEFAULTS, **flow)


def round_trip(msg):
    data = encode(msg)
    assert codec.parse_header(data)[2] == len(data)
    assert len(data) % 8 == 0 or msg["type"] in ("echo_request", "echo_reply", "error", "experimenter",
                                                 "unknown")
    back = decode(data)
    assert back == msg
    assert encode(back) == data
    return data


# -- flows ----------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("flow", [case[0] for case in FLOWS], ids=[hex(case[0]["cookie"]) for case in FLOWS])
def test_flow_mod_round_trip(version, flow):
    once = decode(codec.flow_mod(version, flow, xid=7))
    assert once["type"] == "flow_mod" and once["xid"] == 7 and once["version"] == version
    if flow["cookie"] not in NOT_CANONICAL:
        assert once["flow"] == canonical(flow)
    round_trip(once)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("command", sorted(codec.FLOW_MOD_COMMANDS))
def test_flow_mod_commands(version, command):
    msg = {"type": "flow_mod", "version": version, "xid": 3, "command": command,
           "flow": canonical({"table": codec.OFPTT_ALL if command.startswith("delete") else 2, "cookie": 0x5,
                              "match": {"in_port": 1}}),
           "cookie_mask": 0xff, "out_port": 4, "out_group": 7, "buffer_id": codec.OFP_NO_BUFFER}
    data = round_trip(msg)
    assert data[25] == codec.FLOW_MOD_COMMANDS[command]


def test_flow_mod_layout():
    data = codec.flow_mod(4, {"table": 3, "priority": 7, "cookie": 0x1122, "idle_timeout": 10, "hard_timeout": 20,
                              "flags": ["send_flow_rem", "no_byte_counts"]}, cookie_mask=0xff, xid=9)
    assert data[:8] == bytes([4, 14, 0, 56, 0, 0, 0, 9])
    cookie, mask, table, cmd, idle, hard, prio, buf, oport, ogroup, flags, imp = struct.unpack_from(
        "!QQBBHHHIIIHH", data, 8)
    assert (cookie, mask, table, cmd, idle, hard, prio) == (0x1122, 0xff, 3, 0, 10, 20, 7)
    assert (buf, oport, ogroup, flags, imp) == (codec.OFP_NO_BUFFER, codec.OFPP_ANY, codec.OFPG_ANY, 0x11, 0)
    assert data[48:56] == bytes([0, 1, 0, 4, 0, 0, 0, 0])   # empty OXM match, padded


def test_importance_only_from_of14():
    flow = {"priority": 1, "importance": 7}
    assert decode(codec.flow_mod(5, flow))["flow"]["importance"] == 7
    with pytest.raises(OpenFlowCodecError):
        codec.flow_mod(4, flow)


def test_flow_defaults_and_unknown_keys():
    assert decode(codec.flow_mod(4, {}))["flow"] == DEFAULTS
    with pytest.raises(OpenFlowCodecError, match="unknown flow keys: actions"):
        codec.flow_mod(4, {"actions": []})


# -- match ----------------------------------------------------------------------

def oxm(data):
    """The OXM TLVs of an encoded match, as (class, field, hasmask, body) tuples."""
    out = []
    for cls, exp, field, hasmask, value, mask in codec._decode_oxm_tlvs(data, "test"):
        out.append((cls, field, hasmask, value + (mask or b"")))
    return out


@pytest.mark.parametrize("value,wire", [
    (10, (False, b"\x10\x0a")),
    ("untagged", (False, b"\x00\x00")),
    ("tagged", (True, b"\x10\x00\x10\x00")),
    ({"value": 16, "mask": 0xff0}, (True, b"\x10\x10\x1f\xf0")),
    ({"value": 16, "mask": 0xfff}, (False, b"\x10\x10")),
    ({"value": 0x10, "mask": None, "wire": True}, (False, b"\x00\x10")),
])
def test_vlan_vid_forms(value, wire):
    data = codec.encode_oxm_fields({"vlan_vid": value})
    assert oxm(data) == [(0x8000, 6, wire[0], wire[1])]
    back = codec.decode_oxm_fields(data)["vlan_vid"]
    assert back == (value if value != {"value": 16, "mask": 0xfff} else 16)


@pytest.mark.parametrize("wire,expected", [
    ((0x0000, 0x1000), "untagged"),      # how OVS can report "no tag" (vlan_tci=0/0x1000)
    ((0x0000, 0x1fff), "untagged"),
    ((0x100a, 0x1fff), 10),
    ((0x1000, 0x1000), "tagged"),
    ((0x1005, 0x100f), {"value": 5, "mask": 0xf}),
    ((0x0005, 0x000f), {"value": 5, "mask": 0xf, "wire": True}),
])
def test_vlan_vid_decoding(wire, expected):
    tlv = struct.pack("!IHH", codec._oxm_header(0x8000, 6, True, 4), *wire)
    assert codec.decode_oxm_fields(tlv) == {"vlan_vid": expected}


def test_match_field_order_puts_prerequisites_first():
    match = {"tcp_dst": 80, "reg1": 1, "ip_proto": 6, "eth_type": 0x800, "in_port": 3, "ct_zone": 2,
             "metadata": 1, "eth_src": "00:00:00:00:00:01", "eth_dst": "00:00:00:00:00:02"}
    fields = [tlv[:2] for tlv in oxm(codec.encode_oxm_fields(match))]
    assert fields == [(0x0001, 1), (0x0001, 106), (0x8000, 0), (0x8000, 2), (0x8000, 3), (0x8000, 4),
                      (0x8000, 5), (0x8000, 10), (0x8000, 14)]


def test_nicira_fields_as_ovs_encodes_them():
    match = {"reg0": 5, "reg15": {"value": 1, "mask": 3}, "ct_state": {"value": 0x21, "mask": 0x21},
             "ct_zone": 7, "ct_mark": {"value": 1, "mask": 0xff}}
    assert oxm(codec.encode_oxm_fields(match)) == [
        (1, 0, False, b"\0\0\0\x05"), (1, 15, True, b"\0\0\0\x01\0\0\0\x03"),
        (1, 105, True, b"\0\0\0\x21\0\0\0\x21"), (1, 106, False, b"\0\x07"),
        (1, 107, True, b"\0\0\0\x01\0\0\0\xff")]
    assert codec.encode_oxm_fields({"reg0": 5})[:4] == bytes.fromhex("00010004")   # NXM_NX_REG0
    assert codec.encode_oxm_fields({"ct_state": 1})[:4] == bytes.fromhex("0001d204")


def test_of15_xreg_replies_fold_back_into_reg_pairs():
    xreg0 = struct.pack("!IQ", codec._oxm_header(0x8001, 0, False, 8), (1 << 32) | 2)
    xreg1 = struct.pack("!IQQ", codec._oxm_header(0x8001, 1, True, 16), 0, 1)
    xreg7 = struct.pack("!IQQ", codec._oxm_header(0x8001, 7, True, 16), 0x10 << 32, 0xf0 << 32)
    assert codec.decode_oxm_fields(xreg0 + xreg1 + xreg7) == {
        "reg0": 1, "reg1": 2, "reg3": {"value": 0, "mask": 1}, "reg14": {"value": 0x10, "mask": 0xf0}}


def test_ethernet_packet_type_is_dropped_and_unknown_fields_kept():
    packet_type = struct.pack("!II", codec._oxm_header(0x8000, 44, False, 4), 0)
    ipv6_packet_type = struct.pack("!II", codec._oxm_header(0x8000, 44, False, 4), 0x186dd)
    tcp_flags = struct.pack("!IIHH", codec._oxm_header(0xffff, 42, True, 8), codec.ONF_VENDOR_ID, 2, 2)
    pkt_mark = bytes.fromhex("0001430800000005000000ff")
    match = codec.decode_oxm_fields(packet_type + tcp_flags + pkt_mark)
    assert match == {"oxm:0xffff:0x4f4e4600:42": {"value": "0x0002", "mask": "0x0002"},
                     "oxm:0x0001:33": {"value": "0x00000005", "mask": "0x000000ff"}}
    assert set(oxm(codec.encode_oxm_fields(match))) == set(oxm(tcp_flags + pkt_mark))
    assert codec.decode_oxm_fields(ipv6_packet_type) == {"oxm:0x8000:44": "0x000186dd"}


@pytest.mark.parametrize("match,message", [
    ({"nosuch": 1}, "unknown match field 'nosuch'"),
    ({"eth_dst": "aa:bb:cc:dd:ee"}, "not a MAC address"),
    ({"ipv4_src": "10.0.0.256"}, "not an IPv4 address"),
    ({"ipv6_src": "10.0.0.1"}, "not an IPv6 address"),
    ({"vlan_pcp": 8}, "out of range"),
    ({"ip_dscp": 64}, "out of range"),
    ({"tcp_dst": 70000}, "out of range"),
    ({"in_port": True}, "must be an integer"),
    ({"eth_type": {"value": 0x800, "mask": 0xff00}}, "cannot be masked"),
    ({"ipv4_src": {"value": "10.0.0.5", "mask": "255.255.255.0"}}, "bits set outside the mask"),
    ({"ct_state": {"value": 0x23, "mask": 0x21}}, "bits set outside the mask"),
    ({"vlan_vid": {"value": 17, "mask": 0xff0}}, "bits set outside the mask"),
    ({"vlan_vid": 4096}, "out of range"),
    ({"metadata": {"mask": 1}}, "needs 'value' and 'mask'"),
])
def test_match_validation(match, message):
    with pytest.raises(OpenFlowCodecError, match=message):
        codec.encode_match(match)


def test_all_ones_mask_is_dropped_and_values_are_canonical():
    match = {"eth_src": {"value": "AA:BB:CC:DD:EE:FF", "mask": "ff:ff:ff:ff:ff:ff"},
             "ipv6_dst": {"value": "2001:0db8:0000::0", "mask": "ffff:ffff:ffff:ffff::"}}
    data = codec.encode_match(match)
    assert codec.decode_match(data)[0] == {"eth_src": "aa:bb:cc:dd:ee:ff",
                                           "ipv6_dst": {"value": "2001:db8::", "mask": "ffff:ffff:ffff:ffff::"}}


# -- actions and instructions ------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_of15_meter_instruction_is_an_action(version):
    flow = canonical({"instructions": [{"type": "meter", "meter_id": 3},
                                       {"type": "apply_actions", "actions": [{"type": "output", "port": 1}]}]})
    data = codec.flow_mod(version, flow)
    insts = data[56:]
    if version == 6:
        assert insts[:8] == struct.pack("!HH4x", codec.OFPIT_APPLY_ACTIONS, 32)
        assert insts[8:16] == struct.pack("!HHI", codec.OFPAT_METER, 8, 3)
    else:
        assert insts[:8] == struct.pack("!HHI", codec.OFPIT_METER, 8, 3)
    assert decode(data)["flow"] == flow
    only_meter = canonical({"instructions": [{"type": "meter", "meter_id": 3}]})
    assert decode(codec.flow_mod(version, only_meter))["flow"] == only_meter


def test_meter_action_outside_of15_is_refused_and_kept_when_not_leading():
    flow = canonical({"instructions": [{"type": "apply_actions", "actions": [
        {"type": "output", "port": 1}, {"type": "meter", "meter_id": 2}]}]})
    assert decode(codec.flow_mod(6, flow))["flow"] == flow
    with pytest.raises(OpenFlowCodecError, match="only in OpenFlow 1.5"):
        codec.flow_mod(4, flow)


@pytest.mark.parametrize("action,hexdata", [
    ({"type": "output", "port": 1}, "00000010000000010000000000000000"),
    ({"type": "output", "port": codec.OFPP_CONTROLLER, "max_len": 0xffff}, "00000010fffffffdffff000000000000"),
    ({"type": "group", "group_id": 5}, "0016000800000005"),
    ({"type": "push_vlan", "ethertype": 0x88a8}, "0011000888a80000"),
    ({"type": "pop_vlan"}, "0012000800000000"),
    ({"type": "dec_nw_ttl"}, "0018000800000000"),
    ({"type": "set_nw_ttl", "ttl": 64}, "0017000840000000"),
    ({"type": "set_field", "field": "vlan_vid", "value": 5}, "0019001080000c021005000000000000"),
    ({"type": "resubmit", "port": None, "table": None}, "ffff001000002320000efff8ff000000"),
    ({"type": "resubmit", "port": 3, "table": 7}, "ffff001000002320000e000307000000"),
    ({"type": "resubmit", "port": codec.OFPP_LOCAL, "table": None}, "ffff001000002320000efffeff000000"),
    ({"type": "ct_clear"}, "ffff001000002320002b000000000000"),
])
def test_action_bytes(action, hexdata):
    data = codec.encode_action(action, 4)
    assert data.hex() == hexdata
    assert codec.decode_actions(data, 4) == [action]


def test_resubmit_in_port_spelled_out_decodes_to_none():
    data = codec.encode_action({"type": "resubmit", "port": codec.OFPP_IN_PORT, "table": 1}, 4)
    assert codec.decode_actions(data, 4) == [{"type": "resubmit", "port": None, "table": 1}]
    # NXAST_RESUBMIT (what OVS sends back for a flow that came in with one).
    assert codec.decode_actions(bytes.fromhex("ffff0010000023200001000500000000"), 4) == [
        {"type": "resubmit", "port": 5, "table": None}]


def test_ct_zone_from_field_and_nested_actions():
    action = {"type": "ct", "commit": True, "force": True, "zone": {"field": "reg4", "ofs": 0, "nbits": 16},
              "table": 9, "alg": None, "nat": None,
              "exec": [{"type": "set_field", "field": "ct_mark", "value": 1}]}
    data = codec.encode_action(action, 4)
    flags, zone_src, zone_ofs_nbits, table = struct.unpack_from("!HIHB", data, 10)
    assert (flags, zone_src, zone_ofs_nbits, table) == (3, 0x00010804, 15, 9)
    assert codec.decode_actions(data, 4) == [action]


@pytest.mark.parametrize("nat", [
    {"type": "src", "ip_min": "10.0.0.1", "ip_max": None, "port_min": None, "port_max": None,
     "persistent": False, "random": False, "hash": False},
    {"type": "dst", "ip_min": "2001:db8::1", "ip_max": "2001:db8::9", "port_min": 1, "port_max": 9,
     "persistent": True, "random": False, "hash": True},
    {"type": None, "ip_min": None, "ip_max": None, "port_min": None, "port_max": None,
     "persistent": False, "random": False, "hash": False},
])
def test_nat_round_trip(nat):
    action = {"type": "ct", "commit": True, "zone": 0, "table": None, "alg": None, "nat": nat}
    data = codec.encode_action(action, 5)
    assert len(data) % 8 == 0
    assert codec.decode_actions(data, 5) == [action]


def test_nat_this_codec_cannot_express_stays_raw():
    nat = codec.encode_action({"type": "nat", "nat": dict(NAT_SRC, ip_min="10.0.0.1")}, 4)
    odd = nat[:12] + struct.pack("!H", 0x20 | 1) + nat[14:]        # an unknown NX_NAT_F_ bit
    ct = codec.encode_action({"type": "ct", "commit": True, "zone": 0, "table": None, "alg": None, "nat": None}, 4)
    ct = ct[:2] + struct.pack("!H", len(ct) + len(odd)) + ct[4:] + odd
    assert codec.decode_actions(odd, 4) == [{"type": "raw", "hex": odd.hex()}]
    decoded = codec.decode_actions(ct, 4)
    assert decoded[0]["nat"] is None and decoded[0]["exec"] == [{"type": "raw", "hex": odd.hex()}]
    assert codec.encode_actions(decoded, 4) == ct
    assert codec.decode_actions(nat, 4) == [{"type": "nat", "nat": dict(NAT_SRC, ip_min="10.0.0.1")}]


def test_nat_needs_ip_min_for_ip_max():
    with pytest.raises(OpenFlowCodecError, match="ip_max needs ip_min"):
        codec.encode_action({"type": "ct", "nat": {"type": "src", "ip_max": "10.0.0.1"}}, 4)


def test_unknown_actions_and_instructions_survive_as_raw():
    learn = bytes.fromhex("ffff00300000232000100000000080000000000000000000000009000000000000300000040600000000020600000000")
    set_queue = bytes.fromhex("0015000800000003")
    stat_trigger = bytes.fromhex("0007000800000000")
    actions = codec.decode_actions(learn + set_queue, 4)
    assert actions == [{"type": "raw", "hex": learn.hex()}, {"type": "raw", "hex": set_queue.hex()}]
    assert codec.encode_actions(actions, 4) == learn + set_queue
    assert codec.decode_instructions(stat_trigger, 6) == [{"type": "raw", "hex": stat_trigger.hex()}]
    assert codec.encode_instructions([{"type": "raw", "hex": stat_trigger.hex()}], 6) == stat_trigger


@pytest.mark.parametrize("action,message", [
    ({"type": "teleport"}, "unknown action type"),
    ({"type": "output", "port": "nowhere"}, "unknown port"),
    ({"type": "set_field", "field": "nosuch", "value": 1}, "unknown match field"),
    ({"type": "ct", "zone": 70000}, "out of range"),
    ({"type": "raw", "hex": "zz"}, "not a hex string"),
    ({"type": "raw", "hex": "0000"}, "8-byte units"),
    ("output", "must be a dict"),
])
def test_action_validation(action, message):
    with pytest.raises(OpenFlowCodecError, match=message):
        codec.encode_action(action, 4)


def test_empty_action_list_is_drop():
    flow = canonical({"instructions": [{"type": "apply_actions", "actions": []}]})
    assert decode(codec.flow_mod(4, flow))["flow"] == flow
    assert codec.normalize_flow(flow)["instructions"] == []


# -- normalisation ------------------------------------------------------------------

def test_normalize_flow_matches_what_ovs_reports():
    flow = {"match": {"reg1": {"value": 0, "mask": 0}, "ct_state": 0x20, "eth_src": {"value": "00:00:00:00:00:00",
                                                                                     "mask": "00:00:00:00:00:00"}},
            "instructions": [{"type": "goto_table", "table": 3}, {"type": "write_metadata", "metadata": 1},
                             {"type": "write_actions", "actions": []}, {"type": "clear_actions"},
                             {"type": "apply_actions", "actions": [{"type": "output", "port": 1}]},
                             {"type": "meter", "meter_id": 1}],
            "packet_count": 5}
    assert codec.normalize_flow(flow) == canonical({
        "match": {"ct_state": {"value": 0x20, "mask": 0xff}},
        "instructions": [{"type": "meter", "meter_id": 1},
                         {"type": "apply_actions", "actions": [{"type": "output", "port": 1}]},
                         {"type": "clear_actions"},
                         {"type": "write_metadata", "metadata": 1, "mask": 0xffffffffffffffff},
                         {"type": "goto_table", "table": 3}]})


def test_normalize_meter_and_group():
    assert codec.normalize_meter({"meter_id": 1, "bands": [{"type": "drop", "rate": 9}]}) == {
        "meter_id": 1, "flags": [], "bands": [{"type": "drop", "rate": 9, "burst_size": 9}]}
    assert codec.normalize_group({"group_id": 1, "type": "select", "buckets": [{"actions": []}]}) == {
        "group_id": 1, "type": "select", "buckets": [{"weight": 1, "watch_port": None, "watch_group": None,
                                                      "actions": []}]}


# -- other messages -------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_simple_messages_round_trip(version):
    for msg in [
        {"type": "echo_request", "data": b"abc"}, {"type": "echo_reply", "data": b""},
        {"type": "features_request"}, {"type": "barrier_request"}, {"type": "barrier_reply"},
        {"type": "features_reply", "datapath_id": 0x0000aabbccddeeff, "n_buffers": 0, "n_tables": 254,
         "auxiliary_id": 0, "capabilities": 0x4f},
        {"type": "experimenter", "experimenter": 0x2320, "exp_type": 20, "data": b"\0" * 8},
        {"type": "unknown", "msg_type": 12, "body": b"\1" * 64},
    ]:
        round_trip(dict(msg, version=version, xid=0x1234))


def test_hello_version_bitmap():
    data = codec.hello([4, 5, 6], xid=1)
    assert data == bytes.fromhex("06000010000000010001000800000070")
    assert decode(data) == {"type": "hello", "version": 6, "xid": 1, "versions": [4, 5, 6]}
    assert decode(bytes.fromhex("0400000800000001"))["versions"] is None
    assert decode(codec.hello([1, 4], xid=2))["versions"] == [1, 4]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("mp_type,body", [
    ("flow", {"table": 255, "out_port": codec.OFPP_ANY, "out_group": codec.OFPG_ANY, "cookie": 0x10,
              "cookie_mask": 0xf0, "match": {"in_port": 1}}),
    ("meter", {"meter_id": codec.OFPM_ALL}),
    ("meter_config", {"meter_id": 5}),
    ("group", {"group_id": 9}),
    ("group_desc", {"group_id": codec.OFPG_ALL}),
])
def test_multipart_requests_round_trip(version, mp_type, body):
    round_trip({"type": "multipart_request", "version": version, "xid": 5, "mp_type": mp_type, "flags": [],
                "body": body})


def test_group_desc_request_for_one_group_needs_of15():
    assert decode(codec.group_desc_request(6, 3))["body"] == {"group_id": 3}
    with pytest.raises(OpenFlowCodecError, match="OpenFlow 1.5"):
        codec.group_desc_request(4, 3)


@pytest.mark.parametrize("version", VERSIONS)
def test_multipart_replies_round_trip(version):
    entries = []
    for flow in [case[0] for case in FLOWS]:
        if flow["cookie"] in NOT_CANONICAL:
            continue
        entry = dict(canonical(flow), duration_sec=3, duration_nsec=5000, packet_count=7, byte_count=700)
        if version == 6:
            entry["idle_age"] = 2
        entries.append(entry)
    for mp_type, body in [
        ("flow", entries),
        ("meter_config", [codec.normalize_meter(m) for m in METERS]),
        ("group_desc", [codec.normalize_group(g) for g in GROUPS]),
        ("meter", [{"meter_id": 1, "flow_count": 2, "packet_in_count": 3, "byte_in_count": 4, "duration_sec": 5,
                    "duration_nsec": 6, "band_stats": [{"packet_count": 7, "byte_count": 8}]}]),
        ("group", [{"group_id": 1, "ref_count": 2, "packet_count": 3, "byte_count": 4, "duration_sec": 5,
                    "duration_nsec": 6, "bucket_stats": [{"packet_count": 7, "byte_count": 8}] * 2}]),
    ]:
        round_trip({"type": "multipart_reply", "version": version, "xid": 8, "mp_type": mp_type,
                    "flags": ["more"], "body": body})


@pytest.mark.parametrize("version", VERSIONS)
def test_group_and_meter_mods_round_trip(version):
    for command in ("add", "modify", "delete"):
        for group in GROUPS:
            round_trip({"type": "group_mod", "version": version, "xid": 1, "command": command,
                        "group": codec.normalize_group(group)})
        for meter in METERS + [{"meter_id": 3, "flags": ["kbps"], "bands": [
                {"type": "dscp_remark", "rate": 5, "burst_size": 0, "prec_level": 2},
                {"type": "experimenter", "rate": 1, "burst_size": 2, "experimenter": 0x2320}]}]:
            round_trip({"type": "meter_mod", "version": version, "xid": 1, "command": command,
                        "meter": meter})


def test_group_of15_bucket_properties():
    group = {"group_id": 4, "type": "ff", "buckets": [{"watch_port": 1, "actions": []},
                                                      {"watch_group": 2, "weight": 0, "actions": []}]}
    data = codec.group_mod(6, group)
    command, gtype, group_id, blen, cmd_bucket = struct.unpack_from("!HBxIH2xI", data, 8)
    assert (command, gtype, group_id, cmd_bucket) == (0, 3, 4, codec.OFPG15_BUCKET_ALL)
    # bucket 0: len 16 (8 header + watch_port property), no actions, id 0
    assert data[24:40] == struct.pack("!HHIHHI", 16, 0, 0, 1, 8, 1)
    assert decode(data)["group"] == codec.normalize_group(group)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("ctrl", sorted(codec.BUNDLE_CTRL_TYPES))
def test_bundle_control_round_trip(version, ctrl):
    data = round_trip({"type": "bundle_control", "version": version, "xid": 2, "bundle_id": 7, "ctrl": ctrl,
                       "flags": ["atomic", "ordered"]})
    if version == 4:
        assert data[1] == codec.OFPT_EXPERIMENTER
        assert struct.unpack_from("!IIIHH", data, 8) == (codec.ONF_VENDOR_ID, codec.ONFT_BUNDLE_CONTROL, 7,
                                                         codec.BUNDLE_CTRL_TYPES[ctrl], 3)
    else:
        assert data[1] == codec.OFPT_BUNDLE_CONTROL


@pytest.mark.parametrize("version", VERSIONS)
def test_bundle_add_round_trip(version):
    inner = decode(codec.flow_mod(version, FLOWS[0][0], xid=11))
    data = round_trip({"type": "bundle_add", "version": version, "xid": 11, "bundle_id": 3,
                       "flags": ["atomic"], "message": inner})
    if version == 4:
        assert data[1] == codec.OFPT_EXPERIMENTER
        assert struct.unpack_from("!II", data, 8) == (codec.ONF_VENDOR_ID, codec.ONFT_BUNDLE_ADD_MESSAGE)
        assert data[24:] == codec.flow_mod(version, FLOWS[0][0], xid=11)
    else:
        assert data[1] == codec.OFPT_BUNDLE_ADD_MESSAGE
        assert data[16:] == codec.flow_mod(version, FLOWS[0][0], xid=11)


# -- errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("err_type,err_code,experimenter,names", [
    (0, 0, None, ("OFPET_HELLO_FAILED", "OFPHFC_INCOMPATIBLE")),
    (2, 9, None, ("OFPET_BAD_ACTION", "OFPBAC_BAD_OUT_GROUP")),
    (3, 2, None, ("OFPET_BAD_INSTRUCTION", "OFPBIC_BAD_TABLE_ID")),
    (4, 9, None, ("OFPET_BAD_MATCH", "OFPBMC_BAD_PREREQ")),
    (5, 3, None, ("OFPET_FLOW_MOD_FAILED", "OFPFMFC_OVERLAP")),
    (6, 0, None, ("OFPET_GROUP_MOD_FAILED", "OFPGMFC_GROUP_EXISTS")),
    (12, 8, None, ("OFPET_METER_MOD_FAILED", "OFPMMFC_BAD_BAND")),
    (17, 13, None, ("OFPET_BUNDLE_FAILED", "OFPBFC_MSG_FAILED")),
    (17, 18, None, ("OFPET_BUNDLE_FAILED", "OFPBFC_SCHED_PAST")),
    (0xffff, 2313, codec.ONF_VENDOR_ID, ("OFPET_EXPERIMENTER", "OFPBFC_MSG_FAILED")),
    (0xffff, 2310, codec.ONF_VENDOR_ID, ("OFPET_EXPERIMENTER", "OFPBFC_MSG_UNSUP")),
    (0xffff, 2600, codec.ONF_VENDOR_ID, ("OFPET_EXPERIMENTER", "OFPBIC_DUP_INST")),
    (0xffff, 42, codec.NX_VENDOR_ID, ("OFPET_EXPERIMENTER", "NXBAC_CT_DATAPATH_SUPPORT")),
    (0xffff, 99, codec.NX_VENDOR_ID, ("OFPET_EXPERIMENTER", "NX_ERROR_99")),
    (0xffff, 1, 0x1234, ("OFPET_EXPERIMENTER", "EXPERIMENTER_0x00001234_1")),
    (40, 1, None, ("OFPET_UNKNOWN_40", "CODE_1")),
    (5, 77, None, ("OFPET_FLOW_MOD_FAILED", "FLOW_MOD_FAILED_CODE_77")),
])
def test_error_names(err_type, err_code, experimenter, names):
    assert codec.error_names(err_type, err_code, experimenter) == names
    offending = codec.flow_mod(4, {}, xid=9)[:64]
    data = codec.error(4, err_type, err_code, xid=9, data=offending, experimenter=experimenter)
    msg = decode(data)
    assert (msg["type_name"], msg["code_name"]) == names
    assert msg["data"] == offending and msg["xid"] == 9
    assert encode(msg) == data


def test_error_layout():
    assert codec.error(5, 2, 9, xid=1, data=b"xy") == bytes.fromhex("0501000e0000000100020009") + b"xy"
    assert codec.error(4, 0xffff, 2313, xid=1, experimenter=codec.ONF_VENDOR_ID) == \
        bytes.fromhex("0401001000000001ffff09094f4e4600")


# -- malformed input ------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"\x04\x00\x00",                                  # short header
    bytes.fromhex("0400001000000001"),               # length says 16, got 8
    codec.flow_mod(4, FLOWS[0][0])[:60],
])
def test_truncated_messages_raise_codec_errors(data):
    with pytest.raises(OpenFlowCodecError):
        decode(data)


def test_bad_lengths_inside_messages():
    data = bytearray(codec.flow_mod(4, FLOWS[0][0]))
    data[50:52] = b"\xff\xf0"    # match length
    with pytest.raises(OpenFlowError):
        decode(bytes(data))
    with pytest.raises(OpenFlowCodecError, match="bad length"):
        codec.decode_actions(bytes.fromhex("0000000900000000"), 4)
    with pytest.raises(OpenFlowCodecError, match="OFPMT_OXM"):
        codec.decode_match(bytes.fromhex("0000000800000000"))


@pytest.mark.parametrize("msg,message", [
    ({"type": "flow_mod", "version": 3, "flow": {}}, "unsupported OpenFlow wire version"),
    ({"type": "flow_mod", "version": 4, "command": "replace", "flow": {}}, "unknown flow_mod command"),
    ({"type": "flow_mod", "version": 4, "flow": {"flags": ["sticky"]}}, "unknown flow flag"),
    ({"type": "flow_mod", "version": 4, "flow": {"priority": 70000}}, "out of range"),
    ({"type": "group_mod", "version": 4, "group": {"group_id": 1, "type": "random"}}, "unknown group type"),
    ({"type": "meter_mod", "version": 4, "meter": {"meter_id": 1, "bands": [{"type": "drop"}]}},
     "rate must be an integer"),
    ({"type": "bundle_add", "version": 5, "bundle_id": 1, "message": b"x"}, "inner message"),
    ({"type": "nosuch"}, "unknown message type"),
    ([], "must be a dict"),
])
def test_encode_validation(msg, message):
    with pytest.raises(OpenFlowCodecError, match=message):
        encode(msg)


def test_ports_and_names():
    assert codec.port_number("controller") == codec.OFPP_CONTROLLER
    assert codec.port_number("OFPP_LOCAL") == codec.OFPP_LOCAL
    assert codec.port_number("IN_PORT") == codec.OFPP_IN_PORT
    assert codec.port_number("7") == 7
    assert codec.port_name(codec.OFPP_NORMAL) == "normal" and codec.port_name(3) == "3"
    assert set(codec.PORT_NAMES.values()) == {0xfffffff8 + i for i in range(8)}
    assert codec.CT_STATE_BITS == {"new": 1, "est": 2, "rel": 4, "rpl": 8, "inv": 0x10, "trk": 0x20,
                                   "snat": 0x40, "dnat": 0x80}
    with pytest.raises(OpenFlowCodecError):
        codec.port_number(-1)


def test_with_xid():
    data = codec.barrier_request(4, xid=1)
    assert codec.parse_header(codec.with_xid(data, 77)) == (4, codec.OFPT_BARRIER_REQUEST, 8, 77)
