# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a ledger for people and other systems: record filters, similarity, exports.

``RecordFilter``
    The filters shared by the command line, the exports and the lookup plugin:
    exact ``host``/``status``/``module``/``kind``/``play``/``task`` (each a
    value or a list of values, any of which matches), ``since``/``until``
    (ISO 8601, both ends included) and a JMESPath expression evaluated over each
    record (a record matches when the value is truthy in JMESPath's sense:
    not ``null``, ``false``, an empty string, list or object).

``find_similar``
    The records most like a text or like another record, through the ledger's
    vector cache ``<ledger>/vectors`` (records missing from it are embedded and
    appended; when the directory is not writable they are embedded in memory).

``export_json``
    One JSON document: the ledger's size, Merkle root and checkpoints, then the
    records in order, exactly as stored.  Every record keeps its ``hash`` and
    ``prev``, so the export alone re-verifies: each record re-hashes to its
    ``hash``, each ``prev`` is the hash before it, and the Merkle tree over the
    records' hashes has the exported root (which the signed checkpoint covers).

``export_qdrant``
    The records' vectors and metadata (never the ``result`` body) as points of a
    Qdrant collection, point id = seq.  Local mode (``path``) or a server (``url``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import math
import os

try:
    import numpy as np
except ImportError:  # reported by require_numpy() when vectors are needed
    np = None

try:
    import jmespath
    from jmespath.exceptions import JMESPathError
except ImportError as exc:  # reported when an expression is first used
    jmespath = None
    JMESPathError = ValueError
    JMESPATH_ERROR = exc
else:
    JMESPATH_ERROR = None

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import LATEST, list_checkpoints
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embed import (
    DEFAULT_DIM, EmbedError, VectorCache, load_embedder, record_text, require_numpy,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.record import RecordError
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.search import SearchError, VectorIndex, parse_time
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import (
    FILE_MODE, RECORDS_DIR, Ledger, LedgerError,
)

EXPORT_FORMAT = "opdbus-ledger-export"
EXPORT_VERSION = 1
VECTORS_DIR = "vectors"
DEFAULT_COLLECTION = "opdbus-ledger"
QDRANT_PAYLOAD_FIELDS = ("seq", "time", "host", "task", "play", "playbook", "module", "status", "changed", "hash")
QDRANT_PACKAGE = "qdrant-client"
MSG_CHARS = 300


class ExportError(Exception):
    """A usage or I/O problem of this module (a bad filter, a missing ledger, a missing package)."""


# ---------------------------------------------------------------------------
# filters

def _as_list(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        values = [str(item) for item in value if item is not None and item != ""]
        return values or None
    if value == "":
        return None
    return [str(value)]


def _truthy(value):
    """JMESPath truthiness: false for null, false, "", [] and {} only (0 is true)."""
    return not (value is None or value is False or value == "" or value == [] or value == {})


class RecordFilter:
    """Which records to keep; every criterion is optional and all given ones must hold."""

    FIELDS = ("host", "status", "module", "kind", "play", "task")

    def __init__(self, host=None, status=None, module=None, kind=None, play=None, task=None,
                 since=None, until=None, jmespath_expr=None):
        self.values = {}
        for name, value in zip(self.FIELDS, (host, status, module, kind, play, task)):
            values = _as_list(value)
            if values is not None:
                self.values[name] = frozenset(values)
        try:
            self.since = parse_time(since) if since not in (None, "") else None
            self.until = parse_time(until) if until not in (None, "") else None
        except SearchError as exc:
            raise ExportError(str(exc)) from None
        self.expression = jmespath_expr or None
        self._compiled = None
        if self.expression:
            if jmespath is None:
                raise ExportError("JMESPath filters need the Python library jmespath (pip install jmespath): %s" % JMESPATH_ERROR)
            try:
                self._compiled = jmespath.compile(self.expression)
            except JMESPathError as exc:
                message = str(exc).split("\n", 1)[0].rstrip(":")
                if message.endswith(", for expression"):
                    message = message[:-len(", for expression")]
                raise ExportError("bad JMESPath expression %r: %s" % (self.expression, message)) from None

    @property
    def empty(self):
        return not self.values and self.since is None and self.until is None and self._compiled is None

    def to_dict(self):
        out = dict((name, sorted(values)) for name, values in self.values.items())
        if self.since is not None:
            out["since"] = _iso(self.since)
        if self.until is not None:
            out["until"] = _iso(self.until)
        if self.expression:
            out["jmespath"] = self.expression
        return out

    def search_filters(self):
        """The part of this filter ``VectorIndex`` applies itself (host, status, module, time)."""
        out = {}
        for name in ("host", "status", "module"):
            if name in self.values:
                out[name] = sorted(self.values[name])
        if self.since is not None:
            out["from"] = self.since
        if self.until is not None:
            out["to"] = self.until
        return out

    def __call__(self, record):
        for name, values in self.values.items():
            value = record.get(name)
            if value is None or str(value) not in values:
                return False
        if self.since is not None or self.until is not None:
            try:
                moment = parse_time(record.get("time"))
            except SearchError:
                return False
            if math.isnan(moment):  # a record without a time never matches a time filter
                return False
            if self.since is not None and moment < self.since:
                return False
            if self.until is not None and moment > self.until:
                return False
        if self._compiled is not None:
            try:
                return _truthy(self._compiled.search(record))
            except JMESPathError:
                # A type error on this record's data (a function applied to null ...): not a match.
                return False
        return True


def _iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------
# opening

def open_ledger(ledger_dir):
    """A read-only ``Ledger`` of ``ledger_dir``; ExportError when it is not a ledger directory."""
    if not ledger_dir:
        raise ExportError("no ledger directory given")
    if not os.path.isdir(ledger_dir):
        raise ExportError("ledger directory %s does not exist" % ledger_dir)
    if not os.path.isdir(os.path.join(ledger_dir, RECORDS_DIR)):
        raise ExportError("%s is not a ledger directory (no %s/)" % (ledger_dir, RECORDS_DIR))
    try:
        return Ledger(ledger_dir, readonly=True)
    except (LedgerError, OSError) as exc:
        raise ExportError("cannot open the ledger in %s: %s" % (ledger_dir, exc)) from None


def iter_records(ledger, record_filter=None, start=0, stop=None):
    """The records of ``ledger`` that ``record_filter`` keeps, in order."""
    for record in ledger.records(start, stop):
        if record_filter is None or record_filter(record):
            yield record


def _cache_embedder(vectors_dir):
    """The embedder the cache in ``vectors_dir`` was made with (hashing, default dim, when new)."""
    meta_path = os.path.join(vectors_dir, VectorCache.META)
    name, dim = "hashing", DEFAULT_DIM
    if os.path.exists(meta_path):
        try:
            with open(meta_path, "r", encoding="utf-8") as handle:
                meta = json.load(handle)
            name, dim = meta.get("embedder", name), int(meta.get("dim", dim))
        except (OSError, ValueError, TypeError) as exc:
            raise ExportError("unreadable vector cache metadata %s: %s" % (meta_path, exc)) from None
    try:
        return load_embedder(name, dim=dim if name == "hashing" else None)
    except EmbedError as exc:
        raise ExportError(str(exc)) from None


class RecordVectors:
    """Vectors of records from ``<ledger>/vectors``, or embedded in memory when that cannot be written."""

    def __init__(self, ledger_dir):
        try:
            require_numpy()
        except EmbedError as exc:
            raise ExportError(str(exc)) from None
        self.directory = os.path.join(ledger_dir, VECTORS_DIR)
        self.embedder = _cache_embedder(self.directory)
        self.cache = None
        self.cached = False
        try:
            self.cache = VectorCache(self.directory, self.embedder)
            self.cached = True
        except EmbedError as exc:
            raise ExportError(str(exc)) from None
        except OSError:
            self.cache = None

    @property
    def dim(self):
        return int(self.embedder.dim)

    def of_records(self, records):
        records = list(records)
        if not records:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.cache is not None:
            try:
                return self.cache.get_records(records)
            except OSError:
                self.cache = None
        return self.embedder.embed([record_text(record) for record in records])


def find_similar(ledger_dir, text=None, like_seq=None, k=10, record_filter=None, min_score=None, ledger=None):
    """The ``k`` records most like ``text`` (or like record ``like_seq``, never itself), best first.

    Returns ``[(score, record)]``.  Only records ``record_filter`` keeps are ranked.
    """
    if (text is None) == (like_seq is None):
        raise ExportError("give a text or a record seq to compare with, not both")
    own = ledger is None
    ledger = open_ledger(ledger_dir) if own else ledger
    try:
        query_record = None
        if like_seq is not None:
            try:
                query_record = ledger.get(int(like_seq))
            except (KeyError, ValueError):
                raise ExportError("no record with seq %s (the ledger has %d)" % (like_seq, ledger.size)) from None
        records = list(iter_records(ledger, record_filter))
        by_seq = dict((record["seq"], record) for record in records)
    except RecordError as exc:
        raise ExportError("unreadable record (run verify): %s" % exc) from None
    finally:
        if own:
            ledger.close()
    vectors = RecordVectors(ledger_dir)
    index = VectorIndex(vectors.dim, embedder=vectors.embedder)
    if records:
        index.add(records, vectors.of_records(records))
    if query_record is not None:
        hits = index.search(vectors.of_records([query_record])[0], k=k, exclude_seq=query_record["seq"])
    else:
        hits = index.like_text(text, k=k)
    out = []
    for hit in hits:
        if min_score is not None and hit.score < min_score:
            continue
        out.append((hit.score, by_seq[hit.seq]))
    return out


def result_msg(record, limit=MSG_CHARS):
    """The ``msg`` of a record's result as text (JSON for a non-string), at most ``limit`` characters."""
    result = record.get("result")
    if not isinstance(result, dict) or result.get("msg") in (None, ""):
        return None
    msg = result["msg"]
    if not isinstance(msg, str):
        msg = json.dumps(msg, sort_keys=True, ensure_ascii=False, default=str)
    msg = " ".join(msg.split())
    if limit and len(msg) > limit:
        msg = msg[:max(limit - 3, 0)] + "..."
    return msg


# ---------------------------------------------------------------------------
# JSON export

def open_private(path):
    """A text file at ``path`` opened for writing, created (or reset to) mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "w", encoding="utf-8")


def _checkpoints(ledger_dir):
    latest = None
    stored = []
    for name, data in list_checkpoints(ledger_dir):
        text = data.decode("utf-8", "replace")
        if name == LATEST:
            latest = text
        else:
            stored.append({"name": name, "text": text})
    return latest, stored


def _dump(obj):
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, allow_nan=False)


def export_json(ledger_dir, out, record_filter=None, start=0, stop=None):
    """Write the JSON export of ``ledger_dir`` to ``out`` (a path, written 0600 atomically, or a text stream).

    The document: ``format``, ``version``, ``exported_at``, ``ledger`` (``size``,
    ``root`` hex, ``checkpoint``: the latest checkpoint note or null,
    ``checkpoints``: every stored one), ``complete`` (true when every record of
    the ledger is in it), ``filters`` and ``records`` (stored records, in order).
    Returns ``{"records": n, "size": ..., "root": ..., "complete": ...}``.
    """
    ledger = open_ledger(ledger_dir)
    try:
        size = ledger.size
        root = ledger.root(size).hex()
        latest, stored = _checkpoints(ledger_dir)
        filters = record_filter.to_dict() if record_filter is not None else {}
        header = {
            "format": EXPORT_FORMAT, "version": EXPORT_VERSION,
            "exported_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "ledger": {"path": os.path.abspath(ledger_dir), "size": size, "root": root,
                       "checkpoint": latest, "checkpoints": stored},
            "filters": filters,
        }
        if isinstance(out, str):
            tmp = out + ".tmp"
            try:
                with open_private(tmp) as handle:
                    count = _write_document(handle, header, ledger, record_filter, start, stop, size)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, out)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        else:
            count = _write_document(out, header, ledger, record_filter, start, stop, size)
    except RecordError as exc:
        raise ExportError("unreadable record (run verify): %s" % exc) from None
    finally:
        ledger.close()
    return {"records": count, "size": size, "root": root, "complete": count == size}


def _write_document(handle, header, ledger, record_filter, start, stop, size):
    """Stream the document: the header's keys, then the records one a line, then ``complete``."""
    handle.write("{\n")
    for key in sorted(header):
        handle.write("%s: %s,\n" % (_dump(key), _dump(header[key])))
    handle.write('"records": [')
    count = 0
    for record in iter_records(ledger, record_filter, start, stop):
        handle.write(",\n" if count else "\n")
        handle.write(_dump(record))
        count += 1
    handle.write("\n],\n")
    handle.write('"complete": %s\n}\n' % _dump(count == size))
    return count


def load_json_export(path_or_stream):
    """The document written by ``export_json`` (a dict)."""
    if isinstance(path_or_stream, str):
        with open(path_or_stream, "r", encoding="utf-8") as handle:
            doc = json.load(handle)
    else:
        doc = json.load(path_or_stream)
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise ExportError("not an %s document" % EXPORT_FORMAT)
    return doc


# ---------------------------------------------------------------------------
# Qdrant export

def _qdrant():
    try:
        from qdrant_client import QdrantClient, models
    except ImportError as exc:
        raise ExportError("export to Qdrant needs the Python package %s (pip install %s): %s"
                          % (QDRANT_PACKAGE, QDRANT_PACKAGE, exc)) from None
    return QdrantClient, models


def qdrant_payload(record):
    """What a Qdrant point carries of a record: metadata only, never the result body."""
    return dict((name, record.get(name)) for name in QDRANT_PAYLOAD_FIELDS)


def qdrant_client(path=None, url=None, api_key=None):
    """A ``QdrantClient``: local mode in ``path``, or the server at ``url``."""
    if (path is None) == (url is None):
        raise ExportError("give a Qdrant local path or a server URL, not both")
    client_class = _qdrant()[0]
    if path is not None:
        os.makedirs(path, mode=0o700, exist_ok=True)
        return client_class(path=path)
    return client_class(url=url, api_key=api_key)


def export_qdrant(ledger_dir, path=None, url=None, api_key=None, collection=DEFAULT_COLLECTION, batch=256,
                  record_filter=None):
    """Upsert the ledger's records as points of ``collection`` (created when missing); idempotent.

    Point id = seq; vector = the record's vector (the ledger's vector cache,
    cosine distance); payload = ``QDRANT_PAYLOAD_FIELDS``.  Returns
    ``{"collection", "dim", "upserted", "points", "created"}`` (``points``:
    the collection's point count afterwards).
    """
    batch = int(batch)
    if batch <= 0:
        raise ExportError("batch must be positive")
    models = _qdrant()[1]
    vectors = RecordVectors(ledger_dir)
    ledger = open_ledger(ledger_dir)
    client = qdrant_client(path=path, url=url, api_key=api_key)
    created = False
    upserted = 0
    try:
        if client.collection_exists(collection):
            params = client.get_collection(collection).config.params.vectors
            size = getattr(params, "size", None)
            if size is not None and int(size) != vectors.dim:
                raise ExportError("Qdrant collection %s holds vectors of dim %s, the ledger's are %d"
                                  % (collection, size, vectors.dim))
        else:
            client.create_collection(collection, vectors_config=models.VectorParams(size=vectors.dim,
                                                                                    distance=models.Distance.COSINE))
            created = True
        pending = []
        for record in iter_records(ledger, record_filter):
            pending.append(record)
            if len(pending) >= batch:
                upserted += _upsert(client, models, collection, pending, vectors)
                pending = []
        if pending:
            upserted += _upsert(client, models, collection, pending, vectors)
        points = client.count(collection, exact=True).count
    except RecordError as exc:
        raise ExportError("unreadable record (run verify): %s" % exc) from None
    finally:
        ledger.close()
        client.close()
    return {"collection": collection, "dim": vectors.dim, "upserted": upserted, "points": points, "created": created}


def _upsert(client, models, collection, records, vectors):
    rows = vectors.of_records(records)
    points = [models.PointStruct(id=int(record["seq"]), vector=[float(x) for x in rows[num]], payload=qdrant_payload(record))
              for num, record in enumerate(records)]
    client.upsert(collection_name=collection, points=points, wait=True)
    return len(points)
