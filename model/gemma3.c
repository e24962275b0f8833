/*
 * gemma3.c — the Gemma 3 forward pass over a GGUF (model/gemma3.h).
 *
 * One layer for a batch of tokens X [n][n_embd] (E = n_embd, H query heads,
 * G KV heads, D = head_dim, F = n_ff):
 *   h = RMSNorm(X)·attn_norm
 *   Q = Wq h [n][H·D], K = Wk h [n][G·D], V = Wv h [n][G·D]
 *   each head of Q: RMSNorm·attn_q_norm; of K: RMSNorm·attn_k_norm
 *   RoPE (NeoX pairs i, i + D/2; base per layer kind) on Q and K
 *   K, V → rq_cache_append;  A = rq_cache_attention(Q, causal, window on
 *   local layers) [n][H·D]
 *   X += RMSNorm(Wo A)·post_attention_norm
 *   h = RMSNorm(X)·ffn_norm;  X += RMSNorm(Wdown (gelu(Wgate h) ⊙ Wup h))·post_ffw_norm
 * with X = √E · embedding on entry, and RMSNorm(X)·output_norm, logits
 * W_out X (W_out = token_embd when tied) at the end. The facts and where
 * they come from: model/gemma3.h.
 */
#include "gemma3.h"

#include "arch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const float *attn_norm, *q_norm, *k_norm, *post_attn_norm, *ffn_norm, *post_ffn_norm;
    rqm_matrix wq, wk, wv, wo, w_gate, w_up, w_down;
    size_t window;  /* 0 = global layer                        */
    double rope_base;
} g3_layer;

struct rqm_gemma3 {
    rqm_llama_hparams hp;
    double softcap; /* final logit soft-capping (0 = none)    */
    float attn_scale;
    rqm_matrix tok_embd, output;
    const float *output_norm;
    g3_layer *layers;
};

struct rqm_gemma3_scratch {
    size_t n_batch;
    float *x, *h, *q, *k, *v, *att, *gate, *up;
    float *cos_g, *sin_g, *cos_l, *sin_l; /* [n_batch][D/2] per RoPE base */
    size_t *n_ctx;
    double *inv_freq_g, *inv_freq_l;
    rq_attn_seq *aseq; /* rows of many sequences: one attention entry each */
};

/* ---- metadata ---------------------------------------------------------- */

/* Which layers are local: sliding_window_pattern as a u32 period P (layer l
 * is global iff l % P == P − 1; P = 1: every layer global), or as an array
 * of one bool per layer (true = local); absent: P = 6. */
static rq_status local_layers(const rqm_gguf *g, int n_layers, unsigned char *local, char *err, size_t err_len) {
    const char *key = "gemma3.attention.sliding_window_pattern";
    const rqm_gguf_kv *kv = rqm_gguf_find(g, key);
    uint64_t period = 6;
    if (kv && kv->type == RQM_GGUF_ARRAY) {
        if (kv->arr_n != (uint64_t)n_layers)
            return rqm_say(err, err_len, RQ_ERR_FORMAT, "%s has %llu entries for %d layers", key,
                           (unsigned long long)kv->arr_n, n_layers);
        for (int l = 0; l < n_layers; l++) {
            double b;
            if (rqm_gguf_array_f64(kv, (uint64_t)l, &b) != RQ_OK)
                return rqm_say(err, err_len, RQ_ERR_FORMAT, "%s is not an array of booleans", key);
            local[l] = b != 0;
        }
        return RQ_OK;
    }
    if (kv && (rqm_gguf_get_u64(g, key, &period) != RQ_OK || period == 0 || period > (1u << 24)))
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "GGUF metadata %s is not a positive integer", key);
    for (int l = 0; l < n_layers; l++) local[l] = (uint64_t)l % period < period - 1;
    return RQ_OK;
}

