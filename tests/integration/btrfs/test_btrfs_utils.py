# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/btrfs.py against the real kernel, with the btrfs command line as the oracle.

Every ioctl the module issues is exercised on a real btrfs filesystem (the lab's loop devices);
what it did is then read back with ``btrfs subvolume show``/``list`` and ``btrfs property get``,
never with the module itself. The ioctl request numbers are also compared with the values of
``<linux/btrfs.h>`` (hard-coded below and, when a C compiler and the header are there, compiled).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import os
import re
import shutil
import subprocess
import time

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils import btrfs
from ansible_collections.opdbus.infra.plugins.module_utils.btrfs import BtrfsError

BTRFS_CLI = shutil.which("btrfs", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])) or "btrfs"


def run_btrfs(*args, check=True):
    """The btrfs command line (the oracle)."""
    return subprocess.run([BTRFS_CLI] + [str(a) for a in args], check=check, capture_output=True, text=True)


# The request numbers as <linux/btrfs.h> defines them with the asm-generic ioctl encoding on a
# 64-bit machine (x86_64, arm64, riscv64, s390x).
HEADER_IOCTLS = {
    "BTRFS_IOC_SUBVOL_CREATE": 0x5000940E,
    "BTRFS_IOC_SNAP_DESTROY": 0x5000940F,
    "BTRFS_IOC_SNAP_CREATE_V2": 0x50009417,
    "BTRFS_IOC_SUBVOL_CREATE_V2": 0x50009418,
    "BTRFS_IOC_SUBVOL_GETFLAGS": 0x80089419,
    "BTRFS_IOC_SUBVOL_SETFLAGS": 0x4008941A,
    "BTRFS_IOC_FS_INFO": 0x8400941F,
    "BTRFS_IOC_SEND": 0x40489426,
    "BTRFS_IOC_GET_SUBVOL_INFO": 0x81F8943C,
}

C_PROBE = r"""
#include <stdio.h>
#include <linux/btrfs.h>
#define P(x) printf("%s %lu\n", #x, (unsigned long)(x))
int main(void) {
    P(BTRFS_IOC_SUBVOL_CREATE); P(BTRFS_IOC_SNAP_DESTROY); P(BTRFS_IOC_SNAP_CREATE_V2);
    P(BTRFS_IOC_SUBVOL_CREATE_V2); P(BTRFS_IOC_SUBVOL_GETFLAGS); P(BTRFS_IOC_SUBVOL_SETFLAGS);
    P(BTRFS_IOC_FS_INFO); P(BTRFS_IOC_SEND); P(BTRFS_IOC_GET_SUBVOL_INFO);
    return 0;
}
"""


def show(path):
    """`btrfs subvolume show PATH` as a dict of its "Key: value" lines."""
    out = run_btrfs("subvolume", "show", path).stdout
    fields = {}
    for line in out.splitlines()[1:]:
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def prop(path, name):
    """`btrfs property get PATH NAME` -> the value ("" when unset)."""
    out = run_btrfs("property", "get", path, name).stdout.strip()
    return out.partition("=")[2] if out else ""


def listed(mount):
    """Paths (relative to the top level) that `btrfs subvolume list` prints."""
    out = run_btrfs("subvolume", "list", mount).stdout
    return set(line.split(" path ", 1)[1] for line in out.splitlines() if " path " in line)


def rel(mount, path):
    return os.path.relpath(path, mount)


def cli_none(value):
    return None if value in ("-", "") else value


# -- ioctl numbers ---------------------------------------------------------------------------

def test_ioctl_numbers_match_the_header():
    if not btrfs.GENERIC_IOCTL_ENCODING or ctypes.sizeof(ctypes.c_void_p) != 8:
        pytest.skip("these values are for the asm-generic encoding on 64-bit machines; the compiled check covers this one")
    for name, value in HEADER_IOCTLS.items():
        assert getattr(btrfs, name) == value, name
    # the structure sizes the numbers encode
    assert (btrfs.BTRFS_IOC_SNAP_CREATE_V2 >> 16) & 0x3FFF == 4096
    assert (btrfs.BTRFS_IOC_SUBVOL_CREATE >> 16) & 0x3FFF == 4096
    assert (btrfs.BTRFS_IOC_SEND >> 16) & 0x3FFF == 72
    assert (btrfs.BTRFS_IOC_GET_SUBVOL_INFO >> 16) & 0x3FFF == 504


