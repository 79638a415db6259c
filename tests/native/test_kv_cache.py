"""KV cache bookkeeping, without a model: cells, sequences, shifts, save/restore."""

import numpy as np
import pytest

from pyllama import _native


def seqs(*ids):
    return sum(1 << i for i in ids)


def claim(kv, positions, seq_ids):
    pos = np.asarray(positions, np.int32)
    s = np.full(len(pos), seqs(*seq_ids), np.uint64)
    cells = kv.find_slot(pos, s)
    assert cells is not None
    return list(cells)


def test_find_slot_claims_free_cells_and_is_all_or_nothing():
    kv = _native.KvCache(8)
    assert claim(kv, range(5), [0]) == [0, 1, 2, 3, 4]
    assert kv.n_used == 5
    assert kv.find_slot(np.arange(4, dtype=np.int32), np.ones(4, np.uint64)) is None  # 3 free: nothing claimed
    assert kv.n_used == 5
    kv.seq_rm(0, 1, 3)                        # frees cells 1, 2
    assert claim(kv, [10, 11, 12], [1]) == [5, 6, 7]
    assert sorted(claim(kv, [13, 14], [1])) == [1, 2]   # wraps around to the holes
    assert kv.n_used == 8


def test_seq_rm_ranges_and_shared_cells():
    kv = _native.KvCache(16)
    claim(kv, range(6), [0, 1])               # a prefix shared by two sequences
    claim(kv, range(6, 9), [0])
    claim(kv, range(6, 8), [1])
    kv.seq_rm(1, 4, -1)                       # seq 1 drops [4, inf): shared cells 4, 5 stay for seq 0
    assert (kv.seq_pos_min(1), kv.seq_pos_max(1)) == (0, 3)
    assert (kv.seq_pos_min(0), kv.seq_pos_max(0)) == (0, 8)
    assert kv.n_used == 9
    kv.seq_rm(-1, 0, 2)                       # every sequence, positions 0 and 1
    assert kv.seq_pos_min(0) == 2 and kv.seq_pos_min(1) == 2
    kv.seq_rm(0, -1, -1)
    assert kv.seq_pos_max(0) == -1 and kv.seq_n_cells(0) == 0
    assert kv.seq_n_cells(1) == 2


def test_seq_cp_keep_and_clear():
    kv = _native.KvCache(16)
    claim(kv, range(4), [2])
    kv.seq_cp(2, 5, 1, 3)
    assert kv.seq_n_cells(5) == 2 and (kv.seq_pos_min(5), kv.seq_pos_max(5)) == (1, 2)
    claim(kv, [0], [7])
    kv.seq_keep(5)
    pos, s = kv.cells()
    assert sorted(pos[pos >= 0].tolist()) == [1, 2]
    assert set(s[pos >= 0].tolist()) == {seqs(5)}
    assert kv.n_used == 2
    kv.clear()
    assert kv.n_used == 0 and kv.seq_pos_max(5) == -1


