# opdbus-offline-get-pip (marker: `make test-sanity` replaces only files that carry it)
"""Offline stand-in for get-pip.py, used by ansible-test to bootstrap pip.

ansible-test puts pip into every virtual environment it creates (``--venv`` and the per-test
sanity environments) by running get-pip.py, which it downloads from Ansible's CI file server.
A machine that reaches only the package registries cannot fetch it. ansible-test looks for a
cached copy at ``~/.ansible/test/cache/get_pip_<version>.py`` first; ``make test-sanity``
installs this file there.

It is called like get-pip.py, ``python get_pip.py [pip install options] pip==X.Y
[--no-setuptools] [--no-wheel]``, and does the same: it puts pip into the running interpreter
(from the interpreter's own ``ensurepip``) and then installs the requested packages (the pinned
pip) from the configured package index.
"""

from __future__ import annotations

import ensurepip
import subprocess
import sys

# Options that only get-pip.py understands; pip install would reject them.
GET_PIP_OPTIONS = frozenset(('--no-setuptools', '--no-wheel'))


def main() -> int:
    """Bootstrap pip, then install what ansible-test asked for."""
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_OPTIONS]
    ensurepip.bootstrap(upgrade=True)
    return subprocess.call([sys.executable, '-m', 'pip', 'install', '--upgrade'] + args)


if __name__ == '__main__':
    sys.exit(main())
