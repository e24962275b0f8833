"""centre_eval.py — key centring measured with the real C codec (`rotorquant eval --causal`):
keys are centred in numpy (k − μ, μ fp16), written as .npy, and eval compares the compressed
softmax with the exact one (shift-invariant, so the reference is unchanged).
Run:  python3 bench/fidelity/centre_eval.py [/tmp/fid_kv]   (needs ./build/rotorquant)
Prints causal softmax KL per layer for plain / μ(0..63) / μ(1..64) keys, turbo3 and turbo4,
on tests/data (128 tokens) and on the 512-token dumps of layers 0,1,2,3,10,20,29."""
import sys, os, json, subprocess, tempfile
import numpy as np

def ev(t, kf, qf):
    out = subprocess.run(['./build/rotorquant', 'eval', '--type', t, '--keys', kf, '--queries', qf, '--causal', '--json'],
                         capture_output=True, text=True, check=True).stdout
    j = json.loads(out)
    return j['softmax_kl'], [h['softmax_kl'] for h in j['per_head']]

def variants(k):
    k = k.astype(np.float32)
    m0 = k[:, :64].mean(1, keepdims=True).astype(np.float16).astype(np.float32)
    m1 = k[:, 1:65].mean(1, keepdims=True).astype(np.float16).astype(np.float32)
    return {'plain': k, 'mu0..63': k - m0, 'mu1..64': k - m1}

if __name__ == '__main__':
    dirn = sys.argv[1] if len(sys.argv) > 1 else '/tmp/fid_kv'
    srcs = [('tests/data', 3), ('tests/data', 20)] + [(dirn, l) for l in (0, 1, 2, 3, 10, 20, 29)]
    tmp = tempfile.mkdtemp()
    print('| data | layer | type | plain KL | μ 0..63 KL | μ 1..64 KL | heads up (0..63) | heads up (1..64) | |k0−μ|/|k0| | mean |k−μ|/|k| |')
    print('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|')
    for d, l in srcs:
        k = np.load('%s/layer%02d_k.npy' % (d, l)); qf = '%s/layer%02d_q.npy' % (d, l)
        vs = variants(k)
        r0 = np.linalg.norm(vs['mu0..63'][:, 0], axis=1) / np.linalg.norm(vs['plain'][:, 0], axis=1)
        rr = (np.linalg.norm(vs['mu0..63'][:, 1:], axis=2) / np.linalg.norm(vs['plain'][:, 1:], axis=2)).mean()
        for t in ('turbo3', 'turbo4'):
            r = {}
            for name, kk in vs.items():
                f = os.path.join(tmp, name + '.npy'); np.save(f, kk.astype(np.float32)); r[name] = ev(t, f, qf)
            up = lambda n: sum(a > b * 1.02 for a, b in zip(r[n][1], r['plain'][1]))
            print('| %s | %d | %s | %.4f | %.4f | %.4f | %d/3 | %d/3 | %s | %.2f |' % (
                'fixture' if d == 'tests/data' else 'dump 512', l, t, r['plain'][0], r['mu0..63'][0], r['mu1..64'][0],
                up('mu0..63'), up('mu1..64'), ' '.join('%.2f' % x for x in r0), rr), flush=True)
