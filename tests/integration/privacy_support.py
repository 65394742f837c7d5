# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The privacy chain suite's fixture (tests/integration/privacy): the lab's whole op-dbus topology,
built once per session by ``playbooks/site.yml`` with the lab inventory - ovs-br0 with its ports, the
three hops as real LXC containers (Debian bookworm, systemd), and the lab's outside world (client,
WARP endpoint, VPS, internet) from ``lab/lab.sh peers-up``.

Oracles are independent of the module: ``curl`` in the client's namespace, the HTTP server's log
(which address it saw), ``tcpdump`` on the uplink, ``lxc-attach`` (systemctl, files), ``lxc-info``.
The session's first site.yml run records Ansible's log, the --diff output and an audit ledger, so the
secrets test can look for the keys in all three. At the end the chain is removed (state=absent) and
the peers are stopped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "playbooks" / "site.yml"
INVENTORY = REPO / "inventory" / "lab"
LAB_SH = REPO / "lab" / "lab.sh"
# What a client's packet looks like in the clear: to or from "the internet", or from the clients' pool.
CLIENT_FILTER = "ip and (net 198.18.0.0/16 or net 10.200.0.0/24)"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class PrivacyLab(object):
    def __init__(self, env, workdir):
        self.env = env
        self.workdir = Path(workdir)
        self.lxcpath = env["OPDBUS_LXC_PATH"]
        self.client_ns = env.get("OPDBUS_CLIENT_NS", "opdbus-client")
        self.warp_ns = env.get("OPDBUS_WARP_NS", "opdbus-warpep")
        self.www = env.get("OPDBUS_WWW_ADDR", "198.18.0.80")
        self.vps = env.get("OPDBUS_VPS_ADDR", "203.0.113.10")
        self.uplink_if = env.get("OPDBUS_UPLINK_IF", "upl0")
        self.key_dir = Path(env["OPDBUS_LAB_DIR"]) / "privacy"
        self.first = None

    # -- Ansible ---------------------------------------------------------------------------------
    def ansible_env(self, **extra):
        env = dict(os.environ)
        env.update(self.env)
        env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
        env["ANSIBLE_COLLECTIONS_PATH"] = str(REPO / ".collections")
        env["ANSIBLE_FORCE_COLOR"] = "0"
        env["ANSIBLE_NOCOLOR"] = "1"
        venv_bin = REPO / ".venv" / "bin"
        if venv_bin.is_dir():
            env["PATH"] = "%s:%s" % (venv_bin, env.get("PATH", ""))
        env.update(extra)
        return env

    def playbook(self, *args, playbook=SITE, timeout=1800, **extra_env):
        argv = ["ansible-playbook", "-i", str(INVENTORY), str(playbook)] + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=str(REPO),
                              env=self.ansible_env(**extra_env), check=False)
        proc.recap = dict((m.group(1), {"ok": int(m.group(2)), "changed": int(m.group(3)), "failed": int(m.group(5))})
                          for m in RECAP.finditer(proc.stdout))
        return proc

    # -- oracles ---------------------------------------------------------------------------------
    def sh(self, argv, check=True, timeout=60):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check:
            assert proc.returncode == 0, "%s: rc %d\n%s\n%s" % (" ".join(argv), proc.returncode, proc.stdout, proc.stderr)
        return proc

    def fetch(self, seconds=6):
        """(ok, body) of one GET of the internet's page from the client's namespace."""
        proc = self.sh(["ip", "netns", "exec", self.client_ns, "curl", "-sS", "-m", str(seconds),
                        "http://%s/" % self.www], check=False, timeout=seconds + 10)
        return proc.returncode == 0, proc.stdout.strip() or proc.stderr.strip()

    def wait_flowing(self, seconds=150):
        deadline = time.monotonic() + seconds
        last = None
        while time.monotonic() < deadline:
            ok, body = self.fetch()
            if ok:
                return body
            last = body
            time.sleep(2)
        raise AssertionError("no traffic through the chain within %ss (last: %s)" % (seconds, last))

    def ct(self, name, *argv, check=True, timeout=120):
        return self.sh(["lxc-attach", "-P", self.lxcpath, "-n", name, "--"] + list(argv), check=check, timeout=timeout)

    def ct_state(self, name):
        return self.sh(["lxc-info", "-P", self.lxcpath, "-n", name, "-s", "-H"], check=False).stdout.strip()

    @contextlib.contextmanager
    def capture(self, bpf=CLIENT_FILTER):
        """Capture on the uplink while the block runs; ``.packets`` is the count after it."""
        out = self.workdir / ("cap-%d.pcap" % time.monotonic_ns())
        proc = subprocess.Popen(["tcpdump", "-i", self.uplink_if, "-n", "-U", "-w", str(out), bpf],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        result = type("Capture", (), {"packets": None, "lines": []})()
        try:
            line = proc.stderr.readline()  # "listening on ..." once the capture runs
            assert "listening" in line, "tcpdump did not start: %s" % line
            yield result
            time.sleep(1.0)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        read = self.sh(["tcpdump", "-r", str(out), "-n"], check=False)
        result.lines = [ln for ln in read.stdout.splitlines() if ln.strip()]
        result.packets = len(result.lines)

    def secrets(self):
        """Every secret of the chain as text: private keys made here or by the lab, the VPS id."""
        values = []
        for path in list(self.key_dir.glob("*.key")) + list(self.key_dir.glob("clients/*.key")):
            values.append(path.read_text().strip())
        for name in ("OPDBUS_WARP_CLIENT_KEY_FILE", "OPDBUS_VPS_ID_FILE"):
            values.append(Path(self.env[name]).read_text().strip())
        assert all(values) and len(values) >= 4, "expected at least 4 secrets, found %d" % len(values)
        return values

    def www_log_tail(self):
        log = Path(self.env["OPDBUS_PEERS_DIR"]) / "www.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return lines[-1] if lines else ""


@pytest.fixture(scope="session")
def privacy_lab(lab, tmp_path_factory):
    """The chain, built by site.yml (first run recorded: log, diff, ledger), torn down at the end."""
    env = dict(lab.env)
    for key in ("OPDBUS_LXC_PATH", "OPDBUS_LAB_DIR"):
        if not env.get(key):
            pytest.fail("the lab has no %s: the privacy chain needs the lab's lxc and peers components" % key)
    work = tmp_path_factory.mktemp("privacy")
    plab = PrivacyLab(env, work)
    ledger_dir = work / "ledger"
    log_path = work / "ansible.log"
    started = time.monotonic()
    first = plab.playbook("--diff", ANSIBLE_CALLBACKS_ENABLED="opdbus.infra.ledger", OPDBUS_LEDGER_DIR=str(ledger_dir),
                          ANSIBLE_LOG_PATH=str(log_path))
    plab.first = {"proc": first, "seconds": time.monotonic() - started, "ledger": ledger_dir, "log": log_path}
    print("\nprivacy chain: site.yml converged the lab in %.1fs" % plab.first["seconds"])
    assert first.returncode == 0, "site.yml failed (rc %d):\n%s\n%s" % (first.returncode, first.stdout[-6000:], first.stderr[-3000:])
    try:
        yield plab
    finally:
        # OPDBUS_KEEP_PRIVACY_LAB=1 while working on the suite: the chain stays for the next run
        if os.environ.get("OPDBUS_KEEP_PRIVACY_LAB") != "1":
            _tear_down(plab, work)


def _tear_down(plab, work):
    """The chain removed (state absent) and the lab's outside world stopped."""
    down = work / "down.yml"
    down.write_text("- name: Remove the privacy chain\n  hosts: opdbus_full\n  gather_facts: false\n  roles:\n"
                    "    - role: opdbus.infra.privacy_router\n      vars:\n        privacy_router_state: absent\n"
                    "        privacy_router_discover: false\n")
    proc = plab.playbook(playbook=down)
    subprocess.run([str(LAB_SH), "peers-down"], capture_output=True, check=False, env=plab.ansible_env())
    assert proc.returncode == 0, "removing the chain failed:\n%s" % proc.stdout[-4000:]
