/* GGUF reader (model/gguf.c): header v2/v3, every metadata value type
 * (nested arrays included), tensor infos, alignment, memory-mapped data.
 * Every length, count and offset is validated against the file size before
 * it is used; a malformed or truncated file gives RQ_ERR_FORMAT or
 * RQ_ERR_TRUNCATED and a one-line reason in `err`, never a crash.
 * Layout reference: ../shared/research/real_model.md §3. */
#ifndef RQ_MODEL_GGUF_H
#define RQ_MODEL_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "ggml_types.h"
#include "rotorquant.h"
#include "util.h"

typedef enum {
    RQM_GGUF_U8 = 0, RQM_GGUF_I8 = 1, RQM_GGUF_U16 = 2, RQM_GGUF_I16 = 3,
    RQM_GGUF_U32 = 4, RQM_GGUF_I32 = 5, RQM_GGUF_F32 = 6, RQM_GGUF_BOOL = 7,
    RQM_GGUF_STRING = 8, RQM_GGUF_ARRAY = 9, RQM_GGUF_U64 = 10, RQM_GGUF_I64 = 11,
    RQM_GGUF_F64 = 12,
} rqm_gguf_vtype;

typedef struct {
    rqm_str key;
    rqm_gguf_vtype type;
    /* scalars: */
    union { uint64_t u; int64_t i; double f; rqm_str s; } v;
    /* arrays (type == RQM_GGUF_ARRAY): element type, count, raw element bytes
     * (for fixed-size element types) or the first element (strings, nested
     * arrays; walk them with rqm_gguf_array_str). */
    rqm_gguf_vtype arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;
} rqm_gguf_kv;

typedef struct {
    rqm_str name;
    uint32_t n_dims;
    uint64_t ne[4];      /* ne[0] = row length (contiguous), unused dims = 1 */
    rqm_ggml_type type;
    uint64_t offset;     /* relative to the data section                    */
    const void *data;    /* pointer into the mapping                        */
    uint64_t n_bytes;
} rqm_tensor;

typedef struct rqm_gguf rqm_gguf;

/* Open and validate a file (memory-mapped, read-only). Besides every
 * bound, these are errors (RQ_ERR_FORMAT): version other than 2 or 3,
 * unknown value or ggml types, arrays nested deeper than 8, keys longer than
 * 65535 bytes or empty, duplicate keys or tensor names, tensor names longer
 * than 256 bytes, n_dims outside 1..4, a zero dim, an element count above
 * 2^63 − 1, a row that is not whole blocks, general.alignment not a u32
 * power of two (default 32), an offset not a multiple of it, overlapping
 * tensors; a tensor or count reaching past the end is RQ_ERR_TRUNCATED,
 * open/mmap failures RQ_ERR_IO. Tensor data are aligned to 8 bytes (at
 * least) whatever the file's alignment: data a small general.alignment
 * leaves off that boundary are copied at open. */
rq_status rqm_gguf_open(rqm_gguf **out, const char *path, char *err, size_t err_len);
/* The same on a caller's buffer (not copied; must outlive the handle). */
rq_status rqm_gguf_open_memory(rqm_gguf **out, const void *buf, size_t len, char *err, size_t err_len);
void rqm_gguf_close(rqm_gguf *g);

uint32_t rqm_gguf_version(const rqm_gguf *g);
size_t rqm_gguf_n_kv(const rqm_gguf *g);
const rqm_gguf_kv *rqm_gguf_kv_at(const rqm_gguf *g, size_t i);
/* Lookup by key; NULL if absent. */
const rqm_gguf_kv *rqm_gguf_find(const rqm_gguf *g, const char *key);
/* Typed getters: RQ_OK, or RQ_ERR_FORMAT if the key is absent or has a type
 * that cannot represent the request (get_u64: any integer type or bool with
 * a value ≥ 0; get_f64: f32, f64 or any integer type). */
rq_status rqm_gguf_get_u64(const rqm_gguf *g, const char *key, uint64_t *out);
rq_status rqm_gguf_get_f64(const rqm_gguf *g, const char *key, double *out);
rq_status rqm_gguf_get_str(const rqm_gguf *g, const char *key, rqm_str *out);
/* i-th element of an array of strings (i < arr_n; RQ_ERR_INVALID_ARG
 * otherwise or for a kv not from g, RQ_ERR_FORMAT if kv is not a string
 * array). All top-level string arrays are indexed at open time, so this is
 * O(1). */
rq_status rqm_gguf_array_str(const rqm_gguf *g, const rqm_gguf_kv *kv, uint64_t i, rqm_str *out);
/* i-th element of a numeric (or bool) array, converted; RQ_ERR_FORMAT for
 * arrays of strings or arrays, RQ_ERR_INVALID_ARG for i ≥ arr_n. */
rq_status rqm_gguf_array_f64(const rqm_gguf_kv *kv, uint64_t i, double *out);

size_t rqm_gguf_n_tensors(const rqm_gguf *g);
const rqm_tensor *rqm_gguf_tensor_at(const rqm_gguf *g, size_t i);
const rqm_tensor *rqm_gguf_tensor(const rqm_gguf *g, const char *name); /* NULL if absent */

#endif
