# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integration tests of opdbus.infra.ovs_bridge against the real lab.

The lab (``lab/lab.sh up``) runs ovsdb-server and ovs-vswitchd (userspace datapath) and writes a
sourceable ``$OPDBUS_LAB_DIR/env``. The tests find the lab through the environment
(``make test-integration`` sources ``.lab/env``), or else by reading that file themselves.

What the tests believe is what independent tools say: ``ovs-vsctl --db=$OPDBUS_OVSDB`` for the
database and ``ip -j`` for the kernel. The module's own code is never used to check the module.

The module is run two ways:

* through Ansible for real (``python -m ansible playbook`` / ``python -m ansible adhoc``, the
  repository's ansible.cfg, the ``json_results`` stdout callback shipped next to this file);
* directly (``python -m ansible_collections.opdbus.infra.plugins.modules.ovs_bridge args.json``),
  which is much faster, for the many cases where Ansible's plumbing is not what is tested.

If ovs-vswitchd runs in a network namespace of its own (its tap devices live there), every module
run and every ``ip`` oracle runs in that namespace too (``nsenter --net=/proc/PID/ns/net``).

Lab.apply() is the workhorse of the feature tests: check mode first (must change nothing and must
predict the real run's `changes` and diff exactly), then the real run (its diff must be what the
oracles show before and after, its bridge uuid and ports' ofports what ovs-vsctl says), then the
same run again (must change nothing).

Running with pytest-xdist is safe: names are unique per test, and the tests that compare the whole
database (marker `whole_db`) take an exclusive lock while every other test holds a shared one.
"""

from __future__ import absolute_import, division, print_function

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MODULE = "ansible_collections.opdbus.infra.plugins.modules.ovs_bridge"
FQCN = "opdbus.infra.ovs_bridge"
OVS_SCHEMA = os.environ.get("OVS_SCHEMA", "/usr/share/openvswitch/vswitch.ovsschema")

# Columns ovs-vswitchd (not a client) writes, or that move on their own: left out of DB dumps.
VOLATILE_COLUMNS = frozenset([
    "statistics", "status", "rstp_statistics", "rstp_status", "link_state", "link_speed", "link_resets",
    "admin_state", "duplex", "mtu", "mac_in_use", "ifindex", "lacp_current", "bfd_status", "cfm_fault",
    "cfm_fault_status", "cfm_flap_count", "cfm_health", "cfm_remote_mpids", "cfm_remote_opstate",
    "datapath_version", "datapath_id", "cur_cfg", "error", "is_connected", "role", "dpdk_initialized",
    "dpdk_version", "iface_types", "datapath_types", "ovs_version", "db_version", "system_type",
    "system_version", "ofport",
])
DUMP_TABLES = ("Open_vSwitch", "Bridge", "Port", "Interface", "Controller")


# ------------------------------------------------------------------------------------------------
# OVSDB values as ovs-vsctl --format=json prints them (RFC 7047 <value>)
# ------------------------------------------------------------------------------------------------

def ovs_decode(value):
    """sets -> list, maps -> dict, uuids -> str; atoms unchanged."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        kind, body = value
        if kind == "set":
            return [ovs_decode(v) for v in body]
        if kind == "map":
            return dict((ovs_decode(k), ovs_decode(v)) for k, v in body)
        if kind in ("uuid", "named-uuid"):
            return body
    return value


def opt(value):
    """An optional column (a set of 0 or 1 atoms) as the atom or None."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def as_list(value):
    return value if isinstance(value, list) else [value]


def strip_errors(ports):
    return dict((name, dict((k, v) for k, v in rep.items() if k != "error")) for name, rep in ports.items())


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------

class ModuleRun(object):
    """One direct run of the module: its JSON result and the raw process output."""

    def __init__(self, proc, args):
        self.proc = proc
        self.args = args
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        assert "Traceback" not in self.output, "the module printed a traceback:\n%s" % self.output
        try:
            self.result = json.loads(proc.stdout.strip())
        except ValueError:
            raise AssertionError("the module did not print one JSON document (rc %s):\nstdout: %s\nstderr: %s"
                                 % (proc.returncode, proc.stdout, proc.stderr))
        assert isinstance(self.result, dict), self.result
        for key in ("exception", "module_stderr"):
            assert key not in self.result, "%s in the result: %r" % (key, self.result[key])

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)

    def ok(self):
        assert not self.result.get("failed"), "the module failed: %s" % self.result.get("msg")
        assert self.rc == 0, "rc %d for a successful result: %s" % (self.rc, self.output)
        return self

    def failed(self):
        assert self.result.get("failed") is True, "the module did not fail: %s" % json.dumps(self.result)
        assert self.rc != 0
        msg = self.result.get("msg")
        assert isinstance(msg, str) and msg.strip(), "no message: %r" % (self.result,)
        return self


class AnsibleRun(object):
    """One ansible-playbook or ad-hoc run with the json_results callback."""

    def __init__(self, proc):
        self.proc = proc
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        doc = None
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith('{"plays"'):
                doc = json.loads(line)
                break
        assert doc is not None, "no JSON document from the callback (rc %s):\nstdout: %s\nstderr: %s" % (
            proc.returncode, proc.stdout, proc.stderr)
        self.doc = doc
        self.tasks = [t for play in doc["plays"] for t in play["tasks"]]

    def result(self, index_or_name, host="localhost"):
        """The host result of a task by index or by name."""
        if isinstance(index_or_name, int):
            task = self.tasks[index_or_name]
        else:
            matches = [t for t in self.tasks if t["task"]["name"] == index_or_name]
            assert matches, "no task %r in %s" % (index_or_name, [t["task"]["name"] for t in self.tasks])
            task = matches[0]
        return task["hosts"][host]


# ------------------------------------------------------------------------------------------------
# The lab
# ------------------------------------------------------------------------------------------------

def _read_env_file(path):
    """The variables a lab env file exports (sourced by bash, so quoting is bash's)."""
    out = subprocess.run(["bash", "-c", 'set -a; . "$1" >/dev/null; env -0', "lab-env", str(path)],
                         check=True, capture_output=True).stdout.decode()
    env = {}
    for item in out.split("\0"):
        key, sep, value = item.partition("=")
        if sep and (key.startswith("OPDBUS_") or key.startswith("OVS_")):
            env[key] = value
    return env


def _lab_env():
    if os.environ.get("OPDBUS_OVSDB"):
        return dict((k, v) for k, v in os.environ.items() if k.startswith("OPDBUS_") or k.startswith("OVS_"))
    lab_dir = Path(os.environ.get("OPDBUS_LAB_DIR") or REPO / ".lab")
    env_file = lab_dir / "env"
    if env_file.is_file():
        return _read_env_file(env_file)
    return None


def _collections_root(tmp_factory):
    """A directory holding ansible_collections/opdbus/infra that is this checkout: the link
    `make collection` creates (./.collections, as ansible.cfg says), another one on
    ANSIBLE_COLLECTIONS_PATH, or else a link made here."""
    candidates = [str(REPO / ".collections")]
    candidates += [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    for root in candidates:
        link = Path(root) / "ansible_collections" / "opdbus" / "infra"
        if link.exists() and link.resolve() == REPO:
            return root
    root = tmp_factory.mktemp("collections")
    (root / "ansible_collections" / "opdbus").mkdir(parents=True)
    (root / "ansible_collections" / "opdbus" / "infra").symlink_to(REPO)
    return str(root)


def _pid_from(pidfile):
    try:
        pid = int(Path(pidfile).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid):
    """True if the process exists and is not a zombie."""
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Lab(object):
    """The lab's OVS, its oracles (ovs-vsctl, ip) and the two ways to run the module."""

    def __init__(self, env, coll_root, workdir):
        self.env = env
        self.ovsdb = env["OPDBUS_OVSDB"]
        self.lab_dir = Path(env.get("OPDBUS_LAB_DIR") or REPO / ".lab")
        self.rundir = Path(env.get("OVS_RUNDIR") or self.ovsdb.partition(":")[2].rsplit("/", 1)[0])
        self.netns_list = self.lab_dir / "netns.list"
        self.workdir = Path(workdir)
        self.coll_root = coll_root
        self.ns_prefix = []
        vswitchd = _pid_from(self.rundir / "ovs-vswitchd.pid")
        if vswitchd is not None:
            mine, theirs = os.readlink("/proc/self/ns/net"), os.readlink("/proc/%d/ns/net" % vswitchd)
            if mine != theirs:
                self.ns_prefix = ["nsenter", "--net=/proc/%d/ns/net" % vswitchd]
        self.vswitchd_pid = vswitchd
        self._seq = 0

    # -- processes --------------------------------------------------------------------------------
    def sh(self, argv, check=True, ns=False, timeout=60, env=None, input=None):
        """Run a command (in the OVS network namespace if ns); return the CompletedProcess."""
        cmd = (self.ns_prefix if ns else []) + [str(a) for a in argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, input=input, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("%s failed (rc %d):\n%s%s" % (" ".join(cmd), proc.returncode, proc.stdout,
                                                               proc.stderr))
        return proc

    def _tmpfile(self, suffix, text):
        self._seq += 1
        path = self.workdir / ("%d-%d%s" % (os.getpid(), self._seq, suffix))
        path.write_text(text)
        return path

    # -- ovs-vsctl oracle -------------------------------------------------------------------------
    def vsctl(self, *args, check=True, db=None):
        return self.sh(["ovs-vsctl", "--db=%s" % (db or self.ovsdb), "--timeout=20"] + list(args),
                       check=check).stdout

    def rows(self, table, *conditions, columns=None, db=None):
        """Rows of a table (optionally `find` conditions such as name=x), decoded to Python."""
        args = ["--format=json", "--data=json"]
        if columns:
            args.append("--columns=" + ",".join(columns))
        args += (["find", table] + list(conditions)) if conditions else ["list", table]
        doc = json.loads(self.vsctl(*args, db=db))
        return [dict(zip(doc["headings"], (ovs_decode(v) for v in row))) for row in doc["data"]]

    def row(self, table, name, db=None):
        found = self.rows(table, "name=%s" % json.dumps(name), db=db)
        assert len(found) <= 1
        return found[0] if found else None

    def bridge(self, name):
        return self.row("Bridge", name)

    def port(self, name):
        return self.row("Port", name)

    def iface(self, name):
        return self.row("Interface", name)

    def bridge_exists(self, name):
        return self.sh(["ovs-vsctl", "--db=%s" % self.ovsdb, "br-exists", name], check=False).returncode == 0

    def br_external_ids(self, bridge):
        """A bridge's external ids per ovs-vsctl br-get-external-id (for a fake bridge too)."""
        out = self.vsctl("br-get-external-id", bridge)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def list_ports(self, bridge):
        """Port names of a bridge (real or fake) per ovs-vsctl, without the bridge's own port."""
        return sorted(self.vsctl("list-ports", bridge).split())

    def bridge_port_names(self, bridge):
        """Every Port row of a real bridge, its local port included."""
        row = self.bridge(bridge)
        uuids = set(as_list(row["ports"]))
        return sorted(p["name"] for p in self.rows("Port") if p["_uuid"] in uuids)

    def ofport(self, iface_name):
        value = opt(self.iface(iface_name)["ofport"])
        return None if value in (None, -1) else value

    def controllers(self, bridge):
        return sorted(self.vsctl("get-controller", bridge).split())

    def dump(self, db=None):
        """The whole database as ovs-vsctl sees it, without the columns vswitchd keeps moving."""
        out = {}
        for table in DUMP_TABLES:
            rows = self.rows(table, db=db)
            out[table] = sorted(
                (dict((k, v) for k, v in r.items() if k not in VOLATILE_COLUMNS) for r in rows),
                key=lambda r: r["_uuid"])
        return out

    def scoped_dump(self, names):
        """The rows a test owns: bridges and ports with these names and what they reference."""
        names = set(names)
        bridges = [b for b in self.rows("Bridge") if b["name"] in names]
        ports = self.rows("Port")
        port_uuids = set(u for b in bridges for u in as_list(b["ports"]))
        ports = [p for p in ports if p["_uuid"] in port_uuids or p["name"] in names]
        iface_uuids = set(u for p in ports for u in as_list(p["interfaces"]))
        ifaces = [i for i in self.rows("Interface") if i["_uuid"] in iface_uuids or i["name"] in names]
        ctl_uuids = set(u for b in bridges for u in as_list(b["controller"]))
        ctls = [c for c in self.rows("Controller") if c["_uuid"] in ctl_uuids]

        def clean(rows):
            return sorted((dict((k, v) for k, v in r.items() if k not in VOLATILE_COLUMNS) for r in rows),
                          key=lambda r: r["_uuid"])
        return {"Bridge": clean(bridges), "Port": clean(ports), "Interface": clean(ifaces),
                "Controller": clean(ctls)}

    # -- ip oracle --------------------------------------------------------------------------------
    def ip_json(self, *args, netns=None):
        """`ip -j ARGS` in the OVS network namespace (or in a named one); parsed."""
        if netns:
            proc = self.sh(["ip", "-n", netns, "-j"] + list(args), check=False)
        else:
            proc = self.sh(["ip", "-j"] + list(args), check=False, ns=True)
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout or "[]")

    def link(self, dev, netns=None):
        found = self.ip_json("link", "show", "dev", dev, netns=netns)
        return found[0] if found else None

    def link_up(self, dev):
        link = self.link(dev)
        return link is not None and "UP" in link["flags"]

    def addresses(self, dev, link_local=False):
        """CIDRs on a device per `ip -j addr`: without IPv6 link-local unless asked for."""
        found = self.ip_json("addr", "show", "dev", dev)
        if not found:
            return None
        out = []
        for addr in found[0].get("addr_info", []):
            if "local" not in addr:
                continue
            is_ll = addr["family"] == "inet6" and addr.get("scope") == "link"
            if is_ll == link_local:
                out.append("%s/%d" % (addr["local"], addr["prefixlen"]))
        return sorted(out)

    def link_snapshot(self, devs):
        """Admin state and addresses of devices, to prove a run changed nothing in the kernel."""
        snap = {}
        for dev in sorted(set(devs)):
            found = self.ip_json("addr", "show", "dev", dev)
            if not found:
                snap[dev] = None
                continue
            snap[dev] = ("UP" in found[0]["flags"],
                         sorted("%s/%d" % (a["local"], a["prefixlen"]) for a in found[0].get("addr_info", [])
                                if "local" in a))
        return snap

    def is_tap(self, dev):
        """True if a tun/tap device of this name exists in the OVS network namespace."""
        link = self.ip_json("-d", "link", "show", "dev", dev)
        return bool(link) and link[0].get("linkinfo", {}).get("info_kind") == "tun"

    # -- the module, directly ---------------------------------------------------------------------
    def module_env(self, extra=None):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([self.coll_root] + [p for p in [env.get("PYTHONPATH")] if p])
        env.pop("OPDBUS_OVSDB", None)  # every run says which OVSDB it means, unless a test sets this
        env.update(extra or {})
        return env

    def module(self, args, check=False, diff=False, env=None, endpoint=True, timeout=120):
        """Run the module directly and return its ModuleRun. The lab's endpoint is added unless
        `args` has one or endpoint is False."""
        args = dict(args)
        if endpoint and "ovsdb" not in args:
            args["ovsdb"] = self.ovsdb
        payload = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
        path = self._tmpfile(".json", json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
        proc = self.sh([sys.executable, "-m", MODULE, path], check=False, ns=True, env=self.module_env(env),
                       timeout=timeout)
        return ModuleRun(proc, args)

    def module_cmd(self, args):
        """The argv of a direct run (for tests that start runs concurrently)."""
        args = dict(args)
        args.setdefault("ovsdb", self.ovsdb)
        payload = dict(args, _ansible_check_mode=False, _ansible_diff=False)
        path = self._tmpfile(".json", json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
        return self.ns_prefix + [sys.executable, "-m", MODULE, str(path)]

    # -- the module, through Ansible --------------------------------------------------------------
    def ansible_env(self, extra=None):
        env = dict(os.environ)
        env.update({
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "json_results",
            "ANSIBLE_CALLBACK_PLUGINS": str(HERE / "callback_plugins"),
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
        })
        # Always this checkout, whatever ANSIBLE_COLLECTIONS_PATH the caller's environment has.
        env["ANSIBLE_COLLECTIONS_PATH"] = self.coll_root
        env.pop("OPDBUS_OVSDB", None)
        env.update(extra or {})
        return env

    def _ansible(self, argv, check, diff, env, timeout):
        cmd = [sys.executable, "-m", "ansible"] + argv + [
            "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc = subprocess.run(self.ns_prefix + cmd, capture_output=True, text=True, timeout=timeout,
                              env=self.ansible_env(env), cwd=str(REPO), check=False)
        return AnsibleRun(proc)

    def playbook(self, plays, check=False, diff=False, env=None, timeout=300):
        """Run a playbook (a list of plays, or a list of tasks for one play on localhost)."""
        if plays and "hosts" not in plays[0]:
            plays = [{"name": "integration", "hosts": "localhost", "gather_facts": False, "tasks": plays}]
        path = self._tmpfile(".yml", json.dumps(plays, indent=1))  # JSON is YAML
        return self._ansible(["playbook", str(path)], check, diff, env, timeout)

    def adhoc(self, args, check=False, diff=False, env=None, endpoint=True, timeout=300):
        """`ansible localhost -m opdbus.infra.ovs_bridge -a JSON`; returns the AnsibleRun."""
        args = dict(args)
        if endpoint and "ovsdb" not in args:
            args["ovsdb"] = self.ovsdb
        return self._ansible(["adhoc", "localhost", "-m", FQCN, "-a", json.dumps(args)], check, diff, env,
                             timeout)

    # -- converging with every cross-check --------------------------------------------------------
    def apply(self, args, idempotent=True, devices=()):
        """Check mode, then the real run, then a second run; cross-check them all.

        * check mode changes nothing (the test's rows in OVSDB, the devices' state in the kernel);
        * check mode predicts the real run: same `changed`, same `changes`, same diff;
        * the real run's bridge uuid and ports' ofports are what ovs-vsctl says;
        * a second identical run changes nothing (unless idempotent=False).
        Returns the real run.
        """
        names = set([args["name"]] + [p["name"] for p in args.get("ports") or []])
        if args.get("parent"):
            names.add(args["parent"])
        devs = set(devices) | set(p["name"] for p in args.get("ports") or [] if p.get("type") == "internal")
        db_before, kernel_before = self.scoped_dump(names), self.link_snapshot(devs)
        view_before = self.oracle_view(args)
        predicted = self.module(args, check=True, diff=True).ok()
        assert self.scoped_dump(names) == db_before, "check mode changed OVSDB"
        assert self.link_snapshot(devs) == kernel_before, "check mode changed the kernel"
        self.assert_check_report(predicted, args)

        real = self.module(args, diff=True).ok()
        assert predicted["changed"] == real["changed"]
        assert predicted["changes"] == real["changes"], "check mode predicted %s, the run did %s" % (
            predicted["changes"], real["changes"])
        assert predicted["diff"]["before"] == real["diff"]["before"]
        assert predicted["diff"]["after"] == real["diff"]["after"]
        assert real["changed"] == bool(real["changes"])
        assert real["diff"]["before"] == (view_before or {}), "diff before is not what ovs-vsctl/ip showed"
        assert real["diff"]["after"] == (self.oracle_view(args) or {}), "diff after is not what ovs-vsctl/ip show"
        self.assert_report(real, args)
        if idempotent:
            again = self.module(args, diff=True).ok()
            assert again["changes"] == [], "second run changed %s" % again["changes"]
            assert again["changed"] is False
            assert again["diff"]["before"] == again["diff"]["after"]
            assert again["bridge"] == real["bridge"]
            # "error" is left out: ovs-vswitchd publishes interface errors some time after it applied
            # a configuration, so the first run may not see one yet.
            assert strip_errors(again["ports"]) == strip_errors(real["ports"])
        return real

    def assert_check_report(self, run, args):
        """Check mode reports the current uuid, and for each port its current uuid and ofport
        (None for a port that does not exist yet)."""
        name = args["name"]
        row = self.port(name) if args.get("parent") else self.bridge(name)
        if args.get("parent") and row is not None and row["fake_bridge"] is not True:
            row = None
        assert run["bridge"] == {"name": name, "uuid": row["_uuid"] if row else None}
        for pname, rep in run["ports"].items():
            port = self.port(pname)
            assert rep["uuid"] == (port["_uuid"] if port else None), pname
            assert rep["ofport"] == (self.ofport(pname) if port else None), pname

    def assert_report(self, run, args):
        """The returned bridge uuid and ports[*].uuid/ofport match the oracle."""
        name = args["name"]
        if args.get("state") == "absent":
            assert run["bridge"]["uuid"] is None
            assert run["ports"] == {}
            return
        if args.get("parent"):
            row = self.port(name)
            assert row is not None and row["fake_bridge"] is True
            members = set(self.list_ports(name))
        else:
            row = self.bridge(name)
            assert row is not None
            members = set(self.bridge_port_names(name))
        assert run["bridge"] == {"name": name, "uuid": row["_uuid"]}
        assert set(run["ports"]) == members, "reported ports %s, ovs-vsctl says %s" % (
            sorted(run["ports"]), sorted(members))
        for pname, rep in run["ports"].items():
            assert rep["uuid"] == self.port(pname)["_uuid"], pname
            assert rep["ofport"] == self.ofport(pname), pname

    def oracle_view(self, args):
        """The bridge as ovs-vsctl and ip see it, shaped like the module's diff (before/after).

        Ports that `args` gives addresses or up for carry those keys, read with `ip -j`.
        None when the bridge does not exist.
        """
        name, parent = args["name"], args.get("parent")
        link_keys = dict((p["name"], [k for k in ("addresses", "up") if p.get(k) is not None])
                         for p in args.get("ports") or [])
        ports = dict((p["_uuid"], p) for p in self.rows("Port"))
        ifaces = dict((i["_uuid"], i) for i in self.rows("Interface"))
        if parent:
            fake = [p for p in ports.values() if p["name"] == name and p["fake_bridge"] is True]
            parent_row = self.bridge(parent)
            if not fake or parent_row is None:
                return None
            vlan = opt(fake[0]["tag"])
            members = [ports[u] for u in as_list(parent_row["ports"])
                       if opt(ports[u]["tag"]) == vlan and not ports[u]["fake_bridge"]]
            view = {"name": name, "parent": parent, "vlan": vlan, "external_ids": self.br_external_ids(name)}
        else:
            row = self.bridge(name)
            if row is None:
                return None
            # ovs-vsctl's view of a bridge's ports: neither its fake bridges nor their ports.
            listed = set(self.list_ports(name)) | set([name])
            members = [ports[u] for u in as_list(row["ports"]) if ports[u]["name"] in listed]
            ctl = dict((c["_uuid"], c["target"]) for c in self.rows("Controller"))
            view = {
                "name": name,
                "datapath_type": row["datapath_type"] or "system",
                "fail_mode": opt(row["fail_mode"]),
                "protocols": sorted(as_list(row["protocols"])),
                "stp": row["stp_enable"],
                "rstp": row["rstp_enable"],
                "controller": sorted(ctl[u] for u in as_list(row["controller"])),
                "other_config": row["other_config"],
                "external_ids": row["external_ids"],
            }
        view["ports"] = {}
        for port in members:
            iface = ifaces[as_list(port["interfaces"])[0]]
            pview = {
                "type": iface["type"] or "system",
                "options": iface["options"],
                "tag": opt(port["tag"]),
                "trunks": sorted(as_list(port["trunks"])),
                "vlan_mode": opt(port["vlan_mode"]),
                "ofport_request": opt(iface["ofport_request"]),
                "external_ids": port["external_ids"],
                "interface_external_ids": iface["external_ids"],
            }
            keys = link_keys.get(port["name"], [])
            if "addresses" in keys:
                pview["addresses"] = self.addresses(port["name"]) or []
            if "up" in keys:
                pview["up"] = self.link_up(port["name"])
            view["ports"][port["name"]] = pview
        return view

    # -- namespaces -------------------------------------------------------------------------------
    def add_netns(self, name):
        """Create a network namespace, registered with the lab so that lab-down removes it."""
        assert name.startswith("opdbus-"), name
        with open(str(self.netns_list), "a+") as fh:  # registered first: never a namespace lab-down misses
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            if name not in fh.read().split():
                fh.write(name + "\n")
        if Path("/run/netns", name).exists():  # left over from an interrupted run
            self.sh(["ip", "netns", "del", name], check=False)
        self.sh(["ip", "netns", "add", name])
        self.sh(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def del_netns(self, name):
        if Path("/run/netns", name).exists():
            self.sh(["ip", "netns", "del", name], check=False)


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "whole_db: compares the whole OVSDB; runs alone (exclusive lock)")


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    env = _lab_env()
    if not env or not env.get("OPDBUS_OVSDB"):
        pytest.skip("the lab is not up: run `lab/lab.sh up` and source .lab/env (or `make test-integration`)")
    for tool in ("ovs-vsctl", "ip", "nsenter"):
        if shutil.which(tool) is None:
            pytest.fail("%s is needed by the integration tests" % tool)
    the_lab = Lab(env, _collections_root(tmp_path_factory), tmp_path_factory.mktemp("runs"))
    proc = the_lab.sh(["ovs-vsctl", "--db=%s" % the_lab.ovsdb, "--timeout=10", "show"], check=False)
    if proc.returncode != 0:
        pytest.fail("the lab's OVSDB at %s does not answer: %s" % (the_lab.ovsdb, proc.stderr.strip()))
    if the_lab.vswitchd_pid is None:
        pytest.fail("ovs-vswitchd of the lab is not running (no live pid in %s)" % the_lab.rundir)
    with db_lock(the_lab, exclusive=False):
        _probe_datapath(the_lab)
    return the_lab


def _probe_datapath(lab):
    """Fail fast, with the reason, if ovs-vswitchd cannot make userspace-datapath bridges (for
    example because another ovs-vswitchd in its network namespace holds the "ovs-netdev" tap):
    otherwise every test would wait for taps that never come."""
    probe = "itprobe" + secrets.token_hex(3)
    try:
        lab.vsctl("add-br", probe, "--", "set", "Bridge", probe, "datapath_type=netdev")
        ofport = opt(lab.iface(probe)["ofport"])
        if ofport in (None, -1) or not lab.is_tap(probe):
            pytest.fail("ovs-vswitchd (pid %s) did not open bridge %s on the userspace datapath (ofport %r); "
                        "is another ovs-vswitchd running in its network namespace? See %s"
                        % (lab.vswitchd_pid, probe, ofport, lab.rundir / "ovs-vswitchd.log"))
    finally:
        lab.vsctl("--if-exists", "del-br", probe, check=False)


@contextlib.contextmanager
def db_lock(lab, exclusive):
    """Shared by every test that changes the DB; exclusive for the ones that compare all of it."""
    path = lab.lab_dir / ".integration-db.lock"
    with open(str(path), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _db_lock(request):
    if "lab" not in request.fixturenames:
        yield
        return
    the_lab = request.getfixturevalue("lab")
    with db_lock(the_lab, request.node.get_closest_marker("whole_db") is not None):
        yield


class Names(object):
    """Unique, short (<= 15 bytes) names; every bridge handed out is deleted at teardown."""

    def __init__(self, lab):
        self.lab = lab
        self.prefix = "it" + secrets.token_hex(2)
        self.count = 0
        self.bridges = []

    def _next(self, kind):
        self.count += 1
        name = "%s%s%d" % (self.prefix, kind, self.count)
        assert len(name) <= 15
        return name

    def bridge(self):
        name = self._next("b")
        self.bridges.append(name)
        return name

    def port(self):
        return self._next("p")

    def other(self, kind="x"):
        """A unique name that is not cleaned up in the lab (for throwaway instances)."""
        return self._next(kind)

    def cleanup(self):
        # Fake bridges were handed out after their parents: delete in reverse order.
        for name in reversed(self.bridges):
            self.lab.sh(["ovs-vsctl", "--db=%s" % self.lab.ovsdb, "--timeout=20", "--if-exists", "del-br", name],
                        check=False)


@pytest.fixture
def names(lab):
    made = Names(lab)
    yield made
    made.cleanup()


def netdev_bridge(name, **kwargs):
    """Module arguments of a real bridge on the userspace datapath (the lab has no kernel datapath)."""
    args = {"name": name, "datapath_type": "netdev"}
    args.update(kwargs)
    return args


# ------------------------------------------------------------------------------------------------
# A throwaway OVS (its own run dir, ovsdb-server and ovs-vswitchd), for tests that kill daemons
# ------------------------------------------------------------------------------------------------

class ThrowawayOvs(object):
    def __init__(self, lab, vswitchd=True):
        self.lab = lab
        # Short path: unix socket paths are limited to 107 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="opdbus-it-", dir="/tmp"))
        self.sock = self.dir / "db.sock"
        self.endpoint = "unix:%s" % self.sock
        self.netns = None
        self.ovsdb_pid = None
        self.vswitchd_pid = None
        self.env = dict(os.environ, OVS_RUNDIR=str(self.dir), OVS_LOGDIR=str(self.dir), OVS_DBDIR=str(self.dir))
        try:
            self._start(vswitchd)
        except BaseException:
            self.stop()
            raise

    def _run(self, argv, ns=None):
        cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=self.env, check=False)
        assert proc.returncode == 0, "%s: %s%s" % (" ".join(cmd), proc.stdout, proc.stderr)
        return proc

    def _start(self, vswitchd):
        d = self.dir
        self._run(["ovsdb-tool", "create", d / "conf.db", OVS_SCHEMA])
        self._run(["ovsdb-server", d / "conf.db", "--remote=punix:%s" % self.sock,
                   "--pidfile=%s" % (d / "ovsdb-server.pid"), "--unixctl=%s" % (d / "ovsdb-server.ctl"),
                   "--log-file=%s" % (d / "ovsdb-server.log"), "--detach", "--no-chdir"])
        self.ovsdb_pid = _pid_from(d / "ovsdb-server.pid")
        assert self.ovsdb_pid, "ovsdb-server did not start (see %s)" % (d / "ovsdb-server.log")
        self._run(["ovs-vsctl", "--db=%s" % self.endpoint, "--timeout=10", "--no-wait", "init"])
        if vswitchd:
            # Its own network namespace: the userspace datapath's "ovs-netdev" tap and the bridges'
            # taps must not meet those of another ovs-vswitchd.
            self.netns = self.lab.add_netns("opdbus-it%s" % secrets.token_hex(3))
            self._run(["ovs-vswitchd", self.endpoint, "--pidfile=%s" % (d / "ovs-vswitchd.pid"),
                       "--unixctl=%s" % (d / "ovs-vswitchd.ctl"), "--log-file=%s" % (d / "ovs-vswitchd.log"),
                       "--detach", "--no-chdir", "--disable-system"], ns=self.netns)
            self.vswitchd_pid = _pid_from(d / "ovs-vswitchd.pid")
            assert self.vswitchd_pid, "ovs-vswitchd did not start (see %s)" % (d / "ovs-vswitchd.log")

    @staticmethod
    def _wait_gone(pid, seconds):
        deadline = time.monotonic() + seconds
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return not pid_alive(pid)

    def _ours(self, pid):
        try:
            return str(self.dir) in Path("/proc/%d/cmdline" % pid).read_text()
        except OSError:
            return False

    def _kill(self, pid):
        if pid and pid_alive(pid) and self._ours(pid):
            os.kill(pid, signal.SIGTERM)
            if not self._wait_gone(pid, 10):
                os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, 5)

    def stop(self):
        if self.vswitchd_pid and pid_alive(self.vswitchd_pid) and self._ours(self.vswitchd_pid):
            # exit --cleanup removes the datapath and its ports (the taps) even without ovsdb-server.
            subprocess.run(["ovs-appctl", "-t", str(self.dir / "ovs-vswitchd.ctl"), "--timeout=10", "exit",
                            "--cleanup"], capture_output=True, timeout=30, check=False)
            self._wait_gone(self.vswitchd_pid, 10)
        self._kill(self.vswitchd_pid)
        self._kill(self.ovsdb_pid)
        if self.netns:
            self.lab.del_netns(self.netns)
        shutil.rmtree(str(self.dir), ignore_errors=True)


@pytest.fixture
def throwaway_ovs(lab):
    made = []

    def start(vswitchd=True):
        ovs = ThrowawayOvs(lab, vswitchd=vswitchd)
        made.append(ovs)
        return ovs
    yield start
    for ovs in made:
        ovs.stop()


# ------------------------------------------------------------------------------------------------
# OpenFlow: the openflow_* modules, run directly, and ovs-ofctl as their oracle
# ------------------------------------------------------------------------------------------------

OF_MODULE = "ansible_collections.opdbus.infra.plugins.modules.%s"
OF_PROTOCOLS = "OpenFlow13,OpenFlow14,OpenFlow15"


def of_module(lab, name, args, check=False, diff=False, env=None, timeout=120):
    """Run opdbus.infra.<name> (openflow_flow or openflow_info) directly and return its ModuleRun.

    The lab's run dir is passed as `rundir` unless `args` has a rundir or a target.
    """
    args = dict(args)
    if "target" not in args and "rundir" not in args:
        args["rundir"] = str(lab.rundir)
    payload = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    handle, path = tempfile.mkstemp(suffix=".json", prefix="of-", dir=str(lab.workdir))
    with os.fdopen(handle, "w") as fh:
        fh.write(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
    proc = lab.sh([sys.executable, "-m", OF_MODULE % name, path], check=False, ns=True, env=lab.module_env(env),
                  timeout=timeout)
    return ModuleRun(proc, args)


def _ofctl_lines(text):
    """The body of an ovs-ofctl dump: without the OFPST_... reply header, stripped, empty lines dropped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("OFPST_")]


def parse_ofctl_meters(text):
    """`ovs-ofctl dump-meters` as {meter_id: {"flags": [...], "bands": [{"type", "rate", "burst_size"}]}}.

    ovs-ofctl prints burst_size only for meters with the burst flag; without it, burst_size is None here.
    """
    meters = {}
    current = None
    for line in _ofctl_lines(text):
        if line.startswith("meter="):
            head, sep, tail = line.partition(" bands=")
            assert sep, "unexpected meter line %r" % line
            words = head.split()
            current = {"flags": sorted(words[1:]), "bands": []}
            meters[int(words[0].split("=", 1)[1])] = current
            line = tail
        if line.startswith("type="):
            fields = dict(word.split("=", 1) for word in line.split())
            current["bands"].append({"type": fields["type"], "rate": int(fields["rate"]),
                                     "burst_size": int(fields["burst_size"]) if "burst_size" in fields else None})
    return meters


class OfSwitch(object):
    """One bridge as ovs-ofctl sees it over its management socket: flows, meters, groups."""

    def __init__(self, lab, bridge, protocol="OpenFlow13"):
        self.lab = lab
        self.bridge = bridge
        self.protocol = protocol
        self.mgmt = str(lab.rundir / (bridge + ".mgmt"))

    def ofctl(self, *args, **kwargs):
        """`ovs-ofctl -O <protocol> ARGS`; its CompletedProcess (an assertion error if it fails, unless check=False)."""
        return self.lab.sh(["ovs-ofctl", "-O", self.protocol] + list(args), **kwargs)

    def add_flows(self, flows):
        """Add flows (ovs-ofctl syntax) the way another controller would."""
        self.ofctl("add-flows", self.mgmt, "-", input="\n".join(flows) + "\n")

    def flows(self, cookie=None):
        """The flows (of one cookie, or all), one ovs-ofctl line each, sorted."""
        args = ["dump-flows", "--no-stats", self.mgmt]
        if cookie is not None:
            args.append("cookie=%d/-1" % cookie)
        return sorted(_ofctl_lines(self.ofctl(*args).stdout))

    def meters(self):
        return parse_ofctl_meters(self.ofctl("dump-meters", self.mgmt).stdout)

    def meters_text(self):
        """dump-meters, one entry per meter (its line and its bands), sorted: to prove nothing changed."""
        out = []
        for line in _ofctl_lines(self.ofctl("dump-meters", self.mgmt).stdout):
            if line.startswith("meter=") or not out:
                out.append(line)
            else:
                out[-1] += " " + line
        return sorted(out)

    def groups(self):
        return sorted(_ofctl_lines(self.ofctl("dump-groups", self.mgmt).stdout))

    def snapshot(self):
        """Everything the openflow modules can change: every flow (all cookies), meter and group."""
        return {"flows": self.flows(), "meters": self.meters_text(), "groups": self.groups()}


def of_bridge(lab, name, protocols=OF_PROTOCOLS, fail_mode=None, ports=()):
    """Make a netdev bridge with ovs-vsctl (internal ports given as (name, ofport) pairs) and wait for its
    management socket; return its OfSwitch (ovs-ofctl speaking the first of `protocols`)."""
    cmd = ["add-br", name, "--", "set", "Bridge", name, "datapath_type=netdev", "protocols=%s" % protocols]
    if fail_mode:
        cmd.append("fail_mode=%s" % fail_mode)
    for port, ofport in ports:
        cmd += ["--", "add-port", name, port, "--", "set", "Interface", port, "type=internal",
                "ofport_request=%d" % ofport]
    lab.vsctl(*cmd)
    switch = OfSwitch(lab, name, protocols.split(",")[0])
    deadline = time.monotonic() + 20
    while not os.path.exists(switch.mgmt) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.exists(switch.mgmt), "no management socket %s for bridge %s" % (switch.mgmt, name)
    for port, ofport in ports:
        assert lab.ofport(port) == ofport, "port %s got ofport %r, not %d" % (port, lab.ofport(port), ofport)
    return switch


# The btrfs suite's fixtures (tests/integration/btrfs). They live in btrfs_support.py because a
# conftest.py in that directory would take the module name ``conftest`` from this file.
from btrfs_support import bdir, btrfs_cmd, btrfs_mounts, plain_dir, replica_dir  # noqa: E402,F401 pylint: disable=unused-import,wrong-import-position
# The liblxc suite's fixtures (tests/integration/containers), for the same reason.
from lxc_support import ct_names, debian_base, lxc_backend, lxc_module, lxcpath  # noqa: E402,F401 pylint: disable=unused-import,wrong-import-position
# The PackageKit suite's fixtures (tests/integration/packagekit), for the same reason.
from packagekit_support import local_repo, pk, pk_address, pk_workdir, restore_packages  # noqa: E402,F401 pylint: disable=unused-import,wrong-import-position
# The numa suite's container (tests/integration/numa), for the same reason.
from numa_support import numa_ct  # noqa: E402,F401 pylint: disable=unused-import,wrong-import-position
# The privacy chain suite's lab (tests/integration/privacy), for the same reason.
from privacy_support import privacy_lab  # noqa: E402,F401 pylint: disable=unused-import,wrong-import-position
