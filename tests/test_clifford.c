/*
 * test_clifford.c — the Cl(3,0) algebra (src/clifford.c) and the block
 * rotation families rotor / planar / iso (src/rotation_block.c).
 *
 * Algebra: all 64 basis products against a blade derivation written here
 * independently (word concatenation + bubble sort, not bitmasks), including
 * the 18 the seed reference got wrong (research/reference_impl.md §6.1);
 * associativity; reversion; rotors (R R~ = 1, grade-1 → grade-1, norms,
 * invariant scalar and pseudoscalar, composition, rotation angle of exp).
 * Kernels: the fused rq_rotor_apply3 against the full sandwich.
 * Haar: Kolmogorov–Smirnov test of the library's rotor angles against the
 * Haar law on SO(3), with the seed's uniform-angle rotors as a control that
 * must fail; trace moments of every family; iso is a general SO(4) element.
 * Block families: norm, exact inverse, in place = out of place, block_mats
 * = the forward map, determinism, block and parameter counts.
 */
#include "test.h"
#include "internal.h"

#include <stdint.h>
#include <string.h>

#define PI 3.14159265358979323846

/* ---- helpers ---------------------------------------------------------------- */

static rq_mv blade(int i) {
    rq_mv m = {{0}};
    m.c[i] = 1.0;
    return m;
}

static rq_mv random_mv(rq_rng *r) {
    rq_mv m = {{0}};
    for (int i = 0; i < 8; i++) m.c[i] = rq_rng_gauss(r);
    return m;
}

static rq_mv random_vector_mv(rq_rng *r) {
    rq_mv m = {{0}};
    for (int i = 1; i <= 3; i++) m.c[i] = rq_rng_gauss(r);
    return m;
}

/* exp of a random bivector with Gaussian components (angles up to ~3π/2…) */
static rq_mv random_rotor(rq_rng *r) {
    rq_mv b = {{0}};
    for (int i = RQ_MV_E12; i <= RQ_MV_E23; i++) b.c[i] = 1.5 * rq_rng_gauss(r);
    return rq_rotor_exp(b);
}

static double mv_maxdiff(rq_mv a, rq_mv b) {
    double m = 0;
    for (int i = 0; i < 8; i++) m = fmax(m, fabs(a.c[i] - b.c[i]));
    return m;
}

static double mv_maxabs_except(rq_mv a, int lo, int hi) { /* max |c_i|, i ∉ [lo, hi] */
    double m = 0;
    for (int i = 0; i < 8; i++)
        if (i < lo || i > hi) m = fmax(m, fabs(a.c[i]));
    return m;
}

static const char *const BLADE_NAME[8] = {"1", "e1", "e2", "e3", "e12", "e13", "e23", "e123"};

/* ---- independent blade derivation -------------------------------------------
 * A blade is a word of basis-vector numbers; the product of two blades is the
 * concatenated word, bubble-sorted (each adjacent swap of distinct vectors
 * flips the sign: e_i e_j = −e_j e_i), then adjacent equal pairs are deleted
 * (e_i e_i = +1). The result word is looked up in the layout. */
static const int WORD_LEN[8] = {0, 1, 1, 1, 2, 2, 2, 3};
static const int WORD[8][3] = {{0}, {1}, {2}, {3}, {1, 2}, {1, 3}, {2, 3}, {1, 2, 3}};

static void derive_product(int a, int b, int *sign, int *index) {
    int w[6], n = 0, s = 1;
    for (int k = 0; k < WORD_LEN[a]; k++) w[n++] = WORD[a][k];
    for (int k = 0; k < WORD_LEN[b]; k++) w[n++] = WORD[b][k];
    for (int pass = 0; pass < n; pass++)
        for (int k = 0; k + 1 < n; k++)
            if (w[k] > w[k + 1]) {
                int t = w[k];
                w[k] = w[k + 1];
                w[k + 1] = t;
                s = -s;
            }
    int out[6], m = 0;
    for (int k = 0; k < n; k++) {
        if (k + 1 < n && w[k] == w[k + 1]) {
            k++; /* e_i e_i = +1 */
            continue;
        }
        out[m++] = w[k];
    }
    *sign = s;
    *index = -1;
    for (int i = 0; i < 8; i++) {
        if (WORD_LEN[i] != m) continue;
        int same = 1;
        for (int k = 0; k < m; k++) same &= WORD[i][k] == out[k];
        if (same) *index = i;
    }
}

/* ---- algebra ---------------------------------------------------------------- */

