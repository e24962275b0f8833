/*
 * test_simd.c — SIMD parity: every encode/decode kernel at every level the
 * CPU has (avx2, avx512) against the scalar reference (src/simd/kernels.h).
 *
 * The contract is exact (docs/FORMAT.md: the same bytes on every machine and
 * level), so the tolerances are zero:
 *   encode: blocks byte-identical and the same rq_status, for every
 *           registered type, head dims {64, 80, 96, 112, 128, 192, 256} and
 *           odd sizes the type supports, several seeds and configurations,
 *           zero, tiny (subnormal), huge and out-of-range vectors, one by one
 *           and in batches (the fused kernels pair vectors; PROD types
 *           sketch groups) that fail at every position: the same blocks
 *           before the failing vector, nothing written after it;
 *   decode: DECODE_TOL_ULP = 0 — the decoded floats are bit-identical
 *           (same operations in the same order), for blocks produced by
 *           encode and for arbitrary bytes;
 *   kernels: each table entry on shapes 1..300, bit widths 1..5, and
 *           inputs on ties (values equal to a boundary, ±0, f16 and q8_0
 *           rounding midpoints), with canaries after every output.
 * simd_rotation_golden pins the reference rotations' float outputs (a hash),
 * which block bytes alone pin only loosely. A level the CPU lacks is
 * reported on a visible skip line.
 */
#include "test.h"
#include "internal.h"
#include "simd/kernels.h"

#include <string.h>

#define DECODE_TOL_ULP 0 /* decode parity: bit-identical floats */
#define CANARY 0xA5

static const int HEAD_DIMS[] = {64, 80, 96, 112, 128, 192, 256};
static const int ODD_DIMS[] = {2, 3, 4, 5, 7, 8, 16, 17, 24, 33, 48, 100, 129, 160, 320};

/* Levels to compare with scalar; prints which are skipped. Returns count. */
static int levels_to_test(rq_simd_level *out) {
    int n = 0;
    rq_simd_level cpu = rq__simd_cpu_level();
    for (int l = RQ_SIMD_AVX2; l <= RQ_SIMD_AVX512; l++) {
        if (l <= (int)cpu) out[n++] = (rq_simd_level)l;
        else TEST_NOTE("skip level %s: not supported by this CPU/build", rq__simd_level_name((rq_simd_level)l));
    }
    return n;
}

/* ---- inputs ------------------------------------------------------------ */
enum { IN_GAUSS, IN_UNIT, IN_OUTLIER, IN_ZERO, IN_TINY, IN_SUBNORMAL, IN_HUGE, IN_TOO_BIG, IN_SPARSE,
       IN_INTS, IN_NAN, N_INPUTS };

static void make_input(int kind, rq_rng *r, float *x, int d) {
    test_random_gauss(r, x, d);
    switch (kind) {
    case IN_GAUSS: break;
    case IN_UNIT: test_random_unit(r, x, d); break;
    case IN_OUTLIER:
        for (int i = 0; i < d; i += 7) x[i] *= 25.0f;
        break;
    case IN_ZERO: memset(x, 0, sizeof(float) * (size_t)d); break;
    case IN_TINY:
        for (int i = 0; i < d; i++) x[i] *= 1e-20f;
        break;
    case IN_SUBNORMAL: /* float subnormals: fp16 underflow, q8_0/q4_0 tiny scales */
        for (int i = 0; i < d; i++) x[i] *= 1e-39f;
        break;
    case IN_HUGE: /* norm just below the fp16 limit 65504 */
        test_random_unit(r, x, d);
        for (int i = 0; i < d; i++) x[i] *= 6.0e4f;
        break;
    case IN_TOO_BIG: /* norm above 65504: RQ_ERR_RANGE for norm-storing types */
        test_random_unit(r, x, d);
        for (int i = 0; i < d; i++) x[i] *= 1.0e7f;
        break;
    case IN_SPARSE: /* mostly ±0 with a few spikes: ties in q4_0's max, ±0 codes */
        for (int i = 0; i < d; i++) x[i] = (i % 5 == 0) ? (float)((i % 3) - 1) * 3.0f : ((i & 1) ? -0.0f : 0.0f);
        break;
    case IN_INTS: /* small integers: exact ties in q8_0/q4_0 rounding */
        for (int i = 0; i < d; i++) x[i] = (float)((int)(rq_rng_next(r) % 33) - 16) * 0.5f;
        break;
    case IN_NAN:
        x[d / 2] = (d & 1) ? NAN : -INFINITY;
        break;
    }
}

