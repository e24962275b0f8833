/*
 * ggml_types.c — name, block elements and block bytes of every ggml tensor
 * type the GGUF reader knows (model/ggml_types.h). model/ggml.c pins the
 * byte counts of the types it dequantizes to its block structs.
 */
#include "ggml_types.h"

#define QK 32    /* elements per block of the 32-element types */
#define QK_K 256 /* elements per K-quant super-block           */

typedef struct {
    const char *name;
    uint16_t elems, bytes;
} type_size;

#define N_TYPES 31
static const type_size SIZES[N_TYPES] = {
    [RQM_GGML_F32] = {"f32", 1, 4},
    [RQM_GGML_F16] = {"f16", 1, 2},
    [RQM_GGML_Q4_0] = {"q4_0", QK, 18},
    [RQM_GGML_Q4_1] = {"q4_1", QK, 20},
    [RQM_GGML_Q5_0] = {"q5_0", QK, 22},
    [RQM_GGML_Q5_1] = {"q5_1", QK, 24},
    [RQM_GGML_Q8_0] = {"q8_0", QK, 34},
    [RQM_GGML_Q8_1] = {"q8_1", QK, 36},
    [RQM_GGML_Q2_K] = {"q2_K", QK_K, 84},
    [RQM_GGML_Q3_K] = {"q3_K", QK_K, 110},
    [RQM_GGML_Q4_K] = {"q4_K", QK_K, 144},
    [RQM_GGML_Q5_K] = {"q5_K", QK_K, 176},
    [RQM_GGML_Q6_K] = {"q6_K", QK_K, 210},
    [RQM_GGML_Q8_K] = {"q8_K", QK_K, 292},
    [RQM_GGML_I8] = {"i8", 1, 1},
    [RQM_GGML_I16] = {"i16", 1, 2},
    [RQM_GGML_I32] = {"i32", 1, 4},
    [RQM_GGML_I64] = {"i64", 1, 8},
    [RQM_GGML_F64] = {"f64", 1, 8},
    [RQM_GGML_BF16] = {"bf16", 1, 2},
};

static const type_size *size_of(rqm_ggml_type t) {
    return (unsigned)t < N_TYPES && SIZES[t].elems ? &SIZES[t] : NULL;
}

size_t rqm_ggml_block_elems(rqm_ggml_type t) { return size_of(t) ? size_of(t)->elems : 0; }
size_t rqm_ggml_block_bytes(rqm_ggml_type t) { return size_of(t) ? size_of(t)->bytes : 0; }
const char *rqm_ggml_type_name(rqm_ggml_type t) { return size_of(t) ? size_of(t)->name : "?"; }

size_t rqm_ggml_row_bytes(rqm_ggml_type t, uint64_t n) {
    const type_size *ts = size_of(t);
    if (!ts || n % ts->elems || n / ts->elems > SIZE_MAX / ts->bytes) return 0;
    return (size_t)(n / ts->elems) * ts->bytes;
}
