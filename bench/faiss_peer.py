#!/usr/bin/env python3
"""faiss_peer.py -- an independent peer for `rotorquant bench`: Faiss's
TurboQuant scalar quantizers on exactly the data our bench uses.

    python3 bench/faiss_peer.py [--rotorquant build/rotorquant] [--dims 128]
                                [--data isotropic,outlier] [--json OUT]

Installs nothing. Needs numpy and faiss (PyPI `faiss-cpu`, >= 1.14, which has
ScalarQuantizer.QT_{1,2,3,4}bit_tqmse -- Lloyd-Max codes for the coordinates of
a unit vector -- and QT_{2,3,4,5}bit_tq -- (b-1)-bit codes + a 1-bit QJL
sketch). Without them it says so and exits 0.

Data: `rotorquant bench --dump DIR` writes the bench's own vectors (.npy); we
run Faiss on them and take our numbers from `rotorquant bench --json` on the
same seed, so both columns see identical vectors and the bench's definitions:
  - MSE      mean ||x - x^||^2 / ||x||^2 over the x vectors (unit)
  - IP corr  Pearson of the estimated against the exact <y, x> over the
             independent pairs (x_i, y_i)
  - ratio    mean estimate / 0.8 over the pairs with <x, y> = 0.8 exactly:
             < 1 = shrunk (biased), 1 = unbiased
  - encode   vectors per second, one thread, median of 5 runs
For Faiss every estimate is its own search distance (IndexScalarQuantizer,
METRIC_INNER_PRODUCT). Faiss's tqmse quantizes raw coordinates (no rotation):
`RR+` rows put its RandomRotationMatrix in front (IndexPreTransform), which
is the TurboQuant pipeline. Its codes store no norm (unit vectors only); ours
store an fp16 norm (2 bytes more).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def say(msg):
    print(msg)
    sys.stdout.flush()


def median_time(fn, reps=5):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def pair_estimates(np, index, x, y):
    """<y_i, x_i^> from Faiss's own search distances: x in the index, each y
    searched against every x, the distance to its partner picked out."""
    n = x.shape[0]
    D, I = index.search(y, n)
    est = np.empty(n)
    for i in range(n):
        est[i] = D[i][I[i] == i][0]
    return est


def faiss_rows(faiss, np, files, seed):
    x, y, y8 = files["x"], files["y"], files["y_rho0.8"]
    n, d = x.shape
    x64 = x.astype(np.float64)
    exact = np.sum(x64 * y, axis=1)
    SQ = faiss.ScalarQuantizer
    variants = [("tqmse%d" % b, "QT_%dbit_tqmse" % b, b, False) for b in (1, 2, 3, 4)]
    variants += [("tq%d" % b, "QT_%dbit_tq" % b, b, True) for b in (2, 3, 4)]
    rows = []
    for name, qt, bits, qjl in variants:
        if not hasattr(SQ, qt):
            continue
        for rotate in (False, True):
            index = faiss.IndexScalarQuantizer(d, getattr(SQ, qt), faiss.METRIC_INNER_PRODUCT)
            if rotate:
                rr = faiss.RandomRotationMatrix(d, d)
                rr.init(seed)
                index = faiss.IndexPreTransform(rr, index)
            index.train(x)
            index.add(x)
            xh = index.sa_decode(index.sa_encode(x)).astype(np.float64)
            mse = float(np.mean(np.sum((x64 - xh) ** 2, axis=1) / np.sum(x64 ** 2, axis=1)))
            est = pair_estimates(np, index, x, y)
            est8 = pair_estimates(np, index, x, y8)
            t = median_time(lambda: index.sa_encode(x))
            rows.append({
                "peer": "faiss", "type": ("RR+" if rotate else "") + name, "bits": bits, "qjl": qjl,
                "bytes_per_vector": int(index.sa_code_size()), "mse": mse,
                "ip_corr": float(np.corrcoef(exact, est)[0, 1]), "ratio_08": float(est8.mean() / 0.8),
                "encode_vps": n / t,
            })
    return rows


def ours_rows(bench, data, d):
    speed = {r["type"]: r for r in bench["results"] if "encode_vps" in r and r["d"] == d}
    rows = []
    for r in bench["results"]:
        if r["data"] != data or r["d"] != d:
            continue
        s = speed.get(r["type"], {})
        rows.append({
            "peer": "rotorquant", "type": r["type"], "bits": r["bits"], "qjl": r["qjl"],
            "bytes_per_vector": r["bytes_per_vector"], "mse": r["mse"], "ip_corr": r["ip_corr"],
            "ratio_08": r["ip_pairs"][2]["ratio"], "encode_vps": s.get("encode_vps", float("nan")),
        })
    return rows


OURS = ",".join("%s%d%s" % (f, b, s) for f in ("turbo", "dense") for b in (1, 2, 3, 4) for s in ("", "p")
                if not (b == 1 and s == "p"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rotorquant", default="build/rotorquant", help="the CLI (default build/rotorquant)")
    ap.add_argument("--dims", default="128", help="head dimensions, comma-separated (default 128)")
    ap.add_argument("--data", default="isotropic,outlier", help="bench data sets (default isotropic,outlier)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", help="also write the rows as JSON to this file")
    args = ap.parse_args()

    try:
        import numpy as np
        import faiss
    except ImportError as e:
        say("faiss_peer: Faiss is not available (%s). Install it with `pip install faiss-cpu` "
            "(>= 1.14 has the TurboQuant types) and rerun; nothing to compare." % e)
        return 0
    SQ = faiss.ScalarQuantizer
    if not all(hasattr(SQ, "QT_%dbit_tqmse" % b) for b in (1, 2, 3, 4)):
        say("faiss_peer: this Faiss (%s) has no TurboQuant scalar quantizer types "
            "(ScalarQuantizer.QT_3bit_tqmse etc., Faiss >= 1.14); nothing to compare." % faiss.__version__)
        return 0
    if not os.access(args.rotorquant, os.X_OK):
        say("faiss_peer: %s not found; run `make` first or pass --rotorquant PATH." % args.rotorquant)
        return 1
    faiss.omp_set_num_threads(1)  # our encode is one thread: compare like with like

    report = {"faiss_version": faiss.__version__, "numpy_version": np.__version__, "blocks": []}
    with tempfile.TemporaryDirectory(prefix="rq_faiss_") as tmp:
        common = ["--dims", args.dims, "--data", args.data, "--seed", str(args.seed)]
        subprocess.run([args.rotorquant, "bench", "--dump", tmp] + common, check=True, capture_output=True)
        bench_cmd = [args.rotorquant, "bench", "--json", "--types", OURS] + common
        out = subprocess.run(bench_cmd, check=True, capture_output=True, text=True)
        bench = json.loads(out.stdout)
        report["commands"] = ["rotorquant bench --dump DIR " + " ".join(common),
                              "rotorquant " + " ".join(bench_cmd[1:])]
        say("# Faiss %s TurboQuant types vs rotorquant, same data\n" % faiss.__version__)
        say("Our numbers: `%s`; Faiss single-threaded on the vectors of `%s`.\n" % tuple(report["commands"][::-1]))
        for data in args.data.split(","):
            for d in args.dims.split(","):
                files = {w: np.load(os.path.join(tmp, "%s_d%s_%s.npy" % (data, d, w))).astype(np.float32)
                         for w in ("x", "y", "y_rho0.8")}
                rows = ours_rows(bench, data, int(d)) + faiss_rows(faiss, np, files, args.seed)
                rows.sort(key=lambda r: (r["bits"], r["qjl"], r["peer"] != "rotorquant", r["type"]))
                n = files["x"].shape[0]
                report["blocks"].append({"data": data, "d": int(d), "n": n, "rows": rows})
                say("## %s, d = %s: %d vectors and pairs\n" % (data, d, n))
                say("| peer | type | bits | bytes/vector | MSE | IP corr | E[est]/<x,y> at 0.8 | encode vec/s |")
                say("|---|---|---:|---:|---:|---:|---:|---:|")
                for r in rows:
                    say("| %s | %s | %d%s | %d | %.4g | %.4f | %.4f | %.3g |" % (
                        r["peer"], r["type"], r["bits"], "+qjl" if r["qjl"] else "", r["bytes_per_vector"],
                        r["mse"], r["ip_corr"], r["ratio_08"], r["encode_vps"]))
                say("")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
