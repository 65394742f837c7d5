# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opdbus.infra.lxc connection without containers: options, the binding import, errors.

The container is a stand-in whose ``attach_wait`` runs the command on this host with the files it
is given (what liblxc does inside the container's namespaces), returning a wait status as the
binding does (-1 when the attach fails).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys
import types

import pytest

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader

from ansible_collections.opdbus.infra.plugins.connection import lxc as plugin

TAG = "cpython-%d%d" % sys.version_info[:2]


# ------------------------------------------------------------------------------------------------
# a stand-in for the binding
# ------------------------------------------------------------------------------------------------

class FakeContainer(object):
    def __init__(self, binding, name, lxcpath):
        self.binding = binding
        self.name = name
        self.lxcpath = lxcpath
        self.calls = []

    @property
    def defined(self):
        return self.name in self.binding.states

    @property
    def running(self):
        return self.binding.states.get(self.name) == "RUNNING"

    @property
    def state(self):
        return self.binding.states.get(self.name, "STOPPED")

    def attach_wait(self, run, argv, **kwargs):
        assert run is self.binding.attach_run_command
        self.calls.append((list(argv), kwargs))
        self.binding.calls.append((list(argv), kwargs))
        if not self.running:
            return -111
        if self.binding.status is not None:
            return self.binding.status
        rc = subprocess.call(argv, stdin=kwargs["stdin"], stdout=kwargs["stdout"], stderr=kwargs["stderr"])
        if rc == 255:
            return -1
        return rc << 8 if rc >= 0 else -rc


def fake_binding(states):
    binding = types.ModuleType("lxc")
    binding.states = dict(states)
    binding.calls = []
    binding.status = None
    binding.attach_run_command = object()
    binding.LXC_ATTACH_CLEAR_ENV = 1
    binding.Container = lambda name, path: FakeContainer(binding, name, path)
    binding.list_containers = lambda config_path=None: sorted(binding.states)
    return binding


def connection(var_options=None, binding=None, monkeypatch=None):
    conn = connection_loader.get("opdbus.infra.lxc", PlayContext(), None)
    conn.set_options(var_options=var_options or {})
    if binding is not None:
        monkeypatch.setattr(sys.modules[type(conn).__module__], "import_lxc", lambda: binding)
    return conn


@pytest.fixture
def running(tmp_path, monkeypatch):
    binding = fake_binding({"ct1": "RUNNING", "ct2": "STOPPED"})
    conn = connection({"inventory_hostname": "ct1", "ansible_lxc_path": str(tmp_path)}, binding, monkeypatch)
    return conn, binding


# ------------------------------------------------------------------------------------------------
# options
# ------------------------------------------------------------------------------------------------

def test_defaults(monkeypatch):
    monkeypatch.delenv("OPDBUS_LXC_PATH", raising=False)
    conn = connection({"inventory_hostname": "ct1"})
    assert conn.get_option("remote_addr") == "ct1"
    assert conn.get_option("lxcpath") == "/var/lib/lxc"
    assert conn.get_option("executable") == "/bin/sh"
    assert conn.transport == "opdbus.infra.lxc" and conn.has_pipelining


def test_container_name_from_host_vars(monkeypatch):
    monkeypatch.delenv("OPDBUS_LXC_PATH", raising=False)
    assert connection({"inventory_hostname": "a", "ansible_host": "b"}).get_option("remote_addr") == "b"
    assert connection({"inventory_hostname": "a", "ansible_host": "b", "ansible_lxc_host": "c"}).get_option("remote_addr") == "c"


def test_lxcpath_from_env_and_var(monkeypatch):
    monkeypatch.setenv("OPDBUS_LXC_PATH", "/from/env")
    assert connection({"inventory_hostname": "a"}).get_option("lxcpath") == "/from/env"
    assert connection({"inventory_hostname": "a", "ansible_lxc_path": "/from/var"}).get_option("lxcpath") == "/from/var"


def test_executable_var():
    assert connection({"inventory_hostname": "a", "ansible_executable": "/bin/bash"}).get_option("executable") == "/bin/bash"


# ------------------------------------------------------------------------------------------------
# the binding
# ------------------------------------------------------------------------------------------------

def make_site(root, so_tag=TAG, with_package=True):
    site = root / "site"
    site.mkdir()
    if with_package:
        (site / "lxc").mkdir()
        (site / "lxc" / "__init__.py").write_text(
            "import os\nContainer = object\nattach_run_command = object()\nLOADED_FROM = os.path.dirname(__file__)\n")
    (site / ("_lxc.%s-x86_64-linux-gnu.so" % so_tag)).write_bytes(b"")
    return str(site)


@pytest.fixture
def clean_modules(monkeypatch):
    """No lxc in sys.modules during the test, sys.path restored after it, and whatever the test imported dropped."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    saved = dict((name, sys.modules.pop(name)) for name in ("lxc", "_lxc") if name in sys.modules)
    yield
    for name in ("lxc", "_lxc"):
        sys.modules.pop(name, None)
    sys.modules.update(saved)


def missing(name):
    raise ImportError("No module named %r" % name)


def test_binding_present_needs_package_and_matching_extension(tmp_path):
    assert plugin.system_binding_present(make_site(tmp_path))
    other = tmp_path / "other"
    other.mkdir()
    assert not plugin.system_binding_present(make_site(other, so_tag="cpython-27"))
    bare = tmp_path / "bare"
    bare.mkdir()
    assert not plugin.system_binding_present(make_site(bare, with_package=False))
    assert not plugin.system_binding_present(str(tmp_path / "nowhere"))
    old_python = tmp_path / "old_python"
    old_python.mkdir()
    assert plugin.system_binding_present(make_site(old_python, so_tag="cpython-39"), version_info=(3, 9))


def test_import_uses_a_loaded_binding(clean_modules):
    binding = fake_binding({})
    sys.modules["lxc"] = binding
    assert plugin.import_lxc(importer=missing) is binding


def test_import_uses_the_interpreters_binding(clean_modules, tmp_path):
    binding = fake_binding({})
    assert plugin.import_lxc(site=str(tmp_path), importer=lambda name: binding) is binding


def test_import_falls_back_to_the_system_site_only_for_the_import(clean_modules, tmp_path):
    site = make_site(tmp_path)
    attempts = []

    def importer(name):
        attempts.append(site in sys.path)
        if len(attempts) == 1:
            raise ImportError("No module named 'lxc'")
        return __import__(name)

    module = plugin.import_lxc(site=site, importer=importer)
    assert module.LOADED_FROM == os.path.join(site, "lxc")
    assert attempts == [False, True]
    assert site not in sys.path


def test_import_replaces_a_wrong_lxc(clean_modules, tmp_path):
    # a directory called lxc somewhere on sys.path imports as a namespace package without the binding
    wrong = tmp_path / "elsewhere"
    (wrong / "lxc").mkdir(parents=True)
    sys.path.insert(0, str(wrong))
    site = make_site(tmp_path)
    module = plugin.import_lxc(site=site)
    assert module.LOADED_FROM == os.path.join(site, "lxc")
    assert site not in sys.path


def test_import_fails_naming_python3_lxc(clean_modules, tmp_path):
    with pytest.raises(AnsibleConnectionFailure, match="python3-lxc") as info:
        plugin.import_lxc(site=str(tmp_path), importer=missing)
    assert "No module named" in str(info.value)
    site = make_site(tmp_path, so_tag="cpython-27")
    with pytest.raises(AnsibleConnectionFailure, match="apt-get install python3-lxc"):
        plugin.import_lxc(site=site, importer=missing)
    assert site not in sys.path


def test_import_error_from_the_system_site_is_reported(clean_modules, tmp_path):
    site = make_site(tmp_path)
    with pytest.raises(AnsibleConnectionFailure, match="importing it from %s failed: No module named 'boom'" % site):
        plugin.import_lxc(site=site, importer=lambda name: missing(name) if site not in sys.path else missing("boom"))
    assert site not in sys.path


@pytest.mark.parametrize("status, code", [(0, 0), (3 << 8, 3), (1 << 8, 1), (127 << 8, 127), (-1, 255), (-111, 255), (9, 137)])
def test_exit_code(status, code):
    assert plugin.exit_code(status) == code


# ------------------------------------------------------------------------------------------------
# commands and files through the stand-in
# ------------------------------------------------------------------------------------------------

def test_exec_command(running):
    conn, binding = running
    rc, out, err = conn.exec_command("cat; echo oops >&2; exit 3", in_data=b"in\x00data")
    assert (rc, out, err) == (3, b"in\x00data", b"oops\n")
    argv, kwargs = binding.calls[-1]
    assert argv == ["/bin/sh", "-c", "cat; echo oops >&2; exit 3"]
    assert kwargs["env_policy"] == binding.LXC_ATTACH_CLEAR_ENV and kwargs["initial_cwd"] == "/"
    assert "HOME=/root" in kwargs["extra_env_vars"]
    assert conn.exec_command("true") == (0, b"", b"")


def test_exec_command_exit_255_is_255(running):
    conn = running[0]
    assert conn.exec_command("exit 255")[0] == 255


def test_put_and_fetch(running, tmp_path):
    conn = running[0]
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(bytearray(range(256))) * 3)
    inside = tmp_path / "in container"
    conn.put_file(str(src), str(inside))
    assert inside.read_bytes() == src.read_bytes()
    back = tmp_path / "back.bin"
    conn.fetch_file(str(inside), str(back))
    assert back.read_bytes() == src.read_bytes()
    assert [call[0][2] for call in running[1].calls] == ["cat > '%s'" % inside, "cat -- '%s'" % inside]


def test_put_missing_local_file(running, tmp_path):
    with pytest.raises(AnsibleFileNotFound):
        running[0].put_file(str(tmp_path / "nope"), "/tmp/x")


def test_put_and_fetch_failures(running, tmp_path):
    conn = running[0]
    src = tmp_path / "src"
    src.write_bytes(b"x")
    with pytest.raises(AnsibleError, match="failed to transfer .* in container ct1 \\(exit 2\\): .*Directory nonexistent"):
        conn.put_file(str(src), str(tmp_path / "no" / "dir" / "x"))
    out = tmp_path / "out"
    with pytest.raises(AnsibleError, match="failed to fetch .* from container ct1 \\(exit 1\\)"):
        conn.fetch_file(str(tmp_path / "absent"), str(out))
    assert not out.exists()


def test_wrong_lxcpath(tmp_path, monkeypatch):
    conn = connection({"inventory_hostname": "ct1", "ansible_lxc_path": str(tmp_path / "nope")}, fake_binding({}), monkeypatch)
    with pytest.raises(AnsibleConnectionFailure, match="lxcpath .*nope does not exist"):
        conn.exec_command("true")


def test_missing_container(tmp_path, monkeypatch):
    conn = connection({"inventory_hostname": "ghost", "ansible_lxc_path": str(tmp_path)},
                      fake_binding({"ct1": "RUNNING"}), monkeypatch)
    with pytest.raises(AnsibleConnectionFailure, match="container ghost does not exist in lxcpath .* \\(containers there: ct1\\)"):
        conn.exec_command("true")


def test_stopped_container(tmp_path, monkeypatch):
    conn = connection({"inventory_hostname": "ct2", "ansible_lxc_path": str(tmp_path)},
                      fake_binding({"ct2": "STOPPED"}), monkeypatch)
    with pytest.raises(AnsibleConnectionFailure, match="container ct2 in .* is not running \\(state STOPPED\\)"):
        conn.exec_command("true")


def test_container_stopping_between_tasks(running):
    conn, binding = running
    assert conn.exec_command("true")[0] == 0
    binding.states["ct1"] = "STOPPED"
    with pytest.raises(AnsibleConnectionFailure, match="is not running"):
        conn.exec_command("true")


def test_attach_error_of_liblxc(running):
    conn, binding = running
    binding.status = -13
    with pytest.raises(AnsibleConnectionFailure, match="cannot attach to container ct1 in .*: Permission denied"):
        conn.exec_command("true")
    binding.status = -1
    assert conn.exec_command("true")[0] == 255


def test_bad_name(tmp_path, monkeypatch):
    conn = connection({"inventory_hostname": "a/b", "ansible_lxc_path": str(tmp_path)}, fake_binding({}), monkeypatch)
    with pytest.raises(AnsibleConnectionFailure, match="not a container name"):
        conn.exec_command("true")


def test_close_and_reconnect(running):
    conn = running[0]
    conn.exec_command("true")
    conn.close()
    assert not conn.connected and conn.container is None
    assert conn.exec_command("true")[0] == 0
