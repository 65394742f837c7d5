# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PackageKit transport: transactions of ``org.freedesktop.PackageKit`` over D-Bus.

One :class:`PackageKit` per bus connection. Every operation is one transaction: ``CreateTransaction``,
``SetHints`` (non-interactive, C locale, optional cache age), then the method, with the transaction's
signals (``Package``, ``ErrorCode``, ``RequireRestart``, ``Finished``) collected from before the call
until ``Finished``. The result is a :class:`TransactionResult`; an ``ErrorCode`` or a failed exit
becomes a :class:`PackageKitError` whose ``code`` is PackageKit's error name (``cannot-get-lock``,
``not-authorized``, ...).

The enums are PackageKit's (``lib/packagekit-glib2/pk-enum.h``, 1.2.6); bitfields (filters,
transaction flags) are ``1 << enum value``. Package ids are ``name;version;arch;data``.

Nothing here knows Ansible; the D-Bus plumbing is :mod:`dbus` of this collection.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.opdbus.infra.plugins.module_utils.dbus import (
    Bus, DBusAccessDenied, DBusError, DBusSignalTimeout, DBusTimeout, DBusUnavailable)

SERVICE = "org.freedesktop.PackageKit"
PATH = "/org/freedesktop/PackageKit"
IFACE = "org.freedesktop.PackageKit"
TX_IFACE = "org.freedesktop.PackageKit.Transaction"

# PkFilterEnum
FILTERS = ("unknown", "none", "installed", "~installed", "devel", "~devel", "gui", "~gui", "free", "~free",
           "visible", "~visible", "supported", "~supported", "basename", "~basename", "newest", "~newest",
           "arch", "~arch", "source", "~source", "collections", "~collections", "application", "~application",
           "downloaded", "~downloaded")
# PkTransactionFlagEnum
TRANSACTION_FLAGS = ("none", "only-trusted", "simulate", "only-download", "allow-reinstall", "just-reinstall",
                     "allow-downgrade")
# PkInfoEnum
INFO = ("unknown", "installed", "available", "low", "enhancement", "normal", "bugfix", "important", "security",
        "blocked", "downloading", "updating", "installing", "removing", "cleanup", "obsoleting",
        "collection-installed", "collection-available", "finished", "reinstalling", "downgrading", "preparing",
        "decompressing", "untrusted", "trusted", "unavailable")
# PkExitEnum
EXIT = ("unknown", "success", "failed", "cancelled", "key-required", "eula-required", "killed",
        "media-change-required", "need-untrusted", "cancelled-priority", "skip-transaction", "repair-required")
# PkRestartEnum
RESTART = ("unknown", "none", "application", "session", "system", "security-session", "security-system")
# PkRoleEnum (the ones used here)
ROLE_REFRESH_CACHE = 13
# PkErrorEnum
ERRORS = ("unknown", "out-of-memory", "no-network", "not-supported", "internal-error", "gpg-failure",
          "package-id-invalid", "package-not-installed", "package-not-found", "package-already-installed",
          "package-download-failed", "group-not-found", "group-list-invalid", "dep-resolution-failed",
          "filter-invalid", "create-thread-failed", "transaction-error", "transaction-cancelled", "no-cache",
          "repo-not-found", "cannot-remove-system-package", "process-kill", "failed-initialization",
          "failed-finalise", "failed-config-parsing", "cannot-cancel", "cannot-get-lock", "no-packages-to-update",
          "cannot-write-repo-config", "local-install-failed", "bad-gpg-signature", "missing-gpg-signature",
          "cannot-install-source-package", "repo-configuration-error", "no-license-agreement", "file-conflicts",
          "package-conflicts", "repo-not-available", "invalid-package-file", "package-install-blocked",
          "package-corrupt", "all-packages-already-installed", "file-not-found", "no-more-mirrors-to-try",
          "no-distro-upgrade-data", "incompatible-architecture", "no-space-on-device", "media-change-required",
          "not-authorized", "update-not-found", "cannot-install-repo-unsigned", "cannot-update-repo-unsigned",
          "cannot-get-filelist", "cannot-get-requires", "cannot-disable-repository", "restricted-download",
          "package-failed-to-configure", "package-failed-to-build", "package-failed-to-install",
          "package-failed-to-remove", "update-failed-due-to-running-process", "package-database-changed",
          "provide-type-not-supported", "install-root-invalid", "cannot-fetch-sources", "cancelled-priority",
          "unfinished-transaction", "lock-required", "repo-already-set")

