/*
 * gguf.c — GGUF v2/v3 reader (ggml docs/gguf.md; summary in
 * ../shared/research/real_model.md §3):
 *
 *   "GGUF" | version u32 | n_tensors u64 | n_kv u64
 *   | n_kv × (key string, value type u32, value)
 *   | n_tensors × (name string, n_dims u32, ne u64[n_dims], type u32, offset u64)
 *   | zero padding to the alignment | tensor data
 *
 * The file is untrusted. Every length, count and offset is compared with the
 * bytes that remain before it is used, so a count of 2^62 is a "truncated"
 * error, never an allocation; arrays of tables grow as entries are actually
 * parsed, so memory stays proportional to the file. Nothing is copied: keys,
 * strings and tensor data point into the mapping, except tensor data that a
 * small general.alignment (1, 2, 4) or a caller's unaligned buffer leaves
 * off an 8-byte boundary: those tensors are copied once, at open, to aligned
 * memory, so every tensor can be read through a pointer of its element type. Strings of top-level string
 * arrays are indexed once at open time (rqm_gguf_array_str is O(1)); keys and
 * tensor names are hashed (duplicates are rejected).
 */
#include "gguf.h"

#include "ggml_types.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_MAX_DEPTH 8         /* arrays nested deeper than this are rejected */
#define GGUF_MAX_KEY 65535       /* key length limit of the GGUF spec           */
#define GGUF_MAX_NAME 256        /* ggml writes ≤ 63; leave room, stay sane     */
#define GGUF_DEFAULT_ALIGN 32
#define GGUF_MAX_ALIGN (1u << 30) /* a larger "alignment" can only be garbage   */
#define GGUF_DATA_ALIGN 8        /* the widest element (f64, i64); copies are 64-aligned */
/* Smallest encodings, used to bound counts by the bytes that remain:
 * a string is at least its u64 length, a nested array its type + count,
 * a kv pair a key length + value type + 1-byte value, a tensor info a name
 * length + n_dims + one dim + type + offset. */
#define MIN_STRING 8
#define MIN_ARRAY 12
#define MIN_KV 13
#define MIN_TENSOR 32

struct rqm_gguf {
    const uint8_t *base;
    size_t size;
    void *map; /* mmap'ed region (NULL for open_memory) */
    size_t map_len;
    uint32_t version;
    size_t n_kv;
    rqm_gguf_kv *kv;
    size_t *kv_strs; /* per kv: first index in strs, or SIZE_MAX if not a string array */
    rqm_str *strs;
    size_t n_tensors;
    rqm_tensor *tensors;
    uint32_t *kv_hash, *tensor_hash; /* open addressing: index + 1, 0 = empty */
    size_t kv_hash_cap, tensor_hash_cap;
    uint64_t alignment, data_offset;
    void *copies; /* aligned copies of the tensors whose data were misaligned */
};

/* ---- bounds-checked reader ----------------------------------------------- */
typedef struct {
    const uint8_t *p;
    size_t size, pos;
    char *err;
    size_t err_len;
} reader;

#define FAIL(r, st, ...) rqm_say((r)->err, (r)->err_len, (st), __VA_ARGS__)

static size_t remaining(const reader *r) { return r->size - r->pos; }

