"""KVCache with many sequences: fork, truncate, the page budget, batched
attention, save/load, errors and threads (rq_cache_seq_* through the binding)."""
import threading

import numpy as np
import pytest

import reference as R
import rotorquant as rq

L, KV, HQ, D, PT = 2, 2, 4, 64, 16


def make(types=("turbo3", "turbo3"), **kw):
    return rq.KVCache(L, KV, D, types[0], types[1], n_threads=2, page_tokens=PT, **kw)


def tokens(n, seed):
    k = rq.data("outlier", n * KV, D, seed=seed).reshape(n, KV, D) * 2
    v = rq.data("isotropic", n * KV, D, seed=seed + 1000).reshape(n, KV, D)
    return k, v


def queries(n, seed):
    return rq.data("isotropic", n * HQ, D, seed=seed + 2000).reshape(n, HQ, D)


def fill(cache, seq, n, seed):
    k, v = tokens(n, seed)
    for layer in range(L):
        cache.append(layer, k, v, seq=seq)
    return k, v


def test_sequence_zero_and_ids():
    c = make()
    assert c.sequences == [0]
    c.add_sequence(7)
    c.add_sequence(3)
    assert c.sequences == [0, 3, 7]
    assert c.n_tokens_of(7) == 0 and c.pages_in_use == 0
    c.remove_sequence(3)
    assert c.sequences == [0, 7]
    assert c.pages_available is None and c.page_bytes > 0


def test_fork_shares_pages_and_copies_one_on_write():
    c = make()
    k, v = fill(c, 0, PT + 4, seed=1)  # per layer: one full page + one partly filled
    assert c.pages_in_use == 2 * L
    c.fork(0, 1)
    assert c.sequences == [0, 1]
    assert c.pages_in_use == 2 * L  # nothing copied
    assert all(c.n_tokens_of(1, layer) == PT + 4 for layer in range(L))
    q = queries(1, 1)
    for layer in range(L):
        assert np.array_equal(c.attention(layer, q, HQ, seq=1), c.attention(layer, q, HQ, seq=0))
    k2, v2 = tokens(1, seed=2)
    for layer in range(L):
        c.append(layer, k2, v2, seq=1)  # into the shared, partly filled page: copied once
        assert c.pages_in_use == 2 * L + layer + 1
    c.append(0, k2, v2, seq=1)  # the copy is the child's own now
    assert c.pages_in_use == 3 * L
    assert c.n_tokens_of(0, 0) == PT + 4 and c.n_tokens_of(1, 0) == PT + 6
    c.remove_sequence(1)
    assert c.pages_in_use == 2 * L


def test_truncate_frees_pages():
    c = make()
    fill(c, 0, 3 * PT, seed=3)
    assert c.pages_in_use == 3 * L
    c.truncate(0, PT + 1)
    assert c.pages_in_use == 2 * L and c.n_tokens_of(0, 1) == PT + 1
    c.truncate(0, 0)
    assert c.pages_in_use == 0 and c.n_tokens == 0


def test_truncate_equals_shorter_append():
    a, b = make(), make()
    k, v = tokens(40, seed=4)
    a.append(0, k, v)
    a.truncate(0, 25)
    b.append(0, k[:25], v[:25])
    q = queries(2, 4)
    assert np.array_equal(a.attention(0, q, HQ), b.attention(0, q, HQ))


def test_out_of_budget_append_raises_memory_error_and_changes_nothing():
    probe = make()
    c = make(max_bytes=3 * probe.page_bytes)
    assert c.max_bytes == 3 * probe.page_bytes
    assert c.pages_available == 3
    k, v = tokens(2 * PT, seed=5)
    c.append(0, k, v)
    assert c.pages_in_use == 2 and c.pages_available == 1
    q = queries(1, 5)
    before = c.attention(0, q, HQ)
    with pytest.raises(MemoryError, match="out of pages"):
        c.append(1, *tokens(2 * PT, seed=6))
    assert c.n_tokens_of(0, 1) == 0 and c.n_tokens_of(0, 0) == 2 * PT
    assert c.pages_in_use == 2 and c.pages_available == 1
    assert np.array_equal(c.attention(0, q, HQ), before)
    c.append(1, k[:PT], v[:PT])  # one page still fits
    assert c.pages_available == 0


