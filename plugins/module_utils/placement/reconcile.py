# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The numa_policy reconciler: read the service and its drop-in, plan, apply, read back.

Plan steps, in the order they are applied:

1. ``write`` / ``remove`` the drop-in ``<dropin_dir>/<unit>.d/<dropin>.conf`` (the whole file is owned);
2. ``reload``: systemd's ``Reload`` (daemon-reload) so the unit's settings are the drop-in's;
3. ``live``: when the unit is active and its AllowedCPUs/AllowedMemoryNodes differ from the wanted
   ones, ``SetUnitProperties(runtime=true)`` (a runtime drop-in in /run/systemd/system.control,
   gone at reboot, when the persistent one takes over) so the running cgroup gets them now. The
   exec settings (NUMAPolicy, NUMAMask, CPUAffinity) cannot be set at runtime on a unit that is
   not transient: systemd 252 answers ``PropertyReadOnly``;
4. ``restart`` (only with ``restart``): ``RestartUnit`` and the wait for its ``JobRemoved``, when the
   unit is active and its main process does not run with the wanted exec settings (read back from
   /proc: the drop-in changed, or an earlier run left the restart pending).

A failure while applying puts the previous drop-in back and reloads again, then re-raises.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import tempfile
import time

from ansible_collections.opdbus.infra.plugins.module_utils import numa
from ansible_collections.opdbus.infra.plugins.module_utils.placement import model
from ansible_collections.opdbus.infra.plugins.module_utils.systemd import (
    SERVICE_IFACE, mask_bytes, mask_numbers, unit_name)

ACTIVE_STATES = ("active", "reloading", "activating", "deactivating")
DEFAULT_DROPIN = "50-opdbus-numa"


