# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``lxc`` backend of lxc_container: local liblxc through its Python binding (python3-lxc).

python3-lxc is a Debian package of the *system* Python. :func:`import_lxc` imports it and, when
the module runs under another interpreter, re-runs the module under one that has it (Ansible's
respawn, as ansible.builtin.apt does for python3-apt).

Every operation goes through the binding; none runs an ``lxc-*`` tool or any other tool of the
host. The interface addresses of a running container are read by a Python child attached to the
container's network namespace only (``attach_wait`` with ``CLONE_NEWNET``) that dumps them over
rtnetlink (rtnl.py), because ``get_ips`` gives addresses without their prefix length. Whether
systemd inside has finished booting is asked from inside the container (``systemctl
is-system-running``, the container's own client of its own manager).

Config mapping (see docs/lxc-backends.md): hostname -> ``lxc.uts.name``; cores, memory_mb, swap_mb
-> cgroup limits (``lxc.cgroup2.cpu.max``/``memory.max``/``memory.swap.max`` on a cgroup v2 host,
``lxc.cgroup.cpu.cfs_quota_us``+``cfs_period_us``/``memory.limit_in_bytes``/``memory.memsw.limit_in_bytes``
(memory + swap) on a cgroup v1 host); onboot -> ``lxc.start.auto``; features -> mount entries and
device rules; mounts -> ``lxc.mount.entry`` bind mounts; network -> ``lxc.net.N.*`` (``veth`` with a
named host side and no ``link``: the caller attaches it to OVS; ``socket`` -> ``phys``, the OVS
internal port moved in). What LXC's config cannot hold (bridge, dhcp/manual, template, rootfs_gb,
the template's own mount entries) is kept in ``<lxcpath>/<name>/opdbus.json`` (0600).

Not supported (refused with a clear message): ``unprivileged: true`` (needs /etc/subuid and
/etc/subgid ranges for root, lxc.idmap and an id-shifted rootfs) and ``features.keyctl`` (a
Proxmox switch; liblxc's default seccomp policy blocks keyctl). ``rootfs_gb`` is recorded, not
enforced: a directory or btrfs backing store has no size.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

from ansible.module_utils.common.respawn import has_respawned, probe_interpreters_for_module, respawn_module

from ansible_collections.opdbus.infra.plugins.module_utils.btrfs import is_btrfs, is_subvolume
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import (
    Backend, LxcError, NotFound, Timeout, ValidationError, needs_restart, normalise_spec,
)
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.rtnl import dump_addresses

META_FILE = "opdbus.json"
DEBIAN_RELEASE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
TEMPLATES = ("busybox", "debian")
CLONE_PREFIX = "clone:"
CPU_PERIOD = 100000
MIB = 1024 * 1024
PYTHON3_LXC_HINT = "install the Debian package python3-lxc (apt-get install python3-lxc)"

TUN_DEVICE = "c 10:200 rwm"
TUN_ENTRY = "/dev/net/tun dev/net/tun none bind,create=file 0 0"
FUSE_DEVICE = "c 10:229 rwm"
FUSE_ENTRY = "/dev/fuse dev/fuse none bind,create=file,optional 0 0"
NESTING_ENTRIES = ("proc dev/.lxc/proc proc create=dir,optional 0 0", "sys dev/.lxc/sys sysfs create=dir,optional 0 0")
MOUNT_KEY = "lxc.mount.entry"
# The busybox template's rcS runs udhcpc on eth0, which removes the static address LXC gave it.
BUSYBOX_DHCP = """# DHCP only on interfaces without a global address (LXC configures the static ones)
for dev in /sys/class/net/*; do
    n=${dev##*/}
    [ "$n" = lo ] && continue
    /bin/ip addr show dev "$n" | grep -q "scope global" || /bin/udhcpc -b -i "$n"
done
"""
MULTI_KEYS = (MOUNT_KEY, "lxc.cgroup.devices.allow", "lxc.cgroup2.devices.allow")


def import_lxc(module=None):
    """The ``lxc`` binding; with an AnsibleModule, respawn under a Python that has it, or fail naming python3-lxc."""
    try:
        import lxc  # pylint: disable=import-outside-toplevel
        if hasattr(lxc, "Container"):
            return lxc
    except ImportError:
        pass
    if module is not None and not has_respawned():
        interpreter = probe_interpreters_for_module(["/usr/bin/python3", "/usr/bin/python"], "lxc")
        if interpreter:
            respawn_module(interpreter)  # does not return
    msg = "the Python binding of liblxc (module lxc) is not importable by %s: %s" % (sys.executable, PYTHON3_LXC_HINT)
    if module is not None:
        module.fail_json(msg=msg)
    raise LxcError(msg)


def _addresses_child(write_fd):
    """Runs in a child attached to a container's network namespace: write its addresses as JSON to write_fd."""
    try:
        payload = json.dumps(dump_addresses()).encode("utf-8")
        code = 0
    except Exception as exc:  # pylint: disable=broad-except
        payload = ("error: %s" % exc).encode("utf-8")
        code = 1
    view = memoryview(payload)
    while view:
        view = view[os.write(write_fd, view):]
    return code


def _call_child(payload):
    """Runs in a child attached to a container: call func(*args), write {"ok": result} or {"error": text} as JSON."""
    func, args, write_fd = payload
    try:
        out = {"ok": func(*args)}
    except Exception as exc:  # pylint: disable=broad-except
        out = {"error": "%s: %s" % (type(exc).__name__, exc)}
    data = json.dumps(out).encode("utf-8")
    view = memoryview(data)
    while view:
        view = view[os.write(write_fd, view):]
    return 0


def _read_all(read_fd):
    chunks = []
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def cgroup_version():
    """2 on a unified (cgroup v2 only) host, else 1 (legacy or hybrid: the v1 controllers do the limiting)."""
    return 2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 1


def derived_port(name, index):
    """The host-side interface name used when the spec gives no port: 'vo' + 8 hex + index (<= 15 chars)."""
    return "vo%s%d" % (hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], index)


def _esc(path):
    return path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011")


def _unesc(path):
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def mount_entry(mount):
    """The lxc.mount.entry line of a spec mount (a bind mount, created as a dir or file like its source)."""
    create = "file" if os.path.isfile(mount["source"]) else "dir"
    opts = "bind,create=%s%s" % (create, ",ro" if mount["readonly"] else "")
    return "%s %s none %s 0 0" % (_esc(mount["source"]), _esc(mount["target"].lstrip("/")), opts)


def parse_mount_entry(entry):
    fields = entry.split()
    if len(fields) < 4:
        return None
    return {"source": _unesc(fields[0]), "target": "/" + _unesc(fields[1]).strip("/"), "readonly": "ro" in fields[3].split(",")}


def _size(value):
    """Bytes of a cgroup memory value ('268435456', '256M', 'max' -> None)."""
    value = (value or "").strip()
    if not value or value in ("max", "-1"):
        return None
    mult = {"K": 1024, "M": MIB, "G": 1024 * MIB}.get(value[-1].upper(), 1)
    try:
        return int(value[:-1] if mult != 1 else value) * mult
    except ValueError:
        return None


def _first(value):
    if isinstance(value, list):
        return value[0] if value else ""
    return value or ""


class LiblxcBackend(Backend):
    """Containers of one lxcpath, managed through python3-lxc."""

    name = "lxc"

    def __init__(self, lxcpath, lxc_module=None):
        self.lxcpath = os.path.abspath(lxcpath)
        self.lxc = lxc_module if lxc_module is not None else import_lxc()
        self.cgroup = cgroup_version()
        self.last_create = None

    # ------------------------------------------------------------------ helpers
    def _container(self, ident):
        if not isinstance(ident, str) or not ident or "/" in ident:
            raise ValidationError("container name %r is not a name" % (ident,))
        return self.lxc.Container(ident, self.lxcpath)

    def _existing(self, ident):
        c = self._container(ident)
        if not c.defined:
            raise NotFound("container %s does not exist in %s" % (ident, self.lxcpath))
        return c

    def _dir(self, ident):
        return os.path.join(self.lxcpath, ident)

    def _read_meta(self, ident):
        try:
            with open(os.path.join(self._dir(ident), META_FILE)) as f:
                return json.load(f)
        except (IOError, OSError, ValueError):
            return {}

    def _write_meta(self, ident, meta):
        path = os.path.join(self._dir(ident), META_FILE)
        fd, tmp = tempfile.mkstemp(prefix=".opdbus.", dir=self._dir(ident))
        with os.fdopen(fd, "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)

    @staticmethod
    def _own_values(c, key):
        """The values of key written in the container's own config file (not those of lxc.include files)."""
        values = []
        try:
            with open(c.config_file_name) as f:
                for line in f:
                    left, sep, right = line.partition("=")
                    if sep and left.strip() == key:
                        values.append(right.strip())
        except (IOError, OSError):
            pass
        return values

    @staticmethod
    def _get(c, key):
        try:
            value = c.get_config_item(key)
        except KeyError:
            return ""
        return "" if value is False else value

    def _cg(self, v1, v2):
        return v2 if self.cgroup == 2 else v1

    def _devices_key(self):
        return self._cg("lxc.cgroup.devices.allow", "lxc.cgroup2.devices.allow")

    def _run_child(self, func, timeout, what, ident):
        """Run func() in a forked child (own session, stdout/stderr to a log) within timeout; kill it after."""
        fd, log = tempfile.mkstemp(prefix="opdbus-lxc-", suffix=".log")
        os.close(fd)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                os.setsid()
                out = os.open(log, os.O_WRONLY | os.O_APPEND)
                os.dup2(out, 1)
                os.dup2(out, 2)
                code = 0 if func() else 1
            except BaseException:  # pylint: disable=broad-except
                traceback.print_exc()
                code = 2
            finally:
                os._exit(code)  # pylint: disable=protected-access
        deadline = time.time() + timeout
        status = None
        try:
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.time() > deadline:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                    os.waitpid(pid, 0)
                    raise Timeout("%s of %s did not finish within %ss (killed); output: %s" % (what, ident, timeout, self._tail(log)))
                time.sleep(0.2)
            if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
                raise LxcError("%s of %s failed; output: %s" % (what, ident, self._tail(log)))
        finally:
            os.unlink(log)

    @staticmethod
    def _tail(path, lines=15):
        try:
            with open(path, errors="replace") as f:
                text = [line.rstrip() for line in f if line.strip()]
        except (IOError, OSError):
            return "(none)"
        return " | ".join(text[-lines:]) or "(none)"

    # ------------------------------------------------------------------ spec <-> config
    def _render(self, spec):
        """(single, multi): {key: value} for the one-value keys and {key: [values]} for the shared list keys."""
        single, multi = {}, dict((key, []) for key in MULTI_KEYS)
        if spec.get("hostname") is not None:
            single["lxc.uts.name"] = spec["hostname"]
        if spec.get("cores") is not None:
            if self.cgroup == 2:
                single["lxc.cgroup2.cpu.max"] = "%d %d" % (spec["cores"] * CPU_PERIOD, CPU_PERIOD)
            else:
                single["lxc.cgroup.cpu.cfs_quota_us"] = str(spec["cores"] * CPU_PERIOD)
                single["lxc.cgroup.cpu.cfs_period_us"] = str(CPU_PERIOD)
        if spec.get("memory_mb") is not None:
            single[self._cg("lxc.cgroup.memory.limit_in_bytes", "lxc.cgroup2.memory.max")] = str(spec["memory_mb"] * MIB)
        if spec.get("swap_mb") is not None:
            if self.cgroup == 2:
                single["lxc.cgroup2.memory.swap.max"] = str(spec["swap_mb"] * MIB)
            else:
                single["lxc.cgroup.memory.memsw.limit_in_bytes"] = str((spec["memory_mb"] + spec["swap_mb"]) * MIB)
        if spec.get("onboot") is not None:
            single["lxc.start.auto"] = "1" if spec["onboot"] else "0"
        features = spec.get("features") or {}
        if features.get("nesting"):
            multi[MOUNT_KEY].extend(NESTING_ENTRIES)
        for flag, device, entry in (("tun", TUN_DEVICE, TUN_ENTRY), ("fuse", FUSE_DEVICE, FUSE_ENTRY)):
            if features.get(flag):
                multi[self._devices_key()].append(device)
                multi[MOUNT_KEY].append(entry)
        for mount in spec.get("mounts") or []:
            multi[MOUNT_KEY].append(mount_entry(mount))
        return single, multi

    def _net_items(self, name, network):
        """[(key, value)] of every lxc.net.N key for the spec's network, in order (type first)."""
        items = []
        for index, nic in enumerate(network or []):
            pre = "lxc.net.%d." % index
            port = nic["port"] or derived_port(name, index)
            if nic["type"] == "veth":
                items += [(pre + "type", "veth"), (pre + "veth.pair", port)]
            else:
                items += [(pre + "type", "phys"), (pre + "link", port)]
            items.append((pre + "name", nic["name"]))
            if nic["hwaddr"]:
                items.append((pre + "hwaddr", nic["hwaddr"]))
            if nic["address"] not in (None, "dhcp", "manual"):
                family = "ipv6" if ":" in nic["address"] else "ipv4"
                items.append((pre + family + ".address", nic["address"]))
                if nic["gateway"]:
                    items.append((pre + family + ".gateway", nic["gateway"]))
            items.append((pre + "flags", "up"))
        return items

    @staticmethod
    def _meta_nics(network):
        return [{"bridge": nic["bridge"], "port": nic["port"],
                 "address": nic["address"] if nic["address"] in ("dhcp", "manual") else None} for nic in network or []]

    def _check_supported(self, spec):
        if spec.get("unprivileged"):
            raise ValidationError(
                "unprivileged containers are not supported by the lxc backend: they need subordinate id ranges for root in "
                "/etc/subuid and /etc/subgid (e.g. root:100000:65536), lxc.idmap entries and a rootfs owned by the mapped ids; "
                "use unprivileged: false (or the Proxmox backend)")
        if (spec.get("features") or {}).get("keyctl"):
            raise ValidationError("features.keyctl is a Proxmox setting for unprivileged containers; the lxc backend "
                                  "creates privileged containers and cannot enable it: set keyctl: false")
        if self.cgroup == 1 and spec.get("swap_mb") is not None and spec.get("memory_mb") is None:
            raise ValidationError("swap_mb needs memory_mb on this cgroup v1 host (the limit is memory.memsw = memory + swap)")

    def _apply(self, c, ident, old, new, keys):
        """Write the config keys of spec keys ``keys`` going from spec old to spec new; save."""
        old_single, old_multi = self._render(old)
        new_single, new_multi = self._render(new)
        for key in sorted(set(old_single) | set(new_single)):
            if old_single.get(key) == new_single.get(key):
                continue
            c.clear_config_item(key)
            if key in new_single and not c.set_config_item(key, new_single[key]):
                raise LxcError("liblxc refused %s = %s for %s" % (key, new_single[key], ident))
        for key in MULTI_KEYS:
            if old_multi[key] == new_multi[key]:
                continue
            keep = [v for v in self._own_values(c, key) if v not in old_multi[key]]
            c.clear_config_item(key)
            for value in keep + new_multi[key]:
                if not c.append_config_item(key, value):
                    raise LxcError("liblxc refused %s = %s for %s" % (key, value, ident))
        if "network" in keys:
            c.clear_config_item("lxc.net")
            for key, value in self._net_items(ident, new["network"]):
                if not c.append_config_item(key, value):
                    raise LxcError("liblxc refused %s = %s for %s" % (key, value, ident))
        if not c.save_config():
            raise LxcError("cannot save the config of %s (%s)" % (ident, c.config_file_name))

    def read(self, ident):
        c = self._existing(ident)
        meta = self._read_meta(ident)
        spec = {"name": ident, "template": meta.get("template"), "rootfs_gb": meta.get("rootfs_gb")}
        hostname = _first(self._get(c, "lxc.uts.name")).strip('"')
        spec["hostname"] = hostname or None
        quota = _first(self._get(c, "lxc.cgroup.cpu.cfs_quota_us"))
        period = _first(self._get(c, "lxc.cgroup.cpu.cfs_period_us")) or str(CPU_PERIOD)
        cpu_max = _first(self._get(c, "lxc.cgroup2.cpu.max")).split()
        if cpu_max and cpu_max[0] != "max":
            quota, period = cpu_max[0], (cpu_max[1] if len(cpu_max) > 1 else str(CPU_PERIOD))
        if quota and quota.lstrip("-").isdigit() and int(quota) > 0 and period.isdigit() and int(period) > 0:
            spec["cores"] = max(1, -(-int(quota) // int(period)))
        memory = _size(_first(self._get(c, "lxc.cgroup2.memory.max")) or _first(self._get(c, "lxc.cgroup.memory.limit_in_bytes")))
        if memory is not None:
            spec["memory_mb"] = memory // MIB
        swap = _size(_first(self._get(c, "lxc.cgroup2.memory.swap.max")))
        memsw = _size(_first(self._get(c, "lxc.cgroup.memory.memsw.limit_in_bytes")))
        if swap is not None:
            spec["swap_mb"] = swap // MIB
        elif memsw is not None and memory is not None:
            spec["swap_mb"] = max(0, memsw - memory) // MIB
        spec["onboot"] = _first(self._get(c, "lxc.start.auto")) == "1"
        spec["unprivileged"] = bool(self._get(c, "lxc.idmap"))
        entries = self._own_values(c, MOUNT_KEY)
        devices = self._own_values(c, "lxc.cgroup.devices.allow") + self._own_values(c, "lxc.cgroup2.devices.allow")
        spec["features"] = {
            "nesting": all(e in entries for e in NESTING_ENTRIES),
            "tun": TUN_ENTRY in entries and TUN_DEVICE in devices,
            "fuse": FUSE_ENTRY in entries and FUSE_DEVICE in devices,
            "keyctl": False,
        }
        skip = set(meta.get("base_mounts") or []) | set(NESTING_ENTRIES) | set([TUN_ENTRY, FUSE_ENTRY])
        spec["mounts"] = [m for m in (parse_mount_entry(e) for e in entries if e not in skip) if m]
        spec["network"] = self._read_network(c, ident, meta.get("nics") or [])
        return normalise_spec(spec)

    def _read_network(self, c, ident, meta_nics):
        types = self._get(c, "lxc.net")
        types = types if isinstance(types, list) else ([types] if types else [])
        network = []
        for index, kind in enumerate(types):
            pre = "lxc.net.%d." % index
            meta = meta_nics[index] if index < len(meta_nics) else {}
            if kind == "empty":
                continue
            if kind == "phys":
                nic_type, port, bridge = "socket", _first(self._get(c, pre + "link")), meta.get("bridge")
            else:
                nic_type, port = "veth", _first(self._get(c, pre + "veth.pair"))
                bridge = meta.get("bridge") or _first(self._get(c, pre + "link")) or None
            address = gateway = None
            for family in ("ipv4", "ipv6"):
                found = _first(self._get(c, pre + family + ".address"))
                if found:
                    address = found
                    gateway = _first(self._get(c, pre + family + ".gateway")) or None
                    break
            network.append({
                "name": _first(self._get(c, pre + "name")) or None, "type": nic_type, "bridge": bridge,
                "address": address or meta.get("address"), "gateway": gateway if gateway not in ("auto", "dev") else None,
                "hwaddr": (_first(self._get(c, pre + "hwaddr")) or "").lower() or None, "port": port or None,
            })
        return network

    # ------------------------------------------------------------------ Backend
    @staticmethod
    def default_port(spec, index):
        """The host-side name a NIC gets when the spec names none (veth NICs)."""
        nic = (spec.get("network") or [])[index]
        if nic.get("type") == "socket":
            return nic.get("port")
        return derived_port(spec["name"], index)

    def list(self):
        out = []
        for c in self.lxc.list_containers(config_path=self.lxcpath, as_object=True):
            out.append({"name": c.name, "id": None, "state": "stopped" if c.state == "STOPPED" else "running"})
        return sorted(out, key=lambda item: item["name"])

    def state(self, ident):
        c = self._container(ident)
        if not c.defined:
            return "absent"
        return "stopped" if c.state == "STOPPED" else "running"

    def create(self, spec, timeout):
        """Create from spec['template'] (busybox, debian, clone:<name>); return the name.

        How it was made ({'template', 'clone': snapshot|copy|None, 'backing': btrfs|dir}) is kept in
        ``last_create``.
        """
        spec = normalise_spec(spec)
        ident = spec["name"]
        if not ident:
            raise ValidationError("a container needs a name")
        self._check_supported(spec)
        template = spec["template"]
        if not template:
            raise ValidationError("creating %s needs a template: %s or clone:<container>" % (ident, ", ".join(TEMPLATES)))
        c = self._container(ident)
        if c.defined:
            raise LxcError("container %s already exists in %s; change it or destroy it first" % (ident, self.lxcpath))
        if not os.path.isdir(self.lxcpath):
            raise LxcError("the container directory %s does not exist" % self.lxcpath)
        on_btrfs = is_btrfs(self.lxcpath)
        info = {"template": template, "clone": None, "backing": "btrfs" if on_btrfs else "dir"}
        base = {}
        if template.startswith(CLONE_PREFIX):
            source = template[len(CLONE_PREFIX):]
            src = self._container(source)
            if not source or not src.defined:
                raise NotFound("cannot clone %s: container %r does not exist in %s" % (ident, source, self.lxcpath))
            if src.state != "STOPPED":
                raise LxcError("cannot clone %s from %s: %s is %s; stop it first" % (ident, source, source, src.state.lower()))
            rootfs = _first(self._get(src, "lxc.rootfs.path")).split(":", 1)[-1]
            snapshot = on_btrfs and os.path.isdir(rootfs) and is_btrfs(rootfs) and is_subvolume(rootfs)
            flags = self.lxc.LXC_CLONE_SNAPSHOT if snapshot else 0
            info["clone"] = "snapshot" if snapshot else "copy"
            base = self._read_meta(source)
            try:
                self._run_child(lambda: src.clone(ident, config_path=self.lxcpath, flags=flags), timeout,
                                "clone (%s) from %s" % (info["clone"], source), ident)
            except LxcError:
                self._cleanup_failed(ident)
                raise
        elif template in TEMPLATES:
            args = ("-r", DEBIAN_RELEASE, "--mirror", DEBIAN_MIRROR) if template == "debian" else ()
            bdev = "btrfs" if on_btrfs else "dir"
            try:
                self._run_child(lambda: c.create(template, 0, args, bdev), timeout, "template %s" % template, ident)
            except LxcError:
                self._cleanup_failed(ident)
                raise
        else:
            raise ValidationError("unknown template %r for %s: use %s or clone:<container>" % (template, ident, ", ".join(TEMPLATES)))
        c = self._existing(ident)
        cloned = template.startswith(CLONE_PREFIX)
        if template == "busybox":
            self._busybox_rcs(c)
        elif template == "debian":
            self._debian_security_suite(c)
        try:
            if not cloned or spec["network"] is not None:
                c.clear_config_item("lxc.net")  # the template's default NIC (lxc.net from default.conf) is not ours
            elif base.get("nics") is not None:
                self._renumber_ports(c, ident, base.get("nics"))
            meta = {
                "template": template, "rootfs_gb": spec["rootfs_gb"],
                "base_mounts": base.get("base_mounts") if cloned else self._own_values(c, MOUNT_KEY),
                "nics": self._meta_nics(spec["network"]) if spec["network"] is not None else (base.get("nics") or []),
                "clone": info["clone"],
            }
            current = dict(spec, network=None, mounts=None, features=None) if not cloned else self._spec_for_clone(c, ident, meta)
            keys = [key for key in spec if spec[key] is not None]
            new = dict(current)
            new.update((key, spec[key]) for key in keys)
            self._apply(c, ident, current if cloned else {}, new, keys)
            self._write_meta(ident, meta)
        except Exception:
            self._cleanup_failed(ident)
            raise
        self.last_create = info
        return ident

    def _debian_security_suite(self, c):
        """The template writes the security suite as ``bookworm/updates``, which the archive no longer has (apt
        update fails on it); since bullseye it is ``bookworm-security``."""
        path = os.path.join(self.rootfs(c.name), "etc", "apt", "sources.list")
        try:
            with open(path) as f:
                text = f.read()
        except (IOError, OSError):
            return
        fixed = text.replace("%s/updates" % DEBIAN_RELEASE, "%s-security" % DEBIAN_RELEASE)
        if fixed != text:
            with open(path, "w") as f:
                f.write(fixed)

    def _busybox_rcs(self, c):
        rcs = os.path.join(_first(self._get(c, "lxc.rootfs.path")).split(":", 1)[-1], "etc", "init.d", "rcS")
        try:
            with open(rcs) as f:
                lines = f.read().splitlines(True)
        except (IOError, OSError):
            return
        text = "".join(BUSYBOX_DHCP if line.strip() == "/bin/udhcpc" else line for line in lines)
        with open(rcs, "w") as f:
            f.write(text)

    def _renumber_ports(self, c, ident, nics):
        """A clone keeping its source's NICs gets its own host-side names (two containers cannot share one)."""
        for index, nic in enumerate(nics):
            key = "lxc.net.%d.%s" % (index, "veth.pair")
            if nic.get("port") is None and self._get(c, key):
                c.set_config_item(key, derived_port(ident, index))

    def _spec_for_clone(self, c, ident, meta):
        c.save_config()
        self._write_meta(ident, meta)
        return self.read(ident)

    def _cleanup_failed(self, ident):
        c = self._container(ident)
        try:
            if c.defined:
                c.destroy()
        except Exception:  # pylint: disable=broad-except
            pass
        path = self._dir(ident)
        if os.path.isdir(path) and not is_btrfs(path):
            shutil.rmtree(path, ignore_errors=True)

    def change(self, ident, changes, timeout):
        """Write exactly the changed keys; set cgroup limits live when running. Returns the keys needing a restart."""
        c = self._existing(ident)
        if not changes:
            return []
        for key in ("template", "unprivileged", "name", "id"):
            if key in changes:
                raise ValidationError("%s of %s cannot be changed after creation (destroy and create it again)" % (key, ident))
        current = self.read(ident)
        new = dict(current)
        new.update((key, value[1]) for key, value in changes.items())
        new = normalise_spec(new)
        self._check_supported(new)
        self._apply(c, ident, current, new, list(changes))
        meta = self._read_meta(ident)
        meta["rootfs_gb"] = new["rootfs_gb"]
        if "network" in changes:
            meta["nics"] = self._meta_nics(new["network"])
        self._write_meta(ident, meta)
        if c.running:
            self._apply_live(c, ident, new, [key for key in changes if key in ("cores", "memory_mb", "swap_mb")])
        return needs_restart(changes)

    def _apply_live(self, c, ident, spec, keys):
        if not keys:
            return
        single = self._render(spec)[0]
        prefix = "lxc.cgroup2." if self.cgroup == 2 else "lxc.cgroup."
        wanted = [(key[len(prefix):], value) for key, value in sorted(single.items()) if key.startswith(prefix)
                  and (("cpu" in key and "cores" in keys) or ("memory" in key and ("memory_mb" in keys or "swap_mb" in keys)))]
        # memory.limit <= memory.memsw.limit on v1: whichever order fails first works second
        for attempt in range(2):
            failed = [(key, value) for key, value in wanted if not c.set_cgroup_item(key, value)]
            if not failed:
                return
            wanted = list(reversed(failed))
            if attempt:
                raise LxcError("cannot set %s live on %s (cgroup v%d); the new values apply at the next start"
                               % (", ".join("%s=%s" % item for item in failed), ident, self.cgroup))

    def start(self, ident, timeout):
        c = self._existing(ident)
        if c.running:
            return
        log = os.path.join(self._dir(ident), "opdbus-start.log")
        c.set_config_item("lxc.log.file", log)  # this object only: never saved
        c.set_config_item("lxc.log.level", "WARN")
        if os.path.exists(log):
            os.unlink(log)
        if not c.start(useinit=False, daemonize=True, close_fds=True):
            raise LxcError("%s did not start: %s" % (ident, self._tail(log, 8)))
        if not c.wait("RUNNING", max(1, int(timeout))):
            raise Timeout("%s did not reach RUNNING within %ss" % (ident, timeout))
        deadline = time.time() + timeout
        pid = c.init_pid
        while (pid is None or pid <= 0 or not os.path.exists("/proc/%d" % pid)) and time.time() < deadline:
            time.sleep(0.1)
            pid = c.init_pid
        if pid is None or pid <= 0:
            raise Timeout("%s has no init process after %ss" % (ident, timeout))
        if self._is_systemd(pid):
            self._wait_systemd(c, ident, deadline, timeout)

    @staticmethod
    def _is_systemd(pid):
        """Is the container's init systemd? (its comm is 'init' until systemd renames itself: look at the binary)."""
        try:
            return os.path.basename(os.readlink("/proc/%d/exe" % pid)) == "systemd"
        except OSError:
            return False

    def system_state(self, ident):
        """What ``systemctl is-system-running`` answers inside the container (None when it cannot run)."""
        code, out = self.run(ident, ["systemctl", "is-system-running"])
        return out.strip() or ("exit %d" % code if code is not None else None)

    def run(self, ident, argv, net_only=False, host_network=False, env=None, with_stderr=False):
        """(exit code, stdout) of argv run inside the running container (the container's files, or with net_only
        the host's files in the container's network namespace; with host_network the container's files, PIDs,
        host name and IPC but the host's network, as ``lxc-attach -s MOUNT|PID|UTSNAME|IPC``). ``env``: extra
        variables. With ``with_stderr`` stderr follows stdout in the text returned."""
        c = self._existing(ident)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kwargs = {"stdout": out, "stderr": out if with_stderr else err}
            if net_only:
                kwargs["namespaces"] = self.lxc.CLONE_NEWNET
            elif host_network:
                kwargs["namespaces"] = (self.lxc.CLONE_NEWNS | self.lxc.CLONE_NEWPID | self.lxc.CLONE_NEWUTS
                                        | self.lxc.CLONE_NEWIPC)
            if env:
                kwargs["extra_env_vars"] = ["%s=%s" % item for item in sorted(env.items())]
            code = c.attach_wait(self.lxc.attach_run_command, list(argv), **kwargs)
            out.seek(0)
            return code, out.read().decode("utf-8", "replace")

    def call_inside(self, ident, func, *args):
        """func(*args) run in a child attached to the running container's mount and PID namespaces (the host's
        network); its JSON-able result, or LxcError with the child's error. Services that check who calls
        (systemd's private socket wants a peer whose PID it can see) are reached this way."""
        c = self._existing(ident)
        if not c.running:
            raise LxcError("%s is not running" % ident)
        read_fd, write_fd = os.pipe()
        try:
            code = c.attach_wait(_call_child, (func, args, write_fd),
                                 namespaces=self.lxc.CLONE_NEWNS | self.lxc.CLONE_NEWPID)
            os.close(write_fd)
            write_fd = None
            data = _read_all(read_fd)
        finally:
            os.close(read_fd)
            if write_fd is not None:
                os.close(write_fd)
        try:
            answer = json.loads(data.decode("utf-8")) if data else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or code != 0:
            raise LxcError("the call into %s failed (child exited %s: %s)" % (ident, code, data.decode("utf-8", "replace")[:300]))
        if "error" in answer:
            raise LxcError("in %s: %s" % (ident, answer["error"]))
        return answer["ok"]

    def init_pid(self, ident):
        """The PID (in this PID namespace) of the running container's init, or None."""
        c = self._existing(ident)
        pid = c.init_pid if c.running else -1
        return pid if pid and pid > 0 else None

    def rootfs(self, ident):
        """The host directory holding the container's root filesystem (dir and btrfs backing)."""
        c = self._existing(ident)
        return _first(self._get(c, "lxc.rootfs.path")).split(":", 1)[-1]

    def _wait_systemd(self, c, ident, deadline, timeout):
        answer = None
        while time.time() < deadline:
            answer = self.system_state(ident)
            if answer and answer not in ("initializing", "starting") and not answer.startswith("exit"):
                return
            if not c.running:
                raise LxcError("%s stopped while systemd was booting" % ident)
            time.sleep(0.5)
        raise Timeout("systemd in %s did not finish booting within %ss (is-system-running: %s)" % (ident, timeout, answer))

    def stop(self, ident, timeout, force=False):
        c = self._existing(ident)
        if c.state == "STOPPED":
            return
        if c.shutdown(max(0, int(timeout))):
            return
        if not force:
            raise Timeout("%s did not shut down within %ss (busybox init ignores the halt signal); "
                          "stop it with force" % (ident, timeout))
        if not c.stop() and c.state != "STOPPED":
            raise LxcError("cannot stop %s (state %s)" % (ident, c.state))
        c.wait("STOPPED", 10)

    def destroy(self, ident, timeout):
        c = self._existing(ident)
        if c.state != "STOPPED":
            raise LxcError("cannot destroy %s: it is %s; stop it first" % (ident, c.state.lower()))
        path = self._dir(ident)
        if not c.destroy():
            raise LxcError("liblxc could not destroy %s (%s)" % (ident, path))
        for leftover in (os.path.join(path, META_FILE), os.path.join(path, "opdbus-start.log")):
            if os.path.exists(leftover):
                os.unlink(leftover)
        try:
            os.rmdir(path)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                raise

    def addresses(self, ident):
        """{interface: [address/prefix]} without lo and link-local addresses ({} when stopped).

        Read natively: a child attached to the container's network namespace only dumps the
        addresses over rtnetlink (rtnl.py) and hands them back through a pipe.
        """
        c = self._existing(ident)
        if not c.running:
            return {}
        read_fd, write_fd = os.pipe()
        try:
            code = c.attach_wait(_addresses_child, write_fd, namespaces=self.lxc.CLONE_NEWNET)
            os.close(write_fd)
            write_fd = None
            chunks = []
            while True:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(read_fd)
            if write_fd is not None:
                os.close(write_fd)
        data = b"".join(chunks)
        if code != 0 or not data:
            raise LxcError("cannot read the addresses of %s in its network namespace (child exited %s: %s)"
                           % (ident, code, data.decode("utf-8", "replace")[:300]))
        return json.loads(data.decode("utf-8"))
