# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exact similarity search over ledger vectors, with filters applied before ranking.

``VectorIndex`` keeps the vectors of records in one (n, dim) numpy array, row i
aligned with the metadata of record i: ``seq``, ``time`` (epoch seconds),
``host``, ``status`` and ``module`` (the three as int32 codes into small
vocabularies). A query is a unit vector; the score of a row is its dot product
with the query, which is the cosine because every stored vector is unit-length.
Filters become a boolean mask over the rows first, so ``k`` results are found
among the matching rows however rare they are; the top-k is an
``argpartition`` (O(n)), then a sort of those k only.

Memory (vectors only; metadata adds 28 bytes a row):

=========  =========  ==========  ==========
dim        dtype      100k rows   1M rows
=========  =========  ==========  ==========
1024       float32    410 MB      4.1 GB
1024       float16    205 MB      2.0 GB
512        float16    102 MB      1.0 GB
256        float16     51 MB      512 MB
=========  =========  ==========  ==========

The default storage is float32: exact, and BLAS multiplies it directly.
``dtype="float16"`` halves the memory, at a rounding error of about 1e-3 on
scores, but numpy has no fast float16 product: rows are converted to float32
``CHUNK`` rows at a time, and that conversion dominates (measured on a 2-core
machine, top-10 without filters: 100k x 1024 float32 15 ms, float16 190 ms;
1M x 1024 float32 150 ms, 1M x 256 float32 120 ms). Filters shrink the work to
the rows they keep. A saved index is opened with ``mmap``, so a large one need
not fit in memory to be searched. Brute force is exact (recall 1 by
construction); an approximate index (IVF coarse quantiser) is the next step
when queries at a million rows and more must take milliseconds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import datetime
import json
import math
import os

try:
    import numpy as np
except ImportError:  # reported by require_numpy() when an index is made
    np = None

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embed import normalise_text, require_numpy

Hit = collections.namedtuple("Hit", ["seq", "score", "host", "status", "module", "time"])

FILTER_KEYS = ("host", "status", "module", "from", "to")
_CATEGORIES = ("host", "status", "module")


class SearchError(Exception):
    """Base class of every error of this module."""


class UnknownRecord(SearchError):
    """No record with this sequence number is in the index."""


def parse_time(value):
    """Epoch seconds (float) of an ISO 8601 string (``Z`` allowed), a datetime or a number; NaN for None."""
    if value is None or value == "":
        return float("nan")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        try:
            moment = datetime.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise SearchError("not an ISO 8601 time: %r" % (value,))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def format_time(epoch):
    if epoch is None or math.isnan(epoch):
        return None
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    text = moment.isoformat()
    return text.replace("+00:00", "Z")


