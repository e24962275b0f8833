/*
 * test_quant.c — quantizers for every type: documented sizes, MSE against
 * the independently computed Lloyd-Max values, family comparison on
 * isotropic vs outlier-channel data, error falling with bits, QJL
 * unbiasedness vs MSE shrinkage on correlated pairs, golden bytes,
 * re-encoding, norm correction, inner products, and bad inputs.
 */
#include "test.h"
#include "internal.h"

static const char *FAMS[] = {"turbo", "dense", "rotor", "planar", "iso"};
/* d × distortion, exact law d=128, b=1..5 (an independent solve; b = 5:
 * Lloyd-Max with closed-form cell moments from the regularized incomplete
 * beta function, mpmath, 0.00245146) */
static const double MSE128[5] = {0.36089, 0.11600, 0.033966, 0.009315, 0.0024515};

static uint64_t fnv1a(const void *p, size_t n, uint64_t h) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static rq_quantizer *make(const char *name, int d) {
    rq_quantizer *q = NULL;
    rq_status st = rq_quantizer_init(&q, name, d, NULL);
    CHECK(st == RQ_OK, "%s d=%d: %s", name, d, rq_status_str(st));
    return q;
}

/* Mean ‖x − x̂‖²/‖x‖² over n vectors. */
static double measure_mse(rq_quantizer *q, const float *x, int n) {
    int d = rq_quantizer_dims(q);
    size_t bpv = rq_quantizer_bytes_per_vector(q);
    uint8_t *blk = malloc(bpv * (size_t)n);
    float *xh = malloc(sizeof(float) * (size_t)d * n);
    CHECK_OK(rq_quantizer_encode(q, x, blk, (size_t)n));
    CHECK_OK(rq_quantizer_decode(q, blk, xh, (size_t)n));
    double s = 0;
    for (int v = 0; v < n; v++) {
        double e = 0, nn = 0;
        for (int j = 0; j < d; j++) {
            double t = (double)x[v * d + j] - xh[v * d + j];
            e += t * t;
            nn += (double)x[v * d + j] * x[v * d + j];
        }
        s += e / nn;
    }
    free(blk);
    free(xh);
    return s / n;
}

/* Unit vectors with `n_out` outlier channels of 10–30× the std dev (as real
 * keys have), then normalized. */
static void outlier_data(rq_rng *r, float *x, int n, int d, int n_out) {
    for (int v = 0; v < n; v++) {
        float *p = x + (size_t)v * d;
        test_random_gauss(r, p, d);
        for (int k = 0; k < n_out; k++) p[(k * 37 + 5) % d] *= 10.0f + 20.0f * k / (n_out > 1 ? n_out - 1 : 1);
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)p[j] * p[j];
        for (int j = 0; j < d; j++) p[j] = (float)(p[j] / sqrt(s));
    }
}

static void test_sizes(void) {
    struct { const char *t; int d; size_t bytes; } cases[] = {
        {"turbo3", 128, 50}, {"turbo4", 128, 66}, {"turbo2", 128, 34}, {"turbo1", 128, 18},
        {"turbo3p", 128, 52}, {"turbo4p", 128, 68}, {"turbo1p", 128, 20}, {"rotor3", 128, 50},
        {"planar3", 128, 50}, {"iso3", 128, 50}, {"dense3", 128, 50}, {"turbo3", 64, 26},
        {"turbo3", 80, 32}, {"turbo3", 96, 38}, {"turbo3", 112, 44}, {"turbo3", 192, 74},
        {"turbo3", 256, 98}, {"rotor3", 100, 40}, {"turbo4", 64, 34}, {"f32", 128, 512},
        {"f16", 128, 256}, {"q8_0", 128, 136}, {"q4_0", 128, 72}, {"q4_0h", 128, 72},
        {"q4_0", 64, 36}, {"q8_0", 80, 0}, {"q4_0h", 96, 54}, {"rotor3", 2, 0}, {"iso2", 3, 0},
        /* 5 bits: 2 + ⌈5d/8⌉ (d not a multiple of 8: the last byte is partly used) */
        {"turbo5", 128, 82}, {"turbo5", 64, 42}, {"dense5", 96, 62}, {"rotor5", 100, 65}, {"planar5", 80, 52},
        {"iso5", 7, 7}, {"turbo5", 112, 72},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t b = rq_type_bytes_per_vector(rq_type_find(cases[i].t), cases[i].d);
        CHECK(b == cases[i].bytes, "%s d=%d: %zu bytes, documented %zu", cases[i].t, cases[i].d, b, cases[i].bytes);
    }
    /* 5-bit MSE rows for every family; the QJL `p` rows stop at 4 */
    for (int f = 0; f < 5; f++) {
        char name[16];
        snprintf(name, sizeof name, "%s5", FAMS[f]);
        const rq_type_info *t = rq_type_find(name);
        CHECK(t && t->family == RQ_FAMILY_MSE && t->n_bits == 5, "%s registered", name);
        snprintf(name, sizeof name, "%s5p", FAMS[f]);
        CHECK(!rq_type_find(name), "%s must not exist", name);
    }
    /* every registered type: the quantizer's size equals the registry's and
     * the encoder writes exactly that many bytes (canary after the block) */
    rq_rng r;
    rq_rng_seed(&r, 1);
    float x[256];
    test_random_gauss(&r, x, 256);
    for (int i = 0; i < rq_type_count(); i++) {
        const rq_type_info *t = rq_type_at(i);
        const int dims[] = {64, 96, 128, 256};
        for (int k = 0; k < 4; k++) {
            rq_quantizer *q = make(t->name, dims[k]);
            if (!q) continue;
            size_t b = rq_quantizer_bytes_per_vector(q);
            CHECK(b == rq_type_bytes_per_vector(t, dims[k]), "%s", t->name);
            uint8_t buf[1100];
            memset(buf, 0xAB, sizeof buf);
            float xk[256];
            CHECK_OK(rq_quantizer_encode(q, test_fit_k8(t->name, x, xk, 1, dims[k]), buf, 1));
            CHECK(buf[b] == 0xAB && buf[b + 1] == 0xAB, "%s d=%d writes past its block", t->name, dims[k]);
            rq_quantizer_free(q);
        }
    }
}

