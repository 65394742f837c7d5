# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""privacy files: reads and writes below a root that never follow a symbolic link, on temporary directories."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat
import threading

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.privacy import files

DPKG_STATUS = """Package: wireguard-go
Status: install ok installed
Priority: optional
Version: 0.0.20230223-1
Description: userspace WireGuard
 continuation line
 Status: deinstall ok config-files

Package: nftables
Status: install ok installed
Version: 1.0.6-2

Package: iproute2
Status: deinstall ok config-files
Version: 6.1.0-3

Package: v2ray
Status: install ok half-configured
Version: 4.34.0-6

Package: wireguard-tools
Status: purge ok not-installed

Package: tzdata
Status: install ok unpacked

Package: libc6
Status: install ok installed
Multi-Arch: same
"""


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "rootfs"
    path.mkdir()
    return str(path)


@pytest.fixture
def elsewhere(tmp_path):
    path = tmp_path / "elsewhere"
    path.mkdir()
    return str(path)


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _listing(path):
    return sorted(os.path.relpath(os.path.join(d, n), path) for d, dirs, names in os.walk(path) for n in dirs + names)


# ------------------------------------------------------------------------------------------------
# read / write / remove
# ------------------------------------------------------------------------------------------------

def test_write_creates_directories_and_sets_modes(root):
    files.write(root, "/etc/opdbus/privacy/wg0.conf", b"secret\n", 0o600, dir_mode=0o700)
    target = os.path.join(root, "etc/opdbus/privacy/wg0.conf")
    with open(target, "rb") as handle:
        assert handle.read() == b"secret\n"
    assert _mode(target) == 0o600
    for sub in ("etc", "etc/opdbus", "etc/opdbus/privacy"):
        assert _mode(os.path.join(root, sub)) == 0o700
    info = os.stat(target)
    assert (info.st_uid, info.st_gid) == (0, 0) or os.geteuid() != 0
    assert files.read(root, "/etc/opdbus/privacy/wg0.conf") == (b"secret\n", 0o600)


def test_write_ignores_umask(root):
    old = os.umask(0o077)
    try:
        files.write(root, "/etc/unit.service", b"[Unit]\n", 0o644)
    finally:
        os.umask(old)
    assert _mode(os.path.join(root, "etc/unit.service")) == 0o644


def test_write_replaces_atomically(root):
    files.write(root, "/etc/a.conf", b"old", 0o644)
    path = os.path.join(root, "etc/a.conf")
    before = os.stat(path).st_ino
    with open(path, "rb") as reader:  # an open reader keeps the old content: a rename, not a rewrite in place
        files.write(root, "/etc/a.conf", b"new content", 0o600)
        assert reader.read() == b"old"
    assert os.stat(path).st_ino != before
    assert files.read(root, "/etc/a.conf") == (b"new content", 0o600)
    assert os.listdir(os.path.join(root, "etc")) == ["a.conf"]  # no temporary file left


def test_write_removes_stale_temporary(root):
    os.makedirs(os.path.join(root, "etc"))
    stale = os.path.join(root, "etc/.a.conf.opdbus-tmp")
    with open(stale, "w") as handle:
        handle.write("left over by a crash")
    files.write(root, "/etc/a.conf", b"x", 0o644)
    assert os.listdir(os.path.join(root, "etc")) == ["a.conf"]


def test_write_temporary_name_as_link_is_not_followed(root, elsewhere):
    os.makedirs(os.path.join(root, "etc"))
    victim = os.path.join(elsewhere, "victim")
    with open(victim, "w") as handle:
        handle.write("host file")
    os.symlink(victim, os.path.join(root, "etc/.a.conf.opdbus-tmp"))
    files.write(root, "/etc/a.conf", b"x", 0o644)
    with open(victim) as handle:
        assert handle.read() == "host file"
    assert files.read(root, "/etc/a.conf") == (b"x", 0o644)


def test_write_over_a_link_replaces_the_link(root, elsewhere):
    os.makedirs(os.path.join(root, "etc"))
    victim = os.path.join(elsewhere, "victim")
    with open(victim, "w") as handle:
        handle.write("host file")
    os.symlink(victim, os.path.join(root, "etc/a.conf"))
    files.write(root, "/etc/a.conf", b"mine", 0o600)
    with open(victim) as handle:
        assert handle.read() == "host file"
    assert not os.path.islink(os.path.join(root, "etc/a.conf"))
    assert files.read(root, "/etc/a.conf") == (b"mine", 0o600)


