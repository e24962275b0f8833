/*
 * llama.c — the llama forward pass over a GGUF (model/llama.h).
 *
 * One layer for a batch of tokens X [n][n_embd]:
 *   h = RMSNorm(X)·attn_norm;  Q = Wq h, K = Wk h, V = Wv h
 *   RoPE on Q and K (adjacent pairs, angle pos·base^(−2i/n_rot))
 *   K, V → rq_cache_append;  A = rq_cache_attention(Q, causal)
 *   X += Wo A
 *   h = RMSNorm(X)·ffn_norm;  X += Wdown (silu(Wgate h) ⊙ Wup h)
 * then RMSNorm(X)·output_norm and the logits W_out X (W_out = token_embd
 * when the embeddings are tied). Conventions follow llama.cpp's `llama`
 * graph (research/real_model.md §1b).
 */
#include "llama.h"

#include "arch.h"
#include "gemma3.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const float *attn_norm, *ffn_norm;
    rqm_matrix wq, wk, wv, wo, w_gate, w_up, w_down;
} layer_weights;

struct rqm_llama {
    rqm_llama_hparams hp;
    rqm_matrix tok_embd, output;
    const float *output_norm;
    layer_weights *layers;
    rqm_gemma3 *gemma3; /* general.architecture = gemma3: its own forward pass */
};

struct rqm_session {
    const rqm_llama *m;
    rqm_session_config cfg;
    rq_cache *cache;
    size_t pos;
    int broken; /* an eval failed half-way: the cache and pos disagree */
    /* scratch for one batch of up to n_batch tokens */
    float *x, *h, *q, *k, *v, *att, *gate, *up, *rope_cos, *rope_sin;
    size_t *n_ctx;
    double *inv_freq;
    rq_attn_seq *aseq; /* rqm_session_decode: one attention entry per row   */
    size_t *seq_pos;   /* its rows' positions before the step              */
    rqm_gemma3_scratch *g3; /* the Gemma 3 activations (m->gemma3) */
};