def test_seq_add_and_div_move_positions():
    kv = _native.KvCache(16)
    claim(kv, range(8), [0])
    kv.seq_add(0, 4, -1, -2)                  # positions 4..7 -> 2..5
    pos, _ = kv.cells()
    assert pos[:8].tolist() == [0, 1, 2, 3, 2, 3, 4, 5]
    kv.seq_add(0, 0, 2, -1)                   # 0 -> -1 (removed), 1 -> 0
    assert kv.n_used == 7 and kv.seq_pos_min(0) == 0
    kv.seq_div(0, -1, -1, 2)
    pos, _ = kv.cells()
    assert pos[1:8].tolist() == [0, 1, 1, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        kv.seq_div(0, -1, -1, 0)


@pytest.mark.parametrize("neox", [False, True])
def test_seq_add_re_rotates_k(neox):
    hd, n_rot = 64, 64
    spec = _native.KvLayerSpec(n_head_kv=2, head_dim_k=hd, head_dim_v=hd, n_rot=n_rot, rope_base=10000.0,
                               rope_neox=neox)
    kv = _native.KvCache(4, layers=[spec], type_k="f32", type_v="f32")
    rng = np.random.default_rng(1)
    k = rng.standard_normal((1, 2, hd)).astype(np.float32)
    (cell,) = claim(kv, [3], [0])
    kv.set_k(0, cell, _native.rope(k, np.array([3], np.int32), n_rot=n_rot, neox=neox).ravel())
    kv.seq_add(0, -1, -1, 7)                  # now at position 10
    want = _native.rope(k, np.array([10], np.int32), n_rot=n_rot, neox=neox).ravel()
    np.testing.assert_allclose(kv.get_k(0, cell), want, atol=2e-5)


def test_defrag_compacts_and_keeps_data():
    spec = _native.KvLayerSpec(n_head_kv=1, head_dim_k=32, head_dim_v=32)
    kv = _native.KvCache(8, layers=[spec], type_k="f16", type_v="q8_0")
    cells = claim(kv, range(8), [0])
    rng = np.random.default_rng(2)
    rows = {}
    for c in cells:
        k = rng.standard_normal(32).astype(np.float32)
        kv.set_k(0, c, k)
        kv.set_v(0, c, k * 2)
        rows[int(kv.cells()[0][c])] = (kv.get_k(0, c), kv.get_v(0, c))
    kv.seq_rm(0, 1, 4)
    kv.seq_rm(0, 5, 6)
    assert kv.fragmentation() == pytest.approx(1 - 4 / 8)
    kv.defrag()
    assert kv.fragmentation() == 0.0
    pos, _ = kv.cells()
    assert pos.tolist()[:4] == [0, 4, 6, 7] and (pos[4:] == -1).all()
    for c in range(4):
        np.testing.assert_array_equal(kv.get_k(0, c), rows[int(pos[c])][0])
        np.testing.assert_array_equal(kv.get_v(0, c), rows[int(pos[c])][1])


def test_save_restore_one_sequence():
    spec = _native.KvLayerSpec(n_head_kv=2, head_dim_k=32, head_dim_v=32)
    a = _native.KvCache(16, layers=[spec, spec], type_k="q8_0", type_v="f16")
    claim(a, range(3), [0])
    cells = claim(a, range(5), [1])
    rng = np.random.default_rng(3)
    for c in cells:
        for layer in range(2):
            a.set_k(layer, c, rng.standard_normal(64).astype(np.float32))
            a.set_v(layer, c, rng.standard_normal(64).astype(np.float32))
    blob = a.seq_save(1)
    b = _native.KvCache(16, layers=[spec, spec], type_k="q8_0", type_v="f16")
    claim(b, range(9), [4])                   # the restored cells land elsewhere
    b.seq_restore(2, blob)
    assert b.seq_n_cells(2) == 5 and (b.seq_pos_min(2), b.seq_pos_max(2)) == (0, 4)
    pos_b, _ = b.cells()
    for c in cells:
        p = a.cells()[0][c]
        (cb,) = [i for i in range(16) if pos_b[i] == p and b.cells()[1][i] == seqs(2)]
        for layer in range(2):
            np.testing.assert_array_equal(a.get_k(layer, c), b.get_k(layer, cb))
            np.testing.assert_array_equal(a.get_v(layer, c), b.get_v(layer, cb))
    assert b.seq_save(2) == blob
    with pytest.raises(_native.KvCacheError, match="not empty"):
        b.seq_restore(2, blob)
    with pytest.raises(_native.KvCacheError, match="layout"):
        _native.KvCache(16, layers=[spec], type_k="q8_0", type_v="f16").seq_restore(0, blob)
    with pytest.raises(_native.KvCacheError, match="truncated|size"):
        b.seq_restore(3, blob[:-7])
    small = _native.KvCache(4, layers=[spec, spec], type_k="q8_0", type_v="f16")
    with pytest.raises(_native.KvCacheError, match="no room"):
        small.seq_restore(0, blob)


def test_crafted_states_are_refused_before_anything_is_allocated():
    """A state's sizes come from its bytes: a huge cell count or repeated positions are
    errors (never a giant allocation, never a sequence that holds a position twice)."""
    spec = _native.KvLayerSpec(n_head_kv=1, head_dim_k=32, head_dim_v=32)
    a = _native.KvCache(8, layers=[spec], type_k="f16", type_v="f16")
    claim(a, range(3), [0])
    blob = bytearray(a.seq_save(0))
    header = 4 * 5 + 16  # magic, n_layer, type_k, type_v, n_cells; one layer's K/V cell sizes
    huge = bytearray(blob)
    huge[16:20] = (0xFFFFFFFF).to_bytes(4, "little")
    b = _native.KvCache(8, layers=[spec], type_k="f16", type_v="f16")
    with pytest.raises(_native.KvCacheError, match="no room"):
        b.seq_restore(0, bytes(huge))
    repeated = bytearray(blob)
    repeated[header + 4:header + 8] = (0).to_bytes(4, "little")  # positions 0, 0, 2
    with pytest.raises(_native.KvCacheError, match="repeated"):
        b.seq_restore(0, bytes(repeated))
    assert b.n_used == 0
    b.seq_restore(0, bytes(blob))
    assert b.seq_n_cells(0) == 3


def test_visible_cells_follow_positions_sequences_and_window():
    kv = _native.KvCache(16)
    claim(kv, [5, 6, 7], [0])
    claim(kv, [0, 1, 2, 3, 4], [0])           # earlier positions in later cells
    claim(kv, [0, 1], [1])
    vis = kv.visible(np.array([7, 1], np.int32), np.array([0, 1], np.int32))
    pos, _ = kv.cells()
    assert [int(pos[c]) for c in vis[0]] == list(range(8))      # position order, not cell order
    assert [int(pos[c]) for c in vis[1]] == [0, 1]
    win = kv.visible(np.array([7, 4], np.int32), np.array([0, 0], np.int32), window=3)
    assert [int(pos[c]) for c in win[0]] == [5, 6, 7]
    assert [int(pos[c]) for c in win[1]] == [2, 3, 4]


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        _native.KvCache(0)
    with pytest.raises(ValueError, match="cache type"):
        _native.KvCache(4, type_k="q4_K")
    kv = _native.KvCache(4)
    with pytest.raises(_native.KvCacheError, match="out of range"):
        kv.seq_rm(64, -1, -1)
    with pytest.raises(_native.KvCacheError):
        kv.seq_cp(-1, 0, -1, -1)
    with pytest.raises(ValueError, match="block size"):
        _native.KvCache(4, layers=[_native.KvLayerSpec(head_dim_k=48, head_dim_v=48)], type_k="q8_0")
