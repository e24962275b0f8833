/*
 * kvcache.c — the compressed KV cache and fused decode attention.
 *
 * Layout. Per layer, a page table of pages; a page holds `page_tokens`
 * positions of every KV head: for head h, page_tokens key blocks then
 * page_tokens value blocks (each block the type's exact layout,
 * docs/FORMAT.md). Appending fills the last page and adds pages; only the
 * page table (pointers) is ever reallocated, never token data.
 *
 * Attention. For KV head h and each query head g of its GQA
 * group: q′ = Π_K q (once), and for QJL keys s_q = S q′ (once). Key t scores
 *   scale · ( n′_t Σ_j q′_j c[code_tj]  +  ‖r′_t‖ α Σ_i s_q,i sign_ti )
 * (the second term only for `p` types), or the plain dot product for the
 * baselines. Softmax is online (running max m, sum l); values accumulate in
 * V's rotated domain, acc += p_t n′_t c[code_t] (+ sign part for `p` V), and
 * the output is Π_Vᵀ(acc/l (+ Sᵀ acc_sign/l)). The token range is split into
 * chunks processed by the shared thread pool (src/threads.c;
 * flash-decoding / split-K); chunk
 * partials (m, l, acc) merge exactly.
 *
 * Key basis (optional, per layer and KV head; src/keybasis.c): keys are
 * encoded as A·k and every query is first mapped to A⁻ᵀq, which leaves each
 * score unchanged and moves the quantization error where queries look least.
 *
 * Threads (the contract is stated in rotorquant.h). Attention only reads
 * the cache; everything a call writes lives in its workspace: the caller's
 * (rq_cache_attention_ws) or one taken from the cache's free list
 * (rq_cache_attention). The list is the one piece of state a const call
 * touches, under its own mutex, so any number of threads may attend one
 * cache at once. A workspace is allocated only when more calls run at once
 * than ever before, or a call needs a bigger one: in steady state attention
 * allocates nothing. A call's result depends only on the cache and its
 * arguments (each task of the thread pool writes its own chunk partial,
 * merged in a fixed order), never on which thread or how many run it.
 * Append, clear and setting bases need exclusive access; append encodes
 * into staging buffers that grow with the largest append and are kept, so
 * a decode step (one token per append) allocates nothing either.
 */
#include "attn_kernels.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#define SUB_TOKENS 64    /* tokens scored per pass before the softmax update */
#define TILE_FLOATS 8192 /* decoded floats per sub-block (≥ 2 tokens at d = 4096) */

/* ---- the cache ---------------------------------------------------------- */
typedef struct {
    size_t n_tokens;
    size_t n_pages, cap_pages;
    uint8_t **pages;
    float kmax; /* f32 keys: the largest |stored value| (bounds the scores) */
} layer_store;

/* One KV head's key bases: range r serves positions start[r] ..
 * start[r+1] − 1 (the last one every later position). Per range Aᵀ
 * (row-major: keys are mapped by the column-order product in matvec, the
 * same floats on every machine) and Π_K A⁻ᵀ (row-major, Π_K the key type's
 * rotation, I for the baselines: a query is mapped into every range's basis
 * and rotated by one product, the attention kernels' `scores`, for all
 * heads of the GQA group at once). */
typedef struct key_basis {
    size_t n;
    size_t n_ctx; /* positions it may serve (0: any), from a calibration file */
    size_t *start;
    float *mk; /* [n][d][d] Aᵀ per range           */
    float *mq; /* [n][d][d] Π_K A⁻ᵀ per range, contiguous: one `scores` call maps a query into every range */
} key_basis;

static void key_basis_free(key_basis *b) {
    if (b) free(b->start), free(b->mk), free(b->mq), free(b);
}

/* The range serving position t. */
static size_t range_of(const key_basis *b, size_t t) {
    size_t r = b->n - 1;
    while (r > 0 && b->start[r] > t) r--;
    return r;
}

struct rq_cache {
    rq_cache_config cfg;
    rq_quantizer *qk, *qv;
    size_t bk, bv;          /* bytes per block                     */
    size_t head_stride;     /* bytes of one head's region in a page */
    size_t page_bytes;
    layer_store *layers;
    /* key bases (rq_cache_set_key_basis): per layer × KV head, NULL or */
    struct key_basis **kbasis;
    size_t max_ranges; /* the most ranges of any head's basis (≥ 1): bounds workspaces */
    /* append staging, grown to the largest append (never shrunk) */
    uint8_t *stage;    /* encoded blocks of one append: keys, then values */
    size_t stage_bytes;
    float *kstage;     /* keys mapped into their bases: A·k */
    size_t kstage_floats;
    /* attention workspaces not in use (rq_cache_attention), under ws_mu:
     * the only state a const call changes */
    pthread_mutex_t ws_mu;
    struct workspace *ws_free;
};

/* One attention workspace: `floats` floats at `data`, 64-byte aligned. */
typedef struct workspace {
    struct workspace *next;
    size_t floats;
    float *data;
} workspace;

rq_cache_config rq_cache_config_default(void) {
    rq_cache_config c;
    memset(&c, 0, sizeof c);
    c.n_layers = 1, c.n_kv_heads = 1, c.head_dim = 128;
    c.type_k = "turbo3", c.type_v = "turbo3";
    c.quant = rq_quant_config_default();
    c.page_tokens = 256;
    c.n_threads = 1;
    return c;
}

void rq_cache_free(rq_cache *c) {
    if (!c) return;
    for (workspace *w = c->ws_free, *next; w; w = next) {
        next = w->next;
        free(w->data), free(w);
    }
    pthread_mutex_destroy(&c->ws_mu);
    free(c->stage), free(c->kstage);
    if (c->layers) {
        for (int l = 0; l < c->cfg.n_layers; l++) {
            for (size_t p = 0; p < c->layers[l].n_pages; p++) free(c->layers[l].pages[p]);
            free(c->layers[l].pages);
        }
        free(c->layers);
    }
    if (c->kbasis)
        for (size_t i = 0; i < (size_t)c->cfg.n_layers * (size_t)c->cfg.n_kv_heads; i++) key_basis_free(c->kbasis[i]);
    free(c->kbasis);
    rq_quantizer_free(c->qk);
    rq_quantizer_free(c->qv);
    free(c);
}

