/*
 * quantize.c — the README's "library in five lines": encode keys to turbo3
 * blocks and score a query against them without decoding, then check the
 * scores against exact inner products.
 *
 *   cc quantize.c $(pkg-config --cflags --libs rotorquant) -o quantize
 */
#include <rotorquant.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { D = 128, N = 1000 };

int main(void) {
    /* keys: a smooth deterministic pattern; one query */
    static float keys[N][D], query[D], scores[N];
    static unsigned char blocks[N * 50];
    size_t n = N;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) keys[i][j] = (float)sin(0.37 * i + 0.11 * j * j);
    for (int j = 0; j < D; j++) query[j] = (float)cos(0.05 * j);

    rq_quantizer *q;
    rq_status st = rq_quantizer_init(&q, "turbo3", 128, NULL);           /* seed 42, exact-law codebook */
    if (st == RQ_OK) st = rq_quantizer_encode(q, &keys[0][0], blocks, n); /* 50 bytes per key            */
    if (st == RQ_OK) st = rq_quantizer_dot(q, query, blocks, n, scores);  /* <query, k^> without decoding */
    rq_quantizer_free(q);

    if (st != RQ_OK) {
        fprintf(stderr, "quantize: %s\n", rq_status_str(st));
        return 1;
    }
    /* score error relative to ‖query‖·‖key‖: for a rotation + 3-bit
     * Lloyd-Max code its RMS is about sqrt(0.034 / d) ≈ 0.016 */
    double err = 0, ref = 0, qq = 0;
    for (int j = 0; j < D; j++) qq += (double)query[j] * query[j];
    for (int i = 0; i < N; i++) {
        double exact = 0, kk = 0;
        for (int j = 0; j < D; j++) exact += (double)query[j] * keys[i][j], kk += (double)keys[i][j] * keys[i][j];
        err += (scores[i] - exact) * (scores[i] - exact);
        ref += qq * kk;
    }
    double rel = sqrt(err / ref);
    printf("turbo3, d = %d: %d keys in %zu bytes (f16: %d); score error %.4f of |q||k| (RMS)\n", D, N,
           sizeof blocks, N * D * 2, rel);
    return rel < 0.03 ? 0 : 1;
}
