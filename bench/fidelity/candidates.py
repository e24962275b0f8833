"""candidates.py — phase-1 candidates of issue 14 in the validated proxy (proxy.py).
Run:  python3 bench/fidelity/proxy.py /tmp/fid_kv      (fits the proxy, writes /tmp/fid_proxy.json)
      python3 bench/fidelity/candidates.py /tmp/fid_kv [sections]   sections: centre,norm,alloc,tcq (default all)
Prints tables: key centring variants, 8-bit norm / norm correction, per-layer K/V bit allocation
at 2.25/3.25/4.25 bits/value (every stored bit counted), TCQ codes in the model proxy."""
import sys, os, json
import numpy as np
sys.path.insert(0, os.path.dirname(__file__))
import rqnp, proxy

QSTRIDE = int(os.environ.get('QSTRIDE', '4'))
try:
    COEF = json.load(open(os.environ.get('PROXY_JSON', '/tmp/fid_proxy.json')))['coef']
except OSError:
    COEF = [0.0254, 0.0482]  # proxy.py's fit (30 layers, query stride 2)
D = 64

def px(res):
    s = proxy.summarize(res)
    return COEF[0] * s['kl'] + COEF[1] * s['oerr'], s

def turbo_c(b, nc=True, nb=16):
    return lambda x, l, h: rqnp.turbo(x, b, norm_correct=nc, norm_bits=nb)

def centred(inner, mode, m=64):
    """key centring: μ from the first m positions (mode 'all0': incl. position 0; 'skip0': 1..m;
    'sink': 1..m and position 0 stored as f16; 'oracle': mean of all positions, excl. 0, sink kept)."""
    def f(x, l, h):
        if mode == 'all0':
            mu = x[:m].mean(0)
        elif mode in ('skip0', 'sink'):
            mu = x[1:m + 1].mean(0)
        elif mode == 'oracle':
            mu = x[1:].mean(0)
        mu = rqnp.f16(mu)
        y = inner(x - mu, l, h) + mu
        if mode in ('sink', 'oracle'):
            y[0] = rqnp.f16(x[0])
        return y
    return f

def sink_only(inner):
    def f(x, l, h):
        y = inner(x, l, h); y[0] = rqnp.f16(x[0]); return y
    return f

def section_centre(data):
    print('\n## Key centring (K turbo3 norm-corrected, V turbo3 norm-corrected; μ fp16 per layer/head)\n')
    print('| keys | proxy KLD | sum softmax KL | heads with KL up vs plain | extra bits/value @512 ctx |')
    print('|---|---:|---:|---:|---:|')
    base = proxy.per_layer(data, turbo_c(3), turbo_c(3), QSTRIDE)
    # per-head KL of plain, for the 'KL up' count
    def head_kl(kc):
        out = []
        for l, (q, k, v) in data.items():
            for h in range(k.shape[0]):
                kh = kc(k[h], l, h)[None]
                m = proxy.attn_metrics(q[3 * h:3 * h + 3], k[h:h + 1], v[h:h + 1], kh, v[h:h + 1], np.arange(0, k.shape[1], QSTRIDE))
                out.append(m['kl'])
        return np.array(out)
    hk0 = head_kl(turbo_c(3))
    p, s = px(base)
    print('| plain | %.4f | %.3f | – | 0 |' % (p, s['kl']))
    rows = [('first token f16 only (sink)', sink_only(turbo_c(3)), 0.75 * 16 / 512 / 2),
            ('centred, μ = mean of positions 0..63', centred(turbo_c(3), 'all0'), 0),
            ('centred, μ = mean of positions 1..64', centred(turbo_c(3), 'skip0'), 0),
            ('centred μ 1..64 + position 0 f16', centred(turbo_c(3), 'sink'), 0.75 * 16 / 512 / 2),
            ('centred μ 1..16 + position 0 f16', centred(turbo_c(3), 'sink', 16), 0.75 * 16 / 512 / 2),
            ('centred μ = mean 1..511 (oracle) + position 0 f16', centred(turbo_c(3), 'oracle'), 0.75 * 16 / 512 / 2)]
    out = {}
    for name, kc, eb in rows:
        res = proxy.per_layer(data, kc, turbo_c(3), QSTRIDE)
        p, s = px(res)
        hk = head_kl(kc)
        out[name] = p
        print('| %s | %.4f | %.3f | %d / %d | %.4f |' % (name, p, s['kl'], int((hk > hk0 * 1.02).sum()), len(hk), eb))
    # why: |k0 - mu| vs |k0|, and attention mass on position 0
    r0, rr, mass0 = [], [], []
    for l, (q, k, v) in data.items():
        for h in range(k.shape[0]):
            mu = k[h, :64].mean(0)
            r0.append(np.linalg.norm(k[h, 0] - mu) / np.linalg.norm(k[h, 0]))
            rr.append(np.mean(np.linalg.norm(k[h, 1:] - mu, axis=1) / np.linalg.norm(k[h, 1:], axis=1)))
            s_ = q[3 * h:3 * h + 3, 256:] @ k[h].T / 8
            s_ -= s_.max(-1, keepdims=True); pp = np.exp(s_); pp /= pp.sum(-1, keepdims=True)
            mass0.append(pp[..., 0].mean())
    print('\n|k−μ|/|k| (μ = mean 0..63): position 0 median %.2f (max %.2f), positions ≥1 median %.2f; '
          'attention mass on position 0 (queries 256..511): median %.2f, max %.2f' % (
              np.median(r0), np.max(r0), np.median(rr), np.median(mass0), np.max(mass0)))
    return out

