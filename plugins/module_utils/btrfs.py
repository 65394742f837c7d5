# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Btrfs subvolumes, snapshots, properties and send through the kernel's ioctls.

Python standard library only (``fcntl.ioctl``, ``ctypes``, ``os``), so that
controller-side plugins and modules on managed hosts can both import it.
Everything here talks to the kernel directly, as ``btrfs-progs`` does:

- ``is_btrfs``: ``statfs(2)`` (through libc, as ``os.statvfs`` has no
  ``f_type``) compared with ``BTRFS_SUPER_MAGIC``;
- ``is_subvolume``: btrfs, and the inode number of a subvolume's root
  directory (``BTRFS_FIRST_FREE_OBJECTID``, 256);
- ``create_subvolume``: ``BTRFS_IOC_SUBVOL_CREATE_V2`` on the parent directory;
- ``create_snapshot``: ``BTRFS_IOC_SNAP_CREATE_V2`` (``BTRFS_SUBVOL_RDONLY``
  for a read-only snapshot);
- ``delete_subvolume``: ``BTRFS_IOC_SNAP_DESTROY`` on the parent directory;
- ``get_readonly``/``set_readonly``: ``BTRFS_IOC_SUBVOL_GETFLAGS``/``SETFLAGS``;
- ``subvolume_info``: ``BTRFS_IOC_GET_SUBVOL_INFO``;
- ``filesystem_uuid``: ``BTRFS_IOC_FS_INFO``;
- ``get_compression``/``set_compression``: the ``btrfs.compression`` xattr
  (the kernel's property handler validates and applies it);
- ``send``: ``BTRFS_IOC_SEND`` writing the stream into a file;
- ``tree_search``: ``BTRFS_IOC_TREE_SEARCH`` over any of the filesystem's b-trees (root only);
- ``list_subvolumes``/``show_subvolume``: the root tree's ``ROOT_ITEM``/``ROOT_BACKREF`` items by
  tree search, with ``BTRFS_IOC_INO_LOOKUP`` for the directories between subvolumes;
- ``quota_status``/``quota_enabled``/``qgroup_show``: the quota tree's status, ``QGROUP_INFO``
  (referenced/exclusive bytes) and ``QGROUP_LIMIT`` items by tree search;
- ``enable_quota``/``disable_quota``: ``BTRFS_IOC_QUOTA_CTL``; ``quota_rescan``/``quota_rescan_wait``:
  ``BTRFS_IOC_QUOTA_RESCAN``/``BTRFS_IOC_QUOTA_RESCAN_WAIT``;
- ``set_qgroup_limit``: ``BTRFS_IOC_QGROUP_LIMIT`` (max referenced/exclusive, or "none");
- ``compression_usage``: the ``EXTENT_DATA`` items of a subvolume's tree by tree search (compressed
  and uncompressed bytes, as ``compsize`` counts them).

``receive`` is the one exception and the ONLY use of the ``btrfs`` command
line in this file: the kernel has no operation that applies a send stream.
A stream is a list of file operations (create, write, clone, rename, set
xattr, ...) that ``btrfs receive`` parses and replays in userspace, then it
marks the result read-only and sets its received UUID.  Reimplementing that
parser is a large and delicate job; the command is the reference for it.

Every failure raises ``BtrfsError`` naming the path, the operation and the
system's error text.  The ioctl numbers are computed the way ``<asm/ioctl.h>``
does (``_IOW``/``_IOR``) from the structure sizes below, which follow
``<linux/btrfs.h>``; the integration tests check them against the running
kernel and the header's values.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import fcntl
import os
import platform
import shutil
import struct
import subprocess
import uuid

BTRFS_SUPER_MAGIC = 0x9123683E
BTRFS_FIRST_FREE_OBJECTID = 256
BTRFS_IOCTL_MAGIC = 0x94
BTRFS_PATH_NAME_MAX = 4087
BTRFS_SUBVOL_NAME_MAX = 4039
BTRFS_VOL_NAME_MAX = 255
BTRFS_UUID_SIZE = 16
BTRFS_SUBVOL_RDONLY = 1 << 1
BTRFS_ROOT_SUBVOL_RDONLY = 1 << 0
COMPRESSION_XATTR = "btrfs.compression"
# algorithm -> (lowest, highest) level, or None when the algorithm takes no level
COMPRESSION_LEVELS = {"zstd": (1, 15), "zlib": (1, 9), "lzo": None}

# <asm-generic/ioctl.h>: dir<<30 | size<<16 | type<<8 | nr, 14 size bits, write 1, read 2. A few
# architectures (powerpc, mips, sparc, alpha) put 3 direction bits at 29 and keep 13 size bits,
# with write 4, read 2.
GENERIC_IOCTL_ENCODING = not platform.machine().lower().startswith(("ppc", "powerpc", "mips", "sparc", "alpha"))
if GENERIC_IOCTL_ENCODING:
    _IOC_WRITE, _IOC_READ, _IOC_DIRSHIFT, _IOC_SIZEBITS = 1, 2, 30, 14
else:
    _IOC_WRITE, _IOC_READ, _IOC_DIRSHIFT, _IOC_SIZEBITS = 4, 2, 29, 13


def _ioc(direction, nr, size):
    """An ioctl request number: dir<<30 (29) | size<<16 | type<<8 | nr, as _IOC() in <asm/ioctl.h>."""
    if size >= 1 << _IOC_SIZEBITS:
        raise ValueError("ioctl argument size %d does not fit in %d bits" % (size, _IOC_SIZEBITS))
    return (direction << _IOC_DIRSHIFT) | (size << 16) | (BTRFS_IOCTL_MAGIC << 8) | nr


def _iow(nr, size):
    return _ioc(_IOC_WRITE, nr, size)


def _ior(nr, size):
    return _ioc(_IOC_READ, nr, size)


class BtrfsError(Exception):
    """A btrfs operation failed; ``path``, ``operation`` and ``errno`` say which and why."""

    def __init__(self, path, operation, detail=None, err=None):
        self.path = path
        self.operation = operation
        self.errno = err
        if detail is None and err is not None:
            detail = os.strerror(err)
        message = "%s: %s" % (path, operation)
        if detail:
            message += " failed: %s" % detail
        super().__init__(message)


