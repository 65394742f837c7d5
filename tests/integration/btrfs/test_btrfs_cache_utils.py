# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tree search, qgroup and compressed-size parts of module_utils/btrfs.py against the btrfs command line.

The ioctl numbers are checked against ``<linux/btrfs.h>`` (compiled when a C compiler is there,
else the values the header gives on x86_64/aarch64).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import os
import shutil
import subprocess

import pytest

from btrfs_support import run_btrfs
from test_btrfs_cache_support import qgroup_row, quotas_on, restore_quotas

from ansible_collections.opdbus.infra.plugins.module_utils import btrfs

HEADER_IOCTLS = {
    "BTRFS_IOC_TREE_SEARCH": 0xD0009411,
    "BTRFS_IOC_INO_LOOKUP": 0xD0009412,
    "BTRFS_IOC_QUOTA_CTL": 0xC0109428,
    "BTRFS_IOC_QGROUP_LIMIT": 0x8030942B,
    "BTRFS_IOC_QUOTA_RESCAN": 0x4040942C,
    "BTRFS_IOC_QUOTA_RESCAN_STATUS": 0x8040942D,
    "BTRFS_IOC_QUOTA_RESCAN_WAIT": 0x942E,
}


def test_ioctl_numbers_match_the_header(tmp_path):
    if not btrfs.GENERIC_IOCTL_ENCODING or ctypes.sizeof(ctypes.c_void_p) != 8:
        pytest.skip("the hard-coded numbers are those of the generic ioctl encoding on 64-bit")
    for name, value in HEADER_IOCTLS.items():
        assert getattr(btrfs, name) == value, name
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not os.path.exists("/usr/include/linux/btrfs.h"):
        return
    src = tmp_path / "probe.c"
    src.write_text("#include <stdio.h>\n#include <linux/btrfs.h>\nint main(void) {\n" + "".join(
        '    printf("%s %%lu\\n", (unsigned long)(%s));\n' % (name, name) for name in HEADER_IOCTLS) + "    return 0;\n}\n")
    subprocess.run([compiler, "-o", str(tmp_path / "probe"), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(tmp_path / "probe")], check=True, capture_output=True, text=True).stdout
    compiled = dict((line.split()[0], int(line.split()[1])) for line in out.splitlines())
    assert compiled == HEADER_IOCTLS


def cli_list(mount):
    """{path: (id, top level)} from `btrfs subvolume list`."""
    out = {}
    for line in run_btrfs("subvolume", "list", mount).stdout.splitlines():
        fields = line.split()
        out[line.split(" path ", 1)[1]] = (int(fields[1]), int(fields[6]))
    return out


def test_list_subvolumes_matches_the_cli(bdir, btrfs_mounts):
    mount = btrfs_mounts[0]
    btrfs.create_subvolume(os.path.join(bdir, "a"))
    os.makedirs(os.path.join(bdir, "a", "deep", "er"))
    btrfs.create_subvolume(os.path.join(bdir, "a", "deep", "er", "inner"))
    btrfs.create_snapshot(os.path.join(bdir, "a"), os.path.join(bdir, "a-ro"), readonly=True)
    rel = os.path.relpath(bdir, mount)
    ours = btrfs.list_subvolumes(bdir)
    cli = cli_list(mount)
    # other tests may make subvolumes on the same filesystem meanwhile: compare those under bdir
    mine = dict((e["path"], (e["id"], e["parent_id"])) for e in ours if e["path"].startswith(rel + "/"))
    assert mine == dict((p, v) for p, v in cli.items() if p.startswith(rel + "/")) and len(mine) == 3
    by_path = dict((e["path"], e) for e in ours)
    for name, readonly in (("a", False), ("a/deep/er/inner", False), ("a-ro", True)):
        entry = by_path[rel + "/" + name]
        assert entry["abspath"] == os.path.join(bdir, name) and entry["readonly"] is readonly
        assert entry["uuid"] == btrfs.subvolume_info(entry["abspath"])["uuid"]
    assert by_path[rel + "/a-ro"]["parent_uuid"] == by_path[rel + "/a"]["uuid"]
    shown = btrfs.show_subvolume(os.path.join(bdir, "a", "deep", "er", "inner"))
    assert shown["path"] == rel + "/a/deep/er/inner"


