# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files below a root directory (a container's root filesystem seen from the host, or /), read and
written without following symbolic links: every directory on the way is opened with O_NOFOLLOW
relative to the previous one, so a link planted inside a container cannot send a write to the
host. Writes go to a temporary name, are fsynced and renamed into place (atomic)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class FileError(Exception):
    pass


def _parts(path):
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise FileError("%r is not an absolute path without . and .." % path)
    return parts


def _open_dir(root, parts, create_mode=None):
    """fd of root/parts[0]/.../parts[-1] (directories, no links); None when missing and not created."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ENOENT and create_mode is not None:
                    os.mkdir(part, create_mode, dir_fd=fd)
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                elif exc.errno == errno.ENOENT:
                    os.close(fd)
                    return None
                elif exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise FileError("%s/%s is a symbolic link or not a directory; refusing to follow it" % (root, part))
                else:
                    raise
            os.close(fd)
            fd = nxt
        return fd
    except Exception:
        try:
            os.close(fd)
        except OSError:
            pass
        raise


def read(root, path):
    """(bytes, mode) of root+path, or (None, None) when it does not exist."""
    parts = _parts(path)
    dfd = _open_dir(root, parts[:-1])
    if dfd is None:
        return None, None
    try:
        try:
            # O_NONBLOCK: a FIFO planted there must not block the open (it is refused below, not read)
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None, None
            if exc.errno == errno.ELOOP:
                raise FileError("%s%s is a symbolic link; refusing to follow it" % (root, path))
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise FileError("%s%s is not a regular file" % (root, path))
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks), stat.S_IMODE(info.st_mode)
        finally:
            os.close(fd)
    finally:
        os.close(dfd)


def write(root, path, data, mode, dir_mode=0o755):
    """Write ``data`` to root+path with ``mode`` (root-owned), creating missing directories with ``dir_mode``."""
    parts = _parts(path)
    dfd = _open_dir(root, parts[:-1], create_mode=dir_mode)
    tmp = ".%s.opdbus-tmp" % parts[-1]
    try:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=dfd)
        try:
            os.fchmod(fd, mode)
            os.fchown(fd, 0, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, parts[-1], src_dir_fd=dfd, dst_dir_fd=dfd)
        os.fsync(dfd)
    finally:
        os.close(dfd)


def remove(root, path):
    """Remove root+path (a file or a symbolic link); no error when it is missing."""
    parts = _parts(path)
    dfd = _open_dir(root, parts[:-1])
    if dfd is None:
        return
    try:
        os.unlink(parts[-1], dir_fd=dfd)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
    finally:
        os.close(dfd)


def readlink(root, path):
    """The target of the symbolic link root+path, or None."""
    parts = _parts(path)
    dfd = _open_dir(root, parts[:-1])
    if dfd is None:
        return None
    try:
        return os.readlink(parts[-1], dir_fd=dfd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EINVAL):
            return None
        raise
    finally:
        os.close(dfd)


def symlink(root, path, target):
    """Make root+path a symbolic link to ``target`` (replacing a link or file there)."""
    parts = _parts(path)
    dfd = _open_dir(root, parts[:-1], create_mode=0o755)
    try:
        try:
            os.unlink(parts[-1], dir_fd=dfd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        os.symlink(target, parts[-1], dir_fd=dfd)
    finally:
        os.close(dfd)


def set_dir_mode(root, path, mode):
    fd = _open_dir(root, _parts(path), create_mode=mode)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def installed_packages(root):
    """The names of the packages dpkg has installed below ``root`` (from var/lib/dpkg/status)."""
    data, _mode = read(root, "/var/lib/dpkg/status")
    names = set()
    if data is None:
        return names
    for para in data.decode("utf-8", "replace").split("\n\n"):
        name = status = None
        for line in para.splitlines():
            if line.startswith("Package: "):
                name = line[9:].strip()
            elif line.startswith("Status: "):
                status = line[8:].strip()
        # "install ok installed", "hold ok installed": the third word is the state
        if name and status and len(status.split()) == 3 and status.split()[2] == "installed":
            names.add(name)
    return names
