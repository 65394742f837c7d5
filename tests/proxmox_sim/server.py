# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTPS server of the Proxmox simulator: PVE's request cycle (authentication, parameter verification,
permission check, handler), its response shape (``{"data": ...}``, the message in the reason phrase) and
fault injection."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import fnmatch
import hashlib
import ipaddress
import json
import os
import re
import shutil
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .api import HANDLERS
from .schema import SCHEMA_PATH, ApiSchema
from .state import ApiError, Cluster

API_PREFIX = "/api2/json"
PARAM_FAILED = "Parameter verification failed."
WRITE_METHODS = ("POST", "PUT", "DELETE")
DEFAULT_USERS = {"root@pam": "pve-root-password"}
DEFAULT_TOKENS = {"root@pam!ansible": "0b7f6c6e-3d1a-4c52-9a57-5d8f2f0e6a11"}
TOKEN_HEADER = re.compile(r"\APVEAPIToken=(?P<user>[^!=\s]+)!(?P<token>[^=\s]+)[=:](?P<secret>\S+)\Z")


class Fault:
    """One injected fault: which requests it hits, how often, and what it does."""

    KINDS = ("lock", "error500", "slow_task", "task_fail", "timeout")

    def __init__(self, method, path, kind, times=1, message=None, status=None, lock="backup", duration=5.0, delay=10.0, lines=None):
        if kind not in self.KINDS:
            raise ValueError("unknown fault kind %r (one of %s)" % (kind, ", ".join(self.KINDS)))
        self.method = method.upper()
        self.path = path
        self.kind = kind
        self.times = times
        self.message = message
        self.status = status
        self.lock = lock
        self.duration = duration
        self.delay = delay
        self.lines = lines
        self.hits = 0

    def matches(self, method, path, template):
        if self.method not in ("*", method):
            return False
        return fnmatch.fnmatchcase(path, self.path) or (template is not None and fnmatch.fnmatchcase(template, self.path))


class Faults:
    """The faults to inject: ``add(method, path_pattern, kind, times=1, ...)``.

    ``path_pattern`` is an fnmatch pattern on the path below /api2/json, either concrete
    (``/nodes/pve1/lxc/100/config``) or as a template (``/nodes/{node}/lxc/{vmid}/config``); ``method`` may be ``*``;
    ``times=None`` keeps the fault forever. Kinds:

    - ``lock``: the request fails as on a CT with a config lock: HTTP 500 "CT is locked (<lock>)" (``status=409``
      answers with that code instead, which PVE itself does not do);
    - ``error500``: HTTP 500 with ``message`` (default "internal error");
    - ``slow_task``: the task the request starts keeps running ``duration`` seconds;
    - ``task_fail``: the task the request starts ends with ``message`` as exitstatus, ``lines`` before it in its log
      (defaults are what that task type writes), and its effect undone;
    - ``timeout``: the response is held back ``delay`` seconds (the request is then carried out as usual).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []

    def add(self, method, path, kind, times=1, **options):
        fault = Fault(method, path, kind, times=times, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self):
        with self._lock:
            del self._faults[:]

    def take(self, method, path, template, kinds):
        """Consume one use of the first matching fault of these kinds."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(method, path, template) and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    def __len__(self):
        with self._lock:
            return len([fault for fault in self._faults if fault.times is None or fault.times > 0])


class RequestRecord:
    """One request as the server saw it: parameters are those of the query string and body (password masked)."""

    def __init__(self, method, path, params):
        self.method = method
        self.path = path
        self.params = params
        self.status = None
        self.user = None
        self.template = None

    def __repr__(self):
        return "<%s %s %r -> %s>" % (self.method, self.path, self.params, self.status)


