"""best.py — the combinations per budget in the model proxy (proxy.py's fit): key centring with
position 0 (the attention sink) stored f16, value centring (exact: o = Σp(v−μ) + μ), norm
correction, 8-bit log norms, and TCQ (tcq_model.py) in place of the scalar Lloyd-Max code.
Run:  python3 bench/fidelity/best.py /tmp/fid_kv [tcq]
Prints per configuration: bits/value counted at 512 context (codes + norms + the f16 sink token,
μ vectors amortized to ~0), and the proxy KLD."""
import sys, os
import numpy as np
sys.path.insert(0, os.path.dirname(__file__))
import rqnp, proxy, candidates as C
import tcq_model as T

def mk(kind, b, nb):
    if kind == 'turbo':
        return C.turbo_c(b, True, nb)
    f = T.tcq_codec(b)
    if nb == 16:
        return f
    def g(x, l, h):  # 8-bit norm on top of TCQ: rescale the decoded vector to the coded norm
        y = f(x, l, h); n = np.linalg.norm(y, axis=1)
        return y * (rqnp.norm_code(n, nb) / np.where(n > 0, n, 1))[:, None]
    return g

def run(data, kind, kb, vb, kcen, vcen, nb, ctx=512):
    kc, vc = mk(kind, kb, nb), mk(kind, vb, nb)
    if kcen: kc = C.centred(kc, 'sink')
    if vcen: vc = C.centred(vc, 'sink')
    res = proxy.per_layer(data, kc, vc, C.QSTRIDE)
    bits = (kb + vb) / 2 + nb / 64
    if kcen or vcen:  # token 0 of K and/or V in f16 instead of its code
        bits += ((16 - kb - nb / 64) * kcen + (16 - vb - nb / 64) * vcen) / 2 / ctx
    return bits, C.px(res)[0]

if __name__ == '__main__':
    data = proxy.load(sys.argv[1] if len(sys.argv) > 1 else '/tmp/fid_kv')
    kinds = ['tcq'] if len(sys.argv) > 2 and sys.argv[2] == 'tcq' else ['turbo']
    print('| code | K bits | V bits | K centred+sink | V centred+sink | norm | bits/value @512 | proxy KLD |')
    print('|---|---:|---:|---|---|---|---:|---:|')
    cfgs = [(4, 2, 1, 0, 16), (4, 2, 1, 1, 16), (3, 3, 1, 0, 16), (5, 3, 1, 0, 16), (4, 2, 1, 0, 8), (5, 3, 1, 0, 8),
            (3, 1, 1, 0, 16), (2, 2, 1, 0, 16)]
    if len(sys.argv) > 3:
        cfgs = cfgs[int(sys.argv[3]):]
    if kinds == ['tcq']:
        cfgs = [(4, 2, 1, 0, 16), (5, 3, 1, 0, 16), (3, 1, 1, 0, 16)]
    for kind in kinds:
        for kb, vb, kcen, vcen, nb in cfgs:
            bits, p = run(data, kind, kb, vb, kcen, vcen, nb)
            print('| %s | %d | %d | %s | %s | %s | %.3f | %.4f |' % (kind, kb, vb, 'yes' if kcen else '', 'yes' if vcen else '',
                                                                'fp16' if nb == 16 else '8-bit', bits, p), flush=True)