static void test_unit_mse(void) {
    const int d = 128, n = 20000;
    rq_rng r;
    rq_rng_seed(&r, rq_seed_derive(1, RQ_STREAM_DATA, 0));
    float *x = malloc(sizeof(float) * d * n);
    for (int v = 0; v < n; v++) test_random_unit(&r, x + (size_t)v * d, d);
    for (int f = 0; f < 5; f++) {
        double prev = 1;
        char line[256];
        int o = snprintf(line, sizeof line, "%-7s", FAMS[f]);
        for (int b = 1; b <= 5; b++) {
            char name[16];
            snprintf(name, sizeof name, "%s%d", FAMS[f], b);
            rq_quantizer *q = make(name, d);
            double m = measure_mse(q, x, n);
            double tol = f < 2 ? 0.03 : 0.05;
            CHECK(fabs(m / MSE128[b - 1] - 1) <= tol, "%s: MSE %.5f vs %.5f", name, m, MSE128[b - 1]);
            CHECK(m < prev, "%s: error must fall with bits", name);
            prev = m;
            o += snprintf(line + o, sizeof line - (size_t)o, "  b=%d %#.5g (%+.1f%%)", b, m, 100 * (m / MSE128[b - 1] - 1));
            rq_quantizer_free(q);
        }
        TEST_NOTE("isotropic d=128 %s", line);
    }
    free(x);
}

/* Same data with 4 outlier channels: full rotations keep the isotropic MSE,
 * block rotations cannot spread the outliers and lose (printed). */
static void test_outlier_mse(void) {
    const int d = 128, n = 5000;
    rq_rng r;
    rq_rng_seed(&r, rq_seed_derive(2, RQ_STREAM_DATA, 0));
    float *x = malloc(sizeof(float) * d * n);
    outlier_data(&r, x, n, d, 4);
    for (int b = 2; b <= 5; b++) {
        double m[5];
        for (int f = 0; f < 5; f++) {
            char name[16];
            snprintf(name, sizeof name, "%s%d", FAMS[f], b);
            rq_quantizer *q = make(name, d);
            m[f] = measure_mse(q, x, n);
            rq_quantizer_free(q);
        }
        TEST_NOTE("4 outlier channels, b=%d: turbo %.5f dense %.5f rotor %.5f planar %.5f iso %.5f",
                  b, m[0], m[1], m[2], m[3], m[4]);
        /* after a Hadamard rotation spiky vectors are not Beta-distributed and
         * quantize slightly better than isotropic ones: never worse */
        CHECK(m[0] < 1.05 * MSE128[b - 1], "turbo hurt by outliers: %.5f", m[0]);
        for (int f = 2; f < 5; f++) CHECK(m[f] > 1.5 * m[0], "%s%d should be clearly worse than turbo", FAMS[f], b);
    }
    free(x);
}

/* ⟨x,y⟩ = ρ for unit x, y: y = ρx + √(1−ρ²) z, z ⊥ x. */
static void correlated_pair(rq_rng *r, float *x, float *y, int d, double rho) {
    float z[512];
    test_random_unit(r, x, d);
    test_random_unit(r, z, d);
    double p = 0, nz = 0;
    for (int j = 0; j < d; j++) p += (double)x[j] * z[j];
    for (int j = 0; j < d; j++) z[j] = (float)(z[j] - p * x[j]), nz += (double)z[j] * z[j];
    for (int j = 0; j < d; j++) y[j] = (float)(rho * x[j] + sqrt(1 - rho * rho) * z[j] / sqrt(nz));
}

/* Mean and standard error of <y, x^> − <y, x> over n correlated pairs. QJL is
 * unbiased over the random sketch S, so every group of 16 pairs uses a fresh
 * quantizer seed (a fixed S leaves a fixed, S-dependent bias). */
static void ip_bias(const char *name, int d, int n, double rho, double *mean, double *se, rq_qjl_kind qk) {
    rq_quant_config c = rq_quant_config_default();
    c.qjl = qk;
    rq_quantizer *q = NULL;
    rq_rng r;
    rq_rng_seed(&r, rq_seed_derive(3, RQ_STREAM_DATA, (uint64_t)d));
    uint8_t blk[2048];
    float x[512], y[512], est;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        if (i % 16 == 0) {
            rq_quantizer_free(q);
            c.seed = 1000 + (uint64_t)i;
            CHECK_OK(rq_quantizer_init(&q, name, d, &c));
        }
        correlated_pair(&r, x, y, d, rho);
        rq_quantizer_encode(q, x, blk, 1);
        rq_quantizer_dot(q, y, blk, 1, &est);
        double e = est - rho;
        s += e;
        s2 += e * e;
    }
    *mean = s / n;
    *se = sqrt((s2 / n - *mean * *mean) / n);
    rq_quantizer_free(q);
}

static void test_prod_unbiased(void) {
    const int d = 128, n = 6000;
    const char *prods[] = {"turbo2p", "turbo3p", "turbo4p", "dense3p", "rotor3p"};
    const char *mses[] = {"turbo1", "turbo2", "turbo3"};
    for (size_t i = 0; i < 5; i++) {
        double m, se;
        ip_bias(prods[i], d, n, 0.8, &m, &se, RQ_QJL_GAUSSIAN);
        TEST_NOTE("<x,y>=0.8 %-8s mean error %+.5f  (SE %.5f, %.1f SE)", prods[i], m, se, m / se);
        CHECK(fabs(m) < 3 * se, "%s biased: %+.5f (SE %.5f)", prods[i], m, se);
    }
    for (size_t i = 0; i < 3; i++) {
        double m, se;
        ip_bias(mses[i], d, n, 0.8, &m, &se, RQ_QJL_GAUSSIAN);
        TEST_NOTE("<x,y>=0.8 %-8s mean error %+.5f  (SE %.5f): shrinkage factor %.4f (1 - D = %.4f)",
                  mses[i], m, se, (0.8 + m) / 0.8, 1 - MSE128[i]);
        CHECK(m < -3 * se, "%s should show MSE shrinkage", mses[i]);
        CHECK(fabs((0.8 + m) / 0.8 - (1 - MSE128[i])) < 0.02, "shrinkage ≈ 1 − D");
    }
    double m, se;
    ip_bias("turbo3p", d, n, 0.8, &m, &se, RQ_QJL_STRUCTURED);
    /* randomized-Hadamard rows are not Gaussian: approximately unbiased only
     * (measured ~+0.001 at rho = 0.8, vs MSE-only shrinkage of −0.027) */
    TEST_NOTE("<x,y>=0.8 turbo3p, structured S: mean error %+.5f (SE %.5f)", m, se);
    CHECK(fabs(m) < 0.003, "structured QJL bias %+.5f", m);
}

