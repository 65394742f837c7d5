"""OpenFlowConnection against a scripted switch: negotiation, echo, xid
matching, multipart reassembly, bundles and their failures, timeouts."""

import os
import socket
import struct

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.openflow import codec
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.connection import (
    OpenFlowCodecError, OpenFlowConnection, OpenFlowConnectionError, OpenFlowError, OpenFlowSwitchError,
    OpenFlowTimeout, OpenFlowVersionError, mgmt_socket, parse_target,
)

from openflow_fakes import FakeSwitch


@pytest.fixture
def switch():
    made = []

    def make(handler=None, **kw):
        sw = FakeSwitch(handler, **kw)
        made.append(sw)
        return sw
    yield make
    for sw in made:
        sw.close()


def reply(msg, mtype, **fields):
    return codec.encode(dict({"type": mtype, "version": msg["version"], "xid": msg["xid"]}, **fields))


def error_for(msg, raw, err_type, err_code, experimenter=None, xid=None):
    return codec.error(msg["version"], err_type, err_code, xid=msg["xid"] if xid is None else xid,
                       data=raw[:64], experimenter=experimenter)


def answering(extra=None):
    """A handler that answers barriers, echo, features and bundle control; ``extra(msg, raw)`` first."""
    def handler(msg, raw):
        if extra:
            out = extra(msg, raw)
            if out is not None:
                return out
        kind = msg["type"]
        if kind == "barrier_request":
            return [reply(msg, "barrier_reply")]
        if kind == "echo_request":
            return [reply(msg, "echo_reply", data=msg["data"])]
        if kind == "features_request":
            return [reply(msg, "features_reply", datapath_id=0xabc, n_buffers=0, n_tables=254, auxiliary_id=0,
                          capabilities=0)]
        if kind == "bundle_control":
            return [codec.encode(dict(msg, ctrl=msg["ctrl"].replace("request", "reply")))]
        return []
    return handler


# -- negotiation -------------------------------------------------------------------------------

@pytest.mark.parametrize("offered,ours,chosen", [
    ([1, 4, 5], [4, 5, 6], 5),
    ([4, 5, 6], [4, 5, 6], 6),
    ([4, 5, 6], [4], 4),
    ([1, 2, 3, 4], [4, 5, 6], 4),
])
def test_negotiation_picks_highest_common(switch, offered, ours, chosen):
    sw = switch(answering(), hello=codec.hello(offered))
    with OpenFlowConnection(sw.path, timeout=5, versions=ours) as conn:
        assert conn.version == chosen and conn.peer_versions == offered
        conn.barrier()
    assert codec.decode(sw.received[0]) == {"type": "hello", "version": max(ours), "xid": 1, "versions": ours}


def test_hello_without_bitmap(switch):
    sw = switch(answering(), hello=codec.encode({"type": "hello", "version": 4, "xid": 1, "versions": None}))
    with OpenFlowConnection("unix:" + sw.path, timeout=5) as conn:
        assert conn.version == 4 and conn.peer_versions == [1, 2, 3, 4]


@pytest.mark.parametrize("hello,named", [
    (codec.hello([1]), "the switch offered OpenFlow10, we offer OpenFlow13, OpenFlow14, OpenFlow15"),
    (codec.encode({"type": "hello", "version": 3, "xid": 1, "versions": None}),
     "the switch offered OpenFlow10, OpenFlow11, OpenFlow12"),
])
def test_no_common_version(switch, hello, named):
    sw = switch(hello=hello)
    with pytest.raises(OpenFlowVersionError) as err:
        OpenFlowConnection(sw.path, timeout=5).connect()
    assert named in str(err.value) and sw.path in str(err.value)
    sw.thread.join(2)
    sent = [codec.decode(r) for r in sw.received]
    assert sent[-1]["type"] == "error" and sent[-1]["type_name"] == "OFPET_HELLO_FAILED"


def test_switch_refusing_hello(switch):
    sw = switch(hello=codec.error(4, 0, 0, xid=1))
    with pytest.raises(OpenFlowVersionError, match="OFPHFC_INCOMPATIBLE"):
        OpenFlowConnection(sw.path, timeout=5).connect()