# -- structures (<linux/btrfs.h>) -------------------------------------------------------------

class _VolArgs(ctypes.Structure):
    """struct btrfs_ioctl_vol_args: s64 fd; char name[4088]."""
    _fields_ = [("fd", ctypes.c_int64), ("name", ctypes.c_char * (BTRFS_PATH_NAME_MAX + 1))]


class _VolArgsV2Inherit(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint64), ("qgroup_inherit", ctypes.c_uint64)]


class _VolArgsV2U1(ctypes.Union):
    _fields_ = [("inherit", _VolArgsV2Inherit), ("unused", ctypes.c_uint64 * 4)]


class _VolArgsV2U2(ctypes.Union):
    _fields_ = [("name", ctypes.c_char * (BTRFS_SUBVOL_NAME_MAX + 1)), ("devid", ctypes.c_uint64),
                ("subvolid", ctypes.c_uint64)]


class _VolArgsV2(ctypes.Structure):
    """struct btrfs_ioctl_vol_args_v2: fd, transid, flags, {size, qgroup_inherit | unused[4]}, {name[4040] | devid | subvolid}."""
    _fields_ = [("fd", ctypes.c_int64), ("transid", ctypes.c_uint64), ("flags", ctypes.c_uint64),
                ("u1", _VolArgsV2U1), ("u2", _VolArgsV2U2)]


class _Timespec(ctypes.Structure):
    """struct btrfs_ioctl_timespec: u64 sec; u32 nsec (padded to 16 bytes)."""
    _fields_ = [("sec", ctypes.c_uint64), ("nsec", ctypes.c_uint32)]


class _GetSubvolInfoArgs(ctypes.Structure):
    """struct btrfs_ioctl_get_subvol_info_args (504 bytes)."""
    _fields_ = [
        ("treeid", ctypes.c_uint64),
        ("name", ctypes.c_char * (BTRFS_VOL_NAME_MAX + 1)),
        ("parent_id", ctypes.c_uint64),
        ("dirid", ctypes.c_uint64),
        ("generation", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("uuid", ctypes.c_uint8 * BTRFS_UUID_SIZE),
        ("parent_uuid", ctypes.c_uint8 * BTRFS_UUID_SIZE),
        ("received_uuid", ctypes.c_uint8 * BTRFS_UUID_SIZE),
        ("ctransid", ctypes.c_uint64),
        ("otransid", ctypes.c_uint64),
        ("stransid", ctypes.c_uint64),
        ("rtransid", ctypes.c_uint64),
        ("ctime", _Timespec),
        ("otime", _Timespec),
        ("stime", _Timespec),
        ("rtime", _Timespec),
        ("reserved", ctypes.c_uint64 * 8),
    ]


class _SendArgs(ctypes.Structure):
    """struct btrfs_ioctl_send_args: send_fd, clone_sources_count, clone_sources (u64 *), parent_root, flags, version, reserved."""
    _fields_ = [
        ("send_fd", ctypes.c_int64),
        ("clone_sources_count", ctypes.c_uint64),
        ("clone_sources", ctypes.POINTER(ctypes.c_uint64)),
        ("parent_root", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("version", ctypes.c_uint32),
        ("reserved", ctypes.c_uint8 * 28),
    ]


# struct btrfs_ioctl_fs_info_args is 1024 bytes; the fsid is at offset 16 (after max_id, num_devices)
_FS_INFO_SIZE = 1024
_FS_INFO_FSID_OFFSET = 16

BTRFS_IOC_SUBVOL_CREATE = _iow(14, ctypes.sizeof(_VolArgs))
BTRFS_IOC_SNAP_DESTROY = _iow(15, ctypes.sizeof(_VolArgs))
BTRFS_IOC_SNAP_CREATE_V2 = _iow(23, ctypes.sizeof(_VolArgsV2))
BTRFS_IOC_SUBVOL_CREATE_V2 = _iow(24, ctypes.sizeof(_VolArgsV2))
BTRFS_IOC_SUBVOL_GETFLAGS = _ior(25, 8)
BTRFS_IOC_SUBVOL_SETFLAGS = _iow(26, 8)
BTRFS_IOC_FS_INFO = _ior(31, _FS_INFO_SIZE)
BTRFS_IOC_SEND = _iow(38, ctypes.sizeof(_SendArgs))
BTRFS_IOC_GET_SUBVOL_INFO = _ior(60, ctypes.sizeof(_GetSubvolInfoArgs))


# -- helpers ----------------------------------------------------------------------------------

class _StatfsBuf(ctypes.Structure):
    """The head of struct statfs (f_type comes first); the rest is room for the kernel to fill."""
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_uint8 * 256)]


_LIBC = None


def _libc():
    global _LIBC  # pylint: disable=global-statement
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        _LIBC.statfs.restype = ctypes.c_int
    return _LIBC


def _fs_type(path):
    buf = _StatfsBuf()
    if _libc().statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise BtrfsError(path, "statfs", err=err)
    return buf.f_type & 0xFFFFFFFF


def _open_dir(path, operation):
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise BtrfsError(path, operation, err=exc.errno) from exc


def _ioctl(fd, request, arg, path, operation):
    try:
        return fcntl.ioctl(fd, request, arg, True)
    except OSError as exc:
        raise BtrfsError(path, operation, err=exc.errno) from exc


def _split(path, operation):
    """(absolute parent directory, last component) of a path naming a new or existing subvolume."""
    if os.path.basename(os.fspath(path).rstrip("/")) in ("", ".", ".."):
        raise BtrfsError(path, operation, "not a valid subvolume name")
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    if not name:
        raise BtrfsError(path, operation, "not a valid subvolume name")
    if len(os.fsencode(name)) > BTRFS_VOL_NAME_MAX:
        raise BtrfsError(path, operation, "name longer than %d bytes" % BTRFS_VOL_NAME_MAX)
    return parent, name


def _uuid_or_none(raw):
    data = bytes(raw)
    if data == bytes(BTRFS_UUID_SIZE):
        return None
    return str(uuid.UUID(bytes=data))