static void test_basis(void) {
    /* the defining relations */
    for (int i = 1; i <= 3; i++) {
        rq_mv sq = rq_mv_gp(blade(i), blade(i));
        CHECK(mv_maxdiff(sq, blade(RQ_MV_S)) == 0, "%s^2 != 1", BLADE_NAME[i]);
        for (int j = 1; j <= 3; j++) {
            if (i == j) continue;
            rq_mv ij = rq_mv_gp(blade(i), blade(j)), ji = rq_mv_gp(blade(j), blade(i));
            double worst = 0;
            for (int k = 0; k < 8; k++) worst = fmax(worst, fabs(ij.c[k] + ji.c[k]));
            CHECK(worst == 0, "%s %s != -%s %s", BLADE_NAME[i], BLADE_NAME[j], BLADE_NAME[j], BLADE_NAME[i]);
        }
    }
    rq_mv minus1 = {{-1, 0, 0, 0, 0, 0, 0, 0}};
    for (int i = RQ_MV_E12; i <= RQ_MV_E123; i++)
        CHECK(mv_maxdiff(rq_mv_gp(blade(i), blade(i)), minus1) == 0, "%s^2 != -1", BLADE_NAME[i]);
    /* e1 e2 is the blade e12, e1 e2 e3 is e123 */
    CHECK(mv_maxdiff(rq_mv_gp(blade(1), blade(2)), blade(RQ_MV_E12)) == 0, "e1 e2 != e12");
    CHECK(mv_maxdiff(rq_mv_gp(rq_mv_gp(blade(1), blade(2)), blade(3)), blade(RQ_MV_E123)) == 0,
          "e1 e2 e3 != e123");

    /* all 64 products against the independent derivation */
    int bad = 0;
    for (int a = 0; a < 8; a++)
        for (int b = 0; b < 8; b++) {
            int s, idx;
            derive_product(a, b, &s, &idx);
            rq_mv want = {{0}};
            want.c[idx] = s;
            rq_mv got = rq_mv_gp(blade(a), blade(b));
            if (mv_maxdiff(got, want) != 0) {
                bad++;
                CHECK(0, "%s * %s: want %+d %s", BLADE_NAME[a], BLADE_NAME[b], s, BLADE_NAME[idx]);
            }
        }
    TEST_NOTE("64 basis products checked, %d wrong", bad);

    /* the 18 products the seed's hand-written table has wrong (§6.1), with
     * the correct results */
    static const struct { int a, b, sign, idx; } SEED_WRONG[18] = {
        {RQ_MV_E12, RQ_MV_E3, +1, RQ_MV_E123},   {RQ_MV_E12, RQ_MV_E13, -1, RQ_MV_E23},
        {RQ_MV_E12, RQ_MV_E23, +1, RQ_MV_E13},   {RQ_MV_E12, RQ_MV_E123, -1, RQ_MV_E3},
        {RQ_MV_E13, RQ_MV_E2, -1, RQ_MV_E123},   {RQ_MV_E13, RQ_MV_E12, +1, RQ_MV_E23},
        {RQ_MV_E13, RQ_MV_E23, -1, RQ_MV_E12},   {RQ_MV_E13, RQ_MV_E123, +1, RQ_MV_E2},
        {RQ_MV_E23, RQ_MV_E1, +1, RQ_MV_E123},   {RQ_MV_E23, RQ_MV_E12, -1, RQ_MV_E13},
        {RQ_MV_E23, RQ_MV_E13, +1, RQ_MV_E12},   {RQ_MV_E23, RQ_MV_E123, -1, RQ_MV_E1},
        {RQ_MV_E123, RQ_MV_E1, +1, RQ_MV_E23},   {RQ_MV_E123, RQ_MV_E2, -1, RQ_MV_E13},
        {RQ_MV_E123, RQ_MV_E3, +1, RQ_MV_E12},   {RQ_MV_E123, RQ_MV_E12, -1, RQ_MV_E3},
        {RQ_MV_E123, RQ_MV_E13, +1, RQ_MV_E2},   {RQ_MV_E123, RQ_MV_E23, -1, RQ_MV_E1},
    };
    for (int k = 0; k < 18; k++) {
        rq_mv want = {{0}};
        want.c[SEED_WRONG[k].idx] = SEED_WRONG[k].sign;
        rq_mv got = rq_mv_gp(blade(SEED_WRONG[k].a), blade(SEED_WRONG[k].b));
        CHECK(mv_maxdiff(got, want) == 0, "%s * %s should be %+d %s", BLADE_NAME[SEED_WRONG[k].a],
              BLADE_NAME[SEED_WRONG[k].b], SEED_WRONG[k].sign, BLADE_NAME[SEED_WRONG[k].idx]);
    }
}

