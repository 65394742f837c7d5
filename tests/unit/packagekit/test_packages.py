# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The package reconciler's own logic: request parsing, Debian version order, the plan, the report.

The transport is replaced by a recorder that answers like PackageKit's apt backend did on the real
daemon (signal arguments copied from real transactions); the integration tests run the real one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import itertools
import shutil
import subprocess

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils import packagekit as pkt
from ansible_collections.opdbus.infra.plugins.module_utils.dbus import DBusSignalTimeout, Signal
from ansible_collections.opdbus.infra.plugins.module_utils.packages import reconcile, version
from ansible_collections.opdbus.infra.plugins.module_utils.packages.info import installed_map


# -- requests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("hello", ("hello", None, None)),
    ("hello=2.10-3", ("hello", None, "2.10-3")),
    ("libc6:amd64", ("libc6", "amd64", None)),
    ("fortune-mod:amd64=1:1.99.1-7.3", ("fortune-mod", "amd64", "1:1.99.1-7.3")),
    ("g++", ("g++", None, None)),
    (" tree ", ("tree", None, None)),
])
def test_parse_spec(text, expected):
    spec = reconcile.parse_spec(text)
    assert (spec.name, spec.arch, spec.version) == expected


@pytest.mark.parametrize("text,message", [
    ("", "empty package name"),
    ("hello=", "a version is expected after '='"),
    ("hello:=1", "an architecture is expected after ':'"),
    ("bad name", "'bad name' is not a valid package name"),
    ("-x", "'-x' is not a valid package name"),
    ("hello:AMD64", "'AMD64' is not a valid architecture"),
    ("hello=1 2", "'1 2' is not a valid version"),
])
def test_parse_spec_refuses(text, message):
    with pytest.raises(reconcile.ValidationError, match=message):
        reconcile.parse_spec(text)


def test_parse_specs_conflicts_and_duplicates():
    specs = reconcile.parse_specs(["hello", "hello", "tree=2.1.0-1", "tree=2.1.0-1"], "present")
    assert [s.text for s in specs] == ["hello", "tree=2.1.0-1"]
    with pytest.raises(reconcile.ValidationError, match="conflicting requests for hello: 'hello=1' and 'hello=2'"):
        reconcile.parse_specs(["hello=1", "hello=2"], "present")
    with pytest.raises(reconcile.ValidationError, match="conflicting requests for hello: 'hello' and 'hello=2'"):
        reconcile.parse_specs(["hello", "hello=2"], "absent")
    # other architectures are other packages
    assert len(reconcile.parse_specs(["libc6:amd64=1", "libc6:i386=2"], "present")) == 2
    with pytest.raises(reconcile.ValidationError, match="cannot be combined with state=latest"):
        reconcile.parse_specs(["hello=1"], "latest")
    with pytest.raises(reconcile.ValidationError, match="state must be one of"):
        reconcile.parse_specs(["hello"], "installed")


# -- Debian versions -----------------------------------------------------------------------------

VERSIONS = ["1.0", "1.0-1", "1.0~rc1", "1:0.9", "1.0.1", "1.0a", "1.0+b1", "2.10-3", "2.10-2", "1.0-1~bpo", "0",
            "1.00", "1.0-1.1", "1.0~~", "1.0~", "9.1-1", "10.0", "1:1.99.1-7.3", "3.0.22-1~deb12u2", "3.0.19-1~deb12u2"]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is the oracle")
def test_version_order_is_dpkgs():
    for left, right in itertools.product(VERSIONS, VERSIONS):
        lt = subprocess.run(["dpkg", "--compare-versions", left, "lt", right], check=False).returncode == 0
        eq = subprocess.run(["dpkg", "--compare-versions", left, "eq", right], check=False).returncode == 0
        assert version.compare(left, right) == (-1 if lt else 0 if eq else 1), (left, right)


