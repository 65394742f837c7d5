# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: lxc
short_description: Run tasks inside local LXC containers through liblxc
version_added: 0.1.0
description:
  - Runs commands and transfers files inside a container of the local host, through liblxc's Python binding
    (C(python3-lxc)) - no SSH server, no agent and no C(lxc-attach) process in the container are needed.
  - Every command runs attached to all the container's namespaces and cgroups, as root, with a clean
    environment (C(PATH), C(HOME=/root), C(LANG=C.UTF-8)) and C(/) as its working directory.
  - Files are copied with C(cat) inside the container, the file itself being the command's standard input or
    output, so any content (binary, every byte value) goes through unchanged.
  - C(python3-lxc) is a package of the system Python. When the controller's Python cannot import it but
    C(/usr/lib/python3/dist-packages) holds the binding built for the same Python version, it is imported from
    there (that directory is on C(sys.path) only during the import).
author: opdbus.infra maintainers (@opdbus)
requirements:
  - liblxc and its Python binding C(python3-lxc) on the controller
  - root on the controller (the containers of a privileged lxcpath)
extends_documentation_fragment:
  - connection_pipelining
options:
  remote_addr:
    description: The container's name.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_lxc_host
  lxcpath:
    description: The liblxc container directory the container lives in.
    type: str
    default: /var/lib/lxc
    vars:
      - name: ansible_lxc_path
    env:
      - name: OPDBUS_LXC_PATH
  executable:
    description: The shell inside the container that runs each command (as C(executable -c command)).
    type: str
    default: /bin/sh
    vars:
      - name: ansible_executable
      - name: ansible_lxc_executable
notes:
  - The container must exist and run; the plugin never creates or starts it (see M(opdbus.infra.lxc_container)).
  - Become methods that need a terminal (C(sudo) with a password) are not supported; commands already run as root.
  - An exit code of 255 cannot be told apart from a failed attach by liblxc; it is reported as 255 while the
    container runs.
seealso:
  - module: opdbus.infra.lxc_container