/* ---- encode/decode through the public API -------------------------------- */
typedef struct {
    rq_quant_config cfg;
    const char *what;
} config;

/* The default configuration for every type; norm correction and the
 * structured QJL sketch (pipeline paths independent of the rotation) on two
 * families, to keep the test fast (dense inits cost O(d³)). */
static int n_cfg(const rq_type_info *t, config *c) {
    int n = 0;
    c[n].cfg = rq_quant_config_default(), c[n++].what = "default";
    if (t->rotation != RQ_ROT_HADAMARD && t->rotation != RQ_ROT_ROTOR) return n;
    if (t->family == RQ_FAMILY_MSE || t->family == RQ_FAMILY_TCQ) {
        c[n].cfg = rq_quant_config_default(), c[n].cfg.norm_correct = 1, c[n].cfg.seed = 7, c[n++].what = "norm_correct";
    }
    if (t->family == RQ_FAMILY_PROD) {
        c[n].cfg = rq_quant_config_default(), c[n].cfg.qjl = RQ_QJL_STRUCTURED, c[n].cfg.seed = 5, c[n++].what = "structured qjl";
    }
    return n;
}

/* One quantizer: every input kind × seeds, vector by vector, at `level`
 * against scalar. Returns the number of mismatching vectors. */
static int parity_one(const rq_quantizer *q, rq_simd_level level, int n_seeds, const char *what) {
    int d = rq_quantizer_dims(q);
    size_t bpv = rq_quantizer_bytes_per_vector(q);
    float *x = malloc(sizeof(float) * (size_t)d);
    uint8_t *a = malloc(bpv), *b = malloc(bpv + 1);
    float *xa = malloc(sizeof(float) * (size_t)d), *xb = malloc(sizeof(float) * (size_t)d);
    int bad = 0;
    rq_rng r;
    rq_rng_seed(&r, rq_seed_derive(1234, RQ_STREAM_DATA, (uint64_t)d));
    for (int kind = 0; kind < N_INPUTS; kind++) {
        for (int s = 0; s < (kind <= IN_OUTLIER ? n_seeds : 1); s++) {
            make_input(kind, &r, x, d);
            if (test_is_k8(rq_quantizer_type(q)->name)) { /* unit-scale inputs, norms 0.3 .. 3.3 */
                double ss = 0;
                for (int i = 0; i < d; i++) ss += (double)x[i] * x[i];
                const double f = ss > 0 && isfinite(ss) ? (0.3 + 0.5 * ((kind * 3 + s) % 7)) / sqrt(ss) : 1.0;
                for (int i = 0; i < d; i++) x[i] = (float)(x[i] * f);
            }
            rq__simd_force(RQ_SIMD_SCALAR);
            memset(a, 0, bpv);
            rq_status sa = rq_quantizer_encode(q, x, a, 1);
            rq__simd_force(level);
            memset(b, 0, bpv);
            b[bpv] = CANARY;
            rq_status sb = rq_quantizer_encode(q, x, b, 1);
            bool ok = sa == sb && (sa != RQ_OK || memcmp(a, b, bpv) == 0) && b[bpv] == CANARY;
            if (ok && sa == RQ_OK) { /* decode parity on the block */
                rq__simd_force(RQ_SIMD_SCALAR);
                rq_quantizer_decode(q, a, xa, 1);
                rq__simd_force(level);
                rq_quantizer_decode(q, a, xb, 1);
                ok = memcmp(xa, xb, sizeof(float) * (size_t)d) == 0;
                if (!ok) {
                    int i = 0;
                    while (i < d && !memcmp(&xa[i], &xb[i], 4)) i++;
                    CHECK(ok, "%s d=%d %s input %d: decode differs at %d: %.9g vs %.9g", rq_quantizer_type(q)->name,
                          d, what, kind, i, xa[i], xb[i]);
                }
            } else if (!ok) {
                size_t i = 0;
                while (sa == RQ_OK && i < bpv && a[i] == b[i]) i++;
                CHECK(ok, "%s d=%d %s input %d seed %d at %s: status %d vs %d, first byte diff %zu", rq_quantizer_type(q)->name,
                      d, what, kind, s, rq__simd_level_name(level), sa, sb, i);
            }
            if (kind == IN_NAN) CHECK(sb == RQ_ERR_NONFINITE, "%s: NaN accepted", rq_quantizer_type(q)->name);
            bad += !ok;
        }
    }
    /* batches (the fused kernels take vectors in pairs): clean ones, and ones
     * that fail at position p — same status, same blocks before p, nothing
     * written after block p */
    enum { NB = 9 };
    static const int KINDS[NB] = {IN_GAUSS, IN_UNIT, IN_ZERO, IN_OUTLIER, IN_TINY, IN_HUGE, IN_SPARSE, IN_INTS, IN_GAUSS};
    float *xb_in = malloc(sizeof(float) * (size_t)d * NB);
    uint8_t *ba = malloc(bpv * NB), *bb = malloc(bpv * NB);
    for (int p = -1; p < 5; p++) {
        for (int v = 0; v < NB; v++) make_input(v == p ? (p & 1 ? IN_TOO_BIG : IN_NAN) : KINDS[v], &r, xb_in + (size_t)v * d, d);
        memset(ba, CANARY, bpv * NB), memset(bb, CANARY, bpv * NB);
        rq__simd_force(level);
        rq_status sb = rq_quantizer_encode(q, xb_in, bb, NB);
        rq__simd_force(RQ_SIMD_SCALAR);
        rq_status sa = rq_quantizer_encode(q, xb_in, ba, NB);
        int fail = 0; /* the first vector the reference rejects (TOO_BIG passes for f32, q8_0, …) */
        while (sa != RQ_OK && fail < NB && rq_quantizer_encode(q, xb_in + (size_t)fail * d, a, 1) == RQ_OK) fail++;
        if (sa == RQ_OK) fail = NB;
        bool ok = sa == sb && memcmp(ba, bb, bpv * (size_t)fail) == 0;
        for (size_t i = bpv * (size_t)(fail + 1); ok && fail < NB && i < bpv * NB; i++) ok = bb[i] == CANARY;
        CHECK(ok, "%s d=%d %s at %s: batch failing at %d: status %d vs %d", rq_quantizer_type(q)->name, d, what,
              rq__simd_level_name(level), p, sa, sb);
        bad += !ok;
    }
    free(xb_in), free(ba), free(bb);

    /* decode of arbitrary bytes (untrusted blocks): still bit-identical */
    for (int s = 0; s < 4; s++) {
        for (size_t i = 0; i < bpv; i++) a[i] = (uint8_t)rq_rng_next(&r);
        if (s == 0) /* keep fp16 fields finite and small */
            for (size_t i = 1; i < bpv; i += 2) a[i] &= 0x3f;
        rq__simd_force(RQ_SIMD_SCALAR);
        rq_quantizer_decode(q, a, xa, 1);
        rq__simd_force(level);
        rq_quantizer_decode(q, a, xb, 1);
        bool ok = memcmp(xa, xb, sizeof(float) * (size_t)d) == 0;
        CHECK(ok, "%s d=%d %s: decode of random bytes differs", rq_quantizer_type(q)->name, d, what);
        bad += !ok;
    }
    free(x), free(a), free(b), free(xa), free(xb);
    return bad;
}

