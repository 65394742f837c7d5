# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options shared by the modules that talk to OVSDB.
    DOCUMENTATION = r"""
options:
  ovsdb:
    description:
      - The OVSDB server to talk to, as C(unix:PATH) or C(tcp:HOST:PORT) (RFC 7047 JSON-RPC).
      - If not set, the environment variable E(OPDBUS_OVSDB) is used, and if that is not set either,
        the system's socket C(unix:/var/run/openvswitch/db.sock).
      - Set it once per play for every module of the group with
        C(module_defaults) and the action group C(group/opdbus.infra.ovs).
    type: str
  timeout:
    description:
      - Seconds to wait for the OVSDB server to answer, and for ovs-vswitchd to apply a change
        (until C(Open_vSwitch.cur_cfg) reaches the configuration the change asked for).
    type: float
    default: 30
attributes:
  action_group:
    description: Use C(group/opdbus.infra.ovs) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - opdbus.infra.ovs
"""
