/*
 * test_gguf.c — the GGUF reader (model/gguf.c) on files built byte by byte
 * in memory: every metadata value type (nested and string arrays included),
 * the typed getters, tensor lookup, data pointers and alignment (default 32
 * and a custom one), the same file through mmap; then malformed files — bad
 * magic and versions, every truncation of a valid file, absurd lengths and
 * counts, bad tensor shapes, types, offsets, overlaps, duplicates, bad
 * alignment — each must fail with its error code and a one-line message,
 * never crash (the suite also runs under ASan/UBSan). Last, the real
 * SmolLM2 file when it is present (make model).
 */
#include "test.h"

#include "../model/ggml.h"
#include "../model/gguf.h"
#include "../model/llama.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* ---- an in-memory GGUF writer ----------------------------------------------- */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) abort(); /* test helper: nothing to recover */
        b->p = p, b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_le(buf *b, uint64_t v, int n_bytes) {
    uint8_t t[8];
    for (int i = 0; i < n_bytes; i++) t[i] = (uint8_t)(v >> (8 * i));
    put(b, t, (size_t)n_bytes);
}
static void put_u8(buf *b, uint8_t v) { put_le(b, v, 1); }
static void put_u32(buf *b, uint32_t v) { put_le(b, v, 4); }
static void put_u64(buf *b, uint64_t v) { put_le(b, v, 8); }
static void put_f32(buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(b, u);
}
static void put_f64(buf *b, double f) {
    uint64_t u;
    memcpy(&u, &f, 8);
    put_u64(b, u);
}
static void put_str(buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_zeros(buf *b, size_t n) {
    for (size_t i = 0; i < n; i++) put_u8(b, 0);
}
static void pad_to(buf *b, size_t align) { put_zeros(b, (align - b->n % align) % align); }

static void header(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
}

static void kv_key(buf *b, const char *key, rqm_gguf_vtype t) {
    put_str(b, key);
    put_u32(b, t);
}
static void kv_u32(buf *b, const char *key, uint32_t v) {
    kv_key(b, key, RQM_GGUF_U32);
    put_u32(b, v);
}
static void kv_str(buf *b, const char *key, const char *v) {
    kv_key(b, key, RQM_GGUF_STRING);
    put_str(b, v);
}

static void tensor_info(buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                        uint64_t offset) {
    put_str(b, name);
    put_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) put_u64(b, ne[d]);
    put_u32(b, type);
    put_u64(b, offset);
}

/* ---- the valid file ----------------------------------------------------------------
 * 19 (+1) metadata pairs covering every value type, and three tensors:
 *   a  f32  [8]        values 0..7
 *   w  q8_0 [64, 3]    bytes i & 0xff
 *   h  f16  [4, 2]     halves 1.0
 * laid out at aligned offsets; the last tensor ends exactly at the end of
 * the file, so every shorter prefix is truncated. */
#define VALID_N_KV 19

static size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