# Package infos that mean "this transaction changes this package", and what they are called here.
ACTIONS = {"installing": "install", "removing": "remove", "updating": "update", "reinstalling": "reinstall",
           "downgrading": "downgrade", "obsoleting": "obsolete"}
DEFAULT_HINTS = ("interactive=false", "background=false", "locale=C")
NEVER = 0xFFFFFFFF  # GetTimeSinceAction when the action was never done (G_MAXUINT)


def _name(table, value):
    try:
        return table[value]
    except (IndexError, TypeError):
        return "unknown(%s)" % value


def info_name(value):
    """A Package signal's info: the low 16 bits are the PkInfoEnum (GetUpdates puts the update's
    severity in the high ones)."""
    return _name(INFO, value & 0xFFFF)


def bitfield(table, names):
    """``names`` (an iterable of enum names of ``table``) as PackageKit's bitfield."""
    value = 0
    for name in names:
        value |= 1 << table.index(name)
    return value


def filter_value(names):
    return bitfield(FILTERS, names or ("none",))


def flags_value(only_trusted=False, simulate=False, allow_reinstall=False, allow_downgrade=False):
    names = []
    if only_trusted:
        names.append("only-trusted")
    if simulate:
        names.append("simulate")
    if allow_reinstall:
        names.append("allow-reinstall")
    if allow_downgrade:
        names.append("allow-downgrade")
    return bitfield(TRANSACTION_FLAGS, names)


class PackageId:
    """``name;version;arch;data`` split (data: the repository, or ``installed``/``auto:...`` states)."""

    __slots__ = ("name", "version", "arch", "data")

    def __init__(self, name, version="", arch="", data=""):
        self.name = name
        self.version = version
        self.arch = arch
        self.data = data

    @classmethod
    def parse(cls, text):
        parts = text.split(";")
        if len(parts) != 4 or not parts[0]:
            raise PackageKitError("not a PackageKit package id: %r" % (text,), code="package-id-invalid")
        return cls(*parts)

    def __str__(self):
        return ";".join((self.name, self.version, self.arch, self.data))

    def key(self):
        return (self.name, self.version, self.arch)

    def __repr__(self):
        return "PackageId(%s)" % self


class Package:
    """One ``Package`` signal: its info name, package id and summary."""

    __slots__ = ("info", "id", "summary")

    def __init__(self, info, package_id, summary=""):
        self.info = info
        self.id = package_id if isinstance(package_id, PackageId) else PackageId.parse(package_id)
        self.summary = summary

    @property
    def name(self):
        return self.id.name

    @property
    def version(self):
        return self.id.version

    @property
    def arch(self):
        return self.id.arch

    def __repr__(self):
        return "Package(%s, %s)" % (self.info, self.id)


