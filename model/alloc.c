/*
 * alloc.c — per-layer K-only / V-only costs for a bits budget (alloc.h).
 *
 * Why output error: bench/fidelity/FINDINGS.md's proxy ranks real KLD with
 * Spearman 0.991 from the summed relative attention output error alone, and
 * its allocator found the K-only and V-only costs additive (joint within
 * 2%). Measured here with the library's own caches (the fused attention of
 * a one-layer rq_cache), so the cost is that of exactly the blocks, seeds,
 * centring and norm correction the evaluated cache will use.
 */
#include "alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* FINDINGS.md's proxy of `perplexity` mean KLD: a·Σ_l KL_l + b·Σ_l outErr_l
 * (fitted on 14 measured configurations, Spearman 0.996 with the real KLD) */
#define PROXY_A 0.0254
#define PROXY_B 0.0482

struct rqm_sens {
    const rqm_llama *m;
    size_t cap, n;          /* positions kept (layer 0's count)       */
    size_t qd, kd;          /* floats per position: n_heads·D, n_kv·D  */
    float *q, *k, *v;       /* [n_layers][cap][qd or kd]               */
};

rq_status rqm_sens_init(rqm_sens **out, const rqm_llama *m, size_t n_ctx) {
    if (!out || !m || !n_ctx) return RQ_ERR_INVALID_ARG;
    const rqm_llama_hparams *hp = rqm_llama_hparams_of(m);
    rqm_sens *s = calloc(1, sizeof *s);
    if (!s) return RQ_ERR_NOMEM;
    s->m = m, s->cap = n_ctx;
    s->qd = (size_t)hp->n_heads * (size_t)hp->head_dim, s->kd = (size_t)hp->n_kv_heads * (size_t)hp->head_dim;
    const size_t L = (size_t)hp->n_layers;
    s->q = malloc(sizeof(float) * L * n_ctx * s->qd);
    s->k = malloc(sizeof(float) * L * n_ctx * s->kd);
    s->v = malloc(sizeof(float) * L * n_ctx * s->kd);
    if (!s->q || !s->k || !s->v) {
        rqm_sens_free(s);
        return RQ_ERR_NOMEM;
    }
    *out = s;
    return RQ_OK;
}

void rqm_sens_free(rqm_sens *s) {
    if (s) free(s->q), free(s->k), free(s->v), free(s);
}

size_t rqm_sens_tokens(const rqm_sens *s) { return s ? s->n : 0; }

rq_status rqm_sens_observe(void *user, const rqm_layer_event *ev) {
    rqm_sens *s = user;
    const size_t l = (size_t)ev->layer;
    for (size_t t = 0; t < ev->n_tokens; t++) {
        const size_t p = ev->pos0 + t;
        if (p >= s->cap) break;
        memcpy(s->q + (l * s->cap + p) * s->qd, ev->q + t * s->qd, sizeof(float) * s->qd);
        memcpy(s->k + (l * s->cap + p) * s->kd, ev->k + t * s->kd, sizeof(float) * s->kd);
        memcpy(s->v + (l * s->cap + p) * s->kd, ev->v + t * s->kd, sizeof(float) * s->kd);
        if (l == 0 && p + 1 > s->n) s->n = p + 1;
    }
    return RQ_OK;
}

/* Attention of layer l's queries (every stride-th position, causal) over a
 * one-layer cache of types tk/tv into out. */
static rq_status layer_attention(const rqm_sens *s, int l, const char *tk, const char *tv,
                                 const rqm_sens_config *cfg, int centre, const float *qs, const size_t *n_ctx,
                                 size_t nq, float *out) {
    const rqm_llama_hparams *hp = rqm_llama_hparams_of(s->m);
    rq_cache_config cc = rq_cache_config_default();
    cc.n_layers = 1, cc.n_kv_heads = hp->n_kv_heads, cc.head_dim = hp->head_dim;
    cc.type_k = tk, cc.type_v = tv;
    cc.quant.seed = cfg->seed, cc.quant.norm_correct = cfg->norm_correct != 0;
    cc.centre_keys = centre, cc.n_threads = cfg->n_threads > 0 ? cfg->n_threads : 1;
    rq_cache *c = NULL;
    rq_status st = rq_cache_init(&c, &cc);
    if (!st && rqm_llama_layer_window(s->m, l)) st = rq_cache_set_window(c, 0, rqm_llama_layer_window(s->m, l));
    if (!st) st = rq_cache_append(c, 0, s->k + (size_t)l * s->cap * s->kd, s->v + (size_t)l * s->cap * s->kd, s->n);
    rq_attn_params ap = {.n_q_heads = hp->n_heads, .scale = rqm_llama_attn_scale(s->m)};
    if (!st) st = rq_cache_attention(c, 0, qs, nq, n_ctx, &ap, out);
    rq_cache_free(c);
    return st;
}

