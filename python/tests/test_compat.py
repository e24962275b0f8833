"""rotorquant.compat on the seed's call sequences (benchmark_rotorquant.py,
test_turboquant.py; reference_impl.md §3)."""
import numpy as np
import pytest

import rotorquant as rq
from rotorquant.compat import (RotorQuantKVCache, RotorQuantMSE, RotorQuantProd, TurboQuantKVCache,
                               TurboQuantMSE, TurboQuantProd)

d = 128


def unit(n, seed):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)  # float64, as numpy users have


@pytest.mark.parametrize("cls", [TurboQuantMSE, RotorQuantMSE])
def test_mse_sequence(cls):
    x = unit(2000, 0)
    for bits in (1, 2, 3, 4):
        m = cls(d, bits, seed=42)
        x_hat, idx = m(x)
        assert x_hat.shape == x.shape
        mse = ((x - x_hat) ** 2).sum(-1).mean()
        assert mse == pytest.approx(rq.codebook(d, bits)["mse"], rel=0.03)
        assert np.array_equal(m.dequantize(idx), x_hat)
    # the seed's RotorQuant MSE at 3 bits was 0.081 (mis-scaled codebook); ours equals TurboQuant's
    assert ((x - cls(d, 3)(x)[0]) ** 2).sum(-1).mean() < 0.036


def test_rotor_quantize_returns_pair():
    x = unit(10, 1)
    out, codes = RotorQuantMSE(d, 3).quantize(x)
    assert out.shape == x.shape and codes.dtype == np.uint8
    with pytest.raises(ValueError):
        RotorQuantMSE(d, 3, grade_bits={"scalar": 2, "vector": 3})


@pytest.mark.parametrize("cls", [TurboQuantProd, RotorQuantProd])
def test_prod_sequence(cls):
    x, y = unit(3000, 2), unit(3000, 3)
    for bits in (2, 3, 4):
        p = cls(d, bits, seed=42)
        comp = p.quantize(x)
        est = p.inner_product(y, comp)
        true = (x * y).sum(-1)
        assert est.shape == (3000,)
        assert np.corrcoef(true, est)[0, 1] > {2: 0.75, 3: 0.89, 4: 0.96}[bits]
        assert abs((est - true).mean()) < 0.01
        assert p.mse.bits == bits - 1 and p.dequantize(comp).shape == x.shape
    # test 5: the MSE stage alone
    xh, _ = cls(d, 3).mse(x)
    assert ((x - xh) ** 2).sum(-1).mean() == pytest.approx(rq.codebook(d, 2)["mse"], rel=0.03)
    with pytest.raises(ValueError):
        cls(d, 3, qjl_dim=64)


def test_needle_sequence():
    """benchmark Test 3: query = the needle key, argmax of the estimator."""
    keys = unit(2048, 4)
    p = RotorQuantProd(d, 3, seed=42)
    comp = p.quantize(keys)
    scores = p.inner_product(keys[2048 // 3][None, :], comp)
    assert scores.shape == (2048,) and int(np.argmax(scores)) == 2048 // 3


@pytest.mark.parametrize("cls", [TurboQuantKVCache, RotorQuantKVCache])
def test_kv_cache_sequence(cls):
    """test_turboquant Test 5: unnormalized keys and values, chunks appended."""
    rng = np.random.default_rng(5)
    keys, values = rng.standard_normal((2, 1024, d)), rng.standard_normal((2, 1024, d))
    cache = cls(d_key=d, d_value=d, bits=3, seed=42)
    assert len(cache) == 0 and cache.get_values().shape == (0, d)
    cache.append(keys[0], values[0])
    cache.append(keys[1], values[1])
    assert len(cache) == 2048
    q = rng.standard_normal((1, d))
    s = cache.attention_scores(q)
    exact = (q * keys.reshape(-1, d)).sum(-1)
    assert s.shape == (2048,) and np.corrcoef(s, exact)[0, 1] > 0.9  # norms kept: not saturated
    vals = cache.get_values()
    assert vals.shape == (2048, d)
    rel = ((vals - values.reshape(-1, d)) ** 2).sum(-1).mean() / (values ** 2).sum(-1).mean()
    assert rel < 0.04
    assert cache.memory_bytes() == 2048 * (52 + 50)


def test_torch_like_input():
    class T:
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

    x = unit(5, 6).astype(np.float32)
    m = TurboQuantMSE(d, 3)
    assert np.array_equal(m(T(x))[0], m(x)[0])