# -- requests -------------------------------------------------------------------------------------

def test_echo_from_the_switch_is_answered_while_waiting(switch):
    def extra(msg, raw):
        if msg["type"] == "barrier_request":
            return [codec.echo_request(msg["version"], 0x77, b"probe"), reply(msg, "barrier_reply")]
        return None
    sw = switch(answering(extra))
    with OpenFlowConnection(sw.path, timeout=5) as conn:
        conn.barrier()
        conn.barrier()
    echo = [m for m in sw.decoded() if m["type"] == "echo_reply"]
    assert echo and echo[0]["xid"] == 0x77 and echo[0]["data"] == b"probe"


def test_async_and_stray_messages_are_skipped(switch):
    def extra(msg, raw):
        if msg["type"] == "features_request":
            port_status = codec.encode({"type": "unknown", "version": msg["version"], "xid": 0, "msg_type": 12,
                                        "body": b"\0" * 72})
            stray = codec.barrier_request(msg["version"], xid=msg["xid"] + 1000)
            return [port_status, stray, reply(msg, "features_reply", datapath_id=7, n_buffers=0, n_tables=1,
                                              auxiliary_id=0, capabilities=0)]
        return None
    sw = switch(answering(extra))
    with OpenFlowConnection(sw.path, timeout=5) as conn:
        assert conn.features()["datapath_id"] == 7 and conn.datapath_id == 7


def test_multipart_reply_more_is_merged(switch):
    entries = [{"table": 0, "priority": i, "cookie": i, "idle_timeout": 0, "hard_timeout": 0, "flags": [],
                "match": {"in_port": i}, "instructions": [], "duration_sec": 0, "duration_nsec": 0,
                "packet_count": 0, "byte_count": 0} for i in range(6)]

    def extra(msg, raw):
        if msg["type"] == "multipart_request":
            assert msg["mp_type"] == "flow" and msg["body"]["table"] == 3
            assert (msg["body"]["cookie"], msg["body"]["cookie_mask"]) == (5, 0xffffffffffffffff)
            return [reply(msg, "multipart_reply", mp_type="flow", flags=["more"], body=entries[:2]),
                    codec.echo_request(msg["version"], 9),
                    reply(msg, "multipart_reply", mp_type="flow", flags=["more"], body=entries[2:5]),
                    reply(msg, "multipart_reply", mp_type="flow", flags=[], body=entries[5:])]
        return None
    sw = switch(answering(extra))
    with OpenFlowConnection(sw.path, timeout=5, versions=[4]) as conn:
        assert conn.flow_stats(table=3, cookie=5) == entries


def test_groups_of_one_id_before_of15_are_filtered_here(switch):
    groups = [{"group_id": g, "type": "all", "buckets": []} for g in (1, 2, 3)]
    seen = []

    def extra(msg, raw):
        if msg["type"] == "multipart_request":
            seen.append(msg["body"])
            return [reply(msg, "multipart_reply", mp_type="group_desc", flags=[], body=groups)]
        return None
    sw = switch(answering(extra))
    with OpenFlowConnection(sw.path, timeout=5, versions=[4]) as conn:
        assert conn.groups(2) == [groups[1]]
    assert seen == [{"group_id": codec.OFPG_ALL}]


def test_error_reply_raises_with_names(switch):
    def extra(msg, raw):
        if msg["type"] == "multipart_request":
            return [error_for(msg, raw, 1, 2)]
        return None
    sw = switch(answering(extra))
    with OpenFlowConnection(sw.path, timeout=5) as conn:
        with pytest.raises(OpenFlowSwitchError) as err:
            conn.meters()
        exc = err.value
        assert (exc.err_type, exc.err_code) == (1, 2)
        assert (exc.type_name, exc.code_name) == ("OFPET_BAD_REQUEST", "OFPBRC_BAD_MULTIPART")
        assert exc.msg_type == "MULTIPART_REQUEST" and exc.index is None
        assert "OFPET_BAD_REQUEST/OFPBRC_BAD_MULTIPART" in str(exc)
        conn.barrier()   # still usable


