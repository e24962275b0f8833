/*
 * quant.c — quantizers: encode, decode and inner products for every type
 * (scalar reference; docs/FORMAT.md §4 has the block layouts).
 *
 * MSE (TurboQuant_mse, arXiv 2504.19874 Alg. 1, with the norm stored):
 *   n = ‖x‖, y = Π(x/n), code_j = cell of y_j in the d-dim Lloyd-Max codebook,
 *   block = [fp16 n′][codes], n′ = n, or n/‖c(code)‖ with norm correction.
 *   decode: x̂ = n′ · Πᵀ c(code).
 * PROD (TurboQuant_prod, Alg. 2): (b−1)-bit MSE stage, then the residual in
 *   the rotated domain r′ = Πx − n′·c(code) (= Π r, same norm), and
 *   block = [fp16 n′][fp16 ‖r′‖][codes][sign(S r′) as d bits];
 *   decode: x̂ = Πᵀ( n′·c(code) + ‖r′‖·α·Sᵀ s ),  α = √(π/2)/m for Gaussian S,
 *   so <y, x̂> = <Πy, n′c> + ‖r′‖·α·<SΠy, s> is the unbiased QJL estimator
 *   (S Π is again Gaussian because Π is orthogonal).
 * Baselines: f32, f16, and ggml's q8_0 / q4_0 reference quantizers
 *   (quantize_row_q8_0_ref / quantize_row_q4_0_ref semantics, bit-exact);
 *   q4_0h = q4_0 of Πx with the Hadamard rotation.
 *
 * Hot-path scratch lives on the stack (RQ_MAX_DIMS floats); nothing is
 * allocated after rq_quantizer_init.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>


rq_quant_config rq_quant_config_default(void) {
    rq_quant_config c = {.seed = 42, .law = RQ_LAW_BETA, .norm_correct = 0, .qjl = RQ_QJL_GAUSSIAN};
    return c;
}

/* ---- little-endian fp16 fields ---------------------------------------- */
static void put_f16(uint8_t *p, uint16_t h) {
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static float get_f16(const uint8_t *p) { return rq_f16_to_f32(get_u16(p)); }

static bool all_finite(const float *x, int d) {
    for (int i = 0; i < d; i++)
        if (!rq__finite(x[i])) return false;
    return true;
}

/* fp16 of a nonnegative float, or RQ_ERR_RANGE if it would be Inf. */
static rq_status f16_field(float v, uint16_t *h) {
    *h = rq_f32_to_f16(v);
    return ((*h & 0x7c00u) == 0x7c00u) ? RQ_ERR_RANGE : RQ_OK;
}

/* ---- QJL sketch -------------------------------------------------------- */
/* out = S v (m = d outputs) */
void rq__qjl_apply(const rq_quantizer *q, const float *v, float *out) {
    int d = q->n_dims;
    if (q->qjl_rot) {
        rq_rotation_forward(q->qjl_rot, v, out, 1);
    } else {
        for (int i = 0; i < d; i++) out[i] = rq__dot_ref(q->qjl_s + (size_t)i * d, v, d);
    }
}

/* out = Sᵀ s for s ∈ {±1}^m given as packed sign bits (bit 1 = +1) */
void rq__qjl_transpose(const rq_quantizer *q, const uint8_t *bits, float *out) {
    int d = q->n_dims;
    float s[RQ_MAX_DIMS];
    for (int i = 0; i < d; i++) s[i] = ((bits[i >> 3] >> (i & 7)) & 1) ? 1.0f : -1.0f;
    if (q->qjl_rot) {
        rq_rotation_inverse(q->qjl_rot, s, out, 1);
    } else {
        for (int j = 0; j < d; j++) out[j] = 0;
        for (int i = 0; i < d; i++) {
            const float *row = q->qjl_s + (size_t)i * d;
            for (int j = 0; j < d; j++) out[j] += row[j] * s[i];
        }
    }
}

/* ---- init / free ------------------------------------------------------- */
void rq_quantizer_free(rq_quantizer *q) {
    if (!q) return;
    rq_rotation_free(q->rot);
    rq_rotation_free(q->qjl_rot);
    free(q->qjl_s);
    free(q);
}

rq_status rq_quantizer_init(rq_quantizer **out, const char *type_name, int n_dims,
                            const rq_quant_config *cfg) {
    if (!out) return RQ_ERR_INVALID_ARG;
    *out = NULL;
    if (!type_name) return RQ_ERR_INVALID_ARG;
    const rq_type_info *t = rq_type_find(type_name);
    if (!t) return RQ_ERR_UNKNOWN_TYPE;
    rq_quant_config c = cfg ? *cfg : rq_quant_config_default();
    if ((c.law != RQ_LAW_BETA && c.law != RQ_LAW_GAUSS) ||
        (c.qjl != RQ_QJL_GAUSSIAN && c.qjl != RQ_QJL_STRUCTURED) ||
        (c.norm_correct != 0 && c.norm_correct != 1))
        return RQ_ERR_INVALID_ARG;
    size_t bytes = rq_type_bytes_per_vector(t, n_dims);
    if (!bytes) return RQ_ERR_DIM;

    rq_quantizer *q = calloc(1, sizeof *q);
    if (!q) return RQ_ERR_NOMEM;
    q->type = t;
    q->n_dims = n_dims;
    q->cfg = c;
    q->bytes = bytes;
    rq_status st = RQ_OK;
    if (t->rotation != RQ_ROT_NONE)
        st = rq_rotation_init(&q->rot, t->rotation, n_dims, rq_seed_derive(c.seed, RQ_STREAM_ROTATION, 0));
    if (!st && (t->family == RQ_FAMILY_MSE || t->family == RQ_FAMILY_PROD)) {
        q->mse_bits = t->family == RQ_FAMILY_MSE ? t->n_bits : t->n_bits - 1;
        if (q->mse_bits > 0) st = rq_codebook_init(&q->cb, n_dims, q->mse_bits, c.law);
    }
    if (!st && t->family == RQ_FAMILY_PROD) {
        uint64_t s = rq_seed_derive(c.seed, RQ_STREAM_QJL, 0);
        if (c.qjl == RQ_QJL_STRUCTURED) {
            /* rows of √d·Π are uniform-ish on the sphere of radius √d; α makes
             * E[α Sᵀ sign(S r)] = r/‖r‖ exact for Haar rows: α = 1/(m √d E|u₁|),
             * E|u₁| = the 1-bit exact-law centroid. */
            rq_codebook c1;
            st = rq_rotation_init(&q->qjl_rot, RQ_ROT_HADAMARD, n_dims, s);
            if (!st) st = rq_codebook_init(&c1, n_dims, 1, RQ_LAW_BETA);
            if (!st) q->qjl_alpha = (float)(1.0 / ((double)n_dims * c1.centroids_f64[1]));
        } else {
            size_t n = (size_t)n_dims * (size_t)n_dims;
            q->qjl_s = malloc(sizeof(float) * n);
            if (!q->qjl_s) {
                st = RQ_ERR_NOMEM;
            } else {
                rq_rng rng;
                rq_rng_seed(&rng, s);
                for (size_t i = 0; i < n; i++) q->qjl_s[i] = (float)rq_rng_gauss(&rng);
                q->qjl_alpha = (float)(sqrt(acos(-1.0) / 2.0) / n_dims);
            }
        }
    }
    if (st) {
        rq_quantizer_free(q);
        return st;
    }
    *out = q;
    return RQ_OK;
}

/* ---- accessors --------------------------------------------------------- */
const rq_type_info *rq_quantizer_type(const rq_quantizer *q) { return q ? q->type : NULL; }
int rq_quantizer_dims(const rq_quantizer *q) { return q ? q->n_dims : 0; }
size_t rq_quantizer_bytes_per_vector(const rq_quantizer *q) { return q ? q->bytes : 0; }
double rq_quantizer_bits_per_value(const rq_quantizer *q) {
    return q ? 8.0 * (double)q->bytes / q->n_dims : 0;
}
const rq_codebook *rq_quantizer_codebook(const rq_quantizer *q) {
    return (q && q->mse_bits > 0) ? &q->cb : NULL;
}
const rq_rotation *rq_quantizer_rotation(const rq_quantizer *q) { return q ? q->rot : NULL; }

size_t rq_quantizer_n_params(const rq_quantizer *q) {
    if (!q) return 0;
    size_t n = rq_rotation_n_params(q->rot);
    if (q->mse_bits > 0) n += (size_t)q->cb.n_levels; /* centroids (bounds derive from them) */
    if (q->qjl_s) n += (size_t)q->n_dims * (size_t)q->n_dims;
    if (q->qjl_rot) n += rq_rotation_n_params(q->qjl_rot);
    return n;
}

/* ---- ggml baselines (block of 32) -------------------------------------- */
static rq_status q8_0_encode(const float *x, uint8_t *blk) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
    uint16_t h;
    if (f16_field(dd, &h)) return RQ_ERR_RANGE;
    put_f16(blk, h);
    for (int j = 0; j < 32; j++) blk[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    return RQ_OK;
}

static void q8_0_decode(const uint8_t *blk, float *x) {
    float dd = get_f16(blk);
    for (int j = 0; j < 32; j++) x[j] = (float)(int8_t)blk[2 + j] * dd;
}

static rq_status q4_0_encode(const float *x, uint8_t *blk) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    float dd = max / -8.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
    uint16_t h = rq_f32_to_f16(dd);
    if ((h & 0x7c00u) == 0x7c00u) return RQ_ERR_RANGE;
    put_f16(blk, h);
    for (int j = 0; j < 16; j++) {
        int a = (int)(int8_t)(x[j] * id + 8.5f), b = (int)(int8_t)(x[16 + j] * id + 8.5f);
        if (a > 15) a = 15;
        if (b > 15) b = 15;
        blk[2 + j] = (uint8_t)(a | (b << 4));
    }
    return RQ_OK;
}

