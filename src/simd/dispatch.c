/*
 * dispatch.c — the kernel layer's ISA-independent part: the process's SIMD
 * level, the table for it (xxHash-style: one table of function pointers,
 * chosen once), the reference table, and the composition every level
 * shares (which slot runs a rotation family, the block families' tail).
 *
 * Level: the best of scalar < avx2 < avx512 that both the CPU and the
 * operating system support (cpuid feature bits + the XCR0 state the OS
 * saves), optionally lowered by the environment variable
 * RQ_SIMD=scalar|avx2|avx512 (a level the CPU lacks falls back to the best
 * one it has; any other value is ignored, and rq_simd_status() reports it). It is computed on first use and
 * cached in an atomic: concurrent first calls compute the same value, so the
 * race is benign. rq__simd_force() (tests, benchmarks) overrides it.
 *
 *   avx2   = AVX2 + FMA + F16C, OS saves YMM state
 *   avx512 = avx2 + AVX-512 F/BW/VL/DQ, OS saves ZMM and opmask state
 *            (exactly the -m flags the Makefile gives the *_avx512.c files)
 *
 * Every level produces byte-identical blocks (docs/FORMAT.md); the level only
 * changes speed. This file is compiled in every build; with RQ_NO_SIMD
 * (make SIMD=scalar) no ISA kernel exists and the level is always scalar.
 */
#include "kernels.h"

#include <stdatomic.h>
#include <stdlib.h>

static const char *const LEVEL_NAMES[] = {"scalar", "avx2", "avx512"};

#if !defined(RQ_NO_SIMD) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static rq_simd_level detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return RQ_SIMD_SCALAR;
    const unsigned osxsave = 1u << 27, avx = 1u << 28, fma = 1u << 12, f16c = 1u << 29;
    if ((c & (osxsave | avx | fma | f16c)) != (osxsave | avx | fma | f16c)) return RQ_SIMD_SCALAR;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return RQ_SIMD_SCALAR; /* XMM + YMM state */
    if (__get_cpuid_max(0, NULL) < 7) return RQ_SIMD_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & (1u << 5))) return RQ_SIMD_SCALAR; /* AVX2 */
    const unsigned f = 1u << 16, dq = 1u << 17, bw = 1u << 30, vl = 1u << 31;
    if ((b & (f | dq | bw | vl)) != (f | dq | bw | vl)) return RQ_SIMD_AVX2;
    if ((xcr0 & 0xe0) != 0xe0) return RQ_SIMD_AVX2; /* opmask, ZMM_Hi256, Hi16_ZMM */
    return RQ_SIMD_AVX512;
}
#else
static rq_simd_level detect(void) { return RQ_SIMD_SCALAR; }
#endif

static atomic_int g_cpu = -1;   /* best level of this CPU and build */
static atomic_int g_level = -1; /* level in use                     */

/* The level RQ_SIMD names, or −1 (unset or empty: 0 in *unknown; any other
 * value: 1). */
static int env_level(int *unknown) {
    const char *env = getenv("RQ_SIMD");
    *unknown = 0;
    if (!env || !*env) return -1;
    for (int i = 0; i <= RQ_SIMD_AVX512; i++)
        if (!strcmp(env, LEVEL_NAMES[i])) return i;
    *unknown = 1;
    return -1;
}

rq_simd_level rq__simd_cpu_level(void) {
    int v = atomic_load_explicit(&g_cpu, memory_order_relaxed);
    if (v < 0) {
        v = (int)detect();
        atomic_store_explicit(&g_cpu, v, memory_order_relaxed);
    }
    return (rq_simd_level)v;
}

rq_simd_level rq__simd_level(void) {
    int v = atomic_load_explicit(&g_level, memory_order_relaxed);
    if (v < 0) {
        rq_simd_level cpu = rq__simd_cpu_level();
        int unknown, want = env_level(&unknown);
        v = (int)(want >= 0 && want < (int)cpu ? want : (int)cpu);
        /* first writer wins, so every caller sees one value even if a
         * concurrent rq__simd_force() ran in between */
        int expected = -1;
        if (!atomic_compare_exchange_strong(&g_level, &expected, v)) v = expected;
    }
    return (rq_simd_level)v;
}

