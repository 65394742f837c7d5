# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""opdbus.infra.packagekit and packagekit_info against the lab's real PackageKit (apt backend) on this machine.

Real packages from Debian's archive and from a throwaway local repository are installed, upgraded
and removed. What the tests believe is what dpkg-query says (and apt's lists on disk); every test
leaves the machine's package set as it found it (see packagekit_support).

The check-mode prediction is compared with the real transaction (the packages, dependencies
included, with versions and actions) and both with dpkg's view before and after.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

from btrfs_support import REPO
from packagekit_support import all_installed, dpkg_lock_held, dpkg_state, empty_bus

FORTUNE = ["fortune-mod", "fortunes-min", "librecode0"]


def changes(result):
    """The package changes of a result as comparable tuples."""
    return sorted((p["name"], p["version"], p["arch"], p["action"]) for p in result["packages"])


def dpkg_delta(before, after):
    """What dpkg says changed: {name:arch: (old version or None, new version or None)}."""
    keys = set(before) | set(after)
    return dict((k, (before.get(k), after.get(k))) for k in keys if before.get(k) != after.get(k))


def as_delta(result):
    """The module's packages in dpkg_delta's shape."""
    out = {}
    for p in result["packages"]:
        key = "%s:%s" % (p["name"], p["arch"])
        if p["action"] == "remove":
            out[key] = (p["version"], None)
        else:
            out[key] = (p.get("previous_version"), p["version"])
    return out


def apt_lists_state():
    root = "/var/lib/apt/lists"
    return sorted((name, os.stat(os.path.join(root, name)).st_mtime_ns) for name in os.listdir(root)
                  if os.path.isfile(os.path.join(root, name)))


def test_install_check_mode_is_the_real_transaction_then_idempotent(pk, restore_packages):
    restore_packages(*(FORTUNE + ["hello"]))
    args = {"name": ["fortune-mod", "hello"]}
    before = all_installed()

    check = pk.packagekit(args, check=True, diff=True).ok()
    assert all_installed() == before, "check mode changed the package set"
    assert check["changed"] is True
    # the dependencies are in the prediction: fortune-mod pulls fortunes-min and librecode0
    assert sorted(p["name"] for p in check["packages"]) == sorted(FORTUNE + ["hello"])
    assert set(p["action"] for p in check["packages"]) == {"install"}
    assert check["diff"]["before"] == dict((p["name"], None) for p in check["packages"])
    assert check["diff"]["after"] == dict((p["name"], p["version"]) for p in check["packages"])

    real = pk.packagekit(args, diff=True).ok()
    after = all_installed()
    assert real["changed"] is True
    assert changes(real) == changes(check), "the prediction differs from the real transaction"
    assert dpkg_delta(before, after) == as_delta(real) == as_delta(check)
    assert sorted(real["installed"]) == sorted("%s=%s" % (p["name"], p["version"]) for p in check["packages"])
    assert real["restart_required"] is False and real["restart"] is None

    again = pk.packagekit(args, diff=True).ok()
    assert again["changed"] is False and again["packages"] == [] and all_installed() == after
    again_check = pk.packagekit(dict(args, state="latest"), check=True).ok()
    assert again_check["changed"] is False and again_check["packages"] == []

    # absent: without autoremove only the package itself goes; the automatic dependencies stay
    check = pk.packagekit({"name": ["fortune-mod"], "state": "absent"}, check=True, diff=True).ok()
    assert [(p["name"], p["action"]) for p in check["packages"]] == [("fortune-mod", "remove")]
    assert check["diff"]["after"] == {"fortune-mod": None}
    assert all_installed() == after
    # with autoremove they go too
    args = {"name": ["fortune-mod", "hello"], "state": "absent", "autoremove": True}
    check = pk.packagekit(args, check=True, diff=True).ok()
    assert sorted((p["name"], p["action"]) for p in check["packages"]) == sorted((n, "remove") for n in FORTUNE + ["hello"])
    assert all_installed() == after
    real = pk.packagekit(args, diff=True).ok()
    assert changes(real) == changes(check)
    assert dpkg_delta(after, all_installed()) == as_delta(real)
    assert all_installed() == before
    assert pk.packagekit(args).ok()["changed"] is False


def test_latest_and_pinned_versions_from_a_local_repository(pk, local_repo):
    repo = local_repo(signed=True)
    repo.add("opdbus-test-a", "1.0").add("opdbus-test-b", "1.0", depends="opdbus-test-a").publish().enable()
    names = ["opdbus-test-a", "opdbus-test-b"]

    # present, with the cache refreshed first: b and its dependency a
    run = pk.packagekit({"name": ["opdbus-test-b"], "update_cache": True}, diff=True).ok()
    assert run["cache_updated"] is True
    assert changes(run) == [("opdbus-test-a", "1.0", "all", "install"), ("opdbus-test-b", "1.0", "all", "install")]
    assert dpkg_state(names) == {"opdbus-test-a": "1.0", "opdbus-test-b": "1.0"}

    # a newer a in the repository
    repo.add("opdbus-test-a", "1.1").publish()
    lists = apt_lists_state()
    check = pk.packagekit({"name": names, "state": "latest", "update_cache": True}, check=True, diff=True).ok()
    assert check["cache_updated"] is True, "check mode must report the refresh it would do"
    assert apt_lists_state() == lists, "check mode refreshed the cache"
    # check mode does not refresh: without the new lists there is nothing newer yet
    assert check["packages"] == []
    refreshed = pk.packagekit({"update_cache": True, "cache_valid_time": 0}).ok()
    assert refreshed["cache_updated"] is True and refreshed["changed"] is True
    assert apt_lists_state() != lists
    # a fresh cache is left alone under cache_valid_time
    fresh = pk.packagekit({"update_cache": True, "cache_valid_time": 3600}).ok()
    assert fresh["cache_updated"] is False and fresh["changed"] is False
    assert 0 <= fresh["cache_age"] <= 3600

    present = pk.packagekit({"name": names}, check=True).ok()
    assert present["changed"] is False, "present must not upgrade"
    check = pk.packagekit({"name": names, "state": "latest"}, check=True, diff=True).ok()
    assert changes(check) == [("opdbus-test-a", "1.1", "all", "update")]
    assert check["packages"][0]["previous_version"] == "1.0"
    assert check["diff"] == {"before": {"opdbus-test-a": "1.0"}, "after": {"opdbus-test-a": "1.1"}}
    assert dpkg_state(names) == {"opdbus-test-a": "1.0", "opdbus-test-b": "1.0"}
    real = pk.packagekit({"name": names, "state": "latest"}, diff=True).ok()
    assert changes(real) == changes(check) and real["updated"] == ["opdbus-test-a=1.1"]
    assert dpkg_state(names) == {"opdbus-test-a": "1.1", "opdbus-test-b": "1.0"}
    assert pk.packagekit({"name": names, "state": "latest"}).ok()["changed"] is False

    # a pinned older version is a downgrade; the pinned version is idempotent
    check = pk.packagekit({"name": ["opdbus-test-a=1.0"]}, check=True, diff=True).ok()
    assert changes(check) == [("opdbus-test-a", "1.0", "all", "downgrade")]
    real = pk.packagekit({"name": ["opdbus-test-a=1.0"]}).ok()
    assert changes(real) == changes(check)
    assert dpkg_state(names) == {"opdbus-test-a": "1.0", "opdbus-test-b": "1.0"}
    assert pk.packagekit({"name": ["opdbus-test-a=1.0"]}).ok()["changed"] is False

    # absent of a version that is not installed changes nothing; of the installed one removes a and b (b needs a)
    assert pk.packagekit({"name": ["opdbus-test-a=1.1"], "state": "absent"}).ok()["changed"] is False
    check = pk.packagekit({"name": ["opdbus-test-a=1.0"], "state": "absent"}, check=True).ok()
    assert changes(check) == [("opdbus-test-a", "1.0", "all", "remove"), ("opdbus-test-b", "1.0", "all", "remove")]
    real = pk.packagekit({"name": ["opdbus-test-a=1.0"], "state": "absent"}).ok()
    assert changes(real) == changes(check)
    assert dpkg_state(names) == {}


def test_untrusted_packages_need_allow_untrusted(pk, local_repo):
    repo = local_repo(signed=False)
    repo.add("opdbus-test-u", "1.0").publish().enable()
    assert pk.packagekit({"update_cache": True}).ok()["cache_updated"] is True
    refused = pk.packagekit({"name": ["opdbus-test-u"]}).failed()
    assert "opdbus-test-u" in refused["msg"] or "untrusted" in refused["msg"].lower() or "signature" in refused["msg"].lower(), refused["msg"]
    assert refused["error_code"], refused
    assert dpkg_state(["opdbus-test-u"]) == {}
    check = pk.packagekit({"name": ["opdbus-test-u"], "allow_untrusted": True}, check=True).ok()
    assert changes(check) == [("opdbus-test-u", "1.0", "all", "install")]
    real = pk.packagekit({"name": ["opdbus-test-u"], "allow_untrusted": True}).ok()
    assert changes(real) == changes(check)
    assert dpkg_state(["opdbus-test-u"]) == {"opdbus-test-u": "1.0"}


def test_unknown_package_fails_clearly_and_changes_nothing(pk):
    before = all_installed()
    failed = pk.packagekit({"name": ["hello", "opdbus-no-such-package"]}).failed()
    assert "no package opdbus-no-such-package in the package sources" in failed["msg"], failed["msg"]
    assert "hello" not in failed["msg"].split("no package", 1)[1].split(" in ", 1)[0]
    failed = pk.packagekit({"name": ["opdbus-no-such-package"]}, check=True).failed()
    assert "no package opdbus-no-such-package" in failed["msg"]
    assert all_installed() == before


def test_conflicting_requests_fail_clearly(pk, local_repo):
    before = all_installed()
    failed = pk.packagekit({"name": ["hello=2.10-3", "hello=2.10-2"]}).failed()
    assert failed["msg"] == "invalid input: conflicting requests for hello: 'hello=2.10-3' and 'hello=2.10-2'"
    failed = pk.packagekit({"name": ["hello=1"], "state": "latest"}).failed()
    assert "cannot be combined with state=latest" in failed["msg"]
    failed = pk.packagekit({"name": ["bad name!"]}).failed()
    assert failed["msg"] == "invalid input: 'bad name!' is not a valid package name"
    failed = pk.packagekit({}).failed()
    assert failed["msg"] == "invalid input: name (the packages) is required unless update_cache=true"
    # two packages that conflict with each other, in one request: PackageKit refuses the transaction
    repo = local_repo(signed=True)
    repo.add("opdbus-test-a", "1.0").add("opdbus-test-c", "1.0", conflicts="opdbus-test-a").publish().enable()
    assert pk.packagekit({"update_cache": True}).ok()["cache_updated"] is True
    for check in (True, False):
        failed = pk.packagekit({"name": ["opdbus-test-a", "opdbus-test-c"]}, check=check).failed()
        assert failed["error_code"] == "dep-resolution-failed", failed
        assert "opdbus-test-c" in failed["msg"] and "Conflicts" in failed["msg"], failed["msg"]
    assert all_installed() == before


def test_held_dpkg_lock(pk, restore_packages):
    restore_packages("hello")
    before = all_installed()
    with dpkg_lock_held():
        failed = pk.packagekit({"name": ["hello"], "lock_timeout": 0}).failed()
    assert failed["error_code"] == "cannot-get-lock", failed
    assert failed["msg"].startswith("the package database is locked by another process"), failed["msg"]
    assert "/var/lib/dpkg/lock-frontend" in failed["msg"]
    assert all_installed() == before
    # released while the module waits: it retries and installs
    with dpkg_lock_held(seconds=5):
        run = pk.packagekit({"name": ["hello"], "lock_timeout": 120}).ok()
    assert [p["name"] for p in run["packages"]] == ["hello"]
    assert "hello" in dpkg_state(["hello"])


def test_non_root_caller_is_refused_by_polkit(pk, restore_packages):
    restore_packages("hello")
    before = all_installed()
    failed = pk.packagekit({"name": ["hello"]}, user="nobody").failed()
    assert failed["error_code"] == "not-authorized", failed
    assert "not authorized by polkit" in failed["msg"] and "run as root" in failed["msg"], failed["msg"]
    # a simulated transaction needs no authorization: check mode works for anyone
    check = pk.packagekit({"name": ["hello"]}, check=True, user="nobody").ok()
    assert [(p["name"], p["action"]) for p in check["packages"]] == [("hello", "install")]
    assert all_installed() == before


def test_no_packagekit_on_the_bus_names_the_fallback(pk):
    with empty_bus(pk.workdir) as address:
        failed = pk.run("packagekit", {"name": ["hello"], "bus_address": address}).failed()
        assert "PackageKit (org.freedesktop.PackageKit) is not available on %s" % address in failed["msg"]
        assert "use ansible.builtin.package instead" in failed["msg"]
        assert failed["fallback"] == "ansible.builtin.package"
        info = pk.run("packagekit_info", {"bus_address": address}).ok()
        assert info["available"] is False and info["fallback"] == "ansible.builtin.package"
    # no bus at all any more
    gone = pk.run("packagekit_info", {"bus_address": address}).ok()
    assert gone["available"] is False and "ansible.builtin.package" in gone["msg"]
    failed = pk.run("packagekit", {"name": ["hello"], "bus_address": address}, check=True).failed()
    assert "cannot connect to %s" % address in failed["msg"] and "use ansible.builtin.package" in failed["msg"]


def test_info_agrees_with_dpkg_and_apt(pk):
    info = pk.info({"updates": False}).ok()
    assert info["available"] is True and info["daemon"]["backend"] == "apt"
    dpkg = all_installed()
    ours = {}
    for name, entry in info["installed"].items():
        for e in entry.get("versions", [entry]):
            ours["%s:%s" % (name, e["arch"])] = e["version"]
    assert ours == dpkg
    few = pk.info({"name": ["bash", "coreutils", "opdbus-no-such-package"]}).ok()
    assert sorted(few["installed"]) == ["bash", "coreutils"]
    assert few["installed"]["bash"]["version"] == dpkg["bash:%s" % few["installed"]["bash"]["arch"]]
    upgradable = subprocess.run(["apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"], capture_output=True,
                                text=True, check=True).stdout
    apt_names = sorted(set(line.split()[1] for line in upgradable.splitlines() if line.startswith("Inst ")
                           and "[" in line))
    everything = pk.info({"installed": False}).ok()
    assert sorted(set(u["name"] for u in everything["updates"])) == apt_names


def _role_playbook(pk, tmp_path, role_vars, check=False):
    """Run the role opdbus.infra.packages on this machine through ansible-playbook; (rc, {task name: result})."""
    book = tmp_path / "role.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "role", "ansible.builtin.include_role": {"name": "opdbus.infra.packages"}, "vars": role_vars},
        {"name": "show", "ansible.builtin.debug": {"msg": "{{ packages_used }}"}},
        {"name": "result", "ansible.builtin.debug": {"var": "packages_result"}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json_results",
               ANSIBLE_CALLBACK_PLUGINS=str(REPO / "tests" / "integration" / "callback_plugins"))
    cmd = [sys.executable, "-m", "ansible", "playbook", "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % sys.executable, str(book)]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=900, check=False)
    docs = [line for line in proc.stdout.splitlines() if line.startswith('{"plays"')]
    assert docs, proc.stdout + proc.stderr
    tasks = [t for play in json.loads(docs[-1])["plays"] for t in play["tasks"]]
    return proc.returncode, dict((t["task"]["name"], t["hosts"]["localhost"]) for t in tasks)


def test_role_uses_packagekit_and_falls_back_to_package(pk, tmp_path, restore_packages):
    restore_packages("tree", "sl")
    # PackageKit on the lab's bus: the role uses it (check mode first: nothing installed)
    rc, tasks = _role_playbook(pk, tmp_path, {"packages_names": ["tree"], "packages_bus_address": pk.address}, check=True)
    assert rc == 0, tasks
    assert tasks["show"]["msg"] == "packagekit"
    assert [p["name"] for p in tasks["result"]["packages_result"]["packages"]] == ["tree"]
    assert dpkg_state(["tree"]) == {}
    rc, tasks = _role_playbook(pk, tmp_path, {"packages_names": ["tree"], "packages_bus_address": pk.address})
    assert rc == 0 and tasks["show"]["msg"] == "packagekit", tasks
    assert list(dpkg_state(["tree"])) == ["tree"]
    # a bus without PackageKit: the role falls back to ansible.builtin.package (apt here)
    with empty_bus(pk.workdir) as address:
        role_vars = {"packages_names": ["sl"], "packages_bus_address": address}
        rc, tasks = _role_playbook(pk, tmp_path, role_vars)
        assert rc == 0, tasks
        assert tasks["show"]["msg"] == "package"
        assert tasks["result"]["packages_result"]["changed"] is True
        assert list(dpkg_state(["sl"])) == ["sl"]
        rc, tasks = _role_playbook(pk, tmp_path, dict(role_vars, packages_state="absent"))
        assert rc == 0 and tasks["show"]["msg"] == "package", tasks
        assert dpkg_state(["sl"]) == {}
