"""Quantizer, types and codebooks against independent numpy references."""
import math

import numpy as np
import pytest

import reference as R
import rotorquant as rq

D = 128


def test_types_table():
    t = {x["name"]: x for x in rq.types(128)}
    assert t["turbo3"]["bytes_per_vector"] == 50 and t["turbo3p"]["bytes_per_vector"] == 52
    assert t["q4_0h"]["bytes_per_vector"] == 72 and t["turbo5"]["bytes_per_vector"] == 82
    assert t["rotor3"]["family"] == "mse" and t["rotor3p"]["family"] == "prod"
    assert t["turbo3"]["bits_per_value"] == pytest.approx(3.125)
    names96 = {x["name"] for x in rq.types(96)}
    assert "q8_0" in names96 and "turbo3" in names96
    assert "q8_0" not in {x["name"] for x in rq.types(80)}  # q8_0 needs d % 32 == 0


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_codebook_matches_numpy_lloyd_max(bits):
    c, dist = R.lloyd_max_beta(D, bits)
    cb = rq.codebook(D, bits)
    assert np.allclose(cb["centroids"], c, atol=1e-4)
    assert cb["distortion"] == pytest.approx(dist, rel=1e-4)
    assert np.allclose(cb["bounds"], 0.5 * (cb["centroids"][1:] + cb["centroids"][:-1]), atol=1e-7)


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("family", ["turbo", "dense", "rotor"])
def test_mse_within_1pct_of_lloyd_max(family, bits):
    """Relative MSE of uniform unit vectors = d · distortion of the codebook."""
    x = rq.data("isotropic", 20000, D, seed=7)
    q = rq.Quantizer(f"{family}{bits}", D)
    mse = float(((x.astype(np.float64) - q.decode(q.encode(x))) ** 2).sum(1).mean())
    assert mse == pytest.approx(rq.codebook(D, bits)["mse"], rel=0.01)


def test_rotation_is_formats_hadamard():
    """Π of turbo types from the PRNG of docs/FORMAT.md, rebuilt in numpy."""
    for seed in (42, 7):
        q = rq.Quantizer("turbo2", D, seed)
        got = q.rotate(np.eye(D, dtype=np.float32))  # row i = Π e_i = column i of Π
        assert np.abs(got - R.hadamard_matrix(D, seed).T).max() < 1e-6


@pytest.mark.parametrize("dim", [64, 100, 128])
def test_rotor_rotation_is_formats_cl30_sandwich(dim):
    """RotorQuant's Π rebuilt in numpy: the FORMAT PRNG's Gaussians, unit
    rotors, a Cl(3,0) geometric product of our own, blocks covering d."""
    q = rq.Quantizer("rotor2", dim, 42)
    got = q.rotate(np.eye(dim, dtype=np.float32))
    assert np.abs(got - R.rotor_rotation_matrix(dim, 42).T).max() < 1e-6


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_rotor_decode_matches_numpy_reference(bits):
    q = rq.Quantizer(f"rotor{bits}", D, 9)
    x = rq.data("outlier", 200, D, seed=4)
    codes = q.encode(x)
    ref = R.decode_mse(codes, D, bits, rq.codebook(D, bits)["centroids"], R.rotor_rotation_matrix(D, 9))
    assert np.abs(q.decode(codes) - ref).max() < 1e-5


@pytest.mark.parametrize("t", ["turbo1p", "turbo2p", "turbo3p", "turbo4p", "rotor3p"])
def test_prod_decode_matches_numpy_reference(t):
    """QJL blocks decoded from FORMAT §5 with S drawn by the numpy PRNG."""
    bits, seed = int(t[-2]), 5
    q = rq.Quantizer(t, D, seed)
    x = rq.data("outlier", 100, D, seed=2) * 3
    codes = q.encode(x)
    pi = (R.hadamard_matrix if t.startswith("turbo") else R.rotor_rotation_matrix)(D, seed)
    cb = rq.codebook(D, bits - 1)["centroids"] if bits > 1 else None
    ref = R.decode_prod(codes, D, bits, cb, pi, R.qjl_matrix(D, seed))
    assert np.abs(q.decode(codes) - ref).max() < 1e-5 * 3


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5])
def test_decode_matches_numpy_reference(bits):
    q = rq.Quantizer(f"turbo{bits}", D, 42)
    x = rq.data("outlier", 300, D, seed=3) * 7.0
    codes = q.encode(x)
    assert codes.shape == (300, 2 + math.ceil(D * bits / 8))
    ref = R.decode_mse(codes, D, bits, rq.codebook(D, bits)["centroids"], R.hadamard_matrix(D, 42))
    assert np.abs(q.decode(codes) - ref).max() < 1e-5 * 7


