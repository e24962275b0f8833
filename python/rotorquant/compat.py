"""The seed's classes (turboquant-pytorch PR #4) on rotorquant, for numpy.

Same names, constructor arguments and methods as the seed's
``turboquant.TurboQuantMSE/TurboQuantProd/TurboQuantKVCache`` and
``turboquant.rotorquant.RotorQuantMSE/RotorQuantProd/RotorQuantKVCache``, so
code written against the seed runs with the import changed::

    from rotorquant.compat import TurboQuantProd, RotorQuantProd
    rq = RotorQuantProd(d=128, bits=3, seed=42)
    comp = rq.quantize(x)                  # x: numpy (n, 128) (torch CPU tensors work too)
    est = rq.inner_product(y, comp)        # unbiased estimate of <y_i, x_i>

Inputs are any array numpy can view; outputs are numpy arrays (no torch).

Where our results differ from the seed's, and why
(shared/research/reference_impl.md):

* **Exact codebooks.** The seed builds every Lloyd-Max codebook for the
  Gaussian N(0, 1/d); ours is the exact law of one coordinate of a rotated
  unit vector (Beta-like, ∝ (1−x²)^((d−3)/2)), converged to 1e-9. MSEs come
  out ~0.3–4 % lower (d = 128, 3 bits: 0.0340 vs the seed's 0.0345 theory).
* **RotorQuant's codebook scale.** The seed's RotorQuantMSE uses a codebook
  for d_eff = 8·⌈d/3⌉ (344 at d = 128), too small by √(d/d_eff); that alone
  made its MSE 0.081 instead of 0.034 at 3 bits. Here rotors use the d-dim
  codebook, so on isotropic data RotorQuant equals TurboQuant.
* **Uniform rotors.** The seed draws the rotor angle uniformly (not Haar on
  SO(3)) and its Cl(3,0) product table has 18 sign errors (harmless for the
  vector part); ours are Haar-uniform unit quaternions, applied as their
  exact 3×3 matrices, in blocks that cover d without padding.
* **Packed bytes.** The seed keeps int64 indices, float32 ±1 signs and no
  norms; ``quantize`` here returns the packed blocks of docs/FORMAT.md
  (uint8, every byte counted), including the vector's norm: inputs need not
  be unit vectors (the seed silently assumes they are).
* **Prod ``dequantize``** returns the full reconstruction Πᵀ(n′c + ‖r′‖αSᵀs),
  whose inner products are the unbiased estimator, not the MSE stage alone;
  ``.mse`` is the (bits−1)-bit MSE quantizer as in the seed.
* **bits = 1 Prod**: the seed silently uses 1 MSE bit + 1 QJL bit; here
  ``bits=1`` is the QJL sketch alone (type ``turbo1p``), as the name says.
* **Randomness.** Rotations and QJL matrices come from the library's PRNG
  (docs/FORMAT.md), not torch's: same seed, different matrices, same
  distributions. ``qjl_dim`` must be ``d`` (or None).
* **TurboQuant's rotation** is the seed's dense Haar matrix (type
  ``dense{b}``); ``family="turbo"`` picks the randomized Hadamard instead
  (O(d log d) per vector, same quality on isotropic data).
"""
from __future__ import annotations

import numpy as np

from . import InputError, Quantizer, _floats

__all__ = ["TurboQuantMSE", "TurboQuantProd", "TurboQuantKVCache", "RotorQuantMSE", "RotorQuantProd",
           "RotorQuantKVCache"]


def _flat(x, d, name="x"):
    a = _floats(x, name, last=d)
    return a.reshape(-1, d), a.shape[:-1]


