# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Extract the part of the PVE 9.1.3 API schema the Proxmox simulator serves.

Usage: python tests/proxmox_sim/extract_schema.py [FULL_SCHEMA [OUTPUT]]

FULL_SCHEMA defaults to ../shared/data/pve-api-9.1.3-lxc.json next to the checkout, OUTPUT to
pve-api-9.1.3-lxc.json beside this script. The method entries are copied verbatim.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SOURCE = os.path.join(os.path.dirname(REPO), "shared", "data", "pve-api-9.1.3-lxc.json")
DEFAULT_OUTPUT = os.path.join(HERE, "pve-api-9.1.3-lxc.json")

# path -> the methods the simulator serves on it
SERVED = {
    "/access/ticket": ["POST"],
    "/version": ["GET"],
    "/nodes": ["GET"],
    "/cluster/nextid": ["GET"],
    "/cluster/resources": ["GET"],
    "/nodes/{node}/lxc": ["GET", "POST"],
    "/nodes/{node}/lxc/{vmid}": ["GET", "DELETE"],
    "/nodes/{node}/lxc/{vmid}/config": ["GET", "PUT"],
    "/nodes/{node}/lxc/{vmid}/status/current": ["GET"],
    "/nodes/{node}/lxc/{vmid}/status/start": ["POST"],
    "/nodes/{node}/lxc/{vmid}/status/stop": ["POST"],
    "/nodes/{node}/lxc/{vmid}/status/shutdown": ["POST"],
    "/nodes/{node}/lxc/{vmid}/status/reboot": ["POST"],
    "/nodes/{node}/lxc/{vmid}/clone": ["POST"],
    "/nodes/{node}/lxc/{vmid}/resize": ["PUT"],
    "/nodes/{node}/lxc/{vmid}/interfaces": ["GET"],
    "/nodes/{node}/tasks/{upid}/status": ["GET"],
    "/nodes/{node}/tasks/{upid}/log": ["GET"],
    "/nodes/{node}/storage": ["GET"],
    "/nodes/{node}/storage/{storage}/content": ["GET"],
}


def extract(full):
    """Return the served subset of a full schema mapping (path -> method -> entry)."""
    subset = {}
    for path in sorted(SERVED):
        methods = full[path]
        subset[path] = dict((method, methods[method]) for method in SERVED[path])
    return subset


def dumps(subset):
    """The canonical text of a subset, as committed."""
    return json.dumps(subset, indent=1, sort_keys=True) + "\n"


def main(argv):
    source = argv[1] if len(argv) > 1 else DEFAULT_SOURCE
    output = argv[2] if len(argv) > 2 else DEFAULT_OUTPUT
    with open(source) as handle:
        full = json.load(handle)
    with open(output, "w") as handle:
        handle.write(dumps(extract(full)))
    print("wrote %s (%d paths)" % (output, len(SERVED)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
