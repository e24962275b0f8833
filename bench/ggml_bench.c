/*
 * ggml_bench.c — rqm_matmul speed on the SmolLM2-135M shapes (model/ggml.c):
 * Q4_1 576→576, 576→192, 576→1536, 1536→576 and the tied Q8_0 embedding
 * 576→49152 (the logits), for 1 activation row (decode) and for batches
 * (prefill), at every SIMD level the CPU has and 1..--threads threads.
 *
 * Weights are random blocks with sane scales. For a decode row, the product
 * cycles through enough copies of the matrix to make ~96 MB (the model's
 * size), so weights stream from memory as in a real decode step rather than
 * from cache; the GB/s column is weight bytes read per second. Activation
 * rows are 64-byte aligned. A measurement lasts ≥ --min-time s; the line
 * gives the mean call and the fastest one ("best", the figure to compare on
 * a shared machine, where other processes stretch some calls).
 *
 *   build: make && cc -O2 -std=c11 -ffp-contract=off -Iinclude -Isrc \
 *            -D_POSIX_C_SOURCE=200809L bench/ggml_bench.c build/obj/model/ggml*.o \
 *            build/librotorquant.a -lm -lpthread -o build/ggml_bench
 *   run:   build/ggml_bench [--threads N] [--rows 1,64,256] [--min-time S]
 */
#include "../model/ggml.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MODEL_BYTES (96u << 20)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const char *what;
    rqm_ggml_type type;
    size_t n_in, n_out;
} shape;

static const shape SHAPES[] = {
    {"attn_q/o", RQM_GGML_Q4_1, 576, 576},   {"attn_k/v", RQM_GGML_Q4_1, 576, 192},
    {"ffn_gate/up", RQM_GGML_Q4_1, 576, 1536}, {"ffn_down", RQM_GGML_Q4_1, 1536, 576},
    {"logits", RQM_GGML_Q8_0, 576, 49152},
};

/* Random blocks whose f16 scale (and min) are 0.01 / −0.08: finite, normal. */
static uint8_t *random_weights(const shape *s, size_t n_copies, size_t *row_bytes) {
    size_t rb = rqm_ggml_row_bytes(s->type, s->n_in), bb = rqm_ggml_block_bytes(s->type);
    size_t bytes = rb * s->n_out * n_copies;
    uint8_t *p = malloc(bytes);
    if (!p) return NULL;
    rq_rng rng;
    rq_rng_seed(&rng, 1);
    for (size_t i = 0; i < bytes; i += 8) {
        uint64_t r = rq_rng_next(&rng);
        memcpy(p + i, &r, bytes - i < 8 ? bytes - i : 8);
    }
    uint16_t d = rqm_f32_to_f16(0.01f), m = rqm_f32_to_f16(-0.08f);
    for (size_t b = 0; b < bytes / bb; b++) {
        memcpy(p + b * bb, &d, 2);
        if (s->type == RQM_GGML_Q4_1) memcpy(p + b * bb + 2, &m, 2);
    }
    *row_bytes = rb;
    return p;
}

static void run(const shape *s, size_t n_rows, int n_threads, double min_time) {
    size_t rb, one = rqm_ggml_row_bytes(s->type, s->n_in) * s->n_out;
    size_t n_copies = n_rows == 1 ? (MODEL_BYTES + one - 1) / one : 1;
    uint8_t *w = random_weights(s, n_copies, &rb);
    float *x = aligned_alloc(64, (n_rows * s->n_in * sizeof(float) + 63) / 64 * 64);
    float *y = malloc(n_rows * s->n_out * sizeof(float));
    if (!w || !x || !y) {
        fprintf(stderr, "ggml_bench: out of memory\n");
        exit(1);
    }
    rq_rng rng;
    rq_rng_seed(&rng, 2);
    for (size_t i = 0; i < n_rows * s->n_in; i++) x[i] = (float)rq_rng_gauss(&rng);
    rqm_matrix m = {s->type, s->n_in, s->n_out, rb, w};
    size_t reps = 0, c = 0;
    double t0 = now(), t, best = 1e30;
    do {
        m.data = w + c * one;
        c = c + 1 == n_copies ? 0 : c + 1;
        double t1 = now();
        rqm_matmul(&m, x, n_rows, y, n_threads);
        double t2 = now();
        if (t2 - t1 < best) best = t2 - t1;
        reps++;
        t = t2 - t0;
    } while (t < min_time || reps < 3);
    double per = t / (double)reps, flops = 2.0 * (double)s->n_in * (double)s->n_out * (double)n_rows;
    printf("  %-11s %-4s %5zu x %-5zu rows %4zu  threads %d  %9.1f us  %6.1f GFLOP/s  %5.1f GB/s  best %9.1f us "
           "%6.1f GFLOP/s\n",
           s->what, rqm_ggml_type_name(s->type), s->n_in, s->n_out, n_rows, n_threads, per * 1e6, flops / per * 1e-9,
           (double)one / per * 1e-9, best * 1e6, flops / best * 1e-9);
    free(w), free(x), free(y);
}

int main(int argc, char **argv) {
    int max_threads = 2;
    double min_time = 0.3;
    size_t rows[8] = {1, 64, 256}, n_rows_opts = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            max_threads = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) {
            min_time = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--rows") && i + 1 < argc) {
            n_rows_opts = 0;
            for (char *tok = strtok(argv[++i], ","); tok && n_rows_opts < 8; tok = strtok(NULL, ","))
                rows[n_rows_opts++] = (size_t)strtoul(tok, NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [--threads N] [--rows 1,64,256] [--min-time S]\n", argv[0]);
            return 2;
        }
    }
    for (int level = (int)rq__simd_cpu_level(); level >= RQ_SIMD_SCALAR; level--) {
        rq__simd_force((rq_simd_level)level);
        printf("%s\n", rq_simd_name());
        for (size_t r = 0; r < n_rows_opts; r++)
            for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
                for (int t = 1; t <= max_threads; t++) {
                    /* the scalar reference is for checking, not speed: decode rows only */
                    if (level == RQ_SIMD_SCALAR && rows[r] > 1) continue;
                    run(&SHAPES[i], rows[r], t, min_time);
                }
    }
    rqm_matmul_shutdown();
    return 0;
}
