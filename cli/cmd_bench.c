/*
 * cmd_bench.c — `rotorquant bench` and `rotorquant types`: every registered
 * type on the library's synthetic data sets, with exact sizes.
 */
#include "cli.h"

typedef struct {
    int dims;
    size_t n;
    unsigned long long seed;
    int json;
} opts;

static int parse(int argc, char **argv, opts *o) {
    o->dims = 128, o->n = 4096, o->seed = 42, o->json = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--dims") && v) {
            o->dims = (int)strtol(v, &end, 10), i++;
        } else if (!strcmp(a, "--n") && v) {
            o->n = (size_t)strtoull(v, &end, 10), i++;
        } else if (!strcmp(a, "--seed") && v) {
            o->seed = strtoull(v, &end, 10), i++;
        } else {
            fprintf(stderr, "rotorquant: unknown or incomplete option '%s'\n", a);
            return -1;
        }
        if (end && *end) {
            fprintf(stderr, "rotorquant: option %s expects a number, got '%s'\n", a, v);
            return -1;
        }
    }
    if (o->dims < RQ_MIN_DIMS || o->dims > RQ_MAX_DIMS || o->n < 1 || o->n > 10000000) {
        fprintf(stderr, "rotorquant: --dims must be in [%d, %d] and --n in [1, 1e7]\n", RQ_MIN_DIMS, RQ_MAX_DIMS);
        return -1;
    }
    return 0;
}

static int types_run(const opts *o) {
    printf("| type | family | rotation | bytes/vector (d=%d) | bits/value | x vs f16 |\n", o->dims);
    printf("|---|---|---|---:|---:|---:|\n");
    static const char *fam[] = {"f32", "f16", "q8_0", "q4_0", "mse", "prod (QJL)"};
    for (int i = 0; i < rq_type_count(); i++) {
        const rq_type_info *t = rq_type_at(i);
        size_t b = rq_type_bytes_per_vector(t, o->dims);
        if (!b) {
            printf("| %s | %s | %s | unsupported | | |\n", t->name, fam[t->family], rq_rot_kind_name(t->rotation));
            continue;
        }
        printf("| %s | %s | %s | %zu | %.3f | %.2f |\n", t->name, fam[t->family], rq_rot_kind_name(t->rotation),
               b, 8.0 * (double)b / o->dims, 2.0 * o->dims / (double)b);
    }
    return 0;
}

static int bench_run(const opts *o) {
    size_t n = o->n, d = (size_t)o->dims;
    float *x[2], *xh = malloc(sizeof(float) * n * d);
    unsigned char *blk = malloc(n * 4 * d + 64);
    x[0] = malloc(sizeof(float) * n * d);
    x[1] = malloc(sizeof(float) * n * d);
    if (!x[0] || !x[1] || !xh || !blk) return cli_fail("bench", RQ_ERR_NOMEM);
    rq_data_generate(RQ_DATA_ISOTROPIC, o->seed, x[0], n, o->dims);
    rq_data_generate(RQ_DATA_OUTLIER, o->seed, x[1], n, o->dims);
    if (o->json) printf("{\"d\": %d, \"n\": %zu, \"seed\": %llu, \"types\": [\n", o->dims, n, o->seed);
    else {
        printf("relative MSE ||x - x^||^2/||x||^2 over %zu vectors, d = %d, seed %llu\n\n", n, o->dims, o->seed);
        printf("| type | bits/value | bytes/vector | x vs f16 | params | MSE isotropic | MSE outlier |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|\n");
    }
    int first = 1, rc = 0;
    for (int i = 0; i < rq_type_count(); i++) {
        const rq_type_info *t = rq_type_at(i);
        rq_quantizer *q;
        rq_quant_config cfg = rq_quant_config_default();
        cfg.seed = o->seed;
        if (rq_quantizer_init(&q, t->name, o->dims, &cfg) != RQ_OK) continue; /* d unsupported */
        double mse[2];
        for (int s = 0; s < 2; s++) {
            rq_status st = rq_quantizer_encode(q, x[s], blk, n);
            if (!st) st = rq_quantizer_decode(q, blk, xh, n);
            if (st) {
                rc = cli_fail(t->name, st);
                break;
            }
            mse[s] = rq_metric_rel_mse(x[s], xh, n, o->dims);
        }
        size_t b = rq_quantizer_bytes_per_vector(q);
        if (o->json)
            printf("%s  {\"type\": \"%s\", \"bits_per_value\": %.4f, \"bytes_per_vector\": %zu, "
                   "\"compression_vs_f16\": %.4f, \"n_params\": %zu, \"mse_isotropic\": %.6g, \"mse_outlier\": %.6g}",
                   first ? "" : ",\n", t->name, rq_quantizer_bits_per_value(q), b, 2.0 * d / (double)b,
                   rq_quantizer_n_params(q), mse[0], mse[1]);
        else
            printf("| %s | %.3f | %zu | %.2f | %zu | %.5f | %.5f |\n", t->name, rq_quantizer_bits_per_value(q), b,
                   2.0 * d / (double)b, rq_quantizer_n_params(q), mse[0], mse[1]);
        first = 0;
        rq_quantizer_free(q);
    }
    if (o->json) printf("\n]}\n");
    free(x[0]);
    free(x[1]);
    free(xh);
    free(blk);
    return rc;
}


int cmd_types(int argc, char **argv) {
    opts o;
    if (parse(argc, argv, &o)) return 2;
    return types_run(&o);
}

int cmd_bench(int argc, char **argv) {
    opts o;
    if (parse(argc, argv, &o)) return 2;
    return bench_run(&o);
}
