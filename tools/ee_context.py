# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the execution environment's build context: ``ansible-builder create`` on ee/execution-environment.yml.

    python tools/ee_context.py [--dest .build/ee]

Builds the collection tarball (``ansible-galaxy collection build``) into .build/ee-src/opdbus-infra.tar.gz,
where ee/execution-environment.yml takes it from, then writes the context (Containerfile and _build/)
to DEST. Building the image from it needs podman or docker:
``podman build -f DEST/Containerfile DEST``.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
TARBALL_DIR = os.path.join(REPO, ".build", "ee-src")


def tool(name):
    path = os.path.join(BIN, name)
    return path if os.access(path, os.X_OK) else (shutil.which(name) or name)


def build_tarball():
    """The collection tarball at .build/ee-src/opdbus-infra.tar.gz; returns its path."""
    os.makedirs(TARBALL_DIR, exist_ok=True)
    out = tempfile.mkdtemp(prefix="opdbus-ee-")
    try:
        subprocess.run([tool("ansible-galaxy"), "collection", "build", "--force", "--output-path", out, REPO],
                       check=True, stdout=subprocess.DEVNULL)
        built = [n for n in os.listdir(out) if n.endswith(".tar.gz")]
        if len(built) != 1:
            raise SystemExit("ansible-galaxy built %s, expected one tarball" % built)
        target = os.path.join(TARBALL_DIR, "opdbus-infra.tar.gz")
        shutil.move(os.path.join(out, built[0]), target)
        return target
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=os.path.join(REPO, ".build", "ee"))
    args = parser.parse_args()
    print("ee: collection %s" % build_tarball())
    shutil.rmtree(args.dest, ignore_errors=True)
    subprocess.run([tool("ansible-builder"), "create", "--file", os.path.join(REPO, "ee", "execution-environment.yml"),
                    "--context", args.dest, "--output-filename", "Containerfile"], check=True)
    print("ee: build context in %s" % args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