static rq_status need(reader *r, uint64_t n, const char *what) {
    if (n > remaining(r))
        return FAIL(r, RQ_ERR_TRUNCATED, "gguf: file ends inside %s at byte %zu (needs %llu more bytes, %zu left)",
                    what, r->pos, (unsigned long long)n, remaining(r));
    return RQ_OK;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static rq_status rd_u32(reader *r, uint32_t *v, const char *what) {
    rq_status st = need(r, 4, what);
    if (st) return st;
    *v = le32(r->p + r->pos);
    r->pos += 4;
    return RQ_OK;
}

static rq_status rd_u64(reader *r, uint64_t *v, const char *what) {
    rq_status st = need(r, 8, what);
    if (st) return st;
    *v = le64(r->p + r->pos);
    r->pos += 8;
    return RQ_OK;
}

static rq_status rd_str(reader *r, rqm_str *s, uint64_t max_len, const char *what) {
    uint64_t len;
    size_t at = r->pos;
    rq_status st = rd_u64(r, &len, what);
    if (st) return st;
    if (len > max_len)
        return FAIL(r, RQ_ERR_FORMAT, "gguf: %s at byte %zu is %llu bytes long (limit %llu)", what, at,
                    (unsigned long long)len, (unsigned long long)max_len);
    if ((st = need(r, len, what))) return st;
    s->ptr = (const char *)r->p + r->pos;
    s->len = len;
    r->pos += (size_t)len;
    return RQ_OK;
}

/* Bytes of one element of a fixed-size type; 0 for string/array; -1 unknown. */
static int vtype_size(uint32_t t) {
    switch (t) {
    case RQM_GGUF_U8: case RQM_GGUF_I8: case RQM_GGUF_BOOL: return 1;
    case RQM_GGUF_U16: case RQM_GGUF_I16: return 2;
    case RQM_GGUF_U32: case RQM_GGUF_I32: case RQM_GGUF_F32: return 4;
    case RQM_GGUF_U64: case RQM_GGUF_I64: case RQM_GGUF_F64: return 8;
    case RQM_GGUF_STRING: case RQM_GGUF_ARRAY: return 0;
    default: return -1;
    }
}

static int vtype_is_int(rqm_gguf_vtype t) {
    return t == RQM_GGUF_U8 || t == RQM_GGUF_I8 || t == RQM_GGUF_U16 || t == RQM_GGUF_I16 || t == RQM_GGUF_U32 ||
           t == RQM_GGUF_I32 || t == RQM_GGUF_U64 || t == RQM_GGUF_I64;
}

static int vtype_is_signed(rqm_gguf_vtype t) {
    return t == RQM_GGUF_I8 || t == RQM_GGUF_I16 || t == RQM_GGUF_I32 || t == RQM_GGUF_I64;
}

/* A fixed-size element at p, as the kv union stores it. */
static void decode_scalar(rqm_gguf_vtype t, const uint8_t *p, rqm_gguf_kv *kv) {
    switch (t) {
    case RQM_GGUF_U8: case RQM_GGUF_BOOL: kv->v.u = p[0]; break;
    case RQM_GGUF_I8: kv->v.i = (int8_t)p[0]; break;
    case RQM_GGUF_U16: kv->v.u = (uint16_t)(p[0] | p[1] << 8); break;
    case RQM_GGUF_I16: kv->v.i = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
    case RQM_GGUF_U32: kv->v.u = le32(p); break;
    case RQM_GGUF_I32: kv->v.i = (int32_t)le32(p); break;
    case RQM_GGUF_U64: kv->v.u = le64(p); break;
    case RQM_GGUF_I64: kv->v.i = (int64_t)le64(p); break;
    case RQM_GGUF_F32: {
        uint32_t b = le32(p);
        float f;
        memcpy(&f, &b, 4);
        kv->v.f = f;
        break;
    }
    case RQM_GGUF_F64: {
        uint64_t b = le64(p);
        memcpy(&kv->v.f, &b, 8);
        break;
    }
    default: break;
    }
}

static rq_status check_bools(reader *r, const uint8_t *p, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1)
            return FAIL(r, RQ_ERR_FORMAT, "gguf: bool value %u at byte %zu (must be 0 or 1)", p[i],
                        (size_t)(p + i - r->p));
    return RQ_OK;
}

