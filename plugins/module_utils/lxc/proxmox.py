# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``proxmox`` backend of lxc_container: Proxmox VE containers through its REST API (proxmoxer).

The container ident is the VMID (int). The spec of :mod:`base` maps onto the PVE container config as follows:

=============== ==================================================================================
spec            PVE config
=============== ==================================================================================
hostname        ``hostname`` (at creation ``name`` when no hostname is given)
cores           ``cores``
memory_mb       ``memory``
swap_mb         ``swap``
rootfs_gb       ``rootfs`` (``<storage>:<N>`` at creation, ``size=NG`` read back, growth via ``resize``)
onboot          ``onboot`` (0/1)
unprivileged    ``unprivileged`` (creation only)
features        ``features`` (``nesting``, ``keyctl``, ``fuse``); ``tun`` is a ``dev[n]: /dev/net/tun`` passthrough
network         ``net0..netN`` (``name``, ``bridge``, ``ip``/``ip6``, ``gw``/``gw6``, ``hwaddr``, ``type=veth``)
mounts          ``mp0..mpN`` (``<source>,mp=<target>[,ro=1]``)
template        ``ostemplate`` (creation only)
=============== ==================================================================================

Updates send one ``PUT .../config`` with only the keys that changed, guarded by the config digest read just
before. Every call that starts a worker task waits for it (``.../tasks/{upid}/status``) and quotes the end of
its log when it fails.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
import time

from ansible.module_utils.basic import env_fallback

from .base import (Backend, LxcError, NotFound, Timeout, ValidationError, needs_restart, normalise_spec)

try:
    from proxmoxer import ProxmoxAPI, ResourceException
    from proxmoxer.core import AuthenticationError
    HAS_PROXMOXER = True
    PROXMOXER_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without proxmoxer
    ProxmoxAPI = None
    HAS_PROXMOXER = False
    PROXMOXER_IMPORT_ERROR = exc

    class ResourceException(Exception):
        """Stand-in so that except clauses compile without proxmoxer."""

    class AuthenticationError(Exception):
        """Stand-in so that except clauses compile without proxmoxer."""

try:
    import requests.exceptions as requests_exceptions
    REQUEST_ERRORS = (requests_exceptions.RequestException,)
except ImportError:  # pragma: no cover - requests comes with proxmoxer's https backend
    requests_exceptions = None
    REQUEST_ERRORS = ()


CONNECTION_SPEC = dict(
    api_host=dict(type="str", fallback=(env_fallback, ["PROXMOX_HOST"])),
    api_port=dict(type="int", default=8006),
    api_user=dict(type="str", fallback=(env_fallback, ["PROXMOX_USER"])),
    api_password=dict(type="str", no_log=True, fallback=(env_fallback, ["PROXMOX_PASSWORD"])),
    api_token_id=dict(type="str", fallback=(env_fallback, ["PROXMOX_TOKEN_ID"])),
    api_token_secret=dict(type="str", no_log=True, fallback=(env_fallback, ["PROXMOX_TOKEN_SECRET"])),
    validate_certs=dict(type="bool", default=True),
    node=dict(type="str", fallback=(env_fallback, ["PROXMOX_NODE"])),
)

TUN_DEVICE = "/dev/net/tun"
# features PVE knows and the spec manages (tun is a device, not a PVE feature)
PVE_FEATURES = ("nesting", "keyctl", "fuse")
LOCK_RE = re.compile(r"CT is locked \(([^)]*)\)")
DIGEST_MESSAGE = "detected modified configuration"
NOT_FOUND_RE = re.compile(r"\AConfiguration file '[^']*' does not exist")
SIZE_RE = re.compile(r"\A(\d+(?:\.\d+)?)([KMGT]?)\Z")
STORAGE_SIZE_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9_.-]*:\d+(\.\d+)?\Z")
INDEXED_RE = re.compile(r"\A(net|mp|dev)(\d+)\Z")
LOG_LINES = 10
POLL_FIRST = 0.05
POLL_MAX = 2.0


def _split(value):
    """A PVE property string as a list of (key, value); a bare part has key None."""
    out = []
    for part in str(value or "").split(","):
        if not part:
            continue
        key, sep, val = part.partition("=")
        out.append((key, val) if sep else (None, part))
    return out


