/*
 * rotation_block.c — the block-diagonal rotation families, three rows of
 * the rotation ops table (rq__rot_rotor, rq__rot_planar, rq__rot_iso).
 *
 *   rotor   B = 3: Cl(3,0) rotor sandwich v ↦ R v R~ (RotorQuant), with R a
 *           uniformly random unit rotor (s, b12, b13, b23) = g/|g|, g ~ N(0, I₄).
 *           Rotors are unit quaternions, and a uniform point on S³ gives a
 *           Haar-uniform rotation in SO(3) (Shoemake, "Uniform random
 *           rotations", Graphics Gems III). The seed reference drew the angle
 *           uniformly instead, which is not Haar. 4 parameters per block. The block is applied as
 *           its 3×3 matrix M (block_mats: the sandwich of e_1, e_2, e_3 in
 *           double from the float rotor, rounded to float):
 *           y_i = (M_i0 v_0 + M_i1 v_1) + M_i2 v_2 in float, inverse with Mᵀ —
 *           9 multiplies instead of the fused sandwich's 28 (rq_rotor_apply3),
 *           so that the SIMD kernels can beat the Walsh–Hadamard transform;
 *           the same rotation to float rounding (~1e-7).
 *   planar  B = 2: Givens rotation [c −s; s c] with (c, s) = g/|g|,
 *           g ~ N(0, I₂), i.e. a uniform angle: Haar on SO(2) (PlanarQuant).
 *           2 parameters per block.
 *   iso     B = 4: v ↦ q_L v conj(q_R), v = (v0, v1, v2, v3) read as the
 *           quaternion w + x i + y j + z k, Hamilton product, q_L and q_R
 *           independent uniform unit quaternions. SO(4) = (S³ × S³)/±1, so
 *           this is Haar on SO(4) — a general rotation, not only the
 *           left-isoclinic q_L v (IsoQuant). 8 parameters per block.
 *
 * Layout: blocks at offsets 0, B, 2B, …, (⌊d/B⌋ − 1)·B, and if B ∤ d one
 * tail block at offset d − B overlapping the previous block (a composition
 * of orthogonal maps is orthogonal; no padding is stored).
 * n_blocks = ⌊d/B⌋ + (d mod B ≠ 0). Forward applies the blocks in increasing
 * order, inverse applies the inverse blocks in decreasing order.
 *
 * n_params = n_blocks · n_block_params: the floats a user must store to
 * rebuild the map without the seed (d = 128: rotor 43 · 4 = 172, planar
 * 64 · 2 = 128, iso 32 · 8 = 256). block_mats (n_blocks × B² floats, each
 * block's forward map as a row-major B×B matrix) is derived from them (it
 * is the rotor's map; for planar and iso a cross-check) and is not counted,
 * nor is simd_coef (per-lane coefficients for src/simd/).
 *
 * Randomness: one rq_rng seeded with `seed`; for each block in order, the
 * block's Gaussians (rotor 4, planar 2, iso 4 for q_L then 4 for q_R), each
 * group normalized by a correctly rounded sqrt and a division in double,
 * then rounded to float. No libm transcendental is involved, so the
 * parameters are bit-identical on every IEEE-754 machine.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

/* ---- drawing -------------------------------------------------------------- */

/* n Gaussians normalized to a unit vector; redraws the (measure-zero) all-
 * zero case so the result is always a unit vector. */
static void draw_unit(rq_rng *rng, int n, double *u) {
    for (;;) {
        double ss = 0;
        for (int i = 0; i < n; i++) {
            u[i] = rq_rng_gauss(rng);
            ss += u[i] * u[i];
        }
        if (ss == 0.0) continue;
        double norm = sqrt(ss);
        for (int i = 0; i < n; i++) u[i] /= norm;
        return;
    }
}

/* ---- quaternions: (w, x, y, z) = w + x i + y j + z k ----------------------- */

