/*
 * test_metrics.c — every metric and evaluation function on inputs with a
 * known answer: softmax KL (identical = 0, a closed-form pair, shift
 * invariance, huge logits), Pearson (affine series = ±1), cosine, argmax and
 * top-k with ties, relative MSE; then src/eval.c: pairs with a prescribed
 * inner product, the MSE shrinkage ratio d·c₁² of 1-bit codes, QJL
 * unbiasedness, attention fidelity (lossless type = perfect scores, one-key
 * context = KL 0, error falling with bits), needle rates (trivial case = 1,
 * pure noise = chance), query construction, throughput and bad inputs.
 */
#include "test.h"

#include <string.h>

static void test_metric_kl(void) {
    double a[4] = {0.3, -1.2, 2.0, 0.0}, b[4];
    CHECK_NEAR(rq_metric_softmax_kl(a, a, 4), 0.0, 1e-15);
    /* shift invariance: softmax(a + c) = softmax(a) */
    for (int i = 0; i < 4; i++) b[i] = a[i] + 123.5;
    CHECK_NEAR(rq_metric_softmax_kl(a, b, 4), 0.0, 1e-12);
    /* p = (1/2, 1/2), q = (3/4, 1/4): KL = ½ln(2/3) + ½ln 2 = ½ ln(4/3) */
    double p[2] = {0, 0}, q[2] = {log(3.0), 0};
    CHECK_NEAR(rq_metric_softmax_kl(p, q, 2), 0.5 * log(4.0 / 3.0), 1e-14);
    /* and the other direction: ¾ln(3/2) + ¼ln(1/2) */
    CHECK_NEAR(rq_metric_softmax_kl(q, p, 2), 0.75 * log(1.5) + 0.25 * log(0.5), 1e-14);
    /* huge logits do not overflow: the same pair shifted by 1e4 */
    double p2[2] = {1e4, 1e4}, q2[2] = {1e4 + log(3.0), 1e4};
    CHECK_NEAR(rq_metric_softmax_kl(p2, q2, 2), 0.5 * log(4.0 / 3.0), 1e-10);
    /* a certain event: p = δ₀, q = (e/(e+1), 1/(e+1)): KL = −ln q₀ = ln(1 + 1/e) */
    double p3[2] = {800, 0}, q3[2] = {1, 0};
    CHECK_NEAR(rq_metric_softmax_kl(p3, q3, 2), log(1 + exp(-1.0)), 1e-12);
    CHECK(rq_metric_softmax_kl(a, a, 0) == 0, "empty");
}

static void test_metric_pearson_cosine(void) {
    double a[6] = {1, 2, 4, 8, 3, -5}, b[6], c[6];
    for (int i = 0; i < 6; i++) b[i] = 3 * a[i] + 2, c[i] = -0.5 * a[i] + 7;
    CHECK_NEAR(rq_metric_pearson(a, b, 6), 1.0, 1e-14);
    CHECK_NEAR(rq_metric_pearson(a, c, 6), -1.0, 1e-14);
    double k[6] = {2, 2, 2, 2, 2, 2};
    CHECK(isnan(rq_metric_pearson(a, k, 6)), "constant series: undefined (NaN), not a number that looks like a result");
    CHECK(isnan(rq_metric_pearson(a, b, 1)), "n < 2: undefined");
    /* a known value: x = (1,2,3), y = (1,3,2): cov = 0.5, var = 1 → r = 0.5 */
    double x[3] = {1, 2, 3}, y[3] = {1, 3, 2};
    CHECK_NEAR(rq_metric_pearson(x, y, 3), 0.5, 1e-15);

    double e[2] = {1, 0}, f[2] = {1, 1}, g[2] = {0, 3}, h[2] = {-2, 0}, z[2] = {0, 0};
    CHECK_NEAR(rq_metric_cosine(e, f, 2), sqrt(0.5), 1e-15);
    CHECK_NEAR(rq_metric_cosine(e, g, 2), 0.0, 1e-15);
    CHECK_NEAR(rq_metric_cosine(e, h, 2), -1.0, 1e-15);
    CHECK_NEAR(rq_metric_cosine(f, f, 2), 1.0, 1e-15);
    CHECK(rq_metric_cosine(e, z, 2) == 0, "zero vector gives 0");
}

