# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The privacy chain converged: read, plan, apply in a safe order, undo on failure.

Order (each step only when something differs; check mode stops before acting):

1. preflight - the bridge and the uplink port exist, /dev/net/tun exists; nothing is touched before.
2. keys - the gateway's, the WARP hop's (unless supplied) and each client's, made on the host in
   ``key_dir`` (0700, files 0600); the clients' wg-quick files next to them.
3. ports - the hops' internal ports (and netmaker's) on the bridge, one OVSDB transaction.
4. flows - the chain's flows and meters, one OpenFlow bundle, *before* any hop runs, so no hop ever
   runs without its fail-closed flows.
5. containers - created, configured and started through the lxc_container reconciler, in wire order.
6. packages - what each hop needs, installed by the container's own apt (host network, as
   ``lxc-attach -s``), only when missing from its dpkg database.
7. files - configurations, hop scripts, nftables rules and units, written into the root filesystems
   without following links (files.py); units enabled by their multi-user.target.wants link.
8. services - systemd in each container over its private socket: reload when a unit changed,
   restart a hop whose files changed, start one that is not running.
9. health - after a change, wait until every hop is healthy (its container runs, its unit is active,
   the gateway's device answers, the WARP tunnel has a fresh handshake).

Every acting step pushes its undo; a failure (an exception or a chain that does not come up) runs the
undos in reverse: files restored (keys and clients' files made by the failed run removed), services
restarted on them, new containers destroyed, flows and ports put back. Packages installed stay (they
change no behaviour by themselves); keys from earlier runs are never touched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import time

from ansible_collections.opdbus.infra.plugins.module_utils.privacy import files, render
from ansible_collections.opdbus.infra.plugins.module_utils.privacy.config import HOPS, PACKAGES, WIRE_ORDER
from ansible_collections.opdbus.infra.plugins.module_utils import wireguard

WANTS = "/etc/systemd/system/multi-user.target.wants"
RECORD = "config.json"
HOP_NAMES = {"wireguard": "WireGuard gateway", "warp": "WARP tunnel", "xray": "XRay client"}


class ChainError(Exception):
    """A step failed; ``rolled_back`` says whether the undos ran, ``rollback_errors`` what they could not do."""

    def __init__(self, msg, rolled_back=False, rollback_errors=None):
        Exception.__init__(self, msg)
        self.rolled_back = rolled_back
        self.rollback_errors = rollback_errors or []


class _RunAdapter(object):
    """What lxc.reconcile.Run needs from a module."""

    def __init__(self, params, check_mode, warn):
        self.params = params
        self.check_mode = check_mode
        self.warn = warn


def _digest(data):
    return hashlib.sha256(data).hexdigest()[:16]


class Chain(object):
    def __init__(self, cfg, backend, ovsdb, rundir=None, timeout=120, check=False, wait_healthy=90,
                 rollback=True, warn=None, record=None):
        self.cfg = cfg
        self.backend = backend
        self.ovsdb = ovsdb
        self.rundir = rundir
        self.timeout = timeout
        self.check = check
        self.wait_healthy = wait_healthy
        self.rollback_enabled = rollback
        self.warn = warn or (lambda msg: None)
        self.record = record  # the options as given, secrets left out: written to key_dir/config.json
        self.changes = []
        self.undo = []
        self.keys = None
        self.diff_before = {}
        self.diff_after = {}
        self.client_files = {}
        self.uplink_ofport = None
        self.bridge_exists = None
        self.exists = {}       # hop -> the container exists (or will, in check mode)
        self.touched = set()   # hops whose files changed
        self.health = None

    # --------------------------------------------------------------------------------------------
    # helpers
    # --------------------------------------------------------------------------------------------
    def step(self, text, do=None, undo=None):
        self.changes.append(text)
        if self.check or do is None:
            return None
        result = do()
        if undo is not None:
            self.undo.append((text, undo))
        return result

    def _hop(self, hop):
        return self.cfg["containers"]["hops"][hop]

    def _root(self, hop):
        return self.backend.rootfs(self._hop(hop)["name"])

    # --------------------------------------------------------------------------------------------
    # 1. preflight
    # --------------------------------------------------------------------------------------------
    def preflight(self):
        from ansible_collections.opdbus.infra.plugins.module_utils.ovs.bridge import Snapshot
        from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import OvsdbClient
        bridge, uplink = self.cfg["bridge"], self.cfg["sockets"]["uplink_port"]
        with OvsdbClient(self.ovsdb, timeout=min(self.timeout, 30)) as client:
            snap = Snapshot.read(client)
        self.bridge_exists = bridge in snap.bridges
        if self.cfg["state"] == "absent" and not self.bridge_exists:
            return  # nothing of the chain on a bridge that is not there; its containers may still be
        if bridge not in snap.bridges:
            raise ChainError("bridge %s does not exist (OVSDB %s); create it first (role opdbus.infra.ovs_network)"
                             % (bridge, self.ovsdb))
        row = snap.ports_by_name.get(uplink)
        if row is None or row not in snap.bridge_ports(bridge):
            raise ChainError("the uplink port %s is not on bridge %s; attach the NIC first (role opdbus.infra.ovs_network)"
                             % (uplink, bridge))
        iface = snap.port_iface(row) or {}
        ofport = iface.get("ofport")
        if isinstance(ofport, list) or ofport is None or ofport < 1:
            raise ChainError("the uplink port %s has no OpenFlow port number yet (ofport %r)" % (uplink, ofport))
        self.uplink_ofport = ofport
        if self.cfg["state"] == "present" and not os.path.exists("/dev/net/tun"):
            raise ChainError("/dev/net/tun is missing on this host: the WireGuard hops need the tun driver")

    # --------------------------------------------------------------------------------------------
    # 2. keys
    # --------------------------------------------------------------------------------------------
    def _key_file(self, path, what):
        data, _mode = files.read("/", path)
        if data is None:
            return None
        try:
            return wireguard.check_key(data.decode("ascii", "replace").strip(), what)
        except ValueError as exc:
            raise ChainError("%s: %s" % (path, exc))

    def _ensure_key(self, path, what):
        current = self._key_file(path, what)
        if current is not None:
            mode = os.stat(path).st_mode & 0o7777
            if mode != 0o600:
                self.step("chmod 0600 %s (was %04o)" % (path, mode), lambda: os.chmod(path, 0o600),
                          lambda: os.chmod(path, mode))
            return current
        new = wireguard.generate_private()
        self.step("generate %s in %s" % (what, path),
                  lambda: files.write("/", path, (new + "\n").encode("ascii"), 0o600, dir_mode=0o700),
                  lambda: files.remove("/", path))
        return new

    def _key_dir_mode(self, key_dir):
        try:
            mode = os.stat(key_dir).st_mode & 0o7777
        except OSError:
            mode = None
        if mode != 0o700:
            def make():
                parent = os.path.dirname(key_dir)
                if parent and not os.path.isdir(parent):
                    os.makedirs(parent, 0o755)
                files.set_dir_mode("/", key_dir, 0o700)
            self.step("key directory %s: %s" % (key_dir, "create (0700)" if mode is None else "chmod 0700 (was %04o)" % mode), make)

    def _supplied(self, value, path, what, check):
        if value is not None:
            return value
        data, _mode = files.read("/", path)
        if data is None:
            raise ChainError("%s: %s does not exist" % (what, path))
        try:
            return check(data.decode("utf-8", "replace").strip())
        except ValueError as exc:
            raise ChainError("%s (%s): %s" % (what, path, exc))

    def load_keys(self):
        from ansible_collections.opdbus.infra.plugins.module_utils.privacy.config import check_uuid
        cfg, key_dir = self.cfg, self.cfg["key_dir"]
        warp, vps = cfg["warp"], cfg["vps"]
        keys = {"clients": {}}
        keys["warp_peer_public"] = self._supplied(warp["public_key"], warp["public_key_file"], "warp.public_key_file",
                                                  lambda v: wireguard.check_key(v, "the WARP endpoint's public key"))
        keys["vps_id"] = self._supplied(vps["id"], vps["id_file"], "vps.id_file", check_uuid)
        if warp["private_key"] is None and warp["private_key_file"] is not None:
            keys["warp_private"] = self._supplied(None, warp["private_key_file"], "warp.private_key_file",
                                                  lambda v: wireguard.check_key(v, "the WARP private key"))
        self._key_dir_mode(key_dir)
        keys["gateway_private"] = self._ensure_key(key_dir + "/gateway.key", "the gateway's private key")
        if warp["private_key"] is not None:
            keys["warp_private"] = warp["private_key"]
        elif "warp_private" not in keys:
            keys["warp_private"] = self._ensure_key(key_dir + "/warp.key", "the WARP hop's private key")
        for client in cfg["wireguard"]["clients"]:
            if client["public_key"]:
                keys["clients"][client["name"]] = {"private": None, "public": client["public_key"]}
                continue
            private = self._ensure_key("%s/clients/%s.key" % (key_dir, client["name"]),
                                       "the private key of client %s" % client["name"])
            keys["clients"][client["name"]] = {"private": private, "public": wireguard.public_key(private)}
        keys["gateway_public"] = wireguard.public_key(keys["gateway_private"])
        keys["warp_public"] = wireguard.public_key(keys["warp_private"])
        self.keys = keys
        self.shown_keys = render.redacted_keys(keys)
        # the clients' configurations
        for client in cfg["wireguard"]["clients"]:
            text = render.client_config(cfg, keys, client)
            if text is None:
                continue
            path = "%s/clients/%s.conf" % (key_dir, client["name"])
            self.client_files[client["name"]] = path
            self._converge_file("/", path, text, 0o600, True, "host", render.client_config(cfg, self.shown_keys, client))
        if self.record is not None:
            # what opdbus.infra.system_state exports as the role's variables (no secret is in it)
            text = json.dumps(self.record, indent=2, sort_keys=True) + "\n"
            self._converge_file("/", key_dir + "/" + RECORD, text, 0o600, False, "host", text)

    def _converge_file(self, root, path, text, mode, secret, where, shown_text, dir_mode=0o755):
        """Write one file when its bytes or mode differ; returns True when it changes."""
        data = text.encode("utf-8")
        current, current_mode = files.read(root, path) if root is not None else (None, None)
        label = "%s:%s" % (where, path)
        if secret:
            self.diff_before[label] = None if current is None else (
                shown_text if current == data else "(holds secrets; differs, not shown)")
        else:
            self.diff_before[label] = None if current is None else current.decode("utf-8", "replace")
        self.diff_after[label] = shown_text
        if current == data and current_mode == mode:
            return False
        what = "create" if current is None else ("update" if current != data else "chmod %o" % mode)

        def undo():
            if current is None:
                files.remove(root, path)
            else:
                files.write(root, path, current, current_mode)

        self.step("%s %s" % (what, label), lambda: files.write(root, path, data, mode, dir_mode=dir_mode), undo)
        return True

    # --------------------------------------------------------------------------------------------
    # 3. ports
    # --------------------------------------------------------------------------------------------
    def ports(self):
        from ansible_collections.opdbus.infra.plugins.module_utils.ovs import bridge as ovs_bridge
        from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import normalize_bridge
        sockets = self.cfg["sockets"]
        wanted = [{"name": sockets["ports"][hop], "type": "internal", "tag": sockets["vlan"],
                   "ofport_request": sockets["ofports"][hop]} for hop in WIRE_ORDER]
        if self.cfg["netmaker"]["enabled"]:
            wanted.append({"name": self.cfg["netmaker"]["port"], "type": "internal",
                           "ofport_request": self.cfg["netmaker"]["ofport"]})
        desired = normalize_bridge({"name": self.cfg["bridge"], "state": "present", "ports": wanted,
                                    "ports_exclusive": False})
        from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import OvsdbClient
        with OvsdbClient(self.ovsdb, timeout=min(self.timeout, 30)) as client:
            snap = ovs_bridge.Snapshot.read(client)
        existing = set(p["name"] for p in snap.bridge_ports(self.cfg["bridge"]))
        preview = ovs_bridge.converge(desired, self.ovsdb, timeout=min(self.timeout, 30), check_mode=True)
        self.diff_before["ports"] = sorted(p["name"] for p in wanted if p["name"] in existing)
        self.diff_after["ports"] = sorted(p["name"] for p in wanted)
        if not preview["changed"]:
            return
        added = [p["name"] for p in wanted if p["name"] not in existing]
        for line in preview["changes"]:
            self.changes.append("bridge %s: %s" % (self.cfg["bridge"], line))
        if self.check:
            return
        ovs_bridge.converge(desired, self.ovsdb, timeout=min(self.timeout, 30))
        self.undo.append(("ports", lambda: remove_ports(self.ovsdb, self.cfg["bridge"], added, self.timeout)))

    # --------------------------------------------------------------------------------------------
    # 4. flows
    # --------------------------------------------------------------------------------------------
    def flows(self, state="present"):
        from ansible_collections.opdbus.infra.plugins.module_utils.openflow import reconcile as ofr
        of = self.cfg["openflow"]
        target = ofr.target_for(self.cfg["bridge"], rundir=self.rundir)
        before = ofr.gather(target, timeout=min(self.timeout, 30), cookie=of["cookie"])
        lines, meters = render.flows(self.cfg, self.uplink_ofport) if state == "present" else ([], [])
        desired = ofr.normalize_desired({"cookie": of["cookie"], "flows": lines, "meters": meters or None,
                                         "exclusive": True})
        preview = ofr.converge(desired, target, timeout=min(self.timeout, 30), check_mode=True)
        self.diff_before["flows"] = [f["line"] for f in before["flows"]]
        self.diff_after["flows"] = list(preview["after"] or [])
        if not preview["changed"]:
            return
        for line in preview["changes"]:
            self.changes.append("flows: %s" % line)
        if self.check:
            return
        previous = [strip_cookie(f["line"]) for f in before["flows"]]

        def undo():
            back = ofr.normalize_desired({"cookie": of["cookie"], "flows": previous, "exclusive": True})
            ofr.converge(back, target, timeout=min(self.timeout, 30))

        ofr.converge(desired, target, timeout=min(self.timeout, 30))
        self.undo.append(("flows", undo))

    # --------------------------------------------------------------------------------------------
    # 5. containers
    # --------------------------------------------------------------------------------------------
    def container_spec(self, hop):
        h, cfg = self._hop(hop), self.cfg
        nic = {"name": "eth0", "type": "socket", "bridge": cfg["bridge"], "port": cfg["sockets"]["ports"][hop],
               "address": h["address"]}
        if hop == "wireguard":
            nic["gateway"] = cfg["uplink_gateway"]  # the clients' tunnels come in and go back through the uplink
        return {"name": h["name"], "template": cfg["containers"]["template"], "hostname": h["hostname"],
                "cores": h["cores"], "memory_mb": h["memory_mb"], "onboot": True,
                "features": {"tun": hop in ("wireguard", "warp"), "nesting": False, "keyctl": False, "fuse": False},
                "network": [nic]}

    def containers(self):
        from ansible_collections.opdbus.infra.plugins.module_utils.lxc.reconcile import Run
        from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import normalise_spec
        for hop in WIRE_ORDER:
            spec = normalise_spec(self.container_spec(hop))
            params = {"backend": "lxc", "state": "started", "timeout": self.timeout, "ovsdb": self.ovsdb,
                      "restart_on_change": True, "name": spec["name"], "id": None}
            run = Run(_RunAdapter(params, self.check, self.warn), self.backend, spec)
            before_state = self.backend.state(spec["name"])
            before = self.backend.read(spec["name"]) if before_state != "absent" else None
            try:
                run.execute()
            finally:
                for line in run.changes:
                    self.changes.append("container %s (%s): %s" % (spec["name"], HOP_NAMES[hop], line))
                if not self.check and run.changes:
                    self.undo.append(("container %s" % spec["name"], self._container_undo(spec["name"], before_state, before)))
            self.exists[hop] = True
            self.diff_before["container " + spec["name"]] = dict(_public(before) or {}, state=before_state)
            self.diff_after["container " + spec["name"]] = dict(_public(spec), state="running")

    def _container_undo(self, name, before_state, before):
        from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import spec_changes

        def undo():
            if before_state == "absent":
                if self.backend.state(name) == "running":
                    self.backend.stop(name, self.timeout, True)
                if self.backend.state(name) != "absent":
                    self.backend.destroy(name, self.timeout)
                return
            now = self.backend.read(name)
            wanted = dict((k, v) for k, v in before.items() if k not in ("name", "id", "template"))
            back = spec_changes(now, dict(wanted, name=name, id=None, template=None))
            running = self.backend.state(name) == "running"
            if back:
                self.backend.change(name, back, self.timeout)
            if before_state == "stopped" and running:
                self.backend.stop(name, self.timeout, True)
            elif before_state == "running" and (back or not running):
                if running:
                    self.backend.stop(name, self.timeout, True)
                self.backend.start(name, self.timeout)
        return undo

    # --------------------------------------------------------------------------------------------
    # 6. packages
    # --------------------------------------------------------------------------------------------
    def packages(self):
        for hop in WIRE_ORDER:
            name = self._hop(hop)["name"]
            if self.backend.state(name) == "absent":
                missing = list(PACKAGES[hop])
            else:
                have = files.installed_packages(self._root(hop))
                missing = [p for p in PACKAGES[hop] if p not in have]
            if missing:
                self.step("container %s: install %s" % (name, " ".join(missing)),
                          lambda name=name, missing=missing: self._install(name, missing))

    def _install(self, name, missing):
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        argv = ["apt-get", "-q", "-y", "--no-install-recommends", "install"] + missing
        code, out = self.backend.run(name, argv, host_network=True, env=env, with_stderr=True)
        if code != 0:
            code, out = self.backend.run(name, ["apt-get", "-q", "update"], host_network=True, env=env, with_stderr=True)
            if code == 0:
                code, out = self.backend.run(name, argv, host_network=True, env=env, with_stderr=True)
        if code != 0:
            tail = " | ".join(out.strip().splitlines()[-4:])
            raise ChainError("installing %s in %s failed (apt-get exit %s): %s" % (" ".join(missing), name, code, tail))

    # --------------------------------------------------------------------------------------------
    # 7. files, 8. services
    # --------------------------------------------------------------------------------------------
    def hop_files(self):
        real = render.hop_files(self.cfg, self.keys)
        shown = render.hop_files(self.cfg, self.shown_keys)
        # Registered before any file is written, so it runs after they are all restored (undo is LIFO).
        if not self.check:
            self.undo.append(("services", self._services_undo))
        self.units_before = {}
        for hop in WIRE_ORDER:
            name = self._hop(hop)["name"]
            exists = self.backend.state(name) != "absent"
            root = self._root(hop) if exists else None
            self.units_before[hop] = self._unit_state(hop) if exists and self.backend.state(name) == "running" else None
            changed = False
            if root is not None and not self.check:
                files.set_dir_mode(root, render.PRIV_DIR, 0o700)
            for (path, text, mode, secret), (_p, shown_text, _m, _s) in zip(real[hop], shown[hop]):
                changed |= self._converge_file(root, path, text, mode, secret, name, shown_text)
            unit = render.UNITS[hop]
            link = "%s/%s" % (WANTS, unit)
            target = "%s/%s" % (render.UNIT_DIR, unit)
            if root is None or files.readlink(root, link) != target:
                self.step("container %s: enable %s" % (name, unit),
                          lambda root=root, link=link, target=target: files.symlink(root, link, target),
                          lambda root=root, link=link: files.remove(root, link))
                changed = True
            if changed:
                self.touched.add(hop)

    def _unit(self, hop, op, timeout=None):
        """One operation on the hop's unit, by systemd inside the container (see unit_op)."""
        from ansible_collections.opdbus.infra.plugins.module_utils import systemd  # noqa: F401 - loaded before attaching
        from ansible_collections.opdbus.infra.plugins.module_utils.dbus import preload
        preload()
        return self.backend.call_inside(self._hop(hop)["name"], unit_op, op, render.UNITS[hop],
                                        timeout or min(self.timeout, 60))

    def _unit_state(self, hop):
        """ActiveState of the hop's unit ("absent" without a unit file, None when the container does not run)."""
        if self.backend.state(self._hop(hop)["name"]) != "running":
            return None
        return self._unit(hop, "state")

    def services(self):
        for hop in WIRE_ORDER:
            name, unit = self._hop(hop)["name"], render.UNITS[hop]
            state = self.units_before.get(hop)
            if hop in self.touched:
                verb = "restart" if state in ("active", "activating", "reloading") else "start"
            elif state != "active":
                verb = "start"
            else:
                continue
            self.step("container %s: %s %s" % (name, verb, unit), lambda hop=hop: self._restart(hop))

    def _restart(self, hop):
        unit = render.UNITS[hop]
        try:
            state = self._unit(hop, "restart")
        except Exception as exc:  # a failed job and transport errors alike: say which hop
            raise ChainError("%s (%s) in %s did not start: %s" % (unit, HOP_NAMES[hop], self._hop(hop)["name"], exc))
        if state != "active":
            raise ChainError("%s (%s) in %s is %s after its start" % (unit, HOP_NAMES[hop], self._hop(hop)["name"], state))

    def _services_undo(self):
        for hop in WIRE_ORDER:
            name = self._hop(hop)["name"]
            if self.backend.state(name) != "running":
                continue
            before = self.units_before.get(hop)
            if before == "active":
                self._unit(hop, "restart")
            elif hop in self.touched:
                self._unit(hop, "stop")

    # --------------------------------------------------------------------------------------------
    # 9. health
    # --------------------------------------------------------------------------------------------
    def read_health(self):
        out = {}
        now = time.time()
        for hop in HOPS:
            h = self._hop(hop)
            entry = {"container": h["name"], "role": HOP_NAMES[hop], "state": self.backend.state(h["name"]),
                     "unit": render.UNITS[hop], "active": None, "healthy": False, "detail": ""}
            out[hop] = entry
            if entry["state"] != "running":
                entry["detail"] = "container %s" % entry["state"]
                continue
            try:
                entry["active"] = self._unit_state(hop)
            except Exception as exc:  # the container's systemd may still be starting
                entry["detail"] = "systemd: %s" % exc
                continue
            if entry["active"] != "active":
                entry["detail"] = "unit %s" % entry["active"]
                continue
            if hop in ("wireguard", "warp"):
                ifname = self.cfg[hop]["interface"]
                pid = self.backend.init_pid(h["name"])
                try:
                    device = wireguard.get_device(wireguard.socket_path(ifname, "/proc/%d/root" % pid))
                except wireguard.WireGuardError as exc:
                    entry["detail"] = str(exc)
                    continue
                if hop == "wireguard":
                    entry["detail"] = "%s listening on %s, %d clients" % (ifname, device["listen_port"], len(device["peers"]))
                    entry["healthy"] = device["listen_port"] == self.cfg["wireguard"]["listen_port"]
                else:
                    age = wireguard.handshake_age(device["peers"][0], now) if device["peers"] else None
                    entry["handshake_age"] = age
                    entry["healthy"] = age is not None and age <= wireguard.HANDSHAKE_FRESH
                    warp = self.cfg["warp"]
                    down = "tunnel down (no handshake with %s:%d)" % (warp["endpoint_ip"], warp["endpoint_port"])
                    entry["detail"] = "tunnel up, last handshake %ss ago" % age if entry["healthy"] else down
            else:
                entry["healthy"] = True
                entry["detail"] = "proxy to %s:%d" % (self.cfg["vps"]["address"], self.cfg["vps"]["port"])
        self.health = out
        return out

    def wait_for_health(self):
        deadline = time.time() + self.wait_healthy
        while True:
            health = self.read_health()
            bad = [h for h in WIRE_ORDER if not health[h]["healthy"]]
            if not bad:
                return health
            if time.time() >= deadline:
                raise ChainError("the chain did not come up within %ss: %s" % (
                    self.wait_healthy, "; ".join("%s (%s): %s" % (health[h]["container"], health[h]["role"], health[h]["detail"])
                                                 for h in bad)))
            time.sleep(1)

    # --------------------------------------------------------------------------------------------
    # the whole run
    # --------------------------------------------------------------------------------------------
    def run(self):
        self.preflight()
        if self.cfg["state"] == "absent":
            return self.remove()
        try:
            self.load_keys()
            self.ports()
            self.flows()
            self.containers()
            self.packages()
            self.hop_files()
            self.services()
            if not self.check and self.changes and self.wait_healthy > 0:
                self.wait_for_health()
            elif not self.check or all(self.exists.get(h) and self.backend.state(self._hop(h)["name"]) != "absent"
                                       for h in HOPS):
                self.read_health()
        except Exception as exc:
            if self.check or not self.undo:
                raise
            if not self.rollback_enabled:
                raise ChainError("%s (rollback: false - left as it is)" % exc)
            errors = self.roll_back()
            raise ChainError("%s; rolled back to the previous state%s" % (
                exc, " (with errors: %s)" % "; ".join(errors) if errors else ""), True, errors)
        return self

    def roll_back(self):
        errors = []
        while self.undo:
            what, func = self.undo.pop()
            try:
                func()
            except Exception as exc:  # keep undoing the rest
                errors.append("%s: %s" % (what, exc))
        return errors

    def remove(self):
        """state=absent: the hops' containers destroyed, the chain's flows and ports removed (keys kept)."""
        for hop in reversed(WIRE_ORDER):
            name = self._hop(hop)["name"]
            state = self.backend.state(name)
            self.diff_before["container " + name] = {"state": state}
            self.diff_after["container " + name] = {"state": "absent"}
            if state == "running":
                self.step("container %s: stop" % name, lambda name=name: self.backend.stop(name, self.timeout, True))
            if state != "absent":
                self.step("container %s: destroy" % name, lambda name=name: self.backend.destroy(name, self.timeout))
        if not self.bridge_exists:
            return self
        self.flows(state="absent")
        from ansible_collections.opdbus.infra.plugins.module_utils.ovs.bridge import Snapshot
        from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import OvsdbClient
        with OvsdbClient(self.ovsdb, timeout=min(self.timeout, 30)) as client:
            snap = Snapshot.read(client)
        ours = [self.cfg["sockets"]["ports"][h] for h in WIRE_ORDER]
        if self.cfg["netmaker"]["enabled"]:
            ours.append(self.cfg["netmaker"]["port"])
        present = [p for p in ours if p in snap.ports_by_name]
        if present:
            self.step("bridge %s: remove ports %s" % (self.cfg["bridge"], ", ".join(present)),
                      lambda: remove_ports(self.ovsdb, self.cfg["bridge"], present, self.timeout))
        return self


def unit_op(op, unit, timeout):
    """Runs inside a container (LiblxcBackend.call_inside): systemd over its private socket.

    ``state`` -> ActiveState ("absent" without a unit file); ``restart`` -> reload, restart, ActiveState;
    ``stop`` -> reload, stop, ActiveState."""
    from ansible_collections.opdbus.infra.plugins.module_utils.systemd import UnitNotFound, connect
    with connect(mode="private", timeout=timeout) as sd:
        if op != "state":
            sd.reload(timeout=timeout)
        if op == "restart":
            sd.restart_unit(unit, timeout=timeout)
        elif op == "stop":
            sd.stop_unit(unit, timeout=timeout)
        try:
            path = sd.load_unit(unit)
        except UnitNotFound:
            return "absent"
        return sd.get(path, "ActiveState")


def _public(spec):
    if spec is None:
        return None
    return dict((k, v) for k, v in spec.items() if v is not None and k != "template")


def strip_cookie(line):
    return ",".join(part for part in line.split(",") if not part.startswith("cookie="))


def remove_ports(endpoint, bridge, names, timeout=30):
    """Remove ports (by name) from a bridge in one OVSDB transaction."""
    if not names:
        return
    from ansible_collections.opdbus.infra.plugins.module_utils.ovs.bridge import Snapshot
    from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import OvsdbClient, Uuid, op_mutate, where_uuid
    with OvsdbClient(endpoint, timeout=min(timeout, 30)) as client:
        snap = Snapshot.read(client)
        row = snap.bridges.get(bridge)
        if row is None:
            return
        uuids = [snap.ports_by_name[n]["_uuid"] for n in names if n in snap.ports_by_name]
        if not uuids:
            return
        client.transact([op_mutate("Bridge", [where_uuid(row["_uuid"])], [["ports", "delete", [Uuid(u) for u in uuids]]])])
