# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated cluster: nodes, storages, containers and tasks, and what each served API method does to them.

Tasks are finished lazily: every request first calls ``Cluster.advance()``, which completes the tasks whose time
has come (applying their effect and writing their last log line), so no thread runs behind the tests' back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re
import threading
import time

from .schema import print_property_string

GIB = 1024 ** 3
UPID_RE = re.compile(r"\AUPID:(?P<node>[a-zA-Z0-9][a-zA-Z0-9\-]*):(?P<pid>[0-9A-F]{8}):(?P<pstart>[0-9A-F]{8,9}):"
                     r"(?P<starttime>[0-9A-F]{8}):(?P<type>[^:\s]+):(?P<id>[^:\s]*):(?P<user>[^:\s]+):\Z")

DEFAULT_TEMPLATES = (
    "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst",
    "local:vztmpl/alpine-3.20-default_20240908_amd64.tar.xz",
)


class ApiError(Exception):
    """An API failure: HTTP status, message (the reason phrase) and, for 400, errors by parameter."""

    def __init__(self, status, message, errors=None):
        super(ApiError, self).__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


class TaskFailed(Exception):
    """Raised by a task's effect: the task ends with this message as exitstatus, after ``lines`` in its log."""

    def __init__(self, message, lines=None):
        super(TaskFailed, self).__init__(message)
        self.lines = lines or []


def die(message):
    """A handler's plain ``die``: PVE answers HTTP 500 with the message as reason phrase."""
    return ApiError(500, message)