/* An array body (element type, count, elements) at depth ≥ 1. */
static rq_status parse_array(reader *r, int depth, rqm_gguf_vtype *et_out, uint64_t *n_out,
                             const uint8_t **data_out) {
    uint32_t et;
    uint64_t n;
    size_t at = r->pos;
    rq_status st;
    if (depth > GGUF_MAX_DEPTH)
        return FAIL(r, RQ_ERR_FORMAT, "gguf: arrays nested deeper than %d at byte %zu", GGUF_MAX_DEPTH, at);
    if ((st = rd_u32(r, &et, "array element type"))) return st;
    int es = vtype_size(et);
    if (es < 0) return FAIL(r, RQ_ERR_FORMAT, "gguf: unknown array element type %u at byte %zu", et, at);
    if ((st = rd_u64(r, &n, "array count"))) return st;
    *et_out = (rqm_gguf_vtype)et;
    *n_out = n;
    *data_out = r->p + r->pos;
    uint64_t min_elem = es > 0 ? (uint64_t)es : et == RQM_GGUF_STRING ? MIN_STRING : MIN_ARRAY;
    if (n > remaining(r) / min_elem)
        return FAIL(r, RQ_ERR_TRUNCATED, "gguf: array at byte %zu claims %llu elements, only %zu bytes left", at,
                    (unsigned long long)n, remaining(r));
    if (es > 0) {
        if (et == RQM_GGUF_BOOL && (st = check_bools(r, r->p + r->pos, n))) return st;
        r->pos += (size_t)(n * (uint64_t)es);
        return RQ_OK;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (et == RQM_GGUF_STRING) {
            rqm_str s;
            st = rd_str(r, &s, UINT64_MAX, "array string");
        } else {
            rqm_gguf_vtype et2;
            uint64_t n2;
            const uint8_t *d2;
            st = parse_array(r, depth + 1, &et2, &n2, &d2);
        }
        if (st) return st;
    }
    return RQ_OK;
}

static rq_status parse_kv(reader *r, rqm_gguf_kv *kv) {
    uint32_t t;
    rq_status st;
    memset(kv, 0, sizeof *kv);
    if ((st = rd_str(r, &kv->key, GGUF_MAX_KEY, "metadata key"))) return st;
    if (kv->key.len == 0) return FAIL(r, RQ_ERR_FORMAT, "gguf: empty metadata key before byte %zu", r->pos);
    size_t at = r->pos;
    if ((st = rd_u32(r, &t, "metadata value type"))) return st;
    int es = vtype_size(t);
    if (es < 0)
        return FAIL(r, RQ_ERR_FORMAT, "gguf: key '%.*s' has unknown value type %u at byte %zu", (int)kv->key.len,
                    kv->key.ptr, t, at);
    kv->type = (rqm_gguf_vtype)t;
    if (t == RQM_GGUF_STRING) return rd_str(r, &kv->v.s, UINT64_MAX, "metadata string");
    if (t == RQM_GGUF_ARRAY) return parse_array(r, 1, &kv->arr_type, &kv->arr_n, &kv->arr_data);
    if ((st = need(r, (uint64_t)es, "metadata value"))) return st;
    if (t == RQM_GGUF_BOOL && (st = check_bools(r, r->p + r->pos, 1))) return st;
    decode_scalar(kv->type, r->p + r->pos, kv);
    r->pos += (size_t)es;
    return RQ_OK;
}

