# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small, direct OVSDB management protocol client (RFC 7047).

The transport knows nothing of Ansible. It speaks JSON-RPC 1.0 over a unix or
tcp stream socket: ``transact`` (with ``wait`` operations for optimistic
concurrency), ``monitor`` (to follow ``Open_vSwitch.cur_cfg`` until
ovs-vswitchd has applied a change) and answers the server's ``echo`` probes.

Why not python-ovs's IDL: the IDL replicates whole tables through a monitor and
needs the schema before the first request. A task needs one read and one write,
so a direct client costs two round trips and no schema download, and it has no
dependency on the managed host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import select
import socket
import time

from ansible_collections.opdbus.infra.plugins.module_utils._stream import connect_stream

DEFAULT_ENDPOINT = "unix:/var/run/openvswitch/db.sock"
DB = "Open_vSwitch"


class OvsdbError(Exception):
    """Base class of every error this client raises."""


class OvsdbConnectionError(OvsdbError):
    """The server cannot be reached, or the connection broke."""


class OvsdbTimeout(OvsdbError):
    """The server, or ovs-vswitchd behind it, did not answer in time."""


class OvsdbConflict(OvsdbError):
    """A ``wait`` operation failed: another client changed what we read."""


class OvsdbTransactionError(OvsdbError):
    """The server refused a transaction (constraint violation and the like).

    ``error`` and ``details`` are the server's own words.
    """

    def __init__(self, error, details=None, op_index=None, op=None):
        self.error = error
        self.details = details
        self.op_index = op_index
        self.op = op
        msg = "OVSDB error: %s" % error
        if details:
            msg += ": %s" % details
        if op is not None:
            msg += " (operation %d: %s on %s)" % (op_index, op.get("op"), op.get("table", "-"))
        super(OvsdbTransactionError, self).__init__(msg)


# --------------------------------------------------------------------------
# RFC 7047 value encoding
# --------------------------------------------------------------------------

class Uuid(str):
    """A row uuid (``["uuid", "..."]`` on the wire)."""

    def to_json(self):
        return ["uuid", str(self)]


class NamedUuid(str):
    """A uuid-name of a row inserted in the same transaction."""

    def to_json(self):
        return ["named-uuid", str(self)]


def encode(value):
    """Encode a Python value as an OVSDB <value>.

    list/tuple/set -> set, dict -> map, Uuid/NamedUuid -> uuid, atoms unchanged.
    """
    if isinstance(value, (Uuid, NamedUuid)):
        return value.to_json()
    if isinstance(value, dict):
        return ["map", [[encode(k), encode(v)] for k, v in sorted(value.items())]]
    if isinstance(value, (list, tuple, set, frozenset)):
        items = value if isinstance(value, (list, tuple)) else sorted(value)
        return ["set", [encode(v) for v in items]]
    return value


def decode(value):
    """Decode an OVSDB <value> to Python.

    sets become lists, maps become dicts, uuids become :class:`Uuid`.
    A set of one element is sent bare by the server; callers that expect a set
    use :func:`as_list`.
    """
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        kind, body = value
        if kind == "uuid":
            return Uuid(body)
        if kind == "named-uuid":
            return NamedUuid(body)
        if kind == "set":
            return [decode(v) for v in body]
        if kind == "map":
            return dict((decode(k), decode(v)) for k, v in body)
    return value


def as_list(value):
    """A decoded set column as a list (a bare atom is a one-element set)."""
    if isinstance(value, list):
        return value
    return [value]