rq_status rqm_gemma3_load(rqm_gemma3 **out, rqm_llama_hparams *hp_out, const rqm_gguf *g, char *err,
                          size_t err_len) {
    if (!out || !hp_out || !g) return RQ_ERR_INVALID_ARG;
    *out = NULL;
    rqm_llama_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.rope_base = 10000.0;
    hp.rms_eps = 1e-6;
    hp.n_ctx_train = 8192;
    int window = 0, key_len = 0, val_len = 0;
    double rope_base_swa = 10000.0, softcap = 0;
    rq_status st;
    if ((st = rqm_arch_int(g, "gemma3", "block_count", &hp.n_layers, 1, err, err_len)) ||
        (st = rqm_arch_int(g, "gemma3", "embedding_length", &hp.n_embd, 1, err, err_len)) ||
        (st = rqm_arch_int(g, "gemma3", "feed_forward_length", &hp.n_ff, 1, err, err_len)) ||
        (st = rqm_arch_int(g, "gemma3", "attention.head_count", &hp.n_heads, 1, err, err_len)) ||
        (st = rqm_arch_int(g, "gemma3", "context_length", &hp.n_ctx_train, 0, err, err_len)) ||
        (st = rqm_arch_int(g, "gemma3", "attention.sliding_window", &window, 0, err, err_len)) ||
        (st = rqm_arch_int(g, "gemma3", "attention.key_length", &key_len, 0, err, err_len)) ||
        (st = rqm_arch_int(g, "gemma3", "attention.value_length", &val_len, 0, err, err_len)) ||
        (st = rqm_arch_float(g, "gemma3", "rope.freq_base", &hp.rope_base, err, err_len)) ||
        (st = rqm_arch_float(g, "gemma3", "rope.freq_base_swa", &rope_base_swa, err, err_len)) ||
        (st = rqm_arch_float(g, "gemma3", "final_logit_softcapping", &softcap, err, err_len)) ||
        (st = rqm_arch_float(g, "gemma3", "attention.layer_norm_rms_epsilon", &hp.rms_eps, err, err_len)))
        return st;
    hp.n_kv_heads = hp.n_heads;
    if ((st = rqm_arch_int(g, "gemma3", "attention.head_count_kv", &hp.n_kv_heads, 0, err, err_len))) return st;
    if (hp.n_heads % hp.n_kv_heads)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "head counts %d/%d: not a multiple", hp.n_heads, hp.n_kv_heads);
    hp.head_dim = key_len ? key_len : hp.n_embd / hp.n_heads;
    if (val_len && val_len != hp.head_dim)
        return rqm_say(err, err_len, RQ_ERR_UNSUPPORTED, "key_length %d != value_length %d", hp.head_dim, val_len);
    if (hp.head_dim % 2 || hp.head_dim > RQ_MAX_DIMS)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "head_dim %d is odd or above %d", hp.head_dim, RQ_MAX_DIMS);
    hp.n_rot = hp.head_dim;
    const rqm_tensor *emb = rqm_gguf_tensor(g, "token_embd.weight");
    if (!emb || emb->ne[0] != (uint64_t)hp.n_embd || emb->ne[1] == 0 || emb->ne[1] > (1u << 24))
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "token_embd.weight missing or not [%d, n_vocab]", hp.n_embd);
    hp.n_vocab = (int)emb->ne[1];

    rqm_gemma3 *m = calloc(1, sizeof *m);
    unsigned char *local = calloc((size_t)hp.n_layers, 1);
    if (!m || !local || !(m->layers = calloc((size_t)hp.n_layers, sizeof *m->layers))) {
        free(local);
        rqm_gemma3_free(m);
        return RQ_ERR_NOMEM;
    }
    m->hp = hp;
    m->softcap = softcap;
    /* Gemma's reference: queries scaled by query_pre_attn_scalar^−½, which is
     * head_dim except for the 27B (62 layers): n_embd / n_heads */
    m->attn_scale = 1.0f / sqrtf((float)(hp.n_layers == 62 ? hp.n_embd / hp.n_heads : hp.head_dim));
    const size_t E = (size_t)hp.n_embd, D = (size_t)hp.head_dim, F = (size_t)hp.n_ff;
    const size_t QD = (size_t)hp.n_heads * D, KV = (size_t)hp.n_kv_heads * D;
    st = local_layers(g, hp.n_layers, local, err, err_len);
    if (!st) st = rqm_arch_matrix(g, "token_embd.weight", E, (size_t)hp.n_vocab, &m->tok_embd, err, err_len);
    if (!st) st = rqm_arch_vector(g, "output_norm.weight", E, &m->output_norm, err, err_len);
    if (!st) {
        if (rqm_gguf_tensor(g, "output.weight"))
            st = rqm_arch_matrix(g, "output.weight", E, (size_t)hp.n_vocab, &m->output, err, err_len);
        else
            m->output = m->tok_embd; /* tied embeddings */
    }
    for (int l = 0; l < hp.n_layers && !st; l++) {
        g3_layer *w = &m->layers[l];
        w->window = local[l] ? (size_t)window : 0;
        w->rope_base = local[l] && window ? rope_base_swa : hp.rope_base;
        char name[96];
#define MAT(field, suffix, n_in, n_out)                                     \
    if (!st) {                                                              \
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix);         \
        st = rqm_arch_matrix(g, name, n_in, n_out, &w->field, err, err_len);         \
    }
