# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The liblxc lxc_backend against real containers (busybox and Debian bookworm with systemd)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys
import time

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.btrfs import is_btrfs
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import (
    LxcError, NotFound, ValidationError, normalise_spec, spec_changes,
)
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.liblxc import derived_port

from lxc_support import lxc_tool  # pylint: disable=import-error

MIB = 1024 * 1024

SPECS = [
    {},
    {"hostname": "box1", "cores": 1, "memory_mb": 128, "onboot": False},
    {"cores": 2, "memory_mb": 256, "swap_mb": 64, "onboot": True, "rootfs_gb": 2},
    {"features": {"nesting": True, "tun": True}},
    {"features": {"fuse": True}, "mounts": [{"source": "/usr/share/doc", "target": "/mnt/doc", "readonly": True},
                                            {"source": "/tmp", "target": "/mnt/my tmp"}]},
    {"network": [{"address": "192.0.2.10/24", "gateway": "192.0.2.1", "bridge": "br0"},
                 {"name": "eth1", "address": "dhcp", "hwaddr": "02:00:00:00:00:01", "port": "p-eth1"},
                 {"name": "eth2", "address": "2001:db8::5/64", "gateway": "2001:db8::1"},
                 {"name": "eth3", "type": "socket", "bridge": "br0", "port": "int3", "address": "manual"}]},
]


def _spec(name, **extra):
    spec = {"name": name, "template": "busybox"}
    spec.update(extra)
    return spec


def _config(lxcpath, name):
    with open(os.path.join(lxcpath, name, "config")) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def _cgroup_dir(pid, controller):
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            num, ctrls, path = line.rstrip("\n").split(":", 2)
            if (controller and controller in ctrls.split(",")) or (not controller and num == "0"):
                return "/sys/fs/cgroup/%s%s" % (controller or "", path) if controller else "/sys/fs/cgroup" + path
    return None


def _cg_read(pid, v1_controller, v1_file, v2_file):
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        path = os.path.join(_cgroup_dir(pid, None), v2_file)
    else:
        path = os.path.join(_cgroup_dir(pid, v1_controller), v1_file)
    with open(path) as f:
        return f.read().strip()


def _init_pid(lxcpath, name):
    return int(lxc_tool(lxcpath, "lxc-info", "-n", name, "-pH", check=True).stdout.strip())


@pytest.mark.parametrize("extra", SPECS, ids=["bare", "limits", "limits-swap", "nesting-tun", "fuse-mounts", "network"])
def test_create_read_matches_spec(lxc_backend, ct_names, lxcpath, extra):
    name = ct_names.new("spec")
    spec = normalise_spec(_spec(name, **extra))
    started = time.monotonic()
    assert lxc_backend.create(spec, timeout=120) == name
    info = lxc_backend.last_create
    print("busybox create: %.2fs (%s)" % (time.monotonic() - started, info))
    assert lxc_backend.state(name) == "stopped"
    current = lxc_backend.read(name)
    assert spec_changes(current, spec) == {}
    assert lxc_backend.read(name) == current  # stable
    config = _config(lxcpath, name)
    assert not [line for line in config if line.startswith("lxc.net.") and ".link = lxcbr0" in line]
    if extra.get("network"):
        assert "lxc.net.0.ipv4.address = 192.0.2.10/24" in config
        assert not any(line.startswith("lxc.net.0.link") for line in config)  # veth: the host side is attached by the caller
        assert "lxc.net.3.type = phys" in config and "lxc.net.3.link = int3" in config
    meta = os.path.join(lxcpath, name, "opdbus.json")
    assert os.stat(meta).st_mode & 0o777 == 0o600


def test_create_existing_refused(lxc_backend, ct_names):
    name = ct_names.new("dup")
    lxc_backend.create(_spec(name), timeout=120)
    before = lxc_backend.read(name)
    with pytest.raises(LxcError, match="already exists"):
        lxc_backend.create(_spec(name, cores=3), timeout=120)
    assert lxc_backend.read(name) == before


