"""centre_mu.py — how many positions μ needs (K turbo4 centred, position 0 f16 / V turbo2, norm-corrected).
Run:  python3 bench/fidelity/centre_mu.py /tmp/fid_kv
Prints the proxy KLD for μ = mean of key positions 1..m, m = 8, 16, 64, 511 (511 = every position, an oracle)."""
import sys, os
import numpy as np
sys.path.insert(0, os.path.dirname(__file__))
import proxy, candidates as C

if __name__ == '__main__':
    data = proxy.load(sys.argv[1] if len(sys.argv) > 1 else '/tmp/fid_kv')
    print('| μ from positions | proxy KLD (K turbo4 centred + sink / V turbo2) |')
    print('|---|---:|')
    for m in (8, 16, 64, 511):
        kc = C.centred(C.turbo_c(4), 'sink', m)
        print('| 1..%d | %.4f |' % (m, C.px(proxy.per_layer(data, kc, C.turbo_c(2), C.QSTRIDE))[0]), flush=True)