def test_timeout(switch):
    sw = switch(lambda msg, raw: [])
    with OpenFlowConnection(sw.path, timeout=0.2) as conn:
        with pytest.raises(OpenFlowTimeout, match="within 0.2 s"):
            conn.barrier()


def test_switch_closing_the_connection(switch):
    sw = switch(lambda msg, raw: [None] if msg["type"] == "barrier_request" else [])
    with OpenFlowConnection(sw.path, timeout=5) as conn:
        with pytest.raises(OpenFlowConnectionError, match="closed the connection"):
            conn.barrier()


def test_bad_length_from_the_switch(switch):
    sw = switch(lambda msg, raw: [b"\x04\x15\x00\x04\x00\x00\x00\x01"] if msg["type"] == "barrier_request" else [])
    with OpenFlowConnection(sw.path, timeout=5) as conn:
        with pytest.raises(OpenFlowConnectionError, match="bad length 4"):
            conn.barrier()


def test_connection_errors_name_the_socket(tmp_path):
    path = str(tmp_path / "br-missing.mgmt")
    with pytest.raises(OpenFlowConnectionError) as err:
        OpenFlowConnection(path, timeout=1).connect()
    assert "unix:%s" % path in str(err.value)
    assert "is ovs-vswitchd running and does the bridge exist?" in str(err.value)
    # A refused TCP connection on loopback.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(OpenFlowConnectionError, match="tcp:127.0.0.1:%d" % port):
        OpenFlowConnection("tcp:127.0.0.1:%d" % port, timeout=1).connect()
    assert issubclass(OpenFlowConnectionError, OpenFlowError)


def test_messages_as_bytes_or_dicts(switch):
    sw = switch(answering())
    with OpenFlowConnection(sw.path, timeout=5, versions=[5]) as conn:
        conn.send_batch([codec.flow_mod(5, {"priority": 1}, xid=999), {"type": "flow_mod", "flow": {"priority": 2}}])
        with pytest.raises(OpenFlowCodecError, match="wire version"):
            conn.send_batch([codec.flow_mod(4, {"priority": 1})])
        with pytest.raises(OpenFlowCodecError, match="wire version"):
            conn.send_batch([{"type": "flow_mod", "version": 6, "flow": {}}])
    flows = [m for m in sw.decoded() if m["type"] == "flow_mod"]
    assert [f["flow"]["priority"] for f in flows] == [1, 2]
    assert flows[0]["xid"] != 999   # the connection owns the xids


def test_send_batch_reports_the_refused_message(switch):
    def extra(msg, raw):
        if msg["type"] == "flow_mod" and msg["flow"]["priority"] == 2:
            return [error_for(msg, raw, 5, 3)]
        return None
    sw = switch(answering(extra))
    with OpenFlowConnection(sw.path, timeout=5) as conn:
        with pytest.raises(OpenFlowSwitchError) as err:
            conn.send_batch([{"type": "flow_mod", "flow": {"priority": p}} for p in (1, 2, 3)])
    assert (err.value.index, err.value.code_name, err.value.context) == (1, "OFPFMFC_OVERLAP", "batch")
    assert "message 1 (FLOW_MOD" in str(err.value)


# -- bundles --------------------------------------------------------------------------------------

def flows(n):
    return [{"type": "flow_mod", "flow": {"priority": p, "match": {"in_port": p}}} for p in range(1, n + 1)]