def test_lifecycle_busybox(lxc_backend, ct_names, lxcpath):
    name = ct_names.new("life")
    spec = normalise_spec(_spec(name, hostname="alpha", cores=1, memory_mb=128, swap_mb=32,
                                network=[{"address": "198.51.100.7/24", "gateway": "198.51.100.1"}]))
    lxc_backend.create(spec, timeout=120)
    assert name in [item["name"] for item in lxc_backend.list()]
    lxc_backend.start(name, timeout=30)
    assert lxc_backend.state(name) == "running"
    pid = _init_pid(lxcpath, name)
    assert os.path.exists("/proc/%d" % pid)
    assert lxc_backend.addresses(name) == {"eth0": ["198.51.100.7/24"]}
    lxc_backend.start(name, timeout=30)  # idempotent

    # live resources: the cgroup files are the oracle
    v1 = not os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    assert int(_cg_read(pid, "memory", "memory.limit_in_bytes", "memory.max")) == 128 * MIB
    current = lxc_backend.read(name)
    desired = dict(current, cores=2, memory_mb=192, swap_mb=64)
    changes = spec_changes(current, desired)
    assert sorted(changes) == ["cores", "memory_mb", "swap_mb"]
    assert lxc_backend.change(name, changes, timeout=30) == []
    assert int(_cg_read(pid, "memory", "memory.limit_in_bytes", "memory.max")) == 192 * MIB
    if v1:
        assert _cg_read(pid, "cpu", "cpu.cfs_quota_us", None) == "200000"
        assert int(_cg_read(pid, "memory", "memory.memsw.limit_in_bytes", None)) == (192 + 64) * MIB
    else:
        assert _cg_read(pid, None, None, "cpu.max") == "200000 100000"
        assert int(_cg_read(pid, None, None, "memory.swap.max")) == 64 * MIB
    assert spec_changes(lxc_backend.read(name), desired) == {}
    # lowering works too (v1: memory before memsw)
    desired = dict(desired, memory_mb=96, swap_mb=0)
    lxc_backend.change(name, spec_changes(lxc_backend.read(name), desired), timeout=30)
    assert int(_cg_read(pid, "memory", "memory.limit_in_bytes", "memory.max")) == 96 * MIB

    # hostname: written, needs a restart
    changes = spec_changes(lxc_backend.read(name), dict(desired, hostname="beta"))
    assert list(changes) == ["hostname"]
    assert lxc_backend.change(name, changes, timeout=30) == ["hostname"]
    assert "lxc.uts.name = beta" in _config(lxcpath, name)
    assert lxc_tool(lxcpath, "lxc-attach", "-n", name, "--", "hostname", check=True).stdout.strip() == "alpha"

    with pytest.raises(LxcError, match="is running; stop it first"):
        lxc_backend.destroy(name, timeout=30)
    lxc_backend.stop(name, timeout=1, force=True)
    assert lxc_backend.state(name) == "stopped"
    assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/comm" % pid).read().strip() != "init"
    assert lxc_backend.addresses(name) == {}
    lxc_backend.stop(name, timeout=1, force=True)  # idempotent
    lxc_backend.start(name, timeout=30)
    assert lxc_tool(lxcpath, "lxc-attach", "-n", name, "--", "hostname", check=True).stdout.strip() == "beta"
    lxc_backend.stop(name, timeout=1, force=True)
    lxc_backend.destroy(name, timeout=30)
    assert lxc_backend.state(name) == "absent"
    assert not os.path.exists(os.path.join(lxcpath, name))
    with pytest.raises(NotFound):
        lxc_backend.read(name)


def test_change_network_features_mounts(lxc_backend, ct_names, lxcpath):
    name = ct_names.new("chg")
    lxc_backend.create(_spec(name, network=[{"address": "192.0.2.3/24"}], mounts=[{"source": "/tmp", "target": "/a"}]), timeout=120)
    current = lxc_backend.read(name)
    desired = normalise_spec(_spec(name, features={"tun": True}, mounts=[{"source": "/usr", "target": "/b", "readonly": True}],
                                   network=[{"address": "192.0.2.4/24", "port": "h2chg0"}], onboot=True))
    changes = spec_changes(current, desired)
    assert sorted(changes) == ["features", "mounts", "network", "onboot"]
    assert lxc_backend.change(name, changes, timeout=30) == ["features", "mounts", "network"]
    assert spec_changes(lxc_backend.read(name), desired) == {}
    config = _config(lxcpath, name)
    assert "lxc.net.0.veth.pair = h2chg0" in config and "lxc.start.auto = 1" in config
    assert not [line for line in config if "/tmp a none" in line]
    # the template's own mount entries are kept
    assert [line for line in config if line.startswith("lxc.mount.entry = /lib lib")]


def test_clone(lxc_backend, ct_names, lxcpath):
    base = ct_names.new("base")
    lxc_backend.create(_spec(base, network=[{"address": "192.0.2.20/24"}], memory_mb=64), timeout=120)
    clone = ct_names.new("clone")
    started = time.monotonic()
    assert lxc_backend.create({"name": clone, "template": "clone:" + base, "cores": 1}, timeout=120) == clone
    info = lxc_backend.last_create
    print("clone: %.2fs %s" % (time.monotonic() - started, info))
    rootfs = os.path.join(lxcpath, clone, "rootfs")
    if is_btrfs(lxcpath):
        assert info["clone"] == "snapshot"
        shown = subprocess.run(["btrfs", "subvolume", "show", rootfs], check=True, capture_output=True, text=True).stdout
        src_uuid = subprocess.run(["btrfs", "subvolume", "show", os.path.join(lxcpath, base, "rootfs")], check=True,
                                  capture_output=True, text=True).stdout.split("UUID:", 1)[1].split()[0]
        assert "Parent UUID:" in shown and src_uuid in shown.split("Parent UUID:", 1)[1].split("\n")[0]
    else:
        assert info["clone"] == "copy"
    current = lxc_backend.read(clone)
    assert current["template"] == "clone:" + base and current["cores"] == 1 and current["memory_mb"] == 64
    # the clone's veth host side is renamed after the clone, not kept from the source
    assert current["network"][0]["address"] == "192.0.2.20/24" and current["network"][0]["port"] == derived_port(clone, 0)
    assert current["hostname"] == clone
    base_pair = [line for line in _config(lxcpath, base) if "veth.pair" in line]
    clone_pair = [line for line in _config(lxcpath, clone) if "veth.pair" in line]
    assert base_pair and clone_pair and base_pair != clone_pair
    lxc_backend.start(clone, timeout=30)
    assert lxc_backend.addresses(clone) == {"eth0": ["192.0.2.20/24"]}
    lxc_backend.stop(clone, timeout=1, force=True)


