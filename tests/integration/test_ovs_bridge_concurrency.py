# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two module runs on the same bridge at the same time.

The module reads, plans and writes one transaction guarded by OVSDB "wait" operations; when
another client changed what it read, the wait fails and the module reads again and replans.

Real concurrent runs rarely hit that window, so the deterministic tests put a small OVSDB proxy
between one run and ovsdb-server: it holds that run's first write transaction, lets a second run
complete meanwhile, then forwards the (now stale) write.
"""

from __future__ import absolute_import, division, print_function

import codecs
import json
import os
import socket
import subprocess
import tempfile
import threading

import pytest

from conftest import netdev_bridge


def internal(name):
    return {"name": name, "type": "internal"}


def parse_run(proc_out, proc_err, rc):
    out = proc_out + proc_err
    assert "Traceback" not in out, out
    result = json.loads(proc_out.strip())
    assert not result.get("failed"), result.get("msg")
    assert rc == 0
    return result


def test_concurrent_runs_adding_different_ports_both_succeed(lab, names):
    br = names.bridge()
    lab.module(netdev_bridge(br)).ok()
    added = []
    for dummy in range(3):
        pa, pb = names.port(), names.port()
        procs = [subprocess.Popen(lab.module_cmd(netdev_bridge(br, ports=[internal(p)])), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=lab.module_env())
                 for p in (pa, pb)]
        for proc, port in zip(procs, (pa, pb)):
            out, err = proc.communicate(timeout=120)
            result = parse_run(out, err, proc.returncode)
            assert result["changed"] is True
            assert "add port %s (internal)" % port in result["changes"]
            assert result["ports"][port]["ofport"] == lab.ofport(port)
        added += [pa, pb]
    assert lab.list_ports(br) == sorted(added)
    for port in added:
        assert lab.is_tap(port), port


class OvsdbProxy(object):
    """Forwards a unix socket to the lab's ovsdb-server, JSON-RPC message by message.

    Before forwarding the first client request that is a write transaction (a "transact" with any
    operation but "select"), it calls ``hold()``. It records every write request and its reply.
    """

    def __init__(self, upstream, hold):
        assert upstream.startswith("unix:")
        self.upstream = upstream[len("unix:"):]
        self.hold = hold
        self.dir = tempfile.mkdtemp(prefix="opdbus-px-", dir="/tmp")
        self.path = os.path.join(self.dir, "db.sock")
        self.endpoint = "unix:" + self.path
        self.writes = []  # [request, reply or None]
        self.errors = []
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(8)
        self.threads = []
        self._start(self._accept)

    def _start(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _accept(self):
        while True:
            try:
                client = self.listener.accept()[0]
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(self.upstream)
            self._start(self._pump, client, server, True)
            self._start(self._pump, server, client, False)

    def _pump(self, src, dst, from_client):
        decoder, buf = codecs.getincrementaldecoder("utf-8")(), ""
        json_decoder = json.JSONDecoder()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += decoder.decode(data)
                while True:
                    buf = buf.lstrip()
                    try:
                        msg, end = json_decoder.raw_decode(buf)
                    except ValueError:
                        break
                    raw, buf = buf[:end], buf[end:]
                    self._seen(msg, from_client)
                    dst.sendall(raw.encode("utf-8"))
        except Exception as exc:  # recorded, asserted on by the test
            self.errors.append(repr(exc))
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _seen(self, msg, from_client):
        if from_client:
            if msg.get("method") == "transact" and any(
                    isinstance(op, dict) and op.get("op") != "select" for op in msg["params"][1:]):
                with self.lock:
                    self.writes.append([msg, None])
                    first = len(self.writes) == 1
                if first:
                    self.hold()
        else:
            with self.lock:
                for entry in self.writes:
                    if entry[1] is None and "id" in msg and msg.get("id") == entry[0].get("id"):
                        entry[1] = msg

    def failed_waits(self, index):
        """The op errors of the index-th write transaction's reply."""
        reply = self.writes[index][1]
        assert reply is not None, "no reply to write %d" % index
        return [r.get("error") for r in reply["result"] if isinstance(r, dict) and r.get("error")]

    def close(self):
        self.listener.close()
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass


@pytest.fixture
def proxy(lab):
    made = []

    def start(hold):
        px = OvsdbProxy(lab.ovsdb, hold)
        made.append(px)
        return px
    yield start
    for px in made:
        px.close()


def test_write_interleaved_by_another_run_is_retried(lab, names, proxy):
    br, pa, pb = names.bridge(), names.port(), names.port()
    lab.module(netdev_bridge(br)).ok()
    other = {}

    def hold():
        other["run"] = lab.module(netdev_bridge(br, ports=[internal(pb)]))

    px = proxy(hold)
    res = lab.module(netdev_bridge(br, ports=[internal(pa)], ovsdb=px.endpoint)).ok()
    assert px.errors == []
    other["run"].ok()
    # The held write failed on its wait, the module read again and wrote again.
    assert len(px.writes) >= 2
    assert px.failed_waits(0) == ["timed out"], px.writes[0]
    assert px.failed_waits(len(px.writes) - 1) == []
    assert res["changed"] is True and res["changes"] == ["add port %s (internal)" % pa]
    assert lab.list_ports(br) == sorted([pa, pb])
    assert set(res["ports"]) == {br, pa, pb}
    for port in (pa, pb):
        assert res["ports"][port]["ofport"] == lab.ofport(port)


def test_interleaved_run_changing_the_same_port_is_replanned(lab, names, proxy):
    """The other run adds the same port with another tag: the retried run replans against it."""
    br, pa = names.bridge(), names.port()
    lab.module(netdev_bridge(br)).ok()
    other = {}

    def hold():
        other["run"] = lab.module(netdev_bridge(br, ports=[dict(internal(pa), tag=20)]))

    px = proxy(hold)
    res = lab.module(netdev_bridge(br, ports=[dict(internal(pa), tag=10)], ovsdb=px.endpoint)).ok()
    assert px.errors == []
    assert other["run"].ok()["changes"] == ["add port %s (internal)" % pa, "port %s tag: 20" % pa]
    assert px.failed_waits(0) == ["timed out"]
    assert res["changes"] == ["port %s tag: 20 -> 10" % pa]
    assert lab.list_ports(br) == [pa]
    assert lab.port(pa)["tag"] == 10


def test_concurrent_creation_of_the_same_bridge(lab, names, proxy):
    br, pa, pb = names.bridge(), names.port(), names.port()
    other = {}

    def hold():
        other["run"] = lab.module(netdev_bridge(br, ports=[internal(pb)]))

    px = proxy(hold)
    run = lab.module(netdev_bridge(br, ports=[internal(pa)], ovsdb=px.endpoint))
    other["run"].ok()
    run.ok()
    assert lab.list_ports(br) == sorted([pa, pb])


def test_same_port_added_meanwhile_to_another_bridge_is_refused_clearly(lab, names, proxy):
    br1, br2, port = names.bridge(), names.bridge(), names.port()
    lab.module(netdev_bridge(br1)).ok()
    lab.module(netdev_bridge(br2)).ok()
    other = {}

    def hold():
        other["run"] = lab.module(netdev_bridge(br2, ports=[internal(port)]))

    px = proxy(hold)
    res = lab.module(netdev_bridge(br1, ports=[internal(port)], ovsdb=px.endpoint)).failed()
    other["run"].ok()
    assert "already belongs to bridge %r" % br2 in res["msg"]
    assert lab.list_ports(br2) == [port] and lab.list_ports(br1) == []
