# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What this collection manages on a host, read back as the variables ``playbooks/site.yml`` takes.

One JSON document (the op-dbus design's ``state.json``) for disaster recovery: export it from a
converged host, and ``ansible-playbook playbooks/site.yml -e @state.json`` on a wiped one converges
the same state, so a second export equals the first.

Each part is read from the system itself where it lives:

* ``ovs_network_*`` - the bridge from OVSDB (ports told apart by the ``opdbus-port`` external id the
  role ovs_network stamps on them; internal ports' addresses through rtnetlink);
* ``privacy_router_*`` - the chain's options as opdbus.infra.privacy_router recorded them in its key
  directory (secrets are never recorded; keys given through files keep their file names);
* ``opdbus_flows`` - every other cookie's flows on the bridge, read over OpenFlow;
* ``opdbus_containers`` - the liblxc containers besides the chain's, read through liblxc;
* ``opdbus_btrfs_caches`` - the btrfs caches with a snapshot timer (their units name them), read from
  the units, the subvolume's compression property and its qgroup limit;
* ``opdbus_numa_policies`` - the units with opdbus.infra.numa_policy's drop-in, read from the drop-ins;
* ``opdbus_packages`` - of the packages the inventory says are managed, those dpkg has installed;
* ``opdbus_mode`` - full with a privacy chain, standalone with the privacy_flows role's flows, else agent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shlex

# Cookies whose flows a role makes from its own variables (exported as those variables instead).
PRIVACY_FLOWS_COOKIE = 0x0D0B0001
ROLE_COOKIES = {PRIVACY_FLOWS_COOKIE: "privacy_flows", 0x0D0B0008: "privacy_router"}
PORT_ROLE = "opdbus-port"


def _port_spec(port):
    """A port as ovs_bridge's port syntax (what the role's variables hold), from ovs_info's view."""
    iface = port["interfaces"][0] if port["interfaces"] else {}
    spec = {"name": port["name"], "type": iface.get("type") or "system"}
    if port.get("tag") is not None:
        spec["tag"] = port["tag"]
    if port.get("trunks"):
        spec["trunks"] = list(port["trunks"])
    if port.get("vlan_mode"):
        spec["vlan_mode"] = port["vlan_mode"]
    if iface.get("ofport_request") is not None:
        spec["ofport_request"] = iface["ofport_request"]
    if iface.get("options"):
        spec["options"] = dict(iface["options"])
    ids = dict((k, v) for k, v in (port.get("external_ids") or {}).items() if k != PORT_ROLE)
    if ids:
        spec["external_ids"] = ids
    return spec


def ovs_part(endpoint, bridge, timeout=30.0):
    """The ovs_network role's variables for ``bridge`` ({} when it does not exist)."""
    from ansible_collections.opdbus.infra.plugins.module_utils.ovs import info
    # addresses through the collection's own small rtnetlink reader (this may run in the system Python,
    # respawned for python3-lxc, where pyroute2 is not installed)
    found = info.gather(endpoint, timeout=timeout, bridges=[bridge], addresses=False)["bridges"]
    if not found:
        return {}
    from ansible_collections.opdbus.infra.plugins.module_utils.lxc.rtnl import dump_addresses
    addresses = dump_addresses()
    row = found[0]
    out = {
        "ovs_network_bridge": row["name"],
        "ovs_network_datapath_type": row["datapath_type"] or "system",
        "ovs_network_fail_mode": row.get("fail_mode") or "standalone",
        "ovs_network_protocols": sorted(row.get("protocols") or []),
        "ovs_network_external_ids": dict(row.get("external_ids") or {}),
        "ovs_network_privacy_ports": [],
        "ovs_network_uplink": "",
        "ovs_network_extra_ports": [],
    }
    for port in row["ports"]:
        if port["name"] == row["name"]:
            continue  # the bridge's own local port
        role = (port.get("external_ids") or {}).get(PORT_ROLE)
        iface = port["interfaces"][0] if port["interfaces"] else {}
        spec = _port_spec(port)
        if role == "mgmt":
            out["ovs_network_mgmt_port"] = port["name"]
            out["ovs_network_mgmt_addresses"] = sorted(addresses.get(port["name"]) or [])
            if iface.get("ofport_request") is not None:
                out["ovs_network_mgmt_ofport"] = iface["ofport_request"]
        elif role == "uplink":
            out["ovs_network_uplink"] = port["name"]
            if iface.get("ofport_request") is not None:
                out["ovs_network_uplink_ofport"] = iface["ofport_request"]
        elif role == "privacy":
            out["ovs_network_privacy_ports"].append(spec)
        else:
            out["ovs_network_extra_ports"].append(spec)
    return out


def flows_part(bridge, rundir=None, timeout=30.0, skip=None):
    """([{bridge, cookie, flows}] of every cookie on the bridge but 0 and the roles' own, as ovs-ofctl lines;
    the set of cookies the bridge has) - one read of the flow table."""
    from ansible_collections.opdbus.infra.plugins.module_utils.openflow import reconcile as ofr
    skip = ROLE_COOKIES if skip is None else skip
    got = ofr.gather(ofr.target_for(bridge, rundir=rundir), timeout=timeout)
    by_cookie = {}
    seen = set()
    for entry in got["flows"]:
        cookie = entry["flow"].get("cookie") or 0
        seen.add(cookie)
        if cookie == 0 or cookie in skip:
            continue
        # ovs-ofctl's dump format ("cookie=0x1, table=1, priority=5,ip actions=drop") as input syntax
        text = entry["line"].replace(" actions=", ",actions=")
        line = ",".join(p.strip() for p in text.split(",") if not p.strip().startswith("cookie="))
        by_cookie.setdefault(cookie, []).append(line)
    flows = [{"bridge": bridge, "cookie": "0x%x" % cookie, "flows": sorted(lines)} for cookie, lines in sorted(by_cookie.items())]
    return flows, seen


def privacy_part(key_dir):
    """The privacy_router role's variables from the record the module keeps in ``key_dir`` ({} without one)."""
    path = os.path.join(key_dir, "config.json")
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (IOError, OSError):
        return {}
    except ValueError as exc:
        raise ValueError("%s is not JSON: %s" % (path, exc))
    return dict(("privacy_router_%s" % key, value) for key, value in sorted(record.items()))


def chain_names(privacy):
    """The chain's container names (defaults ct100-ct102 unless the record names others)."""
    containers = privacy.get("privacy_router_containers") or {}
    names = []
    for hop, default in (("wireguard", "ct100"), ("warp", "ct101"), ("xray", "ct102")):
        names.append((containers.get(hop) or {}).get("name") or default)
    return names


def containers_part(backend, skip=()):
    """[lxc_container specs] of the containers besides ``skip``, with state started/stopped."""
    out = []
    for entry in backend.list():
        name = entry["name"] if isinstance(entry, dict) else entry
        if name in skip:
            continue
        spec = backend.read(name)
        item = dict((k, v) for k, v in sorted(spec.items()) if v is not None and k not in ("id",))
        item["state"] = "started" if backend.state(name) == "running" else "stopped"
        out.append(item)
    return sorted(out, key=lambda c: c["name"])


def packages_part(names, root="/"):
    """Those of ``names`` dpkg has installed (sorted)."""
    from ansible_collections.opdbus.infra.plugins.module_utils.privacy.files import installed_packages
    have = installed_packages(root)
    return sorted(set(n for n in names if n.split("=", 1)[0] in have))


def mode_of(privacy, flows_present):
    if privacy:
        return "full"
    return "standalone" if flows_present else "agent"


def _unit_value(text, key):
    for line in (text or "").splitlines():
        if line.startswith(key + "="):
            return line[len(key) + 1:].strip()
    return None


def btrfs_caches_part(units_dir):
    """[btrfs_cache options] of the caches whose snapshot units are in ``units_dir``."""
    from ansible_collections.opdbus.infra.plugins.module_utils import btrfs
    from ansible_collections.opdbus.infra.plugins.module_utils.btrfs_cache import units
    out = []
    if not os.path.isdir(units_dir):
        return out
    prefix = units.unit_base("/x")[:-len("x")]  # "opdbus-btrfs-cache-"
    for name in sorted(os.listdir(units_dir)):
        if not (name.startswith(prefix) and name.endswith(".service")):
            continue
        with open(os.path.join(units_dir, name)) as handle:
            service = handle.read()
        timer_path = os.path.join(units_dir, name[:-len(".service")] + ".timer")
        timer = None
        if os.path.exists(timer_path):
            with open(timer_path) as handle:
                timer = handle.read()
        args = shlex.split((_unit_value(service, "ExecStart") or "").replace("%%", "%"))
        opts = dict(zip(args[2::2], args[3::2])) if len(args) > 2 else {}
        cache = opts.get("--cache")
        if not cache or not os.path.isdir(cache) or not btrfs.is_subvolume(cache):
            continue
        fs = btrfs.find_mount(cache)
        fs = fs["mount_point"] if isinstance(fs, dict) else fs
        entry = {"filesystem": fs, "path": os.path.relpath(cache, fs),
                 "snapshot_dir": os.path.relpath(opts.get("--snapshot-dir") or cache + ".snapshots", fs),
                 "units_dir": units_dir, "script_path": args[1],
                 "retention": dict((k, int(opts["--" + k])) for k in ("hourly", "daily", "weekly", "quarterly") if "--" + k in opts)}
        compression = btrfs.get_compression(cache) or "none"
        algo, _sep, level = compression.partition(":")
        entry["compression"] = algo
        if level:
            entry["compression_level"] = int(level)
        limit = None
        if btrfs.quota_enabled(fs):
            group = btrfs.qgroup_show(fs).get(btrfs.subvolume_info(cache)["id"])
            limit = group["max_referenced"] if group else None
        entry["size_limit"] = str(limit) if limit else "none"
        schedule = _unit_value(timer, "OnCalendar") if timer else None
        entry["snapshot_schedule"] = schedule or "absent"
        out.append(entry)
    return out


def _numbers(value):
    """A systemd CPU/node list ("0-3 8", "0,2") as numa_policy's list of numbers and ranges."""
    return [part for part in value.replace(",", " ").split() if part]


def numa_policies_part(dropin_dir, dropin="50-opdbus-numa"):
    """[numa_policy options] of the units that have the module's drop-in in ``dropin_dir``."""
    from ansible_collections.opdbus.infra.plugins.module_utils.placement import model
    out = []
    if not os.path.isdir(dropin_dir):
        return out
    for entry in sorted(os.listdir(dropin_dir)):
        path = os.path.join(dropin_dir, entry, dropin + ".conf")
        if not entry.endswith(".d") or not os.path.isfile(path):
            continue
        with open(path) as handle:
            settings = model.parse_dropin(handle.read())
        if not settings:
            continue
        item = {"unit": entry[:-len(".d")]}
        if "NUMAPolicy" in settings:
            item["policy"] = settings["NUMAPolicy"]
        if "NUMAMask" in settings:
            item["nodes"] = _numbers(settings["NUMAMask"])
        if "CPUAffinity" in settings:
            item["cpus"] = _numbers(settings["CPUAffinity"])
        if "AllowedCPUs" in settings:
            item["allowed_cpus"] = _numbers(settings["AllowedCPUs"])
        if "AllowedMemoryNodes" in settings:
            item["allowed_memory_nodes"] = _numbers(settings["AllowedMemoryNodes"])
        if dropin != "50-opdbus-numa":
            item["dropin"] = dropin
        out.append(item)
    return out