def as_optional(value):
    """A decoded optional column (set of 0 or 1) as the atom or None."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def decode_row(row):
    return dict((k, decode(v)) for k, v in row.items())


# --------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------

def op_select(table, columns=None, where=None):
    op = {"op": "select", "table": table, "where": where or []}
    if columns is not None:
        op["columns"] = list(columns)
    return op


def op_insert(table, row, uuid_name=None):
    op = {"op": "insert", "table": table, "row": dict((k, encode(v)) for k, v in row.items())}
    if uuid_name:
        op["uuid-name"] = uuid_name
    return op


def op_update(table, uuid, row):
    return {"op": "update", "table": table, "where": [where_uuid(uuid)],
            "row": dict((k, encode(v)) for k, v in row.items())}


def op_mutate(table, where, mutations):
    return {"op": "mutate", "table": table, "where": where,
            "mutations": [[c, m, encode(v)] for c, m, v in mutations]}


def op_delete(table, where):
    return {"op": "delete", "table": table, "where": where}


def op_wait(table, where, columns, rows, until="==", timeout=0):
    """Abort the transaction unless the rows still read as ``rows``."""
    return {"op": "wait", "table": table, "where": where, "columns": list(columns),
            "until": until, "rows": [dict((k, encode(v)) for k, v in r.items()) for r in rows],
            "timeout": timeout}


def op_comment(text):
    return {"op": "comment", "comment": text}


def where_uuid(uuid):
    return ["_uuid", "==", encode(Uuid(uuid))]


# --------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------

def parse_endpoint(endpoint):
    """Return (family, address) for ``unix:PATH`` or ``tcp:HOST:PORT``.

    Raises ValueError with a message naming what is wrong.
    """
    if not isinstance(endpoint, str) or not endpoint:
        raise ValueError("the OVSDB endpoint must be a non-empty string")
    kind, sep, rest = endpoint.partition(":")
    if not sep:
        raise ValueError("OVSDB endpoint %r has no method; expected unix:PATH or tcp:HOST:PORT" % endpoint)
    if kind == "unix":
        if not rest.startswith("/"):
            raise ValueError("OVSDB endpoint %r: the unix socket path must be absolute" % endpoint)
        return socket.AF_UNIX, rest
    if kind == "tcp":
        host, sep, port = rest.rpartition(":")
        if not sep or not host:
            raise ValueError("OVSDB endpoint %r: expected tcp:HOST:PORT" % endpoint)
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            port = int(port)
        except ValueError:
            raise ValueError("OVSDB endpoint %r: port %r is not a number" % (endpoint, port))
        if not 0 < port < 65536:
            raise ValueError("OVSDB endpoint %r: port %d is out of range" % (endpoint, port))
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return family, (host, port)
    if kind in ("ssl", "punix", "ptcp", "pssl"):
        raise ValueError("OVSDB endpoint %r: method %r is not supported; use unix:PATH or tcp:HOST:PORT"
                         % (endpoint, kind))
    raise ValueError("OVSDB endpoint %r: unknown method %r; expected unix:PATH or tcp:HOST:PORT"
                     % (endpoint, kind))


class OvsdbClient(object):
    """One connection to an OVSDB server. Use as a context manager."""

    def __init__(self, endpoint=DEFAULT_ENDPOINT, timeout=10.0):
        self.endpoint = endpoint
        self.timeout = float(timeout)
        if self.timeout <= 0 or not math.isfinite(self.timeout):
            raise ValueError("timeout must be a positive number of seconds, got %s" % timeout)
        self.family, self.address = parse_endpoint(endpoint)
        self.sock = None
        self._buf = ""
        self._decoder = json.JSONDecoder()
        self._next_id = 0
        self._notifications = []

    # -- connection ---------------------------------------------------------
    def connect(self):
        if self.sock is not None:
            return self
        self.sock = connect_stream(self.family, self.address, self.timeout, "OVSDB at %s" % self.endpoint,
                                   "is ovsdb-server running?", OvsdbTimeout, OvsdbConnectionError)
        return self

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()

    # -- framing ------------------------------------------------------------
    def _send(self, msg):
        data = json.dumps(msg, separators=(",", ":")).encode("utf-8")
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise OvsdbTimeout("timed out sending to OVSDB at %s" % self.endpoint)
        except (OSError, IOError) as exc:
            self.close()
            raise OvsdbConnectionError("connection to OVSDB at %s broke: %s" % (self.endpoint, exc))

    def _recv_message(self, deadline):
        """Return the next complete JSON message from the stream."""
        while True:
            msg = self._try_decode()
            if msg is not None:
                return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OvsdbTimeout("no answer from OVSDB at %s within %.1f s" % (self.endpoint, self.timeout))
            ready = select.select([self.sock], [], [], remaining)[0]
            if not ready:
                continue
            try:
                chunk = self.sock.recv(262144)
            except (OSError, IOError) as exc:
                self.close()
                raise OvsdbConnectionError("connection to OVSDB at %s broke: %s" % (self.endpoint, exc))
            if not chunk:
                self.close()
                raise OvsdbConnectionError("OVSDB at %s closed the connection" % self.endpoint)
            self._buf += chunk.decode("utf-8")

    def _try_decode(self):
        buf = self._buf.lstrip()
        # A whole message always ends with "}": do not re-parse a large partial
        # reply on every chunk.
        if not buf or not buf.rstrip().endswith("}"):
            self._buf = buf
            return None
        try:
            msg, end = self._decoder.raw_decode(buf)
        except ValueError:
            self._buf = buf
            return None
        self._buf = buf[end:]
        return msg

    # -- JSON-RPC -----------------------------------------------------------
    def call(self, method, params, timeout=None):
        """Send a request and return its result; serve echo and keep notifications."""
        if self.sock is None:
            self.connect()
        self._next_id += 1
        req_id = self._next_id
        self._send({"method": method, "params": params, "id": req_id})
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            msg = self._recv_message(deadline)
            if self._dispatch(msg):
                continue
            if msg.get("id") != req_id:
                continue
            if msg.get("error") is not None:
                err = msg["error"]
                if isinstance(err, dict):
                    raise OvsdbTransactionError(err.get("error", "error"), err.get("details"))
                raise OvsdbTransactionError(str(err))
            return msg.get("result")

    def _dispatch(self, msg):
        """Handle server requests and notifications; True if msg was one."""
        method = msg.get("method")
        if method is None:
            return False
        if method == "echo" and msg.get("id") is not None:
            self._send({"result": msg.get("params", []), "error": None, "id": msg["id"]})
        elif msg.get("id") is None:
            self._notifications.append(msg)
        return True

    def list_dbs(self):
        return self.call("list_dbs", [])

    def get_schema(self, db=DB):
        return self.call("get_schema", [db])

    def transact(self, operations, db=DB, timeout=None):
        """Run operations in one transaction; return the per-operation results.

        Raises OvsdbConflict when a ``wait`` failed, OvsdbTransactionError for
        any other error the server reports (with its own message).
        """
        result = self.call("transact", [db] + list(operations), timeout=timeout)
        if not isinstance(result, list):
            raise OvsdbError("OVSDB returned a malformed transaction result: %r" % (result,))
        for index, res in enumerate(result):
            if isinstance(res, dict) and res.get("error"):
                op = operations[index] if index < len(operations) else None
                if op is not None and op.get("op") == "wait" and res["error"] == "timed out":
                    raise OvsdbConflict("the database changed while this task ran (%s on %s)"
                                        % (op.get("op"), op.get("table")))
                raise OvsdbTransactionError(res["error"], res.get("details"),
                                            index if op is not None else None, op)
        return result

    def select(self, table, columns=None, where=None):
        res = self.transact([op_select(table, columns, where)])
        return [decode_row(r) for r in res[0]["rows"]]

    # -- waiting for ovs-vswitchd ---------------------------------------------
    def wait_cur_cfg(self, target, timeout=None):
        """Block until Open_vSwitch.cur_cfg >= target (ovs-vswitchd applied it).

        Uses a monitor on the one column, so there is no polling.
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        monitor_id = "cur_cfg"
        initial = self.call("monitor", [DB, monitor_id, {"Open_vSwitch": {"columns": ["cur_cfg"]}}])
        cur = _cur_cfg_from_update(initial)
        try:
            while cur is None or cur < target:
                # A cur_cfg of -1 or a slow vswitchd: follow "update" notifications.
                msg = self._next_notification(deadline, target, timeout)
                if msg.get("method") == "update" and msg["params"][0] == monitor_id:
                    value = _cur_cfg_from_update(msg["params"][1])
                    if value is not None:
                        cur = value
        finally:
            try:
                self.call("monitor_cancel", [monitor_id], timeout=min(2.0, self.timeout))
            except OvsdbError:
                pass
        return cur

    def _next_notification(self, deadline, target, timeout):
        while True:
            if self._notifications:
                return self._notifications.pop(0)
            try:
                msg = self._recv_message(deadline)
            except OvsdbTimeout:
                raise OvsdbTimeout("ovs-vswitchd did not apply the change within %.1f s "
                                   "(cur_cfg never reached %d); is ovs-vswitchd running?" % (timeout, target))
            if not self._dispatch(msg):
                continue


def _cur_cfg_from_update(update):
    for row in (update or {}).get("Open_vSwitch", {}).values():
        new = row.get("new")
        if new and "cur_cfg" in new:
            return new["cur_cfg"]
    return None
