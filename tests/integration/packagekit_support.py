# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures and helpers of the PackageKit tests (tests/integration/packagekit).

The daemons are the lab's (``lab/lab.sh up``: a system-type dbus-daemon on a private socket with
polkitd and packagekitd on it, apt backend); the bus address comes from
``DBUS_SYSTEM_BUS_ADDRESS``/``OPDBUS_DBUS_ADDRESS`` (``make test-integration`` sources the lab's
env) or else from the lab's env file. Without PackageKit on that bus the tests are skipped.

Oracles independent of the module: ``dpkg-query`` (what is installed, at which version) and
``apt-cache`` (what apt would pick); neither is used by the module.

Packages: small real ones from Debian's archive (``fortune-mod``, which pulls in ``fortunes-min``
and ``librecode0``; ``sl``; ``hello``; ``tree``; ``cowsay``), and packages of a throwaway local apt
repository (:class:`LocalRepo`, built with dpkg-deb, signed with a throwaway GPG key) for
``latest`` and for trust. Every test puts the machine back as it found it: what it installed is
purged with dpkg (dependencies included), repository files it added are removed, and apt's
lists are refreshed.

Imported by tests/integration/conftest.py (a conftest.py in the subdirectory would shadow it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from btrfs_support import REPO  # importing it also makes the collection importable

MODULES = "ansible_collections.opdbus.infra.plugins.modules.%s"
SERVICE = "org.freedesktop.PackageKit"
DPKG_LOCK = "/var/lib/dpkg/lock-frontend"


def _bus_address():
    for var in ("OPDBUS_DBUS_ADDRESS", "DBUS_SYSTEM_BUS_ADDRESS"):
        if os.environ.get(var):
            return os.environ[var]
    env_file = Path(os.environ.get("OPDBUS_LAB_DIR") or REPO / ".lab") / "env"
    if env_file.is_file():
        out = subprocess.run(["bash", "-c", '. "$1" >/dev/null; printf %s "$OPDBUS_DBUS_ADDRESS"', "lab-env", str(env_file)],
                             check=False, capture_output=True, text=True).stdout
        return out.strip() or None
    return None


def dpkg_state(names):
    """{name: version} of the packages dpkg has installed (status installed), absent names left out."""
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n"] + list(names),
                          capture_output=True, text=True, check=False)
    out = {}
    for line in proc.stdout.splitlines():
        name, version, status = line.split("\t")
        if status == "installed":
            out[name] = version
    return out


def dpkg_known(names):
    """Names dpkg knows in any state (installed, config-files, ...)."""
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Status}\n"] + list(names),
                          capture_output=True, text=True, check=False)
    return sorted(line.split("\t")[0] for line in proc.stdout.splitlines()
                  if line.split("\t")[1] not in ("not-installed", ""))


def dpkg_purge(names):
    names = dpkg_known(names)
    if names:
        proc = subprocess.run(["dpkg", "--purge"] + names, capture_output=True, text=True, check=False,
                              env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        assert proc.returncode == 0, "dpkg --purge %s: %s%s" % (" ".join(names), proc.stdout, proc.stderr)


def all_installed():
    """Every installed package as dpkg says: {name:arch: version}."""
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Package}:${Architecture}\t${Version}\t${db:Status-Status}\n"],
                          capture_output=True, text=True, check=True)
    return dict((line.split("\t")[0], line.split("\t")[1]) for line in proc.stdout.splitlines()
                if line.split("\t")[2] == "installed")