rq_status rq_cache_init(rq_cache **out, const rq_cache_config *cfg) {
    if (!out) return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_init: out is NULL");
    *out = NULL;
    if (!cfg) return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_init: cfg is NULL");
    if (cfg->n_layers < 1 || cfg->n_layers > 4096)
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_init: n_layers = %d out of range (1..4096)", cfg->n_layers);
    if (cfg->n_kv_heads < 1 || cfg->n_kv_heads > 4096)
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_init: n_kv_heads = %d out of range (1..4096)", cfg->n_kv_heads);
    if (cfg->page_tokens < 0 || cfg->page_tokens > (1 << 20))
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_init: page_tokens = %d out of range (0..%d)", cfg->page_tokens,
                        1 << 20);
    if (cfg->n_threads < 0 || cfg->n_threads > 256)
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_init: n_threads = %d out of range (0..256)", cfg->n_threads);
    rq_cache *c = calloc(1, sizeof *c);
    if (!c) return rq__fail(RQ_ERR_NOMEM, "rq_cache_init: out of memory");
    if (pthread_mutex_init(&c->ws_mu, NULL)) {
        free(c);
        return rq__fail(RQ_ERR_NOMEM, "rq_cache_init: cannot create a mutex");
    }
    c->max_ranges = 1;
    c->cfg = *cfg;
    if (!c->cfg.page_tokens) c->cfg.page_tokens = 256;
    if (!c->cfg.n_threads) c->cfg.n_threads = 1;
    rq_quant_config qv = cfg->quant;
    qv.seed = rq_seed_derive(cfg->quant.seed, RQ_STREAM_ROTATION, 1); /* V gets its own rotation */
    rq_status st = rq_quantizer_init(&c->qk, cfg->type_k, cfg->head_dim, &cfg->quant);
    if (st) rq__fail(st, "rq_cache_init: type_k: %s", rq_last_error());
    if (!st && (st = rq_quantizer_init(&c->qv, cfg->type_v, cfg->head_dim, &qv)))
        rq__fail(st, "rq_cache_init: type_v: %s", rq_last_error());
    if (!st) {
        c->bk = rq_quantizer_bytes_per_vector(c->qk);
        c->bv = rq_quantizer_bytes_per_vector(c->qv);
        c->head_stride = (size_t)c->cfg.page_tokens * (c->bk + c->bv);
        c->page_bytes = c->head_stride * (size_t)cfg->n_kv_heads;
        c->layers = calloc((size_t)cfg->n_layers, sizeof(layer_store));
        c->kbasis = calloc((size_t)cfg->n_layers * (size_t)cfg->n_kv_heads, sizeof(key_basis *));
        if (!c->layers || !c->kbasis) st = rq__fail(RQ_ERR_NOMEM, "rq_cache_init: out of memory");
    }
    if (st) {
        rq_cache_free(c);
        return st;
    }
    *out = c;
    return RQ_OK;
}

void rq_cache_clear(rq_cache *c) {
    if (!c) return;
    for (int l = 0; l < c->cfg.n_layers; l++) c->layers[l].n_tokens = 0, c->layers[l].kmax = 0;
}

size_t rq_cache_n_tokens(const rq_cache *c, int layer) {
    return (c && layer >= 0 && layer < c->cfg.n_layers) ? c->layers[layer].n_tokens : 0;
}

size_t rq_cache_bytes_per_token(const rq_cache *c) {
    return c ? (size_t)c->cfg.n_layers * (size_t)c->cfg.n_kv_heads * (c->bk + c->bv) : 0;
}

size_t rq_cache_bytes_used(const rq_cache *c) {
    if (!c) return 0;
    size_t n = 0;
    for (int l = 0; l < c->cfg.n_layers; l++) n += c->layers[l].n_tokens;
    return n * (size_t)c->cfg.n_kv_heads * (c->bk + c->bv);
}

size_t rq_cache_bytes_allocated(const rq_cache *c) {
    if (!c) return 0;
    size_t n = 0;
    for (int l = 0; l < c->cfg.n_layers; l++)
        n += c->layers[l].n_pages * (c->page_bytes + RQ_PAGE_SLACK) + c->layers[l].cap_pages * sizeof(uint8_t *);
    return n;
}

const rq_quantizer *rq_cache_quantizer(const rq_cache *c, int is_value) {
    return c ? (is_value ? c->qv : c->qk) : NULL;
}

/* One head's bases from n ranges' A (validated: starts, finite, invertible
 * and well conditioned); *out = NULL for n = 0. `fn` names the public
 * function in messages. */
static rq_status key_basis_build(const rq_cache *c, const char *fn, int layer, int kv_head, size_t n_ranges,
                                 const size_t *start, const float *A, key_basis **out) {
    *out = NULL;
    if (!n_ranges || !A) return RQ_OK;
    if (!start) return rq__fail(RQ_ERR_INVALID_ARG, "%s: start is NULL", fn);
    if (n_ranges > 4096) return rq__fail(RQ_ERR_INVALID_ARG, "%s: n_ranges = %zu out of range (0..4096)", fn, n_ranges);
    if (start[0] != 0) return rq__fail(RQ_ERR_INVALID_ARG, "%s: start[0] = %zu, must be 0", fn, start[0]);
    for (size_t r = 1; r < n_ranges; r++)
        if (start[r] <= start[r - 1])
            return rq__fail(RQ_ERR_INVALID_ARG, "%s: start[%zu] = %zu not above start[%zu] = %zu", fn, r, start[r],
                            r - 1, start[r - 1]);
    const size_t d = (size_t)c->cfg.head_dim, dd = d * d;
    for (size_t i = 0; i < n_ranges * dd; i++)
        if (!rq__finite(A[i]))
            return rq__fail(RQ_ERR_NONFINITE, "%s: layer %d, KV head %d: A[%zu][%zu][%zu] = %g", fn, layer, kv_head,
                            i / dd, i % dd / d, i % d, (double)A[i]);
    key_basis *b = calloc(1, sizeof *b);
    if (b) {
        b->start = malloc(n_ranges * sizeof(size_t));
        b->mk = malloc(sizeof(float) * dd * n_ranges), b->mq = malloc(sizeof(float) * dd * n_ranges);
    }
    if (!b || !b->start || !b->mk || !b->mq) {
        key_basis_free(b);
        return rq__fail(RQ_ERR_NOMEM, "%s: out of memory", fn);
    }
    b->n = n_ranges;
    memcpy(b->start, start, n_ranges * sizeof(size_t));
    float col[RQ_MAX_DIMS], rcol[RQ_MAX_DIMS];
    for (size_t r = 0; r < n_ranges; r++) {
        const float *Ar = A + r * dd;
        float *mt = b->mk + r * dd, *inv = b->mq + r * dd;
        rq_status st = rq_key_basis_inverse_t(Ar, (int)d, inv);
        if (st) {
            key_basis_free(b);
            return rq__fail(st, "%s: layer %d, KV head %d, range %zu: %s", fn, layer, kv_head, r, rq_last_error());
        }
        for (size_t j = 0; c->qk->rot && j < d; j++) { /* Π_K A⁻ᵀ, column by column */
            for (size_t i = 0; i < d; i++) col[i] = inv[i * d + j];
            rq_rotation_forward(c->qk->rot, col, rcol, 1);
            for (size_t i = 0; i < d; i++) inv[i * d + j] = rcol[i];
        }
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) mt[j * d + i] = Ar[i * d + j]; /* Aᵀ */
    }
    *out = b;
    return RQ_OK;
}

/* Puts b in place of the head's bases and updates max_ranges. */
static void key_basis_install(rq_cache *c, size_t slot, key_basis *b) {
    key_basis_free(c->kbasis[slot]);
    c->kbasis[slot] = b;
    c->max_ranges = 1;
    for (size_t i = 0; i < (size_t)c->cfg.n_layers * (size_t)c->cfg.n_kv_heads; i++)
        if (c->kbasis[i] && c->kbasis[i]->n > c->max_ranges) c->max_ranges = c->kbasis[i]->n;
}