static void build_valid(buf *b, uint32_t alignment) {
    memset(b, 0, sizeof *b);
    header(b, 3, 3, VALID_N_KV + (alignment ? 1 : 0));
    kv_key(b, "t.u8", RQM_GGUF_U8), put_u8(b, 200);
    kv_key(b, "t.i8", RQM_GGUF_I8), put_u8(b, (uint8_t)-100);
    kv_key(b, "t.u16", RQM_GGUF_U16), put_le(b, 60000, 2);
    kv_key(b, "t.i16", RQM_GGUF_I16), put_le(b, (uint16_t)-30000, 2);
    kv_u32(b, "t.u32", 4000000000u);
    kv_key(b, "t.i32", RQM_GGUF_I32), put_u32(b, (uint32_t)-2000000000);
    kv_key(b, "t.f32", RQM_GGUF_F32), put_f32(b, 1.5f);
    kv_key(b, "t.bool", RQM_GGUF_BOOL), put_u8(b, 1);
    kv_str(b, "t.str", "hello");
    kv_key(b, "t.u64", RQM_GGUF_U64), put_u64(b, (1ull << 63) + 5);
    kv_key(b, "t.i64", RQM_GGUF_I64), put_u64(b, (uint64_t)-(1ll << 40));
    kv_key(b, "t.f64", RQM_GGUF_F64), put_f64(b, -0.125);
    kv_key(b, "t.arr_i32", RQM_GGUF_ARRAY), put_u32(b, RQM_GGUF_I32), put_u64(b, 3);
    put_u32(b, 1), put_u32(b, (uint32_t)-2), put_u32(b, 3);
    kv_key(b, "t.arr_f32", RQM_GGUF_ARRAY), put_u32(b, RQM_GGUF_F32), put_u64(b, 2);
    put_f32(b, 0.5f), put_f32(b, -1.0f);
    kv_key(b, "t.arr_str", RQM_GGUF_ARRAY), put_u32(b, RQM_GGUF_STRING), put_u64(b, 3);
    put_str(b, "a"), put_str(b, ""), put_str(b, "ccc");
    /* [[1, 2] (u8), ["x", "yz"], [] (of arrays)] */
    kv_key(b, "t.nested", RQM_GGUF_ARRAY), put_u32(b, RQM_GGUF_ARRAY), put_u64(b, 3);
    put_u32(b, RQM_GGUF_U8), put_u64(b, 2), put_u8(b, 1), put_u8(b, 2);
    put_u32(b, RQM_GGUF_STRING), put_u64(b, 2), put_str(b, "x"), put_str(b, "yz");
    put_u32(b, RQM_GGUF_ARRAY), put_u64(b, 0);
    kv_key(b, "t.arr_empty", RQM_GGUF_ARRAY), put_u32(b, RQM_GGUF_STRING), put_u64(b, 0);
    kv_key(b, "t.arr_bool", RQM_GGUF_ARRAY), put_u32(b, RQM_GGUF_BOOL), put_u64(b, 2);
    put_u8(b, 0), put_u8(b, 1);
    kv_str(b, "general.architecture", "llama");
    if (alignment) kv_u32(b, "general.alignment", alignment);

    size_t al = alignment ? alignment : 32;
    size_t off_a = 0, off_w = align_up(off_a + 32, al), off_h = align_up(off_w + 3 * 2 * 34, al);
    tensor_info(b, "a", 1, (const uint64_t[]){8}, RQM_GGML_F32, off_a);
    tensor_info(b, "w", 2, (const uint64_t[]){64, 3}, RQM_GGML_Q8_0, off_w);
    tensor_info(b, "h", 2, (const uint64_t[]){4, 2}, RQM_GGML_F16, off_h);
    pad_to(b, al);
    size_t data = b->n;
    for (int i = 0; i < 8; i++) put_f32(b, (float)i);
    put_zeros(b, data + off_w - b->n);
    for (int i = 0; i < 3 * 2 * 34; i++) put_u8(b, (uint8_t)i);
    put_zeros(b, data + off_h - b->n);
    for (int i = 0; i < 8; i++) put_le(b, 0x3c00, 2);
}

/* Expects opening bytes [0, n) to fail with `want` and a one-line message;
 * the bytes are copied to an allocation of exactly n so ASan sees over-reads. */
static rq_status expect_fail(const void *bytes, size_t n, rq_status want, const char *what) {
    uint8_t *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, bytes, n);
    char err[256] = "";
    rqm_gguf *g = (rqm_gguf *)1;
    rq_status st = rqm_gguf_open_memory(&g, copy, n, err, sizeof err);
    if (want != RQ_OK) {
        CHECK(st == want, "%s: got %s, want %s (%s)", what, rq_status_str(st), rq_status_str(want), err);
        CHECK(g == NULL, "%s: no handle on failure", what);
        CHECK(err[0] && !strchr(err, '\n'), "%s: one-line message '%s'", what, err);
    }
    if (st == RQ_OK) rqm_gguf_close(g);
    free(copy);
    return st;
}