/* Golden bytes: FNV-1a of the blocks of 8 fixed vectors for every type at
 * d=128 and d=96. Pinned; any change alters the format (RQ_FORMAT_VERSION).
 * The 5-bit MSE rows came later: they have their own hash, so the first one
 * still covers exactly the types (in the order) it always did. */
/* Golden hashes per type: FNV-1a of the blocks of 8 seeded Gaussian
 * vectors at d = 128 then d = 96 (where the type serves the dimension).
 * A mismatch names the type; bump RQ_FORMAT_VERSION if a change is intended. */
static const struct {
    const char *name;
    uint64_t hash;
} GOLDEN[] = {
    {"f32", 0x3d6b08e02fb32aafull},
    {"f16", 0x5264a9cf26eda4feull},
    {"q8_0", 0x9dedffd63da1a498ull},
    {"q4_0", 0xf493fd4cce3392b7ull},
    {"q4_0h", 0x1c36c7356d7ec89aull},
    {"turbo1", 0xdc95f1617be0a426ull},
    {"turbo2", 0x775c7bea93853bcbull},
    {"turbo3", 0x0779a484027f299dull},
    {"turbo4", 0xb23dd381b90075e3ull},
    {"turbo5", 0x93264060c5cba650ull},
    {"turbo1p", 0x40baa86720566068ull},
    {"turbo2p", 0x5db1703f912f0a25ull},
    {"turbo3p", 0x6dcadad36a2bd930ull},
    {"turbo4p", 0x780a64a188adf6fdull},
    {"dense1", 0xe68308f82f6ea1fcull},
    {"dense2", 0xd847dd8c18dacb68ull},
    {"dense3", 0xdeee5dff383d180bull},
    {"dense4", 0x8afa20420e941ce0ull},
    {"dense5", 0x9e04eba16fae5443ull},
    {"dense1p", 0x2672f611e66e4395ull},
    {"dense2p", 0x91e834958762602dull},
    {"dense3p", 0xaf9b9228d771424full},
    {"dense4p", 0x11da8f895aa2e6b3ull},
    {"rotor1", 0x96e3d3939bf553b9ull},
    {"rotor2", 0x3683eac41d7c4aaeull},
    {"rotor3", 0x09d810293b3cf252ull},
    {"rotor4", 0x7669744e3fd49398ull},
    {"rotor5", 0xd61f8e7e9d13cb5eull},
    {"rotor1p", 0xa09f4f9dfcacef24ull},
    {"rotor2p", 0x4295d46a2e74cc54ull},
    {"rotor3p", 0x01b882bcce9eb18full},
    {"rotor4p", 0xf21cca7887141ad1ull},
    {"planar1", 0x661ed7682db2c6d0ull},
    {"planar2", 0xd57171fe6bb182f2ull},
    {"planar3", 0x4b314531919b88f8ull},
    {"planar4", 0x63c231c2f0d750dfull},
    {"planar5", 0x4b1e4dde292487c7ull},
    {"planar1p", 0x40f1282905a7055dull},
    {"planar2p", 0xa0635a841e5c4689ull},
    {"planar3p", 0xfbb35f301a01d7d8ull},
    {"planar4p", 0xaa7e8fb46374d680ull},
    {"iso1", 0xc6f1a8ace5602b7full},
    {"iso2", 0xafd41fc8d2878a15ull},
    {"iso3", 0x0ff48049c5f136c0ull},
    {"iso4", 0x05745e053fbee508ull},
    {"iso5", 0x0690cd1401c0d581ull},
    {"iso1p", 0xba5804ff922ae129ull},
    {"iso2p", 0x280950160fbb67bcull},
    {"iso3p", 0x32b0e942dd082103ull},
    {"iso4p", 0xad6e0b3220c3d59aull},
    {"tcq2", 0xf465207de361e109ull},
    {"tcq3", 0x5641420d6e7d68b3ull},
    {"tcq4", 0x122e385c994996d1ull},
    {"tcq5", 0x7b14c3c5eac28be8ull},
    {"turbo1n8", 0x186d9455f3c33827ull},
    {"turbo2n8", 0xad83be5ec54672a2ull},
    {"turbo3n8", 0x9054165e5a076614ull},
    {"turbo4n8", 0xc1e1fe89c9974d66ull},
    {"turbo5n8", 0x690e5ffc8d11d17bull},
    {"tcq2n8", 0xa10b697de6a76927ull},
    {"tcq3n8", 0x534154b06ce0e88dull},
    {"tcq4n8", 0xe1a30e82fa64f023ull},
    {"tcq5n8", 0x8f0712080dd17f4eull},
    {"turbo1k8", 0xd8aacca00eae0737ull},
    {"turbo2k8", 0xce71740a68127fd6ull},
    {"turbo3k8", 0x701a9f22ba43e4c8ull},
    {"turbo4k8", 0x950261bdae62affeull},
    {"turbo5k8", 0xe3c50fb47985aad3ull},
    {"tcq2k8", 0xe7e12584ba8cd910ull},
    {"tcq3k8", 0x16f28906b22ceb7cull},
    {"tcq4k8", 0x0cf700ecee5593d5ull},
    {"tcq5k8", 0x1b185d9c331387a4ull},
};

static uint64_t golden_of(const char *name, const float *x, int *n_dims_served) {
    uint64_t h = 1469598103934665603ull;
    const int dims[] = {128, 96};
    *n_dims_served = 0;
    for (int k = 0; k < 2; k++) {
        rq_quantizer *q = NULL;
        if (rq_quantizer_init(&q, name, dims[k], NULL)) continue;
        uint8_t a[8 * 512], b[8 * 512];
        size_t nb = 8 * rq_quantizer_bytes_per_vector(q);
        float xk[8 * 128];
        const float *xi = test_fit_k8(name, x, xk, 8, dims[k]);
        CHECK_OK(rq_quantizer_encode(q, xi, a, 8));
        CHECK_OK(rq_quantizer_encode(q, xi, b, 8));
        CHECK(memcmp(a, b, nb) == 0, "%s not deterministic", name);
        h = fnv1a(a, nb, h);
        (*n_dims_served)++;
        rq_quantizer_free(q);
    }
    return h;
}

