"""final.py — one joint proxy run of a per-layer allocation (K and V bit strings, one digit per
layer, from `candidates.py alloc`) with keys centred (μ 1..64, position 0 f16), 8-bit log norms,
and the scalar code or TCQ (L=8).
Run:  python3 bench/fidelity/final.py /tmp/fid_kv {turbo|tcq} KBITS VBITS
Prints bits/value at 512 context (codes + 8-bit norms + the f16 sink token) and the proxy KLD."""
import sys, os
import numpy as np
sys.path.insert(0, os.path.dirname(__file__))
import proxy, candidates as C, best as B

if __name__ == '__main__':
    data = proxy.load(sys.argv[1])
    kind, ks, vs = sys.argv[2], sys.argv[3], sys.argv[4]
    kb = {l: int(ks[l]) for l in range(30)}; vb = {l: int(vs[l]) for l in range(30)}
    codecs = {}
    def get(b):
        if b not in codecs: codecs[b] = B.mk(kind, b, 8)
        return codecs[b]
    kc = C.centred(lambda x, l, h: get(kb[l])(x, l, h), 'sink')
    vc = lambda x, l, h: get(vb[l])(x, l, h)
    res = proxy.per_layer(data, kc, vc, C.QSTRIDE)
    bits = np.mean([(kb[l] + vb[l]) / 2 for l in range(30)]) + 8 / 64
    bits += np.mean([16 - kb[l] - 8 / 64 for l in range(30)]) / 2 / 512
    print('%s K %s V %s: bits/value @512 %.3f, proxy KLD %.4f' % (kind, ks, vs, bits, C.px(res)[0]))