static void test_valid_file(void) {
    buf b;
    build_valid(&b, 0);
    char err[256] = "";
    rqm_gguf *g = NULL;
    CHECK_OK(rqm_gguf_open_memory(&g, b.p, b.n, err, sizeof err));
    if (!g) {
        free(b.p);
        return;
    }
    CHECK(rqm_gguf_version(g) == 3, "version");
    CHECK(rqm_gguf_n_kv(g) == VALID_N_KV, "n_kv %zu", rqm_gguf_n_kv(g));

    uint64_t u;
    double f;
    rqm_str s;
    CHECK(!rqm_gguf_get_u64(g, "t.u8", &u) && u == 200, "u8");
    CHECK(rqm_gguf_get_u64(g, "t.i8", &u) == RQ_ERR_FORMAT, "negative i8 does not fit u64");
    CHECK(rqm_gguf_find(g, "t.i8")->v.i == -100, "i8");
    CHECK(!rqm_gguf_get_u64(g, "t.u16", &u) && u == 60000, "u16");
    CHECK(rqm_gguf_find(g, "t.i16")->v.i == -30000, "i16");
    CHECK(!rqm_gguf_get_u64(g, "t.u32", &u) && u == 4000000000u, "u32");
    CHECK(!rqm_gguf_get_f64(g, "t.i32", &f) && f == -2e9, "i32 as f64");
    CHECK(!rqm_gguf_get_f64(g, "t.f32", &f) && f == 1.5, "f32");
    CHECK(rqm_gguf_get_u64(g, "t.f32", &u) == RQ_ERR_FORMAT, "f32 is not an integer");
    CHECK(!rqm_gguf_get_u64(g, "t.bool", &u) && u == 1, "bool");
    CHECK(!rqm_gguf_get_str(g, "t.str", &s) && rqm_str_eq(s, "hello"), "string");
    CHECK(rqm_gguf_get_str(g, "t.u8", &s) == RQ_ERR_FORMAT, "u8 is not a string");
    CHECK(!rqm_gguf_get_u64(g, "t.u64", &u) && u == (1ull << 63) + 5, "u64");
    CHECK(rqm_gguf_find(g, "t.i64")->v.i == -(1ll << 40), "i64");
    CHECK(!rqm_gguf_get_f64(g, "t.f64", &f) && f == -0.125, "f64");
    CHECK(rqm_gguf_get_u64(g, "missing", &u) == RQ_ERR_FORMAT && !rqm_gguf_find(g, "missing"), "absent key");
    CHECK(!rqm_gguf_get_str(g, "general.architecture", &s) && rqm_str_eq(s, "llama") && !rqm_str_eq(s, "llam"),
          "architecture");

    const rqm_gguf_kv *kv = rqm_gguf_find(g, "t.arr_i32");
    CHECK(kv && kv->type == RQM_GGUF_ARRAY && kv->arr_type == RQM_GGUF_I32 && kv->arr_n == 3, "i32 array");
    CHECK(!rqm_gguf_array_f64(kv, 1, &f) && f == -2, "i32 array [1]");
    CHECK(rqm_gguf_array_f64(kv, 3, &f) == RQ_ERR_INVALID_ARG, "index past the end");
    CHECK(rqm_gguf_array_str(g, kv, 0, &s) == RQ_ERR_FORMAT, "not a string array");
    kv = rqm_gguf_find(g, "t.arr_f32");
    CHECK(!rqm_gguf_array_f64(kv, 0, &f) && f == 0.5 && !rqm_gguf_array_f64(kv, 1, &f) && f == -1, "f32 array");
    kv = rqm_gguf_find(g, "t.arr_str");
    CHECK(kv && kv->arr_type == RQM_GGUF_STRING && kv->arr_n == 3, "string array");
    CHECK(!rqm_gguf_array_str(g, kv, 0, &s) && rqm_str_eq(s, "a"), "string [0]");
    CHECK(!rqm_gguf_array_str(g, kv, 1, &s) && s.len == 0, "string [1] empty");
    CHECK(!rqm_gguf_array_str(g, kv, 2, &s) && rqm_str_eq(s, "ccc"), "string [2]");
    CHECK(rqm_gguf_array_str(g, kv, 3, &s) == RQ_ERR_INVALID_ARG, "string [3]");
    CHECK(rqm_gguf_array_f64(kv, 0, &f) == RQ_ERR_FORMAT, "strings are not numbers");
    kv = rqm_gguf_find(g, "t.nested");
    CHECK(kv && kv->arr_type == RQM_GGUF_ARRAY && kv->arr_n == 3, "nested array");
    /* arr_data points at the first inner array: element type u8, count 2, 1, 2 */
    CHECK(kv && kv->arr_data[0] == RQM_GGUF_U8 && kv->arr_data[4] == 2 && kv->arr_data[12] == 1, "nested data");
    kv = rqm_gguf_find(g, "t.arr_empty");
    CHECK(kv && kv->arr_n == 0 && rqm_gguf_array_str(g, kv, 0, &s) == RQ_ERR_INVALID_ARG, "empty array");
    kv = rqm_gguf_find(g, "t.arr_bool");
    CHECK(!rqm_gguf_array_f64(kv, 1, &f) && f == 1, "bool array");
    CHECK(rqm_gguf_kv_at(g, 0) && rqm_str_eq(rqm_gguf_kv_at(g, 0)->key, "t.u8") && !rqm_gguf_kv_at(g, VALID_N_KV),
          "kv_at");
    rqm_gguf_kv foreign = *rqm_gguf_find(g, "t.arr_str");
    CHECK(rqm_gguf_array_str(g, &foreign, 0, &s) == RQ_ERR_INVALID_ARG, "a kv not from this file");

    CHECK(rqm_gguf_n_tensors(g) == 3, "n_tensors");
    const rqm_tensor *a = rqm_gguf_tensor(g, "a"), *w = rqm_gguf_tensor(g, "w"), *h = rqm_gguf_tensor(g, "h");
    CHECK(a && w && h && !rqm_gguf_tensor(g, "x") && rqm_gguf_tensor_at(g, 1) == w && !rqm_gguf_tensor_at(g, 3),
          "tensor lookup");
    if (a && w && h) {
        size_t data = (size_t)((const uint8_t *)a->data - b.p);
        CHECK(data % 32 == 0 && data == b.n - 272, "data section aligned to 32 (%zu)", data);
        CHECK(a->n_dims == 1 && a->ne[0] == 8 && a->ne[1] == 1 && a->type == RQM_GGML_F32 && a->n_bytes == 32, "a");
        CHECK(w->n_dims == 2 && w->ne[0] == 64 && w->ne[1] == 3 && w->type == RQM_GGML_Q8_0 && w->n_bytes == 204,
              "w");
        CHECK(w->offset == 32 && h->offset == 256 && h->n_bytes == 16, "offsets %llu %llu",
              (unsigned long long)w->offset, (unsigned long long)h->offset);
        CHECK((const uint8_t *)w->data == b.p + data + 32 && (const uint8_t *)h->data + 16 == b.p + b.n, "pointers");
        float v[8];
        memcpy(v, a->data, sizeof v);
        CHECK(v[0] == 0 && v[7] == 7, "f32 data");
        CHECK(((const uint8_t *)w->data)[5] == 5, "q8_0 data");
    }
    rqm_gguf_close(g);
    free(b.p);
}

