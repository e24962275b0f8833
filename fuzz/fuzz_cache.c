/* fuzz_cache.c — a structured fuzz of the cache API: the input picks a
 * configuration (key and value types, head dim, KV heads, GQA ratio, page
 * size, threads), then runs a sequence of operations — appends of token
 * batches (values from the input, sometimes NaN/Inf or past the f16 range),
 * key bases, attention with and without causal limits, clear.
 * Properties: never crashes; a failed append leaves the token count as it
 * was; the fused attention agrees with the reference (decode everything,
 * exact softmax in double) to float rounding; an attention that succeeds
 * gives finite outputs. */
#include "fuzz.h"

#include "rotorquant.h"

#include <math.h>
#include <string.h>

static const int DIMS[] = {8, 16, 32, 48, 64, 96};

/* one value from a byte: mostly moderate, sometimes extreme */
static float value_of(unsigned b, unsigned mode) {
    if (mode == 255) return b == 0 ? NAN : b == 1 ? INFINITY : 70000.0f;
    return ((float)b - 127.5f) / 32.0f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    const int n_types = rq_type_count();
    rq_cache_config cfg = rq_cache_config_default();
    cfg.type_k = rq_type_at((int)(fuzz_u8(&in) % (unsigned)n_types))->name;
    cfg.type_v = rq_type_at((int)(fuzz_u8(&in) % (unsigned)n_types))->name;
    cfg.head_dim = DIMS[fuzz_u8(&in) % (sizeof DIMS / sizeof DIMS[0])];
    cfg.n_kv_heads = 1 + (int)(fuzz_u8(&in) % 3);
    cfg.n_layers = 2;
    cfg.page_tokens = 1 + (int)(fuzz_u8(&in) % 80);
    cfg.n_threads = 1 + (int)(fuzz_u8(&in) % 2);
    cfg.quant.seed = fuzz_u8(&in);
    const int group = 1 + (int)(fuzz_u8(&in) % 4);
    rq_cache *c = NULL;
    if (rq_cache_init(&c, &cfg) != RQ_OK) return 0; /* a type that does not serve this head dim */

    const int d = cfg.head_dim, H = cfg.n_kv_heads, Hq = H * group;
    enum { MAX_T = 40, MAX_Q = 3 };
    float *k = malloc(sizeof(float) * MAX_T * H * d), *v = malloc(sizeof(float) * MAX_T * H * d);
    float *q = malloc(sizeof(float) * MAX_Q * Hq * d);
    float *out = malloc(sizeof(float) * MAX_Q * Hq * d), *ref = malloc(sizeof(float) * MAX_Q * Hq * d);
    float *A = malloc(sizeof(float) * 2 * d * d); /* up to two ranges */
    rq_attn_params p = {.n_q_heads = Hq};

    for (int op = 0; op < 12 && in.n; op++) {
        const int layer = (int)(fuzz_u8(&in) % 2);
        switch (fuzz_u8(&in) % 5) {
        case 0:
        case 1: { /* append */
            const size_t n = 1 + fuzz_u8(&in) % MAX_T;
            const unsigned mode = fuzz_u8(&in);
            for (size_t i = 0; i < n * H * d; i++) {
                k[i] = value_of(fuzz_u8(&in) ^ (unsigned)(i * 37), i == 0 ? mode : 0);
                v[i] = value_of(fuzz_u8(&in) ^ (unsigned)(i * 91), 0);
            }
            const size_t before = rq_cache_n_tokens(c, layer);
            rq_status st = rq_cache_append(c, layer, k, v, n);
            FUZZ_ASSERT(rq_cache_n_tokens(c, layer) == before + (st == RQ_OK ? n : 0), "all or nothing");
            break;
        }
        case 2: { /* key basis: I + small off-diagonal terms (well conditioned) */
            const int h = (int)(fuzz_u8(&in) % (unsigned)H);
            for (int i = 0; i < 2 * d * d; i++) A[i] = ((i % (d * d)) % (d + 1) == 0) ? 1.0f : 0.0f;
            for (int i = 0; i < 8; i++) A[fuzz_u8(&in) % (unsigned)(2 * d * d)] += (float)(fuzz_u8(&in) % 16) / 64.0f;
            const size_t start[2] = {0, 1 + fuzz_u8(&in) % 64u};
            rq_cache_set_key_basis(c, layer, h, 1 + fuzz_u8(&in) % 2, start, A); /* refused once tokens exist */
            break;
        }
        case 3: { /* attention, fused vs reference */
            const size_t nq = 1 + fuzz_u8(&in) % MAX_Q, have = rq_cache_n_tokens(c, layer);
            size_t n_ctx[MAX_Q];
            const int causal = (int)(fuzz_u8(&in) & 1);
            for (size_t i = 0; i < nq; i++) n_ctx[i] = have ? 1 + fuzz_u8(&in) % have : 0;
            for (size_t i = 0; i < nq * Hq * d; i++) q[i] = value_of(fuzz_u8(&in), 0);
            p.scale = (fuzz_u8(&in) & 1) ? 0.0f : 0.5f;
            rq_status sf = rq_cache_attention(c, layer, q, nq, causal ? n_ctx : NULL, &p, out);
            rq_status sr = rq_cache_attention_ref(c, layer, q, nq, causal ? n_ctx : NULL, &p, ref);
            FUZZ_ASSERT(sf == sr, "fused and reference agree on the status");
            if (sf == RQ_OK) {
                double vmax = 0;
                for (size_t i = 0; i < nq * Hq * d; i++) vmax = fmax(vmax, fabs(ref[i]));
                for (size_t i = 0; i < nq * Hq * d; i++) {
                    FUZZ_ASSERT(isfinite(out[i]), "finite output");
                    FUZZ_ASSERT(fabs(out[i] - ref[i]) <= 1e-3 * (1 + vmax), "fused = reference");
                }
            }
            break;
        }
        case 4:
            if (fuzz_u8(&in) == 0) rq_cache_clear(c);
            break;
        }
    }
    free(k);
    free(v);
    free(q);
    free(out);
    free(ref);
    free(A);
    rq_cache_free(c);
    return 0;
}