static void test_assoc_reverse_grade(void) {
    rq_rng r;
    rq_rng_seed(&r, 3);
    double worst_assoc = 0, worst_rev = 0, worst_dist = 0, worst_norm = 0, worst_grade = 0;
    for (int t = 0; t < 1000; t++) {
        rq_mv a = random_mv(&r), b = random_mv(&r), c = random_mv(&r);
        worst_assoc = fmax(worst_assoc, mv_maxdiff(rq_mv_gp(rq_mv_gp(a, b), c), rq_mv_gp(a, rq_mv_gp(b, c))));
        /* reversion is an anti-automorphism: (ab)~ = b~ a~ */
        worst_rev = fmax(worst_rev, mv_maxdiff(rq_mv_reverse(rq_mv_gp(a, b)),
                                               rq_mv_gp(rq_mv_reverse(b), rq_mv_reverse(a))));
        /* bilinearity: a(b + 2c) = ab + 2ac */
        rq_mv bc = b, ab = rq_mv_gp(a, b), ac = rq_mv_gp(a, c), sum = {{0}};
        for (int i = 0; i < 8; i++) {
            bc.c[i] += 2 * c.c[i];
            sum.c[i] = ab.c[i] + 2 * ac.c[i];
        }
        worst_dist = fmax(worst_dist, mv_maxdiff(rq_mv_gp(a, bc), sum));
        /* <a a~>_0 = Σ c_i² in the Euclidean signature */
        double ss = 0;
        for (int i = 0; i < 8; i++) ss += a.c[i] * a.c[i];
        worst_norm = fmax(worst_norm, fabs(rq_mv_norm2(a) - ss) / ss);
        /* Σ_k <a>_k = a, and each grade keeps only its blades */
        rq_mv acc = {{0}};
        for (int k = 0; k <= 3; k++) {
            rq_mv g = rq_mv_grade(a, k);
            for (int i = 0; i < 8; i++) acc.c[i] += g.c[i];
        }
        worst_grade = fmax(worst_grade, mv_maxdiff(acc, a));
    }
    CHECK(worst_assoc < 1e-12, "max |(ab)c - a(bc)| = %.3g", worst_assoc);
    CHECK(worst_rev < 1e-12, "max |(ab)~ - b~a~| = %.3g", worst_rev);
    CHECK(worst_dist < 1e-12, "bilinearity %.3g", worst_dist);
    CHECK(worst_norm < 1e-15, "norm2 rel err %.3g", worst_norm);
    CHECK(worst_grade == 0, "sum of grades %.3g", worst_grade);
    TEST_NOTE("1000 random triples: associativity err %.2g, reversion err %.2g", worst_assoc, worst_rev);

    /* grade projection per blade; out-of-range grades give 0 */
    rq_mv ones = {{1, 1, 1, 1, 1, 1, 1, 1}}, zero = {{0}};
    static const int GRADE_OF[8] = {0, 1, 1, 1, 2, 2, 2, 3};
    for (int k = 0; k <= 3; k++) {
        rq_mv g = rq_mv_grade(ones, k);
        for (int i = 0; i < 8; i++) CHECK(g.c[i] == (GRADE_OF[i] == k), "grade %d blade %s", k, BLADE_NAME[i]);
    }
    CHECK(mv_maxdiff(rq_mv_grade(ones, -1), zero) == 0, "grade -1 not zero");
    CHECK(mv_maxdiff(rq_mv_grade(ones, 4), zero) == 0, "grade 4 not zero");
    rq_mv rev = rq_mv_reverse(ones);
    for (int i = 0; i < 8; i++)
        CHECK(rev.c[i] == (GRADE_OF[i] >= 2 ? -1 : 1), "reverse sign of %s", BLADE_NAME[i]);
}

