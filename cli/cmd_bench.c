/*
 * cmd_bench.c — `rotorquant bench` (the whole quantizer comparison in one
 * run) and `rotorquant types` (the registry with exact sizes).
 *
 * bench: for every selected data set × head dimension × type it calls the
 * library's evaluation API (src/eval.c) and prints markdown tables, or with
 * --json one JSON document (what `make results` turns into docs/RESULTS.md).
 * The data constructions are stated in the output itself (print_header).
 * Everything here is parsing, calling and printing.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>

#define MAX_LIST 8
#define N_RHO 3
static const double RHOS[N_RHO] = {0.2, 0.5, 0.8};

typedef struct {
    char name[16];      /* "isotropic", "outlier", "npy"             */
    rq_dataset kind;    /* synthetic kind (unused for npy)            */
    const char *path;   /* npy: file                                  */
} data_spec;

typedef struct {
    data_spec data[MAX_LIST];
    int n_data;
    int dims[MAX_LIST], n_dims;
    size_t ctx[MAX_LIST];
    int n_ctx;
    const char *types[64];
    int n_types;
    size_t n, n_queries, trials, needle_keys, speed_n;
    int n_hot, reps;
    double snr, logit_std;
    unsigned long long seed;
    int json;
    const char *dump;
} opts;

/* One (data set, d, type) result. */
typedef struct {
    int data, d;
    const rq_type_info *t;
    double bpv, mse, bound, theory;
    size_t bytes, params;
    int has_theory;
    rq_eval_ip_result ip, rho[N_RHO];
    rq_eval_attn_result att[MAX_LIST];
    rq_eval_needle_result needle;
    int has_speed;
    rq_eval_speed_result speed;
} row;

/* What one (data set, d) block used. */
typedef struct {
    int data, d;
    size_t n_pool, n_pairs, ctx[MAX_LIST], needle_keys;
    int n_ctx;
    double needle_exact;
    int d_eff;                        /* the seed's RotorQuant codebook dimension */
    double seed_mse[4], fixed_mse[4]; /* rotor + codebook for d_eff / for d, b = 1..4 */
} block;

/* ---- argument parsing ---------------------------------------------------- */
static int fail_opt(const char *opt, const char *v, const char *want) {
    cli_usage("bench", "option %s: %s (got '%s')", opt, want, v ? v : "nothing");
    return -1;
}

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end = NULL;
    if (!v) return fail_opt(opt, v, "expects a value");
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi)) {
        char want[96];
        snprintf(want, sizeof want, "expects a number in [%g, %g]", lo, hi);
        return fail_opt(opt, v, want);
    }
    *out = x;
    return 0;
}

/* Splits a comma-separated list in place; returns the count or -1. */
static int split(char *s, char **items, int cap) {
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n == cap) return -1;
        items[n++] = tok;
    }
    return n;
}

