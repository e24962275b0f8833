/*
 * detmath.c — exp and log from IEEE-754 double arithmetic alone.
 *
 * Why: libm's exp/log are not correctly rounded and glibc picks different
 * code paths by CPU (FMA or not), so the same seed could give different
 * Gaussians, codebooks — and hence different codes — on different machines.
 * These versions use only + − × ÷ and exact bit manipulation; with FP
 * contraction disabled they are bit-identical everywhere. Accuracy is a few
 * ulp, far below what any codebook or Gaussian draw needs.
 */
#include "internal.h"

#include <math.h>

#define LN2_HI 6.93147180369123816490e-01 /* ln 2 upper bits, exact in k·LN2_HI */
#define LN2_LO 1.90821492927058770002e-10 /* ln 2 − LN2_HI                    */
#define INV_LN2 1.44269504088896338700e+00

static double make_pow2(int k) { /* 2^k for −1022 ≤ k ≤ 1023, exact */
    uint64_t bits = (uint64_t)(k + 1023) << 52;
    double r;
    memcpy(&r, &bits, 8);
    return r;
}

double rq__exp(double x) {
    if (x != x) return x;
    if (x > 709.78) return HUGE_VAL;
    if (x < -745.2) return 0.0;
    /* x = k ln2 + r, |r| ≤ ln2/2; e^r by Taylor series to degree 18
     * (0.35^19/19! < 1e-25). */
    double kd = floor(x * INV_LN2 + 0.5);
    int k = (int)kd;
    double r = (x - kd * LN2_HI) - kd * LN2_LO;
    double term = 1.0, sum = 1.0;
    for (int n = 1; n <= 18; n++) {
        term = term * r / (double)n;
        sum += term;
    }
    /* 2^k in two exact steps so subnormal results are reached too. */
    if (k < -1000) return sum * make_pow2(k + 1000) * make_pow2(-1000);
    if (k > 1000) return sum * make_pow2(k - 1000) * make_pow2(1000);
    return sum * make_pow2(k);
}

double rq__log(double x) {
    if (x != x || x < 0.0) return NAN;
    if (x == 0.0) return -HUGE_VAL;
    if (x == HUGE_VAL) return x;
    int e = 0;
    if (x < 2.2250738585072014e-308) { /* subnormal: scale into normal range */
        x *= 18014398509481984.0;       /* 2^54 */
        e = -54;
    }
    uint64_t bits;
    memcpy(&bits, &x, 8);
    e += (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m ∈ [1,2) */
    double m;
    memcpy(&m, &bits, 8);
    if (m > 1.4142135623730951) { /* m ∈ [√½, √2) */
        m *= 0.5;
        e += 1;
    }
    /* log m = 2 atanh(f), f = (m−1)/(m+1), |f| ≤ 0.1716; f² ≤ 0.0295, so
     * 14 odd terms leave < 1e-22. */
    double f = (m - 1.0) / (m + 1.0);
    double f2 = f * f, p = f, sum = 0.0;
    for (int n = 1; n <= 29; n += 2) {
        sum += p / (double)n;
        p *= f2;
    }
    return 2.0 * sum + (double)e * LN2_LO + (double)e * LN2_HI;
}
