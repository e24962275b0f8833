/* Helpers the forward passes share (model/llama.c, model/gemma3.c;
 * model/arch.c): hyperparameters from "<arch>.<key>" metadata, weight
 * tensors by name, aligned activations and RMS norm. Errors follow model/
 * convention: a status and a one-line reason in err. */
#ifndef RQ_MODEL_ARCH_H
#define RQ_MODEL_ARCH_H

#include <math.h>
#include <stddef.h>

#include "ggml.h"
#include "gguf.h"

/* "<arch>.<key>" as a positive integer ≤ 2^24 into *out; absent: RQ_OK with
 * *out unchanged unless required (then RQ_ERR_FORMAT). */
rq_status rqm_arch_int(const rqm_gguf *g, const char *arch, const char *key, int *out, int required, char *err,
                       size_t err_len);
/* "<arch>.<key>" as a positive finite number; absent: *out keeps its default. */
rq_status rqm_arch_float(const rqm_gguf *g, const char *arch, const char *key, double *out, char *err,
                         size_t err_len);
/* A 1-D F32 tensor of n elements. */
rq_status rqm_arch_vector(const rqm_gguf *g, const char *name, size_t n, const float **out, char *err,
                          size_t err_len);
/* A weight matrix of n_out rows of n_in (rqm_matrix_from_tensor). */
rq_status rqm_arch_matrix(const rqm_gguf *g, const char *name, size_t n_in, size_t n_out, rqm_matrix *m, char *err,
                          size_t err_len);
/* n floats, 64-byte aligned (the matmul kernels run faster on them); free(). */
float *rqm_alloc_f32(size_t n);

/* y[i] = x[i] / rms(x) · w[i], the sum of squares in double. */
static inline void rqm_rms_norm(const float *x, const float *w, float *y, size_t n, double eps) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (size_t i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

#endif
