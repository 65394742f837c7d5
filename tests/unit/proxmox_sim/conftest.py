# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the Proxmox simulator tests: a running simulator and proxmoxer clients of it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

import pytest
from proxmoxer import ProxmoxAPI

from ansible_collections.opdbus.infra.tests.proxmox_sim import ProxmoxSimulator

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"


@pytest.fixture
def sim():
    """A started simulator (node pve1, token root@pam!ansible, user root@pam), stopped afterwards."""
    simulator = ProxmoxSimulator(nodes=("pve1", "pve2"), task_duration=0.05,
                                 users={"root@pam": "pve-root-password", "audit@pve": {"password": "audit-pass", "readonly": True}},
                                 tokens={"root@pam!ansible": "0b7f6c6e-3d1a-4c52-9a57-5d8f2f0e6a11",
                                         "audit@pve!ro": {"secret": "11111111-2222-3333-4444-555555555555", "readonly": True}})
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def px(sim):
    """proxmoxer with the API token, certificates not verified."""
    return ProxmoxAPI(backend="https", verify_ssl=False, timeout=5, **sim.token_auth())


@pytest.fixture
def node(px):
    return px.nodes("pve1")


def wait_task(px, upid, timeout=10.0):
    """Poll a task until it stops; returns its status."""
    node = upid.split(":")[1]
    deadline = time.time() + timeout
    while True:
        status = px.nodes(node).tasks(upid).status.get()
        if status["status"] == "stopped":
            return status
        if time.time() > deadline:
            raise AssertionError("task %s still running" % upid)
        time.sleep(0.02)


@pytest.fixture
def wait(px):
    return lambda upid, timeout=10.0: wait_task(px, upid, timeout)


@pytest.fixture
def ct100(sim):
    """A stopped CT 100 on pve1, put straight into the cluster."""
    return sim.cluster.add_container(100, hostname="web1", cores=1, net0="name=eth0,bridge=vmbr0,ip=10.1.0.5/24,gw=10.1.0.1")
