"""rotorquant — KV-cache compression to 1–5 bits per value, from numpy.

A binding of librotorquant (the C library in this repository): TurboQuant
(random rotation + Lloyd-Max codes + optional 1-bit QJL residual sketch),
RotorQuant (Cl(3,0) rotors), the dense / planar / iso rotation families and
the llama.cpp baselines, with fused attention on the compressed cache.

    import rotorquant as rq
    q = rq.Quantizer("turbo3", dim=128)
    codes = q.encode(x)              # (..., 128) float -> (..., 50) uint8
    x_hat = q.decode(codes)          # -> float32 (..., 128)

Arrays: anything numpy can view (numpy arrays, torch CPU tensors through
DLPack or ``__array__``, lists); float16, float32 and float64 inputs
(converted to float32, as the library computes); results are numpy arrays.
Errors: :class:`InputError` (a ``ValueError``) for input the library rejects
— wrong shape or dtype, NaN/Inf, unknown type, unsupported dimension —
``MemoryError``, and :class:`Error` for everything else; a rejected call
writes nothing the caller can see.

Threads: the GIL is released during encode, decode, inner products,
attention and eval. A :class:`Quantizer` is immutable and may be used from
any number of threads at once; a :class:`KVCache` serializes its own
mutations (append, clear, key bases) with a lock, so sharing one is safe.

``rotorquant.compat`` has the seed's (turboquant-pytorch PR #4) classes;
``python -m rotorquant.benchmark`` its 7-test comparison with our numbers.
"""
from __future__ import annotations

import math
import operator
import numpy as np

from . import _ext
from ._ext import Error, InputError

__all__ = [
    "Error", "InputError", "Quantizer", "KVCache", "types", "codebook", "eval", "data", "kv_alloc",
    "__version__", "simd", "FORMAT_VERSION",
]

#: version of the linked library (``rq_version_str``); the package has the same
__version__: str = _ext.version
#: the SIMD level the kernels run at: "scalar", "avx2" or "avx512" (override: RQ_SIMD)
simd: str = _ext.simd
#: version of the block format (docs/FORMAT.md)
FORMAT_VERSION: int = _ext.format_version

_LAWS = {"beta": _ext.RQ_LAW_BETA, "gauss": _ext.RQ_LAW_GAUSS}
_QJL = {"gaussian": _ext.RQ_QJL_GAUSSIAN, "structured": _ext.RQ_QJL_STRUCTURED}
_DATA = {"isotropic": _ext.RQ_DATA_ISOTROPIC, "outlier": _ext.RQ_DATA_OUTLIER}
_GEMM_QUERIES = 8     # inner_product: from this many queries on, decode once + one matrix product
_GEMM_CHUNK = 16384   # blocks decoded at a time there (8 MiB of floats at d = 128)


