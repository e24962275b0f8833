/*
 * keybasis_io.c — the key-basis file (`rotorquant calibrate -o FILE`): a
 * small GGUF v3 file, written and read here without the model's GGUF
 * reader, so a C user of the library can load what calibrate wrote.
 *
 * Layout (little-endian; the writer emits exactly this, byte for byte):
 *   "GGUF" | version u32 = 3 | n_tensors u64 = 1 | n_kv u64 = 5
 *   kv  general.architecture                 string "rotorquant-key-basis"
 *   kv  rotorquant.key_basis.n_ctx           u32    positions calibrated
 *   kv  rotorquant.key_basis.n_tokens        u32    key positions observed
 *   kv  rotorquant.key_basis.self_generated  u32    0 or 1
 *   kv  rotorquant.key_basis.range_start     array of u32, one per range
 *   tensor info  "key_basis": n_dims u32 = 4, ne u64 × 4 = [head_dim²,
 *                n_ranges, n_kv_heads, n_layers], type u32 = 0 (f32),
 *                offset u64 = 0
 *   zero padding to 32 bytes (general.alignment when present), then the
 *   floats [n_layers][n_kv_heads][n_ranges][head_dim][head_dim].
 * A string is a u64 length and its bytes; a kv is its key string, a u32
 * value type and the value.
 *
 * The reader takes any GGUF (version 2 or 3) that holds these keys and
 * tensor, in any order, next to others; every length, count, offset and
 * value is checked against the bytes present before it is used, so a
 * truncated or corrupted file is an error with a message, never a crash.
 * Writes go to a temporary file in the target's directory, flushed to
 * disk and renamed over the target: a failed save leaves the old file.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define KB_ARCH "rotorquant-key-basis"
#define KB_TENSOR "key_basis"
#define KB_ALIGN 32         /* GGUF's default alignment                      */
#define KB_MAX_CTX (1u << 30) /* the largest n_ctx accepted                    */
#define KB_MAX_ITEMS 65536  /* kvs and tensors: more can only be garbage     */

enum { T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY, T_U64, T_I64, T_F64 };

/* ---- reading ------------------------------------------------------------ */
typedef struct {
    const uint8_t *p;
    size_t n, pos;
    const char *fn; /* the public function, for messages */
} reader;

static rq_status need(reader *r, size_t n, const char *what) {
    if (n <= r->n - r->pos) return RQ_OK;
    return rq__fail(RQ_ERR_TRUNCATED, "%s: the data ends at byte %zu inside %s (%zu bytes needed at %zu)", r->fn, r->n,
                    what, n, r->pos);
}

static rq_status rd(reader *r, void *x, size_t n, const char *what) {
    rq_status st = need(r, n, what);
    if (st) return st;
    memcpy(x, r->p + r->pos, n); /* GGUF is little-endian, as are the machines we build for */
    r->pos += n;
    return RQ_OK;
}

static rq_status rd_u32(reader *r, uint32_t *v, const char *what) { return rd(r, v, 4, what); }
static rq_status rd_u64(reader *r, uint64_t *v, const char *what) { return rd(r, v, 8, what); }

/* A string: its bytes stay in the buffer (s, len). */
static rq_status rd_str(reader *r, const char **s, uint64_t *len, const char *what) {
    rq_status st = rd_u64(r, len, what);
    if (!st) st = need(r, *len, what);
    if (st) return st;
    *s = (const char *)r->p + r->pos;
    r->pos += (size_t)*len;
    return RQ_OK;
}

static bool str_is(const char *s, uint64_t len, const char *want) {
    return len == strlen(want) && !memcmp(s, want, (size_t)len);
}

static size_t scalar_bytes(uint32_t type) {
    static const uint8_t bytes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < sizeof bytes ? bytes[type] : 0;
}

/* An integer value of any integer type (bool included), which must be ≥ 0. */
static rq_status rd_int(reader *r, uint32_t type, uint64_t *v, const char *what) {
    size_t n = scalar_bytes(type);
    if (!n || type == T_F32 || type == T_F64)
        return rq__fail(RQ_ERR_FORMAT, "%s: %s has value type %u, not an integer", r->fn, what, type);
    uint8_t b[8] = {0};
    rq_status st = rd(r, b, n, what);
    if (st) return st;
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++) u |= (uint64_t)b[i] << (8 * i);
    const bool is_signed = type == T_I8 || type == T_I16 || type == T_I32 || type == T_I64;
    if (is_signed && (b[n - 1] & 0x80))
        return rq__fail(RQ_ERR_FORMAT, "%s: %s is negative", r->fn, what);
    *v = u;
    return RQ_OK;
}