class TransactionResult:
    """What a finished transaction said: packages, errors, restarts, exit and runtime (ms)."""

    def __init__(self, role, path):
        self.role = role
        self.path = path
        self.packages = []
        self.errors = []
        self.restarts = []
        self.exit = None
        self.runtime_ms = None

    def add(self, signal):
        args = signal.args
        if signal.name == "Package":
            self.packages.append(Package(info_name(args[0]), args[1], args[2]))
        elif signal.name == "Packages":  # newer daemons batch them
            for info, package_id, summary in args[0]:
                self.packages.append(Package(info_name(info), package_id, summary))
        elif signal.name == "ErrorCode":
            self.errors.append((_name(ERRORS, args[0]), args[1]))
        elif signal.name == "RequireRestart":
            self.restarts.append((_name(RESTART, args[0]), args[1]))
        elif signal.name == "Finished":
            self.exit = _name(EXIT, args[0])
            self.runtime_ms = args[1]

    def actions(self):
        """The changes the transaction made (or, simulated, would make): {id key: (action, PackageId)}.

        A package seen with several infos (a real run goes preparing, decompressing, installing,
        finished) counts with its action info; the first such info wins.
        """
        out = {}
        for pkg in self.packages:
            action = ACTIONS.get(pkg.info)
            if action and pkg.id.key() not in out:
                out[pkg.id.key()] = (action, pkg.id)
        return out

    def restart(self):
        """The most severe restart asked for (``system``, ``session``, ...) or None."""
        worst = None
        for kind, dummy in self.restarts:
            if kind in ("none", "unknown") or kind not in RESTART:
                continue
            if worst is None or RESTART.index(kind) > RESTART.index(worst):
                worst = kind
        return worst


class PackageKitError(Exception):
    """A transaction failed; ``code`` is PackageKit's error name (or None), ``details`` its text."""

    def __init__(self, msg, code=None, details=None, result=None):
        super(PackageKitError, self).__init__(msg)
        self.code = code
        self.details = details
        self.result = result


class PackageKitUnavailable(PackageKitError):
    """No bus, or PackageKit is not on it."""


class PackageKitDenied(PackageKitError):
    """polkit (or the bus policy) refused the caller."""


class PackageKitTimeout(PackageKitError):
    """The transaction did not finish in time."""


class PackageKitLocked(PackageKitError):
    """The package database is locked by another process (``cannot-get-lock``)."""


def _clean(details):
    return " ".join(line.strip() for line in (details or "").splitlines() if line.strip())


