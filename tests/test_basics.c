/*
 * test_basics.c — PRNG (golden values, moments), libm-free exp/log, fp16
 * conversion (exhaustive round trip, rounding vs the compiler's _Float16),
 * bit packing (layout and round trip), status strings, the shared thread
 * pool (every task exactly once, nesting, concurrent callers, restart).
 */
#include "test.h"
#include "internal.h"

static void test_rng_golden(void) {
    /* splitmix64 from state 0 gives 0xe220a8397b1dcdaf first (Vigna's
     * reference); our seeding stores the first four outputs. */
    rq_rng r;
    rq_rng_seed(&r, 0);
    CHECK(r.s[0] == 0xe220a8397b1dcdafull, "s0=%016llx", (unsigned long long)r.s[0]);
    /* Pinned stream hash: FNV-1a over 1000 outputs of seed 42. A change here
     * changes every format; bump RQ_FORMAT_VERSION if it is intended. */
    rq_rng_seed(&r, 42);
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 1000; i++) {
        h ^= rq_rng_next(&r);
        h *= 1099511628211ull;
    }
    TEST_NOTE("rng hash %016llx", (unsigned long long)h);
    CHECK(h == 0x6d530cb96f2e914aull, "rng stream changed");
    rq_rng a, b;
    rq_rng_seed(&a, 7);
    rq_rng_seed(&b, 7);
    for (int i = 0; i < 100; i++) CHECK(rq_rng_gauss(&a) == rq_rng_gauss(&b), "determinism");
    CHECK(rq_seed_derive(1, 2, 3) != rq_seed_derive(1, 2, 4), "derive index");
    CHECK(rq_seed_derive(1, 2, 3) != rq_seed_derive(1, 3, 3), "derive stream");
    CHECK(rq_seed_derive(1, 2, 3) != rq_seed_derive(2, 2, 3), "derive seed");
}

static void test_rng_moments(void) {
    rq_rng r;
    rq_rng_seed(&r, 1234);
    const int n = 400000;
    double su = 0, s1 = 0, s2 = 0, s4 = 0;
    double umin = 1, umax = 0;
    for (int i = 0; i < n; i++) {
        double u = rq_rng_uniform(&r);
        su += u;
        umin = u < umin ? u : umin;
        umax = u > umax ? u : umax;
        double g = rq_rng_gauss(&r);
        s1 += g;
        s2 += g * g;
        s4 += g * g * g * g;
    }
    su /= n, s1 /= n, s2 /= n, s4 /= n;
    TEST_NOTE("uniform mean %.5f  gauss mean %.5f var %.5f kurtosis %.4f", su, s1, s2, s4 / (s2 * s2));
    CHECK(umin >= 0 && umax < 1, "uniform range");
    CHECK_NEAR(su, 0.5, 5 * sqrt(1.0 / 12 / n));
    CHECK_NEAR(s1, 0.0, 5 / sqrt((double)n));
    CHECK_NEAR(s2, 1.0, 5 * sqrt(2.0 / n));
    CHECK_NEAR(s4 / (s2 * s2), 3.0, 5 * sqrt(96.0 / n));
}

static void test_detmath(void) {
    double worst_e = 0, worst_l = 0;
    for (double x = -700; x < 700; x += 0.37) {
        double rel = fabs(rq__exp(x) - exp(x)) / exp(x);
        worst_e = rel > worst_e ? rel : worst_e;
    }
    for (double x = 1e-300; x < 1e300; x *= 1.7) {
        double l = log(x), rel = fabs(rq__log(x) - l) / (fabs(l) > 1 ? fabs(l) : 1);
        worst_l = rel > worst_l ? rel : worst_l;
    }
    for (double x = 0.5; x < 2; x += 1e-4) {
        double rel = fabs(rq__log(x) - log(x));
        worst_l = rel > worst_l ? rel : worst_l;
    }
    TEST_NOTE("max rel error exp %.3g log %.3g", worst_e, worst_l);
    CHECK(worst_e < 1e-14, "exp");
    CHECK(worst_l < 1e-15, "log");
    CHECK(rq__exp(-800) == 0 && isinf(rq__exp(800)), "exp limits");
    CHECK(rq__exp(-740) > 0, "exp subnormal");
    CHECK(rq__log(1.0) == 0.0, "log(1)");
    CHECK(isinf(rq__log(0.0)) && isnan(rq__log(-1.0)), "log limits");
    CHECK(fabs(rq__log(4.9406564584124654e-324) - log(4.9406564584124654e-324)) < 1e-12, "log subnormal");
}

