/*
 * dispatch.c — the SIMD level, chosen once from cpuid and overridable with
 * RQ_SIMD=scalar|avx2|avx512 (a level the CPU lacks falls back to the best
 * one it has). Builds with RQ_NO_SIMD always report scalar.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static rq_simd_level g_level;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static rq_simd_level cpu_best(void) {
#if defined(__x86_64__) && !defined(RQ_NO_SIMD)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
        return RQ_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return RQ_SIMD_AVX2;
#endif
    return RQ_SIMD_SCALAR;
}

static void choose(void) {
    rq_simd_level best = cpu_best(), want = best;
    const char *env = getenv("RQ_SIMD");
    if (env && !strcmp(env, "scalar")) want = RQ_SIMD_SCALAR;
    else if (env && !strcmp(env, "avx2")) want = RQ_SIMD_AVX2;
    else if (env && !strcmp(env, "avx512")) want = RQ_SIMD_AVX512;
    g_level = want < best ? want : best;
}

rq_simd_level rq__simd_level(void) {
    pthread_once(&g_once, choose);
    return g_level;
}