def _require_btrfs(path, operation):
    if not os.path.exists(path):
        raise BtrfsError(path, operation, err=errno.ENOENT)
    if not is_btrfs(path):
        raise BtrfsError(path, operation, "not on a btrfs filesystem")


def _require_subvolume(path, operation):
    _require_btrfs(path, operation)
    if not is_subvolume(path):
        raise BtrfsError(path, operation, "not a btrfs subvolume (a plain directory or file)")


def _require_new(path, operation):
    if os.path.lexists(path):
        raise BtrfsError(path, operation, err=errno.EEXIST)


# -- queries ----------------------------------------------------------------------------------

def is_btrfs(path):
    """True when ``path`` lives on a btrfs filesystem (statfs f_type == BTRFS_SUPER_MAGIC)."""
    return _fs_type(path) == BTRFS_SUPER_MAGIC


def is_subvolume(path):
    """True when ``path`` is the root directory of a btrfs subvolume (or snapshot)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BtrfsError(path, "stat", err=exc.errno) from exc
    if not os.path.isdir(path) or st.st_ino != BTRFS_FIRST_FREE_OBJECTID:
        return False
    return is_btrfs(path)


def _unescape_mountinfo(field):
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out = bytearray()
    raw = field.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        if raw[i:i + 1] == b"\\" and raw[i + 1:i + 4].isdigit() and len(raw[i + 1:i + 4]) == 3:
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def find_mount(path):
    """The mount point of the filesystem ``path`` is on (the longest mount point that contains it)."""
    real = os.path.realpath(path)
    best = None
    try:
        with open("/proc/self/mountinfo", "r", encoding="utf-8", errors="surrogateescape") as handle:
            for line in handle:
                fields = line.split(" ")
                if len(fields) < 5:
                    continue
                mnt = _unescape_mountinfo(fields[4])
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and (best is None or len(mnt) >= len(best)):
                    best = mnt
    except OSError as exc:
        raise BtrfsError(path, "find mount point (reading /proc/self/mountinfo)", err=exc.errno) from exc
    if best is None:
        raise BtrfsError(path, "find mount point", "no mount contains it")
    return best


def filesystem_uuid(path):
    """The UUID of the btrfs filesystem ``path`` is on (BTRFS_IOC_FS_INFO), as a string."""
    _require_btrfs(path, "read filesystem info")
    buf = bytearray(_FS_INFO_SIZE)
    fd = _open_dir(path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path)), "read filesystem info")
    try:
        _ioctl(fd, BTRFS_IOC_FS_INFO, buf, path, "read filesystem info (BTRFS_IOC_FS_INFO)")
    finally:
        os.close(fd)
    return str(uuid.UUID(bytes=bytes(buf[_FS_INFO_FSID_OFFSET:_FS_INFO_FSID_OFFSET + BTRFS_UUID_SIZE])))


def subvolume_info(path):
    """What the kernel knows about the subvolume whose root is ``path``.

    Returns ``{"id", "treeid", "name", "parent_id", "generation", "flags", "uuid",
    "parent_uuid", "received_uuid", "ctransid", "otransid", "stransid", "rtransid",
    "ctime", "otime", "stime", "rtime", "readonly"}``; UUIDs are canonical strings
    (None when all zero), times are epoch floats.
    """
    _require_subvolume(path, "read subvolume info")
    args = _GetSubvolInfoArgs()
    fd = _open_dir(path, "read subvolume info")
    try:
        _ioctl(fd, BTRFS_IOC_GET_SUBVOL_INFO, args, path, "read subvolume info (BTRFS_IOC_GET_SUBVOL_INFO)")
    finally:
        os.close(fd)

    def _time(spec):
        return spec.sec + spec.nsec / 1e9

    return {
        "id": args.treeid,
        "treeid": args.treeid,
        "name": os.fsdecode(args.name),
        "parent_id": args.parent_id,
        "generation": args.generation,
        "flags": args.flags,
        "uuid": _uuid_or_none(args.uuid),
        "parent_uuid": _uuid_or_none(args.parent_uuid),
        "received_uuid": _uuid_or_none(args.received_uuid),
        "ctransid": args.ctransid,
        "otransid": args.otransid,
        "stransid": args.stransid,
        "rtransid": args.rtransid,
        "ctime": _time(args.ctime),
        "otime": _time(args.otime),
        "stime": _time(args.stime),
        "rtime": _time(args.rtime),
        "readonly": bool(args.flags & BTRFS_ROOT_SUBVOL_RDONLY),
    }


# -- subvolumes and snapshots -----------------------------------------------------------------

def create_subvolume(path):
    """Create an empty subvolume at ``path`` (which must not exist; its parent must be on btrfs)."""
    operation = "create subvolume"
    parent, name = _split(path, operation)
    _require_new(path, operation)
    _require_btrfs(parent, operation)
    args = _VolArgsV2()
    args.u2.name = os.fsencode(name)
    fd = _open_dir(parent, operation)
    try:
        _ioctl(fd, BTRFS_IOC_SUBVOL_CREATE_V2, args, os.path.abspath(path), operation + " (BTRFS_IOC_SUBVOL_CREATE_V2)")
    finally:
        os.close(fd)
    return os.path.abspath(path)


def create_snapshot(source, dest, readonly=True):
    """Snapshot the subvolume ``source`` as ``dest`` (a new name, on the same filesystem)."""
    operation = "create %ssnapshot of %s" % ("read-only " if readonly else "", source)
    parent, name = _split(dest, operation)
    _require_subvolume(source, "snapshot (source)")
    _require_new(dest, operation)
    _require_btrfs(parent, operation)
    args = _VolArgsV2()
    args.flags = BTRFS_SUBVOL_RDONLY if readonly else 0
    args.u2.name = os.fsencode(name)
    src_fd = _open_dir(source, operation)
    try:
        args.fd = src_fd
        dir_fd = _open_dir(parent, operation)
        try:
            _ioctl(dir_fd, BTRFS_IOC_SNAP_CREATE_V2, args, os.path.abspath(dest), operation + " (BTRFS_IOC_SNAP_CREATE_V2)")
        finally:
            os.close(dir_fd)
    finally:
        os.close(src_fd)
    return os.path.abspath(dest)


def delete_subvolume(path):
    """Delete the subvolume or snapshot at ``path`` (read-only ones too, as root)."""
    operation = "delete subvolume"
    parent, name = _split(path, operation)
    _require_subvolume(path, operation)
    args = _VolArgs()
    args.name = os.fsencode(name)
    fd = _open_dir(parent, operation)
    try:
        _ioctl(fd, BTRFS_IOC_SNAP_DESTROY, args, os.path.abspath(path), operation + " (BTRFS_IOC_SNAP_DESTROY)")
    finally:
        os.close(fd)


def get_readonly(path):
    """True when the subvolume at ``path`` is read-only (BTRFS_IOC_SUBVOL_GETFLAGS)."""
    _require_subvolume(path, "read subvolume flags")
    buf = bytearray(8)
    fd = _open_dir(path, "read subvolume flags")
    try:
        _ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, buf, path, "read subvolume flags (BTRFS_IOC_SUBVOL_GETFLAGS)")
    finally:
        os.close(fd)
    return bool(struct.unpack("=Q", bytes(buf))[0] & BTRFS_SUBVOL_RDONLY)


def set_readonly(path, flag):
    """Make the subvolume at ``path`` read-only (``flag`` true) or writable (BTRFS_IOC_SUBVOL_SETFLAGS)."""
    operation = "set subvolume %s" % ("read-only" if flag else "writable")
    _require_subvolume(path, operation)
    buf = bytearray(8)
    fd = _open_dir(path, operation)
    try:
        _ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, buf, path, "read subvolume flags (BTRFS_IOC_SUBVOL_GETFLAGS)")
        flags = struct.unpack("=Q", bytes(buf))[0]
        flags = (flags | BTRFS_SUBVOL_RDONLY) if flag else (flags & ~BTRFS_SUBVOL_RDONLY)
        _ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, bytearray(struct.pack("=Q", flags)), path,
               operation + " (BTRFS_IOC_SUBVOL_SETFLAGS)")
    finally:
        os.close(fd)


# -- compression property ---------------------------------------------------------------------

def _compression_value(algo, level):
    if algo is None or algo == "":
        if level is not None:
            raise BtrfsError(str(algo), "set compression", "a level needs an algorithm")
        return ""
    if not isinstance(algo, str):
        raise BtrfsError(repr(algo), "set compression", "algorithm must be a string")
    if ":" in algo and level is None:
        algo, level_text = algo.split(":", 1)
        try:
            level = int(level_text, 10)
        except ValueError as exc:
            raise BtrfsError(level_text, "set compression", "level is not an integer") from exc
    if algo not in COMPRESSION_LEVELS:
        raise BtrfsError(algo, "set compression", "unknown algorithm (known: %s)" % ", ".join(sorted(COMPRESSION_LEVELS)))
    bounds = COMPRESSION_LEVELS[algo]
    if level is None:
        return algo
    if isinstance(level, bool) or not isinstance(level, int):
        raise BtrfsError(repr(level), "set compression", "level must be an integer")
    if bounds is None:
        raise BtrfsError("%s:%s" % (algo, level), "set compression", "%s takes no level" % algo)
    if level < bounds[0] or level > bounds[1]:
        raise BtrfsError("%s:%s" % (algo, level), "set compression",
                         "%s level must be %d to %d" % (algo, bounds[0], bounds[1]))
    return "%s:%d" % (algo, level)


def get_compression(path):
    """The ``btrfs.compression`` property of ``path`` ("zstd", "zstd:3", "lzo", ...), "" when unset."""
    _require_btrfs(path, "read compression property")
    try:
        value = os.getxattr(path, COMPRESSION_XATTR)
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            return ""
        raise BtrfsError(path, "read compression property (xattr %s)" % COMPRESSION_XATTR, err=exc.errno) from exc
    return value.decode("ascii", "replace").rstrip("\0")


def set_compression(path, algo, level=None):
    """Set the ``btrfs.compression`` property: zstd (levels 1-15), zlib (1-9), lzo (no level); "" or None clears it."""
    try:
        value = _compression_value(algo, level)
    except BtrfsError as exc:
        raise BtrfsError(path, "set compression", str(exc)) from exc
    _require_btrfs(path, "set compression property")
    try:
        if value:
            os.setxattr(path, COMPRESSION_XATTR, value.encode("ascii"))
        else:
            try:
                os.removexattr(path, COMPRESSION_XATTR)
            except OSError as exc:
                if exc.errno != errno.ENODATA:
                    raise
    except OSError as exc:
        raise BtrfsError(path, "set compression property %r (xattr %s)" % (value, COMPRESSION_XATTR), err=exc.errno) from exc
    return value


# -- send and receive -------------------------------------------------------------------------

def send(subvolume, out_path, parent=None):
    """Write the send stream of the read-only ``subvolume`` into the new file ``out_path`` (0600).

    With ``parent`` (a read-only snapshot the receiving side already has), the
    stream is incremental: only the differences, with ``parent`` as the clone
    source.  Returns the number of bytes written.
    """
    operation = "send" + (" (incremental from %s)" % parent if parent else "")
    _require_subvolume(subvolume, operation)
    if not get_readonly(subvolume):
        raise BtrfsError(subvolume, operation, "the subvolume is not read-only; only read-only snapshots can be sent")
    parent_root = 0
    if parent is not None:
        _require_subvolume(parent, operation + " (parent)")
        if not get_readonly(parent):
            raise BtrfsError(parent, operation, "the parent is not read-only; only read-only snapshots can be parents")
        parent_root = subvolume_info(parent)["id"]
    try:
        out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise BtrfsError(out_path, "create send stream file", err=exc.errno) from exc
    try:
        sources = (ctypes.c_uint64 * 1)(parent_root)
        args = _SendArgs()
        args.send_fd = out_fd
        if parent_root:
            args.clone_sources_count = 1
            args.clone_sources = ctypes.cast(sources, ctypes.POINTER(ctypes.c_uint64))
            args.parent_root = parent_root
        sub_fd = _open_dir(subvolume, operation)
        try:
            _ioctl(sub_fd, BTRFS_IOC_SEND, args, subvolume, operation + " (BTRFS_IOC_SEND)")
        finally:
            os.close(sub_fd)
        os.fsync(out_fd)
        size = os.fstat(out_fd).st_size
    except BaseException:
        os.close(out_fd)
        out_fd = None
        try:
            os.unlink(out_path)
        except OSError:
            pass
        raise
    finally:
        if out_fd is not None:
            os.close(out_fd)
    return size


# Send stream: "btrfs-stream\0", le32 version; commands: le32 length, le16 command, le32 crc,
# then attributes: le16 type, le16 length, value. The first command is SUBVOL (1) or SNAPSHOT (2),
# whose PATH attribute (15) is the name the received subvolume gets.
_STREAM_MAGIC = b"btrfs-stream\0"
_SEND_C_SUBVOL = 1
_SEND_C_SNAPSHOT = 2
_SEND_A_PATH = 15


def stream_subvolume_name(stream_path):
    """The name a send stream creates its subvolume under (from its first command)."""
    try:
        with open(stream_path, "rb") as handle:
            head = handle.read(len(_STREAM_MAGIC) + 4 + 10)
            if len(head) < len(_STREAM_MAGIC) + 14 or not head.startswith(_STREAM_MAGIC):
                raise BtrfsError(stream_path, "read send stream", "not a btrfs send stream")
            length, command = struct.unpack_from("<IH", head, len(_STREAM_MAGIC) + 4)
            if command not in (_SEND_C_SUBVOL, _SEND_C_SNAPSHOT):
                raise BtrfsError(stream_path, "read send stream", "first command is %d, not subvol/snapshot" % command)
            body = handle.read(length)
    except OSError as exc:
        raise BtrfsError(stream_path, "read send stream", err=exc.errno) from exc
    pos = 0
    while pos + 4 <= len(body):
        attr, alen = struct.unpack_from("<HH", body, pos)
        if attr == _SEND_A_PATH:
            return os.fsdecode(body[pos + 4:pos + 4 + alen])
        pos += 4 + alen
    raise BtrfsError(stream_path, "read send stream", "first command has no path")


def _btrfs_command():
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    found = shutil.which("btrfs", path=search)
    if not found:
        raise BtrfsError("btrfs", "receive", "the btrfs command (btrfs-progs) is not installed")
    return os.path.abspath(found)


def receive(stream_path, dest_dir):
    """Apply a send stream under ``dest_dir`` with ``btrfs receive``; return the received subvolume's path.

    The one use of the command line in this file (see the module docstring).
    """
    operation = "receive %s" % stream_path
    _require_btrfs(dest_dir, operation)
    name = stream_subvolume_name(stream_path)
    target = os.path.join(os.path.abspath(dest_dir), name)
    _require_new(target, operation)
    result = subprocess.run([_btrfs_command(), "receive", "-f", os.path.abspath(stream_path), os.path.abspath(dest_dir)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if result.returncode != 0:
        text = result.stderr.decode("utf-8", "replace").strip() or "exit status %d" % result.returncode
        raise BtrfsError(dest_dir, operation, "btrfs receive: %s" % text)
    if not os.path.isdir(target) or not is_subvolume(target):
        raise BtrfsError(target, operation, "btrfs receive succeeded but no subvolume appeared there")
    return target


# -- tree search: subvolume listing, qgroups, compressed extents --------------------------------
#
# BTRFS_IOC_TREE_SEARCH walks one of the filesystem's b-trees and copies the items whose key
# (objectid, type, offset) lies between a lowest and a highest key, compared as tuples (so items of
# other types between the bounds come back too and are skipped here). Root only (CAP_SYS_ADMIN).

BTRFS_ROOT_TREE_OBJECTID = 1
BTRFS_FS_TREE_OBJECTID = 5
BTRFS_QUOTA_TREE_OBJECTID = 8
BTRFS_LAST_FREE_OBJECTID = 0xFFFFFFFFFFFFFF00
BTRFS_EXTENT_DATA_KEY = 108
BTRFS_ROOT_ITEM_KEY = 132
BTRFS_ROOT_BACKREF_KEY = 144
BTRFS_QGROUP_STATUS_KEY = 240
BTRFS_QGROUP_INFO_KEY = 242
BTRFS_QGROUP_LIMIT_KEY = 244
BTRFS_QGROUP_STATUS_FLAG_ON = 1 << 0
BTRFS_QGROUP_STATUS_FLAG_RESCAN = 1 << 1
BTRFS_QGROUP_STATUS_FLAG_INCONSISTENT = 1 << 2
BTRFS_QGROUP_LIMIT_MAX_RFER = 1 << 0
BTRFS_QGROUP_LIMIT_MAX_EXCL = 1 << 1
BTRFS_QUOTA_CTL_ENABLE = 1
BTRFS_QUOTA_CTL_DISABLE = 2
_U64_MAX = 0xFFFFFFFFFFFFFFFF
_SEARCH_KEY = struct.Struct("=7Q4I4Q")  # struct btrfs_ioctl_search_key (104 bytes)
_SEARCH_HEADER = struct.Struct("=3Q2I")  # struct btrfs_ioctl_search_header: transid, objectid, offset, type, len
_SEARCH_ARGS_SIZE = 4096  # struct btrfs_ioctl_search_args: the key and a 3992-byte buffer
_INO_LOOKUP_SIZE = 4096  # struct btrfs_ioctl_ino_lookup_args: u64 treeid, objectid; char name[4080]
_IOC_NONE = 0


def _iowr(nr, size):
    return _ioc(_IOC_READ | _IOC_WRITE, nr, size)


BTRFS_IOC_TREE_SEARCH = _iowr(17, _SEARCH_ARGS_SIZE)
BTRFS_IOC_INO_LOOKUP = _iowr(18, _INO_LOOKUP_SIZE)
BTRFS_IOC_QUOTA_CTL = _iowr(40, 16)  # struct btrfs_ioctl_quota_ctl_args: u64 cmd, status
BTRFS_IOC_QGROUP_LIMIT = _ior(43, 48)  # u64 qgroupid; struct btrfs_qgroup_limit (5 x u64); _IOR in the header
BTRFS_IOC_QUOTA_RESCAN = _iow(44, 64)  # struct btrfs_ioctl_quota_rescan_args: u64 flags, progress, reserved[6]
BTRFS_IOC_QUOTA_RESCAN_STATUS = _ior(45, 64)
BTRFS_IOC_QUOTA_RESCAN_WAIT = _ioc(_IOC_NONE, 46, 0)


def _dir_of(path):
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def tree_search(path, tree_id, min_key=(0, 0, 0), max_key=(_U64_MAX, 0xFFFFFFFF, _U64_MAX), types=None):
    """Yield ``(objectid, type, offset, data)`` for the items of b-tree ``tree_id`` between two keys.

    ``path`` is any directory on the filesystem; ``tree_id`` 0 means the tree of the subvolume
    ``path`` is in. ``types`` (a set) keeps only items of those types. BTRFS_IOC_TREE_SEARCH.
    """
    operation = "search tree %d (BTRFS_IOC_TREE_SEARCH)" % tree_id
    fd = _open_dir(_dir_of(path), operation)
    try:
        objectid, ktype, offset = min_key
        while True:
            buf = bytearray(_SEARCH_ARGS_SIZE)
            _SEARCH_KEY.pack_into(buf, 0, tree_id, objectid, max_key[0], offset, max_key[2], 0, _U64_MAX,
                                  ktype, max_key[1], 4096, 0, 0, 0, 0, 0)
            try:
                fcntl.ioctl(fd, BTRFS_IOC_TREE_SEARCH, buf, True)
            except OSError as exc:
                raise BtrfsError(path, operation, err=exc.errno) from exc
            count = _SEARCH_KEY.unpack_from(buf, 0)[9]
            if count == 0:
                return
            pos = _SEARCH_KEY.size
            last = None
            for _index in range(count):
                dummy_transid, h_obj, h_off, h_type, h_len = _SEARCH_HEADER.unpack_from(buf, pos)
                pos += _SEARCH_HEADER.size
                if types is None or h_type in types:
                    yield h_obj, h_type, h_off, bytes(buf[pos:pos + h_len])
                pos += h_len
                last = (h_obj, h_type, h_off)
            objectid, ktype, offset = last
            if offset < _U64_MAX:
                offset += 1
            elif ktype < 0xFF:
                ktype, offset = ktype + 1, 0
            elif objectid < _U64_MAX:
                objectid, ktype, offset = objectid + 1, 0, 0
            else:
                return
            if (objectid, ktype, offset) > tuple(max_key):
                return
    finally:
        os.close(fd)


def _ino_lookup(path, tree_id, dirid):
    """The path of directory ``dirid`` inside subvolume ``tree_id`` ("" for its root), BTRFS_IOC_INO_LOOKUP."""
    if dirid == BTRFS_FIRST_FREE_OBJECTID:
        return ""
    buf = bytearray(_INO_LOOKUP_SIZE)
    struct.pack_into("=QQ", buf, 0, tree_id, dirid)
    fd = _open_dir(_dir_of(path), "look up a directory (BTRFS_IOC_INO_LOOKUP)")
    try:
        _ioctl(fd, BTRFS_IOC_INO_LOOKUP, buf, path, "look up directory %d of subvolume %d (BTRFS_IOC_INO_LOOKUP)" % (dirid, tree_id))
    finally:
        os.close(fd)
    return os.fsdecode(bytes(buf[16:]).split(b"\0", 1)[0]).rstrip("/")


def _mount_root(path):
    """(mount point, path inside the filesystem of the mounted subvolume) of the mount holding ``path``."""
    mnt = find_mount(path)
    root = "/"
    with open("/proc/self/mountinfo", "r", encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            fields = line.split(" ")
            if len(fields) >= 5 and _unescape_mountinfo(fields[4]) == mnt:
                root = _unescape_mountinfo(fields[3])  # the last line for a mount point is the mount on top
    return mnt, root


# struct btrfs_root_item (packed): flags at 208, uuid at 247, parent_uuid 263, received_uuid 279,
# ctransid 295, otransid 303, otime (u64 sec, u32 nsec) at 339.
_ROOT_ITEM_FLAGS = 208
_ROOT_ITEM_GENERATION = 160
_ROOT_ITEM_UUID = 247
_ROOT_ITEM_OTIME = 339
_ROOT_ITEM_V2_SIZE = 439


def list_subvolumes(path):
    """Every subvolume of the btrfs filesystem ``path`` is on, from the root tree (BTRFS_IOC_TREE_SEARCH).

    Returns a list of dicts ``{"id", "parent_id", "name", "path", "abspath", "readonly", "uuid",
    "parent_uuid", "generation", "otime"}`` sorted by id: ``path`` is relative to the filesystem's
    top level (id 5); ``abspath`` is where it is seen through the mount ``path`` is on (None when
    that mount does not show it). Directories between subvolumes come from BTRFS_IOC_INO_LOOKUP.
    """
    _require_btrfs(path, "list subvolumes")
    refs, items = {}, {}
    for objectid, ktype, offset, data in tree_search(path, BTRFS_ROOT_TREE_OBJECTID, (BTRFS_FIRST_FREE_OBJECTID, 0, 0),
                                                     (BTRFS_LAST_FREE_OBJECTID, BTRFS_ROOT_BACKREF_KEY, _U64_MAX),
                                                     types={BTRFS_ROOT_ITEM_KEY, BTRFS_ROOT_BACKREF_KEY}):
        if ktype == BTRFS_ROOT_BACKREF_KEY:
            dirid, dummy_sequence, name_len = struct.unpack_from("<QQH", data, 0)
            refs[objectid] = (offset, dirid, os.fsdecode(data[18:18 + name_len]))
        else:
            items[objectid] = data
    paths = {BTRFS_FS_TREE_OBJECTID: ""}

    def _path(subvol_id, depth=0):
        if subvol_id in paths:
            return paths[subvol_id]
        if subvol_id not in refs or depth > 4096:
            return None
        parent, dirid, name = refs[subvol_id]
        parent_path = _path(parent, depth + 1)
        if parent_path is None:
            return None
        inner = _ino_lookup(path, parent, dirid)
        paths[subvol_id] = "/".join(p for p in (parent_path, inner, name) if p)
        return paths[subvol_id]

    mnt, root = _mount_root(path)
    root = root.strip("/")
    out = []
    for subvol_id in sorted(refs):
        rel = _path(subvol_id)
        if rel is None:
            continue  # being deleted
        data = items.get(subvol_id, b"")
        entry = {"id": subvol_id, "parent_id": refs[subvol_id][0], "name": refs[subvol_id][2], "path": rel,
                 "abspath": None, "readonly": None, "uuid": None, "parent_uuid": None, "generation": None, "otime": None}
        if len(data) >= _ROOT_ITEM_FLAGS + 8:
            entry["readonly"] = bool(struct.unpack_from("<Q", data, _ROOT_ITEM_FLAGS)[0] & BTRFS_ROOT_SUBVOL_RDONLY)
            entry["generation"] = struct.unpack_from("<Q", data, _ROOT_ITEM_GENERATION)[0]
        if len(data) >= _ROOT_ITEM_V2_SIZE:
            entry["uuid"] = _uuid_or_none(data[_ROOT_ITEM_UUID:_ROOT_ITEM_UUID + 16])
            entry["parent_uuid"] = _uuid_or_none(data[_ROOT_ITEM_UUID + 16:_ROOT_ITEM_UUID + 32])
            sec, nsec = struct.unpack_from("<QI", data, _ROOT_ITEM_OTIME)
            entry["otime"] = sec + nsec / 1e9
        if not root:
            entry["abspath"] = os.path.join(mnt, rel)
        elif rel == root or rel.startswith(root + "/"):
            entry["abspath"] = os.path.join(mnt, rel[len(root):].lstrip("/")).rstrip("/")
        out.append(entry)
    return out


def show_subvolume(path):
    """``subvolume_info`` plus the subvolume's path inside the filesystem and its qgroup (when quotas are on)."""
    info = subvolume_info(path)
    for entry in list_subvolumes(path):
        if entry["id"] == info["id"]:
            info["path"] = entry["path"]
            break
    else:
        info["path"] = "" if info["id"] == BTRFS_FS_TREE_OBJECTID else None
    info["qgroup"] = qgroup_show(path).get(info["id"]) if quota_enabled(path) else None
    return info