static void run_types(bool head_dims) {
    rq_simd_level levels[2];
    int n_lv = levels_to_test(levels);
    if (!n_lv) TEST_SKIP("no SIMD level on this CPU/build");
    rq_simd_level saved = rq__simd_level();
    int n_checked = 0, n_bad = 0, n_5bit = 0;
    const int *dims = head_dims ? HEAD_DIMS : ODD_DIMS;
    int n_dims = head_dims ? (int)(sizeof HEAD_DIMS / sizeof *HEAD_DIMS) : (int)(sizeof ODD_DIMS / sizeof *ODD_DIMS);
    for (int ti = 0; ti < rq_type_count(); ti++) {
        const rq_type_info *t = rq_type_at(ti);
        config cf[4];
        int nc = n_cfg(t, cf);
        for (int k = 0; k < n_dims; k++) {
            int d = dims[k];
            if (!rq_type_bytes_per_vector(t, d)) continue;
            for (int c = 0; c < nc; c++) {
                rq_quantizer *q = NULL;
                if (rq_quantizer_init(&q, t->name, d, &cf[c].cfg) != RQ_OK) {
                    /* the structured QJL sketch needs a Hadamard-friendly d */
                    CHECK(cf[c].cfg.qjl == RQ_QJL_STRUCTURED, "%s d=%d %s: init failed", t->name, d, cf[c].what);
                    continue;
                }
                for (int l = 0; l < n_lv; l++) {
                    n_bad += parity_one(q, levels[l], head_dims ? 3 : 2, cf[c].what);
                    n_checked++;
                    n_5bit += t->family == RQ_FAMILY_MSE && t->n_bits == 5;
                }
                rq_quantizer_free(q);
            }
        }
    }
    rq__simd_force(saved);
    /* the registry's 5-bit rows (every family, default and norm correction) are among them */
    CHECK(n_5bit >= 5 * n_lv, "only %d 5-bit quantizer×level combinations checked", n_5bit);
    TEST_NOTE("%d quantizer×level combinations (%d of them 5-bit), %d mismatching vectors (tolerance: bytes exact, "
              "decode %d ulp)",
              n_checked, n_5bit, n_bad, DECODE_TOL_ULP);
}

