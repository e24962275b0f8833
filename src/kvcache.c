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

#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB_TOKENS 64    /* tokens scored per pass before the softmax update */
#define TILE_FLOATS 8192 /* decoded floats per sub-block (≥ 2 tokens at d = 4096) */

/* ---- the cache ----------------------------------------------------------
 * Pages come from one pool per cache. A page is `page_bytes` of blocks
 * (+ RQ_PAGE_SLACK of tail padding for SIMD over-reads) preceded by a
 * PAGE_HDR-byte header holding its reference count: every sequence whose
 * block table points at it holds one reference (fork shares pages; a
 * sequence writing into a shared page copies it first). Pages whose last
 * reference goes return to the pool's free list, reused before any new
 * allocation; the pool never holds more than max_pages pages. */
#define PAGE_HDR 64 /* bytes before a page's data: the header, keeps its alignment */

typedef struct page_hdr {
    struct page_hdr *next; /* free list */
    size_t refs;           /* block tables pointing at the page; 0 when free */
    int cls;               /* its size class (rq_cache.cls): the free list it returns to */
} page_hdr;

/* Pages of one size: layers whose K/V types give the same page bytes share
 * a class (one class when every layer has the same types). */
typedef struct {
    size_t cost;    /* PAGE_HDR + page bytes + RQ_PAGE_SLACK */
    page_hdr *free; /* free list */
    size_t n_free;
} page_class;

/* One layer's K/V types (rq_cache_config.layer_type_k/v): its quantizers
 * (owned by the cache, shared by layers of the same type), block bytes and
 * page geometry. */
typedef struct layer_kind {
    rq_quantizer *qk, *qv;
    size_t bk, bv;       /* bytes per block                      */
    size_t head_stride;  /* bytes of one head's region in a page */
    size_t page_bytes;
    int cls;             /* page size class                      */
    bool k8;             /* k8 keys: stored as (k − μ)/σ (σ: the layer's per-head key scale) */
} layer_kind;

static page_hdr *hdr_of(uint8_t *pg) { return (page_hdr *)(void *)(pg - PAGE_HDR); }
static uint8_t *data_of(page_hdr *h) { return (uint8_t *)(void *)h + PAGE_HDR; }

/* One sequence's store of one layer: its block table. Pages before
 * n_dropped are NULL (released behind the layer's sliding window). */
typedef struct {
    const layer_kind *kind; /* the layer's types and page geometry */
    size_t n_tokens;
    size_t n_pages, cap_pages;
    size_t n_dropped;
    uint8_t **pages;
    float kmax; /* f32 keys: the largest |stored value| (bounds the scores) */
    /* key centring (cfg.centre_keys), allocated with position 0: per KV
     * head μ, the sink key k0 and value v0 (fp16: the saved state), and the
     * sink in the kernels' domains, Π_K A₀(k0 − μ) and Π_V v0 (derived) */
    uint16_t *cx;   /* [H][3][d]: μ, k0, v0; then [H] σ (k8 keys; else 1) */
    float *sinkf;   /* [H][2][d]                                         */
    float sink_kmax; /* the largest |sinkf key value| (bounds the scores) */
    int mu_set;     /* μ (and σ) fixed (by the first append past position 0) */
} layer_store;

typedef struct {
    int id;
    layer_store *layers; /* [n_layers] */
} sequence;

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
    rq_quantizer *qk, *qv;  /* the default types' (type_k, type_v)   */
    layer_kind *kind;       /* [n_layers]                            */
    rq_quantizer **quants;  /* every distinct quantizer, owned       */
    uint8_t *quant_is_value; /* [i]: quants[i] is a value quantizer  */
    size_t n_quants;
    /* sequences, sorted by id (binary search) */
    sequence **seqs;
    size_t n_seqs, cap_seqs;
    size_t *window;       /* [n_layers]: sliding window in tokens, 0 = none */
    /* the page pool: a free list per page size, one byte budget */
    page_class *cls;
    int n_cls, big_cls;   /* classes; the one with the largest pages */
    size_t n_pages_alloc; /* pages allocated: in use + free */
    size_t n_pages_free;
    size_t bytes_alloc;   /* bytes of those pages (their costs)  */
    size_t max_bytes;     /* SIZE_MAX: no budget */
    /* key bases (rq_cache_set_key_basis): per layer × KV head, NULL or */
    struct key_basis **kbasis;
    size_t max_ranges; /* the most ranges of any head's basis (≥ 1): bounds workspaces */
    /* append staging, grown to the largest append (never shrunk) */
    uint8_t *stage;    /* encoded blocks of one append: keys, then values */
    size_t stage_bytes;
    float *kstage;     /* keys mapped into their bases: A·k (centred: A(k − μ)) */
    size_t kstage_floats;
    float *mu_tmp;     /* [n_kv_heads][d]: the μ of an append (centre_keys), then [n_kv_heads] its σ */
    uint64_t key_clamps[2]; /* k8 keys clamped to code 1 (below 2^-2·σ) / 255 (above 2^2·σ) */
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
    c.quant.norm_correct = 1; /* lower KLD in every measured cache (docs/RESULTS.md, "Key centring") */
    c.page_tokens = 256;
    c.n_threads = 1;
    return c;
}

/* ---- the page pool -------------------------------------------------------- */
/* Cost of one page of the largest class in the pool's budget: header,
 * blocks, tail padding (every page, with uniform types). */
static size_t page_cost(const rq_cache *c) { return c->cls[c->big_cls].cost; }

/* Pages of class k a caller may still take: free ones and the budget not
 * yet allocated. */
static size_t pages_available(const rq_cache *c, int k) {
    if (c->max_bytes == SIZE_MAX) return SIZE_MAX;
    return c->cls[k].n_free + (c->max_bytes - c->bytes_alloc) / c->cls[k].cost;
}

/* A page of class k with one reference: from its free list, or newly
 * allocated within the budget; NULL when the budget is spent or malloc
 * fails. */
static uint8_t *page_take(rq_cache *c, int k) {
    page_class *pc = &c->cls[k];
    page_hdr *h = pc->free;
    if (h) {
        pc->free = h->next, pc->n_free--, c->n_pages_free--;
    } else {
        if (c->max_bytes != SIZE_MAX && c->max_bytes - c->bytes_alloc < pc->cost) return NULL;
        if (!(h = malloc(pc->cost))) return NULL; /* SIMD readers over-read the tail */
        c->n_pages_alloc++, c->bytes_alloc += pc->cost;
    }
    h->next = NULL, h->refs = 1, h->cls = k;
    return data_of(h);
}

static void page_unref(rq_cache *c, uint8_t *pg) {
    if (!pg) return;
    page_hdr *h = hdr_of(pg);
    if (--h->refs) return;
    page_class *pc = &c->cls[h->cls];
    h->next = pc->free, pc->free = h, pc->n_free++, c->n_pages_free++;
}

/* ---- sequences ------------------------------------------------------------ */
/* Index of sequence id in c->seqs, or of where it would go (*found = 0). */
static size_t seq_index(const rq_cache *c, int id, int *found) {
    size_t lo = 0, hi = c->n_seqs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->seqs[mid]->id < id) lo = mid + 1;
        else hi = mid;
    }
    *found = lo < c->n_seqs && c->seqs[lo]->id == id;
    return lo;
}

static sequence *seq_find(const rq_cache *c, int id) {
    int found;
    size_t i = seq_index(c, id, &found);
    return found ? c->seqs[i] : NULL;
}

/* Key centring's per-layer state: bytes of cx ([H][3][d] fp16, then the
 * [H] fp16 key scales σ) and of sinkf ([H][2][d] f32); centre_alloc gives a
 * layer both, once (zeroed, σ = 1). */
static size_t centre_bytes(const rq_cache *c) {
    return sizeof(uint16_t) * (3 * (size_t)c->cfg.head_dim + 1) * (size_t)c->cfg.n_kv_heads;
}
/* The layer's per-head key scales σ (fp16; 1 until μ is set, and for
 * layers whose keys are not k8) */
static inline uint16_t *sigma_of(const rq_cache *c, const layer_store *ls) {
    return ls->cx + 3 * (size_t)c->cfg.n_kv_heads * (size_t)c->cfg.head_dim;
}
static inline float sigma_at(const rq_cache *c, const layer_store *ls, size_t h) {
    return ls->cx && ls->kind->k8 ? rq_f16_to_f32(sigma_of(c, ls)[h]) : 1.0f;
}
static size_t sinkf_bytes(const rq_cache *c) { return sizeof(float) * 2 * (size_t)c->cfg.n_kv_heads * (size_t)c->cfg.head_dim; }

static rq_status centre_alloc(const rq_cache *c, layer_store *ls) {
    if (ls->cx) return RQ_OK;
    ls->cx = calloc(1, centre_bytes(c)), ls->sinkf = calloc(1, sinkf_bytes(c));
    if (ls->cx && ls->sinkf) {
        for (size_t h = 0; h < (size_t)c->cfg.n_kv_heads; h++) sigma_of(c, ls)[h] = 0x3c00; /* 1.0 */
        return RQ_OK;
    }
    free(ls->cx), free(ls->sinkf), ls->cx = NULL, ls->sinkf = NULL;
    return RQ_ERR_NOMEM;
}

/* Drops the sequence's pages past its first n tokens in every layer. */
static void seq_truncate(rq_cache *c, sequence *s, size_t n) {
    const size_t pt = (size_t)c->cfg.page_tokens;
    for (int l = 0; l < c->cfg.n_layers; l++) {
        layer_store *ls = &s->layers[l];
        if (n >= ls->n_tokens) continue;
        size_t keep = (n + pt - 1) / pt;
        for (size_t p = keep; p < ls->n_pages; p++) page_unref(c, ls->pages[p]), ls->pages[p] = NULL;
        ls->n_pages = keep, ls->n_tokens = n;
        if (ls->n_dropped > keep) ls->n_dropped = keep;
        if (!n) ls->kmax = 0, ls->sink_kmax = 0, ls->mu_set = 0; /* μ and the sink go with the last token */
    }
}

static void seq_free(rq_cache *c, sequence *s) {
    if (!s) return;
    if (s->layers) {
        seq_truncate(c, s, 0);
        for (int l = 0; l < c->cfg.n_layers; l++) free(s->layers[l].pages), free(s->layers[l].cx), free(s->layers[l].sinkf);
    }
    free(s->layers), free(s);
}

/* A new empty sequence inserted at index i of c->seqs. */
static rq_status seq_insert(rq_cache *c, const char *fn, int id, size_t i, sequence **out) {
    if (c->n_seqs == c->cap_seqs) {
        size_t cap = c->cap_seqs ? 2 * c->cap_seqs : 8;
        sequence **ns = realloc(c->seqs, cap * sizeof *ns);
        if (!ns) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory (a table of %zu sequences)", fn, cap);
        c->seqs = ns, c->cap_seqs = cap;
    }
    sequence *s = calloc(1, sizeof *s);
    if (s) s->layers = calloc((size_t)c->cfg.n_layers, sizeof(layer_store));
    if (!s || !s->layers) {
        free(s);
        return rq__fail(RQ_ERR_NOMEM, "%s: out of memory (sequence %d)", fn, id);
    }
    s->id = id;
    for (int l = 0; l < c->cfg.n_layers; l++) s->layers[l].kind = &c->kind[l];
    memmove(c->seqs + i + 1, c->seqs + i, (c->n_seqs - i) * sizeof *c->seqs);
    c->seqs[i] = s, c->n_seqs++;
    *out = s;
    return RQ_OK;
}

void rq_cache_free(rq_cache *c) {
    if (!c) return;
    for (workspace *w = c->ws_free, *next; w; w = next) {
        next = w->next;
        free(w->data), free(w);
    }
    pthread_mutex_destroy(&c->ws_mu);
    free(c->stage), free(c->kstage), free(c->mu_tmp);
    for (size_t i = 0; i < c->n_seqs; i++) seq_free(c, c->seqs[i]);
    free(c->seqs);
    for (int k = 0; c->cls && k < c->n_cls; k++)
        for (page_hdr *h = c->cls[k].free, *next; h; h = next) next = h->next, free(h);
    free(c->cls), free(c->kind);
    free(c->window);
    if (c->kbasis)
        for (size_t i = 0; i < (size_t)c->cfg.n_layers * (size_t)c->cfg.n_kv_heads; i++) key_basis_free(c->kbasis[i]);
    free(c->kbasis);
    for (size_t i = 0; i < c->n_quants; i++) rq_quantizer_free(c->quants[i]);
    free(c->quants), free(c->quant_is_value);
    free(c);
}

/* The cache's quantizer of type `name` for keys (is_value = 0) or values:
 * an existing one, or a new one (keys with quant.seed, values with a seed
 * derived from it, as with uniform types). quants holds room for 2 per
 * layer + 2. */
