# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One benchmark's section of docs/performance.md, between its markers, replaced in place.

Standard library only; the benchmark scripts import it from their own directory.
"""

from __future__ import absolute_import, division, print_function

import os


def markers(name):
    return "<!-- bench:%s:start -->" % name, "<!-- bench:%s:end -->" % name


def replace_section(path, name, section, after=None, empty=""):
    """Put ``section`` (which carries its own markers) in place of the section ``name`` of ``path``.

    A section not there yet goes after the section ``after`` when that one is there, else at the
    end; a file not there yet starts as ``empty``. One marker without the other is refused
    (ValueError): the file needs fixing by hand. Written to a temporary file and renamed.
    """
    start_mark, end_mark = markers(name)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    else:
        text = empty
    start, end = text.find(start_mark), text.find(end_mark)
    if start >= 0 and end > start:
        end += len(end_mark)
        if text[end:end + 1] == "\n":
            end += 1
        text = text[:start] + section + text[end:]
    elif start < 0 and end < 0:
        prev = text.find(markers(after)[1]) if after else -1
        if prev >= 0:
            cut = prev + len(markers(after)[1])
            rest = text[cut:].lstrip("\n")
            text = text[:cut] + "\n\n" + section + ("\n" + rest if rest else "")
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        raise ValueError("%s has a broken %s section (one marker without the other); fix it by hand" % (path, name))
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.rename(tmp, path)
