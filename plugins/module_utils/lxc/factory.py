# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend a module's parameters ask for (``backend: lxc|proxmox`` plus their options)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def make_backend(module):
    """A LiblxcBackend (respawning into a Python with python3-lxc when needed) or a ProxmoxBackend."""
    params = module.params
    if params["backend"] == "proxmox":
        from ansible_collections.opdbus.infra.plugins.module_utils.lxc.proxmox import ProxmoxBackend
        options = {}
        if params.get("storage"):
            options["storage"] = params["storage"]
        return ProxmoxBackend(params["api_host"], params["node"], api_user=params["api_user"],
                              api_password=params["api_password"], api_token_id=params["api_token_id"],
                              api_token_secret=params["api_token_secret"], api_port=params["api_port"],
                              validate_certs=params["validate_certs"], timeout=params["timeout"], **options)
    from ansible_collections.opdbus.infra.plugins.module_utils.lxc.liblxc import LiblxcBackend, import_lxc
    return LiblxcBackend(params["lxcpath"] or "/var/lib/lxc", lxc_module=import_lxc(module))