rq_status rq_cache_set_key_basis(rq_cache *c, int layer, int kv_head, size_t n_ranges, const size_t *start,
                                 const float *A) {
    static const char fn[] = "rq_cache_set_key_basis";
    if (!c) return rq__fail(RQ_ERR_INVALID_ARG, "%s: cache is NULL", fn);
    if (layer < 0 || layer >= c->cfg.n_layers)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: layer %d out of range (n_layers = %d)", fn, layer, c->cfg.n_layers);
    if (kv_head < 0 || kv_head >= c->cfg.n_kv_heads)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: kv_head %d out of range (n_kv_heads = %d)", fn, kv_head,
                        c->cfg.n_kv_heads);
    if (c->layers[layer].n_tokens) /* stored keys are in the old basis */
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: layer %d already holds %zu tokens (set bases before appending)", fn,
                        layer, c->layers[layer].n_tokens);
    key_basis *b;
    rq_status st = key_basis_build(c, fn, layer, kv_head, n_ranges, start, A, &b);
    if (st) return st;
    key_basis_install(c, (size_t)layer * (size_t)c->cfg.n_kv_heads + (size_t)kv_head, b);
    return RQ_OK;
}

rq_status rq_cache_set_key_bases(rq_cache *c, const rq_key_basis_info *info, const float *basis) {
    static const char fn[] = "rq_cache_set_key_bases";
    if (!c || !info || !basis)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !c ? "cache" : !info ? "info" : "basis");
    if (info->n_layers != c->cfg.n_layers || info->n_kv_heads != c->cfg.n_kv_heads ||
        info->head_dim != c->cfg.head_dim)
        return rq__fail(RQ_ERR_SHAPE,
                        "%s: bases for %d layers × %d KV heads × head_dim %d, the cache has %d × %d × %d", fn,
                        info->n_layers, info->n_kv_heads, info->head_dim, c->cfg.n_layers, c->cfg.n_kv_heads,
                        c->cfg.head_dim);
    if (info->n_ranges < 1 || info->n_ranges > RQ_KEY_BASIS_MAX_RANGES)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: n_ranges = %zu out of range (1..%d)", fn, info->n_ranges,
                        RQ_KEY_BASIS_MAX_RANGES);
    if (info->n_ctx > 0 && info->start[info->n_ranges - 1] >= info->n_ctx)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: start[%zu] = %zu not below n_ctx = %zu", fn, info->n_ranges - 1,
                        info->start[info->n_ranges - 1], info->n_ctx);
    for (int l = 0; l < c->cfg.n_layers; l++)
        if (c->layers[l].n_tokens)
            return rq__fail(RQ_ERR_INVALID_ARG, "%s: layer %d already holds %zu tokens (set bases before appending)",
                            fn, l, c->layers[l].n_tokens);
    /* every head's bases first: on any error the cache keeps its old ones */
    const size_t n = (size_t)c->cfg.n_layers * (size_t)c->cfg.n_kv_heads;
    const size_t per_head = info->n_ranges * (size_t)c->cfg.head_dim * (size_t)c->cfg.head_dim;
    key_basis **built = calloc(n, sizeof *built);
    if (!built) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory", fn);
    rq_status st = RQ_OK;
    for (size_t i = 0; i < n && !st; i++) {
        st = key_basis_build(c, fn, (int)(i / (size_t)c->cfg.n_kv_heads), (int)(i % (size_t)c->cfg.n_kv_heads),
                             info->n_ranges, info->start, basis + i * per_head, &built[i]);
        if (!st) built[i]->n_ctx = info->n_ctx;
    }
    for (size_t i = 0; i < n; i++) {
        if (st) key_basis_free(built[i]);
        else key_basis_install(c, i, built[i]);
    }
    free(built);
    return st;
}

/* y = M x from Mt = Mᵀ (row-major d×d): y[i] = Σ_j M[i][j] x[j], each sum
 * from 0 in index order j = 0..d−1, multiply and add rounded separately
 * (docs/FORMAT.md §6) — the same floats as a plain row dot product on every
 * machine, but 16 outputs at a time stay in registers while the columns
 * stream past (the compiler vectorizes the lanes; no FMA: -ffp-contract=off). */
static void matvec(const float *restrict Mt, const float *restrict x, int d, float *restrict y) {
    int i0 = 0;
    for (; i0 + 16 <= d; i0 += 16) {
        float acc[16] = {0};
        for (int j = 0; j < d; j++) {
            const float xj = x[j], *col = Mt + (size_t)j * (size_t)d + (size_t)i0;
            for (int u = 0; u < 16; u++) acc[u] += col[u] * xj;
        }
        memcpy(y + i0, acc, sizeof acc);
    }
    for (int i = i0; i < d; i++) { /* the rest (d not a multiple of 16) */
        float s = 0;
        for (int j = 0; j < d; j++) s += Mt[(size_t)j * (size_t)d + (size_t)i] * x[j];
        y[i] = s;
    }
}

static inline uint8_t *key_block(const rq_cache *c, const layer_store *ls, int h, size_t t) {
    size_t pt = (size_t)c->cfg.page_tokens;
    return ls->pages[t / pt] + (size_t)h * c->head_stride + (t % pt) * c->bk;
}

static inline uint8_t *value_block(const rq_cache *c, const layer_store *ls, int h, size_t t) {
    size_t pt = (size_t)c->cfg.page_tokens;
    return ls->pages[t / pt] + (size_t)h * c->head_stride + pt * c->bk + (t % pt) * c->bv;
}

/* The message for a failed encode of n vectors x (k or v of an append):
 * encodes them one at a time into blk (room for one block) to find the
 * first one the type refuses, and names its token, head and largest value.
 * Error path only. */
static rq_status append_error(const rq_cache *c, rq_status st, int layer, const char *what, const rq_quantizer *q,
                              const float *x, size_t n_vec, uint8_t *blk) {
    const size_t d = (size_t)c->cfg.head_dim, H = (size_t)c->cfg.n_kv_heads;
    size_t i = 0;
    while (i < n_vec && !rq_quantizer_encode(q, x + i * d, blk, 1)) i++;
    if (i == n_vec) return rq__fail(st, "rq_cache_append: layer %d: %ss: %s", layer, what, rq_status_str(st));
    size_t at = 0;
    for (size_t j = 0; j < d; j++)
        if (!rq__finite(x[i * d + j]) || (rq__finite(x[i * d + at]) && fabsf(x[i * d + j]) > fabsf(x[i * d + at])))
            at = j;
    return rq__fail(st, "rq_cache_append: layer %d, token %zu, KV head %zu: %s[%zu] = %g %s", layer, i / H, i % H,
                    what, at, (double)x[i * d + at],
                    st == RQ_ERR_NONFINITE ? "is not finite"
                                           : st == RQ_ERR_RANGE ? "(or the vector's norm) is too large for the type"
                                                                : rq_status_str(st));
}

