# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.

Leaf hash = SHA-256(0x00 || leaf); interior node = SHA-256(0x01 || left || right).
The ledger's leaf is the 32 raw bytes of a record's ``hash`` (see record.py),
so a proof can be checked from a record alone, without its full text.

``MerkleTree`` stores every complete subtree hash level by level (level k holds
the hashes of the aligned subtrees of 2**k leaves, packed 32 bytes each in a
bytearray).  Appending is O(1) amortised, building from n leaf hashes is O(n),
the root of any prefix and any proof take O(log n) stored-hash look-ups
(O(log^2 n) at worst for ragged ranges) and no leaf re-hashing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class MerkleError(ValueError):
    """A size or index out of range, or a malformed proof."""


def hash_leaf(data):
    """RFC 6962 leaf hash."""
    return hashlib.sha256(b"\x00" + bytes(data)).digest()


def hash_children(left, right):
    """RFC 6962 interior node hash."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n):
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaf_hashes):
    """Reference MTH over a list of leaf hashes (recursive, for tests and small inputs)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return hash_children(mth(leaf_hashes[:k]), mth(leaf_hashes[k:]))


class MerkleTree:
    """An append-only Merkle tree over leaf hashes, with stored complete subtrees."""

    def __init__(self):
        self._levels = [bytearray()]
        self._size = 0

    @classmethod
    def from_leaf_hashes(cls, data):
        """Build from packed 32-byte leaf hashes (bytes-like of length 32*n) in O(n)."""
        data = bytes(data)
        if len(data) % HASH_SIZE:
            raise MerkleError("packed leaf hashes are not a multiple of 32 bytes")
        tree = cls()
        tree._levels = [bytearray(data)]
        tree._size = len(data) // HASH_SIZE
        level = tree._levels[0]
        sha = hashlib.sha256
        while len(level) >= 2 * HASH_SIZE:
            pairs = len(level) // (2 * HASH_SIZE)
            nxt = bytearray(pairs * HASH_SIZE)
            mv = memoryview(level)
            for i in range(pairs):
                off = 2 * HASH_SIZE * i
                nxt[i * HASH_SIZE:(i + 1) * HASH_SIZE] = sha(b"\x01" + mv[off:off + 2 * HASH_SIZE]).digest()
            tree._levels.append(nxt)
            level = nxt
        return tree

    @property
    def size(self):
        return self._size

    def append(self, leaf_hash):
        """Append one leaf hash (32 bytes)."""
        if len(leaf_hash) != HASH_SIZE:
            raise MerkleError("a leaf hash is 32 bytes")
        self._levels[0] += leaf_hash
        self._size += 1
        k = 0
        while len(self._levels[k]) // HASH_SIZE % 2 == 0:
            level = self._levels[k]
            node = hash_children(bytes(level[-2 * HASH_SIZE:-HASH_SIZE]), bytes(level[-HASH_SIZE:]))
            if len(self._levels) == k + 1:
                self._levels.append(bytearray())
            self._levels[k + 1] += node
            k += 1

    def extend(self, leaf_hashes):
        for leaf in leaf_hashes:
            self.append(leaf)

    def leaf_hash(self, index):
        if not 0 <= index < self._size:
            raise MerkleError("leaf index %d out of range (size %d)" % (index, self._size))
        return bytes(self._levels[0][index * HASH_SIZE:(index + 1) * HASH_SIZE])

    def leaf_hashes(self, size=None):
        size = self._size if size is None else size
        return bytes(self._levels[0][:size * HASH_SIZE])

    def _node(self, level, index):
        return bytes(self._levels[level][index * HASH_SIZE:(index + 1) * HASH_SIZE])

    def _range(self, lo, hi):
        """MTH(D[lo:hi]) for a range the RFC recursion produces (lo aligned)."""
        n = hi - lo
        if n == 1:
            return self._node(0, lo)
        if n & (n - 1) == 0 and lo % n == 0:
            return self._node(n.bit_length() - 1, lo // n)
        k = _split(n)
        return hash_children(self._range(lo, lo + k), self._range(lo + k, hi))

    def _check_size(self, size):
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise MerkleError("tree size %d out of range (size %d)" % (size, self._size))
        return size

    def root(self, size=None):
        """MTH of the first ``size`` leaves (all leaves by default)."""
        size = self._check_size(size)
        if size == 0:
            return EMPTY_ROOT
        return self._range(0, size)

    def inclusion_proof(self, index, size=None):
        """RFC 9162 PATH(index, D[size]) as a list of 32-byte hashes."""
        size = self._check_size(size)
        if not 0 <= index < size:
            raise MerkleError("leaf index %d out of range (tree size %d)" % (index, size))
        proof = []
        lo, hi, m = 0, size, index
        while hi - lo > 1:
            k = _split(hi - lo)
            if m < k:
                proof.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range(lo, lo + k))
                lo, m = lo + k, m - k
        proof.reverse()
        return proof

    def consistency_proof(self, first, second=None):
        """RFC 9162 PROOF(first, D[second]) as a list of 32-byte hashes."""
        second = self._check_size(second)
        if not 0 <= first <= second:
            raise MerkleError("first size %d out of range (second size %d)" % (first, second))
        if first in (0, second):
            return []
        proof = []
        lo, hi, m, whole = 0, second, first, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range(lo, lo + k))
                lo, m, whole = lo + k, m - k, False
        if not whole:
            proof.append(self._range(lo, hi))
        proof.reverse()
        return proof