static void test_rotors(void) {
    rq_rng r;
    rq_rng_seed(&r, 5);
    double w_unit = 0, w_grade = 0, w_norm = 0, w_inv = 0, w_comp = 0, w_fullnorm = 0;
    for (int t = 0; t < 1000; t++) {
        rq_mv R = random_rotor(&r), R2 = random_rotor(&r);
        w_unit = fmax(w_unit, mv_maxdiff(rq_mv_gp(R, rq_mv_reverse(R)), blade(RQ_MV_S)));
        w_unit = fmax(w_unit, fabs(rq_mv_norm2(R) - 1));
        /* grade 1 → grade 1, norm kept */
        rq_mv x = random_vector_mv(&r), y = rq_rotor_sandwich(R, x);
        w_grade = fmax(w_grade, mv_maxabs_except(y, RQ_MV_E1, RQ_MV_E3));
        w_norm = fmax(w_norm, fabs(rq_mv_norm2(y) - rq_mv_norm2(x)) / rq_mv_norm2(x));
        /* scalars and the pseudoscalar commute with even elements */
        rq_mv sc = {{0}};
        sc.c[RQ_MV_S] = rq_rng_gauss(&r);
        sc.c[RQ_MV_E123] = rq_rng_gauss(&r);
        w_inv = fmax(w_inv, mv_maxdiff(rq_rotor_sandwich(R, sc), sc));
        /* composition: R2 (R1 x R1~) R2~ = (R2 R1) x (R2 R1)~ for any multivector */
        rq_mv m = random_mv(&r);
        rq_mv lhs = rq_rotor_sandwich(R2, rq_rotor_sandwich(R, m));
        rq_mv rhs = rq_rotor_sandwich(rq_mv_gp(R2, R), m);
        w_comp = fmax(w_comp, mv_maxdiff(lhs, rhs));
        /* the sandwich is orthogonal on the whole algebra */
        w_fullnorm = fmax(w_fullnorm, fabs(rq_mv_norm2(rq_rotor_sandwich(R, m)) - rq_mv_norm2(m)) / rq_mv_norm2(m));
    }
    CHECK(w_unit < 1e-12, "R R~ - 1 = %.3g", w_unit);
    CHECK(w_grade < 1e-12, "sandwich leaks out of grade 1: %.3g", w_grade);
    CHECK(w_norm < 1e-12, "sandwich norm err %.3g", w_norm);
    CHECK(w_inv < 1e-12, "scalar/e123 not invariant: %.3g", w_inv);
    CHECK(w_comp < 1e-12, "composition err %.3g", w_comp);
    CHECK(w_fullnorm < 1e-12, "full-multivector norm err %.3g", w_fullnorm);
    TEST_NOTE("grade leak %.2g, composition err %.2g", w_grade, w_comp);

    /* exp(B/2) rotates by |B| in the plane of B and fixes its normal */
    CHECK(mv_maxdiff(rq_rotor_exp((rq_mv){{0}}), blade(RQ_MV_S)) == 0, "exp(0) != 1");
    double w_angle = 0, w_axis = 0;
    for (int t = 0; t < 200; t++) {
        double b[3], nb = 0;
        for (int i = 0; i < 3; i++) {
            b[i] = rq_rng_gauss(&r);
            nb += b[i] * b[i];
        }
        nb = sqrt(nb);
        double theta = 0.05 + 3.0 * rq_rng_uniform(&r); /* (0, π) */
        rq_mv B = {{0}};
        B.c[RQ_MV_E12] = theta * b[0] / nb;
        B.c[RQ_MV_E13] = theta * b[1] / nb;
        B.c[RQ_MV_E23] = theta * b[2] / nb;
        rq_mv R = rq_rotor_exp(B);
        /* normal of b12 e12 + b13 e13 + b23 e23 is (b23, −b13, b12) */
        rq_mv n = {{0, b[2], -b[1], b[0], 0, 0, 0, 0}};
        w_axis = fmax(w_axis, mv_maxdiff(rq_rotor_sandwich(R, n), n));
        /* a vector in the plane: x = random − projection on n */
        rq_mv x = random_vector_mv(&r);
        double dn = (x.c[1] * n.c[1] + x.c[2] * n.c[2] + x.c[3] * n.c[3]) / (nb * nb);
        for (int i = 1; i <= 3; i++) x.c[i] -= dn * n.c[i];
        rq_mv y = rq_rotor_sandwich(R, x);
        double cosang = (x.c[1] * y.c[1] + x.c[2] * y.c[2] + x.c[3] * y.c[3]) / rq_mv_norm2(x);
        w_angle = fmax(w_angle, fabs(acos(fmin(1, fmax(-1, cosang))) - theta));
    }
    CHECK(w_axis < 1e-12, "normal not fixed: %.3g", w_axis);
    CHECK(w_angle < 1e-6, "rotation angle != |B|: %.3g", w_angle);
}

static void test_apply3(void) {
    rq_rng r;
    rq_rng_seed(&r, 7);
    double w_fwd = 0, w_inv = 0, w_rt = 0;
    int alias_bad = 0;
    for (int t = 0; t < 10000; t++) {
        rq_mv R = random_rotor(&r);
        float rf[4] = {(float)R.c[RQ_MV_S], (float)R.c[RQ_MV_E12], (float)R.c[RQ_MV_E13], (float)R.c[RQ_MV_E23]};
        float v[3], y[3], z[3], yi[3];
        test_random_gauss(&r, v, 3);
        /* reference: full sandwich in double with the same (float) rotor */
        rq_mv Rd = {{rf[0], 0, 0, 0, rf[1], rf[2], rf[3], 0}};
        rq_mv x = {{0, v[0], v[1], v[2], 0, 0, 0, 0}};
        rq_mv want = rq_rotor_sandwich(Rd, x), want_inv = rq_rotor_sandwich(rq_mv_reverse(Rd), x);
        rq_rotor_apply3(rf, v, y);
        rq_rotor_apply3_inverse(rf, v, yi);
        rq_rotor_apply3_inverse(rf, y, z);
        double nv = sqrt((double)v[0] * v[0] + (double)v[1] * v[1] + (double)v[2] * v[2]);
        for (int i = 0; i < 3; i++) {
            w_fwd = fmax(w_fwd, fabs(y[i] - want.c[1 + i]) / nv);
            w_inv = fmax(w_inv, fabs(yi[i] - want_inv.c[1 + i]) / nv);
            w_rt = fmax(w_rt, fabs(z[i] - v[i]) / nv);
        }
        /* out == v gives the same bits */
        float a[3] = {v[0], v[1], v[2]};
        rq_rotor_apply3(rf, a, a);
        alias_bad += memcmp(a, y, sizeof a) != 0;
    }
    CHECK(w_fwd < 1e-6, "apply3 vs sandwich %.3g", w_fwd);
    CHECK(w_inv < 1e-6, "apply3_inverse vs R~ v R %.3g", w_inv);
    CHECK(w_rt < 1e-6, "apply3_inverse(apply3(v)) - v = %.3g", w_rt);
    CHECK(alias_bad == 0, "%d in-place results differ", alias_bad);
    TEST_NOTE("10000 rotors: |apply3 - sandwich| %.2g, round trip %.2g (relative)", w_fwd, w_rt);
}