rq_status rq_cache_append(rq_cache *c, int layer, const float *k, const float *v, size_t n_tokens) {
    if (!c) return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_append: cache is NULL");
    if (layer < 0 || layer >= c->cfg.n_layers)
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_append: layer %d out of range (n_layers = %d)", layer,
                        c->cfg.n_layers);
    if (n_tokens && (!k || !v))
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_append: %s is NULL with n_tokens = %zu", !k ? "k" : "v",
                        n_tokens);
    if (!n_tokens) return RQ_OK;
    layer_store *ls = &c->layers[layer];
    size_t H = (size_t)c->cfg.n_kv_heads, d = (size_t)c->cfg.head_dim, pt = (size_t)c->cfg.page_tokens;
    if (n_tokens > ((size_t)1 << 40) / (H * d))
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_append: n_tokens = %zu too large (at most %zu per call)",
                        n_tokens, ((size_t)1 << 40) / (H * d));
    key_basis **kb = c->kbasis + (size_t)layer * H;
    bool any_basis = false;
    for (size_t h = 0; h < H; h++) {
        if (kb[h] && kb[h]->n_ctx && ls->n_tokens + n_tokens > kb[h]->n_ctx)
            return rq__fail(RQ_ERR_RANGE,
                            "rq_cache_append: layer %d: positions up to %zu, but the key basis was calibrated on %zu "
                            "positions",
                            layer, ls->n_tokens + n_tokens - 1, kb[h]->n_ctx);
        any_basis |= kb[h] != NULL;
    }
    /* 1. encode everything into the staging buffer (grown with the largest
     *    append, kept): a bad value rejects the whole append and leaves the
     *    cache untouched */
    const size_t n_vec = n_tokens * H, n_stage = n_vec * (c->bk + c->bv);
    if (n_stage > c->stage_bytes) {
        uint8_t *ns = realloc(c->stage, n_stage);
        if (!ns) return rq__fail(RQ_ERR_NOMEM, "rq_cache_append: out of memory (%zu staging bytes)", n_stage);
        c->stage = ns, c->stage_bytes = n_stage;
    }
    uint8_t *stage = c->stage;
    /* keys of heads with a basis are stored as A·k, A the basis of the
     * key's position range */
    if (any_basis && n_vec * d > c->kstage_floats) {
        float *nk = realloc(c->kstage, sizeof(float) * n_vec * d);
        if (!nk) return rq__fail(RQ_ERR_NOMEM, "rq_cache_append: out of memory (%zu staging floats)", n_vec * d);
        c->kstage = nk, c->kstage_floats = n_vec * d;
    }
    float *kt = any_basis ? c->kstage : NULL;
    for (size_t i = 0; kt && i < n_vec; i++) {
        const key_basis *b = kb[i % H];
        if (b) matvec(b->mk + range_of(b, ls->n_tokens + i / H) * d * d, k + i * d, (int)d, kt + i * d);
        else memcpy(kt + i * d, k + i * d, sizeof(float) * d);
    }
    const float *ks = kt ? kt : k;
    rq_status st = rq_quantizer_encode(c->qk, ks, stage, n_vec);
    if (st) return append_error(c, st, layer, kt ? "key in its basis, A·k" : "k", c->qk, ks, n_vec, stage);
    if ((st = rq_quantizer_encode(c->qv, v, stage + n_vec * c->bk, n_vec)))
        return append_error(c, st, layer, "v", c->qv, v, n_vec, stage);
    /* 2. make room: page table first, then pages */
    size_t need = (ls->n_tokens + n_tokens + pt - 1) / pt;
    if (need > ls->cap_pages) {
        size_t cap = ls->cap_pages ? ls->cap_pages : 4;
        while (cap < need) cap *= 2;
        uint8_t **np = realloc(ls->pages, cap * sizeof *np);
        if (!np) return rq__fail(RQ_ERR_NOMEM, "rq_cache_append: out of memory (page table of %zu pages)", cap);
        ls->pages = np, ls->cap_pages = cap;
    }
    while (ls->n_pages < need) { /* pages added stay allocated for reuse, even if a later one fails */
        uint8_t *pg = malloc(c->page_bytes + RQ_PAGE_SLACK); /* SIMD readers over-read */
        if (!pg) return rq__fail(RQ_ERR_NOMEM, "rq_cache_append: out of memory (a page of %zu bytes)", c->page_bytes);
        ls->pages[ls->n_pages++] = pg;
    }
    /* 3. copy blocks into place; f32 keys: the largest |value| bounds the
     *    scores attention can meet (the other types' blocks bound it) */
    for (size_t t = 0; t < n_tokens; t++)
        for (size_t h = 0; h < H; h++) {
            memcpy(key_block(c, ls, (int)h, ls->n_tokens + t), stage + (t * H + h) * c->bk, c->bk);
            memcpy(value_block(c, ls, (int)h, ls->n_tokens + t), stage + n_vec * c->bk + (t * H + h) * c->bv, c->bv);
        }
    if (rq_quantizer_type(c->qk)->family == RQ_FAMILY_F32)
        for (size_t i = 0; i < n_vec * d; i++) ls->kmax = fabsf(ks[i]) > ls->kmax ? fabsf(ks[i]) : ls->kmax;
    ls->n_tokens += n_tokens;
    return RQ_OK;
}

/* ---- fused attention ------------------------------------------------------ */
/* How a type's block is read by the kernels: the quantizer's view (its
 * block kind's layout row, offsets, centroids) and its family. */
typedef struct {
    rq_family family;
    rq_block_kind block;
    const rq_block_layout *layout;
    int bits;          /* code bits (MSE/PROD)          */
    size_t off_codes;  /* byte offsets inside the block */
    size_t off_signs;
    const float *cent;
    float alpha;       /* QJL reconstruction scale      */
    bool rotated;      /* works in the rotated domain   */
} block_view;

static block_view view_of(const rq_quantizer *q) {
    const rq_quantizer_view v = rq__quantizer_view(q);
    block_view b = {.family = rq_quantizer_type(q)->family, .block = v.block, .layout = v.layout, .bits = v.bits,
                    .off_codes = v.off_codes, .off_signs = v.off_signs, .cent = v.cent, .alpha = v.alpha,
                    .rotated = v.rotated};
    return b;
}