static void test_parity_head_dims(void) { run_types(true); }
static void test_parity_odd_dims(void) { run_types(false); }

/* ---- kernel by kernel ------------------------------------------------------ */
/* Fills y with values that stress comparisons: random, exact bounds, ±0. */
static void tricky_floats(rq_rng *r, float *y, int n, const float *special, int n_special, float scale) {
    for (int i = 0; i < n; i++) {
        uint64_t u = rq_rng_next(r);
        switch (u % 8) {
        case 0: y[i] = n_special ? special[(u >> 8) % (uint64_t)n_special] : 0.0f; break;
        case 1: y[i] = (u & 256) ? -0.0f : 0.0f; break;
        default: y[i] = (float)rq_rng_gauss(r) * scale; break;
        }
    }
}

static bool same_floats(const float *a, const float *b, int n) { return memcmp(a, b, sizeof(float) * (size_t)n) == 0; }

static void kernels_at(const rq_kernels *k, rq_rng *r) {
    const rq_kernels *ref = &rq__kernels_ref;
    enum { MAXN = 400 };
    float *x = malloc(sizeof(float) * MAXN), *ya = malloc(sizeof(float) * (MAXN + 1)), *yb = malloc(sizeof(float) * (MAXN + 1));
    uint8_t *pa = malloc(2 * MAXN + 64), *pb = malloc(2 * MAXN + 64);
    float *mat = malloc(sizeof(float) * MAXN * MAXN);
    for (int n = 1; n <= 300; n += (n < 40 ? 1 : 7)) {
        /* reductions */
        tricky_floats(r, x, n, NULL, 0, n % 3 ? 1.0f : 1e19f);
        bool fa, fb;
        float sa = ref->sumsq_finite(x, n, &fa), sb = k->sumsq_finite(x, n, &fb);
        CHECK(fa == fb && !memcmp(&sa, &sb, 4), "%s sumsq_finite n=%d: %.9g vs %.9g", k->name, n, sa, sb);
        sa = ref->sumsq(x, n), sb = k->sumsq(x, n);
        CHECK(!memcmp(&sa, &sb, 4), "%s sumsq n=%d", k->name, n);
        CHECK(k->all_finite(x, n), "%s all_finite n=%d", k->name, n);
        x[(n * 7 / 3) % n] = (n & 1) ? INFINITY : NAN;
        CHECK(!k->all_finite(x, n), "%s all_finite missed n=%d", k->name, n);
        ref->sumsq_finite(x, n, &fa), k->sumsq_finite(x, n, &fb);
        CHECK(!fa && !fb, "%s sumsq_finite missed a non-finite, n=%d", k->name, n);

        /* matvecs */
        test_random_gauss(r, mat, n * n);
        test_random_gauss(r, x, n);
        ref->matvec_cols(mat, n, x, ya), k->matvec_cols(mat, n, x, yb);
        CHECK(same_floats(ya, yb, n), "%s matvec_cols n=%d", k->name, n);
        int rows = 1 + (int)(rq_rng_next(r) % (uint64_t)n);
        yb[rows] = 12345.0f;
        ref->matvec_rows(mat, rows, n, x, ya), k->matvec_rows(mat, rows, n, x, yb);
        CHECK(same_floats(ya, yb, rows) && yb[rows] == 12345.0f, "%s matvec_rows %d×%d", k->name, rows, n);
        {
            int kv = 1 + (int)(rq_rng_next(r) % 8);
            float *vs = malloc(sizeof(float) * (size_t)(kv * n)), *oa = malloc(sizeof(float) * (size_t)(kv * rows)),
                  *ob = malloc(sizeof(float) * (size_t)(kv * rows + 1));
            test_random_gauss(r, vs, kv * n);
            ob[kv * rows] = 12345.0f;
            ref->matvec_rows_k(mat, rows, n, vs, kv, oa), k->matvec_rows_k(mat, rows, n, vs, kv, ob);
            CHECK(same_floats(oa, ob, kv * rows) && ob[kv * rows] == 12345.0f, "%s matvec_rows_k %d×%d k=%d", k->name, rows, n, kv);
            free(vs), free(oa), free(ob);
        }

        /* codes */
        for (int bits = 1; bits <= RQ_MAX_BITS; bits++) {
            rq_codebook cb;
            rq_codebook_init(&cb, n < 2 ? 2 : n, bits, RQ_LAW_BETA);
            float scale = 1.0f / sqrtf((float)(n < 2 ? 2 : n));
            tricky_floats(r, x, n, cb.bounds, cb.n_levels - 1, scale);
            size_t nb = rq__packed_bytes(n, bits);
            memset(pa, 0, nb), memset(pb, 0x5a, nb + 1), pb[nb] = CANARY;
            ref->quantize_pack(x, n, bits, cb.bounds, pa), k->quantize_pack(x, n, bits, cb.bounds, pb);
            CHECK(!memcmp(pa, pb, nb) && pb[nb] == CANARY, "%s quantize_pack n=%d b=%d", k->name, n, bits);
            for (size_t i = 0; i < nb; i++) pa[i] = (uint8_t)rq_rng_next(r);
            float s = (float)rq_rng_gauss(r);
            yb[n] = 777.0f;
            ref->unpack_scale(pa, n, bits, cb.centroids, s, ya), k->unpack_scale(pa, n, bits, cb.centroids, s, yb);
            CHECK(same_floats(ya, yb, n) && yb[n] == 777.0f, "%s unpack_scale n=%d b=%d", k->name, n, bits);
        }
        tricky_floats(r, x, n, NULL, 0, 1.0f);
        size_t ns = rq__packed_bytes(n, 1);
        memset(pb, 0x5a, ns + 1), pb[ns] = CANARY;
        ref->pack_signs(x, n, pa), k->pack_signs(x, n, pb);
        CHECK(!memcmp(pa, pb, ns) && pb[ns] == CANARY, "%s pack_signs n=%d", k->name, n);

        /* f16: rounding midpoints, subnormal halves, the overflow edge */
        static const float f16_special[] = {65504.0f, 65519.996f, 65520.0f, 1.0009765625f + 0.00048828125f,
                                            6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f, 2.98023259e-08f,
                                            1e-10f, 3.0517578e-05f, 2049.0f, 4097.0f, 0.33333334f};
        for (int i = 0; i < n; i++) {
            uint64_t u = rq_rng_next(r);
            float v = (u % 3 == 0) ? f16_special[(u >> 8) % (sizeof f16_special / sizeof *f16_special)]
                      : (u % 3 == 1) ? ldexpf((float)rq_rng_gauss(r), (int)((u >> 16) % 40) - 30)
                                     : (float)rq_rng_gauss(r);
            x[i] = (u & (1u << 30)) ? -v : v;
        }
        rq_status ea = rq__values_encoder(ref, RQ_BLOCK_F16)(x, n, pa);
        memset(pb, 0, 2 * (size_t)n + 1), pb[2 * n] = CANARY;
        rq_status eb = rq__values_encoder(k, RQ_BLOCK_F16)(x, n, pb);
        CHECK(ea == eb && (ea || !memcmp(pa, pb, 2 * (size_t)n)) && pb[2 * n] == CANARY, "%s f16_encode n=%d (%d/%d)",
              k->name, n, ea, eb);
        for (int i = 0; i < n; i++) x[i] = fminf(fmaxf(x[i], -65504.0f), 65504.0f);
        ea = rq__values_encoder(ref, RQ_BLOCK_F16)(x, n, pa), eb = rq__values_encoder(k, RQ_BLOCK_F16)(x, n, pb);
        CHECK(ea == RQ_OK && eb == RQ_OK && !memcmp(pa, pb, 2 * (size_t)n), "%s f16_encode clamped n=%d", k->name, n);
        for (int i = 0; i < 2 * n; i++) pa[i] = (uint8_t)rq_rng_next(r); /* includes NaN/Inf/subnormal halves */
        yb[n] = 777.0f;
        rq__values_decoder(ref, RQ_BLOCK_F16)(pa, n, ya), rq__values_decoder(k, RQ_BLOCK_F16)(pa, n, yb);
        CHECK(same_floats(ya, yb, n) && yb[n] == 777.0f, "%s f16_decode n=%d", k->name, n);

        /* q8_0 / q4_0 on multiples of 32 */
        if (n % 32 == 0 || n == 1) {
            int m = n == 1 ? 32 : n;
            for (int kind = 0; kind < 4; kind++) {
                for (int i = 0; i < m; i++) {
                    uint64_t u = rq_rng_next(r);
                    switch (kind) {
                    case 0: x[i] = (float)rq_rng_gauss(r); break;
                    case 1: x[i] = (float)((int)(u % 255) - 127) * (u & 256 ? 0.5f : 1.0f); break; /* ties */
                    case 2: x[i] = (i % 32 == 5) ? 8.0f : (i % 32 == 9) ? -8.0f : (float)((int)(u % 17) - 8); break;
                    default: x[i] = (float)rq_rng_gauss(r) * ((u & 3) ? 1e-39f : 1e5f); break;
                    }
                }
                size_t b8 = (size_t)m / 32 * 34, b4 = (size_t)m / 32 * 18;
                ea = rq__values_encoder(ref, RQ_BLOCK_Q8_0)(x, m, pa);
                memset(pb, 0, b8 + 1), pb[b8] = CANARY;
                eb = rq__values_encoder(k, RQ_BLOCK_Q8_0)(x, m, pb);
                CHECK(ea == eb && (ea || !memcmp(pa, pb, b8)) && pb[b8] == CANARY, "%s q8_0_encode n=%d kind %d", k->name, m,
                      kind);
                ea = rq__values_encoder(ref, RQ_BLOCK_Q4_0)(x, m, pa);
                memset(pb, 0, b4 + 1), pb[b4] = CANARY;
                eb = rq__values_encoder(k, RQ_BLOCK_Q4_0)(x, m, pb);
                CHECK(ea == eb && (ea || !memcmp(pa, pb, b4)) && pb[b4] == CANARY, "%s q4_0_encode n=%d kind %d", k->name, m,
                      kind);
            }
            for (size_t i = 0; i < (size_t)m / 32 * 34; i++) pa[i] = (uint8_t)rq_rng_next(r);
            yb[m] = 777.0f;
            rq__values_decoder(ref, RQ_BLOCK_Q8_0)(pa, m, ya), rq__values_decoder(k, RQ_BLOCK_Q8_0)(pa, m, yb);
            CHECK(same_floats(ya, yb, m) && yb[m] == 777.0f, "%s q8_0_decode n=%d", k->name, m);
            rq__values_decoder(ref, RQ_BLOCK_Q4_0)(pa, m, ya), rq__values_decoder(k, RQ_BLOCK_Q4_0)(pa, m, yb);
            CHECK(same_floats(ya, yb, m) && yb[m] == 777.0f, "%s q4_0_decode n=%d", k->name, m);
        }
    }
    free(x), free(ya), free(yb), free(pa), free(pb), free(mat);
}