class _MSE:
    _family = "dense"

    def __init__(self, d: int, bits: int, seed: int = 42, device: str = "cpu", family: str | None = None):
        self.d, self.bits, self.seed, self.device = int(d), int(bits), int(seed), device
        self.quantizer = Quantizer(f"{family or self._family}{self.bits}", self.d, self.seed)

    def quantize(self, x) -> np.ndarray:
        """x (..., d) → packed codes uint8 (..., bytes_per_vector) (the seed: int64 indices)."""
        return self.quantizer.encode(x)

    def dequantize(self, codes) -> np.ndarray:
        """Packed codes → float32 (..., d), norms restored."""
        return self.quantizer.decode(codes)

    def forward(self, x):
        """Quantize then dequantize: returns (x_hat, codes), as the seed's (x_hat, indices)."""
        codes = self.quantizer.encode(x)
        return self.quantizer.decode(codes), codes

    __call__ = forward

    def parameters_count(self) -> int:
        """Every parameter the quantizer holds (rotation, codebook)."""
        return self.quantizer.n_params


class TurboQuantMSE(_MSE):
    """TurboQuant_mse: rotation Π (dense Haar, as the seed's QR) + Lloyd-Max codes.

    ``TurboQuantMSE(d, bits, seed=42)``; ``quantize``/``dequantize``/``forward``.
    Differences from the seed: exact-law codebook, norm stored (inputs need
    not be unit vectors), packed uint8 codes, the library's PRNG (module
    docstring)."""


class RotorQuantMSE(_MSE):
    """RotorQuant_mse: Cl(3,0) rotor sandwich R x R~ on groups of 3 + Lloyd-Max codes.

    ``RotorQuantMSE(d, bits, seed=42, grade_bits=None)``. The seed's
    ``quantize`` returns (rotated multivectors, index dict); here it returns
    (x_hat, codes) — only grade 1 carries data (the rotor sandwich maps
    vectors to vectors), so there are no other grades to return. Differences:
    the d-dim codebook (the seed's d_eff = 8⌈d/3⌉ one is mis-scaled),
    Haar-uniform rotors, packed codes (module docstring)."""

    _family = "rotor"

    def __init__(self, d: int, bits: int, seed: int = 42, grade_bits: dict | None = None, device: str = "cpu"):
        if grade_bits not in (None, {"vector": bits}):
            raise InputError("RotorQuantMSE: grade_bits other than {'vector': bits} is not supported "
                             "(a rotor sandwich maps vectors to vectors; no other grade carries data)")
        super().__init__(d, bits, seed, device)
        self.n_groups = (self.d + 2) // 3

    def quantize(self, x):
        """x (..., d) → (x_hat, codes) (the seed: (rotated multivectors, index dict))."""
        return self.forward(x)


class _Prod:
    _family = "dense"
    _mse_class = TurboQuantMSE

    def __init__(self, d: int, bits: int, qjl_dim: int | None = None, seed: int = 42, device: str = "cpu",
                 family: str | None = None):
        self.d, self.bits, self.seed, self.device = int(d), int(bits), int(seed), device
        if qjl_dim not in (None, self.d):
            raise InputError(f"qjl_dim must be d = {self.d} (or None): the library's QJL sketch is d x d")
        self.qjl_dim = self.d
        self.mse_bits = max(self.bits - 1, 1)
        fam = family or self._family
        self.quantizer = Quantizer(f"{fam}{self.bits}p", self.d, self.seed)
        if family is None:
            self.mse = self._mse_class(self.d, self.mse_bits, seed=self.seed)
        else:
            self.mse = _MSE(self.d, self.mse_bits, seed=self.seed, family=family)

    def quantize(self, x) -> dict:
        """x (..., d) → {'codes': uint8 (..., bytes_per_vector)} (the seed:
        {'mse_indices', 'qjl_signs', 'residual_norm'}; all of it is inside
        the packed block: fp16 norm, fp16 residual norm, codes, sign bits)."""
        return {"codes": self.quantizer.encode(x)}

    forward = quantize
    __call__ = quantize

    def dequantize(self, compressed) -> np.ndarray:
        """The reconstruction whose inner products are the unbiased QJL
        estimate (the seed returned the MSE stage alone)."""
        return self.quantizer.decode(compressed["codes"])

    def inner_product(self, y, compressed) -> np.ndarray:
        """Unbiased estimate of <y, x> with the seed's broadcasting:
        (y * x_hat).sum(-1), y (..., d) against the compressed (..., d)."""
        yy = _floats(y, "y", last=self.d)
        return (yy * self.dequantize(compressed)).sum(axis=-1)

    def parameters_count(self) -> int:
        """Every parameter held: rotation, codebook and the d x d QJL matrix."""
        return self.quantizer.n_params


