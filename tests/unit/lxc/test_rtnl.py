# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The standard-library rtnetlink address dump, against `ip -j addr` of the same namespace."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import shutil
import subprocess

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.lxc.rtnl import dump_addresses


@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is the oracle")
def test_dump_equals_ip_oracle():
    links = json.loads(subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, check=True).stdout)
    want = {}
    for link in links:
        if link["ifname"] == "lo":
            continue
        addrs = ["%s/%s" % (a["local"], a["prefixlen"]) for a in link.get("addr_info", []) if a.get("scope") not in ("link", "host")]
        if addrs:
            want[link["ifname"]] = addrs
    got = dump_addresses()
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