def test_write_large(root):
    data = os.urandom(3 * (1 << 20) + 17)
    files.write(root, "/big", data, 0o640)
    assert files.read(root, "/big") == (data, 0o640)


def test_read_missing(root):
    assert files.read(root, "/etc/none") == (None, None)
    assert files.read(root, "/no/such/dir/file") == (None, None)


def test_read_not_a_regular_file(root):
    os.makedirs(os.path.join(root, "etc/dir"))
    with pytest.raises(files.FileError, match="not a regular file"):
        files.read(root, "/etc/dir")


def test_read_refuses_final_link(root, elsewhere):
    os.makedirs(os.path.join(root, "etc"))
    secret = os.path.join(elsewhere, "shadow")
    with open(secret, "w") as handle:
        handle.write("host secret")
    os.symlink(secret, os.path.join(root, "etc/shadow"))
    with pytest.raises(files.FileError, match="symbolic link"):
        files.read(root, "/etc/shadow")


def test_read_fifo_refused_without_blocking(root):
    """A FIFO planted in a container (say at var/lib/dpkg/status) must be refused, not hang the module."""
    os.makedirs(os.path.join(root, "etc"))
    fifo = os.path.join(root, "etc/fifo")
    os.mkfifo(fifo)
    outcome = []

    def reader():
        try:
            outcome.append(files.read(root, "/etc/fifo"))
        except Exception as exc:  # reported below
            outcome.append(exc)

    thread = threading.Thread(target=reader)
    thread.daemon = True
    thread.start()
    thread.join(5)
    blocked = thread.is_alive()
    if blocked:  # release the reader: open the other end once
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
    assert not blocked, "files.read() blocked opening a FIFO (it opens without O_NONBLOCK)"
    assert len(outcome) == 1 and isinstance(outcome[0], files.FileError), outcome
    assert "not a regular file" in str(outcome[0])


def test_remove(root):
    files.write(root, "/etc/a", b"x", 0o644)
    files.remove(root, "/etc/a")
    assert files.read(root, "/etc/a") == (None, None)
    files.remove(root, "/etc/a")  # missing: fine
    files.remove(root, "/no/such/dir/a")


def test_remove_link_not_target(root, elsewhere):
    target = os.path.join(elsewhere, "keep")
    with open(target, "w") as handle:
        handle.write("keep")
    os.makedirs(os.path.join(root, "etc"))
    os.symlink(target, os.path.join(root, "etc/link"))
    files.remove(root, "/etc/link")
    assert not os.path.lexists(os.path.join(root, "etc/link")) and os.path.exists(target)


# ------------------------------------------------------------------------------------------------
# links
# ------------------------------------------------------------------------------------------------

def test_symlink_and_readlink(root):
    link = "/etc/systemd/system/multi-user.target.wants/x.service"
    assert files.readlink(root, link) is None
    files.symlink(root, link, "/etc/systemd/system/x.service")
    assert os.readlink(os.path.join(root, link.lstrip("/"))) == "/etc/systemd/system/x.service"
    assert files.readlink(root, link) == "/etc/systemd/system/x.service"
    files.symlink(root, link, "/lib/systemd/system/x.service")  # replaces
    assert files.readlink(root, link) == "/lib/systemd/system/x.service"


def test_symlink_replaces_a_file(root):
    files.write(root, "/etc/l", b"x", 0o644)
    files.symlink(root, "/etc/l", "target")
    assert files.readlink(root, "/etc/l") == "target"


def test_readlink_of_a_file_or_missing_dir(root):
    files.write(root, "/etc/plain", b"x", 0o644)
    assert files.readlink(root, "/etc/plain") is None
    assert files.readlink(root, "/none/at/all") is None


