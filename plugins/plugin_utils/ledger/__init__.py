# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit ledger's storage core (controller side, no Ansible imports).

- ``record``: the record format, its canonical encoding and hash chain.
- ``merkle``: RFC 6962/9162 Merkle tree hashes, inclusion and consistency proofs.
- ``store``: append-only segments with group commit, torn-tail recovery, ``Ledger``.
- ``checkpoint``: C2SP tlog-checkpoint bodies signed as C2SP signed notes (Ed25519).
- ``verify``: the full offline verifier of a ledger directory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
