# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The package reconciler: desired package states against what PackageKit resolves, one transaction.

1. :func:`parse_specs` validates the requests (``name``, ``name=version``, ``name:arch``,
   ``name:arch=version``) before anything is asked of the daemon; two different versions of one
   package, or a version with ``latest``, are refused.
2. The cache is refreshed when asked and older than ``cache_valid_time`` (PackageKit's own
   ``GetTimeSinceAction``); in check mode it is only reported.
3. One ``Resolve`` (no filter) gives, per name, the installed versions and apt's candidate.
4. The plan: the package ids to install (``present``/``latest``; an installed package with a newer
   candidate is installed at that version, which apt does as an upgrade) or to remove (``absent``).
5. The plan runs as one ``InstallPackages`` or ``RemovePackages`` transaction, always simulated
   first (``SIMULATE``): in check mode that is the answer; in a real run it names the installed
   versions the transaction will replace (read before they go), then the transaction runs for real.
   The ``Package`` signals of the (simulated) transaction are the changes reported, dependencies
   included, and the diff; an action is named from the versions (Debian order), because apt's
   backend reports a real upgrade as ``installing``.

Nothing here knows Ansible: :class:`Packages` takes a transport and plain parameters, returns a
plain dict, and raises :class:`ValidationError` or the transport's errors.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import platform
import re
import time

from ansible_collections.opdbus.infra.plugins.module_utils.packagekit import (
    ROLE_REFRESH_CACHE, PackageId, PackageKitLocked)
from ansible_collections.opdbus.infra.plugins.module_utils.packages.version import compare as compare_versions

STATES = ("present", "absent", "latest")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]*$")
ARCH_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
VERSION_RE = re.compile(r"^[A-Za-z0-9.+~:_-]+$")
MACHINE_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "i386", "i386": "i386", "armv7l": "armhf",
                "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64"}
LOCK_RETRY_SECONDS = 2.0


class ValidationError(ValueError):
    """The request is not valid; nothing was asked of PackageKit."""


class Spec:
    """One requested package: name, arch (or None) and version (or None), and the text it came from."""

    __slots__ = ("name", "arch", "version", "text")

    def __init__(self, name, arch=None, version=None, text=None):
        self.name = name
        self.arch = arch
        self.version = version
        self.text = text or name

    def __repr__(self):
        return "Spec(%s)" % self.text


def parse_spec(text):
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("empty package name")
    text = text.strip()
    name, sep, version = text.partition("=")
    if sep and not version:
        raise ValidationError("%r: a version is expected after '='" % text)
    name, sep, arch = name.partition(":")
    if sep and not arch:
        raise ValidationError("%r: an architecture is expected after ':'" % text)
    if not NAME_RE.match(name):
        raise ValidationError("%r is not a valid package name" % name)
    if arch and not ARCH_RE.match(arch):
        raise ValidationError("%r is not a valid architecture (in %r)" % (arch, text))
    if version and not VERSION_RE.match(version):
        raise ValidationError("%r is not a valid version (in %r)" % (version, text))
    return Spec(name, arch or None, version or None, text)


def parse_specs(names, state):
    """Validated, de-duplicated specs; conflicting requests raise :class:`ValidationError`."""
    if state not in STATES:
        raise ValidationError("state must be one of %s, not %r" % (", ".join(STATES), state))
    specs = []
    seen = {}
    for text in names or ():
        spec = parse_spec(text)
        if spec.version and state == "latest":
            raise ValidationError("%r: a version cannot be combined with state=latest" % spec.text)
        key = (spec.name, spec.arch)
        other = seen.get(key)
        if other is not None:
            if other.version != spec.version:
                raise ValidationError("conflicting requests for %s: %r and %r" % (spec.name, other.text, spec.text))
            continue
        seen[key] = spec
        specs.append(spec)
    return specs


def native_arch():
    return MACHINE_ARCH.get(platform.machine(), platform.machine())


def label(pkg_id):
    return "%s=%s" % (pkg_id.name, pkg_id.version)


