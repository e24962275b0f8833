#!/usr/bin/env python3
"""norm_range.py — the range of the norms an MSE/TCQ block would store (issue 14,
"8-bit norms"): reads a `rotorquant dump-kv` directory (float32 .npy, shape
(kv_heads, n_tokens, head_dim), post-RoPE keys) and prints, per layer and over
all layers, log2 of the norms of the values, of the raw keys and of the keys
centred as the cache stores them (μ = mean of positions 1..64 of that head,
fp16-rounded; position 0 is the exact sink and not counted).

    python3 bench/norm_range.py DIR [--window 64] [--cos 3,15,25]

--cos L,..: for those layers (the dump must hold q), the attention-weighted
mean of d·cos²(q, k − μ) over the quantized keys (position 0, the exact sink,
left out) for queries at positions 255, 511, ... of every head: how much more
a relative error δ of a key's norm moves the scores that matter than a code
error of the same relative MSE δ² spread evenly over d directions (1).

Pure Python (no numpy). The fp16 norm field spans 2^-24 .. 2^16; an 8-bit log
code spanning 2^LO .. 2^HI has a step of (HI - LO)/254 octaves.
"""
import array, json, math, struct, sys


def load_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY", path
    major = data[6]
    hlen = struct.unpack("<H", data[8:10])[0] if major == 1 else struct.unpack("<I", data[8:12])[0]
    off = (10 if major == 1 else 12) + hlen
    header = data[off - hlen:off].decode("latin1")
    assert "'<f4'" in header and "False" in header, header  # float32, C order
    shape = tuple(int(x) for x in header.split("(")[1].split(")")[0].split(",") if x.strip())
    a = array.array("f")
    a.frombytes(data[off:])
    return a, shape


def f16(x):
    return struct.unpack("<e", struct.pack("<e", x))[0]


def log2_norms(a, shape, window):
    """(values, raw keys or centred keys): list of log2 ‖x‖ over heads and positions 1.."""
    G, N, D = shape
    raw, cen = [], []
    for g in range(G):
        base = g * N * D
        w = min(window, N - 1)
        mu = [f16(sum(a[base + p * D + i] for p in range(1, w + 1)) / w) for i in range(D)]
        for p in range(1, N):
            v = a[base + p * D:base + (p + 1) * D]
            s = sum(x * x for x in v)
            c = sum((x - m) * (x - m) for x, m in zip(v, mu))
            raw.append(0.5 * math.log2(s) if s > 0 else -math.inf)
            cen.append(0.5 * math.log2(c) if c > 0 else -math.inf)
    return raw, cen


def q(xs, p):
    return xs[min(len(xs) - 1, max(0, int(round(p * (len(xs) - 1)))))]


def summary(xs):
    xs = sorted(xs)
    return "%7.2f %7.2f %7.2f %7.2f %7.2f  %5.2f" % (xs[0], q(xs, 0.001), q(xs, 0.5), q(xs, 0.999), xs[-1],
                                                    xs[-1] - xs[0])


def cos_gain(d, L, window):
    q, qs = load_npy("%s/layer%02d_q.npy" % (d, L))
    k, ks = load_npy("%s/layer%02d_k.npy" % (d, L))
    H, N, D = qs
    G = ks[0]
    tot, cnt = 0.0, 0
    for g in range(G):
        base = g * N * D
        w = min(window, N - 1)
        mu = [f16(sum(k[base + p * D + i] for p in range(1, w + 1)) / w) for i in range(D)]
        kc = [[k[base + p * D + i] - mu[i] for i in range(D)] for p in range(N)]
        kn2 = [sum(x * x for x in v) for v in kc]
        for h in range(g * (H // G), (g + 1) * (H // G)):
            for t in range(255, N, 256):
                qv = q[(h * N + t) * D:(h * N + t + 1) * D]
                q2 = sum(x * x for x in qv)
                dots = [sum(a * b for a, b in zip(qv, kc[p])) for p in range(1, t + 1)]
                s = [x / math.sqrt(D) for x in dots]
                m = max(s)
                e = [math.exp(x - m) for x in s]
                Z = sum(e)
                tot += sum(ei / Z * D * dp * dp / (q2 * kn2[p + 1]) for p, (ei, dp) in enumerate(zip(e, dots)))
                cnt += 1
    return tot / cnt


def main():
    args = sys.argv[1:]
    window = 64
    cos_layers = []
    if "--cos" in args:
        i = args.index("--cos")
        cos_layers = [int(x) for x in args[i + 1].split(",")]
        del args[i:i + 2]
    if "--window" in args:
        i = args.index("--window")
        window = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    d = args[0]
    man = json.load(open(d + "/manifest.json"))
    print("%s: %s, tokens 1..%d, log2 of the norm: min p0.1%% median p99.9%% max  (span, octaves)" %
          (d, man["model"].split("/")[-1], man["n_tokens"] - 1))
    allv, allk, allc = [], [], []
    for L in man["layers"]:
        k, ks = load_npy("%s/layer%02d_k.npy" % (d, L))
        v, vs = load_npy("%s/layer%02d_v.npy" % (d, L))
        kraw, kcen = log2_norms(k, ks, window)
        vraw, _ = log2_norms(v, vs, window)
        allv += vraw, ; allk += kraw, ; allc += kcen,
        print("layer %2d  V %s | K %s | K centred %s" % (L, summary(vraw), summary(kraw), summary(kcen)))
    flat = lambda xss: [x for xs in xss for x in xs]
    print("all       V %s | K %s | K centred %s" % (summary(flat(allv)), summary(flat(allk)), summary(flat(allc))))
    # the span of V and centred K together: what one fixed grid must cover
    both = flat(allv) + flat(allc)
    print("V and centred K together: %s" % summary(both))
    for L in cos_layers:
        print("layer %d: attention-weighted d*cos^2(q, k - mu) = %.1f (1: as a code error)" % (L, cos_gain(d, L, window)))


if __name__ == "__main__":
    main()