def _gib(size):
    """Whole GiB (rounded down) of a PVE size string such as ``8G`` or ``10752M``; None if unreadable."""
    match = SIZE_RE.match(str(size or ""))
    if not match:
        return None
    factor = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}[match.group(2)]
    return int(float(match.group(1)) * factor) // 1024 ** 3


def _flag(value):
    return str(value) in ("1", "true", "True", "yes", "on")


def _indexed(config, prefix):
    """[(index, key)] of ``prefix<n>`` keys in a config, by index."""
    keys = []
    for key in config:
        match = INDEXED_RE.match(key)
        if match and match.group(1) == prefix:
            keys.append((int(match.group(2)), key))
    return sorted(keys)


def nic_to_pve(nic, hwaddr=None):
    """The ``net[n]`` value of a spec NIC (``hwaddr``: the current one to keep when the spec does not ask for one)."""
    parts = ["name=%s" % nic["name"]]
    if nic.get("bridge"):
        parts.append("bridge=%s" % nic["bridge"])
    address = nic.get("address")
    if address in ("dhcp", "manual"):
        parts.append("ip=%s" % address)
    elif address:
        six = ipaddress.ip_interface(address).version == 6
        parts.append("%s=%s" % ("ip6" if six else "ip", address))
        if nic.get("gateway"):
            parts.append("%s=%s" % ("gw6" if six else "gw", nic["gateway"]))
    mac = nic.get("hwaddr") or hwaddr
    if mac:
        parts.append("hwaddr=%s" % mac.upper())
    parts.append("type=veth")
    return ",".join(parts)


def nic_from_pve(value):
    data = dict(_split(value))
    address, gateway = data.get("ip"), data.get("gw")
    if not address and data.get("ip6"):
        address, gateway = data.get("ip6"), data.get("gw6")
    if address in ("auto",):
        address = "dhcp"
    return {"name": data.get("name"), "type": "veth", "bridge": data.get("bridge"), "address": address or None,
            "gateway": gateway or None, "hwaddr": data["hwaddr"].lower() if data.get("hwaddr") else None, "port": None}


def mount_to_pve(mount):
    value = "%s,mp=%s" % (mount["source"], mount["target"])
    return value + (",ro=1" if mount["readonly"] else "")


def mount_from_pve(value):
    parts = _split(value)
    data = dict(parts)
    source = data.get(None) or data.get("volume")
    return {"source": source, "target": (data.get("mp") or "").rstrip("/") or data.get("mp"), "readonly": _flag(data.get("ro", "0"))}


def _tun_keys(config):
    """The dev[n] keys passing /dev/net/tun through."""
    keys = []
    for dummy, key in _indexed(config, "dev"):
        data = dict(_split(config[key]))
        if (data.get(None) or data.get("path")) == TUN_DEVICE:
            keys.append(key)
    return keys


def features_to_pve(features, current=None):
    """The ``features`` value for the managed features, keeping the unmanaged ones (mount=, mknod=...) of ``current``."""
    kept = [(key, val) for key, val in _split(current) if key is not None and key not in PVE_FEATURES]
    parts = ["%s=1" % key for key in PVE_FEATURES if features.get(key)]
    return ",".join(parts + ["%s=%s" % item for item in kept])


def config_to_spec(vmid, config):
    """The normalised spec of a PVE container config."""
    features = dict((key, val) for key, val in _split(config.get("features")) if key is not None)
    tun = bool(_tun_keys(config))
    rootfs = dict(_split(config.get("rootfs")))
    spec = {
        "name": config.get("hostname"), "id": int(vmid), "hostname": config.get("hostname"), "template": None,
        "cores": int(config["cores"]) if config.get("cores") is not None else None,
        "memory_mb": int(config.get("memory", 512)), "swap_mb": int(config.get("swap", 512)),
        "rootfs_gb": _gib(rootfs.get("size")) or None,
        "onboot": _flag(config.get("onboot", 0)), "unprivileged": _flag(config.get("unprivileged", 0)),
        "features": dict((key, _flag(features.get(key, "0"))) for key in PVE_FEATURES),
        "network": [nic_from_pve(config[key]) for dummy, key in _indexed(config, "net")],
        "mounts": [mount_from_pve(config[key]) for dummy, key in _indexed(config, "mp")],
    }
    spec["features"]["tun"] = tun
    return normalise_spec(spec)