class Resolved:
    """What Resolve said about one name: installed ids and available ids (apt's candidates)."""

    def __init__(self):
        self.installed = []
        self.available = []

    @staticmethod
    def _add(where, pkg_id):
        if all(p.key() != pkg_id.key() for p in where):
            where.append(pkg_id)

    def add(self, package):
        if package.info == "installed":
            self._add(self.installed, package.id)
        elif package.info == "available":
            self._add(self.available, package.id)


def resolve(pk, names, **kwargs):
    out = dict((name, Resolved()) for name in names)
    if not names:
        return out
    result = pk.resolve(sorted(set(names)), filters=("none",), **kwargs)
    for package in result.packages:
        out.setdefault(package.name, Resolved()).add(package)
    return out


def _pick_arch(ids, arch, native):
    """The ids of the requested arch, else those of the native arch or ``all``, else all of them."""
    if arch:
        return [p for p in ids if p.arch == arch]
    preferred = [p for p in ids if p.arch in (native, "all")]
    return preferred or list(ids)


class Packages:
    """Reconcile package states through a :class:`~packagekit.PackageKit` transport."""

    def __init__(self, pk, check_mode=False, timeout=None, lock_timeout=0, native=None, clock=time.monotonic,
                 sleep=time.sleep):
        self.pk = pk
        self.check_mode = check_mode
        self.timeout = timeout
        self.lock_timeout = lock_timeout or 0
        self.native = native or native_arch()
        self.clock = clock
        self.sleep = sleep

    # -- retries on dpkg's lock ---------------------------------------------------------------------
    def _call(self, func, *args, **kwargs):
        if self.timeout:
            kwargs["timeout"] = self.timeout
        deadline = self.clock() + self.lock_timeout
        while True:
            try:
                return func(*args, **kwargs)
            except PackageKitLocked as exc:
                if self.clock() + LOCK_RETRY_SECONDS > deadline:
                    if self.lock_timeout:
                        raise PackageKitLocked("%s; still locked after lock_timeout=%s s" % (exc, self.lock_timeout),
                                               code=exc.code, details=exc.details)
                    raise
                self.sleep(LOCK_RETRY_SECONDS)

    # -- the cache ----------------------------------------------------------------------------------
    def cache(self, update_cache, cache_valid_time):
        """Whether the cache is (or in check mode would be) refreshed, and its age before."""
        if not update_cache:
            return False, None
        if cache_valid_time:
            # for backends that refresh on their own when the lists are older (apt's does not)
            self.pk.hints = ["cache-age=%d" % cache_valid_time]
        age = self.pk.time_since(ROLE_REFRESH_CACHE)
        if cache_valid_time and age is not None and age <= cache_valid_time:
            return False, age
        if not self.check_mode:
            self._call(self.pk.refresh_cache, False)
        return True, age

    # -- the plan -----------------------------------------------------------------------------------
    def plan(self, specs, state, resolved):
        """(ids to install, ids to remove, texts of the specs no package source knows)."""
        install, remove, unknown = [], [], []
        for spec in specs:
            found = resolved.get(spec.name) or Resolved()
            installed = _pick_arch(found.installed, spec.arch, self.native) if spec.arch else found.installed
            available = _pick_arch(found.available, spec.arch, self.native)
            if state == "absent":
                remove.extend(p for p in installed if spec.version is None or p.version == spec.version)
                continue
            if spec.version is not None:
                if any(p.version == spec.version for p in installed):
                    continue
                match = [p for p in available if p.version == spec.version]
                if match:
                    install.append(match[0])
                    continue
                arch = spec.arch or (installed[0].arch if installed else None) or (available[0].arch if available else None)
                if arch is None:
                    unknown.append(spec.text)
                    continue
                # not the candidate: ask for that version by id (apt looks it up among all versions)
                install.append(PackageId(spec.name, spec.version, arch, ""))
                continue
            if installed and state == "present":
                continue
            if not available:
                if not installed:
                    unknown.append(spec.text)
                continue
            if installed:
                # latest: apt's candidate where it is not the installed version
                have = set(p.version for p in installed)
                newer = [p for p in available if p.version not in have and p.arch in set(i.arch for i in installed)]
                install.extend(newer[:1])
                continue
            install.append(available[0])
        return install, remove, unknown

    # -- the whole run ------------------------------------------------------------------------------
    def run(self, names, state="present", update_cache=False, cache_valid_time=0, allow_untrusted=False,
            autoremove=False):
        specs = parse_specs(names, state)
        cache_updated, cache_age = self.cache(update_cache, cache_valid_time)
        result = {"changed": False, "cache_updated": cache_updated, "cache_age": cache_age, "packages": [],
                  "installed": [], "removed": [], "updated": [], "restart_required": False, "restart": None,
                  "diff": {"before": {}, "after": {}}}
        if cache_updated:
            result["changed"] = True
        if not specs:
            return result
        resolved = self._call(resolve, self.pk, [s.name for s in specs])
        install, remove, unknown = self.plan(specs, state, resolved)
        if unknown:
            raise ValidationError("no package %s in the package sources PackageKit knows (misspelt, or the cache is "
                                  "stale: update_cache=true)" % ", ".join(sorted(unknown)))
        if not install and not remove:
            return result
        pinned = any(s.version for s in specs)

        def transaction(simulate):
            if install:
                return self._call(self.pk.install, install, simulate=simulate, only_trusted=not allow_untrusted,
                                  allow_downgrade=pinned)
            return self._call(self.pk.remove, remove, simulate=simulate, allow_deps=True, autoremove=autoremove)

        # Always simulated first: in check mode that is the answer; otherwise it says which installed
        # versions the real transaction replaces (dependencies included), read before they go.
        simulated = transaction(True)
        predicted = simulated.actions()
        if not predicted:
            return result
        before = self._installed_before(resolved, predicted)
        tx = simulated if self.check_mode else transaction(False)
        self._report(result, tx, before, predicted)
        return result

    def _installed_before(self, resolved, predicted):
        """{(name, arch): installed version} for the requested names and every package the
        simulation would update, downgrade or reinstall."""
        before = {}
        for found in resolved.values():
            for pkg_id in found.installed:
                before[pkg_id.name, pkg_id.arch] = pkg_id.version
        missing = sorted(set(p.name for action, p in predicted.values()
                             if action not in ("install", "remove") and (p.name, p.arch) not in before))
        if missing:
            for found in self._call(resolve, self.pk, missing).values():
                for pkg_id in found.installed:
                    before[pkg_id.name, pkg_id.arch] = pkg_id.version
        return before

    @staticmethod
    def _action(action, pkg_id, old, predicted):
        """The action by the versions (a real apt transaction reports an upgrade as "installing")."""
        if action == "remove":
            return action
        if old is None:
            guess = predicted.get(pkg_id.key(), (action,))[0]
            return guess if guess not in ("update", "downgrade", "reinstall") else action
        order = compare_versions(pkg_id.version, old)
        return "update" if order > 0 else "downgrade" if order < 0 else "reinstall"

    def _report(self, result, tx, before, predicted):
        # The real transaction's Package signals are progress reports; PackageKit's apt backend has been seen to
        # finish a quick removal without any. It finished successfully, so what the simulation listed happened.
        actions = tx.actions() or predicted
        keys = {}
        for action, pkg_id in actions.values():
            keys.setdefault(pkg_id.name, set()).add(pkg_id.arch)
        packages = []
        diff_before, diff_after = {}, {}
        for action, pkg_id in sorted(actions.values(), key=lambda a: (a[1].name, a[1].arch, a[0])):
            key = pkg_id.name if len(keys[pkg_id.name]) == 1 else "%s:%s" % (pkg_id.name, pkg_id.arch)
            old = before.get((pkg_id.name, pkg_id.arch))
            action = self._action(action, pkg_id, old, predicted)
            entry = {"name": pkg_id.name, "version": pkg_id.version, "arch": pkg_id.arch, "action": action,
                     "id": str(pkg_id)}
            if action == "remove":
                diff_before[key] = pkg_id.version
                diff_after[key] = None
                result["removed"].append(label(pkg_id))
            else:
                entry["previous_version"] = old
                diff_before[key] = old
                diff_after[key] = pkg_id.version
                result["updated" if old else "installed"].append(label(pkg_id))
            packages.append(entry)
        result["packages"] = packages
        result["diff"] = {"before": diff_before, "after": diff_after}
        result["changed"] = bool(packages) or result["changed"]
        restart = tx.restart()
        result["restart"] = restart
        result["restart_required"] = restart is not None