#define VEC(field, suffix, n)                                               \
    if (!st) {                                                              \
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix);         \
        st = rqm_arch_vector(g, name, n, &w->field, err, err_len);                   \
    }
        VEC(attn_norm, "attn_norm", E)
        VEC(q_norm, "attn_q_norm", D)
        VEC(k_norm, "attn_k_norm", D)
        VEC(post_attn_norm, "post_attention_norm", E)
        VEC(ffn_norm, "ffn_norm", E)
        VEC(post_ffn_norm, "post_ffw_norm", E)
        MAT(wq, "attn_q", E, QD)
        MAT(wk, "attn_k", E, KV)
        MAT(wv, "attn_v", E, KV)
        MAT(wo, "attn_output", QD, E)
        MAT(w_gate, "ffn_gate", E, F)
        MAT(w_up, "ffn_up", E, F)
        MAT(w_down, "ffn_down", F, E)
#undef MAT
#undef VEC
    }
    free(local);
    if (st) {
        rqm_gemma3_free(m);
        return st;
    }
    *hp_out = hp;
    *out = m;
    return RQ_OK;
}

void rqm_gemma3_free(rqm_gemma3 *m) {
    if (!m) return;
    free(m->layers);
    free(m);
}

float rqm_gemma3_attn_scale(const rqm_gemma3 *m) { return m->attn_scale; }

size_t rqm_gemma3_window(const rqm_gemma3 *m, int layer) {
    return m && layer >= 0 && layer < m->hp.n_layers ? m->layers[layer].window : 0;
}

/* ---- scratch ----------------------------------------------------------- */

void rqm_gemma3_scratch_free(rqm_gemma3_scratch *s) {
    if (!s) return;
    free(s->x), free(s->h), free(s->q), free(s->k), free(s->v), free(s->att), free(s->gate), free(s->up);
    free(s->cos_g), free(s->sin_g), free(s->cos_l), free(s->sin_l), free(s->n_ctx);
    free(s->aseq);
    free(s->inv_freq_g), free(s->inv_freq_l);
    free(s);
}