def test_version_order_known_cases():
    assert version.compare("1.0~rc1", "1.0") == -1
    assert version.compare("1:0.9", "2.0") == 1
    assert version.compare("1.0", "1.00") == 0
    assert version.compare("2.10-3", "2.10-2") == 1


# -- the transport's pieces ----------------------------------------------------------------------

def test_bitfields_are_bit_positions_of_pk_enums():
    assert pkt.filter_value(["installed"]) == 1 << 2
    assert pkt.filter_value(["~installed"]) == 1 << 3
    assert pkt.filter_value(["none"]) == 1 << 1 == pkt.filter_value([])
    assert pkt.flags_value() == 0
    assert pkt.flags_value(only_trusted=True) == 1 << 1
    assert pkt.flags_value(simulate=True) == 1 << 2
    assert pkt.flags_value(only_trusted=True, simulate=True, allow_downgrade=True) == (1 << 1) | (1 << 2) | (1 << 6)


def test_enum_tables_match_pk_enum_h():
    assert pkt.INFO.index("installing") == 12 and pkt.INFO.index("updating") == 11 and pkt.INFO.index("removing") == 13
    assert pkt.INFO.index("finished") == 18 and pkt.INFO.index("preparing") == 21 and pkt.INFO.index("unavailable") == 25
    assert pkt.ERRORS.index("cannot-get-lock") == 26 and pkt.ERRORS.index("not-authorized") == 48
    assert pkt.ERRORS.index("dep-resolution-failed") == 13 and pkt.ERRORS.index("repo-already-set") == 68
    assert pkt.EXIT.index("success") == 1 and pkt.EXIT.index("failed") == 2
    assert pkt.RESTART.index("system") == 4
    # GetUpdates puts the update's severity in the high 16 bits (327685 = normal | normal << 16)
    assert pkt.info_name(327685) == "normal" and pkt.info_name(8) == "security" and pkt.info_name(99) == "unknown(99)"


def test_package_ids():
    pid = pkt.PackageId.parse("fortune-mod;1:1.99.1-7.3;amd64;+manual:debian-oldstable-main")
    expected = ("fortune-mod", "1:1.99.1-7.3", "amd64", "+manual:debian-oldstable-main")
    assert (pid.name, pid.version, pid.arch, pid.data) == expected
    assert str(pid) == "fortune-mod;1:1.99.1-7.3;amd64;+manual:debian-oldstable-main"
    assert str(pkt.PackageId("a", "1", "all")) == "a;1;all;"
    for bad in ("hello", "a;b;c", ";1;all;x"):
        with pytest.raises(pkt.PackageKitError, match="not a PackageKit package id"):
            pkt.PackageId.parse(bad)


def _result(*signals):
    result = pkt.TransactionResult("InstallPackages", "/1")
    for name, args in signals:
        result.add(Signal(name, list(args), "/1"))
    return result


def test_transaction_result_actions_and_restart():
    # a real apt install: preparing, decompressing, finished, installing, finished per package
    pid = "hello;2.10-3;amd64;+manual:debian-oldstable-main"
    result = _result(("Package", (21, pid, "")), ("Package", (22, pid, "")), ("Package", (18, pid, "")),
                     ("Package", (12, pid, "")), ("Package", (18, pid, "")),
                     ("RequireRestart", (4, pid)), ("RequireRestart", (2, pid)), ("Finished", (1, 7235)))
    assert list(result.actions().values())[0][0] == "install"
    assert len(result.actions()) == 1
    assert result.restart() == "system" and result.exit == "success" and result.runtime_ms == 7235
    assert _result(("RequireRestart", (1, pid)), ("Finished", (1, 1))).restart() is None
    batched = _result(("Packages", ([(13, pid, "x"), (11, "a;2;all;repo", "y")],)), ("Finished", (1, 1)))
    assert sorted(a for a, p in batched.actions().values()) == ["remove", "update"]