static int parse(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->data[0] = (data_spec){"isotropic", RQ_DATA_ISOTROPIC, NULL};
    o->data[1] = (data_spec){"outlier", RQ_DATA_OUTLIER, NULL};
    o->n_data = 2;
    o->dims[0] = 64, o->dims[1] = 128, o->dims[2] = 256, o->n_dims = 3;
    o->ctx[0] = 1024, o->ctx[1] = 4096, o->n_ctx = 2;
    o->n = 2048, o->n_queries = 32, o->trials = 200, o->needle_keys = 1024, o->speed_n = 1024;
    o->n_hot = 8, o->reps = 5, o->snr = 0.2, o->logit_std = 2.0, o->seed = 42;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        static const char *const with_value[] = {"--data", "--dims", "--ctx", "--types", "--n", "--queries",
                                                 "--trials", "--needle-keys", "--snr", "--logit-std", "--hot",
                                                 "--reps", "--speed-n", "--seed", "--dump"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(a, with_value[k]);
        if (!known) {
            cli_usage("bench", "unknown option '%s'", a);
            return -1;
        }
        if (!v) return fail_opt(a, v, "expects a value");
        i++;
        if (!strcmp(a, "--data")) {
            char *items[MAX_LIST];
            int n = split(argv[i], items, MAX_LIST);
            if (n < 1) return fail_opt(a, v, "expects isotropic,outlier,npy:PATH (at most 8)");
            for (int k = 0; k < n; k++) {
                data_spec *ds = &o->data[k];
                if (!strcmp(items[k], "isotropic")) *ds = (data_spec){"isotropic", RQ_DATA_ISOTROPIC, NULL};
                else if (!strcmp(items[k], "outlier")) *ds = (data_spec){"outlier", RQ_DATA_OUTLIER, NULL};
                else if (!strncmp(items[k], "npy:", 4) && items[k][4]) *ds = (data_spec){"npy", 0, items[k] + 4};
                else return fail_opt(a, items[k], "unknown data set (isotropic, outlier, npy:PATH)");
            }
            o->n_data = n;
        } else if (!strcmp(a, "--dims")) {
            char *items[MAX_LIST];
            int n = split(argv[i], items, MAX_LIST);
            if (n < 1) return fail_opt(a, v, "expects a list of head dimensions");
            for (int k = 0; k < n; k++) {
                if (parse_num(a, items[k], RQ_MIN_DIMS, RQ_MAX_DIMS, &x)) return -1;
                o->dims[k] = (int)x;
            }
            o->n_dims = n;
        } else if (!strcmp(a, "--ctx")) {
            char *items[MAX_LIST];
            int n = split(argv[i], items, MAX_LIST);
            if (n < 1) return fail_opt(a, v, "expects a list of key counts");
            for (int k = 0; k < n; k++) {
                if (parse_num(a, items[k], 8, 1 << 20, &x)) return -1;
                o->ctx[k] = (size_t)x;
            }
            o->n_ctx = n;
        } else if (!strcmp(a, "--types")) {
            char *items[64];
            int n = split(argv[i], items, 64);
            if (n < 1) return fail_opt(a, v, "expects a list of type names (see `rotorquant types`)");
            for (int k = 0; k < n; k++)
                if (strcmp(items[k], "all") && !rq_type_find(items[k]))
                    return fail_opt(a, items[k], "unknown type (see `rotorquant types`)");
            memcpy(o->types, items, sizeof(char *) * (size_t)n);
            o->n_types = n;
        } else if (!strcmp(a, "--n")) {
            if (parse_num(a, v, 16, 1e7, &x)) return -1;
            o->n = (size_t)x;
        } else if (!strcmp(a, "--queries")) {
            if (parse_num(a, v, 1, 1e5, &x)) return -1;
            o->n_queries = (size_t)x;
        } else if (!strcmp(a, "--trials")) {
            if (parse_num(a, v, 1, 1e7, &x)) return -1;
            o->trials = (size_t)x;
        } else if (!strcmp(a, "--needle-keys")) {
            if (parse_num(a, v, 2, 1e7, &x)) return -1;
            o->needle_keys = (size_t)x;
        } else if (!strcmp(a, "--snr")) {
            if (parse_num(a, v, 1e-6, 1e6, &o->snr)) return -1;
        } else if (!strcmp(a, "--logit-std")) {
            if (parse_num(a, v, 1e-3, 1e3, &o->logit_std)) return -1;
        } else if (!strcmp(a, "--hot")) {
            if (parse_num(a, v, 0, 1024, &x)) return -1;
            o->n_hot = (int)x;
        } else if (!strcmp(a, "--reps")) {
            if (parse_num(a, v, 0, 1000, &x)) return -1;
            o->reps = (int)x;
        } else if (!strcmp(a, "--speed-n")) {
            if (parse_num(a, v, 1, 1e7, &x)) return -1;
            o->speed_n = (size_t)x;
        } else if (!strcmp(a, "--seed")) {
            char *end = NULL;
            errno = 0;
            o->seed = strtoull(v, &end, 10);
            if (end == v || *end || errno || v[0] == '-') return fail_opt(a, v, "expects an unsigned 64-bit integer");
        } else {
            o->dump = v; /* --dump */
        }
    }
    return 0;
}

static int type_selected(const opts *o, const rq_type_info *t) {
    if (!o->n_types) return strcmp(t->name, "f32") != 0; /* default: everything but f32 */
    for (int k = 0; k < o->n_types; k++)
        if (!strcmp(o->types[k], "all") || !strcmp(o->types[k], t->name)) return 1;
    return 0;
}

/* The family column, from the registry's family and rotation: the rotation
 * as the type names spell it (the randomized-Hadamard types are "turbo",
 * after the llama.cpp forks), "+qjl" for the QJL variants; a baseline
 * ("q4_0h", ...) is its own family. */
static void family_name(const rq_type_info *t, char *buf, size_t cap) {
    if (t->family == RQ_FAMILY_TCQ) { /* trellis codes after turbo's rotation */
        snprintf(buf, cap, "tcq");
        return;
    }
    if (t->family != RQ_FAMILY_MSE && t->family != RQ_FAMILY_PROD) {
        snprintf(buf, cap, "%s", t->name);
        return;
    }
    const char *rot = t->rotation == RQ_ROT_HADAMARD ? "turbo" : rq_rot_kind_name(t->rotation);
    snprintf(buf, cap, "%s%s", rot, t->family == RQ_FAMILY_PROD ? "+qjl" : "");
}

