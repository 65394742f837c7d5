# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The numa_policy reconciler's plan, check mode, idempotence and undo, with an in-memory systemd.

The real systemd (inside an LXC container) is in tests/integration/numa; here the fake keeps what
the reconciler asked for so the order of the calls and the absence of calls are checked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

import sysfs_tree

from ansible_collections.opdbus.infra.plugins.module_utils import numa
from ansible_collections.opdbus.infra.plugins.module_utils import systemd as sd
from ansible_collections.opdbus.infra.plugins.module_utils.placement import model
from ansible_collections.opdbus.infra.plugins.module_utils.placement.reconcile import NumaPolicyReconciler


class FakeSystemd:
    via = "fake"

    def __init__(self, version="252.39-1~deb12u2", units=("app.service",), active=True, fail_reload=False):
        self.ver = version
        self.units = set(units)
        self.active = active
        self.fail_reload = fail_reload
        self.calls = []
        self.props = {"AllowedCPUs": b"", "AllowedMemoryNodes": b""}

    def version(self):
        return self.ver, sd.parse_version(self.ver)

    def load_unit(self, name):
        self.calls.append(("load", name))
        if name not in self.units:
            raise sd.UnitNotFound("unit %s does not exist" % name)
        return "/org/freedesktop/systemd1/unit/app"

    def properties(self, path, interface=sd.UNIT):
        if interface == sd.UNIT:
            return {"ActiveState": "active" if self.active else "inactive"}
        return dict(self.props, MainPID=0)

    def get(self, path, name, interface=sd.UNIT):
        return 0  # no MainPID: no /proc read-back here

    def reload(self, timeout=None):
        self.calls.append(("reload",))
        if self.fail_reload:
            raise sd.SystemdError("reload failed")

    def set_unit_properties(self, name, properties, runtime=True):
        self.calls.append(("set", name, tuple(properties), runtime))
        for prop, _sig, value in properties:
            self.props[prop] = value

    def restart_unit(self, name, mode="replace", timeout=None):
        self.calls.append(("restart", name))


@pytest.fixture
def env(tmp_path):
    sysfs_tree.build("e7_4870_4node", str(tmp_path / "sys"))
    topo = numa.read_topology(str(tmp_path / "sys"))

    def make(**kw):
        fake = FakeSystemd(**kw)
        rec = NumaPolicyReconciler(fake, topo, dropin_dir=str(tmp_path / "etc"), proc_root=str(tmp_path / "proc"),
                                   cgroup_root=str(tmp_path / "cgroup"), runtime_dir=str(tmp_path / "run"))
        return fake, rec
    return make, tmp_path


def req(**kw):
    base = dict(unit="app", state="present", policy=None, nodes=None, strategy=None, local_cpu=None, cpus=None,
                cpus_from_nodes=False, allowed_cpus=None, allowed_memory_nodes=None, restart=False, dropin=None)
    base.update(kw)
    return base


def dropin(tmp_path):
    return tmp_path / "etc" / "app.service.d" / "50-opdbus-numa.conf"


def test_check_mode_then_apply_then_idempotent(env):
    make, tmp_path = env
    fake, rec = make()
    ask = req(policy="bind", nodes=["1"], cpus_from_nodes=True, allowed_cpus=["0-7"])
    check = rec.run(ask, check_mode=True)
    assert [c["action"] for c in check["changes"]] == ["write", "reload", "live"]
    assert not dropin(tmp_path).exists()
    assert [c[0] for c in fake.calls] == ["load"]
    assert check["diff"]["before"] == "" and "NUMAMask=1\n" in check["diff"]["after"]
    assert check["pending_restart"] is True and check["restarted"] is False

    real = rec.run(ask)
    assert real["changes"] == check["changes"]
    assert dropin(tmp_path).read_text() == check["diff"]["after"]
    assert [c[0] for c in fake.calls] == ["load", "load", "reload", "set"]
    assert fake.calls[-1] == ("set", "app.service", (("AllowedCPUs", "ay", sd.mask_bytes(range(8))),), True)
    assert real["settings"] == {"NUMAPolicy": "bind", "NUMAMask": "1", "CPUAffinity": "2,6,10,14,18,22,26,30,34,38",
                                "AllowedCPUs": "0-7"}
    assert any("not enforced" in w for w in real["warnings"])

    again = rec.run(ask)
    assert again["changed"] is False and again["changes"] == []
    assert again["diff"]["before"] == again["diff"]["after"]


def test_restart_only_when_asked(env):
    make, tmp_path = env
    fake, rec = make()
    first = rec.run(req(policy="interleave", nodes=["0-1"], restart=True))
    assert [c["action"] for c in first["changes"]] == ["write", "reload", "restart"]
    assert ("restart", "app.service") in fake.calls and first["restarted"] is True
    fake2, rec2 = make()
    second = rec2.run(req(policy="interleave", nodes=["0-3"]))
    assert "restart" not in [c["action"] for c in second["changes"]]
    assert second["pending_restart"] is True
    assert not [c for c in fake2.calls if c[0] == "restart"]


def test_inactive_unit_no_live_no_restart(env):
    make, tmp_path = env
    fake, rec = make(active=False)
    res = rec.run(req(policy="bind", nodes=["0"], allowed_memory_nodes=["0"], restart=True))
    assert [c["action"] for c in res["changes"]] == ["write", "reload"]
    assert res["pending_restart"] is False