@pytest.mark.parametrize("family", ["turbo", "dense", "rotor", "planar", "iso"])
@pytest.mark.parametrize("bits", [2, 3, 4])
def test_prod_inner_products_unbiased(family, bits):
    """<y, x̂> of `p` types is unbiased over the random sketch S: at
    <x, y> = 0.8 the estimate averaged over 40 seeds is 0.8 within 5
    standard errors (of the per-seed means: one S is one draw), where the
    (bits−1)-bit MSE type's is visibly shrunk."""
    n, seeds = 1000, 40
    rng = np.random.default_rng(bits)
    x = rq.data("isotropic", n, D, seed=11)
    z = rng.standard_normal((n, D))
    z -= (z * x).sum(1, keepdims=True) * x
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    y = (0.8 * x + 0.6 * z).astype(np.float32)
    means = []
    for seed in range(seeds):
        qp = rq.Quantizer(f"{family}{bits}p", D, seed)
        means.append((qp.decode(qp.encode(x)).astype(np.float64) * y).sum(1).mean())
    means = np.array(means)
    se = means.std(ddof=1) / math.sqrt(seeds)
    assert abs(means.mean() - 0.8) < 5 * se + 1e-4
    # inner_product (no decode) is the same estimator
    s = qp.inner_product(y[:3], qp.encode(x[:5]))
    assert np.allclose(np.diag(s[:3, :3]), (qp.decode(qp.encode(x[:3])) * y[:3]).sum(1), atol=1e-4)
    qm = rq.Quantizer(f"{family}{bits - 1}", D)
    est_m = (qm.decode(qm.encode(x)).astype(np.float64) * y).sum(1).mean()
    assert 0.8 - est_m > 0.004  # the MSE codes shrink <x, y> (≥ 0.5 % at 3 bits): the test can tell


def test_inner_product_shapes_and_values():
    q = rq.Quantizer("turbo4", D)
    x = rq.data("isotropic", 10, D, seed=1)
    y = rq.data("isotropic", 4, D, seed=2)
    c = q.encode(x)
    s = q.inner_product(y, c)
    assert s.shape == (4, 10) and s.dtype == np.float32
    assert np.allclose(s, y.astype(np.float64) @ q.decode(c).T.astype(np.float64), atol=1e-5)
    assert q.inner_product(y[0], c).shape == (10,)
    many = rq.data("isotropic", 20, D, seed=3)  # 8 or more queries: decode once + one matrix product
    s_many = q.inner_product(many, c)
    s_one = np.stack([q.inner_product(v, c) for v in many])
    assert s_many.shape == (20, 10) and np.abs(s_many - s_one).max() < 1e-5
    assert q.inner_product(y, c[0]).shape == (4,)


def test_float16_and_batch_shapes():
    q = rq.Quantizer("rotor3", 64)
    x = rq.data("isotropic", 24, 64, seed=5).reshape(2, 3, 4, 64)
    c = q.encode(x)
    assert c.shape == (2, 3, 4, q.bytes_per_vector) and c.dtype == np.uint8
    assert np.array_equal(q.encode(x.astype(np.float16)), q.encode(x.astype(np.float16).astype(np.float32)))
    assert q.decode(c).shape == x.shape
    assert np.array_equal(q.encode(x.tolist()), c)  # lists are arrays too


def test_non_contiguous_input_is_copied():
    q = rq.Quantizer("turbo3", D)
    x = rq.data("isotropic", 20, 2 * D, seed=5)[:, ::2]
    assert not x.flags.c_contiguous
    assert np.array_equal(q.encode(x), q.encode(np.ascontiguousarray(x)))


def test_decode_out_reused():
    q = rq.Quantizer("turbo3", D)
    c = q.encode(rq.data("isotropic", 8, D, seed=1))
    out = np.empty((8, D), np.float32)
    assert q.decode(c, out=out) is out and np.array_equal(out, q.decode(c))


def test_array_protocols():
    """Objects exposing __array__ or DLPack (as torch CPU tensors do)."""
    x = rq.data("isotropic", 5, D, seed=1)

    class Tensorish:
        def __array__(self, dtype=None, copy=None):
            return x

    q = rq.Quantizer("turbo3", D)
    assert np.array_equal(q.encode(Tensorish()), q.encode(x))
    assert np.array_equal(q.encode(np.from_dlpack(x)), q.encode(x))


def test_deterministic_seeds():
    x = rq.data("isotropic", 50, D, seed=1)
    a, b = rq.Quantizer("dense3p", D, 5), rq.Quantizer("dense3p", D, 5)
    assert np.array_equal(a.encode(x), b.encode(x))
    assert not np.array_equal(a.encode(x), rq.Quantizer("dense3p", D, 6).encode(x))


def test_properties():
    q = rq.Quantizer("rotor3", D)
    assert (q.type, q.dim, q.seed, q.family, q.rotation) == ("rotor3", D, 42, "mse", "rotor")
    assert q.bytes_per_vector == 50 and q.n_params == 180
    assert q.codebook()["bits"] == 3 and rq.Quantizer("f16", D).codebook() is None