static void test_metric_topk_ties(void) {
    double a[6] = {5, 7, 7, 7, 1, 6};
    CHECK(rq_metric_argmax(a, 6) == 1, "first of the tied maxima");
    /* index 3 ties with 1 and 2, which come first: rank 3 */
    CHECK(rq_metric_in_topk(a, 6, 3, 3) == 1, "rank 3 in top 3");
    CHECK(rq_metric_in_topk(a, 6, 3, 2) == 0, "rank 3 not in top 2");
    CHECK(rq_metric_in_topk(a, 6, 1, 1) == 1, "first maximum is top 1");
    CHECK(rq_metric_in_topk(a, 6, 2, 1) == 0, "second tied maximum is not top 1");
    CHECK(rq_metric_in_topk(a, 6, 5, 4) == 1 && rq_metric_in_topk(a, 6, 5, 3) == 0, "6 is 4th");
    CHECK(rq_metric_in_topk(a, 6, 4, 6) == 1 && rq_metric_in_topk(a, 6, 4, 5) == 0, "the minimum is 6th");
    CHECK(rq_metric_in_topk(a, 6, 6, 6) == 0, "target out of range");
}

static void test_metric_rel_mse(void) {
    /* x = (3, 4), x̂ = (3, 0): 16/25; a zero x is skipped; x = (1, 0), x̂ = (0, 0): 1 */
    float x[6] = {3, 4, 0, 0, 1, 0}, xh[6] = {3, 0, 5, 5, 0, 0};
    CHECK_NEAR(rq_metric_rel_mse(x, xh, 3, 2), (0.64 + 1.0) / 2, 1e-12);
    CHECK_NEAR(rq_metric_rel_mse(x, x, 3, 2), 0.0, 0);
}

/* ---- eval.c ----------------------------------------------------------------- */
static float *make_data(rq_dataset kind, uint64_t seed, size_t n, int d) {
    float *x = malloc(sizeof(float) * n * (size_t)d);
    if (x && rq_data_generate(kind, seed, x, n, d) != RQ_OK) {
        free(x);
        return NULL;
    }
    return x;
}

static void test_data_pairs(void) {
    const int d = 64;
    const size_t n = 300;
    float *pool = make_data(RQ_DATA_OUTLIER, 5, n, d), *x = malloc(sizeof(float) * n * d), *y = malloc(sizeof(float) * n * d);
    if (!pool || !x || !y) {
        CHECK(0, "alloc");
        goto out;
    }
    for (int s = 0; s < d * 3; s++) pool[s] *= 7.0f; /* norms other than 1 */
    for (double rho = -0.5; rho <= 0.9; rho += 0.7) {
        CHECK_OK(rq_data_pairs(pool, n, d, rho, n, x, y));
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            double xy = 0, xx = 0, yy = 0;
            for (int j = 0; j < d; j++) {
                double a = x[i * d + j], b = y[i * d + j];
                xy += a * b, xx += a * a, yy += b * b;
            }
            double e = fmax(fabs(xy - rho), fmax(fabs(xx - 1), fabs(yy - 1)));
            worst = e > worst ? e : worst;
        }
        CHECK(worst < 1e-5, "rho %.2f: worst deviation %.3g", rho, worst);
    }
    /* a pool of parallel vectors has no orthogonal partner; zero vectors no direction */
    float par[3 * 4] = {1, 2, 3, 4, 2, 4, 6, 8, -1, -2, -3, -4}, zero[2 * 4] = {0};
    float xo[12], yo[12];
    CHECK(rq_data_pairs(par, 3, 4, 0.5, 3, xo, yo) == RQ_ERR_INVALID_ARG, "parallel pool");
    CHECK(rq_data_pairs(zero, 2, 4, 0.5, 2, xo, yo) == RQ_ERR_INVALID_ARG, "zero vector");
    CHECK(rq_data_pairs(pool, n, d, 1.5, 1, x, y) == RQ_ERR_INVALID_ARG, "rho > 1");