@pytest.mark.parametrize("causal", [True, False])
def test_attention_batch_equals_per_sequence_bit_for_bit(causal):
    c = make()
    lengths = {0: 37, 4: 3, 9: 70}
    for s, n in lengths.items():
        if s:
            c.add_sequence(s)
        fill(c, s, n, seed=10 + s)
    c.fork(9, 12)
    c.append(1, *tokens(2, seed=99), seq=12)
    entries = [(9, queries(2, 1)), (0, queries(1, 2)), (12, queries(1, 3)), (4, queries(3, 4)),
               (0, queries(1, 5))]
    for layer in range(L):
        got = c.attention_batch(layer, entries, HQ, causal=causal)
        assert len(got) == len(entries)
        for (s, q), o in zip(entries, got):
            assert o.shape == q.shape and o.dtype == np.float32
            assert np.array_equal(o, c.attention(layer, q, HQ, causal=causal, seq=s))
    assert c.attention_batch(0, [], HQ) == []


def test_seq_attention_matches_numpy_reference():
    """f32 keys (exact) and f16 values (numpy's float16 rounding): the fused
    attention of a forked, then diverged sequence against float64 numpy."""
    c = make(("f32", "f16"))
    k, v = fill(c, 0, 30, seed=20)
    c.fork(0, 3)
    k2, v2 = tokens(9, seed=21)
    c.append(0, k2, v2, seq=3)
    c.truncate(0, 12)
    kk = np.concatenate([k, k2])
    vv = np.concatenate([v, v2]).astype(np.float16).astype(np.float32)
    q = queries(4, 22)
    n = kk.shape[0]
    want = R.attention(q, kk, vv, 1 / np.sqrt(D), n_ctx=[n - 4 + i + 1 for i in range(4)])
    got = c.attention(0, q, HQ, seq=3)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    want0 = R.attention(q[:1], k[:12], v[:12].astype(np.float16).astype(np.float32), 1 / np.sqrt(D))
    np.testing.assert_allclose(c.attention(0, q[:1], HQ, seq=0), want0, rtol=0, atol=2e-5)


def _snapshot(c, seqs):
    out = {}
    for s in seqs:
        for layer in range(L):
            n = c.n_tokens_of(s, layer)
            q = queries(2, 100 + layer)  # the same queries for every sequence
            out[s, layer] = c.attention(layer, q, HQ, causal=False, n_ctx=[n, max(n - 1, 0)], seq=s)
    return out


def _equal(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[key], b[key]) for key in a)


def _two_sequences():
    c = make(("turbo3", "turbo2"))
    fill(c, 0, 21, seed=30)
    c.fork(0, 5)
    c.append(1, *tokens(4, seed=31), seq=5)
    return c


def test_save_load_and_bytes_round_trips(tmp_path):
    c = _two_sequences()
    want = _snapshot(c, [0, 5])
    # every sequence, file and bytes
    path = tmp_path / "all.rqc"
    c.save(path)
    d = make(("turbo3", "turbo2"))
    d.remove_sequence(0)
    d.load(path)
    assert d.sequences == [0, 5]
    assert _equal(_snapshot(d, [0, 5]), want)
    e = make(("turbo3", "turbo2"))
    e.remove_sequence(0)
    data = c.to_bytes()
    assert isinstance(data, bytes) and data == path.read_bytes()
    e.from_bytes(data)
    assert _equal(_snapshot(e, [0, 5]), want)
    # one sequence, under a new id
    one = c.to_bytes(seq=5)
    f = make(("turbo3", "turbo2"))
    f.from_bytes(memoryview(one), seq=8)
    assert f.sequences == [0, 8]
    got = _snapshot(f, [8])
    assert all(np.array_equal(got[8, layer], want[5, layer]) for layer in range(L))
    c.save(str(tmp_path / "five.rqc"), seq=5)
    g = make(("turbo3", "turbo2"))
    g.load(tmp_path / "five.rqc", seq=2)
    got = _snapshot(g, [2])
    assert all(np.array_equal(got[2, layer], want[5, layer]) for layer in range(L))