rq_status rqm_llama_load(rqm_llama **out, const rqm_gguf *g, char *err, size_t err_len) {
    if (!out || !g) return RQ_ERR_INVALID_ARG;
    *out = NULL;
    rqm_str arch_s;
    if (rqm_gguf_get_str(g, "general.architecture", &arch_s) != RQ_OK) {
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "GGUF metadata lacks general.architecture");
    }
    if (rqm_str_eq(arch_s, "gemma3")) { /* model/gemma3.c */
        rqm_llama *m = calloc(1, sizeof *m);
        if (!m) return RQ_ERR_NOMEM;
        rq_status st = rqm_gemma3_load(&m->gemma3, &m->hp, g, err, err_len);
        if (st) {
            free(m);
            return st;
        }
        *out = m;
        return RQ_OK;
    }
    if (!rqm_str_eq(arch_s, "llama")) {
        return rqm_say(err, err_len, RQ_ERR_UNSUPPORTED, "architecture '%.*s' is not supported (llama, gemma3)",
                       (int)(arch_s.len > 64 ? 64 : arch_s.len), arch_s.ptr);
    }
    const char *arch = "llama";
    rqm_llama_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.rope_base = 10000.0;
    hp.rms_eps = 1e-5;
    rq_status st;
    if ((st = rqm_arch_int(g, arch, "block_count", &hp.n_layers, 1, err, err_len)) ||
        (st = rqm_arch_int(g, arch, "embedding_length", &hp.n_embd, 1, err, err_len)) ||
        (st = rqm_arch_int(g, arch, "feed_forward_length", &hp.n_ff, 1, err, err_len)) ||
        (st = rqm_arch_int(g, arch, "attention.head_count", &hp.n_heads, 1, err, err_len)) ||
        (st = rqm_arch_float(g, arch, "rope.freq_base", &hp.rope_base, err, err_len)) ||
        (st = rqm_arch_float(g, arch, "attention.layer_norm_rms_epsilon", &hp.rms_eps, err, err_len)))
        return st;
    hp.n_kv_heads = hp.n_heads;
    hp.n_ctx_train = 2048;
    if ((st = rqm_arch_int(g, arch, "attention.head_count_kv", &hp.n_kv_heads, 0, err, err_len)) ||
        (st = rqm_arch_int(g, arch, "context_length", &hp.n_ctx_train, 0, err, err_len)))
        return st;
    if (hp.n_embd % hp.n_heads || hp.n_heads % hp.n_kv_heads) {
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "head counts %d/%d do not divide embedding %d", hp.n_heads, hp.n_kv_heads, hp.n_embd);
    }
    hp.head_dim = hp.n_embd / hp.n_heads;
    hp.n_rot = hp.head_dim;
    if ((st = rqm_arch_int(g, arch, "rope.dimension_count", &hp.n_rot, 0, err, err_len))) return st;
    if (hp.n_rot > hp.head_dim || hp.n_rot % 2) {
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "rope.dimension_count %d does not fit head_dim %d", hp.n_rot, hp.head_dim);
    }
    const rqm_tensor *emb = rqm_gguf_tensor(g, "token_embd.weight");
    if (!emb || emb->ne[0] != (uint64_t)hp.n_embd || emb->ne[1] == 0 || emb->ne[1] > (1u << 24)) {
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "token_embd.weight missing or not [%d, n_vocab]", hp.n_embd);
    }
    hp.n_vocab = (int)emb->ne[1];
    /* every layer has its own tensors: a block count past the file's tensor
     * count is malformed (and must not size an allocation) */
    if ((size_t)hp.n_layers > rqm_gguf_n_tensors(g))
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "block_count %d exceeds the %zu tensors in the file", hp.n_layers,
                       rqm_gguf_n_tensors(g));

    rqm_llama *m = calloc(1, sizeof *m);
    if (!m) return RQ_ERR_NOMEM;
    m->hp = hp;
    m->layers = calloc((size_t)hp.n_layers, sizeof *m->layers);
    if (!m->layers) {
        free(m);
        return RQ_ERR_NOMEM;
    }
    const size_t E = (size_t)hp.n_embd, KV = (size_t)hp.n_kv_heads * hp.head_dim, F = (size_t)hp.n_ff;
    st = rqm_arch_matrix(g, "token_embd.weight", E, (size_t)hp.n_vocab, &m->tok_embd, err, err_len);
    if (!st) st = rqm_arch_vector(g, "output_norm.weight", E, &m->output_norm, err, err_len);
    if (!st) {
        if (rqm_gguf_tensor(g, "output.weight"))
            st = rqm_arch_matrix(g, "output.weight", E, (size_t)hp.n_vocab, &m->output, err, err_len);
        else
            m->output = m->tok_embd; /* tied embeddings */
    }
    for (int l = 0; l < hp.n_layers && !st; l++) {
        layer_weights *w = &m->layers[l];
        char name[96];
#define MAT(field, suffix, n_in, n_out)                                            \
    if (!st) {                                                                     \
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix);                \
        st = rqm_arch_matrix(g, name, n_in, n_out, &w->field, err, err_len);            \
    }
#define VEC(field, suffix)                                                         \
    if (!st) {                                                                     \
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix);                \
        st = rqm_arch_vector(g, name, E, &w->field, err, err_len);                      \
    }
        VEC(attn_norm, "attn_norm")
        VEC(ffn_norm, "ffn_norm")
        MAT(wq, "attn_q", E, E)
        MAT(wk, "attn_k", E, KV)
        MAT(wv, "attn_v", E, KV)
        MAT(wo, "attn_output", E, E)
        MAT(w_gate, "ffn_gate", E, F)
        MAT(w_up, "ffn_up", E, F)
        MAT(w_down, "ffn_down", F, E)
#undef MAT
#undef VEC
    }
    if (st) {
        rqm_llama_free(m);
        return st;
    }
    *out = m;
    return RQ_OK;
}

void rqm_llama_free(rqm_llama *m) {
    if (!m) return;
    rqm_gemma3_free(m->gemma3);
    free(m->layers);
    free(m);
}

const rqm_llama_hparams *rqm_llama_hparams_of(const rqm_llama *m) { return m ? &m->hp : NULL; }

size_t rqm_llama_layer_window(const rqm_llama *m, int layer) {
    return m && m->gemma3 ? rqm_gemma3_window(m->gemma3, layer) : 0;
}

float rqm_llama_attn_scale(const rqm_llama *m) { return m && m->gemma3 ? rqm_gemma3_attn_scale(m->gemma3) : 0.0f; }