out:
    free(pool);
    free(x);
    free(y);
}

static void test_eval_ip_shrinkage_and_unbiasedness(void) {
    const int d = 128;
    const size_t n = 2000, P = 2 * n;
    float *pool = make_data(RQ_DATA_ISOTROPIC, 11, P, d), *x = malloc(sizeof(float) * n * d),
          *y = malloc(sizeof(float) * n * d);
    rq_quantizer *q1 = NULL, *q2p = NULL, *qf = NULL;
    if (!pool || !x || !y) {
        CHECK(0, "alloc");
        goto out;
    }
    CHECK_OK(rq_data_pairs(pool, P, d, 0.8, n, x, y));
    CHECK_OK(rq_quantizer_init(&q1, "turbo1", d, NULL));
    CHECK_OK(rq_quantizer_init(&q2p, "turbo2p", d, NULL));
    CHECK_OK(rq_quantizer_init(&qf, "f32", d, NULL));
    if (!q1 || !q2p || !qf) goto out;
    rq_eval_ip_result r;
    /* lossless: corr 1, no bias, no error */
    CHECK_OK(rq_eval_ip(qf, x, y, n, 1, &r));
    CHECK_NEAR(r.bias, 0, 1e-12);
    CHECK_NEAR(r.rmse, 0, 1e-12);
    CHECK_NEAR(r.mean_exact, 0.8, 1e-6);
    CHECK_NEAR(r.mse, 0, 0);
    /* 1-bit MSE codes: E<x, x̂> = d·c₁² with c₁ the 1-bit centroid (= E|u₁|),
     * so every inner product shrinks by that factor (≈ 2/π) */
    rq_codebook cb;
    CHECK_OK(rq_codebook_init(&cb, d, 1, RQ_LAW_BETA));
    double shrink = d * cb.centroids_f64[1] * cb.centroids_f64[1];
    CHECK_OK(rq_eval_ip(q1, x, y, n, 1, &r));
    TEST_NOTE("turbo1: ratio %.4f (expected d*c1^2 = %.4f), bias %.4f", r.ratio, shrink, r.bias);
    CHECK_NEAR(r.ratio, shrink, 0.01);
    CHECK_NEAR(r.bias, 0.8 * (shrink - 1), 0.01);
    CHECK_NEAR(r.mse, cb.distortion * d, 0.01);
    /* QJL: unbiased — |bias| within 4 standard errors of 0 */
    CHECK_OK(rq_eval_ip(q2p, x, y, n, 1, &r));
    double se = r.err_std / sqrt((double)n);
    TEST_NOTE("turbo2p: ratio %.4f, bias %.5f ± %.5f", r.ratio, r.bias, se);
    CHECK(fabs(r.bias) < 4 * se, "QJL bias %.5f, standard error %.5f", r.bias, se);
    /* two sets at once give the same as one at a time */
    float *y2 = malloc(sizeof(float) * 2 * n * d);
    if (y2) {
        rq_eval_ip_result two[2], one;
        memcpy(y2, y, sizeof(float) * n * d);
        memcpy(y2 + n * d, pool + n * d, sizeof(float) * n * d);
        CHECK_OK(rq_eval_ip(q1, x, y2, n, 2, two));
        CHECK_OK(rq_eval_ip(q1, x, pool + n * d, n, 1, &one));
        CHECK(two[1].corr == one.corr && two[1].bias == one.bias && two[0].mse == one.mse, "sets");
        free(y2);
    }
    CHECK(rq_eval_ip(q1, x, y, 0, 1, &r) == RQ_ERR_INVALID_ARG, "n = 0");
    y[5] = NAN;
    CHECK(rq_eval_ip(q1, x, y, n, 1, &r) == RQ_ERR_NONFINITE, "NaN partner");
out:
    rq_quantizer_free(q1);
    rq_quantizer_free(q2p);
    rq_quantizer_free(qf);
    free(pool);
    free(x);
    free(y);
}

