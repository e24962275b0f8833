/*
 * metrics.c — quality metrics shared by the CLI, benchmarks and tests:
 * relative MSE, Pearson correlation, cosine, softmax KL divergence, argmax
 * and top-k membership. Double precision throughout; softmax KL uses the
 * max-shifted log-sum-exp so huge logits do not overflow.
 */
#include "internal.h"

#include <math.h>

double rq_metric_rel_mse(const float *x, const float *xhat, size_t n, int d) {
    double s = 0;
    size_t used = 0;
    for (size_t v = 0; v < n; v++) {
        double e = 0, nn = 0;
        for (int j = 0; j < d; j++) {
            double a = x[v * (size_t)d + (size_t)j], t = a - xhat[v * (size_t)d + (size_t)j];
            e += t * t;
            nn += a * a;
        }
        if (nn > 0) s += e / nn, used++;
    }
    return used ? s / (double)used : NAN; /* undefined: every x is zero */
}

double rq_metric_pearson(const double *a, const double *b, size_t n) {
    if (n < 2) return NAN; /* undefined */
    double ma = 0, mb = 0;
    for (size_t i = 0; i < n; i++) ma += a[i], mb += b[i];
    ma /= (double)n, mb /= (double)n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        double da = a[i] - ma, db = b[i] - mb;
        sab += da * db, saa += da * da, sbb += db * db;
    }
    return (saa > 0 && sbb > 0) ? sab / sqrt(saa * sbb) : NAN; /* undefined: a constant series */
}

double rq_metric_cosine(const double *a, const double *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
    return (aa > 0 && bb > 0) ? ab / sqrt(aa * bb) : 0.0;
}

static double log_sum_exp(const double *a, size_t n, double *mx) {
    double m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = a[i] > m ? a[i] : m;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += exp(a[i] - m);
    *mx = m;
    return m + log(s);
}

double rq_metric_softmax_kl(const double *lp, const double *lq, size_t n) {
    if (!n) return 0;
    double mp, mq;
    double zp = log_sum_exp(lp, n, &mp), zq = log_sum_exp(lq, n, &mq);
    double kl = 0;
    for (size_t i = 0; i < n; i++) {
        double logp = lp[i] - zp, logq = lq[i] - zq;
        double p = exp(logp);
        if (p > 0) kl += p * (logp - logq);
    }
    return kl > 0 ? kl : 0.0; /* rounding can give −1e−17 */
}

size_t rq_metric_argmax(const double *a, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (a[i] > a[best]) best = i;
    return best;
}

int rq_metric_in_topk(const double *a, size_t n, size_t target, size_t k) {
    if (target >= n) return 0;
    size_t above = 0; /* entries strictly larger, or equal and earlier */
    for (size_t i = 0; i < n; i++)
        if (a[i] > a[target] || (a[i] == a[target] && i < target)) above++;
    return above < k;
}

/* ---- synthetic data ---------------------------------------------------- */
const char *rq_dataset_name(rq_dataset kind) {
    switch (kind) {
    case RQ_DATA_ISOTROPIC: return "isotropic";
    case RQ_DATA_OUTLIER: return "outlier";
    }
    return "?";
}

rq_status rq_data_generate(rq_dataset kind, uint64_t seed, float *x, size_t n, int d) {
    if ((n && !x) || d < 1 || (kind != RQ_DATA_ISOTROPIC && kind != RQ_DATA_OUTLIER))
        return RQ_ERR_INVALID_ARG;
    rq_rng r;
    rq_rng_seed(&r, rq_seed_derive(seed, RQ_STREAM_DATA, (uint64_t)kind));
    /* outlier channels: 4 fixed positions spread over the vector with scales
     * 10, 16.7, 23.3, 30 (× the other channels' std dev) */
    const int n_out = d >= 8 ? 4 : 0;
    for (size_t v = 0; v < n; v++) {
        float *p = x + v * (size_t)d;
        double s = 0;
        for (int j = 0; j < d; j++) p[j] = (float)rq_rng_gauss(&r);
        if (kind == RQ_DATA_OUTLIER)
            for (int k = 0; k < n_out; k++) p[(k * 37 + 5) % d] *= 10.0f + 20.0f * (float)k / 3.0f;
        for (int j = 0; j < d; j++) s += (double)p[j] * p[j];
        double inv = s > 0 ? 1.0 / sqrt(s) : 0.0;
        for (int j = 0; j < d; j++) p[j] = (float)(p[j] * inv);
    }
    return RQ_OK;
}
