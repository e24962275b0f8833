/*
 * clifford.c — the Cl(3,0) geometric algebra and the rotor kernels of
 * RotorQuant (rotorquant.h, "Cl(3,0) geometric algebra").
 *
 * Multivectors are 8 doubles over the blades [1, e1, e2, e3, e12, e13, e23,
 * e123] with e_i² = +1. The geometric product comes from the blade-bitmap
 * rule (Dorst, Fontijne & Mann, "Geometric Algebra for Computer Science",
 * §19.1): a blade is the bitmask of its basis vectors, and
 *     e_A e_B = (−1)^swaps(A, B) · e_{A xor B},
 * where swaps(A, B) = #{(i ∈ A, j ∈ B) : i > j} counts the transpositions that
 * bring the concatenated word into canonical order; repeated vectors cancel
 * with e_i² = +1. The 8×8 table is evaluated by that rule at compile time
 * (constant expressions below), not typed in by hand: the seed reference
 * (turboquant-pytorch clifford.py) typed it in and got 18 signs wrong
 * (research/reference_impl.md §6.1). tests/test_clifford.c re-derives all 64
 * products independently.
 *
 * Rotors: R = exp(B/2) = cos(θ/2) + sin(θ/2) B/θ, θ = |B| (a unit bivector
 * squares to −1); x ↦ R x R~ is a rotation by θ in the plane of B. The
 * quantizer uses only the fused grade-1 kernels rq_rotor_apply3(_inverse):
 * 12 + 16 = 28 float multiplies per 3-vector, each output a fixed sequence
 * of float operations (no FMA: the Makefile sets -ffp-contract=off), so
 * every machine computes the same bits.
 */
#include "internal.h"

#include <math.h>

/* ---- the geometric-product table (blade-bitmap rule) --------------------
 * Layout index → bitmask (bit 0 = e1, bit 1 = e2, bit 2 = e3):
 *   0:1→0b000  1:e1→0b001  2:e2→0b010  3:e3→0b100
 *   4:e12→0b011  5:e13→0b101  6:e23→0b110  7:e123→0b111
 * The permutation swaps 3 and 4 and is its own inverse, so the same macro
 * maps masks back to indices. */
#define MASK(i) ((i) == 3 ? 4 : (i) == 4 ? 3 : (i))
#define IDX(m) MASK(m)
#define POP3(x) (((x) & 1) + (((x) >> 1) & 1) + (((x) >> 2) & 1))
/* pairs (i ∈ a, j ∈ b) with i = j + 1 or i = j + 2, i.e. i > j for 3 bits */
#define SWAPS(a, b) (POP3(((a) >> 1) & (b)) + POP3(((a) >> 2) & (b)))
#define GP_S(i, j) ((SWAPS(MASK(i), MASK(j)) & 1) ? -1 : 1)
#define GP_I(i, j) IDX(MASK(i) ^ MASK(j))

#define ROW_S(i) {GP_S(i, 0), GP_S(i, 1), GP_S(i, 2), GP_S(i, 3), GP_S(i, 4), GP_S(i, 5), GP_S(i, 6), GP_S(i, 7)}
#define ROW_I(i) {GP_I(i, 0), GP_I(i, 1), GP_I(i, 2), GP_I(i, 3), GP_I(i, 4), GP_I(i, 5), GP_I(i, 6), GP_I(i, 7)}

/* blade_i · blade_j = GP_SIGN[i][j] · blade_{GP_INDEX[i][j]} */
static const signed char GP_SIGN[8][8] = {ROW_S(0), ROW_S(1), ROW_S(2), ROW_S(3),
                                          ROW_S(4), ROW_S(5), ROW_S(6), ROW_S(7)};
static const unsigned char GP_INDEX[8][8] = {ROW_I(0), ROW_I(1), ROW_I(2), ROW_I(3),
                                             ROW_I(4), ROW_I(5), ROW_I(6), ROW_I(7)};

static const int GRADE[8] = {0, 1, 1, 1, 2, 2, 2, 3};

rq_mv rq_mv_gp(rq_mv a, rq_mv b) {
    rq_mv r = {{0}};
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) r.c[GP_INDEX[i][j]] += GP_SIGN[i][j] * (a.c[i] * b.c[j]);
    return r;
}

/* Reversion reverses the order of the vectors in each blade: a grade-k blade
 * picks up (−1)^(k(k−1)/2), i.e. − for grades 2 and 3. */
rq_mv rq_mv_reverse(rq_mv a) {
    for (int i = 4; i < 8; i++) a.c[i] = -a.c[i];
    return a;
}

