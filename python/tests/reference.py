"""Independent numpy reference implementations for the tests, written from
docs/FORMAT.md and the papers, not from the C sources or its output:

* the PRNG (splitmix64, xoshiro256**, rq_seed_derive, polar Gaussians;
  FORMAT §2), the randomized Hadamard rotation Π of the `turbo` types and
  the Cl(3,0) rotor blocks of the `rotor` types (FORMAT §3, with a
  geometric product of its own);
* a Lloyd-Max codebook for the exact coordinate law (FORMAT §4) by
  quadrature on a fine grid;
* the MSE and PROD (QJL) block decoders (fp16 norms, little-endian b-bit
  codes, sign bits, the Gaussian sketch S; FORMAT §5);
* softmax attention in float64 over decoded keys and values.
"""
import math

import numpy as np

M64 = (1 << 64) - 1


def splitmix64(state):
    """One output of splitmix64 started at `state`: (new state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def seed_derive(seed, stream, index):
    _, a = splitmix64(index)
    _, b = splitmix64(stream ^ a)
    _, c = splitmix64(seed ^ b)
    return c


class Xoshiro256ss:
    def __init__(self, seed):
        x, self.s = seed, []
        for _ in range(4):
            x, out = splitmix64(x)
            self.s.append(out)

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64  # noqa: E731
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result


def hadamard_matrix(d, seed):
    """Π of a `turbo` quantizer with `seed` for d a power of two (FORMAT §3):
    Π = H_d · diag(σ), σ_i = −1 where bit i mod 64 of draw ⌊i/64⌋ is 1, the
    generator seeded with rq_seed_derive(seed, stream 1 = rotation, 0)."""
    assert d & (d - 1) == 0
    rng = Xoshiro256ss(seed_derive(seed, 1, 0))
    signs = np.empty(d)
    for w in range(0, d, 64):
        bits = rng.next()
        for i in range(w, min(d, w + 64)):
            signs[i] = -1.0 if (bits >> (i - w)) & 1 else 1.0
    H = np.array([[1.0]])
    while H.shape[0] < d:  # Sylvester order
        H = np.block([[H, H], [H, -H]])
    return (H / math.sqrt(d)) * signs[None, :]


def lloyd_max_beta(d, bits, grid=400001, iters=500):
    """Centroids and per-coordinate distortion of the Lloyd-Max quantizer
    for the density ∝ (1 − x²)^((d − 3)/2) on [−1, 1], by quadrature."""
    x = np.linspace(-1, 1, grid)
    logw = 0.5 * (d - 3) * np.log(np.clip(1 - x * x, 1e-300, None))
    w = np.exp(logw - logw.max())
    w /= w.sum()
    sd = math.sqrt(1.0 / d)
    L = 1 << bits
    c = np.linspace(-2.5 * sd, 2.5 * sd, L)
    for _ in range(iters):
        b = 0.5 * (c[1:] + c[:-1])
        cell = np.searchsorted(b, x)
        mass = np.bincount(cell, weights=w, minlength=L)
        c_new = np.bincount(cell, weights=w * x, minlength=L) / mass
        if np.max(np.abs(c_new - c)) < 1e-12:
            c = c_new
            break
        c = c_new
    b = 0.5 * (c[1:] + c[:-1])
    cell = np.searchsorted(b, x)
    return c, float((w * (x - c[cell]) ** 2).sum())


def unpack_codes(block_codes, d, bits):
    """Little-endian bitstream: code i in bits [i·b, (i+1)·b) (FORMAT §5).
    block_codes: uint8 (n, ⌈d·b/8⌉) → int (n, d)."""
    bitarr = np.unpackbits(block_codes, axis=1, bitorder="little")[:, :d * bits]
    weights = 1 << np.arange(bits)
    return (bitarr.reshape(-1, d, bits) * weights).sum(axis=2)


def decode_mse(codes, d, bits, centroids, pi):
    """x̂ = n′ · Πᵀ c(code) for MSE blocks [fp16 n′][pack_b(codes)]."""
    codes = np.asarray(codes, dtype=np.uint8)
    norm = codes[:, :2].copy().view("<f2").astype(np.float64)[:, 0]
    idx = unpack_codes(codes[:, 2:], d, bits)
    y = np.asarray(centroids, dtype=np.float64)[idx]
    return norm[:, None] * (y @ pi)  # rows: (Πᵀ y)ᵀ = yᵀ Π


def attention(q, k, v, scale, n_ctx=None):
    """out[i, h] = Σ_t softmax_t(scale·<q[i,h], k[t, g]>) v[t, g], g = h // (Hq/Hkv),
    over t < n_ctx[i]; float64. q (n_q, Hq, d); k, v (n, Hkv, d)."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    n_q, hq, d = q.shape
    hkv = k.shape[1]
    group = hq // hkv
    out = np.zeros_like(q)
    for i in range(n_q):
        n = k.shape[0] if n_ctx is None else n_ctx[i]
        for h in range(hq):
            g = h // group
            s = scale * (k[:n, g] @ q[i, h])
            p = np.exp(s - s.max())
            p /= p.sum()
            out[i, h] = p @ v[:n, g]
    return out