static void test_custom_alignment(void) {
    buf b;
    build_valid(&b, 64);
    rqm_gguf *g = NULL;
    char err[256] = "";
    CHECK_OK(rqm_gguf_open_memory(&g, b.p, b.n, err, sizeof err));
    if (g) {
        const rqm_tensor *a = rqm_gguf_tensor(g, "a"), *w = rqm_gguf_tensor(g, "w"), *h = rqm_gguf_tensor(g, "h");
        size_t data = (size_t)((const uint8_t *)a->data - b.p);
        CHECK(data % 64 == 0, "data section at %zu", data);
        CHECK(w->offset == 64 && h->offset == 320, "offsets %llu %llu", (unsigned long long)w->offset,
              (unsigned long long)h->offset);
        CHECK((const uint8_t *)h->data + 16 == b.p + b.n, "last tensor ends the file");
        uint64_t al;
        CHECK(!rqm_gguf_get_u64(g, "general.alignment", &al) && al == 64, "alignment key");
        rqm_gguf_close(g);
    }
    /* the same file read with the default alignment would misplace the data */
    free(b.p);
}

static void test_mmap_file(void) {
    char dir[] = "/tmp/rq_gguf_XXXXXX", path[96];
    if (!mkdtemp(dir)) TEST_SKIP("cannot create a temp directory");
    buf b;
    build_valid(&b, 0);
    snprintf(path, sizeof path, "%s/v.gguf", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b.p, 1, b.n, f) == b.n, "write");
    if (f) fclose(f);
    rqm_gguf *g = NULL;
    char err[256] = "";
    CHECK_OK(rqm_gguf_open(&g, path, err, sizeof err));
    if (g) {
        const rqm_tensor *h = rqm_gguf_tensor(g, "h");
        CHECK(h && memcmp(h->data, b.p + b.n - 16, 16) == 0, "mapped data");
        rqm_str s;
        CHECK(!rqm_gguf_get_str(g, "t.str", &s) && rqm_str_eq(s, "hello"), "mapped metadata");
        rqm_gguf_close(g);
    }
    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    CHECK(rqm_gguf_open(&g, path, err, sizeof err) == RQ_ERR_IO && !g && strstr(err, "missing.gguf"),
          "missing file: %s", err);
    CHECK(rqm_gguf_open(&g, dir, err, sizeof err) == RQ_ERR_IO, "a directory: %s", err);
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    f = fopen(path, "wb");
    if (f) fclose(f);
    CHECK(rqm_gguf_open(&g, path, err, sizeof err) == RQ_ERR_TRUNCATED, "empty file: %s", err);
    CHECK(rqm_gguf_open(&g, path, NULL, 0) == RQ_ERR_TRUNCATED, "err may be NULL");
    unlink(path);
    snprintf(path, sizeof path, "%s/v.gguf", dir);
    unlink(path);
    rmdir(dir);
    free(b.p);
}