def check_spec(spec):
    """normalise_spec, then refuse what a Proxmox container cannot be (nothing is sent before this passes)."""
    spec = normalise_spec(spec)
    for pos, nic in enumerate(spec["network"] or []):
        if nic["type"] == "socket":
            raise ValidationError(
                "network[%d] (%s): type socket (an OVS internal port moved into the container) is a liblxc feature; "
                "Proxmox VE containers only have veth interfaces (net[n]). Use type veth with bridge %s, or the lxc backend"
                % (pos, nic["name"], nic["bridge"]))
        if nic["port"] is not None:
            raise ValidationError(
                "network[%d] (%s): Proxmox VE names the host side of a container interface itself (veth<VMID>i<N>); "
                "leave port unset with the proxmox backend" % (pos, nic["name"]))
    for pos, mount in enumerate(spec["mounts"] or []):
        if STORAGE_SIZE_RE.match(mount["source"]):
            raise ValidationError(
                "mounts[%d].source %r would allocate a new volume on every run; create the volume once and give its "
                "volume id (local-lvm:vm-100-disk-1) or a host path" % (pos, mount["source"]))
    return spec


def _backoff(delay):
    return min(delay * 1.5, POLL_MAX)


class ProxmoxBackend(Backend):
    """Containers of one Proxmox VE node, through its API."""

    name = "proxmox"

    def __init__(self, api_host, node, api_user=None, api_password=None, api_token_id=None, api_token_secret=None, api_port=8006,
                 validate_certs=True, ca_path=None, timeout=30, api=None, storage="local-lvm"):
        self.api_host = api_host
        self.api_port = api_port
        self.node = node
        self.api_user = api_user
        self.api_password = api_password
        self.api_token_id = api_token_id
        self.api_token_secret = api_token_secret
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = timeout
        self.storage = storage
        self._api = api

    # --- connection ---------------------------------------------------------------------------------------------

    @property
    def where(self):
        return "%s:%s" % (self.api_host, self.api_port)

    @property
    def api(self):
        """The ProxmoxAPI, built on first use (a password login is a request)."""
        if self._api is None:
            if not self.api_host or not self.node:
                raise LxcError("the proxmox backend needs api_host and node (or PROXMOX_HOST and PROXMOX_NODE)")
            if not HAS_PROXMOXER:
                raise LxcError("the proxmox backend needs the Python library proxmoxer (pip install proxmoxer requests): %s"
                               % PROXMOXER_IMPORT_ERROR)
            kwargs = {"host": self.api_host, "port": self.api_port, "backend": "https", "timeout": self.timeout,
                      "verify_ssl": self.ca_path or self.validate_certs}
            if self.api_token_id and self.api_token_secret:
                user, sep, token = self.api_token_id.partition("!")
                if not sep:
                    user, token = self.api_user, self.api_token_id
                if not user:
                    raise LxcError("api_token_id %r: give it as user@realm!tokenid, or set api_user" % self.api_token_id)
                kwargs.update(user=user, token_name=token, token_value=self.api_token_secret)
            elif self.api_user and self.api_password:
                kwargs.update(user=self.api_user, password=self.api_password)
            else:
                raise LxcError("Proxmox VE at %s: give api_token_id and api_token_secret, or api_user and api_password" % self.where)
            self._api = self._guard("log in", lambda: ProxmoxAPI(**kwargs))
        return self._api

    def _guard(self, what, call):
        """Run ``call``, turning connection failures into LxcError naming the host (API errors pass through)."""
        try:
            return call()
        except AuthenticationError as exc:
            raise LxcError("Proxmox VE at %s: authentication failed for %s (%s); check api_user/api_password"
                           % (self.where, self.api_user, exc)) from None
        except REQUEST_ERRORS as exc:
            if isinstance(exc, requests_exceptions.SSLError):
                raise LxcError("Proxmox VE at %s: %s: the TLS certificate could not be verified (%s); give the CA "
                               "certificate (ca_path) or set validate_certs false" % (self.where, what, exc)) from None
            if isinstance(exc, requests_exceptions.Timeout):
                raise Timeout("Proxmox VE at %s: %s: no answer within %s s (%s); a write may still have been carried out"
                              % (self.where, what, self.timeout, exc)) from None
            if isinstance(exc, requests_exceptions.ConnectionError):
                raise LxcError("Proxmox VE at %s: %s: cannot connect (%s); check api_host and api_port"
                               % (self.where, what, exc)) from None
            raise LxcError("Proxmox VE at %s: %s: %s" % (self.where, what, exc)) from None

    @staticmethod
    def _describe(what, exc):
        text = "%s failed: HTTP %s: %s" % (what, exc.status_code, exc.content)
        if exc.errors:
            errors = exc.errors if isinstance(exc.errors, dict) else {"": exc.errors}
            text += " (%s)" % "; ".join("%s: %s" % (key, str(val).strip()) if key else str(val) for key, val in sorted(errors.items()))
        return text

    def _call(self, method, path, deadline=None, **params):
        """One API request below /nodes/{node}/, with retries on a CT lock (500 "CT is locked" or 409) until ``deadline``."""
        deadline = deadline if deadline is not None else time.time() + self.timeout
        full = path if path.startswith("/") else "/nodes/%s/%s" % (self.node, path)
        what = "%s %s" % (method, full)
        resource = self.api
        for part in full.strip("/").split("/"):
            resource = resource(part)
        call = getattr(resource, method.lower())
        params = dict((key, int(val) if isinstance(val, bool) else val) for key, val in params.items())
        delay = POLL_FIRST
        while True:
            try:
                return self._guard(what, lambda: call(**params))
            except ResourceException as exc:
                text = str(exc.content or "")
                lock = LOCK_RE.search(text)
                if lock or exc.status_code == 409:
                    if time.time() + delay < deadline:
                        time.sleep(delay)
                        delay = _backoff(delay)
                        continue
                    raise LxcError("%s: the container is locked (%s) and stayed locked until the time-out; wait for "
                                   "the operation holding the lock to finish (or 'pct unlock' it if it is stale). %s"
                                   % (what, lock.group(1) if lock else "HTTP 409", self._describe(what, exc))) from None
                if NOT_FOUND_RE.search(text):
                    raise NotFound("%s: %s" % (what, text)) from None
                if DIGEST_MESSAGE in text:
                    raise LxcError("%s: the container's configuration was changed by someone else since it was read; "
                                   "nothing was applied, run again. %s" % (what, self._describe(what, exc))) from None
                raise LxcError(self._describe(what, exc)) from None

    # --- tasks ---------------------------------------------------------------------------------------------------

    def _log_tail(self, upid):
        try:
            lines = self._call("GET", "tasks/%s/log" % upid, start=0, limit=100000)
        except LxcError:
            return []
        return [str(line.get("t", "")) for line in lines or []][-LOG_LINES:]

    def _wait(self, upid, deadline, what):
        """Wait for a worker task to stop; LxcError quoting its log when it fails, Timeout when it runs past ``deadline``."""
        delay = POLL_FIRST
        while True:
            status = self._call("GET", "tasks/%s/status" % upid, deadline=deadline)
            if status.get("status") == "stopped":
                if status.get("exitstatus") == "OK":
                    return status
                raise LxcError("%s failed: task %s ended with %r; its log ends with:\n%s"
                               % (what, upid, status.get("exitstatus"), "\n".join(self._log_tail(upid))))
            if time.time() >= deadline:
                raise Timeout("%s: task %s still running after the time-out; it continues on %s. Its log ends with:\n%s"
                              % (what, upid, self.node, "\n".join(self._log_tail(upid))))
            time.sleep(max(0.0, min(delay, deadline - time.time())))
            delay = _backoff(delay)

    def _task(self, method, path, seconds, what, **params):
        deadline = time.time() + (seconds if seconds is not None else self.timeout)
        upid = self._call(method, path, deadline=deadline, **params)
        if isinstance(upid, str) and upid.startswith("UPID:"):
            return self._wait(upid, deadline, what)
        return None

    # --- reading -------------------------------------------------------------------------------------------------

    def _vmid(self, ident):
        if isinstance(ident, bool):
            raise ValidationError("the proxmox backend identifies containers by VMID (an integer), got %r" % (ident,))
        try:
            vmid = int(ident)
        except (TypeError, ValueError):
            raise ValidationError("the proxmox backend identifies containers by VMID (an integer), got %r" % (ident,)) from None
        if vmid < 100 or vmid > 999999999:
            raise ValidationError("VMID must be between 100 and 999999999, got %d" % vmid)
        return vmid

    def _config(self, vmid, deadline=None):
        return self._call("GET", "lxc/%d/config" % vmid, deadline=deadline)

    def list(self):
        return [{"name": entry.get("name"), "id": int(entry["vmid"]), "state": entry.get("status")}
                for entry in self._call("GET", "lxc")]

    def state(self, ident):
        vmid = self._vmid(ident)
        try:
            status = self._call("GET", "lxc/%d/status/current" % vmid)
        except NotFound:
            return "absent"
        return "running" if status.get("status") == "running" else "stopped"

    def read(self, ident):
        vmid = self._vmid(ident)
        return config_to_spec(vmid, self._config(vmid))

    def addresses(self, ident):
        vmid = self._vmid(ident)
        if self.state(vmid) != "running":
            return {}
        out = {}
        for entry in self._call("GET", "lxc/%d/interfaces" % vmid) or []:
            if entry.get("name") == "lo":
                continue
            out[entry.get("name")] = ["%s/%s" % (addr["ip-address"], addr["prefix"]) for addr in entry.get("ip-addresses") or []]
        return out

    # --- writing -------------------------------------------------------------------------------------------------

    def create(self, spec, timeout):
        spec = check_spec(spec)
        if not spec["template"]:
            raise ValidationError("creating a Proxmox VE container needs template (a volume id such as "
                                  "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst)")
        deadline = time.time() + timeout
        vmid = spec["id"]
        if vmid is None:
            vmid = int(self._call("GET", "/cluster/nextid", deadline=deadline))
        params = {"vmid": vmid, "ostemplate": spec["template"], "hostname": spec["hostname"] or spec["name"]}
        if params["hostname"] is None:
            del params["hostname"]
        for key, pve in (("cores", "cores"), ("memory_mb", "memory"), ("swap_mb", "swap"), ("onboot", "onboot"),
                         ("unprivileged", "unprivileged")):
            if spec[key] is not None:
                params[pve] = spec[key]
        if spec["rootfs_gb"] is not None:
            params["rootfs"] = "%s:%d" % (self.storage, spec["rootfs_gb"])
        else:
            params["storage"] = self.storage
        if spec["features"] is not None:
            value = features_to_pve(spec["features"])
            if value:
                params["features"] = value
            if spec["features"]["tun"]:
                params["dev0"] = TUN_DEVICE
        for index, nic in enumerate(spec["network"] or []):
            params["net%d" % index] = nic_to_pve(nic)
        for index, mount in enumerate(spec["mounts"] or []):
            params["mp%d" % index] = mount_to_pve(mount)
        self._task("POST", "lxc", deadline - time.time(), "creating CT %d" % vmid, **params)
        return vmid

    def change(self, ident, changes, timeout):
        vmid = self._vmid(ident)
        if "unprivileged" in changes:
            raise ValidationError("CT %d: unprivileged can only be chosen at creation (it is %s); recreate the container"
                                  % (vmid, changes["unprivileged"][0]))
        if "template" in changes:
            raise ValidationError("CT %d: template is only used at creation" % vmid)
        desired = check_spec(dict((key, new) for key, (dummy, new) in changes.items()))
        deadline = time.time() + timeout
        config = self._config(vmid, deadline)
        current = config_to_spec(vmid, config)
        params, deletes = self._config_changes(config, current, desired)
        grow = None
        if desired["rootfs_gb"] is not None and desired["rootfs_gb"] != current["rootfs_gb"]:
            if current["rootfs_gb"] is not None and desired["rootfs_gb"] < current["rootfs_gb"]:
                raise ValidationError("CT %d: rootfs_gb %d is smaller than the current %d GiB; Proxmox VE cannot shrink a "
                                      "container's root filesystem (back it up and restore it to a smaller disk instead)"
                                      % (vmid, desired["rootfs_gb"], current["rootfs_gb"]))
            grow = desired["rootfs_gb"]
        if params or deletes:
            if deletes:
                params["delete"] = ",".join(deletes)
            self._put_config(vmid, config, params, deadline)
        if grow is not None:
            self._task("PUT", "lxc/%d/resize" % vmid, deadline - time.time(), "growing the root filesystem of CT %d" % vmid,
                       disk="rootfs", size="%dG" % grow)
        return needs_restart(changes)

    def _put_config(self, vmid, config, params, deadline):
        """PUT config with the digest of ``config``; on a lock, retry with a fresh digest if only the lock changed."""
        digest = config["digest"]
        delay = POLL_FIRST
        base = dict((key, val) for key, val in config.items() if key not in ("lock", "digest"))
        while True:
            try:
                return self._call("PUT", "lxc/%d/config" % vmid, deadline=time.time(), digest=digest, **params)
            except LxcError as exc:
                if "is locked" not in str(exc) or time.time() + delay >= deadline:
                    raise
            time.sleep(delay)
            delay = _backoff(delay)
            fresh = self._config(vmid, deadline)
            if dict((key, val) for key, val in fresh.items() if key not in ("lock", "digest")) != base:
                raise LxcError("PUT /nodes/%s/lxc/%d/config: the container's configuration was changed by someone else while "
                               "it was locked (%s); nothing was applied, run again" % (self.node, vmid, fresh.get("lock") or "lock"))
            digest = fresh["digest"]

    @staticmethod
    def _config_changes(config, current, desired):
        """(params, deletes) of a config PUT that makes the managed keys of ``desired`` true."""
        params, deletes = {}, []
        if desired["hostname"] is not None and desired["hostname"] != current["hostname"]:
            params["hostname"] = desired["hostname"]
        for key, pve in (("cores", "cores"), ("memory_mb", "memory"), ("swap_mb", "swap"), ("onboot", "onboot")):
            if desired[key] is not None and desired[key] != current[key]:
                params[pve] = int(desired[key])
        if desired["features"] is not None:
            value = features_to_pve(desired["features"], config.get("features"))
            if set(_split(value)) != set(_split(config.get("features"))):
                if value:
                    params["features"] = value
                elif "features" in config:
                    deletes.append("features")
            tun_keys = _tun_keys(config)
            if desired["features"]["tun"] and not tun_keys:
                used = set(index for index, dummy in _indexed(config, "dev"))
                params["dev%d" % min(set(range(len(used) + 1)) - used)] = TUN_DEVICE
            elif not desired["features"]["tun"]:
                deletes.extend(tun_keys)
        if desired["network"] is not None:
            existing = _indexed(config, "net")
            # an interface keeps its MAC address by name, wherever it moves in the list
            macs = dict((current_nic["name"], current_nic["hwaddr"]) for current_nic in current["network"])
            for index, nic in enumerate(desired["network"]):
                key = "net%d" % index
                old = nic_from_pve(config[key]) if key in config else None
                value = nic_to_pve(nic, hwaddr=None if nic["hwaddr"] else macs.get(nic["name"]))
                if old is None or nic_from_pve(value) != old:
                    params[key] = value
            deletes.extend(key for index, key in existing if index >= len(desired["network"]))
        if desired["mounts"] is not None:
            existing = _indexed(config, "mp")
            for index, mount in enumerate(desired["mounts"]):
                key = "mp%d" % index
                if key not in config or mount_from_pve(config[key]) != mount:
                    params[key] = mount_to_pve(mount)
            deletes.extend(key for index, key in existing if index >= len(desired["mounts"]))
        return params, deletes

    def start(self, ident, timeout):
        vmid = self._vmid(ident)
        if self.state(vmid) == "running":
            return
        self._task("POST", "lxc/%d/status/start" % vmid, timeout, "starting CT %d" % vmid)

    def stop(self, ident, timeout, force=False):
        vmid = self._vmid(ident)
        state = self.state(vmid)
        if state == "absent":
            raise NotFound("CT %d does not exist on node %s" % (vmid, self.node))
        if state == "stopped":
            return
        deadline = time.time() + timeout
        try:
            self._task("POST", "lxc/%d/status/shutdown" % vmid, timeout, "shutting down CT %d" % vmid, timeout=max(1, int(timeout)))
        except LxcError as exc:
            if not force:
                raise LxcError("%s\nCT %d did not shut down cleanly within %s s; use force to stop it hard" % (exc, vmid, timeout)) from None
            if self.state(vmid) != "running":
                return
            self._task("POST", "lxc/%d/status/stop" % vmid, max(self.timeout, deadline - time.time()), "stopping CT %d" % vmid,
                       **{"overrule-shutdown": 1})

    def destroy(self, ident, timeout):
        vmid = self._vmid(ident)
        state = self.state(vmid)
        if state == "absent":
            raise NotFound("CT %d does not exist on node %s" % (vmid, self.node))
        if state == "running":
            raise LxcError("CT %d is running; stop it before destroying it (destroy never stops a container itself)" % vmid)
        self._task("DELETE", "lxc/%d" % vmid, timeout, "destroying CT %d" % vmid, purge=1)