static inline float f16_at(const uint8_t *p) { return rq_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* Decodes one token's block for the group's dot products / accumulations:
 * returns its values (rotated domain for rotation types; n′·c for codes, the
 * stored values for value blocks — in-place blocks (f32) are used as they
 * are) or NULL for a code-less 1-bit QJL block; fills sig with ±‖r′‖α for
 * blocks with QJL signs. Blocks in the cache come from the encoder, whose
 * fp16 fields are finite (rq_block_layout.fields_ok), so no check here. */
static inline const float *decode_block(const rq_attn_kernels *K, const block_view *bv, const uint8_t *blk,
                                        float *buf, float *sig, int d) {
    if (!bv->layout->codes) {
        if (bv->layout->in_place) return (const float *)(const void *)blk;
        rq__values_decoder(K, bv->block)(blk, d, buf);
        return buf;
    }
    if (bv->layout->signs) K->decode_signs(sig, blk + bv->off_signs, d, f16_at(blk + RQ_PROD_RNORM_OFF) * bv->alpha);
    if (!bv->bits) return NULL;
    K->decode_codes(buf, blk + bv->off_codes, d, bv->bits, bv->cent, f16_at(blk));
    return buf;
}

typedef struct {
    const rq_cache *c;
    const layer_store *ls;
    const rq_attn_kernels *K;
    block_view kv, vv;
    size_t n_queries, n_chunks, chunk_tokens;
    const size_t *n_ctx;
    size_t window; /* 0, or keys t ≥ n_ctx[i] − window only (rq_attn_params) */
    int group, n_q_heads, d;
    float scale;
    key_basis *const *kb; /* the layer's key bases per KV head (NULL: none)   */
    size_t n_ranges;      /* query preparations per head: the most ranges in use */
    const float *qprep; /* [n_queries][n_q_heads][n_ranges][2][d]: scale·q′, scale·S q′ */
    float *partial;     /* [n_queries][n_q_heads][n_chunks][2 + 2d]         */
} attn_job;

static size_t partial_stride(int d) { return 2 + 2 * (size_t)d; }

/* Decodes tokens t0 .. t0+n−1 of KV head h (keys, or values) into tile
 * (QJL sign parts into tile_sig). MSE and copied value blocks go one page
 * run per kernel call; QJL and in-place (f32) blocks token by token (f32 is
 * used in place). Returns false for code-less 1-bit QJL blocks (only
 * tile_sig is filled). */
static bool decode_run(const attn_job *j, const block_view *bv, int h, size_t t0, size_t n, int values, float *tile,
                       float *tile_sig) {
    const rq_cache *c = j->c;
    const int d = j->d;
    const size_t pt = (size_t)c->cfg.page_tokens, stride = values ? c->bv : c->bk;
    if (!bv->layout->signs && !bv->layout->in_place) {
        void (*dec)(const uint8_t *, int, float *) = bv->layout->codes ? NULL : rq__values_decoder(j->K, bv->block);
        for (size_t t = 0; t < n;) {
            size_t m = pt - (t0 + t) % pt;
            m = m < n - t ? m : n - t;
            const uint8_t *blk = values ? value_block(c, j->ls, h, t0 + t) : key_block(c, j->ls, h, t0 + t);
            float *out = tile + t * (size_t)d;
            /* value blocks: a page run is m whole vectors back to back
             * (stride = bytes per vector), decoded as m·d values at once */
            if (!dec) j->K->decode_mse_n(out, blk, stride, (int)m, d, bv->bits, bv->off_codes, bv->cent);
            else dec(blk, (int)m * d, out);
            t += m;
        }
        return true;
    }
    bool codes = true;
    for (size_t t = 0; t < n; t++) {
        const uint8_t *blk = values ? value_block(c, j->ls, h, t0 + t) : key_block(c, j->ls, h, t0 + t);
        const float *x = decode_block(j->K, bv, blk, tile + t * (size_t)d, tile_sig + t * (size_t)d, d);
        if (!x) codes = false;
        else if (x != tile + t * (size_t)d) memcpy(tile + t * (size_t)d, x, sizeof(float) * (size_t)d);
    }
    return codes;
}

/* max(m0, x[0..n−1]) with eight independent partial maxima: a single
 * running max is a chain of n dependent compares. */
static inline float row_max(const float *x, size_t n, float m0) {
    float m[8] = {m0, m0, m0, m0, m0, m0, m0, m0};
    size_t t = 0;
    for (; t + 8 <= n; t += 8)
        for (int u = 0; u < 8; u++) m[u] = x[t + u] > m[u] ? x[t + u] : m[u];
    for (; t < n; t++) m[0] = x[t] > m[0] ? x[t] : m[0];
    for (int u = 1; u < 8; u++) m[0] = m[u] > m[0] ? m[u] : m[0];
    return m[0];
}

/* One task = one KV head × one chunk of tokens, for every query. */
static void attn_task(void *arg, int task) {
    attn_job *j = arg;
    int d = j->d, G = j->group;
    int h = task / (int)j->n_chunks;
    size_t chunk = (size_t)task % j->n_chunks;
    size_t t_begin = chunk * j->chunk_tokens;
    float s[64][SUB_TOKENS]; /* scores of up to 64 group heads */
    /* one sub-block of decoded keys (then values) and their QJL sign parts:
     * 2 × TILE_FLOATS floats on this thread's stack (64 KiB) */
    float tile[TILE_FLOATS], tile_sig[TILE_FLOATS];
    size_t sub = TILE_FLOATS / (size_t)d < SUB_TOKENS ? TILE_FLOATS / (size_t)d : SUB_TOKENS;
    for (size_t i = 0; i < j->n_queries; i++) {
        size_t limit = j->n_ctx ? j->n_ctx[i] : j->ls->n_tokens;
        size_t t_end = t_begin + j->chunk_tokens;
        if (t_end > limit) t_end = limit;
        /* sliding window: the chunk's part at or after limit − window */
        size_t t_lo = j->window && limit > j->window ? limit - j->window : 0;
        size_t t_first = t_begin > t_lo ? t_begin : t_lo;
        for (int g0 = 0; g0 < G; g0 += 64) {
            int gn = G - g0 < 64 ? G - g0 : 64;
            float *P[64];
            const float *Q[64];
            for (int g = 0; g < gn; g++) {
                int qh = h * G + g0 + g;
                P[g] = j->partial + ((i * (size_t)j->n_q_heads + (size_t)qh) * j->n_chunks + chunk) * partial_stride(d);
                P[g][0] = -INFINITY, P[g][1] = 0;
                memset(P[g] + 2, 0, sizeof(float) * 2 * (size_t)d);
                Q[g] = j->qprep + (i * (size_t)j->n_q_heads + (size_t)qh) * j->n_ranges * 2 * (size_t)d;
            }
            const key_basis *kb = j->kb[h];
            const int qstride = (int)(j->n_ranges * 2 * (size_t)d);
            for (size_t t0 = t_first, n; t0 < t_end; t0 += n) {
                n = t_end - t0 < sub ? t_end - t0 : sub;
                /* the query prepared for the key basis of these positions; a
                 * sub-block never spans two ranges */
                size_t r = kb ? range_of(kb, t0) : 0;
                if (kb && r + 1 < kb->n && kb->start[r + 1] - t0 < n) n = kb->start[r + 1] - t0;
                const float *Q0 = Q[0] + r * 2 * (size_t)d;
                bool kprod = j->kv.family == RQ_FAMILY_PROD, vprod = j->vv.family == RQ_FAMILY_PROD;
                /* decode the sub-block's keys once for the group */
                bool kcodes = decode_run(j, &j->kv, h, t0, n, 0, tile, tile_sig);
                for (int g = 0; g < gn; g++) memset(s[g], 0, sizeof(float) * n);
                if (kcodes) j->K->scores(Q0, gn, qstride, tile, (int)n, d, s[0], SUB_TOKENS);
                if (kprod) j->K->scores(Q0 + d, gn, qstride, tile_sig, (int)n, d, s[0], SUB_TOKENS);
                for (int g = 0; g < gn; g++) { /* online softmax update */
                    float m = row_max(s[g], n, P[g][0]);
                    float corr = expf(P[g][0] - m); /* 0 on the first pass (−inf) */
                    if (corr != 1.0f) {
                        for (int x = 0; x < 2 * d; x++) P[g][2 + x] *= corr;
                        P[g][1] *= corr;
                    }
                    P[g][0] = m;
                    P[g][1] += j->K->exp_sum(s[g], (int)n, m);
                }
                bool vcodes = decode_run(j, &j->vv, h, t0, n, 1, tile, tile_sig); /* the values, likewise */
                int lda = (int)(j->n_chunks * partial_stride(d));
                if (vcodes) j->K->accum(P[0] + 2, gn, lda, s[0], SUB_TOKENS, tile, (int)n, d);
                if (vprod) j->K->accum(P[0] + 2 + d, gn, lda, s[0], SUB_TOKENS, tile_sig, (int)n, d);
            }
        }
    }
}

/* Sᵀ v for a float vector v (the QJL part of accumulated values). */
static void qjl_transpose_f(const rq_quantizer *q, const float *v, float *out) { rq__qjl_transpose_f(q, v, out); }

static rq_status check_attention_args(const char *fn, const rq_cache *c, int layer, const float *q,
                                      size_t n_queries, const size_t *n_ctx, const rq_attn_params *p,
                                      const float *out) {
    if (!c || !p) return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !c ? "cache" : "p");
    if (layer < 0 || layer >= c->cfg.n_layers)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: layer %d out of range (n_layers = %d)", fn, layer, c->cfg.n_layers);
    if (n_queries && (!q || !out))
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL with n_queries = %zu", fn, !q ? "q" : "out", n_queries);
    if (p->n_q_heads < c->cfg.n_kv_heads || p->n_q_heads % c->cfg.n_kv_heads)
        return rq__fail(RQ_ERR_SHAPE, "%s: n_q_heads = %d is not a positive multiple of n_kv_heads = %d", fn,
                        p->n_q_heads, c->cfg.n_kv_heads);
    if (!(p->scale >= 0) || isinf(p->scale))
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: scale = %g (must be finite and ≥ 0; 0 = 1/sqrt(head_dim))", fn,
                        (double)p->scale);
    size_t n_tok = c->layers[layer].n_tokens;
    for (size_t i = 0; n_ctx && i < n_queries; i++)
        if (n_ctx[i] > n_tok)
            return rq__fail(RQ_ERR_SHAPE, "%s: n_ctx[%zu] = %zu exceeds the %zu tokens of layer %d", fn, i, n_ctx[i],
                            n_tok, layer);
    const size_t per_query = (size_t)p->n_q_heads * (size_t)c->cfg.head_dim;
    for (size_t i = 0; i < n_queries * per_query; i++)
        if (!rq__finite(q[i]))
            return rq__fail(RQ_ERR_NONFINITE, "%s: q[%zu][%zu][%zu] = %g", fn, i / per_query,
                            i % per_query / (size_t)c->cfg.head_dim, i % (size_t)c->cfg.head_dim, (double)q[i]);
    return RQ_OK;
}

