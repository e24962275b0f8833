#!/usr/bin/env python3
"""attn_compare.py BEFORE.txt AFTER.txt [AFTER2.txt ...] — one markdown table per
head_dim from attn_bench outputs of two builds (e.g. the base commit's library
and this one, run back to back): per type, context and thread count the time
before and after, the speed-up, and the after run's GB/s, %roof, x f16,
x q8_0 and x 1 thread. With several AFTER files (repeat runs), the per-row
median of the after values is shown (and BEFORE may likewise be a comma list).
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


def med(runs, key, col):
    vals = [num(r[key][col]) for r in runs if key in r]
    return statistics.median(vals) if vals else float("nan")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    before = [parse(p) for p in sys.argv[1].split(",")]
    after = [parse(p) for p in sys.argv[2:]]
    keys = list(after[0].keys())
    for dim in sorted({k[0] for k in keys}, reverse=True):
        print(f"\nhead_dim {dim}:\n")
        print("| type | ctx | threads | before µs | after µs | speed-up | GB/s | %roof | bound | ×f16 | ×q8_0 | ×1 thread |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
        for k in keys:
            if k[0] != dim:
                continue
            b, a = med(before, k, "µs"), med(after, k, "µs")
            r = after[0][k]
            print(f"| {k[1]} | {k[2]} | {k[3]} | {b:.0f} | {a:.0f} | {b / a:.2f} | {med(after, k, 'GB/s'):.1f} | "
                  f"{med(after, k, '%roof'):.0f}% | {r['bound']} | {med(after, k, '×f16'):.2f} | "
                  f"{med(after, k, '×q8_0'):.2f} | {med(after, k, '×1 thread'):.2f} |")


if __name__ == "__main__":
    main()
