# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``opdbus-ledger`` command line: verify, prove, show, search, export and count a ledger.

``main(argv)`` returns the exit status: 0 when all is well, 1 when a
verification fails (tampering, a proof that does not hold), 2 for a usage or
I/O error (one line on stderr, no traceback).

Subcommands are rows of ``COMMANDS``: (name, help, setup function taking the
subparser, run function taking the parsed arguments and returning the status).
Adding one is a row and two functions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import binascii
import collections
import json
import os
import sys

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import (
    LATEST, CheckpointError, default_key_path, list_checkpoints, parse_checkpoint, verify_checkpoint,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.export import (
    DEFAULT_COLLECTION, VECTORS_DIR, ExportError, RecordFilter, export_json, export_qdrant, find_similar,
    iter_records, open_ledger, result_msg,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.merkle import (
    HASH_SIZE, MerkleError, hash_leaf, verify_consistency, verify_inclusion,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.record import RecordError
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import INDEX_FILE, RECORDS_DIR
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.verify import verify

PROG = "opdbus-ledger"
LEDGER_ENV = "OPDBUS_LEDGER_DIR"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A usage or I/O problem: exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with usage errors as one line on stderr."""

    def error(self, message):
        self.exit(EXIT_USAGE, "%s: error: %s (see %s --help)\n" % (PROG, message, self.prog))


def _print(*lines):
    out = sys.stdout
    for line in lines:
        out.write(line + "\n")


def _dumps(obj, indent=None):
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=indent)


def _ledger_dir(args):
    path = getattr(args, "ledger", None) or os.environ.get(LEDGER_ENV)
    if not path:
        raise UsageError("no ledger directory: give --ledger DIR or set %s" % LEDGER_ENV)
    return path


def _read_text(path):
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError("cannot read %s: %s" % (path, exc)) from None


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text) from None
    if value < 0:
        raise argparse.ArgumentTypeError("%r is negative" % text)
    return value


def _hex32(text, what):
    try:
        raw = bytes.fromhex(text)
    except (TypeError, ValueError):
        raise UsageError("%s is not hex: %r" % (what, text)) from None
    if len(raw) != HASH_SIZE:
        raise UsageError("%s is not %d bytes of hex" % (what, HASH_SIZE))
    return raw


# ---------------------------------------------------------------------------
# filters and record output

def _add_filters(parser):
    group = parser.add_argument_group("filters (all given must hold; a repeated option matches any of its values)")
    for name in RecordFilter.FIELDS:
        group.add_argument("--%s" % name, action="append", metavar=name.upper(), help="only records whose %s is this" % name)
    group.add_argument("--since", metavar="TIME", help="only records at or after this ISO 8601 time")
    group.add_argument("--until", metavar="TIME", help="only records at or before this ISO 8601 time")
    group.add_argument("--jmespath", metavar="EXPR",
                       help="only records for which this JMESPath expression is truthy, e.g. \"result.rc != `0`\"")


def _filter(args):
    return RecordFilter(host=args.host, status=args.status, module=args.module, kind=args.kind, play=args.play,
                        task=args.task, since=args.since, until=args.until, jmespath_expr=args.jmespath)


COLUMNS = (("seq", 6, ">"), ("time", 27, "<"), ("kind", 8, "<"), ("status", 11, "<"), ("host", 16, "<"),
           ("module", 30, "<"), ("task", 0, "<"))


def _cell(value, width, align):
    text = "-" if value is None or value == "" else str(value)
    text = " ".join(text.split())
    if width and len(text) > width:
        text = text[:width - 1] + "~"
    if not width:
        return text
    return text.rjust(width) if align == ">" else text.ljust(width)


def _row(record, prefix=""):
    cells = [_cell(record.get(name), width, align) for name, width, align in COLUMNS]
    line = prefix + "  ".join(cells)
    msg = result_msg(record, 120)
    if msg:
        line += "  | " + msg
    return line


def _header(prefix=""):
    return prefix + "  ".join(_cell(name.upper(), width, align) for name, width, align in COLUMNS)


def _print_records(args, records):
    if args.json:
        for record in records:
            _print(_dumps(record))
        return
    _print(_header())
    for record in records:
        _print(_row(record))


# ---------------------------------------------------------------------------
# verify

def _setup_verify(parser):
    parser.add_argument("--public-key", metavar="FILE",
                        help="verifier key file (default <dir>.key.pub when present) to check the checkpoint signatures with")
    parser.add_argument("--snapshots", metavar="DIR", nargs="?", const="", default=None,
                        help="also check every btrfs snapshot (default directory <dir>.snapshots): each must be read-only, "
                             "taken of this ledger, and a prefix of it")
    parser.add_argument("--trusted-checkpoint", metavar="FILE",
                        help="a checkpoint kept elsewhere: the log must still extend it (catches truncation)")


def _run_verify(args):
    path = _ledger_dir(args)
    if not os.path.isdir(path):
        raise UsageError("ledger directory %s does not exist" % path)
    public_key = None
    if not args.public_key and os.path.isfile(default_key_path(path) + ".pub"):
        args.public_key = default_key_path(path) + ".pub"
    if args.public_key:
        if not os.path.isfile(args.public_key):
            raise UsageError("public key file %s does not exist" % args.public_key)
        public_key = _read_text(args.public_key)
    trusted = _read_text(args.trusted_checkpoint) if args.trusted_checkpoint else None
    try:
        report = verify(path, public_key=public_key, trusted_checkpoint=trusted)
    except CheckpointError as exc:
        raise UsageError("public key %s: %s" % (args.public_key, exc)) from None
    snapshot_problems, snapshot_count = _check_snapshots(args, path)
    for problem in snapshot_problems:
        report.add("snapshot", problem)
    if args.json:
        out = report.to_dict()
        if args.snapshots is not None:
            out["snapshots_checked"] = snapshot_count
        _print(_dumps(out, indent=2))
        return EXIT_OK if report.ok else EXIT_FAILED
    lines = [report.summary()]
    for problem in report.problems[1:]:
        lines.append("problem: %s" % problem)
    if report.ok:
        lines.append("path: %s" % report.path)
    lines.append("checkpoints: %d signatures verified, %d checked without a key"
                 % (report.checkpoints_verified, report.checkpoints_unsigned_checked))
    trusted_state = "not given"
    if report.trusted_checked:
        trusted_state = "consistent" if report.ok else "checked"
    lines.append("public key: %s" % (args.public_key or "none (signatures not checked)"))
    if args.snapshots is not None:
        lines.append("snapshots: %d checked, %d problems" % (snapshot_count, len(snapshot_problems)))
    lines.append("trusted checkpoint: %s" % trusted_state)
    lines.extend("note: %s" % note for note in report.notes)
    _print(*lines)
    return EXIT_OK if report.ok else EXIT_FAILED


# ---------------------------------------------------------------------------
# prove and verify-proof

def _setup_prove(parser):
    parser.add_argument("seq", nargs="?", type=_positive_int, help="the record to prove included")
    parser.add_argument("--size", type=_positive_int, help="tree size to prove inclusion in (default: the whole ledger)")
    parser.add_argument("--consistency", nargs=2, metavar=("A", "B"),
                        help="prove that the tree of size A is a prefix of the tree of size B; "
                             "each a size or a checkpoint file")


def _size_or_checkpoint(value, ledger):
    """(size, checkpoint text or None) of a command-line size or checkpoint file."""
    if value.isdigit():
        return int(value), None
    text = _read_text(value)
    try:
        ckpt = parse_checkpoint(text)[0]
    except CheckpointError as exc:
        raise UsageError("%s is neither a tree size nor a checkpoint: %s" % (value, exc)) from None
    if ckpt.size > ledger.size:
        raise UsageError("checkpoint %s has size %d, the ledger only %d records" % (value, ckpt.size, ledger.size))
    if ledger.root(ckpt.size) != ckpt.root:
        raise VerifyFailure("checkpoint %s: its root is not the root of the ledger's first %d records" % (value, ckpt.size))
    return ckpt.size, text


class VerifyFailure(Exception):
    """A check failed: exit status 1."""


def _run_prove(args):
    ledger = open_ledger(_ledger_dir(args))
    try:
        if args.consistency:
            if args.seq is not None or args.size is not None:
                raise UsageError("--consistency takes no SEQ or --size")
            first, first_text = _size_or_checkpoint(args.consistency[0], ledger)
            second, second_text = _size_or_checkpoint(args.consistency[1], ledger)
            if not 0 <= first <= second <= ledger.size:
                raise UsageError("need 0 <= A <= B <= %d (the ledger's size), got %d and %d" % (ledger.size, first, second))
            proof = {"type": "consistency", "first": first, "second": second,
                     "first_root": ledger.root(first).hex(), "second_root": ledger.root(second).hex(),
                     "proof": [node.hex() for node in ledger.consistency_proof(first, second)]}
            if first_text:
                proof["first_checkpoint"] = first_text
            if second_text:
                proof["second_checkpoint"] = second_text
        else:
            if args.seq is None:
                raise UsageError("give the SEQ of a record, or --consistency A B")
            size = ledger.size if args.size is None else args.size
            if size > ledger.size:
                raise UsageError("--size %d is beyond the ledger's %d records" % (size, ledger.size))
            if args.seq >= size:
                raise UsageError("no record %d in a tree of size %d" % (args.seq, size))
            record = ledger.get(args.seq)
            proof = {"type": "inclusion", "seq": args.seq, "size": size, "record_hash": record["hash"],
                     "leaf_hash": ledger.leaf_hash(args.seq).hex(), "root": ledger.root(size).hex(),
                     "proof": [node.hex() for node in ledger.inclusion_proof(args.seq, size)]}
    finally:
        ledger.close()
    _print(_dumps(proof, indent=2))
    return EXIT_OK


def _setup_verify_proof(parser):
    parser.add_argument("file", metavar="FILE", help="a proof printed by prove (- for stdin)")
    parser.add_argument("--root", metavar="HEX", help="check an inclusion proof against this root")
    parser.add_argument("--first-root", metavar="HEX", help="check a consistency proof against this root of size A")
    parser.add_argument("--second-root", metavar="HEX", help="check a consistency proof against this root of size B")
    parser.add_argument("--checkpoint", action="append", metavar="FILE",
                        help="take the root of a size from this checkpoint (repeatable)")
    parser.add_argument("--public-key", metavar="FILE",
                        help="verify the checkpoints' signatures (given ones and those inside the proof) with this key")
    parser.add_argument("--record-hash", metavar="HEX", help="also check that the proven leaf is this record hash")


def _load_proof(path):
    text = _read_text(path)
    try:
        proof = json.loads(text)
    except ValueError as exc:
        raise UsageError("%s is not JSON: %s" % (path, exc)) from None
    kind = proof.get("type") if isinstance(proof, dict) else None
    needed = {"inclusion": ("seq", "size", "leaf_hash", "proof"),
              "consistency": ("first", "second", "proof")}.get(kind)
    if needed is None:
        raise UsageError("%s is not a proof printed by %s prove" % (path, PROG))
    missing = [key for key in needed if key not in proof]
    if missing or not isinstance(proof["proof"], list):
        raise UsageError("%s: malformed %s proof (missing %s)" % (path, kind, ", ".join(missing) or "proof list"))
    for key in ("seq", "size", "first", "second"):
        if key in proof and (not isinstance(proof[key], int) or isinstance(proof[key], bool)):
            raise UsageError("%s: %s is not an integer" % (path, key))
    return proof


def _checkpoint_roots(args, proof):
    """{size: (root, source)} from --checkpoint files and, with a public key, checkpoints inside the proof."""
    verifier = None
    if args.public_key:
        if not os.path.isfile(args.public_key):
            raise UsageError("public key file %s does not exist" % args.public_key)
        verifier = _read_text(args.public_key)
    notes = []
    texts = [(path, _read_text(path)) for path in args.checkpoint or ()]
    if verifier is not None:
        texts.extend(("the proof's %s" % key, proof[key]) for key in ("first_checkpoint", "second_checkpoint")
                     if isinstance(proof.get(key), str))
    roots = {}
    for source, text in texts:
        try:
            ckpt = verify_checkpoint(text, verifier) if verifier is not None else parse_checkpoint(text)[0]
        except CheckpointError as exc:
            raise VerifyFailure("checkpoint %s: %s" % (source, exc)) from None
        if verifier is None:
            notes.append("signature of checkpoint %s not checked (no --public-key)" % source)
        roots.setdefault(ckpt.size, (ckpt.root, "checkpoint %s" % source))
    return roots, notes


def _trusted_root(size, explicit, roots, ledger_roots, what):
    if explicit:
        return _hex32(explicit, what), "--%s" % what.replace("_", "-")
    if size in roots:
        return roots[size]
    if ledger_roots is not None:
        return ledger_roots(size)
    raise UsageError("no root for size %d: give --%s, --checkpoint or --ledger" % (size, what.replace("_", "-")))


def _ledger_roots(args):
    """A function size -> (root, source) over the ledger, or None when no ledger is given."""
    path = getattr(args, "ledger", None) or os.environ.get(LEDGER_ENV)
    if not path:
        return None
    ledger = open_ledger(path)
    try:
        size = ledger.size
        tree = ledger.tree
    finally:
        ledger.close()

    def root_of(wanted):
        if wanted > size:
            raise VerifyFailure("the ledger has %d records, the proof is for size %d" % (size, wanted))
        return tree.root(wanted), "ledger %s" % path
    return root_of


def _run_verify_proof(args):
    proof = _load_proof(args.file)
    nodes = []
    for num, node in enumerate(proof["proof"]):
        if not isinstance(node, str):
            raise UsageError("proof node %d is not a hex string" % num)
        try:
            nodes.append(bytes.fromhex(node))
        except ValueError:
            raise UsageError("proof node %d is not hex" % num) from None
    try:
        roots, notes = _checkpoint_roots(args, proof)
        ledger_roots = _ledger_roots(args)
        if proof["type"] == "inclusion":
            ok, message = _check_inclusion(args, proof, nodes, roots, ledger_roots)
        else:
            ok, message = _check_consistency(args, proof, nodes, roots, ledger_roots)
    except VerifyFailure as exc:
        ok, message, notes = False, "proof FAILED: %s" % exc, []
    if args.json:
        _print(_dumps({"ok": ok, "message": message, "notes": notes}, indent=2))
    else:
        _print(message, *["note: %s" % note for note in notes])
    return EXIT_OK if ok else EXIT_FAILED


def _check_inclusion(args, proof, nodes, roots, ledger_roots):
    seq, size = proof["seq"], proof["size"]
    leaf = _hex32(proof["leaf_hash"], "leaf_hash")
    for what, given in (("the proof's record_hash", proof.get("record_hash")), ("--record-hash", args.record_hash)):
        if given is not None and hash_leaf(_hex32(given, what)) != leaf:
            raise VerifyFailure("leaf hash %s is not the leaf of %s %s" % (leaf.hex()[:16], what, given[:16]))
    root, source = _trusted_root(size, args.root, roots, ledger_roots, "root")
    if not verify_inclusion(seq, size, leaf, nodes, root):
        raise VerifyFailure("record %d is not proven in the tree of size %d with root %s (root from %s)"
                            % (seq, size, root.hex(), source))
    return True, "inclusion proof OK: record %d is in the tree of size %d, root %s (root from %s)" % (seq, size, root.hex(), source)


def _check_consistency(args, proof, nodes, roots, ledger_roots):
    first, second = proof["first"], proof["second"]
    first_root, first_source = _trusted_root(first, args.first_root, roots, ledger_roots, "first_root")
    second_root, second_source = _trusted_root(second, args.second_root, roots, ledger_roots, "second_root")
    if not verify_consistency(first, second, nodes, first_root, second_root):
        raise VerifyFailure("the tree of size %d (root from %s) is not proven a prefix of the tree of size %d (root from %s)"
                            % (first, first_source, second, second_source))
    return True, ("consistency proof OK: the tree of size %d is a prefix of the tree of size %d, root %s (roots from %s; %s)"
                  % (first, second, second_root.hex(), first_source, second_source))


# ---------------------------------------------------------------------------
# show, tail, search

def _parse_seqs(values):
    ranges = []
    for value in values:
        low, sep, high = value.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise UsageError("%r is not a seq or a range A-B" % value)
        low = int(low)
        high = int(high) if sep else low
        if high < low:
            raise UsageError("empty range %r" % value)
        ranges.append((low, high))
    return ranges


def _setup_show(parser):
    parser.add_argument("seqs", nargs="*", metavar="SEQ", help="records to show: N or A-B (default: all)")
    _add_filters(parser)


def _run_show(args):
    record_filter = _filter(args)
    ledger = open_ledger(_ledger_dir(args))
    try:
        records = []
        if args.seqs:
            for low, high in _parse_seqs(args.seqs):
                if low >= ledger.size:
                    raise UsageError("no record %d: the ledger has %d records" % (low, ledger.size))
                records.extend(iter_records(ledger, record_filter, low, min(high + 1, ledger.size)))
            _print_records(args, records)
        else:
            _print_records(args, iter_records(ledger, record_filter))
    finally:
        ledger.close()
    return EXIT_OK


def _setup_tail(parser):
    parser.add_argument("-n", "--lines", type=_positive_int, default=10, metavar="N",
                        help="how many of the last matching records (default 10)")
    _add_filters(parser)


def _run_tail(args):
    record_filter = _filter(args)
    ledger = open_ledger(_ledger_dir(args))
    try:
        last = collections.deque(maxlen=args.lines)
        if record_filter.empty and args.lines:
            last.extend(ledger.records(max(ledger.size - args.lines, 0)))
        elif args.lines:
            last.extend(iter_records(ledger, record_filter))
    finally:
        ledger.close()
    _print_records(args, list(last))
    return EXIT_OK


def _setup_search(parser):
    parser.add_argument("text", nargs="?", help="free text to find records like (a failure message ...)")
    parser.add_argument("--like", type=_positive_int, metavar="SEQ", help="find records like this record instead")
    parser.add_argument("-k", type=_positive_int, default=10, help="how many records (default 10)")
    parser.add_argument("--min-score", type=float, default=None, metavar="S", help="leave out records scoring below S (cosine)")
    _add_filters(parser)


def _run_search(args):
    if (args.text is None) == (args.like is None):
        raise UsageError("give a TEXT or --like SEQ (one of them)")
    hits = find_similar(_ledger_dir(args), text=args.text, like_seq=args.like, k=args.k, record_filter=_filter(args),
                        min_score=args.min_score)
    if args.json:
        for score, record in hits:
            _print(_dumps({"score": round(score, 6), "record": record}))
        return EXIT_OK
    _print(_header("SCORE  "))
    for score, record in hits:
        _print(_row(record, "%.3f  " % score))
    return EXIT_OK


# ---------------------------------------------------------------------------
# export

def _setup_export(parser):
    parser.add_argument("--format", choices=("json", "qdrant"), default="json", help="json (default) or qdrant")
    parser.add_argument("-o", "--output", metavar="FILE", default="-", help="json: the file to write, mode 0600 (default: stdout)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--qdrant-path", metavar="DIR", help="qdrant: local mode, the database in this directory")
    target.add_argument("--qdrant-url", metavar="URL", help="qdrant: the server at this URL")
    parser.add_argument("--qdrant-api-key-env", metavar="VAR", help="qdrant: read the server's API key from this environment variable")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION, help="qdrant: collection name (default %s)" % DEFAULT_COLLECTION)
    parser.add_argument("--batch", type=_positive_int, default=256, help="qdrant: points per upsert (default 256)")
    _add_filters(parser)


def _run_export(args):
    path = _ledger_dir(args)
    record_filter = _filter(args)
    if args.format == "json":
        if args.qdrant_path or args.qdrant_url or args.qdrant_api_key_env:
            raise UsageError("--qdrant-* options go with --format qdrant")
        if args.output == "-":
            export_json(path, sys.stdout, record_filter=record_filter)
            return EXIT_OK
        try:
            done = export_json(path, args.output, record_filter=record_filter)
        except OSError as exc:
            raise UsageError("cannot write %s: %s" % (args.output, exc)) from None
        done["output"] = args.output
        _print(_dumps(done) if args.json else "exported %(records)d of %(size)d records to %(output)s (root %(root)s)" % done)
        return EXIT_OK
    if not (args.qdrant_path or args.qdrant_url):
        raise UsageError("--format qdrant needs --qdrant-path DIR or --qdrant-url URL")
    if args.output != "-":
        raise UsageError("-o goes with --format json")
    api_key = None
    if args.qdrant_api_key_env:
        api_key = os.environ.get(args.qdrant_api_key_env)
        if not api_key:
            raise UsageError("environment variable %s is not set" % args.qdrant_api_key_env)
    if args.batch == 0:
        raise UsageError("--batch must be positive")
    done = export_qdrant(path, path=args.qdrant_path, url=args.qdrant_url, api_key=api_key, collection=args.collection,
                         batch=args.batch, record_filter=record_filter)
    _print(_dumps(done) if args.json else
           "upserted %(upserted)d points into Qdrant collection %(collection)s (dim %(dim)d); it holds %(points)d" % done)
    return EXIT_OK


# ---------------------------------------------------------------------------
# stats

def _file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _dir_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(_file_size(os.path.join(root, name)) for name in files)
    return total


def _setup_stats(parser):
    """stats takes the global options only."""
    return parser


def _run_stats(args):
    path = _ledger_dir(args)
    ledger = open_ledger(path)
    counts = dict((name, collections.Counter()) for name in ("kind", "status", "host", "module"))
    first = last = None
    try:
        for record in ledger.records():
            for name, counter in counts.items():
                counter[record.get(name) or "-"] += 1
            if record.get("time"):
                first = record["time"] if first is None else min(first, record["time"])
                last = record["time"] if last is None else max(last, record["time"])
        segments = ledger.segments()
        stats = {"path": ledger.path, "records": ledger.size, "root": ledger.root().hex()}
    finally:
        ledger.close()
    checkpoints = [name for name, _text in list_checkpoints(path) if name != LATEST]
    latest = [text for name, text in list_checkpoints(path) if name == LATEST]
    latest_size = None
    if latest:
        try:
            latest_size = parse_checkpoint(latest[0].decode("utf-8", "replace"))[0].size
        except CheckpointError:
            latest_size = None
    vectors = 0
    vindex = os.path.join(path, VECTORS_DIR, "index.tsv")
    if os.path.exists(vindex):
        with open(vindex, "rb") as handle:
            vectors = sum(1 for _line in handle)
    stats.update({
        "by_kind": dict(counts["kind"]), "by_status": dict(counts["status"]),
        "by_host": dict(counts["host"]), "by_module": dict(counts["module"]),
        "segments": len(segments),
        "record_bytes": sum(_file_size(os.path.join(path, RECORDS_DIR, name)) for name, _first, _count in segments),
        "index_bytes": _file_size(os.path.join(path, INDEX_FILE)),
        "total_bytes": _dir_bytes(path),
        "checkpoints": len(checkpoints), "latest_checkpoint_size": latest_size,
        "vectors_cached": vectors, "first_time": first, "last_time": last,
    })
    if args.json:
        _print(_dumps(stats, indent=2))
        return EXIT_OK
    lines = ["ledger %s" % stats["path"],
             "records: %d in %d segments (%d bytes; index %d bytes; directory %d bytes)"
             % (stats["records"], stats["segments"], stats["record_bytes"], stats["index_bytes"], stats["total_bytes"]),
             "root: %s" % stats["root"],
             "checkpoints: %d (latest signs size %s)" % (stats["checkpoints"], "-" if latest_size is None else latest_size),
             "vectors cached: %d" % vectors,
             "first: %s" % (first or "-"), "last: %s" % (last or "-")]
    for name in ("kind", "status", "host", "module"):
        pairs = sorted(counts[name].items(), key=lambda item: (-item[1], str(item[0])))
        lines.append("by %s: %s" % (name, ", ".join("%s %d" % pair for pair in pairs) or "-"))
    _print(*lines)
    return EXIT_OK


# ---------------------------------------------------------------------------
# snapshots (btrfs)

def _manager(args, path):
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.snapshots import SnapshotManager
    retention = None
    if getattr(args, "retention", None):
        retention = {}
        for part in args.retention.split(","):
            name, sep, count = part.strip().partition("=")
            if not sep or not count.strip().isdigit():
                raise UsageError("--retention %r: expected name=count,... (hourly, daily, weekly, quarterly)" % args.retention)
            retention[name.strip()] = int(count)
    snapshot_dir = getattr(args, "snapshots", None) or getattr(args, "snapshot_dir", None) or None
    return SnapshotManager(path, snapshot_dir, retention)


def _check_snapshots(args, path):
    """(problems, snapshots checked) for verify --snapshots; nothing when not asked."""
    if args.snapshots is None:
        return [], 0
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.snapshots import SnapshotError
    manager = _manager(args, path)
    if not manager.supported:
        return ["snapshots not checked: %s" % manager.reason], 0
    ledger = open_ledger(path)
    try:
        return manager.check_snapshots(ledger), len(manager.list())
    except SnapshotError as exc:
        return [str(exc)], 0
    finally:
        ledger.close()


def _setup_snapshot(parser):
    parser.add_argument("--reason", default="manual", help="word in the snapshot's name (default manual)")
    parser.add_argument("--snapshot-dir", metavar="DIR", help="where snapshots go (default <dir>.snapshots)")
    parser.add_argument("--retention", metavar="SPEC", help="prune after the snapshot, e.g. hourly=5,daily=5,weekly=5,quarterly=5")
    parser.add_argument("--list", action="store_true", help="only list the snapshots")


def _run_snapshot(args):
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.snapshots import SnapshotError
    path = _ledger_dir(args)
    if not os.path.isdir(path):
        raise UsageError("ledger directory %s does not exist" % path)
    manager = _manager(args, path)
    taken, removed = None, []
    try:
        if not args.list:
            if not manager.supported:
                raise UsageError(manager.reason)
            # Under the writer's lock: no append is half written while the snapshot is taken.
            from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger, LedgerLockedError
            try:
                with Ledger(path):
                    taken = manager.snapshot(args.reason)
            except LedgerLockedError as exc:
                raise UsageError("%s; snapshots of a ledger being written are taken by its writer" % exc) from None
            if args.retention:
                removed = manager.prune()
        snaps = manager.list() if manager.supported else []
    except SnapshotError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _print(_dumps({"taken": taken, "removed": removed, "snapshots": snaps}, indent=2))
        return EXIT_OK
    lines = []
    if taken:
        lines.append("snapshot %s" % taken["path"])
    lines.extend("pruned %s" % name for name in removed)
    lines.extend("%s  %s  %s" % (info["name"], "ro" if info["readonly"] else "RW", info.get("uuid") or "-") for info in snaps)
    if not manager.supported:
        lines.append("no snapshots: %s" % manager.reason)
    _print(*lines)
    return EXIT_OK


def _setup_replicate(parser):
    parser.add_argument("target", metavar="TARGET_DIR", help="a directory on a btrfs filesystem (may be another one)")
    parser.add_argument("--snapshot-dir", metavar="DIR", help="the snapshots to send (default <dir>.snapshots)")


def _run_replicate(args):
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.snapshots import SnapshotError
    path = _ledger_dir(args)
    manager = _manager(args, path)
    try:
        sent = manager.replicate(args.target)
    except SnapshotError as exc:
        raise UsageError(str(exc)) from None
    details = getattr(manager, "last_replication", None) or [{"name": name} for name in sent]
    if args.json:
        _print(_dumps({"target": args.target, "sent": details}, indent=2))
        return EXIT_OK
    lines = ["%s -> %s (%s, %s bytes)" % (d["name"], args.target, "incremental from %s" % d["parent"] if d.get("parent") else "full",
                                          d.get("bytes", "?")) for d in details]
    _print(*(lines or ["%s: up to date" % args.target]))
    return EXIT_OK


# ---------------------------------------------------------------------------
# the parser

COMMANDS = (
    ("verify", "check the hash chain, leaf index, Merkle root and checkpoints; exit 1 naming the first bad record",
     _setup_verify, _run_verify),
    ("prove", "print an inclusion proof of a record, or a consistency proof between two sizes or checkpoints",
     _setup_prove, _run_prove),
    ("verify-proof", "check a proof printed by prove against the ledger, given roots or checkpoints",
     _setup_verify_proof, _run_verify_proof),
    ("show", "print records by seq, or all, through the filters", _setup_show, _run_show),
    ("tail", "print the last records that pass the filters", _setup_tail, _run_tail),
    ("search", "records most like a text or like another record, with their cosine score", _setup_search, _run_search),
    ("export", "write the ledger as one JSON document, or its vectors to Qdrant", _setup_export, _run_export),
    ("stats", "counts by kind, status, host and module; segments, bytes, checkpoints, first and last time",
     _setup_stats, _run_stats),
    ("snapshot", "take a read-only btrfs snapshot of the ledger (and prune by --retention), or --list them",
     _setup_snapshot, _run_snapshot),
    ("replicate", "send the snapshots missing on TARGET_DIR there, incrementally (btrfs send/receive)",
     _setup_replicate, _run_replicate),
)


def build_parser():
    parser = ArgumentParser(prog=PROG, description="Read, verify, prove, search and export an opdbus.infra audit ledger.")
    parser.add_argument("--ledger", metavar="DIR", help="ledger directory (default: $%s)" % LEDGER_ENV)
    parser.add_argument("--json", action="store_true", help="JSON output")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--ledger", metavar="DIR", default=argparse.SUPPRESS, help="ledger directory (default: $%s)" % LEDGER_ENV)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    subparsers.required = True
    for name, help_text, setup, run in COMMANDS:
        sub = subparsers.add_parser(name, help=help_text, description=help_text, parents=[common])
        setup(sub)
        sub.set_defaults(run=run)
    return parser


def main(argv=None):
    """Run the command line; return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return args.run(args)
    except VerifyFailure as exc:
        sys.stderr.write("%s: %s\n" % (PROG, exc))
        return EXIT_FAILED
    except (UsageError, ExportError) as exc:
        sys.stderr.write("%s: error: %s\n" % (PROG, exc))
        return EXIT_USAGE
    except (RecordError, MerkleError) as exc:
        sys.stderr.write("%s: error: %s (run %s verify)\n" % (PROG, exc, PROG))
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (| head): not an error; keep the interpreter quiet at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except (OSError, CheckpointError, binascii.Error, ValueError) as exc:
        sys.stderr.write("%s: error: %s\n" % (PROG, exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