# -- quotas and qgroups -----------------------------------------------------------------------

def quota_status(path):
    """The quota tree's status item: ``{"enabled", "flags", "rescanning", "inconsistent"}``; disabled when no quota tree."""
    _require_btrfs(path, "read quota status")
    try:
        for dummy_obj, dummy_type, dummy_off, data in tree_search(path, BTRFS_QUOTA_TREE_OBJECTID, (0, BTRFS_QGROUP_STATUS_KEY, 0),
                                                                  (0, BTRFS_QGROUP_STATUS_KEY, _U64_MAX),
                                                                  types={BTRFS_QGROUP_STATUS_KEY}):
            flags = struct.unpack_from("<QQQ", data, 0)[2]
            return {"enabled": bool(flags & BTRFS_QGROUP_STATUS_FLAG_ON), "flags": flags,
                    "rescanning": bool(flags & BTRFS_QGROUP_STATUS_FLAG_RESCAN),
                    "inconsistent": bool(flags & BTRFS_QGROUP_STATUS_FLAG_INCONSISTENT)}
    except BtrfsError as exc:
        if exc.errno != errno.ENOENT:
            raise
    return {"enabled": False, "flags": 0, "rescanning": False, "inconsistent": False}


def quota_enabled(path):
    """True when quotas (qgroups) are on for the filesystem ``path`` is on."""
    return quota_status(path)["enabled"]


