/*
 * calib.c — key-basis calibration: accumulate E[k kᵀ] and E[q qᵀ] per layer
 * and KV head (the query moment pooled over the heads of the GQA group, the
 * queries that score those keys), in double, then fit each head's basis
 * (rq_key_basis_fit, src/keybasis.c).
 */
#include "calib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rqm_calib {
    rqm_llama_hparams hp;
    size_t n_ranges;
    size_t start[RQM_KB_MAX_RANGES];
    double *sk, *sq;  /* [layer][kv_head][range][d][d] sums: keys at, queries at positions of the range */
    size_t *nk, *nq;  /* [layer][range] keys and queries per head                                       */
};

size_t rqm_key_basis_ranges(size_t n_ctx, size_t max_ranges, size_t *start) {
    if (max_ranges < 1 || max_ranges > RQM_KB_MAX_RANGES) max_ranges = RQM_KB_MAX_RANGES;
    size_t n = 0;
    start[n++] = 0;
    /* a range starts at 256·2^k when at least half of [s, 2s) is in use:
     * no last range of a few positions with too few keys to fit */
    for (size_t s = 256; s + s / 2 <= n_ctx && n < max_ranges; s *= 2) start[n++] = s;
    return n;
}

size_t rqm_key_basis_range(const size_t *start, size_t n_ranges, size_t pos) {
    size_t r = n_ranges - 1;
    while (r > 0 && start[r] > pos) r--;
    return r;
}