/* ---- Haar on SO(3) ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* KS statistic of rotation angles against the Haar law F(θ) = (θ − sin θ)/π */
static double ks_haar_angle(double *theta, int n) {
    qsort(theta, (size_t)n, sizeof(double), cmp_double);
    double D = 0;
    for (int i = 0; i < n; i++) {
        double F = (theta[i] - sin(theta[i])) / PI;
        D = fmax(D, fmax(F - (double)i / n, (double)(i + 1) / n - F));
    }
    return D;
}

/* A block rotation made directly through the internal init (the public
 * rq_rotation_init lives in rotation.c and is tested in test_rotation.c). */
static rq_rotation *make_block(rq_rot_kind kind, int d, uint64_t seed, rq_status *st) {
    rq_rotation *rot = calloc(1, sizeof *rot);
    if (!rot) {
        *st = RQ_ERR_NOMEM;
        return NULL;
    }
    rot->kind = kind;
    rot->n_dims = d;
    *st = rq__rot_ops(RQ_ROT_ROTOR)->init(rot, seed); /* the init the three block rows share */
    if (*st != RQ_OK) {
        free(rot->block_params);
        free(rot->block_mats);
        free(rot->simd_coef);
        free(rot);
        return NULL;
    }
    return rot;
}

static void free_block(rq_rotation *rot) {
    if (!rot) return;
    free(rot->block_params);
    free(rot->block_mats);
    free(rot->simd_coef);
    free(rot);
}

static void test_haar_so3(void) {
    enum { N = 20000 };
    const double crit = 1.63 / sqrt((double)N); /* KS critical value, 1% level */
    double *theta = malloc(sizeof(double) * N);
    rq_status st;
    rq_rotation *rot = make_block(RQ_ROT_ROTOR, 3 * N, 2024, &st);
    CHECK(st == RQ_OK && rot && theta, "init: %s", rq_status_str(st));
    if (!rot || !theta) {
        free(theta);
        free_block(rot);
        return;
    }
    CHECK(rot->n_blocks == N, "n_blocks %d", rot->n_blocks);
    for (int i = 0; i < N; i++) theta[i] = 2 * acos(fmin(1.0, fabs((double)rot->block_params[4 * i])));
    double D_lib = ks_haar_angle(theta, N);
    free_block(rot);

    /* the seed's way: axis uniform on S², angle θ ~ U[0, 2π), R = exp(θ n̂ / 2) */
    rq_rng r;
    rq_rng_seed(&r, 2024);
    for (int i = 0; i < N; i++) {
        double a[3], na = 0;
        for (int k = 0; k < 3; k++) {
            a[k] = rq_rng_gauss(&r);
            na += a[k] * a[k];
        }
        na = sqrt(na);
        double ang = 2 * PI * rq_rng_uniform(&r);
        rq_mv B = {{0, 0, 0, 0, ang * a[0] / na, ang * a[1] / na, ang * a[2] / na, 0}};
        rq_mv R = rq_rotor_exp(B);
        theta[i] = 2 * acos(fmin(1.0, fabs(R.c[RQ_MV_S])));
    }
    double D_seed = ks_haar_angle(theta, N);
    free(theta);
    TEST_NOTE("KS vs Haar SO(3), n=%d, 1%% critical %.4f: library D = %.4f, seed-style D = %.4f", N, crit,
              D_lib, D_seed);
    CHECK(D_lib < crit, "library rotors not Haar: D = %.4f >= %.4f", D_lib, crit);
    /* uniform angle on [0, π] vs Haar: D → sup sin θ / π = 1/π ≈ 0.318 */
    CHECK(D_seed > 10 * crit, "the test has no power: seed-style D = %.4f", D_seed);
}

/* ---- block families --------------------------------------------------------- */

static const rq_rot_kind BLOCK_KINDS[3] = {RQ_ROT_ROTOR, RQ_ROT_PLANAR, RQ_ROT_ISO};
static const int BLOCK_SIZE[3] = {3, 2, 4};
static const int BLOCK_NP[3] = {4, 2, 8};
static const char *const BLOCK_NAME[3] = {"rotor", "planar", "iso"};
static const int BLOCK_DIMS[] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 64, 80, 96, 100, 112, 127, 128, 129, 192, 256};

static int block_off(const rq_rotation *rot, int b) {
    int B = rot->block, d = rot->n_dims;
    return b < d / B ? b * B : d - B; /* the tail block overlaps */
}