static void test_f16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = rq_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            bad += (rq_f32_to_f16(f) & 0x7c00u) != 0x7c00u;
            continue;
        }
        bad += rq_f32_to_f16(f) != h;
    }
    CHECK(bad == 0, "%d half values do not round trip", bad);
    CHECK(rq_f16_to_f32(0x3c00) == 1.0f && rq_f16_to_f32(0xc000) == -2.0f, "known values");
    CHECK(rq_f16_to_f32(0x7bff) == 65504.0f && rq_f16_to_f32(0x0001) == 0x1p-24f, "extremes");
    CHECK(rq_f32_to_f16(65519.0f) == 0x7bff && rq_f32_to_f16(65520.0f) == 0x7c00, "overflow edge");
    CHECK(rq_f32_to_f16(0x1p-25f) == 0 && rq_f32_to_f16(0x1.000002p-25f) == 1, "underflow edge");
    CHECK(rq_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "tie to even (down)");
    CHECK(rq_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "tie to even (up)");
#if defined(__FLT16_MAX__) && !defined(__clang__)
    rq_rng r;
    rq_rng_seed(&r, 5);
    int mism = 0;
    for (int i = 0; i < 1000000; i++) {
        uint32_t u = (uint32_t)rq_rng_next(&r);
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f)) continue;
        __extension__ _Float16 ref = (__extension__(_Float16)f);
        uint16_t rh;
        memcpy(&rh, &ref, 2);
        mism += rq_f32_to_f16(f) != rh;
    }
    CHECK(mism == 0, "%d mismatches against _Float16", mism);
#endif
}

static void test_pack(void) {
    uint8_t codes[3] = {1, 2, 3}, out[8], back[8];
    rq__pack_ref(codes, 3, 3, out);
    CHECK(out[0] == 0xD1 && out[1] == 0x00, "layout %02x %02x", out[0], out[1]);
    CHECK(rq__packed_bytes(128, 3) == 48 && rq__packed_bytes(65, 3) == 25 && rq__packed_bytes(7, 1) == 1, "sizes");
    rq_rng r;
    rq_rng_seed(&r, 9);
    /* 5 bits: code 1 straddles bytes 0–1, code 3 bytes 1–2 (bits 15..19) */
    uint8_t c5[4] = {1, 2, 3, 31};
    rq__pack_ref(c5, 4, 5, out);
    CHECK(out[0] == 0x41 && out[1] == 0x8C && out[2] == 0x0F && rq__packed_bytes(4, 5) == 3, "5-bit layout %02x %02x %02x",
          out[0], out[1], out[2]);
    for (int bits = 1; bits <= RQ_MAX_BITS; bits++) /* 5 bits: half the codes straddle two bytes */
        for (int n = 1; n <= 97; n += 3) {
            uint8_t c[97], p[64], u[97];
            for (int i = 0; i < n; i++) c[i] = (uint8_t)(rq_rng_next(&r) & ((1u << bits) - 1));
            rq__pack_ref(c, n, bits, p);
            rq__unpack_ref(p, n, bits, u);
            CHECK(memcmp(c, u, (size_t)n) == 0, "round trip bits=%d n=%d", bits, n);
            size_t nb = rq__packed_bytes(n, bits);
            unsigned tail = (unsigned)(nb * 8 - (size_t)n * bits);
            if (tail) CHECK((p[nb - 1] >> (8 - tail)) == 0, "padding bits are zero");
        }
    (void)back;
}

static void test_status(void) {
    for (int s = 0; s >= -12; s--) {
        const char *m = rq_status_str((rq_status)s);
        CHECK(m && strcmp(m, "unknown status") != 0, "status %d", s);
    }
    CHECK(strcmp(rq_status_str((rq_status)-99), "unknown status") == 0, "unknown");
}

#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    atomic_int *hits; /* per task */
    int n_tasks, nested;
} par_ctx;

