# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Packages through PackageKit: the reconciler of opdbus.infra.packagekit and packagekit_info."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