/* ---- workspaces ------------------------------------------------------------
 * A call's scratch, in floats: the prepared queries (n_prep), the chunk
 * partials (n_part) and one GQA group's queries in every range's basis
 * (n_qb). Sized by the plan: how the context is split into chunks and how
 * many key-basis ranges hold tokens. */
#define WS_ALIGN 64 /* bytes: the workspace is used from a 64-byte boundary */

typedef struct {
    size_t chunk_tokens, n_chunks, n_ranges;
    size_t n_prep, n_part, n_qb; /* floats of each part */
} attn_plan;

/* split-K: enough chunks to keep every thread busy, each ≥ 256 tokens */
static size_t chunks_wanted(const rq_cache *c) {
    int nt = c->cfg.n_threads;
    return nt > 1 ? (size_t)(4 * nt + c->cfg.n_kv_heads - 1) / (size_t)c->cfg.n_kv_heads : 1;
}

static void plan_floats(const rq_cache *c, size_t n_queries, int n_q_heads, attn_plan *pl) {
    const size_t d = (size_t)c->cfg.head_dim, Hq = (size_t)n_q_heads;
    pl->n_prep = n_queries * Hq * pl->n_ranges * 2 * d;
    pl->n_part = n_queries * Hq * pl->n_chunks * partial_stride((int)d);
    pl->n_qb = Hq / (size_t)c->cfg.n_kv_heads * pl->n_ranges * d;
}

static void plan_attention(const rq_cache *c, int layer, size_t n_queries, const size_t *n_ctx,
                           const rq_attn_params *p, attn_plan *pl) {
    const layer_store *ls = &c->layers[layer];
    size_t max_ctx = 0;
    for (size_t i = 0; i < n_queries; i++) {
        size_t l = n_ctx ? n_ctx[i] : ls->n_tokens;
        max_ctx = l > max_ctx ? l : max_ctx;
    }
    size_t want = chunks_wanted(c);
    size_t chunk = max_ctx / (want ? want : 1);
    chunk = chunk < 256 ? 256 : (chunk + SUB_TOKENS - 1) / SUB_TOKENS * SUB_TOKENS;
    pl->chunk_tokens = chunk;
    pl->n_chunks = max_ctx ? (max_ctx + chunk - 1) / chunk : 1;
    /* one prepared query per key-basis range that holds tokens */
    key_basis *const *kb = c->kbasis + (size_t)layer * (size_t)c->cfg.n_kv_heads;
    pl->n_ranges = 1;
    for (int h = 0; h < c->cfg.n_kv_heads; h++)
        for (size_t r = 1; kb[h] && r < kb[h]->n && kb[h]->start[r] < max_ctx; r++)
            pl->n_ranges = r + 1 > pl->n_ranges ? r + 1 : pl->n_ranges;
    plan_floats(c, n_queries, p->n_q_heads, pl);
}

static size_t plan_bytes(const attn_plan *pl) { return sizeof(float) * (pl->n_prep + pl->n_part + pl->n_qb) + WS_ALIGN; }

rq_status rq_cache_attention_workspace_size(const rq_cache *c, size_t n_queries, const rq_attn_params *p,
                                            size_t *n_bytes) {
    static const char fn[] = "rq_cache_attention_workspace_size";
    if (!c || !p || !n_bytes)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !c ? "cache" : !p ? "p" : "n_bytes");
    if (p->n_q_heads < c->cfg.n_kv_heads || p->n_q_heads % c->cfg.n_kv_heads)
        return rq__fail(RQ_ERR_SHAPE, "%s: n_q_heads = %d is not a positive multiple of n_kv_heads = %d", fn,
                        p->n_q_heads, c->cfg.n_kv_heads);
    if (n_queries > ((size_t)1 << 32))
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: n_queries = %zu too large", fn, n_queries);
    /* the most any context needs: chunk ≥ max(256, ⌊ctx/want⌋ rounded up),
     * so ⌈ctx/chunk⌉ ≤ want·256/255 + 1 (ctx/⌊ctx/want⌋ ≤ want·256/255 once
     * ⌊ctx/want⌋ ≥ 256); every range of the most-ranged basis in use */
    attn_plan pl;
    const size_t want = chunks_wanted(c);
    pl.n_chunks = want + want / 255 + 2;
    pl.n_ranges = c->max_ranges;
    plan_floats(c, n_queries, p->n_q_heads, &pl);
    *n_bytes = plan_bytes(&pl);
    return RQ_OK;
}

/* The largest |value| a key block of the cache can decode to, in the
 * domain the prepared query meets it: the code part (or the plain values)
 * and, for QJL keys, the sign part. Every fp16 field is at most 65504
 * (encoders refuse more); f32 keys: the largest value stored
 * (layer_store.kmax). */
static void key_value_bound(const layer_store *ls, const block_view *kv, double *codes, double *signs) {
    const double F16_MAX = 65504;
    double cmax = 0;
    if (kv->cent) {
        const int n = 1 << kv->bits;
        cmax = fmax(fabs((double)kv->cent[0]), fabs((double)kv->cent[n - 1]));
    }
    *codes = *signs = 0;
    switch (kv->family) {
    case RQ_FAMILY_F32: *codes = (double)ls->kmax; break;
    case RQ_FAMILY_F16: *codes = F16_MAX; break;
    case RQ_FAMILY_Q8_0: *codes = F16_MAX * 128; break; /* d · q, q ∈ [−128, 127] */
    case RQ_FAMILY_Q4_0: *codes = F16_MAX * 8; break;   /* d · (q − 8), q ∈ [0, 15] */
    case RQ_FAMILY_MSE: *codes = F16_MAX * cmax; break;
    case RQ_FAMILY_PROD:
        *codes = F16_MAX * cmax;
        *signs = F16_MAX * fabs((double)kv->alpha);
        break;
    }
}

/* The largest |x_i| as the bits of a nonnegative float: integer order is
 * float order there, and Inf and NaN (exponent all ones) come out at or
 * above 0x7f800000. Eight independent lanes, no float compare: cheap, and
 * NaN cannot slip past. */
