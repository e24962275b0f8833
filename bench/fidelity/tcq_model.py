"""tcq_model.py — TCQ (bitshift trellis, L-bit state, LUT trained on isotropic unit vectors, no
calibration data) in place of the Lloyd-Max scalar code inside turbo (same Hadamard rotation,
fp16 norm-corrected norm), evaluated in the model proxy (proxy.py's fit).
Run:  python3 bench/fidelity/tcq_model.py /tmp/fid_kv [L]
Prints proxy KLD for TCQ configurations next to the turbo ones at the same bits/value."""
import sys, os, json
import numpy as np
sys.path.insert(0, os.path.dirname(__file__))
import rqnp, proxy, tcq

QSTRIDE = int(os.environ.get('QSTRIDE', '4'))
try:
    COEF = json.load(open(os.environ.get('PROXY_JSON', '/tmp/fid_proxy.json')))['coef']
except OSError:
    COEF = [0.0254, 0.0482]
L = int(sys.argv[2]) if __name__ == '__main__' and len(sys.argv) > 2 else int(os.environ.get('TCQ_L', '8'))
D = 64
_luts = {}

def tcq_codec(k):
    if k not in _luts:
        _luts[k] = tcq.train_lut(k, L, D, iters=4, n=400)
    lut = _luts[k]
    rot = rqnp.Rot(D)
    def f(x, l, h):
        n = np.linalg.norm(x, axis=1)
        y = rot.fwd(x / np.where(n > 0, n, 1)[:, None])
        st = tcq.tcq_encode(y, lut, k, L)
        c = lut[st]
        stored = rqnp.f16(n / np.linalg.norm(c, axis=1))
        return rot.inv(c) * stored[:, None]
    return f

def turbo_c(b):
    return lambda x, l, h: rqnp.turbo(x, b, norm_correct=True)

if __name__ == '__main__':
    data = proxy.load(sys.argv[1] if len(sys.argv) > 1 else '/tmp/fid_kv')
    print('TCQ L=%d, LUT 2^L fp16 trained on isotropic d=64 unit vectors; norm fp16, corrected; query stride %d' % (L, QSTRIDE))
    print('| K | V | bits/value | proxy KLD |')
    print('|---|---|---:|---:|')
    for kn, kc, vn, vc, bits in (('turbo3', turbo_c(3), 'turbo3', turbo_c(3), 3.25),
                                 ('tcq3', tcq_codec(3), 'tcq3', tcq_codec(3), 3.25),
                                 ('tcq4', tcq_codec(4), 'tcq2', tcq_codec(2), 3.25),
                                 ('turbo4', turbo_c(4), 'tcq2', tcq_codec(2), 3.25)):
        res = proxy.per_layer(data, kc, vc, QSTRIDE)
        s = proxy.summarize(res)
        print('| %s | %s | %.2f | %.4f |' % (kn, vn, bits, COEF[0] * s['kl'] + COEF[1] * s['oerr']), flush=True)
