/*
 * cmd_eval.c — `rotorquant eval`: the bench's metrics on a user's own arrays.
 *
 *   rotorquant eval --type TYPE --keys K.npy [--queries Q.npy] [--values V.npy]
 *                   [--type-v TYPE] [--causal] [--scale S] [--seed S] [--reps R] [--json]
 *
 * K, V: (n, d) or (heads, n, d); Q: (m, d) or (q_heads, m, d) with q_heads a
 * multiple of heads (GQA: query head i reads KV head i / (q_heads/heads)).
 * float32 or float16 .npy. Reports per KV head and the mean over heads.
 * Computation: src/eval.c (rq_eval_*); this file parses, calls and prints.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>

typedef struct {
    const char *type, *type_v, *keys, *queries, *values;
    int causal, json, reps;
    double scale;
    unsigned long long seed;
} eopts;

typedef struct {
    double mse, mse_values, ip_corr, ip_bias, ip_rmse, score_cosine, softmax_kl, top1, top5, output_cosine;
} metrics;

static void add_scaled(metrics *m, const metrics *r, double w) {
    m->mse += w * r->mse, m->mse_values += w * r->mse_values;
    m->ip_corr += w * r->ip_corr, m->ip_bias += w * r->ip_bias, m->ip_rmse += w * r->ip_rmse;
    m->score_cosine += w * r->score_cosine, m->softmax_kl += w * r->softmax_kl;
    m->top1 += w * r->top1, m->top5 += w * r->top5, m->output_cosine += w * r->output_cosine;
}

static int eparse(int argc, char **argv, eopts *o) {
    memset(o, 0, sizeof *o);
    o->seed = 42, o->reps = 5;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--causal")) o->causal = 1;
        else if (!v || strncmp(a, "--", 2)) {
            return cli_usage("eval", "%s '%s'", v ? "unexpected argument" : "missing value or unknown option", a);
        } else {
            i++;
            char *end = NULL;
            errno = 0;
            if (!strcmp(a, "--type")) o->type = v;
            else if (!strcmp(a, "--type-v")) o->type_v = v;
            else if (!strcmp(a, "--keys")) o->keys = v;
            else if (!strcmp(a, "--queries")) o->queries = v;
            else if (!strcmp(a, "--values")) o->values = v;
            else if (!strcmp(a, "--scale")) {
                o->scale = strtod(v, &end);
                if (end == v || *end || !(o->scale >= 0 && o->scale < 1e6)) {
                    return cli_usage("eval", "--scale expects a number >= 0 (0 = 1/sqrt(d)), got '%s'", v);
                }
            } else if (!strcmp(a, "--seed")) {
                o->seed = strtoull(v, &end, 10);
                if (end == v || *end || errno || v[0] == '-') {
                    return cli_usage("eval", "--seed expects an unsigned integer, got '%s'", v);
                }
            } else if (!strcmp(a, "--reps")) {
                long r = strtol(v, &end, 10);
                if (end == v || *end || r < 0 || r > 1000) {
                    return cli_usage("eval", "--reps expects 0..1000, got '%s'", v);
                }
                o->reps = (int)r;
            } else {
                return cli_usage("eval", "unknown option '%s'", a);
            }
        }
    }
    if (!o->type || !o->keys) {
        return cli_usage("eval", "--type and --keys are required");
    }
    if (!o->type_v) o->type_v = o->type;
    return 0;
}

/* Reads a .npy and views it as (heads, n, d). */
static int load3(const char *path, const char *what, rq_npy_array *a, size_t *h, size_t *n, size_t *d) {
    rq_status st = rq_npy_read(path, a);
    if (st) {
        if (a->error[0]) return cli_failf("eval", RQ_OK, "%s %s: %s", what, path, a->error);
        return cli_failf("eval", st, "%s %s", what, path);
    }
    if (a->n_dims == 2) *h = 1, *n = a->shape[0], *d = a->shape[1];
    else if (a->n_dims == 3) *h = a->shape[0], *n = a->shape[1], *d = a->shape[2];
    else {
        return cli_failf("eval", RQ_OK, "%s %s: expected shape (n, d) or (heads, n, d), got %d dimensions", what, path,
                         a->n_dims);
    }
    if (!*h || !*n || !*d) {
        return cli_failf("eval", RQ_OK, "%s %s: empty array (shape has a 0)", what, path);
    }
    return 0;
}

static void jf(const char *k, double v, int last) {
    if (isfinite(v)) printf("\"%s\": %.6g%s", k, v, last ? "" : ", ");
    else printf("\"%s\": null%s", k, last ? "" : ", ");
}