class FakeBus:
    """Answers like the apt backend (the signals of real transactions); records what was asked."""

    def __init__(self, replies):
        self.replies = replies
        self.calls = []

    def call(self, service, path, iface, method, *args, **kwargs):
        self.calls.append((method, args))
        if method == "CreateTransaction":
            return "/%d" % len(self.calls)
        if method == "GetTimeSinceAction":
            return self.replies.get("GetTimeSinceAction", pkt.NEVER)
        return None

    def collect(self, service, path, iface, terminal, start, timeout=None, signals=None):
        start()
        method, args = self.calls[-1]
        reply = self.replies[method]
        sigs = reply(args) if callable(reply) else reply
        return None, [Signal(n, list(a), path) for n, a in sigs] + [Signal("Finished", [1, 10], path)]

    def available(self, name):
        return True

    def close(self):
        pass


def transactions(bus):
    return [(m, a) for m, a in bus.calls if m not in ("CreateTransaction", "SetHints")]


def test_install_plan_simulates_then_installs_and_reports_dependencies():
    bus = FakeBus({
        "Resolve": [("Package", (2, "fortune-mod;1:1.99.1-7.3;amd64;debian-oldstable-main", "")),
                    ("Package", (1, "hello;2.10-3;amd64;manual:debian-oldstable-main", ""))],
        "InstallPackages": [("Package", (12, "fortune-mod;1:1.99.1-7.3;amd64;+manual:debian-oldstable-main", "")),
                            ("Package", (12, "fortunes-min;1:1.99.1-7.3;all;+auto:debian-oldstable-main", "")),
                            ("Package", (12, "librecode0;3.6-25;amd64;+auto:debian-oldstable-main", ""))],
    })
    pk = pkt.PackageKit(bus=bus)
    out = reconcile.Packages(pk, check_mode=False, native="amd64").run(["fortune-mod", "hello"])
    calls = transactions(bus)
    assert [m for m, a in calls] == ["Resolve", "InstallPackages", "InstallPackages"]
    assert calls[0][1] == (1 << 1, ["fortune-mod", "hello"])
    # simulated (only-trusted|simulate), then for real (only-trusted)
    assert calls[1][1] == (6, ["fortune-mod;1:1.99.1-7.3;amd64;debian-oldstable-main"])
    assert calls[2][1] == (2, ["fortune-mod;1:1.99.1-7.3;amd64;debian-oldstable-main"])
    assert out["changed"] is True
    assert out["installed"] == ["fortune-mod=1:1.99.1-7.3", "fortunes-min=1:1.99.1-7.3", "librecode0=3.6-25"]
    assert out["diff"] == {"before": {"fortune-mod": None, "fortunes-min": None, "librecode0": None},
                           "after": {"fortune-mod": "1:1.99.1-7.3", "fortunes-min": "1:1.99.1-7.3",
                                     "librecode0": "3.6-25"}}


def test_check_mode_is_one_simulation_and_no_refresh():
    bus = FakeBus({"Resolve": [("Package", (2, "hello;2.10-3;amd64;debian-oldstable-main", ""))],
                   "InstallPackages": [("Package", (12, "hello;2.10-3;amd64;+manual:debian-oldstable-main", ""))]})
    out = reconcile.Packages(pkt.PackageKit(bus=bus), check_mode=True).run(["hello"], update_cache=True)
    assert [m for m, a in transactions(bus)] == ["GetTimeSinceAction", "Resolve", "InstallPackages"]
    assert transactions(bus)[-1][1][0] & (1 << 2), "not simulated"
    assert out["cache_updated"] is True and out["installed"] == ["hello=2.10-3"]