static void test_truncation(void) {
    buf b;
    build_valid(&b, 0);
    CHECK(expect_fail(b.p, b.n, RQ_OK, "whole file") == RQ_OK, "the full file opens");
    int bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        int before = rq_test_failures;
        expect_fail(b.p, n, RQ_ERR_TRUNCATED, "prefix");
        if (rq_test_failures != before && ++bad > 3) break; /* enough to diagnose */
    }
    free(b.p);
}

static void test_bad_header(void) {
    buf b;
    build_valid(&b, 0);
    b.p[0] = 'g';
    expect_fail(b.p, b.n, RQ_ERR_FORMAT, "wrong magic");
    b.p[0] = 'G';
    b.p[4] = 1;
    expect_fail(b.p, b.n, RQ_ERR_FORMAT, "version 1");
    b.p[4] = 4;
    expect_fail(b.p, b.n, RQ_ERR_FORMAT, "version 4");
    b.p[4] = 0, b.p[7] = 3;
    expect_fail(b.p, b.n, RQ_ERR_FORMAT, "big-endian version");
    b.p[4] = 2, b.p[7] = 0;
    expect_fail(b.p, b.n, RQ_OK, "version 2");
    free(b.p);

    memset(&b, 0, sizeof b);
    header(&b, 3, 0, 1ull << 62);
    expect_fail(b.p, b.n, RQ_ERR_TRUNCATED, "2^62 metadata pairs");
    b.n = 0;
    header(&b, 3, UINT64_MAX, 0);
    expect_fail(b.p, b.n, RQ_ERR_TRUNCATED, "2^64-1 tensors");
    b.n = 0;
    header(&b, 3, 0, 0);
    CHECK(expect_fail(b.p, b.n, RQ_OK, "empty model") == RQ_OK, "no tensors, no metadata");
    free(b.p);
}

/* A file with the given metadata (written by fn) and no tensors. */
static rq_status meta_only(void (*fn)(buf *), uint64_t n_kv, rq_status want, const char *what) {
    buf b = {0};
    header(&b, 3, 0, n_kv);
    fn(&b);
    rq_status st = expect_fail(b.p, b.n, want, what);
    free(b.p);
    return st;
}

