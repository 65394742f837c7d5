# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What AWX and a docs site need: the EE build context, the docs site, the AWX definitions playbook.

- The execution environment: ``tools/ee_context.py`` writes the context with ansible-builder; the
  collection in it is installed and ansible-builder's own introspection script (the one the image
  build runs) must find the collection's Python and system requirements.
- The docs site: ``tools/docsite.py`` (antsibull-docs lint and pages, the guides, Sphinx with
  warnings as errors) must give a page for every plugin and every guide.
- playbooks/awx_job_templates.yml: every task's arguments are options of its awx.awx module (as
  ``ansible-doc`` of the awx.awx collection reports them), and its required options are given.
  awx.awx comes from the ``ansible==10.7.0`` wheel (cached in .cache/collections).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
CACHE = os.path.join(REPO, ".cache", "collections")
AWX_WHEEL = "ansible==10.7.0"


def _tool(name):
    path = os.path.join(BIN, name)
    if not os.access(path, os.X_OK):
        pytest.fail("%s is not installed next to %s (requirements-test.txt)" % (name, sys.executable))
    return path


def _env():
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(REPO, ".collections")
    return env


def test_ee_build_context(tmp_path):
    _tool("ansible-builder")
    dest = str(tmp_path / "ee")
    subprocess.run([sys.executable, os.path.join(REPO, "tools", "ee_context.py"), "--dest", dest],
                   check=True, env=_env(), stdout=subprocess.PIPE)
    containerfile = open(os.path.join(dest, "Containerfile")).read()
    assert "COPY _build/collections/opdbus-infra.tar.gz /tmp/opdbus-collections/opdbus-infra.tar.gz" in containerfile
    assert "ansible-galaxy collection install" in containerfile and "introspect" in containerfile
    assert 'ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==' in containerfile
    requirements = yaml.safe_load(open(os.path.join(dest, "_build", "requirements.yml")))
    assert requirements["collections"] == [{"name": "/tmp/opdbus-collections/opdbus-infra.tar.gz", "type": "file"}]

    tarball = os.path.join(dest, "_build", "collections", "opdbus-infra.tar.gz")
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    assert {"meta/execution-environment.yml", "requirements.txt", "bindep.txt", "plugins/modules/ovs_bridge.py"} <= names
    assert not [n for n in names if n.startswith((".venv", ".lab", "tests/output", ".build"))]

    # Install it as the image build does, and run ansible-builder's introspection on it.
    collections = str(tmp_path / "collections")
    subprocess.run([_tool("ansible-galaxy"), "collection", "install", "--offline", "--force", "-p", collections, tarball],
                   check=True, env=_env(), stdout=subprocess.PIPE)
    pip_out, bindep_out = str(tmp_path / "pip.txt"), str(tmp_path / "bindep.txt")
    proc = subprocess.run([sys.executable, os.path.join(dest, "_build", "scripts", "introspect.py"), "introspect",
                           "--write-pip", pip_out, "--write-bindep", bindep_out, collections],
                          check=True, stdout=subprocess.PIPE, universal_newlines=True)
    assert os.path.exists(pip_out), proc.stdout
    pip_lines = open(pip_out).read()
    for package in ("dbus-python", "pyroute2", "proxmoxer", "cryptography", "numpy", "jmespath"):
        assert "%s==" % package in pip_lines and "# from collection opdbus.infra" in pip_lines, (package, pip_lines)
    assert "ansible-core" not in pip_lines  # the EE definition brings its own
    bindep_lines = open(bindep_out).read()
    for package in ("dbus-devel [compile platform:rpm]", "libdbus-1-3 [platform:dpkg]", "btrfs-progs [platform:rpm]"):
        assert package in bindep_lines, (package, bindep_lines)


def _plugin_names(kind, suffix):
    folder = os.path.join(REPO, "plugins", kind)
    return sorted(os.path.basename(p)[:-3] + suffix for p in glob.glob(os.path.join(folder, "*.py"))
                  if not os.path.basename(p).startswith("_"))