class ModuleRun:
    """One direct run of a module: its JSON result."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        assert "Traceback" not in self.output, "the module printed a traceback:\n%s" % self.output
        try:
            self.result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise AssertionError("no JSON result (rc %s):\nstdout: %s\nstderr: %s" % (proc.returncode, proc.stdout,
                                                                                      proc.stderr))

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)

    def ok(self):
        assert not self.result.get("failed"), "the module failed: %s" % self.result.get("msg")
        return self

    def failed(self):
        assert self.result.get("failed") is True, "the module did not fail: %s" % json.dumps(self.result)
        assert self.result.get("msg")
        return self


class PackageKitLab:
    """The lab's PackageKit: run the modules directly against it, as root or as another user."""

    def __init__(self, address, workdir):
        self.address = address
        self.workdir = Path(workdir)

    def env(self, extra=None):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / ".collections")] + [p for p in sys.path if p])
        env["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        env.update(extra or {})
        return env

    def run(self, module, args, check=False, diff=False, user=None, timeout=900):
        payload = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
        handle, path = tempfile.mkstemp(suffix=".json", prefix="pk-", dir=str(self.workdir))
        with os.fdopen(handle, "w") as fh:
            fh.write(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
        os.chmod(path, 0o644)
        cmd = [sys.executable, "-m", MODULES % module, path]
        if user:
            reach = subprocess.run(["runuser", "-u", user, "--", "test", "-x", sys.executable, "-a", "-r",
                                    str(REPO / "plugins" / "modules" / (module + ".py"))], check=False)
            if reach.returncode != 0:
                pytest.skip("%s cannot reach this checkout (%s) or its venv: a parent directory only root can enter; "
                            "the non-root caller test needs a checkout other users can read" % (user, REPO))
            cmd = ["runuser", "-u", user, "--", "env", "DBUS_SYSTEM_BUS_ADDRESS=%s" % self.address,
                   "PYTHONPATH=%s" % str(REPO / ".collections"), "HOME=/tmp"] + cmd
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=timeout, check=False,
                              cwd=str(self.workdir))
        return ModuleRun(proc)

    def packagekit(self, args, **kwargs):
        return self.run("packagekit", dict(args, bus_address=self.address), **kwargs)

    def info(self, args, **kwargs):
        return self.run("packagekit_info", dict(args, bus_address=self.address), **kwargs)


@pytest.fixture(scope="session")
def pk_address():
    if os.geteuid() != 0:
        pytest.skip("the PackageKit tests need root (they install packages)")
    address = _bus_address()
    if not address:
        pytest.skip("no lab D-Bus: lab/lab.sh up and source its env (DBUS_SYSTEM_BUS_ADDRESS)")
    proc = subprocess.run(["dbus-send", "--bus=%s" % address, "--print-reply=literal", "--dest=org.freedesktop.DBus",
                           "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:%s" % SERVICE],
                          capture_output=True, text=True, check=False)
    if "true" not in proc.stdout:
        pytest.skip("PackageKit is not on the lab's bus %s" % address)
    return address


@pytest.fixture(scope="session")
def pk_workdir():
    """Module argument files; readable by another user (pytest's own tmp dirs are root's only)."""
    path = tempfile.mkdtemp(prefix="opdbus-pk-")
    os.chmod(path, 0o755)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pk(pk_address, pk_workdir):
    return PackageKitLab(pk_address, pk_workdir)


@pytest.fixture
def restore_packages():
    """Purge (with dpkg) the named packages after the test if it left them; assert they were absent before."""
    names = []

    def track(*more):
        before = dpkg_known(more)
        assert not before, "packages the test needs absent are on this machine: %s" % before
        names.extend(more)
        return list(more)
    yield track
    dpkg_purge(names)


# ------------------------------------------------------------------------------------------------
# A throwaway apt repository
# ------------------------------------------------------------------------------------------------

def _deb(workdir, name, version, depends=None, conflicts=None, arch="all"):
    root = Path(tempfile.mkdtemp(prefix="deb-", dir=str(workdir)))
    (root / "DEBIAN").mkdir()
    control = ["Package: %s" % name, "Version: %s" % version, "Architecture: %s" % arch,
               "Maintainer: opdbus tests <tests@opdbus.invalid>", "Section: misc", "Priority: optional"]
    if depends:
        control.append("Depends: %s" % depends)
    if conflicts:
        control.append("Conflicts: %s" % conflicts)
    control.append("Description: opdbus.infra test package %s" % name)
    (root / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
    doc = root / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True)
    (doc / "version").write_text("%s %s\n" % (name, version))
    out = Path(workdir) / ("%s_%s_%s.deb" % (name, version, arch))
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(out)], check=True,
                   capture_output=True)
    shutil.rmtree(str(root))
    return out, control


