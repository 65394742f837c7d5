# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One container converged: plan against the backend, act (unless check mode), record each step.

Shared by ``opdbus.infra.lxc_container`` and ``opdbus.infra.privacy_router``. ``Run`` takes anything
with ``params`` (the lxc_container options), ``check_mode`` and ``warn(msg)``: an AnsibleModule, or a
small adapter when another module drives containers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import (
    SPEC_OPTIONS, ValidationError, needs_restart, normalise_spec, spec_changes)
from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import DEFAULT_ENDPOINT


def desired_spec(params):
    raw = dict((key, params.get(key)) for key in SPEC_OPTIONS)
    if raw["network"] is not None:
        raw["network"] = [dict((k, v) for k, v in nic.items()) for nic in raw["network"]]
        for pos, nic in enumerate(raw["network"]):
            if nic.get("type") == "socket" and not nic.get("port"):
                raise ValidationError("network[%d]: a socket interface needs port (the OVS internal port, e.g. priv_wg)" % pos)
    return normalise_spec(raw)


def find_ident(backend, params, spec):
    """The ident of the container the task is about, or None when it does not exist (yet)."""
    if params["backend"] == "lxc":
        return spec["name"] if backend.state(spec["name"]) != "absent" else None
    if spec["id"] is not None:
        return spec["id"] if backend.state(spec["id"]) != "absent" else None
    named = [ct for ct in backend.list() if ct.get("name") == spec["name"]]
    if len(named) > 1:
        raise ValidationError("%d containers are named %s on this node (VMIDs %s): give id"
                              % (len(named), spec["name"], ", ".join(str(ct["id"]) for ct in named)))
    return named[0]["id"] if named else None


def public(spec):
    """The spec as returned and diffed (no None noise)."""
    if spec is None:
        return None
    return dict((k, v) for k, v in spec.items() if v is not None)


class Run:
    """One task: plan, then act (unless check mode), recording each step."""

    def __init__(self, module, backend, spec):
        self.module = module
        self.params = module.params
        self.backend = backend
        self.spec = spec
        self.check = module.check_mode
        self.timeout = self.params["timeout"]
        self.changes = []
        self.restart_required = False
        self.endpoint = self.params["ovsdb"] or DEFAULT_ENDPOINT
        self.ports_done = set()  # ports added (or, in check mode, that would be) by this run

    def step(self, text, func=None, *args):
        self.changes.append(text)
        if not self.check and func is not None:
            return func(*args)
        return None

    def ovs_ports(self, spec, running):
        """Add the OVS ports the container's NICs need now (liblxc backend only)."""
        if self.params["backend"] != "lxc":
            return
        from ansible_collections.opdbus.infra.plugins.module_utils.lxc import ovs_ports
        wanted = [entry for entry in ovs_ports.wanted_ports(spec, running) if entry not in self.ports_done]
        if not wanted:
            return
        missing = ovs_ports.plan(self.endpoint, wanted, timeout=min(self.timeout, 30))
        self.ports_done.update(missing)
        for line in ovs_ports.describe(missing):
            self.changes.append(line)
        if missing and not self.check:
            ovs_ports.apply(self.endpoint, missing, timeout=min(self.timeout, 30))

    def execute(self):
        state = self.params["state"]
        ident = find_ident(self.backend, self.params, self.spec)
        before = self.backend.read(ident) if ident is not None else None
        running = ident is not None and self.backend.state(ident) == "running"
        before_state = "absent" if ident is None else ("running" if running else "stopped")
        if state == "absent":
            if ident is not None:
                if running:
                    self.step("stop", self.backend.stop, ident, self.timeout, True)
                self.step("destroy", self.backend.destroy, ident, self.timeout)
            return ident, before, before_state, None, "absent"

        pending = []  # changed settings a running container takes only at its next start
        if ident is None:
            if not self.spec["template"]:
                raise ValidationError("container %s does not exist; template is needed to create it"
                                      % (self.spec["name"] or self.spec["id"]))
            self.ovs_ports(self.spec, False)
            created = self.step("create from %s" % self.spec["template"], self.backend.create, self.spec, self.timeout)
            if created is not None:
                ident = created
            elif self.params["backend"] == "lxc":
                ident = self.spec["name"]
            else:
                ident = self.spec["id"]
            after = self.backend.read(ident) if not self.check else self.predicted(self.spec)
        else:
            changes = spec_changes(before, self.spec)
            if "unprivileged" in changes:
                raise ValidationError("unprivileged is chosen when a container is created (it is %s); destroy and re-create "
                                      "the container to change it" % before.get("unprivileged"))
            self.ovs_ports(self.spec, False)
            after = before
            if changes:
                self.step("set %s" % ", ".join(sorted(changes)), self.backend.change, ident, changes, self.timeout)
                after = self.backend.read(ident) if not self.check else self.predicted(merged(before, self.spec))
                if running:
                    pending = needs_restart(changes)

        if state == "restarted":
            self.step("restart" if running else "start", self._restart if running else self.backend.start, ident, self.timeout)
            will_run = True
        elif state == "stopped":
            if running:
                self.step("stop", self.backend.stop, ident, self.timeout, True)
            will_run = False
        elif state == "started" and not running:
            self.step("start", self.backend.start, ident, self.timeout)
            will_run = True
        else:  # started and running, or present: the container keeps its run state
            will_run = running
            if pending and self.params["restart_on_change"]:
                self.step("restart (for %s)" % ", ".join(pending), self._restart, ident, self.timeout)
            elif pending:
                self.restart_required = True
                self.module.warn("container %s: %s take effect at its next start (restart_on_change: true restarts it)"
                                 % (self.spec["name"] or ident, ", ".join(pending)))
        if will_run:
            if not self.check and self.changes:
                after = self.backend.read(ident)
            self.ovs_ports(after, True)
        return ident, before, before_state, after, "running" if will_run else "stopped"

    def predicted(self, spec):
        """What read() will return after a real run, as far as it is known before (check mode)."""
        out = dict(spec)
        namer = getattr(self.backend, "default_port", None)
        if out.get("network") and namer is not None:
            out["network"] = [dict(nic, port=nic.get("port") or namer(spec, pos)) for pos, nic in enumerate(out["network"])]
        return out

    def _restart(self, ident, timeout):
        self.backend.stop(ident, timeout, True)
        self.backend.start(ident, timeout)


def merged(before, spec):
    out = dict(before)
    for key, value in spec.items():
        if value is not None and key not in ("template",):
            out[key] = value
    return out
