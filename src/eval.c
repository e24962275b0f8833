/*
 * eval.c — quality of a quantizer on given data: relative MSE, inner-product
 * error (bias, spread, correlation), attention fidelity (score cosine,
 * softmax KL, top-1/top-5, output cosine), noisy-needle retrieval and
 * encode/decode throughput; plus the constructions the benchmark feeds them
 * (pairs with a prescribed inner product, attention queries with hot keys).
 *
 * Only the public quantizer API is used: vectors are encoded, decoded once,
 * and every estimate is an inner product with the decoded vector, which for
 * MSE types equals rq_quantizer_dot and for PROD types is the unbiased QJL
 * estimator <y, x̂> (docs/FORMAT.md §5; decoding once costs n·d² for the
 * Gaussian sketch instead of n·d² per query). Exact references are computed
 * in double; dot products use 4 partial sums in a fixed order (deterministic).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------- */
static double dotd(const float *a, const float *b, int d) {
    double s[4] = {0, 0, 0, 0};
    int j = 0;
    for (; j + 4 <= d; j += 4)
        for (int l = 0; l < 4; l++) s[l] += (double)a[j + l] * (double)b[j + l];
    for (; j < d; j++) s[0] += (double)a[j] * (double)b[j];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static bool finite_all(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

/* Running means and co-moments (Welford), for a pooled Pearson correlation
 * over more pairs than we want to store. */
typedef struct {
    double n, ma, mb, caa, cbb, cab;
} co_moments;

static void co_add(co_moments *c, double a, double b) {
    c->n += 1;
    double da = a - c->ma, db = b - c->mb;
    c->ma += da / c->n;
    c->mb += db / c->n;
    c->caa += da * (a - c->ma);
    c->cbb += db * (b - c->mb);
    c->cab += da * (b - c->mb);
}

static double co_corr(const co_moments *c) {
    return (c->caa > 0 && c->cbb > 0) ? c->cab / sqrt(c->caa * c->cbb) : NAN; /* undefined: constant series */
}

/* Encodes and decodes n vectors of q's dimension: xh = decode(encode(x)). */
static rq_status roundtrip(const rq_quantizer *q, const float *x, size_t n, float *xh) {
    size_t bpv = rq_quantizer_bytes_per_vector(q);
    void *blk = malloc(n * bpv + 1);
    if (!blk) return RQ_ERR_NOMEM;
    rq_status st = rq_quantizer_encode(q, x, blk, n);
    if (!st) st = rq_quantizer_decode(q, blk, xh, n);
    free(blk);
    return st;
}

/* ---- MSE ------------------------------------------------------------------ */
rq_status rq_eval_mse(const rq_quantizer *q, const float *x, size_t n_vec, double *mse) {
    if (!q || !mse || (n_vec && !x)) return RQ_ERR_INVALID_ARG;
    int d = rq_quantizer_dims(q);
    float *xh = malloc(n_vec * (size_t)d * sizeof(float) + 1);
    if (!xh) return RQ_ERR_NOMEM;
    rq_status st = roundtrip(q, x, n_vec, xh);
    if (!st) *mse = rq_metric_rel_mse(x, xh, n_vec, d);
    free(xh);
    return st;
}

/* ---- inner products of pairs ---------------------------------------------- */
rq_status rq_eval_ip(const rq_quantizer *q, const float *x, const float *y, size_t n_pairs, size_t n_sets,
                     rq_eval_ip_result *out) {
    if (!q || !out || !n_pairs || !n_sets || !x || !y) return RQ_ERR_INVALID_ARG;
    const size_t d = (size_t)rq_quantizer_dims(q);
    if (!finite_all(y, n_sets * n_pairs * d)) return RQ_ERR_NONFINITE;
    float *xh = malloc(n_pairs * d * sizeof(float));
    if (!xh) return RQ_ERR_NOMEM;
    rq_status st = roundtrip(q, x, n_pairs, xh);
    if (st) {
        free(xh);
        return st;
    }
    const double mse = rq_metric_rel_mse(x, xh, n_pairs, (int)d), n = (double)n_pairs;
    for (size_t set = 0; set < n_sets; set++) {
        co_moments c = {0};
        double se = 0, sd = 0;
        for (size_t i = 0; i < n_pairs; i++) {
            const float *yi = y + (set * n_pairs + i) * d;
            double ex = dotd(yi, x + i * d, (int)d), es = dotd(yi, xh + i * d, (int)d);
            co_add(&c, ex, es);
            se += (es - ex) * (es - ex);
            sd += es - ex;
        }
        rq_eval_ip_result *o = &out[set];
        memset(o, 0, sizeof *o);
        o->n = n_pairs;
        o->mse = mse;
        o->mean_exact = c.ma;
        o->mean_est = c.mb;
        o->bias = sd / n;
        o->ratio = c.ma != 0 ? c.mb / c.ma : NAN; /* undefined: exact mean 0 */
        o->rmse = sqrt(se / n);
        double var = se / n - o->bias * o->bias;
        o->err_std = var > 0 ? sqrt(var) : 0.0;
        o->corr = co_corr(&c);
    }
    free(xh);
    return RQ_OK;
}

/* ---- attention fidelity ---------------------------------------------------- */
/* p = softmax(s) over n entries, in place into p. */
static void softmax(const double *s, size_t n, double *p) {
    double m = -INFINITY, z = 0;
    for (size_t i = 0; i < n; i++) m = s[i] > m ? s[i] : m;
    for (size_t i = 0; i < n; i++) z += (p[i] = exp(s[i] - m));
    for (size_t i = 0; i < n; i++) p[i] /= z;
}

static rq_status check_attention_inputs(int d, const float *keys, const float *values, size_t n_keys,
                                        const float *queries, size_t n_queries, const size_t *n_ctx, float scale) {
    if (d < 1 || !keys || !queries || !n_keys || !n_queries) return RQ_ERR_INVALID_ARG;
    if (n_ctx)
        for (size_t i = 0; i < n_queries; i++)
            if (n_ctx[i] < 1 || n_ctx[i] > n_keys) return RQ_ERR_SHAPE;
    if (!(scale >= 0) || !isfinite(scale)) return RQ_ERR_INVALID_ARG;
    const size_t nd = n_keys * (size_t)d;
    if (!finite_all(keys, nd) || !finite_all(queries, n_queries * (size_t)d) || (values && !finite_all(values, nd)))
        return RQ_ERR_NONFINITE;
    return RQ_OK;
}

rq_status rq_eval_attention(const rq_quantizer *qk, const rq_quantizer *qv, const float *keys,
                            const float *values, size_t n_keys, const float *queries, size_t n_queries,
                            const size_t *n_ctx, float scale, rq_eval_attn_result *out) {
    if (!qk || !out) return RQ_ERR_INVALID_ARG;
    const int d = rq_quantizer_dims(qk);
    if (qv && (!values || rq_quantizer_dims(qv) != d)) return RQ_ERR_SHAPE;
    rq_status st = check_attention_inputs(d, keys, values, n_keys, queries, n_queries, n_ctx, scale);
    if (st) return st;
    const size_t nd = n_keys * (size_t)d;
    float *kh = malloc(nd * sizeof(float)), *vh = values ? malloc(nd * sizeof(float)) : NULL;
    st = (!kh || (values && !vh)) ? RQ_ERR_NOMEM : RQ_OK;
    if (!st) st = roundtrip(qk, keys, n_keys, kh);
    if (!st && values) {
        if (qv) st = roundtrip(qv, values, n_keys, vh);
        else memcpy(vh, values, nd * sizeof(float));
    }
    if (!st) st = rq_eval_attention_decoded(d, keys, kh, values, vh, n_keys, queries, n_queries, n_ctx, scale, out);
    free(kh);
    free(vh);
    return st;
}

rq_status rq_eval_attention_decoded(int d, const float *keys, const float *kh, const float *values,
                                    const float *vh, size_t n_keys, const float *queries, size_t n_queries,
                                    const size_t *n_ctx, float scale, rq_eval_attn_result *out) {
    if (!out || !kh || (!values != !vh)) return RQ_ERR_INVALID_ARG;
    rq_status st = check_attention_inputs(d, keys, values, n_keys, queries, n_queries, n_ctx, scale);
    if (st) return st;
    const size_t nd = n_keys * (size_t)d;
    if (!finite_all(kh, nd) || (vh && !finite_all(vh, nd))) return RQ_ERR_NONFINITE;
    const double sc = scale > 0 ? (double)scale : 1.0 / sqrt((double)d);
    double *s = malloc(4 * n_keys * sizeof(double)), *o = malloc(2 * (size_t)d * sizeof(double));
    if (!s || !o) {
        free(s), free(o);
        return RQ_ERR_NOMEM;
    }
    memset(out, 0, sizeof *out);
    out->n_keys = n_keys;
    out->n_queries = n_queries;
    out->mse = rq_metric_rel_mse(keys, kh, n_keys, d);
    if (values) out->mse_values = rq_metric_rel_mse(values, vh, n_keys, d);

    double *sh = s + n_keys, *p = sh + n_keys, *ph = p + n_keys, *oh = o + d;
    co_moments c = {0};
    double se = 0, sd = 0, npairs = 0;
    for (size_t i = 0; i < n_queries; i++) {
        const float *qi = queries + i * (size_t)d;
        size_t n = n_ctx ? n_ctx[i] : n_keys;
        for (size_t t = 0; t < n; t++) {
            double ex = dotd(qi, keys + t * (size_t)d, d), es = dotd(qi, kh + t * (size_t)d, d);
            co_add(&c, ex, es);
            se += (es - ex) * (es - ex);
            sd += es - ex;
            s[t] = sc * ex;
            sh[t] = sc * es;
        }
        npairs += (double)n;
        out->score_cosine += rq_metric_cosine(s, sh, n);
        out->softmax_kl += rq_metric_softmax_kl(s, sh, n);
        size_t top = rq_metric_argmax(s, n);
        out->top1 += rq_metric_argmax(sh, n) == top;
        out->top5 += rq_metric_in_topk(sh, n, top, 5);
        if (values) {
            softmax(s, n, p);
            softmax(sh, n, ph);
            for (int j = 0; j < d; j++) o[j] = oh[j] = 0;
            for (size_t t = 0; t < n; t++) {
                const float *v = values + t * (size_t)d, *w = vh + t * (size_t)d;
                for (int j = 0; j < d; j++) o[j] += p[t] * v[j], oh[j] += ph[t] * w[j];
            }
            out->output_cosine += rq_metric_cosine(o, oh, (size_t)d);
        }
    }
    const double nq = (double)n_queries;
    out->score_cosine /= nq;
    out->softmax_kl /= nq;
    out->top1 /= nq;
    out->top5 /= nq;
    out->output_cosine /= nq;
    out->ip_corr = co_corr(&c);
    out->ip_bias = sd / npairs;
    out->ip_rmse = sqrt(se / npairs);
    free(s);
    free(o);
    return RQ_OK;
}

/* ---- needle ------------------------------------------------------------------ */
rq_status rq_eval_needle(const rq_quantizer *q, const float *keys, size_t n_keys, double snr,
                         size_t n_trials, uint64_t seed, rq_eval_needle_result *out) {
    if (!q || !keys || !out || n_keys < 2 || !n_trials || !(snr > 0) || !isfinite(snr)) return RQ_ERR_INVALID_ARG;
    const int d = rq_quantizer_dims(q);
    float *kh = malloc(n_keys * (size_t)d * sizeof(float)), *qv = malloc((size_t)d * sizeof(float));
    rq_status st = (!kh || !qv) ? RQ_ERR_NOMEM : roundtrip(q, keys, n_keys, kh);
    if (st) goto done;
    rq_rng rng;
    rq_rng_seed(&rng, rq_seed_derive(seed, RQ_STREAM_DATA, 0x6e6565646c65u /* "needle" */));
    size_t hits = 0, hits_exact = 0;
    for (size_t trial = 0; trial < n_trials; trial++) {
        size_t pos = (size_t)(rq_rng_uniform(&rng) * (double)n_keys);
        const float *kp = keys + pos * (size_t)d;
        double sigma = sqrt(dotd(kp, kp, d) / ((double)d * snr));
        for (int j = 0; j < d; j++) qv[j] = (float)(kp[j] + sigma * rq_rng_gauss(&rng));
        double best = -INFINITY, best_ex = -INFINITY;
        size_t arg = 0, arg_ex = 0;
        for (size_t t = 0; t < n_keys; t++) {
            double es = dotd(qv, kh + t * (size_t)d, d), ex = dotd(qv, keys + t * (size_t)d, d);
            if (es > best) best = es, arg = t;
            if (ex > best_ex) best_ex = ex, arg_ex = t;
        }
        hits += arg == pos;
        hits_exact += arg_ex == pos;
    }
    out->n_trials = n_trials;
    out->rate = (double)hits / (double)n_trials;
    out->rate_exact = (double)hits_exact / (double)n_trials;
done:
    free(kh);
    free(qv);
    return st;
}

/* ---- throughput ---------------------------------------------------------------- */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

rq_status rq_eval_speed(const rq_quantizer *q, const float *x, size_t n_vec, int n_reps,
                        rq_eval_speed_result *out) {
    if (!q || !x || !out || !n_vec || n_reps < 1 || n_reps > 1000) return RQ_ERR_INVALID_ARG;
    size_t bpv = rq_quantizer_bytes_per_vector(q), d = (size_t)rq_quantizer_dims(q);
    void *blk = malloc(n_vec * bpv);
    float *xh = malloc(n_vec * d * sizeof(float));
    double *te = malloc(2 * (size_t)n_reps * sizeof(double));
    rq_status st = (!blk || !xh || !te) ? RQ_ERR_NOMEM : RQ_OK;
    double *td = te ? te + n_reps : NULL;
    for (int r = 0; !st && r < n_reps; r++) {
        double t0 = now_s();
        st = rq_quantizer_encode(q, x, blk, n_vec);
        double t1 = now_s();
        if (!st) st = rq_quantizer_decode(q, blk, xh, n_vec);
        double t2 = now_s();
        te[r] = t1 - t0;
        td[r] = t2 - t1;
    }
    if (!st) {
        qsort(te, (size_t)n_reps, sizeof(double), cmp_double);
        qsort(td, (size_t)n_reps, sizeof(double), cmp_double);
        double me = n_reps % 2 ? te[n_reps / 2] : 0.5 * (te[n_reps / 2 - 1] + te[n_reps / 2]);
        double md = n_reps % 2 ? td[n_reps / 2] : 0.5 * (td[n_reps / 2 - 1] + td[n_reps / 2]);
        /* a clock tick of 0 would be an infinite rate: report 1 ns instead */
        out->encode_vps = (double)n_vec / (me > 1e-9 ? me : 1e-9);
        out->decode_vps = (double)n_vec / (md > 1e-9 ? md : 1e-9);
    }
    free(blk);
    free(xh);
    free(te);
    return st;
}

/* ---- a bare rotation + codebook ------------------------------------------------ */
rq_status rq_eval_codebook_mse(const rq_rotation *rot, const rq_codebook *cb, const float *x, size_t n_vec,
                               int d, double *mse) {
    if (!cb || !mse || d < 1 || d > RQ_MAX_DIMS || (n_vec && !x) || (rot && rq_rotation_dims(rot) != d))
        return RQ_ERR_INVALID_ARG;
    if (!finite_all(x, n_vec * (size_t)d)) return RQ_ERR_NONFINITE;
    float u[RQ_MAX_DIMS], y[RQ_MAX_DIMS];
    double s = 0;
    size_t used = 0;
    for (size_t v = 0; v < n_vec; v++) {
        const float *xv = x + v * (size_t)d;
        double nx = sqrt(dotd(xv, xv, d));
        if (!(nx > 0)) continue;
        for (int j = 0; j < d; j++) u[j] = (float)(xv[j] / nx);
        if (rot) rq_rotation_forward(rot, u, y, 1);
        else memcpy(y, u, sizeof(float) * (size_t)d);
        double e = 0;
        for (int j = 0; j < d; j++) {
            double t = (double)y[j] - cb->centroids[rq_codebook_index(cb, y[j])];
            e += t * t;
        }
        s += e, used++;
    }
    *mse = used ? s / (double)used : NAN; /* undefined: no nonzero vector */
    return RQ_OK;
}

/* ---- data constructions ---------------------------------------------------------- */
rq_status rq_data_pairs(const float *pool, size_t n_pool, int d, double rho, size_t n_pairs,
                        float *x_out, float *y_out) {
    if (!pool || !n_pool || d < 2 || !(rho >= -1 && rho <= 1) || (n_pairs && (!x_out || !y_out)))
        return RQ_ERR_INVALID_ARG;
    if (!finite_all(pool, n_pool * (size_t)d)) return RQ_ERR_NONFINITE;
    const double c = sqrt(1 - rho * rho);
    for (size_t i = 0; i < n_pairs; i++) {
        const float *x = pool + (i % n_pool) * (size_t)d;
        float *xo = x_out + i * (size_t)d, *yo = y_out + i * (size_t)d;
        double nx = sqrt(dotd(x, x, d));
        if (!(nx > 0)) return RQ_ERR_INVALID_ARG; /* a zero vector has no direction */
        for (int j = 0; j < d; j++) xo[j] = (float)(x[j] / nx);
        /* z: the first pool vector from (i + n_pool/2) on with a component
         * orthogonal to x of at least 1e-3 of its norm */
        bool found = false;
        for (size_t k = 0; k < n_pool && !found; k++) {
            const float *z = pool + ((i + n_pool / 2 + k) % n_pool) * (size_t)d;
            double zx = dotd(z, xo, d), zz = dotd(z, z, d);
            double perp2 = zz - zx * zx;
            if (!(zz > 0) || perp2 <= 1e-6 * zz) continue;
            /* ẑ⊥ = (z − <z,x̂> x̂)/‖·‖, computed in double then re-normalized */
            double np = 0;
            for (int j = 0; j < d; j++) {
                double v = z[j] - zx * xo[j];
                np += v * v;
            }
            np = sqrt(np);
            for (int j = 0; j < d; j++) yo[j] = (float)(rho * xo[j] + c * (z[j] - zx * xo[j]) / np);
            found = true;
        }
        if (!found) return RQ_ERR_INVALID_ARG; /* every pool vector is parallel to x */
    }
    return RQ_OK;
}

rq_status rq_data_queries(const float *keys, size_t n_keys, const float *base, size_t n_queries, int d,
                          int n_hot, double logit_std, float scale, uint64_t seed, float *q_out) {
    if (!keys || !n_keys || d < 1 || n_hot < 0 || (size_t)n_hot > n_keys || !(logit_std > 0) ||
        !isfinite(logit_std) || !(scale >= 0) || (n_queries && (!base || !q_out)))
        return RQ_ERR_INVALID_ARG;
    if (!finite_all(keys, n_keys * (size_t)d) || !finite_all(base, n_queries * (size_t)d)) return RQ_ERR_NONFINITE;
    const double sc = scale > 0 ? (double)scale : 1.0 / sqrt((double)d);
    double *qd = malloc((size_t)d * sizeof(double));
    size_t *hot = malloc(((size_t)n_hot + 1) * sizeof(size_t));
    if (!qd || !hot) {
        free(qd);
        free(hot);
        return RQ_ERR_NOMEM;
    }
    rq_rng rng;
    rq_rng_seed(&rng, rq_seed_derive(seed, RQ_STREAM_DATA, 0x717565727973u /* "querys" */));
    for (size_t i = 0; i < n_queries; i++) {
        const float *b = base + i * (size_t)d;
        float *qo = q_out + i * (size_t)d;
        double nb = sqrt(dotd(b, b, d));
        for (int j = 0; j < d; j++) qd[j] = nb > 0 ? b[j] / nb : 0.0;
        for (int h = 0; h < n_hot; h++) {
            size_t t;
            bool dup;
            do { /* distinct positions; n_hot ≤ n_keys so this ends */
                t = (size_t)(rq_rng_uniform(&rng) * (double)n_keys);
                dup = false;
                for (int e = 0; e < h; e++) dup |= hot[e] == t;
            } while (dup);
            hot[h] = t;
            const float *k = keys + t * (size_t)d;
            double nk = sqrt(dotd(k, k, d));
            if (nk > 0)
                for (int j = 0; j < d; j++) qd[j] += k[j] / nk;
        }
        for (int j = 0; j < d; j++) qo[j] = (float)qd[j];
        /* standard deviation of the logits over the keys */
        double m = 0, m2 = 0;
        for (size_t t = 0; t < n_keys; t++) {
            double l = sc * dotd(qo, keys + t * (size_t)d, d);
            m += l, m2 += l * l;
        }
        m /= (double)n_keys;
        double var = m2 / (double)n_keys - m * m, f = var > 0 ? logit_std / sqrt(var) : 1.0;
        for (int j = 0; j < d; j++) qo[j] = (float)(qd[j] * f);
    }
    free(qd);
    free(hot);
    return RQ_OK;
}