def format_size(size):
    """Sizes as PVE prints them in volume property strings (8G, 10752M, ...)."""
    for unit, factor in (("T", 1024 ** 4), ("G", GIB), ("M", 1024 ** 2), ("K", 1024)):
        if size % factor == 0:
            return "%d%s" % (size // factor, unit)
    return str(size)


def parse_size(text):
    """Bytes of a PVE disk size (``8``, ``8G``, ``512M``, ``1.5G``; a bare number means bytes)."""
    match = re.match(r"\A(\d+(?:\.\d+)?)([KMGT]?)\Z", text)
    factor = {"": 1, "K": 1024, "M": 1024 ** 2, "G": GIB, "T": 1024 ** 4}[match.group(2)]
    return int(float(match.group(1)) * factor)


class Task:
    """One worker task, as /nodes/{node}/tasks/{upid} reports it."""

    def __init__(self, node, kind, ident, user, duration, effect, pid):
        self.node = node
        self.type = kind
        self.id = ident
        self.user = user
        self.pid = pid
        self.pstart = 1000000 + pid * 7
        self.starttime = int(time.time())
        self.upid = "UPID:%s:%08X:%08X:%08X:%s:%s:%s:" % (node, pid, self.pstart, self.starttime, kind, ident, user)
        self.due = time.time() + duration
        self.effect = effect
        self.fail = None
        self.lines = []
        self.exitstatus = None

    @property
    def running(self):
        return self.exitstatus is None

    def status(self):
        data = {"upid": self.upid, "node": self.node, "pid": self.pid, "pstart": self.pstart, "starttime": self.starttime,
                "type": self.type, "id": self.id, "user": self.user, "status": "running" if self.running else "stopped"}
        if not self.running:
            data["exitstatus"] = self.exitstatus
        return data


class Container:
    """An LXC container: its config (typed values, as GET config returns them) and run state."""

    def __init__(self, vmid, node, config):
        self.vmid = vmid
        self.node = node
        self.config = config
        self.status = "stopped"
        self.started = None

    def digest(self):
        text = "".join("%s: %s\n" % (key, self.config[key]) for key in sorted(self.config))
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    @property
    def lock(self):
        return self.config.get("lock")


class Cluster:
    """Nodes, storages, templates, containers and tasks of the simulated cluster (all access under ``self.lock``)."""

    def __init__(self, schema, nodes=("pve1",), task_duration=0.2, templates=DEFAULT_TEMPLATES):
        self.schema = schema
        self.lock = threading.RLock()
        self.nodes = list(nodes)
        self.task_duration = task_duration
        self.storages = {
            "local": {"type": "dir", "content": "backup,iso,vztmpl", "shared": 0, "total": 100 * GIB, "path": "/var/lib/vz"},
            "local-lvm": {"type": "lvmthin", "content": "images,rootdir", "shared": 0, "total": 400 * GIB},
        }
        self.volumes = {}  # volid -> {"size": bytes, "vmid": int or None, "content": ..., "format": ..., "ctime": ...}
        for volid in templates:
            self.add_template(volid)
        self.containers = {}
        self.tasks = {}
        self._pid = 0x1F000

    # --- setup helpers used by tests -------------------------------------------------------------------------

    def add_template(self, volid, size=130 * 1024 ** 2):
        name = volid.split("/")[-1]
        fmt = "tzst" if name.endswith(".zst") else "txz" if name.endswith(".xz") else "tgz"
        self.volumes[volid] = {"size": size, "vmid": None, "content": "vztmpl", "format": fmt, "ctime": 1717000000}

    def add_storage(self, storage, kind="dir", content="rootdir,images", total=100 * GIB, shared=0):
        self.storages[storage] = {"type": kind, "content": content, "shared": shared, "total": total}

    def add_container(self, vmid, node=None, status="stopped", **config):
        """Put a CT straight into the cluster (no task): config values as PVE stores them."""
        with self.lock:
            node = node or self.nodes[0]
            conf = {"arch": "amd64", "hostname": "CT%d" % vmid, "memory": 512, "swap": 512, "ostype": "debian"}
            conf.update(config)
            if "rootfs" not in conf:
                conf["rootfs"] = self._allocate(vmid, "local-lvm", 8 * GIB)
            for key in sorted(conf):
                if key.startswith("net"):
                    conf[key] = self._normalize_net(vmid, key, conf[key])
            container = Container(vmid, node, conf)
            container.status = status
            container.started = time.time() if status == "running" else None
            self.containers[vmid] = container
            return container

    def set_lock(self, vmid, lock):
        """Put (or with None, clear) a config lock on a CT, as a backup or migration would."""
        with self.lock:
            if lock is None:
                self.containers[vmid].config.pop("lock", None)
            else:
                self.containers[vmid].config["lock"] = lock

    # --- tasks ---------------------------------------------------------------------------------------------------

    def advance(self):
        """Finish every task whose time has come."""
        with self.lock:
            now = time.time()
            for task in sorted(self.tasks.values(), key=lambda item: item.due):
                if task.running and task.due <= now:
                    self._finish(task)

    def _finish(self, task):
        try:
            if task.fail is not None:
                task.effect(False)
                raise TaskFailed(task.fail[0], task.fail[1])
            task.lines.extend(task.effect(True) or [])
            task.lines.append("TASK OK")
            task.exitstatus = "OK"
        except TaskFailed as exc:
            task.lines.extend(exc.lines)
            task.lines.append("TASK ERROR: %s" % exc)
            task.exitstatus = str(exc)

    def start_task(self, ctx, node, kind, ident, effect, lines=None):
        """Fork a worker: returns its UPID. ``effect(ok)`` runs when it ends; it returns extra log lines (or raises)."""
        self._pid += 0x1D3
        duration = self.task_duration
        fault = ctx.task_fault()
        task = Task(node, kind, ident, ctx.user, duration, effect, self._pid)
        task.lines.extend(lines or [])
        if fault is not None:
            if fault.kind == "slow_task":
                task.due = time.time() + fault.duration
            elif fault.kind == "task_fail":
                task.fail = (fault.message or default_failure(kind, ident), fault.lines or default_failure_lines(kind, ident))
        self.tasks[task.upid] = task
        return task.upid

    def task(self, node, upid):
        if not UPID_RE.match(upid):
            raise die("unable to parse worker upid '%s'" % upid)
        task = self.tasks.get(upid)
        if task is None or task.node != node:
            raise die("no such task '%s'" % upid)
        return task

    # --- containers -------------------------------------------------------------------------------------------

    def check_node(self, node):
        if node not in self.nodes:
            raise die("hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known" % (node, node))

    def ct(self, node, vmid):
        self.check_node(node)
        container = self.containers.get(vmid)
        if container is None or container.node != node:
            raise die("Configuration file 'nodes/%s/lxc/%d.conf' does not exist" % (node, vmid))
        return container

    def check_unused(self, vmid):
        if vmid in self.containers:
            raise die("CT %d already exists on node '%s'" % (vmid, self.containers[vmid].node))

    def storage(self, storage):
        if storage not in self.storages:
            raise die("storage '%s' does not exist" % storage)
        return self.storages[storage]

    def _allocate(self, vmid, storage, size):
        conf = self.storage(storage)
        if "rootdir" not in conf["content"].split(","):
            raise die("storage '%s' does not support container directories" % storage)
        index = 0
        while True:
            name = "vm-%d-disk-%d" % (vmid, index)
            volid = "%s:%s" % (storage, name) if conf["type"] != "dir" else "%s:%d/%s.raw" % (storage, vmid, name)
            if volid not in self.volumes:
                break
            index += 1
        self.volumes[volid] = {"size": size, "vmid": vmid, "content": "rootdir", "format": "raw", "ctime": int(time.time())}
        return "%s,size=%s" % (volid, format_size(size))

    def _mountpoint(self, vmid, key, value):
        """A rootfs/mp[n] value from a request: ``STORAGE:SIZE_GiB`` allocates a new volume, as PVE does."""
        fmt = self.schema.properties("/nodes/{node}/lxc", "POST")[key if key == "rootfs" else "mp[n]"]["format"]
        data = dict(value)
        match = re.match(r"\A([a-z][a-z0-9\-_.]*[a-z0-9]):(\d+(?:\.\d+)?)\Z", data["volume"], re.I)
        if match:
            allocated = self._allocate(vmid, match.group(1), int(float(match.group(2)) * GIB))
            volid, size = allocated.split(",size=")
            data["volume"] = volid
            data["size"] = size
        return print_property_string(fmt, data)

    def _normalize_net(self, vmid, key, value):
        """PVE stores a net[n] with a generated hwaddr (BC:24:11 prefix) and type=veth."""
        fmt = self.schema.properties("/nodes/{node}/lxc", "POST")["net[n]"]["format"]
        if isinstance(value, str):
            data = dict(part.split("=", 1) for part in value.split(",") if part)
        else:
            data = dict(value)
        if "hwaddr" not in data:
            digest = hashlib.sha1(("%d/%s/%s" % (vmid, key, data.get("name"))).encode("ascii")).hexdigest().upper()
            data["hwaddr"] = "BC:24:11:%s:%s:%s" % (digest[0:2], digest[2:4], digest[4:6])
        data.setdefault("type", "veth")
        return print_property_string(fmt, data)

    def _apply(self, container, key, value):
        """Set one config key from a verified request value."""
        if key.startswith("net") and key[3:].isdigit():
            container.config[key] = self._normalize_net(container.vmid, key, value)
        elif key == "rootfs" or (key.startswith("mp") and key[2:].isdigit()):
            container.config[key] = self._mountpoint(container.vmid, key, value)
        elif isinstance(value, dict):
            fmt = self.schema.properties("/nodes/{node}/lxc/{vmid}/config", "PUT")
            prop = fmt.get(key) or fmt[re.sub(r"\d+\Z", "[n]", key)]
            container.config[key] = print_property_string(prop["format"], value)
        else:
            container.config[key] = value

    def free_volume(self, value):
        volid = value.split(",")[0]
        self.volumes.pop(volid, None)

    def volumes_of(self, container):
        keys = [key for key in container.config if key == "rootfs" or re.match(r"\A(?:mp|unused)\d+\Z", key)]
        return [(key, container.config[key].split(",")[0]) for key in sorted(keys)]


def default_failure(kind, ident):
    """The exitstatus a failing task of this type typically ends with."""
    return {
        "vzstart": "startup for container '%s' failed" % ident,
        "vzcreate": "unable to create CT %s - command 'lxc-usernsexec -m u:0:100000:65536 -m g:0:100000:65536 -- tar xpf - "
                    "--zstd --totals --one-file-system -p --sparse --numeric-owner --acls --xattrs "
                    "'--xattrs-include=user.*' '--xattrs-include=security.capability' '--warning=no-file-ignored' "
                    "'--warning=no-xattr-write' -C /var/lib/lxc/%s/rootfs --skip-old-files --anchored --exclude './dev/*'' "
                    "failed: exit code 2" % (ident, ident),
        "vzstop": "command 'lxc-stop -n %s --kill' failed: exit code 1" % ident,
        "vzshutdown": "command 'lxc-stop -n %s --timeout 60' failed: exit code 1" % ident,
    }.get(kind, "command failed: exit code 1")


def default_failure_lines(kind, ident):
    """Log lines a failing task of this type writes before its TASK ERROR line."""
    if kind == "vzstart":
        return [
            "run_buffer: 571 Script exited with status 2",
            "lxc_init: 845 Failed to run lxc.hook.pre-start for container \"%s\"" % ident,
            "__lxc_start: 2034 Failed to initialize container \"%s\"" % ident,
        ]
    if kind == "vzcreate":
        return ["extracting archive '/var/lib/vz/template/cache/debian-12-standard_12.7-1_amd64.tar.zst'",
                "tar: ./usr/lib/x86_64-linux-gnu/libc.so.6: Cannot write: No space left on device",
                "tar: Exiting with failure status due to previous errors"]
    return ["command failed"]


def template_path(volid):
    """Where a vztmpl volume lives on a dir storage."""
    return os.path.join("/var/lib/vz/template/cache", volid.split("/")[-1])