/* ---- hashed names ---------------------------------------------------------- */
static uint64_t hash_bytes(const char *p, uint64_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

static int str_eq(rqm_str a, rqm_str b) { return a.len == b.len && (a.len == 0 || !memcmp(a.ptr, b.ptr, a.len)); }

/* Capacity: a power of two ≥ 2n, so probes stay short. */
static size_t hash_cap(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

/* The tables hash arrays of structs whose first member is their name
 * (rqm_gguf_kv.key, rqm_tensor.name), `stride` bytes apart.
 * Insert entry idx; returns the clashing index + 1 on a duplicate. */
static size_t hash_insert(uint32_t *tab, size_t cap, rqm_str name, uint32_t idx, const void *base, size_t stride) {
    size_t i = (size_t)hash_bytes(name.ptr, name.len) & (cap - 1);
    while (tab[i]) {
        const rqm_str *other = (const rqm_str *)((const char *)base + (size_t)(tab[i] - 1) * stride);
        if (str_eq(*other, name)) return tab[i];
        i = (i + 1) & (cap - 1);
    }
    tab[i] = idx + 1;
    return 0;
}

/* Index of the entry named `name` (a C string), or SIZE_MAX. */
static size_t hash_find(const uint32_t *tab, size_t cap, const char *name, const void *base, size_t stride) {
    if (!tab || !name) return SIZE_MAX;
    size_t len = strlen(name);
    size_t i = (size_t)hash_bytes(name, len) & (cap - 1);
    while (tab[i]) {
        const rqm_str *s = (const rqm_str *)((const char *)base + (size_t)(tab[i] - 1) * stride);
        if (s->len == len && !memcmp(s->ptr, name, len)) return tab[i] - 1;
        i = (i + 1) & (cap - 1);
    }
    return SIZE_MAX;
}

/* ---- open ------------------------------------------------------------------ */
static rq_status nomem(reader *r) { return FAIL(r, RQ_ERR_NOMEM, "gguf: out of memory"); }

/* Room for index n in an array of `size`-byte elements: the (possibly
 * moved) array, or NULL with the old one untouched. */
static void *grow(void *arr, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return arr;
    size_t new_cap = *cap ? *cap * 2 : 64;
    void *p = realloc(arr, new_cap * size);
    if (p) *cap = new_cap;
    return p;
}

static rq_status parse_kvs(reader *r, rqm_gguf *g, uint64_t n_kv) {
    size_t cap = 0;
    rq_status st;
    if (n_kv > remaining(r) / MIN_KV)
        return FAIL(r, RQ_ERR_TRUNCATED, "gguf: header claims %llu metadata pairs, only %zu bytes left",
                    (unsigned long long)n_kv, remaining(r));
    if (n_kv >= UINT32_MAX) /* the hash tables hold 32-bit indices */
        return FAIL(r, RQ_ERR_FORMAT, "gguf: %llu metadata pairs are too many", (unsigned long long)n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        rqm_gguf_kv *kv = grow(g->kv, &cap, g->n_kv, sizeof *kv);
        if (!kv) return nomem(r);
        g->kv = kv;
        if ((st = parse_kv(r, &g->kv[g->n_kv]))) return st;
        g->n_kv++;
    }
    g->kv_hash_cap = hash_cap(g->n_kv);
    g->kv_hash = calloc(g->kv_hash_cap, sizeof *g->kv_hash);
    if (!g->kv_hash) return nomem(r);
    for (size_t i = 0; i < g->n_kv; i++) {
        if (hash_insert(g->kv_hash, g->kv_hash_cap, g->kv[i].key, (uint32_t)i, g->kv, sizeof *g->kv))
            return FAIL(r, RQ_ERR_FORMAT, "gguf: duplicate metadata key '%.*s'", (int)g->kv[i].key.len,
                        g->kv[i].key.ptr);
    }
    return RQ_OK;
}

/* Index every string of every top-level string array (already validated by
 * parse_array, walked again here with the same checks). */
static rq_status index_strings(reader *r, rqm_gguf *g) {
    size_t n_strs = 0;
    g->kv_strs = malloc((g->n_kv ? g->n_kv : 1) * sizeof *g->kv_strs);
    if (!g->kv_strs) return nomem(r);
    for (size_t i = 0; i < g->n_kv; i++) {
        const rqm_gguf_kv *kv = &g->kv[i];
        g->kv_strs[i] = SIZE_MAX;
        if (kv->type == RQM_GGUF_ARRAY && kv->arr_type == RQM_GGUF_STRING) {
            g->kv_strs[i] = n_strs;
            n_strs += (size_t)kv->arr_n; /* ≤ file size / 8 in total */
        }
    }
    g->strs = malloc((n_strs ? n_strs : 1) * sizeof *g->strs);
    if (!g->strs) return nomem(r);
    for (size_t i = 0; i < g->n_kv; i++) {
        if (g->kv_strs[i] == SIZE_MAX) continue;
        reader w = *r;
        w.pos = (size_t)(g->kv[i].arr_data - r->p);
        for (uint64_t j = 0; j < g->kv[i].arr_n; j++) {
            rq_status st = rd_str(&w, &g->strs[g->kv_strs[i] + j], UINT64_MAX, "array string");
            if (st) return st;
        }
    }
    return RQ_OK;
}

static rq_status read_alignment(reader *r, rqm_gguf *g) {
    g->alignment = GGUF_DEFAULT_ALIGN;
    const rqm_gguf_kv *kv = rqm_gguf_find(g, "general.alignment");
    if (!kv) return RQ_OK;
    if (kv->type != RQM_GGUF_U32) return FAIL(r, RQ_ERR_FORMAT, "gguf: general.alignment is not a u32");
    uint64_t a = kv->v.u;
    if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGN)
        return FAIL(r, RQ_ERR_FORMAT, "gguf: general.alignment %llu is not a power of two ≤ 2^30",
                    (unsigned long long)a);
    g->alignment = a;
    return RQ_OK;
}

static rq_status parse_tensor(reader *r, const rqm_gguf *g, rqm_tensor *t) {
    rq_status st;
    uint32_t type;
    memset(t, 0, sizeof *t);
    if ((st = rd_str(r, &t->name, GGUF_MAX_NAME, "tensor name"))) return st;
    int nl = (int)t->name.len;
    const char *nm = t->name.ptr;
    if ((st = rd_u32(r, &t->n_dims, "tensor n_dims"))) return st;
    if (t->n_dims < 1 || t->n_dims > 4)
        return FAIL(r, RQ_ERR_FORMAT, "gguf: tensor '%.*s' has %u dimensions (1..4 allowed)", nl, nm, t->n_dims);
    uint64_t n_elems = 1;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if ((st = rd_u64(r, &t->ne[d], "tensor dims"))) return st;
        if (t->ne[d] == 0) return FAIL(r, RQ_ERR_FORMAT, "gguf: tensor '%.*s' has ne[%u] = 0", nl, nm, d);
        if (t->ne[d] > (uint64_t)INT64_MAX / n_elems)
            return FAIL(r, RQ_ERR_FORMAT, "gguf: tensor '%.*s' element count overflows", nl, nm);
        n_elems *= t->ne[d];
    }
    if ((st = rd_u32(r, &type, "tensor type"))) return st;
    size_t be = rqm_ggml_block_elems((rqm_ggml_type)type), bb = rqm_ggml_block_bytes((rqm_ggml_type)type);
    if (!be || !bb) return FAIL(r, RQ_ERR_FORMAT, "gguf: tensor '%.*s' has unknown ggml type %u", nl, nm, type);
    t->type = (rqm_ggml_type)type;
    if (t->ne[0] % be)
        return FAIL(r, RQ_ERR_FORMAT, "gguf: tensor '%.*s' row length %llu is not a multiple of the %s block (%zu)",
                    nl, nm, (unsigned long long)t->ne[0], rqm_ggml_type_name(t->type), be);
    uint64_t n_blocks = n_elems / be; /* rows are whole blocks, so this is exact */
    if (n_blocks > UINT64_MAX / bb) return FAIL(r, RQ_ERR_FORMAT, "gguf: tensor '%.*s' byte size overflows", nl, nm);
    t->n_bytes = n_blocks * bb;
    if ((st = rd_u64(r, &t->offset, "tensor offset"))) return st;
    if (t->offset % g->alignment)
        return FAIL(r, RQ_ERR_FORMAT, "gguf: tensor '%.*s' offset %llu is not a multiple of the alignment %llu", nl,
                    nm, (unsigned long long)t->offset, (unsigned long long)g->alignment);
    return RQ_OK;
}