def _quota_ctl(path, cmd, operation):
    _require_btrfs(path, operation)
    buf = bytearray(struct.pack("=QQ", cmd, 0))
    fd = _open_dir(_dir_of(path), operation)
    try:
        _ioctl(fd, BTRFS_IOC_QUOTA_CTL, buf, path, operation + " (BTRFS_IOC_QUOTA_CTL)")
    finally:
        os.close(fd)


def enable_quota(path, wait=True):
    """Turn quotas on for the whole filesystem (BTRFS_IOC_QUOTA_CTL); the kernel starts a rescan, awaited with ``wait``."""
    _quota_ctl(path, BTRFS_QUOTA_CTL_ENABLE, "enable quotas")
    if wait:
        quota_rescan_wait(path)


def disable_quota(path):
    """Turn quotas off for the whole filesystem (BTRFS_IOC_QUOTA_CTL); the qgroups and their limits go with them."""
    _quota_ctl(path, BTRFS_QUOTA_CTL_DISABLE, "disable quotas")


def quota_rescan(path, wait=True):
    """Start a quota rescan (BTRFS_IOC_QUOTA_RESCAN; one already running is fine) and wait for it (RESCAN_WAIT)."""
    operation = "quota rescan (BTRFS_IOC_QUOTA_RESCAN)"
    _require_btrfs(path, operation)
    fd = _open_dir(_dir_of(path), operation)
    try:
        try:
            fcntl.ioctl(fd, BTRFS_IOC_QUOTA_RESCAN, bytearray(64), True)
        except OSError as exc:
            if exc.errno != errno.EINPROGRESS:
                raise BtrfsError(path, operation, err=exc.errno) from exc
    finally:
        os.close(fd)
    if wait:
        quota_rescan_wait(path)


