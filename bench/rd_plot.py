#!/usr/bin/env python3
"""rd_plot.py -- the rate-distortion picture of issue 14: mean KLD vs bits/value
on SmolLM2-135M for every family and budget (docs/plots/rd_kld.svg) and
synthetic relative MSE vs code bits against the Lloyd-Max line and the 4^-b
bound (docs/plots/rd_mse.svg), plus the "Rate-distortion" section of
docs/RESULTS.md. Standard library only; the SVG helpers are bench/plots.py's.

    sh bench/rd_results.sh build/results-rd      # the JSON (~15 min on 2 cores)
    python3 bench/rd_plot.py --dir build/results-rd [--docs docs]

Rewrites only the text between <!-- BEGIN rd --> and <!-- END rd -->
(appending the section if the markers are missing). Every number written
comes from the JSON files.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plots import Plot, esc, fmt, machine  # noqa: E402  (reuse, not a copy)

BEGIN, END = "<!-- BEGIN rd -->", "<!-- END rd -->"
C = {"turbo": "#1f77b4", "tcq": "#d62728", "kv turbo": "#2ca02c", "kv tcq": "#9467bd",
     "q8_0": "#7f7f7f", "q4_0": "#8c564b", "q4_0h": "#17becf"}
PPL_CMD = ("build/rotorquant perplexity -m SmolLM2-135M-Instruct.Q4_1.gguf -f austen.txt "
           "--ctx 512 --chunks 8 --threads 2 --json")
CONFIGS = ("q8_0,q4_0,q4_0h,turbo2,turbo3,turbo4,turbo5,tcq2,tcq3,tcq4,tcq5,"
           "turbo4/turbo2,turbo5/turbo3,tcq4/tcq2,tcq5/tcq3")
MSE_CMD = ("build/rotorquant bench --json --data isotropic --dims 128 --n 2048 --reps 0 "
           "--types turbo1,turbo2,turbo3,turbo4,turbo5,tcq2,tcq3,tcq4,tcq5")


def load(d, name):
    p = os.path.join(d, name)
    if not os.path.exists(p) or os.path.getsize(p) == 0:
        return None
    with open(p) as f:
        return json.load(f)


def rows_by_name(doc):
    """{"turbo3": row, "turbo4/turbo2": row, "kv 2.25": row, ...}; the f32 reference row is left out."""
    out = {}
    for r in (doc or {}).get("rows", []):
        if r["type_k"] == "f32" and r["type_v"] == "f32":
            continue
        if "kv_bits" in r:
            out["kv %.2f" % r["kv_bits"]] = r
        elif r["type_k"] == r["type_v"]:
            out[r["type_k"]] = r
        else:
            out[r["type_k"] + "/" + r["type_v"]] = r
    return out


def labels(svg, items):
    """Adds text labels (x_px, y_px, text) to a Plot's SVG (next to the baseline points)."""
    t = "".join('<text x="%.1f" y="%.1f" font-size="11">%s</text>\n' % (x, y, esc(s)) for x, y, s in items)
    return svg.replace("</svg>", t + "</svg>")


def kld_plot(cfg, kvt, kvc, ref):
    def pts(R, names):
        return sorted((R[n]["bits_per_value"], R[n]["kld_mean"]) for n in names if n in R)

    fams = [("turbo2..5", pts(cfg, ["turbo%d" % b for b in (2, 3, 4, 5)]), C["turbo"], None),
            ("tcq2..5", pts(cfg, ["tcq%d" % b for b in (2, 3, 4, 5)]), C["tcq"], None),
            ("turbo K+2 / V", pts(cfg, ["turbo4/turbo2", "turbo5/turbo3"]), C["turbo"], "6,4"),
            ("tcq K+2 / V", pts(cfg, ["tcq4/tcq2", "tcq5/tcq3"]), C["tcq"], "6,4"),
            ("kv-bits turbo", pts(kvt, sorted(kvt)), C["kv turbo"], None),
            ("kv-bits tcq", pts(kvc, sorted(kvc)), C["kv tcq"], None)]
    base = [(t, cfg[t]["bits_per_value"], cfg[t]["kld_mean"]) for t in ("q8_0", "q4_0", "q4_0h") if t in cfg]
    ys = [y for _, P, _, _ in fams for _, y in P] + [y for _, _, y in base]
    ys = [y for y in ys if y > 0]
    xs = [x for _, P, _, _ in fams for x, _ in P] + [x for _, x, _ in base]
    x1 = max(9, int(max(xs)) + 1)
    p = Plot("Mean KLD vs bits/value — SmolLM2-135M, ctx %d, %d chunks" % (ref["ctx"], ref["chunks"]),
             "stored bits per value (norms, centring and sink included)", "mean KLD vs the f32 cache (nats)",
             (1.5, x1), (min(ys) * 0.8, max(ys) * 1.2), list(range(2, x1 + 1)), w=760, h=460)
    for label, P, color, dash in fams:
        p.add(label, P, color, dash=dash, width=2.0 if dash is None else 1.4)
    for t, x, y in base:
        p.add(t, [(x, y)], C[t])
    svg = p.svg()
    notes = sorted([(p.px(x) + 7, p.py(y) - 6, t) for t, x, y in base], key=lambda n: (n[0], n[1]))
    for i in range(1, len(notes)):  # labels at the same x at least 12 px apart
        (x0, y0, _), (x, y, t) = notes[i - 1], notes[i]
        if abs(x - x0) < 40 and y - y0 < 12:
            notes[i] = (x, y0 + 12, t)
    notes.append((p.ml + 8, p.h - p.mb - 8, "f16 (16 bits/value): KLD ≈ 0, off this log axis"))
    return labels(svg, notes)