class TurboQuantProd(_Prod):
    """TurboQuant_prod: (bits−1)-bit TurboQuant_mse + 1-bit QJL sketch of the residual.

    ``TurboQuantProd(d, bits, qjl_dim=None, seed=42)``; ``quantize``,
    ``dequantize``, ``inner_product`` (unbiased), ``.mse``. Differences from
    the seed: module docstring (exact codebooks, packed blocks with norms,
    bits=1 is QJL only, full-estimator dequantize)."""


class RotorQuantProd(_Prod):
    """RotorQuant_prod: (bits−1)-bit RotorQuant_mse + 1-bit QJL sketch of the residual.

    ``RotorQuantProd(d, bits, qjl_dim=None, seed=42)``; as TurboQuantProd with
    rotors; see the module docstring for the differences from the seed."""

    _family = "rotor"
    _mse_class = RotorQuantMSE


class _KVCache:
    _prod, _mse = TurboQuantProd, TurboQuantMSE

    def __init__(self, d_key: int, d_value: int, bits: int = 3, seed: int = 42, device: str = "cpu"):
        self.d_key, self.d_value, self.bits, self.device = int(d_key), int(d_value), int(bits), device
        self.key_quantizer = self._prod(self.d_key, self.bits, seed=seed)
        self.value_quantizer = self._mse(self.d_value, self.bits, seed=seed + 100)
        self.key_cache, self.value_cache = [], []

    def append(self, keys, values) -> None:
        """Compress and store keys (..., d_key) and values (..., d_value)."""
        k, _ = _flat(keys, self.d_key, "keys")
        v, _ = _flat(values, self.d_value, "values")
        ck = self.key_quantizer.quantize(k)
        cv = self.value_quantizer.quantizer.encode(v)  # encode everything before storing anything
        self.key_cache.append(ck)
        self.value_cache.append(cv)

    def attention_scores(self, queries) -> np.ndarray:
        """The seed's scores: per stored chunk key_quantizer.inner_product(queries, chunk),
        concatenated on the last axis (a query (1, d) or (d,) against every key gives (n,))."""
        if not self.key_cache:
            return np.zeros((0,), dtype=np.float32)
        return np.concatenate([self.key_quantizer.inner_product(queries, c) for c in self.key_cache], axis=-1)

    def get_values(self) -> np.ndarray:
        """Every stored value, decoded: float32 (n, d_value)."""
        if not self.value_cache:
            return np.zeros((0, self.d_value), dtype=np.float32)
        return np.concatenate([self.value_quantizer.dequantize(c) for c in self.value_cache], axis=0)

    def memory_bytes(self) -> int:
        """Bytes actually held by the packed key and value blocks."""
        return sum(c["codes"].nbytes for c in self.key_cache) + sum(c.nbytes for c in self.value_cache)

    def __len__(self) -> int:
        return sum(c["codes"].shape[0] for c in self.key_cache)


class TurboQuantKVCache(_KVCache):
    """The seed's TurboQuantKVCache: keys TurboQuantProd(seed), values
    TurboQuantMSE(bits, seed + 100); ``append``, ``attention_scores``,
    ``get_values``, ``len()``. Norms are stored, so unnormalized keys and
    values (as the seed's test feeds) are reconstructed at their scale."""


class RotorQuantKVCache(_KVCache):
    """The seed's RotorQuantKVCache(d_key, d_value, bits=3, seed=42): keys
    RotorQuantProd(seed), values RotorQuantMSE(bits, seed + 100);
    ``append``, ``attention_scores``, ``get_values``, ``len()``. Differences
    from the seed: module docstring. For real inference use
    :class:`rotorquant.KVCache` (fused attention on the packed cache)."""

    _prod, _mse = RotorQuantProd, RotorQuantMSE