static void test_golden(void) {
    rq_rng r;
    rq_rng_seed(&r, 2024);
    float x[8 * 128];
    test_random_gauss(&r, x, 8 * 128);
    const int n_golden = (int)(sizeof GOLDEN / sizeof GOLDEN[0]);
    CHECK(n_golden == rq_type_count(), "%d golden hashes for %d types: add the new type's row", n_golden, rq_type_count());
    for (int i = 0; i < rq_type_count(); i++) {
        const char *name = rq_type_at(i)->name;
        int served;
        uint64_t h = golden_of(name, x, &served);
        int g = 0;
        while (g < n_golden && strcmp(GOLDEN[g].name, name)) g++;
        CHECK(served > 0, "%s serves neither d = 128 nor d = 96", name);
        CHECK(g < n_golden, "%s has no golden hash (hash %016llx)", name, (unsigned long long)h);
        if (g < n_golden)
            CHECK(GOLDEN[g].hash == h, "%s block bytes changed (hash %016llx, golden %016llx): bump RQ_FORMAT_VERSION if intended",
                  name, (unsigned long long)h, (unsigned long long)GOLDEN[g].hash);
    }
}

static void test_reencode(void) {
    rq_rng r;
    rq_rng_seed(&r, 77);
    const int d = 128, n = 64;
    float x[64 * 128], xh[64 * 128];
    test_random_gauss(&r, x, n * d);
    for (int i = 0; i < rq_type_count(); i++) {
        const rq_type_info *t = rq_type_at(i);
        if (t->family == RQ_FAMILY_PROD) continue; /* decode adds the QJL term */
        for (int nc = 0; nc <= 1; nc++) {
            rq_quant_config c = rq_quant_config_default();
            c.norm_correct = nc;
            rq_quantizer *q;
            CHECK_OK(rq_quantizer_init(&q, t->name, d, &c));
            size_t bpv = rq_quantizer_bytes_per_vector(q);
            uint8_t *a = malloc(bpv * n), *b = malloc(bpv * n);
            static float xk[64 * 128];
            CHECK_OK(rq_quantizer_encode(q, test_fit_k8(t->name, x, xk, n, d), a, n));
            rq_quantizer_decode(q, a, xh, n);
            rq_quantizer_encode(q, xh, b, n);
            /* compare the codes; the fp16 norm may differ in its last bit */
            size_t off = (t->family == RQ_FAMILY_MSE) ? 2 : 0;
            int diff = 0;
            for (int v = 0; v < n; v++)
                if (t->family == RQ_FAMILY_MSE || t->family == RQ_FAMILY_Q4_0 || t->family == RQ_FAMILY_Q8_0) {
                    if (t->family == RQ_FAMILY_MSE)
                        diff += memcmp(a + v * bpv + off, b + v * bpv + off, bpv - off) != 0;
                    else
                        for (size_t blk = 0; blk < bpv; blk += (t->family == RQ_FAMILY_Q8_0 ? 34 : 18)) {
                            size_t w = t->family == RQ_FAMILY_Q8_0 ? 34 : 18;
                            diff += memcmp(a + v * bpv + blk + 2, b + v * bpv + blk + 2, w - 2) != 0;
                        }
                } else {
                    diff += memcmp(a + v * bpv, b + v * bpv, bpv) != 0;
                }
            CHECK(diff == 0, "%s (norm_correct=%d): %d of %d vectors re-encode differently", t->name, nc, diff, n);
            free(a);
            free(b);
            rq_quantizer_free(q);
        }
    }
}

static void test_norm_correct(void) {
    rq_rng r;
    rq_rng_seed(&r, 5);
    const int d = 128, n = 2000;
    float *x = malloc(sizeof(float) * d * n), *xh = malloc(sizeof(float) * d * n);
    outlier_data(&r, x, n, d, 0);
    for (int v = 0; v < n * d; v++) x[v] *= 37.0f; /* non-unit norms */
    for (int b = 1; b <= 5; b++) {
        char name[16];
        snprintf(name, sizeof name, "turbo%d", b);
        rq_quant_config c = rq_quant_config_default();
        double mse[2];
        for (int nc = 0; nc <= 1; nc++) {
            c.norm_correct = nc;
            rq_quantizer *q;
            rq_quantizer_init(&q, name, d, &c);
            mse[nc] = measure_mse(q, x, n);
            uint8_t blk[2 + 128 * 5 / 8];
            rq_quantizer_encode(q, x, blk, 1);
            rq_quantizer_decode(q, blk, xh, 1);
            double n0 = 0, n1 = 0;
            for (int j = 0; j < d; j++) n0 += (double)x[j] * x[j], n1 += (double)xh[j] * xh[j];
            if (nc) CHECK(fabs(sqrt(n1 / n0) - 1) < 1e-3, "%s corrected norm ratio %.5f", name, sqrt(n1 / n0));
            else CHECK(sqrt(n1 / n0) < 1, "%s plain decode shrinks the norm", name);
            rq_quantizer_free(q);
        }
        TEST_NOTE("%s MSE plain %.5f, norm-corrected %.5f", name, mse[0], mse[1]);
    }
    free(x);
    free(xh);
}

static void test_dot_matches_decode(void) {
    rq_rng r;
    rq_rng_seed(&r, 8);
    const int d = 96, n = 16;
    float x[16 * 96], y[96], xh[16 * 96], est[16];
    test_random_gauss(&r, x, n * d);
    test_random_gauss(&r, y, d);
    for (int i = 0; i < rq_type_count(); i++) {
        rq_quantizer *q;
        if (rq_quantizer_init(&q, rq_type_at(i)->name, d, NULL)) continue;
        uint8_t blk[16 * 400];
        rq_quantizer_encode(q, x, blk, n);
        rq_quantizer_decode(q, blk, xh, n);
        CHECK_OK(rq_quantizer_dot(q, y, blk, n, est));
        double worst = 0;
        for (int v = 0; v < n; v++) {
            double ref = 0, ny = 0, nx = 0;
            for (int j = 0; j < d; j++) ref += (double)y[j] * xh[v * d + j], ny += (double)y[j] * y[j], nx += (double)xh[v * d + j] * xh[v * d + j];
            double e = fabs(est[v] - ref) / sqrt(ny * nx);
            worst = e > worst ? e : worst;
        }
        CHECK(worst < 1e-5, "%s dot vs decode %.2g", rq_type_at(i)->name, worst);
        rq_quantizer_free(q);
    }
}