class Context:
    """Per request: who asks, and the task fault the request may carry."""

    def __init__(self, sim, method, path, template, user):
        self.sim = sim
        self.method = method
        self.path = path
        self.template = template
        self.user = user
        self.extra = {}
        self.fingerprint = sim.fingerprint

    def task_fault(self):
        return self.sim.faults.take(self.method, self.path, self.template, ("slow_task", "task_fail"))


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1/localhost (usable as its own CA): (cert path, key path, sha256 fingerprint)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u"pve1.proxmox-sim.invalid"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, u"PVE Cluster Node")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(u"localhost"), x509.IPAddress(ipaddress.ip_address(u"127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path = os.path.join(directory, "pve-ssl.pem")
    key_path = os.path.join(directory, "pve-ssl.key")
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return cert_path, key_path, ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim = None

    def handle_error(self, request, client_address):
        # A client refusing the certificate, or hanging up: what PVE's server shrugs off too.
        self.sim.connection_errors += 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pve-api-daemon/3.0"
    sys_version = ""

    def setup(self):
        self.request.do_handshake()
        BaseHTTPRequestHandler.setup(self)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        return

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_DELETE(self):
        self._serve("DELETE")

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        text = raw.decode("utf-8")
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            data = json.loads(text)
            return dict((key, ("1" if value else "0") if isinstance(value, bool) else str(value)) for key, value in data.items())
        return dict(parse_qsl(text, keep_blank_values=True))

    def _serve(self, method):
        sim = self.server.sim
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            params.update(self._body())
        except ValueError:
            self._send(400, "unable to parse request body", {"data": None})
            return
        path = unquote(url.path)
        rel = path[len(API_PREFIX):] if path.startswith(API_PREFIX + "/") else path
        record = RequestRecord(method, rel, dict((key, "********" if key == "password" else value) for key, value in params.items()))
        status, reason, payload = sim.dispatch(method, rel, params, self.headers, record)
        record.status = status
        with sim.records_lock:
            sim.requests.append(record)
        self._send(status, reason, payload)

    def _send(self, status, reason, payload):
        body = json.dumps(payload).encode("utf-8")
        reason = " ".join(reason.strip().splitlines()) if reason else None
        self.send_response(status, reason.encode("latin-1", "replace").decode("latin-1") if reason else None)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=0")
        self.send_header("Pragma", "no-cache")
        self.end_headers()
        self.wfile.write(body)


class ProxmoxSimulator:
    """A PVE 9.1.3 API server for the LXC paths, on https://127.0.0.1:<random port>.

    ``users`` maps ``user@realm`` to a password (or ``{"password": ..., "readonly": True}``), ``tokens`` maps
    ``user@realm!tokenid`` to a secret (or ``{"secret": ..., "readonly": True}``); read-only principals get PVE's
    403 on writes. ``task_duration`` is how long a worker task runs (seconds).
    """

    def __init__(self, nodes=("pve1",), users=None, tokens=None, task_duration=0.2, schema_path=SCHEMA_PATH, host="127.0.0.1"):
        self.host = host
        self.port = None
        self.schema = ApiSchema(schema_path)
        self.cluster = Cluster(self.schema, nodes=nodes, task_duration=task_duration)
        self.users = dict((name, value if isinstance(value, dict) else {"password": value})
                          for name, value in (DEFAULT_USERS if users is None else users).items())
        self.tokens = dict((name, value if isinstance(value, dict) else {"secret": value})
                           for name, value in (DEFAULT_TOKENS if tokens is None else tokens).items())
        self.faults = Faults()
        self.requests = []
        self.records_lock = threading.Lock()
        self.connection_errors = 0
        self.tickets = {}
        self._tmpdir = None
        self._server = None
        self._thread = None
        self._stopping = threading.Event()
        self.ca_path = None
        self.fingerprint = None

    # --- life cycle -----------------------------------------------------------------------------------------------

    def start(self):
        self._tmpdir = tempfile.mkdtemp(prefix="proxmox-sim-")
        self.ca_path, key_path, self.fingerprint = make_certificate(self._tmpdir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_path, key_path)
        self._server = _Server((self.host, 0), _Handler)
        self._server.sim = self
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="proxmox-sim")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return "https://%s:%d%s" % (self.host, self.port, API_PREFIX)

    # --- helpers for tests ----------------------------------------------------------------------------------------

    def token_auth(self, token="root@pam!ansible"):
        """Keyword arguments for proxmoxer.ProxmoxAPI with one of the configured API tokens."""
        user, name = token.split("!", 1)
        return {"host": self.host, "port": self.port, "user": user, "token_name": name, "token_value": self.tokens[token]["secret"]}

    def password_auth(self, user="root@pam"):
        """Keyword arguments for proxmoxer.ProxmoxAPI with one of the configured users' password."""
        return {"host": self.host, "port": self.port, "user": user, "password": self.users[user]["password"]}

    def requests_to(self, method=None, path="*"):
        """The recorded requests with this method (any if None) whose path matches the fnmatch pattern."""
        with self.records_lock:
            return [record for record in self.requests if (method is None or record.method == method)
                    and (fnmatch.fnmatchcase(record.path, path) or (record.template and fnmatch.fnmatchcase(record.template, path)))]

    # --- the request cycle ----------------------------------------------------------------------------------------

    def dispatch(self, method, path, params, headers, record):
        """(status, reason, payload) of one request."""
        template, path_params = self.schema.match(path)
        record.template = template
        fault = self.faults.take(method, path, template, ("timeout",))
        if fault is not None:
            self._stopping.wait(fault.delay)
        try:
            if (template, method) == ("/access/ticket", "POST"):
                return 200, None, {"data": self._login(params)}
            user, readonly = self._authenticate(method, headers)
            record.user = user
            if template is None or (template, method) not in HANDLERS:
                raise ApiError(501, "Method '%s %s%s' not implemented" % (method, API_PREFIX, path))
            handler, privilege = HANDLERS[(template, method)]
            merged = dict(params)
            merged.update(path_params)
            typed, errors = self.schema.verify(template, method, merged)
            if errors:
                raise ApiError(400, PARAM_FAILED, errors)
            if readonly and privilege:
                acl_path = privilege[0].format(vmid=typed.get("vmid", ""))
                raise ApiError(403, "Permission check failed (%s, %s)" % (acl_path, privilege[1]))
            fault = self.faults.take(method, path, template, ("lock", "error500"))
            if fault is not None and fault.kind == "lock":
                raise ApiError(fault.status or 500, fault.message or "CT is locked (%s)" % fault.lock)
            if fault is not None:
                raise ApiError(fault.status or 500, fault.message or "internal error")
            ctx = Context(self, method, path, template, user)
            with self.cluster.lock:
                self.cluster.advance()
                data = handler(self.cluster, ctx, typed)
            payload = {"data": data}
            payload.update(ctx.extra)
            return 200, None, payload
        except ApiError as exc:
            payload = {"data": None}
            if exc.errors:
                payload["errors"] = exc.errors
            return exc.status, exc.message, payload

    def _login(self, params):
        username = params.get("username", "")
        if params.get("realm") and "@" not in username:
            username = "%s@%s" % (username, params["realm"])
        password = params.get("password", "")
        known = self.users.get(username)
        renewing = self.tickets.get(password, (None,))[0] == username
        if known is None or not (renewing or password == known.get("password")):
            raise ApiError(401, "authentication failure")
        stamp = "%08X" % int(time.time())
        secret = base64.b64encode(os.urandom(48)).decode("ascii")
        ticket = "PVE:%s:%s::%s" % (username, stamp, secret)
        csrf = "%s:%s" % (stamp, base64.b64encode(hashlib.sha256(secret.encode("ascii")).digest()).decode("ascii").rstrip("="))
        self.tickets[ticket] = (username, csrf)
        return {"username": username, "ticket": ticket, "CSRFPreventionToken": csrf, "clustername": "sim",
                "cap": {"vms": {"VM.Allocate": 1, "VM.PowerMgmt": 1, "VM.Config.Options": 1}}}

    def _authenticate(self, method, headers):
        """(user, read-only?) of a request, or ApiError 401 as PVE answers."""
        header = headers.get("Authorization")
        if header:
            match = TOKEN_HEADER.match(header.strip())
            if not match:
                raise ApiError(401, "invalid token value!")
            tokenid = "%s!%s" % (match.group("user"), match.group("token"))
            token = self.tokens.get(tokenid)
            if token is None:
                raise ApiError(401, "no such token '%s' for user '%s'" % (match.group("token"), match.group("user")))
            if token["secret"] != match.group("secret"):
                raise ApiError(401, "invalid token value!")
            return tokenid, bool(token.get("readonly"))
        cookie = headers.get("Cookie") or ""
        ticket = None
        for part in cookie.split(";"):
            name, dummy, value = part.strip().partition("=")
            if name == "PVEAuthCookie":
                ticket = unquote(value)
        if not ticket:
            raise ApiError(401, "No ticket")
        if ticket not in self.tickets:
            raise ApiError(401, "permission denied - invalid PVE ticket")
        user, csrf = self.tickets[ticket]
        if method in WRITE_METHODS and headers.get("CSRFPreventionToken") != csrf:
            raise ApiError(401, "Permission denied - invalid csrf token")
        return user, bool(self.users.get(user, {}).get("readonly"))