rq_mv rq_mv_grade(rq_mv a, int grade) {
    rq_mv r = {{0}};
    for (int i = 0; i < 8; i++)
        if (GRADE[i] == grade) r.c[i] = a.c[i];
    return r;
}

/* <a ã>_0: only a blade times its own reverse has a scalar part. In the
 * Euclidean signature this is Σ c_i², evaluated here from the table. */
double rq_mv_norm2(rq_mv a) {
    rq_mv rev = rq_mv_reverse(a);
    double s = 0;
    for (int i = 0; i < 8; i++) s += GP_SIGN[i][i] * (a.c[i] * rev.c[i]);
    return s;
}

/* exp(B/2) for B = b12 e12 + b13 e13 + b23 e23. (B/θ)² = −1, so the series
 * splits into cos and sin like exp(iθ/2). libm is fine here: this serves the
 * algebra API and tests; seeded rotors come from Gaussian quaternions
 * (rotation_block.c), never from this function. */
rq_mv rq_rotor_exp(rq_mv bivector) {
    rq_mv r = {{0}};
    double b12 = bivector.c[RQ_MV_E12], b13 = bivector.c[RQ_MV_E13], b23 = bivector.c[RQ_MV_E23];
    double theta = sqrt(b12 * b12 + b13 * b13 + b23 * b23);
    if (theta == 0.0) {
        r.c[RQ_MV_S] = 1.0;
        return r;
    }
    double k = sin(0.5 * theta) / theta;
    r.c[RQ_MV_S] = cos(0.5 * theta);
    r.c[RQ_MV_E12] = k * b12;
    r.c[RQ_MV_E13] = k * b13;
    r.c[RQ_MV_E23] = k * b23;
    return r;
}

rq_mv rq_rotor_sandwich(rq_mv rotor, rq_mv x) {
    return rq_mv_gp(rq_mv_gp(rotor, x), rq_mv_reverse(rotor));
}

/* ---- fused sparse sandwich -------------------------------------------------
 * R = s + b12 e12 + b13 e13 + b23 e23, v = v1 e1 + v2 e2 + v3 e3.
 * Step 1, t = R v (12 multiplies). With e12 e1 = −e2, e12 e2 = e1,
 * e12 e3 = e123, e13 e1 = −e3, e13 e2 = −e123, e13 e3 = e1, e23 e1 = e123,
 * e23 e2 = −e3, e23 e3 = e2:
 *   t1 = s v1 + b12 v2 + b13 v3        t2 = s v2 − b12 v1 + b23 v3
 *   t3 = s v3 − b13 v1 − b23 v2        t7 = b12 v3 − b13 v2 + b23 v1  (e123)
 * Step 2, out = <t R~>_1 with R~ = s − b12 e12 − b13 e13 − b23 e23
 * (16 multiplies; e123 e12 = −e3, e123 e13 = e2, e123 e23 = −e1):
 *   o1 = t1 s + t2 b12 + t3 b13 + t7 b23
 *   o2 = t2 s − t1 b12 + t3 b23 − t7 b13
 *   o3 = t3 s − t1 b13 − t2 b23 + t7 b12
 * The grade-3 part of t R~ is exactly 0 for a rotor and is not computed.
 * Every input is read before any output is written, so out == v is fine. */
void rq_rotor_apply3(const float r[4], const float v[3], float out[3]) {
    const float s = r[0], b12 = r[1], b13 = r[2], b23 = r[3];
    const float v1 = v[0], v2 = v[1], v3 = v[2];
    const float t1 = s * v1 + b12 * v2 + b13 * v3;
    const float t2 = s * v2 - b12 * v1 + b23 * v3;
    const float t3 = s * v3 - b13 * v1 - b23 * v2;
    const float t7 = b12 * v3 - b13 * v2 + b23 * v1;
    out[0] = t1 * s + t2 * b12 + t3 * b13 + t7 * b23;
    out[1] = t2 * s - t1 * b12 + t3 * b23 - t7 * b13;
    out[2] = t3 * s - t1 * b13 - t2 * b23 + t7 * b12;
}

/* R~ v R: the same kernel with the reverse rotor (bivector part negated;
 * negation is exact, so this is R's inverse map bit for bit as written). */
void rq_rotor_apply3_inverse(const float r[4], const float v[3], float out[3]) {
    const float rr[4] = {r[0], -r[1], -r[2], -r[3]};
    rq_rotor_apply3(rr, v, out);
}