def quota_rescan_wait(path):
    """Wait until a running quota rescan ends (BTRFS_IOC_QUOTA_RESCAN_WAIT); at once when none runs."""
    operation = "wait for quota rescan (BTRFS_IOC_QUOTA_RESCAN_WAIT)"
    fd = _open_dir(_dir_of(path), operation)
    try:
        try:
            fcntl.ioctl(fd, BTRFS_IOC_QUOTA_RESCAN_WAIT, 0)
        except OSError as exc:
            if exc.errno not in (errno.ENOTCONN, errno.EINVAL):
                raise BtrfsError(path, operation, err=exc.errno) from exc
    finally:
        os.close(fd)


def qgroup_show(path):
    """Every qgroup's usage and limits, from the quota tree (BTRFS_IOC_TREE_SEARCH).

    Returns ``{qgroupid: {"qgroupid": "0/257", "referenced", "exclusive", "max_referenced",
    "max_exclusive"}}`` keyed by the integer qgroup id (level << 48 | id; a level-0 qgroup's id is
    its subvolume's id); limits are None when not set; {} when quotas are off.
    """
    _require_btrfs(path, "read qgroups")
    out = {}
    try:
        for dummy_obj, ktype, offset, data in tree_search(path, BTRFS_QUOTA_TREE_OBJECTID, (0, BTRFS_QGROUP_INFO_KEY, 0),
                                                          (0, BTRFS_QGROUP_LIMIT_KEY, _U64_MAX),
                                                          types={BTRFS_QGROUP_INFO_KEY, BTRFS_QGROUP_LIMIT_KEY}):
            entry = out.setdefault(offset, {"qgroupid": "%d/%d" % (offset >> 48, offset & ((1 << 48) - 1)),
                                            "referenced": None, "exclusive": None,
                                            "max_referenced": None, "max_exclusive": None})
            if ktype == BTRFS_QGROUP_INFO_KEY:
                dummy_gen, rfer, dummy_rfer_cmpr, excl = struct.unpack_from("<4Q", data, 0)
                entry["referenced"], entry["exclusive"] = rfer, excl
            else:
                flags, max_rfer, max_excl = struct.unpack_from("<3Q", data, 0)
                entry["max_referenced"] = max_rfer if flags & BTRFS_QGROUP_LIMIT_MAX_RFER else None
                entry["max_exclusive"] = max_excl if flags & BTRFS_QGROUP_LIMIT_MAX_EXCL else None
    except BtrfsError as exc:
        if exc.errno != errno.ENOENT:
            raise
    return out