@pytest.mark.parametrize("version", [4, 5, 6])
def test_bundle_success(switch, version):
    sw = switch(answering())
    with OpenFlowConnection(sw.path, timeout=5, versions=[version]) as conn:
        xids = conn.bundle(flows(3))
        second = conn.bundle(flows(1), atomic=False)
    msgs = sw.decoded()[1:]
    kinds = [(m["type"], m.get("ctrl")) for m in msgs]
    assert kinds == [("bundle_control", "open_request"), ("bundle_add", None), ("bundle_add", None),
                     ("bundle_add", None), ("barrier_request", None), ("bundle_control", "commit_request"),
                     ("bundle_control", "open_request"), ("bundle_add", None), ("barrier_request", None),
                     ("bundle_control", "commit_request")]
    adds = [m for m in msgs if m["type"] == "bundle_add"]
    assert [a["xid"] for a in adds[:3]] == xids and [a["message"]["xid"] for a in adds[:3]] == xids
    assert [a["message"]["flow"]["priority"] for a in adds] == [1, 2, 3, 1]
    assert adds[0]["bundle_id"] == 1 and adds[3]["bundle_id"] == 2 and len(second) == 1
    assert adds[0]["flags"] == ["atomic", "ordered"] and adds[3]["flags"] == ["ordered"]
    raw_add = [r for r in sw.received if codec.decode(r)["type"] == "bundle_add"][0]
    if version == 4:
        assert raw_add[1] == codec.OFPT_EXPERIMENTER
        assert struct.unpack_from("!II", raw_add, 8) == (codec.ONF_VENDOR_ID, codec.ONFT_BUNDLE_ADD_MESSAGE)
    else:
        assert raw_add[1] == codec.OFPT_BUNDLE_ADD_MESSAGE


def test_empty_bundle_sends_nothing(switch):
    sw = switch(answering())
    with OpenFlowConnection(sw.path, timeout=5) as conn:
        assert conn.bundle([]) == []
        conn.barrier()
    assert [m["type"] for m in sw.decoded()] == ["hello", "barrier_request"]


@pytest.mark.parametrize("version", [4, 5])
def test_bundle_add_error_discards_and_names_the_message(switch, version):
    def extra(msg, raw):
        if msg["type"] == "bundle_add" and msg["message"]["flow"]["priority"] in (3, 4):
            return [error_for(msg, raw, 3, 2)]
        return None
    sw = switch(answering(extra))
    with OpenFlowConnection(sw.path, timeout=5, versions=[version]) as conn:
        with pytest.raises(OpenFlowSwitchError) as err:
            conn.bundle(flows(5))
        conn.barrier()
    exc = err.value
    assert (exc.index, exc.type_name, exc.code_name, exc.context, exc.msg_type) == (
        2, "OFPET_BAD_INSTRUCTION", "OFPBIC_BAD_TABLE_ID", "bundle add", "FLOW_MOD")
    assert [pair[0] for pair in exc.errors] == [2, 3]
    assert str(exc) == ("bundle add: the switch rejected message 2 (FLOW_MOD, xid %d) with "
                        "OFPET_BAD_INSTRUCTION/OFPBIC_BAD_TABLE_ID" % exc.xid)
    ctrls = [m["ctrl"] for m in sw.decoded() if m["type"] == "bundle_control"]
    assert ctrls == ["open_request", "discard_request"]


@pytest.mark.parametrize("version", [4, 6])
def test_bundle_commit_error_names_the_message(switch, version):
    state = {}

    def extra(msg, raw):
        if msg["type"] == "bundle_add":
            state.setdefault("adds", []).append((msg, raw))
            return []
        if msg["type"] == "bundle_control" and msg["ctrl"] == "commit_request":
            inner_msg, inner_raw = state["adds"][1]
            # What Open vSwitch does: the inner message's error, then the commit's.
            inner_start = 24 if version == 4 else 16   # the ONF experimenter header is 8 bytes longer
            inner_error = codec.error(version, 2, 9, xid=inner_msg["xid"], data=inner_raw[inner_start:][:64])
            if version == 4:
                commit_error = error_for(msg, raw, 0xffff, 2313, experimenter=codec.ONF_VENDOR_ID)
            else:
                commit_error = error_for(msg, raw, 17, 13)
            return [inner_error, commit_error]
        return None
    sw = switch(answering(extra))
    with OpenFlowConnection(sw.path, timeout=5, versions=[version]) as conn:
        with pytest.raises(OpenFlowSwitchError) as err:
            conn.bundle(flows(3))
    assert (err.value.index, err.value.code_name, err.value.context) == (1, "OFPBAC_BAD_OUT_GROUP", "bundle commit")
    ctrls = [m["ctrl"] for m in sw.decoded() if m["type"] == "bundle_control"]
    assert ctrls == ["open_request", "commit_request"]   # a failed commit discards the bundle by itself