/* Hamilton product a b; reads all inputs before writing, so out may alias. */
static void qmul_f(const float a[4], const float b[4], float out[4]) {
    const float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    const float b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
    out[0] = a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3;
    out[1] = a0 * b1 + a1 * b0 + a2 * b3 - a3 * b2;
    out[2] = a0 * b2 - a1 * b3 + a2 * b0 + a3 * b1;
    out[3] = a0 * b3 + a1 * b2 - a2 * b1 + a3 * b0;
}

static void qmul_d(const double a[4], const double b[4], double out[4]) {
    const double a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    const double b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
    out[0] = a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3;
    out[1] = a0 * b1 + a1 * b0 + a2 * b3 - a3 * b2;
    out[2] = a0 * b2 - a1 * b3 + a2 * b0 + a3 * b1;
    out[3] = a0 * b3 + a1 * b2 - a2 * b1 + a3 * b0;
}

/* ---- per-block maps (in place on B floats) ------------------------------- */

static void planar_fwd(const float p[2], float *v) {
    const float c = p[0], s = p[1], x0 = v[0], x1 = v[1];
    v[0] = c * x0 - s * x1;
    v[1] = s * x0 + c * x1;
}

static void planar_inv(const float p[2], float *v) {
    const float c = p[0], s = p[1], x0 = v[0], x1 = v[1];
    v[0] = c * x0 + s * x1;
    v[1] = c * x1 - s * x0;
}

/* q_L v conj(q_R): p = (q_L, q_R) */
static void iso_fwd(const float p[8], float *v) {
    const float qr_conj[4] = {p[4], -p[5], -p[6], -p[7]};
    float t[4];
    qmul_f(p, v, t);
    qmul_f(t, qr_conj, v);
}

/* conj(q_L) v q_R */
static void iso_inv(const float p[8], float *v) {
    const float ql_conj[4] = {p[0], -p[1], -p[2], -p[3]};
    float t[4];
    qmul_f(ql_conj, v, t);
    qmul_f(t, p + 4, v);
}

/* ---- block matrices (double from the stored float parameters) ------------
 * Column j of block b's matrix is its forward map applied to e_j, so the
 * matrix is exactly the map the stored parameters define (including their
 * float rounding, which makes it orthogonal to ~1e-7). */
static void block_matrix(rq_rot_kind kind, const float *pf, float *m) {
    if (kind == RQ_ROT_PLANAR) {
        m[0] = pf[0];
        m[1] = -pf[1];
        m[2] = pf[1];
        m[3] = pf[0];
        return;
    }
    if (kind == RQ_ROT_ROTOR) {
        const double s = pf[0], b12 = pf[1], b13 = pf[2], b23 = pf[3];
        for (int j = 0; j < 3; j++) {
            double v1 = j == 0, v2 = j == 1, v3 = j == 2;
            /* the same two steps as rq_rotor_apply3 (clifford.c), in double */
            double t1 = s * v1 + b12 * v2 + b13 * v3;
            double t2 = s * v2 - b12 * v1 + b23 * v3;
            double t3 = s * v3 - b13 * v1 - b23 * v2;
            double t7 = b12 * v3 - b13 * v2 + b23 * v1;
            m[0 * 3 + j] = (float)(t1 * s + t2 * b12 + t3 * b13 + t7 * b23);
            m[1 * 3 + j] = (float)(t2 * s - t1 * b12 + t3 * b23 - t7 * b13);
            m[2 * 3 + j] = (float)(t3 * s - t1 * b13 - t2 * b23 + t7 * b12);
        }
        return;
    }
    /* iso */
    const double ql[4] = {pf[0], pf[1], pf[2], pf[3]};
    const double qrc[4] = {pf[4], -(double)pf[5], -(double)pf[6], -(double)pf[7]};
    for (int j = 0; j < 4; j++) {
        double e[4] = {0, 0, 0, 0}, t[4], y[4];
        e[j] = 1.0;
        qmul_d(ql, e, t);
        qmul_d(t, qrc, y);
        for (int i = 0; i < 4; i++) m[i * 4 + j] = (float)y[i];
    }
}

/* ---- per-lane coefficients for the SIMD kernels (internal.h) -------------- */

