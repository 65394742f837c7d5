# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""opdbus.infra.packagekit inside a Debian bookworm container with systemd as PID 1, through Ansible.

One container for the whole suite (a cost the CI pays once): made from the debian template in the
lab's lxcpath, started (systemd as PID 1, its own system bus, PackageKit and polkit activated by
D-Bus as on any Debian host). The container has no network of its own (the lab gives containers
none here); what needs Debian's archive runs *attached to the container's mount, PID, UTS and IPC
namespaces but in the host's network namespace* (``lxc-attach -s``): ``apt-get update``, the
installation of packagekit and python3-dbus, and a download-only fetch of ``hello`` into the
container's apt cache, from where PackageKit installs it without network.

The module runs in the container through the opdbus.infra.lxc connection with ansible-playbook
(the container's /usr/bin/python3 and its python3-dbus, its own system bus at the standard
socket). Oracle: ``dpkg-query`` in the container (lxc-attach).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys

import pytest

from btrfs_support import REPO

OFFLINE_NS = "MOUNT|PID|UTSNAME|IPC"


def attach(lxcpath, name, argv, host_network=False, check=True, timeout=900):
    cmd = ["lxc-attach", "-P", lxcpath, "-n", name]
    if host_network:
        cmd += ["-s", OFFLINE_NS]
    cmd += ["--", "env", "-i", "DEBIAN_FRONTEND=noninteractive", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
    proc = subprocess.run(cmd + list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert proc.returncode == 0, "%s: rc %d\n%s%s" % (" ".join(argv), proc.returncode, proc.stdout[-3000:],
                                                          proc.stderr[-3000:])
    return proc


def ct_dpkg(lxcpath, name, packages):
    proc = attach(lxcpath, name, ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n"] + packages,
                  check=False)
    return dict(line.split("\t")[:2] for line in proc.stdout.splitlines() if line.split("\t")[2] == "installed")


@pytest.fixture(scope="module")
def pk_container(lxc_backend, lxcpath):
    from lxc_support import Names  # pylint: disable=import-outside-toplevel
    names = Names(lxcpath)
    name = names.new("pk")
    try:
        lxc_backend.create({"name": name, "template": "debian", "network": []}, timeout=1200)
        lxc_backend.start(name, timeout=120)
        rootfs = os.path.join(lxcpath, name, "rootfs")
        # the host's resolver, for the commands that run in the host's network namespace
        resolv = os.path.join(rootfs, "etc", "resolv.conf")
        if os.path.islink(resolv):
            os.unlink(resolv)
        shutil.copyfile("/etc/resolv.conf", resolv)
        # the debian template's security line (bookworm/updates) does not exist for bookworm
        with open(os.path.join(rootfs, "etc", "apt", "sources.list"), "w") as fh:
            fh.write("deb http://deb.debian.org/debian bookworm main\n"
                     "deb http://deb.debian.org/debian-security bookworm-security main\n")
        attach(lxcpath, name, ["apt-get", "-q", "update"], host_network=True)
        attach(lxcpath, name, ["apt-get", "-q", "install", "-y", "--no-install-recommends", "packagekit", "python3",
                               "python3-dbus", "dbus"], host_network=True)
        # dbus was installed after the container booted: its socket is not listening yet
        attach(lxcpath, name, ["systemctl", "start", "dbus.socket", "dbus.service"])
        attach(lxcpath, name, ["busctl", "--timeout=30", "get-property", "org.freedesktop.PackageKit",
                               "/org/freedesktop/PackageKit", "org.freedesktop.PackageKit", "BackendName"])
        assert "hello" not in ct_dpkg(lxcpath, name, ["hello"])
        attach(lxcpath, name, ["apt-get", "-q", "install", "-y", "--download-only", "hello"], host_network=True)
        yield name
    finally:
        names.cleanup()


def playbook(lxcpath, name, tasks, tmp_path, check=False, diff=False):
    book = tmp_path / ("play-%d.yml" % len(list(tmp_path.iterdir())))
    book.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json_results",
               ANSIBLE_CALLBACK_PLUGINS=str(REPO / "tests" / "integration" / "callback_plugins"))
    for var in ("DBUS_SYSTEM_BUS_ADDRESS", "OPDBUS_DBUS_ADDRESS"):
        env.pop(var, None)  # the container's own system bus, not the lab's
    cmd = [sys.executable, "-m", "ansible", "playbook", "-i", "%s," % name, "-c", "opdbus.infra.lxc",
           "-e", "ansible_lxc_path=%s ansible_python_interpreter=/usr/bin/python3" % lxcpath, str(book)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=900, check=False)
    docs = [line for line in proc.stdout.splitlines() if line.startswith('{"plays"')]
    assert docs, proc.stdout + proc.stderr
    doc = json.loads(docs[-1])
    return proc.returncode, [t["hosts"][name] for play in doc["plays"] for t in play["tasks"]]


def changes(result):
    return sorted((p["name"], p["version"], p["arch"], p["action"]) for p in result["packages"])


def test_install_and_remove_in_a_systemd_container(pk_container, lxcpath, tmp_path):
    name = pk_container
    pid1 = attach(lxcpath, name, ["cat", "/proc/1/comm"]).stdout.strip()
    assert pid1 == "systemd"
    info_task = {"name": "info", "opdbus.infra.packagekit_info": {"name": ["hello", "dpkg"]}}
    hello = {"opdbus.infra.packagekit": {"name": ["hello"]}}
    rc, results = playbook(lxcpath, name, [info_task, dict(hello, name="check", check_mode=True, diff=True)], tmp_path)
    assert rc == 0, results
    info, check = results
    assert info["available"] is True and info["daemon"]["backend"] == "apt"
    assert sorted(info["installed"]) == ["dpkg"]
    assert info["installed"]["dpkg"]["version"] == ct_dpkg(lxcpath, name, ["dpkg"])["dpkg"]
    assert check["changed"] is True and [p["name"] for p in check["packages"]] == ["hello"]
    assert ct_dpkg(lxcpath, name, ["hello"]) == {}

    rc, results = playbook(lxcpath, name, [dict(hello, name="install"), dict(hello, name="again")], tmp_path)
    assert rc == 0, results
    install, again = results
    assert install["changed"] is True and changes(install) == changes(check)
    assert ct_dpkg(lxcpath, name, ["hello"]) == {"hello": check["packages"][0]["version"]}
    assert again["changed"] is False and again["packages"] == []

    absent = {"opdbus.infra.packagekit": {"name": ["hello"], "state": "absent"}}
    rc, results = playbook(lxcpath, name, [dict(absent, name="remove"), dict(absent, name="again")], tmp_path)
    assert rc == 0, results
    remove, again = results
    assert changes(remove) == [("hello", check["packages"][0]["version"], check["packages"][0]["arch"], "remove")]
    assert again["changed"] is False
    assert ct_dpkg(lxcpath, name, ["hello"]) == {}

    # the role takes PackageKit here (it is on the container's bus)
    role = {"name": "role", "ansible.builtin.include_role": {"name": "opdbus.infra.packages"},
            "vars": {"packages_names": ["hello"]}}
    show = {"name": "show", "ansible.builtin.debug": {"msg": "{{ packages_used }} {{ packages_result.changed }}"}}
    rc, results = playbook(lxcpath, name, [role, show], tmp_path)
    assert rc == 0, results
    assert results[-1]["msg"] == "packagekit True", results
    assert "hello" in ct_dpkg(lxcpath, name, ["hello"])
