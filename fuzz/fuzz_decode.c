/* fuzz_decode.c — rq_quantizer_decode and rq_quantizer_dot on arbitrary
 * packed blocks of every registry type and several head dims. The first two
 * bytes pick the type and the head dim; the rest are blocks.
 * Properties: never crashes; decode and dot agree on whether the blocks are
 * well formed; an accepted block decodes to finite values and a dot that
 * succeeds is finite (a product past float is RQ_ERR_RANGE) (a block the
 * encoder could never write — a NaN/Inf norm or scale — is an error, not
 * NaN output); decoding is deterministic; a decoded vector encodes again
 * without error when it is in range. */
#include "fuzz.h"

#include "rotorquant.h"

#include <math.h>
#include <string.h>

static const int DIMS[] = {2, 3, 4, 8, 31, 32, 64, 96, 128, 256};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    enum { N_DIMS = sizeof DIMS / sizeof DIMS[0], MAX_TYPES = 128 };
    /* quantizers are immutable: built once per (type, dim), kept for the run */
    static rq_quantizer *cache[MAX_TYPES][N_DIMS];
    static signed char tried[MAX_TYPES][N_DIMS];
    const int ti = (int)(fuzz_u8(&in) % (unsigned)rq_type_count()), di = (int)(fuzz_u8(&in) % N_DIMS);
    if (ti >= MAX_TYPES) return 0;
    const rq_type_info *t = rq_type_at(ti);
    const int d = DIMS[di];
    if (!tried[ti][di]) {
        tried[ti][di] = 1;
        if (rq_quantizer_init(&cache[ti][di], t->name, d, NULL) != RQ_OK) cache[ti][di] = NULL;
    }
    const rq_quantizer *q = cache[ti][di];
    if (!q) return 0; /* a head dim the type does not serve */
    const size_t bpv = rq_quantizer_bytes_per_vector(q);
    const size_t n = in.n / bpv;
    if (n == 0 || n > 64) return 0;
    float *x = malloc(n * d * sizeof *x), *x2 = malloc(n * d * sizeof *x2);
    float *y = malloc(d * sizeof *y), *dots = malloc(n * sizeof *dots);
    unsigned char *again = malloc(n * bpv);
    for (int j = 0; j < d; j++) y[j] = (float)(j % 7) - 3.0f;

    rq_status sd = rq_quantizer_decode(q, in.p, x, n);
    rq_status sp = rq_quantizer_dot(q, y, in.p, n, dots);
    /* both refuse a malformed block; dot alone may find a product past float */
    FUZZ_ASSERT(sd == RQ_OK ? (sp == RQ_OK || sp == RQ_ERR_RANGE) : sp == sd, t->name);
    if (sd == RQ_OK) {
        for (size_t i = 0; i < n * (size_t)d; i++) FUZZ_ASSERT(isfinite(x[i]), t->name);
        if (sp == RQ_OK)
            for (size_t i = 0; i < n; i++) FUZZ_ASSERT(isfinite(dots[i]), t->name);
        FUZZ_ASSERT(rq_quantizer_decode(q, in.p, x2, n) == RQ_OK, t->name);
        FUZZ_ASSERT(memcmp(x, x2, n * d * sizeof *x) == 0, "decode is deterministic");
        rq_status se = rq_quantizer_encode(q, x, again, n);
        FUZZ_ASSERT(se == RQ_OK || se == RQ_ERR_RANGE, t->name);
    }
    free(x);
    free(x2);
    free(y);
    free(dots);
    free(again);
    return 0;
}
