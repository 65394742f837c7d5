# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NUMA placement of systemd services: node strategies, validation (model) and the reconciler."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
