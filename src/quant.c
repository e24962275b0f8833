/*
 * quant.c — quantizers: encode, decode and inner products for every type
 * (docs/FORMAT.md §5 has the block layouts).
 *
 * The pipelines below are composed once from a kernel table
 * (src/simd/kernels.h) and the type's traits row (types.c): the scalar
 * reference kernels defined here are the executable spec; the AVX2 /
 * AVX-512 tables (src/simd/) reproduce them bit for bit, and may take a
 * whole MSE batch at once (encode_mse). The table is the process's SIMD
 * level (rq__kernels()). Value blocks (f32, f16, q8_0, q4_0) go through
 * their block kind's codec; code blocks (MSE, PROD) through the pipelines
 * below, with the offsets of their layout row.
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
 *   (quantize_row_q8_0_ref / quantize_row_q4_0_ref semantics, bit-exact;
 *   types.c); q4_0h = q4_0 of Πx with the Hadamard rotation.
 * Decoding checks every block's fp16 (f32) fields first: the encoder never
 * writes a NaN or Inf there, so such a block is malformed (RQ_ERR_FORMAT).
 *
 * Hot-path scratch lives on the stack (RQ_MAX_DIMS floats); nothing is
 * allocated after rq_quantizer_init.
 */
#include "internal.h"
#include "simd/kernels.h"
#include "tcq.h"

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

/* fp16 of a nonnegative float, or RQ_ERR_RANGE if it would be Inf. */
static rq_status f16_field(float v, uint16_t *h) {
    *h = rq_f32_to_f16(v);
    return ((*h & 0x7c00u) == 0x7c00u) ? RQ_ERR_RANGE : RQ_OK;
}

/* The head of an MSE/TCQ block: v (the norm n′, TCQ: the scale) as fp16,
 * or for the 1-byte kinds as its log code in the layout's table
 * (rq__norm_encode: nearest step, 0 < v < table[1] clamped to code 1); with
 * clamps (rq__quantizer_encode_clamp) v past the limit is code 255, and
 * clamps[0] / [1] count the low / high clamps; RQ_ERR_RANGE when it does not fit. */
static rq_status put_head(const rq_block_layout *L, uint8_t *blk, float v, uint64_t *clamps) {
    if (L->norm_table && clamps) { /* the cache's k8 keys: out of range is clamped to code 1 / 255, counted */
        if (rq__finite(v) && (double)v > rq__norm_table_limit(L->norm_table)) return blk[0] = 255, clamps[1]++, RQ_OK;
        if (v > 0.0f && v < L->norm_table[1]) clamps[0]++;
    }
    if (L->norm_table) return rq__norm_encode(L->norm_table, v, blk);
    uint16_t h;
    if (f16_field(v, &h)) return RQ_ERR_RANGE;
    put_f16(blk, h);
    return RQ_OK;
}

/* ---- QJL sketch -------------------------------------------------------- */
/* out = S v (m = d outputs), at the process's SIMD level (exact at every level) */
void rq__qjl_apply(const rq_quantizer *q, const float *v, float *out) {
    const rq_kernels *k = rq__kernels();
    if (q->qjl_rot) rq__rotate(k, q->qjl_rot, v, 1.0f, out); /* v·1 = v exactly */
    else k->matvec_rows(q->qjl_s, q->n_dims, q->n_dims, v, out);
}

/* out = Sᵀ v for a float vector v: out_j = Σ_i S_ij v_i, i increasing */
void rq__qjl_transpose_f(const rq_quantizer *q, const float *v, float *out) {
    const rq_kernels *k = rq__kernels();
    if (q->qjl_rot) rq__rotate_inv(k, q->qjl_rot, v, out);
    else k->matvec_cols(q->qjl_s, q->n_dims, v, out);
}

/* out = Sᵀ s for s ∈ {±1}^m given as packed sign bits (bit 1 = +1) */
void rq__qjl_transpose(const rq_quantizer *q, const uint8_t *bits, float *out) {
    int d = q->n_dims;
    float s[RQ_MAX_DIMS];
    for (int i = 0; i < d; i++) s[i] = ((bits[i >> 3] >> (i & 7)) & 1) ? 1.0f : -1.0f;
    rq__qjl_transpose_f(q, s, out);
}

