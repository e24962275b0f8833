"""Bad input: an exception with the library's message, no crash, nothing written."""
import numpy as np
import pytest

import rotorquant as rq

D = 64


@pytest.fixture
def q():
    return rq.Quantizer("turbo3", D)


@pytest.mark.parametrize("bad", [
    np.zeros((3, D), dtype=np.int32), np.zeros((3, D), dtype=np.complex64), np.zeros((3, D), dtype=bool),
    np.array([["a"] * D]), np.array([[object()] * D]),
])
def test_wrong_dtype(q, bad):
    with pytest.raises(ValueError):
        q.encode(bad)


@pytest.mark.parametrize("shape", [(3, D + 1), (D - 1,), (), (3, 0)])
def test_wrong_shape(q, shape):
    with pytest.raises(ValueError):
        q.encode(np.zeros(shape, dtype=np.float32))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite(q, value):
    x = rq.data("isotropic", 10, D, seed=1)
    x[7, 3] = value
    with pytest.raises(rq.InputError) as e:
        q.encode(x)
    assert "NaN or Inf" in str(e.value) and e.value.status == -4
    assert isinstance(e.value, rq.Error) and isinstance(e.value, ValueError)


def test_out_of_range(q):
    with pytest.raises(ValueError):  # float64 beyond float32: Inf after the cast
        q.encode(np.full((1, D), 1e300))
    with pytest.raises(ValueError):  # norm beyond fp16's 65504
        q.encode(np.full((1, D), 1e5, dtype=np.float32))


def test_decode_bad_codes(q):
    c = q.encode(rq.data("isotropic", 4, D, seed=1))
    for bad in (c.astype(np.int16), c[:, :-1], c.view(np.int8).astype(np.float32), np.zeros(()), "abc"):
        with pytest.raises(ValueError):
            q.decode(bad)
    out = np.full((4, D), 7.0, dtype=np.float32)
    for bad_out in (np.empty((4, D), np.float64), np.empty((3, D), np.float32), np.empty((D, 4), np.float32).T):
        with pytest.raises(ValueError):
            q.decode(c, out=bad_out)
    # any bytes: decoded when every fp16 field is finite, else refused by name
    junk = np.random.default_rng(0).integers(0, 256, (100, q.bytes_per_vector), dtype=np.uint8)
    junk[:, 1] &= 0x3F  # norm (fp16, little endian): exponent below 31, finite
    assert q.decode(junk).shape == (100, D)
    assert np.isfinite(q.decode(junk)).all()
    junk[23, :2] = (0x00, 0x7E)  # block 23's norm is NaN: encode never writes one
    with pytest.raises(ValueError, match="block 23"):
        q.decode(junk)
    out = np.full((100, D), 7.0, dtype=np.float32)
    with pytest.raises(ValueError):
        q.decode(junk, out=out)
    assert (out == 7.0).all()  # a rejected call writes nothing


def test_inner_product_bad(q):
    c = q.encode(rq.data("isotropic", 4, D, seed=1))
    with pytest.raises(ValueError):
        q.inner_product(np.full((2, D), np.nan, np.float32), c)
    with pytest.raises(ValueError):
        q.inner_product(np.full((9, D), np.inf, np.float32), c)
    with pytest.raises(ValueError):
        q.inner_product(np.zeros((2, 2, D), np.float32), c)
    with pytest.raises(ValueError):
        q.inner_product(np.zeros((2, D + 1), np.float32), c)


def test_bad_quantizer_arguments():
    with pytest.raises(rq.InputError, match="unknown"):
        rq.Quantizer("turbo9", 128)
    with pytest.raises(ValueError):
        rq.Quantizer("q8_0", 100)  # d % 32 != 0
    with pytest.raises(ValueError):
        rq.Quantizer("turbo3", 1)
    with pytest.raises(ValueError):
        rq.Quantizer("turbo3", 2 ** 40)
    with pytest.raises(ValueError):
        rq.KVCache(2 ** 40, 2, 64)
    with pytest.raises(ValueError):
        rq.Quantizer("turbo3", 128, seed=-1)
    with pytest.raises(ValueError):
        rq.Quantizer("turbo3", 128, law="cauchy")
    with pytest.raises(ValueError):
        rq.codebook(128, 9)
    with pytest.raises(ValueError):
        rq.Quantizer("f16", 128).rotate(np.zeros((1, 128)))


def test_cache_bad_input_writes_nothing():
    cache = rq.KVCache(2, 2, D, "turbo3", "q8_0")
    k = rq.data("isotropic", 20 * 2, D, seed=1).reshape(20, 2, D)
    cache.append(0, k, k)
    before = cache.nbytes
    kn = k.copy()
    kn[19, 1, 5] = np.nan
    bad = [(0, kn, k), (0, k, kn), (0, k[:, :1], k[:, :1]), (0, k, k[:10]), (2, k, k), (-1, k, k),
           (0, k.astype(np.int64), k), (0, k[..., :-1], k[..., :-1]), (0, k[None], k[None])]
    for layer, kk, vv in bad:
        with pytest.raises(ValueError):
            cache.append(layer, kk, vv)
    assert cache.nbytes == before and cache.layer_tokens(0) == 20
    q = rq.data("isotropic", 8, D, seed=2).reshape(1, 8, D)
    for args, kw in [((0, q, 3), {}), ((0, q, 8), {"scale": -1.0}), ((0, q[:, :4], 8), {}),
                     ((0, np.full_like(q, np.inf), 8), {}), ((5, q, 8), {}), ((0, q, 0), {}),
                     ((0, np.zeros((30, 8, D)), 8), {}), ((0, q, 8), {"n_ctx": [21]}),
                     ((0, q, 8), {"n_ctx": [1, 2]})]:
        with pytest.raises(ValueError):
            cache.attention(*args, **kw)
    with pytest.raises(ValueError):
        cache.set_key_basis(1, 0, np.zeros((D, D), np.float32))  # singular
    with pytest.raises(ValueError):
        rq.KVCache(1, 2, D, "turbo3", "nope")
    with pytest.raises(ValueError):
        rq.KVCache(0, 2, D, "turbo3", "turbo3")


def test_eval_bad_input():
    k = rq.data("isotropic", 50, D, seed=1)
    with pytest.raises(ValueError):
        rq.eval("turbo3", k[:1])
    with pytest.raises(ValueError):
        rq.eval("turbo3", k, values=k)  # values need queries
    with pytest.raises(ValueError):
        rq.eval("turbo3", k, queries=k[:, :10])
    with pytest.raises(ValueError):
        rq.eval("turbo3", k, queries=k, causal=True, values=k[:10])
    k2 = k.copy()
    k2[3, 3] = np.nan
    with pytest.raises(ValueError):
        rq.eval("turbo3", k2, queries=k)
