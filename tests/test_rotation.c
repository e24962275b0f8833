/*
 * test_rotation.c — every rotation family through the public API: norm
 * preservation and exact inverse for every supported d, orthogonality of
 * the full matrix, determinism per seed, mixing (Hadamard/dense spread one
 * outlier channel over all coordinates; block families cannot), Haar
 * moments of the dense rotation, parameter counts, bad arguments.
 */
#include "test.h"
#include "internal.h"

static const int DIMS[] = {2, 3, 4, 5, 7, 8, 12, 32, 48, 64, 80, 96, 100, 112, 127, 128, 129, 192, 256, 384, 512};
static const rq_rot_kind KINDS[] = {RQ_ROT_NONE, RQ_ROT_DENSE, RQ_ROT_HADAMARD, RQ_ROT_ROTOR, RQ_ROT_PLANAR, RQ_ROT_ISO};
_Static_assert(sizeof KINDS / sizeof KINDS[0] == RQ_ROT_COUNT, "a new rotation family needs its row here and in supported()");

static bool supported(rq_rot_kind k, int d) {
    if (k == RQ_ROT_ROTOR && d < 3) return false;
    if (k == RQ_ROT_ISO && d < 4) return false;
    if (k == RQ_ROT_HADAMARD) {
        int m = d;
        while (m % 2 == 0) m /= 2;
        if (m > 63) return false;
    }
    return true;
}

static void test_norm_inverse(void) {
    rq_rng r;
    rq_rng_seed(&r, 11);
    float x[512 * 4], y[512 * 4], z[512 * 4];
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++)
        for (size_t i = 0; i < sizeof DIMS / sizeof DIMS[0]; i++) {
            int d = DIMS[i];
            rq_rotation *rot = NULL;
            rq_status st = rq_rotation_init(&rot, KINDS[k], d, 99);
            if (!supported(KINDS[k], d)) {
                CHECK(st == RQ_ERR_DIM, "%s d=%d should be rejected, got %s", rq_rot_kind_name(KINDS[k]), d, rq_status_str(st));
                continue;
            }
            CHECK(st == RQ_OK, "%s d=%d: %s", rq_rot_kind_name(KINDS[k]), d, rq_status_str(st));
            if (st) continue;
            test_random_gauss(&r, x, 4 * d);
            CHECK_OK(rq_rotation_forward(rot, x, y, 4));
            CHECK_OK(rq_rotation_inverse(rot, y, z, 4));
            double worst_n = 0, worst_i = 0;
            for (int v = 0; v < 4; v++) {
                double nx = 0, ny = 0;
                for (int j = 0; j < d; j++) {
                    nx += (double)x[v * d + j] * x[v * d + j];
                    ny += (double)y[v * d + j] * y[v * d + j];
                    double e = fabs(z[v * d + j] - x[v * d + j]);
                    worst_i = e > worst_i ? e : worst_i;
                }
                double e = fabs(sqrt(ny) - sqrt(nx)) / sqrt(nx);
                worst_n = e > worst_n ? e : worst_n;
            }
            CHECK(worst_n < 1e-5 && worst_i < 1e-5, "%s d=%d norm err %.2g inverse err %.2g",
                  rq_rot_kind_name(KINDS[k]), d, worst_n, worst_i);
            /* in place gives the same bytes */
            memcpy(z, x, sizeof(float) * (size_t)(4 * d));
            rq_rotation_forward(rot, z, z, 4);
            CHECK(memcmp(z, y, sizeof(float) * (size_t)(4 * d)) == 0, "%s d=%d in place", rq_rot_kind_name(KINDS[k]), d);
            rq_rotation_free(rot);
        }
}