# ---------------------------------------------------------------------------
# Array conversion: every public entry point goes through these two.
# ---------------------------------------------------------------------------
def _view(x, name):
    """Any array-like as a numpy array without a copy where possible."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "__dlpack__"):
        try:
            return np.from_dlpack(x)
        except Exception:  # e.g. a tensor on a GPU, or one requiring grad
            pass
    try:
        return np.asarray(x)
    except Exception as e:
        raise InputError(f"{name}: cannot be viewed as an array ({e})") from None


def _floats(x, name, last=None, ndim=None):
    """float32, C-contiguous; floating inputs only; optional checks of the
    last axis and of the number of axes (a tuple of allowed counts)."""
    a = _view(x, name)
    if a.dtype != np.float32:
        if a.dtype.kind != "f" or a.dtype.itemsize not in (2, 4, 8):
            raise InputError(f"{name}: expected float16/float32/float64 values, got dtype {a.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            a = a.astype(np.float32)  # float64 beyond float32's range becomes Inf: rejected below by the library
    if ndim is not None and a.ndim not in ndim:
        raise InputError(f"{name}: expected {' or '.join(map(str, ndim))} axes, got shape {a.shape}")
    if last is not None and (a.ndim == 0 or a.shape[-1] != last):
        raise InputError(f"{name}: expected a last axis of {last}, got shape {a.shape}")
    return np.ascontiguousarray(a)


def _codes(c, nbytes, name="codes"):
    a = _view(c, name)
    if a.dtype != np.uint8:
        raise InputError(f"{name}: expected uint8 blocks, got dtype {a.dtype}")
    if a.ndim == 0 or a.shape[-1] != nbytes:
        raise InputError(f"{name}: expected a last axis of {nbytes} bytes per vector, got shape {a.shape}")
    return np.ascontiguousarray(a)


# ---------------------------------------------------------------------------
# Types and codebooks
# ---------------------------------------------------------------------------
def types(dim: int = 128) -> list:
    """Every type the library serves at head dimension ``dim``.

    Returns a list of dicts: ``name`` ("turbo3", "rotor2p", "q4_0h", ...),
    ``family`` ("mse", "prod", "tcq", "f32", "f16", "q8_0", "q4_0"), ``rotation``
    ("hadamard", "dense", "rotor", "planar", "iso", "none"), ``bits``
    (nominal bits per value: MSE bits + the QJL bit for `p` types),
    ``bits_per_value`` (8 · bytes_per_vector / dim, everything counted),
    ``bytes_per_vector`` and ``key_scaled`` (True for the k8 types: 1-byte
    norms relative to a cache's per-head key scale, so key types of a cache
    with centred keys; a Quantizer of one encodes vectors of norm ≤ 4 and
    raises on larger ones). Types that cannot serve ``dim`` (q8_0/q4_0 need
    dim % 32 == 0) are left out.
    """
    dim = int(dim)
    out = []
    for name, family, rotation, bits, _block, nbytes, key_scaled in _ext.types(dim):
        if nbytes:
            out.append({"name": name, "family": family, "rotation": rotation, "bits": bits,
                        "bits_per_value": 8.0 * nbytes / dim, "bytes_per_vector": nbytes,
                        "key_scaled": bool(key_scaled)})
    return out


def codebook(dim: int, bits: int, law: str = "beta") -> dict:
    """The Lloyd-Max codebook for one coordinate of a rotated unit vector.

    ``law="beta"``: the exact law of one coordinate of a uniform unit vector
    in R^dim, density ∝ (1 − x²)^((dim − 3)/2) (what every quantizer uses);
    ``"gauss"``: N(0, 1/dim), the seed's approximation. Returns a dict with
    ``centroids`` (float32, 2^bits ascending), ``bounds`` (float32 decision
    boundaries), ``distortion`` (E[(x − c(x))²] per coordinate, so the
    expected relative MSE of a vector is ``dim * distortion``), ``mse``
    (= dim · distortion), ``n_iters``, ``dim``, ``bits``, ``law``.
    """
    if law not in _LAWS:
        raise InputError(f"codebook: law must be 'beta' or 'gauss', got {law!r}")
    d = _ext.codebook(int(dim), int(bits), _LAWS[law])
    d["centroids"] = np.asarray(d["centroids"], dtype=np.float32)
    d["bounds"] = np.asarray(d["bounds"], dtype=np.float32)
    d["mse"] = d["dim"] * d["distortion"]
    return d


def data(kind: str, n: int, dim: int, seed: int = 0) -> np.ndarray:
    """The library's deterministic synthetic data (rq_data_generate):
    ``kind="isotropic"`` (uniform on the unit sphere) or ``"outlier"``
    (Gaussian with 4 channels at 10–30× the std, normalized). float32 (n, dim)."""
    if kind not in _DATA:
        raise InputError(f"data: kind must be 'isotropic' or 'outlier', got {kind!r}")
    out = np.empty((int(n), int(dim)), dtype=np.float32)
    _ext.data(_DATA[kind], int(seed), out, int(dim))
    return out


# ---------------------------------------------------------------------------
# Quantizer
# ---------------------------------------------------------------------------
class Quantizer:
    """One quantizer: a type at a head dimension, built from a seed.

    ``Quantizer("turbo3", dim=128, seed=42)`` — ``type`` is any name of
    :func:`types`; every random object (rotation, QJL matrix) derives from
    ``seed`` (docs/FORMAT.md), so the same seed gives the same bytes on
    every machine. Options: ``law`` ("beta" exact codebook, default, or
    "gauss"), ``norm_correct`` (store ‖x‖/‖ĉ‖ so decode keeps the norm),
    ``qjl`` ("gaussian" d×d sketch, default, or "structured").

    Immutable once built: every method may run on many threads at once.
    """

    __slots__ = ("_q", "type", "dim", "seed", "family", "rotation", "bits", "bytes_per_vector",
                 "bits_per_value", "n_params", "__weakref__")

    def __init__(self, type: str, dim: int, seed: int = 42, *, law: str = "beta",
                 norm_correct: bool = False, qjl: str = "gaussian"):
        if law not in _LAWS:
            raise InputError(f"Quantizer: law must be 'beta' or 'gauss', got {law!r}")
        if qjl not in _QJL:
            raise InputError(f"Quantizer: qjl must be 'gaussian' or 'structured', got {qjl!r}")
        if not isinstance(type, str):
            raise InputError(f"Quantizer: type must be a type name, got {type!r}")
        seed, dim = int(seed), int(dim)
        if not 0 <= seed < 2 ** 64:
            raise InputError(f"Quantizer: seed must be in [0, 2^64), got {seed}")
        if not _ext.RQ_MIN_DIMS <= dim <= _ext.RQ_MAX_DIMS:
            raise InputError(f"Quantizer: dim must be in [{_ext.RQ_MIN_DIMS}, {_ext.RQ_MAX_DIMS}], got {dim}")
        self._q = _ext.Quantizer(type, int(dim), seed, _LAWS[law], int(bool(norm_correct)), _QJL[qjl])
        (name, self.family, self.rotation, self.bits, _bv, self.bytes_per_vector, self.bits_per_value,
         self.n_params, _) = self._q.info()
        self.type, self.dim, self.seed = name, int(dim), seed

    def __repr__(self):
        return f"Quantizer({self.type!r}, dim={self.dim}, seed={self.seed})"

    def encode(self, x) -> np.ndarray:
        """Compress vectors: x (..., dim) float → uint8 (..., bytes_per_vector).

        Each vector becomes one self-contained block (docs/FORMAT.md §5),
        byte-identical to the C library's and the CLI's. NaN/Inf or a norm
        beyond float16 raise :class:`InputError`."""
        a = _floats(x, "x", last=self.dim)
        out = np.empty(a.shape[:-1] + (self.bytes_per_vector,), dtype=np.uint8)
        self._q.encode(a, out)
        return out

    def decode(self, codes, out=None) -> np.ndarray:
        """Reconstruct: uint8 (..., bytes_per_vector) → float32 (..., dim).

        For `p` types this is x̂ = Πᵀ(n′c + ‖r′‖·α·Sᵀs), whose inner product
        with any y is the unbiased QJL estimate of ⟨y, x⟩. Every byte string
        decodes (no error after the shape checks), so ``out`` — a
        C-contiguous float32 array of the result's shape, reused across
        calls to skip a fresh allocation's page faults — is written only
        when the call succeeds."""
        c = _codes(codes, self.bytes_per_vector)
        shape = c.shape[:-1] + (self.dim,)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        elif (not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != shape
              or not out.flags.c_contiguous or not out.flags.writeable):
            raise InputError(f"decode: out must be a writable C-contiguous float32 array of shape {shape}")
        self._q.decode(c, out)
        return out

    def inner_product(self, y, codes) -> np.ndarray:
        """Scores: y (m, dim) or (dim,), codes (n, bytes) or (bytes,) →
        float32 (m, n) (axes of 1-D arguments dropped) with out[i, j] =
        ⟨y_i, x̂_j⟩ — unbiased for the `p` types. Fewer than 8 queries are
        scored by the library's rq_quantizer_dot (the query rotated once,
        blocks read in the rotated domain, nothing materialized); 8 or more
        decode each block once and take one matrix product (the same values
        to float rounding, much faster)."""
        yy = _floats(y, "y", last=self.dim, ndim=(1, 2))
        c = _codes(codes, self.bytes_per_vector)
        if c.ndim > 2:
            raise InputError(f"codes: expected (n, {self.bytes_per_vector}) or ({self.bytes_per_vector},), got {c.shape}")
        m, n = yy.size // self.dim, c.size // self.bytes_per_vector
        out = np.empty((m, n), dtype=np.float32)
        if m < _GEMM_QUERIES:
            self._q.dot(yy, c, out)  # rq_quantizer_dot: each block decoded in the rotated domain, per query
        else:
            if not np.isfinite(yy).all():
                raise InputError("inner_product: y contains NaN or Inf")
            y2, c2 = yy.reshape(m, self.dim), c.reshape(n, self.bytes_per_vector)
            for j in range(0, n, _GEMM_CHUNK):  # many queries: decode each block once, one matrix product
                np.matmul(y2, self.decode(c2[j:j + _GEMM_CHUNK]).T, out=out[:, j:j + _GEMM_CHUNK])
        if yy.ndim == 1:
            out = out[0]
        if c.ndim == 1:
            out = out[..., 0]
        return out

    def rotate(self, x, inverse: bool = False) -> np.ndarray:
        """The quantizer's rotation Π applied to rows of x (…, dim) (Πᵀ with
        ``inverse=True``); :class:`InputError` for types without one."""
        a = _floats(x, "x", last=self.dim)
        out = np.empty_like(a)
        self._q.rotate(a, out, bool(inverse))
        return out

    def codebook(self):
        """The quantizer's codebook as :func:`codebook` returns it, or None
        (f32, f16, q8_0, q4_0, q4_0h and 1-bit `p` types have none)."""
        d = self._q.codebook()
        if d is not None:
            d["centroids"] = np.asarray(d["centroids"], dtype=np.float32)
            d["bounds"] = np.asarray(d["bounds"], dtype=np.float32)
            d["mse"] = d["dim"] * d["distortion"]
        return d


# ---------------------------------------------------------------------------
# KV cache
# ---------------------------------------------------------------------------
class KVCache:
    """A compressed KV cache with fused decode attention (rq_cache).

    ``KVCache(n_layers, n_kv_heads, head_dim, type_k="turbo3", type_v="turbo3",
    n_threads=1, seed=42)`` — key and value types independent; keys use
    ``seed``, values a seed derived from it. Tokens are stored as packed
    blocks in pages; attention never reconstructs the cache.

    Many sequences (paged, as vLLM's PagedAttention): sequence 0 exists from
    the start and every method without ``seq`` acts on it. Sequences have
    ids you choose (``add_sequence``), share pages after ``fork`` (a child's
    first append into a shared, partly filled page copies that one page),
    and draw pages from one pool, bounded by ``max_bytes`` (0 = no limit):
    an append that needs more pages than are left raises MemoryError and
    changes nothing. ``attention_batch`` serves several sequences of a layer
    in one library call; ``save``/``load`` and ``to_bytes``/``from_bytes``
    persist one sequence or all of them.

    ``centre_keys=True`` stores keys as k − μ, μ the mean of key positions
    1..``centre_window`` (0 = 64) per sequence, layer and KV head, and keeps
    position 0 (the attention sink) exactly in fp16; scores shift by q·μ,
    which softmax drops, and the quantization error falls with |k − μ|.
    ``layer_types_k`` / ``layer_types_v``: one type name per layer (None
    entries = ``type_k`` / ``type_v``), e.g. from :func:`kv_alloc`.
    ``int8_scores=True`` scores keys of 1..4-bit codes as int8 query ×
    int8 centroids in exact int32 (rq_cache_config.int8_scores; faster, the
    same scores at every SIMD level, within the rounding of q and the
    centroids to 8 bits of the float scores); other key types are unaffected.

    Safe to share across threads: append / clear / set_key_basis and the
    sequence structure changes (add, remove, fork, truncate, set_window,
    load) take the cache's lock exclusively; attention, attention_batch and
    save share it, with the GIL released.
    """

    def __init__(self, n_layers: int, n_kv_heads: int, head_dim: int, type_k: str = "turbo3",
                 type_v: str = "turbo3", n_threads: int = 1, seed: int = 42, *, page_tokens: int = 0,
                 law: str = "beta", norm_correct: bool = False, qjl: str = "gaussian", max_bytes: int = 0,
                 centre_keys: bool = False, centre_window: int = 0, layer_types_k=None, layer_types_v=None,
                 int8_scores: bool = False):
        if law not in _LAWS or qjl not in _QJL:
            raise InputError("KVCache: law must be 'beta'/'gauss' and qjl 'gaussian'/'structured'")
        for name, val, hi in (("n_layers", n_layers, 1 << 20), ("n_kv_heads", n_kv_heads, 1 << 20),
                              ("head_dim", head_dim, _ext.RQ_MAX_DIMS), ("n_threads", n_threads, 1 << 10),
                              ("page_tokens", page_tokens, 1 << 24)):
            if not 0 <= int(val) <= hi:
                raise InputError(f"KVCache: {name} must be in [0, {hi}], got {val}")
        if not 0 <= int(seed) < 2 ** 64:
            raise InputError(f"KVCache: seed must be in [0, 2^64), got {seed}")
        if not 0 <= int(max_bytes) < 2 ** 63:
            raise InputError(f"KVCache: max_bytes must be in [0, 2^63), got {max_bytes}")
        if not 0 <= int(centre_window) <= 1 << 24:
            raise InputError(f"KVCache: centre_window must be in [0, 2^24], got {centre_window}")
        lt_k = self._layer_types(layer_types_k, "layer_types_k", int(n_layers))
        lt_v = self._layer_types(layer_types_v, "layer_types_v", int(n_layers))
        self._c = _ext.KVCache(int(n_layers), int(n_kv_heads), int(head_dim), str(type_k), str(type_v),
                               int(n_threads), int(seed), int(page_tokens), _LAWS[law], bool(norm_correct),
                               _QJL[qjl], int(max_bytes), bool(centre_keys), int(centre_window), lt_k, lt_v,
                               bool(int8_scores))
        self.centre_keys, self.centre_window = bool(centre_keys), int(centre_window)
        self.int8_scores = bool(int8_scores)
        self.max_bytes = int(max_bytes)
        self.n_layers, self.n_kv_heads, self.head_dim = int(n_layers), int(n_kv_heads), int(head_dim)
        self.type_k = self._c.quantizer_info(False)[0]
        self.type_v = self._c.quantizer_info(True)[0]
        self.n_threads, self.seed = int(n_threads), int(seed)

    @staticmethod
    def _layer_types(names, what, n_layers):
        if names is None:
            return None
        if isinstance(names, (str, bytes)):
            raise InputError(f"KVCache: {what} must be a sequence of n_layers type names, not one string")
        try:
            names = list(names)
        except TypeError:
            raise InputError(f"KVCache: {what} must be a sequence of n_layers type names") from None
        if len(names) != n_layers:
            raise InputError(f"KVCache: {what} needs n_layers = {n_layers} entries, got {len(names)}")
        for i, t in enumerate(names):
            if t is not None and not isinstance(t, str):
                raise InputError(f"KVCache: {what}[{i}] must be a type name (str) or None, got {t!r}")
        return names

    def layer_type(self, layer: int, value: bool = False) -> str:
        """The type name of one layer's keys (or values with ``value=True``):
        its ``layer_types_k/v`` entry or the default."""
        return self._c.layer_quantizer_info(self._layer(layer), bool(value))[0]

    def bits_per_value(self, n_ctx: int) -> float:
        """Stored bits per cached value, averaged over K and V, every layer
        and KV head, for one sequence of ``n_ctx`` tokens: the blocks (norms,
        scales and codes included) and, with ``centre_keys``, μ and the fp16
        sink (rq_cache_bits_per_value). 0.0 for n_ctx = 0."""
        n_ctx = operator.index(n_ctx)
        if not 0 <= n_ctx < 2 ** 63:
            raise InputError(f"bits_per_value: n_ctx must be in [0, 2^63), got {n_ctx}")
        return self._c.bits_per_value(n_ctx)

    def __repr__(self):
        return (f"KVCache(n_layers={self.n_layers}, n_kv_heads={self.n_kv_heads}, head_dim={self.head_dim}, "
                f"type_k={self.type_k!r}, type_v={self.type_v!r}, n_tokens={self.n_tokens})")

    def _layer(self, layer):
        layer = int(layer)
        if not 0 <= layer < self.n_layers:
            raise InputError(f"layer {layer} outside [0, {self.n_layers})")
        return layer

    @staticmethod
    def _seq(seq, what):
        seq = operator.index(seq)
        if not -2 ** 31 <= seq < 2 ** 31:
            raise InputError(f"{what}: sequence id {seq} outside the int range")
        return seq

    @staticmethod
    def _seq_or_all(seq, what):
        return _ext.RQ_SEQ_ALL if seq is None else KVCache._seq(seq, what)

    def append(self, layer: int, k, v, seq: int = 0) -> None:
        """Append tokens to one layer of sequence ``seq``: k, v (n_tokens,
        n_kv_heads, head_dim) (or (n_kv_heads, head_dim) for one token). All
        tokens are validated and encoded before any is stored: on error
        nothing is appended. MemoryError when ``max_bytes`` leaves too few
        pages for them (the cache unchanged)."""
        seq = self._seq(seq, "append")
        layer = self._layer(layer)
        shape = (self.n_kv_heads, self.head_dim)
        kk = _floats(k, "k", last=self.head_dim, ndim=(2, 3))
        vv = _floats(v, "v", last=self.head_dim, ndim=(2, 3))
        if kk.shape[-2:] != shape or vv.shape != kk.shape:
            raise InputError(f"append: k and v must both be (n_tokens, {self.n_kv_heads}, {self.head_dim}), "
                             f"got {kk.shape} and {vv.shape}")
        self._c.append(layer, kk, vv, seq)

    def attention(self, layer: int, q, n_q_heads: int, causal: bool = True, *, scale: float = 0.0,
                  n_ctx=None, reference: bool = False, seq: int = 0) -> np.ndarray:
        """Softmax attention of queries over the layer's cached tokens of
        sequence ``seq``.

        q: (n_q, n_q_heads, head_dim) (or (n_q_heads, head_dim), one query) →
        float32, same shape. Query head h reads KV head h // (n_q_heads //
        n_kv_heads) (GQA). ``causal=True``: the n_q queries are the last n_q
        positions, query i sees tokens 0 .. n_tokens − n_q + i; ``False``:
        every query sees every token. ``n_ctx`` (one int per query)
        overrides both. ``scale`` 0 = 1/sqrt(head_dim). ``reference=True``
        runs rq_cache_attention_ref (decode everything, exact softmax in
        double) instead of the fused kernels. On a layer with a sliding
        window (``set_window``) each query sees at most its last n_window
        positions."""
        seq = self._seq(seq, "attention")
        layer = int(layer)
        n_q_heads = int(n_q_heads)
        if n_q_heads <= 0:
            raise InputError(f"attention: n_q_heads must be positive, got {n_q_heads}")
        qq = _floats(q, "q", last=self.head_dim, ndim=(2, 3))
        if qq.shape[-2] != n_q_heads:
            raise InputError(f"attention: q must be (n_q, {n_q_heads}, {self.head_dim}), got {qq.shape}")
        n_q = qq.shape[0] if qq.ndim == 3 else 1
        scale = float(scale)
        if not (scale >= 0 and math.isfinite(scale)):
            raise InputError(f"attention: scale must be finite and >= 0, got {scale}")
        if n_ctx is not None:
            ctx = [int(t) for t in np.asarray(n_ctx).reshape(-1)]
            if len(ctx) != n_q:
                raise InputError(f"attention: n_ctx needs {n_q} entries, got {len(ctx)}")
            if min(ctx, default=0) < 0:
                raise InputError("attention: n_ctx entries must be >= 0")
        else:
            ctx = None  # causal: the binding reads n_tokens under the cache's lock
        out = np.empty_like(qq)
        self._c.attention(layer, qq, n_q_heads, ctx, scale, out, bool(reference), bool(causal), seq)
        return out

    def attention_batch(self, layer: int, queries, n_q_heads: int, causal: bool = True, *,
                        scale: float = 0.0) -> list:
        """Attention of several sequences of one layer in one library call
        (rq_cache_attention_batch, the GIL released): ``queries`` is a list
        of ``(seq, q)`` pairs, q as for :meth:`attention`; returns one
        float32 array per pair, in order, each bit for bit what
        ``attention(layer, q, n_q_heads, causal, seq=seq)`` gives. A
        sequence may appear more than once."""
        layer = self._layer(layer)
        n_q_heads = int(n_q_heads)
        if n_q_heads <= 0:
            raise InputError(f"attention_batch: n_q_heads must be positive, got {n_q_heads}")
        scale = float(scale)
        if not (scale >= 0 and math.isfinite(scale)):
            raise InputError(f"attention_batch: scale must be finite and >= 0, got {scale}")
        entries, outs = [], []
        for i, item in enumerate(queries):
            try:
                seq, q = item
            except (TypeError, ValueError):
                raise InputError(f"attention_batch: entry {i} must be a (seq, q) pair") from None
            seq = self._seq(seq, "attention_batch")
            qq = _floats(q, "q", last=self.head_dim, ndim=(2, 3))
            if qq.shape[-2] != n_q_heads:
                raise InputError(f"attention_batch: entry {i}: q must be (n_q, {n_q_heads}, {self.head_dim}), "
                                 f"got {qq.shape}")
            out = np.empty_like(qq)
            entries.append((seq, qq, out))
            outs.append(out)
        self._c.attention_batch(layer, entries, n_q_heads, scale, bool(causal))
        return outs

    # -- many sequences ---------------------------------------------------
    def add_sequence(self, seq: int) -> None:
        """A new empty sequence with id ``seq`` (>= 0, not present yet)."""
        self._c.seq_add(self._seq(seq, "add_sequence"))

    def remove_sequence(self, seq: int) -> None:
        """Remove a sequence; its pages return to the pool unless shared.
        Sequence 0 may be removed too (calls without ``seq`` then fail until
        it is added again)."""
        self._c.seq_remove(self._seq(seq, "remove_sequence"))

    def fork(self, parent: int, child: int) -> None:
        """A new sequence ``child`` holding every token of ``parent``,
        sharing its pages (nothing is copied; a shared prefix costs once)."""
        self._c.seq_fork(self._seq(parent, "fork"), self._seq(child, "fork"))

    def truncate(self, seq: int, n_tokens: int) -> None:
        """Keep the first ``n_tokens`` positions of ``seq`` in every layer
        (layers holding fewer are unchanged); pages no sequence holds any
        more return to the pool."""
        n_tokens = operator.index(n_tokens)
        if n_tokens < 0:
            raise InputError(f"truncate: n_tokens must be >= 0, got {n_tokens}")
        self._c.seq_truncate(self._seq(seq, "truncate"), n_tokens)

    @property
    def sequences(self) -> list:
        """The ids of the cache's sequences, ascending."""
        return self._c.seq_ids()

    def n_tokens_of(self, seq: int, layer: int = 0) -> int:
        """Tokens of sequence ``seq`` in one layer."""
        return self._c.seq_n_tokens(self._seq(seq, "n_tokens_of"), self._layer(layer))

    def set_window(self, layer: int, n_window: int) -> None:
        """A sliding window for one layer (0 = none): a query at context
        length n sees positions n − n_window .. n − 1 only, and appends
        free the pages every later query is past. Only while no sequence
        holds tokens in the layer."""
        n_window = operator.index(n_window)
        if n_window < 0:
            raise InputError(f"set_window: n_window must be >= 0, got {n_window}")
        self._c.set_window(self._layer(layer), n_window)

    @property
    def pages_in_use(self) -> int:
        """Pages of the pool held by some sequence (shared pages count once)."""
        return self._c.pages()[0]

    @property
    def pages_available(self) -> int | None:
        """Pages an append may still take under ``max_bytes`` (free pages plus
        the budget not yet allocated); None without a budget."""
        return self._c.pages()[1]

    @property
    def page_bytes(self) -> int:
        """The bytes one page costs the ``max_bytes`` budget."""
        return self._c.pages()[2]

    def save(self, path, seq: int | None = None) -> None:
        """Write one sequence (``seq``) or every sequence (None) to a file,
        atomically (a temporary file renamed over ``path``)."""
        import os
        self._c.save(self._seq_or_all(seq, "save"), os.fspath(path))

    def load(self, path, seq: int | None = None) -> None:
        """Add the sequences saved in a file: with ``seq`` the file must hold
        one sequence, added under that id; with None each keeps its saved
        id. The ids must not exist yet. Every field, CRC and block is
        checked first: on any error (rotorquant.Error naming it) the cache
        is unchanged. Forks saved together load as separate copies."""
        import os
        self._c.load(self._seq_or_all(seq, "load"), os.fspath(path))

    def to_bytes(self, seq: int | None = None) -> bytes:
        """The bytes :meth:`save` writes, in memory."""
        return self._c.to_bytes(self._seq_or_all(seq, "to_bytes"))

    def from_bytes(self, data, seq: int | None = None) -> None:
        """:meth:`load` from bytes (any bytes-like object)."""
        self._c.from_bytes(self._seq_or_all(seq, "from_bytes"), data)

    def clear(self) -> None:
        """Forget every token of every layer of every sequence (the sequences
        stay; pages go back to the pool for reuse)."""
        self._c.clear()

    def layer_tokens(self, layer: int) -> int:
        """Tokens held by one layer."""
        return self._c.stats()[0][self._layer(layer)]

    @property
    def n_tokens(self) -> int:
        """Tokens held: the largest count over the layers (every layer holds
        the same number once each has had its append)."""
        return max(self._c.stats()[0])

    @property
    def nbytes(self) -> int:
        """Exact payload bytes stored now: Σ_layers tokens × bytes_per_token / n_layers."""
        return self._c.stats()[1]

    @property
    def bytes_allocated(self) -> int:
        """Bytes allocated: pages (with the unused slots of the last page) and page tables."""
        return self._c.stats()[2]

    @property
    def bytes_per_token(self) -> int:
        """Exact payload bytes per token over all layers and KV heads, K + V."""
        return self._c.stats()[3]

    def set_key_basis(self, layer: int, kv_head: int, A, starts=None) -> None:
        """Store this layer's and KV head's keys in basis A (scores unchanged).

        A: (head_dim, head_dim), or (n_ranges, head_dim, head_dim) with
        ``starts`` the first key position of each range (starts[0] = 0,
        increasing). ``A=None`` removes the basis. Only while the layer holds
        no tokens; A must be invertible (condition number ≤ 1e7)."""
        layer = self._layer(layer)
        if A is None:
            self._c.set_key_basis(layer, int(kv_head), [], None)
            return
        a = _floats(A, "A", last=self.head_dim, ndim=(2, 3))
        if a.shape[-2] != self.head_dim:
            raise InputError(f"set_key_basis: A must be ({self.head_dim}, {self.head_dim}) per range, got {a.shape}")
        n_ranges = 1 if a.ndim == 2 else a.shape[0]
        if starts is None:
            if n_ranges != 1:
                raise InputError("set_key_basis: several ranges need their starts")
            starts = [0]
        starts = [int(s) for s in starts]
        if len(starts) != n_ranges or n_ranges == 0:
            raise InputError(f"set_key_basis: {n_ranges} bases but {len(starts)} starts")
        if min(starts) < 0:
            raise InputError("set_key_basis: starts must be >= 0")
        self._c.set_key_basis(layer, int(kv_head), starts, a)

    def load_key_basis(self, path) -> None:
        """Load every layer's key bases from a `rotorquant calibrate` file
        (rq_cache_load_key_basis: the file's shape must match the cache, and
        the cache then refuses tokens past the positions it was calibrated
        on). Raises :class:`Error` naming what is wrong with the file."""
        import os
        self._c.load_key_basis(os.fspath(path))


