/* gguf_build.h — writes small GGUF files in memory for the tests (model
 * loading, malformed-file checks). Test code: aborts on allocation failure. */
#ifndef RQ_TEST_GGUF_BUILD_H
#define RQ_TEST_GGUF_BUILD_H

#include <stddef.h>
#include <stdint.h>

typedef struct rqm_gguf_builder rqm_gguf_builder;

rqm_gguf_builder *rqm_gguf_builder_new(void);
void rqm_gguf_builder_free(rqm_gguf_builder *b);
/* Metadata; a key set twice keeps the last value (in the first position). */
void rqm_gguf_builder_kv_str(rqm_gguf_builder *b, const char *key, const char *value);
void rqm_gguf_builder_kv_u32(rqm_gguf_builder *b, const char *key, uint32_t value);
void rqm_gguf_builder_kv_f32(rqm_gguf_builder *b, const char *key, float value);
/* A raw value of any GGUF type: `type` (u32) followed by value bytes. */
void rqm_gguf_builder_kv_raw(rqm_gguf_builder *b, const char *key, uint32_t type, const void *value, size_t n);
/* An f32 tensor [ne0, ne1] (ne1 = 1: 1-D), data copied. */
void rqm_gguf_builder_tensor_f32(rqm_gguf_builder *b, const char *name, const float *data, size_t ne0,
                                 size_t ne1);
/* A tensor of any ggml type with its raw bytes. */
void rqm_gguf_builder_tensor_raw(rqm_gguf_builder *b, const char *name, uint32_t ggml_type, size_t ne0, size_t ne1,
                                 const void *data, size_t n_bytes);
void rqm_gguf_builder_drop_tensor(rqm_gguf_builder *b, const char *name);
/* The file (version 3, alignment 32 or a u32 general.alignment ≤ 1024 set
 * with rqm_gguf_builder_kv_u32); valid until the next call on b. */
const void *rqm_gguf_builder_bytes(rqm_gguf_builder *b, size_t *len);

#endif
