/* fuzz_seqload.c — the sequence loader (rq_cache_seq_load_mem,
 * docs/FORMAT.md §7) on untrusted bytes. The first input byte picks one of
 * four cache configurations (SEQLOAD_CONFIGS, shared with fuzz/seeds.c,
 * which writes a saved cache of each as a seed); the rest is the data.
 * Properties: never crashes; a failed load leaves the cache as it was (no
 * sequence, no page) with a message; a load that succeeds saves back to as
 * many bytes as it read, and every loaded sequence attends with finite
 * outputs or a clean error. */
#include "fuzz.h"

#include "rotorquant.h"

#include <math.h>
#include <string.h>

#include "fuzz_seqload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!size) return 0;
    const seqload_config *sc = &SEQLOAD_CONFIGS[data[0] % SEQLOAD_N_CONFIGS];
    rq_cache *c = seqload_cache(sc);
    if (!c) return 0;
    rq_cache_seq_remove(c, 0);
    rq_last_error_clear();
    rq_status st = rq_cache_seq_load_mem(c, RQ_SEQ_ALL, data + 1, size - 1);
    if (st) {
        FUZZ_ASSERT(rq_cache_seq_ids(c, NULL, 0) == 0 && rq_cache_pages_in_use(c) == 0, "failed load changed nothing");
        FUZZ_ASSERT(rq_last_error()[0] != 0, "a failed load says why");
        rq_cache_free(c);
        return 0;
    }
    size_t n = 0;
    FUZZ_ASSERT(rq_cache_seq_save_mem(c, RQ_SEQ_ALL, NULL, 0, &n) == RQ_OK && n == size - 1,
                "saves back to as many bytes");
    int ids[8];
    size_t n_seqs = rq_cache_seq_ids(c, ids, 8);
    const int Hq = sc->n_kv_heads * 2;
    float q[2 * 2 * 64], out[2 * 2 * 64];
    for (int i = 0; i < Hq * sc->head_dim; i++) q[i] = (float)((i * 37) % 11) - 5.0f;
    rq_attn_params p = {.n_q_heads = Hq};
    for (size_t s = 0; s < n_seqs && s < 8; s++)
        for (int l = 0; l < sc->n_layers; l++) {
            st = rq_cache_seq_attention(c, ids[s], l, q, 1, NULL, &p, out);
            if (st) continue; /* e.g. RQ_ERR_RANGE: huge f32 keys */
            for (int i = 0; i < Hq * sc->head_dim; i++) FUZZ_ASSERT(isfinite(out[i]), "finite attention");
        }
    rq_cache_free(c);
    return 0;
}