def test_quota_and_qgroup_limits_match_the_cli(bdir, btrfs_mounts):
    mount = btrfs_mounts[0]
    restore = restore_quotas(mount)
    try:
        sub = btrfs.create_subvolume(os.path.join(bdir, "q"))
        btrfs.enable_quota(mount)
        assert btrfs.quota_enabled(mount) and quotas_on(mount)
        btrfs.quota_rescan(mount)
        with open(os.path.join(sub, "data"), "wb") as handle:
            handle.write(os.urandom(300000))
        os.sync()
        btrfs.set_qgroup_limit(sub, max_referenced=5 * 1024 ** 3, max_exclusive=1024 ** 3)
        groups = btrfs.qgroup_show(mount)
        mine = groups[btrfs.subvolume_info(sub)["id"]]
        rfer, excl, max_rfer, max_excl = qgroup_row(mount, sub)
        assert (mine["referenced"], mine["exclusive"]) == (int(rfer), int(excl)) and int(rfer) >= 300000
        assert (mine["max_referenced"], mine["max_exclusive"]) == (5 * 1024 ** 3, 1024 ** 3) == (int(max_rfer), int(max_excl))
        assert mine["qgroupid"] == "0/%d" % btrfs.subvolume_info(sub)["id"]
        btrfs.set_qgroup_limit(sub, clear_referenced=True)
        assert qgroup_row(mount, sub)[2:] == ["none", str(1024 ** 3)]
        assert btrfs.qgroup_show(mount)[btrfs.subvolume_info(sub)["id"]]["max_referenced"] is None
    finally:
        restore()


def test_qgroup_limit_needs_quotas_and_a_subvolume(bdir, btrfs_mounts):
    if quotas_on(btrfs_mounts[0]):
        pytest.skip("quotas are on for this filesystem")
    sub = btrfs.create_subvolume(os.path.join(bdir, "nq"))
    with pytest.raises(btrfs.BtrfsError, match="quotas are not enabled"):
        btrfs.set_qgroup_limit(sub, max_referenced=1024)
    assert btrfs.qgroup_show(bdir) == {} and btrfs.quota_status(bdir)["enabled"] is False
    os.mkdir(os.path.join(bdir, "plain"))
    with pytest.raises(btrfs.BtrfsError, match="not a btrfs subvolume"):
        btrfs.set_qgroup_limit(os.path.join(bdir, "plain"), max_referenced=1024)


def test_compression_usage_counts_extents(bdir):
    sub = btrfs.create_subvolume(os.path.join(bdir, "z"))
    btrfs.set_compression(sub, "zstd")
    with open(os.path.join(sub, "text"), "wb") as handle:
        handle.write(b"0123456789abcdef" * 65536)  # 1 MiB, very compressible
    with open(os.path.join(sub, "tiny"), "wb") as handle:
        handle.write(b"x" * 100)  # inline
    os.sync()
    usage = btrfs.compression_usage(sub)
    assert usage["uncompressed_bytes"] >= 1024 * 1024 + 100 and usage["referenced_bytes"] >= 1024 * 1024 + 100
    assert usage["disk_bytes"] < usage["uncompressed_bytes"] // 4 and usage["compressed_extents"] >= 1
    # a reflink copy shares the extents: counted once on disk, twice referenced
    subprocess.run(["cp", "--reflink=always", os.path.join(sub, "text"), os.path.join(sub, "copy")], check=True)
    os.sync()
    again = btrfs.compression_usage(sub)
    assert again["disk_bytes"] == usage["disk_bytes"] and again["referenced_bytes"] == usage["referenced_bytes"] + 1024 * 1024
    # the snapshot copy of the extents: same numbers
    snap = btrfs.create_snapshot(sub, os.path.join(bdir, "z-snap"))
    assert btrfs.compression_usage(snap) == again
    with pytest.raises(btrfs.BtrfsError, match="not a btrfs subvolume"):
        os.mkdir(os.path.join(bdir, "pd"))
        btrfs.compression_usage(os.path.join(bdir, "pd"))
    assert run_btrfs("property", "get", sub, "compression").stdout.strip() == "compression=zstd"