class LocalRepo:
    """A flat apt repository in a temporary directory, added to apt's sources while in use.

    ``signed=True``: a throwaway GPG key signs InRelease and the source names it (signed-by);
    ``signed=False``: no signature at all, the source says ``allow-insecure=yes`` (its packages are
    untrusted for apt and PackageKit).
    """

    def __init__(self, signed=True):
        self.tag = secrets.token_hex(3)
        self.dir = Path(tempfile.mkdtemp(prefix="opdbus-apt-"))
        os.chmod(str(self.dir), 0o755)
        self.signed = signed
        self.packages = []
        self.source = Path("/etc/apt/sources.list.d/opdbus-test-%s.list" % self.tag)
        self.key = self.dir / "key.gpg"
        self.gnupg = None

    def add(self, name, version, **kwargs):
        path, control = _deb(self.dir, name, version, **kwargs)
        data = path.read_bytes()
        entry = control[:-1] + ["Filename: ./%s" % path.name, "Size: %d" % len(data),
                                "SHA256: %s" % hashlib.sha256(data).hexdigest(), control[-1]]
        self.packages = [p for p in self.packages if not (p[0] == name and p[1] == version)]
        self.packages.append((name, version, "\n".join(entry) + "\n"))
        return self

    def publish(self):
        """Write Packages, Release (and InRelease) for the packages added so far."""
        body = "\n".join(p[2] for p in self.packages)
        (self.dir / "Packages").write_text(body)
        with gzip.open(str(self.dir / "Packages.gz"), "wb") as fh:
            fh.write(body.encode())
        lines = ["Origin: opdbus-test", "Label: opdbus-test", "Suite: opdbus-test", "Codename: opdbus-test",
                 "Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime()), "SHA256:"]
        for fname in ("Packages", "Packages.gz"):
            data = (self.dir / fname).read_bytes()
            lines.append(" %s %d %s" % (hashlib.sha256(data).hexdigest(), len(data), fname))
        (self.dir / "Release").write_text("\n".join(lines) + "\n")
        if self.signed:
            self._sign()
        return self

    def _gpg(self, *args):
        return subprocess.run(["gpg", "--batch", "--homedir", self.gnupg, "--pinentry-mode", "loopback",
                               "--passphrase", ""] + list(args), check=True, capture_output=True)

    def _sign(self):
        if self.gnupg is None:
            self.gnupg = tempfile.mkdtemp(prefix="opdbus-gnupg-")
            self._gpg("--quick-gen-key", "opdbus test repo <repo-%s@opdbus.invalid>" % self.tag, "ed25519", "sign",
                      "never")
            self.key.write_bytes(self._gpg("--export").stdout)
            os.chmod(str(self.key), 0o644)
        inrelease = self.dir / "InRelease"
        if inrelease.exists():
            inrelease.unlink()
        self._gpg("--clearsign", "-o", str(inrelease), str(self.dir / "Release"))

    def enable(self):
        opts = "signed-by=%s" % self.key if self.signed else "allow-insecure=yes"
        self.source.write_text("deb [%s] file:%s ./\n" % (opts, self.dir))
        return self

    def remove(self):
        if self.source.exists():
            self.source.unlink()
        shutil.rmtree(str(self.dir), ignore_errors=True)
        if self.gnupg:
            subprocess.run(["gpgconf", "--homedir", self.gnupg, "--kill", "all"], capture_output=True, check=False)
            shutil.rmtree(self.gnupg, ignore_errors=True)


def apt_update_lists():
    """apt-get update (the test's own oracle tool) so apt's view matches the sources again."""
    subprocess.run(["apt-get", "-q", "update"], capture_output=True, check=False, timeout=600)


@pytest.fixture
def local_repo():
    """Make LocalRepo objects; each is removed afterwards, and its packages purged."""
    made = []

    def make(signed=True):
        if signed and not shutil.which("gpg"):
            pytest.skip("gpg is not installed (it signs the throwaway repository)")
        repo = LocalRepo(signed=signed)
        made.append(repo)
        return repo
    yield make
    for repo in made:
        dpkg_purge(sorted(set(p[0] for p in repo.packages)))
        repo.remove()
    if made:
        apt_update_lists()


@contextlib.contextmanager
def dpkg_lock_held(seconds=None):
    """Hold dpkg's frontend lock (an fcntl lock, as apt takes it) in this process; release after `seconds`
    (in a thread) or on leaving the block."""
    fh = open(DPKG_LOCK, "w")
    fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    released = threading.Event()

    def release():
        if not released.is_set():
            released.set()
            fcntl.lockf(fh, fcntl.LOCK_UN)
            fh.close()
    timer = threading.Timer(seconds, release) if seconds else None
    if timer:
        timer.start()
    try:
        yield
    finally:
        if timer:
            timer.cancel()
        release()


@contextlib.contextmanager
def empty_bus(workdir):
    """A bus daemon (the real dbus-daemon) with nothing on it; yields its address; stopped by PID."""
    sock = Path(workdir) / ("bus-%s.sock" % secrets.token_hex(3))
    conf = Path(workdir) / ("bus-%s.conf" % secrets.token_hex(3))
    conf.write_text('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN" '
                    '"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd"><busconfig><type>system</type>'
                    '<listen>unix:path=%s</listen><auth>EXTERNAL</auth><policy context="default">'
                    '<allow user="*"/><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>'
                    '<allow own="*"/></policy></busconfig>' % sock)
    proc = subprocess.Popen(["dbus-daemon", "--config-file=%s" % conf, "--nofork", "--nopidfile"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "dbus-daemon did not start"
            time.sleep(0.05)
        yield "unix:path=%s" % sock
    finally:
        proc.terminate()
        proc.wait(10)