def test_absent_removes_and_resets_runtime_values(env):
    make, tmp_path = env
    fake, rec = make()
    rec.run(req(allowed_cpus=["0-3"]))
    runtime = tmp_path / "run" / "app.service.d"
    runtime.mkdir(parents=True)
    (runtime / "50-AllowedCPUs.conf").write_text("[Service]\nAllowedCPUs=\nAllowedCPUs=0-3\n")
    res = rec.run(req(state="absent"))
    assert [c["action"] for c in res["changes"]] == ["remove", "reload", "live"]
    assert res["changes"][2]["properties"] == {"AllowedCPUs": ""}
    assert not dropin(tmp_path).exists() and not dropin(tmp_path).parent.exists()
    (runtime / "50-AllowedCPUs.conf").write_text("[Service]\nAllowedCPUs=\n")
    assert rec.run(req(state="absent"))["changed"] is False


def test_bad_inputs_touch_nothing(env):
    make, tmp_path = env
    for ask, error, match in [
        (req(unit="nosuch", policy="local"), sd.UnitNotFound, "unit nosuch.service does not exist"),
        (req(policy="bind", nodes=["7"]), model.PlacementError, "NUMA node 7 does not exist"),
        (req(policy="bind"), model.PlacementError, "needs nodes"),
        (req(unit="bad/name", policy="local"), ValueError, "not a valid systemd unit name"),
        (req(unit="app.socket", policy="local"), model.PlacementError, "not a service"),
        (req(policy="local", dropin="../x"), model.PlacementError, "plain file name"),
    ]:
        fake, rec = make()
        with pytest.raises(error, match=match):
            rec.run(ask)
        assert [c for c in fake.calls if c[0] != "load"] == []
        assert not (tmp_path / "etc").exists()


def test_old_systemd_refused_before_anything(env):
    make, tmp_path = env
    fake, rec = make(version="241")
    with pytest.raises(model.PlacementError, match="NUMAPolicy= needs systemd 243"):
        rec.run(req(policy="local"))
    assert fake.calls == []


def test_failed_reload_puts_the_old_dropin_back(env):
    make, tmp_path = env
    fake, rec = make()
    rec.run(req(policy="local"))
    before = dropin(tmp_path).read_text()
    fake.fail_reload = True
    with pytest.raises(sd.SystemdError):
        rec.run(req(policy="bind", nodes=["2"]))
    assert dropin(tmp_path).read_text() == before
    assert [c[0] for c in fake.calls].count("reload") == 3  # first run, failed run, undo


def test_restart_when_the_process_does_not_match(env):
    make, tmp_path = env
    fake, rec = make()
    rec.run(req(policy="bind", nodes=["0"]))
    pid = tmp_path / "proc" / "77"
    pid.mkdir(parents=True)
    (pid / "status").write_text("Cpus_allowed_list:\t0-39\nMems_allowed_list:\t0-3\n")
    (pid / "numa_maps").write_text("1000 default file=/bin/sleep\n2000 default anon=1\n")
    fake.get = lambda path, name, interface=None: 77
    res = rec.run(req(policy="bind", nodes=["0"], restart=True), check_mode=True)
    assert [c["action"] for c in res["changes"]] == ["restart"]
    assert "memory policy default, wanted bind:0" in res["changes"][0]["why"]
    assert res["effective"]["numa_policy"] == "default"
    (pid / "numa_maps").write_text("1000 bind:0 file=/bin/sleep\n2000 bind:0 anon=1\n")
    assert rec.run(req(policy="bind", nodes=["0"], restart=True))["changed"] is False


def test_unit_names_versions_masks():
    assert sd.unit_name("app") == "app.service"
    assert sd.unit_name("app.socket") == "app.socket"
    assert sd.unit_name("getty@tty1") == "getty@tty1.service"
    assert sd.unit_name("my.app") == "my.app.service"
    for bad in ("", "a b", "a/b", "x" * 300):
        with pytest.raises(ValueError):
            sd.unit_name(bad)
    assert sd.parse_version("252.39-1~deb12u2") == 252
    assert sd.parse_version("v257-rc1") == 257
    with pytest.raises(sd.SystemdError):
        sd.parse_version("unknown")
    for nums in ([], [0], [1, 9], list(range(40)), [3, 64]):
        assert sd.mask_numbers(sd.mask_bytes(nums)) == nums
    assert sd.mask_bytes([0, 1]) == b"\x03" and sd.mask_bytes([8]) == b"\x00\x01"


def test_dropin_file_mode(env):
    make, tmp_path = env
    fake, rec = make()
    rec.run(req(policy="local"))
    assert oct(os.stat(str(dropin(tmp_path))).st_mode & 0o777) == "0o644"


def test_read_back_waits_until_the_child_has_executed(env, monkeypatch):
    make, tmp_path = env
    fake, rec = make()
    proc = tmp_path / "proc"
    (proc / "1").mkdir(parents=True)
    (proc / "88").mkdir()
    os.symlink("/usr/lib/systemd/systemd", str(proc / "1" / "exe"))
    os.symlink("/usr/lib/systemd/systemd", str(proc / "88" / "exe"))  # still systemd's forked child
    (proc / "88" / "status").write_text("Cpus_allowed_list:\t0\nMems_allowed_list:\t0\n")
    (proc / "88" / "numa_maps").write_text("1000 bind:0 file=/bin/sleep\n")
    fake.get = lambda path, name, interface=None: 88
    slept = []

    def exec_now(seconds):
        slept.append(seconds)
        os.unlink(str(proc / "88" / "exe"))
        os.symlink("/usr/bin/sleep", str(proc / "88" / "exe"))
    monkeypatch.setattr("time.sleep", exec_now)
    assert rec.effective("/unit")["numa_policy"] == "bind:0"
    assert len(slept) == 1  # one wait, then the exec was seen
    assert rec.effective("/unit")["main_pid"] == 88 and len(slept) == 1  # no wait once executed
