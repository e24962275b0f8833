"""cuda_sdpa.py — PyTorch's scaled_dot_product_attention on the decode shapes of
bench/cuda_bench.cu (one new token, f16 K/V, GQA), for docs/RESULTS.md.

Run on a machine with a GPU and torch: python3 bench/cuda_sdpa.py
Timing: CUDA events around batches of back-to-back calls, median of 9 batches.
"""
import statistics
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("torch not available: skipped")
    sys.exit(0)

if not torch.cuda.is_available():
    print("no CUDA device: skipped")
    sys.exit(0)

print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")


def timed(fn, per, batches=9):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(batches):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(per):
            fn()
        b.record()
        b.synchronize()
        ms.append(a.elapsed_time(b) / per)
    return statistics.median(ms) * 1e3  # microseconds


shapes = [(32, 8, 128), (64, 8, 128), (8, 8, 128), (8, 1, 256), (9, 3, 64)]
quick = "--quick" in sys.argv
ctxs = [4096, 32768, 131072] if quick else [4096, 8192, 16384, 32768, 65536, 131072]
for n_q, n_kv, d in shapes:
    print(f"sdpa f16, {n_q} q heads / {n_kv} KV heads, d={d}")
    for n in ctxs:
        q = torch.randn(1, n_q, 1, d, device="cuda", dtype=torch.float16)
        k = torch.randn(1, n_kv, n, d, device="cuda", dtype=torch.float16)
        v = torch.randn(1, n_kv, n, d, device="cuda", dtype=torch.float16)
        per = 50 if n <= 16384 else 20
        try:
            t = timed(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True), per)
            kind = "enable_gqa"
        except Exception as e:  # older torch: expand K/V to the query heads first (not timed)
            kx = k.repeat_interleave(n_q // n_kv, dim=1)
            vx = v.repeat_interleave(n_q // n_kv, dim=1)
            t = timed(lambda: F.scaled_dot_product_attention(q, kx, vx), per)
            kind = f"expanded K/V ({type(e).__name__})"
        gbs = n * n_kv * 4 * d / (t * 1e-6) / 1e9
        print(f"    ctx {n:7d}: {t:8.2f} us ({gbs:5.0f} GB/s of K+V) [{kind}]")
        del q, k, v