def set_qgroup_limit(path, max_referenced=None, max_exclusive=None, clear_referenced=False, clear_exclusive=False):
    """Limit the level-0 qgroup of the subvolume ``path`` (BTRFS_IOC_QGROUP_LIMIT); quotas must be on.

    ``max_referenced``/``max_exclusive`` set a limit in bytes; ``clear_*`` removes one (the kernel's
    "none", (u64)-1). Limits not named are left as they are.
    """
    operation = "set qgroup limit"
    _require_subvolume(path, operation)
    if not quota_enabled(path):
        raise BtrfsError(path, operation, "quotas are not enabled on this filesystem")
    flags, rfer, excl = 0, 0, 0
    if clear_referenced or max_referenced is not None:
        flags |= BTRFS_QGROUP_LIMIT_MAX_RFER
        rfer = _U64_MAX if clear_referenced else int(max_referenced)
    if clear_exclusive or max_exclusive is not None:
        flags |= BTRFS_QGROUP_LIMIT_MAX_EXCL
        excl = _U64_MAX if clear_exclusive else int(max_exclusive)
    if not flags:
        return
    # qgroupid 0: the kernel takes the subvolume the ioctl is called on.
    buf = bytearray(struct.pack("=6Q", 0, flags, rfer, excl, 0, 0))
    fd = _open_dir(path, operation)
    try:
        _ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, buf, path, operation + " (BTRFS_IOC_QGROUP_LIMIT)")
    finally:
        os.close(fd)