static void test_kernels(void) {
    rq_simd_level levels[2];
    int n_lv = levels_to_test(levels);
    if (!n_lv) TEST_SKIP("no SIMD level on this CPU/build");
    for (int l = 0; l < n_lv; l++) {
        rq_rng r;
        rq_rng_seed(&r, 99 + (uint64_t)l);
        kernels_at(rq__kernels_for(levels[l]), &r);
    }
}

/* Rotations alone: every kind, many d, forward (with prescale) and inverse. */
static void test_rotations(void) {
    rq_simd_level levels[2];
    int n_lv = levels_to_test(levels);
    if (!n_lv) TEST_SKIP("no SIMD level on this CPU/build");
    rq_rng r;
    rq_rng_seed(&r, 5);
    float x[1024], ya[1024], yb[1024];
    int n_checked = 0;
    for (int kind = RQ_ROT_DENSE; kind < RQ_ROT_COUNT; kind++) {
        const rq_rot_ops *ops = rq__rot_ops((rq_rot_kind)kind);
        for (int d = 2; d <= 520; d += (d < 70 ? 1 : d < 300 ? 16 : 64)) {
            rq_rotation *rot = NULL;
            if (rq_rotation_init(&rot, (rq_rot_kind)kind, d, 1000 + (uint64_t)d) != RQ_OK) continue;
            for (int l = -1; l < n_lv; l++) { /* −1: the reference table's composition */
                const rq_kernels *k = l < 0 ? &rq__kernels_ref : rq__kernels_for(levels[l]);
                for (int s = 0; s < 2; s++) {
                    tricky_floats(&r, x, d, NULL, 0, 1.0f);
                    float sc = s ? 0.1234567f : 1.0f, u[1024];
                    for (int i = 0; i < d; i++) u[i] = x[i] * sc; /* the family's reference on x·s */
                    ops->forward(rot, u, ya);
                    rq__rotate(k, rot, x, sc, yb);
                    CHECK(same_floats(ya, yb, d), "%s rotate %s d=%d", k->name, rq_rot_kind_name((rq_rot_kind)kind), d);
                    memcpy(yb, x, sizeof(float) * (size_t)d);
                    rq__rotate(k, rot, yb, sc, yb); /* in place */
                    CHECK(same_floats(ya, yb, d), "%s rotate in place %s d=%d", k->name, rq_rot_kind_name((rq_rot_kind)kind), d);
                    ops->inverse(rot, x, ya);
                    rq__rotate_inv(k, rot, x, yb);
                    CHECK(same_floats(ya, yb, d), "%s rotate_inv %s d=%d", k->name, rq_rot_kind_name((rq_rot_kind)kind), d);
                    memcpy(yb, x, sizeof(float) * (size_t)d);
                    rq__rotate_inv(k, rot, yb, yb);
                    CHECK(same_floats(ya, yb, d), "%s rotate_inv in place %s d=%d", k->name,
                          rq_rot_kind_name((rq_rot_kind)kind), d);
                    n_checked++;
                }
            }
            rq_rotation_free(rot);
        }
    }
    TEST_NOTE("%d rotation checks, bit-exact", n_checked);
}

