/* One vector through a quantizer and back, optionally through a key basis
 * (model/roundtrip.c): what the cache's attention sees of a stored key. */
#ifndef RQ_MODEL_ROUNDTRIP_H
#define RQ_MODEL_ROUNDTRIP_H

#include <stddef.h>
#include <stdint.h>

#include "rotorquant.h"

/* out = decode(encode(x)) by q; with a key basis A (d×d, row-major) and
 * At = A⁻ᵀ (rq_key_basis_inverse_t), through it: out = A⁻¹ decode(encode(A x)),
 * the key the cache's scores see (rq_cache_set_key_basis). d = q's dimension
 * (≤ RQ_MAX_DIMS); blk holds one encoded vector (rq_quantizer_bytes_per_vector).
 * A and At both NULL: no basis. Errors of encode/decode. */
rq_status rqm_key_roundtrip(const rq_quantizer *q, const float *A, const float *At, const float *x, size_t d,
                            uint8_t *blk, float *out);

#endif