/* determinant of an n×n (n ≤ 4) row-major matrix, Gaussian elimination */
static double det_small(const float *m, int n) {
    double a[16], det = 1;
    for (int i = 0; i < n * n; i++) a[i] = m[i];
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int i = c + 1; i < n; i++)
            if (fabs(a[i * n + c]) > fabs(a[p * n + c])) p = i;
        if (a[p * n + c] == 0) return 0;
        if (p != c) {
            for (int j = 0; j < n; j++) {
                double t = a[c * n + j];
                a[c * n + j] = a[p * n + j];
                a[p * n + j] = t;
            }
            det = -det;
        }
        det *= a[c * n + c];
        for (int i = c + 1; i < n; i++) {
            double f = a[i * n + c] / a[c * n + c];
            for (int j = c; j < n; j++) a[i * n + j] -= f * a[c * n + j];
        }
    }
    return det;
}

/* max |MᵀM − I| */
static double orth_err(const float *m, int n) {
    double w = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += (double)m[k * n + i] * m[k * n + j];
            w = fmax(w, fabs(s - (i == j)));
        }
    return w;
}

static uint64_t fnv1a_floats(const float *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &p[i], 4);
        for (int k = 0; k < 4; k++) { /* little-endian byte order on every host */
            h ^= (u >> (8 * k)) & 0xffu;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

static void test_block_families(void) {
    rq_rng r;
    rq_rng_seed(&r, 13);
    enum { DMAX = 256 };
    float x[DMAX], y[DMAX], z[DMAX], w[DMAX], xs[DMAX];
    double col[DMAX];
    for (int k = 0; k < 3; k++)
        for (size_t di = 0; di < sizeof BLOCK_DIMS / sizeof BLOCK_DIMS[0]; di++) {
            const int d = BLOCK_DIMS[di], B = BLOCK_SIZE[k];
            const char *nm = BLOCK_NAME[k];
            rq_status st;
            rq_rotation *rot = make_block(BLOCK_KINDS[k], d, 99, &st);
            if (d < B) {
                CHECK(st == RQ_ERR_DIM && !rot, "%s d=%d: want RQ_ERR_DIM, got %s", nm, d, rq_status_str(st));
                free_block(rot);
                continue;
            }
            CHECK(st == RQ_OK && rot, "%s d=%d: %s", nm, d, rq_status_str(st));
            if (!rot) continue;
            /* counts */
            int want_blocks = d / B + (d % B ? 1 : 0);
            CHECK(rot->block == B && rot->n_blocks == want_blocks && rot->n_block_params == BLOCK_NP[k] &&
                      rot->n_params == (size_t)want_blocks * (size_t)BLOCK_NP[k],
                  "%s d=%d: block %d n_blocks %d n_block_params %d n_params %zu", nm, d, rot->block,
                  rot->n_blocks, rot->n_block_params, rot->n_params);

            /* norm and inverse, out of place and in place */
            double w_norm = 0, w_inv = 0;
            int bits_bad = 0;
            for (int t = 0; t < 8; t++) {
                test_random_gauss(&r, x, d);
                memcpy(xs, x, sizeof(float) * (size_t)d);
                rq__rot_ops(rot->kind)->forward(rot, x, y);
                rq__rot_ops(rot->kind)->inverse(rot, y, z);
                bits_bad += memcmp(x, xs, sizeof(float) * (size_t)d) != 0; /* input untouched */
                double nx = 0, ny = 0;
                for (int i = 0; i < d; i++) {
                    nx += (double)x[i] * x[i];
                    ny += (double)y[i] * y[i];
                    w_inv = fmax(w_inv, fabs(z[i] - x[i]));
                }
                w_norm = fmax(w_norm, fabs(sqrt(ny) - sqrt(nx)) / sqrt(nx));
                memcpy(w, x, sizeof(float) * (size_t)d);
                rq__rot_ops(rot->kind)->forward(rot, w, w);
                bits_bad += memcmp(w, y, sizeof(float) * (size_t)d) != 0;
                rq__rot_ops(rot->kind)->inverse(rot, w, w);
                bits_bad += memcmp(w, z, sizeof(float) * (size_t)d) != 0;
            }
            CHECK(w_norm < 1e-5 && w_inv < 1e-5, "%s d=%d: norm err %.3g inverse err %.3g", nm, d, w_norm, w_inv);
            CHECK(bits_bad == 0, "%s d=%d: in place differs from out of place (%d)", nm, d, bits_bad);

            /* block_mats: composing the matrices gives the forward map's columns;
             * each block is orthogonal with det +1 */
            double w_mat = 0, w_orth = 0, w_det = 0;
            for (int j = 0; j < d; j++) {
                memset(x, 0, sizeof(float) * (size_t)d);
                x[j] = 1;
                rq__rot_ops(rot->kind)->forward(rot, x, y);
                for (int i = 0; i < d; i++) col[i] = i == j;
                for (int b = 0; b < rot->n_blocks; b++) {
                    const float *m = rot->block_mats + (size_t)b * (size_t)(B * B);
                    double *v = col + block_off(rot, b), out[4];
                    for (int i = 0; i < B; i++) {
                        out[i] = 0;
                        for (int q = 0; q < B; q++) out[i] += m[i * B + q] * v[q];
                    }
                    for (int i = 0; i < B; i++) v[i] = out[i];
                }
                for (int i = 0; i < d; i++) w_mat = fmax(w_mat, fabs(col[i] - y[i]));
            }
            for (int b = 0; b < rot->n_blocks; b++) {
                const float *m = rot->block_mats + (size_t)b * (size_t)(B * B);
                w_orth = fmax(w_orth, orth_err(m, B));
                w_det = fmax(w_det, fabs(det_small(m, B) - 1));
            }
            CHECK(w_mat < 1e-6, "%s d=%d: block_mats vs forward %.3g", nm, d, w_mat);
            CHECK(w_orth < 1e-6 && w_det < 1e-6, "%s d=%d: orthogonality %.3g det-1 %.3g", nm, d, w_orth, w_det);

            /* determinism: same seed → same bytes; another seed → other params */
            rq_rotation *same = make_block(BLOCK_KINDS[k], d, 99, &st);
            rq_rotation *other = make_block(BLOCK_KINDS[k], d, 100, &st);
            CHECK(same && other, "%s d=%d: re-init failed", nm, d);
            if (same && other) {
                size_t np = rot->n_params, nm2 = (size_t)rot->n_blocks * (size_t)(B * B);
                CHECK(memcmp(same->block_params, rot->block_params, sizeof(float) * np) == 0 &&
                          memcmp(same->block_mats, rot->block_mats, sizeof(float) * nm2) == 0,
                      "%s d=%d: same seed, different parameters", nm, d);
                int n_same_blocks = 0;
                for (int b = 0; b < rot->n_blocks; b++)
                    n_same_blocks += memcmp(other->block_params + (size_t)b * (size_t)BLOCK_NP[k],
                                            rot->block_params + (size_t)b * (size_t)BLOCK_NP[k],
                                            sizeof(float) * (size_t)BLOCK_NP[k]) == 0;
                CHECK(n_same_blocks == 0, "%s d=%d: %d blocks equal across seeds", nm, d, n_same_blocks);
            }
            free_block(same);
            free_block(other);
            free_block(rot);
        }

    /* the documented counts at d = 128 */
    rq_status st;
    rq_rotation *rot = make_block(RQ_ROT_ROTOR, 128, 1, &st);
    CHECK(rot && rot->n_blocks == 43 && rot->n_params == 172, "rotor d=128: %d blocks, %zu params",
          rot ? rot->n_blocks : -1, rot ? rot->n_params : 0);
    free_block(rot);
    rot = make_block(RQ_ROT_PLANAR, 128, 1, &st);
    CHECK(rot && rot->n_blocks == 64 && rot->n_params == 128, "planar d=128");
    free_block(rot);
    rot = make_block(RQ_ROT_ISO, 128, 1, &st);
    CHECK(rot && rot->n_blocks == 32 && rot->n_params == 256, "iso d=128");
    free_block(rot);
    /* not a block kind */
    rot = make_block(RQ_ROT_DENSE, 128, 1, &st);
    CHECK(!rot && st == RQ_ERR_INVALID_ARG, "dense through the block init: %s", rq_status_str(st));
    free_block(rot);
}

/* Golden parameter bytes: the draw order (docs/FORMAT.md) fixes every bit.
 * If this fails after an intended change to the PRNG or the draw order,
 * the format version must change too. */
static void test_block_golden(void) {
    /* FNV-1a of the parameter floats (little-endian bytes), d = 128, seed 42 */
    static const uint64_t GOLDEN[3] = {0xcafd85721b8a94c1ull, 0x101da42a59cb2cd6ull, 0xc5f30f462be182fbull};
    for (int k = 0; k < 3; k++) {
        rq_status st;
        rq_rotation *rot = make_block(BLOCK_KINDS[k], 128, 42, &st);
        CHECK(rot, "%s init", BLOCK_NAME[k]);
        if (!rot) continue;
        uint64_t h = fnv1a_floats(rot->block_params, rot->n_params);
        TEST_NOTE("%s d=128 seed=42: params hash %016llx, first block %a %a", BLOCK_NAME[k], (unsigned long long)h,
                  rot->block_params[0], rot->block_params[1]);
        CHECK(h == GOLDEN[k], "%s golden hash %016llx", BLOCK_NAME[k], (unsigned long long)h);
        free_block(rot);
    }
}

/* Haar moments of each block family, and iso as a general SO(4) element.
 * For Haar on SO(n): E[tr M] = 0 and E[(tr M)²] = 1 for n ≥ 3, 2 for n = 2.
 * A left-isoclinic map q_L v alone has E[(tr)²] = 16 E[w²] = 4, and the
 * seed's uniform-angle rotors have E[tr] = 1, so both would fail. */
static void test_block_haar(void) {
    enum { NB = 20000 };
    const double want_tr2[3] = {1.0, 2.0, 1.0};
    for (int k = 0; k < 3; k++) {
        const int B = BLOCK_SIZE[k];
        rq_status st;
        rq_rotation *rot = make_block(BLOCK_KINDS[k], B * NB, 77, &st);
        CHECK(rot, "%s init: %s", BLOCK_NAME[k], rq_status_str(st));
        if (!rot) continue;
        double s1 = 0, s2 = 0;
        for (int b = 0; b < NB; b++) {
            const float *m = rot->block_mats + (size_t)b * (size_t)(B * B);
            double tr = 0;
            for (int i = 0; i < B; i++) tr += m[i * B + i];
            s1 += tr;
            s2 += tr * tr;
        }
        s1 /= NB;
        s2 /= NB;
        TEST_NOTE("%s: E[tr] = %.4f (0), E[tr^2] = %.4f (%.0f) over %d blocks", BLOCK_NAME[k], s1, s2,
                  want_tr2[k], NB);
        /* standard errors are ≈ 0.01–0.015 at NB = 20000; tolerances ≈ 5σ */
        CHECK(fabs(s1) < 0.06, "%s E[tr] = %.4f", BLOCK_NAME[k], s1);
        CHECK(fabs(s2 - want_tr2[k]) < 0.08, "%s E[tr^2] = %.4f", BLOCK_NAME[k], s2);
        free_block(rot);
    }

    /* iso: each block is q_L v conj(q_R) with a quaternion product written
     * here from i² = j² = k² = ijk = −1 (unit table, not the closed form) */
    static const int QSIGN[4][4] = {{1, 1, 1, 1}, {1, -1, 1, -1}, {1, -1, -1, 1}, {1, 1, -1, -1}};
    static const int QIDX[4][4] = {{0, 1, 2, 3}, {1, 0, 3, 2}, {2, 3, 0, 1}, {3, 2, 1, 0}};
    rq_status st;
    rq_rotation *rot = make_block(RQ_ROT_ISO, 4 * 64, 5, &st);
    CHECK(rot, "iso init");
    if (!rot) return;
    double w_q = 0, w_orth = 0, w_det = 0;
    int n_general = 0;
    for (int b = 0; b < rot->n_blocks; b++) {
        const float *p = rot->block_params + 8 * b, *m = rot->block_mats + 16 * b;
        double qr_conj[4] = {p[4], -p[5], -p[6], -p[7]};
        for (int j = 0; j < 4; j++) {
            double t[4] = {0}, y[4] = {0};
            for (int a = 0; a < 4; a++) t[QIDX[a][j]] += QSIGN[a][j] * (double)p[a]; /* q_L e_j */
            for (int a = 0; a < 4; a++)
                for (int c = 0; c < 4; c++) y[QIDX[a][c]] += QSIGN[a][c] * t[a] * qr_conj[c];
            for (int i = 0; i < 4; i++) w_q = fmax(w_q, fabs(m[i * 4 + j] - y[i]));
        }
        w_orth = fmax(w_orth, orth_err(m, 4));
        w_det = fmax(w_det, fabs(det_small(m, 4) - 1));
        /* isoclinic test: with u = M·1, a left-isoclinic map is v ↦ u v and a
         * right-isoclinic one v ↦ v u; a general rotation is neither */
        double u[4] = {m[0], m[4], m[8], m[12]}, dl = 0, dr = 0;
        for (int j = 0; j < 4; j++) {
            double ul[4] = {0}, ur[4] = {0};
            for (int a = 0; a < 4; a++) {
                ul[QIDX[a][j]] += QSIGN[a][j] * u[a]; /* u e_j */
                ur[QIDX[j][a]] += QSIGN[j][a] * u[a]; /* e_j u */
            }
            for (int i = 0; i < 4; i++) {
                dl = fmax(dl, fabs(m[i * 4 + j] - ul[i]));
                dr = fmax(dr, fabs(m[i * 4 + j] - ur[i]));
            }
        }
        n_general += dl > 0.05 && dr > 0.05;
    }
    CHECK(w_q < 1e-6, "iso block_mats != q_L v conj(q_R): %.3g", w_q);
    CHECK(w_orth < 1e-6 && w_det < 1e-6, "iso orthogonality %.3g det %.3g", w_orth, w_det);
    CHECK(n_general >= rot->n_blocks * 9 / 10, "only %d of %d iso blocks are general SO(4) rotations", n_general,
          rot->n_blocks);
    TEST_NOTE("iso: %d of %d blocks neither left- nor right-isoclinic; |M - q_L v q_R*| %.2g", n_general,
              rot->n_blocks, w_q);
    free_block(rot);
}

const rq_test tests_clifford[] = {
    {"clifford_basis", test_basis},
    {"clifford_assoc_reverse_grade", test_assoc_reverse_grade},
    {"clifford_rotors", test_rotors},
    {"clifford_apply3", test_apply3},
    {"clifford_haar_so3", test_haar_so3},
    {"clifford_block_families", test_block_families},
    {"clifford_block_golden", test_block_golden},
    {"clifford_block_haar", test_block_haar},
    {NULL, NULL},
};