def test_docs_site(tmp_path):
    for name in ("antsibull-docs", "sphinx-build"):
        _tool(name)
    dest = str(tmp_path / "site")
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "docsite.py"), "--dest", dest], check=False,
                          env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert proc.returncode == 0, proc.stdout[-5000:]
    pages = os.path.join(dest, "html", "collections", "opdbus", "infra")
    expected = (_plugin_names("modules", "_module") + _plugin_names("callback", "_callback") + _plugin_names("lookup", "_lookup")
                + _plugin_names("connection", "_connection") + _plugin_names("cache", "_cache"))
    expected += sorted(os.path.basename(r) + "_role" for r in glob.glob(os.path.join(REPO, "roles", "*")))
    missing = [n for n in expected if not os.path.exists(os.path.join(pages, n + ".html"))]
    assert not missing, missing
    ovs = open(os.path.join(pages, "ovs_bridge_module.html"), encoding="utf-8").read()
    assert "Examples" in ovs and "Return Values" in ovs and "purge_external_ids" in ovs
    guides = sorted(n[:-3] for n in os.listdir(os.path.join(REPO, "docs")) if n.endswith(".md"))
    missing = [g for g in guides + ["README"] if not os.path.exists(os.path.join(dest, "html", "guides", g + ".html"))]
    assert not missing, missing
    index = open(os.path.join(dest, "html", "index.html"), encoding="utf-8").read()
    assert "guides/README.html" in index and "collections/opdbus/infra/index.html" in index


def _awx_collection():
    """awx.awx out of the ansible==10.7.0 wheel, cached under .cache/collections."""
    root = os.path.join(CACHE, "awx")
    target = os.path.join(root, "ansible_collections", "awx", "awx")
    if os.path.exists(os.path.join(target, "MANIFEST.json")):
        return root
    tmp = os.path.join(CACHE, "download")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                    "--disable-pip-version-check", AWX_WHEEL, "-d", tmp], check=True)
    wheel = [f for f in os.listdir(tmp) if f.endswith(".whl")]
    assert len(wheel) == 1, wheel
    prefix = "ansible_collections/awx/awx/"
    with zipfile.ZipFile(os.path.join(tmp, wheel[0])) as archive:
        archive.extractall(root, [n for n in archive.namelist() if n.startswith(prefix)])
    shutil.rmtree(tmp, ignore_errors=True)
    return root


def test_awx_playbook_arguments_are_awx_options():
    root = _awx_collection()
    env = dict(_env(), ANSIBLE_COLLECTIONS_PATH=root + os.pathsep + os.path.join(REPO, ".collections"))
    playbook = os.path.join(REPO, "playbooks", "awx_job_templates.yml")
    subprocess.run([_tool("ansible-playbook"), "--syntax-check", "-i", "localhost,", playbook], check=True, env=env,
                   stdout=subprocess.PIPE)
    play = yaml.safe_load(open(playbook))[0]
    tasks = list(play["tasks"])
    modules = sorted({k for t in tasks for k in t if k.startswith("awx.awx.")})
    docs = json.loads(subprocess.run([_tool("ansible-doc"), "-t", "module", "--json"] + modules, check=True, env=env,
                                     stdout=subprocess.PIPE).stdout)
    defaults = set(play["module_defaults"]["group/awx.awx.controller"])
    assert len(tasks) >= 6
    for task in tasks:
        module = next(k for k in task if k.startswith("awx.awx."))
        options = docs[module]["doc"]["options"]
        given = set(task[module])
        unknown = given - set(options)
        assert not unknown, (task["name"], unknown)
        required = {name for name, spec in options.items() if spec.get("required")}
        assert required <= given | defaults, (task["name"], required - given)
        assert defaults <= set(options), defaults - set(options)
