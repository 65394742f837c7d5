# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the privacy chain's tests: the smoke configuration and a set of keys."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils import wireguard

# RFC 7748 section 6.1 (X25519 Diffie-Hellman): Alice's and Bob's key pairs.
ALICE_PRIVATE_HEX = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUBLIC_HEX = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_PRIVATE_HEX = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
BOB_PUBLIC_HEX = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
VPS_ID = "6f1c2a1e-7f0e-4a51-9a37-2f9d8d1f0b11"

SMOKE = {
    "bridge": "ovs-br0", "uplink_gateway": "192.0.2.254",
    "wireguard": {"clients": [{"name": "laptop", "address": "10.200.0.2"}]},
    "warp": {"endpoint": "198.51.100.2:2408", "public_key": wireguard.hex_to_b64(BOB_PUBLIC_HEX)},
    "vps": {"address": "203.0.113.10", "id": VPS_ID},
    "socket_networking": {"uplink_port": "upl0"},
    "openflow": {"security_level": 2},
    "containers": {"wireguard": {"address": "192.0.2.10/24"}, "warp": {"address": "192.0.2.11/24"},
                   "xray": {"address": "192.0.2.12/24"}},
}


@pytest.fixture
def smoke():
    """A fresh deep copy of the smoke configuration (the module's parameters)."""
    return copy.deepcopy(SMOKE)


@pytest.fixture
def keys():
    """The keys dict render.py documents; every secret distinct and recognisable."""
    client_private = wireguard.generate_private()
    return {
        "gateway_private": wireguard.hex_to_b64(ALICE_PRIVATE_HEX),
        "gateway_public": wireguard.hex_to_b64(ALICE_PUBLIC_HEX),
        "warp_private": wireguard.generate_private(),
        "warp_peer_public": wireguard.hex_to_b64(BOB_PUBLIC_HEX),
        "vps_id": VPS_ID,
        "clients": {"laptop": {"private": client_private, "public": wireguard.public_key(client_private)}},
    }