static void q4_0_decode(const uint8_t *blk, float *x) {
    float dd = get_f16(blk);
    for (int j = 0; j < 16; j++) {
        x[j] = (float)((blk[2 + j] & 0x0f) - 8) * dd;
        x[16 + j] = (float)((blk[2 + j] >> 4) - 8) * dd;
    }
}

/* ---- one vector ------------------------------------------------------- */
static rq_status encode_one(const rq_quantizer *q, const float *x, uint8_t *blk) {
    int d = q->n_dims;
    if (!all_finite(x, d)) return RQ_ERR_NONFINITE;
    float y[RQ_MAX_DIMS];
    uint8_t codes[RQ_MAX_DIMS];
    uint16_t h;
    switch (q->type->family) {
    case RQ_FAMILY_F32:
        for (int i = 0; i < d; i++) memcpy(blk + 4 * i, &x[i], 4); /* little-endian host */
        return RQ_OK;
    case RQ_FAMILY_F16:
        for (int i = 0; i < d; i++) {
            if (f16_field(fabsf(x[i]), &h)) return RQ_ERR_RANGE;
            put_f16(blk + 2 * i, rq_f32_to_f16(x[i]));
        }
        return RQ_OK;
    case RQ_FAMILY_Q8_0:
        for (int b = 0; b < d / 32; b++) {
            rq_status st = q8_0_encode(x + 32 * b, blk + 34 * b);
            if (st) return st;
        }
        return RQ_OK;
    case RQ_FAMILY_Q4_0: {
        const float *src = x;
        if (q->rot) {
            rq_rotation_forward(q->rot, x, y, 1);
            src = y;
        }
        for (int b = 0; b < d / 32; b++) {
            rq_status st = q4_0_encode(src + 32 * b, blk + 18 * b);
            if (st) return st;
        }
        return RQ_OK;
    }
    case RQ_FAMILY_MSE:
    case RQ_FAMILY_PROD: break;
    }

    /* rotation-based types */
    bool prod = q->type->family == RQ_FAMILY_PROD;
    size_t code_bytes = rq__packed_bytes(d, q->mse_bits);
    uint8_t *code_dst = blk + (prod ? 4 : 2);
    float norm = sqrtf(rq__sumsq_ref(x, d));
    if (f16_field(norm, &h)) return RQ_ERR_RANGE;
    if (norm == 0.0f) { /* zero vector: all-zero block decodes to zero */
        memset(blk, 0, q->bytes);
        return RQ_OK;
    }
    float inv = 1.0f / norm;
    for (int i = 0; i < d; i++) y[i] = x[i] * inv;
    rq_rotation_forward(q->rot, y, y, 1);

    float stored = norm;
    if (q->mse_bits > 0) {
        for (int i = 0; i < d; i++) codes[i] = (uint8_t)rq_codebook_index(&q->cb, y[i]);
        rq__pack_ref(codes, d, q->mse_bits, code_dst);
        if (q->cfg.norm_correct && !prod) {
            float c[RQ_MAX_DIMS];
            for (int i = 0; i < d; i++) c[i] = q->cb.centroids[codes[i]];
            stored = norm / sqrtf(rq__sumsq_ref(c, d));
        }
    }
    if (f16_field(stored, &h)) return RQ_ERR_RANGE;
    put_f16(blk, h);
    if (!prod) return RQ_OK;

    /* residual r′ = n·y − n′·c(code), with n′ the stored fp16 norm */
    float n16 = rq_f16_to_f32(h), r[RQ_MAX_DIMS], sr[RQ_MAX_DIMS];
    for (int i = 0; i < d; i++)
        r[i] = norm * y[i] - (q->mse_bits > 0 ? n16 * q->cb.centroids[codes[i]] : 0.0f);
    float rnorm = sqrtf(rq__sumsq_ref(r, d));
    if (f16_field(rnorm, &h)) return RQ_ERR_RANGE;
    put_f16(blk + 2, h);
    rq__qjl_apply(q, r, sr);
    uint8_t *sign_dst = code_dst + code_bytes;
    memset(sign_dst, 0, rq__packed_bytes(d, 1));
    for (int i = 0; i < d; i++)
        if (sr[i] >= 0.0f) sign_dst[i >> 3] |= (uint8_t)(1u << (i & 7));
    return RQ_OK;
}