/* ---- data ---------------------------------------------------------------- */
/* The vector pool of one (data set, d): synthetic data generated from the
 * seed, or every row of the .npy file (leading dimensions flattened). */
/* Rows [0, half) are keys / x, rows [half, 2·half) values / partners, and the
 * synthetic pools add n_queries rows for query bases after them, so the data
 * of one seed do not depend on --queries. */
static int load_pool(const opts *o, const data_spec *ds, int d_req, float **pool, size_t *n_pool, size_t *half_out,
                     int *d_out) {
    if (ds->path) {
        rq_npy_array a;
        rq_status st = rq_npy_read(ds->path, &a);
        if (st) {
            if (a.error[0]) cli_failf("bench", RQ_OK, "npy:%s: %s", ds->path, a.error);
            else cli_failf("bench", st, "npy:%s", ds->path);
            rq_npy_free(&a);
            return -1;
        }
        size_t d = a.shape[a.n_dims - 1];
        if (a.n_dims < 2 || d < RQ_MIN_DIMS || d > RQ_MAX_DIMS || a.n_elems / d < 16) {
            cli_failf("bench", RQ_OK, "npy:%s: expected shape (n, d) or (heads, n, d) with n >= 16 and %d <= d <= %d",
                      ds->path, RQ_MIN_DIMS, RQ_MAX_DIMS);
            rq_npy_free(&a);
            return -1;
        }
        *pool = a.data, *n_pool = a.n_elems / d, *half_out = *n_pool / 2, *d_out = (int)d;
        return 0;
    }
    size_t cmax = 0;
    for (int k = 0; k < o->n_ctx; k++) cmax = o->ctx[k] > cmax ? o->ctx[k] : cmax;
    size_t half = o->n > cmax ? o->n : cmax;
    half = half > o->needle_keys ? half : o->needle_keys;
    size_t n = 2 * half + o->n_queries;
    *pool = malloc(n * (size_t)d_req * sizeof(float));
    if (!*pool) {
        cli_fail("bench", RQ_ERR_NOMEM, "data");
        return -1;
    }
    rq_status st = rq_data_generate(ds->kind, o->seed, *pool, n, d_req);
    if (st) {
        cli_fail("bench", st, "data");
        free(*pool);
        return -1;
    }
    *n_pool = n, *half_out = half, *d_out = d_req;
    return 0;
}

/* Arrays derived from the pool, shared by every type of one block. */
typedef struct {
    size_t n_pairs;
    float *x;                          /* pool rows [0, n_pairs), normalized            */
    float *y;                          /* 1 + N_RHO sets of partners: rows [P/2, ...),
                                          then y with <x, y> = ρ for each ρ             */
    const float *keys, *values;        /* keys rows [0, N), values rows [P/2, P/2 + N) */
    float *queries[MAX_LIST];          /* per context length                            */
    size_t ctx[MAX_LIST];
    int n_ctx;
    size_t needle_keys;
} derived;

static void derived_free(derived *dv) {
    free(dv->x);
    free(dv->y);
    for (int k = 0; k < dv->n_ctx; k++) free(dv->queries[k]);
}

static rq_status derive(const opts *o, const float *pool, size_t P, size_t half, int d, derived *dv) {
    memset(dv, 0, sizeof *dv);
    size_t ud = (size_t)d;
    dv->n_pairs = o->n < half ? o->n : half;
    dv->keys = pool;
    dv->values = pool + half * ud;
    dv->needle_keys = o->needle_keys < 2 * half ? o->needle_keys : 2 * half;
    rq_status st = RQ_OK;
    size_t set = dv->n_pairs * ud;
    dv->x = malloc(set * sizeof(float));
    dv->y = malloc((1 + N_RHO) * set * sizeof(float));
    if (!dv->x || !dv->y) return RQ_ERR_NOMEM;
    memcpy(dv->y, pool + half * ud, set * sizeof(float));
    /* every call writes the same x (the normalized pool rows) */
    for (int r = 0; r < N_RHO && !st; r++)
        st = rq_data_pairs(pool, 2 * half, d, RHOS[r], dv->n_pairs, dv->x, dv->y + (size_t)(1 + r) * set);
    /* query bases: the last n_queries pool rows (past 2·half in the synthetic sets) */
    size_t nq = o->n_queries < P ? o->n_queries : P;
    const float *base = pool + (P - nq) * ud;
    for (int k = 0; k < o->n_ctx && !st; k++) {
        size_t n = o->ctx[k] < half ? o->ctx[k] : half;
        if (k && n == dv->ctx[dv->n_ctx - 1]) continue; /* capped to the same size */
        dv->ctx[dv->n_ctx] = n;
        dv->queries[dv->n_ctx] = malloc(nq * ud * sizeof(float));
        if (!dv->queries[dv->n_ctx]) return RQ_ERR_NOMEM;
        int hot = (size_t)o->n_hot < n ? o->n_hot : (int)n;
        st = rq_data_queries(pool, n, base, nq, d, hot, o->logit_std, 0, o->seed + (uint64_t)k,
                             dv->queries[dv->n_ctx]);
        dv->n_ctx++;
    }
    return st;
}

