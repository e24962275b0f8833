"""KVCache: fused attention against decode-then-attention in numpy."""
import numpy as np
import pytest

import reference as R
import rotorquant as rq


def make(types=("turbo3", "turbo3"), n=300, kv=2, hq=6, d=64, seed=42, layers=2):
    cache = rq.KVCache(layers, kv, d, types[0], types[1], n_threads=2, seed=seed)
    k = rq.data("outlier", n * kv, d, seed=1).reshape(n, kv, d) * 3
    v = rq.data("isotropic", n * kv, d, seed=2).reshape(n, kv, d)
    return cache, k, v


def ref_matrix(t, d, seed):
    return (R.hadamard_matrix if t.startswith("turbo") else R.rotor_rotation_matrix)(d, seed)


@pytest.mark.parametrize("types", [("turbo3", "turbo3"), ("turbo4", "turbo2"), ("turbo5", "turbo3"),
                                   ("rotor3", "rotor3"), ("rotor4", "turbo3"), ("turbo3p", "turbo3"),
                                   ("rotor4p", "rotor2")])
def test_attention_matches_numpy_decode_then_attention(types):
    """Keys and values decoded by the numpy block decoder (FORMAT §5, the
    FORMAT PRNG's Π; V's seed = rq_seed_derive(seed, 1, 1) as the cache
    documents), attention in float64, against the fused kernels."""
    d, kv, hq = 64, 2, 6
    cache, k, v = make(types, d=d, kv=kv, hq=hq)
    cache.append(0, k[:200], v[:200])
    cache.append(0, k[200:], v[200:])
    bk, bv = int(types[0].rstrip("p")[-1]), int(types[1][-1])
    seed_v = R.seed_derive(42, 1, 1)
    qk, qv = rq.Quantizer(types[0], d, 42), rq.Quantizer(types[1], d, seed_v)
    if types[0].endswith("p"):
        kh = R.decode_prod(qk.encode(k.reshape(-1, d)), d, bk, rq.codebook(d, bk - 1)["centroids"],
                           ref_matrix(types[0], d, 42), R.qjl_matrix(d, 42)).reshape(k.shape)
    else:
        kh = R.decode_mse(qk.encode(k.reshape(-1, d)), d, bk, rq.codebook(d, bk)["centroids"],
                          ref_matrix(types[0], d, 42)).reshape(k.shape)
    vh = R.decode_mse(qv.encode(v.reshape(-1, d)), d, bv, rq.codebook(d, bv)["centroids"],
                      ref_matrix(types[1], d, seed_v)).reshape(v.shape)
    q = rq.data("isotropic", 4 * hq, d, seed=3).reshape(4, hq, d) * 4
    out = cache.attention(0, q, hq, causal=True)
    ref = R.attention(q, kh, vh, 1 / np.sqrt(d), n_ctx=[297, 298, 299, 300])
    assert out.shape == q.shape and out.dtype == np.float32
    assert np.abs(out - ref).max() < 2e-4
    full = cache.attention(0, q, hq, causal=False)
    assert np.abs(full - R.attention(q, kh, vh, 1 / np.sqrt(d))).max() < 2e-4
    assert np.abs(cache.attention(0, q, hq, causal=False, reference=True) - full).max() < 2e-4


def test_counts_and_bytes():
    cache, k, v = make(("q8_0", "turbo3"))
    assert cache.n_tokens == 0 and cache.nbytes == 0
    cache.append(0, k, v)
    per_layer = 2 * (68 + 26)  # kv heads x (q8_0 at d=64 + turbo3 at d=64)
    assert cache.bytes_per_token == 2 * per_layer
    assert cache.layer_tokens(0) == 300 and cache.layer_tokens(1) == 0 and cache.n_tokens == 300
    assert cache.nbytes == 300 * per_layer
    assert cache.bytes_allocated >= cache.nbytes
    cache.append(1, k[0], v[0])  # one token as (n_kv_heads, head_dim)
    assert cache.layer_tokens(1) == 1
    cache.clear()
    assert cache.n_tokens == 0 and cache.nbytes == 0


def test_key_basis_leaves_scores_unchanged():
    d, kv, hq = 64, 2, 4
    cache, k, v = make(("f32", "f32"), d=d, kv=kv)
    rng = np.random.default_rng(0)
    A = (np.eye(d) + 0.1 * rng.standard_normal((d, d))).astype(np.float32)
    cache.set_key_basis(0, 1, A)
    cache.append(0, k, v)
    plain, _, _ = make(("f32", "f32"), d=d, kv=kv)
    plain.append(0, k, v)
    q = rq.data("isotropic", hq * 2, d, seed=9).reshape(2, hq, d)
    assert np.abs(cache.attention(0, q, hq) - plain.attention(0, q, hq)).max() < 1e-4
    with pytest.raises(ValueError):  # tokens stored: the basis cannot change
        cache.set_key_basis(0, 0, A)


def test_load_key_basis_rejects_missing_and_foreign_files(tmp_path):
    cache, _, _ = make()
    with pytest.raises(rq.Error):
        cache.load_key_basis(tmp_path / "basis.gguf")  # no such file
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)  # not a key-basis file
    with pytest.raises(rq.Error) as e:
        cache.load_key_basis(bad)
    assert "key" in str(e.value) or "malformed" in str(e.value)
    assert cache.n_tokens == 0