static void json_metrics(const metrics *m, int has_q, int has_v) {
    jf("mse", m->mse, 0);
    jf("ip_corr", m->ip_corr, 0);
    jf("ip_bias", m->ip_bias, 0);
    jf("ip_rmse", m->ip_rmse, !has_q && !has_v);
    if (has_q) {
        jf("score_cosine", m->score_cosine, 0);
        jf("softmax_kl", m->softmax_kl, 0);
        jf("top1", m->top1, 0);
        jf("top5", m->top5, !has_v);
    }
    if (has_v) {
        jf("mse_values", m->mse_values, 0);
        jf("output_cosine", m->output_cosine, 1);
    }
}

/* One markdown cell: v in fmt, "-" when undefined (not finite). */
static void cell(const char *fmt, double v) {
    char b[48];
    printf(" %s |", cli_num(b, sizeof b, fmt, v));
}

static void md_row(const char *name, const metrics *m, int has_q, int has_v) {
    printf("| %s |", name);
    cell("%.5g", m->mse), cell("%.4f", m->ip_corr), cell("%+.3g", m->ip_bias), cell("%.4g", m->ip_rmse);
    if (has_q) cell("%.5f", m->score_cosine), cell("%.4g", m->softmax_kl), cell("%.3f", m->top1), cell("%.3f", m->top5);
    if (has_v) cell("%.5g", m->mse_values), cell("%.5f", m->output_cosine);
    printf("\n");
}