/* Skips a value of a kv nobody asked for. */
static rq_status skip_value(reader *r, uint32_t type, const char *what) {
    if (type == T_STRING) {
        const char *s;
        uint64_t len;
        return rd_str(r, &s, &len, what);
    }
    if (type != T_ARRAY) {
        if (!scalar_bytes(type)) return rq__fail(RQ_ERR_FORMAT, "%s: %s has unknown value type %u", r->fn, what, type);
        return rd(r, (uint8_t[8]){0}, scalar_bytes(type), what);
    }
    uint32_t et;
    uint64_t n;
    rq_status st = rd_u32(r, &et, what);
    if (!st) st = rd_u64(r, &n, what);
    if (st) return st;
    if (et == T_STRING) { /* each string takes ≥ 8 bytes: the loop ends with the data */
        for (uint64_t i = 0; i < n && !st; i++) st = skip_value(r, et, what);
        return st;
    }
    const size_t size = scalar_bytes(et);
    if (!size) return rq__fail(RQ_ERR_FORMAT, "%s: %s has element type %u", r->fn, what, et);
    if (n > (r->n - r->pos) / size) return need(r, SIZE_MAX, what);
    r->pos += (size_t)n * size;
    return RQ_OK;
}

/* Parses and checks a whole file held in memory; fn starts every message. */
static rq_status parse(const char *fn, const void *data, size_t n_bytes, rq_key_basis_info *info, float **basis) {
    reader r = {data, n_bytes, 0, fn};
    memset(info, 0, sizeof *info);
    char magic[4] = {0};
    uint32_t version = 0;
    uint64_t n_tensors = 0, n_kv = 0;
    rq_status st = rd(&r, magic, 4, "the magic");
    if (!st && memcmp(magic, "GGUF", 4)) return rq__fail(RQ_ERR_FORMAT, "%s: not a GGUF file (no \"GGUF\" magic)", r.fn);
    if (!st) st = rd_u32(&r, &version, "the version");
    if (!st && version != 2 && version != 3)
        return rq__fail(RQ_ERR_FORMAT, "%s: GGUF version %u (2 or 3 expected)", r.fn, version);
    if (!st) st = rd_u64(&r, &n_tensors, "the tensor count");
    if (!st) st = rd_u64(&r, &n_kv, "the metadata count");
    if (!st && (n_tensors > KB_MAX_ITEMS || n_kv > KB_MAX_ITEMS))
        return rq__fail(RQ_ERR_FORMAT, "%s: %llu tensors, %llu metadata entries (at most %d each)", r.fn,
                        (unsigned long long)n_tensors, (unsigned long long)n_kv, KB_MAX_ITEMS);

    /* metadata */
    bool is_basis = false, have_ctx = false, have_starts = false;
    uint64_t n_ctx = 0, n_tok = 0, self = 0, align = KB_ALIGN, starts[RQ_KEY_BASIS_MAX_RANGES], n_ranges = 0;
    for (uint64_t i = 0; i < n_kv && !st; i++) {
        const char *key;
        uint64_t klen;
        uint32_t type;
        if ((st = rd_str(&r, &key, &klen, "a metadata key")) || (st = rd_u32(&r, &type, "a metadata type"))) break;
        if (str_is(key, klen, "general.architecture")) {
            const char *v;
            uint64_t vlen;
            if (type != T_STRING) return rq__fail(RQ_ERR_FORMAT, "%s: general.architecture is not a string", r.fn);
            if ((st = rd_str(&r, &v, &vlen, "general.architecture"))) break;
            if (!str_is(v, vlen, KB_ARCH))
                return rq__fail(RQ_ERR_FORMAT, "%s: not a key basis (general.architecture is \"%.*s\", not \"%s\")",
                                r.fn, (int)(vlen < 64 ? vlen : 64), v, KB_ARCH);
            is_basis = true;
        } else if (str_is(key, klen, "rotorquant.key_basis.n_ctx")) {
            st = rd_int(&r, type, &n_ctx, "rotorquant.key_basis.n_ctx"), have_ctx = true;
        } else if (str_is(key, klen, "rotorquant.key_basis.n_tokens")) {
            st = rd_int(&r, type, &n_tok, "rotorquant.key_basis.n_tokens");
        } else if (str_is(key, klen, "rotorquant.key_basis.self_generated")) {
            st = rd_int(&r, type, &self, "rotorquant.key_basis.self_generated");
        } else if (str_is(key, klen, "general.alignment")) {
            if (!(st = rd_int(&r, type, &align, "general.alignment")) &&
                (align == 0 || align > (1u << 16) || (align & (align - 1))))
                return rq__fail(RQ_ERR_FORMAT, "%s: general.alignment = %llu is not a power of two ≤ 65536", r.fn,
                                (unsigned long long)align);
        } else if (str_is(key, klen, "rotorquant.key_basis.range_start")) {
            uint32_t et;
            if (type != T_ARRAY)
                return rq__fail(RQ_ERR_FORMAT, "%s: rotorquant.key_basis.range_start is not an array", r.fn);
            if ((st = rd_u32(&r, &et, "range_start")) || (st = rd_u64(&r, &n_ranges, "range_start"))) break;
            if (n_ranges < 1 || n_ranges > RQ_KEY_BASIS_MAX_RANGES)
                return rq__fail(RQ_ERR_FORMAT, "%s: %llu key-position ranges (1..%d)", r.fn,
                                (unsigned long long)n_ranges, RQ_KEY_BASIS_MAX_RANGES);
            for (uint64_t k = 0; k < n_ranges && !st; k++) st = rd_int(&r, et, &starts[k], "range_start");
            have_starts = true;
        } else {
            st = skip_value(&r, type, "a metadata value");
        }
    }
    if (st) return st;
    if (!is_basis) return rq__fail(RQ_ERR_FORMAT, "%s: not a key basis (no general.architecture \"%s\")", r.fn, KB_ARCH);
    if (!have_ctx || n_ctx < 1 || n_ctx > KB_MAX_CTX)
        return rq__fail(RQ_ERR_FORMAT, "%s: rotorquant.key_basis.n_ctx %s (1..%u)", r.fn,
                        have_ctx ? "out of range" : "missing", KB_MAX_CTX);
    if (!have_starts) return rq__fail(RQ_ERR_FORMAT, "%s: rotorquant.key_basis.range_start missing", r.fn);
    for (uint64_t k = 0; k < n_ranges; k++)
        if ((k == 0 ? starts[k] != 0 : starts[k] <= starts[k - 1]) || starts[k] >= n_ctx)
            return rq__fail(RQ_ERR_FORMAT, "%s: range_start[%llu] = %llu is not an increasing position from 0 below "
                            "n_ctx = %llu", r.fn, (unsigned long long)k, (unsigned long long)starts[k],
                            (unsigned long long)n_ctx);
    if (self > 1) return rq__fail(RQ_ERR_FORMAT, "%s: self_generated = %llu (0 or 1)", r.fn, (unsigned long long)self);
    if (n_tok > UINT32_MAX) /* what rq_key_basis_save writes: an accepted file saves again */
        return rq__fail(RQ_ERR_FORMAT, "%s: n_tokens = %llu does not fit the format's u32", r.fn, (unsigned long long)n_tok);

    /* tensor infos: find key_basis */
    bool found = false;
    uint64_t ne[4] = {0}, offset = 0;
    for (uint64_t i = 0; i < n_tensors && !st; i++) {
        const char *name;
        uint64_t nlen, dims[4] = {0}, off;
        uint32_t n_dims, type;
        if ((st = rd_str(&r, &name, &nlen, "a tensor name")) || (st = rd_u32(&r, &n_dims, "a tensor's n_dims"))) break;
        if (n_dims < 1 || n_dims > 4)
            return rq__fail(RQ_ERR_FORMAT, "%s: tensor %llu has %u dimensions (1..4)", r.fn, (unsigned long long)i, n_dims);
        for (uint32_t k = 0; k < n_dims && !st; k++) st = rd_u64(&r, &dims[k], "a tensor shape");
        if (st || (st = rd_u32(&r, &type, "a tensor type")) || (st = rd_u64(&r, &off, "a tensor offset"))) break;
        if (!str_is(name, nlen, KB_TENSOR)) continue;
        if (found) return rq__fail(RQ_ERR_FORMAT, "%s: two tensors named %s", r.fn, KB_TENSOR);
        if (type != 0 || n_dims != 4)
            return rq__fail(RQ_ERR_FORMAT, "%s: %s is ggml type %u with %u dimensions (f32 = 0 with 4 expected)", r.fn,
                            KB_TENSOR, type, n_dims);
        memcpy(ne, dims, sizeof ne), offset = off, found = true;
    }
    if (st) return st;
    if (!found) return rq__fail(RQ_ERR_FORMAT, "%s: no tensor named %s", r.fn, KB_TENSOR);
    uint64_t d = 0;
    while (d < RQ_MAX_DIMS && (d + 1) * (d + 1) <= ne[0]) d++;
    if (d < 1 || d * d != ne[0] || ne[1] != n_ranges || ne[2] < 1 || ne[2] > 4096 || ne[3] < 1 || ne[3] > 4096)
        return rq__fail(RQ_ERR_FORMAT,
                        "%s: %s has shape [%llu, %llu, %llu, %llu], expected [head_dim² (head_dim ≤ %d), %llu ranges, "
                        "KV heads ≤ 4096, layers ≤ 4096]",
                        r.fn, KB_TENSOR, (unsigned long long)ne[0], (unsigned long long)ne[1],
                        (unsigned long long)ne[2], (unsigned long long)ne[3], RQ_MAX_DIMS, (unsigned long long)n_ranges);
    /* the data: at the next multiple of the alignment, then offset */
    const uint64_t n_floats = ne[0] * ne[1] * ne[2] * ne[3]; /* < 2^24 · 16 · 2^24: no overflow */
    const uint64_t data_at = ((uint64_t)r.pos + align - 1) / align * align;
    if (offset % align)
        return rq__fail(RQ_ERR_FORMAT, "%s: tensor offset %llu is not a multiple of the alignment %llu", r.fn,
                        (unsigned long long)offset, (unsigned long long)align);
    if (data_at > n_bytes || offset > n_bytes - data_at || n_floats * 4 > n_bytes - data_at - offset)
        return rq__fail(RQ_ERR_TRUNCATED, "%s: the data ends at byte %zu, the bases need bytes up to %llu", r.fn, n_bytes,
                        (unsigned long long)(data_at + offset + n_floats * 4));
    const uint8_t *src = r.p + data_at + offset;
    float *b = basis ? malloc((size_t)n_floats * sizeof(float)) : NULL;
    if (basis && !b) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory (%llu floats)", r.fn, (unsigned long long)n_floats);
    for (uint64_t i = 0; i < n_floats; i++) {
        float x;
        memcpy(&x, src + i * 4, 4);
        if (!rq__finite(x)) {
            free(b);
            const uint64_t dd = ne[0], per_layer = dd * ne[1] * ne[2];
            return rq__fail(RQ_ERR_NONFINITE, "%s: value %llu (layer %llu, KV head %llu, range %llu) is %g", r.fn,
                            (unsigned long long)i, (unsigned long long)(i / per_layer),
                            (unsigned long long)(i / (dd * ne[1]) % ne[2]), (unsigned long long)(i / dd % ne[1]),
                            (double)x);
        }
        if (b) b[i] = x;
    }
    info->n_layers = (int)ne[3], info->n_kv_heads = (int)ne[2], info->head_dim = (int)d;
    info->n_ranges = (size_t)n_ranges;
    for (uint64_t k = 0; k < n_ranges; k++) info->start[k] = (size_t)starts[k];
    info->n_ctx = (size_t)n_ctx, info->n_tokens = (size_t)n_tok, info->self_generated = (int)self;
    if (basis) *basis = b;
    return RQ_OK;
}

