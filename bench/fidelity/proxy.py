"""proxy.py — per-layer attention error of K/V codecs on real SmolLM2 Q/K/V, and a fitted
proxy for the model's mean KLD.
Run:  ./build/rotorquant dump-kv -o /tmp/fid_kv --layers 0,1,...,29 --n-tokens 512
      python3 bench/fidelity/proxy.py [/tmp/fid_kv]
Prints, for the configurations whose real `perplexity --ctx 512 --chunks 8` KLD is in
docs/RESULTS.md: summed per-layer softmax KL (K error), output error (K+V), the fitted proxy,
the real KLD, and the rank agreement (Spearman) of proxy vs real."""
import sys, os, glob, json
import numpy as np
sys.path.insert(0, os.path.dirname(__file__))
import rqnp

def load(dirn, layers=None):
    L = sorted(int(os.path.basename(p)[5:7]) for p in glob.glob(dirn + '/layer*_k.npy'))
    if layers is not None:
        L = [l for l in L if l in layers]
    data = {}
    for l in L:
        q = np.load('%s/layer%02d_q.npy' % (dirn, l)).astype(np.float64)
        k = np.load('%s/layer%02d_k.npy' % (dirn, l)).astype(np.float64)
        v = np.load('%s/layer%02d_v.npy' % (dirn, l)).astype(np.float64)
        data[l] = (q, k, v)
    return data

def attn_metrics(q, k, v, kh, vh, qpos=None, kbias=None):
    """q (Hq,n,d), k/v (Hk,n,d) exact, kh/vh quantized.  Causal.  Returns dict of
    mean softmax KL (exact vs quantized keys), output rel. err (both quantized), cosine.
    kbias: optional (Hk, n) additive score bias per key (for block-mean centring)."""
    Hq, n, d = q.shape
    Hk = k.shape[0]
    g = Hq // Hk
    if qpos is None:
        qpos = np.arange(n)
    mask = np.arange(n)[None, :] > qpos[:, None]
    kl = oe = 0.0
    for h in range(Hq):
        kv = h // g
        Q = q[h, qpos]
        s = Q @ k[kv].T / np.sqrt(d)
        sh = Q @ kh[kv].T / np.sqrt(d)
        if kbias is not None:
            sh = sh + (Q @ kbias[kv].T) / np.sqrt(d) if kbias[kv].ndim == 2 else sh
        s[mask] = -np.inf
        sh[mask] = -np.inf
        s -= s.max(1, keepdims=True)
        sh -= sh.max(1, keepdims=True)
        p = np.exp(s); p /= p.sum(1, keepdims=True)
        ph = np.exp(sh); ph /= ph.sum(1, keepdims=True)
        with np.errstate(divide='ignore', invalid='ignore'):
            t = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - np.log(np.where(ph > 0, ph, 1e-300))), 0)
        kl += t.sum(1).mean()
        o = p @ v[kv]
        oh = ph @ vh[kv]
        oe += (np.sum((o - oh) ** 2, 1) / np.sum(o ** 2, 1)).mean()
    return {'kl': kl / Hq, 'oerr': oe / Hq}

def codec(name, norm_correct=False, norm_bits=16):
    if name == 'f32':
        return lambda x, l, h: x
    if name == 'q4_0':
        return lambda x, l, h: rqnp.q4_0(x)
    if name == 'q4_0h':
        return lambda x, l, h: rqnp.q4_0(x, True)
    if name == 'q8_0':
        def q8(x, l, h):
            B = x.reshape(-1, 32); dl = rqnp.f16(np.abs(B).max(1) / 127)
            idl = np.where(dl > 0, 1 / np.where(dl > 0, dl, 1), 0)
            return (np.round(B * idl[:, None]) * dl[:, None]).reshape(x.shape)
        return q8
    if name.startswith('turbo'):
        b = int(name[5:])
        return lambda x, l, h: rqnp.turbo(x, b, norm_correct=norm_correct, norm_bits=norm_bits)
    raise ValueError(name)

def per_layer(data, kc, vc, qstride=1, kprep=None):
    """kc/vc: f(x (n,d), layer, kvhead) -> x̂.  Returns {layer: metrics}."""
    res = {}
    for l, (q, k, v) in data.items():
        n = k.shape[1]
        kh = np.stack([kc(k[h], l, h) for h in range(k.shape[0])])
        vh = np.stack([vc(v[h], l, h) for h in range(v.shape[0])])
        qpos = np.arange(0, n, qstride)
        res[l] = attn_metrics(q, k, v, kh, vh, qpos)
    return res

