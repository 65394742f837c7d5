"""Fixtures of the OpenFlow tests: a throwaway Open vSwitch for the real-switch tests.

The switch runs in a private run directory and, for ovs-vswitchd, a private
network namespace: the userspace datapath creates a tap device named
``ovs-netdev`` and one per bridge, names that would clash with any other
Open vSwitch running on the same host (the lab, other test runs).
"""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.openflow.connection import OpenFlowConnection

from ovs_procs import stop

SCHEMA = os.environ.get("OVS_SCHEMA", "/usr/share/openvswitch/vswitch.ovsschema")
TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-vswitchd", "ovs-ofctl", "unshare")


def pytest_configure(config):
    config.addinivalue_line("markers", "switch: runs against a real ovs-vswitchd (userspace datapath) "
                                       "started by the test itself")


def _missing():
    missing = [t for t in TOOLS if not shutil.which(t)]
    if not os.path.exists(SCHEMA):
        missing.append(SCHEMA)
    return missing


class Switch(object):
    """A running ovsdb-server + ovs-vswitchd pair in ``self.dir``."""

    def __init__(self, path):
        self.dir = path
        self.db = "unix:" + os.path.join(path, "db.sock")
        self.bridges = []

    def env(self):
        return dict(os.environ, OVS_RUNDIR=self.dir, OVS_LOGDIR=self.dir, OVS_DBDIR=self.dir)

    def run(self, *argv, **kw):
        proc = subprocess.run(list(argv), capture_output=True, text=True, env=self.env(), timeout=30, check=False, **kw)
        if proc.returncode:
            raise RuntimeError("%s failed: %s" % (" ".join(argv), proc.stderr.strip()))
        return proc.stdout

    def vsctl(self, *args):
        return self.run("ovs-vsctl", "--db=" + self.db, "--timeout=20", *args)

    def mgmt(self, bridge):
        return os.path.join(self.dir, bridge + ".mgmt")

    def add_bridge(self, name, protocols="OpenFlow13,OpenFlow14,OpenFlow15"):
        # Without --no-wait, ovs-vsctl waits until ovs-vswitchd has applied
        # the change (cur_cfg caught up), so the management socket exists.
        self.vsctl("add-br", name, "--", "set", "bridge", name, "datapath_type=netdev",
                   "protocols=" + protocols)
        self.bridges.append(name)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.mgmt(name)):
            if time.monotonic() > deadline:
                raise RuntimeError("%s did not appear" % self.mgmt(name))
            time.sleep(0.02)
        return self.mgmt(name)

    def ofctl(self, *args):
        return self.run("ovs-ofctl", *args)

    def connect(self, bridge="b0", **kw):
        return OpenFlowConnection(self.mgmt(bridge), timeout=10, **kw)


@pytest.fixture(scope="session")
def ovs():
    """A throwaway Open vSwitch with bridge b0 (OF1.3-1.5)."""
    missing = _missing()
    if missing:
        pytest.skip("real-switch test needs %s" % ", ".join(missing))
    if os.geteuid() != 0:
        pytest.skip("real-switch test needs root (network namespace for ovs-vswitchd)")
    path = tempfile.mkdtemp(prefix="ofovs", dir="/tmp")   # short: unix socket paths are limited to 107 bytes
    sw = Switch(path)
    started = []
    try:
        sw.run("ovsdb-tool", "create", os.path.join(path, "conf.db"), SCHEMA)
        sw.run("ovsdb-server", os.path.join(path, "conf.db"), "--remote=punix:" + os.path.join(path, "db.sock"),
               "--pidfile=" + os.path.join(path, "ovsdb-server.pid"),
               "--unixctl=" + os.path.join(path, "ovsdb-server.ctl"),
               "--log-file=" + os.path.join(path, "ovsdb-server.log"), "--detach")
        started.append(os.path.join(path, "ovsdb-server.pid"))
        sw.vsctl("--no-wait", "init")
        try:
            sw.run("unshare", "--net", "ovs-vswitchd", sw.db, "--pidfile=" + os.path.join(path, "ovs-vswitchd.pid"),
                   "--unixctl=" + os.path.join(path, "ovs-vswitchd.ctl"),
                   "--log-file=" + os.path.join(path, "ovs-vswitchd.log"), "--disable-system", "--detach")
        except RuntimeError as exc:
            pytest.skip("cannot start ovs-vswitchd in a private network namespace: %s" % exc)
        started.insert(0, os.path.join(path, "ovs-vswitchd.pid"))
        sw.add_bridge("b0")
        yield sw
    finally:
        for bridge in reversed(sw.bridges):
            try:
                sw.vsctl("--if-exists", "del-br", bridge)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        for pidfile in started:
            stop(pidfile)
        shutil.rmtree(path, ignore_errors=True)