/* Pins the exact float operations of every rotation (the reference the
 * SIMD kernels reproduce): a hash of forward and inverse outputs. Changing
 * a rotation's arithmetic changes block bytes only where a value sits within
 * rounding of a bound, which quant_golden_bytes may not see; this does. */
static uint64_t fnv_floats(const float *x, int n, uint64_t h) {
    const uint8_t *b = (const uint8_t *)x;
    for (size_t i = 0; i < sizeof(float) * (size_t)n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void test_rotation_golden(void) {
    uint64_t h = 1469598103934665603ull;
    rq_rng r;
    rq_rng_seed(&r, 321);
    float x[128], y[128];
    const int dims[] = {128, 96, 7};
    for (int kind = RQ_ROT_DENSE; kind <= RQ_ROT_ISO; kind++)
        for (int k = 0; k < 3; k++) {
            rq_rotation *rot = NULL;
            if (rq_rotation_init(&rot, (rq_rot_kind)kind, dims[k], 77) != RQ_OK) continue;
            test_random_gauss(&r, x, dims[k]);
            CHECK_OK(rq_rotation_forward(rot, x, y, 1));
            h = fnv_floats(y, dims[k], h);
            CHECK_OK(rq_rotation_inverse(rot, x, y, 1));
            h = fnv_floats(y, dims[k], h);
            rq_rotation_free(rot);
        }
    TEST_NOTE("rotation output hash %016llx", (unsigned long long)h);
    CHECK(h == 0x7fd651ce9fc8d5e6ull, "rotation arithmetic changed (docs/FORMAT.md §3): update the pinned hash only if intended");
}

static void test_dispatch(void) {
    const char *name = rq_simd_name();
    CHECK(!strcmp(name, "scalar") || !strcmp(name, "avx2") || !strcmp(name, "avx512"), "rq_simd_name %s", name);
    rq_simd_level saved = rq__simd_level(), cpu = rq__simd_cpu_level();
    CHECK(saved <= cpu, "level %d above the CPU's %d", saved, cpu);
    CHECK(rq__simd_force(RQ_SIMD_AVX512) == cpu, "force clamps to the CPU");
    CHECK(rq__simd_force(RQ_SIMD_SCALAR) == RQ_SIMD_SCALAR && !strcmp(rq_simd_name(), "scalar"), "force scalar");
    CHECK(rq__kernels_for(RQ_SIMD_SCALAR) == &rq__kernels_ref, "scalar table");
    rq__simd_force(saved);
    CHECK(rq_simd_get() == saved && !strcmp(rq_simd_name(), rq__simd_level_name(rq_simd_get())), "rq_simd_get");
    TEST_NOTE("level in use: %s (CPU best: %s)", rq_simd_name(), rq__simd_level_name(cpu));
}

/* CRC-32C: the check value of "123456789" (0xE3069283, the polynomial's
 * catalogue entry), and every level equal to the reference over lengths
 * 0..300 at every start alignment 0..7, continued in two pieces too. */
static void test_crc32c(void) {
    CHECK(rq__crc32c("123456789", 9) == 0xE3069283u, "check value %08x", (unsigned)rq__crc32c("123456789", 9));
    CHECK(rq__crc32c("", 0) == 0, "empty");
    uint8_t buf[320];
    rq_rng r;
    rq_rng_seed(&r, 11);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rq_rng_next(&r);
    rq_simd_level levels[2];
    int n_lv = levels_to_test(levels), n_bad = 0;
    for (int l = 0; l < n_lv; l++) {
        const rq_kernels *k = rq__kernels_for(levels[l]);
        for (size_t a = 0; a < 8; a++)
            for (size_t n = 0; n + a <= 308; n++) {
                const uint32_t want = rq__crc32c_ref(0xFFFFFFFFu, buf + a, n);
                const uint32_t got = k->crc32c(0xFFFFFFFFu, buf + a, n);
                const uint32_t split = k->crc32c(k->crc32c(0xFFFFFFFFu, buf + a, n / 3), buf + a + n / 3, n - n / 3);
                n_bad += got != want || split != want;
            }
    }
    CHECK(n_bad == 0, "%d CRC mismatches against the reference", n_bad);
}

/* RQ_SIMD: a known name or empty is fine, anything else is reported. */
static void test_simd_env(void) {
    const char *old = getenv("RQ_SIMD");
    char *keep = old ? strdup(old) : NULL;
    static const struct {
        const char *value;
        rq_status want;
    } CASES[] = {{"scalar", RQ_OK}, {"avx2", RQ_OK}, {"avx512", RQ_OK}, {"", RQ_OK},
                 {"bogus", RQ_ERR_INVALID_ARG}, {"AVX2", RQ_ERR_INVALID_ARG}, {"avx", RQ_ERR_INVALID_ARG}};
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        setenv("RQ_SIMD", CASES[i].value, 1);
        rq_status st = rq_simd_status();
        CHECK(st == CASES[i].want, "RQ_SIMD=\"%s\": %s", CASES[i].value, rq_status_str(st));
    }
    unsetenv("RQ_SIMD");
    CHECK(rq_simd_status() == RQ_OK, "RQ_SIMD unset");
    if (keep) setenv("RQ_SIMD", keep, 1);
    free(keep);
}

const rq_test tests_simd[] = {
    {"simd_dispatch", test_dispatch},
    {"simd_env_unknown_level_reported", test_simd_env},
    {"simd_rotation_golden", test_rotation_golden},
    {"simd_crc32c_levels", test_crc32c},
    {"simd_kernel_parity", test_kernels},
    {"simd_rotation_parity", test_rotations},
    {"simd_encode_decode_parity_head_dims", test_parity_head_dims},
    {"simd_encode_decode_parity_odd_dims", test_parity_odd_dims},
    {NULL, NULL},
};
