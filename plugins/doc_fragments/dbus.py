# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The bus options of the modules that talk to any D-Bus service (dbus_introspect, dbus_call).
    DOCUMENTATION = r"""
options:
  bus:
    description:
      - Which bus. V(system) - O(bus_address), else E(OPDBUS_DBUS_ADDRESS), else E(DBUS_SYSTEM_BUS_ADDRESS), else
        C(unix:path=/run/dbus/system_bus_socket).
      - V(session) - O(bus_address), else E(DBUS_SESSION_BUS_ADDRESS) in the module's environment.
    type: str
    choices: [system, session]
    default: system
  bus_address:
    description: The D-Bus address of the bus (C(unix:path=...)); overrides the environment.
    type: str
"""
