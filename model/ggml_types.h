/* ggml tensor types (model/ggml_types.c): the type numbers and the size
 * traits the GGUF reader needs to lay out tensors. The dequantizers and
 * matrix products live in model/ggml.h. Block layouts as in ggml's
 * ggml-common.h. */
#ifndef RQ_MODEL_GGML_TYPES_H
#define RQ_MODEL_GGML_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* ggml tensor types the reader knows (numbers as in ggml). Files with the
 * types of the second group open (their sizes are known) but have no
 * dequantizer (rqm_matrix_from_tensor says RQ_ERR_UNSUPPORTED). */
typedef enum {
    RQM_GGML_F32 = 0, RQM_GGML_F16 = 1, RQM_GGML_Q4_0 = 2, RQM_GGML_Q4_1 = 3,
    RQM_GGML_Q5_0 = 6, RQM_GGML_Q5_1 = 7, RQM_GGML_Q8_0 = 8, RQM_GGML_Q4_K = 12,
    RQM_GGML_Q5_K = 13, RQM_GGML_Q6_K = 14,
    RQM_GGML_Q8_1 = 9, RQM_GGML_Q2_K = 10, RQM_GGML_Q3_K = 11, RQM_GGML_Q8_K = 15,
    RQM_GGML_I8 = 24, RQM_GGML_I16 = 25, RQM_GGML_I32 = 26, RQM_GGML_I64 = 27,
    RQM_GGML_F64 = 28, RQM_GGML_BF16 = 30,
} rqm_ggml_type;

/* Elements per block and bytes per block; 0 for unknown types. */
size_t rqm_ggml_block_elems(rqm_ggml_type t);
size_t rqm_ggml_block_bytes(rqm_ggml_type t);
const char *rqm_ggml_type_name(rqm_ggml_type t); /* "q4_1", ...; "?" if unknown */
/* Bytes of a row of n elements; 0 if t is unknown or n is not a multiple of
 * the block size. */
size_t rqm_ggml_row_bytes(rqm_ggml_type t, uint64_t n);

#endif