static void par_task(void *arg, int t) {
    par_ctx *c = arg;
    atomic_fetch_add(&c->hits[t], 1);
    if (c->nested) { /* a call from inside a task runs inline */
        par_ctx inner = {c->hits + c->n_tasks + t * 4, 4, 0};
        rq_parallel_for(4, 4, par_task, &inner);
    }
}

static void *par_caller(void *arg) {
    for (int r = 0; r < 200; r++) rq_parallel_for(3, ((par_ctx *)arg)->n_tasks, par_task, arg);
    return NULL;
}

/* A job's context lives on the caller's stack only during its call. */
typedef struct {
    atomic_int alive, ran, stale;
} short_ctx;

static void short_task(void *arg, int t) {
    short_ctx *c = arg;
    (void)t;
    if (atomic_load(&c->alive) != 1) atomic_fetch_add(&c->stale, 1);
    atomic_fetch_add(&c->ran, 1);
}

/* Many tiny back-to-back jobs with more threads than cores: workers that
 * are not scheduled in time miss jobs (the caller does not wait for them)
 * and must never run a task of a job whose call has returned. */
static void test_parallel_for_short_jobs(void) {
    int bad = 0, stale = 0;
    for (int r = 0; r < 3000; r++) {
        short_ctx c;
        atomic_init(&c.alive, 1), atomic_init(&c.ran, 0), atomic_init(&c.stale, 0);
        const int n_tasks = 1 + r % 5;
        rq_parallel_for(2 + r % 7, n_tasks, short_task, &c);
        bad += atomic_load(&c.ran) != n_tasks;
        stale += atomic_load(&c.stale);
        atomic_store(&c.alive, 0);
    }
    CHECK(bad == 0 && stale == 0, "%d jobs with a wrong task count, %d tasks on a dead job", bad, stale);
}

static void test_parallel_for(void) {
    enum { N = 37 };
    static atomic_int hits[N + 4 * N];
    for (int threads = 1; threads <= 4; threads++)
        for (int nested = 0; nested <= 1; nested++)
            for (int rep = 0; rep < 20; rep++) {
                for (int i = 0; i < N + 4 * N; i++) atomic_store(&hits[i], 0);
                par_ctx c = {hits, N, nested};
                rq_parallel_for(threads, N, par_task, &c);
                int bad = 0;
                for (int i = 0; i < N; i++) bad += atomic_load(&hits[i]) != 1;
                for (int i = N; i < N + 4 * N; i++) bad += atomic_load(&hits[i]) != nested;
                CHECK(bad == 0, "threads %d nested %d: %d tasks not run exactly once", threads, nested, bad);
            }
    /* two threads calling at once take turns; every task of every call runs */
    static atomic_int h1[8], h2[8];
    par_ctx c1 = {h1, 8, 0}, c2 = {h2, 8, 0};
    pthread_t a, b;
    pthread_create(&a, NULL, par_caller, &c1);
    pthread_create(&b, NULL, par_caller, &c2);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    for (int i = 0; i < 8; i++) CHECK(atomic_load(&h1[i]) == 200 && atomic_load(&h2[i]) == 200, "task %d", i);
    rq_threads_shutdown(); /* and the pool restarts on demand */
    for (int i = 0; i < N; i++) atomic_store(&hits[i], 0);
    par_ctx c = {hits, N, 0};
    rq_parallel_for(2, N, par_task, &c);
    int sum = 0;
    for (int i = 0; i < N; i++) sum += atomic_load(&hits[i]);
    CHECK(sum == N, "after restart: %d", sum);
    rq_parallel_for(2, 0, par_task, &c); /* no tasks: nothing runs */
    rq_parallel_for(2, 1, NULL, &c);     /* no function: ignored */
}

const rq_test tests_basics[] = {
    {"rng_golden", test_rng_golden}, {"rng_moments", test_rng_moments},
    {"detmath_exp_log", test_detmath}, {"f16_conversion", test_f16},
    {"pack_bits", test_pack}, {"status_strings", test_status},
    {"parallel_for", test_parallel_for},
    {"parallel_for_short_jobs", test_parallel_for_short_jobs},
    {NULL, NULL},
};