/* The seed's RotorQuant (research/reference_impl.md §6.3): rotor blocks with
 * a codebook built for d_eff = max(8·⌈d/3⌉, 64) under its N(0, 1/d_eff) law,
 * next to the same rotation with the codebook for d. */
static int seed_rotorquant(const opts *o, const derived *dv, int d, block *k) {
    int d_eff = 8 * ((d + 2) / 3);
    d_eff = d_eff > 64 ? d_eff : 64;
    k->d_eff = 0;
    if (d < 3 || d_eff > RQ_MAX_DIMS) return 0; /* no rotor blocks / no such codebook */
    rq_rotation *rot = NULL;
    rq_status st = rq_rotation_init(&rot, RQ_ROT_ROTOR, d, o->seed);
    for (int b = 1; b <= 4 && !st; b++) {
        rq_codebook wrong, right;
        st = rq_codebook_init(&wrong, d_eff, b, RQ_LAW_GAUSS);
        if (!st) st = rq_codebook_init(&right, d, b, RQ_LAW_GAUSS);
        if (!st) st = rq_eval_codebook_mse(rot, &wrong, dv->x, dv->n_pairs, d, &k->seed_mse[b - 1]);
        if (!st) st = rq_eval_codebook_mse(rot, &right, dv->x, dv->n_pairs, d, &k->fixed_mse[b - 1]);
    }
    rq_rotation_free(rot);
    if (st) return cli_fail("bench", st, "seed RotorQuant codebook");
    k->d_eff = d_eff;
    return 0;
}

/* ---- one type on one block ------------------------------------------------ */
static rq_status run_type(const opts *o, const derived *dv, int d, const rq_type_info *t, int with_speed, row *r) {
    rq_quant_config ck = rq_quant_config_default(), cv = ck;
    ck.seed = o->seed, cv.seed = o->seed + 1;
    rq_quantizer *q = NULL, *qv = NULL;
    rq_status st = rq_quantizer_init(&q, t->name, d, &ck);
    if (!st) st = rq_quantizer_init(&qv, t->name, d, &cv);
    if (st) goto done;
    r->t = t;
    r->d = d;
    r->bytes = rq_quantizer_bytes_per_vector(q);
    r->bpv = rq_quantizer_bits_per_value(q);
    r->params = rq_quantizer_n_params(q);
    const rq_codebook *cb = rq_quantizer_codebook(q);
    if (t->family == RQ_FAMILY_MSE || t->family == RQ_FAMILY_PROD) {
        r->bound = pow(4.0, -(double)t->n_bits);
        /* MSE: the codebook's distortion × d. PROD (Gaussian QJL, m = d rows):
         * E‖r‖² (π d/(2m) − 1/m) on top of nothing — the decoded x̂ = x̂_mse +
         * QJL(r) has error r − QJL(r), E‖·‖² = ‖r‖²(π/2 − 1/d). */
        double dmse = cb ? cb->distortion * d : 1.0;
        r->theory = t->family == RQ_FAMILY_MSE ? dmse : dmse * (acos(-1.0) / 2 - 1.0 / d);
        r->has_theory = 1;
    } else if (t->family == RQ_FAMILY_TCQ) {
        r->bound = pow(4.0, -(double)t->n_bits); /* no closed-form distortion */
    } else {
        r->bound = pow(4.0, -r->bpv);
    }
    rq_eval_ip_result ip[1 + N_RHO];
    st = rq_eval_ip(q, dv->x, dv->y, dv->n_pairs, 1 + N_RHO, ip);
    if (!st) {
        r->mse = ip[0].mse;
        r->ip = ip[0];
        for (int k = 0; k < N_RHO; k++) r->rho[k] = ip[1 + k];
    }
    for (int k = 0; k < dv->n_ctx && !st; k++)
        st = rq_eval_attention(q, qv, dv->keys, dv->values, dv->ctx[k], dv->queries[k], o->n_queries, NULL, 0,
                               &r->att[k]);
    if (!st) st = rq_eval_needle(q, dv->keys, dv->needle_keys, o->snr, o->trials, o->seed, &r->needle);
    if (!st && with_speed && o->reps > 0) {
        size_t n = o->speed_n < dv->n_pairs ? o->speed_n : dv->n_pairs;
        st = rq_eval_speed(q, dv->x, n, o->reps, &r->speed);
        r->has_speed = !st;
    }
done:
    rq_quantizer_free(q);
    rq_quantizer_free(qv);
    return st;
}