int cmd_eval(int argc, char **argv) {
    eopts o;
    int rc = eparse(argc, argv, &o);
    if (rc) return rc;
    rq_npy_array K = {0}, Q = {0}, V = {0};
    rq_quantizer *qk = NULL, *qv = NULL;
    metrics *per = NULL;
    float *qbuf = NULL, *ybuf = NULL;
    size_t *ctx = NULL;
    size_t h, n, d, qh = 0, m = 0, qd = 0, vh, vn, vd;
    rc = 1;
    if (load3(o.keys, "--keys", &K, &h, &n, &d)) goto out;
    if (o.queries) {
        if (load3(o.queries, "--queries", &Q, &qh, &m, &qd)) goto out;
        if (qd != d || qh % h) {
            cli_failf("eval", RQ_OK,
                      "--queries shape (%zu, %zu, %zu) does not fit --keys (%zu, %zu, %zu): need the same d and query "
                      "heads a multiple of KV heads",
                      qh, m, qd, h, n, d);
            goto out;
        }
        if (o.causal && m > n) {
            cli_failf("eval", RQ_OK, "--causal needs at most as many queries (%zu) as keys (%zu) per head", m, n);
            goto out;
        }
    } else if (o.causal) {
        cli_fail("eval", RQ_OK, "--causal needs --queries");
        goto out;
    }
    if (o.values) {
        if (load3(o.values, "--values", &V, &vh, &vn, &vd)) goto out;
        if (vh != h || vn != n || vd != d) {
            cli_failf("eval", RQ_OK, "--values shape (%zu, %zu, %zu) does not match --keys (%zu, %zu, %zu)", vh, vn, vd,
                      h, n, d);
            goto out;
        }
        if (!o.queries) {
            cli_fail("eval", RQ_OK, "--values needs --queries (attention outputs)");
            goto out;
        }
    }
    if (d < RQ_MIN_DIMS || d > RQ_MAX_DIMS) {
        cli_failf("eval", RQ_OK, "head dimension %zu outside [%d, %d]", d, RQ_MIN_DIMS, RQ_MAX_DIMS);
        goto out;
    }
    if (n < 2) {
        cli_fail("eval", RQ_OK, "need at least 2 keys per head");
        goto out;
    }
    rq_quant_config ck = rq_quant_config_default(), cv = ck;
    ck.seed = o.seed, cv.seed = o.seed + 1;
    rq_status st = rq_quantizer_init(&qk, o.type, (int)d, &ck);
    if (!st && o.values) st = rq_quantizer_init(&qv, o.type_v, (int)d, &cv);
    if (st) {
        rc = cli_failf("eval", st, "type %s at d = %zu", !qk ? o.type : o.type_v, d);
        goto out;
    }

    size_t group = o.queries ? qh / h : 0, nq = group * m;
    per = calloc(h, sizeof *per);
    qbuf = malloc((nq ? nq : 1) * d * sizeof(float));
    ybuf = malloc(n * d * sizeof(float));
    ctx = malloc((nq ? nq : 1) * sizeof(size_t));
    if (!per || !qbuf || !ybuf || !ctx) {
        rc = cli_fail("eval", RQ_ERR_NOMEM, "buffers");
        goto out;
    }
    metrics mean = {0};
    for (size_t kh = 0; kh < h; kh++) {
        const float *keys = K.data + kh * n * d;
        metrics *r = &per[kh];
        if (o.queries) {
            /* the queries of every query head reading this KV head */
            memcpy(qbuf, Q.data + kh * group * m * d, nq * d * sizeof(float));
            for (size_t i = 0; i < nq; i++) ctx[i] = n - m + (i % m) + 1;
            rq_eval_attn_result a;
            st = rq_eval_attention(qk, qv, keys, o.values ? V.data + kh * n * d : NULL, n, qbuf, nq,
                                   o.causal ? ctx : NULL, (float)o.scale, &a);
            *r = (metrics){a.mse, a.mse_values, a.ip_corr, a.ip_bias, a.ip_rmse, a.score_cosine,
                           a.softmax_kl, a.top1, a.top5, a.output_cosine};
        } else {
            /* no queries: inner products of key pairs (k_i, k_{i + n/2 mod n}) */
            for (size_t i = 0; i < n; i++) memcpy(ybuf + i * d, keys + ((i + n / 2) % n) * d, d * sizeof(float));
            rq_eval_ip_result ip;
            st = rq_eval_ip(qk, keys, ybuf, n, 1, &ip);
            r->mse = ip.mse, r->ip_corr = ip.corr, r->ip_bias = ip.bias, r->ip_rmse = ip.rmse;
        }
        if (st) {
            rc = cli_failf("eval", st, "KV head %zu", kh);
            goto out;
        }
        add_scaled(&mean, r, 1.0 / (double)h);
    }
    rq_eval_speed_result sp = {0, 0};
    if (o.reps > 0) {
        st = rq_eval_speed(qk, K.data, n < 4096 ? n : 4096, o.reps, &sp);
        if (st) {
            rc = cli_fail("eval", st, "speed");
            goto out;
        }
    }

    size_t bytes = rq_quantizer_bytes_per_vector(qk);
    double bpv = rq_quantizer_bits_per_value(qk);
    int has_q = o.queries != NULL, has_v = o.values != NULL;
    if (o.json) {
        printf("{\"type\": \"%s\", \"type_v\": \"%s\", \"d\": %zu, \"n\": %zu, \"heads\": %zu, \"query_heads\": %zu, "
               "\"n_queries\": %zu, \"causal\": %s, ",
               o.type, has_v ? o.type_v : o.type, d, n, h, qh, m, o.causal ? "true" : "false");
        jf("scale", o.scale > 0 ? o.scale : 1.0 / sqrt((double)d), 0);
        jf("bits_per_value", bpv, 0);
        printf("\"bytes_per_vector\": %zu, ", bytes);
        jf("compression_vs_f16", 16.0 / bpv, 0);
        printf("\"n_params\": %zu, \"seed\": %llu, ", rq_quantizer_n_params(qk), o.seed);
        if (o.reps > 0) {
            jf("encode_vps", sp.encode_vps, 0);
            jf("decode_vps", sp.decode_vps, 0);
        }
        printf("\n ");
        json_metrics(&mean, has_q, has_v);
        printf(",\n \"per_head\": [\n");
        for (size_t kh = 0; kh < h; kh++) {
            printf("  {\"head\": %zu, ", kh);
            json_metrics(&per[kh], has_q, has_v);
            printf("}%s\n", kh + 1 < h ? "," : "");
        }
        printf(" ]}\n");
    } else {
        printf("type %s (values %s), d = %zu, %zu KV heads x %zu keys", o.type, has_v ? o.type_v : "-", d, h, n);
        if (has_q) printf(", %zu query heads x %zu queries%s", qh, m, o.causal ? " (causal)" : "");
        printf("\n%zu bytes/vector, %.3f bits/value, %.2fx vs f16, %zu parameters", bytes, bpv, 16.0 / bpv,
               rq_quantizer_n_params(qk));
        if (o.reps > 0) printf("; encode %.3g vec/s, decode %.3g vec/s (1 thread)", sp.encode_vps, sp.decode_vps);
        printf("\n%s\n\n", has_q ? "ip: <q, k^> vs <q, k> over all query x key pairs"
                                  : "ip: <k_j, k_i^> vs <k_j, k_i>, j = i + n/2 (no queries given)");
        printf("| head | MSE | IP corr | IP bias | IP RMSE |%s%s\n",
               has_q ? " score cos | softmax KL | top1 | top5 |" : "", has_v ? " MSE values | out cos |" : "");
        printf("|---|---:|---:|---:|---:|%s%s\n", has_q ? "---:|---:|---:|---:|" : "", has_v ? "---:|---:|" : "");
        for (size_t kh = 0; kh < h; kh++) {
            char name[32];
            snprintf(name, sizeof name, "%zu", kh);
            md_row(name, &per[kh], has_q, has_v);
        }
        md_row("mean", &mean, has_q, has_v);
    }
    rc = 0;
out:
    rq_npy_free(&K);
    rq_npy_free(&Q);
    rq_npy_free(&V);
    rq_quantizer_free(qk);
    rq_quantizer_free(qv);
    free(per);
    free(qbuf);
    free(ybuf);
    free(ctx);
    return rc;
}