rq_status rqm_gemma3_scratch_init(rqm_gemma3_scratch **out, const rqm_gemma3 *m, size_t n_batch) {
    if (!out || !m || !n_batch) return RQ_ERR_INVALID_ARG;
    const rqm_llama_hparams *hp = &m->hp;
    rqm_gemma3_scratch *s = calloc(1, sizeof *s);
    if (!s) return RQ_ERR_NOMEM;
    const size_t B = n_batch, E = (size_t)hp->n_embd, D = (size_t)hp->head_dim, F = (size_t)hp->n_ff;
    const size_t QD = (size_t)hp->n_heads * D, KV = (size_t)hp->n_kv_heads * D, R = D / 2;
    s->n_batch = B;
    s->x = rqm_alloc_f32(B * E), s->h = rqm_alloc_f32(B * E);
    s->q = rqm_alloc_f32(B * QD), s->att = rqm_alloc_f32(B * QD);
    s->k = rqm_alloc_f32(B * KV), s->v = rqm_alloc_f32(B * KV);
    s->gate = rqm_alloc_f32(B * F), s->up = rqm_alloc_f32(B * F);
    s->cos_g = rqm_alloc_f32(B * R), s->sin_g = rqm_alloc_f32(B * R);
    s->cos_l = rqm_alloc_f32(B * R), s->sin_l = rqm_alloc_f32(B * R);
    s->n_ctx = malloc(B * sizeof(size_t));
    s->inv_freq_g = malloc(R * sizeof(double)), s->inv_freq_l = malloc(R * sizeof(double));
    s->aseq = malloc(B * sizeof *s->aseq);
    if (!s->aseq || !s->x || !s->h || !s->q || !s->att || !s->k || !s->v || !s->gate || !s->up || !s->cos_g || !s->sin_g ||
        !s->cos_l || !s->sin_l || !s->n_ctx || !s->inv_freq_g || !s->inv_freq_l) {
        rqm_gemma3_scratch_free(s);
        return RQ_ERR_NOMEM;
    }
    /* the local base is the one of any local layer (they share it) */
    double base_l = hp->rope_base;
    for (int l = 0; l < hp->n_layers; l++)
        if (m->layers[l].window) base_l = m->layers[l].rope_base;
    for (size_t i = 0; i < R; i++) {
        s->inv_freq_g[i] = pow(hp->rope_base, -2.0 * (double)i / (double)D);
        s->inv_freq_l[i] = pow(base_l, -2.0 * (double)i / (double)D);
    }
    *out = s;
    return RQ_OK;
}

/* ---- kernels ----------------------------------------------------------- */

/* NeoX RoPE on each head of x: pairs (i, i + D/2), R = D/2 angles. */
static void rope_neox(float *x, size_t n_heads, size_t D, const float *c, const float *s) {
    const size_t R = D / 2;
    for (size_t h = 0; h < n_heads; h++) {
        float *v = x + h * D;
        for (size_t i = 0; i < R; i++) {
            const float a = v[i], b = v[i + R];
            v[i] = a * c[i] - b * s[i];
            v[i + R] = a * s[i] + b * c[i];
        }
    }
}

/* GELU, tanh approximation (Gemma's gelu_pytorch_tanh). */
static float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* √(2/π) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

/* ---- the forward pass -------------------------------------------------- */