rq_status rqm_calib_init(rqm_calib **out, const rqm_llama_hparams *hp, size_t n_ctx, size_t max_ranges) {
    if (!out || !hp || hp->n_layers < 1 || hp->n_kv_heads < 1 || hp->head_dim < 1 ||
        hp->n_heads % hp->n_kv_heads || n_ctx < 1)
        return RQ_ERR_INVALID_ARG;
    *out = NULL;
    rqm_calib *c = calloc(1, sizeof *c);
    if (!c) return RQ_ERR_NOMEM;
    c->hp = *hp;
    c->n_ranges = rqm_key_basis_ranges(n_ctx, max_ranges, c->start);
    const size_t R = c->n_ranges, L = (size_t)hp->n_layers;
    const size_t n = L * (size_t)hp->n_kv_heads * R * (size_t)hp->head_dim * (size_t)hp->head_dim;
    c->sk = calloc(n, sizeof(double));
    c->sq = calloc(n, sizeof(double));
    c->nk = calloc(L * R, sizeof(size_t));
    c->nq = calloc(L * R, sizeof(size_t));
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

size_t rqm_calib_ranges(const rqm_calib *c, const size_t **start) {
    if (!c) return 0;
    if (start) *start = c->start;
    return c->n_ranges;
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
    const size_t group = H / G, L = (size_t)ev->layer, R = c->n_ranges;
    for (size_t t = 0; t < ev->n_tokens; t++) {
        const size_t pos = ev->pos0 + t;
        const size_t r = rqm_key_basis_range(c->start, R, pos);
        for (size_t g = 0; g < G; g++) {
            const size_t off = ((L * G + g) * R + r) * D * D;
            add_outer(c->sk + off, ev->k + (t * G + g) * D, D);
            for (size_t h = g * group; h < (g + 1) * group; h++) add_outer(c->sq + off, ev->q + (t * H + h) * D, D);
        }
        c->nk[L * R + r]++;
        c->nq[L * R + r] += group;
    }
    return RQ_OK;
}

size_t rqm_calib_tokens(const rqm_calib *c) {
    size_t n = 0;
    for (size_t r = 0; c && r < c->n_ranges; r++) n += c->nk[r];
    return n;
}

/* Range r's basis: keys at the range's positions; the queries that read
 * them, i.e. every query at a position ≥ start[r] (ranges r..R−1). */
rq_status rqm_calib_fit(const rqm_calib *c, float *basis) {
    if (!c || !basis) return RQ_ERR_INVALID_ARG;
    const size_t D = (size_t)c->hp.head_dim, G = (size_t)c->hp.n_kv_heads, R = c->n_ranges;
    double *k = malloc(sizeof(double) * D * D), *q = malloc(sizeof(double) * D * D);
    rq_status st = k && q ? RQ_OK : RQ_ERR_NOMEM;
    for (size_t l = 0; l < (size_t)c->hp.n_layers && !st; l++)
        for (size_t g = 0; g < G && !st; g++)
            for (size_t r = 0; r < R && !st; r++) {
                const size_t nk = c->nk[l * R + r];
                size_t nq = 0;
                for (size_t u = r; u < R; u++) nq += c->nq[l * R + u];
                if (!nk || !nq) { /* a range nothing was observed in */
                    st = RQ_ERR_INVALID_ARG;
                    break;
                }
                const double *sk = c->sk + ((l * G + g) * R + r) * D * D;
                for (size_t i = 0; i < D; i++)
                    for (size_t j = i; j < D; j++) {
                        double a = 0;
                        for (size_t u = r; u < R; u++) a += c->sq[((l * G + g) * R + u) * D * D + i * D + j];
                        k[i * D + j] = k[j * D + i] = sk[i * D + j] / (double)nk;
                        q[i * D + j] = q[j * D + i] = a / (double)nq;
                    }
                st = rq_key_basis_fit(k, q, (int)D, basis + ((l * G + g) * R + r) * D * D);
            }
    free(k), free(q);
    return st;
}

/* ---- the basis file: the library's (rq_key_basis_save/_load,
 * src/keybasis_io.c), checked here against the model's shape */
_Static_assert(RQM_KB_MAX_RANGES == RQ_KEY_BASIS_MAX_RANGES, "the model's range limit is the file format's");

static rq_key_basis_info lib_info(const rqm_llama_hparams *hp, const rqm_key_basis_info *info) {
    rq_key_basis_info li;
    memset(&li, 0, sizeof li);
    li.n_layers = hp->n_layers, li.n_kv_heads = hp->n_kv_heads, li.head_dim = hp->head_dim;
    li.n_ranges = info->n_ranges;
    memcpy(li.start, info->start, sizeof li.start);
    li.n_ctx = info->n_ctx > 0 ? (size_t)info->n_ctx : 0;
    li.n_tokens = info->n_tokens > 0 ? (size_t)info->n_tokens : 0;
    li.self_generated = info->self_generated != 0;
    return li;
}

rq_status rqm_key_basis_save(const char *path, const rqm_llama_hparams *hp, const float *basis,
                             const rqm_key_basis_info *info) {
    if (!path || !hp || !basis || !info || info->n_ctx < 1 || info->n_ranges < 1 ||
        info->n_ranges > RQM_KB_MAX_RANGES || info->start[0] != 0)
        return RQ_ERR_INVALID_ARG;
    const rq_key_basis_info li = lib_info(hp, info);
    return rq_key_basis_save(path, &li, basis);
}

/* The library's message without its "rq_key_basis_load: PATH: " prefix (the
 * caller names the file). */
static void copy_error(char *err, size_t err_len, const char *path) {
    const char *m = rq_last_error();
    const char *p = strstr(m, path);
    if (p && p[strlen(path)] == ':' && p[strlen(path) + 1] == ' ') m = p + strlen(path) + 2;
    if (err && err_len) snprintf(err, err_len, "%s", m);
}

rq_status rqm_key_basis_load(const char *path, const rqm_llama_hparams *hp, float **out, rqm_key_basis_info *info,
                             char *err, size_t err_len) {
    if (!path || !hp || !out) return RQ_ERR_INVALID_ARG;
    *out = NULL;
    rq_key_basis_info li;
    float *b = NULL;
    rq_status st = rq_key_basis_load(path, &li, &b);
    if (st) {
        copy_error(err, err_len, path);
        return st;
    }
    const uint64_t dd = (uint64_t)hp->head_dim * (uint64_t)hp->head_dim;
    if (li.head_dim != hp->head_dim || li.n_kv_heads != hp->n_kv_heads || li.n_layers != hp->n_layers) {
        free(b);
        return rqm_say(err, err_len, RQ_ERR_SHAPE,
                       "a key basis for this model is f32 [%llu, ranges, %d, %d] (head_dim², ranges, KV heads, "
                       "layers); this one is for head_dim %d, %d KV heads, %d layers",
                       (unsigned long long)dd, hp->n_kv_heads, hp->n_layers, li.head_dim, li.n_kv_heads, li.n_layers);
    }
    if (info) {
        memset(info, 0, sizeof *info);
        info->n_ctx = (long)li.n_ctx, info->n_tokens = (long)li.n_tokens, info->self_generated = li.self_generated;
        info->n_ranges = li.n_ranges;
        memcpy(info->start, li.start, sizeof info->start);
    }
    *out = b;
    return RQ_OK;
}
