"""rqnp.py — numpy model of rotorquant's turbo codec (randomized Hadamard + Lloyd-Max
for the Beta law + fp16 norm), plus the phase-1 candidate variants (norm correction,
8-bit log norm, key centring, q4_0h).  Library module; used by proxy.py / candidates.py.
`python3 bench/fidelity/rqnp.py` prints the Lloyd-Max MSE per bit at d=64/128 as a self-check."""
import numpy as np

_cb_cache = {}

def lloyd_max(bits, d, grid=200001):
    """Lloyd-Max centroids/bounds for one coordinate of a rotated unit vector in R^d
    (density ∝ (1-x^2)^((d-3)/2)).  Returns (centroids, bounds, mse_per_coord*d)."""
    key = (bits, d)
    if key in _cb_cache:
        return _cb_cache[key]
    s = 1 / np.sqrt(d)
    x = np.linspace(-min(1, 12 * s), min(1, 12 * s), grid)
    f = np.clip(1 - x * x, 0, None) ** ((d - 3) / 2)
    f /= f.sum()
    L = 2 ** bits
    # init at Gaussian quantiles
    cdf = np.cumsum(f)
    c = np.interp((np.arange(L) + 0.5) / L, cdf, x)
    for _ in range(3000):
        b = (c[1:] + c[:-1]) / 2
        idx = np.searchsorted(b, x)
        m = np.bincount(idx, f, L)
        mx = np.bincount(idx, f * x, L)
        cn = mx / np.maximum(m, 1e-300)
        if np.max(np.abs(cn - c)) < 1e-10 * s:
            c = cn
            break
        c = cn
    b = (c[1:] + c[:-1]) / 2
    idx = np.searchsorted(b, x)
    mse = np.sum(f * (x - c[idx]) ** 2) * d
    _cb_cache[key] = (c, b, mse)
    return _cb_cache[key]

def hadamard(d):
    H = np.array([[1.0]])
    while H.shape[0] < d:
        H = np.block([[H, H], [H, -H]])
    return H / np.sqrt(d)

class Rot:
    """Π = H·diag(σ), one per (seed, d)."""
    def __init__(self, d, seed=42):
        rng = np.random.default_rng(seed)
        self.s = rng.choice([-1.0, 1.0], d)
        self.H = hadamard(d)
        self.M = self.H * self.s[None, :]  # H @ diag(s)
    def fwd(self, x):
        return x @ self.M.T
    def inv(self, y):
        return y @ self.M

def f16(x):
    return np.asarray(x, np.float32).astype(np.float16).astype(np.float64)

def norm_code(n, norm_bits=16, lo=-8.0, hi=8.0):
    """the stored norm: fp16, or an n-bit log2 code on [2^lo, 2^hi] (a per-model constant range)."""
    if norm_bits == 16:
        return f16(n)
    L = 2 ** norm_bits
    t = np.clip(np.log2(np.maximum(n, 1e-30)), lo, hi)
    q = np.round((t - lo) / (hi - lo) * (L - 1))
    return 2.0 ** (lo + q * (hi - lo) / (L - 1))

def turbo(x, bits, d=None, rot=None, norm_correct=False, norm_bits=16, cb=None):
    """encode+decode rows of x (..., d) with turbo{bits}; returns x̂.
    cb: optional (centroids, bounds) for a different scalar code."""
    shp = x.shape
    d = shp[-1]
    X = x.reshape(-1, d).astype(np.float64)
    rot = rot or Rot(d)
    n = np.linalg.norm(X, axis=1)
    n_safe = np.where(n > 0, n, 1)
    y = rot.fwd(X / n_safe[:, None])
    c, b = (cb if cb is not None else lloyd_max(bits, d)[:2])
    idx = np.searchsorted(b, y)
    yq = c[idx]
    stored = n
    if norm_correct:
        stored = n / np.linalg.norm(yq, axis=1)
    stored = norm_code(stored, norm_bits)
    out = rot.inv(yq) * stored[:, None]
    out[n == 0] = 0
    return out.reshape(shp)

def q4_0(x, hadamard_rot=False, rot=None):
    shp = x.shape
    d = shp[-1]
    X = x.reshape(-1, d).astype(np.float64)
    if hadamard_rot:
        rot = rot or Rot(d)
        X = rot.fwd(X)
    B = X.reshape(-1, 32)
    i = np.argmax(np.abs(B), axis=1)
    mx = B[np.arange(len(B)), i]
    dl = f16(mx / -8)
    idl = np.where(dl != 0, 1 / np.where(dl != 0, dl, 1), 0)
    q = np.clip(np.floor(B * idl[:, None] + 8.5), 0, 15)
    Y = ((q - 8) * dl[:, None]).reshape(-1, d)
    if hadamard_rot:
        Y = rot.inv(Y)
    return Y.reshape(shp)

def bits_per_value(kind, bits=0, d=64, norm_bits=16):
    if kind == 'turbo':
        return bits + norm_bits / d
    if kind in ('q4_0', 'q4_0h'):
        return 4.5
    if kind == 'f16':
        return 16
    if kind == 'q8_0':
        return 8.5
    raise ValueError(kind)

if __name__ == '__main__':
    for d in (64, 128):
        print(d, ' '.join('b%d %.5f' % (b, lloyd_max(b, d)[2]) for b in range(1, 6)))