static void m_huge_string(buf *b) {
    kv_key(b, "k", RQM_GGUF_STRING);
    put_u64(b, 1ull << 63);
    put(b, "abc", 3);
}
static void m_huge_key(buf *b) {
    put_u64(b, 70000);
    put_zeros(b, 70000);
    put_u32(b, RQM_GGUF_U8), put_u8(b, 0);
}
static void m_empty_key(buf *b) { kv_key(b, "", RQM_GGUF_U8), put_u8(b, 0); }
static void m_huge_array(buf *b) {
    kv_key(b, "k", RQM_GGUF_ARRAY), put_u32(b, RQM_GGUF_U32), put_u64(b, 1ull << 62);
    put_zeros(b, 64);
}
static void m_huge_str_array(buf *b) {
    kv_key(b, "k", RQM_GGUF_ARRAY), put_u32(b, RQM_GGUF_STRING), put_u64(b, 1ull << 62);
    put_str(b, "x");
}
static void m_huge_u64_array(buf *b) {
    /* count · 8 wraps to 0 in 64 bits: must not pass as "fits" */
    kv_key(b, "k", RQM_GGUF_ARRAY), put_u32(b, RQM_GGUF_U64), put_u64(b, 1ull << 61);
    put_zeros(b, 16);
}
static void m_bad_type(buf *b) { kv_key(b, "k", (rqm_gguf_vtype)13), put_u8(b, 0); }
static void m_bad_elem_type(buf *b) { kv_key(b, "k", RQM_GGUF_ARRAY), put_u32(b, 99), put_u64(b, 0); }
static void m_bad_bool(buf *b) { kv_key(b, "k", RQM_GGUF_BOOL), put_u8(b, 2); }
static void m_dup_key(buf *b) {
    kv_u32(b, "k", 1);
    kv_u32(b, "k", 2);
}
static int g_depth;
static void m_nested(buf *b) {
    kv_key(b, "k", RQM_GGUF_ARRAY);
    for (int d = 1; d < g_depth; d++) put_u32(b, RQM_GGUF_ARRAY), put_u64(b, 1);
    put_u32(b, RQM_GGUF_U8), put_u64(b, 1), put_u8(b, 7);
}
static uint32_t g_align;
static void m_align(buf *b) { kv_u32(b, "general.alignment", g_align); }
static void m_align_u64(buf *b) { kv_key(b, "general.alignment", RQM_GGUF_U64), put_u64(b, 32); }

static void test_bad_metadata(void) {
    meta_only(m_huge_string, 1, RQ_ERR_TRUNCATED, "2^63-byte string");
    meta_only(m_huge_key, 1, RQ_ERR_FORMAT, "70000-byte key");
    meta_only(m_empty_key, 1, RQ_ERR_FORMAT, "empty key");
    meta_only(m_huge_array, 1, RQ_ERR_TRUNCATED, "2^62 u32 elements");
    meta_only(m_huge_str_array, 1, RQ_ERR_TRUNCATED, "2^62 strings");
    meta_only(m_huge_u64_array, 1, RQ_ERR_TRUNCATED, "2^61 u64 elements");
    meta_only(m_bad_type, 1, RQ_ERR_FORMAT, "value type 13");
    meta_only(m_bad_elem_type, 1, RQ_ERR_FORMAT, "array element type 99");
    meta_only(m_bad_bool, 1, RQ_ERR_FORMAT, "bool 2");
    meta_only(m_dup_key, 2, RQ_ERR_FORMAT, "duplicate key");
    g_depth = 8;
    meta_only(m_nested, 1, RQ_OK, "arrays nested 8 deep");
    g_depth = 9;
    meta_only(m_nested, 1, RQ_ERR_FORMAT, "arrays nested 9 deep");
    g_depth = 100000; /* deep recursion must be refused, not followed */
    meta_only(m_nested, 1, RQ_ERR_FORMAT, "arrays nested 100000 deep");
    const uint32_t bad_align[] = {0, 3, 24, 48, 0x80000000u};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        g_align = bad_align[i];
        meta_only(m_align, 1, RQ_ERR_FORMAT, "bad alignment");
    }
    g_align = 8;
    meta_only(m_align, 1, RQ_OK, "alignment 8");
    meta_only(m_align_u64, 1, RQ_ERR_FORMAT, "alignment stored as u64");
}

/* One or two tensors (the second optional: name2 NULL), data zero-filled to
 * `data_bytes`. */