def verify_inclusion(index, size, leaf_hash, proof, root):
    """RFC 9162 section 2.1.3.2: True if ``proof`` shows leaf ``index`` in the tree of ``size``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, proof, first_root, second_root):
    """RFC 9162 section 2.1.4.2: True if ``proof`` shows tree ``first`` is a prefix of ``second``."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


class Frontier:
    """The right edge of an append-only Merkle tree: enough to append and to compute the root.

    ``hashes`` are the roots of the perfect subtrees the leaves so far decompose into, largest
    first (one per set bit of ``size``), so a tree of any size needs O(log n) memory. The root is
    the RFC 6962 MTH: the subtrees folded from the right. Used by a ledger's writer, which never
    needs proofs; proofs come from :class:`MerkleTree`.
    """

    MAGIC = b"opdbus-frontier-1\n"

    def __init__(self, size=0, hashes=()):
        if len(hashes) != bin(size).count("1"):
            raise MerkleError("a frontier of size %d has %d hashes, not %d" % (size, len(hashes), bin(size).count("1")))
        self.size = size
        self.hashes = [bytes(h) for h in hashes]

    @classmethod
    def from_leaf_hashes(cls, data, chunk=HASH_SIZE * 65536):
        """From packed 32-byte leaf hashes (any bytes-like), streaming."""
        frontier = cls()
        frontier.extend_packed(data, chunk)
        return frontier

    def extend_packed(self, data, chunk=HASH_SIZE * 65536):
        view = memoryview(data)
        if len(view) % HASH_SIZE:
            raise MerkleError("packed leaf hashes are not a multiple of 32 bytes")
        for off in range(0, len(view), chunk):
            part = bytes(view[off:off + chunk])
            for pos in range(0, len(part), HASH_SIZE):
                self.append(part[pos:pos + HASH_SIZE])

    def append(self, leaf_hash):
        hashes = self.hashes
        hashes.append(leaf_hash)
        n = self.size
        while n & 1:
            right = hashes.pop()
            hashes[-1] = hash_children(hashes[-1], right)
            n >>= 1
        self.size += 1

    def root(self):
        if not self.size:
            return EMPTY_ROOT
        acc = self.hashes[-1]
        for node in reversed(self.hashes[:-1]):
            acc = hash_children(node, acc)
        return acc

    def to_bytes(self):
        return self.MAGIC + self.size.to_bytes(8, "big") + b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, data):
        """Parse :meth:`to_bytes`; MerkleError when it is not a whole frontier."""
        head = len(cls.MAGIC) + 8
        if len(data) < head or not data.startswith(cls.MAGIC):
            raise MerkleError("not a frontier")
        size = int.from_bytes(data[len(cls.MAGIC):head], "big")
        body = data[head:]
        if len(body) != HASH_SIZE * bin(size).count("1"):
            raise MerkleError("frontier of size %d has %d bytes of hashes" % (size, len(body)))
        return cls(size, [body[i:i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)])
