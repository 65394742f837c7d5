# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options of the modules that talk to the Proxmox VE API.
    DOCUMENTATION = r"""
options:
  api_host:
    description:
      - The Proxmox VE host to talk to (name or address of a cluster node; the API is served over HTTPS).
      - If not set, the environment variable E(PROXMOX_HOST) is used.
      - Required with the C(proxmox) backend.
    type: str
  api_port:
    description:
      - The port of the Proxmox VE API.
    type: int
    default: 8006
  api_user:
    description:
      - The user to log in as, as C(user@realm) (C(root@pam)), with O(api_password);
        or the user an API token belongs to when O(api_token_id) is given without the user part.
      - If not set, the environment variable E(PROXMOX_USER) is used.
    type: str
  api_password:
    description:
      - The password of O(api_user). Used only when no API token is given.
      - If not set, the environment variable E(PROXMOX_PASSWORD) is used.
    type: str
  api_token_id:
    description:
      - The API token to authenticate with, as C(user@realm!tokenid) or, with O(api_user), just C(tokenid).
      - An API token (with O(api_token_secret)) is used in preference to a password.
      - If not set, the environment variable E(PROXMOX_TOKEN_ID) is used.
    type: str
  api_token_secret:
    description:
      - The secret (UUID) of O(api_token_id).
      - If not set, the environment variable E(PROXMOX_TOKEN_SECRET) is used.
    type: str
  validate_certs:
    description:
      - Whether to verify the TLS certificate of the API.
      - Proxmox VE nodes use a self-signed certificate unless one was installed; verifying
        it needs its CA certificate (C(/etc/pve/pve-root-ca.pem) on the node) in the trust store.
    type: bool
    default: true
  node:
    description:
      - The Proxmox VE node whose containers are managed (the C(nodes/{node}/lxc) API).
      - If not set, the environment variable E(PROXMOX_NODE) is used.
      - Required with the C(proxmox) backend.
    type: str
requirements:
  - proxmoxer >= 2.0 and requests (Python libraries on the managed host)
"""
