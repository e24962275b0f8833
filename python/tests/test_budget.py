"""Key centring, per-layer types, bits_per_value, kv_alloc and the TCQ types
from Python (rq_cache_config.centre_keys / layer_type_k/v,
rq_cache_bits_per_value, rq_kv_alloc)."""
import numpy as np
import pytest

import reference as R
import rotorquant as rq

D, KV, HQ = 64, 2, 4


def offset_keys(n, seed=1, offset=6.0):
    """Isotropic keys plus a large per-head common offset (as real models'
    keys have), isotropic values, queries."""
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((KV, D)) * offset          # |μ| ≈ 6·8 = 48 against |k − μ| ≈ 8
    k = rng.standard_normal((n, KV, D)) + mu
    v = rng.standard_normal((n, KV, D))
    q = rng.standard_normal((4, HQ, D))
    return k.astype(np.float32), v.astype(np.float32), q.astype(np.float32)


def filled(t, k, v, **kw):
    c = rq.KVCache(1, KV, D, t, t, **kw)
    c.append(0, k[:1], v[:1])      # the sink alone first, then the rest: μ from positions 1..window
    c.append(0, k[1:], v[1:])
    return c


def test_centring_f32_equals_uncentred():
    """With f32 blocks centring changes only float rounding (μ + (k − μ),
    the fp16 sink): attention equals the uncentred cache's to float noise."""
    k, v, q = offset_keys(200)
    plain = filled("f32", k, v).attention(0, q, HQ, causal=False)
    cent = filled("f32", k, v, centre_keys=True).attention(0, q, HQ, causal=False)
    ref = filled("f32", k, v, centre_keys=True).attention(0, q, HQ, causal=False, reference=True)
    assert np.abs(cent - plain).max() < 1e-3
    assert np.abs(ref - plain).max() < 1e-3


@pytest.mark.parametrize("window", [0, 16])
def test_centring_turbo3_closer_to_exact(window):
    """On keys with a large common offset, centred turbo3 attention is at
    least as close to exact (float64) attention as the uncentred one."""
    k, v, q = offset_keys(300)
    exact = R.attention(q, k, v, 1 / np.sqrt(D))
    err = {}
    for centre in (False, True):
        c = filled("turbo3", k, v, centre_keys=centre, centre_window=window)
        out = c.attention(0, q, HQ, causal=False)
        err[centre] = np.sqrt(np.mean((out - exact) ** 2) / np.mean(exact ** 2))
    assert err[True] <= err[False], err
    assert err[True] < 0.5


def test_centring_save_load_round_trip(tmp_path):
    k, v, q = offset_keys(150)
    a = filled("turbo3", k, v, centre_keys=True, centre_window=32)
    want = a.attention(0, q, HQ, causal=False)
    for how in ("file", "bytes"):
        b = rq.KVCache(1, KV, D, "turbo3", "turbo3", centre_keys=True, centre_window=32)
        b.remove_sequence(0)
        if how == "file":
            a.save(tmp_path / "c.rqkv", seq=0)
            b.load(tmp_path / "c.rqkv", seq=0)
        else:
            b.from_bytes(a.to_bytes(0), seq=0)
        assert b.n_tokens_of(0) == 150
        np.testing.assert_array_equal(b.attention(0, q, HQ, causal=False), want)
        # appends after the load keep the saved μ: same as appending to the original
        k2, v2, _ = offset_keys(5, seed=9)
        b.append(0, k2, v2)
        a2 = filled("turbo3", k, v, centre_keys=True, centre_window=32)
        a2.append(0, k2, v2)
        np.testing.assert_array_equal(b.attention(0, q, HQ, causal=False),
                                      a2.attention(0, q, HQ, causal=False))