class PackageKit:
    """The PackageKit daemon on a bus (``address`` None: the system bus, as libdbus finds it)."""

    def __init__(self, address=None, timeout=600.0, call_timeout=60.0, dbus_module=None, bus=None):
        self.address = address
        self.timeout = float(timeout)
        where = address or "the system bus"
        try:
            self.bus = bus or Bus(address, timeout=call_timeout, dbus_module=dbus_module)
        except DBusUnavailable as exc:
            raise PackageKitUnavailable(str(exc), code=exc.name)
        self.where = where
        self.hints = []  # extra SetHints of every transaction (e.g. cache-age=N)

    def close(self):
        self.bus.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- the daemon ---------------------------------------------------------------------------------
    def available(self):
        """Whether PackageKit is on the bus now or can be started by it."""
        try:
            return self.bus.available(SERVICE)
        except DBusError:
            return False

    def properties(self):
        try:
            return self.bus.get_all(SERVICE, PATH, IFACE)
        except DBusError as exc:
            raise self._map(exc)

    def time_since(self, role):
        """Seconds since PackageKit last did ``role`` (None if never)."""
        try:
            value = self.bus.call(SERVICE, PATH, IFACE, "GetTimeSinceAction", role, signature="u")
        except DBusError as exc:
            raise self._map(exc)
        return None if value >= NEVER else value

    def _map(self, exc):
        if isinstance(exc, DBusUnavailable):
            return PackageKitUnavailable("PackageKit (%s) is not available on %s: %s" % (SERVICE, self.where, exc),
                                         code=exc.name)
        if isinstance(exc, DBusAccessDenied):
            return PackageKitDenied(str(exc), code="not-authorized")
        if isinstance(exc, DBusTimeout):
            return PackageKitTimeout(str(exc), code=exc.name)
        return PackageKitError(str(exc), code=exc.name)

    # -- transactions -------------------------------------------------------------------------------
    def transaction(self, method, args, signature, hints=(), timeout=None):
        """Run one transaction; its :class:`TransactionResult`. Raises :class:`PackageKitError`."""
        timeout = float(timeout or self.timeout)
        try:
            path = self.bus.call(SERVICE, PATH, IFACE, "CreateTransaction")
            self.bus.call(SERVICE, path, TX_IFACE, "SetHints", list(DEFAULT_HINTS) + self.hints + list(hints),
                          signature="as")
            result = TransactionResult(method, path)

            def start():
                return self.bus.call(SERVICE, path, TX_IFACE, method, *args, signature=signature)

            dummy, signals = self.bus.collect(SERVICE, path, TX_IFACE, ["Finished"], start, timeout=timeout)
        except DBusSignalTimeout as exc:
            seen = ", ".join(sorted(set(s.name for s in exc.signals))) or "no signal"
            cancelled = self._cancel(path)
            raise PackageKitTimeout("PackageKit %s did not finish within %.0f s (timeout option; seen: %s); %s"
                                    % (method, timeout, seen, "cancelled" if cancelled else "could not cancel it"),
                                    code="timeout")
        except DBusError as exc:
            raise self._map(exc)
        for signal in signals:
            result.add(signal)
        if result.errors or result.exit != "success":
            raise self._error(method, result)
        return result

    def _cancel(self, path):
        """Ask PackageKit to cancel a transaction we stop waiting for; whether it accepted."""
        try:
            self.bus.call(SERVICE, path, TX_IFACE, "Cancel")
        except DBusError:
            return False
        return True

    @staticmethod
    def _error(method, result):
        if result.errors:
            code, details = result.errors[0]
        else:
            code, details = None, "exit %s" % result.exit
        text = _clean(details)
        if code == "not-authorized":
            return PackageKitDenied("PackageKit refused %s: not authorized by polkit (%s); run as root or grant the "
                                    "caller the org.freedesktop.packagekit.* actions" % (method, text),
                                    code=code, details=details, result=result)
        if code == "cannot-get-lock":
            return PackageKitLocked("the package database is locked by another process (PackageKit %s: %s)"
                                    % (method, text), code=code, details=details, result=result)
        where = " (%s)" % code if code else ""
        return PackageKitError("PackageKit %s failed%s: %s" % (method, where, text), code=code, details=details,
                               result=result)

    # -- the methods --------------------------------------------------------------------------------
    def resolve(self, names, filters=("none",), **kwargs):
        return self.transaction("Resolve", (filter_value(filters), list(names)), "tas", **kwargs)

    def get_packages(self, filters=("installed",), **kwargs):
        return self.transaction("GetPackages", (filter_value(filters),), "t", **kwargs)

    def get_updates(self, filters=("none",), **kwargs):
        return self.transaction("GetUpdates", (filter_value(filters),), "t", **kwargs)

    def install(self, package_ids, simulate=False, only_trusted=True, allow_downgrade=False, **kwargs):
        flags = flags_value(only_trusted=only_trusted, simulate=simulate, allow_downgrade=allow_downgrade)
        return self.transaction("InstallPackages", (flags, [str(p) for p in package_ids]), "tas", **kwargs)

    def update(self, package_ids, simulate=False, only_trusted=True, **kwargs):
        flags = flags_value(only_trusted=only_trusted, simulate=simulate)
        return self.transaction("UpdatePackages", (flags, [str(p) for p in package_ids]), "tas", **kwargs)

    def remove(self, package_ids, simulate=False, allow_deps=True, autoremove=False, **kwargs):
        flags = flags_value(simulate=simulate)
        return self.transaction("RemovePackages", (flags, [str(p) for p in package_ids], bool(allow_deps),
                                                   bool(autoremove)), "tasbb", **kwargs)

    def refresh_cache(self, force=False, **kwargs):
        return self.transaction("RefreshCache", (bool(force),), "b", **kwargs)
