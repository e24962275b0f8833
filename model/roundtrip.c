/*
 * roundtrip.c — x̂ = A⁻¹ decode(encode(A x)) (model/roundtrip.h). The
 * products accumulate in double, as the library's reference attention
 * applies a key basis.
 */
#include "roundtrip.h"

rq_status rqm_key_roundtrip(const rq_quantizer *q, const float *A, const float *At, const float *x, size_t d,
                            uint8_t *blk, float *out) {
    float y[RQ_MAX_DIMS], z[RQ_MAX_DIMS];
    if ((A != NULL) != (At != NULL) || d > RQ_MAX_DIMS) return RQ_ERR_INVALID_ARG;
    rq_status st;
    if (A) {
        for (size_t i = 0; i < d; i++) {
            double acc = 0;
            for (size_t j = 0; j < d; j++) acc += (double)A[i * d + j] * x[j];
            y[i] = (float)acc;
        }
        st = rq_quantizer_encode(q, y, blk, 1);
    } else {
        st = rq_quantizer_encode(q, x, blk, 1);
    }
    if (!st) st = rq_quantizer_decode(q, blk, A ? z : out, 1);
    if (!st && A)
        for (size_t i = 0; i < d; i++) { /* A⁻¹ = (A⁻ᵀ)ᵀ */
            double acc = 0;
            for (size_t j = 0; j < d; j++) acc += (double)At[j * d + i] * z[j];
            out[i] = (float)acc;
        }
    return st;
}