/* Builds Π column by column and checks ΠᵀΠ = I. */
static void test_orthogonal_matrix(void) {
    const int dims[] = {64, 80, 96, 112, 128, 192};
    for (size_t k = 1; k < sizeof KINDS / sizeof KINDS[0]; k++)
        for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
            int d = dims[i];
            rq_rotation *rot;
            CHECK_OK(rq_rotation_init(&rot, KINDS[k], d, 3));
            float *m = calloc((size_t)d * d, sizeof(float));
            for (int j = 0; j < d; j++) m[(size_t)j * d + j] = 1;
            rq_rotation_forward(rot, m, m, (size_t)d); /* row j = Π e_j */
            double worst = 0;
            for (int a = 0; a < d; a++)
                for (int b = 0; b < d; b++) {
                    double s = 0;
                    for (int t = 0; t < d; t++) s += (double)m[(size_t)a * d + t] * m[(size_t)b * d + t];
                    double e = fabs(s - (a == b));
                    worst = e > worst ? e : worst;
                }
            CHECK(worst < 1e-5, "%s d=%d |ΠᵀΠ − I| = %.2g", rq_rot_kind_name(KINDS[k]), d, worst);
            free(m);
            rq_rotation_free(rot);
        }
}

static void test_determinism(void) {
    for (size_t k = 1; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        int d = 96;
        rq_rotation *a, *b, *c;
        CHECK_OK(rq_rotation_init(&a, KINDS[k], d, 5));
        CHECK_OK(rq_rotation_init(&b, KINDS[k], d, 5));
        CHECK_OK(rq_rotation_init(&c, KINDS[k], d, 6));
        float x[96], ya[96], yb[96], yc[96];
        for (int i = 0; i < d; i++) x[i] = (float)(i % 7) - 3.0f;
        rq_rotation_forward(a, x, ya, 1);
        rq_rotation_forward(b, x, yb, 1);
        rq_rotation_forward(c, x, yc, 1);
        CHECK(memcmp(ya, yb, sizeof ya) == 0, "%s same seed", rq_rot_kind_name(KINDS[k]));
        CHECK(memcmp(ya, yc, sizeof ya) != 0, "%s different seed", rq_rot_kind_name(KINDS[k]));
        rq_rotation_free(a);
        rq_rotation_free(b);
        rq_rotation_free(c);
    }
}

/* One outlier channel e_0: a full rotation spreads it (max |y_i| small), a
 * block rotation keeps it inside one block. This is why RotorQuant loses on
 * real keys (reference_impl.md §6.5). */
static void test_mixing(void) {
    const int d = 128;
    float x[128] = {0}, y[128];
    x[0] = 1;
    for (size_t k = 1; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        rq_rotation *rot;
        CHECK_OK(rq_rotation_init(&rot, KINDS[k], d, 1));
        rq_rotation_forward(rot, x, y, 1);
        float mx = 0;
        int nz = 0;
        for (int i = 0; i < d; i++) {
            mx = fabsf(y[i]) > mx ? fabsf(y[i]) : mx;
            nz += fabsf(y[i]) > 1e-7f;
        }
        TEST_NOTE("%-8s e0 -> max|y| %.4f, nonzero coords %d", rq_rot_kind_name(KINDS[k]), mx, nz);
        if (KINDS[k] == RQ_ROT_HADAMARD) CHECK(nz == d && fabsf(mx - 1 / sqrtf(128)) < 1e-6f, "hadamard spreads evenly");
        if (KINDS[k] == RQ_ROT_DENSE) CHECK(nz == d && mx < 0.5f, "dense spreads");
        if (KINDS[k] >= RQ_ROT_ROTOR) CHECK(nz <= 4 && mx > 0.4f, "block rotation stays local");
        rq_rotation_free(rot);
    }
    /* Kronecker form at d = 96 = 32·3 mixes every input into every output. */
    rq_rotation *rot;
    CHECK_OK(rq_rotation_init(&rot, RQ_ROT_HADAMARD, 96, 1));
    float m[96 * 96] = {0};
    for (int j = 0; j < 96; j++) m[j * 96 + j] = 1;
    rq_rotation_forward(rot, m, m, 96);
    int zeros = 0;
    for (int i = 0; i < 96 * 96; i++) zeros += fabsf(m[i]) < 1e-6f;
    CHECK(zeros == 0, "hadamard d=96 has %d zero entries", zeros);
    rq_rotation_free(rot);
}