"""

EXAMPLES = r"""
# inventory.yml
# all:
#   hosts:
#     ct100:
#       ansible_connection: opdbus.infra.lxc
#       ansible_lxc_path: /var/lib/lxc
#       ansible_python_interpreter: /usr/bin/python3
"""

import importlib
import os
import sys
import tempfile

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.module_utils.six.moves import shlex_quote
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()

SYSTEM_SITE = "/usr/lib/python3/dist-packages"
PYTHON3_LXC_HINT = "install the Debian package python3-lxc (apt-get install python3-lxc)"
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ATTACH_FAILED = -1


def system_binding_present(site=SYSTEM_SITE, version_info=None):
    """Does site hold the lxc package and an _lxc extension built for this Python (cpython-XY)?"""
    version_info = version_info or sys.version_info
    if not os.path.isfile(os.path.join(site, "lxc", "__init__.py")):
        return False
    tag = ".cpython-%d%d" % (version_info[0], version_info[1])
    try:
        names = os.listdir(site)
    except OSError:
        return False
    return any(n.startswith("_lxc" + tag) and n.endswith(".so") for n in names)


def _usable(module):
    return module is not None and hasattr(module, "Container") and hasattr(module, "attach_run_command")


def import_lxc(site=SYSTEM_SITE, importer=None):
    """The liblxc binding (module lxc), from the controller's Python or else from the system's site directory.

    Raises AnsibleConnectionFailure naming python3-lxc when neither has it.
    """
    importer = importer or importlib.import_module
    found = sys.modules.get("lxc")
    if _usable(found):
        return found
    problem = None
    try:
        module = importer("lxc")
        if _usable(module):
            return module
        problem = "the module lxc found (%s) is not liblxc's binding" % getattr(module, "__file__", None)
    except ImportError as exc:
        problem = to_native(exc)
    if system_binding_present(site):
        # A wrong 'lxc' (a directory of that name on sys.path) must not hide the system's.
        if not _usable(sys.modules.get("lxc")):
            sys.modules.pop("lxc", None)
        sys.path.insert(0, site)
        try:
            module = importer("lxc")
            if _usable(module):
                return module
            problem = "%s has an lxc package without liblxc's binding" % site
        except ImportError as exc:
            problem = "importing it from %s failed: %s" % (site, to_native(exc))
        finally:
            try:
                sys.path.remove(site)
            except ValueError:
                pass
    raise AnsibleConnectionFailure(
        "the lxc connection needs liblxc's Python binding, which %s cannot import (%s): %s"
        % (sys.executable, problem, PYTHON3_LXC_HINT))


def exit_code(status):
    """The exit code of a wait status as attach_wait returns it (-1: the attach failed, or the command exited 255)."""
    if status < 0:
        return 255
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return 255


class Connection(ConnectionBase):
    """Local liblxc containers, through python3-lxc's attach_wait."""

    transport = "opdbus.infra.lxc"
    has_pipelining = True
    default_user = "root"

    def __init__(self, play_context, new_stdin, *args, **kwargs):
        super(Connection, self).__init__(play_context, new_stdin, *args, **kwargs)
        self.lxc = None
        self.container = None
        self.container_name = None
        self.lxcpath = None

    # ------------------------------------------------------------------ connection
    def _connect(self):
        if self._connected and self.container is not None:
            return self
        self.lxc = import_lxc()
        self.container_name = self.get_option("remote_addr")
        self.lxcpath = self.get_option("lxcpath") or "/var/lib/lxc"
        if not self.container_name or "/" in self.container_name:
            raise AnsibleConnectionFailure("%r is not a container name" % (self.container_name,))
        if not os.path.isdir(self.lxcpath):
            raise AnsibleConnectionFailure(
                "lxcpath %s does not exist or is not a directory (set ansible_lxc_path or OPDBUS_LXC_PATH)" % self.lxcpath)
        self.container = self.lxc.Container(self.container_name, self.lxcpath)
        self._check_running()
        display.vvv(u"ATTACHED TO {0} IN {1}".format(self.container_name, self.lxcpath), host=self.container_name)
        self._connected = True
        return self

    def _check_running(self):
        if not self.container.defined:
            try:
                known = sorted(self.lxc.list_containers(config_path=self.lxcpath))
            except Exception:  # pylint: disable=broad-except
                known = []
            raise AnsibleConnectionFailure(
                "container %s does not exist in lxcpath %s (containers there: %s)"
                % (self.container_name, self.lxcpath, ", ".join(known[:20]) or "none"))
        if not self.container.running:
            raise AnsibleConnectionFailure(
                "container %s in %s is not running (state %s); start it first"
                % (self.container_name, self.lxcpath, self.container.state))

    def _attach(self, argv, stdin, stdout, stderr):
        """Run argv inside the container with these open files; the exit code."""
        if not self.container.running:
            self._check_running()
        status = self.container.attach_wait(
            self.lxc.attach_run_command, list(argv),
            stdin=stdin, stdout=stdout, stderr=stderr,
            env_policy=self.lxc.LXC_ATTACH_CLEAR_ENV,
            extra_env_vars=["PATH=%s" % CONTAINER_PATH, "HOME=/root", "LANG=C.UTF-8"],
            initial_cwd="/",
        )
        if status < 0 and not self.container.running:
            self._check_running()
        if status < ATTACH_FAILED:
            # liblxc's own error (a negative errno), never an exit status
            raise AnsibleConnectionFailure("cannot attach to container %s in %s: %s"
                                           % (self.container_name, self.lxcpath, os.strerror(-status)))
        return exit_code(status)

    def _shell_argv(self, cmd):
        return [self.get_option("executable") or "/bin/sh", "-c", to_text(cmd, errors="surrogate_or_strict")]

    # ------------------------------------------------------------------ commands
    def exec_command(self, cmd, in_data=None, sudoable=True):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        argv = self._shell_argv(cmd)
        display.vvv(u"EXEC {0}".format(argv), host=self.container_name)
        with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            if in_data:
                fin.write(to_bytes(in_data, errors="surrogate_or_strict"))
                fin.seek(0)
            rc = self._attach(argv, fin, fout, ferr)
            fout.seek(0)
            ferr.seek(0)
            return rc, fout.read(), ferr.read()

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        self._connect()
        display.vvv(u"PUT {0} TO {1}".format(in_path, out_path), host=self.container_name)
        b_in = to_bytes(in_path, errors="surrogate_or_strict")
        if not os.path.isfile(b_in):
            raise AnsibleFileNotFound("file or module does not exist: %s" % to_native(in_path))
        argv = self._shell_argv("cat > %s" % shlex_quote(to_text(out_path, errors="surrogate_or_strict")))
        with open(b_in, "rb") as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            rc = self._attach(argv, fin, fout, ferr)
            ferr.seek(0)
            err = ferr.read()
        if rc != 0:
            raise AnsibleError("failed to transfer %s to %s in container %s (exit %d): %s"
                               % (to_native(in_path), to_native(out_path), self.container_name, rc,
                                  to_native(err.strip(), errors="surrogate_or_replace")))

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        self._connect()
        display.vvv(u"FETCH {0} TO {1}".format(in_path, out_path), host=self.container_name)
        b_out = to_bytes(out_path, errors="surrogate_or_strict")
        argv = self._shell_argv("cat -- %s" % shlex_quote(to_text(in_path, errors="surrogate_or_strict")))
        with open(os.devnull, "rb") as fin, open(b_out, "wb") as fout, tempfile.TemporaryFile() as ferr:
            rc = self._attach(argv, fin, fout, ferr)
            ferr.seek(0)
            err = ferr.read()
        if rc != 0:
            os.unlink(b_out)
            raise AnsibleError("failed to fetch %s from container %s (exit %d): %s"
                               % (to_native(in_path), self.container_name, rc,
                                  to_native(err.strip(), errors="surrogate_or_replace")))

    def reset(self):
        self.close()

    def close(self):
        super(Connection, self).close()
        self.container = None
        self._connected = False
