"""Type stubs of rotorquant (docstrings: rotorquant/__init__.py)."""
from os import PathLike
from typing import Any, Iterable, Sequence, TypedDict

import numpy as np
import numpy.typing as npt

__version__: str
simd: str
FORMAT_VERSION: int

class Error(Exception):
    """An error reported by librotorquant; ``status`` is its rq_status."""
    status: int

class InputError(Error, ValueError):
    """Input the library rejects (shape, dtype, NaN/Inf, unknown type, dimension)."""

class TypeInfo(TypedDict):
    name: str
    family: str
    rotation: str
    bits: int
    bits_per_value: float
    bytes_per_vector: int

class Codebook(TypedDict):
    dim: int
    bits: int
    law: str
    centroids: npt.NDArray[np.float32]
    bounds: npt.NDArray[np.float32]
    distortion: float
    mse: float
    n_iters: int

def types(dim: int = 128) -> list[TypeInfo]:
    """Every type the library serves at head dimension ``dim``."""
def codebook(dim: int, bits: int, law: str = "beta") -> Codebook:
    """The Lloyd-Max codebook for one coordinate of a rotated unit vector."""
def data(kind: str, n: int, dim: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """The library's deterministic synthetic data: "isotropic" or "outlier"."""

class Quantizer:
    """One quantizer: a type at a head dimension, built from a seed."""
    type: str
    dim: int
    seed: int
    family: str
    rotation: str
    bits: int
    bytes_per_vector: int
    bits_per_value: float
    n_params: int
    def __init__(self, type: str, dim: int, seed: int = 42, *, law: str = "beta", norm_correct: bool = False,
                 qjl: str = "gaussian") -> None: ...
    def encode(self, x: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        """x (..., dim) float -> uint8 (..., bytes_per_vector)."""
    def decode(self, codes: npt.ArrayLike, out: npt.NDArray[np.float32] | None = None) -> npt.NDArray[np.float32]:
        """uint8 (..., bytes_per_vector) -> float32 (..., dim)."""
    def inner_product(self, y: npt.ArrayLike, codes: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """(m, dim) x (n, bytes) -> (m, n) scores; unbiased for `p` types."""
    def rotate(self, x: npt.ArrayLike, inverse: bool = False) -> npt.NDArray[np.float32]:
        """The quantizer's rotation applied to rows of x."""
    def codebook(self) -> Codebook | None:
        """The quantizer's codebook, or None."""

class KVCache:
    """A compressed KV cache with fused decode attention."""
    n_layers: int
    n_kv_heads: int
    head_dim: int
    type_k: str
    type_v: str
    n_threads: int
    seed: int
    max_bytes: int
    centre_keys: bool
    centre_window: int
    int8_scores: bool
    def __init__(self, n_layers: int, n_kv_heads: int, head_dim: int, type_k: str = "turbo3",
                 type_v: str = "turbo3", n_threads: int = 1, seed: int = 42, *, page_tokens: int = 0,
                 law: str = "beta", norm_correct: bool = False, qjl: str = "gaussian",
                 max_bytes: int = 0, centre_keys: bool = False, centre_window: int = 0,
                 layer_types_k: Sequence[str | None] | None = None,
                 layer_types_v: Sequence[str | None] | None = None, int8_scores: bool = False) -> None: ...
    def layer_type(self, layer: int, value: bool = False) -> str:
        """One layer's key (or value) type name."""
    def bits_per_value(self, n_ctx: int) -> float:
        """Stored bits per value for one sequence of n_ctx tokens (μ and sink included)."""
    def append(self, layer: int, k: npt.ArrayLike, v: npt.ArrayLike, seq: int = 0) -> None:
        """k, v (n_tokens, n_kv_heads, head_dim); all or nothing; MemoryError past max_bytes."""
    def attention(self, layer: int, q: npt.ArrayLike, n_q_heads: int, causal: bool = True, *, scale: float = 0.0,
                  n_ctx: Sequence[int] | None = None, reference: bool = False,
                  seq: int = 0) -> npt.NDArray[np.float32]:
        """q (n_q, n_q_heads, head_dim) -> same shape."""
    def attention_batch(self, layer: int, queries: Iterable[tuple[int, npt.ArrayLike]], n_q_heads: int,
                        causal: bool = True, *, scale: float = 0.0) -> list[npt.NDArray[np.float32]]:
        """[(seq, q), ...] -> one output per entry, in one library call."""
    def add_sequence(self, seq: int) -> None:
        """A new empty sequence."""
    def remove_sequence(self, seq: int) -> None:
        """Remove a sequence (shared pages stay with the others)."""
    def fork(self, parent: int, child: int) -> None:
        """child = a copy of parent sharing its pages."""
    def truncate(self, seq: int, n_tokens: int) -> None:
        """Keep the first n_tokens positions in every layer."""
    @property
    def sequences(self) -> list[int]:
        """Sequence ids, ascending."""
    def n_tokens_of(self, seq: int, layer: int = 0) -> int:
        """Tokens of a sequence in one layer."""
    def set_window(self, layer: int, n_window: int) -> None:
        """Sliding window for one layer (0 = none); only while it is empty."""
    @property
    def pages_in_use(self) -> int:
        """Pages held by some sequence."""
    @property
    def pages_available(self) -> int | None:
        """Pages left under max_bytes; None without a budget."""
    @property
    def page_bytes(self) -> int:
        """Bytes one page costs the budget."""
    def save(self, path: str | PathLike[str], seq: int | None = None) -> None:
        """One sequence, or all (None), to a file."""
    def load(self, path: str | PathLike[str], seq: int | None = None) -> None:
        """Add saved sequences; all or nothing."""
    def to_bytes(self, seq: int | None = None) -> bytes:
        """What save writes, in memory."""
    def from_bytes(self, data: bytes | bytearray | memoryview, seq: int | None = None) -> None:
        """load from bytes; all or nothing."""
    def clear(self) -> None:
        """Forget every token."""
    def layer_tokens(self, layer: int) -> int:
        """Tokens held by one layer."""
    @property
    def n_tokens(self) -> int:
        """Tokens held (largest over layers)."""
    @property
    def nbytes(self) -> int:
        """Exact payload bytes stored."""
    @property
    def bytes_allocated(self) -> int:
        """Bytes allocated (pages and page tables)."""
    @property
    def bytes_per_token(self) -> int:
        """Payload bytes per token over all layers and KV heads, K + V."""
    def set_key_basis(self, layer: int, kv_head: int, A: npt.ArrayLike | None,
                      starts: Sequence[int] | None = None) -> None:
        """Store keys in basis A (scores unchanged); None removes it."""
    def load_key_basis(self, path: str | PathLike[str]) -> None:
        """Key bases from a `rotorquant calibrate` file."""

def kv_alloc(cost_k: npt.ArrayLike, cost_v: npt.ArrayLike, types_k: Sequence[str], types_v: Sequence[str],
             head_dim: int, budget: float,
             overhead_bits: float = 0.0) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], float, float]:
    """Per-layer K/V types under a bits budget: (choice_k, choice_v, bits, cost)."""

def eval(type: str, keys: npt.ArrayLike, queries: npt.ArrayLike | None = None, values: npt.ArrayLike | None = None,
         *, type_v: str | None = None, causal: bool = False, scale: float = 0.0, seed: int = 42,
         reps: int = 5) -> dict[str, Any]:
    """The dict `rotorquant eval --json` prints."""