def mse_plot(mse):
    R = {r["type"]: r for r in mse["results"] if r["data"] == "isotropic" and r["d"] == 128}
    bits = [1, 2, 3, 4, 5]
    ys = [r["mse"] for r in R.values()] + [4.0 ** -5]
    p = Plot("Relative MSE vs code bits — isotropic unit vectors, d = 128, n = %d" % mse["settings"]["n"],
             "code bits per value b (stored: b + 0.125 with the fp16 norm)", "MSE  ||x - x^||^2 / ||x||^2",
             (0.8, 5.2), (min(ys) * 0.8, max(ys) * 1.2), bits, w=760, h=460)
    p.add("turbo", [(b, R.get("turbo%d" % b, {}).get("mse")) for b in bits], C["turbo"])
    p.add("tcq (trellis)", [(b, R.get("tcq%d" % b, {}).get("mse")) for b in bits], C["tcq"])
    p.add("Lloyd-Max theory", [(b, R.get("turbo%d" % b, {}).get("mse_theory")) for b in bits], "#555",
          dash="2,3", marker=False, width=2.5)
    p.add("bound 4^-b", [(b, 4.0 ** -b) for b in bits], "black", dash="8,4", marker=False)
    return p.svg(), R


def section(cfg, kvt, kvc, ref, R, mse):
    L = []
    w = L.append
    w("## Rate–distortion: mean KLD and MSE vs bits (issue 14)")
    w("")
    # the verdict, from the JSON: the best KLD at each budget against the baselines
    best = {}
    for name, r in list(kvc.items()) + list(kvt.items()):
        b = r["kv_bits"]
        if b not in best or r["kld_mean"] < best[b][1]["kld_mean"]:
            best[b] = (name, r)
    gaps = [(b, R["tcq%d" % b]["mse"] / R["turbo%d" % b]["mse_theory"]) for b in (2, 3, 4, 5)
            if "tcq%d" % b in R and "turbo%d" % b in R]
    v = "**Verdict.** "
    # the tcq budget is "the lowest curve" at a budget when no other row within 0.06 bits/value of it,
    # or with more bits up to the q4 baselines', has a lower KLD
    allr = list(cfg.values()) + list(kvt.values()) + list(kvc.values())
    low = [r for r in kvc.values()
           if all(o["kld_mean"] >= r["kld_mean"] for o in allr
                  if o is not r and abs(o["bits_per_value"] - r["bits_per_value"]) < 0.06)]
    if low and len(low) == len(kvc):
        v += ("The tcq per-layer budget (`--kv-bits B --kv-family tcq`) is the lowest curve at every budget "
              "(%s); " % ", ".join("%.2f bits/value: KLD %s" % (r["bits_per_value"], fmt(r["kld_mean"]))
                                   for r in sorted(kvc.values(), key=lambda r: r["bits_per_value"])))
    top = max(kvc.values(), key=lambda r: r["bits_per_value"]) if kvc else None
    beaten = [t for t in ("q4_0", "q4_0h") if top and t in cfg and cfg[t]["kld_mean"] > top["kld_mean"]
              and cfg[t]["bits_per_value"] > top["bits_per_value"]]
    if beaten:
        v += ("at %.2f bits/value it is below %s with fewer bits; " % (top["bits_per_value"], " and ".join(
            "%s (%s at %.2f)" % (t, fmt(cfg[t]["kld_mean"]), cfg[t]["bits_per_value"]) for t in beaten)))
    if gaps:
        v += ("on synthetic data the trellis codes' MSE is %.2f× (b = %d) to %.2f× (b = %d) the Lloyd-Max line, "
              "which turbo meets, and %.2f× the 4^-b bound at b = %d." % (
                  gaps[0][1], gaps[0][0], gaps[-1][1], gaps[-1][0],
                  R["tcq%d" % gaps[-1][0]]["mse"] / 4.0 ** -gaps[-1][0], gaps[-1][0]))
    w(v)
    w("")
    w("![mean KLD vs bits/value](plots/rd_kld.svg)")
    w("")
    w("![relative MSE vs code bits](plots/rd_mse.svg)")
    w("")
    w("Generated by `sh bench/rd_results.sh build/results-rd && python3 bench/rd_plot.py --dir build/results-rd` "
      "(under `nice -n 10`) on the shared 2-core Intel Xeon Sapphire Rapids AVX-512 VM (%s; SIMD level %s). The runs:" % (machine(), mse["simd"]))
    w("")
    w("    %s --configs %s" % (PPL_CMD, CONFIGS))
    w("    %s --kv-bits 2.25,3.25,4.25" % PPL_CMD)
    w("    %s --kv-bits 2.25,3.25,4.25 --kv-family tcq" % PPL_CMD)
    w("    %s" % MSE_CMD)
    w("")
    w("Today's defaults: keys centred, norms corrected. %d scored tokens per row; KLD against the f32 cache "
      "(the --configs run took %.0f s). f16 is not on the log axis (its KLD is ≈ 0 at 16 bits/value)." % (
          ref["scored_tokens"], ref["seconds"]))
    w("")
    w("| row | bits/value | mean KLD | ΔPPL | top-1 |")
    w("|---|---:|---:|---:|---:|")
    order = ["q8_0", "q4_0", "q4_0h"] + ["%s%d" % (f, b) for f in ("turbo", "tcq") for b in (2, 3, 4, 5)] + \
        ["turbo4/turbo2", "turbo5/turbo3", "tcq4/tcq2", "tcq5/tcq3"]
    for n in order:
        if n in cfg:
            r = cfg[n]
            w("| %s | %.3f | %s | %+.4f | %.4f |" % (n, r["bits_per_value"], fmt(r["kld_mean"], 5),
                                                     r["delta_ppl"], r["top1"]))
    for fam, K in (("turbo", kvt), ("tcq", kvc)):
        for n in sorted(K):
            r = K[n]
            w("| --kv-bits %.2f (%s) | %.3f | %s | %+.4f | %.4f |" % (r["kv_bits"], fam, r["bits_per_value"],
                                                                      fmt(r["kld_mean"], 5), r["delta_ppl"],
                                                                      r["top1"]))
    w("")
    w("Synthetic (isotropic, d = 128, %d vectors, seed %d): relative MSE per code bit b." % (
        mse["settings"]["n"], mse["seed"]))
    w("")
    w("| b | turbo | tcq | Lloyd-Max theory | 4^-b |")
    w("|---:|---:|---:|---:|---:|")
    for b in (1, 2, 3, 4, 5):
        t, q = R.get("turbo%d" % b, {}), R.get("tcq%d" % b, {})
        w("| %d | %s | %s | %s | %s |" % (b, fmt(t.get("mse")), fmt(q.get("mse")), fmt(t.get("mse_theory")),
                                         fmt(4.0 ** -b)))
    w("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="build/results-rd", help="JSON written by bench/rd_results.sh")
    ap.add_argument("--docs", default="docs", help="docs directory (RESULTS.md, plots/)")
    a = ap.parse_args()
    cfgdoc, mse = load(a.dir, "configs.json"), load(a.dir, "mse.json")
    if cfgdoc is None or mse is None:
        print("rd_plot.py: %s/configs.json or mse.json missing or empty" % a.dir, file=sys.stderr)
        return 1
    cfg = rows_by_name(cfgdoc)
    kvt, kvc = rows_by_name(load(a.dir, "kvbits_turbo.json")), rows_by_name(load(a.dir, "kvbits_tcq.json"))
    os.makedirs(os.path.join(a.docs, "plots"), exist_ok=True)
    with open(os.path.join(a.docs, "plots", "rd_kld.svg"), "w") as f:
        f.write(kld_plot(cfg, kvt, kvc, cfgdoc))
    svg, R = mse_plot(mse)
    with open(os.path.join(a.docs, "plots", "rd_mse.svg"), "w") as f:
        f.write(svg)
    text = BEGIN + "\n" + section(cfg, kvt, kvc, cfgdoc, R, mse) + END
    path = os.path.join(a.docs, "RESULTS.md")
    old = open(path).read()
    if BEGIN in old and END in old:
        i, j = old.index(BEGIN), old.index(END) + len(END)
        new = old[:i] + text + old[j:]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    with open(path, "w") as f:
        f.write(new)
    print("rd_plot.py: wrote %s, %s/plots/rd_kld.svg, %s/plots/rd_mse.svg" % (path, a.docs, a.docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
