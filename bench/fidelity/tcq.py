"""tcq.py — bitshift-trellis coded quantization (QTIP-style) vs scalar Lloyd-Max on rotated
unit vectors (isotropic, d=128 and d=64), tail-biting so the code is exactly k bits/coordinate.
Run:  python3 bench/fidelity/tcq.py [n_vectors]
Prints relative MSE ‖x−x̂‖²/‖x‖² per (k bits, L state bits) next to Lloyd-Max and 4^-k.
Decode of value t: state = (bitstream >> (t·k)) & (2^L−1) (a window of L bits), value = LUT[state]·norm
(LUT of 2^L fp16 entries, trained once, shared by all vectors)."""
import sys, os
import numpy as np
sys.path.insert(0, os.path.dirname(__file__))
import rqnp

def viterbi(x, lut, k, L, init_top=None, final_low=None):
    """x (n, T) -> states (n, T) minimizing Σ (x_t − lut[s_t])², s_t = ((s_{t-1} << k) | b_t) & (2^L−1).
    init_top: force the L−k low bits of the state *before* step 0 (i.e. s_0 >> k) — tail-biting."""
    n, T = x.shape
    S = 1 << L; P = 1 << (L - k)
    cost = (x[:, 0:1] - lut[None, :]) ** 2  # (n, S): state s at t=0; its predecessor bits s>>k
    if init_top is not None:
        bad = (np.arange(S)[None, :] >> k) != init_top[:, None]
        cost = np.where(bad, np.inf, cost)
    back = np.zeros((T, n, P), np.int32)
    for t in range(1, T):
        # predecessor of s has low L−k bits = s >> k; its top k bits free: prev = hi·P + (s>>k)
        c = cost.reshape(n, 1 << k, P)          # [hi, low] -> prev = hi*P + low
        hi = c.argmin(1)                         # (n, P): best hi for each low = s>>k
        best = np.take_along_axis(c, hi[:, None, :], 1)[:, 0, :]
        back[t] = hi
        # new state s = (low << k) | b  -> cost[s] = best[low] + err(s)
        cost = np.repeat(best, 1 << k, axis=1) + (x[:, t:t + 1] - lut[None, :]) ** 2
    if final_low is not None:
        bad = (np.arange(S)[None, :] & (P - 1)) != final_low[:, None]
        cost = np.where(bad, np.inf, cost)
    s = cost.argmin(1)
    states = np.zeros((n, T), np.int64)
    states[:, -1] = s
    for t in range(T - 1, 0, -1):
        low = s >> k
        hi = back[t][np.arange(n), low]
        s = hi * P + low
        states[:, t - 1] = s
    return states

def tcq_encode(x, lut, k, L):
    """tail-biting: pass 1 free; pass 2 forces the start's predecessor bits = pass-1 end's low bits
    and the end's low bits to the same value, so the stream of T·k bits is circular."""
    P = 1 << (L - k)
    s1 = viterbi(x, lut, k, L)
    tb = s1[:, -1] & (P - 1)
    s2 = viterbi(x, lut, k, L, init_top=tb, final_low=tb)
    return s2

def train_lut(k, L, d, iters=4, n=600, seed=1):
    rng = np.random.default_rng(seed)
    # init: Gaussian quantiles in a random permutation (σ = 1/√d)
    S = 1 << L
    from statistics import NormalDist
    nd = NormalDist()
    lut = np.array([nd.inv_cdf((i + 0.5) / S) for i in range(S)]) / np.sqrt(d)
    lut = lut[rng.permutation(S)]
    X = rng.standard_normal((n, d)); X /= np.linalg.norm(X, axis=1, keepdims=True)
    for _ in range(iters):
        st = viterbi(X, lut, k, L)
        cnt = np.bincount(st.ravel(), minlength=S)
        sm = np.bincount(st.ravel(), X.ravel(), minlength=S)
        lut = np.where(cnt > 0, sm / np.maximum(cnt, 1), lut)
    return lut

if __name__ == '__main__':
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    rng = np.random.default_rng(7)
    print('| d | k bits | L | TCQ MSE (tail-biting) | Lloyd-Max | 4^-k | TCQ/LM | LUT bytes (fp16) |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for d in (128, 64):
        X = rng.standard_normal((n, d)); X /= np.linalg.norm(X, axis=1, keepdims=True)
        for k in (3, 2):
            lm = rqnp.lloyd_max(k, d)[2]
            for L in (8, 10):
                if d == 64 and L == 12: continue
                lut = train_lut(k, L, d)
                st = tcq_encode(X, lut, k, L)
                mse = np.mean(np.sum((X - lut[st]) ** 2, 1))
                print('| %d | %d | %d | %.4f | %.4f | %.4f | %.2f | %d |' % (d, k, L, mse, lm, 4.0 ** -k, mse / lm, 2 << L), flush=True)