/* ---- printing -------------------------------------------------------------- */
static void jnum(const char *key, double v, int last) {
    if (isfinite(v)) printf("\"%s\": %.6g%s", key, v, last ? "" : ", ");
    else printf("\"%s\": null%s", key, last ? "" : ", ");
}

static const char *rate_str(double v, char *buf) {
    if (v >= 1e6) snprintf(buf, 16, "%.2fM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, 16, "%.1fk", v / 1e3);
    else snprintf(buf, 16, "%.0f", v);
    return buf;
}

static void print_json(const opts *o, const row *rows, size_t n_rows, const block *blocks, int n_blocks,
                       const int *dset_d) {
    printf("{\"tool\": \"rotorquant %s\", \"simd\": \"%s\", \"seed\": %llu,\n", rq_version_str(), rq_simd_name(),
           o->seed);
    printf(" \"settings\": {\"n\": %zu, \"queries\": %zu, \"hot\": %d, ", o->n, o->n_queries, o->n_hot);
    jnum("logit_std", o->logit_std, 0);
    jnum("snr", o->snr, 0);
    printf("\"trials\": %zu, \"needle_keys\": %zu, \"reps\": %d, \"speed_n\": %zu, \"rhos\": [0.2, 0.5, 0.8]},\n",
           o->trials, o->needle_keys, o->reps, o->speed_n);
    printf(" \"data\": [");
    for (int i = 0; i < o->n_data; i++)
        printf("%s{\"name\": \"%s\"%s%s%s}", i ? ", " : "", o->data[i].name, o->data[i].path ? ", \"path\": \"" : "",
               o->data[i].path ? o->data[i].path : "", o->data[i].path ? "\"" : "");
    printf("],\n \"blocks\": [\n");
    for (int b = 0; b < n_blocks; b++) {
        const block *k = &blocks[b];
        printf("  {\"data\": \"%s\", \"d\": %d, \"n_pool\": %zu, \"n_pairs\": %zu, \"needle_keys\": %zu, ",
               o->data[k->data].name, k->d, k->n_pool, k->n_pairs, k->needle_keys);
        jnum("needle_rate_exact", k->needle_exact, 0);
        printf("\"ctx\": [");
        for (int c = 0; c < k->n_ctx; c++) printf("%s%zu", c ? ", " : "", k->ctx[c]);
        printf("]");
        if (k->d_eff) {
            printf(",\n   \"seed_rotorquant\": {\"d_eff\": %d, \"mse_codebook_d_eff\": [", k->d_eff);
            for (int q = 0; q < 4; q++) printf("%s%.6g", q ? ", " : "", k->seed_mse[q]);
            printf("], \"mse_codebook_d\": [");
            for (int q = 0; q < 4; q++) printf("%s%.6g", q ? ", " : "", k->fixed_mse[q]);
            printf("]}");
        }
        printf("}%s\n", b + 1 < n_blocks ? "," : "");
    }
    printf(" ],\n \"results\": [\n");
    (void)dset_d;
    for (size_t i = 0; i < n_rows; i++) {
        const row *r = &rows[i];
        const block *k = NULL;
        for (int b = 0; b < n_blocks; b++)
            if (blocks[b].data == r->data && blocks[b].d == r->d) k = &blocks[b];
        char fam[32];
        family_name(r->t, fam, sizeof fam);
        printf("  {\"data\": \"%s\", \"d\": %d, \"type\": \"%s\", \"family\": \"%s\", \"qjl\": %s, \"bits\": %d, ",
               o->data[r->data].name, r->d, r->t->name, fam, r->t->family == RQ_FAMILY_PROD ? "true" : "false",
               r->t->n_bits);
        jnum("bits_per_value", r->bpv, 0);
        printf("\"bytes_per_vector\": %zu, ", r->bytes);
        jnum("compression_vs_f16", 16.0 / r->bpv, 0);
        printf("\"n_params\": %zu, ", r->params);
        jnum("mse", r->mse, 0);
        jnum("mse_bound", r->bound, 0);
        jnum("mse_theory", r->has_theory ? r->theory : NAN, 0);
        jnum("ip_corr", r->ip.corr, 0);
        jnum("ip_rmse", r->ip.rmse, 0);
        printf("\n   \"ip_pairs\": [");
        for (int q = 0; q < N_RHO; q++) {
            printf("%s{", q ? ", " : "");
            jnum("rho", RHOS[q], 0);
            jnum("bias", r->rho[q].bias, 0);
            jnum("ratio", r->rho[q].ratio, 0);
            jnum("err_std", r->rho[q].err_std, 1);
            printf("}");
        }
        printf("],\n   \"attention\": [");
        for (int c = 0; k && c < k->n_ctx; c++) {
            const rq_eval_attn_result *a = &r->att[c];
            printf("%s{\"n_keys\": %zu, ", c ? ", " : "", k->ctx[c]);
            jnum("score_cosine", a->score_cosine, 0);
            jnum("softmax_kl", a->softmax_kl, 0);
            jnum("output_cosine", a->output_cosine, 0);
            jnum("top1", a->top1, 0);
            jnum("top5", a->top5, 0);
            jnum("ip_corr", a->ip_corr, 1);
            printf("}");
        }
        printf("],\n   ");
        jnum("needle_rate", r->needle.rate, 0);
        jnum("needle_rate_exact", r->needle.rate_exact, !r->has_speed);
        if (r->has_speed) {
            jnum("encode_vps", r->speed.encode_vps, 0);
            jnum("decode_vps", r->speed.decode_vps, 1);
        }
        printf("}%s\n", i + 1 < n_rows ? "," : "");
    }
    printf(" ]}\n");
}

static void print_header(const opts *o) {
    printf("# rotorquant bench\n\n");
    printf("rotorquant %s, SIMD level %s, seed %llu (keys quantized with seed %llu, values with %llu).\n\n",
           rq_version_str(), rq_simd_name(), o->seed, o->seed, o->seed + 1);
    printf("How each column is measured (src/eval.c; every estimate uses the decoded vector, which for `p`\n"
           "types is the unbiased QJL estimator):\n\n");
    printf("- Data: `isotropic` = uniform on the unit sphere; `outlier` = Gaussian with 4 channels at 10-30x\n"
           "  the std dev, rows normalized; `npy:PATH` = the rows of a .npy file. Each (data, d) block draws\n"
           "  one pool of vectors: rows [0, H) are keys / x, rows [H, 2H) values / partners, then query bases.\n");
    printf("- MSE = mean ||x - x^||^2 / ||x||^2 over %zu vectors. 4^-b = Shannon lower bound for b bits per\n"
           "  value (baselines: their bits/value). theory = the Lloyd-Max codebook's distortion x d; for `p`\n"
           "  types (decoded vector) D(b-1) x d x (pi/2 - 1/d), the QJL sketch's variance.\n",
           o->n);
    printf("- IP corr = Pearson of <y, x^> against <y, x> over %zu independent pairs (y: another data vector).\n"
           "  bias rho = mean(<y, x^> - rho) over %zu unit pairs with <x, y> = rho exactly\n"
           "  (y = rho x + sqrt(1 - rho^2) z_perp): MSE codes shrink (bias ~ -rho x MSE), QJL is unbiased.\n",
           o->n, o->n);
    printf("- Attention over N keys, %zu queries per N: query = a data vector + %d random \"hot\" keys (all\n"
           "  unit-normalized), scaled so the exact logits <q, k>/sqrt(d) have standard deviation %g over the\n"
           "  keys; softmax is therefore peaked, not flat. Values: the value rows, quantized with the same type.\n"
           "  KL = KL(p || p^) in nats; score cos = cosine of the logit vectors; out cos = cosine of the\n"
           "  attention outputs; top1 = same argmax; top5 = exact argmax within the estimated top 5.\n",
           o->n_queries, o->n_hot, o->logit_std);
    printf("- Needle: %zu trials over %zu keys; query = needle key + Gaussian noise at SNR %g\n"
           "  (||k||^2 / E||noise||^2); rate = estimated argmax is the needle (exact-score rate per block).\n",
           o->trials, o->needle_keys, o->snr);
    printf("- Speed: encode / decode vectors per second, one thread, median of %d runs over %zu vectors.\n\n",
           o->reps, o->speed_n);
}

static void print_markdown(const opts *o, const row *rows, size_t n_rows, const block *blocks, int n_blocks) {
    print_header(o);
    /* storage, parameters and speed: one table per d (from the first data set) */
    for (int b = 0; b < n_blocks; b++) {
        if (blocks[b].data != blocks[0].data) continue;
        int d = blocks[b].d;
        printf("## Storage, parameters, speed — d = %d\n\n", d);
        printf("| type | bits/value | bytes/vector | x vs f16 | params | encode vec/s | decode vec/s |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|\n");
        for (size_t i = 0; i < n_rows; i++) {
            const row *r = &rows[i];
            if (r->data != blocks[b].data || r->d != d) continue;
            char e[16], dd[16];
            printf("| %s | %.3f | %zu | %.2f | %zu | %s | %s |\n", r->t->name, r->bpv, r->bytes, 16.0 / r->bpv,
                   r->params, r->has_speed ? rate_str(r->speed.encode_vps, e) : "-",
                   r->has_speed ? rate_str(r->speed.decode_vps, dd) : "-");
        }
        printf("\n");
    }
    for (int b = 0; b < n_blocks; b++) {
        const block *k = &blocks[b];
        const data_spec *ds = &o->data[k->data];
        printf("## Quality — %s%s%s, d = %d\n\n", ds->name, ds->path ? " " : "", ds->path ? ds->path : "", k->d);
        printf("%zu vectors, %zu pairs; attention N =", k->n_pool, k->n_pairs);
        for (int c = 0; c < k->n_ctx; c++) printf(" %zu", k->ctx[c]);
        printf("; needle over %zu keys, exact-score rate %.3f.\n", k->needle_keys, k->needle_exact);
        if (k->d_eff)
            printf("The seed's RotorQuant codebook (N(0, 1/d_eff), d_eff = %d) with rotor blocks: MSE %.4g / %.4g / "
                   "%.4g / %.4g at 1-4 bits; the same rotation with the codebook for d = %d: %.4g / %.4g / %.4g / %.4g.\n",
                   k->d_eff, k->seed_mse[0], k->seed_mse[1], k->seed_mse[2], k->seed_mse[3], k->d, k->fixed_mse[0],
                   k->fixed_mse[1], k->fixed_mse[2], k->fixed_mse[3]);
        printf("\n");
        int c0 = 0, c1 = k->n_ctx - 1;
        printf("| type | MSE | 4^-b | theory | IP corr | bias 0.2 | bias 0.5 | bias 0.8 | KL N=%zu | KL N=%zu |"
               " score cos | out cos | top1 | top5 | needle |\n",
               k->ctx[c0], k->ctx[c1]);
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (size_t i = 0; i < n_rows; i++) {
            const row *r = &rows[i];
            if (r->data != k->data || r->d != k->d) continue;
            char th[24];
            if (r->has_theory) snprintf(th, sizeof th, "%.4g", r->theory);
            else snprintf(th, sizeof th, "-");
            const rq_eval_attn_result *a0 = &r->att[c0], *a1 = &r->att[c1];
            printf("| %s | %.4g | %.3g | %s | %.4f | %+.4f | %+.4f | %+.4f | %.3g | %.3g | %.4f | %.4f | %.2f | %.2f |"
                   " %.3f |\n",
                   r->t->name, r->mse, r->bound, th, r->ip.corr, r->rho[0].bias, r->rho[1].bias, r->rho[2].bias,
                   a0->softmax_kl, a1->softmax_kl, a1->score_cosine, a1->output_cosine, a1->top1, a1->top5,
                   r->needle.rate);
        }
        printf("\nscore cos, out cos, top1, top5 at N = %zu.\n\n", k->ctx[c1]);
    }
}

/* ---- --dump: the data the peer benchmarks read ---------------------------- */
static int dump(const opts *o) {
    for (int i = 0; i < o->n_data; i++) {
        for (int j = 0; j < o->n_dims; j++) {
            float *pool = NULL;
            size_t P, half;
            int d;
            if (load_pool(o, &o->data[i], o->dims[j], &pool, &P, &half, &d)) return 1;
            derived dv;
            rq_status st = derive(o, pool, P, half, d, &dv);
            size_t nq = o->n_queries < P ? o->n_queries : P, ud = (size_t)d;
            struct {
                const char *what;
                const float *p;
                size_t n;
            } files[] = {
                {"x", dv.x, dv.n_pairs},
                {"y", dv.y, dv.n_pairs},
                {"y_rho0.2", dv.y + 1 * dv.n_pairs * ud, dv.n_pairs},
                {"y_rho0.5", dv.y + 2 * dv.n_pairs * ud, dv.n_pairs},
                {"y_rho0.8", dv.y + 3 * dv.n_pairs * ud, dv.n_pairs},
                {"keys", dv.keys, dv.ctx[dv.n_ctx - 1]},
                {"values", dv.values, dv.ctx[dv.n_ctx - 1]},
                {"queries", dv.queries[dv.n_ctx - 1], nq},
            };
            for (size_t f = 0; !st && f < sizeof files / sizeof files[0]; f++) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s_d%d_%s.npy", o->dump, o->data[i].name, d, files[f].what);
                size_t shape[2] = {files[f].n, ud};
                st = rq_npy_write(path, files[f].p, 2, shape);
                if (st) cli_failf("bench", st, "--dump: writing %s", path);
                else if (!o->json) printf("wrote %s (%zu x %zu)\n", path, shape[0], shape[1]);
            }
            derived_free(&dv);
            free(pool);
            if (st) return 1;
            if (o->data[i].path) break; /* d comes from the file */
        }
    }
    return 0;
}

