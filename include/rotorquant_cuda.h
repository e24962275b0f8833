/*
 * rotorquant_cuda.h — the GPU side of librotorquant (built by `make CUDA=1`).
 */
#ifndef ROTORQUANT_CUDA_H
#define ROTORQUANT_CUDA_H

#include "rotorquant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * CUDA (src/cuda/, built by `make CUDA=1`; other builds answer every call
 * with RQ_ERR_UNSUPPORTED and rq_cuda_available() == 0). Pointers named d_*
 * are device memory; `stream` is a cudaStream_t (NULL = default stream) and
 * the calls that take one are asynchronous. A failing CUDA runtime call is
 * reported as RQ_ERR_UNSUPPORTED and rq_cuda_error_str() gives its text.
 * ------------------------------------------------------------------------- */
RQ_API int rq_cuda_available(void);          /* 1 if built with CUDA and a GPU is present */
RQ_API const char *rq_cuda_error_str(void);  /* last CUDA error seen, "" if none          */
RQ_API rq_status rq_cuda_device_name(char *buf, size_t n);
RQ_API rq_status rq_cuda_malloc(void **d_ptr, size_t bytes);
RQ_API void rq_cuda_free(void *d_ptr);
RQ_API rq_status rq_cuda_upload(void *d_dst, const void *src, size_t bytes);
RQ_API rq_status rq_cuda_download(void *dst, const void *d_src, size_t bytes);
RQ_API rq_status rq_cuda_memset(void *d_dst, int value, size_t bytes);
RQ_API rq_status rq_cuda_synchronize(void);

/* A quantizer's rotation, codebook and QJL matrix on the GPU. Serves every
 * MSE and PROD type (all rotation families) with head_dim ≤ 256; the blocks
 * are byte-identical to rq_quantizer_encode's. q may be freed afterwards. */
typedef struct rq_cuda_quantizer rq_cuda_quantizer;
RQ_API rq_status rq_cuda_quantizer_init(rq_cuda_quantizer **out, const rq_quantizer *q);
RQ_API void rq_cuda_quantizer_free(rq_cuda_quantizer *g);
/* d_x [n_vec][d] f32 → d_blocks [n_vec][bytes_per_vector], one fused launch.
 * A vector with NaN/Inf or a norm beyond fp16 gets an all-zero block and its
 * status is recorded; rq_cuda_quantizer_check() waits for the device and
 * returns (and clears) the first recorded status. */
RQ_API rq_status rq_cuda_encode(rq_cuda_quantizer *g, const float *d_x, void *d_blocks, size_t n_vec, void *stream);
RQ_API rq_status rq_cuda_quantizer_check(rq_cuda_quantizer *g);
/* Blocks → vectors (f32: the same floats as rq_quantizer_decode; f16: those
 * rounded to nearest even). */
RQ_API rq_status rq_cuda_decode(const rq_cuda_quantizer *g, const void *d_blocks, float *d_x, size_t n_vec,
                         void *stream);
RQ_API rq_status rq_cuda_decode_f16(const rq_cuda_quantizer *g, const void *d_blocks, uint16_t *d_x, size_t n_vec,
                             void *stream);

/* Decode attention of one new token over a contiguous compressed cache:
 * keys and values of KV head h are blocks d_k/d_v + (h·kv_stride + t)·bytes,
 * t < n_tokens (kv_stride 0 = n_tokens). d_q, d_out: [n_q_heads][head_dim];
 * query head i reads KV head i / (n_q_heads / n_kv_heads) (GQA).
 * out = Σ_t softmax_t(scale·<q, k_t>) v_t, scale 0 = 1/√head_dim. Split-K
 * over thread blocks; keys scored from their codes against the query rotated
 * once, values summed in the rotated domain, one inverse rotation at the
 * end. MSE key/value types (QJL `p` types are served by the CPU cache).
 * head_dim % 16 == 0 runs on the tensor cores with fp16 centroids (≤ 2^-11
 * relative per decoded coordinate, float accumulation); other head dims
 * (multiples of 8) on the CUDA cores in float.
 * The workspace (splits, rotated queries) is allocated by init only. */
typedef struct rq_cuda_attn rq_cuda_attn;
RQ_API rq_status rq_cuda_attn_init(rq_cuda_attn **out, int n_q_heads, int n_kv_heads, int head_dim);
RQ_API void rq_cuda_attn_free(rq_cuda_attn *a);
RQ_API void rq_cuda_attn_set_splits(rq_cuda_attn *a, int n_splits); /* 0 = automatic (default) */
RQ_API rq_status rq_cuda_attention(rq_cuda_attn *a, const rq_cuda_quantizer *k, const rq_cuda_quantizer *v,
                            const float *d_q, const void *d_k, const void *d_v, size_t n_tokens,
                            size_t kv_stride, float scale, float *d_out, void *stream);
/* The same over f16 keys and values [n_kv_heads][kv_stride][head_dim]
 * (16-byte aligned): the baseline the packed kernel is measured against. */
RQ_API rq_status rq_cuda_attention_f16(rq_cuda_attn *a, const float *d_q, const uint16_t *d_k, const uint16_t *d_v,
                                size_t n_tokens, size_t kv_stride, float scale, float *d_out, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* ROTORQUANT_CUDA_H */
