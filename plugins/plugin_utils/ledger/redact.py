# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What of a task result may enter the ledger: no_log markers, redaction, size limit.

``Redactor.clean(result, no_log)`` returns a new JSON-ready value:

- a ``no_log`` result (the task's ``no_log``, or ``_ansible_no_log`` in the
  result or in a loop item) is replaced by ``NO_LOG_MARKER`` (plus ``changed``
  and, for loops, one marker per item): nothing of it is kept;
- keys Ansible uses internally (``_ansible_*``) are dropped;
- the value of every key whose name looks secret (``KEY_PATTERNS`` plus the
  user's ``extra_keys``: passwords, tokens, private keys, API keys, PSKs,
  cookies, credentials...) becomes ``MASK``, whatever its type;
- inside every string, spans that look secret (``VALUE_PATTERNS`` plus the
  user's ``extra_values``: PEM private key blocks, ``PrivateKey = ...`` lines of
  WireGuard configurations, ``password=...``, bearer tokens, PVE API tokens,
  credentials in URLs) are replaced by ``MASK`` (a pattern with a group named
  ``secret`` masks only that group);
- a result whose canonical JSON is longer than ``max_bytes`` (after redaction)
  is replaced by a summary: ``truncated``, its size and SHA-256, its top-level
  keys, and its ``msg``/``rc``/``changed``/``failed`` (so the record still says
  what happened, and the digest still pins what the result was).

Redaction is a pattern match: it is a safety net under ``no_log``, not a
replacement for it. A secret with no recognisable key or shape (a bare random
string in a ``stdout``) is only kept out by ``no_log: true`` on the task.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import re

MASK = "<redacted>"
NO_LOG_MARKER = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
DEFAULT_MAX_BYTES = 65536
SUMMARY_KEYS = ("msg", "rc", "changed", "failed", "skipped", "unreachable")

KEY_PATTERNS = (
    r"passw(or)?d",
    r"passphrase",
    r"(^|[_.-])pass($|[_.-])",
    r"secret",
    r"token",
    r"private[_.-]?key",
    r"priv[_.-]?key",
    r"api[_.-]?key",
    r"access[_.-]?key",
    r"authorization",
    r"credential",
    r"pre[_.-]?shared[_.-]?key",
    r"(^|[_.-])psk($|[_.-])",
    r"cookie",
    r"session[_.-]?id",
)

VALUE_PATTERNS = (
    # PEM private keys of any kind (RSA, EC, OPENSSH, ENCRYPTED, plain PKCS#8).
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    # key = value and key: value assignments (WireGuard, INI, YAML, env files, command lines).
    r"(?i)\b(private_?key|preshared_?key|passw(or)?d|passphrase|secret|token|api[_-]?key|access[_-]?key|psk)"
    r"(\"|')?(\s*[=:]\s*|\s+)(\"|')?(?P<secret>[^\s\"',;&]{4,})",
    # HTTP authorization values.
    r"(?i)\b(bearer|basic)\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
    # Proxmox VE API tokens: PVEAPIToken=user@realm!name=uuid
    r"PVEAPIToken=[^=\s]+=(?P<secret>[0-9A-Fa-f-]{8,})",
    # user:password@ in URLs.
    r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<secret>[^@\s/]+)@",
)


class RedactError(ValueError):
    """A user-supplied pattern does not compile."""


def _compile(patterns, flags=0):
    try:
        return [re.compile(pattern, flags) for pattern in patterns]
    except re.error as exc:
        raise RedactError("bad redaction pattern: %s" % exc) from exc


def canonical_bytes(value):
    """Compact, key-sorted JSON bytes of a JSON-ready value (what size and digests are taken over)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


class Redactor:
    """Cleans task results for the ledger; see the module docstring."""

    def __init__(self, extra_keys=(), extra_values=(), max_bytes=DEFAULT_MAX_BYTES):
        keys = _compile(list(KEY_PATTERNS) + list(extra_keys or ()), re.IGNORECASE)
        self._key_re = re.compile("|".join("(?:%s)" % k.pattern for k in keys), re.IGNORECASE)
        self._value_res = _compile(list(VALUE_PATTERNS), re.DOTALL) + _compile(extra_values or ())
        self.max_bytes = int(max_bytes) if max_bytes else 0
        self._key_cache = {}

    def secret_key(self, key):
        """True when a dict key's name looks like it holds a secret."""
        hit = self._key_cache.get(key)
        if hit is None:
            hit = bool(self._key_re.search(key))
            if len(self._key_cache) < 4096:
                self._key_cache[key] = hit
        return hit

    def text(self, value):
        """``value`` with every secret-looking span masked."""
        for pattern in self._value_res:
            if pattern.groupindex.get("secret"):
                value = pattern.sub(_mask_group, value)
            else:
                value = pattern.sub(MASK, value)
        return value

    def value(self, value):
        """A cleaned deep copy of any JSON-like value."""
        if isinstance(value, str):
            return self.text(value) if len(value) > 3 else str(value)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                key = str(key)
                if key.startswith("_ansible_"):
                    continue
                out[key] = MASK if self.secret_key(key) and item not in (None, "", False) else self.value(item)
            return out
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.value(item) for item in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace"))
        return self.text(str(value))

    def clean(self, result, no_log=False):
        """The ledger's copy of a task result (a dict)."""
        if not isinstance(result, dict):
            result = {"value": result}
        if no_log or result.get("_ansible_no_log") is True:
            return no_log_marker(result)
        if isinstance(result.get("results"), list):
            result = dict(result)
            result["results"] = [no_log_marker(item) if isinstance(item, dict) and item.get("_ansible_no_log") is True else item
                                 for item in result["results"]]
        cleaned = self.value(result)
        if self.max_bytes:
            data = canonical_bytes(cleaned)
            if len(data) > self.max_bytes:
                return summarise(cleaned, data, self.max_bytes)
        return cleaned


def _mask_group(match):
    start, end = match.span("secret")
    whole_start = match.start()
    text = match.group(0)
    return text[:start - whole_start] + MASK + text[end - whole_start:]


def no_log_marker(result):
    """What a no_log result becomes: the marker, ``changed`` and per-item markers."""
    out = {"censored": NO_LOG_MARKER, "changed": bool(result.get("changed", False))}
    if isinstance(result.get("results"), list):
        out["results"] = [{"censored": NO_LOG_MARKER} for item in result["results"]]
    return out


def summarise(cleaned, data, max_bytes):
    """The stand-in of a result larger than ``max_bytes``."""
    out = {
        "truncated": True,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "max_bytes": max_bytes,
        "keys": sorted(cleaned)[:50],
    }
    for key in SUMMARY_KEYS:
        if key in cleaned:
            value = cleaned[key]
            if isinstance(value, str) and len(value) > 2000:
                value = value[:2000] + "..."
            out[key] = value
    return out