static int bench_run(const opts *o) {
    size_t cap = (size_t)o->n_data * (size_t)o->n_dims * (size_t)rq_type_count();
    row *rows = calloc(cap ? cap : 1, sizeof(row));
    block *blocks = calloc((size_t)o->n_data * (size_t)o->n_dims, sizeof(block));
    if (!rows || !blocks) {
        free(rows), free(blocks);
        return cli_fail("bench", RQ_ERR_NOMEM, "results");
    }
    size_t n_rows = 0;
    int n_blocks = 0, rc = 0;
    for (int i = 0; i < o->n_data && !rc; i++) {
        for (int j = 0; j < o->n_dims && !rc; j++) {
            float *pool = NULL;
            size_t P, half;
            int d;
            if (load_pool(o, &o->data[i], o->dims[j], &pool, &P, &half, &d)) {
                rc = 1;
                break;
            }
            derived dv;
            rq_status st = derive(o, pool, P, half, d, &dv);
            if (st) rc = cli_fail("bench", st, "data");
            block *k = &blocks[n_blocks];
            k->data = i, k->d = d, k->n_pool = P, k->n_pairs = dv.n_pairs, k->n_ctx = dv.n_ctx;
            k->needle_keys = dv.needle_keys;
            memcpy(k->ctx, dv.ctx, sizeof k->ctx);
            if (!rc && seed_rotorquant(o, &dv, d, k)) rc = 1;
            int any = 0;
            for (int t = 0; t < rq_type_count() && !rc; t++) {
                const rq_type_info *ti = rq_type_at(t);
                if (!type_selected(o, ti) || !rq_type_bytes_per_vector(ti, d)) continue; /* d unsupported */
                row *r = &rows[n_rows];
                r->data = i;
                st = run_type(o, &dv, d, ti, i == 0, r);
                if (st) {
                    rc = cli_failf("bench", st, "%s, d = %d, %s", o->data[i].name, d, ti->name);
                    break;
                }
                k->needle_exact = r->needle.rate_exact;
                n_rows++, any = 1;
            }
            if (any) n_blocks++;
            derived_free(&dv);
            free(pool);
            if (o->data[i].path) break; /* d comes from the file */
        }
    }
    if (!rc && !n_rows) {
        cli_fail("bench", RQ_OK, "no selected type supports the selected head dimensions");
        rc = 1;
    }
    if (!rc) {
        if (o->json) print_json(o, rows, n_rows, blocks, n_blocks, NULL);
        else print_markdown(o, rows, n_rows, blocks, n_blocks);
    }
    free(rows);
    free(blocks);
    return rc;
}