static void test_eval_attention(void) {
    const int d = 64;
    const size_t n = 512, nq = 8;
    float *k = make_data(RQ_DATA_ISOTROPIC, 21, n, d), *v = make_data(RQ_DATA_ISOTROPIC, 22, n, d),
          *base = make_data(RQ_DATA_ISOTROPIC, 23, nq, d), *qs = malloc(sizeof(float) * nq * d);
    rq_quantizer *qf = NULL, *q[4] = {NULL};
    if (!k || !v || !base || !qs) {
        CHECK(0, "alloc");
        goto out;
    }
    CHECK_OK(rq_data_queries(k, n, base, nq, d, 4, 2.0, 0, 7, qs));
    CHECK_OK(rq_quantizer_init(&qf, "f32", d, NULL));
    if (!qf) goto out;
    rq_eval_attn_result r;
    /* lossless keys and values: every metric perfect */
    CHECK_OK(rq_eval_attention(qf, qf, k, v, n, qs, nq, NULL, 0, &r));
    CHECK_NEAR(r.score_cosine, 1, 1e-12);
    CHECK_NEAR(r.softmax_kl, 0, 1e-12);
    CHECK_NEAR(r.output_cosine, 1, 1e-12);
    CHECK_NEAR(r.ip_corr, 1, 1e-12);
    CHECK(r.top1 == 1 && r.top5 == 1, "top1 %g top5 %g", r.top1, r.top5);
    /* a context of one key: softmax is δ, KL = 0, top1 = 1, output = v̂₀ */
    static const char *names[4] = {"turbo1", "turbo2", "turbo3", "turbo4"};
    for (int b = 0; b < 4; b++) CHECK_OK(rq_quantizer_init(&q[b], names[b], d, NULL));
    if (!q[0] || !q[3]) goto out;
    size_t one[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_OK(rq_eval_attention(q[0], q[0], k, v, n, qs, nq, one, 0, &r));
    CHECK_NEAR(r.softmax_kl, 0, 1e-15);
    CHECK(r.top1 == 1 && r.top5 == 1, "one key: top1 %g", r.top1);
    float vh[64];
    unsigned char blk[64];
    CHECK_OK(rq_quantizer_encode(q[0], v, blk, 1));
    CHECK_OK(rq_quantizer_decode(q[0], blk, vh, 1));
    double vv[64], vhd[64];
    for (int j = 0; j < d; j++) vv[j] = v[j], vhd[j] = vh[j];
    CHECK_NEAR(r.output_cosine, rq_metric_cosine(vv, vhd, (size_t)d), 1e-6);
    /* error falls as bits rise */
    double kl[4], oc[4];
    for (int b = 0; b < 4; b++) {
        CHECK_OK(rq_eval_attention(q[b], q[b], k, v, n, qs, nq, NULL, 0, &r));
        kl[b] = r.softmax_kl, oc[b] = r.output_cosine;
    }
    TEST_NOTE("KL turbo1..4: %.4g %.4g %.4g %.4g", kl[0], kl[1], kl[2], kl[3]);
    CHECK(kl[0] > kl[1] && kl[1] > kl[2] && kl[2] > kl[3] && kl[3] > 0, "KL falls with bits");
    CHECK(oc[0] < oc[1] && oc[1] < oc[2] && oc[2] < oc[3] && oc[3] < 1, "output cosine rises with bits");
    /* keys only (values exact): output error comes from the weights alone */
    CHECK_OK(rq_eval_attention(q[3], NULL, k, v, n, qs, nq, NULL, 0, &r));
    CHECK(r.mse_values == 0 && r.output_cosine > oc[3], "exact values %.6f vs %.6f", r.output_cosine, oc[3]);
    /* bad inputs */
    size_t zero[8] = {0};
    CHECK(rq_eval_attention(q[3], q[3], k, v, n, qs, nq, zero, 0, &r) == RQ_ERR_SHAPE, "n_ctx 0");
    qs[3] = INFINITY;
    CHECK(rq_eval_attention(q[3], q[3], k, v, n, qs, nq, NULL, 0, &r) == RQ_ERR_NONFINITE, "Inf query");
    CHECK(rq_eval_attention(q[3], q[3], k, NULL, n, qs, nq, NULL, 0, &r) == RQ_ERR_SHAPE, "qv without values");
out:
    rq_quantizer_free(qf);
    for (int b = 0; b < 4; b++) rq_quantizer_free(q[b]);
    free(k);
    free(v);
    free(base);
    free(qs);
}

static void test_data_queries(void) {
    /* keys = 2·(standard basis), so <q, k_t>/‖k_t‖ = q_t: a hot key's logit is
     * 1 + b_t, every other one b_t (b: the unit base vector, |b_t| ~ 0.09) */
    const int d = 128;
    const size_t n = 128, nq = 4;
    float *k = calloc(n * d, sizeof(float)), *base = make_data(RQ_DATA_ISOTROPIC, 32, nq, d);
    float *q1 = malloc(sizeof(float) * nq * d), *q2 = malloc(sizeof(float) * nq * d);
    if (!k || !base || !q1 || !q2) {
        CHECK(0, "alloc");
        goto out;
    }
    for (size_t t = 0; t < n; t++) k[t * d + t] = 2.0f;
    CHECK_OK(rq_data_queries(k, n, base, nq, d, 8, 3.0, 0, 9, q1));
    CHECK_OK(rq_data_queries(k, n, base, nq, d, 8, 3.0, 0, 9, q2));
    CHECK(!memcmp(q1, q2, sizeof(float) * nq * d), "deterministic");
    for (size_t i = 0; i < nq; i++) {
        double m = 0, m2 = 0, l[128];
        for (size_t t = 0; t < n; t++) {
            l[t] = 2.0 * q1[i * d + t] / sqrt((double)d); /* scale·<q, k_t> */
            m += l[t], m2 += l[t] * l[t];
        }
        m /= (double)n;
        double sd = sqrt(m2 / (double)n - m * m);
        CHECK_NEAR(sd, 3.0, 1e-4);
        /* exactly the 8 hot keys stand out (≈ 3.6 sd; the rest within ≈ 1 sd) */
        int above = 0;
        for (size_t t = 0; t < n; t++) above += l[t] - m > 1.8 * sd;
        CHECK(above == 8, "query %zu: %d logits beyond 1.8 sd", i, above);
    }
    CHECK(rq_data_queries(k, n, base, nq, d, (int)n + 1, 3.0, 0, 9, q1) == RQ_ERR_INVALID_ARG, "n_hot > n");
out:
    free(k);
    free(base);
    free(q1);
    free(q2);
}

static void test_eval_needle(void) {
    const int d = 16;
    const size_t n = 8;
    float keys[8 * 16] = {0};
    for (size_t t = 0; t < n; t++) keys[t * d + t] = 2.0f; /* orthogonal keys */
    rq_quantizer *q = NULL;
    CHECK_OK(rq_quantizer_init(&q, "f32", d, NULL));
    if (!q) return;
    rq_eval_needle_result r;
    /* almost no noise: always found */
    CHECK_OK(rq_eval_needle(q, keys, n, 1e6, 300, 1, &r));
    CHECK(r.rate == 1 && r.rate_exact == 1 && r.n_trials == 300, "rate %g exact %g", r.rate, r.rate_exact);
    /* almost only noise: chance level 1/8 (2000 trials: std 0.0074) */
    CHECK_OK(rq_eval_needle(q, keys, n, 1e-8, 2000, 1, &r));
    TEST_NOTE("pure noise: rate %.4f (chance 0.125)", r.rate);
    CHECK(fabs(r.rate - 0.125) < 0.04 && r.rate == r.rate_exact, "rate %g", r.rate);
    CHECK(rq_eval_needle(q, keys, n, 0, 10, 1, &r) == RQ_ERR_INVALID_ARG, "snr 0");
    CHECK(rq_eval_needle(q, keys, 1, 1, 10, 1, &r) == RQ_ERR_INVALID_ARG, "one key");
    rq_quantizer_free(q);
}

static void test_eval_speed(void) {
    const int d = 64;
    float *x = make_data(RQ_DATA_ISOTROPIC, 41, 256, d);
    rq_quantizer *q = NULL;
    CHECK_OK(rq_quantizer_init(&q, "turbo3", d, NULL));
    if (!q || !x) goto out;
    rq_eval_speed_result s;
    CHECK_OK(rq_eval_speed(q, x, 256, 3, &s));
    CHECK(s.encode_vps > 0 && isfinite(s.encode_vps) && s.decode_vps > 0 && isfinite(s.decode_vps), "rates");
    CHECK(rq_eval_speed(q, x, 256, 0, &s) == RQ_ERR_INVALID_ARG, "0 reps");
    double mse = -1;
    CHECK_OK(rq_eval_mse(q, x, 256, &mse));
    CHECK(mse > 0.02 && mse < 0.05, "turbo3 MSE %g", mse);
out:
    rq_quantizer_free(q);
    free(x);
}

static void test_eval_codebook_mse(void) {
    /* isotropic unit vectors: any rotation (or none) gives the codebook's
     * distortion × d; the seed's codebook for d_eff = 344 at d = 128 gives the
     * seed's RotorQuant MSE (3 bits: 0.0806 measured in research/reference_impl.md
     * §4.2 over three runs, 0.0803–0.0806) */
    const int d = 128;
    const size_t n = 2000;
    float *x = make_data(RQ_DATA_ISOTROPIC, 51, n, d);
    rq_rotation *rot = NULL;
    CHECK_OK(rq_rotation_init(&rot, RQ_ROT_ROTOR, d, 42));
    rq_codebook right, wrong;
    CHECK_OK(rq_codebook_init(&right, d, 3, RQ_LAW_BETA));
    CHECK_OK(rq_codebook_init(&wrong, 344, 3, RQ_LAW_GAUSS));
    if (!x || !rot) goto out;
    double m_rot = 0, m_none = 0, m_wrong = 0;
    CHECK_OK(rq_eval_codebook_mse(rot, &right, x, n, d, &m_rot));
    CHECK_OK(rq_eval_codebook_mse(NULL, &right, x, n, d, &m_none));
    CHECK_OK(rq_eval_codebook_mse(rot, &wrong, x, n, d, &m_wrong));
    TEST_NOTE("3 bits: rotor %.5f, none %.5f (theory %.5f); d_eff = 344 codebook %.5f", m_rot, m_none,
              right.distortion * d, m_wrong);
    CHECK(fabs(m_rot / (right.distortion * d) - 1) < 0.03, "rotor + right codebook %g", m_rot);
    CHECK(fabs(m_none / (right.distortion * d) - 1) < 0.03, "identity + right codebook %g", m_none);
    CHECK_NEAR(m_wrong, 0.0805, 0.003);
    CHECK(rq_eval_codebook_mse(rot, &right, x, n, 64, &m_rot) == RQ_ERR_INVALID_ARG, "dims mismatch");
out:
    rq_rotation_free(rot);
    free(x);
}

/* The bytes the bench reports are the sizes docs/FORMAT.md §5 specifies, and
 * encode writes exactly that many per vector (a canary after n blocks). */
static void test_bytes_match_format(void) {
    static const int dims[] = {64, 96, 128, 256};
    float x[4 * 256];
    rq_rng r;
    rq_rng_seed(&r, 3);
    for (int i = 0; i < 4 * 256; i++) x[i] = (float)rq_rng_gauss(&r);
    int checked = 0;
    for (int t = 0; t < rq_type_count(); t++) {
        const rq_type_info *ti = rq_type_at(t);
        for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
            int d = dims[k], b = ti->n_bits;
            /* FORMAT.md §5.2: the n8 and k8 types ("turbo3n8", "tcq3k8") have a 1-byte norm head */
            const size_t nl = strlen(ti->name),
                         head = nl > 2 && (!strcmp(ti->name + nl - 2, "n8") || !strcmp(ti->name + nl - 2, "k8")) ? 1 : 2;
            size_t want = 0;
            switch (ti->family) {
            case RQ_FAMILY_F32: want = 4 * (size_t)d; break;
            case RQ_FAMILY_F16: want = 2 * (size_t)d; break;
            case RQ_FAMILY_Q8_0: want = d % 32 ? 0 : 34 * (size_t)d / 32; break;
            case RQ_FAMILY_Q4_0: want = d % 32 ? 0 : 18 * (size_t)d / 32; break;
            case RQ_FAMILY_MSE: want = head + ((size_t)d * b + 7) / 8; break;
            case RQ_FAMILY_PROD: want = 4 + ((size_t)d * (b - 1) + 7) / 8 + ((size_t)d + 7) / 8; break;
            case RQ_FAMILY_TCQ: want = d % 8 || d > 512 ? 0 : head + (size_t)d * b / 8; break;
            }
            size_t got = rq_type_bytes_per_vector(ti, d);
            CHECK(got == want, "%s d=%d: %zu bytes, FORMAT.md says %zu", ti->name, d, got, want);
            rq_quantizer *q = NULL;
            if (!want || rq_quantizer_init(&q, ti->name, d, NULL) != RQ_OK) continue;
            unsigned char blk[4 * 1024 + 16];
            memset(blk, 0xA5, sizeof blk);
            CHECK(rq_quantizer_bytes_per_vector(q) == want, "%s quantizer size", ti->name);
            float xk[4 * 256];
            CHECK_OK(rq_quantizer_encode(q, test_fit_k8(ti->name, x, xk, 4, d), blk, 4));
            int intact = 1;
            for (size_t i = 4 * want; i < 4 * want + 16; i++) intact &= blk[i] == 0xA5;
            CHECK(intact, "%s d=%d wrote past 4 blocks of %zu bytes", ti->name, d, want);
            rq_quantizer_free(q);
            checked++;
        }
    }
    TEST_NOTE("%d (type, d) sizes checked against FORMAT.md", checked);
    CHECK(checked > 150, "checked %d", checked);
}

const rq_test tests_metrics[] = {
    {"metric_kl", test_metric_kl},
    {"metric_pearson_cosine", test_metric_pearson_cosine},
    {"metric_topk_ties", test_metric_topk_ties},
    {"metric_rel_mse", test_metric_rel_mse},
    {"eval_data_pairs", test_data_pairs},
    {"eval_ip_shrinkage_unbiased", test_eval_ip_shrinkage_and_unbiasedness},
    {"eval_attention", test_eval_attention},
    {"eval_data_queries", test_data_queries},
    {"eval_needle", test_eval_needle},
    {"eval_speed", test_eval_speed},
    {"eval_codebook_mse_seed", test_eval_codebook_mse},
    {"eval_bytes_match_format", test_bytes_match_format},
    {NULL, NULL},
};
