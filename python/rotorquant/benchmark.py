"""python -m rotorquant.benchmark — the seed's 7-test comparison, with our numbers.

The seed (turboquant-pytorch PR #4, benchmark_rotorquant.py) compared
TurboQuant and RotorQuant at d = 128 in seven tests; this runs the same
tests (same sizes, bit widths and definitions; shared/research/
reference_impl.md §3.1) on rotorquant for TurboQuant (dense Haar rotation,
as the seed's), RotorQuant (Cl(3,0) rotors) and every other family
(turbo = randomized Hadamard, planar, iso), on seeded data, and prints the
seed's summary table with our numbers beside the seed's (7 s on a shared
2-core VM).

    python -m rotorquant.benchmark            # the 7 tests
    python -m rotorquant.benchmark --speed    # Python vs the C API vs the seed's PyTorch

``--speed``: encode + decode of 100,000 d = 128 vectors and one attention
call over a 4096-token cache (8 KV heads, 32 query heads, one thread),
from Python and through the C API (build/bench/api_bench, built with
``make build/bench/api_bench``; the same arrays), and the seed's PyTorch
TurboQuant_mse (rotate, nearest centroid, unrotate) when torch is
importable, else the seed's own published timings.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

import rotorquant as rq

D = 128
FAMILIES = [("TurboQuant", "dense"), ("RotorQuant", "rotor"), ("turbo", "turbo"), ("planar", "planar"),
            ("iso", "iso")]
SEED = 42  # quantizers, as the seed's

# The seed's numbers (pr4-description.txt; reference_impl.md §4.1 for the CPU timings)
SEED_TABLE = {
    "mse3": ("0.034", "0.081"),
    "corr3": ("0.918", "0.878"),
    "needle": ("9/9 exact", "9/9 exact"),
    "params": ("16,399", "372"),
    "speed": ("0.41 ms (GPU)", "4.87 ms (GPU)"),
}
SEED_CPU_MS_10K = (414.67, 706.03)  # Test 6, n = 10,000, 2-vCPU EPYC, torch 1.13 CPU (reference_impl.md §4.1)


def unit(rng, n, d=D):
    x = rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def table(head, rows):
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print()


def fams():
    return [f for _, f in FAMILIES]


def names():
    return [n for n, _ in FAMILIES]


# ---- the seven tests ------------------------------------------------------
def test_mse(rng):
    """Test 1: MSE of n = 2000 unit vectors at 1–4 bits against √3π/2·4^−b."""
    print("## Test 1: MSE distortion (d = 128, n = 2000 unit vectors)\n")
    x = unit(rng, 2000)
    rows, res = [], {}
    for b in (1, 2, 3, 4):
        theory = math.sqrt(3) * math.pi / 2 * 4.0 ** -b
        cb = rq.codebook(D, b)["mse"]
        row = [b]
        for f in fams():
            q = rq.Quantizer(f"{f}{b}", D, SEED)
            m = float(((x - q.decode(q.encode(x))) ** 2).sum(1).mean())
            res[(f, b)] = m
            row.append(f"{m:.6f}")
        rows.append(row + [f"{cb:.6f}", f"{theory:.6f}"])
    table(["bits"] + names() + ["codebook d·D", "bound √3π/2·4^−b"], rows)
    return res


def test_ip(rng):
    """Test 2: inner products of 3000 independent pairs, Prod types at 2–4 bits,
    plus pairs with <x, y> = 0.8, where a multiplicative bias shows."""
    print("## Test 2: inner-product unbiasedness (n = 3000 pairs; `p` types)\n")
    x, y = unit(rng, 3000), unit(rng, 3000)
    z = unit(rng, 3000)
    z -= (z * x).sum(1, keepdims=True) * x
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    y8 = (0.8 * x + 0.6 * z).astype(np.float32)  # <x, y8> = 0.8 exactly
    true = (x.astype(np.float64) * y).sum(1)
    rows, res = [], {}
    for b in (2, 3, 4):
        for name, f in FAMILIES:
            q = rq.Quantizer(f"{f}{b}p", D, SEED)
            xh = q.decode(q.encode(x)).astype(np.float64)
            est = (xh * y).sum(1)
            err = est - true
            corr = float(np.corrcoef(true, est)[0, 1])
            ratio = float((xh * y8).sum(1).mean() / 0.8)
            res[(f, b)] = corr
            rows.append([b, name, f"{err.mean():+.6f}", f"{math.sqrt((err ** 2).mean()):.6f}", f"{corr:.4f}",
                         f"{ratio:.4f}"])
    table(["bits", "method", "bias", "RMSE", "corr", "E[est]/<x,y> at 0.8"], rows)
    return res


def test_needle(rng):
    """Test 3: needle retrieval, query = an exact copy of the key at seq//3
    (trivial, as reference_impl.md §6.10 notes), and with noise at SNR 0.2."""
    print("## Test 3: needle in a haystack (query = the needle key; noisy: + noise at SNR 0.2)\n")
    rows, hits = [], {f: 0 for f in fams()}
    noisy = {f: 0 for f in fams()}
    for b in (2, 3, 4):
        for seq in (512, 2048, 8192):
            keys = unit(rng, seq)
            pos = seq // 3
            qn = keys[pos] + rng.standard_normal(D).astype(np.float32) * math.sqrt(1.0 / (D * 0.2))
            row = [b, seq]
            for f in fams():
                q = rq.Quantizer(f"{f}{b}p", D, SEED)
                c = q.encode(keys)
                s = q.inner_product(keys[pos], c)
                ok = int(np.argmax(s)) == pos
                hits[f] += ok
                noisy[f] += int(np.argmax(q.inner_product(qn, c))) == pos
                row.append("EXACT" if ok else "MISS")
            rows.append(row)
    table(["bits", "seq"] + names(), rows)
    print("noisy query (SNR 0.2), hits of 9: " + ", ".join(f"{n} {noisy[f]}" for n, f in FAMILIES) + "\n")
    return hits


def test_equivariance(rng):
    """Test 4: ‖Q(Rx) − R·Q(x)‖ (RMS) and cosine for a random orthogonal R."""
    print("## Test 4: rotation \"equivariance\" (n = 1000; ≈ √(2·MSE): quantization noise, not structure)\n")
    R, _ = np.linalg.qr(rng.standard_normal((D, D)))
    x = unit(rng, 1000)
    xr = (x @ R.T).astype(np.float32)
    rows = []
    for b in (2, 3, 4):
        for name, f in FAMILIES:
            q = rq.Quantizer(f"{f}{b}", D, SEED)
            a = q.decode(q.encode(xr)).astype(np.float64)
            bb = q.decode(q.encode(x)).astype(np.float64) @ R.T
            err = math.sqrt(((a - bb) ** 2).sum(1).mean())
            cos = float(((a * bb).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(bb, axis=1))).mean())
            rows.append([b, name, f"{err:.6f}", f"{cos:.6f}"])
    table(["bits", "method", "RMS error", "mean cosine"], rows)


def test_structured(rng):
    """Test 5: rank-16 data; MSE of the (bits−1)-bit stage, IP corr / RMSE of the estimator."""
    print("## Test 5: structured (rank-16) data, n = 2000 (MSE: the (bits−1)-bit MSE stage)\n")
    basis = unit(rng, 16).astype(np.float64)
    x = rng.standard_normal((2000, 16)) @ basis
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    y = unit(rng, 2000)
    true = (x.astype(np.float64) * y).sum(1)
    rows = []
    for b in (2, 3, 4):
        for name, f in FAMILIES:
            qm = rq.Quantizer(f"{f}{b - 1}", D, SEED)
            mse = float(((x - qm.decode(qm.encode(x))) ** 2).sum(1).mean())
            qp = rq.Quantizer(f"{f}{b}p", D, SEED)
            est = (qp.decode(qp.encode(x)).astype(np.float64) * y).sum(1)
            rows.append([b, name, f"{mse:.6f}", f"{np.corrcoef(true, est)[0, 1]:.4f}",
                         f"{math.sqrt(((est - true) ** 2).mean()):.6f}"])
    table(["bits", "method", "MSE", "IP corr", "IP RMSE"], rows)


def time_forward(q, x, reps=20):
    q.decode(q.encode(x))
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        q.decode(q.encode(x))
        t.append(time.perf_counter() - t0)
    return float(np.median(t))


def test_speed(rng):
    """Test 6: 3-bit MSE forward (quantize + dequantize), ms per call, one thread."""
    print("## Test 6: speed, 3-bit forward (encode + decode), ms per call (median of 20; CPU, 1 thread)\n")
    rows, res = [], {}
    for n in (1000, 5000, 10000):
        x = unit(rng, n)
        row = [n]
        for f in fams():
            ms = 1e3 * time_forward(rq.Quantizer(f"{f}3", D, SEED), x)
            res[(f, n)] = ms
            row.append(f"{ms:.3f}")
        rows.append(row)
    table(["n"] + names(), rows)
    return res


def test_params():
    """Test 7: parameters every quantizer holds (3 bits), counted as the library stores them."""
    print("## Test 7: parameters (3-bit MSE; `p` types add the QJL matrix)\n")
    res = {}
    rows = []
    for name, f in FAMILIES:
        res[f] = rq.Quantizer(f"{f}3", D, SEED).n_params
        rows.append([name, f"{res[f]:,}", f"{rq.Quantizer(f'{f}3p', D, SEED).n_params:,}"])
    table(["method", "3-bit", "3-bit p"], rows)
    return res


def main_quality():
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    print(f"# rotorquant {rq.__version__} ({rq.simd}): the seed's 7 tests, d = {D}, quantizer seed {SEED}, "
          "data seed 0\n")
    mse = test_mse(rng)
    corr = test_ip(rng)
    hits = test_needle(rng)
    test_equivariance(rng)
    test_structured(rng)
    speed = test_speed(rng)
    params = test_params()
    print("## Summary: the seed's table with our numbers (d = 128)\n")
    tq, rr = "dense", "rotor"
    rows = [
        ["MSE (3-bit)", f"{mse[(tq, 3)]:.4f}", f"{mse[(rr, 3)]:.4f}", *SEED_TABLE["mse3"],
         "equal: the seed's RQ codebook was scaled for d_eff = 344"],
        ["IP correlation (3-bit p)", f"{corr[(tq, 3)]:.3f}", f"{corr[(rr, 3)]:.3f}", *SEED_TABLE["corr3"],
         "equal on isotropic data"],
        ["Needle retrieval", f"{hits[tq]}/9 exact", f"{hits[rr]}/9 exact", *SEED_TABLE["needle"],
         "trivial with query = key"],
        ["Parameters (3-bit)", f"{params[tq]:,}", f"{params[rr]:,}", *SEED_TABLE["params"],
         "seed counted 8 floats per rotor"],
        ["Speed (10K vectors, CPU 1 thread)", f"{speed[(tq, 10000)]:.2f} ms", f"{speed[(rr, 10000)]:.2f} ms",
         *SEED_TABLE["speed"], f"seed on CPU: {SEED_CPU_MS_10K[0]:.0f} / {SEED_CPU_MS_10K[1]:.0f} ms"],
    ]
    table(["Metric", "TurboQuant", "RotorQuant", "seed TQ", "seed RQ", "Notes"], rows)
    print("Other families at 3 bits (MSE / IP corr / ms per 10K): " + "; ".join(
        f"{n} {mse[(f, 3)]:.4f} / {corr[(f, 3)]:.3f} / {speed[(f, 10000)]:.2f}" for n, f in FAMILIES[2:]))
    print(f"\n({time.perf_counter() - t0:.1f} s)")


# ---- --speed: Python vs the C API vs the seed's PyTorch ----------------------
def find_c_bench(path):
    if path:
        return path
    cand = os.path.join("build", "bench", "api_bench")
    if not os.path.exists(cand) and os.path.exists("Makefile") and os.path.exists("bench/api_bench.c"):
        subprocess.run(["make", "-s", cand], check=False, stdout=subprocess.DEVNULL)
    return cand if os.path.exists(cand) else None


def torch_seed_forward(n, reps):
    """The seed's TurboQuantMSE forward in PyTorch (x·Πᵀ, nearest centroid by
    argmin over all levels, c[idx]·Π; reference_impl.md §2.2), 3 bits."""
    import torch
    g = torch.Generator().manual_seed(SEED)
    Q, R = torch.linalg.qr(torch.randn(D, D, generator=g))
    Pi = Q * torch.sign(torch.diagonal(R)).unsqueeze(0)
    c = torch.tensor(rq.codebook(D, 3, law="gauss")["centroids"])
    x = torch.randn(n, D, generator=g)
    x = x / x.norm(dim=1, keepdim=True)

    def fwd():
        y = x @ Pi.T
        idx = (y.unsqueeze(-1) - c).abs().argmin(dim=-1)
        return c[idx] @ Pi

    fwd()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fwd()
        t.append(time.perf_counter() - t0)
    return float(np.median(t)), torch.__version__, torch.get_num_threads()


def py_round(q, x, xh, cache, qq, qh, reps, attn_reps):
    """One round of the Python side: the times (s) of each run of encode,
    decode into a new array, decode into a reused one (decode(out=)), and
    attention."""
    te, td, to, ta = [], [], [], []
    q.decode(q.encode(x), out=xh)
    for _ in range(reps):
        t0 = time.perf_counter()
        c = q.encode(x)
        t1 = time.perf_counter()
        q.decode(c)
        t2 = time.perf_counter()
        q.decode(c, out=xh)
        t3 = time.perf_counter()
        te.append(t1 - t0), td.append(t2 - t1), to.append(t3 - t2)
    cache.attention(0, qq, qh, causal=False)
    for _ in range(attn_reps):
        t0 = time.perf_counter()
        cache.attention(0, qq, qh, causal=False)
        ta.append(time.perf_counter() - t0)
    return {"encode": te, "decode": td, "decode_out": to, "attention": ta}


def main_speed(args):
    n, ctx, kvh, qh = args.n, args.ctx, 8, 32
    typ = args.type
    print(f"# rotorquant {rq.__version__} ({rq.simd}): speed, type {typ}, d = {D}, one thread\n")
    # the same arrays as bench/api_bench.c (rq_data_generate, seeds 0..3)
    x = rq.data("isotropic", n, D, seed=0)
    xh = np.empty_like(x)
    q = rq.Quantizer(typ, D)
    cache = rq.KVCache(1, kvh, D, typ, typ, n_threads=1)
    k = rq.data("isotropic", ctx * kvh, D, seed=1).reshape(ctx, kvh, D)
    v = rq.data("isotropic", ctx * kvh, D, seed=2).reshape(ctx, kvh, D)
    qq = rq.data("isotropic", qh, D, seed=3).reshape(1, qh, D)
    cache.append(0, k, v)
    cb = find_c_bench(args.c_bench)
    cmd = [cb, "--type", typ, "--n", str(n), "--dim", str(D), "--reps", str(args.reps), "--ctx", str(ctx),
           "--kv-heads", str(kvh), "--q-heads", str(qh), "--attn-reps", str(args.attn_reps), "--seed", "0"]
    # rounds of (C, Python) so both sides see the same drift of a shared
    # machine's load; each side's time is its fastest run over all rounds
    # (the least disturbed), the medians are shown beside
    py = {"encode": [], "decode": [], "decode_out": [], "attention": []}
    cs = []
    for _ in range(args.rounds):
        if cb:
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                print(f"C benchmark failed: {out.stderr.strip()}")
                cb = None
            else:
                cs.append(json.loads(out.stdout))
        for key, t in py_round(q, x, xh, cache, qq, qh, args.reps, args.attn_reps).items():
            py[key] += t
    best = {k: min(v) for k, v in py.items()}
    medp = {k: float(np.median(v)) for k, v in py.items()}
    pyb = {"enc": best["encode"], "dec": best["decode"], "dec_out": best["decode_out"],
           "attn": best["attention"]}
    pym = {"enc": medp["encode"], "dec": medp["decode"], "dec_out": medp["decode_out"], "attn": medp["attention"]}
    if cs:
        cb_ = {"enc": min(c["encode_min_s"] for c in cs), "dec": min(c["decode_min_s"] for c in cs),
               "attn": min(c["attention_min_s"] for c in cs)}
        cm = {"enc": float(np.median([c["encode_s"] for c in cs])), "dec": float(np.median([c["decode_s"] for c in cs])),
              "attn": float(np.median([c["attention_s"] for c in cs]))}
        # Python's decode into a new array ↔ C's decode into a buffer malloc'ed
        # for the call; decode(out=) ↔ C's decode into its reused buffer
        cb_["dec_out"], cm["dec_out"] = cb_["dec"], cm["dec"]
        cb_["dec"] = min(c["decode_fresh_min_s"] for c in cs)
        cm["dec"] = float(np.median([c["decode_fresh_s"] for c in cs]))
    rows = []
    for what, parts in ((f"encode + decode, {n:,} vectors (new result arrays; C: malloc per call)", ("enc", "dec")),
                        ("  encode", ("enc",)), ("  decode", ("dec",)),
                        (f"encode + decode, {n:,} vectors (decode out= reused; C: reused buffer)", ("enc", "dec_out")),
                        ("  decode (out=)", ("dec_out",)),
                        (f"attention, {ctx} tokens x {kvh} KV heads, {qh} q heads", ("attn",))):
        p, pm = sum(pyb[k] for k in parts), sum(pym[k] for k in parts)
        if cs:
            c, cmed = sum(cb_[k] for k in parts), sum(cm[k] for k in parts)
            rows.append([what, f"{1e3 * p:.3f}", f"{1e3 * c:.3f}", f"{c / p:.3f}", f"{1e3 * pm:.3f}",
                         f"{1e3 * cmed:.3f}", f"{cmed / pm:.3f}"])
        else:
            rows.append([what, f"{1e3 * p:.3f}", "-", "-", f"{1e3 * pm:.3f}", "-", "-"])
    table(["work", "Python ms (best)", "C API ms (best)", "Python / C", "Python ms (median)", "C API ms (median)",
           "Python / C (median)"], rows)
    print(f"{args.rounds} rounds of (C, Python), {args.reps} encode/decode and {args.attn_reps} attention runs "
          "per round and side; Python / C = throughput ratio (C time / Python time).")
    if not cs:
        print("C side: build it with `make build/bench/api_bench` at the repository root (or pass --c-bench PATH).")
    per10k = 1e3 * (pyb["enc"] + pyb["dec"]) * 10000 / n
    dense = 1e3 * time_forward(rq.Quantizer("dense3", D), x[:10000], reps=5)
    print()
    try:
        t, ver, thr = torch_seed_forward(10000, 10)
        print(f"Seed's PyTorch TurboQuant_mse forward, 10,000 vectors (torch {ver}, {thr} threads): "
              f"{1e3 * t:.2f} ms; rotorquant from Python: {typ} {per10k:.2f} ms -> {1e3 * t / per10k:.0f}x, "
              f"dense3 (the seed's rotation) {dense:.2f} ms -> {1e3 * t / dense:.0f}x")
    except ImportError:
        print(f"torch is not importable here; the seed's own timings for a 3-bit forward (quantize + dequantize) "
              f"of 10,000 vectors: {SEED_CPU_MS_10K[0]:.0f} ms TurboQuant, {SEED_CPU_MS_10K[1]:.0f} ms RotorQuant "
              f"(2-vCPU EPYC, torch 1.13 CPU; reference_impl.md §4.1), 0.41 / 4.87 ms on an RTX PRO 4000 GPU "
              f"(pr4-description).\nrotorquant from Python, 10,000 vectors: {typ} {per10k:.2f} ms "
              f"({SEED_CPU_MS_10K[0] / per10k:.0f}x the seed's TurboQuant, {SEED_CPU_MS_10K[1] / per10k:.0f}x its "
              f"RotorQuant), dense3 (the seed's dense rotation) {dense:.2f} ms ({SEED_CPU_MS_10K[0] / dense:.0f}x).")


def main(argv=None):
    """Runs the seed's 7 tests, or with --speed the Python / C API / seed timings; returns 0."""
    ap = argparse.ArgumentParser(prog="python -m rotorquant.benchmark", description=__doc__.split("\n")[0])
    ap.add_argument("--speed", action="store_true", help="Python vs C API vs the seed's PyTorch")
    ap.add_argument("--type", default="turbo3", help="type for --speed (default turbo3)")
    ap.add_argument("--n", type=int, default=100000, help="vectors for --speed (default 100000)")
    ap.add_argument("--ctx", type=int, default=4096, help="cache tokens for --speed (default 4096)")
    ap.add_argument("--reps", type=int, default=7, help="encode/decode repeats for --speed (median)")
    ap.add_argument("--attn-reps", type=int, default=50, help="attention repeats for --speed (median)")
    ap.add_argument("--rounds", type=int, default=3, help="(C, Python) rounds for --speed (default 3)")
    ap.add_argument("--c-bench", default=None, help="path of bench/api_bench (default build/bench/api_bench)")
    args = ap.parse_args(argv)
    if args.speed:
        main_speed(args)
    else:
        main_quality()
    return 0


if __name__ == "__main__":
    sys.exit(main())
