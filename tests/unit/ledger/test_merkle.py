# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random
import time

import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.merkle import (
    EMPTY_ROOT, MerkleError, MerkleTree, hash_leaf, mth, verify_consistency, verify_inclusion,
)

# Certificate Transparency's reference vectors (RFC 6962 test data).
CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (leaf index, tree size, path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (0, 1, []),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
LEAF_HASHES = [hash_leaf(leaf) for leaf in CT_LEAVES]


def _tree(leaves):
    tree = MerkleTree()
    tree.extend(leaves)
    return tree


def test_ct_roots_every_size():
    tree = MerkleTree()
    assert tree.root() == EMPTY_ROOT
    for n in range(9):
        assert mth(LEAF_HASHES[:n]).hex() == CT_ROOTS[n]
        assert tree.root(n).hex() == CT_ROOTS[n] if n <= tree.size else True
        if n < 8:
            tree.append(LEAF_HASHES[n])
    for n in range(9):
        assert tree.root(n).hex() == CT_ROOTS[n]
        assert MerkleTree.from_leaf_hashes(b"".join(LEAF_HASHES[:n])).root().hex() == CT_ROOTS[n]


@pytest.mark.parametrize("index,size,path", CT_INCLUSION)
def test_ct_inclusion_vectors(index, size, path):
    tree = _tree(LEAF_HASHES)
    proof = tree.inclusion_proof(index, size)
    assert [p.hex() for p in proof] == path
    assert verify_inclusion(index, size, LEAF_HASHES[index], proof, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize("first,second,path", CT_CONSISTENCY)
def test_ct_consistency_vectors(first, second, path):
    tree = _tree(LEAF_HASHES)
    proof = tree.consistency_proof(first, second)
    assert [p.hex() for p in proof] == path
    assert verify_consistency(first, second, proof, bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second]))


def _flip(data):
    return bytes([data[0] ^ 1]) + data[1:]


def test_property_all_proofs_up_to_64():
    leaves = [hash_leaf(b"leaf %d" % i) for i in range(64)]
    tree = _tree(leaves)
    roots = [mth(leaves[:n]) for n in range(65)]
    for n in range(1, 65):
        assert tree.root(n) == roots[n]
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            assert verify_inclusion(m, n, leaves[m], proof, roots[n])
            assert not verify_inclusion(m, n, _flip(leaves[m]), proof, roots[n])
            if n < 64:
                assert not verify_inclusion(m, n + 1, leaves[m], proof, roots[n + 1])
            assert not verify_inclusion((m + 1) % n, n, leaves[m], proof, roots[n]) or n == 1
            for j in range(len(proof)):
                bad = list(proof)
                bad[j] = _flip(bad[j])
                assert not verify_inclusion(m, n, leaves[m], bad, roots[n])
            if proof:
                assert not verify_inclusion(m, n, leaves[m], proof[:-1], roots[n])
                assert not verify_inclusion(m, n, leaves[m], proof + [proof[0]], roots[n])
        for m in range(1, n + 1):
            proof = tree.consistency_proof(m, n)
            assert verify_consistency(m, n, proof, roots[m], roots[n])
            if m < n:
                assert not verify_consistency(m, n, proof, _flip(roots[m]), roots[n])
                assert not verify_consistency(m, n, proof, roots[m], _flip(roots[n]))
                for j in range(len(proof)):
                    bad = list(proof)
                    bad[j] = _flip(bad[j])
                    assert not verify_consistency(m, n, bad, roots[m], roots[n])
                assert not verify_consistency(m, n, proof[:-1], roots[m], roots[n])


def test_incremental_equals_bulk_build():
    rng = random.Random(7)
    leaves = [hash_leaf(bytes([rng.randrange(256)])) for _i in range(1000)]
    bulk = MerkleTree.from_leaf_hashes(b"".join(leaves[:600]))
    bulk.extend(leaves[600:])
    inc = _tree(leaves)
    for n in (1, 2, 3, 599, 600, 601, 777, 1000):
        assert bulk.root(n) == inc.root(n) == mth(leaves[:n])


def test_range_errors():
    tree = _tree(LEAF_HASHES)
    for call in (lambda: tree.root(9), lambda: tree.inclusion_proof(8), lambda: tree.consistency_proof(5, 4),
                 lambda: tree.append(b"short"), lambda: MerkleTree.from_leaf_hashes(b"x")):
        with pytest.raises(MerkleError):
            call()


def test_million_leaves_fast(capsys):
    leaves = b"".join(hash_leaf(i.to_bytes(4, "big")) for i in range(1 << 20))
    start = time.perf_counter()
    tree = MerkleTree.from_leaf_hashes(leaves)
    built = time.perf_counter() - start
    start = time.perf_counter()
    root = tree.root(1000003)
    proof = tree.inclusion_proof(123457, 1000003)
    cproof = tree.consistency_proof(654321, 1000003)
    proofs = time.perf_counter() - start
    assert verify_inclusion(123457, 1000003, tree.leaf_hash(123457), proof, root)
    assert verify_consistency(654321, 1000003, cproof, tree.root(654321), root)
    assert proofs < 0.05
    with capsys.disabled():
        print("\n[bench] merkle: build 2^20 leaves %.2f s; root+inclusion+consistency at ~1M: %.2f ms" % (built, proofs * 1000))
