import json
import socket
import threading

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils import ovsdb
from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import (
    NamedUuid, OvsdbClient, OvsdbConflict, OvsdbTransactionError, Uuid, decode, encode, parse_endpoint,
)


def test_encode_decode_round_trip():
    value = {"a": "1", "b": "2"}
    assert encode(value) == ["map", [["a", "1"], ["b", "2"]]]
    assert decode(encode(value)) == value
    assert encode([1, 2]) == ["set", [1, 2]]
    assert encode(Uuid("u")) == ["uuid", "u"]
    assert encode(NamedUuid("n")) == ["named-uuid", "n"]
    assert decode(["set", [["uuid", "x"]]]) == ["x"]
    assert isinstance(decode(["uuid", "x"]), Uuid)


@pytest.mark.parametrize("endpoint,ok", [
    ("unix:/run/openvswitch/db.sock", True), ("tcp:127.0.0.1:6640", True), ("tcp:[::1]:6640", True),
    ("unix:relative", False), ("tcp:127.0.0.1", False), ("tcp:h:99999", False), ("ssl:1.2.3.4:6640", False),
    ("foo:bar", False), ("", False), ("nocolon", False),
])
def test_parse_endpoint(endpoint, ok):
    if ok:
        parse_endpoint(endpoint)
    else:
        with pytest.raises(ValueError):
            parse_endpoint(endpoint)


class ScriptedServer(threading.Thread):
    """Plays an OVSDB server on one end of a socketpair: answers each request with a scripted reply,
    sending it in small pieces and after an echo request, to exercise framing and echo handling."""

    def __init__(self, sock, replies):
        super().__init__(daemon=True)
        self.sock, self.replies, self.seen = sock, list(replies), []

    def run(self):
        dec, buf = json.JSONDecoder(), ""
        self.sock.settimeout(2)
        while self.replies or not any(m.get("id") == "e1" for m in self.seen):
            buf += self.sock.recv(65536).decode()
            while buf.strip():
                try:
                    msg, end = dec.raw_decode(buf.lstrip())
                except ValueError:
                    break
                buf = buf.lstrip()[end:]
                self.seen.append(msg)
                if msg.get("method") is None:  # our echo reply
                    continue
                self.sock.sendall(json.dumps({"method": "echo", "params": [], "id": "e1"}).encode())
                body = json.dumps({"id": msg["id"], "error": None, "result": self.replies.pop(0)}).encode()
                for i in range(0, len(body), 7):
                    self.sock.sendall(body[i:i + 7])


def client_with(replies):
    ours, theirs = socket.socketpair()
    server = ScriptedServer(theirs, replies)
    server.start()
    client = OvsdbClient("unix:/nonexistent", timeout=5)
    client.sock = ours
    return client, server


def test_transact_framing_and_echo():
    client, server = client_with([[{"rows": [{"name": "br0"}]}]])
    res = client.transact([ovsdb.op_select("Bridge", ["name"])])
    assert res == [{"rows": [{"name": "br0"}]}]
    server.join(2)
    echo_replies = [m for m in server.seen if m.get("id") == "e1"]
    assert echo_replies and echo_replies[0]["result"] == []


def test_failed_wait_is_a_conflict():
    client = client_with([[{}, {"error": "timed out"}]])[0]
    ops = [ovsdb.op_comment("x"), ovsdb.op_wait("Bridge", [], ["name"], [{"name": "a"}])]
    with pytest.raises(OvsdbConflict):
        client.transact(ops)


def test_constraint_violation_carries_server_message():
    reply = [{"uuid": ["uuid", "u"]}, {"error": "constraint violation", "details": "duplicate name"}]
    client = client_with([reply])[0]
    with pytest.raises(OvsdbTransactionError) as err:
        client.transact([ovsdb.op_insert("Bridge", {"name": "a"})])
    assert "constraint violation" in str(err.value) and "duplicate name" in str(err.value)


def test_cannot_connect_message(tmp_path):
    with pytest.raises(ovsdb.OvsdbConnectionError) as err:
        OvsdbClient("unix:%s/none.sock" % tmp_path).connect()
    assert "cannot connect to OVSDB" in str(err.value) and "ovsdb-server running" in str(err.value)