rq_status rq_key_basis_load_mem(const void *data, size_t n_bytes, rq_key_basis_info *info, float **basis) {
    static const char fn[] = "rq_key_basis_load_mem";
    if (basis) *basis = NULL;
    if (!data && n_bytes) return rq__fail(RQ_ERR_INVALID_ARG, "%s: data is NULL", fn);
    if (!info) return rq__fail(RQ_ERR_INVALID_ARG, "%s: info is NULL", fn);
    return parse(fn, data, n_bytes, info, basis);
}

/* The whole file at path into a malloc'd buffer (*buf, *n; free() it,
 * also after an error). Errors name fn and path: RQ_ERR_IO, RQ_ERR_NOMEM. */
rq_status rq__read_file(const char *fn, const char *path, uint8_t **buf_out, size_t *n_out) {
    *buf_out = NULL, *n_out = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return rq__fail(RQ_ERR_IO, "%s: cannot open %s: %s", fn, path, strerror(errno));
    size_t n = 0, cap = 0;
    uint8_t *buf = NULL;
    rq_status st = RQ_OK;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                st = rq__fail(RQ_ERR_NOMEM, "%s: %s: out of memory", fn, path);
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) st = rq__fail(RQ_ERR_IO, "%s: reading %s failed", fn, path);
            break;
        }
    }
    fclose(f);
    *buf_out = buf, *n_out = n;
    return st;
}

