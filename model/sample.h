/* Next-token choice from logits (model/sample.c): greedy and temperature
 * sampling, for generation and self-generated calibration text. */
#ifndef RQ_MODEL_SAMPLE_H
#define RQ_MODEL_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "rotorquant.h"

/* Index of the largest of x[n] (the first on ties); n ≥ 1. */
int32_t rqm_argmax(const float *x, size_t n);

/* A draw from softmax(logits / temp) with rng; temp ≤ 0: rqm_argmax. n ≥ 1. */
int32_t rqm_sample(const float *logits, size_t n, double temp, rq_rng *rng);

#endif
