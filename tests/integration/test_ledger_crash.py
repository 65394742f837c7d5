# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crash safety of the ledger callback: kill -9 the controller at random points, 50 times.

The oracle is a second callback, enabled after the ledger in ``callbacks_enabled``
(Ansible calls callbacks in that order): for every result it appends
``<task uuid> <host>`` to a file (one ``write`` each, no buffering). A line there
means the ledger callback had already returned for that result; each such result
must be in the ledger after the kill. The ledger must then open (cutting a torn
tail back if there is one), verify with its checkpoints and signatures, and take
new records on the same chain.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.verify import verify

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, ".collections")
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
RUNS = 50
TASKS = 40

ORACLE = textwrap.dedent('''\
    from __future__ import absolute_import, division, print_function
    __metaclass__ = type
    DOCUMENTATION = """
    name: seen
    type: aggregate
    short_description: test oracle
    description: test oracle
    """
    import os
    from ansible.plugins.callback import CallbackBase


    class CallbackModule(CallbackBase):
        CALLBACK_VERSION = 2.0
        CALLBACK_TYPE = "aggregate"
        CALLBACK_NAME = "oracle.crash.seen"
        CALLBACK_NEEDS_ENABLED = True

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.fd = os.open(os.environ["ORACLE_FILE"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

        def _seen(self, result):
            os.write(self.fd, ("%s %s\\n" % (result._task._uuid, result._host.get_name())).encode())

        def v2_runner_on_ok(self, result):
            self._seen(result)

        def v2_runner_on_failed(self, result, ignore_errors=False):
            self._seen(result)

        def v2_runner_on_skipped(self, result):
            self._seen(result)
    ''')


def playbook():
    tasks = []
    for num in range(TASKS):
        if num % 10 == 3:
            tasks.append("    - name: task %d\n      ansible.builtin.debug:\n        msg: \"{{{{ item }}}}\"\n      loop: [1, 2]\n" % num)
        elif num % 10 == 7:
            tasks.append("    - name: task %d\n      ansible.builtin.set_fact:\n        fact%d: secret\n      no_log: true\n" % (num, num))
        else:
            tasks.append("    - name: task %d\n      ansible.builtin.debug:\n        msg: step %d on {{{{ inventory_hostname }}}}\n" % (num, num))
    head = "- name: crash play\n  hosts: all\n  connection: local\n  gather_facts: false\n  tasks:\n"
    return head + "".join(tasks).replace("{{{{", "{{").replace("}}}}", "}}")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    plugin_dir = root / "colls" / "ansible_collections" / "oracle" / "crash" / "plugins" / "callback"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "seen.py").write_text(ORACLE)
    (root / "colls" / "ansible_collections" / "oracle" / "crash" / "galaxy.yml").write_text(
        "namespace: oracle\nname: crash\nversion: 1.0.0\nreadme: README.md\nauthors: [x]\n")
    (root / "pb.yml").write_text(playbook())
    (root / "inv").write_text("h1\nh2\nh3\n[all:vars]\nansible_connection=local\nansible_python_interpreter=%s\n" % sys.executable)
    # One full run to learn how long a run takes on this machine.
    calib = root / "calibrate"
    calib.mkdir()
    start = time.monotonic()
    proc = start_run(root, calib)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    seen = read_oracle(calib)
    assert len(seen) == 3 * TASKS
    return root, time.monotonic() - start


def start_run(root, work):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "OPDBUS_LEDGER"))}
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": "%s:%s" % (root / "colls", COLLECTIONS),
        "ANSIBLE_CALLBACKS_ENABLED": "opdbus.infra.ledger,oracle.crash.seen",
        "ANSIBLE_NOCOLOR": "1",
        "OPDBUS_LEDGER_DIR": str(work / "ledger"),
        "OPDBUS_LEDGER_CHECKPOINT_EVERY": "7",
        "OPDBUS_LEDGER_FSYNC_INTERVAL": "20",
        "ORACLE_FILE": str(work / "oracle"),
        "HOME": str(work),
    })
    return subprocess.Popen([PLAYBOOK_BIN, "-i", str(root / "inv"), str(root / "pb.yml")], cwd=str(work), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def read_oracle(work):
    path = work / "oracle"
    if not path.exists():
        return set()
    lines = path.read_text().split("\n")
    return {tuple(line.split(" ")) for line in lines if line.count(" ") == 1}


def wait_group_gone(pgid, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return False


@pytest.mark.parametrize("run", range(RUNS))
def test_kill_9_controller(setup, tmp_path, run):
    root, duration = setup
    rng = random.Random(7919 * run + 17)
    delay = rng.uniform(0.05, duration * 1.05)
    proc = start_run(root, tmp_path)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)  # the controller only; its workers finish or die on their own
    proc.communicate(timeout=60)
    wait_group_gone(proc.pid)
    seen = read_oracle(tmp_path)
    ledger_dir = str(tmp_path / "ledger")
    if not os.path.isdir(ledger_dir):
        assert not seen, "results were reported but the ledger was never created (killed at %.2fs)" % delay
        return
    with Ledger(ledger_dir) as ledger:
        recovery = ledger.recovery.to_dict()
        records = list(ledger.records())
        got = {(r["task_uuid"], r["host"]) for r in records if r["kind"] == "task"}
        missing = seen - got
        assert not missing, "killed at %.2fs: %d results reported before the kill are not in the ledger: %s" % (
            delay, len(missing), sorted(missing)[:5])
        # The ledger goes on from where it was: one more record on the same chain.
        before = ledger.size
        ledger.append([{"kind": "play", "play": "after the crash"}])
        assert ledger.size == before + 1
    key_pub = ledger_dir + ".key.pub"
    report = verify(ledger_dir, public_key=key_pub if os.path.exists(key_pub) else None)
    assert report.ok, "killed at %.2fs (recovery %s): %s" % (delay, recovery, report.summary())
