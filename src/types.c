/*
 * types.c — the type traits table: one row per KV type (docs/FORMAT.md §4),
 * one layout row per block kind (src/blocks.h), and the reference codecs
 * of the value blocks (f32, f16, q8_0, q4_0), the executable spec the SIMD
 * kernels reproduce bit for bit.
 *
 * A type row is the public rq_type_info (name, family, rotation, bits) plus
 * its block kind and code width; everything else — bytes for any d, field
 * offsets, which dimensions it serves, how to encode and decode it — is read
 * from its layout row and its rotation's ops row (rotation.c), never from a
 * switch over families.
 *
 * Names follow the community's: turbo{b} (randomized Hadamard + Lloyd-Max,
 * the llama.cpp forks' "turbo"), dense{b} (Haar matrix, the TurboQuant
 * paper), rotor{b} (Cl(3,0) rotors, RotorQuant), planar{b}, iso{b}, b = 1..5;
 * suffix "p" = the QJL ("prod") variant with b−1 MSE bits + 1 QJL bit per
 * value (turbo3p = 2-bit codes + 1-bit signs, the seed's convention), b = 1..4
 * only: there is deliberately no `5p` (the 5-bit MSE rows serve keys that
 * need more than 4 bits — on real models keys need more bits than values;
 * the QJL types keep their 1..4 range). Baselines in
 * llama.cpp's exact block layouts: f32, f16, q8_0, q4_0, and q4_0h = q4_0 after
 * the randomized Hadamard rotation (what upstream llama.cpp ships).
 * tcq{2..5}: turbo's rotation, then a k-bit tail-biting trellis code
 * (src/tcq.h) in place of the scalar Lloyd-Max code. Suffix "n8"
 * (turbo{1..5}n8, tcq{2..5}n8): the same codes with a 1-byte log-norm head
 * in place of the fp16 norm (block kinds MSE_N8 / TCQ_N8, src/norm8.c),
 * meant for values; the budget picks them for values. Suffix "k8"
 * (turbo{1..5}k8, tcq{2..5}k8): the same with the key table (MSE_K8 /
 * TCQ_K8, src/normk8.c, 2^-2..2^2): keys of a centred cache divided by
 * its per-head scale σ (src/kvcache.c).
 */
#include "internal.h"
#include "tcq.h"

#include <math.h>

/* ---- little-endian fp16 fields ----------------------------------------- */
static inline void put_u16(uint8_t *p, uint16_t h) {
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}
static inline uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline float get_f16(const uint8_t *p) { return rq_f16_to_f32(get_u16(p)); }
static inline bool f16_finite(const uint8_t *p) { return (get_u16(p) & 0x7c00u) != 0x7c00u; }

/* fp16 of v, or RQ_ERR_RANGE if it would be Inf (or v is NaN). */
static rq_status f16_field(float v, uint16_t *h) {
    *h = rq_f32_to_f16(v);
    return ((*h & 0x7c00u) == 0x7c00u) ? RQ_ERR_RANGE : RQ_OK;
}

/* ---- f32 ----------------------------------------------------------------- */
static size_t f32_bytes(int d, int bits) { return (void)bits, 4 * (size_t)d; }

static rq_status f32_encode_ref(const float *x, int n, uint8_t *out) {
    memcpy(out, x, sizeof(float) * (size_t)n); /* little-endian host */
    return RQ_OK;
}

static void f32_decode_ref(const uint8_t *in, int n, float *x) { memcpy(x, in, sizeof(float) * (size_t)n); }

static bool f32_fields_ok(const uint8_t *blk, int d) {
    for (int i = 0; i < d; i++) {
        float f;
        memcpy(&f, blk + 4 * (size_t)i, 4);
        if (!rq__finite(f)) return false;
    }
    return true;
}

/* ---- f16 ----------------------------------------------------------------- */
static size_t f16_bytes(int d, int bits) { return (void)bits, 2 * (size_t)d; }

static rq_status f16_encode_ref(const float *x, int n, uint8_t *out) {
    uint16_t h;
    for (int i = 0; i < n; i++) {
        if (f16_field(fabsf(x[i]), &h)) return RQ_ERR_RANGE;
        put_u16(out + 2 * i, rq_f32_to_f16(x[i]));
    }
    return RQ_OK;
}

static void f16_decode_ref(const uint8_t *in, int n, float *x) {
    for (int i = 0; i < n; i++) x[i] = get_f16(in + 2 * i);
}