def test_bundle_error_found_through_the_data_xid(switch):
    def extra(msg, raw):
        if msg["type"] == "bundle_control" and msg["ctrl"] == "commit_request":
            inner = codec.flow_mod(5, {"priority": 2}, xid=4)   # HELLO 1, open 2, flows 3, 4, 5
            return [codec.error(5, 5, 3, xid=0, data=inner[:64]), error_for(msg, raw, 17, 13)]
        return None
    sw = switch(answering(extra))
    with OpenFlowConnection(sw.path, timeout=5, versions=[5]) as conn:
        with pytest.raises(OpenFlowSwitchError) as err:
            conn.bundle(flows(3))
    assert err.value.index == 1


def test_bundle_commit_error_without_a_message_error(switch):
    def extra(msg, raw):
        if msg["type"] == "bundle_control" and msg["ctrl"] == "commit_request":
            return [error_for(msg, raw, 17, 14)]
        return None
    sw = switch(answering(extra))
    with OpenFlowConnection(sw.path, timeout=5, versions=[5]) as conn:
        with pytest.raises(OpenFlowSwitchError) as err:
            conn.bundle(flows(2))
    assert (err.value.index, err.value.code_name, err.value.msg_type) == (None, "OFPBFC_TIMEOUT", "BUNDLE_CONTROL")


def test_bundle_open_refused(switch):
    def extra(msg, raw):
        if msg["type"] == "bundle_control":
            return [error_for(msg, raw, 1, 3)]
        return None
    sw = switch(answering(extra))
    with OpenFlowConnection(sw.path, timeout=5, versions=[4]) as conn:
        with pytest.raises(OpenFlowSwitchError) as err:
            conn.bundle(flows(1))
    assert err.value.context == "bundle open" and err.value.code_name == "OFPBRC_BAD_EXPERIMENTER"
    assert str(err.value).startswith("bundle open: ")
    assert err.value.msg_type == "ONFT_BUNDLE_CONTROL"


# -- addressing ------------------------------------------------------------------------------------

def test_mgmt_socket(monkeypatch):
    monkeypatch.delenv("OVS_RUNDIR", raising=False)
    assert mgmt_socket("br0") == "/var/run/openvswitch/br0.mgmt"
    monkeypatch.setenv("OVS_RUNDIR", "/tmp/x")
    assert mgmt_socket("br0") == "/tmp/x/br0.mgmt"
    assert mgmt_socket("br0", rundir="/run/ovs") == "/run/ovs/br0.mgmt"
    for bad in ("", "a/b", None):
        with pytest.raises(ValueError):
            mgmt_socket(bad)


@pytest.mark.parametrize("target,family,address", [
    ("/run/openvswitch/br0.mgmt", socket.AF_UNIX, "/run/openvswitch/br0.mgmt"),
    ("unix:/run/openvswitch/br0.mgmt", socket.AF_UNIX, "/run/openvswitch/br0.mgmt"),
    ("tcp:127.0.0.1:6653", socket.AF_INET, ("127.0.0.1", 6653)),
    ("tcp:[::1]:6653", socket.AF_INET6, ("::1", 6653)),
])
def test_parse_target(target, family, address):
    assert parse_target(target)[:2] == (family, address)


@pytest.mark.parametrize("target", ["", "tcp:127.0.0.1", "tcp:h:0", "tcp:h:x", "ssl:1.2.3.4:6653", "unix:", None])
def test_parse_target_errors(target):
    with pytest.raises(ValueError):
        parse_target(target)


def test_versions_offered_must_be_known():
    with pytest.raises(ValueError):
        OpenFlowConnection("/x", versions=[1])
    assert os.path.basename(OpenFlowConnection("/x").address) == "x"
