# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A private dbus-daemon (the real one) for tests, started in a temporary run dir, stopped by PID."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import signal
import subprocess
import tempfile
import time

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <deny send_interface="org.opdbus.Test" send_member="Forbidden"/>
  </policy>
</busconfig>
"""


def dbus_daemon():
    return shutil.which("dbus-daemon") or "/usr/bin/dbus-daemon"


class PrivateBus:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="opdbus-bus-")
        self.socket = os.path.join(self.dir, "bus.sock")
        self.address = "unix:path=%s" % self.socket
        self.proc = None

    def start(self):
        config = os.path.join(self.dir, "bus.conf")
        with open(config, "w") as handle:
            handle.write(CONFIG.format(socket=self.socket))
        self.proc = subprocess.Popen([dbus_daemon(), "--config-file=%s" % config, "--nofork", "--nopidfile"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dbus-daemon did not start: %s" % self.proc.stderr.read())
            time.sleep(0.02)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