# ------------------------------------------------------------------------------------------------
# a link planted in the root: nothing leaves it
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("operation", ["write", "read", "remove", "readlink", "symlink", "set_dir_mode"])
@pytest.mark.parametrize("link_at", ["etc", "etc/opdbus"])
def test_link_in_a_directory_component_is_refused(root, elsewhere, operation, link_at):
    real = os.path.join(root, link_at)
    os.makedirs(os.path.dirname(real), exist_ok=True)
    os.symlink(elsewhere, real)
    with open(os.path.join(elsewhere, "present"), "w") as handle:
        handle.write("host")
    os.makedirs(os.path.join(elsewhere, "privacy"))
    os.makedirs(os.path.join(elsewhere, "opdbus", "privacy"))
    with open(os.path.join(elsewhere, "privacy", "wg0.conf"), "w") as handle:
        handle.write("host")
    before = _listing(elsewhere)
    modes = dict((p, _mode(os.path.join(elsewhere, p))) for p in before)
    path = "/etc/opdbus/privacy/wg0.conf"
    calls = {
        "write": lambda: files.write(root, path, b"planted", 0o600),
        "read": lambda: files.read(root, path),
        "remove": lambda: files.remove(root, path),
        "readlink": lambda: files.readlink(root, path),
        "symlink": lambda: files.symlink(root, path, "/x"),
        "set_dir_mode": lambda: files.set_dir_mode(root, "/etc/opdbus/privacy", 0o700),
    }
    with pytest.raises(files.FileError, match="symbolic link or not a directory"):
        calls[operation]()
    assert _listing(elsewhere) == before
    assert dict((p, _mode(os.path.join(elsewhere, p))) for p in before) == modes
    with open(os.path.join(elsewhere, "privacy", "wg0.conf")) as handle:
        assert handle.read() == "host"


def test_a_file_as_directory_component_is_refused(root):
    files.write(root, "/etc", b"not a dir", 0o644)
    with pytest.raises(files.FileError):
        files.write(root, "/etc/x", b"x", 0o644)


@pytest.mark.parametrize("path", ["", "/", "/etc/../root/x", "/etc/./x", "relative/..", "/.."])
def test_bad_paths(root, path):
    with pytest.raises(files.FileError, match="absolute path without"):
        files.write(root, path, b"x", 0o644)
    with pytest.raises(files.FileError):
        files.read(root, path)


def test_relative_path_is_taken_below_root(root):
    files.write(root, "etc/x", b"x", 0o644)
    assert os.path.exists(os.path.join(root, "etc/x"))


# ------------------------------------------------------------------------------------------------
# set_dir_mode
# ------------------------------------------------------------------------------------------------

def test_set_dir_mode(root):
    files.set_dir_mode(root, "/etc/opdbus/privacy", 0o700)
    assert _mode(os.path.join(root, "etc/opdbus/privacy")) == 0o700
    os.chmod(os.path.join(root, "etc/opdbus/privacy"), 0o755)
    files.set_dir_mode(root, "/etc/opdbus/privacy", 0o700)
    assert _mode(os.path.join(root, "etc/opdbus/privacy")) == 0o700


# ------------------------------------------------------------------------------------------------
# installed_packages
# ------------------------------------------------------------------------------------------------

def test_installed_packages(root):
    assert files.installed_packages(root) == set()
    files.write(root, "/var/lib/dpkg/status", DPKG_STATUS.encode("utf-8"), 0o644)
    assert files.installed_packages(root) == {"wireguard-go", "nftables", "libc6"}


def test_installed_packages_held_is_installed(root):
    """A package on hold ("hold ok installed") is installed; dpkg -l shows it as "hi"."""
    status = "Package: wireguard-go\nStatus: hold ok installed\n\nPackage: nftables\nStatus: install ok installed\n"
    files.write(root, "/var/lib/dpkg/status", status.encode("utf-8"), 0o644)
    assert files.installed_packages(root) == {"wireguard-go", "nftables"}


def test_installed_packages_status_link_refused(root, elsewhere):
    os.makedirs(os.path.join(root, "var/lib/dpkg"))
    host_status = os.path.join(elsewhere, "status")
    with open(host_status, "w") as handle:
        handle.write(DPKG_STATUS)
    os.symlink(host_status, os.path.join(root, "var/lib/dpkg/status"))
    with pytest.raises(files.FileError):
        files.installed_packages(root)
