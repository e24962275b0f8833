/* gguf_build.c — see gguf_build.h. Layout: research/real_model.md §3. */
#include "gguf_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char *p;
    size_t n, cap;
} bytes;

typedef struct {
    char *key;
    bytes value; /* type u32 + payload */
} kv_entry;

typedef struct {
    char *name;
    uint32_t type;
    uint64_t ne[2];
    bytes data;
} tensor_entry;

struct rqm_gguf_builder {
    kv_entry *kv;
    size_t n_kv;
    tensor_entry *t;
    size_t n_t;
    bytes out;
};

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) abort();
    return q;
}

static void put(bytes *b, const void *src, size_t n) {
    if (b->cap - b->n < n) {
        b->cap = (b->cap + n) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(bytes *b, uint32_t v) {
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(b, c, 4);
}

static void put_u64(bytes *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(bytes *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

rqm_gguf_builder *rqm_gguf_builder_new(void) {
    rqm_gguf_builder *b = calloc(1, sizeof *b);
    if (!b) abort();
    return b;
}

void rqm_gguf_builder_free(rqm_gguf_builder *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n_kv; i++) free(b->kv[i].key), free(b->kv[i].value.p);
    for (size_t i = 0; i < b->n_t; i++) free(b->t[i].name), free(b->t[i].data.p);
    free(b->kv), free(b->t), free(b->out.p);
    free(b);
}

void rqm_gguf_builder_kv_raw(rqm_gguf_builder *b, const char *key, uint32_t type, const void *value, size_t n) {
    kv_entry *e = NULL;
    for (size_t i = 0; i < b->n_kv && !e; i++)
        if (!strcmp(b->kv[i].key, key)) e = &b->kv[i];
    if (!e) {
        b->kv = xrealloc(b->kv, (b->n_kv + 1) * sizeof *b->kv);
        e = &b->kv[b->n_kv++];
        memset(e, 0, sizeof *e);
        e->key = strdup(key);
        if (!e->key) abort();
    }
    e->value.n = 0;
    put_u32(&e->value, type);
    put(&e->value, value, n);
}

void rqm_gguf_builder_kv_str(rqm_gguf_builder *b, const char *key, const char *value) {
    bytes v = {0};
    put_str(&v, value);
    rqm_gguf_builder_kv_raw(b, key, 8, v.p, v.n);
    free(v.p);
}

void rqm_gguf_builder_kv_u32(rqm_gguf_builder *b, const char *key, uint32_t value) {
    bytes v = {0};
    put_u32(&v, value);
    rqm_gguf_builder_kv_raw(b, key, 4, v.p, v.n);
    free(v.p);
}

void rqm_gguf_builder_kv_f32(rqm_gguf_builder *b, const char *key, float value) {
    uint32_t u;
    memcpy(&u, &value, 4);
    bytes v = {0};
    put_u32(&v, u);
    rqm_gguf_builder_kv_raw(b, key, 6, v.p, v.n);
    free(v.p);
}

void rqm_gguf_builder_tensor_raw(rqm_gguf_builder *b, const char *name, uint32_t ggml_type, size_t ne0, size_t ne1,
                                 const void *data, size_t n_bytes) {
    b->t = xrealloc(b->t, (b->n_t + 1) * sizeof *b->t);
    tensor_entry *e = &b->t[b->n_t++];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name) abort();
    e->type = ggml_type;
    e->ne[0] = ne0, e->ne[1] = ne1;
    put(&e->data, data, n_bytes);
}

void rqm_gguf_builder_tensor_f32(rqm_gguf_builder *b, const char *name, const float *data, size_t ne0, size_t ne1) {
    bytes v = {0};
    for (size_t i = 0; i < ne0 * ne1; i++) {
        uint32_t u;
        memcpy(&u, &data[i], 4);
        put_u32(&v, u);
    }
    rqm_gguf_builder_tensor_raw(b, name, 0, ne0, ne1, v.p, v.n);
    free(v.p);
}

void rqm_gguf_builder_drop_tensor(rqm_gguf_builder *b, const char *name) {
    for (size_t i = 0; i < b->n_t; i++)
        if (!strcmp(b->t[i].name, name)) {
            free(b->t[i].name), free(b->t[i].data.p);
            memmove(&b->t[i], &b->t[i + 1], (b->n_t - i - 1) * sizeof *b->t);
            b->n_t--;
            return;
        }
}

const void *rqm_gguf_builder_bytes(rqm_gguf_builder *b, size_t *len) {
    size_t align = 32; /* or general.alignment, when set as a u32 */
    for (size_t i = 0; i < b->n_kv; i++)
        if (!strcmp(b->kv[i].key, "general.alignment") && b->kv[i].value.n == 8 && b->kv[i].value.p[0] == 4) {
            uint32_t a;
            memcpy(&a, b->kv[i].value.p + 4, 4); /* little-endian hosts, as the rest of the builder */
            if (a) align = a;
        }
    bytes *o = &b->out;
    o->n = 0;
    put(o, "GGUF", 4);
    put_u32(o, 3);
    put_u64(o, b->n_t);
    put_u64(o, b->n_kv);
    for (size_t i = 0; i < b->n_kv; i++) {
        put_str(o, b->kv[i].key);
        put(o, b->kv[i].value.p, b->kv[i].value.n);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < b->n_t; i++) {
        const tensor_entry *e = &b->t[i];
        put_str(o, e->name);
        const uint32_t n_dims = e->ne[1] > 1 ? 2 : 1;
        put_u32(o, n_dims);
        for (uint32_t d = 0; d < n_dims; d++) put_u64(o, e->ne[d]);
        put_u32(o, e->type);
        put_u64(o, off);
        off += (e->data.n + align - 1) / align * align;
    }
    static const unsigned char zero[1024];
    put(o, zero, (align - o->n % align) % align);
    for (size_t i = 0; i < b->n_t; i++) {
        put(o, b->t[i].data.p, b->t[i].data.n);
        put(o, zero, (align - b->t[i].data.n % align) % align);
    }
    *len = o->n;
    return o->p;
}