def test_debian_systemd(lxc_backend, debian_base, ct_names, lxcpath):
    name = debian_base["name"]
    assert lxc_backend.read(name)["template"] == "debian"
    lxc_backend.start(name, timeout=120)
    try:
        pid = _init_pid(lxcpath, name)
        # PID 1 of the container runs systemd (its comm says "init" until systemd renames itself)
        assert os.path.basename(os.readlink("/proc/%d/exe" % pid)) == "systemd"
        out = lxc_tool(lxcpath, "lxc-attach", "-n", name, "--", "systemctl", "is-system-running").stdout.strip()
        assert out in ("running", "degraded"), out
        assert lxc_backend.system_state(name) == out
        started = time.monotonic()
        lxc_backend.stop(name, timeout=60)  # systemd halts cleanly on SIGRTMIN+3
        print("debian clean shutdown: %.1fs" % (time.monotonic() - started))
        assert lxc_backend.state(name) == "stopped"
    finally:
        lxc_tool(lxcpath, "lxc-stop", "-n", name, "-k")
    # a second creation uses the debootstrap cache
    second = ct_names.new("deb2")
    started = time.monotonic()
    lxc_backend.create({"name": second, "template": "debian", "network": []}, timeout=600)
    cached = time.monotonic() - started
    print("debian creation: first in this session %.1fs, second %.1fs" % (debian_base["seconds"], cached))
    assert cached < 120
    lxc_backend.destroy(second, timeout=60)


@pytest.mark.parametrize("spec,error,match", [
    ({"template": "nosuchtemplate"}, ValidationError, "unknown template 'nosuchtemplate'"),
    ({"template": "clone:opdbus-t-missing"}, NotFound, "does not exist"),
    ({"template": "busybox", "unprivileged": True}, ValidationError, "unprivileged containers are not supported"),
    ({"template": "busybox", "features": {"keyctl": True}}, ValidationError, "keyctl"),
    ({}, ValidationError, "needs a template"),
], ids=["template", "clone-missing", "unprivileged", "keyctl", "no-template"])
def test_bad_inputs(lxc_backend, ct_names, lxcpath, spec, error, match):
    name = ct_names.new("bad")
    with pytest.raises(error, match=match):
        lxc_backend.create(dict(spec, name=name), timeout=60)
    assert lxc_backend.state(name) == "absent"
    assert not os.path.exists(os.path.join(lxcpath, name))


def test_missing_container(lxc_backend):
    assert lxc_backend.state("opdbus-t-nothere") == "absent"
    for call in (lxc_backend.read, lxc_backend.addresses):
        with pytest.raises(NotFound, match="does not exist"):
            call("opdbus-t-nothere")
    with pytest.raises(NotFound):
        lxc_backend.destroy("opdbus-t-nothere", timeout=5)


IMPORT_PROBE = r"""
import sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.opdbus.infra.plugins.module_utils.lxc import liblxc
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import LxcError
try:
    liblxc.import_lxc()
except LxcError as exc:
    print("plain:", exc)


class Module:
    def fail_json(self, msg):
        print("fail_json:", msg)
        raise SystemExit(1)


liblxc.probe_interpreters_for_module = lambda paths, name: "/usr/bin/python3" if name == "lxc" else None
liblxc.respawn_module = lambda interpreter: print("respawn:", interpreter) or sys.exit(0)
liblxc.import_lxc(Module())
"""


def test_import_lxc_respawns_or_names_the_package():
    """Under the venv's Python (no lxc binding) import_lxc names python3-lxc, and with a module respawns."""
    root = [p for p in sys.path if os.path.isdir(os.path.join(p, "ansible_collections", "opdbus", "infra"))][0]
    venv_python = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "..", ".venv", "bin", "python")
    out = subprocess.run([venv_python, "-I", "-c", IMPORT_PROBE, root], check=False, capture_output=True, text=True,
                         cwd="/").stdout
    assert "plain: the Python binding of liblxc (module lxc) is not importable" in out and "python3-lxc" in out
    assert "respawn: /usr/bin/python3" in out