static rq_status quant_for(rq_cache *c, const char *name, int is_value, rq_quantizer **out) {
    for (size_t i = 0; i < c->n_quants; i++)
        if (c->quant_is_value[i] == is_value && !strcmp(rq_quantizer_type(c->quants[i])->name, name))
            return *out = c->quants[i], RQ_OK;
    rq_quant_config qc = c->cfg.quant;
    if (is_value) qc.seed = rq_seed_derive(c->cfg.quant.seed, RQ_STREAM_ROTATION, 1); /* V gets its own rotation */
    rq_status st = rq_quantizer_init(&c->quants[c->n_quants], name, c->cfg.head_dim, &qc);
    if (st) return st;
    c->quant_is_value[c->n_quants] = (uint8_t)is_value;
    *out = c->quants[c->n_quants++];
    return RQ_OK;
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
    if (cfg->centre_keys < 0 || cfg->centre_keys > 1)
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_init: centre_keys = %d (0 or 1)", cfg->centre_keys);
    if (cfg->centre_window < 0 || cfg->centre_window > (1 << 20))
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_init: centre_window = %d out of range (0..%d)",
                        cfg->centre_window, 1 << 20);
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
    if (!c->cfg.centre_window) c->cfg.centre_window = 64;
    c->cfg.layer_type_k = c->cfg.layer_type_v = NULL; /* not kept: the kinds hold the types */
    const size_t L = (size_t)cfg->n_layers;
    c->quants = calloc(2 * L + 2, sizeof *c->quants), c->quant_is_value = calloc(2 * L + 2, 1);
    c->kind = calloc(L, sizeof *c->kind), c->cls = calloc(L, sizeof *c->cls);
    rq_status st = !c->quants || !c->quant_is_value || !c->kind || !c->cls
                       ? rq__fail(RQ_ERR_NOMEM, "rq_cache_init: out of memory")
                       : RQ_OK;
    if (!st && (st = quant_for(c, cfg->type_k, 0, &c->qk))) rq__fail(st, "rq_cache_init: type_k: %s", rq_last_error());
    if (!st && (st = quant_for(c, cfg->type_v, 1, &c->qv))) rq__fail(st, "rq_cache_init: type_v: %s", rq_last_error());
    /* each layer's types (the defaults unless layer_type_k/v name others),
     * geometry and page class */
    for (size_t l = 0; l < L && !st; l++) {
        layer_kind *kd = &c->kind[l];
        const char *tk = cfg->layer_type_k && cfg->layer_type_k[l] ? cfg->layer_type_k[l] : NULL;
        const char *tv = cfg->layer_type_v && cfg->layer_type_v[l] ? cfg->layer_type_v[l] : NULL;
        kd->qk = c->qk, kd->qv = c->qv;
        if (tk && (st = quant_for(c, tk, 0, &kd->qk))) {
            rq__fail(st, "rq_cache_init: layer_type_k[%zu]: %s", l, rq_last_error());
            break;
        }
        if (tv && (st = quant_for(c, tv, 1, &kd->qv))) {
            rq__fail(st, "rq_cache_init: layer_type_v[%zu]: %s", l, rq_last_error());
            break;
        }
        /* k8 types are key types of a centred cache (their norms are
         * relative to σ, which is set with μ) */
        kd->k8 = rq__quantizer_view(kd->qk).ntab == rq__normk8;
        if (rq__quantizer_view(kd->qv).ntab == rq__normk8) {
            st = rq__fail(RQ_ERR_UNSUPPORTED, "rq_cache_init: layer %zu: value type %s: the k8 types are key types only "
                          "(their norms are relative to the cache's per-head key scale)",
                          l, rq_quantizer_type(kd->qv)->name);
            break;
        }
        if (kd->k8 && !cfg->centre_keys) {
            st = rq__fail(RQ_ERR_UNSUPPORTED, "rq_cache_init: layer %zu: key type %s needs centre_keys = 1 (its norms "
                          "are relative to the per-head key scale σ set with the key mean μ)",
                          l, rq_quantizer_type(kd->qk)->name);
            break;
        }
        kd->bk = rq_quantizer_bytes_per_vector(kd->qk), kd->bv = rq_quantizer_bytes_per_vector(kd->qv);
        kd->head_stride = (size_t)c->cfg.page_tokens * (kd->bk + kd->bv);
        kd->page_bytes = kd->head_stride * (size_t)cfg->n_kv_heads;
        const size_t cost = PAGE_HDR + kd->page_bytes + RQ_PAGE_SLACK;
        int k = 0;
        while (k < c->n_cls && c->cls[k].cost != cost) k++;
        if (k == c->n_cls) c->cls[c->n_cls++].cost = cost;
        kd->cls = k;
        if (cost > c->cls[c->big_cls].cost) c->big_cls = k;
    }
    c->max_bytes = cfg->max_bytes ? cfg->max_bytes : SIZE_MAX;
    if (!st && cfg->max_bytes && cfg->max_bytes < page_cost(c))
        st = rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_init: max_bytes = %zu is less than one page (%zu bytes)",
                      cfg->max_bytes, page_cost(c));
    if (!st) {
        c->window = calloc((size_t)cfg->n_layers, sizeof(size_t));
        c->kbasis = calloc((size_t)cfg->n_layers * (size_t)cfg->n_kv_heads, sizeof(key_basis *));
        if (cfg->centre_keys) c->mu_tmp = calloc((size_t)cfg->n_kv_heads * ((size_t)cfg->head_dim + 1), sizeof(float));
        if (!c->window || !c->kbasis || (cfg->centre_keys && !c->mu_tmp))
            st = rq__fail(RQ_ERR_NOMEM, "rq_cache_init: out of memory");
    }
    sequence *s0;
    if (!st) st = seq_insert(c, "rq_cache_init", 0, 0, &s0); /* sequence 0 exists by default */
    if (st) {
        rq_cache_free(c);
        return st;
    }
    *out = c;
    return RQ_OK;
}

void rq_cache_clear(rq_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_seqs; i++) seq_truncate(c, c->seqs[i], 0);
}

size_t rq_cache_n_tokens(const rq_cache *c, int layer) { return rq_cache_seq_n_tokens(c, 0, layer); }

size_t rq_cache_seq_n_tokens(const rq_cache *c, int seq, int layer) {
    if (!c || layer < 0 || layer >= c->cfg.n_layers) return 0;
    const sequence *s = seq_find(c, seq);
    return s ? s->layers[layer].n_tokens : 0;
}

/* Bytes of one token of every KV head of a layer, K + V. */
static size_t layer_token_bytes(const rq_cache *c, int l) {
    return (size_t)c->cfg.n_kv_heads * (c->kind[l].bk + c->kind[l].bv);
}

size_t rq_cache_bytes_per_token(const rq_cache *c) {
    size_t n = 0;
    for (int l = 0; c && l < c->cfg.n_layers; l++) n += layer_token_bytes(c, l);
    return n;
}

double rq_cache_bits_per_value(const rq_cache *c, size_t n_ctx) {
    if (!c || !n_ctx) return 0;
    const double LH = (double)c->cfg.n_layers * (double)c->cfg.n_kv_heads, d = (double)c->cfg.head_dim;
    double bits = (double)n_ctx * 8.0 * (double)rq_cache_bytes_per_token(c);
    if (c->cfg.centre_keys) bits += (double)c->cfg.n_layers * 8.0 * (double)centre_bytes(c); /* μ, k0, v0, σ per head */
    return bits / ((double)n_ctx * LH * d * 2);
}

uint64_t rq_cache_key_clamps(const rq_cache *c, uint64_t *n_high) {
    if (n_high) *n_high = c ? c->key_clamps[1] : 0;
    return c ? c->key_clamps[0] + c->key_clamps[1] : 0;
}

size_t rq_cache_bytes_used(const rq_cache *c) {
    if (!c) return 0;
    size_t n = 0;
    for (size_t i = 0; i < c->n_seqs; i++)
        for (int l = 0; l < c->cfg.n_layers; l++) n += c->seqs[i]->layers[l].n_tokens * layer_token_bytes(c, l);
    return n;
}

size_t rq_cache_bytes_allocated(const rq_cache *c) {
    if (!c) return 0;
    size_t n = c->bytes_alloc;
    for (size_t i = 0; i < c->n_seqs; i++)
        for (int l = 0; l < c->cfg.n_layers; l++) n += c->seqs[i]->layers[l].cap_pages * sizeof(uint8_t *);
    return n;
}

size_t rq_cache_pages_in_use(const rq_cache *c) { return c ? c->n_pages_alloc - c->n_pages_free : 0; }

size_t rq_cache_pages_available(const rq_cache *c) { return c ? pages_available(c, c->big_cls) : 0; }

size_t rq_cache_page_bytes(const rq_cache *c) { return c ? page_cost(c) : 0; }

size_t rq_cache_seq_ids(const rq_cache *c, int *ids, size_t max_ids) {
    if (!c) return 0;
    for (size_t i = 0; ids && i < max_ids && i < c->n_seqs; i++) ids[i] = c->seqs[i]->id;
    return c->n_seqs;
}

rq_status rq_cache_seq_add(rq_cache *c, int seq) {
    static const char fn[] = "rq_cache_seq_add";
    if (!c) return rq__fail(RQ_ERR_INVALID_ARG, "%s: cache is NULL", fn);
    if (seq < 0) return rq__fail(RQ_ERR_INVALID_ARG, "%s: sequence id %d is negative", fn, seq);
    int found;
    size_t i = seq_index(c, seq, &found);
    if (found) return rq__fail(RQ_ERR_INVALID_ARG, "%s: sequence %d already exists", fn, seq);
    sequence *s;
    return seq_insert(c, fn, seq, i, &s);
}

rq_status rq_cache_seq_remove(rq_cache *c, int seq) {
    static const char fn[] = "rq_cache_seq_remove";
    if (!c) return rq__fail(RQ_ERR_INVALID_ARG, "%s: cache is NULL", fn);
    int found;
    size_t i = seq_index(c, seq, &found);
    if (!found) return rq__fail(RQ_ERR_INVALID_ARG, "%s: no sequence %d", fn, seq);
    seq_free(c, c->seqs[i]);
    memmove(c->seqs + i, c->seqs + i + 1, (c->n_seqs - i - 1) * sizeof *c->seqs);
    c->n_seqs--;
    return RQ_OK;
}

rq_status rq_cache_seq_fork(rq_cache *c, int parent, int child) {
    static const char fn[] = "rq_cache_seq_fork";
    if (!c) return rq__fail(RQ_ERR_INVALID_ARG, "%s: cache is NULL", fn);
    const sequence *ps = seq_find(c, parent);
    if (!ps) return rq__fail(RQ_ERR_INVALID_ARG, "%s: no parent sequence %d", fn, parent);
    if (child < 0) return rq__fail(RQ_ERR_INVALID_ARG, "%s: sequence id %d is negative", fn, child);
    int found;
    size_t i = seq_index(c, child, &found);
    if (found) return rq__fail(RQ_ERR_INVALID_ARG, "%s: sequence %d already exists", fn, child);
    /* the child's block tables first (the only allocations): on failure
     * nothing changed */
    layer_store *tab = calloc((size_t)c->cfg.n_layers, sizeof *tab);
    bool ok = tab != NULL;
    for (int l = 0; ok && l < c->cfg.n_layers; l++) {
        const layer_store *pl = &ps->layers[l];
        tab[l] = *pl;
        tab[l].cap_pages = pl->n_pages;
        tab[l].pages = pl->n_pages ? malloc(pl->n_pages * sizeof(uint8_t *)) : NULL;
        tab[l].cx = NULL, tab[l].sinkf = NULL; /* the child inherits μ and the sink: its own copy */
        if (pl->n_pages && !tab[l].pages) ok = false;
        else if (pl->n_pages) memcpy(tab[l].pages, pl->pages, pl->n_pages * sizeof(uint8_t *));
        if (ok && pl->cx && centre_alloc(c, &tab[l])) ok = false;
        if (ok && pl->cx) {
            memcpy(tab[l].cx, pl->cx, centre_bytes(c));
            memcpy(tab[l].sinkf, pl->sinkf, sinkf_bytes(c));
        }
    }
    sequence *s = NULL;
    if (ok && seq_insert(c, fn, child, i, &s)) ok = false;
    if (!ok) {
        for (int l = 0; tab && l < c->cfg.n_layers; l++) free(tab[l].pages), free(tab[l].cx), free(tab[l].sinkf);
        free(tab);
        return rq__fail(RQ_ERR_NOMEM, "%s: out of memory (the block tables of sequence %d)", fn, child);
    }
    free(s->layers);
    s->layers = tab;
    for (int l = 0; l < c->cfg.n_layers; l++) /* share every page: copy-on-write */
        for (size_t p = 0; p < tab[l].n_pages; p++)
            if (tab[l].pages[p]) hdr_of(tab[l].pages[p])->refs++;
    return RQ_OK;
}

rq_status rq_cache_seq_truncate(rq_cache *c, int seq, size_t n_tokens) {
    static const char fn[] = "rq_cache_seq_truncate";
    if (!c) return rq__fail(RQ_ERR_INVALID_ARG, "%s: cache is NULL", fn);
    sequence *s = seq_find(c, seq);
    if (!s) return rq__fail(RQ_ERR_INVALID_ARG, "%s: no sequence %d", fn, seq);
    const size_t pt = (size_t)c->cfg.page_tokens;
    for (int l = 0; l < c->cfg.n_layers; l++) { /* check first: all layers or none */
        const layer_store *ls = &s->layers[l];
        const size_t W = c->window[l];
        if (n_tokens && n_tokens < ls->n_tokens && ls->n_dropped && (n_tokens > W ? n_tokens - W : 0) < ls->n_dropped * pt)
            return rq__fail(RQ_ERR_RANGE,
                            "%s: sequence %d, layer %d: positions from %zu are needed for %zu tokens, but those "
                            "before %zu were released behind the window of %zu",
                            fn, seq, l, n_tokens > W ? n_tokens - W : 0, n_tokens, ls->n_dropped * pt, W);
    }
    seq_truncate(c, s, n_tokens);
    return RQ_OK;
}

rq_status rq_cache_set_window(rq_cache *c, int layer, size_t n_window) {
    static const char fn[] = "rq_cache_set_window";
    if (!c) return rq__fail(RQ_ERR_INVALID_ARG, "%s: cache is NULL", fn);
    if (layer < 0 || layer >= c->cfg.n_layers)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: layer %d out of range (n_layers = %d)", fn, layer, c->cfg.n_layers);
    for (size_t i = 0; i < c->n_seqs; i++)
        if (c->seqs[i]->layers[layer].n_tokens)
            return rq__fail(RQ_ERR_INVALID_ARG, "%s: layer %d of sequence %d holds tokens (set windows before appending)",
                            fn, layer, c->seqs[i]->id);
    c->window[layer] = n_window;
    return RQ_OK;
}

/* Some sequence holds tokens in the layer (-1: none), for messages. */
static int layer_holder(const rq_cache *c, int layer) {
    for (size_t i = 0; i < c->n_seqs; i++)
        if (c->seqs[i]->layers[layer].n_tokens) return c->seqs[i]->id;
    return -1;
}

const rq_quantizer *rq_cache_quantizer(const rq_cache *c, int is_value) {
    return c ? (is_value ? c->qv : c->qk) : NULL;
}