/* ---- rotorquant types ---------------------------------------------------- */
static int types_run(int dims) {
    printf("| type | family | rotation | bytes/vector (d=%d) | bits/value | x vs f16 |\n", dims);
    printf("|---|---|---|---:|---:|---:|\n");
    static const char *fam[] = {"f32", "f16", "q8_0", "q4_0", "mse", "prod (QJL)", "tcq (trellis)"};
    for (int i = 0; i < rq_type_count(); i++) {
        const rq_type_info *t = rq_type_at(i);
        size_t b = rq_type_bytes_per_vector(t, dims);
        if (!b) {
            printf("| %s | %s | %s | unsupported | | |\n", t->name, fam[t->family], rq_rot_kind_name(t->rotation));
            continue;
        }
        printf("| %s | %s | %s | %zu | %.3f | %.2f |\n", t->name, fam[t->family], rq_rot_kind_name(t->rotation), b,
               8.0 * (double)b / dims, 2.0 * dims / (double)b);
    }
    return 0;
}

int cmd_types(int argc, char **argv) {
    int dims = 128;
    for (int i = 2; i < argc; i++) {
        double x;
        if (!strcmp(argv[i], "--dims") && i + 1 < argc) {
            if (parse_num("--dims", argv[++i], RQ_MIN_DIMS, RQ_MAX_DIMS, &x)) return 2;
            dims = (int)x;
        } else {
            return cli_usage("types", "unknown or incomplete option '%s'", argv[i]);
        }
    }
    return types_run(dims);
}

int cmd_bench(int argc, char **argv) {
    opts o;
    if (parse(argc, argv, &o)) return 2;
    return o.dump ? dump(&o) : bench_run(&o);
}