def _read_text(path):
    try:
        with open(path, "r") as fh:
            return fh.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def _write_atomic(path, text):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    handle, tmp = tempfile.mkstemp(prefix=".opdbus-", dir=directory)
    try:
        with os.fdopen(handle, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _remove(path):
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
    try:
        os.rmdir(os.path.dirname(path))  # only when nothing else is in the unit's .d directory
    except OSError:
        pass


class NumaPolicyReconciler:
    """One service's placement on one systemd (a :class:`systemd.Systemd`) and one topology."""

    def __init__(self, systemd, topology, dropin_dir="/etc/systemd/system", proc_root="/proc",
                 cgroup_root="/sys/fs/cgroup", runtime_dir="/run/systemd/system.control", timeout=60.0):
        self.systemd = systemd
        self.topology = topology
        self.dropin_dir = dropin_dir
        self.proc_root = proc_root
        self.cgroup_root = cgroup_root
        self.runtime_dir = runtime_dir
        self.timeout = timeout

    # -- read -------------------------------------------------------------------------------------
    def _runtime_value(self, unit, name):
        """The value of ``name`` in the runtime drop-in SetUnitProperties(runtime=true) writes, None if none."""
        text = _read_text(os.path.join(self.runtime_dir, unit + ".d", "50-%s.conf" % name))
        if text is None:
            return None
        value = ""
        for line in text.splitlines():
            key, sep, rest = line.strip().partition("=")
            if sep and key == name:
                value = numa.format_list(numa.parse_list(rest)) if rest.strip() else ""
        return value

    def effective(self, path):
        """What the unit's main process runs with (None when there is none)."""
        pid = int(self.systemd.get(path, "MainPID", SERVICE_IFACE) or 0)
        if pid <= 0:
            return None
        self._wait_exec(pid)
        status = numa.read_status(pid, self.proc_root)
        if status is None:
            return None
        policy, counts = numa.read_numa_policy(pid, self.proc_root)
        return {
            "main_pid": pid,
            "cpus_allowed_list": status["cpus_allowed_list"],
            "mems_allowed_list": status["mems_allowed_list"],
            "numa_policy": policy,
            "numa_policies": counts,
        }

    def _wait_exec(self, pid):
        """Wait (up to the timeout) until ``pid`` runs its own program, not systemd's forked child.

        A Type=simple service's job is done as soon as systemd has forked; the child sets the memory
        policy and CPU affinity and only then executes the service's binary. Read before that, /proc
        shows systemd's mappings with the default policy. The child still runs PID 1's executable.
        """
        init_exe = self._exe(1)
        if init_exe is None:
            return
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            exe = self._exe(pid)
            if exe is None or exe != init_exe:
                return
            time.sleep(0.02)

    def _exe(self, pid):
        try:
            return os.readlink(os.path.join(self.proc_root, str(pid), "exe"))
        except OSError:
            return None

    def _mismatch(self, want, effective, enforced):
        """Why the running process does not have the wanted exec settings ([] when it has them)."""
        if effective is None:
            return []
        reasons = []
        if want.policy is not None:
            expected = model.expected_numa_maps(want.policy, want.nodes)
            if effective["numa_policy"] != expected:
                reasons.append("memory policy %s, wanted %s" % (effective["numa_policy"], expected))
        if want.cpus is not None:
            expected_cpus = set(want.cpus)
            if enforced and want.allowed_cpus is not None:
                expected_cpus &= set(want.allowed_cpus)
            got = set(numa.parse_list(effective["cpus_allowed_list"] or ""))
            if expected_cpus and got != expected_cpus:
                reasons.append("CPUs %s, wanted %s" % (effective["cpus_allowed_list"], numa.format_list(expected_cpus)))
        return reasons

    # -- the whole run ----------------------------------------------------------------------------
    def prepare(self, params):
        """Validate the request against the topology alone (no systemd needed): (unit, dropin, Desired)."""
        unit = unit_name(params["unit"])
        if not unit.endswith(".service"):
            raise model.PlacementError("%s is not a service: NUMA placement applies to .service units" % unit)
        dropin = params.get("dropin") or DEFAULT_DROPIN
        if "/" in dropin or dropin.startswith("."):
            raise model.PlacementError("dropin %r must be a plain file name" % dropin)
        return unit, dropin, model.desired(params, self.topology, unit)

    def run(self, params, check_mode=False, prepared=None):
        """The whole run; ``prepared`` is what :meth:`prepare` returned (computed here when None)."""
        unit, dropin, want = prepared or self.prepare(params)
        version_text, version = self.systemd.version()
        model.check_version(want.settings, version)
        path = self.systemd.load_unit(unit)  # UnitNotFound before anything is touched

        dropin_path = os.path.join(self.dropin_dir, unit + ".d", dropin + ".conf")
        before = _read_text(dropin_path)
        after = model.render_dropin(want.settings)
        unit_props = self.systemd.properties(path)
        active = unit_props.get("ActiveState") in ACTIVE_STATES
        service_props = self.systemd.properties(path, SERVICE_IFACE)
        enforced = numa.cpuset_on_unified(self.cgroup_root)

        changes = []
        if before != after:
            changes.append({"action": "remove" if after is None else "write", "path": dropin_path})
            changes.append({"action": "reload"})
        live = []
        wanted = want.as_dict()
        for name in model.CGROUP_SETTINGS:
            target = wanted.get(name, "")
            current = numa.format_list(mask_numbers(service_props.get(name)))
            runtime = self._runtime_value(unit, name)
            # A runtime value left by an earlier live step would outlive the drop-in until reboot.
            if (active and current != target) or (runtime is not None and runtime != target):
                live.append((name, target))
        if live:
            changes.append({"action": "live", "properties": dict(live)})
        old_exec = dict((k, v) for k, v in model.parse_dropin(before).items() if k in model.EXEC_SETTINGS)
        new_exec = dict((k, v) for k, v in want.settings if k in model.EXEC_SETTINGS)
        effective = self.effective(path) if active else None
        reasons = []
        if active:
            if old_exec != new_exec:
                reasons.append("exec settings change: %s -> %s" % (old_exec or "none", new_exec or "none"))
            reasons += self._mismatch(want, effective, enforced)
        if reasons and params.get("restart"):
            changes.append({"action": "restart", "unit": unit, "why": "; ".join(reasons)})

        warnings = []
        if any(name in model.CGROUP_SETTINGS for name, _value in want.settings) and not enforced:
            warnings.append("AllowedCPUs=/AllowedMemoryNodes= are recorded but not enforced on this target: systemd "
                            "applies them only through the cpuset controller of a unified (cgroup v2) hierarchy, "
                            "and %s has none (cgroup v1 or hybrid)" % self.cgroup_root)
        result = {
            "changed": bool(changes),
            "changes": changes,
            "unit": unit,
            "dropin_path": dropin_path,
            "settings": want.as_dict(),
            "policy": want.policy,
            "nodes": want.nodes,
            "cpus": want.cpus,
            "strategy": want.strategy,
            "systemd_version": version_text,
            "bus": self.systemd.via,
            "active": active,
            "cpuset_enforced": enforced,
            "restarted": False,
            "pending_restart": bool(reasons),
            "effective": effective,
            "warnings": warnings,
            "diff": {"before": before or "", "after": after or "",
                     "before_header": dropin_path, "after_header": dropin_path},
        }
        if check_mode or not changes:
            return result

        self._apply(unit, dropin_path, before, after, live, changes)
        if any(c["action"] == "restart" for c in changes):
            result["restarted"] = True
        if active:
            result["effective"] = self.effective(path)
            result["pending_restart"] = bool((old_exec != new_exec and not result["restarted"]) or
                                             self._mismatch(want, result["effective"], enforced))
        return result

    # -- apply ------------------------------------------------------------------------------------
    def _apply(self, unit, dropin_path, before, after, live, changes):
        actions = [c["action"] for c in changes]
        wrote = False
        try:
            if "write" in actions:
                _write_atomic(dropin_path, after)
                wrote = True
            elif "remove" in actions:
                _remove(dropin_path)
                wrote = True
            if "reload" in actions:
                self.systemd.reload(timeout=self.timeout)
            if live:
                props = [(name, "ay", mask_bytes(numa.parse_list(value))) for name, value in live]
                self.systemd.set_unit_properties(unit, props, runtime=True)
        except Exception:
            if wrote:
                self._undo(dropin_path, before)
            raise
        if "restart" in actions:
            self.systemd.restart_unit(unit, timeout=self.timeout)

    def _undo(self, dropin_path, before):
        try:
            if before is None:
                _remove(dropin_path)
            else:
                _write_atomic(dropin_path, before)
            self.systemd.reload(timeout=self.timeout)
        except Exception:  # pylint: disable=broad-except
            pass  # the original error is the one to report