typedef struct {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    uint64_t offset;
} tinfo;

static rq_status tensors_file(const tinfo *t, int n, size_t data_bytes, rq_status want, const char *what) {
    buf b = {0};
    header(&b, 3, (uint64_t)n, 0);
    for (int i = 0; i < n; i++) tensor_info(&b, t[i].name, t[i].n_dims, t[i].ne, t[i].type, t[i].offset);
    pad_to(&b, 32);
    put_zeros(&b, data_bytes);
    rq_status st = expect_fail(b.p, b.n, want, what);
    free(b.p);
    return st;
}

static void test_bad_tensors(void) {
    tinfo ok = {"t", 2, {32, 2}, RQM_GGML_Q8_0, 0};
    CHECK(tensors_file(&ok, 1, 68, RQ_OK, "valid") == RQ_OK, "baseline tensor opens");
    tinfo t = ok;
    t.n_dims = 5;
    tensors_file(&t, 1, 68, RQ_ERR_FORMAT, "5 dims");
    t.n_dims = 0;
    tensors_file(&t, 1, 68, RQ_ERR_FORMAT, "0 dims");
    {
        buf b = {0}; /* n_dims = 2^31: refused before reading any dim */
        header(&b, 3, 1, 0);
        put_str(&b, "t"), put_u32(&b, 0x80000000u);
        put_zeros(&b, 64);
        expect_fail(b.p, b.n, RQ_ERR_FORMAT, "2^31 dims");
        free(b.p);
    }
    t = ok, t.ne[1] = 0;
    tensors_file(&t, 1, 68, RQ_ERR_FORMAT, "a zero dim");
    t = (tinfo){"t", 3, {1ull << 32, 1ull << 31, 2}, RQM_GGML_F32, 0};
    tensors_file(&t, 1, 64, RQ_ERR_FORMAT, "dims product 2^64");
    t = (tinfo){"t", 2, {1ull << 31, 1ull << 31}, RQM_GGML_F64, 0};
    tensors_file(&t, 1, 64, RQ_ERR_FORMAT, "2^62 elements × 8 bytes overflows");
    t = (tinfo){"t", 2, {32, 1ull << 40}, RQM_GGML_F32, 0};
    tensors_file(&t, 1, 64, RQ_ERR_TRUNCATED, "4 TiB tensor in a small file");
    t = ok, t.type = 99;
    tensors_file(&t, 1, 68, RQ_ERR_FORMAT, "ggml type 99");
    t = ok, t.type = 4; /* Q4_2, removed from ggml */
    tensors_file(&t, 1, 68, RQ_ERR_FORMAT, "ggml type 4");
    t = ok, t.ne[0] = 48;
    tensors_file(&t, 1, 102, RQ_ERR_FORMAT, "row not a whole number of blocks");
    t = ok, t.offset = 16;
    tensors_file(&t, 1, 100, RQ_ERR_FORMAT, "misaligned offset");
    t = ok, t.offset = 32;
    tensors_file(&t, 1, 68, RQ_ERR_TRUNCATED, "tensor past the end");
    t = ok, t.offset = UINT64_MAX - 31;
    tensors_file(&t, 1, 68, RQ_ERR_TRUNCATED, "offset near 2^64");
    {
        buf b = {0}; /* a long name */
        char name[300];
        memset(name, 'n', sizeof name - 1);
        name[sizeof name - 1] = 0;
        header(&b, 3, 1, 0);
        tensor_info(&b, name, 1, (const uint64_t[]){8}, RQM_GGML_F32, 0);
        pad_to(&b, 32);
        put_zeros(&b, 32);
        expect_fail(b.p, b.n, RQ_ERR_FORMAT, "299-byte tensor name");
        free(b.p);
    }
    tinfo two[2] = {ok, ok};
    two[1].name = "u", two[1].offset = 96;
    CHECK(tensors_file(two, 2, 164, RQ_OK, "two tensors") == RQ_OK, "two tensors open");
    two[1].offset = 64; /* [0, 68) and [64, 132) */
    tensors_file(two, 2, 164, RQ_ERR_FORMAT, "overlapping tensors");
    two[1].offset = 0;
    tensors_file(two, 2, 164, RQ_ERR_FORMAT, "tensors at the same offset");
    two[1] = ok, two[1].offset = 96;
    tensors_file(two, 2, 164, RQ_ERR_FORMAT, "duplicate tensor names");
}

