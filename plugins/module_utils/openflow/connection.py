# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An OpenFlow 1.3-1.5 client for Open vSwitch's management sockets.

The transport knows nothing of Ansible. It connects to a bridge's management
socket (``<OVS_RUNDIR>/<bridge>.mgmt``, see :func:`mgmt_socket`) or to
``unix:PATH`` / ``tcp:HOST:PORT``, negotiates the version with a HELLO version
bitmap (we offer OF1.3-1.5 and use the highest common one; a bridge's
``protocols`` column limits what its management socket speaks too), answers
the switch's ECHO_REQUESTs while it waits, and matches replies to requests by
xid.

Applying changes:

* :meth:`OpenFlowConnection.bundle` applies FLOW_MODs and GROUP_MODs
  atomically: open, add every message, barrier (so that a message the switch
  refuses at add time is seen before anything is committed), commit. Any
  error discards the bundle and raises :class:`OpenFlowSwitchError` naming the
  index and xid of the message the switch refused. OF1.3 uses the ONF bundle
  extension, which Open vSwitch also speaks. Open vSwitch does not take
  METER_MODs in a bundle (OFPBFC_MSG_UNSUP).
* :meth:`OpenFlowConnection.send_batch` sends messages followed by one
  barrier and reports the first refused one the same way (not atomic: what
  came before it is applied).

Reading: :meth:`flow_stats`, :meth:`meters`, :meth:`meter_stats`,
:meth:`groups`, :meth:`group_stats` return the codec's canonical dicts, with
multipart replies (OFPMPF_REPLY_MORE) put back together.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os
import select
import socket
import time

from ansible_collections.opdbus.infra.plugins.module_utils._stream import connect_stream
from ansible_collections.opdbus.infra.plugins.module_utils.openflow import codec
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.errors import (  # noqa: F401 (re-exported)
    OpenFlowCodecError, OpenFlowConnectionError, OpenFlowError, OpenFlowSwitchError, OpenFlowTimeout,
    OpenFlowVersionError,
)

DEFAULT_RUNDIR = "/var/run/openvswitch"
HINT = "is ovs-vswitchd running and does the bridge exist?"


def mgmt_socket(bridge, rundir=None):
    """The path of a bridge's OpenFlow management socket.

    ``rundir`` defaults to ``$OVS_RUNDIR``, else /var/run/openvswitch.
    """
    if not bridge or "/" in bridge:
        raise ValueError("bad bridge name %r" % (bridge,))
    rundir = rundir or os.environ.get("OVS_RUNDIR") or DEFAULT_RUNDIR
    return os.path.join(rundir, bridge + ".mgmt")


def parse_target(target):
    """(family, address, display name) for a socket path, ``unix:PATH`` or ``tcp:HOST:PORT``."""
    if not isinstance(target, str) or not target:
        raise ValueError("the OpenFlow target must be a non-empty string")
    kind, sep, rest = target.partition(":")
    if target.startswith("/") or target.startswith(".") or not sep:
        return socket.AF_UNIX, target, "unix:" + target
    if kind == "unix":
        if not rest:
            raise ValueError("OpenFlow target %r has no socket path" % target)
        return socket.AF_UNIX, rest, target
    if kind == "tcp":
        host, sep, port = rest.rpartition(":")
        if not sep or not host:
            raise ValueError("OpenFlow target %r: expected tcp:HOST:PORT" % target)
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            port = int(port)
        except ValueError:
            raise ValueError("OpenFlow target %r: port %r is not a number" % (target, port))
        if not 0 < port < 65536:
            raise ValueError("OpenFlow target %r: port %d is out of range" % (target, port))
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return family, (host, port), target
    raise ValueError("OpenFlow target %r: unknown method %r; expected a socket path, unix:PATH or "
                     "tcp:HOST:PORT" % (target, kind))


def _versions_text(versions):
    return ", ".join(codec.VERSION_NAMES.get(v, "wire version %d" % v) for v in versions) or "none"


