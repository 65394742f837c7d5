# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Proxmox VE 9.1.3 API simulator (LXC paths) for the tests of the proxmox backend."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .server import Fault, Faults, ProxmoxSimulator, RequestRecord
from .state import UPID_RE, ApiError, Cluster, Container, Task

__all__ = ["ApiError", "Cluster", "Container", "Fault", "Faults", "ProxmoxSimulator", "RequestRecord", "Task", "UPID_RE"]