typedef struct {
    uint64_t begin, end;
    size_t idx;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Tensor data off a GGUF_DATA_ALIGN boundary (general.alignment 1, 2 or 4,
 * or an unaligned caller's buffer) are copied into one 64-byte-aligned block
 * and the tensors pointed there; aligned data stay in the mapping. */
static rq_status align_data(reader *r, rqm_gguf *g) {
    size_t total = 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        const rqm_tensor *t = &g->tensors[i];
        if ((uintptr_t)t->data % GGUF_DATA_ALIGN) total += (size_t)(t->n_bytes + 63) / 64 * 64;
    }
    if (!total) return RQ_OK;
    uint8_t *c = aligned_alloc(64, total);
    if (!c) return nomem(r);
    g->copies = c;
    for (size_t i = 0; i < g->n_tensors; i++) {
        rqm_tensor *t = &g->tensors[i];
        if (!((uintptr_t)t->data % GGUF_DATA_ALIGN)) continue;
        memcpy(c, t->data, (size_t)t->n_bytes);
        t->data = c;
        c += (size_t)(t->n_bytes + 63) / 64 * 64;
    }
    return RQ_OK;
}

static rq_status parse_tensors(reader *r, rqm_gguf *g, uint64_t n_tensors) {
    size_t cap = 0;
    rq_status st;
    if (n_tensors > remaining(r) / MIN_TENSOR)
        return FAIL(r, RQ_ERR_TRUNCATED, "gguf: header claims %llu tensors, only %zu bytes left",
                    (unsigned long long)n_tensors, remaining(r));
    if (n_tensors >= UINT32_MAX)
        return FAIL(r, RQ_ERR_FORMAT, "gguf: %llu tensors are too many", (unsigned long long)n_tensors);
    for (uint64_t i = 0; i < n_tensors; i++) {
        rqm_tensor *t = grow(g->tensors, &cap, g->n_tensors, sizeof *t);
        if (!t) return nomem(r);
        g->tensors = t;
        if ((st = parse_tensor(r, g, &g->tensors[g->n_tensors]))) return st;
        g->n_tensors++;
    }
    g->tensor_hash_cap = hash_cap(g->n_tensors);
    g->tensor_hash = calloc(g->tensor_hash_cap, sizeof *g->tensor_hash);
    if (!g->tensor_hash) return nomem(r);
    for (size_t i = 0; i < g->n_tensors; i++) {
        const rqm_tensor *t = &g->tensors[i];
        if (hash_insert(g->tensor_hash, g->tensor_hash_cap, t->name, (uint32_t)i, g->tensors, sizeof *g->tensors))
            return FAIL(r, RQ_ERR_FORMAT, "gguf: duplicate tensor name '%.*s'", (int)t->name.len, t->name.ptr);
    }

    /* The data section starts at the next multiple of the alignment (pos ≤
     * size and alignment ≤ 2^30, so this cannot overflow). */
    g->data_offset = ((uint64_t)r->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (!g->n_tensors) return RQ_OK;
    if (g->data_offset > r->size)
        return FAIL(r, RQ_ERR_TRUNCATED, "gguf: file ends before the tensor data section (byte %llu)",
                    (unsigned long long)g->data_offset);
    uint64_t avail = r->size - g->data_offset;
    span *sp = malloc(g->n_tensors * sizeof *sp);
    if (!sp) return nomem(r);
    for (size_t i = 0; i < g->n_tensors; i++) {
        rqm_tensor *t = &g->tensors[i];
        if (t->offset > avail || t->n_bytes > avail - t->offset) {
            free(sp);
            return FAIL(r, RQ_ERR_TRUNCATED,
                        "gguf: tensor '%.*s' data [%llu, +%llu) runs past the end of the file (%llu data bytes)",
                        (int)t->name.len, t->name.ptr, (unsigned long long)t->offset,
                        (unsigned long long)t->n_bytes, (unsigned long long)avail);
        }
        t->data = r->p + g->data_offset + t->offset;
        sp[i] = (span){t->offset, t->offset + t->n_bytes, i};
    }
    qsort(sp, g->n_tensors, sizeof *sp, span_cmp);
    for (size_t i = 1; i < g->n_tensors; i++) {
        if (sp[i].begin < sp[i - 1].end) {
            const rqm_tensor *a = &g->tensors[sp[i - 1].idx], *b = &g->tensors[sp[i].idx];
            free(sp);
            return FAIL(r, RQ_ERR_FORMAT, "gguf: tensors '%.*s' and '%.*s' overlap", (int)a->name.len, a->name.ptr,
                        (int)b->name.len, b->name.ptr);
        }
    }
    free(sp);
    return align_data(r, g);
}

static rq_status parse(rqm_gguf *g, reader *r) {
    uint32_t version;
    uint64_t n_tensors, n_kv;
    rq_status st;
    if ((st = need(r, 4, "magic"))) return st;
    if (memcmp(r->p, GGUF_MAGIC, 4)) return FAIL(r, RQ_ERR_FORMAT, "gguf: bad magic (not a GGUF file)");
    r->pos = 4;
    if ((st = rd_u32(r, &version, "version"))) return st;
    if (version == 1) return FAIL(r, RQ_ERR_FORMAT, "gguf: version 1 files are not supported (re-convert)");
    if (version != 2 && version != 3) {
        /* a big-endian GGUF carries no marker; its version reads byte-swapped */
        if ((version & 0xffff) == 0 && (version >> 24) >= 2 && (version >> 24) <= 3)
            return FAIL(r, RQ_ERR_FORMAT, "gguf: big-endian files are not supported");
        return FAIL(r, RQ_ERR_FORMAT, "gguf: unsupported version %u (2 and 3 are read)", version);
    }
    g->version = version;
    if ((st = rd_u64(r, &n_tensors, "tensor count"))) return st;
    if ((st = rd_u64(r, &n_kv, "metadata count"))) return st;
    if ((st = parse_kvs(r, g, n_kv))) return st;
    if ((st = index_strings(r, g))) return st;
    if ((st = read_alignment(r, g))) return st;
    return parse_tensors(r, g, n_tensors);
}

rq_status rqm_gguf_open_memory(rqm_gguf **out, const void *buf, size_t len, char *err, size_t err_len) {
    if (err && err_len) err[0] = '\0';
    if (!out || (!buf && len)) return rqm_say(err, err_len, RQ_ERR_INVALID_ARG, "gguf: NULL argument");
    *out = NULL;
    rqm_gguf *g = calloc(1, sizeof *g);
    if (!g) return rqm_say(err, err_len, RQ_ERR_NOMEM, "gguf: out of memory");
    static const uint8_t empty[1];
    g->base = len ? buf : empty;
    g->size = len;
    reader r = {g->base, len, 0, err, err_len};
    rq_status st = parse(g, &r);
    if (st) {
        rqm_gguf_close(g);
        return st;
    }
    *out = g;
    return RQ_OK;
}

rq_status rqm_gguf_open(rqm_gguf **out, const char *path, char *err, size_t err_len) {
    if (err && err_len) err[0] = '\0';
    if (!out || !path) return rqm_say(err, err_len, RQ_ERR_INVALID_ARG, "gguf: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rqm_say(err, err_len, RQ_ERR_IO, "gguf: cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return rqm_say(err, err_len, RQ_ERR_IO, "gguf: %s is not a readable regular file", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return rqm_say(err, err_len, RQ_ERR_IO, "gguf: %s is too large to map", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    if (size) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return rqm_say(err, err_len, RQ_ERR_IO, "gguf: cannot map %s: %s", path, strerror(e));
        }
    }
    close(fd); /* the mapping keeps the file alive */
    rqm_gguf *g;
    rq_status st = rqm_gguf_open_memory(&g, map, size, err, err_len);
    if (st) {
        if (map) munmap(map, size);
        return st;
    }
    g->map = map;
    g->map_len = size;
    *out = g;
    return RQ_OK;
}

void rqm_gguf_close(rqm_gguf *g) {
    if (!g) return;
    if (g->map) munmap(g->map, g->map_len);
    free(g->kv);
    free(g->kv_strs);
    free(g->strs);
    free(g->tensors);
    free(g->kv_hash);
    free(g->tensor_hash);
    free(g->copies);
    free(g);
}

/* ---- queries ---------------------------------------------------------------- */
uint32_t rqm_gguf_version(const rqm_gguf *g) { return g ? g->version : 0; }
size_t rqm_gguf_n_kv(const rqm_gguf *g) { return g ? g->n_kv : 0; }
size_t rqm_gguf_n_tensors(const rqm_gguf *g) { return g ? g->n_tensors : 0; }

const rqm_gguf_kv *rqm_gguf_kv_at(const rqm_gguf *g, size_t i) { return g && i < g->n_kv ? &g->kv[i] : NULL; }

const rqm_tensor *rqm_gguf_tensor_at(const rqm_gguf *g, size_t i) {
    return g && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const rqm_gguf_kv *rqm_gguf_find(const rqm_gguf *g, const char *key) {
    if (!g) return NULL;
    size_t i = hash_find(g->kv_hash, g->kv_hash_cap, key, g->kv, sizeof *g->kv);
    return i == SIZE_MAX ? NULL : &g->kv[i];
}

const rqm_tensor *rqm_gguf_tensor(const rqm_gguf *g, const char *name) {
    if (!g) return NULL;
    size_t i = hash_find(g->tensor_hash, g->tensor_hash_cap, name, g->tensors, sizeof *g->tensors);
    return i == SIZE_MAX ? NULL : &g->tensors[i];
}

rq_status rqm_gguf_get_u64(const rqm_gguf *g, const char *key, uint64_t *out) {
    const rqm_gguf_kv *kv = rqm_gguf_find(g, key);
    if (!kv || !out) return RQ_ERR_FORMAT;
    if (vtype_is_int(kv->type) && vtype_is_signed(kv->type)) {
        if (kv->v.i < 0) return RQ_ERR_FORMAT;
        *out = (uint64_t)kv->v.i;
        return RQ_OK;
    }
    if (vtype_is_int(kv->type) || kv->type == RQM_GGUF_BOOL) {
        *out = kv->v.u;
        return RQ_OK;
    }
    return RQ_ERR_FORMAT;
}

rq_status rqm_gguf_get_f64(const rqm_gguf *g, const char *key, double *out) {
    const rqm_gguf_kv *kv = rqm_gguf_find(g, key);
    if (!kv || !out) return RQ_ERR_FORMAT;
    if (kv->type == RQM_GGUF_F32 || kv->type == RQM_GGUF_F64)
        *out = kv->v.f;
    else if (vtype_is_int(kv->type))
        *out = vtype_is_signed(kv->type) ? (double)kv->v.i : (double)kv->v.u;
    else
        return RQ_ERR_FORMAT;
    return RQ_OK;
}

rq_status rqm_gguf_get_str(const rqm_gguf *g, const char *key, rqm_str *out) {
    const rqm_gguf_kv *kv = rqm_gguf_find(g, key);
    if (!kv || !out || kv->type != RQM_GGUF_STRING) return RQ_ERR_FORMAT;
    *out = kv->v.s;
    return RQ_OK;
}

rq_status rqm_gguf_array_str(const rqm_gguf *g, const rqm_gguf_kv *kv, uint64_t i, rqm_str *out) {
    if (!g || !kv || !out) return RQ_ERR_INVALID_ARG;
    /* kv must be one of g's own entries (its index finds the string table) */
    uintptr_t off = (uintptr_t)kv - (uintptr_t)g->kv;
    if ((uintptr_t)kv < (uintptr_t)g->kv || off / sizeof *kv >= g->n_kv || off % sizeof *kv)
        return RQ_ERR_INVALID_ARG;
    size_t first = g->kv_strs[off / sizeof *kv];
    if (first == SIZE_MAX) return RQ_ERR_FORMAT;
    if (i >= kv->arr_n) return RQ_ERR_INVALID_ARG;
    *out = g->strs[first + (size_t)i];
    return RQ_OK;
}

rq_status rqm_gguf_array_f64(const rqm_gguf_kv *kv, uint64_t i, double *out) {
    if (!kv || !out || kv->type != RQM_GGUF_ARRAY) return RQ_ERR_INVALID_ARG;
    int es = vtype_size(kv->arr_type);
    if (es <= 0) return RQ_ERR_FORMAT;
    if (i >= kv->arr_n) return RQ_ERR_INVALID_ARG;
    rqm_gguf_kv tmp;
    decode_scalar(kv->arr_type, kv->arr_data + (size_t)i * (size_t)es, &tmp);
    if (kv->arr_type == RQM_GGUF_F32 || kv->arr_type == RQM_GGUF_F64)
        *out = tmp.v.f;
    else
        *out = vtype_is_signed(kv->arr_type) ? (double)tmp.v.i : (double)tmp.v.u;
    return RQ_OK;
}
