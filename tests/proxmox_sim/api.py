# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each served API method does, with PVE's checks, error texts and worker tasks (pve-container, pve-manager)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import re
import time

from .schema import lookup, print_property_string, split_list
from .state import GIB, ApiError, Container, TaskFailed, die, format_size, parse_size, template_path

VERSION = {"version": "9.1.3", "release": "9.1", "repoid": "2dd5ae5b8b4f6a58", "console": "html5"}
# Options PVE refuses to delete from a CT config.
REQUIRED_OPTIONS = ("rootfs",)
# Keys of a create request that are not stored in the CT config.
CREATE_ONLY = ("node", "vmid", "ostemplate", "password", "ssh-public-keys", "start", "storage", "force", "restore", "unique",
               "ignore-unpack-errors", "bwlimit", "pool", "ha-managed")


def _locked(container):
    if container.lock:
        raise die("CT is locked (%s)" % container.lock)


def _check_digest(container, params):
    if params.get("digest") and params["digest"] != container.digest():
        raise die("detected modified configuration - file changed by other user? Try again.")


def version(cluster, ctx, params):
    return dict(VERSION)


def nodes(cluster, ctx, params):
    return [{"node": node, "status": "online", "type": "node", "id": "node/%s" % node, "level": "", "cpu": 0.021, "maxcpu": 16,
             "mem": 6 * GIB, "maxmem": 64 * GIB, "uptime": 864000,
             "ssl_fingerprint": ctx.fingerprint} for node in cluster.nodes]


def nextid(cluster, ctx, params):
    if "vmid" in params:
        if params["vmid"] in cluster.containers:
            raise ApiError(400, "Parameter verification failed.", {"vmid": "VM %d already exists" % params["vmid"]})
        return params["vmid"]
    vmid = 100
    while vmid in cluster.containers:
        vmid += 1
    return vmid


def _ct_entry(container):
    conf = container.config
    running = container.status == "running"
    disk = conf.get("rootfs", "").split(",")[0]
    entry = {"vmid": container.vmid, "name": conf.get("hostname", "CT%d" % container.vmid), "status": container.status,
             "maxmem": conf.get("memory", 512) * 1024 ** 2, "maxswap": conf.get("swap", 512) * 1024 ** 2,
             "maxdisk": 0, "disk": 0, "cpus": conf.get("cores", 1), "cpu": 0.0014 if running else 0,
             "mem": 43 * 1024 ** 2 if running else 0, "swap": 0,
             "uptime": int(time.time() - container.started) if running else 0,
             "netin": 1810 if running else 0, "netout": 942 if running else 0, "diskread": 0, "diskwrite": 0,
             "type": "lxc", "template": conf.get("template", 0)}
    if conf.get("tags"):
        entry["tags"] = conf["tags"]
    if container.lock:
        entry["lock"] = container.lock
    return entry, disk


def _with_disk(cluster, container):
    entry, volid = _ct_entry(container)
    if volid in cluster.volumes:
        entry["maxdisk"] = cluster.volumes[volid]["size"]
        entry["disk"] = entry["maxdisk"] // 5 if container.status == "running" else 0
    return entry


def resources(cluster, ctx, params):
    kind = params.get("type")
    res = []
    if kind in (None, "vm"):
        for vmid in sorted(cluster.containers):
            container = cluster.containers[vmid]
            entry = _with_disk(cluster, container)
            entry.update({"id": "lxc/%d" % vmid, "node": container.node, "maxcpu": entry.pop("cpus")})
            for key in ("maxswap", "swap"):
                entry.pop(key)
            res.append(entry)
    if kind in (None, "storage"):
        for node in cluster.nodes:
            for name, conf in sorted(cluster.storages.items()):
                res.append({"id": "storage/%s/%s" % (node, name), "type": "storage", "storage": name, "node": node,
                            "status": "available", "content": conf["content"], "plugintype": conf["type"],
                            "shared": conf["shared"], "maxdisk": conf["total"], "disk": _used(cluster, name)})
    if kind in (None, "node"):
        for entry in nodes(cluster, ctx, params):
            res.append({"id": entry["id"], "type": "node", "node": entry["node"], "status": "online", "cpu": entry["cpu"],
                        "maxcpu": entry["maxcpu"], "mem": entry["mem"], "maxmem": entry["maxmem"], "uptime": entry["uptime"],
                        "level": "", "cgroup-mode": 2})
    return res


