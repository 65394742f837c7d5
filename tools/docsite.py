# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the docs site: plugin pages by antsibull-docs, the user guides of docs/, one Sphinx build.

    python tools/docsite.py [--dest .build/docsite]

Needs antsibull-docs, sphinx, sphinx-ansible-theme and myst-parser (requirements-test.txt) and
the collection importable through ANSIBLE_COLLECTIONS_PATH (make links it under .collections).
Steps: ``antsibull-docs lint-collection-docs --plugin-docs`` (the plugins' documentation and its
references), ``antsibull-docs collection`` (RST pages), the guides (docs/*.md and the README)
copied beside them with an index, then ``sphinx-build -W``. Exit status 0 only when all pass;
the site is in DEST/html.
"""

import argparse
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)

GUIDES_INDEX = """User guides
===========

The guides of the collection, as they are in the repository's ``docs/`` directory.

.. toctree::
   :maxdepth: 1

%s
"""

ROOT_INDEX = """.. _docsite_root_index:

opdbus.infra
============

Native management of a Linux host: Open vSwitch over OVSDB, OpenFlow, LXC, PackageKit over D-Bus,
BTRFS, NUMA placement, and a tamper-evident audit ledger.

.. toctree::
   :maxdepth: 1
   :caption: Start here

   guides/README

.. toctree::
   :maxdepth: 2
   :caption: User guides

   guides/index

.. toctree::
   :maxdepth: 2
   :caption: Plugin reference

   collections/opdbus/infra/index

.. toctree::
   :maxdepth: 1
   :caption: Indexes
   :glob:

   collections/index_*
   collections/environment_variables
"""


def tool(name):
    path = os.path.join(BIN, name)
    return path if os.access(path, os.X_OK) else (shutil.which(name) or name)


def run(cmd, **kwargs):
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=False, **kwargs).returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=os.path.join(REPO, ".build", "docsite"))
    args = parser.parse_args()
    dest = os.path.abspath(args.dest)
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, ".collections"))

    if run([tool("antsibull-docs"), "lint-collection-docs", "--plugin-docs", "--skip-rstcheck", REPO], env=env):
        print("docsite: the plugins' documentation does not lint", file=sys.stderr)
        return 1

    shutil.rmtree(dest, ignore_errors=True)
    rst = os.path.join(dest, "rst")
    os.makedirs(rst)
    os.chmod(rst, 0o755)
    if run([tool("antsibull-docs"), "collection", "--use-current", "--dest-dir", rst, "opdbus.infra"], env=env):
        print("docsite: antsibull-docs collection failed", file=sys.stderr)
        return 1

    guides = os.path.join(rst, "guides")
    os.makedirs(guides)
    # the guides and the pictures they show
    names = sorted(n for n in os.listdir(os.path.join(REPO, "docs")) if n.endswith((".md", ".svg", ".png")))
    for name in names:
        shutil.copy(os.path.join(REPO, "docs", name), guides)
    # The README links the guides as docs/<name>.md; in the site they sit beside it.
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read().replace("](docs/", "](")
    with open(os.path.join(guides, "README.md"), "w", encoding="utf-8") as handle:
        handle.write(readme)
    with open(os.path.join(guides, "index.rst"), "w") as handle:
        handle.write(GUIDES_INDEX % "\n".join("   %s" % n[:-3] for n in names if n.endswith(".md")))
    with open(os.path.join(rst, "index.rst"), "w") as handle:
        handle.write(ROOT_INDEX)

    html = os.path.join(dest, "html")
    if run([tool("sphinx-build"), "-b", "html", "-W", "--keep-going", "-q", "-c", os.path.join(REPO, "docs", "docsite"),
            rst, html], env=env):
        print("docsite: sphinx-build failed (warnings are errors)", file=sys.stderr)
        return 1
    print("docsite: %s" % os.path.join(html, "index.html"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