const rq_quantizer *rq_cache_layer_quantizer(const rq_cache *c, int layer, int is_value) {
    if (!c || layer < 0 || layer >= c->cfg.n_layers) return NULL;
    return is_value ? c->kind[layer].qv : c->kind[layer].qk;
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
        const rq_quantizer *qk = c->kind[layer].qk;
        for (size_t j = 0; qk->rot && j < d; j++) { /* Π_K A⁻ᵀ, column by column */
            for (size_t i = 0; i < d; i++) col[i] = inv[i * d + j];
            rq_rotation_forward(qk->rot, col, rcol, 1);
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
    if (layer_holder(c, layer) >= 0) /* stored keys are in the old basis */
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: layer %d of sequence %d holds tokens (set bases before appending)",
                        fn, layer, layer_holder(c, layer));
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
        if (layer_holder(c, l) >= 0)
            return rq__fail(RQ_ERR_INVALID_ARG,
                            "%s: layer %d of sequence %d holds tokens (set bases before appending)", fn, l,
                            layer_holder(c, l));
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

/* The sink of every KV head of a layer in the kernels' domains (ls->sinkf)
 * from the fp16 state (ls->cx): the key as the kernels score it, Π_K A₀(k0 −
 * μ) (A₀ the basis of the range holding position 0, if any; μ = 0 while
 * unset), the value as they accumulate it, Π_V v0. */
static void centre_derive(const rq_cache *c, int layer, layer_store *ls) {
    const size_t d = (size_t)c->cfg.head_dim, H = (size_t)c->cfg.n_kv_heads;
    float x[RQ_MAX_DIMS], y[RQ_MAX_DIMS];
    ls->sink_kmax = 0;
    for (size_t h = 0; h < H; h++) {
        const uint16_t *mu = ls->cx + h * 3 * d, *k0 = mu + d, *v0 = k0 + d;
        float *sk = ls->sinkf + h * 2 * d, *sv = sk + d;
        for (size_t i = 0; i < d; i++) x[i] = rq_f16_to_f32(k0[i]) - (ls->mu_set ? rq_f16_to_f32(mu[i]) : 0.0f);
        if (c->kind[layer].k8) /* scored against the query × σ (attend_prepare): (k0 − μ)/σ */
            for (size_t i = 0; i < d; i++) x[i] /= sigma_at(c, ls, h);
        const key_basis *b = c->kbasis[(size_t)layer * H + h];
        if (b) matvec(b->mk, x, (int)d, y), memcpy(x, y, sizeof(float) * d); /* range 0 serves position 0 */
        if (c->kind[layer].qk->rot) rq_rotation_forward(c->kind[layer].qk->rot, x, sk, 1);
        else memcpy(sk, x, sizeof(float) * d);
        for (size_t i = 0; i < d; i++) ls->sink_kmax = fabsf(sk[i]) > ls->sink_kmax ? fabsf(sk[i]) : ls->sink_kmax;
        for (size_t i = 0; i < d; i++) x[i] = rq_f16_to_f32(v0[i]);
        if (c->kind[layer].qv->rot) rq_rotation_forward(c->kind[layer].qv->rot, x, sv, 1);
        else memcpy(sv, x, sizeof(float) * d);
    }
}

static inline uint8_t *key_block(const rq_cache *c, const layer_store *ls, int h, size_t t) {
    size_t pt = (size_t)c->cfg.page_tokens;
    return ls->pages[t / pt] + (size_t)h * ls->kind->head_stride + (t % pt) * ls->kind->bk;
}

static inline uint8_t *value_block(const rq_cache *c, const layer_store *ls, int h, size_t t) {
    size_t pt = (size_t)c->cfg.page_tokens;
    return ls->pages[t / pt] + (size_t)h * ls->kind->head_stride + pt * ls->kind->bk + (t % pt) * ls->kind->bv;
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
    const float *ntab = rq__quantizer_view(q).ntab;
    if (st == RQ_ERR_RANGE && ntab) /* the 1-byte norm head's range */
        return rq__fail(st, "rq_cache_append: layer %d, token %zu, KV head %zu: the %s vector's norm is past %s's "
                        "8-bit norm range (%s)", layer, i / H, i % H, what, rq_quantizer_type(q)->name,
                        rq__norm_table_range(ntab));
    return rq__fail(st, "rq_cache_append: layer %d, token %zu, KV head %zu: %s[%zu] = %g %s", layer, i / H, i % H,
                    what, at, (double)x[i * d + at],
                    st == RQ_ERR_NONFINITE ? "is not finite"
                                           : st == RQ_ERR_RANGE ? "(or the vector's norm) is too large for the type"
                                                                : rq_status_str(st));
}

rq_status rq_cache_append(rq_cache *c, int layer, const float *k, const float *v, size_t n_tokens) {
    return rq_cache_seq_append(c, 0, layer, k, v, n_tokens);
}

rq_status rq_cache_seq_append(rq_cache *c, int seq, int layer, const float *k, const float *v, size_t n_tokens) {
    if (!c) return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_append: cache is NULL");
    if (layer < 0 || layer >= c->cfg.n_layers)
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_append: layer %d out of range (n_layers = %d)", layer,
                        c->cfg.n_layers);
    sequence *sq = seq_find(c, seq);
    if (!sq) return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_append: no sequence %d", seq);
    if (n_tokens && (!k || !v))
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_append: %s is NULL with n_tokens = %zu", !k ? "k" : "v",
                        n_tokens);
    if (!n_tokens) return RQ_OK;
    layer_store *ls = &sq->layers[layer];
    const layer_kind *kd = &c->kind[layer];
    size_t H = (size_t)c->cfg.n_kv_heads, d = (size_t)c->cfg.head_dim, pt = (size_t)c->cfg.page_tokens;
    if (n_tokens > ((size_t)1 << 40) / (H * d))
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_cache_append: n_tokens = %zu too large (at most %zu per call)",
                        n_tokens, ((size_t)1 << 40) / (H * d));
    key_basis **kb = c->kbasis + (size_t)layer * H;
    bool any_basis = c->cfg.centre_keys != 0; /* centred keys are staged too (k − μ) */
    for (size_t h = 0; h < H; h++) {
        if (kb[h] && kb[h]->n_ctx && ls->n_tokens + n_tokens > kb[h]->n_ctx)
            return rq__fail(RQ_ERR_RANGE,
                            "rq_cache_append: layer %d: positions up to %zu, but the key basis was calibrated on %zu "
                            "positions",
                            layer, ls->n_tokens + n_tokens - 1, kb[h]->n_ctx);
        any_basis |= kb[h] != NULL;
    }
    /* 0. key centring: the sink (position 0) must fit fp16; μ of this
     *    append: fixed now from positions 1..centre_window it holds, or the
     *    layer's, or 0 while only position 0 exists */
    const size_t t0 = ls->n_tokens;
    const bool centre = c->cfg.centre_keys != 0;
    const bool new_mu = centre && !ls->mu_set && t0 + n_tokens >= 2;
    if (centre && t0 == 0)
        for (size_t i = 0; i < H * d; i++) {
            const float a = k[i], b = v[i];
            if (!rq__finite(a) || !rq__finite(b))
                return rq__fail(RQ_ERR_NONFINITE, "rq_cache_append: layer %d, token 0, KV head %zu: %s[%zu] = %g is not finite",
                                layer, i / d, rq__finite(a) ? "v" : "k", i % d, (double)(rq__finite(a) ? b : a));
            if (fabsf(a) > 65504.0f || fabsf(b) > 65504.0f)
                return rq__fail(RQ_ERR_RANGE,
                                "rq_cache_append: layer %d, token 0, KV head %zu: %s[%zu] = %g is too large for the fp16 "
                                "sink (centre_keys)",
                                layer, i / d, fabsf(a) > 65504.0f ? "k" : "v", i % d,
                                (double)(fabsf(a) > 65504.0f ? a : b));
        }
    if (new_mu) {
        const size_t p0 = t0 ? t0 : 1, p1 = (size_t)c->cfg.centre_window < t0 + n_tokens - 1
                                               ? (size_t)c->cfg.centre_window : t0 + n_tokens - 1;
        for (size_t i = 0; i < H * d; i++) {
            double sum = 0; /* positions in order: the same μ on every machine */
            for (size_t p = p0; p <= p1; p++) sum += k[(p - t0) * H * d + i];
            const float m = rq_f16_to_f32(rq_f32_to_f16((float)(sum / (double)(p1 - p0 + 1))));
            if (!rq__finite(m))
                return rq__fail(isnan(sum) || isinf(sum) ? RQ_ERR_NONFINITE : RQ_ERR_RANGE,
                                "rq_cache_append: layer %d, KV head %zu: the key mean μ[%zu] over positions %zu..%zu is "
                                "%s",
                                layer, i / d, i % d, p0, p1,
                                isnan(sum) || isinf(sum) ? "not finite (a key is NaN or Inf)" : "beyond fp16");
            c->mu_tmp[i] = m;
        }
        /* σ (k8 keys): 2^(mean of log2 |k_p − μ| over the same positions, in
         * order, in double; zero vectors left out), fp16; 1 when every
         * key equals μ or the keys are not k8 */
        for (size_t h = 0; h < H; h++) {
            double lsum = 0;
            size_t n_l = 0;
            for (size_t p = p0; kd->k8 && p <= p1; p++) {
                double s2 = 0;
                for (size_t x = 0; x < d; x++) {
                    const double e = (double)k[(p - t0) * H * d + h * d + x] - (double)c->mu_tmp[h * d + x];
                    s2 += e * e;
                }
                if (s2 > 0) lsum += 0.5 * log2(s2), n_l++;
            }
            float sg = n_l ? rq_f16_to_f32(rq_f32_to_f16((float)exp2(lsum / (double)n_l))) : 1.0f;
            if (!(sg > 0.0f)) sg = 1.0f; /* below fp16 (|k − μ| < 6e-8): keys clamp low, counted */
            if (!rq__finite(sg))
                return rq__fail(RQ_ERR_RANGE, "rq_cache_append: layer %d, KV head %zu: the key scale σ over positions "
                                "%zu..%zu is beyond fp16", layer, h, p0, p1);
            c->mu_tmp[H * d + h] = sg;
        }
    } else if (centre) {
        for (size_t i = 0; i < H * d; i++) c->mu_tmp[i] = ls->mu_set ? rq_f16_to_f32(ls->cx[(i / d) * 3 * d + i % d]) : 0.0f;
        for (size_t h = 0; h < H; h++) c->mu_tmp[H * d + h] = sigma_at(c, ls, h);
    }
    /* 1. encode everything into the staging buffer (grown with the largest
     *    append, kept): a bad value rejects the whole append and leaves the
     *    cache untouched */
    const size_t n_vec = n_tokens * H, n_stage = n_vec * (kd->bk + kd->bv);
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
        const float *ki = k + i * d;
        float kc[RQ_MAX_DIMS];
        if (centre && t0 + i / H > 0) { /* k − μ; position 0's block holds k0 (the sink is read instead) */
            for (size_t x = 0; x < d; x++) kc[x] = ki[x] - c->mu_tmp[(i % H) * d + x];
            if (kd->k8) /* (k − μ)/σ_h */
                for (size_t x = 0; x < d; x++) kc[x] /= c->mu_tmp[H * d + i % H];
            ki = kc;
        } else if (centre && kd->k8) { /* k8: position 0's block is the zero block (never read: the sink is) */
            memset(kc, 0, sizeof(float) * d);
            ki = kc;
        }
        if (b) matvec(b->mk + range_of(b, ls->n_tokens + i / H) * d * d, ki, (int)d, kt + i * d);
        else memcpy(kt + i * d, ki, sizeof(float) * d);
    }
    const float *ks = kt ? kt : k;
    uint64_t clamps[2] = {0, 0}; /* k8 keys: out of the table's range, clamped (not an error) */
    rq_status st = kd->k8 ? rq__quantizer_encode_clamp(kd->qk, ks, stage, n_vec, clamps)
                          : rq_quantizer_encode(kd->qk, ks, stage, n_vec);
    if (st)
        return append_error(c, st, layer, centre ? "centred key, k − μ" : kt ? "key in its basis, A·k" : "k", kd->qk,
                            ks, n_vec, stage);
    if (centre && t0 == 0 && centre_alloc(c, ls))
        return rq__fail(RQ_ERR_NOMEM, "rq_cache_append: out of memory (the sink of layer %d)", layer);
    if ((st = rq_quantizer_encode(kd->qv, v, stage + n_vec * kd->bk, n_vec)))
        return append_error(c, st, layer, "v", kd->qv, v, n_vec, stage);
    /* 2. make room, all or nothing: the page table first; then count the
     *    pages needed (new ones, and a copy of a shared, partly filled last
     *    page: copy-on-write after a fork) against the pool, counting
     *    those the sliding window releases; then take them */
    size_t need = (ls->n_tokens + n_tokens + pt - 1) / pt;
    if (need > ls->cap_pages) {
        size_t cap = ls->cap_pages ? ls->cap_pages : 4;
        while (cap < need) cap *= 2;
        uint8_t **np = realloc(ls->pages, cap * sizeof *np);
        if (!np) return rq__fail(RQ_ERR_NOMEM, "rq_cache_append: out of memory (page table of %zu pages)", cap);
        ls->pages = np, ls->cap_pages = cap;
    }
    const bool cow = ls->n_tokens % pt && hdr_of(ls->pages[ls->n_pages - 1])->refs > 1;
    const size_t W = c->window[layer];
    /* pages wholly behind the window of every later query (positions below
     * n_tokens − W: queries from now on end at n_tokens or later) */
    size_t drop_to = W && ls->n_tokens > W ? (ls->n_tokens - W) / pt : 0, freed = 0;
    if (drop_to > ls->n_pages) drop_to = ls->n_pages;
    for (size_t p = ls->n_dropped; p < drop_to; p++) freed += hdr_of(ls->pages[p])->refs == 1;
    const size_t wanted = need - ls->n_pages + cow, avail = pages_available(c, kd->cls);
    if (avail != SIZE_MAX && avail + freed < wanted)
        return rq__fail(RQ_ERR_NOMEM,
                        "rq_cache_append: sequence %d, layer %d: out of pages (%zu needed, %zu free in the pool: "
                        "pages of %zu bytes, max_bytes = %zu)",
                        seq, layer, wanted, avail + freed, c->cls[kd->cls].cost, c->cfg.max_bytes);
    for (; ls->n_dropped < drop_to; ls->n_dropped++)
        page_unref(c, ls->pages[ls->n_dropped]), ls->pages[ls->n_dropped] = NULL;
    if (cow) { /* the last page is shared: write into a copy */
        uint8_t *pg = page_take(c, kd->cls);
        if (!pg) return rq__fail(RQ_ERR_NOMEM, "rq_cache_append: out of memory (a page of %zu bytes)", kd->page_bytes);
        memcpy(pg, ls->pages[ls->n_pages - 1], kd->page_bytes);
        page_unref(c, ls->pages[ls->n_pages - 1]);
        ls->pages[ls->n_pages - 1] = pg;
    }
    while (ls->n_pages < need) {
        uint8_t *pg = page_take(c, kd->cls);
        if (!pg) { /* malloc failed: give back the pages taken so far */
            for (size_t keep = (ls->n_tokens + pt - 1) / pt; ls->n_pages > keep;)
                page_unref(c, ls->pages[--ls->n_pages]), ls->pages[ls->n_pages] = NULL;
            return rq__fail(RQ_ERR_NOMEM, "rq_cache_append: out of memory (a page of %zu bytes)", kd->page_bytes);
        }
        ls->pages[ls->n_pages++] = pg;
    }
    /* 3. copy blocks into place; f32 keys: the largest |value| bounds the
     *    scores attention can meet (the other types' blocks bound it) */
    for (size_t t = 0; t < n_tokens; t++)
        for (size_t h = 0; h < H; h++) {
            memcpy(key_block(c, ls, (int)h, ls->n_tokens + t), stage + (t * H + h) * kd->bk, kd->bk);
            memcpy(value_block(c, ls, (int)h, ls->n_tokens + t), stage + n_vec * kd->bk + (t * H + h) * kd->bv, kd->bv);
        }
    if (rq_quantizer_type(kd->qk)->family == RQ_FAMILY_F32)
        for (size_t i = 0; i < n_vec * d; i++) ls->kmax = fabsf(ks[i]) > ls->kmax ? fabsf(ks[i]) : ls->kmax;
    ls->n_tokens += n_tokens;
    /* 4. centring: the sink and μ, then the sink in the kernels' domains */
    for (size_t i = 0; centre && t0 == 0 && i < H * d; i++)
        ls->cx[(i / d) * 3 * d + d + i % d] = rq_f32_to_f16(k[i]), ls->cx[(i / d) * 3 * d + 2 * d + i % d] = rq_f32_to_f16(v[i]);
    for (size_t i = 0; new_mu && i < H * d; i++) ls->cx[(i / d) * 3 * d + i % d] = rq_f32_to_f16(c->mu_tmp[i]);
    for (size_t h = 0; new_mu && h < H; h++) sigma_of(c, ls)[h] = rq_f32_to_f16(c->mu_tmp[H * d + h]); /* exact */
    if (new_mu) ls->mu_set = 1;
    c->key_clamps[0] += clamps[0], c->key_clamps[1] += clamps[1];
    if (centre && (t0 == 0 || new_mu)) centre_derive(c, layer, ls);
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
    const float *ntab; /* the 1-byte head's table, NULL: fp16 head */
    size_t off_signs;
    const float *cent;
    float alpha;       /* QJL reconstruction scale      */
    bool rotated;      /* works in the rotated domain   */
} block_view;