/* Layer l's keys as a cache of type tk stores them (k − μ encoded and
 * decoded, + μ; position 0 exact fp16 with centring) into kh [n][kd], then
 * the mean softmax KL(exact ‖ quantized) of the queries qs (positions
 * n_ctx[i] − 1, every query head, the layer's window kept). */
static rq_status layer_kl(const rqm_sens *s, int l, const char *tk, const rqm_sens_config *cfg, const float *qs,
                          const size_t *n_ctx, size_t nq, float *kh, double *sc, double *kl_out) {
    const rqm_llama_hparams *hp = rqm_llama_hparams_of(s->m);
    const size_t D = (size_t)hp->head_dim, Hk = (size_t)hp->n_kv_heads, Hq = (size_t)hp->n_heads, G = Hq / Hk;
    rq_quant_config qc = rq_quant_config_default();
    qc.seed = cfg->seed, qc.norm_correct = cfg->norm_correct != 0;
    rq_quantizer *q = NULL;
    rq_status st = rq_quantizer_init(&q, tk, (int)D, &qc);
    uint8_t *blk = st ? NULL : malloc(rq_quantizer_bytes_per_vector(q));
    if (!st && !blk) st = RQ_ERR_NOMEM;
    const float *k = s->k + (size_t)l * s->cap * s->kd;
    float mu[4096] = {0}, x[1024];
    const size_t w_end = s->n - 1 < 64 ? s->n - 1 : 64; /* μ: positions 1..64, fp16 (as the cache) */
    for (size_t i = 0; cfg->centre_keys && i < s->kd && i < 4096; i++) {
        double sum = 0;
        for (size_t t = 1; t <= w_end; t++) sum += k[t * s->kd + i];
        mu[i] = rq_f16_to_f32(rq_f32_to_f16((float)(sum / (double)w_end)));
    }
    /* k8 keys (1-byte norm relative to σ): σ per head as the cache sets it,
     * 2^(mean log2 |k − μ|) over the same positions, fp16 */
    const rq_type_info *ti = rq_type_find(tk);
    const int k8 = cfg->centre_keys && ti && ti->key_scaled;
    float sig[256];
    for (size_t h = 0; h < Hk && h < 256; h++) {
        double lsum = 0;
        size_t n_l = 0;
        for (size_t t = 1; k8 && t <= w_end; t++) {
            double s2 = 0;
            for (size_t i = 0; i < D; i++) {
                const double e = (double)k[t * s->kd + h * D + i] - (double)mu[h * D + i];
                s2 += e * e;
            }
            if (s2 > 0) lsum += 0.5 * log2(s2), n_l++;
        }
        sig[h] = n_l ? rq_f16_to_f32(rq_f32_to_f16((float)exp2(lsum / (double)n_l))) : 1.0f;
        if (!(sig[h] > 0.0f) || !isfinite(sig[h])) sig[h] = 1.0f;
    }
    if (Hk > 256) st = RQ_ERR_INVALID_ARG;
    for (size_t t = 0; t < s->n && !st; t++)
        for (size_t h = 0; h < Hk && !st; h++) {
            const float *kt = k + t * s->kd + h * D;
            float *out = kh + t * s->kd + h * D;
            if (cfg->centre_keys && t == 0) {
                for (size_t i = 0; i < D; i++) out[i] = rq_f16_to_f32(rq_f32_to_f16(kt[i]));
                continue;
            }
            for (size_t i = 0; i < D; i++) x[i] = (kt[i] - mu[h * D + i]) / (k8 ? sig[h] : 1.0f);
            st = rq_quantizer_encode(q, x, blk, 1);
            if (st == RQ_ERR_RANGE && k8) { /* past 2^2: the cache clamps the head to code 255 (the codes: the
                                              * direction's, here from the unit vector) */
                double s2 = 0;
                for (size_t i = 0; i < D; i++) s2 += (double)x[i] * x[i];
                for (size_t i = 0; i < D; i++) x[i] = (float)(x[i] * (1.0 / sqrt(s2)));
                if (!(st = rq_quantizer_encode(q, x, blk, 1))) blk[0] = 255;
            }
            if (!st && !(st = rq_quantizer_decode(q, blk, out, 1)))
                for (size_t i = 0; i < D; i++) out[i] = out[i] * (k8 ? sig[h] : 1.0f) + mu[h * D + i];
        }
    const size_t W = rqm_llama_layer_window(s->m, l);
    const double scale = rqm_llama_attn_scale(s->m) > 0 ? rqm_llama_attn_scale(s->m) : 1.0 / sqrt((double)D);
    double kl = 0;
    for (size_t i = 0; i < nq && !st; i++)
        for (size_t g = 0; g < Hq; g++) {
            const float *qv = qs + i * s->qd + g * D;
            const size_t h = g / G, lim = n_ctx[i], t0 = W && lim > W ? lim - W : 0;
            double m0 = -INFINITY, m1 = -INFINITY, z0 = 0, z1 = 0, e = 0;
            for (size_t t = t0; t < lim; t++) {
                double a = 0, b = 0;
                const float *k0 = k + t * s->kd + h * D, *k1 = kh + t * s->kd + h * D;
                for (size_t x2 = 0; x2 < D; x2++) a += (double)qv[x2] * k0[x2], b += (double)qv[x2] * k1[x2];
                sc[2 * t] = a * scale, sc[2 * t + 1] = b * scale;
                m0 = fmax(m0, sc[2 * t]), m1 = fmax(m1, sc[2 * t + 1]);
            }
            for (size_t t = t0; t < lim; t++) z0 += exp(sc[2 * t] - m0), z1 += exp(sc[2 * t + 1] - m1);
            for (size_t t = t0; t < lim; t++) { /* Σ p (log p − log p̂) */
                const double lp = sc[2 * t] - m0 - log(z0), lq = sc[2 * t + 1] - m1 - log(z1);
                e += exp(lp) * (lp - lq);
            }
            kl += e;
        }
    *kl_out = nq ? kl / (double)(nq * Hq) : 0;
    free(blk);
    rq_quantizer_free(q);
    return st;
}