rq_status rq_key_basis_load(const char *path, rq_key_basis_info *info, float **basis) {
    static const char fn[] = "rq_key_basis_load";
    if (basis) *basis = NULL;
    if (!path || !info) return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !path ? "path" : "info");
    /* the whole file: a basis is at most a few MB */
    size_t n = 0;
    uint8_t *buf = NULL;
    rq_status st = rq__read_file(fn, path, &buf, &n);
    char *prefix = st ? NULL : malloc(strlen(path) + sizeof fn + 2);
    if (!st && !prefix) st = rq__fail(RQ_ERR_NOMEM, "%s: out of memory", fn);
    if (!st) {
        sprintf(prefix, "%s: %s", fn, path);
        st = parse(prefix, buf, n, info, basis);
    }
    free(prefix), free(buf);
    return st;
}

/* ---- writing ------------------------------------------------------------ */
typedef struct {
    uint8_t *p;
    size_t n;
} wbuf; /* sized exactly beforehand: no growth, no failure */

static void put(wbuf *b, const void *x, size_t n) {
    if (b->p) memcpy(b->p + b->n, x, n);
    b->n += n;
}
static void put_u32(wbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(wbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(wbuf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_kv_u32(wbuf *b, const char *key, uint32_t v) {
    put_str(b, key);
    put_u32(b, T_U32);
    put_u32(b, v);
}

/* The file's bytes into b (b->p NULL: only counts them). */
static void write_file(wbuf *b, const rq_key_basis_info *info, const float *basis, size_t n_floats) {
    const uint64_t dd = (uint64_t)info->head_dim * (uint64_t)info->head_dim;
    put(b, "GGUF", 4);
    put_u32(b, 3);
    put_u64(b, 1); /* tensors */
    put_u64(b, 5); /* metadata */
    put_str(b, "general.architecture");
    put_u32(b, T_STRING);
    put_str(b, KB_ARCH);
    put_kv_u32(b, "rotorquant.key_basis.n_ctx", (uint32_t)info->n_ctx);
    put_kv_u32(b, "rotorquant.key_basis.n_tokens", (uint32_t)info->n_tokens);
    put_kv_u32(b, "rotorquant.key_basis.self_generated", (uint32_t)(info->self_generated != 0));
    put_str(b, "rotorquant.key_basis.range_start");
    put_u32(b, T_ARRAY);
    put_u32(b, T_U32);
    put_u64(b, info->n_ranges);
    for (size_t r = 0; r < info->n_ranges; r++) put_u32(b, (uint32_t)info->start[r]);
    put_str(b, KB_TENSOR);
    put_u32(b, 4); /* ne: [d², ranges, KV heads, layers] */
    put_u64(b, dd), put_u64(b, (uint64_t)info->n_ranges);
    put_u64(b, (uint64_t)info->n_kv_heads), put_u64(b, (uint64_t)info->n_layers);
    put_u32(b, 0); /* f32 */
    put_u64(b, 0); /* offset */
    static const uint8_t zero[KB_ALIGN] = {0};
    put(b, zero, (KB_ALIGN - b->n % KB_ALIGN) % KB_ALIGN);
    put(b, basis, n_floats * sizeof(float));
}

/* Writes n bytes to path through a temporary file in the same directory,
 * flushed to disk, then renamed over path (internal.h: the cache's
 * save uses it too). */
rq_status rq__write_atomic(const char *fn, const char *path, const void *bytes, size_t n) {
    static atomic_uint counter;
    const size_t len = strlen(path) + 64;
    char *tmp = malloc(len);
    if (!tmp) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory", fn);
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(tmp, len, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        rq_status st = rq__fail(RQ_ERR_IO, "%s: cannot create a temporary file next to %s: %s", fn, path, strerror(errno));
        free(tmp);
        return st;
    }
    FILE *f = fdopen(fd, "wb");
    rq_status st = RQ_OK;
    if (!f) {
        close(fd);
        st = rq__fail(RQ_ERR_IO, "%s: %s: %s", fn, tmp, strerror(errno));
    } else {
        if (fwrite(bytes, 1, n, f) != n || fflush(f) || fsync(fileno(f)))
            st = rq__fail(RQ_ERR_IO, "%s: writing %s failed: %s", fn, tmp, strerror(errno));
        if (fclose(f) && !st) st = rq__fail(RQ_ERR_IO, "%s: writing %s failed: %s", fn, tmp, strerror(errno));
    }
    if (!st && rename(tmp, path))
        st = rq__fail(RQ_ERR_IO, "%s: cannot rename %s to %s: %s", fn, tmp, path, strerror(errno));
    if (st) remove(tmp);
    free(tmp);
    return st;
}

rq_status rq_key_basis_save(const char *path, const rq_key_basis_info *info, const float *basis) {
    static const char fn[] = "rq_key_basis_save";
    if (!path || !info || !basis)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !path ? "path" : !info ? "info" : "basis");
    if (info->n_layers < 1 || info->n_layers > 4096 || info->n_kv_heads < 1 || info->n_kv_heads > 4096 ||
        info->head_dim < 1 || info->head_dim > RQ_MAX_DIMS)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: n_layers = %d, n_kv_heads = %d, head_dim = %d (1..4096, 1..4096, 1..%d)",
                        fn, info->n_layers, info->n_kv_heads, info->head_dim, RQ_MAX_DIMS);
    if (info->n_ranges < 1 || info->n_ranges > RQ_KEY_BASIS_MAX_RANGES)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: n_ranges = %zu out of range (1..%d)", fn, info->n_ranges,
                        RQ_KEY_BASIS_MAX_RANGES);
    if (info->n_ctx < 1 || info->n_ctx > KB_MAX_CTX)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: n_ctx = %zu out of range (1..%u)", fn, info->n_ctx, KB_MAX_CTX);
    if (info->n_tokens > UINT32_MAX)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: n_tokens = %zu does not fit the file's u32", fn, info->n_tokens);
    for (size_t r = 0; r < info->n_ranges; r++)
        if ((r == 0 ? info->start[r] != 0 : info->start[r] <= info->start[r - 1]) || info->start[r] >= info->n_ctx)
            return rq__fail(RQ_ERR_INVALID_ARG, "%s: start[%zu] = %zu is not an increasing position from 0 below n_ctx = %zu",
                            fn, r, info->start[r], info->n_ctx);
    const size_t n_floats = (size_t)info->n_layers * (size_t)info->n_kv_heads * info->n_ranges *
                            (size_t)info->head_dim * (size_t)info->head_dim;
    for (size_t i = 0; i < n_floats; i++)
        if (!rq__finite(basis[i])) return rq__fail(RQ_ERR_NONFINITE, "%s: basis[%zu] = %g", fn, i, (double)basis[i]);
    wbuf b = {NULL, 0};
    write_file(&b, info, basis, n_floats);
    if (!(b.p = malloc(b.n))) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory (%zu bytes)", fn, b.n);
    const size_t n = b.n;
    b.n = 0;
    write_file(&b, info, basis, n_floats);
    rq_status st = rq__write_atomic(fn, path, b.p, n);
    free(b.p);
    return st;
}

rq_status rq_cache_load_key_basis(rq_cache *c, const char *path, rq_key_basis_info *info) {
    static const char fn[] = "rq_cache_load_key_basis";
    if (!c || !path) return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !c ? "cache" : "path");
    rq_key_basis_info got;
    float *basis = NULL;
    rq_status st = rq_key_basis_load(path, &got, &basis);
    if (!st) st = rq_cache_set_key_bases(c, &got, basis);
    if (st) rq__fail(st, "%s: %s", fn, rq_last_error());
    free(basis);
    if (!st && info) *info = got;
    return st;
}