class VectorIndex:
    """Vectors of ledger records and their metadata, searchable by cosine with filters.

    ``dim``: the vector length (the embedder's). ``dtype``: ``float32`` or
    ``float16`` storage. ``embedder``: needed by :meth:`like_text` and
    :meth:`add_records` only.

    Filters (a dict, every key optional): ``host``, ``status``, ``module`` (a
    string or a list of strings: any of them), ``from`` and ``to`` (ISO 8601
    strings, datetimes or epoch seconds; both ends included). Records without a
    time never match a time filter.
    """

    CHUNK = 4096

    def __init__(self, dim, dtype="float32", embedder=None):
        require_numpy()
        self.dim = int(dim)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype("float32"), np.dtype("float16")):
            raise SearchError("dtype must be float32 or float16, not %s" % self.dtype)
        if embedder is not None and int(embedder.dim) != self.dim:
            raise SearchError("embedder %s has dim %d, the index %d" % (embedder.name, embedder.dim, self.dim))
        self.embedder = embedder
        self._size = 0
        self._vectors = np.zeros((0, self.dim), dtype=self.dtype)
        self._seq = np.zeros(0, dtype=np.int64)
        self._time = np.zeros(0, dtype=np.float64)
        self._codes = dict((name, np.zeros(0, dtype=np.int32)) for name in _CATEGORIES)
        self._vocab = dict((name, []) for name in _CATEGORIES)
        self._vocab_ids = dict((name, {}) for name in _CATEGORIES)
        self._row_of_seq = {}

    def __len__(self):
        return self._size

    @property
    def vectors(self):
        return self._vectors[:self._size]

    # -- adding ------------------------------------------------------------

    def _grow(self, needed):
        capacity = self._vectors.shape[0]
        if needed <= capacity and self._vectors.flags.writeable:
            return
        capacity = max(needed, 2 * capacity, 1024)
        vectors = np.zeros((capacity, self.dim), dtype=self.dtype)
        vectors[:self._size] = self._vectors[:self._size]
        self._vectors = vectors
        self._seq = np.resize(self._seq[:self._size], capacity)
        self._time = np.resize(self._time[:self._size], capacity)
        for name in _CATEGORIES:
            self._codes[name] = np.resize(self._codes[name][:self._size], capacity)

    def _code(self, name, value):
        value = "" if value is None else str(value)
        ids = self._vocab_ids[name]
        code = ids.get(value)
        if code is None:
            code = len(self._vocab[name])
            self._vocab[name].append(value)
            ids[value] = code
        return code

    def add(self, records, vectors):
        """Append records (dicts with at least ``seq``) and their unit vectors, row for row."""
        records = list(records)
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape != (len(records), self.dim):
            raise SearchError("expected vectors of shape (%d, %d), got %s" % (len(records), self.dim, vectors.shape))
        start = self._size
        self._grow(start + len(records))
        end = start + len(records)
        self._vectors[start:end] = vectors
        for row, record in enumerate(records, start):
            if "seq" not in record:
                raise SearchError("record without seq at row %d" % row)
            seq = int(record["seq"])
            if seq in self._row_of_seq:
                raise SearchError("record seq %d is already in the index" % seq)
            self._row_of_seq[seq] = row
            self._seq[row] = seq
            self._time[row] = parse_time(record.get("time"))
            for name in _CATEGORIES:
                self._codes[name][row] = self._code(name, record.get(name))
        self._size = end

    def add_records(self, records, cache=None):
        """Embed records (through ``cache`` when given, a :class:`VectorCache`) and add them."""
        records = list(records)
        if cache is not None:
            vectors = cache.get_records(records)
        elif self.embedder is not None:
            vectors = self.embedder.embed_records(records)
        else:
            raise SearchError("add_records needs an embedder or a vector cache")
        self.add(records, vectors)

    # -- searching ---------------------------------------------------------

    def _category_mask(self, name, wanted):
        if isinstance(wanted, str):
            wanted = [wanted]
        codes = [self._vocab_ids[name][value] for value in wanted if value in self._vocab_ids[name]]
        return np.isin(self._codes[name][:self._size], np.array(codes, dtype=np.int32))

    def mask(self, filters=None):
        """The boolean row mask of ``filters``, or None when nothing is filtered."""
        if not filters:
            return None
        unknown = set(filters) - set(FILTER_KEYS)
        if unknown:
            raise SearchError("unknown filter %s: use %s" % (", ".join(sorted(unknown)), ", ".join(FILTER_KEYS)))
        mask = np.ones(self._size, dtype=bool)
        for name in _CATEGORIES:
            if filters.get(name) is not None:
                mask &= self._category_mask(name, filters[name])
        times = self._time[:self._size]
        if filters.get("from") is not None:
            mask &= times >= parse_time(filters["from"])
        if filters.get("to") is not None:
            mask &= times <= parse_time(filters["to"])
        return mask

    def _scores(self, query, rows):
        """float32 scores of ``rows`` (all rows when None) against ``query``."""
        vectors = self._vectors
        count = self._size if rows is None else len(rows)
        if self.dtype == np.float32 and rows is None:
            return vectors[:count] @ query
        scores = np.empty(count, dtype=np.float32)
        for start in range(0, count, self.CHUNK):
            stop = min(start + self.CHUNK, count)
            block = vectors[start:stop] if rows is None else vectors[rows[start:stop]]
            scores[start:stop] = block.astype(np.float32, copy=False) @ query
        return scores

    def search(self, query_vector, k=10, filters=None, exclude_seq=None):
        """The ``k`` records most like ``query_vector`` among those ``filters`` keep, best first.

        Returns a list of :class:`Hit` (seq, score, host, status, module, time);
        ties are broken by ascending seq. ``exclude_seq``: a seq (or a list of
        them) never returned.
        """
        query = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dim:
            raise SearchError("query has dim %d, the index %d" % (query.shape[0], self.dim))
        k = int(k)
        if k <= 0 or self._size == 0:
            return []
        mask = self.mask(filters)
        if exclude_seq is not None:
            if mask is None:
                mask = np.ones(self._size, dtype=bool)
            for seq in ([exclude_seq] if isinstance(exclude_seq, int) else exclude_seq):
                row = self._row_of_seq.get(int(seq))
                if row is not None:
                    mask[row] = False
        rows = None if mask is None else np.flatnonzero(mask)
        if rows is not None and len(rows) == 0:
            return []
        scores = self._scores(query, rows)
        if k < len(scores):
            top = np.argpartition(-scores, k - 1)[:k]
        else:
            top = np.arange(len(scores))
        found = top if rows is None else rows[top]
        order = np.lexsort((self._seq[found], -scores[top]))
        hits = []
        for pos in order:
            row = int(found[pos])
            hits.append(Hit(int(self._seq[row]), float(scores[top[pos]]),
                            self._vocab["host"][self._codes["host"][row]],
                            self._vocab["status"][self._codes["status"][row]],
                            self._vocab["module"][self._codes["module"][row]],
                            format_time(float(self._time[row]))))
        return hits

    def vector_of(self, seq):
        row = self._row_of_seq.get(int(seq))
        if row is None:
            raise UnknownRecord("no record with seq %s in the index" % (seq,))
        return self._vectors[row].astype(np.float32)

    def like_record(self, seq, k=10, filters=None):
        """The ``k`` records most like record ``seq`` (never itself)."""
        return self.search(self.vector_of(seq), k=k, filters=filters, exclude_seq=int(seq))

    def like_text(self, text, k=10, filters=None):
        """The ``k`` records most like a free text (normalised as record texts are)."""
        if self.embedder is None:
            raise SearchError("like_text needs the index's embedder")
        return self.search(self.embedder.embed([normalise_text(text)])[0], k=k, filters=filters)

    # -- persistence -------------------------------------------------------

    VECTORS = "vectors.npy"
    META = "meta.npz"
    VOCAB = "vocab.json"

    def save(self, directory):
        """Write the index to ``directory`` (each file replaced atomically)."""
        os.makedirs(directory, exist_ok=True)
        size = self._size

        def write(name, writer):
            tmp = os.path.join(directory, name + ".tmp")
            with open(tmp, "wb") as handle:
                writer(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, os.path.join(directory, name))

        write(self.VECTORS, lambda handle: np.save(handle, np.ascontiguousarray(self._vectors[:size])))
        write(self.META, lambda handle: np.savez(handle, seq=self._seq[:size], time=self._time[:size],
                                                 **dict((name, self._codes[name][:size]) for name in _CATEGORIES)))
        vocab = {"dim": self.dim, "dtype": self.dtype.name, "size": size,
                 "embedder": None if self.embedder is None else self.embedder.name,
                 "vocab": self._vocab}
        write(self.VOCAB, lambda handle: handle.write(json.dumps(vocab, sort_keys=True).encode("utf-8")))

    @classmethod
    def load(cls, directory, embedder=None, mmap=True):
        """An index saved by :meth:`save`; vectors memory-mapped read-only unless ``mmap`` is False."""
        try:
            with open(os.path.join(directory, cls.VOCAB), "r", encoding="utf-8") as handle:
                vocab = json.load(handle)
            vectors = np.load(os.path.join(directory, cls.VECTORS), mmap_mode="r" if mmap else None)
            with np.load(os.path.join(directory, cls.META)) as meta:
                columns = dict((name, meta[name]) for name in meta.files)
        except (OSError, ValueError, KeyError) as exc:
            raise SearchError("cannot load the vector index in %s: %s" % (directory, exc))
        index = cls(vocab["dim"], dtype=vocab["dtype"], embedder=embedder)
        size = int(vocab["size"])
        if vectors.shape != (size, index.dim) or any(len(columns[name]) != size for name in ("seq", "time") + _CATEGORIES):
            raise SearchError("vector index in %s is inconsistent: %s rows of vectors, %d records" % (directory, vectors.shape, size))
        index._vectors = vectors
        index._seq = np.array(columns["seq"], dtype=np.int64)
        index._time = np.array(columns["time"], dtype=np.float64)
        for name in _CATEGORIES:
            index._codes[name] = np.array(columns[name], dtype=np.int32)
            index._vocab[name] = list(vocab["vocab"][name])
            index._vocab_ids[name] = dict((value, code) for code, value in enumerate(index._vocab[name]))
        index._size = size
        index._row_of_seq = dict((int(seq), row) for row, seq in enumerate(index._seq))
        return index