rq_status rqm_gemma3_eval_batch(const rqm_gemma3 *m, rqm_gemma3_scratch *s, rq_cache *cache, size_t pos,
                                const int32_t *tokens, size_t n, int all_logits, float *logits, int T,
                                rqm_observer observer, void *observer_user, const int *seqs,
                                const size_t *seq_pos) {
    const rqm_llama_hparams *hp = &m->hp;
    const size_t E = (size_t)hp->n_embd, D = (size_t)hp->head_dim, F = (size_t)hp->n_ff, R = D / 2;
    const size_t H = (size_t)hp->n_heads, G = (size_t)hp->n_kv_heads, QD = H * D, KV = G * D;
    if (n > s->n_batch) return RQ_ERR_INVALID_ARG;
    rq_status st;

    /* embeddings · √E; RoPE angles for both bases; causal limits */
    const float emb_scale = sqrtf((float)E);
    for (size_t t = 0; t < n; t++) {
        if ((st = rqm_matrix_row(&m->tok_embd, (size_t)tokens[t], s->x + t * E))) return st;
        for (size_t i = 0; i < E; i++) s->x[t * E + i] *= emb_scale;
        const size_t pt = seqs ? seq_pos[t] : pos + t;
        const double p = (double)pt;
        for (size_t i = 0; i < R; i++) {
            s->cos_g[t * R + i] = (float)cos(p * s->inv_freq_g[i]);
            s->sin_g[t * R + i] = (float)sin(p * s->inv_freq_g[i]);
            s->cos_l[t * R + i] = (float)cos(p * s->inv_freq_l[i]);
            s->sin_l[t * R + i] = (float)sin(p * s->inv_freq_l[i]);
        }
        s->n_ctx[t] = pt + 1;
    }
    for (int l = 0; l < hp->n_layers; l++) {
        const g3_layer *w = &m->layers[l];
        const float *rc = w->window ? s->cos_l : s->cos_g, *rs = w->window ? s->sin_l : s->sin_g;

        /* attention: h = norm(x); q, k, v; per-head norms; RoPE */
        for (size_t t = 0; t < n; t++) rqm_rms_norm(s->x + t * E, w->attn_norm, s->h + t * E, E, hp->rms_eps);
        rqm_matmul(&w->wq, s->h, n, s->q, T); /* [n][H·D] */
        rqm_matmul(&w->wk, s->h, n, s->k, T); /* [n][G·D] */
        rqm_matmul(&w->wv, s->h, n, s->v, T); /* [n][G·D] */
        for (size_t t = 0; t < n; t++) {
            for (size_t h = 0; h < H; h++) rqm_rms_norm(s->q + t * QD + h * D, w->q_norm, s->q + t * QD + h * D, D, hp->rms_eps);
            for (size_t h = 0; h < G; h++) rqm_rms_norm(s->k + t * KV + h * D, w->k_norm, s->k + t * KV + h * D, D, hp->rms_eps);
            rope_neox(s->q + t * QD, H, D, rc + t * R, rs + t * R);
            rope_neox(s->k + t * KV, G, D, rc + t * R, rs + t * R);
        }
        /* the cache: keys and values stored, attention over them (the
         * sliding window on local layers) */
        rq_attn_params ap = {.n_q_heads = hp->n_heads, .scale = m->attn_scale}; /* window: the cache layer's */
        if (seqs) { /* each row the next token of its own sequence */
            for (size_t t = 0; t < n; t++) {
                if ((st = rq_cache_seq_append(cache, seqs[t], l, s->k + t * KV, s->v + t * KV, 1))) return st;
                s->aseq[t] = (rq_attn_seq){.seq = seqs[t], .q = s->q + t * QD, .n_queries = 1, .n_ctx = s->n_ctx + t,
                                           .out = s->att + t * QD};
            }
            if ((st = rq_cache_attention_batch(cache, l, s->aseq, n, &ap))) return st;
        } else {
            if ((st = rq_cache_append(cache, l, s->k, s->v, n))) return st;
            if ((st = rq_cache_attention(cache, l, s->q, n, s->n_ctx, &ap, s->att))) return st;
        }
        if (observer && !seqs) {
            rqm_layer_event ev = {.layer = l, .pos0 = pos, .n_tokens = n, .q = s->q, .k = s->k, .v = s->v,
                                  .attn_out = s->att};
            if ((st = observer(observer_user, &ev))) return st;
        }
        rqm_matmul(&w->wo, s->att, n, s->h, T); /* [n][E] */
        for (size_t t = 0; t < n; t++) {
            rqm_rms_norm(s->h + t * E, w->post_attn_norm, s->h + t * E, E, hp->rms_eps);
            for (size_t i = 0; i < E; i++) s->x[t * E + i] += s->h[t * E + i];
        }

        /* feed-forward: GeGLU between ffn_norm and post_ffw_norm */
        for (size_t t = 0; t < n; t++) rqm_rms_norm(s->x + t * E, w->ffn_norm, s->h + t * E, E, hp->rms_eps);
        rqm_matmul(&w->w_gate, s->h, n, s->gate, T); /* [n][F] */
        rqm_matmul(&w->w_up, s->h, n, s->up, T);
        for (size_t i = 0; i < n * F; i++) s->gate[i] = gelu_tanh(s->gate[i]) * s->up[i];
        rqm_matmul(&w->w_down, s->gate, n, s->h, T); /* [n][E] */
        for (size_t t = 0; t < n; t++) {
            rqm_rms_norm(s->h + t * E, w->post_ffn_norm, s->h + t * E, E, hp->rms_eps);
            for (size_t i = 0; i < E; i++) s->x[t * E + i] += s->h[t * E + i];
        }
    }
    if (!logits) return RQ_OK;
    const size_t first = all_logits ? 0 : n - 1, V = (size_t)hp->n_vocab;
    for (size_t t = first; t < n; t++) rqm_rms_norm(s->x + t * E, m->output_norm, s->h + t * E, E, hp->rms_eps);
    rqm_matmul(&m->output, s->h + first * E, n - first, logits, T);
    if (m->softcap > 0)
        for (size_t i = 0; i < (n - first) * V; i++) logits[i] = (float)(m->softcap * tanh(logits[i] / m->softcap));
    return RQ_OK;
}