def test_corrupted_bytes_raise_and_leave_cache_unchanged():
    c = _two_sequences()
    data = bytearray(c.to_bytes(seq=5))
    d = make(("turbo3", "turbo2"))
    fill(d, 0, 7, seed=40)
    before, pages = _snapshot(d, [0]), d.pages_in_use
    for pos in (len(data) // 2, len(data) - 3):
        bad = bytearray(data)
        bad[pos] ^= 0x40
        with pytest.raises(rq.Error):
            d.from_bytes(bytes(bad), seq=1)
    with pytest.raises(rq.Error):
        d.from_bytes(bytes(data[:-5]), seq=1)  # truncated
    with pytest.raises(rq.Error):
        d.from_bytes(b"not a cache at all", seq=1)
    with pytest.raises(rq.Error):  # another cache's configuration
        make(("turbo3", "turbo3")).from_bytes(bytes(data), seq=1)
    assert d.sequences == [0] and d.pages_in_use == pages
    assert _equal(_snapshot(d, [0]), before)
    d.from_bytes(bytes(data), seq=1)  # the intact bytes still load
    assert d.sequences == [0, 1]


def test_bad_ids_raise_with_the_library_message():
    c = make()
    fill(c, 0, 5, seed=50)
    with pytest.raises(ValueError, match="no parent sequence 9"):
        c.fork(9, 10)
    with pytest.raises(rq.Error):
        c.fork(0, 0)  # child present
    with pytest.raises(rq.Error, match="rq_cache"):
        c.add_sequence(0)
    with pytest.raises(ValueError):
        c.add_sequence(-2)
    with pytest.raises(rq.Error):
        c.remove_sequence(4)
    with pytest.raises(rq.Error):
        c.truncate(4, 0)
    with pytest.raises(rq.Error):
        c.append(0, *tokens(1, seed=51), seq=4)
    with pytest.raises(rq.Error):
        c.attention(0, queries(1, 51), HQ, seq=4, causal=False)
    with pytest.raises(rq.Error):
        c.attention_batch(0, [(0, queries(1, 52)), (4, queries(1, 53))], HQ, causal=False)
    with pytest.raises(rq.Error):
        c.to_bytes(seq=4)
    with pytest.raises(ValueError):
        c.n_tokens_of(4)
    with pytest.raises(ValueError):
        c.truncate(0, -1)
    with pytest.raises(ValueError):
        c.add_sequence(2 ** 40)
    with pytest.raises(ValueError):
        c.attention_batch(0, [(0,)], HQ)
    with pytest.raises(rq.Error):
        c.set_window(0, 8)  # tokens stored
    assert c.sequences == [0] and c.n_tokens_of(0) == 5


def test_sliding_window_frees_pages_and_limits_attention():
    w = 2 * PT
    c = make(("f32", "f32"))
    c.set_window(0, w)
    k, v = tokens(5 * PT, seed=60)
    for t in range(0, 5 * PT, 8):
        c.append(0, k[t:t + 8], v[t:t + 8])
    assert c.pages_in_use <= 3  # the pages wholly behind the window went back
    q = queries(1, 60)
    want = R.attention(q, k[-w:], v[-w:], 1 / np.sqrt(D))
    np.testing.assert_allclose(c.attention(0, q, HQ), want, rtol=0, atol=2e-5)


def test_concurrent_attention_batch_equals_single_threaded():
    c = make()
    for s in (0, 1, 2):
        if s:
            c.add_sequence(s)
        fill(c, s, 20 + 15 * s, seed=70 + s)
    entries = [[(s, queries(1, 10 * i + s)) for s in (2, 0, 1)] for i in range(6)]
    want = [[c.attention_batch(layer, e, HQ) for layer in range(L)] for e in entries]
    errors, got = [], [None] * len(entries)

    def work(i):
        try:
            for _ in range(5):
                got[i] = [c.attention_batch(layer, entries[i], HQ) for layer in range(L)]
                assert all(np.array_equal(a, b) for x, y in zip(got[i], want[i]) for a, b in zip(x, y))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(entries))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    assert all(np.array_equal(a, b) for g, w in zip(got, want) for x, y in zip(g, w) for a, b in zip(x, y))
