"""Type stubs of rotorquant.compat (docstrings: rotorquant/compat.py)."""
from typing import Any

import numpy as np
import numpy.typing as npt

from . import Quantizer

class _MSE:
    d: int
    bits: int
    seed: int
    quantizer: Quantizer
    def __init__(self, d: int, bits: int, seed: int = 42, device: str = "cpu", family: str | None = None) -> None: ...
    def quantize(self, x: npt.ArrayLike) -> Any: ...
    def dequantize(self, codes: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
    def forward(self, x: npt.ArrayLike) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]: ...
    def __call__(self, x: npt.ArrayLike) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]: ...
    def parameters_count(self) -> int: ...

class TurboQuantMSE(_MSE):
    """TurboQuant_mse (dense Haar rotation + exact Lloyd-Max codes)."""
    def quantize(self, x: npt.ArrayLike) -> npt.NDArray[np.uint8]: ...

class RotorQuantMSE(_MSE):
    """RotorQuant_mse (Cl(3,0) rotors on groups of 3)."""
    n_groups: int
    def __init__(self, d: int, bits: int, seed: int = 42, grade_bits: dict[str, int] | None = None,
                 device: str = "cpu") -> None: ...
    def quantize(self, x: npt.ArrayLike) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]: ...

class _Prod:
    d: int
    bits: int
    mse_bits: int
    qjl_dim: int
    seed: int
    quantizer: Quantizer
    mse: _MSE
    def __init__(self, d: int, bits: int, qjl_dim: int | None = None, seed: int = 42, device: str = "cpu",
                 family: str | None = None) -> None: ...
    def quantize(self, x: npt.ArrayLike) -> dict[str, npt.NDArray[np.uint8]]: ...
    def forward(self, x: npt.ArrayLike) -> dict[str, npt.NDArray[np.uint8]]: ...
    def __call__(self, x: npt.ArrayLike) -> dict[str, npt.NDArray[np.uint8]]: ...
    def dequantize(self, compressed: dict[str, npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]: ...
    def inner_product(self, y: npt.ArrayLike, compressed: dict[str, npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]: ...
    def parameters_count(self) -> int: ...

class TurboQuantProd(_Prod):
    """TurboQuant_prod: (bits−1)-bit MSE + 1-bit QJL (unbiased inner products)."""
    mse: TurboQuantMSE

class RotorQuantProd(_Prod):
    """RotorQuant_prod: (bits−1)-bit rotor MSE + 1-bit QJL."""
    mse: RotorQuantMSE

class _KVCache:
    d_key: int
    d_value: int
    bits: int
    key_cache: list[dict[str, npt.NDArray[np.uint8]]]
    value_cache: list[npt.NDArray[np.uint8]]
    def __init__(self, d_key: int, d_value: int, bits: int = 3, seed: int = 42, device: str = "cpu") -> None: ...
    def append(self, keys: npt.ArrayLike, values: npt.ArrayLike) -> None: ...
    def attention_scores(self, queries: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
    def get_values(self) -> npt.NDArray[np.float32]: ...
    def memory_bytes(self) -> int: ...
    def __len__(self) -> int: ...

class TurboQuantKVCache(_KVCache):
    """The seed's TurboQuantKVCache on packed blocks."""
    key_quantizer: TurboQuantProd
    value_quantizer: TurboQuantMSE

class RotorQuantKVCache(_KVCache):
    """The seed's RotorQuantKVCache on packed blocks."""
    key_quantizer: RotorQuantProd
    value_quantizer: RotorQuantMSE