def test_ioctl_numbers_match_the_compiled_header(tmp_path):
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not os.path.exists("/usr/include/linux/btrfs.h"):
        pytest.skip("no C compiler or no <linux/btrfs.h>")
    src = tmp_path / "probe.c"
    src.write_text(C_PROBE)
    exe = tmp_path / "probe"
    subprocess.run([compiler, "-o", str(exe), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    compiled = dict((name, int(value)) for name, value in (line.split() for line in out.splitlines()))
    assert compiled == dict((name, getattr(btrfs, name)) for name in compiled)


# -- queries ----------------------------------------------------------------------------------

def test_is_btrfs_is_subvolume_find_mount(btrfs_mounts, bdir, plain_dir):
    main = btrfs_mounts[0]
    assert btrfs.is_btrfs(main) and btrfs.is_btrfs(bdir)
    assert not btrfs.is_btrfs(plain_dir)
    assert btrfs.is_subvolume(main)  # the top level
    assert not btrfs.is_subvolume(bdir)
    assert not btrfs.is_subvolume(plain_dir)
    findmnt = subprocess.run(["findmnt", "-n", "-o", "TARGET", "-T", bdir], check=True, capture_output=True, text=True)
    assert btrfs.find_mount(bdir) == findmnt.stdout.strip() == os.path.realpath(main)
    fsid = run_btrfs("filesystem", "show", main).stdout
    assert "uuid: %s" % btrfs.filesystem_uuid(bdir) in fsid
    assert btrfs.filesystem_uuid(btrfs_mounts[0]) != btrfs.filesystem_uuid(btrfs_mounts[1])


# -- create, snapshot, delete -----------------------------------------------------------------

def test_create_snapshot_delete(btrfs_mounts, bdir):
    main = btrfs_mounts[0]
    sub = os.path.join(bdir, "sub")
    assert btrfs.create_subvolume(sub) == sub
    assert btrfs.is_subvolume(sub)
    assert rel(main, sub) in listed(main)
    assert prop(sub, "ro") == "false"
    with open(os.path.join(sub, "file"), "w") as handle:
        handle.write("content\n")

    snap = os.path.join(bdir, "snap")
    btrfs.create_snapshot(sub, snap)
    assert prop(snap, "ro") == "true"
    with open(os.path.join(snap, "file")) as handle:
        assert handle.read() == "content\n"
    with pytest.raises(OSError):
        open(os.path.join(snap, "other"), "w").close()

    rw_snap = os.path.join(bdir, "rwsnap")
    btrfs.create_snapshot(sub, rw_snap, readonly=False)
    assert prop(rw_snap, "ro") == "false"

    for path in (snap, rw_snap, sub):
        btrfs.delete_subvolume(path)
        assert not os.path.exists(path)
        assert rel(main, path) not in listed(main)


def test_subvolume_info_fields(bdir):
    before = time.time()
    sub = btrfs.create_subvolume(os.path.join(bdir, "sub"))
    snap = btrfs.create_snapshot(sub, os.path.join(bdir, "snap"))
    info = btrfs.subvolume_info(sub)
    sinfo = btrfs.subvolume_info(snap)
    oracle = show(sub)
    soracle = show(snap)
    assert info["uuid"] == oracle["UUID"]
    assert info["id"] == info["treeid"] == int(oracle["Subvolume ID"])
    assert info["parent_uuid"] is None and cli_none(oracle["Parent UUID"]) is None
    assert info["received_uuid"] is None
    assert info["name"] == "sub" == oracle["Name"]
    assert info["readonly"] is False and "readonly" not in oracle["Flags"]
    assert int(oracle["Gen at creation"]) == info["otransid"]
    assert before - 2 <= info["otime"] <= time.time() + 2
    assert isinstance(info["ctime"], float)
    assert sinfo["uuid"] == soracle["UUID"] and sinfo["uuid"] != info["uuid"]
    assert sinfo["parent_uuid"] == info["uuid"] == soracle["Parent UUID"]
    assert sinfo["readonly"] is True and "readonly" in soracle["Flags"]
    assert time.strftime("%Y-%m-%d %H:%M", time.localtime(sinfo["otime"])) in soracle["Creation time"]


def test_readonly_toggle(bdir):
    sub = btrfs.create_subvolume(os.path.join(bdir, "sub"))
    assert btrfs.get_readonly(sub) is False
    btrfs.set_readonly(sub, True)
    assert prop(sub, "ro") == "true" and btrfs.get_readonly(sub) is True
    btrfs.set_readonly(sub, True)  # idempotent
    assert prop(sub, "ro") == "true"
    btrfs.set_readonly(sub, False)
    assert prop(sub, "ro") == "false" and btrfs.get_readonly(sub) is False
    run_btrfs("property", "set", "-ts", sub, "ro", "true")
    assert btrfs.get_readonly(sub) is True and btrfs.subvolume_info(sub)["readonly"] is True


# -- compression ------------------------------------------------------------------------------

@pytest.mark.parametrize("algo,level,expected", [
    ("zstd", None, "zstd"), ("zstd", 3, "zstd:3"), ("zstd:15", None, "zstd:15"), ("zstd", 1, "zstd:1"),
    ("lzo", None, "lzo"), ("zlib", None, "zlib"), ("zlib", 9, "zlib:9"), ("zlib:1", None, "zlib:1"),
])
def test_compression_set_get(bdir, algo, level, expected):
    target = os.path.join(bdir, "d")
    os.mkdir(target)
    assert btrfs.get_compression(target) == "" == prop(target, "compression")
    assert btrfs.set_compression(target, algo, level) == expected
    assert prop(target, "compression") == expected
    assert btrfs.get_compression(target) == expected
    btrfs.set_compression(target, "")
    assert prop(target, "compression") == "" == btrfs.get_compression(target)
    btrfs.set_compression(target, None)  # clearing twice is fine
    assert prop(target, "compression") == ""


@pytest.mark.parametrize("algo,level", [
    ("zstd", 0), ("zstd", 16), ("zstd:16", None), ("zlib", 10), ("zlib", 0), ("lzo", 1), ("lzo:1", None),
    ("gzip", None), ("zstd:x", None), ("zstd", "3"), ("zstd", True), (None, 3),
])
def test_compression_bad_values_refused(bdir, algo, level):
    target = os.path.join(bdir, "d")
    os.mkdir(target)
    btrfs.set_compression(target, "lzo")
    with pytest.raises(BtrfsError) as err:
        btrfs.set_compression(target, algo, level)
    assert target in str(err.value) and "set compression" in str(err.value)
    assert prop(target, "compression") == "lzo"


def test_compression_off_btrfs(plain_dir):
    with pytest.raises(BtrfsError, match="not on a btrfs filesystem"):
        btrfs.set_compression(plain_dir, "zstd")
    with pytest.raises(BtrfsError, match="not on a btrfs filesystem"):
        btrfs.get_compression(plain_dir)


# -- send and receive -------------------------------------------------------------------------

def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def _tree(path):
    """{relative path: content} of every file under path."""
    found = {}
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as handle:
                found[os.path.relpath(full, path)] = handle.read()
    return found


def test_send_full_incremental_receive(bdir, replica_dir, tmp_path):
    sub = btrfs.create_subvolume(os.path.join(bdir, "sub"))
    _write(os.path.join(sub, "a"), "alpha\n" * 5000)
    os.mkdir(os.path.join(sub, "dir"))
    _write(os.path.join(sub, "dir", "b"), "beta\n")
    snap1 = btrfs.create_snapshot(sub, os.path.join(bdir, "snap1"))

    full = str(tmp_path / "full.stream")
    size = btrfs.send(snap1, full)
    assert size == os.path.getsize(full) > 0
    assert os.stat(full).st_mode & 0o777 == 0o600
    assert btrfs.stream_subvolume_name(full) == "snap1"
    got1 = btrfs.receive(full, replica_dir)
    assert got1 == os.path.join(replica_dir, "snap1")
    oracle1 = show(got1)
    assert oracle1["Received UUID"] == btrfs.subvolume_info(snap1)["uuid"] == btrfs.subvolume_info(got1)["received_uuid"]
    assert prop(got1, "ro") == "true"
    assert _tree(got1) == _tree(snap1)

    _write(os.path.join(sub, "dir", "b"), "beta changed\n")
    _write(os.path.join(sub, "c"), "gamma\n")
    os.unlink(os.path.join(sub, "a"))
    snap2 = btrfs.create_snapshot(sub, os.path.join(bdir, "snap2"))
    incr = str(tmp_path / "incr.stream")
    isize = btrfs.send(snap2, incr, parent=snap1)
    assert 0 < isize < size  # "alpha" * 5000 is not sent again
    full2 = str(tmp_path / "full2.stream")
    assert btrfs.send(snap2, full2) > isize
    got2 = btrfs.receive(incr, replica_dir)
    oracle2 = show(got2)
    assert oracle2["Received UUID"] == btrfs.subvolume_info(snap2)["uuid"]
    assert _tree(got2) == _tree(snap2) == {"c": b"gamma\n", "dir/b": b"beta changed\n"}
    # the incremental stream names its parent: received against another fs without it, it fails
    lone = os.path.join(replica_dir, "lone")
    os.mkdir(lone)
    btrfs.delete_subvolume(got1)
    with pytest.raises(BtrfsError, match="btrfs receive"):
        btrfs.receive(incr, lone)


def test_send_refuses_writable(bdir, tmp_path):
    sub = btrfs.create_subvolume(os.path.join(bdir, "sub"))
    snap = btrfs.create_snapshot(sub, os.path.join(bdir, "snap"))
    out = str(tmp_path / "s.stream")
    with pytest.raises(BtrfsError, match="not read-only"):
        btrfs.send(sub, out)
    with pytest.raises(BtrfsError, match="parent is not read-only"):
        btrfs.send(snap, out, parent=sub)
    assert not os.path.exists(out)
    btrfs.send(snap, out)
    with pytest.raises(BtrfsError, match="File exists"):
        btrfs.send(snap, out)


# -- errors -----------------------------------------------------------------------------------

def test_errors_are_clear(bdir, plain_dir):
    with pytest.raises(BtrfsError) as err:
        btrfs.create_subvolume(os.path.join(plain_dir, "sub"))
    assert plain_dir in str(err.value) and "not on a btrfs filesystem" in str(err.value)
    with pytest.raises(BtrfsError, match="not on a btrfs filesystem"):
        btrfs.subvolume_info(plain_dir)

    plain = os.path.join(bdir, "plain")
    os.mkdir(plain)
    with pytest.raises(BtrfsError) as err:
        btrfs.delete_subvolume(plain)
    assert re.search(r"plain: delete subvolume failed: not a btrfs subvolume", str(err.value))
    assert os.path.isdir(plain)
    with pytest.raises(BtrfsError, match="not a btrfs subvolume"):
        btrfs.create_snapshot(plain, os.path.join(bdir, "x"))

    sub = btrfs.create_subvolume(os.path.join(bdir, "sub"))
    with pytest.raises(BtrfsError) as err:
        btrfs.create_snapshot(sub, plain)
    assert "plain: create read-only snapshot of %s failed: File exists" % sub in str(err.value)
    assert err.value.errno == 17
    with pytest.raises(BtrfsError, match="File exists"):
        btrfs.create_subvolume(sub)
    with pytest.raises(BtrfsError, match="No such file or directory"):
        btrfs.subvolume_info(os.path.join(bdir, "missing"))
    with pytest.raises(BtrfsError, match="not a valid subvolume name"):
        btrfs.create_subvolume(bdir + "/sub/..")


def test_kernel_errors_pass_through(bdir):
    """Errors the kernel itself returns (not pre-checks) come back as BtrfsError with errno text."""
    sub = btrfs.create_subvolume(os.path.join(bdir, "sub"))
    btrfs.create_subvolume(os.path.join(sub, "nested"))
    with pytest.raises(BtrfsError) as err:
        btrfs.delete_subvolume(sub)  # a subvolume holding another: the kernel says ENOTEMPTY
    assert "BTRFS_IOC_SNAP_DESTROY" in str(err.value) and err.value.errno == 39
    assert "Directory not empty" in str(err.value)