/* Decoded vector in the rotated domain (rotation types only). */
void rq__decode_rotated(const rq_quantizer *q, const uint8_t *blk, float *xr) {
    int d = q->n_dims;
    bool prod = q->type->family == RQ_FAMILY_PROD;
    float n = get_f16(blk);
    if (q->mse_bits > 0) {
        uint8_t codes[RQ_MAX_DIMS];
        rq__unpack_ref(blk + (prod ? 4 : 2), d, q->mse_bits, codes);
        for (int i = 0; i < d; i++) xr[i] = n * q->cb.centroids[codes[i]];
    } else {
        for (int i = 0; i < d; i++) xr[i] = 0;
    }
    if (prod) {
        float st[RQ_MAX_DIMS];
        float g = get_f16(blk + 2) * q->qjl_alpha;
        rq__qjl_transpose(q, blk + 4 + rq__packed_bytes(d, q->mse_bits), st);
        for (int i = 0; i < d; i++) xr[i] += g * st[i];
    }
}

static void decode_one(const rq_quantizer *q, const uint8_t *blk, float *x) {
    int d = q->n_dims;
    switch (q->type->family) {
    case RQ_FAMILY_F32:
        for (int i = 0; i < d; i++) memcpy(&x[i], blk + 4 * i, 4);
        return;
    case RQ_FAMILY_F16:
        for (int i = 0; i < d; i++) x[i] = get_f16(blk + 2 * i);
        return;
    case RQ_FAMILY_Q8_0:
        for (int b = 0; b < d / 32; b++) q8_0_decode(blk + 34 * b, x + 32 * b);
        return;
    case RQ_FAMILY_Q4_0:
        for (int b = 0; b < d / 32; b++) q4_0_decode(blk + 18 * b, x + 32 * b);
        if (q->rot) rq_rotation_inverse(q->rot, x, x, 1);
        return;
    case RQ_FAMILY_MSE:
    case RQ_FAMILY_PROD:
        rq__decode_rotated(q, blk, x);
        rq_rotation_inverse(q->rot, x, x, 1);
        return;
    }
}