/* ---- init / free ------------------------------------------------------- */
void rq_quantizer_free(rq_quantizer *q) {
    if (!q) return;
    rq_rotation_free(q->rot);
    rq_rotation_free(q->qjl_rot);
    free(q->qjl_s);
    free(q->tcq_lut);
    free(q);
}

rq_status rq_quantizer_init(rq_quantizer **out, const char *type_name, int n_dims,
                            const rq_quant_config *cfg) {
    if (!out) return rq__fail(RQ_ERR_INVALID_ARG, "rq_quantizer_init: out is NULL");
    *out = NULL;
    if (!type_name) return rq__fail(RQ_ERR_INVALID_ARG, "rq_quantizer_init: type_name is NULL");
    const rq_type_info *t = rq_type_find(type_name);
    if (!t) return rq__fail(RQ_ERR_UNKNOWN_TYPE, "rq_quantizer_init: unknown type \"%s\"", type_name);
    rq_quant_config c = cfg ? *cfg : rq_quant_config_default();
    if ((c.law != RQ_LAW_BETA && c.law != RQ_LAW_GAUSS) ||
        (c.qjl != RQ_QJL_GAUSSIAN && c.qjl != RQ_QJL_STRUCTURED) ||
        (c.norm_correct != 0 && c.norm_correct != 1))
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_quantizer_init: cfg law = %d, qjl = %d, norm_correct = %d (one out of range)",
                        (int)c.law, (int)c.qjl, c.norm_correct);
    size_t bytes = rq_type_bytes_per_vector(t, n_dims);
    if (!bytes) return rq__fail(RQ_ERR_DIM, "rq_quantizer_init: %s does not support n_dims = %d", type_name, n_dims);

    rq_quantizer *q = calloc(1, sizeof *q);
    if (!q) return RQ_ERR_NOMEM;
    q->type = t;
    q->traits = rq__type_traits(t);
    q->n_dims = n_dims;
    q->cfg = c;
    q->bytes = bytes;
    rq_status st = RQ_OK;
    if (t->rotation != RQ_ROT_NONE)
        st = rq_rotation_init(&q->rot, t->rotation, n_dims, rq_seed_derive(c.seed, RQ_STREAM_ROTATION, 0));
    const rq_block_layout *L = &rq__blocks[q->traits->block];
    q->mse_bits = q->traits->code_bits;
    if (!st && L->trellis) { /* the unit-variance LUT at the scale of a rotated unit vector's coordinates */
        q->tcq_lut = malloc(sizeof(float) * RQ_TCQ_STATES);
        if (!q->tcq_lut) st = RQ_ERR_NOMEM;
        else
            for (int s = 0; s < RQ_TCQ_STATES; s++)
                q->tcq_lut[s] = (float)((double)rq__tcq_lut[q->mse_bits - RQ_TCQ_MIN_BITS][s] / sqrt((double)n_dims));
    } else if (!st && q->mse_bits > 0) {
        st = rq_codebook_init(&q->cb, n_dims, q->mse_bits, c.law);
    }
    if (!st && L->signs) {
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
    return (q && q->mse_bits > 0 && !q->tcq_lut) ? &q->cb : NULL;
}
const rq_rotation *rq_quantizer_rotation(const rq_quantizer *q) { return q ? q->rot : NULL; }

size_t rq_quantizer_n_params(const rq_quantizer *q) {
    if (!q) return 0;
    size_t n = rq_rotation_n_params(q->rot);
    if (q->tcq_lut) n += RQ_TCQ_STATES; /* the LUT */
    else if (q->mse_bits > 0) n += (size_t)q->cb.n_levels; /* centroids (bounds derive from them) */
    if (q->qjl_s) n += (size_t)q->n_dims * (size_t)q->n_dims;
    if (q->qjl_rot) n += rq_rotation_n_params(q->qjl_rot);
    return n;
}

/* ---- reference kernels (the executable spec of simd/kernels.h) -------- */
bool rq__all_finite_ref(const float *x, int n) {
    for (int i = 0; i < n; i++)
        if (!rq__finite(x[i])) return false;
    return true;
}

float rq__sumsq_finite_ref(const float *x, int n, bool *finite) {
    *finite = rq__all_finite_ref(x, n);
    return rq__sumsq_ref(x, n);
}

void rq__scale_ref(const float *x, float s, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = x[i] * s;
}