static uint32_t max_abs_bits(const float *x, int n) {
    uint32_t m[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++) {
            uint32_t b;
            memcpy(&b, x + i + u, 4);
            b &= 0x7fffffffu;
            m[u] = b > m[u] ? b : m[u];
        }
    for (; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, 4);
        b &= 0x7fffffffu;
        m[0] = b > m[0] ? b : m[0];
    }
    for (int u = 1; u < 8; u++) m[0] = m[u] > m[0] ? m[u] : m[0];
    return m[0];
}

static float bits_float(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

#define NONFINITE_BITS 0x7f800000u /* max_abs_bits at or above: Inf or NaN */

/* The attention itself, on a workspace of at least plan_bytes(pl). */
static rq_status attend(const rq_cache *c, int layer, const float *q, size_t n_queries, const size_t *n_ctx,
                        const rq_attn_params *p, float *out, const attn_plan *pl, float *ws, const char *fn) {
    const layer_store *ls = &c->layers[layer];
    int d = c->cfg.head_dim, Hq = p->n_q_heads;
    attn_job j;
    memset(&j, 0, sizeof j);
    j.c = c, j.ls = ls, j.K = rq__attn_kernels(), j.d = d, j.n_q_heads = Hq;
    j.kv = view_of(c->qk), j.vv = view_of(c->qv);
    j.group = Hq / c->cfg.n_kv_heads;
    j.n_queries = n_queries, j.n_ctx = n_ctx, j.window = p->window;
    j.scale = p->scale > 0 ? p->scale : 1.0f / sqrtf((float)d);
    j.chunk_tokens = pl->chunk_tokens, j.n_chunks = pl->n_chunks, j.n_ranges = pl->n_ranges;
    j.kb = c->kbasis + (size_t)layer * (size_t)c->cfg.n_kv_heads;
    const size_t n_prep = pl->n_prep, n_part = pl->n_part;
    float *qprep = ws;
    j.qprep = qprep, j.partial = ws + n_prep;

    /* prepare each query head once per key-basis range in use: into the
     * range's basis and rotated (Π A⁻ᵀq, for the group's heads in one
     * `scores` call) or just rotated; sketch for QJL keys; scale */
    const int G = j.group;
    const bool kprod = j.kv.family == RQ_FAMILY_PROD;
    uint32_t qmax = 0, smax = 0; /* the largest |prepared query value|, code and sign parts (max_abs_bits) */
    float *qb = ws + n_prep + n_part; /* [G][n_ranges·d]: every range's Π A⁻ᵀ q of the group's heads */
    for (size_t i = 0; i < n_queries; i++)
        for (int h = 0; h < c->cfg.n_kv_heads; h++) {
            const key_basis *B = j.kb[h];
            const float *qg = q + (i * (size_t)Hq + (size_t)h * (size_t)G) * (size_t)d;
            const size_t nr = B ? (B->n < j.n_ranges ? B->n : j.n_ranges) : 1, ld = nr * (size_t)d;
            if (B) {
                memset(qb, 0, sizeof(float) * (size_t)G * ld);
                j.K->scores(qg, G, d, B->mq, (int)ld, d, qb, (int)ld);
            }
            for (size_t r = 0; r < nr; r++)
                for (int g = 0; g < G; g++) {
                    float *qr = qprep + ((i * (size_t)Hq + (size_t)h * (size_t)G + (size_t)g) * j.n_ranges + r) * 2 *
                                            (size_t)d;
                    if (B) memcpy(qr, qb + (size_t)g * ld + r * (size_t)d, sizeof(float) * (size_t)d);
                    else if (c->qk->rot) rq_rotation_forward(c->qk->rot, qg + (size_t)g * (size_t)d, qr, 1);
                    else memcpy(qr, qg + (size_t)g * (size_t)d, sizeof(float) * (size_t)d);
                    if (kprod) rq__qjl_apply(c->qk, qr, qr + d);
                    /* the score scale goes into the prepared query: one multiply
                     * per coordinate here instead of one per score in the loop */
                    for (int x = 0; x < (kprod ? 2 * d : d); x++) qr[x] *= j.scale;
                    const uint32_t a = max_abs_bits(qr, d), b = kprod ? max_abs_bits(qr + d, d) : 0;
                    qmax = a > qmax ? a : qmax;
                    smax = b > smax ? b : smax;
                }
        }
    /* No score may overflow: every partial sum of a score is at most
     * Σ_j |q′_j k′_j| ≤ d·max|q′|·max|k′| (the sign part likewise), whatever
     * order a SIMD level adds in, so when that bound stays below FLT_MAX/4
     * no score, max or difference of two is Inf or NaN at any level; above
     * it (or with a prepared query that overflowed) the call is refused, the
     * same way at every level. Real models are ~30 orders of magnitude below. */
    double kc, ks;
    key_value_bound(ls, &j.kv, &kc, &ks);
    const double bound = (double)d * ((double)bits_float(qmax) * kc + (double)bits_float(smax) * ks);
    if (qmax >= NONFINITE_BITS || smax >= NONFINITE_BITS || !(bound <= FLT_MAX / 4))
        return rq__fail(RQ_ERR_RANGE,
                        "%s: scores may overflow: max |scale·q| = %g (scale = %g) times the largest key value of "
                        "layer %d (%g), times head_dim %d, exceeds FLT_MAX/4",
                        fn, (double)bits_float(qmax > smax ? qmax : smax), (double)j.scale, layer, kc > ks ? kc : ks,
                        d);

    rq_parallel_for(c->cfg.n_threads, c->cfg.n_kv_heads * (int)j.n_chunks, attn_task, &j);

    /* merge chunk partials and leave the rotated domain */
    float acc[RQ_MAX_DIMS], sig[RQ_MAX_DIMS], tmp[RQ_MAX_DIMS];
    for (size_t i = 0; i < n_queries * (size_t)Hq; i++) {
        const float *P = j.partial + i * j.n_chunks * partial_stride(d);
        float M = -INFINITY, L = 0;
        for (size_t k = 0; k < j.n_chunks; k++) M = P[k * partial_stride(d)] > M ? P[k * partial_stride(d)] : M;
        memset(acc, 0, sizeof(float) * (size_t)d);
        memset(sig, 0, sizeof(float) * (size_t)d);
        for (size_t k = 0; k < j.n_chunks; k++) {
            const float *pk = P + k * partial_stride(d);
            if (pk[1] == 0) continue;
            float w = expf(pk[0] - M);
            L += w * pk[1];
            for (int x = 0; x < d; x++) acc[x] += w * pk[2 + x], sig[x] += w * pk[2 + d + x];
        }
        float *o = out + i * (size_t)d;
        if (L == 0) { /* empty context: zero output */
            memset(o, 0, sizeof(float) * (size_t)d);
            continue;
        }
        float inv = 1.0f / L;
        for (int x = 0; x < d; x++) acc[x] *= inv;
        if (j.vv.family == RQ_FAMILY_PROD) {
            for (int x = 0; x < d; x++) sig[x] *= inv;
            qjl_transpose_f(c->qv, sig, tmp);
            for (int x = 0; x < d; x++) acc[x] += tmp[x];
        }
        if (c->qv->rot) rq_rotation_inverse(c->qv->rot, acc, o, 1);
        else memcpy(o, acc, sizeof(float) * (size_t)d);
        /* the scores cannot overflow (above); sums of huge f32 values can */
        if (max_abs_bits(o, d) >= NONFINITE_BITS)
            return rq__fail(RQ_ERR_RANGE, "%s: the output of query %zu, head %zu overflows (values too large)", fn,
                            i / (size_t)Hq, i % (size_t)Hq);
    }
    return RQ_OK;
}

rq_status rq_cache_attention_ws(const rq_cache *c, int layer, const float *q, size_t n_queries, const size_t *n_ctx,
                                const rq_attn_params *p, float *out, void *ws, size_t ws_bytes) {
    static const char fn[] = "rq_cache_attention_ws";
    rq_status st = check_attention_args(fn, c, layer, q, n_queries, n_ctx, p, out);
    if (st || !n_queries) return st;
    attn_plan pl;
    plan_attention(c, layer, n_queries, n_ctx, p, &pl);
    if (!ws || ws_bytes < plan_bytes(&pl))
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: workspace of %zu bytes%s, this call needs %zu", fn, ws_bytes,
                        ws ? "" : " at NULL", plan_bytes(&pl));
    uintptr_t a = ((uintptr_t)ws + WS_ALIGN - 1) & ~(uintptr_t)(WS_ALIGN - 1);
    return attend(c, layer, q, n_queries, n_ctx, p, out, &pl, (float *)(void *)a, fn);
}