def _used(cluster, storage):
    return sum(vol["size"] for volid, vol in cluster.volumes.items() if volid.startswith(storage + ":"))


def vmlist(cluster, ctx, params):
    cluster.check_node(params["node"])
    res = []
    for vmid in sorted(cluster.containers):
        container = cluster.containers[vmid]
        if container.node == params["node"]:
            res.append(_with_disk(cluster, container))
    return res


def create(cluster, ctx, params):
    node, vmid = params["node"], params["vmid"]
    cluster.check_node(node)
    cluster.check_unused(vmid)
    storage = params.get("storage", "local")
    cluster.storage(storage)
    ostemplate = params["ostemplate"]
    if ":" in ostemplate:
        cluster.storage(ostemplate.split(":", 1)[0])
    if ostemplate not in cluster.volumes or cluster.volumes[ostemplate]["content"] != "vztmpl":
        raise die("can't find file '%s'" % ostemplate)
    config = {"arch": params.get("arch", "amd64"), "hostname": params.get("hostname", "CT%d" % vmid), "memory": 512, "swap": 512}
    name = ostemplate.split("/")[-1]
    detected = [dist for dist in ("debian", "ubuntu", "alpine", "centos", "fedora", "archlinux") if name.startswith(dist)]
    config["ostype"] = params.get("ostype") or (detected[0] if detected else "unmanaged")
    container = Container(vmid, node, {"lock": "create"})
    rootfs = params.get("rootfs") or {"volume": "%s:4" % storage}
    container.config["rootfs"] = cluster._mountpoint(vmid, "rootfs", rootfs)  # pylint: disable=protected-access
    try:
        for key in sorted(params):
            if key in CREATE_ONLY or key == "rootfs":
                continue
            cluster._apply(container, key, params[key])  # pylint: disable=protected-access
    except ApiError:
        for dummy, volid in cluster.volumes_of(container):
            cluster.volumes.pop(volid, None)
        raise
    for key, value in config.items():
        container.config.setdefault(key, value)
    container.config["lock"] = "create"
    cluster.containers[vmid] = container
    rootvol = container.config["rootfs"].split(",")[0]
    size = cluster.volumes[rootvol]["size"]

    def effect(ok):
        if not ok:
            for dummy, volid in cluster.volumes_of(container):
                cluster.volumes.pop(volid, None)
            cluster.containers.pop(vmid, None)
            return []
        container.config.pop("lock", None)
        lines = []
        if cluster.storages[rootvol.split(":")[0]]["type"] == "lvmthin":
            lines.append("  Logical volume \"%s\" created." % rootvol.split(":")[1])
        lines += [
            "Creating filesystem with %d 4k blocks and %d inodes" % (size // 4096, size // 16384),
            "Filesystem UUID: %s" % _uuid(vmid),
            "Superblock backups stored on blocks: ",
            "\t32768, 98304, 163840, 229376, 294912, 819200, 884736, 1605632",
            "extracting archive '%s'" % template_path(ostemplate),
            "Total bytes read: 524267520 (500MiB, 238MiB/s)",
            "Detected container architecture: %s" % container.config["arch"],
            "Creating SSH host key 'ssh_host_ed25519_key' - this may take some time ...",
            "done: SHA256:%s root@%s" % (_uuid(vmid * 7).replace("-", "")[:43], container.config["hostname"]),
        ]
        if params.get("start"):
            container.status = "running"
            container.started = time.time()
        return lines

    return cluster.start_task(ctx, node, "vzcreate", str(vmid), effect)


def _uuid(seed):
    digest = hashlib.md5(str(seed).encode("ascii")).hexdigest()  # nosec - a display value only
    return "%s-%s-%s-%s-%s" % (digest[:8], digest[8:12], digest[12:16], digest[16:20], digest[20:32])


def vmdiridx(cluster, ctx, params):
    cluster.ct(params["node"], params["vmid"])
    return [{"subdir": name} for name in ("config", "pending", "status", "vncproxy", "termproxy", "vncwebsocket", "spiceproxy",
                                          "firewall", "snapshot", "rrd", "rrddata", "interfaces", "migrate", "move_volume",
                                          "resize", "feature", "template", "clone", "mtunnel", "remote_migrate")]


def destroy(cluster, ctx, params):
    node, vmid = params["node"], params["vmid"]
    container = cluster.ct(node, vmid)
    _locked(container)
    if container.status == "running" and not params.get("force"):
        raise die("unable to destroy CT %d - container is running" % vmid)

    def effect(ok):
        if not ok:
            container.config.pop("lock", None)
            return []
        lines = []
        for dummy, volid in cluster.volumes_of(container):
            if cluster.volumes.pop(volid, None) is not None and cluster.storages[volid.split(":")[0]]["type"] == "lvmthin":
                lines.append("  Logical volume \"%s\" successfully removed." % volid.split(":")[1])
        container.status = "stopped"
        cluster.containers.pop(vmid, None)
        return lines

    container.config["lock"] = "destroyed"
    return cluster.start_task(ctx, node, "vzdestroy", str(vmid), effect)


def config_get(cluster, ctx, params):
    container = cluster.ct(params["node"], params["vmid"])
    if params.get("snapshot"):
        raise die("snapshot '%s' does not exist" % params["snapshot"])
    data = dict(container.config)
    data["digest"] = container.digest()
    return data


def config_put(cluster, ctx, params):
    container = cluster.ct(params["node"], params["vmid"])
    props = cluster.schema.properties("/nodes/{node}/lxc/{vmid}/config", "PUT")
    deletes = split_list(params.get("delete", ""))
    for opt in deletes:
        if opt in params:
            raise ApiError(400, "Parameter verification failed.", {"delete": "you can't use '-%s' and -delete %s' at the same time" % (opt, opt)})
        if lookup(props, opt) is None or opt in ("node", "vmid", "delete", "digest", "revert"):
            raise ApiError(400, "Parameter verification failed.", {"delete": "unknown option '%s'" % opt})
    _locked(container)
    _check_digest(container, params)
    for opt in deletes:
        if opt in REQUIRED_OPTIONS:
            raise die("unable to delete required option '%s'" % opt)
    for opt in deletes:
        value = container.config.pop(opt, None)
        if value is not None and re.match(r"\Amp\d+\Z", opt):
            index = 0
            while "unused%d" % index in container.config:
                index += 1
            container.config["unused%d" % index] = value.split(",")[0]
        elif value is not None and opt.startswith("unused"):
            cluster.free_volume(value)
    for key in sorted(params):
        if key in ("node", "vmid", "delete", "digest", "revert"):
            continue
        if key == "rootfs" or re.match(r"\Amp\d+\Z", key):
            old = container.config.get(key, "").split(",")[0]
            if old and params[key]["volume"] != old and ":" in params[key]["volume"] \
                    and not re.match(r"\A[^:]+:\d+(\.\d+)?\Z", params[key]["volume"]):
                raise die("unable to change volume of mount point '%s'" % key)
            if old and params[key]["volume"] == old:
                params[key].setdefault("size", format_size(cluster.volumes.get(old, {}).get("size", 0)))
        cluster._apply(container, key, params[key])  # pylint: disable=protected-access
    return None


def status_current(cluster, ctx, params):
    container = cluster.ct(params["node"], params["vmid"])
    entry = _with_disk(cluster, container)
    entry["ha"] = {"managed": 0}
    if container.status == "running":
        entry["pid"] = 40000 + container.vmid
    return entry


def start(cluster, ctx, params):
    node, vmid = params["node"], params["vmid"]
    container = cluster.ct(node, vmid)
    if container.status == "running":
        raise die("CT %d already running" % vmid)
    if not params.get("skiplock"):
        _locked(container)

    def effect(ok):
        if ok:
            container.status = "running"
            container.started = time.time()
        return []

    return cluster.start_task(ctx, node, "vzstart", str(vmid), effect)


def _stopper(kind, check_lock):
    def handler(cluster, ctx, params):
        node, vmid = params["node"], params["vmid"]
        container = cluster.ct(node, vmid)
        if container.status != "running":
            # pve-container's reboot handler words it "VM ... not running"; the others say "CT".
            raise die("%s %d not running" % ("VM" if kind == "vzreboot" else "CT", vmid))

        def effect(ok):
            if not ok:
                return []
            if check_lock and container.lock and not params.get("skiplock"):
                raise TaskFailed("CT is locked (%s)" % container.lock)
            if kind != "vzreboot":
                container.status = "stopped"
                container.started = None
            else:
                container.started = time.time()
            return []

        return cluster.start_task(ctx, node, kind, str(vmid), effect)

    return handler


def clone(cluster, ctx, params):
    node, vmid, newid = params["node"], params["vmid"], params["newid"]
    source = cluster.ct(node, vmid)
    target = params.get("target", node)
    cluster.check_node(target)
    cluster.check_unused(newid)
    _locked(source)
    if source.status == "running" and not params.get("snapname"):
        raise die("Cannot do full clones on a running container without snapshots")
    if params.get("snapname"):
        raise die("snapshot '%s' does not exist" % params["snapname"])
    if params.get("storage"):
        cluster.storage(params["storage"])
    config = dict(source.config)
    for key in [key for key in config if key.startswith("unused")]:
        config.pop(key)
    config["hostname"] = params.get("hostname", "%s" % config.get("hostname", "CT%d" % newid))
    if "description" in params:
        config["description"] = params["description"]
    config["lock"] = "create"
    new = Container(newid, target, config)
    lines = []
    for key, volid in cluster.volumes_of(source):
        if key.startswith("unused"):
            continue
        storage = params.get("storage") or volid.split(":")[0]
        size = cluster.volumes[volid]["size"]
        rest = source.config[key].split(",", 1)[1:]
        newvol = cluster._allocate(newid, storage, size).split(",")[0]  # pylint: disable=protected-access
        new.config[key] = ",".join([newvol] + [part for part in ",".join(rest).split(",") if part])
        lines += ["create full clone of mountpoint %s (%s)" % (key, volid),
                  "  Logical volume \"%s\" created." % newvol.split(":")[1],
                  "Creating filesystem with %d 4k blocks and %d inodes" % (size // 4096, size // 16384),
                  "Number of files: 24,651 (reg: 19,262, dir: 1,878, link: 3,479, dev: 2, special: 30)",
                  "Total file size: 504,211,832 bytes"]
    for key in [key for key in new.config if key.startswith("net")]:
        data = dict(part.split("=", 1) for part in new.config[key].split(","))
        data.pop("hwaddr", None)
        new.config[key] = cluster._normalize_net(newid, key, data)  # pylint: disable=protected-access
    cluster.containers[newid] = new

    def effect(ok):
        if not ok:
            for dummy, volid in cluster.volumes_of(new):
                cluster.volumes.pop(volid, None)
            cluster.containers.pop(newid, None)
            return []
        new.config.pop("lock", None)
        return lines

    return cluster.start_task(ctx, node, "vzclone", str(vmid), effect)


def resize(cluster, ctx, params):
    node, vmid = params["node"], params["vmid"]
    container = cluster.ct(node, vmid)
    _check_digest(container, params)
    _locked(container)
    disk = params["disk"]
    if disk not in container.config:
        raise die("disk '%s' does not exist" % disk)
    volid = container.config[disk].split(",")[0]
    old = cluster.volumes[volid]["size"]
    text = params["size"]
    new = old + parse_size(text[1:]) if text.startswith("+") else parse_size(text)
    if new < old:
        raise die("unable to shrink disk size")

    def effect(ok):
        if not ok:
            return []
        cluster.volumes[volid]["size"] = new
        parts = [part for part in container.config[disk].split(",") if not part.startswith("size=")]
        data = {"volume": parts[0], "size": format_size(new)}
        data.update(dict(part.split("=", 1) for part in parts[1:]))
        fmt = cluster.schema.properties("/nodes/{node}/lxc", "POST")["rootfs" if disk == "rootfs" else "mp[n]"]["format"]
        container.config[disk] = print_property_string(fmt, data)
        name = volid.split(":")[1]
        return ["  Size of logical volume pve/%s changed from %.2f GiB (%d extents) to %.2f GiB (%d extents)."
                % (name, old / GIB, old // (4 * 1024 ** 2), new / GIB, new // (4 * 1024 ** 2)),
                "  Logical volume pve/%s successfully resized." % name,
                "resize2fs 1.47.2 (1-Jan-2025)",
                "The filesystem on /dev/pve/%s is now %d (4k) blocks long." % (name, new // 4096)]

    return cluster.start_task(ctx, node, "resize", str(vmid), effect)


def interfaces(cluster, ctx, params):
    vmid = params["vmid"]
    container = cluster.ct(params["node"], vmid)
    if container.status != "running":
        raise die("CT %d not running" % vmid)
    res = [{"name": "lo", "hwaddr": "00:00:00:00:00:00", "hardware-address": "00:00:00:00:00:00", "inet": "127.0.0.1/8",
            "inet6": "::1/128", "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "inet", "prefix": 8},
                                                 {"ip-address": "::1", "ip-address-type": "inet6", "prefix": 128}]}]
    for key in sorted((key for key in container.config if re.match(r"\Anet\d+\Z", key)), key=lambda item: int(item[3:])):
        data = dict(part.split("=", 1) for part in container.config[key].split(","))
        entry = {"name": data["name"], "hwaddr": data["hwaddr"].lower(), "hardware-address": data["hwaddr"].lower(), "ip-addresses": []}
        ip = data.get("ip")
        if ip == "dhcp":
            ip = "192.0.2.%d/24" % (2 + (vmid + int(key[3:])) % 250)
        if ip and ip != "manual":
            entry["inet"] = ip
            iface = ipaddress.ip_interface(ip)
            entry["ip-addresses"].append({"ip-address": str(iface.ip), "ip-address-type": "inet", "prefix": iface.network.prefixlen})
        ip6 = data.get("ip6")
        if ip6 in ("auto", "dhcp"):
            ip6 = "2001:db8::%x/64" % (vmid + int(key[3:]))
        if ip6 and ip6 != "manual":
            entry["inet6"] = ip6
            iface = ipaddress.ip_interface(ip6)
            entry["ip-addresses"].append({"ip-address": str(iface.ip), "ip-address-type": "inet6", "prefix": iface.network.prefixlen})
        res.append(entry)
    return res


def task_status(cluster, ctx, params):
    cluster.check_node(params["node"])
    return cluster.task(params["node"], params["upid"]).status()


def task_log(cluster, ctx, params):
    cluster.check_node(params["node"])
    task = cluster.task(params["node"], params["upid"])
    lines = list(task.lines)
    if task.running and not lines:
        lines = ["no content"]
    begin = params.get("start", 0)
    limit = params.get("limit", 50)
    chosen = [{"n": number + 1, "t": text} for number, text in enumerate(lines)][begin:begin + limit] if limit else []
    ctx.extra["total"] = len(lines)
    return chosen


def storage_index(cluster, ctx, params):
    cluster.check_node(params["node"])
    wanted = split_list(params.get("content", ""))
    res = []
    for name, conf in sorted(cluster.storages.items()):
        content = conf["content"].split(",")
        if params.get("storage") and params["storage"] != name:
            continue
        if wanted and not any(item in content for item in wanted):
            continue
        used = _used(cluster, name)
        res.append({"storage": name, "type": conf["type"], "content": conf["content"], "active": 1, "enabled": 1,
                    "shared": conf["shared"], "total": conf["total"], "used": used, "avail": conf["total"] - used,
                    "used_fraction": round(float(used) / conf["total"], 6)})
    return res


def storage_content(cluster, ctx, params):
    cluster.check_node(params["node"])
    storage = params["storage"]
    cluster.storage(storage)
    res = []
    for volid in sorted(cluster.volumes):
        vol = cluster.volumes[volid]
        if not volid.startswith(storage + ":"):
            continue
        if params.get("content") and vol["content"] != params["content"]:
            continue
        if params.get("vmid") and vol["vmid"] != params["vmid"]:
            continue
        entry = {"volid": volid, "content": vol["content"], "format": vol["format"], "size": vol["size"], "ctime": vol["ctime"]}
        if vol["vmid"] is not None:
            entry["vmid"] = vol["vmid"]
            entry["used"] = vol["size"] // 5
        res.append(entry)
    return res


# (path template, method) -> (handler, privilege a write needs, on which ACL path)
HANDLERS = {
    ("/version", "GET"): (version, None),
    ("/nodes", "GET"): (nodes, None),
    ("/cluster/nextid", "GET"): (nextid, None),
    ("/cluster/resources", "GET"): (resources, None),
    ("/nodes/{node}/lxc", "GET"): (vmlist, None),
    ("/nodes/{node}/lxc", "POST"): (create, ("/vms/{vmid}", "VM.Allocate")),
    ("/nodes/{node}/lxc/{vmid}", "GET"): (vmdiridx, None),
    ("/nodes/{node}/lxc/{vmid}", "DELETE"): (destroy, ("/vms/{vmid}", "VM.Allocate")),
    ("/nodes/{node}/lxc/{vmid}/config", "GET"): (config_get, None),
    ("/nodes/{node}/lxc/{vmid}/config", "PUT"): (config_put, ("/vms/{vmid}", "VM.Config.Options")),
    ("/nodes/{node}/lxc/{vmid}/status/current", "GET"): (status_current, None),
    ("/nodes/{node}/lxc/{vmid}/status/start", "POST"): (start, ("/vms/{vmid}", "VM.PowerMgmt")),
    ("/nodes/{node}/lxc/{vmid}/status/stop", "POST"): (_stopper("vzstop", True), ("/vms/{vmid}", "VM.PowerMgmt")),
    ("/nodes/{node}/lxc/{vmid}/status/shutdown", "POST"): (_stopper("vzshutdown", True), ("/vms/{vmid}", "VM.PowerMgmt")),
    ("/nodes/{node}/lxc/{vmid}/status/reboot", "POST"): (_stopper("vzreboot", False), ("/vms/{vmid}", "VM.PowerMgmt")),
    ("/nodes/{node}/lxc/{vmid}/clone", "POST"): (clone, ("/vms/{vmid}", "VM.Clone")),
    ("/nodes/{node}/lxc/{vmid}/resize", "PUT"): (resize, ("/vms/{vmid}", "VM.Config.Disk")),
    ("/nodes/{node}/lxc/{vmid}/interfaces", "GET"): (interfaces, None),
    ("/nodes/{node}/tasks/{upid}/status", "GET"): (task_status, None),
    ("/nodes/{node}/tasks/{upid}/log", "GET"): (task_log, None),
    ("/nodes/{node}/storage", "GET"): (storage_index, None),
    ("/nodes/{node}/storage/{storage}/content", "GET"): (storage_content, None),
}