static block_view view_of(const rq_quantizer *q) {
    const rq_quantizer_view v = rq__quantizer_view(q);
    block_view b = {.family = rq_quantizer_type(q)->family, .block = v.block, .layout = v.layout, .bits = v.bits,
                    .off_codes = v.off_codes, .ntab = v.ntab, .off_signs = v.off_signs, .cent = v.cent, .alpha = v.alpha,
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
    if (bv->layout->trellis) {
        K->decode_tcq_n(buf, blk, 0, 1, d, bv->bits, bv->off_codes, bv->ntab, bv->cent);
        return buf;
    }
    K->decode_codes(buf, blk + bv->off_codes, d, bv->bits, bv->cent, rq__head_norm(blk, bv->ntab));
    return buf;
}

/* One sequence's part of an attention call: its queries, its plan (how
 * its context splits into chunks) and its regions of the workspace. */
typedef struct {
    const layer_store *ls;
    const float *q;
    size_t n_queries;
    const size_t *n_ctx;
    float *out;
    size_t n_chunks, chunk_tokens;
    size_t n_ranges;  /* query preparations per head: the most ranges in use */
    size_t task0;     /* the item's first task: tasks task0 .. task0 + H·n_chunks − 1 */
    float *qprep;     /* [n_queries][n_q_heads][n_ranges][2][d]: scale·q′, scale·S q′ */
    /* int8 scores (cfg.int8_scores), per [n_queries][n_q_heads][n_ranges]:
     * scale·q′ quantized (q8, Q8_LD(d) bytes each), its scale and Σ q8 */
    float *q8s;
    int32_t *q8sum;
    int8_t *q8;
    float *partial;   /* [n_queries][n_q_heads][n_chunks][partial_stride] */
} attn_item;

typedef struct {
    const rq_cache *c;
    const rq_attn_kernels *K;
    const rq_quantizer *qk, *qv; /* the layer's */
    block_view kv, vv;
    int group, n_q_heads, d;
    float scale;
    size_t window;        /* the layer's sliding window (0: none)             */
    key_basis *const *kb; /* the layer's key bases per KV head (NULL: none)   */
    const attn_item *items;
    size_t n_items;
    bool int8;            /* int8 key scores (cfg.int8_scores, int8_keys)            */
    bool vfused;          /* MSE value codes accumulated by accum_mse_n (no tile)    */
    bool kfused;          /* MSE key codes scored by scores_mse_n (no tile)          */
    float cfac;           /* ... the centroids' (TCQ: LUT's) scale: c ≈ cfac · c8    */
    uint8_t tab8[RQ_TCQ_STATES]; /* 128 + c8[code] (TCQ: 128 + c8[window])         */
} attn_job;

/* bytes per int8 prepared query: d rounded up to whole 64-byte vectors */
#define Q8_LD(d) (((size_t)(d) + 63) / 64 * 64)

/* Key blocks the int8 score path serves: codes of 1..4 bits (the MSE
 * family and the code part of QJL `p` types), and TCQ streams of 2..5 bits
 * (a 256-entry table, one byte per window). */
static bool int8_keys(const block_view *kv) {
    if (kv->layout->trellis)
        return kv->family == RQ_FAMILY_TCQ && kv->bits >= RQ_TCQ_MIN_BITS && kv->bits <= RQ_TCQ_MAX_BITS;
    return kv->layout->codes && kv->bits >= 1 && kv->bits <= 4 &&
           (kv->family == RQ_FAMILY_MSE || kv->family == RQ_FAMILY_PROD);
}
_Static_assert((1 << RQ_MAX_BITS) <= RQ_TCQ_STATES, "attn_job.tab8 holds every codebook");

/* floats per chunk partial (m, l, acc[2d]), rounded up to a multiple of
 * 16 (64 bytes) so neighbouring tasks' partials share at most one line */
static size_t partial_stride(int d) { return (2 + 2 * (size_t)d + 15) / 16 * 16; }

/* Decodes tokens t0 .. t0+n−1 of KV head h (keys, or values) into tile
 * (QJL sign parts into tile_sig). MSE and copied value blocks go one page
 * run per kernel call; QJL and in-place (f32) blocks token by token (f32 is
 * used in place). Returns false for code-less 1-bit QJL blocks (only
 * tile_sig is filled). */
static bool decode_run(const attn_job *j, const layer_store *ls, const block_view *bv, int h, size_t t0, size_t n,
                       int values, float *tile, float *tile_sig) {
    const rq_cache *c = j->c;
    const int d = j->d;
    const size_t pt = (size_t)c->cfg.page_tokens, stride = values ? ls->kind->bv : ls->kind->bk;
    if (!bv->layout->signs && !bv->layout->in_place) {
        void (*dec)(const uint8_t *, int, float *) = bv->layout->codes ? NULL : rq__values_decoder(j->K, bv->block);
        for (size_t t = 0; t < n;) {
            size_t m = pt - (t0 + t) % pt;
            m = m < n - t ? m : n - t;
            const uint8_t *blk = values ? value_block(c, ls, h, t0 + t) : key_block(c, ls, h, t0 + t);
            float *out = tile + t * (size_t)d;
            /* value blocks: a page run is m whole vectors back to back
             * (stride = bytes per vector), decoded as m·d values at once */
            if (bv->layout->trellis) j->K->decode_tcq_n(out, blk, stride, (int)m, d, bv->bits, bv->off_codes, bv->ntab, bv->cent);
            else if (!dec) j->K->decode_mse_n(out, blk, stride, (int)m, d, bv->bits, bv->off_codes, bv->ntab, bv->cent);
            else dec(blk, (int)m * d, out);
            t += m;
        }
        return true;
    }
    bool codes = true;
    for (size_t t = 0; t < n; t++) {
        const uint8_t *blk = values ? value_block(c, ls, h, t0 + t) : key_block(c, ls, h, t0 + t);
        const float *x = decode_block(j->K, bv, blk, tile + t * (size_t)d, tile_sig + t * (size_t)d, d);
        if (!x) codes = false;
        else if (x != tile + t * (size_t)d) memcpy(tile + t * (size_t)d, x, sizeof(float) * (size_t)d);
    }
    return codes;
}

/* decode_run for the int8 scores: tokens t0 .. t0+n−1 of KV head h's keys
 * into biased bytes tile8 (tab8[code], TCQ: tab8[window]) and per-token scales ks, one page
 * run per kernel call; QJL sign parts token by token into tile_sig. */
static void decode_run8(const attn_job *j, const layer_store *ls, int h, size_t t0, size_t n, uint8_t *tile8,
                        float *ks, float *tile_sig) {
    const rq_cache *c = j->c;
    const block_view *bv = &j->kv;
    const int d = j->d;
    const size_t pt = (size_t)c->cfg.page_tokens, stride = ls->kind->bk;
    if (n % 4) /* a last group of fewer than 4 tokens: the others' bytes defined too (kernels read whole groups) */
        memset(tile8 + n / 4 * 4 * rq__i8_dp(d), 128, 4 * rq__i8_dp(d));
    for (size_t t = 0; t < n;) {
        size_t m = pt - (t0 + t) % pt;
        m = m < n - t ? m : n - t;
        const uint8_t *blk = key_block(c, ls, h, t0 + t);
        if (bv->layout->trellis)
            j->K->decode_tcq8_n(tile8, ks, (int)t, blk, stride, (int)m, d, bv->bits, bv->off_codes, bv->ntab, j->tab8, j->cfac);
        else j->K->decode_mse8_n(tile8, ks, (int)t, blk, stride, (int)m, d, bv->bits, bv->off_codes, bv->ntab, j->tab8, j->cfac);
        for (size_t u = 0; bv->layout->signs && u < m; u++, blk += stride)
            j->K->decode_signs(tile_sig + (t + u) * (size_t)d, blk + bv->off_signs, d,
                               f16_at(blk + RQ_PROD_RNORM_OFF) * bv->alpha);
        t += m;
    }
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

/* One task = one sequence × KV head × chunk of tokens, for every query of
 * the sequence. */
static void attn_task(void *arg, int task_) {
    const attn_job *j = arg;
    int d = j->d, G = j->group;
    size_t lo = 0, hi = j->n_items; /* the item holding the task: the last with task0 ≤ task */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (j->items[mid].task0 <= (size_t)task_) lo = mid;
        else hi = mid;
    }
    const attn_item *it = &j->items[lo];
    const size_t task = (size_t)task_ - it->task0;
    int h = (int)(task / it->n_chunks);
    size_t chunk = task % it->n_chunks;
    size_t t_first = chunk * it->chunk_tokens;
    float s[64][SUB_TOKENS]; /* scores of up to 64 group heads */
    /* one sub-block of decoded keys (then values) and their QJL sign parts:
     * 2 × TILE_FLOATS floats on this thread's stack (64 KiB) */
    float tile[TILE_FLOATS], tile_sig[TILE_FLOATS];
    /* int8 scores: the group's query scales and sums, the keys' scales; the
     * key bytes, ⌈sub/4⌉·4·rq__i8_dp(d) ≤ 4·TILE_FLOATS, go in tile */
    float qs8[64], ks8[SUB_TOKENS];
    int32_t qsum8[64];
    size_t sub = TILE_FLOATS / (size_t)d < SUB_TOKENS ? TILE_FLOATS / (size_t)d : SUB_TOKENS;
    const bool kprod = j->kv.family == RQ_FAMILY_PROD, vprod = j->vv.family == RQ_FAMILY_PROD;
    const int acc_floats = (vprod ? 2 : 1) * d; /* partial floats the online softmax rescales */
    for (size_t i = 0; i < it->n_queries; i++) {
        size_t limit = it->n_ctx ? it->n_ctx[i] : it->ls->n_tokens;
        size_t t_end = t_first + it->chunk_tokens;
        if (t_end > limit) t_end = limit;
        /* a sliding window attends the last `window` positions only */
        size_t t_begin = j->window && limit > j->window && limit - j->window > t_first ? limit - j->window : t_first;
        for (int g0 = 0; g0 < G; g0 += 64) {
            int gn = G - g0 < 64 ? G - g0 : 64;
            float *P[64];
            const float *Q[64];
            for (int g = 0; g < gn; g++) {
                int qh = h * G + g0 + g;
                P[g] = it->partial + ((i * (size_t)j->n_q_heads + (size_t)qh) * it->n_chunks + chunk) * partial_stride(d);
                P[g][0] = -INFINITY, P[g][1] = 0;
                memset(P[g] + 2, 0, sizeof(float) * (vprod ? 2 : 1) * (size_t)d); /* the sign half: `p` values only */
                Q[g] = it->qprep + (i * (size_t)j->n_q_heads + (size_t)qh) * it->n_ranges * 2 * (size_t)d;
            }
            const key_basis *kb = j->kb[h];
            const int qstride = (int)(it->n_ranges * 2 * (size_t)d);
            size_t t_from = t_begin;
            if (it->ls->sinkf && t_begin == 0 && t_end > 0) {
                /* key centring: position 0 is the exact sink, the first token
                 * of the online softmax (m = its score, l = 1, acc = its value),
                 * scored against the query of range 0 in index order */
                const float *sk = it->ls->sinkf + (size_t)h * 2 * (size_t)d, *sv = sk + d;
                for (int g = 0; g < gn; g++) {
                    float sc = 0;
                    for (int x = 0; x < d; x++) sc += Q[g][x] * sk[x];
                    P[g][0] = sc, P[g][1] = 1;
                    memcpy(P[g] + 2, sv, sizeof(float) * (size_t)d);
                }
                t_from = 1;
            }
            for (size_t t0 = t_from, n; t0 < t_end; t0 += n) {
                n = t_end - t0 < sub ? t_end - t0 : sub;
                /* the query prepared for the key basis of these positions; a
                 * sub-block never spans two ranges */
                size_t r = kb ? range_of(kb, t0) : 0;
                if (kb && r + 1 < kb->n && kb->start[r + 1] - t0 < n) n = kb->start[r + 1] - t0;
                const float *Q0 = Q[0] + r * 2 * (size_t)d;
                /* whole rows, a constant size: inlined vector stores, which the
                 * kernels' loads of S forward from (a variable-size memset
                 * became `rep stos`) */
                for (int g = 0; g < gn; g++) memset(s[g], 0, sizeof s[g]);
                if (j->int8) { /* keys as bytes, scored in int32 against the int8 query */
                    const size_t nr = it->n_ranges, e0 = (i * (size_t)j->n_q_heads + (size_t)h * G + (size_t)g0) * nr + r;
                    for (int g = 0; g < gn; g++) qs8[g] = it->q8s[e0 + (size_t)g * nr], qsum8[g] = it->q8sum[e0 + (size_t)g * nr];
                    decode_run8(j, it->ls, h, t0, n, (uint8_t *)tile, ks8, tile_sig);
                    j->K->scores_i8(it->q8 + e0 * Q8_LD(d), gn, (int)(nr * Q8_LD(d)), qs8, qsum8, (const uint8_t *)tile,
                                    ks8, (int)n, d, s[0], SUB_TOKENS);
                } else if (j->kfused) { /* key codes scored as they are decoded */
                    const uint8_t *kp[SUB_TOKENS];
                    const size_t pt = (size_t)j->c->cfg.page_tokens, bk = it->ls->kind->bk;
                    for (size_t t = 0, m; t < n; t += m) { /* one page run at a time */
                        m = pt - (t0 + t) % pt;
                        m = m < n - t ? m : n - t;
                        const uint8_t *b = key_block(j->c, it->ls, h, t0 + t);
                        for (size_t u = 0; u < m; u++, b += bk) kp[t + u] = b;
                    }
                    j->K->scores_mse_n(Q0, gn, qstride, kp, (int)n, d, j->kv.bits, j->kv.off_codes, j->kv.ntab, j->kv.cent, s[0],
                                       SUB_TOKENS);
                } else if (decode_run(j, it->ls, &j->kv, h, t0, n, 0, tile, tile_sig)) /* the keys, once for the group */
                    j->K->scores(Q0, gn, qstride, tile, (int)n, d, s[0], SUB_TOKENS);
                if (kprod) j->K->scores(Q0 + d, gn, qstride, tile_sig, (int)n, d, s[0], SUB_TOKENS);
                for (int g = 0; g < gn; g++) { /* online softmax update */
                    float m = row_max(s[g], n, P[g][0]);
                    float corr = expf(P[g][0] - m); /* 0 on the first pass (−inf) */
                    if (corr != 1.0f) {
                        for (int x = 0; x < acc_floats; x++) P[g][2 + x] *= corr;
                        P[g][1] *= corr;
                    }
                    P[g][0] = m;
                    P[g][1] += j->K->exp_sum(s[g], (int)n, m);
                }
                int lda = (int)(it->n_chunks * partial_stride(d));
                if (j->vfused) { /* value codes straight into the accumulators, one page run per call */
                    const size_t pt = (size_t)j->c->cfg.page_tokens;
                    for (size_t t = 0, m; t < n; t += m) {
                        m = pt - (t0 + t) % pt;
                        m = m < n - t ? m : n - t;
                        j->K->accum_mse_n(P[0] + 2, gn, lda, s[0] + t, SUB_TOKENS, value_block(j->c, it->ls, h, t0 + t),
                                          it->ls->kind->bv, (int)m, d, j->vv.bits, j->vv.off_codes, j->vv.ntab, j->vv.cent);
                    }
                } else if (decode_run(j, it->ls, &j->vv, h, t0, n, 1, tile, tile_sig)) /* the values, likewise */
                    j->K->accum(P[0] + 2, gn, lda, s[0], SUB_TOKENS, tile, (int)n, d);
                if (vprod) j->K->accum(P[0] + 2 + d, gn, lda, s[0], SUB_TOKENS, tile_sig, (int)n, d);
            }
        }
    }
}

/* Sᵀ v for a float vector v (the QJL part of accumulated values). */
static void qjl_transpose_f(const rq_quantizer *q, const float *v, float *out) { rq__qjl_transpose_f(q, v, out); }

/* Checks one sequence's attention arguments; *ls_out = its layer's store. */
static rq_status check_attention_args(const char *fn, const rq_cache *c, int seq, int layer, const float *q,
                                      size_t n_queries, const size_t *n_ctx, const rq_attn_params *p,
                                      const float *out, const layer_store **ls_out) {
    if (!c || !p) return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !c ? "cache" : "p");
    if (layer < 0 || layer >= c->cfg.n_layers)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: layer %d out of range (n_layers = %d)", fn, layer, c->cfg.n_layers);
    const sequence *sq = seq_find(c, seq);
    if (!sq) return rq__fail(RQ_ERR_INVALID_ARG, "%s: no sequence %d", fn, seq);
    const layer_store *ls = *ls_out = &sq->layers[layer];
    if (n_queries && (!q || !out))
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL with n_queries = %zu", fn, !q ? "q" : "out", n_queries);
    if (p->n_q_heads < c->cfg.n_kv_heads || p->n_q_heads % c->cfg.n_kv_heads)
        return rq__fail(RQ_ERR_SHAPE, "%s: n_q_heads = %d is not a positive multiple of n_kv_heads = %d", fn,
                        p->n_q_heads, c->cfg.n_kv_heads);
    if (!(p->scale >= 0) || isinf(p->scale))
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: scale = %g (must be finite and ≥ 0; 0 = 1/sqrt(head_dim))", fn,
                        (double)p->scale);
    size_t n_tok = ls->n_tokens;
    for (size_t i = 0; n_ctx && i < n_queries; i++)
        if (n_ctx[i] > n_tok)
            return rq__fail(RQ_ERR_SHAPE, "%s: n_ctx[%zu] = %zu exceeds the %zu tokens of layer %d", fn, i, n_ctx[i],
                            n_tok, layer);
    const size_t W = c->window[layer], kept = ls->n_dropped * (size_t)c->cfg.page_tokens;
    for (size_t i = 0; kept && i < n_queries; i++) {
        const size_t lim = n_ctx ? n_ctx[i] : n_tok;
        if ((lim > W ? lim - W : 0) < kept)
            return rq__fail(RQ_ERR_RANGE,
                            "%s: sequence %d, layer %d: query %zu attends positions from %zu, but those before %zu "
                            "were released behind the window of %zu",
                            fn, seq, layer, i, lim > W ? lim - W : 0, kept, W);
    }
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
    size_t n_q8;                 /* int8 prepared queries (0: no int8 scores), at the end of n_prep */
    size_t n_qf;                 /* floats of n_prep before them */
} attn_plan;