def test_bits_per_value():
    c = rq.KVCache(2, KV, D, "turbo3", "turbo3")
    assert c.bits_per_value(0) == 0.0
    assert c.bits_per_value(100) == pytest.approx(8.0 * c.bytes_per_token / (2 * KV * 2 * D))
    cc = rq.KVCache(2, KV, D, "turbo3", "turbo3", centre_keys=True)
    # μ and the fp16 sink cost extra bits, less per value the longer the context
    assert cc.bits_per_value(100) > c.bits_per_value(100)
    assert cc.bits_per_value(100) > cc.bits_per_value(10000) > c.bits_per_value(10000)
    with pytest.raises(rq.InputError):
        c.bits_per_value(-1)


def test_layer_types_bytes_per_token():
    """Per-layer types: each layer's bytes are its own types' (d = 64:
    q8_0 68, turbo2 18, turbo3 26, tcq4 34 bytes per vector)."""
    c = rq.KVCache(3, KV, D, "turbo3", "turbo3", layer_types_k=["q8_0", None, "tcq4"],
                   layer_types_v=["turbo2", None, None])
    assert [c.layer_type(l) for l in range(3)] == ["q8_0", "turbo3", "tcq4"]
    assert [c.layer_type(l, value=True) for l in range(3)] == ["turbo2", "turbo3", "turbo3"]
    assert c.bytes_per_token == KV * ((68 + 18) + (26 + 26) + (34 + 26))
    k, v, q = offset_keys(40)
    for layer in range(3):
        c.append(layer, k, v)
    assert c.nbytes == 40 * c.bytes_per_token
    assert c.bits_per_value(40) == pytest.approx(8.0 * c.bytes_per_token / (3 * KV * 2 * D))
    # each layer attends with its own types: layer 0 (q8_0 keys, turbo2 values) against its own cache
    one = rq.KVCache(1, KV, D, "q8_0", "turbo2")
    one.append(0, k, v)
    np.testing.assert_allclose(c.attention(0, q, HQ, causal=False), one.attention(0, q, HQ, causal=False),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad, msg", [(["turbo3"], "entries"), (["turbo3", 3], "str"), ("turbo3", "string"),
                                      (["turbo3", "nosuch"], "nosuch")])
def test_layer_types_rejected(bad, msg):
    with pytest.raises(rq.InputError, match=msg):
        rq.KVCache(2, KV, D, "turbo3", "turbo3", layer_types_k=bad)
    with pytest.raises(rq.InputError):
        rq.KVCache(2, KV, D, "turbo3", "turbo3", layer_types_v=bad)


def alloc_problem(n_layers=6):
    types = ["turbo2", "turbo3", "turbo4"]
    bits = np.array([2.25, 3.25, 4.25])
    w = 1.0 + np.arange(n_layers)[:, None]          # later layers matter more
    cost_k = w * 4.0 ** -bits
    cost_v = 0.5 * w[::-1] * 4.0 ** -bits
    return cost_k, cost_v, types, types


def test_kv_alloc_budget():
    ck, cv, tk, tv = alloc_problem()
    last_bits, last_cost = 0.0, np.inf
    for budget in (2.25, 2.6, 3.0, 3.25, 3.7, 4.25, 9.0):
        ch_k, ch_v, bits, cost = rq.kv_alloc(ck, cv, tk, tv, D, budget)
        assert ch_k.shape == ch_v.shape == (6,)
        assert bits <= budget + 1e-9
        mean_bits = np.mean([[2.25, 3.25, 4.25][i] for i in np.concatenate([ch_k, ch_v])])
        assert bits == pytest.approx(mean_bits)
        assert cost == pytest.approx(ck[np.arange(6), ch_k].sum() + cv[np.arange(6), ch_v].sum())
        assert bits >= last_bits - 1e-9 and cost <= last_cost + 1e-12
        last_bits, last_cost = bits, cost
    assert last_bits == pytest.approx(4.25)                     # enough budget: every layer at 4 bits
    ch_k, ch_v, bits, _ = rq.kv_alloc(ck, cv, tk, tv, D, 2.25)
    assert (ch_k == 0).all() and (ch_v == 0).all()
    # overhead bits count against the budget
    _, _, b0, _ = rq.kv_alloc(ck, cv, tk, tv, D, 3.0)
    _, _, b1, _ = rq.kv_alloc(ck, cv, tk, tv, D, 3.0, overhead_bits=0.5)
    assert b1 <= 3.0 + 1e-9 and b1 - 0.5 < b0
    # the choice builds a cache of that many bits per value
    ch_k, ch_v, bits, _ = rq.kv_alloc(ck, cv, tk, tv, D, 3.0)
    c = rq.KVCache(6, KV, D, layer_types_k=[tk[i] for i in ch_k], layer_types_v=[tv[i] for i in ch_v])
    assert c.bits_per_value(100) == pytest.approx(bits)


