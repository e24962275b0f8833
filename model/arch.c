/* arch.c — helpers shared by the forward passes (model/arch.h). */
#include "arch.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

rq_status rqm_arch_int(const rqm_gguf *g, const char *arch, const char *key, int *out, int required, char *err,
                       size_t err_len) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", arch, key);
    uint64_t u;
    if (!rqm_gguf_find(g, name)) {
        if (!required) return RQ_OK;
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "GGUF metadata lacks %s", name);
    }
    if (rqm_gguf_get_u64(g, name, &u) != RQ_OK || u == 0 || u > (1u << 24))
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "GGUF metadata %s is not a positive integer of sane size", name);
    *out = (int)u;
    return RQ_OK;
}

rq_status rqm_arch_float(const rqm_gguf *g, const char *arch, const char *key, double *out, char *err,
                         size_t err_len) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", arch, key);
    if (!rqm_gguf_find(g, name)) return RQ_OK; /* keep the default */
    double f;
    if (rqm_gguf_get_f64(g, name, &f) != RQ_OK || !(f > 0) || !isfinite(f))
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "GGUF metadata %s is not a positive number", name);
    *out = f;
    return RQ_OK;
}

rq_status rqm_arch_vector(const rqm_gguf *g, const char *name, size_t n, const float **out, char *err,
                          size_t err_len) {
    const rqm_tensor *t = rqm_gguf_tensor(g, name);
    if (!t) return rqm_say(err, err_len, RQ_ERR_FORMAT, "tensor %s not found", name);
    if (t->type != RQM_GGML_F32 || t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "tensor %s: expected f32 [%zu]", name, n);
    *out = (const float *)t->data;
    return RQ_OK;
}

rq_status rqm_arch_matrix(const rqm_gguf *g, const char *name, size_t n_in, size_t n_out, rqm_matrix *m, char *err,
                          size_t err_len) {
    const rqm_tensor *t = rqm_gguf_tensor(g, name);
    if (!t) return rqm_say(err, err_len, RQ_ERR_FORMAT, "tensor %s not found", name);
    return rqm_matrix_from_tensor(m, t, n_in, n_out, err, err_len);
}

float *rqm_alloc_f32(size_t n) { return aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64); }