void rqm_session_free(rqm_session *s) {
    if (!s) return;
    rq_cache_free(s->cache);
    rqm_gemma3_scratch_free(s->g3);
    free(s->x), free(s->h), free(s->q), free(s->k), free(s->v), free(s->att);
    free(s->gate), free(s->up), free(s->rope_cos), free(s->rope_sin), free(s->n_ctx), free(s->inv_freq);
    free(s->aseq), free(s->seq_pos);
    free(s);
}

rq_status rqm_session_init(rqm_session **out, const rqm_llama *m, const rqm_session_config *cfg) {
    if (!out || !m || !cfg) return RQ_ERR_INVALID_ARG;
    *out = NULL;
    if (cfg->n_ctx < 0 || cfg->n_batch < 0 || cfg->n_threads < 0 || cfg->key_basis_ctx < 0) return RQ_ERR_INVALID_ARG;
    /* a key basis fits the positions it was calibrated on (model/calib.h) */
    const int n_ctx = cfg->n_ctx ? cfg->n_ctx : m->hp.n_ctx_train;
    if (cfg->key_basis && cfg->key_basis_ctx && n_ctx > cfg->key_basis_ctx) return RQ_ERR_RANGE;
    const rqm_llama_hparams *hp = &m->hp;
    rqm_session *s = calloc(1, sizeof *s);
    if (!s) return RQ_ERR_NOMEM;
    s->m = m;
    s->cfg = *cfg;
    if (!s->cfg.type_k) s->cfg.type_k = "f32";
    if (!s->cfg.type_v) s->cfg.type_v = "f32";
    if (!s->cfg.n_ctx) s->cfg.n_ctx = hp->n_ctx_train;
    if (!s->cfg.n_batch) s->cfg.n_batch = 256;
    if (!s->cfg.n_threads) s->cfg.n_threads = 1;

    rq_cache_config cc = rq_cache_config_default();
    cc.n_layers = hp->n_layers, cc.n_kv_heads = hp->n_kv_heads, cc.head_dim = hp->head_dim;
    cc.type_k = s->cfg.type_k, cc.type_v = s->cfg.type_v;
    cc.quant.seed = cfg->seed;
    cc.quant.norm_correct = cfg->norm_correct != 0;
    cc.centre_keys = cfg->centre_keys != 0, cc.centre_window = cfg->centre_window;
    cc.int8_scores = cfg->int8_scores != 0;
    cc.layer_type_k = cfg->layer_type_k, cc.layer_type_v = cfg->layer_type_v;
    cc.n_threads = s->cfg.n_threads;
    rq_status st = rq_cache_init(&s->cache, &cc);
    /* sliding-window layers (Gemma 3's local layers): a property of the
     * cache layer, which attends the window only and frees pages behind it */
    for (int l = 0; l < hp->n_layers && !st; l++)
        if (rqm_llama_layer_window(m, l)) st = rq_cache_set_window(s->cache, l, rqm_llama_layer_window(m, l));
    const size_t per_head = cfg->key_basis_ranges * (size_t)hp->head_dim * (size_t)hp->head_dim;
    for (int l = 0; l < hp->n_layers && !st && cfg->key_basis; l++)
        for (int g = 0; g < hp->n_kv_heads && !st; g++)
            st = rq_cache_set_key_basis(s->cache, l, g, cfg->key_basis_ranges, cfg->key_basis_start,
                                        cfg->key_basis + ((size_t)l * (size_t)hp->n_kv_heads + (size_t)g) * per_head);
    if (st) {
        rqm_session_free(s);
        return st;
    }
    if (m->gemma3) {
        s->seq_pos = malloc((size_t)s->cfg.n_batch * sizeof *s->seq_pos);
        if (!s->seq_pos) st = RQ_ERR_NOMEM;
        if (st || (st = rqm_gemma3_scratch_init(&s->g3, m->gemma3, (size_t)s->cfg.n_batch))) {
            rqm_session_free(s);
            return st;
        }
        *out = s;
        return RQ_OK;
    }
    const size_t B = (size_t)s->cfg.n_batch, E = (size_t)hp->n_embd, F = (size_t)hp->n_ff;
    const size_t KV = (size_t)hp->n_kv_heads * hp->head_dim, R = (size_t)hp->n_rot / 2;
    /* 64-byte aligned activations: the matmul kernels run faster on them */
    s->x = rqm_alloc_f32(B * E);
    s->h = rqm_alloc_f32(B * E);
    s->q = rqm_alloc_f32(B * E);
    s->att = rqm_alloc_f32(B * E);
    s->k = rqm_alloc_f32(B * KV);
    s->v = rqm_alloc_f32(B * KV);
    s->gate = rqm_alloc_f32(B * F);
    s->up = rqm_alloc_f32(B * F);
    s->rope_cos = rqm_alloc_f32(B * R + 1);
    s->rope_sin = rqm_alloc_f32(B * R + 1);
    s->n_ctx = malloc(B * sizeof(size_t));
    s->inv_freq = malloc((R + 1) * sizeof(double));
    s->aseq = malloc(B * sizeof *s->aseq);
    s->seq_pos = malloc(B * sizeof *s->seq_pos);
    if (!s->aseq || !s->seq_pos || !s->x || !s->h || !s->q || !s->att || !s->k || !s->v || !s->gate || !s->up || !s->rope_cos ||
        !s->rope_sin || !s->n_ctx || !s->inv_freq) {
        rqm_session_free(s);
        return RQ_ERR_NOMEM;
    }
    for (size_t i = 0; i < R; i++) s->inv_freq[i] = pow(hp->rope_base, -2.0 * (double)i / hp->n_rot);
    *out = s;
    return RQ_OK;
}