def test_latest_names_the_action_from_versions_not_from_apts_info():
    # a real apt upgrade reports "installing"; the simulation said "updating"
    resolve = [("Package", (1, "a;1.0;all;auto:repo", "")), ("Package", (2, "a;1.1;all;repo", "")),
               ("Package", (2, "a;1.1;all;repo", "")), ("Package", (1, "b;1.0;all;manual:repo", ""))]

    def install(args):
        info = 11 if args[0] & (1 << 2) else 12
        return [("Package", (info, "a;1.1;all;repo", ""))]
    bus = FakeBus({"Resolve": resolve, "InstallPackages": install})
    out = reconcile.Packages(pkt.PackageKit(bus=bus)).run(["a", "b"], state="latest")
    assert [m for m, a in transactions(bus)] == ["Resolve", "InstallPackages", "InstallPackages"]
    assert transactions(bus)[1][1][1] == ["a;1.1;all;repo"]
    assert out["packages"] == [{"name": "a", "version": "1.1", "arch": "all", "action": "update", "id": "a;1.1;all;repo",
                                "previous_version": "1.0"}]
    assert out["updated"] == ["a=1.1"] and out["installed"] == []
    # present does not upgrade
    bus = FakeBus({"Resolve": resolve})
    assert reconcile.Packages(pkt.PackageKit(bus=bus)).run(["a", "b"])["changed"] is False
    assert [m for m, a in transactions(bus)] == ["Resolve"]


def test_pinned_version_not_the_candidate_is_asked_by_id():
    bus = FakeBus({"Resolve": [("Package", (1, "a;1.1;all;auto:repo", ""))],
                   "InstallPackages": [("Package", (20, "a;1.0;all;repo", ""))]})
    out = reconcile.Packages(pkt.PackageKit(bus=bus), check_mode=True).run(["a=1.0"])
    method, args = transactions(bus)[-1]
    assert args == ((1 << 1) | (1 << 2) | (1 << 6), ["a;1.0;all;"])
    assert out["packages"][0]["action"] == "downgrade" and out["packages"][0]["previous_version"] == "1.1"


def test_absent_removes_installed_with_dependents_and_autoremove():
    bus = FakeBus({"Resolve": [("Package", (1, "a;1.0;all;auto:repo", "")), ("Package", (2, "a;1.1;all;repo", ""))],
                   "RemovePackages": [("Package", (13, "a;1.0;all;auto:repo", "")),
                                      ("Package", (13, "b;1.0;all;manual:repo", ""))]})
    packages = reconcile.Packages(pkt.PackageKit(bus=bus), check_mode=True)
    out = packages.run(["a", "zz=1"], state="absent", autoremove=True)
    method, args = transactions(bus)[-1]
    assert (method, args) == ("RemovePackages", (1 << 2, ["a;1.0;all;auto:repo"], True, True))
    assert out["removed"] == ["a=1.0", "b=1.0"]
    assert out["diff"] == {"before": {"a": "1.0", "b": "1.0"}, "after": {"a": None, "b": None}}
    # nothing installed: no transaction beyond Resolve
    bus = FakeBus({"Resolve": [("Package", (2, "a;1.1;all;repo", ""))]})
    assert reconcile.Packages(pkt.PackageKit(bus=bus)).run(["a"], state="absent")["changed"] is False
    assert [m for m, a in transactions(bus)] == ["Resolve"]


def test_unknown_packages_are_named():
    bus = FakeBus({"Resolve": [("Package", (2, "hello;2.10-3;amd64;repo", ""))]})
    with pytest.raises(reconcile.ValidationError, match="no package nope, nope2=1 in the package sources"):
        reconcile.Packages(pkt.PackageKit(bus=bus)).run(["hello", "nope", "nope2=1"])


def test_cache_valid_time():
    bus = FakeBus({"GetTimeSinceAction": 100, "RefreshCache": []})
    out = reconcile.Packages(pkt.PackageKit(bus=bus)).run([], update_cache=True, cache_valid_time=3600)
    assert out["cache_updated"] is False and out["cache_age"] == 100 and out["changed"] is False
    out = reconcile.Packages(pkt.PackageKit(bus=bus)).run([], update_cache=True, cache_valid_time=50)
    assert out["cache_updated"] is True and out["changed"] is True
    assert transactions(bus)[-1] == ("RefreshCache", (False,))
    hints = [a for m, a in bus.calls if m == "SetHints"][-1][0]
    assert hints == ["interactive=false", "background=false", "locale=C", "cache-age=50"]