/* lanes of the regular blocks rounded up to a multiple of 48: whole
 * registers of 16 (AVX-512) and groups of 24 (AVX2 rotor) stay inside */
int rq__block_simd_lanes(const rq_rotation *rot) {
    return (rot->block * (rot->n_dims / rot->block) + 47) / 48 * 48;
}

/* sign of term k in component i of the Hamilton product a b = Σ_k ± a_k b_(i⊕k) */
static const float HAMILTON_SGN[4][4] = {{1, -1, -1, -1}, {1, 1, 1, -1}, {1, -1, 1, 1}, {1, 1, -1, 1}};

static rq_status block_simd_coef(rq_rotation *rot) {
    const int n_reg = rot->n_dims / rot->block, L = rq__block_simd_lanes(rot);
    size_t n = (size_t)(rot->kind == RQ_ROT_ROTOR ? 6 : rot->kind == RQ_ROT_PLANAR ? 3 : 16) * (size_t)L;
    float *c = calloc(n ? n : 1, sizeof(float));
    if (!c) return RQ_ERR_NOMEM;
    rot->simd_coef = c;
    for (int g = 0; g < n_reg; g++) {
        const float *p = rot->block_params + (size_t)g * (size_t)rot->n_block_params;
        if (rot->kind == RQ_ROT_ROTOR) { /* lane 3g + i: M_ij (forward), M_ji (inverse) */
            const float *m = rot->block_mats + (size_t)g * 9;
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                    c[(size_t)j * L + 3 * g + i] = m[3 * i + j];
                    c[(size_t)(3 + j) * L + 3 * g + i] = m[3 * j + i];
                }
        } else if (rot->kind == RQ_ROT_PLANAR) {
            float *fb = c + 2 * g, *cc = fb + L, *si = cc + L;
            fb[0] = -p[1], fb[1] = p[0];
            cc[0] = p[0], cc[1] = p[0];
            si[0] = p[1], si[1] = -p[1];
        } else { /* iso: p = (q_L, q_R) */
            const float ql[4] = {p[0], p[1], p[2], p[3]}, qlc[4] = {p[0], -p[1], -p[2], -p[3]};
            const float qr[4] = {p[4], p[5], p[6], p[7]}, qrc[4] = {p[4], -p[5], -p[6], -p[7]};
            for (int k = 0; k < 4; k++)
                for (int i = 0; i < 4; i++) {
                    size_t lane = (size_t)4 * g + i;
                    float sg = HAMILTON_SGN[i][k];
                    c[(size_t)(0 + k) * L + lane] = sg * ql[k];
                    c[(size_t)(4 + k) * L + lane] = sg * qrc[i ^ k];
                    c[(size_t)(8 + k) * L + lane] = sg * qlc[k];
                    c[(size_t)(12 + k) * L + lane] = sg * qr[i ^ k];
                }
        }
    }
    return RQ_OK;
}

/* ---- public (internal) entry points -------------------------------------- */

static rq_status block_rotation_init(rq_rotation *rot, uint64_t seed) {
    int bsz, n_bp; /* block size, floats per block */
    switch (rot->kind) {
    case RQ_ROT_ROTOR: bsz = 3; n_bp = 4; break;
    case RQ_ROT_PLANAR: bsz = 2; n_bp = 2; break;
    case RQ_ROT_ISO: bsz = 4; n_bp = 8; break;
    default: return RQ_ERR_INVALID_ARG;
    }
    int d = rot->n_dims;
    if (d < bsz) return RQ_ERR_DIM;
    int n_blocks = d / bsz + (d % bsz ? 1 : 0);
    rot->block = bsz;
    rot->n_blocks = n_blocks;
    rot->n_block_params = n_bp;
    rot->n_params = (size_t)n_blocks * (size_t)n_bp;
    rot->block_params = malloc(sizeof(float) * (size_t)n_blocks * (size_t)n_bp);
    rot->block_mats = malloc(sizeof(float) * (size_t)n_blocks * (size_t)(bsz * bsz));
    if (!rot->block_params || !rot->block_mats) return RQ_ERR_NOMEM;

    const int n_unit = bsz == 2 ? 2 : 4; /* Gaussians per unit vector */
    rq_rng rng;
    rq_rng_seed(&rng, seed);
    for (int b = 0; b < n_blocks; b++) {
        float *p = rot->block_params + (size_t)b * (size_t)n_bp;
        double u[4];
        for (int g = 0; g < n_bp; g += n_unit) { /* iso: q_L, then q_R */
            draw_unit(&rng, n_unit, u);
            for (int i = 0; i < n_unit; i++) p[g + i] = (float)u[i];
        }
        block_matrix(rot->kind, p, rot->block_mats + (size_t)b * (size_t)(bsz * bsz));
    }
    return block_simd_coef(rot);
}