static bool f16_fields_ok(const uint8_t *blk, int d) {
    for (int i = 0; i < d; i++)
        if (!f16_finite(blk + 2 * (size_t)i)) return false;
    return true;
}

/* ---- q8_0 / q4_0 (ggml's reference quantizers, bit-exact) ------------------ */
static size_t q8_0_bytes(int d, int bits) { return (void)bits, (size_t)d / RQ_QK * sizeof(rq_block_q8_0); }
static size_t q4_0_bytes(int d, int bits) { return (void)bits, (size_t)d / RQ_QK * sizeof(rq_block_q4_0); }

/* float → int8 as ggml's (int8_t) cast for every value that occurs: in
 * range, truncation toward zero. A non-finite value (x·id with id = ∞,
 * when δ underflows: blocks with max|x| < ~2^-125, whose fp16 scale is 0
 * anyway) gives 0 — what x86 gcc code does; defined here because the C cast
 * is undefined there and compilers differ. */
static int to_int8(float v) { return rq__finite(v) ? (int)(int8_t)v : 0; }

/* ggml's quantize_row_q8_0_ref: per 32 values δ = max|x|/127, q = round(x/δ)
 * (roundf: half away from zero), computed as x·(1/δ). */
static rq_status q8_0_encode_ref(const float *x, int n, uint8_t *out) {
    for (int b = 0; b < n / RQ_QK; b++, x += RQ_QK, out += sizeof(rq_block_q8_0)) {
        float amax = 0;
        for (int j = 0; j < RQ_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
        uint16_t h;
        if (f16_field(dd, &h)) return RQ_ERR_RANGE;
        put_u16(out + offsetof(rq_block_q8_0, d), h);
        for (int j = 0; j < RQ_QK; j++) out[offsetof(rq_block_q8_0, qs) + j] = (uint8_t)to_int8(roundf(x[j] * id));
    }
    return RQ_OK;
}

static void q8_0_decode_ref(const uint8_t *in, int n, float *x) {
    for (int b = 0; b < n / RQ_QK; b++, in += sizeof(rq_block_q8_0), x += RQ_QK) {
        float dd = get_f16(in + offsetof(rq_block_q8_0, d));
        for (int j = 0; j < RQ_QK; j++) x[j] = (float)(int8_t)in[offsetof(rq_block_q8_0, qs) + j] * dd;
    }
}

/* ggml's quantize_row_q4_0_ref: δ = x_max/−8 with x_max the value of largest
 * magnitude (the first on ties), q = min(15, trunc(x·(1/δ) + 8.5)). */
static rq_status q4_0_encode_ref(const float *x, int n, uint8_t *out) {
    const size_t qs = offsetof(rq_block_q4_0, qs);
    for (int b = 0; b < n / RQ_QK; b++, x += RQ_QK, out += sizeof(rq_block_q4_0)) {
        float amax = 0, max = 0;
        for (int j = 0; j < RQ_QK; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        float dd = max / -8.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
        uint16_t h = rq_f32_to_f16(dd);
        if ((h & 0x7c00u) == 0x7c00u) return RQ_ERR_RANGE;
        put_u16(out + offsetof(rq_block_q4_0, d), h);
        for (int j = 0; j < RQ_QK / 2; j++) {
            int lo = to_int8(x[j] * id + 8.5f), hi = to_int8(x[RQ_QK / 2 + j] * id + 8.5f);
            if (lo > 15) lo = 15;
            if (hi > 15) hi = 15;
            out[qs + j] = (uint8_t)(lo | (hi << 4));
        }
    }
    return RQ_OK;
}

static void q4_0_decode_ref(const uint8_t *in, int n, float *x) {
    const size_t qs = offsetof(rq_block_q4_0, qs);
    for (int b = 0; b < n / RQ_QK; b++, in += sizeof(rq_block_q4_0), x += RQ_QK) {
        float dd = get_f16(in + offsetof(rq_block_q4_0, d));
        for (int j = 0; j < RQ_QK / 2; j++) {
            x[j] = (float)((in[qs + j] & 0x0f) - 8) * dd;
            x[RQ_QK / 2 + j] = (float)((in[qs + j] >> 4) - 8) * dd;
        }
    }
}

/* scale fields every `stride` bytes from offset 0 */
static bool scales_ok(const uint8_t *blk, int d, size_t stride) {
    for (int b = 0; b < d / RQ_QK; b++)
        if (!f16_finite(blk + (size_t)b * stride)) return false;
    return true;
}
static bool q8_0_fields_ok(const uint8_t *blk, int d) { return scales_ok(blk, d, sizeof(rq_block_q8_0)); }
static bool q4_0_fields_ok(const uint8_t *blk, int d) { return scales_ok(blk, d, sizeof(rq_block_q4_0)); }

/* ---- MSE / PROD (encode and decode pipelines: quant.c) --------------------- */
static size_t mse_bytes(int d, int bits) { return RQ_MSE_CODES_OFF + rq__packed_bytes(d, bits); }
static size_t prod_bytes(int d, int bits) {
    return RQ_PROD_CODES_OFF + rq__packed_bytes(d, bits) + rq__packed_bytes(d, 1);
}
static bool mse_fields_ok(const uint8_t *blk, int d) { return (void)d, f16_finite(blk); }
/* TCQ (encode and decode: quant.c, tcq.c): whole bytes of stream, d ≤ RQ_TCQ_MAX_T */
static size_t tcq_bytes(int d, int bits) {
    if (d < 8 || d % 8 || d > RQ_TCQ_MAX_T || bits < RQ_TCQ_MIN_BITS || bits > RQ_TCQ_MAX_BITS) return 0;
    return RQ_TCQ_CODES_OFF + (size_t)d * (size_t)bits / 8;
}
/* n8 kinds: the fp16 head replaced by one code byte; every byte value is a
 * valid head (and every code/stream bit pattern valid codes) */
static size_t mse_n8_bytes(int d, int bits) { return mse_bytes(d, bits) - RQ_MSE_CODES_OFF + RQ_N8_CODES_OFF; }
static size_t tcq_n8_bytes(int d, int bits) {
    size_t b = tcq_bytes(d, bits);
    return b ? b - RQ_TCQ_CODES_OFF + RQ_N8_CODES_OFF : 0;
}
static bool n8_fields_ok(const uint8_t *blk, int d) { return (void)blk, (void)d, true; }

const char *rq__norm_table_range(const float *table) {
    return table == rq__norm8 ? "2^-6 .. 2^10 = 1024" : "2^-2 .. 2^2 = 4 (k8: relative to the cache's key scale)";
}

double rq__norm_table_limit(const float *table) { return table == rq__norm8 ? rq__norm8_limit : rq__normk8_limit; }

rq_status rq__norm_encode(const float *table, float n, uint8_t *code) {
    if (!rq__finite(n) || !((double)n <= rq__norm_table_limit(table))) return RQ_ERR_RANGE;
    if (n <= 0.0f) return *code = 0, RQ_OK;
    if (n <= table[1]) return *code = 1, RQ_OK; /* the clamp: 0 < n < table[1] → 1 */
    if (n >= table[255]) return *code = 255, RQ_OK;
    int lo = 1, hi = 255; /* table[lo] < n ≤ table[hi] */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (table[mid] < n) lo = mid;
        else hi = mid;
    }
    /* float differences are exact in double */
    *code = (uint8_t)((double)n - (double)table[lo] <= (double)table[hi] - (double)n ? lo : hi);
    return RQ_OK;
}

static bool prod_fields_ok(const uint8_t *blk, int d) {
    return (void)d, f16_finite(blk) && f16_finite(blk + RQ_PROD_RNORM_OFF);
}

const rq_block_layout rq__blocks[RQ_BLOCK_COUNT] = {
    [RQ_BLOCK_F32] = {.name = "f32", .in_place = true, .bytes = f32_bytes, .fields_ok = f32_fields_ok,
                      .encode_ref = f32_encode_ref, .decode_ref = f32_decode_ref},
    [RQ_BLOCK_F16] = {.name = "f16", .bytes = f16_bytes, .fields_ok = f16_fields_ok, .encode_ref = f16_encode_ref,
                      .decode_ref = f16_decode_ref},
    [RQ_BLOCK_Q8_0] = {.name = "q8_0", .bytes = q8_0_bytes, .fields_ok = q8_0_fields_ok,
                       .encode_ref = q8_0_encode_ref, .decode_ref = q8_0_decode_ref},
    [RQ_BLOCK_Q4_0] = {.name = "q4_0", .bytes = q4_0_bytes, .fields_ok = q4_0_fields_ok,
                       .encode_ref = q4_0_encode_ref, .decode_ref = q4_0_decode_ref},
    [RQ_BLOCK_MSE] = {.name = "mse", .codes = true, .codes_off = RQ_MSE_CODES_OFF, .bytes = mse_bytes,
                      .fields_ok = mse_fields_ok},
    [RQ_BLOCK_PROD] = {.name = "prod", .codes = true, .signs = true, .codes_off = RQ_PROD_CODES_OFF, .bytes = prod_bytes,
                       .fields_ok = prod_fields_ok},
    [RQ_BLOCK_TCQ] = {.name = "tcq", .codes = true, .trellis = true, .codes_off = RQ_TCQ_CODES_OFF, .bytes = tcq_bytes,
                      .fields_ok = mse_fields_ok},
    [RQ_BLOCK_MSE_N8] = {.name = "mse_n8", .codes = true, .norm_table = rq__norm8, .codes_off = RQ_N8_CODES_OFF,
                         .bytes = mse_n8_bytes, .fields_ok = n8_fields_ok},
    [RQ_BLOCK_TCQ_N8] = {.name = "tcq_n8", .codes = true, .trellis = true, .norm_table = rq__norm8, .codes_off = RQ_N8_CODES_OFF,
                         .bytes = tcq_n8_bytes, .fields_ok = n8_fields_ok},
    /* k8: the n8 layouts with the key table (keys / the cache's per-head σ) */
    [RQ_BLOCK_MSE_K8] = {.name = "mse_k8", .codes = true, .norm_table = rq__normk8, .codes_off = RQ_N8_CODES_OFF,
                         .bytes = mse_n8_bytes, .fields_ok = n8_fields_ok},
    [RQ_BLOCK_TCQ_K8] = {.name = "tcq_k8", .codes = true, .trellis = true, .norm_table = rq__normk8,
                         .codes_off = RQ_N8_CODES_OFF, .bytes = tcq_n8_bytes, .fields_ok = n8_fields_ok},
};

/* ---- the type rows ---------------------------------------------------------- */
#define ROW(name, fam, block, rot, bits, code_bits) \
    {{name, fam, rot, bits, 0, (block) == RQ_BLOCK_MSE_K8 || (block) == RQ_BLOCK_TCQ_K8}, block, code_bits}
#define ROW32(name, fam, block, rot, bits) {{name, fam, rot, bits, RQ_QK, 0}, block, 0}
/* MSE rows b = 1..5 (b-bit codes), QJL rows b = 1..4 ((b−1)-bit codes + signs; no "5p", see above) */
#define ROWS(prefix, rot)                                                                                 \
    ROW(prefix "1", RQ_FAMILY_MSE, RQ_BLOCK_MSE, rot, 1, 1), ROW(prefix "2", RQ_FAMILY_MSE, RQ_BLOCK_MSE, rot, 2, 2), \
    ROW(prefix "3", RQ_FAMILY_MSE, RQ_BLOCK_MSE, rot, 3, 3), ROW(prefix "4", RQ_FAMILY_MSE, RQ_BLOCK_MSE, rot, 4, 4), \
    ROW(prefix "5", RQ_FAMILY_MSE, RQ_BLOCK_MSE, rot, 5, 5),                                                          \
    ROW(prefix "1p", RQ_FAMILY_PROD, RQ_BLOCK_PROD, rot, 1, 0), ROW(prefix "2p", RQ_FAMILY_PROD, RQ_BLOCK_PROD, rot, 2, 1), \
    ROW(prefix "3p", RQ_FAMILY_PROD, RQ_BLOCK_PROD, rot, 3, 2), ROW(prefix "4p", RQ_FAMILY_PROD, RQ_BLOCK_PROD, rot, 4, 3)

static const rq_type_traits TYPES[] = {
    ROW("f32", RQ_FAMILY_F32, RQ_BLOCK_F32, RQ_ROT_NONE, 32, 0),
    ROW("f16", RQ_FAMILY_F16, RQ_BLOCK_F16, RQ_ROT_NONE, 16, 0),
    ROW32("q8_0", RQ_FAMILY_Q8_0, RQ_BLOCK_Q8_0, RQ_ROT_NONE, 8),
    ROW32("q4_0", RQ_FAMILY_Q4_0, RQ_BLOCK_Q4_0, RQ_ROT_NONE, 4),
    ROW32("q4_0h", RQ_FAMILY_Q4_0, RQ_BLOCK_Q4_0, RQ_ROT_HADAMARD, 4),
    ROWS("turbo", RQ_ROT_HADAMARD),
    ROWS("dense", RQ_ROT_DENSE),
    ROWS("rotor", RQ_ROT_ROTOR),
    ROWS("planar", RQ_ROT_PLANAR),
    ROWS("iso", RQ_ROT_ISO),
    /* TCQ after turbo's rotation: k = 2..5 bits per value (src/tcq.h) */
    ROW("tcq2", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ, RQ_ROT_HADAMARD, 2, 2),
    ROW("tcq3", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ, RQ_ROT_HADAMARD, 3, 3),
    ROW("tcq4", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ, RQ_ROT_HADAMARD, 4, 4),
    ROW("tcq5", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ, RQ_ROT_HADAMARD, 5, 5),
    /* n8: the same codes with the 1-byte log norm head (values; no QJL n8) */
    ROW("turbo1n8", RQ_FAMILY_MSE, RQ_BLOCK_MSE_N8, RQ_ROT_HADAMARD, 1, 1),
    ROW("turbo2n8", RQ_FAMILY_MSE, RQ_BLOCK_MSE_N8, RQ_ROT_HADAMARD, 2, 2),
    ROW("turbo3n8", RQ_FAMILY_MSE, RQ_BLOCK_MSE_N8, RQ_ROT_HADAMARD, 3, 3),
    ROW("turbo4n8", RQ_FAMILY_MSE, RQ_BLOCK_MSE_N8, RQ_ROT_HADAMARD, 4, 4),
    ROW("turbo5n8", RQ_FAMILY_MSE, RQ_BLOCK_MSE_N8, RQ_ROT_HADAMARD, 5, 5),
    ROW("tcq2n8", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ_N8, RQ_ROT_HADAMARD, 2, 2),
    ROW("tcq3n8", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ_N8, RQ_ROT_HADAMARD, 3, 3),
    ROW("tcq4n8", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ_N8, RQ_ROT_HADAMARD, 4, 4),
    ROW("tcq5n8", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ_N8, RQ_ROT_HADAMARD, 5, 5),
    /* k8: the same codes with the 1-byte key norm head, 2^-2..2^2 (keys of a
     * cache with centre_keys, divided by its per-head scale σ) */
    ROW("turbo1k8", RQ_FAMILY_MSE, RQ_BLOCK_MSE_K8, RQ_ROT_HADAMARD, 1, 1),
    ROW("turbo2k8", RQ_FAMILY_MSE, RQ_BLOCK_MSE_K8, RQ_ROT_HADAMARD, 2, 2),
    ROW("turbo3k8", RQ_FAMILY_MSE, RQ_BLOCK_MSE_K8, RQ_ROT_HADAMARD, 3, 3),
    ROW("turbo4k8", RQ_FAMILY_MSE, RQ_BLOCK_MSE_K8, RQ_ROT_HADAMARD, 4, 4),
    ROW("turbo5k8", RQ_FAMILY_MSE, RQ_BLOCK_MSE_K8, RQ_ROT_HADAMARD, 5, 5),
    ROW("tcq2k8", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ_K8, RQ_ROT_HADAMARD, 2, 2),
    ROW("tcq3k8", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ_K8, RQ_ROT_HADAMARD, 3, 3),
    ROW("tcq4k8", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ_K8, RQ_ROT_HADAMARD, 4, 4),
    ROW("tcq5k8", RQ_FAMILY_TCQ, RQ_BLOCK_TCQ_K8, RQ_ROT_HADAMARD, 5, 5),
};
#undef ROWS
#undef ROW32
#undef ROW

int rq_type_count(void) { return (int)(sizeof TYPES / sizeof TYPES[0]); }

const rq_type_info *rq_type_at(int i) {
    return (i >= 0 && i < rq_type_count()) ? &TYPES[i].info : NULL;
}

const rq_type_info *rq_type_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < rq_type_count(); i++)
        if (strcmp(TYPES[i].info.name, name) == 0) return &TYPES[i].info;
    return NULL;
}

const rq_type_traits *rq__type_traits(const rq_type_info *t) {
    if (!t) return NULL;
    for (int i = 0; i < rq_type_count(); i++) /* a row of ours, or a copy of one */
        if (t == &TYPES[i].info) return &TYPES[i];
    const rq_type_info *row = rq_type_find(t->name);
    return row ? (const rq_type_traits *)(const void *)row : NULL; /* info is the first member */
}

size_t rq_type_bytes_per_vector(const rq_type_info *t, int d) {
    const rq_type_traits *tr = rq__type_traits(t);
    if (!tr || d < RQ_MIN_DIMS || d > RQ_MAX_DIMS) return 0;
    if (!rq__rot_ops(tr->info.rotation)->dims_ok(d)) return 0;
    const rq_block_layout *L = &rq__blocks[tr->block];
    if (tr->info.block_values && d % tr->info.block_values) return 0;
    return L->bytes(d, tr->code_bits);
}