# -- compressed size from file extent items ---------------------------------------------------

# struct btrfs_file_extent_item (packed): generation u64, ram_bytes u64, compression u8, encryption u8,
# other_encoding u16, type u8 (0 inline, 1 regular, 2 prealloc); then for regular extents disk_bytenr,
# disk_num_bytes, offset, num_bytes (u64 each). Inline data follows the 21-byte head.
_FILE_EXTENT_HEAD = struct.Struct("<QQBBHB")
_FILE_EXTENT_REG = struct.Struct("<QQQQ")


def compression_usage(path):
    """How much disk the data of the subvolume ``path`` takes compressed and uncompressed.

    Walks the EXTENT_DATA items of the subvolume's file tree (BTRFS_IOC_TREE_SEARCH), as ``compsize``
    does: every extent counted once (by disk address, so shared and cloned extents count once),
    holes and preallocated extents skipped, inline extents by their item size. Returns
    ``{"disk_bytes", "uncompressed_bytes", "referenced_bytes", "compressed_extents", "extents", "ratio"}``
    where ratio = disk / uncompressed (None for no data). Nested subvolumes are not included.
    """
    _require_subvolume(path, "measure compression")
    tree_id = subvolume_info(path)["id"]
    seen = set()
    disk = uncompressed = referenced = extents = compressed = 0
    for dummy_obj, dummy_type, dummy_off, data in tree_search(path, tree_id, (0, BTRFS_EXTENT_DATA_KEY, 0),
                                                              types={BTRFS_EXTENT_DATA_KEY}):
        dummy_gen, ram_bytes, compression, dummy_enc, dummy_other, etype = _FILE_EXTENT_HEAD.unpack_from(data, 0)
        if etype == 0:
            disk += len(data) - _FILE_EXTENT_HEAD.size
            uncompressed += ram_bytes
            referenced += ram_bytes
            extents += 1
            compressed += 1 if compression else 0
            continue
        if etype != 1:
            continue
        disk_bytenr, disk_num_bytes, dummy_offset, num_bytes = _FILE_EXTENT_REG.unpack_from(data, _FILE_EXTENT_HEAD.size)
        if disk_bytenr == 0:
            continue
        referenced += num_bytes
        if disk_bytenr in seen:
            continue
        seen.add(disk_bytenr)
        extents += 1
        compressed += 1 if compression else 0
        disk += disk_num_bytes
        uncompressed += ram_bytes
    return {"disk_bytes": disk, "uncompressed_bytes": uncompressed, "referenced_bytes": referenced,
            "extents": extents, "compressed_extents": compressed,
            "ratio": round(disk / uncompressed, 4) if uncompressed else None}