/* Haar on O(d): E[Π_00] = 0, E[Π_00²] = 1/d over seeds (the sign fix makes
 * the first moment vanish; without it QR's R>0 convention biases it). */
static void test_dense_haar(void) {
    const int d = 8, n = 4000;
    double s1 = 0, s2 = 0;
    for (int t = 0; t < n; t++) {
        rq_rotation *rot;
        rq_rotation_init(&rot, RQ_ROT_DENSE, d, (uint64_t)t + 1000);
        s1 += rot->mat[0];
        s2 += (double)rot->mat[0] * rot->mat[0];
        rq_rotation_free(rot);
    }
    s1 /= n, s2 /= n;
    TEST_NOTE("dense d=8 over %d seeds: E[P00] = %.4f (0), E[P00^2] = %.4f (%.4f)", n, s1, s2, 1.0 / d);
    CHECK(fabs(s1) < 4 * sqrt(1.0 / d / n), "mean");
    CHECK(fabs(s2 - 1.0 / d) < 0.01, "second moment");
}

static void test_params_and_errors(void) {
    rq_rotation *rot = NULL;
    CHECK_OK(rq_rotation_init(&rot, RQ_ROT_HADAMARD, 128, 1));
    CHECK(rq_rotation_n_params(rot) == 128, "hadamard 128 params %zu", rq_rotation_n_params(rot));
    rq_rotation_free(rot);
    CHECK_OK(rq_rotation_init(&rot, RQ_ROT_HADAMARD, 96, 1));
    CHECK(rq_rotation_n_params(rot) == 96 + 9, "hadamard 96 params %zu", rq_rotation_n_params(rot));
    rq_rotation_free(rot);
    CHECK_OK(rq_rotation_init(&rot, RQ_ROT_DENSE, 64, 1));
    CHECK(rq_rotation_n_params(rot) == 64 * 64, "dense params");
    rq_rotation_free(rot);
    CHECK_OK(rq_rotation_init(&rot, RQ_ROT_ROTOR, 128, 1));
    CHECK(rq_rotation_n_params(rot) == 43 * 4, "rotor params %zu", rq_rotation_n_params(rot));
    rq_rotation_free(rot);
    CHECK(rq_rotation_init(NULL, RQ_ROT_DENSE, 64, 1) == RQ_ERR_INVALID_ARG, "NULL out");
    CHECK(rq_rotation_init(&rot, RQ_ROT_DENSE, 1, 1) == RQ_ERR_DIM && rot == NULL, "d=1");
    CHECK(rq_rotation_init(&rot, RQ_ROT_DENSE, RQ_MAX_DIMS + 1, 1) == RQ_ERR_DIM, "d too large");
    CHECK(rq_rotation_init(&rot, (rq_rot_kind)42, 64, 1) == RQ_ERR_INVALID_ARG, "bad kind");
    CHECK(rq_rotation_init(&rot, RQ_ROT_COUNT, 64, 1) == RQ_ERR_INVALID_ARG, "RQ_ROT_COUNT is not a kind");
    CHECK(rq_rotation_init(&rot, (rq_rot_kind)-1, 64, 1) == RQ_ERR_INVALID_ARG, "negative kind");
    CHECK(!strcmp(rq_rot_kind_name(RQ_ROT_COUNT), "?") && !strcmp(rq_rot_kind_name(RQ_ROT_ISO), "iso"), "kind names");
    CHECK(rq_rotation_forward(NULL, NULL, NULL, 1) == RQ_ERR_INVALID_ARG, "NULL rot");
    rq_rotation_free(NULL);
}

const rq_test tests_rotation[] = {
    {"rotation_norm_inverse_all_dims", test_norm_inverse},
    {"rotation_orthogonal_matrix", test_orthogonal_matrix},
    {"rotation_determinism", test_determinism},
    {"rotation_mixing_outlier", test_mixing},
    {"rotation_dense_haar_moments", test_dense_haar},
    {"rotation_params_errors", test_params_and_errors},
    {NULL, NULL},
};