/* A workspace of at least `floats` floats from the cache's free list, or a
 * new one (more calls at once than ever before, or a bigger call). */
static workspace *ws_take(const rq_cache *cc, size_t floats) {
    rq_cache *c = (rq_cache *)cc; /* the list and its mutex only: see the file comment */
    pthread_mutex_lock(&c->ws_mu);
    workspace *w = c->ws_free;
    if (w) c->ws_free = w->next;
    pthread_mutex_unlock(&c->ws_mu);
    if (!w && !(w = calloc(1, sizeof *w))) return NULL;
    if (w->floats < floats) {
        float *nd = realloc(w->data, sizeof(float) * floats);
        if (!nd) {
            free(w->data), free(w);
            return NULL;
        }
        w->data = nd, w->floats = floats;
    }
    return w;
}

static void ws_give(const rq_cache *cc, workspace *w) {
    rq_cache *c = (rq_cache *)cc;
    pthread_mutex_lock(&c->ws_mu);
    w->next = c->ws_free, c->ws_free = w;
    pthread_mutex_unlock(&c->ws_mu);
}

rq_status rq_cache_attention(const rq_cache *c, int layer, const float *q, size_t n_queries, const size_t *n_ctx,
                             const rq_attn_params *p, float *out) {
    static const char fn[] = "rq_cache_attention";
    rq_status st = check_attention_args(fn, c, layer, q, n_queries, n_ctx, p, out);
    if (st || !n_queries) return st;
    attn_plan pl;
    plan_attention(c, layer, n_queries, n_ctx, p, &pl);
    const size_t floats = (plan_bytes(&pl) + sizeof(float) - 1) / sizeof(float);
    workspace *w = ws_take(c, floats);
    if (!w) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory (a workspace of %zu bytes)", fn, plan_bytes(&pl));
    uintptr_t a = ((uintptr_t)w->data + WS_ALIGN - 1) & ~(uintptr_t)(WS_ALIGN - 1);
    st = attend(c, layer, q, n_queries, n_ctx, p, out, &pl, (float *)(void *)a, fn);
    ws_give(c, w);
    return st;
}

rq_status rq_cache_attention_ref(const rq_cache *c, int layer, const float *q, size_t n_queries,
                                 const size_t *n_ctx, const rq_attn_params *p, float *out) {
    rq_status st = check_attention_args("rq_cache_attention_ref", c, layer, q, n_queries, n_ctx, p, out);
    if (st || !n_queries) return st;
    const layer_store *ls = &c->layers[layer];
    int d = c->cfg.head_dim, Hq = p->n_q_heads, G = Hq / c->cfg.n_kv_heads;
    size_t n_tok = ls->n_tokens;
    double scale = p->scale > 0 ? p->scale : 1.0 / sqrt((double)d);
    float *kd = malloc(sizeof(float) * (n_tok ? n_tok : 1) * (size_t)d);
    float *vd = malloc(sizeof(float) * (n_tok ? n_tok : 1) * (size_t)d);
    double *sc = malloc(sizeof(double) * (n_tok ? n_tok : 1));
    double *o = malloc(sizeof(double) * (size_t)d);
    float *y = malloc(sizeof(float) * (size_t)d);
    if (!kd || !vd || !sc || !o || !y) {
        free(kd), free(vd), free(sc), free(o), free(y);
        return rq__fail(RQ_ERR_NOMEM, "rq_cache_attention_ref: out of memory (%zu tokens decoded)", n_tok);
    }
    for (int h = 0; h < c->cfg.n_kv_heads; h++) {
        const key_basis *B = c->kbasis[(size_t)layer * (size_t)c->cfg.n_kv_heads + (size_t)h];
        for (size_t t = 0; t < n_tok; t++) {
            float *kt = kd + t * (size_t)d;
            rq_quantizer_decode(c->qk, key_block(c, ls, h, t), kt, 1);
            if (B) { /* back from the range's basis: k = A⁻¹ (A k) = (Πᵀ Π A⁻ᵀ)ᵀ (A k) */
                const float *pit = B->mq + range_of(B, t) * (size_t)d * (size_t)d;
                if (c->qk->rot) rq_rotation_forward(c->qk->rot, kt, y, 1); /* Π (A k) */
                else memcpy(y, kt, sizeof(float) * (size_t)d);
                for (int x = 0; x < d; x++) { /* (Π A⁻ᵀ)ᵀ Π (A k) = A⁻¹ Πᵀ Π A k */
                    double a = 0;
                    for (int z = 0; z < d; z++) a += (double)pit[(size_t)z * (size_t)d + (size_t)x] * y[z];
                    kt[x] = (float)a;
                }
            }
            rq_quantizer_decode(c->qv, value_block(c, ls, h, t), vd + t * (size_t)d, 1);
        }
        for (size_t i = 0; i < n_queries; i++)
            for (int g = 0; g < G; g++) {
                size_t qh = (size_t)h * (size_t)G + (size_t)g;
                const float *qi = q + (i * (size_t)Hq + qh) * (size_t)d;
                float *oi = out + (i * (size_t)Hq + qh) * (size_t)d;
                size_t lim = n_ctx ? n_ctx[i] : n_tok;
                size_t lo = p->window && lim > p->window ? lim - p->window : 0; /* sliding window */
                double m = -INFINITY, l = 0;
                for (size_t t = lo; t < lim; t++) {
                    double s = 0;
                    for (int x = 0; x < d; x++) s += (double)qi[x] * kd[t * (size_t)d + (size_t)x];
                    sc[t] = s * scale;
                    m = sc[t] > m ? sc[t] : m;
                }
                for (int x = 0; x < d; x++) o[x] = 0;
                for (size_t t = lo; t < lim; t++) {
                    double w = exp(sc[t] - m);
                    l += w;
                    for (int x = 0; x < d; x++) o[x] += w * vd[t * (size_t)d + (size_t)x];
                }
                for (int x = 0; x < d; x++) oi[x] = l > 0 ? (float)(o[x] / l) : 0.0f;
            }
    }
    free(kd), free(vd), free(sc), free(o), free(y);
    return RQ_OK;
}