/* split-K: enough chunks to keep every thread busy, each ≥ 256 tokens:
 * ≥ 8 tasks per thread (was 4), so that the dynamic hand-out evens out
 * tasks of unequal cost and a thread the OS preempts for a while (a shared
 * machine) leaves little work behind it — at 8 KV heads and 2 threads, 8
 * tasks split 4:4 only when both threads run at the same speed */
static size_t chunks_wanted(const rq_cache *c) {
    int nt = c->cfg.n_threads;
    return nt > 1 ? (size_t)(8 * nt + c->cfg.n_kv_heads - 1) / (size_t)c->cfg.n_kv_heads : 1;
}

static void plan_floats(const rq_cache *c, size_t n_queries, int n_q_heads, attn_plan *pl) {
    const size_t d = (size_t)c->cfg.head_dim, Hq = (size_t)n_q_heads;
    pl->n_q8 = c->cfg.int8_scores ? n_queries * Hq * pl->n_ranges : 0;
    pl->n_qf = n_queries * Hq * pl->n_ranges * 2 * d;
    pl->n_prep = pl->n_qf + pl->n_q8 * (2 + Q8_LD(d) / sizeof(float));
    pl->n_part = n_queries * Hq * pl->n_chunks * partial_stride((int)d);
    pl->n_qb = Hq / (size_t)c->cfg.n_kv_heads * pl->n_ranges * d;
}