# ---------------------------------------------------------------------------
# kv_alloc: per-layer types under a bits budget (rq_kv_alloc)
# ---------------------------------------------------------------------------
def _costs(c, name):
    a = np.asarray(c)
    if a.dtype.kind not in "fiu" or a.ndim != 2 or 0 in a.shape:
        raise InputError(f"kv_alloc: {name} must be a non-empty (n_layers, n_types) array of numbers, "
                         f"got shape {a.shape} dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float64)


def kv_alloc(cost_k, cost_v, types_k, types_v, head_dim: int, budget: float,
             overhead_bits: float = 0.0) -> tuple:
    """Per-layer K/V types under a bits budget (rq_kv_alloc).

    ``cost_k[l, i]`` is the measured cost (≥ 0, e.g. attention output error
    with exact values) of storing layer l's keys in ``types_k[i]``; ``cost_v``
    likewise for values with ``types_v``. Returns ``(choice_k, choice_v, bits,
    cost)``: int arrays (n_layers,) of candidate indices minimising the total
    cost with mean bits per value (every block byte counted, plus
    ``overhead_bits``, e.g. centring's μ and sink) at most ``budget``, the
    choice's bits and cost. Deterministic. :class:`InputError` for bad
    shapes, unknown types, a head_dim a type refuses, a NaN/Inf/negative cost
    or a budget below what the smallest types need."""
    ck, cv = _costs(cost_k, "cost_k"), _costs(cost_v, "cost_v")
    tk = [types_k] if isinstance(types_k, str) else list(types_k)
    tv = [types_v] if isinstance(types_v, str) else list(types_v)
    if ck.shape[0] != cv.shape[0]:
        raise InputError(f"kv_alloc: cost_k has {ck.shape[0]} layers, cost_v {cv.shape[0]}")
    if ck.shape[1] != len(tk) or cv.shape[1] != len(tv):
        raise InputError(f"kv_alloc: cost_k {ck.shape} / cost_v {cv.shape} need one column per type "
                         f"({len(tk)} / {len(tv)})")
    budget, overhead_bits = float(budget), float(overhead_bits)
    if not math.isfinite(budget) or not math.isfinite(overhead_bits):
        raise InputError("kv_alloc: budget and overhead_bits must be finite")
    ch_k, ch_v, bits, cost = _ext.kv_alloc(ck, cv, [str(t) for t in tk], [str(t) for t in tv], ck.shape[0],
                                           int(head_dim), budget, overhead_bits)
    return np.asarray(ch_k, dtype=np.intp), np.asarray(ch_v, dtype=np.intp), bits, cost


# ---------------------------------------------------------------------------
# eval: `rotorquant eval --json` from Python
# ---------------------------------------------------------------------------
def _as3(a, name):
    if a.ndim == 2:
        return a[None]
    if a.ndim == 3:
        return a
    raise InputError(f"eval: {name} must be (n, d) or (heads, n, d), got shape {a.shape}")


def _finite_or_none(v):
    return float(v) if math.isfinite(v) else None


_ATTN_KEYS = ("mse", "ip_corr", "ip_bias", "ip_rmse", "score_cosine", "softmax_kl", "top1", "top5",
              "mse_values", "output_cosine")


def eval(type: str, keys, queries=None, values=None, *, type_v: str | None = None, causal: bool = False,
         scale: float = 0.0, seed: int = 42, reps: int = 5) -> dict:
    """The quality of a type on your arrays: the dict `rotorquant eval --json` prints.

    keys, values: (n, d) or (heads, n, d); queries: (m, d) or (q_heads, m, d)
    with q_heads a multiple of heads (GQA). Keys use ``seed``, values
    (``type_v``, default ``type``) ``seed + 1``. Without queries the inner
    products are those of key pairs (k_i, k_{i+n/2}). ``causal``: queries
    at the last m positions. ``reps`` > 0 adds encode/decode speed (vectors/s,
    one thread; machine-dependent). Metrics averaged over KV heads, and per
    head under ``per_head``; non-finite values are None (JSON null).
    """
    K = _as3(_floats(keys, "keys"), "keys")
    h, n, d = K.shape
    Q = V = None
    qh = m = 0
    if queries is not None:
        Q = _as3(_floats(queries, "queries"), "queries")
        qh, m, qd = Q.shape
        if qd != d or qh % h:
            raise InputError(f"eval: queries shape {Q.shape} does not fit keys {K.shape}: need the same d and "
                             "query heads a multiple of KV heads")
        if causal and m > n:
            raise InputError(f"eval: causal needs at most as many queries ({m}) as keys ({n}) per head")
    elif causal:
        raise InputError("eval: causal needs queries")
    if values is not None:
        V = _as3(_floats(values, "values"), "values")
        if V.shape != K.shape:
            raise InputError(f"eval: values shape {V.shape} does not match keys {K.shape}")
        if Q is None:
            raise InputError("eval: values need queries (attention outputs)")
    if 0 in K.shape or (Q is not None and 0 in Q.shape):
        raise InputError("eval: empty array (shape has a 0)")
    if not 2 <= d <= _ext.RQ_MAX_DIMS:
        raise InputError(f"eval: head dimension {d} outside [2, {_ext.RQ_MAX_DIMS}]")
    if n < 2:
        raise InputError("eval: need at least 2 keys per head")
    type_v = type if type_v is None else type_v
    seed = int(seed)
    qk = Quantizer(type, d, seed)
    qv = Quantizer(type_v, d, seed + 1) if V is not None else None
    group = qh // h if Q is not None else 0
    per = []
    for kh in range(h):
        if Q is not None:
            qbuf = np.ascontiguousarray(Q[kh * group:(kh + 1) * group].reshape(-1, d))
            ctx = [n - m + (i % m) + 1 for i in range(group * m)] if causal else None
            r = _ext.eval_attention(qk._q, qv._q if qv else None, K[kh], V[kh] if V is not None else None,
                                    qbuf, ctx, float(scale))
        else:
            y = np.ascontiguousarray(K[kh][(np.arange(n) + n // 2) % n])
            ip = _ext.eval_ip(qk._q, K[kh], y)
            r = {"mse": ip["mse"], "ip_corr": ip["corr"], "ip_bias": ip["bias"], "ip_rmse": ip["rmse"]}
        keys_out = ["mse", "ip_corr", "ip_bias", "ip_rmse"]
        if Q is not None:
            keys_out += ["score_cosine", "softmax_kl", "top1", "top5"]
        if V is not None:
            keys_out += ["mse_values", "output_cosine"]
        per.append({k: r[k] for k in keys_out})
    mean = {k: sum((1.0 / h) * p[k] for p in per) for k in per[0]}
    bpv = qk.bits_per_value
    out = {"type": qk.type, "type_v": qv.type if qv else qk.type, "d": d, "n": n, "heads": h,
           "query_heads": qh, "n_queries": m, "causal": bool(causal),
           "scale": _finite_or_none(scale if scale > 0 else 1.0 / math.sqrt(d)),
           "bits_per_value": bpv, "bytes_per_vector": qk.bytes_per_vector, "compression_vs_f16": 16.0 / bpv,
           "n_params": qk.n_params, "seed": seed}
    if reps > 0:
        enc, dec = _ext.eval_speed(qk._q, np.ascontiguousarray(K[0][:min(n, 4096)]), int(reps))
        out["encode_vps"], out["decode_vps"] = _finite_or_none(enc), _finite_or_none(dec)
    out.update({k: _finite_or_none(v) for k, v in mean.items()})
    out["per_head"] = [dict({"head": i}, **{k: _finite_or_none(v) for k, v in p.items()}) for i, p in enumerate(per)]
    return out