/* ---- public batch API -------------------------------------------------- */
rq_status rq_quantizer_encode(const rq_quantizer *q, const float *x, void *blocks, size_t n_vec) {
    if (!q || (n_vec && (!x || !blocks))) return RQ_ERR_INVALID_ARG;
    uint8_t *out = blocks;
    for (size_t v = 0; v < n_vec; v++) {
        rq_status st = encode_one(q, x + v * (size_t)q->n_dims, out + v * q->bytes);
        if (st) return st;
    }
    return RQ_OK;
}

rq_status rq_quantizer_decode(const rq_quantizer *q, const void *blocks, float *x, size_t n_vec) {
    if (!q || (n_vec && (!x || !blocks))) return RQ_ERR_INVALID_ARG;
    const uint8_t *in = blocks;
    for (size_t v = 0; v < n_vec; v++) decode_one(q, in + v * q->bytes, x + v * (size_t)q->n_dims);
    return RQ_OK;
}

rq_status rq_quantizer_dot(const rq_quantizer *q, const float *y, const void *blocks,
                           size_t n_vec, float *out) {
    if (!q || (n_vec && (!y || !blocks || !out))) return RQ_ERR_INVALID_ARG;
    int d = q->n_dims;
    if (!all_finite(y, d)) return RQ_ERR_NONFINITE;
    const uint8_t *in = blocks;
    float yr[RQ_MAX_DIMS], xr[RQ_MAX_DIMS];
    bool rotated = q->rot != NULL;
    if (rotated) rq_rotation_forward(q->rot, y, yr, 1); /* rotate the query once */
    for (size_t v = 0; v < n_vec; v++) {
        const uint8_t *blk = in + v * q->bytes;
        if (q->type->family == RQ_FAMILY_MSE || q->type->family == RQ_FAMILY_PROD) {
            rq__decode_rotated(q, blk, xr); /* <y, x̂> = <Πy, Πx̂> */
        } else if (q->type->family == RQ_FAMILY_Q4_0) {
            for (int b = 0; b < d / 32; b++) q4_0_decode(blk + 18 * b, xr + 32 * b);
        } else {
            decode_one(q, blk, xr);
        }
        out[v] = rq__dot_ref(rotated ? yr : y, xr, d);
    }
    return RQ_OK;
}
