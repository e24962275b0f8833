/*
 * sample.c — greedy and temperature sampling (model/sample.h). One uniform
 * draw per token, inverted through the cumulative softmax weights (max
 * subtracted first, so exp never overflows).
 */
#include "sample.h"

#include <math.h>

int32_t rqm_argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

int32_t rqm_sample(const float *logits, size_t n, double temp, rq_rng *rng) {
    if (temp <= 0) return rqm_argmax(logits, n);
    const float mx = logits[rqm_argmax(logits, n)];
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += exp((logits[i] - mx) / temp);
    double r = rq_rng_uniform(rng) * sum;
    for (size_t i = 0; i < n; i++) {
        r -= exp((logits[i] - mx) / temp);
        if (r <= 0) return (int32_t)i;
    }
    return (int32_t)(n - 1);
}