void rqm_session_reset(rqm_session *s) {
    if (!s) return;
    rq_cache_clear(s->cache);
    s->pos = 0;
    s->broken = 0;
}

size_t rqm_session_pos(const rqm_session *s) { return s ? s->pos : 0; }
const rq_cache *rqm_session_cache(const rqm_session *s) { return s ? s->cache : NULL; }

/* Rotate adjacent pairs of the first n_rot coordinates of each head. */
static void rope(float *x, size_t n_heads, int head_dim, size_t n_pairs, const float *c, const float *s) {
    for (size_t h = 0; h < n_heads; h++) {
        float *v = x + h * (size_t)head_dim;
        for (size_t i = 0; i < n_pairs; i++) {
            const float a = v[2 * i], b = v[2 * i + 1];
            v[2 * i] = a * c[i] - b * s[i];
            v[2 * i + 1] = a * s[i] + b * c[i];
        }
    }
}

/* n rows through the model. seqs NULL: tokens at the next n positions of
 * sequence 0 (a prefill batch, causal). seqs set: row t is the next token
 * of sequence seqs[t], at position s->seq_pos[t] (a decode step of many
 * sequences; all rows' logits). */
static rq_status eval_batch(rqm_session *s, const int32_t *tokens, size_t n, float *logits, int all_logits,
                            const int *seqs) {
    const rqm_llama *m = s->m;
    const rqm_llama_hparams *hp = &m->hp;
    const size_t E = (size_t)hp->n_embd, F = (size_t)hp->n_ff, D = (size_t)hp->head_dim;
    const size_t KV = (size_t)hp->n_kv_heads * D, R = (size_t)hp->n_rot / 2;
    const int T = s->cfg.n_threads;
    rq_status st;
    if (m->gemma3) {
        st = rqm_gemma3_eval_batch(m->gemma3, s->g3, s->cache, s->pos, tokens, n, all_logits, logits, T,
                                   s->cfg.observer, s->cfg.observer_user, seqs, s->seq_pos);
        if (!st && !seqs) s->pos += n;
        return st;
    }

    for (size_t t = 0; t < n; t++) {
        if ((st = rqm_matrix_row(&m->tok_embd, (size_t)tokens[t], s->x + t * E))) return st;
        const size_t p = seqs ? s->seq_pos[t] : s->pos + t;
        const double pos = (double)p;
        for (size_t i = 0; i < R; i++) {
            const double a = pos * s->inv_freq[i];
            s->rope_cos[t * R + i] = (float)cos(a);
            s->rope_sin[t * R + i] = (float)sin(a);
        }
        s->n_ctx[t] = p + 1; /* causal: a token sees itself and the past */
    }
    rq_attn_params ap = {.n_q_heads = hp->n_heads, .scale = 0};
    for (int l = 0; l < hp->n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        for (size_t t = 0; t < n; t++) rqm_rms_norm(s->x + t * E, w->attn_norm, s->h + t * E, E, hp->rms_eps);
        rqm_matmul(&w->wq, s->h, n, s->q, T);
        rqm_matmul(&w->wk, s->h, n, s->k, T);
        rqm_matmul(&w->wv, s->h, n, s->v, T);
        for (size_t t = 0; t < n; t++) {
            rope(s->q + t * E, (size_t)hp->n_heads, hp->head_dim, R, s->rope_cos + t * R, s->rope_sin + t * R);
            rope(s->k + t * KV, (size_t)hp->n_kv_heads, hp->head_dim, R, s->rope_cos + t * R,
                 s->rope_sin + t * R);
        }
        if (seqs) { /* each row its own sequence; one attention call for all */
            for (size_t t = 0; t < n; t++) {
                if ((st = rq_cache_seq_append(s->cache, seqs[t], l, s->k + t * KV, s->v + t * KV, 1))) return st;
                s->aseq[t] = (rq_attn_seq){.seq = seqs[t], .q = s->q + t * E, .n_queries = 1, .n_ctx = s->n_ctx + t,
                                           .out = s->att + t * E};
            }
            if ((st = rq_cache_attention_batch(s->cache, l, s->aseq, n, &ap))) return st;
        } else {
            if ((st = rq_cache_append(s->cache, l, s->k, s->v, n))) return st;
            if ((st = rq_cache_attention(s->cache, l, s->q, n, s->n_ctx, &ap, s->att))) return st;
        }
        if (s->cfg.observer && !seqs) {
            rqm_layer_event ev = {.layer = l, .pos0 = s->pos, .n_tokens = n, .q = s->q, .k = s->k,
                                  .v = s->v, .attn_out = s->att};
            if ((st = s->cfg.observer(s->cfg.observer_user, &ev))) return st;
        }
        rqm_matmul(&w->wo, s->att, n, s->h, T);
        for (size_t i = 0; i < n * E; i++) s->x[i] += s->h[i];

        for (size_t t = 0; t < n; t++) rqm_rms_norm(s->x + t * E, w->ffn_norm, s->h + t * E, E, hp->rms_eps);
        rqm_matmul(&w->w_gate, s->h, n, s->gate, T);
        rqm_matmul(&w->w_up, s->h, n, s->up, T);
        for (size_t i = 0; i < n * F; i++) {
            const float g = s->gate[i];
            s->gate[i] = g / (1.0f + expf(-g)) * s->up[i]; /* SwiGLU: silu(gate) · up */
        }
        rqm_matmul(&w->w_down, s->gate, n, s->h, T);
        for (size_t i = 0; i < n * E; i++) s->x[i] += s->h[i];
    }
    if (!seqs) s->pos += n;
    if (!logits) return RQ_OK;
    const size_t first = all_logits ? 0 : n - 1;
    for (size_t t = first; t < n; t++) rqm_rms_norm(s->x + t * E, m->output_norm, s->h + t * E, E, hp->rms_eps);
    rqm_matmul(&m->output, s->h + first * E, n - first, logits, T);
    return RQ_OK;
}

