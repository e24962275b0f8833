/*
 * cuda_stub.c — the rq_cuda_* API in builds without CUDA (the default
 * `make`): no device, every call RQ_ERR_UNSUPPORTED. `make CUDA=1` drops this
 * file and links the src/cuda .cu instead.
 */
#include "internal.h"

int rq_cuda_available(void) { return 0; }
const char *rq_cuda_error_str(void) { return "built without CUDA (make CUDA=1)"; }

rq_status rq_cuda_device_name(char *buf, size_t n) {
    if (buf && n) buf[0] = 0;
    return RQ_ERR_UNSUPPORTED;
}

rq_status rq_cuda_malloc(void **d_ptr, size_t bytes) {
    (void)bytes;
    if (d_ptr) *d_ptr = NULL;
    return RQ_ERR_UNSUPPORTED;
}
void rq_cuda_free(void *d_ptr) { (void)d_ptr; }
rq_status rq_cuda_upload(void *d_dst, const void *src, size_t bytes) {
    (void)d_dst, (void)src, (void)bytes;
    return RQ_ERR_UNSUPPORTED;
}
rq_status rq_cuda_download(void *dst, const void *d_src, size_t bytes) {
    (void)dst, (void)d_src, (void)bytes;
    return RQ_ERR_UNSUPPORTED;
}
rq_status rq_cuda_memset(void *d_dst, int value, size_t bytes) {
    (void)d_dst, (void)value, (void)bytes;
    return RQ_ERR_UNSUPPORTED;
}
rq_status rq_cuda_synchronize(void) { return RQ_ERR_UNSUPPORTED; }

rq_status rq_cuda_quantizer_init(rq_cuda_quantizer **out, const rq_quantizer *q) {
    (void)q;
    if (out) *out = NULL;
    return RQ_ERR_UNSUPPORTED;
}
void rq_cuda_quantizer_free(rq_cuda_quantizer *g) { (void)g; }
rq_status rq_cuda_encode(rq_cuda_quantizer *g, const float *d_x, void *d_blocks, size_t n_vec, void *stream) {
    (void)g, (void)d_x, (void)d_blocks, (void)n_vec, (void)stream;
    return RQ_ERR_UNSUPPORTED;
}
rq_status rq_cuda_quantizer_check(rq_cuda_quantizer *g) {
    (void)g;
    return RQ_ERR_UNSUPPORTED;
}
rq_status rq_cuda_decode(const rq_cuda_quantizer *g, const void *d_blocks, float *d_x, size_t n_vec,
                         void *stream) {
    (void)g, (void)d_blocks, (void)d_x, (void)n_vec, (void)stream;
    return RQ_ERR_UNSUPPORTED;
}
rq_status rq_cuda_decode_f16(const rq_cuda_quantizer *g, const void *d_blocks, uint16_t *d_x, size_t n_vec,
                             void *stream) {
    (void)g, (void)d_blocks, (void)d_x, (void)n_vec, (void)stream;
    return RQ_ERR_UNSUPPORTED;
}

rq_status rq_cuda_attn_init(rq_cuda_attn **out, int n_q_heads, int n_kv_heads, int head_dim) {
    (void)n_q_heads, (void)n_kv_heads, (void)head_dim;
    if (out) *out = NULL;
    return RQ_ERR_UNSUPPORTED;
}
void rq_cuda_attn_free(rq_cuda_attn *a) { (void)a; }
void rq_cuda_attn_set_splits(rq_cuda_attn *a, int n_splits) { (void)a, (void)n_splits; }
/* test/benchmark hook of src/cuda/attention.cu (not in the public header) */
void rq__cuda_attn_force_simt(rq_cuda_attn *a, int on);
void rq__cuda_attn_force_simt(rq_cuda_attn *a, int on) { (void)a, (void)on; }
rq_status rq_cuda_attention(rq_cuda_attn *a, const rq_cuda_quantizer *k, const rq_cuda_quantizer *v,
                            const float *d_q, const void *d_k, const void *d_v, size_t n_tokens,
                            size_t kv_stride, float scale, float *d_out, void *stream) {
    (void)a, (void)k, (void)v, (void)d_q, (void)d_k, (void)d_v, (void)n_tokens, (void)kv_stride;
    (void)scale, (void)d_out, (void)stream;
    return RQ_ERR_UNSUPPORTED;
}
rq_status rq_cuda_attention_f16(rq_cuda_attn *a, const float *d_q, const uint16_t *d_k, const uint16_t *d_v,
                                size_t n_tokens, size_t kv_stride, float scale, float *d_out, void *stream) {
    (void)a, (void)d_q, (void)d_k, (void)d_v, (void)n_tokens, (void)kv_stride, (void)scale, (void)d_out;
    (void)stream;
    return RQ_ERR_UNSUPPORTED;
}
