"""Objects shared across Python threads (GIL released in the library)."""
import threading

import numpy as np

import rotorquant as rq


def run(n, fn):
    errors = []

    def wrap(i):
        try:
            fn(i)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def test_shared_quantizer():
    q = rq.Quantizer("rotor3p", 128)
    xs = [rq.data("isotropic", 2000, 128, seed=i) for i in range(8)]
    want = [q.encode(x) for x in xs]
    got = [None] * 8

    def work(i):
        for _ in range(5):
            c = q.encode(xs[i])
            assert np.array_equal(q.decode(c), q.decode(want[i]))
        got[i] = c

    run(8, work)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_shared_cache_append_and_attention():
    L, H, D, HQ = 4, 2, 64, 4
    cache = rq.KVCache(L, H, D, "turbo3", "turbo2", n_threads=2)
    ref = rq.KVCache(L, H, D, "turbo3", "turbo2", n_threads=1)
    k = rq.data("isotropic", 64 * H, D, seed=1).reshape(64, H, D)
    q = rq.data("isotropic", HQ, D, seed=2).reshape(1, HQ, D)
    for layer in range(L):
        for t in range(0, 64, 8):
            ref.append(layer, k[t:t + 8], k[t:t + 8])
    want = [ref.attention(layer, q, HQ) for layer in range(L)]

    def work(i):
        layer = i % L
        if i < L:  # writers: one per layer, in chunks
            for t in range(0, 64, 8):
                cache.append(layer, k[t:t + 8], k[t:t + 8])
        else:  # readers while the writers run
            for _ in range(20):
                n = cache.layer_tokens(layer)
                if n:
                    out = cache.attention(layer, q, HQ, causal=False)
                    assert np.all(np.isfinite(out))

    run(2 * L, work)
    for layer in range(L):
        assert cache.layer_tokens(layer) == 64
        assert np.abs(cache.attention(layer, q, HQ) - want[layer]).max() < 1e-5


def test_gil_released_during_encode():
    """While one thread is inside a long encode, another keeps running Python."""
    q = rq.Quantizer("dense3", 128)  # O(d²) per vector: one call of ~0.1–0.5 s
    x = rq.data("isotropic", 100000, 128, seed=1)
    started = threading.Event()

    def work():
        started.set()
        q.encode(x)

    t = threading.Thread(target=work)
    t.start()
    started.wait()
    count = 0
    while t.is_alive():
        count += 1
    t.join()
    assert count > 1000  # with the GIL held through the call this loop could not run