rq_status rqm_session_eval(rqm_session *s, const int32_t *tokens, size_t n, int all_logits, float *logits) {
    if (!s || (!tokens && n)) return RQ_ERR_INVALID_ARG;
    if (s->broken) return RQ_ERR_INVALID_ARG;
    if (n == 0) return RQ_OK;
    const rqm_llama_hparams *hp = &s->m->hp;
    for (size_t t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= hp->n_vocab) return RQ_ERR_INVALID_ARG;
    if (n > (size_t)s->cfg.n_ctx - s->pos || s->pos > (size_t)s->cfg.n_ctx) return RQ_ERR_RANGE;
    const size_t B = (size_t)s->cfg.n_batch, V = (size_t)hp->n_vocab;
    for (size_t t0 = 0; t0 < n; t0 += B) {
        const size_t nb = n - t0 < B ? n - t0 : B;
        const int last = t0 + nb == n;
        float *lg = NULL;
        if (logits && all_logits) lg = logits + t0 * V;
        else if (logits && last) lg = logits;
        rq_status st = eval_batch(s, tokens + t0, nb, lg, all_logits, NULL);
        if (st) {
            s->broken = 1;
            return st;
        }
    }
    return RQ_OK;
}

rq_status rqm_session_eval_seq(rqm_session *s, int32_t bos, const int32_t *ids, size_t n, int all_logits,
                               float *logits) {
    if (bos < 0 || !n || !ids) return rqm_session_eval(s, ids, n, all_logits, logits);
    int32_t *b = malloc(n * sizeof *b);
    if (!b) return RQ_ERR_NOMEM;
    memcpy(b, ids, n * sizeof *b);
    b[0] = bos;
    rq_status st = rqm_session_eval(s, b, n, all_logits, logits);
    free(b);
    return st;
}

