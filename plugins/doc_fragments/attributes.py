# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Descriptions of the attributes every module of the collection declares.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changes it would make, without modifying the target.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) when in diff mode.
  platform:
    description: Target operating systems this module runs on.
"""

    # An info module changes nothing.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    description: This action does not modify state.
    support: full
  diff_mode:
    description: This action does not modify state.
    support: N/A
"""