def gauss(rng):
    """Marsaglia's polar method on the xoshiro stream (FORMAT §2; numpy's log)."""
    while True:
        u = 2.0 * ((rng.next() >> 11) * 2.0 ** -53) - 1.0
        v = 2.0 * ((rng.next() >> 11) * 2.0 ** -53) - 1.0
        s = u * u + v * v
        if s >= 1.0 or s == 0.0:
            continue
        return u * math.sqrt(-2.0 * math.log(s) / s)


def _blade_sign(a, b):
    """Sign of the product of basis blades a·b (bitmasks, e_i² = +1)."""
    a >>= 1
    swaps = 0
    while a:
        swaps += bin(a & b).count("1")
        a >>= 1
    return -1.0 if swaps & 1 else 1.0


def geometric_product(x, y):
    """Cl(3,0) product of multivectors as {bitmask: coefficient} (e1 = 1, e2 = 2, e3 = 4)."""
    out = {}
    for a, ca in x.items():
        for b, cb in y.items():
            out[a ^ b] = out.get(a ^ b, 0.0) + _blade_sign(a, b) * ca * cb
    return out


def rotor_matrix(r):
    """3×3 matrix of v ↦ grade-1 part of R v R~, R = s + b12 e12 + b13 e13 + b23 e23."""
    s, b12, b13, b23 = r
    R = {0: s, 3: b12, 5: b13, 6: b23}
    Rrev = {0: s, 3: -b12, 5: -b13, 6: -b23}
    M = np.zeros((3, 3))
    for j, ej in enumerate((1, 2, 4)):
        w = geometric_product(geometric_product(R, {ej: 1.0}), Rrev)
        M[:, j] = [w.get(1, 0.0), w.get(2, 0.0), w.get(4, 0.0)]
    return M


def rotor_rotation_matrix(d, seed):
    """Π of a `rotor` quantizer (FORMAT §3): one generator seeded with
    rq_seed_derive(seed, 1, 0); per block 4 Gaussians g, rotor g/‖g‖; blocks
    at 0, 3, …, (⌊d/3⌋−1)·3 and, if 3 ∤ d, one more at d − 3; Π applies them
    in increasing order."""
    rng = Xoshiro256ss(seed_derive(seed, 1, 0))
    offsets = list(range(0, (d // 3) * 3, 3)) + ([d - 3] if d % 3 else [])
    P = np.eye(d)
    for o in offsets:
        g = np.array([gauss(rng) for _ in range(4)])
        B = np.eye(d)
        B[o:o + 3, o:o + 3] = rotor_matrix(g / np.linalg.norm(g))
        P = B @ P
    return P


def qjl_matrix(d, seed):
    """S of a `p` quantizer (FORMAT §5): d×d i.i.d. N(0, 1) drawn row by row
    from a generator seeded with rq_seed_derive(seed, 2 = QJL, 0)."""
    rng = Xoshiro256ss(seed_derive(seed, 2, 0))
    return np.array([[gauss(rng) for _ in range(d)] for _ in range(d)])


def decode_prod(codes, d, bits, centroids, pi, S):
    """x̂ = Πᵀ(n′·c(code) + ‖r′‖·α·Sᵀs), α = √(π/2)/d, for PROD blocks
    [fp16 n′][fp16 ‖r′‖][pack_{b−1}(codes)][pack_1(signs), bit 1 = +1]."""
    codes = np.asarray(codes, dtype=np.uint8)
    f = codes[:, :4].copy().view("<f2").astype(np.float64)
    norm, rnorm = f[:, 0], f[:, 1]
    nb = (d * (bits - 1) + 7) // 8
    y = np.zeros((codes.shape[0], d))
    if bits > 1:
        y = norm[:, None] * np.asarray(centroids, dtype=np.float64)[unpack_codes(codes[:, 4:4 + nb], d, bits - 1)]
    signs = 2.0 * unpack_codes(codes[:, 4 + nb:], d, 1) - 1.0
    y += rnorm[:, None] * math.sqrt(math.pi / 2) / d * (signs @ S)
    return y @ pi