# real mean KLD, perplexity --ctx 512 --chunks 8 (docs/RESULTS.md); nc = --norm-correct
REAL = [
    ('turbo3', 'turbo3', False, 0.27101), ('turbo4', 'turbo2', False, 0.18400),
    ('turbo5', 'turbo3', False, 0.05044), ('turbo5', 'turbo4', False, 0.02654),
    ('turbo4', 'turbo4', False, 0.07652), ('turbo4', 'turbo3', False, 0.09999),
    ('q4_0', 'q4_0', False, 0.16391), ('q4_0h', 'q4_0h', False, 0.05920),
    ('q8_0', 'turbo3', False, 0.02712), ('q8_0', 'q8_0', False, 0.00136),
    ('turbo5', 'turbo3', True, 0.04685), ('turbo4', 'turbo4', True, 0.07374),
    ('turbo4', 'turbo2', True, 0.16355), ('turbo3', 'turbo3', True, 0.27225),
]

def summarize(res):
    return {m: sum(r[m] for r in res.values()) for m in ('kl', 'oerr')}

def fit(rows):
    """KLD ≈ a·ΣKL + b·Σoerr (non-negative least squares in log-ish sense: fit on relative error)."""
    A = np.array([[r['kl'], r['oerr']] for r in rows])
    y = np.array([r['real'] for r in rows])
    W = 1 / y  # relative residuals
    coef, *_ = np.linalg.lstsq(A * W[:, None], y * W, rcond=None)
    return coef

def spearman(a, b):
    ra = np.argsort(np.argsort(a)); rb = np.argsort(np.argsort(b))
    return np.corrcoef(ra, rb)[0, 1]

if __name__ == '__main__':
    dirn = sys.argv[1] if len(sys.argv) > 1 else '/tmp/fid_kv'
    qstride = int(os.environ.get('QSTRIDE', '2'))
    data = load(dirn)
    rows = []
    perlayer = {}
    for K, V, nc, real in REAL:
        res = per_layer(data, codec(K, nc), codec(V, nc), qstride)
        s = summarize(res)
        s.update(K=K, V=V, nc=nc, real=real)
        rows.append(s)
        perlayer['%s/%s%s' % (K, V, '/nc' if nc else '')] = res
    coef = fit(rows)
    print('proxy = %.4f * sum_l softmaxKL_l + %.4f * sum_l outErr_l   (%d layers, query stride %d)' % (coef[0], coef[1], len(data), qstride))
    print('| K | V | norm-corr | sum KL | sum outErr | proxy | real KLD | proxy/real |')
    print('|---|---|---|---:|---:|---:|---:|---:|')
    px = []
    for r in rows:
        p = coef[0] * r['kl'] + coef[1] * r['oerr']
        px.append(p)
        print('| %s | %s | %s | %.4f | %.4f | %.4f | %.4f | %.2f |' % (r['K'], r['V'], 'yes' if r['nc'] else '', r['kl'], r['oerr'], p, r['real'], p / r['real']))
    print('Spearman rank(proxy, real) = %.3f;  rank(sum outErr, real) = %.3f; rank(sum KL, real) = %.3f' % (
        spearman(px, [r['real'] for r in rows]), spearman([r['oerr'] for r in rows], [r['real'] for r in rows]),
        spearman([r['kl'] for r in rows], [r['real'] for r in rows])))
    # leave-one-out
    loo = []
    for i in range(len(rows)):
        c = fit(rows[:i] + rows[i + 1:])
        loo.append(c[0] * rows[i]['kl'] + c[1] * rows[i]['oerr'])
    err = np.array(loo) / np.array([r['real'] for r in rows])
    print('leave-one-out proxy/real: median %.2f, range %.2f..%.2f' % (np.median(err), err.min(), err.max()))
    json.dump({'coef': list(coef), 'rows': rows, 'perlayer': {k: {str(l): v for l, v in r.items()} for k, r in perlayer.items()}},
              open(os.environ.get('PROXY_JSON', '/tmp/fid_proxy.json'), 'w'))