static void test_bad_inputs(void) {
    rq_quantizer *q = NULL;
    CHECK(rq_quantizer_init(&q, "turbo9", 128, NULL) == RQ_ERR_UNKNOWN_TYPE && !q, "unknown type");
    CHECK(rq_quantizer_init(&q, "turbo3", 1, NULL) == RQ_ERR_DIM, "d=1");
    CHECK(rq_quantizer_init(&q, "turbo3", RQ_MAX_DIMS + 1, NULL) == RQ_ERR_DIM, "d too big");
    CHECK(rq_quantizer_init(&q, "turbo3", 127, NULL) == RQ_ERR_DIM, "odd part > 63");
    CHECK(rq_quantizer_init(&q, "q8_0", 80, NULL) == RQ_ERR_DIM, "q8_0 needs d %% 32 == 0");
    CHECK(rq_quantizer_init(&q, "rotor3", 2, NULL) == RQ_ERR_DIM, "rotor needs d >= 3");
    CHECK(rq_quantizer_init(&q, NULL, 64, NULL) == RQ_ERR_INVALID_ARG, "NULL name");
    CHECK(rq_quantizer_init(NULL, "turbo3", 64, NULL) == RQ_ERR_INVALID_ARG, "NULL out");
    rq_quant_config c = rq_quant_config_default();
    c.law = (rq_law)9;
    CHECK(rq_quantizer_init(&q, "turbo3", 64, &c) == RQ_ERR_INVALID_ARG, "bad law");

    const int d = 64;
    float x[64], xh[64];
    uint8_t blk[512];
    for (int i = 0; i < rq_type_count(); i++) {
        const char *name = rq_type_at(i)->name;
        CHECK_OK(rq_quantizer_init(&q, name, d, NULL));
        for (int j = 0; j < d; j++) x[j] = (float)j - 20.0f;
        x[17] = NAN;
        CHECK(rq_quantizer_encode(q, x, blk, 1) == RQ_ERR_NONFINITE, "%s NaN", name);
        x[17] = INFINITY;
        CHECK(rq_quantizer_encode(q, x, blk, 1) == RQ_ERR_NONFINITE, "%s Inf", name);
        x[17] = 1e30f;
        if (strcmp(name, "f32") != 0) CHECK(rq_quantizer_encode(q, x, blk, 1) == RQ_ERR_RANGE, "%s huge", name);
        memset(x, 0, sizeof x);
        CHECK_OK(rq_quantizer_encode(q, x, blk, 1));
        for (int j = 0; j < d; j++) xh[j] = 1;
        CHECK_OK(rq_quantizer_decode(q, blk, xh, 1));
        int nz = 0;
        for (int j = 0; j < d; j++) nz += xh[j] != 0;
        CHECK(nz == 0, "%s zero vector decodes to %d nonzeros", name, nz);
        CHECK(rq_quantizer_encode(q, NULL, blk, 1) == RQ_ERR_INVALID_ARG, "%s NULL x", name);
        CHECK(rq_quantizer_encode(q, x, blk, 0) == RQ_OK, "%s n=0", name);
        rq_quantizer_free(q);
    }
    CHECK(rq_quantizer_encode(NULL, x, blk, 1) == RQ_ERR_INVALID_ARG, "NULL q");
}