def test_kv_alloc_rejects():
    ck, cv, tk, tv = alloc_problem()
    with pytest.raises(rq.InputError):
        rq.kv_alloc(ck, cv, tk, tv, D, 2.0)                       # below the smallest types
    with pytest.raises(rq.InputError):
        rq.kv_alloc(ck[:, :2], cv, tk, tv, D, 3.0)                # a column per type
    with pytest.raises(rq.InputError):
        rq.kv_alloc(ck[:5], cv, tk, tv, D, 3.0)                   # layer counts differ
    bad = ck.copy()
    bad[2, 1] = np.nan
    with pytest.raises(rq.InputError):
        rq.kv_alloc(bad, cv, tk, tv, D, 3.0)
    with pytest.raises(rq.InputError):
        rq.kv_alloc(-ck, cv, tk, tv, D, 3.0)
    with pytest.raises(rq.InputError):
        rq.kv_alloc(ck, cv, ["turbo2", "nosuch", "turbo4"], tv, D, 3.0)
    with pytest.raises(rq.InputError):
        rq.kv_alloc(ck, cv, tk, tv, D, 3.0, overhead_bits=-1.0)


def test_tcq3_beats_turbo3_mse():
    """The trellis code at 3 bits reconstructs isotropic vectors better than
    scalar Lloyd-Max at the same bytes."""
    x = rq.data("isotropic", 2000, 128, seed=5)
    mse = {}
    for t in ("tcq3", "turbo3"):
        q = rq.Quantizer(t, 128)
        assert q.encode(x).shape[-1] == q.encode(x[:1]).shape[-1]
        xh = q.decode(q.encode(x))
        mse[t] = float(np.mean(np.sum((x - xh) ** 2, axis=1) / np.sum(x ** 2, axis=1)))
    assert mse["tcq3"] < mse["turbo3"], mse
    assert rq.Quantizer("tcq3", 128).encode(x[:1]).shape[-1] == rq.Quantizer("turbo3", 128).encode(x[:1]).shape[-1]
    assert "tcq" in {t["family"] for t in rq.types(128)}


def test_int8_scores_close_to_float_scores():
    """int8_scores (rq_cache_config.int8_scores): turbo3 keys scored as int8
    query × int8 centroids stay within 4e-2 of the float scores' output (the
    bound of tests/test_int8.c; ~7e-3 measured) and differ from it; 5-bit keys
    are not served, so turbo5's output is the float one bit for bit."""
    rng = np.random.default_rng(3)
    k = (rng.standard_normal((300, KV, D)) * np.where(np.arange(D) % 17 == 5, 3.0, 1.0)).astype(np.float32)
    v = rng.standard_normal((300, KV, D)).astype(np.float32)
    q = rng.standard_normal((4, HQ, D)).astype(np.float32)
    for t, served in (("turbo3", True), ("turbo5", False)):
        a = filled(t, k, v).attention(0, q, HQ, causal=False)
        c = filled(t, k, v, int8_scores=True)
        assert c.int8_scores
        b = c.attention(0, q, HQ, causal=False)
        e = float(np.sqrt(np.mean((b - a) ** 2) / np.mean(a ** 2)))
        assert (0 < e < 4e-2) if served else e == 0, (t, e)