rq_simd_level rq__simd_force(rq_simd_level level) {
    rq_simd_level cpu = rq__simd_cpu_level();
    if (level > cpu) level = cpu;
    if (level < RQ_SIMD_SCALAR) level = RQ_SIMD_SCALAR;
    atomic_store_explicit(&g_level, (int)level, memory_order_relaxed);
    return level;
}

const char *rq__simd_level_name(rq_simd_level level) {
    return (level >= RQ_SIMD_SCALAR && level <= RQ_SIMD_AVX512) ? LEVEL_NAMES[level] : "?";
}

const char *rq_simd_name(void) { return rq__simd_level_name(rq__simd_level()); }

rq_simd_level rq_simd_get(void) { return rq__simd_level(); }

rq_status rq_simd_status(void) {
    int unknown;
    env_level(&unknown);
    return unknown ? RQ_ERR_INVALID_ARG : RQ_OK;
}

/* ---- kernel tables ------------------------------------------------------ */
const rq_kernels rq__kernels_ref = {RQ_KERNELS_REF};

const rq_kernels *rq__kernels_for(rq_simd_level level) {
#ifndef RQ_NO_SIMD
    if (level >= RQ_SIMD_AVX512) return &rq__kernels_avx512;
    if (level >= RQ_SIMD_AVX2) return &rq__kernels_avx2;
#endif
    (void)level;
    return &rq__kernels_ref;
}

const rq_kernels *rq__kernels(void) { return rq__kernels_for(rq__simd_level()); }

/* ---- rotations: one composition for every level ---------------------------
 * By the family's form (rq_rot_ops): a dense matrix runs through the matvec
 * slot (Π x = Σ_j x_j · column j of Π = row j of Πᵀ); a block-diagonal
 * family through its regular-block slot and its tail; any other family
 * through its own slot. Missing slots fall back to the ops row's reference,
 * which computes the same floats. */
void rq__rotate_blocks(const rq_kernels *k, const rq_rotation *r, float *y, bool inverse) {
    const rq_rot_ops *ops = rq__rot_ops(r->kind);
    void (*regular)(const rq_rotation *, float *, bool) = k->rot_blocks[r->kind];
    if (!regular) {
        (inverse ? ops->inverse : ops->forward)(r, y, y);
        return;
    }
    if (inverse) ops->tail(r, y, true);
    regular(r, y, inverse);
    if (!inverse) ops->tail(r, y, false);
}

void rq__rotate(const rq_kernels *k, const rq_rotation *r, const float *x, float s, float *y) {
    const rq_rot_ops *ops = rq__rot_ops(r->kind);
    const int d = r->n_dims;
    if (ops->block) {
        k->scale(x, s, y, d);
        rq__rotate_blocks(k, r, y, false);
    } else if (ops->matrix) {
        float u[RQ_MAX_DIMS];
        k->scale(x, s, u, d);
        k->matvec_cols(r->mat_t, d, u, y);
    } else if (k->rot[r->kind]) {
        k->rot[r->kind](r, x, s, y, false);
    } else {
        float u[RQ_MAX_DIMS];
        k->scale(x, s, u, d);
        ops->forward(r, u, y);
    }
}

void rq__rotate_inv(const rq_kernels *k, const rq_rotation *r, const float *x, float *y) {
    const rq_rot_ops *ops = rq__rot_ops(r->kind);
    const int d = r->n_dims;
    if (ops->block) {
        if (y != x) memcpy(y, x, sizeof(float) * (size_t)d);
        rq__rotate_blocks(k, r, y, true);
    } else if (ops->matrix) {
        float u[RQ_MAX_DIMS];
        memcpy(u, x, sizeof(float) * (size_t)d);
        k->matvec_cols(r->mat, d, u, y);
    } else if (k->rot[r->kind]) {
        k->rot[r->kind](r, x, 1.0f, y, true);
    } else {
        ops->inverse(r, x, y);
    }
}