/* offset of block b: b·B for the ⌊d/B⌋ regular blocks, d − B for the tail */
static int block_offset(const rq_rotation *rot, int b) {
    int off = b * rot->block;
    return off + rot->block <= rot->n_dims ? off : rot->n_dims - rot->block;
}

void rq__block_apply(const rq_rotation *rot, int b, float *v, bool inverse) {
    const float *p = rot->block_params + (size_t)b * (size_t)rot->n_block_params;
    switch (rot->kind) {
    case RQ_ROT_ROTOR: { /* y = M v or Mᵀ v, each sum in increasing j */
        const float *m = rot->block_mats + (size_t)b * 9;
        const float v0 = v[0], v1 = v[1], v2 = v[2];
        for (int i = 0; i < 3; i++)
            v[i] = inverse ? m[i] * v0 + m[3 + i] * v1 + m[6 + i] * v2 : m[3 * i] * v0 + m[3 * i + 1] * v1 + m[3 * i + 2] * v2;
        break;
    }
    case RQ_ROT_PLANAR:
        if (inverse) planar_inv(p, v);
        else planar_fwd(p, v);
        break;
    case RQ_ROT_ISO:
        if (inverse) iso_inv(p, v);
        else iso_fwd(p, v);
        break;
    default: assert(0 && "not a block rotation"); break;
    }
}

static void block_forward_ref(const rq_rotation *rot, const float *x, float *y) {
    if (y != x) memcpy(y, x, sizeof(float) * (size_t)rot->n_dims);
    for (int b = 0; b < rot->n_blocks; b++) rq__block_apply(rot, b, y + block_offset(rot, b), false);
}

static void block_inverse_ref(const rq_rotation *rot, const float *x, float *y) {
    if (y != x) memcpy(y, x, sizeof(float) * (size_t)rot->n_dims);
    for (int b = rot->n_blocks - 1; b >= 0; b--) rq__block_apply(rot, b, y + block_offset(rot, b), true);
}

/* The overlapping tail block alone (if B ∤ d), in place: the kernels apply
 * the disjoint regular blocks at once and this one after them (forward) or
 * before them (inverse). */
static void block_tail(const rq_rotation *rot, float *y, bool inverse) {
    if (rot->n_dims % rot->block) rq__block_apply(rot, rot->n_blocks - 1, y + rot->n_dims - rot->block, inverse);
}

static void block_free(rq_rotation *rot) {
    free(rot->block_params);
    free(rot->block_mats);
    free(rot->simd_coef);
}

static bool rotor_dims_ok(int d) { return d >= 3; }
static bool planar_dims_ok(int d) { return d >= 2; }
static bool iso_dims_ok(int d) { return d >= 4; }

#define BLOCK_OPS(NAME, B)                                                                                       \
    {.name = #NAME, .block = B, .dims_ok = NAME##_dims_ok, .init = block_rotation_init,                           \
     .forward = block_forward_ref, .inverse = block_inverse_ref, .tail = block_tail, .free = block_free}
const rq_rot_ops rq__rot_rotor = BLOCK_OPS(rotor, 3);
const rq_rot_ops rq__rot_planar = BLOCK_OPS(planar, 2);
const rq_rot_ops rq__rot_iso = BLOCK_OPS(iso, 4);
#undef BLOCK_OPS