def section_norm(data):
    print('\n## Norms: fp16 vs 8-bit log2 code on [2^-8, 2^8] (Δ = 1/16 octave), norm correction\n')
    print('| K | V | norm | bits/value | proxy KLD |')
    print('|---|---|---|---:|---:|')
    for kb, vb in ((3, 3), (4, 2), (5, 3)):
        for nc, nb in ((False, 16), (True, 16), (True, 8)):
            res = proxy.per_layer(data, turbo_c(kb, nc, nb), turbo_c(vb, nc, nb), QSTRIDE)
            print('| turbo%d | turbo%d | %s%s | %.3f | %.4f |' % (kb, vb, 'fp16' if nb == 16 else '8-bit log', ', corrected' if nc else '',
                                                               (kb + vb) / 2 + nb / D, px(res)[0]))

def layer_tables(data, kcentre=False, nb=16):
    """per layer: proxy cost of K at b bits with V exact, and of V at b bits with K exact."""
    ex = lambda x, l, h: x
    kt, vt = {}, {}
    for b in (2, 3, 4, 5):
        kc = turbo_c(b, True, nb)
        if kcentre:
            kc = centred(kc, 'sink')
        res = proxy.per_layer(data, kc, ex, QSTRIDE)
        kt[b] = {l: COEF[0] * r['kl'] + COEF[1] * r['oerr'] for l, r in res.items()}
    for b in (1, 2, 3, 4):
        res = proxy.per_layer(data, ex, turbo_c(b, True, nb), QSTRIDE)
        vt[b] = {l: COEF[0] * r['kl'] + COEF[1] * r['oerr'] for l, r in res.items()}
    return kt, vt

def allocate(kt, vt, budget, nb=16):
    """Lagrangian: per layer choose (bk, bv) minimizing cost + λ·bits; bisection on λ for the budget
    (mean over K and V of b + nb/64, all layers)."""
    layers = sorted(kt[3])
    opts = [(bk, bv) for bk in kt for bv in vt]
    def pick(lam):
        ch = {}
        for l in layers:
            ch[l] = min(opts, key=lambda o: kt[o[0]][l] + vt[o[1]][l] + lam * (o[0] + o[1]))
        bits = np.mean([(ch[l][0] + ch[l][1]) / 2 for l in layers]) + nb / D
        return ch, bits
    lo, hi = 0.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        ch, bits = pick(mid)
        if bits > budget: lo = mid
        else: hi = mid
    ch, bits = pick(hi)
    # spend leftover: greedy single upgrades that fit
    layers_by_gain = True
    while True:
        best = None
        for l in layers:
            bk, bv = ch[l]
            for o in ((bk + 1, bv), (bk, bv + 1)):
                if o[0] in kt and o[1] in vt:
                    nbits = bits + 0.5 / len(layers)
                    if nbits <= budget + 1e-9:
                        g = (kt[bk][l] + vt[bv][l]) - (kt[o[0]][l] + vt[o[1]][l])
                        if best is None or g > best[0]: best = (g, l, o)
        if best is None or best[0] <= 0: break
        ch[best[1]] = best[2]; bits += 0.5 / len(layers)
    return ch, bits

def section_alloc(data):
    out = {}
    for kcentre, nb in ((False, 16), (True, 8)):
        if True:
            kt, vt = layer_tables(data, kcentre, nb)
            tag = '%s, norm %s' % ('keys centred (μ 1..64, position 0 f16)' if kcentre else 'plain keys', 'fp16' if nb == 16 else '8-bit')
            print('\n## Per-layer K/V allocation (turbo b, norm-corrected), %s\n' % tag)
            if not kcentre and nb == 16:
                print('per-layer proxy cost, K turbo3 (V exact) / V turbo2 (K exact):')
                print(' '.join('%d:%.4f/%.4f' % (l, kt[3][l], vt[2][l]) for l in sorted(kt[3])))
            print('| budget | uniform (K/V) | uniform proxy | allocated bits | additive proxy | joint proxy (run) | K bits per layer | V bits per layer |')
            print('|---:|---|---:|---:|---:|---:|---|---|')
            for budget, uni in ((2.25, (3, 1) if nb == 16 else (3, 1)), (3.25, (4, 2)), (4.25, (5, 3))):
                ch, bits = allocate(kt, vt, budget, nb)
                add = sum(kt[ch[l][0]][l] + vt[ch[l][1]][l] for l in ch)
                uadd = sum(kt[uni[0]][l] + vt[uni[1]][l] for l in ch)
                kc = lambda x, l, h: (centred(turbo_c(ch[l][0], True, nb), 'sink') if kcentre else turbo_c(ch[l][0], True, nb))(x, l, h)
                vc = lambda x, l, h: turbo_c(ch[l][1], True, nb)(x, l, h)
                joint = px(proxy.per_layer(data, kc, vc, QSTRIDE))[0]
                out[(kcentre, nb, budget)] = (ch, bits, joint)
                print('| %.2f | %d/%d | %.4f | %.3f | %.4f | %.4f | %s | %s |' % (
                    budget, uni[0], uni[1], uadd, bits, add, joint,
                    ''.join(str(ch[l][0]) for l in sorted(ch)), ''.join(str(ch[l][1]) for l in sorted(ch))), flush=True)
    return out

if __name__ == '__main__':
    dirn = sys.argv[1] if len(sys.argv) > 1 else '/tmp/fid_kv'
    secs = sys.argv[2].split(',') if len(sys.argv) > 2 else ['centre', 'norm', 'alloc']
    data = proxy.load(dirn)
    print('proxy coefficients', COEF, '; query stride', QSTRIDE)
    if 'centre' in secs: section_centre(data)
    if 'norm' in secs: section_norm(data)
    if 'alloc' in secs: section_alloc(data)
