# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian version comparison (``[epoch:]upstream[-revision]``, as dpkg orders them, Debian Policy 5.6.12).

PackageKit's apt backend reports an upgrade in a real transaction as ``installing``; the module
names the action from the installed and the new version instead, with this order.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_PART = re.compile(r"(\d+|\D+)")


def _order(char):
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_string(left, right):
    """dpkg's verrevcmp on one of upstream/revision."""
    i = j = 0
    while i < len(left) or j < len(right):
        first_diff = 0
        while (i < len(left) and not left[i].isdigit()) or (j < len(right) and not right[j].isdigit()):
            lc = _order(left[i]) if i < len(left) and not left[i].isdigit() else 0
            rc = _order(right[j]) if j < len(right) and not right[j].isdigit() else 0
            if lc != rc:
                return -1 if lc < rc else 1
            i += 1
            j += 1
        while i < len(left) and left[i] == "0":
            i += 1
        while j < len(right) and right[j] == "0":
            j += 1
        while i < len(left) and left[i].isdigit() and j < len(right) and right[j].isdigit():
            if not first_diff:
                first_diff = ord(left[i]) - ord(right[j])
            i += 1
            j += 1
        if i < len(left) and left[i].isdigit():
            return 1
        if j < len(right) and right[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def split(version):
    epoch, sep, rest = version.partition(":")
    if not sep:
        epoch, rest = "0", version
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        upstream, revision = rest, ""
    return int(epoch or 0), upstream, revision


def compare(left, right):
    """-1, 0 or 1 as Debian orders the versions ``left`` and ``right``."""
    le, lu, lr = split(left)
    re_, ru, rr = split(right)
    if le != re_:
        return -1 if le < re_ else 1
    return _compare_string(lu, ru) or _compare_string(lr, rr)