/* ---- the real model --------------------------------------------------------------- */
/* the `make model` cache or $RQ_MODEL (model/llama.h) */
static const char *model_path(void) {
    static char path[4096];
    return rqm_default_path(RQM_PATH_MODEL, path, sizeof path);
}

static void test_smollm2(void) {
    const char *path = model_path();
    if (access(path, R_OK) != 0) TEST_SKIP("model not found: run make model");
    rqm_gguf *g = NULL;
    char err[512] = "";
    CHECK_OK(rqm_gguf_open(&g, path, err, sizeof err));
    if (!g) {
        TEST_NOTE("%s", err);
        return;
    }
    rqm_str s;
    uint64_t u;
    CHECK(rqm_gguf_n_tensors(g) == 272, "272 tensors, got %zu", rqm_gguf_n_tensors(g));
    CHECK(!rqm_gguf_get_str(g, "general.architecture", &s) && rqm_str_eq(s, "llama"), "architecture");
    CHECK(!rqm_gguf_get_u64(g, "llama.block_count", &u) && u == 30, "block_count");
    CHECK(!rqm_gguf_get_u64(g, "llama.embedding_length", &u) && u == 576, "embedding_length");
    const rqm_tensor *t = rqm_gguf_tensor(g, "token_embd.weight");
    CHECK(t && t->type == RQM_GGML_Q8_0 && t->n_dims == 2 && t->ne[0] == 576 && t->ne[1] == 49152,
          "token_embd.weight q8_0 [576, 49152]");
    t = rqm_gguf_tensor(g, "blk.0.attn_k.weight");
    CHECK(t && t->type == RQM_GGML_Q4_1 && t->ne[0] == 576 && t->ne[1] == 192, "blk.0.attn_k.weight q4_1 [576, 192]");
    t = rqm_gguf_tensor(g, "blk.29.ffn_down.weight");
    CHECK(t && t->type == RQM_GGML_Q4_1 && t->ne[0] == 1536 && t->ne[1] == 576, "blk.29.ffn_down.weight");
    t = rqm_gguf_tensor(g, "output_norm.weight");
    CHECK(t && t->type == RQM_GGML_F32 && t->n_dims == 1 && t->ne[0] == 576, "output_norm.weight f32 [576]");
    CHECK(!rqm_gguf_tensor(g, "output.weight"), "tied embeddings: no output.weight");
    const rqm_gguf_kv *tok = rqm_gguf_find(g, "tokenizer.ggml.tokens");
    CHECK(tok && tok->arr_type == RQM_GGUF_STRING && tok->arr_n == 49152, "49152 tokens");
    if (tok && tok->arr_n == 49152) {
        CHECK(!rqm_gguf_array_str(g, tok, 0, &s) && rqm_str_eq(s, "<|endoftext|>"), "token 0");
        CHECK(!rqm_gguf_array_str(g, tok, 1, &s) && rqm_str_eq(s, "<|im_start|>"), "token 1");
        CHECK(!rqm_gguf_array_str(g, tok, 49151, &s) && s.len > 0, "last token");
    }
    const rqm_gguf_kv *merges = rqm_gguf_find(g, "tokenizer.ggml.merges");
    CHECK(merges && merges->arr_type == RQM_GGUF_STRING && merges->arr_n == 48900, "48900 merges");
    rqm_gguf_close(g);
}

const rq_test tests_gguf[] = {
    {"gguf_valid_file", test_valid_file},
    {"gguf_custom_alignment", test_custom_alignment},
    {"gguf_mmap_file", test_mmap_file},
    {"gguf_truncated_every_offset", test_truncation},
    {"gguf_bad_header", test_bad_header},
    {"gguf_bad_metadata", test_bad_metadata},
    {"gguf_bad_tensors", test_bad_tensors},
    {"gguf_smollm2", test_smollm2},
    {NULL, NULL},
};
