/* fuzz_keybasis.c — the key-basis file reader (what `rotorquant
 * calibrate` writes) on arbitrary bytes: rq_key_basis_load_mem, and for an
 * accepted file a round trip — saved again it must load to the same shape
 * and the same floats — and installation into a cache of its shape.
 * Properties: never crashes; an error always comes with a message; an
 * accepted file holds only finite floats and survives the round trip. */
#include "fuzz.h"

#include "rotorquant.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rq_key_basis_info info;
    float *basis = NULL;
    rq_last_error_clear();
    rq_status st = rq_key_basis_load_mem(data, size, &info, &basis);
    if (st != RQ_OK) {
        FUZZ_ASSERT(rq_last_error()[0] != 0, "a refused file has a message");
        FUZZ_ASSERT(basis == NULL, "no array on error");
        return 0;
    }
    const size_t n = (size_t)info.n_layers * info.n_kv_heads * info.n_ranges * info.head_dim * info.head_dim;
    for (size_t i = 0; i < n; i++) FUZZ_ASSERT(isfinite(basis[i]), "finite floats");
    if (n <= (1u << 16)) {
        char path[] = "/tmp/rq_fuzz_kb_XXXXXX";
        int fd = mkstemp(path);
        if (fd >= 0) {
            close(fd);
            rq_key_basis_info again;
            float *b2 = NULL;
            FUZZ_ASSERT(rq_key_basis_save(path, &info, basis) == RQ_OK, "an accepted file saves again");
            FUZZ_ASSERT(rq_key_basis_load(path, &again, &b2) == RQ_OK, "and loads again");
            FUZZ_ASSERT(again.n_layers == info.n_layers && again.n_kv_heads == info.n_kv_heads &&
                            again.head_dim == info.head_dim && again.n_ranges == info.n_ranges,
                        "same shape");
            FUZZ_ASSERT(memcmp(b2, basis, n * sizeof *basis) == 0, "same floats");
            free(b2);
            unlink(path);
        }
        rq_cache_config cfg = rq_cache_config_default();
        cfg.n_layers = info.n_layers, cfg.n_kv_heads = info.n_kv_heads, cfg.head_dim = info.head_dim;
        cfg.type_k = cfg.type_v = "q8_0";
        rq_cache *c = NULL;
        if (rq_cache_init(&c, &cfg) == RQ_OK) {
            rq_cache_set_key_bases(c, &info, basis); /* may refuse an ill-conditioned A: no crash */
            rq_cache_free(c);
        }
    }
    free(basis);
    return 0;
}