class OpenFlowConnection(object):
    """One OpenFlow connection to a switch. Use as a context manager.

    ``version`` is the negotiated wire version once connected.
    """

    def __init__(self, target, timeout=10.0, versions=codec.VERSIONS):
        self.target = target
        self.timeout = float(timeout)
        if self.timeout <= 0 or not math.isfinite(self.timeout):
            raise ValueError("timeout must be a positive number of seconds, got %s" % timeout)
        self.family, self.address, self.name = parse_target(target)
        self.versions = sorted(set(versions))
        for v in self.versions:
            if v not in codec.VERSIONS:
                raise ValueError("cannot offer OpenFlow wire version %r" % (v,))
        self.sock = None
        self.version = None
        self.peer_versions = None
        self.datapath_id = None
        self._buf = b""
        self._xid = 0
        self._bundle_id = 0

    # -- connection ---------------------------------------------------------
    def connect(self):
        if self.sock is not None:
            return self
        self.sock = connect_stream(self.family, self.address, self.timeout, "the OpenFlow socket %s" % self.name,
                                   HINT, OpenFlowTimeout, OpenFlowConnectionError)
        self._buf = b""
        self.version = None
        try:
            self._negotiate()
        except Exception:
            self.close()
            raise
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

    def _negotiate(self):
        xid = self.next_xid()
        self._send(codec.hello(self.versions, xid=xid))
        deadline = time.monotonic() + self.timeout
        raw = self._recv_raw(deadline, "HELLO")
        msg = codec.decode(raw)
        if msg["type"] == "error":
            raise OpenFlowVersionError("the switch at %s refused our HELLO with %s/%s"
                                       % (self.name, msg["type_name"], msg["code_name"]), ours=self.versions)
        if msg["type"] != "hello":
            raise OpenFlowConnectionError("the switch at %s did not start with HELLO (got %s)"
                                          % (self.name, msg["type"]))
        if msg["versions"] is not None:
            offered = msg["versions"]
            common = [v for v in offered if v in self.versions]
            chosen = max(common) if common else None
        else:
            # No bitmap: the peer speaks every version up to its header's.
            offered = list(range(1, msg["version"] + 1))
            chosen = min(max(self.versions), msg["version"])
            if chosen not in self.versions:
                chosen = None
        self.peer_versions = offered
        if chosen is None:
            try:
                self._send(codec.error(max(offered) if offered else self.versions[0], 0, 0, xid=xid,
                                       data=("we speak %s" % _versions_text(self.versions)).encode()))
            except OpenFlowError:
                pass
            raise OpenFlowVersionError(
                "no common OpenFlow version with %s: the switch offered %s, we offer %s (check the "
                "bridge's protocols column)" % (self.name, _versions_text(offered), _versions_text(self.versions)),
                offered=offered, ours=self.versions)
        self.version = chosen

    # -- framing ------------------------------------------------------------
    def next_xid(self):
        self._xid = (self._xid + 1) & 0xffffffff or 1
        return self._xid

    def _send(self, data):
        if self.sock is None:
            raise OpenFlowConnectionError("not connected to %s" % self.name)
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise OpenFlowTimeout("timed out sending to the OpenFlow socket %s" % self.name)
        except (OSError, IOError) as exc:
            self.close()
            raise OpenFlowConnectionError("connection to the OpenFlow socket %s broke: %s" % (self.name, exc))

    def _recv_raw(self, deadline, waiting_for):
        """The next whole message's bytes."""
        while True:
            if len(self._buf) >= codec.OFP_HEADER_LEN:
                length = int.from_bytes(self._buf[2:4], "big")
                if length < codec.OFP_HEADER_LEN:
                    self.close()
                    raise OpenFlowConnectionError("the switch at %s sent a message with a bad length %d"
                                                  % (self.name, length))
                if len(self._buf) >= length:
                    raw, self._buf = self._buf[:length], self._buf[length:]
                    return raw
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OpenFlowTimeout("no %s from the switch at %s within %.1f s"
                                      % (waiting_for, self.name, self.timeout))
            if self.sock is None:
                raise OpenFlowConnectionError("not connected to %s" % self.name)
            ready = select.select([self.sock], [], [], remaining)[0]
            if not ready:
                continue
            try:
                chunk = self.sock.recv(262144)
            except (OSError, IOError) as exc:
                self.close()
                raise OpenFlowConnectionError("connection to the OpenFlow socket %s broke: %s" % (self.name, exc))
            if not chunk:
                self.close()
                raise OpenFlowConnectionError("the switch at %s closed the connection while we waited for %s"
                                              % (self.name, waiting_for))
            self._buf += chunk

    def _recv(self, deadline, waiting_for):
        """The next decoded message that is not an ECHO_REQUEST (those are answered here)."""
        while True:
            raw = self._recv_raw(deadline, waiting_for)
            version, code, _length, xid = codec.parse_header(raw)
            if code == codec.OFPT_ECHO_REQUEST:
                self._send(codec.encode({"type": "echo_reply", "version": version, "xid": xid,
                                         "data": raw[codec.OFP_HEADER_LEN:]}))
                continue
            return codec.decode(raw)

    def _collect(self, xids, until, deadline, waiting_for):
        """Read until ``until(msg)`` is true; return every message whose xid is in ``xids``.

        Asynchronous messages (PORT_STATUS, PACKET_IN, ...) and answers to
        messages nobody waits for any more are dropped.
        """
        got = []
        while True:
            msg = self._recv(deadline, waiting_for)
            if msg["xid"] in xids or (msg["type"] == "error" and _data_xid(msg) in xids):
                got.append(msg)
                if until(msg):
                    return got

    # -- preparing messages ---------------------------------------------------
    def _prepare(self, msg, xid):
        """Bytes of msg (dict or bytes) at our version with the given xid."""
        if self.version is None:
            self.connect()
        if isinstance(msg, dict):
            version = msg.get("version", self.version)
            if version != self.version:
                raise OpenFlowCodecError("message is for wire version %s but the connection speaks %d"
                                         % (version, self.version))
            return codec.encode(dict(msg, version=self.version, xid=xid))
        data = bytes(msg)
        header = codec.parse_header(data)
        version, length = header[0], header[2]
        if version != self.version or length != len(data):
            raise OpenFlowCodecError("message bytes are for wire version %d (connection speaks %d) or have a "
                                     "bad length" % (version, self.version))
        return codec.with_xid(data, xid)

    def _switch_error(self, err, index=None, msg_type=None, context=None, errors=None):
        return OpenFlowSwitchError(err["err_type"], err["err_code"], err["type_name"], err["code_name"],
                                   experimenter=err["experimenter"], index=index, xid=err["xid"],
                                   msg_type=msg_type, data=err["data"], context=context, errors=errors)

    # -- requests -------------------------------------------------------------
    def send(self, msg):
        """Send a message without waiting; return its xid.

        An error the switch answers it with is not seen (it is dropped while
        waiting for something else): use :meth:`send_batch` to learn of it.
        """
        if self.sock is None:
            self.connect()
        xid = self.next_xid()
        self._send(self._prepare(msg, xid))
        return xid

    def request(self, msg, timeout=None):
        """Send a request and return its decoded reply.

        Multipart replies are merged: one dict whose ``body`` lists every entry
        of every part. An OFPT_ERROR answer raises OpenFlowSwitchError.
        """
        if self.sock is None:
            self.connect()
        xid = self.next_xid()
        data = self._prepare(msg, xid)
        self._send(data)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)

        def done(m):
            return m["type"] != "multipart_reply" or "more" not in m["flags"]

        replies = self._collect(set([xid]), done, deadline, "a reply to %s" % _msg_type_name(data))
        last = replies[-1]
        if last["type"] == "error":
            raise self._switch_error(last, msg_type=_msg_type_name(data))
        if last["type"] == "multipart_reply" and len(replies) > 1:
            body = []
            for part in replies:
                if part["type"] == "multipart_reply":
                    body.extend(part["body"])
            last = dict(last, body=body)
        return last

    def barrier(self, timeout=None):
        """Send BARRIER_REQUEST and wait for its reply."""
        return self.request({"type": "barrier_request"}, timeout=timeout)

    def echo(self, data=b"", timeout=None):
        return self.request({"type": "echo_request", "data": data}, timeout=timeout)

    def features(self, timeout=None):
        reply = self.request({"type": "features_request"}, timeout=timeout)
        self.datapath_id = reply["datapath_id"]
        return reply

    def send_batch(self, messages, timeout=None, context="batch"):
        """Send every message, then one barrier; raise for the first one refused.

        Not atomic: the messages before the refused one are applied (use
        :meth:`bundle` for all or nothing). Returns the xids sent.
        """
        if self.sock is None:
            self.connect()
        xids = []
        out = []  # joined once: growing one bytes object message by message is quadratic
        types = []
        for msg in messages:
            xid = self.next_xid()
            data = self._prepare(msg, xid)
            xids.append(xid)
            types.append(_msg_type_name(data))
            out.append(data)
        barrier_xid = self.next_xid()
        out.append(codec.barrier_request(self.version, xid=barrier_xid))
        self._send(b"".join(out))
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        index_of = dict((x, i) for i, x in enumerate(xids))
        got = self._collect(set(xids) | set([barrier_xid]), lambda m: m["xid"] == barrier_xid, deadline,
                            "the barrier reply")
        errors = self._indexed_errors(got, index_of)
        if errors:
            index, err = errors[0]
            raise self._switch_error(err, index=index, msg_type=types[index], context=context, errors=errors)
        return xids

    @staticmethod
    def _indexed_errors(messages, index_of):
        errors = []
        for m in messages:
            if m["type"] != "error":
                continue
            index = index_of.get(m["xid"])
            if index is None:
                index = index_of.get(_data_xid(m))
            if index is not None:
                errors.append((index, m))
        errors.sort(key=lambda pair: pair[0])
        return errors

    # -- bundles ----------------------------------------------------------------
    def bundle(self, messages, atomic=True, ordered=True, timeout=None):
        """Apply messages (FLOW_MOD, GROUP_MOD, dicts or bytes) in one bundle.

        Open, add each message (the inner message and its BUNDLE_ADD share an
        xid), barrier, commit. If the switch refuses any message, the bundle is
        discarded (a failed commit discards it by itself) and
        OpenFlowSwitchError names the first refused message's index and xid.
        Returns the list of xids the messages were sent with.
        """
        messages = list(messages)
        if not messages:
            return []
        if self.sock is None:
            self.connect()
        flags = [f for f, on in (("atomic", atomic), ("ordered", ordered)) if on]
        self._bundle_id = (self._bundle_id + 1) & 0xffffffff or 1
        bundle_id = self._bundle_id
        version = self.version
        deadline_base = self.timeout if timeout is None else timeout

        try:
            reply = self.request(codec.bundle_control(version, bundle_id, "open_request", flags),
                                 timeout=deadline_base)
        except OpenFlowSwitchError as exc:
            exc.context = "bundle open"
            exc.args = ("bundle open: %s" % exc.args[0],)
            raise
        if reply.get("type") != "bundle_control" or reply.get("ctrl") != "open_reply":
            raise OpenFlowError("the switch at %s answered the bundle open with %s" % (self.name, reply.get("type")))

        xids, types, out = [], [], []
        for msg in messages:
            xid = self.next_xid()
            inner = self._prepare(msg, xid)
            xids.append(xid)
            types.append(_msg_type_name(inner))
            out.append(codec.bundle_add(version, bundle_id, inner, flags, xid=xid))
        barrier_xid = self.next_xid()
        out.append(codec.barrier_request(version, xid=barrier_xid))
        self._send(b"".join(out))
        index_of = dict((x, i) for i, x in enumerate(xids))
        deadline = time.monotonic() + deadline_base
        got = self._collect(set(xids) | set([barrier_xid]), lambda m: m["xid"] == barrier_xid, deadline,
                            "the barrier reply after the bundle's messages")
        errors = self._indexed_errors(got, index_of)
        if errors:
            self._discard(bundle_id, flags)
            index, err = errors[0]
            raise self._switch_error(err, index=index, msg_type=types[index], context="bundle add",
                                     errors=errors)

        commit_xid = self.next_xid()
        self._send(codec.bundle_control(version, bundle_id, "commit_request", flags, xid=commit_xid))
        deadline = time.monotonic() + deadline_base
        got = self._collect(set(xids) | set([commit_xid]), lambda m: m["xid"] == commit_xid, deadline,
                            "the bundle commit reply")
        errors = self._indexed_errors(got, index_of)
        final = got[-1]
        if errors:
            index, err = errors[0]
            raise self._switch_error(err, index=index, msg_type=types[index], context="bundle commit",
                                     errors=errors)
        if final["type"] == "error":
            raise self._switch_error(final, msg_type="BUNDLE_CONTROL", context="bundle commit")
        return xids

    def _discard(self, bundle_id, flags):
        try:
            self.request(codec.bundle_control(self.version, bundle_id, "discard_request", flags))
        except OpenFlowSwitchError:
            pass

    # -- reading state ------------------------------------------------------------
    def flow_stats(self, table=None, cookie=None, cookie_mask=0, match=None, out_port=codec.OFPP_ANY,
                   out_group=codec.OFPG_ANY, timeout=None):
        """Every flow (of one table, or all) as flow stats entries.

        ``cookie``/``cookie_mask`` select flows whose cookie matches under the
        mask (``cookie`` alone means an exact match).
        """
        if cookie is None:
            cookie, cookie_mask = 0, 0
        elif not cookie_mask:
            cookie_mask = 0xffffffffffffffff
        reply = self.request({"type": "multipart_request", "mp_type": "flow", "flags": [],
                              "body": {"table": codec.OFPTT_ALL if table is None else table,
                                       "out_port": out_port, "out_group": out_group, "cookie": cookie,
                                       "cookie_mask": cookie_mask, "match": match or {}}}, timeout=timeout)
        return reply["body"]

    def meters(self, meter_id=codec.OFPM_ALL, timeout=None):
        """Meter configurations (canonical meter dicts)."""
        return self._multipart("meter_config", {"meter_id": meter_id}, timeout)

    def meter_stats(self, meter_id=codec.OFPM_ALL, timeout=None):
        return self._multipart("meter", {"meter_id": meter_id}, timeout)

    def groups(self, group_id=codec.OFPG_ALL, timeout=None):
        """Group descriptions (canonical group dicts).

        Before OF1.5 the request cannot name one group; the filtering is done
        here then.
        """
        if self.sock is None:
            self.connect()
        wire_id = group_id if self.version >= codec.OFP15_VERSION else codec.OFPG_ALL
        groups = self._multipart("group_desc", {"group_id": wire_id}, timeout)
        if group_id != codec.OFPG_ALL:
            groups = [g for g in groups if g["group_id"] == group_id]
        return groups

    def group_stats(self, group_id=codec.OFPG_ALL, timeout=None):
        return self._multipart("group", {"group_id": group_id}, timeout)

    def _multipart(self, mp_type, body, timeout):
        reply = self.request({"type": "multipart_request", "mp_type": mp_type, "flags": [], "body": body},
                             timeout=timeout)
        return reply["body"]


def _data_xid(error):
    """The xid of the message an OFPT_ERROR's data starts with, if any."""
    data = error["data"]
    if len(data) >= codec.OFP_HEADER_LEN:
        return codec.parse_header(data)[3]
    return None


def _msg_type_name(data):
    code = codec.parse_header(data)[1]
    if code == codec.OFPT_EXPERIMENTER and len(data) >= 16:
        experimenter, exp_type = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        if experimenter == codec.ONF_VENDOR_ID and exp_type == codec.ONFT_BUNDLE_CONTROL:
            return "ONFT_BUNDLE_CONTROL"
        if experimenter == codec.ONF_VENDOR_ID and exp_type == codec.ONFT_BUNDLE_ADD_MESSAGE:
            return "ONFT_BUNDLE_ADD_MESSAGE"
    return codec.MSG_TYPE_NAMES.get(code, "message type %d" % code)