void rq__matvec_cols_ref(const float *mt, int n, const float *v, float *y) {
    for (int i = 0; i < n; i++) y[i] = 0;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) y[i] += mt[(size_t)j * n + i] * v[j];
}

void rq__matvec_rows_ref(const float *m, int n_rows, int n, const float *v, float *out) {
    for (int i = 0; i < n_rows; i++) out[i] = rq__dot_ref(m + (size_t)i * n, v, n);
}

void rq__matvec_rows_k_ref(const float *m, int n_rows, int n, const float *v, int k, float *out) {
    for (int t = 0; t < k; t++) rq__matvec_rows_ref(m, n_rows, n, v + (size_t)t * n, out + (size_t)t * n_rows);
}

/* cell of y: the number of bounds strictly below y (rq_codebook_index) */
void rq__quantize_pack_ref(const float *y, int n, int bits, const float *bounds, uint8_t *out) {
    uint8_t codes[RQ_MAX_DIMS];
    int n_bounds = (1 << bits) - 1;
    for (int i = 0; i < n; i++) {
        int c = 0;
        for (int k = 0; k < n_bounds; k++) c += bounds[k] < y[i];
        codes[i] = (uint8_t)c;
    }
    rq__pack_ref(codes, n, bits, out);
}

void rq__unpack_scale_ref(const uint8_t *in, int n, int bits, const float *cent, float s, float *y) {
    uint8_t codes[RQ_MAX_DIMS];
    rq__unpack_ref(in, n, bits, codes);
    for (int i = 0; i < n; i++) y[i] = s * cent[codes[i]];
}

