# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What packagekit and packagekit_info share: the connection, and the one place where the typed
errors of the transport and the reconciler become ``fail_json`` messages."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.opdbus.infra.plugins.module_utils.dbus import import_dbus
from ansible_collections.opdbus.infra.plugins.module_utils.packagekit import (
    SERVICE, PackageKit, PackageKitDenied, PackageKitError, PackageKitLocked, PackageKitTimeout, PackageKitUnavailable)
from ansible_collections.opdbus.infra.plugins.module_utils.packages.reconcile import ValidationError

FALLBACK = "ansible.builtin.package"


def unavailable_message(where, detail=None):
    return ("PackageKit (%s) is not available on %s%s; use %s instead (the fallback: the role opdbus.infra.packages "
            "switches to it by itself)" % (SERVICE, where, ": %s" % detail if detail else "", FALLBACK))


def connect(module, require=True):
    """A PackageKit transport on the module's bus; with ``require``, PackageKit must be on it."""
    dbus = import_dbus(module)  # respawns into the system Python when dbus-python is not here
    address = module.params.get("bus_address") or None
    try:
        pk = PackageKit(address, timeout=module.params.get("timeout") or 600, dbus_module=dbus)
    except PackageKitUnavailable as exc:
        raise PackageKitUnavailable(unavailable_message(address or "the system bus", exc))
    if require and not pk.available():
        pk.close()
        raise PackageKitUnavailable(unavailable_message(pk.where))
    return pk


def run(module, func, *args, **kwargs):
    """Call ``func``; the typed errors become a clean failure (with PackageKit's error code)."""
    try:
        return func(*args, **kwargs)
    except ValidationError as exc:
        module.fail_json(msg="invalid input: %s" % exc)
    except PackageKitUnavailable as exc:
        msg = str(exc)
        if FALLBACK not in msg:
            msg = unavailable_message("the bus", msg)
        module.fail_json(msg=msg, packagekit_available=False, fallback=FALLBACK)
    except (PackageKitDenied, PackageKitLocked, PackageKitTimeout) as exc:
        module.fail_json(msg=str(exc), error_code=exc.code)
    except PackageKitError as exc:
        module.fail_json(msg=str(exc), error_code=exc.code)
