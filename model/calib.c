/*
 * calib.c — key-basis calibration: accumulate E[k kᵀ] and E[q qᵀ] per layer
 * and KV head (the query moment pooled over the heads of the GQA group, the
 * queries that score those keys), in double, then fit each head's basis
 * (rq_key_basis_fit, src/keybasis.c).
 */
#include "calib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct rqm_calib {
    rqm_llama_hparams hp;
    double *sk, *sq;  /* [layer][kv_head][d][d] sums        */
    size_t *nk, *nq;  /* [layer] keys and queries (per head) */
};

rq_status rqm_calib_init(rqm_calib **out, const rqm_llama_hparams *hp) {
    if (!out || !hp || hp->n_layers < 1 || hp->n_kv_heads < 1 || hp->head_dim < 1 ||
        hp->n_heads % hp->n_kv_heads)
        return RQ_ERR_INVALID_ARG;
    *out = NULL;
    rqm_calib *c = calloc(1, sizeof *c);
    if (!c) return RQ_ERR_NOMEM;
    c->hp = *hp;
    const size_t n = (size_t)hp->n_layers * (size_t)hp->n_kv_heads * (size_t)hp->head_dim * (size_t)hp->head_dim;
    c->sk = calloc(n, sizeof(double));
    c->sq = calloc(n, sizeof(double));
    c->nk = calloc((size_t)hp->n_layers, sizeof(size_t));
    c->nq = calloc((size_t)hp->n_layers, sizeof(size_t));
    if (!c->sk || !c->sq || !c->nk || !c->nq) {
        rqm_calib_free(c);
        return RQ_ERR_NOMEM;
    }
    *out = c;
    return RQ_OK;
}

void rqm_calib_free(rqm_calib *c) {
    if (!c) return;
    free(c->sk), free(c->sq), free(c->nk), free(c->nq);
    free(c);
}

/* S += x xᵀ (upper triangle; mirrored in fit) */
static void add_outer(double *S, const float *x, size_t d) {
    for (size_t i = 0; i < d; i++) {
        const double xi = x[i];
        double *row = S + i * d;
        for (size_t j = i; j < d; j++) row[j] += xi * x[j];
    }
}

rq_status rqm_calib_observe(void *calib, const rqm_layer_event *ev) {
    rqm_calib *c = calib;
    if (!c || !ev || ev->layer < 0 || ev->layer >= c->hp.n_layers) return RQ_ERR_INVALID_ARG;
    const size_t D = (size_t)c->hp.head_dim, G = (size_t)c->hp.n_kv_heads, H = (size_t)c->hp.n_heads;
    const size_t group = H / G, L = (size_t)ev->layer;
    for (size_t t = 0; t < ev->n_tokens; t++)
        for (size_t g = 0; g < G; g++) {
            add_outer(c->sk + (L * G + g) * D * D, ev->k + (t * G + g) * D, D);
            for (size_t h = g * group; h < (g + 1) * group; h++)
                add_outer(c->sq + (L * G + g) * D * D, ev->q + (t * H + h) * D, D);
        }
    c->nk[L] += ev->n_tokens;
    c->nq[L] += ev->n_tokens * group;
    return RQ_OK;
}

size_t rqm_calib_tokens(const rqm_calib *c) { return c ? c->nk[0] : 0; }

rq_status rqm_calib_fit(const rqm_calib *c, float *basis) {
    if (!c || !basis) return RQ_ERR_INVALID_ARG;
    const size_t D = (size_t)c->hp.head_dim, G = (size_t)c->hp.n_kv_heads;
    double *k = malloc(sizeof(double) * D * D), *q = malloc(sizeof(double) * D * D);
    rq_status st = k && q ? RQ_OK : RQ_ERR_NOMEM;
    for (size_t l = 0; l < (size_t)c->hp.n_layers && !st; l++) {
        if (!c->nk[l]) st = RQ_ERR_INVALID_ARG; /* nothing observed */
        for (size_t g = 0; g < G && !st; g++) {
            const double *sk = c->sk + (l * G + g) * D * D, *sq = c->sq + (l * G + g) * D * D;
            for (size_t i = 0; i < D; i++)
                for (size_t j = i; j < D; j++) {
                    k[i * D + j] = k[j * D + i] = sk[i * D + j] / (double)c->nk[l];
                    q[i * D + j] = q[j * D + i] = sq[i * D + j] / (double)c->nq[l];
                }
            st = rq_key_basis_fit(k, q, (int)D, basis + (l * G + g) * D * D);
        }
    }
    free(k), free(q);
    return st;
}

rq_status rqm_key_basis_save(const char *path, const rqm_llama_hparams *hp, const float *basis) {
    if (!path || !hp || !basis) return RQ_ERR_INVALID_ARG;
    const size_t shape[4] = {(size_t)hp->n_layers, (size_t)hp->n_kv_heads, (size_t)hp->head_dim,
                             (size_t)hp->head_dim};
    return rq_npy_write(path, basis, 4, shape);
}

rq_status rqm_key_basis_load(const char *path, const rqm_llama_hparams *hp, float **out, char *err,
                             size_t err_len) {
    if (!path || !hp || !out) return RQ_ERR_INVALID_ARG;
    *out = NULL;
    rq_npy_array a;
    rq_status st = rq_npy_read(path, &a);
    if (st) {
        st = rqm_say(err, err_len, st, "%s", a.error[0] ? a.error : rq_status_str(st));
        rq_npy_free(&a);
        return st;
    }
    const size_t want[4] = {(size_t)hp->n_layers, (size_t)hp->n_kv_heads, (size_t)hp->head_dim,
                            (size_t)hp->head_dim};
    if (a.n_dims != 4 || a.shape[0] != want[0] || a.shape[1] != want[1] || a.shape[2] != want[2] ||
        a.shape[3] != want[3]) {
        rq_npy_free(&a);
        return rqm_say(err, err_len, RQ_ERR_SHAPE,
                       "a key basis for this model has shape (%zu, %zu, %zu, %zu) (layers, KV heads, head_dim, "
                       "head_dim)",
                       want[0], want[1], want[2], want[3]);
    }
    const size_t n = want[0] * want[1] * want[2] * want[3];
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a.data[i])) {
            rq_npy_free(&a);
            return rqm_say(err, err_len, RQ_ERR_NONFINITE, "value %zu is not finite", i);
        }
    float *b = malloc(sizeof(float) * n);
    if (!b) {
        rq_npy_free(&a);
        return RQ_ERR_NOMEM;
    }
    memcpy(b, a.data, sizeof(float) * n);
    rq_npy_free(&a);
    *out = b;
    return RQ_OK;
}
