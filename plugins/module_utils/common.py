# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module of the collection shares: the one place where the typed
errors of the transports and domains become ``fail_json`` messages."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import env_fallback

from ansible_collections.opdbus.infra.plugins.module_utils.netlink import NetlinkError
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.errors import OpenFlowError
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import ValidationError
from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import DEFAULT_ENDPOINT, OvsdbError


OVSDB_ARGSPEC = dict(
    ovsdb=dict(type="str", fallback=(env_fallback, ["OPDBUS_OVSDB"])),
    timeout=dict(type="float", default=30.0),
)


def ovsdb_endpoint(module):
    """The endpoint from the option (or OPDBUS_OVSDB through its fallback), else the system socket."""
    return module.params.get("ovsdb") or DEFAULT_ENDPOINT


def run(module, func, *args, **kwargs):
    """Call ``func`` and turn the collection's typed errors into a clean failure."""
    try:
        return func(*args, **kwargs)
    except ValidationError as exc:
        module.fail_json(msg="invalid input: %s" % exc)
    except OvsdbError as exc:
        module.fail_json(msg=str(exc))
    except NetlinkError as exc:
        module.fail_json(msg=str(exc))
    except OpenFlowError as exc:
        module.fail_json(msg=str(exc))
    except ValueError as exc:  # FlowInputError, endpoint parsing and other argument checks
        module.fail_json(msg="invalid input: %s" % exc)
