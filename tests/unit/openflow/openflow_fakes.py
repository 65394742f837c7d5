"""Test doubles: a scripted switch on a unix socket, and a capture of what
``ovs-ofctl`` sends (the capture is an independent encoder: Open vSwitch's own)."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading

from ansible_collections.opdbus.infra.plugins.module_utils.openflow import codec

OVS_OFCTL = shutil.which("ovs-ofctl")


def read_messages(buf):
    """Split a byte buffer into (whole messages, rest)."""
    out = []
    while len(buf) >= 8:
        length = int.from_bytes(buf[2:4], "big")
        if len(buf) < length:
            break
        out.append(buf[:length])
        buf = buf[length:]
    return out, buf


class FakeSwitch(object):
    """Listens on a unix socket, accepts one connection, sends ``hello`` bytes,
    then calls ``handler(msg, raw)`` for every message and sends back the
    bytes it returns (a list). ``received`` keeps every raw message."""

    def __init__(self, handler=None, hello=None, versions=(4, 5, 6)):
        self.dir = tempfile.mkdtemp(prefix="ofsw", dir="/tmp")
        self.path = os.path.join(self.dir, "sw.sock")
        self.handler = handler or (lambda msg, raw: [])
        self.hello = codec.hello(versions) if hello is None else hello
        self.received = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(1)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.server.settimeout(5)
        try:
            conn = self.server.accept()[0]
        except OSError:
            return
        conn.settimeout(5)
        try:
            if self.hello:
                conn.sendall(self.hello)
            buf = b""
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                msgs, buf = read_messages(buf + chunk)
                for raw in msgs:
                    self.received.append(raw)
                    for out in self.handler(codec.decode(raw), raw) or []:
                        if out is None:   # close the connection
                            return
                        conn.sendall(out)
        finally:
            conn.close()

    def decoded(self):
        return [codec.decode(r) for r in self.received]

    def close(self):
        self.server.close()
        self.thread.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def ofctl_capture(args, version):
    """Run ``ovs-ofctl ARGS`` against a fake switch speaking ``version``.

    ``args`` is the ovs-ofctl argument list with the literal ``SWITCH`` where
    the target goes. The fake switch answers barriers, echo, bundle control
    and multipart requests (with empty replies). Returns the raw messages
    ovs-ofctl sent after its HELLO.
    """
    def handler(msg, raw):
        kind, xid = msg["type"], msg["xid"]
        if kind == "barrier_request":
            return [codec.encode({"type": "barrier_reply", "version": version, "xid": xid})]
        if kind == "echo_request":
            return [codec.echo_reply(version, xid, msg["data"])]
        if kind == "bundle_control":
            return [codec.encode(dict(msg, ctrl=msg["ctrl"].replace("request", "reply")))]
        if kind == "multipart_request":
            body = [] if isinstance(msg["mp_type"], str) else {"hex": ""}
            return [codec.encode({"type": "multipart_reply", "version": version, "xid": xid,
                                  "mp_type": msg["mp_type"], "flags": [], "body": body})]
        return []

    sw = FakeSwitch(handler, hello=codec.hello([version]))
    try:
        argv = [OVS_OFCTL, "-O", codec.VERSION_NAMES[version], "--no-names"]
        argv += ["unix:" + sw.path if a == "SWITCH" else a for a in args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
        if proc.returncode:
            raise AssertionError("ovs-ofctl failed: %s" % proc.stderr)
        sw.thread.join(5)
        return [r for r in sw.received if r[1] != codec.OFPT_HELLO]
    finally:
        sw.close()


def ofp_print(data, version=None):
    """``ovs-ofctl ofp-print`` of our bytes: Open vSwitch's reading of them."""
    argv = [OVS_OFCTL]
    if version:
        argv += ["-O", codec.VERSION_NAMES[version]]
    proc = subprocess.run(argv + ["ofp-print", data.hex()], capture_output=True, text=True, timeout=20, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
