#!/usr/bin/env python3
"""attn_compare.py [--min] BEFORE.txt AFTER.txt [AFTER2.txt ...] — one markdown table per
head_dim from attn_bench outputs of two builds (e.g. the base commit's library
and this one, run back to back): per type, context and thread count the time
before and after, the speed-up, and the after run's GB/s, %roof, x f16,
x q8_0 and x 1 thread. With several AFTER files (repeat runs), the per-row
median of the after values is shown (and BEFORE may likewise be a comma list);
--min: the smallest instead (runs of `attn_bench --stat min` on a loaded
machine: the fastest of all repeats of all runs). Ratios and GB/s are
recomputed from the aggregated times; --peak GFMAS adds the FMA floor
(2·Hq·ctx·d float FMAs, twice that for `p` types; Hq = 32 at d = 128, 9 at
64, attn_bench's shapes) as a fraction of the time.
"""
import re
import statistics
import sys


def parse(path):
    rows, dim, head = {}, None, None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"### head_dim (\d+)", line)
        if m:
            dim = int(m.group(1))
            continue
        if line.startswith("| type |"):
            head = [c.strip() for c in line.strip().strip("|").split("|")]
            continue
        if line.startswith("| ") and head and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            r = dict(zip(head, cells))
            rows[(dim, r["type"], r["ctx"], int(r["threads"]))] = r
    return rows


def num(x):
    return float(x.rstrip("%"))


AGG = statistics.median


def med(runs, key, col):
    vals = [num(r[key][col]) for r in runs if key in r]
    return AGG(vals) if vals else float("nan")


def main():
    global AGG
    args = sys.argv[1:]
    peak = None
    while args and args[0].startswith("--"):
        if args[0] == "--min":
            AGG, args = min, args[1:]
        elif args[0] == "--peak" and len(args) > 1:
            peak, args = float(args[1]) * 1e9, args[2:]
        else:
            sys.exit(__doc__)
    if len(args) < 2:
        sys.exit(__doc__)
    before = [parse(p) for p in args[0].split(",")]
    after = [parse(p) for p in args[1:]]
    keys = list(after[0].keys())
    for dim in sorted({k[0] for k in keys}, reverse=True):
        hq = 32 if dim == 128 else 9
        print(f"\nhead_dim {dim}:\n")
        print("| type | ctx | threads | before µs | after µs | speed-up | GB/s |" + (" %FMA roof |" if peak else "")
              + " ×f16 | ×q8_0 | ×1 thread |")
        print("|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if peak else "") + "---:|---:|---:|")
        for k in keys:
            if k[0] != dim:
                continue
            b, a = med(before, k, "µs"), med(after, k, "µs")
            ctx = int(k[2].rstrip("K")) * 1024
            gbs = int(after[0][k]["bytes/token"]) * ctx / a / 1e3
            rel = lambda t: med(after, (k[0], t, k[2], k[3]), "µs") / a
            one = med(after, (k[0], k[1], k[2], 1), "µs") / a
            roof = ""
            if peak:
                fmas = (4 if k[1].endswith("p") else 2) * hq * ctx * dim
                roof = f" {100 * fmas / peak / (a * 1e-6):.0f}% |"
            print(f"| {k[1]} | {k[2]} | {k[3]} | {b:.0f} | {a:.0f} | {b / a:.2f} | {gbs:.1f} |{roof} "
                  f"{rel('f16'):.2f} | {rel('q8_0'):.2f} | {one:.2f} |")


if __name__ == "__main__":
    main()