void rq__pack_signs_ref(const float *v, int n, uint8_t *out) {
    memset(out, 0, rq__packed_bytes(n, 1));
    for (int i = 0; i < n; i++)
        if (v[i] >= 0.0f) out[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* ---- one vector: the pipelines, composed from one kernel table ----------
 * For PROD types with r_out set, the QJL sketch is left to the caller
 * (encode_prod batches it): r_out receives the residual r′ and *sketch
 * says whether the block still needs its sign bits (not for a zero vector). */
static rq_status encode_one(const rq_quantizer *q, const rq_kernels *k, const float *x, uint8_t *blk, float *r_out,
                            bool *sketch, uint64_t *clamps) {
    int d = q->n_dims;
    float y[RQ_MAX_DIMS];
    uint16_t h;
    bool finite;
    const rq_block_layout *L = &rq__blocks[q->traits->block];
    if (!L->codes) { /* value blocks, of x or of Πx */
        if (!k->all_finite(x, d)) return RQ_ERR_NONFINITE;
        if (q->rot) rq__rotate(k, q->rot, x, 1.0f, y); /* x·1 = x exactly */
        return rq__values_encoder(k, q->traits->block)(q->rot ? y : x, d, blk);
    }

    /* code blocks: rotation + Lloyd-Max codes (+ the QJL stage) */
    bool prod = L->signs;
    size_t code_bytes = rq__packed_bytes(d, q->mse_bits);
    uint8_t *code_dst = blk + L->codes_off;
    float norm = sqrtf(k->sumsq_finite(x, d, &finite));
    if (!finite) return RQ_ERR_NONFINITE;
    if (f16_field(norm, &h) && !(clamps && L->norm_table))
        return RQ_ERR_RANGE; /* (n8: the stored value's range is checked by put_head) */
    if (norm == 0.0f) { /* zero vector: all-zero block decodes to zero */
        memset(blk, 0, q->bytes);
        if (r_out) memset(r_out, 0, sizeof(float) * (size_t)d), *sketch = false;
        return RQ_OK;
    }
    rq__rotate(k, q->rot, x, 1.0f / norm, y); /* y = Π(x/n) */

    if (L->trellis) { /* TCQ stream; the scale n/‖c‖ keeps ‖x̂‖ = n (always: on SmolLM2 it beat the least-squares
                       * scale n·<y,c>/‖c‖², mean KLD 0.121 vs 0.136 at K tcq4 / V tcq2, for 0.6% more MSE) */
        float c[RQ_MAX_DIMS];
        k->tcq_encode(y, d, q->mse_bits, q->tcq_lut, code_dst);
        rq__tcq_decode_ref(code_dst, d, q->mse_bits, q->tcq_lut, 1.0f, c);
        float cc = k->sumsq(c, d), scale = cc > 0.0f ? norm / sqrtf(cc) : norm;
        return put_head(L, blk, scale, clamps);
    }

    float stored = norm, c[RQ_MAX_DIMS];
    if (q->mse_bits > 0) {
        k->quantize_pack(y, d, q->mse_bits, q->cb.bounds, code_dst);
        if (q->cfg.norm_correct && !prod) {
            k->unpack_scale(code_dst, d, q->mse_bits, q->cb.centroids, 1.0f, c); /* c(code) */
            stored = norm / sqrtf(k->sumsq(c, d));
        }
    }
    if (!prod) return put_head(L, blk, stored, clamps);
    if (f16_field(stored, &h)) return RQ_ERR_RANGE;
    put_f16(blk, h);

    /* residual r′ = n·y − n′·c(code), with n′ the stored fp16 norm */
    float rbuf[RQ_MAX_DIMS], sr[RQ_MAX_DIMS], *r = r_out ? r_out : rbuf;
    if (q->mse_bits > 0) {
        k->unpack_scale(code_dst, d, q->mse_bits, q->cb.centroids, rq_f16_to_f32(h), c);
        for (int i = 0; i < d; i++) r[i] = norm * y[i] - c[i];
    } else {
        for (int i = 0; i < d; i++) r[i] = norm * y[i];
    }
    float rnorm = sqrtf(k->sumsq(r, d));
    if (f16_field(rnorm, &h)) return RQ_ERR_RANGE;
    put_f16(blk + RQ_PROD_RNORM_OFF, h);
    if (r_out) {
        *sketch = true;
        return RQ_OK;
    }
    rq__qjl_apply(q, r, sr);
    k->pack_signs(sr, d, code_dst + code_bytes);
    return RQ_OK;
}

/* PROD types in groups: heads (norms, codes, residuals) vector by vector,
 * then the QJL sketches S r′ of the group at once, so that a Gaussian S
 * (d×d floats, more than L1 holds from d = 128) is read once per group.
 * Same bytes as vector by vector; on an error, the vectors before it are
 * complete and nothing after it is written. */
#define QJL_GROUP 8
#define QJL_GROUP_FLOATS 8192 /* stack budget per array (32 KB) */

static rq_status encode_prod(const rq_quantizer *q, const rq_kernels *k, const float *x, uint8_t *out, size_t n_vec) {
    const size_t d = (size_t)q->n_dims, sign_off = RQ_PROD_CODES_OFF + rq__packed_bytes(q->n_dims, q->mse_bits);
    const size_t g_max = QJL_GROUP_FLOATS / d < QJL_GROUP ? QJL_GROUP_FLOATS / d : QJL_GROUP; /* ≥ 2: d ≤ 4096 */
    float r[QJL_GROUP_FLOATS > RQ_MAX_DIMS ? QJL_GROUP_FLOATS : RQ_MAX_DIMS];
    float sr[QJL_GROUP_FLOATS > RQ_MAX_DIMS ? QJL_GROUP_FLOATS : RQ_MAX_DIMS];
    bool sketch[QJL_GROUP];
    for (size_t v0 = 0; v0 < n_vec; v0 += g_max) {
        size_t g = n_vec - v0 < g_max ? n_vec - v0 : g_max, j;
        rq_status st = RQ_OK;
        for (j = 0; j < g; j++) {
            st = encode_one(q, k, x + (v0 + j) * d, out + (v0 + j) * q->bytes, r + j * d, &sketch[j], NULL);
            if (st) break;
        }
        if (j) {
            if (q->qjl_rot)
                for (size_t t = 0; t < j; t++) rq__rotate(k, q->qjl_rot, r + t * d, 1.0f, sr + t * d);
            else
                k->matvec_rows_k(q->qjl_s, q->n_dims, q->n_dims, r, (int)j, sr);
            for (size_t t = 0; t < j; t++)
                if (sketch[t]) k->pack_signs(sr + t * d, q->n_dims, out + (v0 + t) * q->bytes + sign_off);
        }
        if (st) return st;
    }
    return RQ_OK;
}

/* Decoded vector in the rotated domain (code blocks only). */
static void decode_rotated(const rq_quantizer *q, const rq_kernels *k, const uint8_t *blk, float *xr) {
    int d = q->n_dims;
    const rq_block_layout *L = &rq__blocks[q->traits->block];
    float n = rq__head_norm(blk, L->norm_table);
    if (L->trellis) {
        k->decode_tcq_n(xr, blk, q->bytes, 1, d, q->mse_bits, L->codes_off, L->norm_table, q->tcq_lut);
        return;
    }
    if (q->mse_bits > 0) k->unpack_scale(blk + L->codes_off, d, q->mse_bits, q->cb.centroids, n, xr);
    else memset(xr, 0, sizeof(float) * (size_t)d);
    if (L->signs) {
        float st[RQ_MAX_DIMS];
        float g = get_f16(blk + RQ_PROD_RNORM_OFF) * q->qjl_alpha;
        rq__qjl_transpose(q, blk + L->codes_off + rq__packed_bytes(d, q->mse_bits), st);
        for (int i = 0; i < d; i++) xr[i] += g * st[i];
    }
}

void rq__decode_rotated(const rq_quantizer *q, const uint8_t *blk, float *xr) {
    decode_rotated(q, rq__kernels(), blk, xr);
}

/* The block's values in the domain it stores them: rotated for rotation
 * types (codes, or q4_0h's values of Πx), the values themselves otherwise. */
static void decode_stored(const rq_quantizer *q, const rq_kernels *k, const uint8_t *blk, float *x) {
    if (rq__blocks[q->traits->block].codes) decode_rotated(q, k, blk, x);
    else rq__values_decoder(k, q->traits->block)(blk, q->n_dims, x);
}

rq_quantizer_view rq__quantizer_view(const rq_quantizer *q) {
    rq_quantizer_view v;
    memset(&v, 0, sizeof v);
    v.block = q->traits->block;
    v.layout = &rq__blocks[v.block];
    v.rotated = q->rot != NULL;
    if (v.layout->codes) {
        v.bits = q->mse_bits;
        v.off_codes = v.layout->codes_off;
        v.ntab = v.layout->norm_table;
        v.off_signs = v.off_codes + rq__packed_bytes(q->n_dims, q->mse_bits);
        v.cent = q->tcq_lut ? q->tcq_lut : q->mse_bits ? q->cb.centroids : NULL; /* TCQ: the LUT */
        v.alpha = q->qjl_alpha;
    }
    return v;
}

/* ---- public batch API -------------------------------------------------- */

/* The message of an encode that failed past its argument checks. */
static rq_status encode_failed(const rq_quantizer *q, rq_status st) {
    if (!st) return st;
    if (st == RQ_ERR_RANGE && rq__blocks[q->traits->block].norm_table)
        return rq__fail(st, "rq_quantizer_encode: %s: a vector's norm%s exceeds the type's 8-bit norm range "
                        "(%s)", q->type->name, rq__blocks[q->traits->block].trellis ? " (its scale)" : "",
                        rq__norm_table_range(rq__blocks[q->traits->block].norm_table));
    return rq__fail(st, "rq_quantizer_encode: %s: %s", q->type->name,
                    st == RQ_ERR_NONFINITE ? "a vector holds NaN or Inf"
                    : st == RQ_ERR_RANGE   ? "a value or norm exceeds the type's fp16 fields (65504)"
                                           : rq_status_str(st));
}

/* Every vector by encode_one, streaming the input ahead; clamps as in
 * put_head (NULL: out-of-range heads are errors). */
static rq_status encode_each(const rq_quantizer *q, const rq_kernels *k, const float *x, uint8_t *out, size_t n_vec,
                             uint64_t *clamps) {
    const size_t d = (size_t)q->n_dims;
    for (size_t v = 0; v < n_vec; v++) {
        if (v + RQ_PREFETCH_VECS < n_vec) /* stream the input ahead of the kernels */
            for (size_t b = 0; b < d * sizeof(float); b += 64)
                __builtin_prefetch((const char *)(x + (v + RQ_PREFETCH_VECS) * d) + b);
        rq_status st = encode_one(q, k, x + v * d, out + v * q->bytes, NULL, NULL, clamps);
        if (st) return encode_failed(q, st);
    }
    return RQ_OK;
}

rq_status rq_quantizer_encode(const rq_quantizer *q, const float *x, void *blocks, size_t n_vec) {
    if (!q || (n_vec && (!x || !blocks)))
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_quantizer_encode: %s is NULL", !q ? "q" : !x ? "x" : "blocks");
    const rq_kernels *k = rq__kernels();
    uint8_t *out = blocks;
    size_t done;
    rq_status st;
    if (k->encode_mse && k->encode_mse(q, x, out, n_vec, &done, &st)) return encode_failed(q, st); /* fused, same bytes */
    if (rq__blocks[q->traits->block].signs) return encode_failed(q, encode_prod(q, k, x, out, n_vec));
    return encode_each(q, k, x, out, n_vec, NULL);
}

rq_status rq__quantizer_encode_clamp(const rq_quantizer *q, const float *x, void *blocks, size_t n_vec,
                                     uint64_t clamps[2]) {
    if (!rq__blocks[q->traits->block].norm_table || rq__blocks[q->traits->block].signs)
        return rq_quantizer_encode(q, x, blocks, n_vec);
    uint64_t n[2] = {0, 0}; /* counted only when the whole call succeeds */
    rq_status st = encode_each(q, rq__kernels(), x, blocks, n_vec, n);
    if (!st) clamps[0] += n[0], clamps[1] += n[1];
    return st;
}

rq_status rq_quantizer_decode(const rq_quantizer *q, const void *blocks, float *x, size_t n_vec) {
    if (!q || (n_vec && (!x || !blocks)))
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_quantizer_decode: %s is NULL", !q ? "q" : !x ? "x" : "blocks");
    const rq_kernels *k = rq__kernels();
    const rq_block_layout *L = &rq__blocks[q->traits->block];
    const uint8_t *in = blocks;
    const int d = q->n_dims;
    /* every block checked before any is decoded: on error x is untouched */
    for (size_t v = 0; v < n_vec; v++)
        if (!L->fields_ok(in + v * q->bytes, d))
            return rq__fail(RQ_ERR_FORMAT, "rq_quantizer_decode: block %zu has a NaN or Inf in a norm/scale/value field "
                            "(encode never writes one)", v);
    for (size_t v = 0; v < n_vec; v++) {
        const uint8_t *blk = in + v * q->bytes;
        float *xv = x + v * (size_t)d;
        decode_stored(q, k, blk, xv);
        if (q->rot) rq__rotate_inv(k, q->rot, xv, xv);
    }
    return RQ_OK;
}

rq_status rq_quantizer_dot(const rq_quantizer *q, const float *y, const void *blocks,
                           size_t n_vec, float *out) {
    if (!q || (n_vec && (!y || !blocks || !out)))
        return rq__fail(RQ_ERR_INVALID_ARG, "rq_quantizer_dot: %s is NULL", !q ? "q" : !y ? "y" : !blocks ? "blocks" : "out");
    int d = q->n_dims;
    if (!rq__all_finite_ref(y, d)) return rq__fail(RQ_ERR_NONFINITE, "rq_quantizer_dot: y holds a NaN or Inf");
    const rq_kernels *k = rq__kernels();
    const rq_block_layout *L = &rq__blocks[q->traits->block];
    const uint8_t *in = blocks;
    float yr[RQ_MAX_DIMS], xr[RQ_MAX_DIMS];
    bool rotated = q->rot != NULL;
    if (rotated) rq__rotate(k, q->rot, y, 1.0f, yr); /* rotate the query once: <y, x̂> = <Πy, Πx̂> */
    for (size_t v = 0; v < n_vec; v++) /* checked first: on error out is untouched */
        if (!L->fields_ok(in + v * q->bytes, d))
            return rq__fail(RQ_ERR_FORMAT, "rq_quantizer_dot: block %zu has a NaN or Inf in a norm/scale/value field "
                            "(encode never writes one)", v);
    for (size_t v = 0; v < n_vec; v++) {
        const uint8_t *blk = in + v * q->bytes;
        decode_stored(q, k, blk, xr);
        out[v] = rq__dot_ref(rotated ? yr : y, xr, d);
        if (!rq__finite(out[v])) /* finite blocks, finite y, a product beyond float */
            return rq__fail(RQ_ERR_RANGE, "rq_quantizer_dot: <y, x^_%zu> overflows float", v);
    }
    return RQ_OK;
}