static double rel_err2(const float *o, const float *ref, size_t n) {
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) e += ((double)o[i] - ref[i]) * ((double)o[i] - ref[i]), r += (double)ref[i] * ref[i];
    return r > 0 ? e / r : e;
}

rq_status rqm_sens_costs(const rqm_sens *s, const rqm_sens_config *cfg, double *cost_k, double *cost_v) {
    if (!s || !cfg || !cost_k || !cost_v || s->n < 2) return RQ_ERR_INVALID_ARG;
    const rqm_llama_hparams *hp = rqm_llama_hparams_of(s->m);
    const size_t stride = cfg->q_stride ? cfg->q_stride : 4, nq = s->n / stride;
    float *qs = malloc(sizeof(float) * nq * s->qd), *ref = malloc(sizeof(float) * nq * s->qd),
          *out = malloc(sizeof(float) * nq * s->qd);
    size_t *n_ctx = malloc(sizeof(size_t) * (nq ? nq : 1));
    float *kh = malloc(sizeof(float) * s->n * s->kd);
    double *sc = malloc(sizeof(double) * 2 * s->n);
    rq_status st = qs && ref && out && n_ctx && kh && sc && s->kd <= 4096 && hp->head_dim <= 1024 ? RQ_OK : RQ_ERR_NOMEM;
    for (size_t i = 0; i < nq; i++) n_ctx[i] = (i + 1) * stride; /* query at position n_ctx − 1 */
    for (int l = 0; l < hp->n_layers && !st; l++) {
        for (size_t i = 0; i < nq; i++)
            memcpy(qs + i * s->qd, s->q + ((size_t)l * s->cap + n_ctx[i] - 1) * s->qd, sizeof(float) * s->qd);
        st = layer_attention(s, l, "f32", "f32", cfg, 0, qs, n_ctx, nq, ref);
        for (int i = 0; i < cfg->n_types_k && !st; i++) {
            double kl = 0;
            st = layer_attention(s, l, cfg->types_k[i], "f32", cfg, cfg->centre_keys, qs, n_ctx, nq, out);
            if (!st) st = layer_kl(s, l, cfg->types_k[i], cfg, qs, n_ctx, nq, kh, sc, &kl);
            cost_k[(size_t)l * (size_t)cfg->n_types_k + (size_t)i] =
                st ? 0 : PROXY_A * kl + PROXY_B * rel_err2(out, ref, nq * s->qd);
        }
        for (int i = 0; i < cfg->n_types_v && !st; i++) {
            st = layer_attention(s, l, "f32", cfg->types_v[i], cfg, cfg->centre_keys, qs, n_ctx, nq, out);
            cost_v[(size_t)l * (size_t)cfg->n_types_v + (size_t)i] = st ? 0 : PROXY_B * rel_err2(out, ref, nq * s->qd);
        }
    }
    free(qs), free(ref), free(out), free(n_ctx), free(kh), free(sc);
    return st;
}