static void plan_attention(const rq_cache *c, const layer_store *ls, int layer, size_t n_queries, const size_t *n_ctx,
                           const rq_attn_params *p, attn_plan *pl) {
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
    if (kv->cent && kv->layout->trellis) { /* TCQ: the LUT, in no order */
        for (int s = 0; s < RQ_TCQ_STATES; s++) cmax = fmax(cmax, fabs((double)kv->cent[s]));
    } else if (kv->cent) {
        const int n = 1 << kv->bits;
        cmax = fmax(fabs((double)kv->cent[0]), fabs((double)kv->cent[n - 1]));
    }
    *codes = *signs = 0;
    switch (kv->family) {
    case RQ_FAMILY_F32: *codes = (double)ls->kmax; break;
    case RQ_FAMILY_F16: *codes = F16_MAX; break;
    case RQ_FAMILY_Q8_0: *codes = F16_MAX * 128; break; /* d · q, q ∈ [−128, 127] */
    case RQ_FAMILY_Q4_0: *codes = F16_MAX * 8; break;   /* d · (q − 8), q ∈ [0, 15] */
    case RQ_FAMILY_MSE:
    case RQ_FAMILY_TCQ: *codes = F16_MAX * cmax; break;
    case RQ_FAMILY_PROD:
        *codes = F16_MAX * cmax;
        *signs = F16_MAX * fabs((double)kv->alpha);
        break;
    }
    if ((double)ls->sink_kmax > *codes) *codes = (double)ls->sink_kmax; /* key centring's exact sink */
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

/* The layer's part of a job: kernels, views, scale, bases, window. */
/* blocks of 1..4-bit MSE codes alone (no signs) at d a multiple of 16:
 * the fused slots' domain */
static bool mse_fusable(const block_view *bv, int d) {
    return bv->layout->codes && !bv->layout->signs && !bv->layout->trellis && !bv->layout->in_place && bv->bits >= 1 &&
           bv->bits <= 4 && d % 16 == 0;
}

static void job_init(attn_job *j, const rq_cache *c, int layer, const rq_attn_params *p) {
    memset(j, 0, sizeof *j);
    j->c = c, j->K = rq__attn_kernels(), j->d = c->cfg.head_dim, j->n_q_heads = p->n_q_heads;
    j->qk = c->kind[layer].qk, j->qv = c->kind[layer].qv;
    j->kv = view_of(j->qk), j->vv = view_of(j->qv);
    j->group = p->n_q_heads / c->cfg.n_kv_heads;
    j->scale = p->scale > 0 ? p->scale : 1.0f / sqrtf((float)j->d);
    j->kb = c->kbasis + (size_t)layer * (size_t)c->cfg.n_kv_heads;
    j->window = c->window[layer];
    j->int8 = c->cfg.int8_scores && int8_keys(&j->kv);
    /* the key / value codes decode_run would hand to decode_mse_n, where
     * the level has the fused loops for them */
    j->vfused = j->K->accum_mse_n && mse_fusable(&j->vv, j->d);
    /* keys: at ≥ 4 query heads per KV head only (d = 128, GQA 4: 8% less
     * time per call; at GQA 3 the fused loop's reductions make it slower
     * than decode + scores in a whole call, docs/RESULTS.md) */
    j->kfused = !j->int8 && j->group >= 4 && j->K->scores_mse_n && mse_fusable(&j->kv, j->d);
    if (j->int8) { /* c8 = round(c·127/max|c|) (symmetric codebooks: ±127 at the ends; TCQ: the 256-entry LUT,
                    * already at the quantizer's 1/√d scale, ±127 at its largest |entry|), biased by 128 */
        const int nc = j->kv.layout->trellis ? RQ_TCQ_STATES : 1 << j->kv.bits;
        float cmax = 0;
        for (int i = 0; i < nc; i++) cmax = fabsf(j->kv.cent[i]) > cmax ? fabsf(j->kv.cent[i]) : cmax;
        const float inv = cmax > 0 ? 127.0f / cmax : 0.0f;
        for (int i = 0; i < nc; i++) j->tab8[i] = (uint8_t)(128 + (int)lrintf(j->kv.cent[i] * inv));
        j->cfac = cmax / 127.0f;
    }
}

/* The int8 prepared query (rq__quantize_q8), zeros after d up to Q8_LD(d):
 * the kernels read up to 16-byte multiples. */
static void quantize_q8(const float *x, int d, int8_t *q8, float *qs, int32_t *qsum) {
    memset(q8 + d, 0, Q8_LD(d) - (size_t)d);
    rq__quantize_q8(x, d, q8, qs, qsum);
}

/* Prepares one item's queries into it->qprep: each query head once per
 * key-basis range in use, into the range's basis and rotated (Π A⁻ᵀq, for
 * the group's heads in one `scores` call) or just rotated; sketched for
 * QJL keys; scaled. Then checks that no score can overflow. qb: n_qb
 * floats of scratch. */
static rq_status attend_prepare(const attn_job *j, int layer, const attn_item *it, float *qb, const char *fn) {
    const rq_cache *c = j->c;
    const int d = j->d, Hq = j->n_q_heads, G = j->group;
    const bool kprod = j->kv.family == RQ_FAMILY_PROD;
    uint32_t qmax = 0, smax = 0; /* the largest |prepared query value|, code and sign parts (max_abs_bits) */
    for (size_t i = 0; i < it->n_queries; i++)
        for (int h = 0; h < c->cfg.n_kv_heads; h++) {
            const key_basis *B = j->kb[h];
            const float *qg = it->q + (i * (size_t)Hq + (size_t)h * (size_t)G) * (size_t)d;
            const size_t nr = B ? (B->n < it->n_ranges ? B->n : it->n_ranges) : 1, ld = nr * (size_t)d;
            /* k8 keys are stored as (k − μ)/σ_h: σ_h goes into the query (and
             * so into the int8 query's scale); σ = 1 for other key types */
            const float qscale = j->scale * sigma_at(c, it->ls, (size_t)h);
            if (B) {
                memset(qb, 0, sizeof(float) * (size_t)G * ld);
                j->K->scores(qg, G, d, B->mq, (int)ld, d, qb, (int)ld);
            }
            for (size_t r = 0; r < nr; r++)
                for (int g = 0; g < G; g++) {
                    float *qr = it->qprep + ((i * (size_t)Hq + (size_t)h * (size_t)G + (size_t)g) * it->n_ranges + r) *
                                                2 * (size_t)d;
                    if (B) memcpy(qr, qb + (size_t)g * ld + r * (size_t)d, sizeof(float) * (size_t)d);
                    else if (j->qk->rot) rq_rotation_forward(j->qk->rot, qg + (size_t)g * (size_t)d, qr, 1);
                    else memcpy(qr, qg + (size_t)g * (size_t)d, sizeof(float) * (size_t)d);
                    if (kprod) rq__qjl_apply(j->qk, qr, qr + d);
                    /* the score scale goes into the prepared query: one multiply
                     * per coordinate here instead of one per score in the loop */
                    for (int x = 0; x < (kprod ? 2 * d : d); x++) qr[x] *= qscale;
                    const uint32_t a = max_abs_bits(qr, d), b = kprod ? max_abs_bits(qr + d, d) : 0;
                    if (j->int8 && a < NONFINITE_BITS) { /* the int8 copy of the code part */
                        const size_t e = (i * (size_t)Hq + (size_t)h * (size_t)G + (size_t)g) * it->n_ranges + r;
                        quantize_q8(qr, d, it->q8 + e * Q8_LD(d), it->q8s + e, it->q8sum + e);
                    }
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
    key_value_bound(it->ls, &j->kv, &kc, &ks);
    const double bound = (double)d * ((double)bits_float(qmax) * kc + (double)bits_float(smax) * ks);
    if (qmax >= NONFINITE_BITS || smax >= NONFINITE_BITS || !(bound <= FLT_MAX / 4))
        return rq__fail(RQ_ERR_RANGE,
                        "%s: scores may overflow: max |scale·q| = %g (scale = %g) times the largest key value of "
                        "layer %d (%g), times head_dim %d, exceeds FLT_MAX/4",
                        fn, (double)bits_float(qmax > smax ? qmax : smax), (double)j->scale, layer, kc > ks ? kc : ks,
                        d);
    return RQ_OK;
}

/* Merges one item's chunk partials (in chunk order) and leaves the rotated
 * domain, into it->out. */
static rq_status attend_merge(const attn_job *j, const attn_item *it, const char *fn) {
    const int d = j->d, Hq = j->n_q_heads;
    float acc[RQ_MAX_DIMS], sig[RQ_MAX_DIMS], tmp[RQ_MAX_DIMS];
    for (size_t i = 0; i < it->n_queries * (size_t)Hq; i++) {
        const float *P = it->partial + i * it->n_chunks * partial_stride(d);
        float M = -INFINITY, L = 0;
        for (size_t k = 0; k < it->n_chunks; k++) M = P[k * partial_stride(d)] > M ? P[k * partial_stride(d)] : M;
        memset(acc, 0, sizeof(float) * (size_t)d);
        memset(sig, 0, sizeof(float) * (size_t)d);
        for (size_t k = 0; k < it->n_chunks; k++) {
            const float *pk = P + k * partial_stride(d);
            if (pk[1] == 0) continue;
            float w = expf(pk[0] - M);
            L += w * pk[1];
            for (int x = 0; x < d; x++) acc[x] += w * pk[2 + x];
            for (int x = 0; j->vv.family == RQ_FAMILY_PROD && x < d; x++) sig[x] += w * pk[2 + d + x];
        }
        float *o = it->out + i * (size_t)d;
        if (L == 0) { /* empty context: zero output */
            memset(o, 0, sizeof(float) * (size_t)d);
            continue;
        }
        float inv = 1.0f / L;
        for (int x = 0; x < d; x++) acc[x] *= inv;
        if (j->vv.family == RQ_FAMILY_PROD) {
            for (int x = 0; x < d; x++) sig[x] *= inv;
            qjl_transpose_f(j->qv, sig, tmp);
            for (int x = 0; x < d; x++) acc[x] += tmp[x];
        }
        if (j->qv->rot) rq_rotation_inverse(j->qv->rot, acc, o, 1);
        else memcpy(o, acc, sizeof(float) * (size_t)d);
        /* the scores cannot overflow (above); sums of huge f32 values can */
        if (max_abs_bits(o, d) >= NONFINITE_BITS)
            return rq__fail(RQ_ERR_RANGE, "%s: the output of query %zu, head %zu overflows (values too large)", fn,
                            i / (size_t)Hq, i % (size_t)Hq);
    }
    return RQ_OK;
}

/* The attention itself: items with their plans and workspace regions set
 * (qprep, partial), qb scratch for the largest n_qb. Every item's queries
 * are prepared, then one parallel loop runs every (item, KV head, chunk)
 * task, then each item is merged: an item's result depends on nothing
 * but itself, so it is the same bits as a call on that item alone. */
static rq_status attend(const rq_cache *c, int layer, const rq_attn_params *p, attn_item *items, size_t n_items,
                        float *qb, const char *fn) {
    attn_job j;
    job_init(&j, c, layer, p);
    size_t n_tasks = 0;
    for (size_t b = 0; b < n_items; b++) {
        rq_status st = attend_prepare(&j, layer, &items[b], qb, fn);
        if (st) return st;
        items[b].task0 = n_tasks;
        n_tasks += (size_t)c->cfg.n_kv_heads * items[b].n_chunks;
    }
    if (n_tasks > INT32_MAX) return rq__fail(RQ_ERR_INVALID_ARG, "%s: %zu tasks: too many sequences", fn, n_tasks);
    j.items = items, j.n_items = n_items;
    rq_parallel_for(c->cfg.n_threads, (int)n_tasks, attn_task, &j);
    for (size_t b = 0; b < n_items; b++) {
        rq_status st = attend_merge(&j, &items[b], fn);
        if (st) return st;
    }
    return RQ_OK;
}

/* One item from a plan, its regions at ws (n_prep + n_part floats). */
static attn_item item_of(const layer_store *ls, const float *q, size_t n_queries, const size_t *n_ctx, float *out,
                         const attn_plan *pl, float *ws) {
    attn_item it;
    memset(&it, 0, sizeof it);
    it.ls = ls, it.q = q, it.n_queries = n_queries, it.n_ctx = n_ctx, it.out = out;
    it.n_chunks = pl->n_chunks, it.chunk_tokens = pl->chunk_tokens, it.n_ranges = pl->n_ranges;
    it.qprep = ws, it.partial = ws + pl->n_prep;
    if (pl->n_q8) { /* after the float queries: the scales, the sums, then the bytes */
        it.q8s = ws + pl->n_qf;
        it.q8sum = (int32_t *)(void *)(it.q8s + pl->n_q8);
        it.q8 = (int8_t *)(void *)(it.q8sum + pl->n_q8);
    }
    return it;
}

rq_status rq_cache_attention_ws(const rq_cache *c, int layer, const float *q, size_t n_queries, const size_t *n_ctx,
                                const rq_attn_params *p, float *out, void *ws, size_t ws_bytes) {
    static const char fn[] = "rq_cache_attention_ws";
    const layer_store *ls;
    rq_status st = check_attention_args(fn, c, 0, layer, q, n_queries, n_ctx, p, out, &ls);
    if (st || !n_queries) return st;
    attn_plan pl;
    plan_attention(c, ls, layer, n_queries, n_ctx, p, &pl);
    if (!ws || ws_bytes < plan_bytes(&pl))
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: workspace of %zu bytes%s, this call needs %zu", fn, ws_bytes,
                        ws ? "" : " at NULL", plan_bytes(&pl));
    uintptr_t a = ((uintptr_t)ws + WS_ALIGN - 1) & ~(uintptr_t)(WS_ALIGN - 1);
    float *w = (float *)(void *)a;
    attn_item it = item_of(ls, q, n_queries, n_ctx, out, &pl, w);
    return attend(c, layer, p, &it, 1, w + pl.n_prep + pl.n_part, fn);
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

/* Attention of n_items sequences with a workspace from the cache's free
 * list; items[b].seq/q/n_queries/n_ctx/out given. */
static rq_status attention_pooled(const rq_cache *c, int layer, const rq_attn_seq *seqs, size_t n_seqs,
                                  const rq_attn_params *p, const char *fn) {
    /* the plans first: the workspace holds the items, then each item's
     * prepared queries and partials, then the shared scratch (qb) */
    size_t floats = 0, qb = 0, live = 0;
    for (size_t b = 0; b < n_seqs; b++) {
        const layer_store *ls;
        rq_status st = check_attention_args(fn, c, seqs[b].seq, layer, seqs[b].q, seqs[b].n_queries, seqs[b].n_ctx, p,
                                            seqs[b].out, &ls);
        if (st) return n_seqs > 1 ? rq__fail(st, "%s: sequence entry %zu: %s", fn, b, rq_last_error()) : st;
        if (!seqs[b].n_queries) continue;
        attn_plan pl;
        plan_attention(c, ls, layer, seqs[b].n_queries, seqs[b].n_ctx, p, &pl);
        floats += pl.n_prep + pl.n_part, qb = pl.n_qb > qb ? pl.n_qb : qb, live++;
    }
    if (!live) return RQ_OK;
    const size_t item_floats = (live * sizeof(attn_item) + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN / sizeof(float);
    const size_t total = item_floats + floats + qb + WS_ALIGN / sizeof(float);
    workspace *w = ws_take(c, total);
    if (!w) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory (a workspace of %zu bytes)", fn, total * sizeof(float));
    uintptr_t a = ((uintptr_t)w->data + WS_ALIGN - 1) & ~(uintptr_t)(WS_ALIGN - 1);
    float *base = (float *)(void *)a, *at = base + item_floats;
    attn_item *items = (attn_item *)(void *)base;
    size_t n = 0;
    for (size_t b = 0; b < n_seqs; b++) {
        if (!seqs[b].n_queries) continue;
        const layer_store *ls = &seq_find(c, seqs[b].seq)->layers[layer];
        attn_plan pl;
        plan_attention(c, ls, layer, seqs[b].n_queries, seqs[b].n_ctx, p, &pl);
        items[n++] = item_of(ls, seqs[b].q, seqs[b].n_queries, seqs[b].n_ctx, seqs[b].out, &pl, at);
        at += pl.n_prep + pl.n_part;
    }
    rq_status st = attend(c, layer, p, items, n, at, fn);
    ws_give(c, w);
    return st;
}

rq_status rq_cache_attention(const rq_cache *c, int layer, const float *q, size_t n_queries, const size_t *n_ctx,
                             const rq_attn_params *p, float *out) {
    return rq_cache_seq_attention(c, 0, layer, q, n_queries, n_ctx, p, out);
}

rq_status rq_cache_seq_attention(const rq_cache *c, int seq, int layer, const float *q, size_t n_queries,
                                 const size_t *n_ctx, const rq_attn_params *p, float *out) {
    const rq_attn_seq one = {.seq = seq, .q = q, .n_queries = n_queries, .n_ctx = n_ctx, .out = out};
    return attention_pooled(c, layer, &one, 1, p, seq ? "rq_cache_seq_attention" : "rq_cache_attention");
}

rq_status rq_cache_attention_batch(const rq_cache *c, int layer, const rq_attn_seq *seqs, size_t n_seqs,
                                   const rq_attn_params *p) {
    static const char fn[] = "rq_cache_attention_batch";
    if (n_seqs && !seqs) return rq__fail(RQ_ERR_INVALID_ARG, "%s: seqs is NULL with n_seqs = %zu", fn, n_seqs);
    if (n_seqs > ((size_t)1 << 24)) return rq__fail(RQ_ERR_INVALID_ARG, "%s: n_seqs = %zu too large", fn, n_seqs);
    if (!n_seqs) {
        if (!c || !p) return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !c ? "cache" : "p");
        return RQ_OK;
    }
    return attention_pooled(c, layer, seqs, n_seqs, p, fn);
}

rq_status rq_cache_attention_ref(const rq_cache *c, int layer, const float *q, size_t n_queries,
                                 const size_t *n_ctx, const rq_attn_params *p, float *out) {
    return rq_cache_seq_attention_ref(c, 0, layer, q, n_queries, n_ctx, p, out);
}

rq_status rq_cache_seq_attention_ref(const rq_cache *c, int seq, int layer, const float *q, size_t n_queries,
                                     const size_t *n_ctx, const rq_attn_params *p, float *out) {
    const layer_store *ls;
    rq_status st = check_attention_args(seq ? "rq_cache_seq_attention_ref" : "rq_cache_attention_ref", c, seq, layer,
                                        q, n_queries, n_ctx, p, out, &ls);
    if (st || !n_queries) return st;
    const size_t W = c->window[layer], t_kept = ls->n_dropped * (size_t)c->cfg.page_tokens;
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
        const uint16_t *cx = ls->cx ? ls->cx + (size_t)h * 3 * (size_t)d : NULL; /* centring: μ, k0, v0 */
        for (size_t t = t_kept; t < n_tok; t++) { /* positions released behind the window are never read */
            float *kt = kd + t * (size_t)d;
            if (cx && t == 0) { /* the exact sink */
                for (int x = 0; x < d; x++) kt[x] = rq_f16_to_f32(cx[d + x]), vd[x] = rq_f16_to_f32(cx[2 * d + x]);
                continue;
            }
            rq_quantizer_decode(ls->kind->qk, key_block(c, ls, h, t), kt, 1);
            if (B) { /* back from the range's basis: k = A⁻¹ (A k) = (Πᵀ Π A⁻ᵀ)ᵀ (A k) */
                const float *pit = B->mq + range_of(B, t) * (size_t)d * (size_t)d;
                if (ls->kind->qk->rot) rq_rotation_forward(ls->kind->qk->rot, kt, y, 1); /* Π (A k) */
                else memcpy(y, kt, sizeof(float) * (size_t)d);
                for (int x = 0; x < d; x++) { /* (Π A⁻ᵀ)ᵀ Π (A k) = A⁻¹ Πᵀ Π A k */
                    double a = 0;
                    for (int z = 0; z < d; z++) a += (double)pit[(size_t)z * (size_t)d + (size_t)x] * y[z];
                    kt[x] = (float)a;
                }
            }
            if (ls->kind->k8) /* stored (k − μ)/σ */
                for (int x = 0; x < d; x++) kt[x] *= sigma_at(c, ls, (size_t)h);
            for (int x = 0; cx && ls->mu_set && x < d; x++) kt[x] += rq_f16_to_f32(cx[x]); /* μ + (k − μ)^ */
            rq_quantizer_decode(ls->kind->qv, value_block(c, ls, h, t), vd + t * (size_t)d, 1);
        }
        for (size_t i = 0; i < n_queries; i++)
            for (int g = 0; g < G; g++) {
                size_t qh = (size_t)h * (size_t)G + (size_t)g;
                const float *qi = q + (i * (size_t)Hq + qh) * (size_t)d;
                float *oi = out + (i * (size_t)Hq + qh) * (size_t)d;
                size_t lim = n_ctx ? n_ctx[i] : n_tok, t0 = W && lim > W ? lim - W : 0;
                double m = -INFINITY, l = 0;
                for (size_t t = t0; t < lim; t++) {
                    double s = 0;
                    for (int x = 0; x < d; x++) s += (double)qi[x] * kd[t * (size_t)d + (size_t)x];
                    sc[t] = s * scale;
                    m = sc[t] > m ? sc[t] : m;
                }
                for (int x = 0; x < d; x++) o[x] = 0;
                for (size_t t = t0; t < lim; t++) {
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

/* ---- save and restore (docs/FORMAT.md §7) ----------------------------------
 * A file holds one sequence or every sequence of a cache: a header naming
 * everything that gives the stored bytes their meaning (types, head_dim,
 * layers, KV heads, page size, quantizer seed and options, the key bases'
 * hash, the windows), protected by a CRC32C; then per sequence a record of
 * its token counts (CRC32C) and its pages, each page's used slots with their
 * own CRC32C. A load checks every field, CRC and block (decoded once, so a
 * block with an fp16 NaN never reaches attention) before it changes
 * anything, then takes every page it needs at once. */
#define SEQ_MAGIC "RQKVSEQ"   /* 8 bytes with its NUL */
#define SEQ_FILE_VERSION 3u  /* 2: key centring (μ and the sink per layer); 3: + the per-head key scale σ */
#define SEQ_TYPE_NAME 16      /* bytes of a type name field (zero-padded) */
#define SEQ_HEADER_FIXED 112  /* header bytes before the windows */

/* A stored CRC matches. Fuzzing builds (make fuzz) accept any CRC, so the
 * fuzzer reaches the checks behind them (libFuzzer's convention). */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define CRC_OK(data, n, want) ((void)(data), (void)(n), (void)(want), true)
#else
#define CRC_OK(data, n, want) (rq__crc32c(data, n) == (want))
#endif

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* FNV-1a 64 over a value's little-endian bytes */
static uint64_t fnv_u64(uint64_t h, uint64_t v) {
    for (int i = 0; i < 8; i++) h = (h ^ (uint8_t)(v >> (8 * i))) * 0x100000001b3ull;
    return h;
}

/* The key bases' identity: FNV-1a 64 over, per layer and KV head in order,
 * 0 (none) or 1, n ranges, n_ctx, the starts and the floats of every Aᵀ
 * (their IEEE bits); 0 when no head has a basis. */
static uint64_t key_basis_hash(const rq_cache *c) {
    uint64_t h = 0xcbf29ce484222325ull;
    bool any = false;
    const size_t dd = (size_t)c->cfg.head_dim * (size_t)c->cfg.head_dim;
    for (size_t i = 0; i < (size_t)c->cfg.n_layers * (size_t)c->cfg.n_kv_heads; i++) {
        const key_basis *b = c->kbasis[i];
        h = fnv_u64(h, b != NULL);
        if (!b) continue;
        any = true;
        h = fnv_u64(h, b->n), h = fnv_u64(h, b->n_ctx);
        for (size_t r = 0; r < b->n; r++) h = fnv_u64(h, b->start[r]);
        for (size_t x = 0; x < b->n * dd; x++) {
            uint32_t u;
            memcpy(&u, &b->mk[x], 4);
            h = fnv_u64(h, u);
        }
    }
    return any ? h : 0;
}

static size_t header_bytes(const rq_cache *c) { return SEQ_HEADER_FIXED + 40 * (size_t)c->cfg.n_layers + 4; }
/* Where layer l's K and V type names (SEQ_TYPE_NAME bytes each) start. */
static size_t layer_types_at(const rq_cache *c, int l) {
    return SEQ_HEADER_FIXED + 8 * (size_t)c->cfg.n_layers + 2 * SEQ_TYPE_NAME * (size_t)l;
}
static size_t record_bytes(const rq_cache *c) { return 8 + 24 * (size_t)c->cfg.n_layers + 4; }
/* Bytes of a layer's key-centring state in a file (CRC32C + μ, k0, v0, σ in
 * fp16), present when the cache centres keys and the layer holds tokens. */
static size_t centre_saved(const rq_cache *c, size_t n_tokens) {
    return c->cfg.centre_keys && n_tokens ? 4 + centre_bytes(c) : 0;
}

static void write_header(const rq_cache *c, uint32_t n_seqs, uint8_t *p) {
    memset(p, 0, header_bytes(c));
    memcpy(p, SEQ_MAGIC, 8);
    put_u32(p + 8, SEQ_FILE_VERSION), put_u32(p + 12, RQ_FORMAT_VERSION), put_u32(p + 16, RQ_VERSION_NUMBER);
    put_u32(p + 20, (uint32_t)header_bytes(c));
    strncpy((char *)p + 24, rq_quantizer_type(c->qk)->name, SEQ_TYPE_NAME - 1);
    strncpy((char *)p + 40, rq_quantizer_type(c->qv)->name, SEQ_TYPE_NAME - 1);
    put_u32(p + 56, (uint32_t)c->cfg.head_dim), put_u32(p + 60, (uint32_t)c->cfg.n_layers);
    put_u32(p + 64, (uint32_t)c->cfg.n_kv_heads), put_u32(p + 68, (uint32_t)c->cfg.page_tokens);
    put_u64(p + 72, c->cfg.quant.seed);
    put_u32(p + 80, (uint32_t)c->cfg.quant.law), put_u32(p + 84, (uint32_t)c->cfg.quant.norm_correct);
    put_u32(p + 88, (uint32_t)c->cfg.quant.qjl), put_u32(p + 92, n_seqs);
    put_u64(p + 96, key_basis_hash(c));
    put_u32(p + 104, (uint32_t)c->cfg.centre_keys), put_u32(p + 108, (uint32_t)c->cfg.centre_window);
    for (int l = 0; l < c->cfg.n_layers; l++) put_u64(p + SEQ_HEADER_FIXED + 8 * (size_t)l, c->window[l]);
    for (int l = 0; l < c->cfg.n_layers; l++) {
        strncpy((char *)p + layer_types_at(c, l), rq_quantizer_type(c->kind[l].qk)->name, SEQ_TYPE_NAME - 1);
        strncpy((char *)p + layer_types_at(c, l) + SEQ_TYPE_NAME, rq_quantizer_type(c->kind[l].qv)->name,
                SEQ_TYPE_NAME - 1);
    }
    const size_t n = header_bytes(c) - 4;
    put_u32(p + n, rq__crc32c(p, n));
}

/* Tokens used in page p of a layer holding n tokens. */
static size_t page_used(const rq_cache *c, size_t n_tokens, size_t p) {
    const size_t pt = (size_t)c->cfg.page_tokens, rest = n_tokens - p * pt;
    return rest < pt ? rest : pt;
}

/* Bytes of one sequence's record and pages. */
static size_t seq_saved_bytes(const rq_cache *c, const sequence *s) {
    const size_t pt = (size_t)c->cfg.page_tokens, H = (size_t)c->cfg.n_kv_heads;
    size_t n = record_bytes(c);
    for (int l = 0; l < c->cfg.n_layers; l++) {
        const layer_store *ls = &s->layers[l];
        const size_t pages = (ls->n_tokens + pt - 1) / pt;
        n += centre_saved(c, ls->n_tokens);
        n += 4 * (pages - ls->n_dropped) + (ls->n_tokens - ls->n_dropped * pt) * H * (ls->kind->bk + ls->kind->bv);
    }
    return n;
}

static uint8_t *save_seq(const rq_cache *c, const sequence *s, uint8_t *p) {
    const size_t pt = (size_t)c->cfg.page_tokens, H = (size_t)c->cfg.n_kv_heads;
    uint8_t *rec = p;
    put_u32(p, (uint32_t)s->id), put_u32(p + 4, 0);
    p += 8;
    for (int l = 0; l < c->cfg.n_layers; l++, p += 24)
        put_u64(p, s->layers[l].n_tokens), put_u64(p + 8, s->layers[l].n_dropped),
            put_u64(p + 16, (uint64_t)s->layers[l].mu_set);
    put_u32(p, rq__crc32c(rec, (size_t)(p - rec)));
    p += 4;
    for (int l = 0; l < c->cfg.n_layers; l++) {
        const layer_store *ls = &s->layers[l];
        const size_t pages = (ls->n_tokens + pt - 1) / pt;
        if (centre_saved(c, ls->n_tokens)) { /* μ, k0, v0 per head, then σ per head: little-endian fp16 */
            const size_t n = centre_bytes(c) / 2;
            for (size_t i = 0; i < n; i++) p[4 + 2 * i] = (uint8_t)ls->cx[i], p[5 + 2 * i] = (uint8_t)(ls->cx[i] >> 8);
            put_u32(p, rq__crc32c(p + 4, 2 * n));
            p += 4 + 2 * n;
        }
        for (size_t pg = ls->n_dropped; pg < pages; pg++) {
            const size_t used = page_used(c, ls->n_tokens, pg);
            uint8_t *body = p + 4, *q = body;
            for (size_t h = 0; h < H; h++) { /* the used slots of each head: keys, then values */
                const uint8_t *region = ls->pages[pg] + h * ls->kind->head_stride;
                memcpy(q, region, used * ls->kind->bk), q += used * ls->kind->bk;
                memcpy(q, region + pt * ls->kind->bk, used * ls->kind->bv), q += used * ls->kind->bv;
            }
            put_u32(p, rq__crc32c(body, (size_t)(q - body)));
            p = q;
        }
    }
    return p;
}

rq_status rq_cache_seq_save_mem(const rq_cache *c, int seq, void *buf, size_t cap, size_t *n_bytes) {
    static const char fn[] = "rq_cache_seq_save_mem";
    if (!c || !n_bytes) return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !c ? "cache" : "n_bytes");
    const sequence *one = NULL;
    if (seq != RQ_SEQ_ALL && !(one = seq_find(c, seq)))
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: no sequence %d", fn, seq);
    size_t need = header_bytes(c);
    for (size_t i = 0; i < c->n_seqs; i++)
        if (!one || c->seqs[i] == one) need += seq_saved_bytes(c, c->seqs[i]);
    *n_bytes = need;
    if (!buf) return RQ_OK;
    if (cap < need)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: a buffer of %zu bytes, the sequence%s need%s %zu", fn, cap,
                        one ? "" : "s", one ? "s" : "", need);
    uint8_t *p = buf;
    write_header(c, one ? 1u : (uint32_t)c->n_seqs, p);
    p += header_bytes(c);
    for (size_t i = 0; i < c->n_seqs; i++)
        if (!one || c->seqs[i] == one) p = save_seq(c, c->seqs[i], p);
    return RQ_OK;
}

rq_status rq_cache_seq_save(const rq_cache *c, int seq, const char *path) {
    static const char fn[] = "rq_cache_seq_save";
    if (!path) return rq__fail(RQ_ERR_INVALID_ARG, "%s: path is NULL", fn);
    size_t n;
    rq_status st = rq_cache_seq_save_mem(c, seq, NULL, 0, &n);
    if (st) return rq__fail(st, "%s: %s", fn, rq_last_error());
    uint8_t *buf = malloc(n);
    if (!buf) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory (%zu bytes)", fn, n);
    if ((st = rq_cache_seq_save_mem(c, seq, buf, n, &n))) rq__fail(st, "%s: %s", fn, rq_last_error());
    else st = rq__write_atomic(fn, path, buf, n);
    free(buf);
    return st;
}

/* One sequence record as parsed: where its pages start in the input. */
typedef struct {
    int id;
    const uint8_t *pages;
    size_t *n_tokens, *n_dropped, *mu_set; /* [n_layers] each, in one allocation */
} seq_rec;

/* Checks the header against the cache; *n_seqs from it. */
static rq_status check_header(const rq_cache *c, const char *fn, const uint8_t *p, size_t n, uint32_t *n_seqs) {
    if (n < 24) return rq__fail(RQ_ERR_TRUNCATED, "%s: %zu bytes, shorter than a header", fn, n);
    if (memcmp(p, SEQ_MAGIC, 8)) return rq__fail(RQ_ERR_FORMAT, "%s: not a rotorquant sequence file (magic)", fn);
    if (get_u32(p + 8) != SEQ_FILE_VERSION)
        return rq__fail(RQ_ERR_FORMAT, "%s: file format version %u, this library reads version %u", fn,
                        get_u32(p + 8), SEQ_FILE_VERSION);
    if (get_u32(p + 12) != RQ_FORMAT_VERSION)
        return rq__fail(RQ_ERR_FORMAT, "%s: block format version %u, this library writes version %d", fn,
                        get_u32(p + 12), RQ_FORMAT_VERSION);
    const uint32_t hb = get_u32(p + 20);
    if (hb != header_bytes(c)) /* the header holds one window and two type names per layer */
        return rq__fail(RQ_ERR_FORMAT, "%s: a header of %u bytes, a cache of %d layers needs %zu", fn, hb,
                        c->cfg.n_layers, header_bytes(c));
    if (n < hb) return rq__fail(RQ_ERR_TRUNCATED, "%s: %zu bytes, shorter than the header (%u)", fn, n, hb);
    if (!CRC_OK(p, hb - 4, get_u32(p + hb - 4))) return rq__fail(RQ_ERR_FORMAT, "%s: header CRC32C mismatch", fn);
    /* the header is intact: now every difference is a mismatch of caches */
    char tk[SEQ_TYPE_NAME + 1] = {0}, tv[SEQ_TYPE_NAME + 1] = {0};
    memcpy(tk, p + 24, SEQ_TYPE_NAME), memcpy(tv, p + 40, SEQ_TYPE_NAME);
    const char *ck = rq_quantizer_type(c->qk)->name, *cv = rq_quantizer_type(c->qv)->name;
    if (strcmp(tk, ck) || strcmp(tv, cv))
        return rq__fail(RQ_ERR_FORMAT, "%s: saved with types %.16s/%.16s (K/V), the cache has %s/%s", fn, tk, tv, ck,
                        cv);
    const uint32_t d = get_u32(p + 56), L = get_u32(p + 60), H = get_u32(p + 64), pt = get_u32(p + 68);
    if (d != (uint32_t)c->cfg.head_dim || L != (uint32_t)c->cfg.n_layers || H != (uint32_t)c->cfg.n_kv_heads ||
        pt != (uint32_t)c->cfg.page_tokens)
        return rq__fail(RQ_ERR_FORMAT,
                        "%s: saved with head_dim %u, %u layers, %u KV heads, pages of %u tokens; the cache has %d, %d, "
                        "%d, %d",
                        fn, d, L, H, pt, c->cfg.head_dim, c->cfg.n_layers, c->cfg.n_kv_heads, c->cfg.page_tokens);
    if (get_u64(p + 72) != c->cfg.quant.seed || get_u32(p + 80) != (uint32_t)c->cfg.quant.law ||
        get_u32(p + 84) != (uint32_t)c->cfg.quant.norm_correct || get_u32(p + 88) != (uint32_t)c->cfg.quant.qjl)
        return rq__fail(RQ_ERR_FORMAT,
                        "%s: saved with quantizer seed %llu (law %u, norm_correct %u, qjl %u); the cache has seed %llu "
                        "(%d, %d, %d)",
                        fn, (unsigned long long)get_u64(p + 72), get_u32(p + 80), get_u32(p + 84), get_u32(p + 88),
                        (unsigned long long)c->cfg.quant.seed, (int)c->cfg.quant.law, c->cfg.quant.norm_correct,
                        (int)c->cfg.quant.qjl);
    if (get_u32(p + 104) != (uint32_t)c->cfg.centre_keys || get_u32(p + 108) != (uint32_t)c->cfg.centre_window)
        return rq__fail(RQ_ERR_FORMAT, "%s: saved with centre_keys %u (window %u), the cache has %d (%d)", fn,
                        get_u32(p + 104), get_u32(p + 108), c->cfg.centre_keys, c->cfg.centre_window);
    if (get_u64(p + 96) != key_basis_hash(c))
        return rq__fail(RQ_ERR_FORMAT, "%s: saved with key bases of hash %016llx, the cache's are %016llx%s", fn,
                        (unsigned long long)get_u64(p + 96), (unsigned long long)key_basis_hash(c),
                        key_basis_hash(c) ? "" : " (none)");
    for (int l = 0; l < c->cfg.n_layers; l++)
        if (get_u64(p + SEQ_HEADER_FIXED + 8 * (size_t)l) != c->window[l])
            return rq__fail(RQ_ERR_FORMAT, "%s: layer %d saved with a window of %llu, the cache's is %zu", fn, l,
                            (unsigned long long)get_u64(p + SEQ_HEADER_FIXED + 8 * (size_t)l), c->window[l]);
    for (int l = 0; l < c->cfg.n_layers; l++) {
        memcpy(tk, p + layer_types_at(c, l), SEQ_TYPE_NAME), memcpy(tv, p + layer_types_at(c, l) + SEQ_TYPE_NAME, SEQ_TYPE_NAME);
        const char *lk = rq_quantizer_type(c->kind[l].qk)->name, *lv = rq_quantizer_type(c->kind[l].qv)->name;
        if (strcmp(tk, lk) || strcmp(tv, lv))
            return rq__fail(RQ_ERR_FORMAT, "%s: layer %d saved with types %.16s/%.16s (K/V), the cache's are %s/%s", fn,
                            l, tk, tv, lk, lv);
    }
    *n_seqs = get_u32(p + 92);
    return RQ_OK;
}

/* Checks one page's blocks: every one would decode — its fields pass the
 * layout's fields_ok, the one check rq_quantizer_decode makes (finite fp16
 * norms, scales and values), without decoding it; f32 keys are decoded for
 * the largest |key value|, which goes to *kmax. scratch: head_dim floats. */
static rq_status check_page(const rq_cache *c, const char *fn, const uint8_t *body, size_t used, int id, int layer,
                            size_t page, float *scratch, float *kmax) {
    const size_t H = (size_t)c->cfg.n_kv_heads, d = (size_t)c->cfg.head_dim;
    const layer_kind *kd = &c->kind[layer];
    const bool f32k = rq_quantizer_type(kd->qk)->family == RQ_FAMILY_F32;
    const rq_block_layout *Lk = &rq__blocks[kd->qk->traits->block], *Lv = &rq__blocks[kd->qv->traits->block];
    for (size_t h = 0; h < H; h++)
        for (size_t t = 0; t < 2 * used; t++) {
            const bool val = t >= used;
            const uint8_t *blk = body + h * used * (kd->bk + kd->bv) + (val ? used * kd->bk + (t - used) * kd->bv : t * kd->bk);
            if (!(val ? Lv : Lk)->fields_ok(blk, (int)d))
                return rq__fail(RQ_ERR_FORMAT,
                                "%s: sequence %d, layer %d, page %zu, KV head %zu: a malformed %s block (a NaN or Inf in a "
                                "norm/scale/value field; encode never writes one)",
                                fn, id, layer, page, h, val ? "value" : "key");
            if (f32k && !val) {
                if (rq_quantizer_decode(kd->qk, blk, scratch, 1)) return rq__fail(RQ_ERR_FORMAT, "%s: %s", fn, rq_last_error());
                for (size_t x = 0; x < d; x++) *kmax = fabsf(scratch[x]) > *kmax ? fabsf(scratch[x]) : *kmax;
            }
        }
    return RQ_OK;
}

rq_status rq_cache_seq_load_mem(rq_cache *c, int seq, const void *data, size_t n_bytes) {
    static const char fn[] = "rq_cache_seq_load_mem";
    if (!c) return rq__fail(RQ_ERR_INVALID_ARG, "%s: cache is NULL", fn);
    if (!data && n_bytes) return rq__fail(RQ_ERR_INVALID_ARG, "%s: data is NULL", fn);
    if (seq < RQ_SEQ_ALL) return rq__fail(RQ_ERR_INVALID_ARG, "%s: sequence id %d is negative", fn, seq);
    if (seq >= 0 && seq_find(c, seq)) return rq__fail(RQ_ERR_INVALID_ARG, "%s: sequence %d already exists", fn, seq);
    const uint8_t *p = data, *end = p + n_bytes;
    uint32_t n_seqs = 0;
    rq_status st = check_header(c, fn, p, n_bytes, &n_seqs);
    if (st) return st;
    if (seq >= 0 && n_seqs != 1)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: the data holds %u sequences; load them with RQ_SEQ_ALL", fn, n_seqs);
    if (n_seqs > (size_t)(end - p) / record_bytes(c))
        return rq__fail(RQ_ERR_TRUNCATED, "%s: %u sequences cannot fit in %zu bytes", fn, n_seqs, n_bytes);
    p += header_bytes(c);
    const int L = c->cfg.n_layers;
    const size_t pt = (size_t)c->cfg.page_tokens, H = (size_t)c->cfg.n_kv_heads;
    size_t *need_cls = calloc((size_t)c->n_cls, sizeof(size_t)); /* pages needed per size class */
    if (!need_cls) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory", fn);
    /* pass 1: parse and check everything; nothing changes yet */
    seq_rec *recs = calloc(n_seqs ? n_seqs : 1, sizeof *recs);
    size_t *counts = malloc(sizeof(size_t) * 3 * (size_t)L * (n_seqs ? n_seqs : 1));
    float *scratch = malloc(sizeof(float) * (size_t)c->cfg.head_dim);
    float *kmax = calloc((size_t)L * (n_seqs ? n_seqs : 1), sizeof(float));
    if (!recs || !counts || !scratch || !kmax) {
        free(recs), free(counts), free(scratch), free(kmax);
        return rq__fail(RQ_ERR_NOMEM, "%s: out of memory", fn);
    }
    size_t pages_needed = 0;
    for (uint32_t i = 0; i < n_seqs && !st; i++) {
        seq_rec *r = &recs[i];
        r->n_tokens = counts + 3 * (size_t)L * i, r->n_dropped = r->n_tokens + L, r->mu_set = r->n_dropped + L;
        if ((size_t)(end - p) < record_bytes(c)) {
            st = rq__fail(RQ_ERR_TRUNCATED, "%s: the data ends inside the record of sequence %u", fn, i);
            break;
        }
        if (!CRC_OK(p, record_bytes(c) - 4, get_u32(p + record_bytes(c) - 4))) {
            st = rq__fail(RQ_ERR_FORMAT, "%s: record of sequence %u: CRC32C mismatch", fn, i);
            break;
        }
        const uint32_t id = get_u32(p);
        r->id = seq >= 0 ? seq : (int)id;
        if (id > INT32_MAX) {
            st = rq__fail(RQ_ERR_FORMAT, "%s: sequence id %u out of range", fn, id);
            break;
        }
        for (uint32_t j = 0; j < i && seq < 0; j++)
            if (recs[j].id == r->id) st = rq__fail(RQ_ERR_FORMAT, "%s: sequence %d saved twice", fn, r->id);
        if (!st && seq < 0 && seq_find(c, r->id))
            st = rq__fail(RQ_ERR_INVALID_ARG, "%s: sequence %d already exists in the cache", fn, r->id);
        for (int l = 0; l < L && !st; l++) {
            const size_t n = get_u64(p + 8 + 24 * (size_t)l), dr = get_u64(p + 16 + 24 * (size_t)l);
            const uint64_t mu = get_u64(p + 24 + 24 * (size_t)l);
            const size_t W = c->window[l];
            r->n_tokens[l] = n, r->n_dropped[l] = dr, r->mu_set[l] = (size_t)mu;
            /* μ is set exactly when a centred layer holds positions past 0 */
            if (mu != (uint64_t)(c->cfg.centre_keys && n >= 2) && !(c->cfg.centre_keys && n == 1 && mu == 1))
                st = rq__fail(RQ_ERR_FORMAT, "%s: sequence %d, layer %d: μ flag %llu with %zu tokens (centre_keys %d)",
                              fn, r->id, l, (unsigned long long)mu, n, c->cfg.centre_keys);
            const key_basis *const *kb = (const key_basis *const *)c->kbasis + (size_t)l * H;
            const size_t max_dr = W && n > W ? (n - W) / pt : 0; /* so dr·pt ≤ n */
            if (st) break;
            if (dr > max_dr)
                st = rq__fail(RQ_ERR_FORMAT,
                              "%s: sequence %d, layer %d: %zu pages released, at most %zu with %zu tokens and a window "
                              "of %zu",
                              fn, r->id, l, dr, max_dr, n, W);
            else if (n > ((size_t)1 << 40) || n - dr * pt > (size_t)(end - p) / layer_token_bytes(c, l))
                st = rq__fail(RQ_ERR_TRUNCATED, "%s: sequence %d, layer %d: %zu tokens cannot fit in the data", fn,
                              r->id, l, n);
            for (size_t h = 0; h < H && !st; h++)
                if (kb[h] && kb[h]->n_ctx && n > kb[h]->n_ctx)
                    st = rq__fail(RQ_ERR_FORMAT, "%s: sequence %d, layer %d: %zu tokens, the key basis serves %zu", fn,
                                  r->id, l, n, kb[h]->n_ctx);
        }
        if (st) break;
        p += record_bytes(c);
        r->pages = p;
        for (int l = 0; l < L && !st; l++) {
            const size_t pages = (r->n_tokens[l] + pt - 1) / pt, cs = centre_saved(c, r->n_tokens[l]);
            if (cs) { /* the centring state: CRC, then fp16 values that must be finite */
                if ((size_t)(end - p) < cs) {
                    st = rq__fail(RQ_ERR_TRUNCATED, "%s: sequence %d, layer %d: the data ends inside μ and the sink", fn,
                                  r->id, l);
                    break;
                }
                if (!CRC_OK(p + 4, cs - 4, get_u32(p)))
                    st = rq__fail(RQ_ERR_FORMAT, "%s: sequence %d, layer %d: μ and the sink: CRC32C mismatch", fn, r->id, l);
                for (size_t x = 0; !st && x < (cs - 4) / 2; x++)
                    if (((p[5 + 2 * x] >> 2) & 0x1f) == 0x1f)
                        st = rq__fail(RQ_ERR_FORMAT, "%s: sequence %d, layer %d: μ or the sink holds an fp16 NaN or Inf",
                                      fn, r->id, l);
                for (size_t h = 0; !st && h < (size_t)c->cfg.n_kv_heads; h++) { /* σ: positive */
                    const size_t x = (cs - 4) / 2 - (size_t)c->cfg.n_kv_heads + h;
                    const uint16_t sg = (uint16_t)(p[4 + 2 * x] | (p[5 + 2 * x] << 8));
                    if ((sg & 0x8000u) || !(sg & 0x7fffu))
                        st = rq__fail(RQ_ERR_FORMAT, "%s: sequence %d, layer %d: key scale σ of KV head %zu is %g (must be > 0)",
                                      fn, r->id, l, h, (double)rq_f16_to_f32(sg));
                    else if (!c->kind[l].k8 && sg != 0x3c00u) /* only k8 keys are scaled */
                        st = rq__fail(RQ_ERR_FORMAT, "%s: sequence %d, layer %d: key scale σ of KV head %zu is %g, but the "
                                      "layer's keys are not k8 (σ must be 1)",
                                      fn, r->id, l, h, (double)rq_f16_to_f32(sg));
                }
                p += cs;
            }
            for (size_t pg = r->n_dropped[l]; pg < pages && !st; pg++) {
                const size_t used = page_used(c, r->n_tokens[l], pg), body = used * layer_token_bytes(c, l);
                if ((size_t)(end - p) < 4 || (size_t)(end - p) - 4 < body) {
                    st = rq__fail(RQ_ERR_TRUNCATED, "%s: sequence %d, layer %d: the data ends inside page %zu", fn,
                                  r->id, l, pg);
                    break;
                }
                if (!CRC_OK(p + 4, body, get_u32(p)))
                    st = rq__fail(RQ_ERR_FORMAT, "%s: sequence %d, layer %d, page %zu: CRC32C mismatch", fn, r->id, l,
                                  pg);
                else
                    st = check_page(c, fn, p + 4, used, r->id, l, pg, scratch, &kmax[(size_t)L * i + (size_t)l]);
                p += 4 + body;
            }
            pages_needed += pages - r->n_dropped[l];
            need_cls[c->kind[l].cls] += pages - r->n_dropped[l];
        }
    }
    if (!st && p != end)
        st = rq__fail(RQ_ERR_FORMAT, "%s: %zu bytes after the last sequence", fn, (size_t)(end - p));
    if (!st && c->max_bytes != SIZE_MAX) { /* free pages of each size first, then the budget */
        size_t bytes = 0;
        for (int k = 0; k < c->n_cls; k++)
            if (need_cls[k] > c->cls[k].n_free) bytes += (need_cls[k] - c->cls[k].n_free) * c->cls[k].cost;
        if (bytes > c->max_bytes - c->bytes_alloc)
            st = rq__fail(RQ_ERR_NOMEM, "%s: out of pages (%zu needed: %zu new bytes, %zu left in the pool's budget)",
                          fn, pages_needed, bytes, c->max_bytes - c->bytes_alloc);
    }
    free(need_cls);
    /* pass 2: the sequences, their tables and pages; on failure, undone */
    const bool pass2 = !st;
    size_t made = 0;
    for (uint32_t i = 0; i < n_seqs && !st; i++, made++) {
        const seq_rec *r = &recs[i];
        int found;
        size_t at = seq_index(c, r->id, &found);
        sequence *s;
        if ((st = seq_insert(c, fn, r->id, at, &s))) break;
        const uint8_t *q = r->pages;
        for (int l = 0; l < L && !st; l++) {
            layer_store *ls = &s->layers[l];
            const size_t pages = (r->n_tokens[l] + pt - 1) / pt;
            if (pages && !(ls->pages = calloc(pages, sizeof(uint8_t *)))) {
                st = rq__fail(RQ_ERR_NOMEM, "%s: out of memory (a page table)", fn);
                break;
            }
            ls->cap_pages = pages, ls->n_dropped = r->n_dropped[l];
            ls->kmax = kmax[(size_t)L * i + (size_t)l];
            if (centre_saved(c, r->n_tokens[l])) {
                if (centre_alloc(c, ls)) {
                    st = rq__fail(RQ_ERR_NOMEM, "%s: out of memory (the sink of layer %d)", fn, l);
                    break;
                }
                for (size_t x = 0; x < centre_bytes(c) / 2; x++) ls->cx[x] = (uint16_t)(q[4 + 2 * x] | (q[5 + 2 * x] << 8));
                ls->mu_set = (int)r->mu_set[l];
                centre_derive(c, l, ls);
                q += centre_saved(c, r->n_tokens[l]);
            }
            for (ls->n_pages = r->n_dropped[l]; ls->n_pages < pages; ls->n_pages++) {
                uint8_t *pg = page_take(c, ls->kind->cls);
                if (!pg) {
                    st = rq__fail(RQ_ERR_NOMEM, "%s: out of memory (a page of %zu bytes)", fn, ls->kind->page_bytes);
                    break;
                }
                ls->pages[ls->n_pages] = pg;
                const size_t used = page_used(c, r->n_tokens[l], ls->n_pages);
                q += 4;
                for (size_t h = 0; h < H; h++) {
                    uint8_t *region = pg + h * ls->kind->head_stride;
                    memcpy(region, q, used * ls->kind->bk), q += used * ls->kind->bk;
                    memcpy(region + pt * ls->kind->bk, q, used * ls->kind->bv), q += used * ls->kind->bv;
                }
            }
            /* on failure, as many tokens as pages taken: seq_free then releases them all */
            ls->n_tokens = st ? ls->n_pages * pt : r->n_tokens[l];
        }
    }
    if (st && pass2) /* undo: remove the sequences made so far (the failed one included) */
        for (uint32_t i = 0; i < n_seqs && i <= made; i++) {
            int found;
            size_t at = seq_index(c, recs[i].id, &found);
            if (!found) continue;
            seq_free(c, c->seqs[at]);
            memmove(c->seqs + at, c->seqs + at + 1, (c->n_seqs - at - 1) * sizeof *c->seqs);
            c->n_seqs--;
        }
    free(recs), free(counts), free(scratch), free(kmax);
    return st;
}

rq_status rq_cache_seq_load(rq_cache *c, int seq, const char *path) {
    static const char fn[] = "rq_cache_seq_load";
    if (!c || !path) return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !c ? "cache" : "path");
    size_t n = 0;
    uint8_t *buf = NULL;
    rq_status st = rq__read_file(fn, path, &buf, &n);
    if (!st && (st = rq_cache_seq_load_mem(c, seq, buf, n))) rq__fail(st, "%s: %s: %s", fn, path, rq_last_error());
    free(buf);
    return st;
}