def test_errors_become_typed_exceptions_with_clear_messages():
    lock = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 13135 (python3)\nW: Be aware"
    for code, details, cls, text in [
            (26, lock, pkt.PackageKitLocked, "the package database is locked by another process (PackageKit "
                                             "InstallPackages: E: Could not get lock /var/lib/dpkg/lock-frontend. "
                                             "It is held by process 13135 (python3) W: Be aware)"),
            (48, "Failed to obtain authentication.", pkt.PackageKitDenied,
             "PackageKit refused InstallPackages: not authorized by polkit (Failed to obtain authentication.)"),
            (13, "unmet dependencies", pkt.PackageKitError,
             "PackageKit InstallPackages failed (dep-resolution-failed): unmet dependencies")]:
        bus = FakeBus({"Resolve": [("Package", (2, "hello;2.10-3;amd64;repo", ""))],
                       "InstallPackages": [("ErrorCode", (code, details))]})
        with pytest.raises(cls) as info:
            reconcile.Packages(pkt.PackageKit(bus=bus)).run(["hello"])
        assert str(info.value).startswith(text), str(info.value)
        assert info.value.code == pkt.ERRORS[code]


def test_lock_retries_until_lock_timeout():
    attempts = []

    def install(args):
        attempts.append(args)
        return [("ErrorCode", (26, "E: Could not get lock"))] if len(attempts) < 3 else [
            ("Package", (12, "hello;2.10-3;amd64;repo", ""))]
    now = [0.0]
    bus = FakeBus({"Resolve": [("Package", (2, "hello;2.10-3;amd64;repo", ""))], "InstallPackages": install})
    packages = reconcile.Packages(pkt.PackageKit(bus=bus), check_mode=True, lock_timeout=10, clock=lambda: now[0],
                                  sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert packages.run(["hello"])["installed"] == ["hello=2.10-3"]
    assert len(attempts) == 3
    attempts[:] = []
    now[0] = 0.0
    packages = reconcile.Packages(pkt.PackageKit(bus=bus), check_mode=True, lock_timeout=1, clock=lambda: now[0],
                                  sleep=lambda s: now.__setitem__(0, now[0] + s))
    with pytest.raises(pkt.PackageKitLocked, match="still locked after lock_timeout=1 s"):
        packages.run(["hello"])


def test_installed_map_with_several_architectures():
    packages = [pkt.Package("installed", "libc6;2.36-9;amd64;auto:local"),
                pkt.Package("installed", "libc6;2.36-9;i386;auto:local"),
                pkt.Package("installed", "bash;5.2;amd64;manual:local"),
                pkt.Package("available", "tree;2.1;amd64;repo")]
    out = installed_map(packages)
    assert out["bash"] == {"version": "5.2", "arch": "amd64", "id": "bash;5.2;amd64;manual:local"}
    assert [v["arch"] for v in out["libc6"]["versions"]] == ["amd64", "i386"]
    assert "tree" not in out


def test_a_transaction_that_does_not_finish_is_cancelled():
    class SlowBus(FakeBus):
        def collect(self, service, path, iface, terminal, start, timeout=None, signals=None):
            start()
            raise DBusSignalTimeout("no Finished", [Signal("Package", [12, "hello;1;amd64;repo", ""], path)])
    bus = SlowBus({})
    with pytest.raises(pkt.PackageKitTimeout, match=r"PackageKit InstallPackages did not finish within 5 s \(timeout "
                                                    r"option; seen: Package\); cancelled"):
        pkt.PackageKit(bus=bus).install(["hello;1;amd64;repo"], timeout=5)
    assert transactions(bus)[-1] == ("Cancel", ())
