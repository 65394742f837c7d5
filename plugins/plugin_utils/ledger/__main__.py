# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m ansible_collections.opdbus.infra.plugins.plugin_utils.ledger``: the opdbus-ledger command line."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