/* ---- many sequences ----------------------------------------------------- */
rq_cache *rqm_session_cache_mut(rqm_session *s) { return s ? s->cache : NULL; }

rq_status rqm_session_decode(rqm_session *s, const int *seqs, const int32_t *tokens, size_t n, float *logits) {
    if (!s || !seqs || !tokens || !n || n > (size_t)s->cfg.n_batch || s->broken) return RQ_ERR_INVALID_ARG;
    const rqm_llama_hparams *hp = &s->m->hp;
    int has0 = 0; /* sequence 0 is in the step: the session's position moves */
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab) return RQ_ERR_INVALID_ARG;
        for (size_t j = 0; j < i; j++)
            if (seqs[j] == seqs[i]) return RQ_ERR_INVALID_ARG;
        /* a sequence's position is its token count (every layer holds the same) */
        s->seq_pos[i] = rq_cache_seq_n_tokens(s->cache, seqs[i], 0);
        if (s->seq_pos[i] >= (size_t)s->cfg.n_ctx) return RQ_ERR_RANGE;
        has0 |= seqs[i] == 0;
    }
    rq_status st = eval_batch(s, tokens, n, logits, 1, seqs);
    if (st) { /* nothing half-appended: every sequence back to its length (a
               * missing id fails in its append and is skipped here) */
        for (size_t i = 0; i < n; i++) (void)rq_cache_seq_truncate(s->cache, seqs[i], s->seq_pos[i]);
        return st;
    }
    if (has0) s->pos++;
    return RQ_OK;
}

rq_status rqm_session_restore(rqm_session *s, const void *data, size_t n_bytes, size_t n_keep) {
    if (!s || !data) return RQ_ERR_INVALID_ARG;
    if (n_keep > (size_t)s->cfg.n_ctx) return RQ_ERR_RANGE;
    rqm_session_reset(s);
    rq_status st = rq_cache_seq_remove(s->cache, 0);
    if (!st) st = rq_cache_seq_load_mem(s->cache, 0, data, n_bytes); /* all or nothing */
    const int loaded = !st;
    if (!st && rq_cache_seq_n_tokens(s->cache, 0, 0) < n_keep)
        st = RQ_ERR_RANGE; /* (rq_last_error keeps no message of this) */
    if (!st) st = rq_cache_seq_truncate(s->cache, 0, n_keep);
    if (st) { /* sequence 0 back, empty; the failing call's message stays */
        if (loaded) (void)rq_cache_seq_remove(s->cache, 0);
        rq_status st2 = rq_cache_seq_add(s->cache, 0);
        s->broken = st2 != RQ_OK;
        return st;
    }
    s->pos = n_keep;
    return RQ_OK;
}

const char *rqm_default_path(rqm_path_kind kind, char *buf, size_t len) {
    const char *env = getenv(kind == RQM_PATH_MODEL ? "RQ_MODEL" : kind == RQM_PATH_GEMMA3 ? "RQ_GEMMA3" : "RQ_TEXT");
    const char *file = kind == RQM_PATH_MODEL    ? "SmolLM2-135M-Instruct.Q4_1.gguf"
                       : kind == RQM_PATH_GEMMA3 ? "gemma-3-270m-q4_k_m.gguf"
                                                 : "austen.txt";
    const char *dir = getenv("RQ_CACHE_DIR"), *home = getenv("HOME");
    if (env && *env) snprintf(buf, len, "%s", env);
    else if (dir && *dir) snprintf(buf, len, "%s/%s", dir, file);
    else snprintf(buf, len, "%s/.cache/rotorquant/%s", home && *home ? home : ".", file);
    return buf;
}