static void test_params(void) {
    struct { const char *t; size_t n; } cases[] = {
        {"turbo3", 128 + 8},              /* signs + 8 centroids                */
        {"turbo3p", 128 + 4 + 128 * 128}, /* + 4 centroids + Gaussian S       */
        {"dense3", 128 * 128 + 8},
        {"rotor3", 43 * 4 + 8},
        {"planar3", 64 * 2 + 8},
        {"iso3", 32 * 8 + 8},
        {"q4_0h", 128},
        {"q8_0", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rq_quantizer *q = make(cases[i].t, 128);
        CHECK(rq_quantizer_n_params(q) == cases[i].n, "%s params %zu, expected %zu", cases[i].t, rq_quantizer_n_params(q), cases[i].n);
        rq_quantizer_free(q);
    }
}

/* A block whose fp16 (f32) norm or scale field is NaN or Inf — which the
 * encoder never writes — is malformed: decode and dot return RQ_ERR_FORMAT
 * at every SIMD level, for every type, and a valid block still decodes. */
static void test_decode_nonfinite_fields(void) {
    static const uint16_t BAD16[] = {0x7c00, 0xfc00, 0x7e00, 0x7c01}; /* +Inf, −Inf, qNaN, sNaN */
    static const uint32_t BAD32[] = {0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u};
    rq_rng r;
    rq_rng_seed(&r, 99);
    float x[2 * 128], y[2 * 128], dots[2];
    test_random_gauss(&r, x, 2 * 128);
    rq_simd_level saved = rq__simd_level();
    int n_checked = 0;
    for (int l = RQ_SIMD_SCALAR; l <= (int)rq__simd_cpu_level(); l++) {
        rq__simd_force((rq_simd_level)l);
        for (int i = 0; i < rq_type_count(); i++) {
            const rq_type_info *t = rq_type_at(i);
            rq_quantizer *q = NULL;
            if (rq_quantizer_init(&q, t->name, 128, NULL)) continue;
            size_t nb = rq_quantizer_bytes_per_vector(q);
            uint8_t blk[2 * 700], bad[2 * 700];
            float xk[2 * 128];
            CHECK_OK(rq_quantizer_encode(q, test_fit_k8(t->name, x, xk, 2, 128), blk, 2));
            CHECK(rq_quantizer_decode(q, blk, y, 2) == RQ_OK, "%s: valid blocks", t->name);
            /* the fields: first and last fp16 field of the second vector's block */
            size_t fields[3];
            int n_fields = 0;
            switch (t->family) {
            case RQ_FAMILY_F32: fields[n_fields++] = nb; fields[n_fields++] = 2 * nb - 4; break;
            case RQ_FAMILY_F16: fields[n_fields++] = nb; fields[n_fields++] = 2 * nb - 2; break;
            case RQ_FAMILY_Q8_0: fields[n_fields++] = nb; fields[n_fields++] = 2 * nb - 34; break;
            case RQ_FAMILY_Q4_0: fields[n_fields++] = nb; fields[n_fields++] = 2 * nb - 18; break;
            case RQ_FAMILY_MSE:
            case RQ_FAMILY_TCQ: /* the n8 kinds have no fp16 field: every head byte is valid (test_norm8_heads) */
                if (!rq__blocks[rq__type_traits(t)->block].norm_table) fields[n_fields++] = nb;
                break;
            case RQ_FAMILY_PROD: fields[n_fields++] = nb; fields[n_fields++] = nb + 2; break;
            }
            for (int f = 0; f < n_fields; f++)
                for (int b = 0; b < 4; b++) {
                    memcpy(bad, blk, 2 * nb);
                    if (t->family == RQ_FAMILY_F32) {
                        memcpy(bad + fields[f], &BAD32[b], 4);
                    } else {
                        bad[fields[f]] = (uint8_t)BAD16[b], bad[fields[f] + 1] = (uint8_t)(BAD16[b] >> 8);
                    }
                    for (int j = 0; j < 2 * 128; j++) y[j] = 7.0f;
                    dots[0] = dots[1] = 7.0f;
                    rq_status st = rq_quantizer_decode(q, bad, y, 2);
                    CHECK(st == RQ_ERR_FORMAT, "%s field at byte %zu = %04x, level %s: decode %s", t->name, fields[f],
                          BAD16[b], rq__simd_level_name((rq_simd_level)l), rq_status_str(st));
                    int untouched = 1; /* the valid first vector is not decoded either */
                    for (int j = 0; j < 2 * 128; j++) untouched &= y[j] == 7.0f;
                    CHECK(untouched, "%s: decode wrote output before refusing block 1", t->name);
                    st = rq_quantizer_dot(q, x, bad, 2, dots);
                    CHECK(dots[0] == 7.0f && dots[1] == 7.0f, "%s: dot wrote output before refusing", t->name);
                    CHECK(st == RQ_ERR_FORMAT, "%s field at byte %zu = %04x, level %s: dot %s", t->name, fields[f],
                          BAD16[b], rq__simd_level_name((rq_simd_level)l), rq_status_str(st));
                    n_checked++;
                }
            rq_quantizer_free(q);
        }
    }
    rq__simd_force(saved);
    TEST_NOTE("%d malformed blocks rejected", n_checked);
}


/* ---- the n8 norm head (docs/FORMAT.md §5.2) ------------------------------ */

/* The table: exact hex constants equal to a double-precision recomputation
 * rounded to float; code 0 = 0, 1 = 2^-6, 255 = 2^10. */
static void test_norm8_table(void) {
    CHECK(rq__norm8[0] == 0.0f && rq__norm8[1] == 0x1p-6f && rq__norm8[255] == 0x1p10f, "table ends %g %g %g",
          rq__norm8[0], rq__norm8[1], rq__norm8[255]);
    int bad = 0;
    for (int c = 1; c < 256; c++) {
        const float want = (float)exp2(-6.0 + (double)(c - 1) * 16.0 / 254.0);
        if (rq__norm8[c] != want) bad++;
        if (c > 1 && !(rq__norm8[c] > rq__norm8[c - 1])) bad++;
    }
    CHECK(bad == 0, "%d table entries differ from exp2 or are not increasing", bad);
    const double over = (double)(float)exp2(10.0 + 16.0 / 254.0);
    CHECK(rq__norm8_limit == 0.5 * ((double)rq__norm8[255] + over), "limit %a", rq__norm8_limit);
}

/* Encode: the nearest entry (relative error ≤ tanh(s/2) < s/2, s = 16·ln2/254),
 * the clamp below 2^-6, code 0 only for 0, the range error above the limit. */
static void test_norm8_encode(void) {
    const double s = 16.0 * log(2.0) / 254.0;
    rq_rng r;
    rq_rng_seed(&r, 8);
    double worst = 0;
    int wrong = 0;
    for (int i = 0; i < 100000; i++) {
        const float n = (float)exp2(-6.0 + 16.0 * rq_rng_uniform(&r));
        uint8_t c = 0;
        CHECK_OK(rq__norm8_encode(n, &c));
        const double e = fabs((double)rq__norm8[c] - n) / n;
        worst = e > worst ? e : worst;
        /* nearest: neither neighbour is closer */
        if (c > 1 && fabs((double)rq__norm8[c - 1] - n) < fabs((double)rq__norm8[c] - n)) wrong++;
        if (c < 255 && fabs((double)rq__norm8[c + 1] - n) < fabs((double)rq__norm8[c] - n)) wrong++;
    }
    TEST_NOTE("worst relative norm error %.5f (half a step s/2 = %.5f)", worst, s / 2);
    CHECK(worst <= s / 2, "relative error %g above half a step %g", worst, s / 2);
    CHECK(wrong == 0, "%d norms not on their nearest entry", wrong);
    /* each entry encodes to itself; the exact midpoint goes to the lower code */
    for (int c = 1; c < 256; c++) {
        uint8_t got = 0;
        CHECK(rq__norm8_encode(rq__norm8[c], &got) == RQ_OK && got == c, "entry %d encodes to %d", c, got);
    }
    uint8_t c = 77;
    CHECK(rq__norm8_encode(0.0f, &c) == RQ_OK && c == 0, "0 → code %d", c);
    CHECK(rq__norm8_encode(1e-30f, &c) == RQ_OK && c == 1, "tiny → code %d (the clamp)", c);
    CHECK(rq__norm8_encode(0x1p-7f, &c) == RQ_OK && c == 1, "2^-7 → code %d (the clamp)", c);
    CHECK(rq__norm8_encode(1024.0f, &c) == RQ_OK && c == 255, "1024 → code %d", c);
    CHECK(rq__norm8_encode((float)rq__norm8_limit, &c) == RQ_OK && c == 255, "the limit → code %d", c);
    c = 77;
    CHECK(rq__norm8_encode(nextafterf((float)rq__norm8_limit, INFINITY), &c) == RQ_ERR_RANGE && c == 77,
          "past the limit: range error, code untouched");
    CHECK(rq__norm8_encode(INFINITY, &c) == RQ_ERR_RANGE && rq__norm8_encode(NAN, &c) == RQ_ERR_RANGE, "Inf / NaN");
}

/* The n8 blocks: the fp16 type's codes (TCQ: stream) after one head byte;
 * a zero vector is the all-zero block; a tiny one has head 1; a norm past
 * the range fails with the range in the message; every head byte decodes. */
static void test_norm8_blocks(void) {
    static const char *const PAIRS[][2] = {{"turbo3", "turbo3n8"}, {"tcq3", "tcq3n8"}, {"turbo1", "turbo1n8"},
                                           {"tcq5", "tcq5n8"}};
    const int d = 128;
    rq_rng r;
    rq_rng_seed(&r, 88);
    float x[4 * 128], y[4 * 128];
    test_random_gauss(&r, x, 4 * 128);
    for (int i = 0; i < 128; i++) x[128 + i] = 0.0f, x[256 + i] *= 1e-5f; /* a zero vector, a tiny one */
    for (size_t p = 0; p < sizeof PAIRS / sizeof PAIRS[0]; p++) {
        rq_quantizer *q16 = NULL, *q8 = NULL;
        CHECK_OK(rq_quantizer_init(&q16, PAIRS[p][0], d, NULL));
        CHECK_OK(rq_quantizer_init(&q8, PAIRS[p][1], d, NULL));
        if (!q16 || !q8) goto next;
        const size_t b16 = rq_quantizer_bytes_per_vector(q16), b8 = rq_quantizer_bytes_per_vector(q8);
        CHECK(b8 + 1 == b16, "%s: %zu bytes vs %zu", PAIRS[p][1], b8, b16);
        uint8_t a[4 * 200], b[4 * 200];
        CHECK_OK(rq_quantizer_encode(q16, x, a, 4));
        CHECK_OK(rq_quantizer_encode(q8, x, b, 4));
        for (int v = 0; v < 4; v++)
            CHECK(memcmp(a + v * b16 + 2, b + v * b8 + 1, b8 - 1) == 0, "%s vector %d: codes differ from %s's",
                  PAIRS[p][1], v, PAIRS[p][0]);
        /* head = the code of the fp16 type's value (norm, TCQ scale) within the fp16 rounding */
        float n16 = rq_f16_to_f32((uint16_t)(a[0] | (a[1] << 8)));
        CHECK(fabsf(rq__norm8[b[0]] / n16 - 1.0f) < 0.025f, "%s: head %d = %g vs fp16 %g", PAIRS[p][1], b[0],
              rq__norm8[b[0]], n16);
        int zero = 1;
        for (size_t i = 0; i < b8; i++) zero &= b[b8 + i] == 0;
        CHECK(zero, "%s: the zero vector is not the all-zero block", PAIRS[p][1]);
        CHECK(b[2 * b8] == 1, "%s: tiny vector head %d (the clamp: 1)", PAIRS[p][1], b[2 * b8]);
        CHECK_OK(rq_quantizer_decode(q8, b, y, 4));
        int z = 1;
        for (int i = 0; i < 128; i++) z &= y[128 + i] == 0.0f;
        CHECK(z, "%s: zero block decodes to zero", PAIRS[p][1]);
        /* every head byte is a valid block */
        uint8_t blk[200];
        for (int c = 0; c < 256; c++) {
            memcpy(blk, b, b8);
            blk[0] = (uint8_t)c;
            rq_status st = rq_quantizer_decode(q8, blk, y, 1);
            int fin = 1;
            for (int i = 0; i < d; i++) fin &= rq__finite(y[i]) && (c || y[i] == 0.0f);
            CHECK(st == RQ_OK && fin, "%s head %d: %s", PAIRS[p][1], c, rq_status_str(st));
        }
        /* past the range: an error naming it */
        float big[128];
        for (int i = 0; i < d; i++) big[i] = x[i] * 200.0f; /* norm ≈ 2260 */
        memset(blk, 0x5a, sizeof blk);
        rq_status st = rq_quantizer_encode(q8, big, blk, 1);
        CHECK(st == RQ_ERR_RANGE, "%s norm 2260: %s", PAIRS[p][1], rq_status_str(st));
        CHECK(strstr(rq_last_error(), "1024") != NULL, "%s: message '%s'", PAIRS[p][1], rq_last_error());
        CHECK_OK(rq_quantizer_encode(q16, big, blk, 1)); /* fp16 holds it */
    next:
        rq_quantizer_free(q16);
        rq_quantizer_free(q8);
    }
}

/* ---- the k8 key norm head (docs/FORMAT.md §5.2) --------------------------- */

/* The table: exact constants equal to a double recomputation; code 1 = 2^-2,
 * 255 = 2^2; the encoder is the n8 rule on this table (nearest entry, the
 * clamp below 2^-2, the range error past the limit). */
static void test_normk8_table_encode(void) {
    CHECK(rq__normk8[0] == 0.0f && rq__normk8[1] == 0x1p-2f && rq__normk8[255] == 0x1p2f, "table ends %g %g %g",
          rq__normk8[0], rq__normk8[1], rq__normk8[255]);
    int bad = 0;
    for (int c = 1; c < 256; c++) {
        const float want = (float)exp2(-2.0 + (double)(c - 1) * 4.0 / 254.0);
        if (rq__normk8[c] != want) bad++;
        if (c > 1 && !(rq__normk8[c] > rq__normk8[c - 1])) bad++;
    }
    CHECK(bad == 0, "%d k8 table entries differ from exp2 or are not increasing", bad);
    const double over = (double)(float)exp2(2.0 + 4.0 / 254.0);
    CHECK(rq__normk8_limit == 0.5 * ((double)rq__normk8[255] + over), "limit %a", rq__normk8_limit);
    CHECK(rq__norm_table_limit(rq__normk8) == rq__normk8_limit && rq__norm_table_limit(rq__norm8) == rq__norm8_limit,
          "limits by table");
    const double s = 4.0 * log(2.0) / 254.0;
    rq_rng r;
    rq_rng_seed(&r, 18);
    double worst = 0;
    int wrong = 0;
    for (int i = 0; i < 100000; i++) {
        const float n = (float)exp2(-2.0 + 4.0 * rq_rng_uniform(&r));
        uint8_t c = 0;
        CHECK_OK(rq__norm_encode(rq__normk8, n, &c));
        const double e = fabs((double)rq__normk8[c] - n) / n;
        worst = e > worst ? e : worst;
        if (c > 1 && fabs((double)rq__normk8[c - 1] - n) < fabs((double)rq__normk8[c] - n)) wrong++;
        if (c < 255 && fabs((double)rq__normk8[c + 1] - n) < fabs((double)rq__normk8[c] - n)) wrong++;
    }
    TEST_NOTE("k8: worst relative norm error %.5f (half a step s/2 = %.5f)", worst, s / 2);
    CHECK(worst <= s / 2 && wrong == 0, "relative error %g (half a step %g), %d not nearest", worst, s / 2, wrong);
    for (int c = 1; c < 256; c++) {
        uint8_t got = 0;
        CHECK(rq__norm_encode(rq__normk8, rq__normk8[c], &got) == RQ_OK && got == c, "entry %d encodes to %d", c, got);
    }
    uint8_t c = 77;
    CHECK(rq__norm_encode(rq__normk8, 0.0f, &c) == RQ_OK && c == 0, "0 → code %d", c);
    CHECK(rq__norm_encode(rq__normk8, 0.2f, &c) == RQ_OK && c == 1, "0.2 → code %d (the clamp)", c);
    CHECK(rq__norm_encode(rq__normk8, (float)rq__normk8_limit, &c) == RQ_OK && c == 255, "the limit → code %d", c);
    c = 77;
    CHECK(rq__norm_encode(rq__normk8, nextafterf((float)rq__normk8_limit, INFINITY), &c) == RQ_ERR_RANGE && c == 77,
          "past the limit: range error, code untouched");
    /* the public trait says which types these are: exactly the rows whose
     * block reads the k8 table, all named "...k8" */
    int n_k8 = 0;
    for (int i = 0; i < rq_type_count(); i++) {
        const rq_type_info *t = rq_type_at(i);
        const size_t nl = strlen(t->name);
        const bool table = rq__blocks[rq__type_traits(t)->block].norm_table == rq__normk8;
        const bool named = nl > 2 && !strcmp(t->name + nl - 2, "k8");
        CHECK(t->key_scaled == (int)table && table == named, "%s: key_scaled %d, k8 table %d", t->name, t->key_scaled,
              (int)table);
        n_k8 += t->key_scaled;
    }
    CHECK(n_k8 == 9, "%d key_scaled types (turbo1k8..5k8, tcq2k8..5k8)", n_k8);
}

/* The k8 blocks standalone: the n8 type's codes after a head from the key
 * table (unit-scale vectors); norm 5 fails naming the range; 0.1 clamps to 1. */
static void test_normk8_blocks(void) {
    static const char *const PAIRS[][2] = {{"turbo3n8", "turbo3k8"}, {"tcq3n8", "tcq3k8"}, {"tcq5n8", "tcq5k8"}};
    const int d = 128;
    rq_rng r;
    rq_rng_seed(&r, 89);
    float x[3 * 128], xk[3 * 128], y[3 * 128];
    test_random_gauss(&r, x, 3 * 128);
    const float *xi = test_fit_k8("turbo3k8", x, xk, 3, d); /* norms 0.35, 0.8, 1.25 */
    for (size_t p = 0; p < sizeof PAIRS / sizeof PAIRS[0]; p++) {
        rq_quantizer *qn = NULL, *qk = NULL;
        CHECK_OK(rq_quantizer_init(&qn, PAIRS[p][0], d, NULL));
        CHECK_OK(rq_quantizer_init(&qk, PAIRS[p][1], d, NULL));
        if (!qn || !qk) goto next;
        const size_t b = rq_quantizer_bytes_per_vector(qk);
        CHECK(b == rq_quantizer_bytes_per_vector(qn), "%s: %zu bytes", PAIRS[p][1], b);
        uint8_t a[3 * 200], k[3 * 200];
        CHECK_OK(rq_quantizer_encode(qn, xi, a, 3));
        CHECK_OK(rq_quantizer_encode(qk, xi, k, 3));
        for (int v = 0; v < 3; v++) {
            CHECK(memcmp(a + v * b + 1, k + v * b + 1, b - 1) == 0, "%s vector %d: codes differ", PAIRS[p][1], v);
            CHECK(fabsf(rq__normk8[k[v * b]] / rq__norm8[a[v * b]] - 1.0f) < 0.035f, "%s: head %g vs n8 %g",
                  PAIRS[p][1], rq__normk8[k[v * b]], rq__norm8[a[v * b]]);
        }
        CHECK_OK(rq_quantizer_decode(qk, k, y, 3));
        float big[128], tiny[128];
        for (int i = 0; i < d; i++) big[i] = xi[i] * (5.0f / 0.35f), tiny[i] = xi[i] * (0.1f / 0.35f);
        uint8_t blk[200];
        rq_status st = rq_quantizer_encode(qk, big, blk, 1);
        CHECK(st == RQ_ERR_RANGE && strstr(rq_last_error(), "2^-2 .. 2^2"), "%s norm 5: %s '%s'", PAIRS[p][1],
              rq_status_str(st), rq_last_error());
        CHECK_OK(rq_quantizer_encode(qk, tiny, blk, 1));
        CHECK(blk[0] == 1, "%s norm 0.1: head %d (the clamp: 1)", PAIRS[p][1], blk[0]);
    next:
        rq_quantizer_free(qn);
        rq_quantizer_free(qk);
    }
}

const rq_test tests_quant[] = {
    {"quant_sizes_documented", test_sizes},
    {"quant_unit_mse_d128", test_unit_mse},
    {"quant_outlier_channels", test_outlier_mse},
    {"quant_prod_unbiased_vs_shrinkage", test_prod_unbiased},
    {"quant_golden_bytes", test_golden},
    {"quant_reencode_codes", test_reencode},
    {"quant_norm_correction", test_norm_correct},
    {"quant_dot_matches_decode", test_dot_matches_decode},
    {"quant_bad_inputs", test_bad_inputs},
    {"quant_decode_nonfinite_field_is_format_error", test_decode_nonfinite_fields},
    {"quant_params", test_params},
    {"quant_norm8_table", test_norm8_table},
    {"quant_norm8_encode", test_norm8_encode},
    {"quant_norm8_blocks", test_norm8_blocks},
    {"quant_normk8_table_encode", test_normk8_table_encode},
    {"quant_normk8_blocks", test_normk8_blocks},
    {NULL, NULL},
};
