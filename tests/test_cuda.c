/*
 * test_cuda.c — the GPU path (src/cuda/, issue 6) against the CPU reference.
 *   - GPU-encoded blocks are byte-identical to rq_quantizer_encode for every
 *     MSE and PROD type of every rotation family, at the CPU parity test's
 *     head dims and odd sizes; GPU decode gives the CPU's exact floats.
 *   - GPU attention over packed blocks matches the reference (decode every
 *     block on the CPU, exact softmax attention in double) within
 *     ATTN_REL_TOL; likewise the f16 kernel.
 *   - The 5-bit MSE types are CPU only: rq_cuda_quantizer_init answers
 *     RQ_ERR_UNSUPPORTED for them (with or without a GPU).
 * Every other test skips with a message when the build has no CUDA or no GPU.
 */
#include "test.h"

#include <string.h>

/* ‖out − ref‖₂ / ‖ref‖₂ allowed for the GPU attention kernels: float
 * accumulation over ≤ 5000 tokens in a different order than the double
 * reference, exp2f (≤ 2 ulp), and the query rotation in float. Measured
 * values are printed; they sit near 1e-6. */
#define ATTN_REL_TOL 2e-5
/* The tensor-core kernel (head_dim % 16 == 0) multiplies fp16 centroids:
 * each decoded coordinate is off by ≤ 2^-11 relative (q′ and the softmax
 * weights enter as exact fp16 hi + lo pairs), which moves the output by
 * ~1e-4 relative; 3e-3 leaves room for peaky softmaxes. */
#define ATTN_MMA_REL_TOL 3e-3

/* test/benchmark hook of src/cuda/attention.cu: force the CUDA-core kernel */
void rq__cuda_attn_force_simt(rq_cuda_attn *a, int on); /* 1: CUDA cores, 2: generic MMA */

static const int HEAD_DIMS[] = {64, 80, 96, 112, 128, 192, 256};
static const int ODD_DIMS[] = {2, 3, 4, 5, 7, 8, 16, 17, 24, 33, 48, 100, 129, 160};
static const char *FAMILIES[] = {"turbo", "dense", "rotor", "planar", "iso"};

static int skip_without_gpu(void) {
    if (!rq_cuda_available()) {
        rq_test_skipped = "no CUDA device (build with make CUDA=1 on a machine with a GPU)";
        return 1;
    }
    return 0;
}

/* n vectors: outlier-channel data, one zero vector, one tiny and one large
 * (but fp16-representable) norm. */
static void make_data(float *x, size_t n, int d, uint64_t seed) {
    rq_data_generate(RQ_DATA_OUTLIER, seed, x, n, d);
    rq_rng rng;
    rq_rng_seed(&rng, seed ^ 0x5eed);
    for (size_t v = 0; v < n; v++) {
        float s = (float)(0.5 + 4.0 * rq_rng_uniform(&rng));
        for (int i = 0; i < d; i++) x[v * d + i] *= s;
    }
    if (n > 3) {
        memset(x + 1 * (size_t)d, 0, sizeof(float) * (size_t)d);
        for (int i = 0; i < d; i++) x[2 * (size_t)d + i] *= 1e-3f;
        for (int i = 0; i < d; i++) x[3 * (size_t)d + i] *= 1000.0f;
    }
}

/* Encode n vectors on both sides; compare blocks and decodes. Returns the
 * number of mismatching vectors (blocks or decode). */
static int parity_one(const char *type, int d, size_t n, const rq_quant_config *cfg, size_t out_offset) {
    rq_quantizer *q = NULL;
    rq_status st = rq_quantizer_init(&q, type, d, cfg);
    if (st == RQ_ERR_DIM) return 0; /* the type does not serve this d (CPU too) */
    CHECK(st == RQ_OK, "%s d=%d: init %s", type, d, rq_status_str(st));
    if (st) return 1;
    rq_cuda_quantizer *g = NULL;
    st = rq_cuda_quantizer_init(&g, q);
    CHECK(st == RQ_OK, "%s d=%d: cuda init %s (%s)", type, d, rq_status_str(st), rq_cuda_error_str());
    if (st) {
        rq_quantizer_free(q);
        return 1;
    }
    size_t bytes = rq_quantizer_bytes_per_vector(q), nx = n * (size_t)d;
    float *x = malloc(sizeof(float) * nx), *dec = malloc(sizeof(float) * nx), *gdec = malloc(sizeof(float) * nx);
    uint16_t *g16 = malloc(sizeof(uint16_t) * nx);
    uint8_t *cpu = malloc(n * bytes), *gpu = malloc(n * bytes);
    make_data(x, n, d, 1000u + (uint64_t)d);
    CHECK_OK(rq_quantizer_encode(q, x, cpu, n));
    CHECK_OK(rq_quantizer_decode(q, cpu, dec, n));

    void *d_x = NULL, *d_b = NULL, *d_y = NULL, *d_h = NULL;
    CHECK_OK(rq_cuda_malloc(&d_x, sizeof(float) * nx));
    CHECK_OK(rq_cuda_malloc(&d_b, n * bytes + out_offset));
    CHECK_OK(rq_cuda_malloc(&d_y, sizeof(float) * nx));
    CHECK_OK(rq_cuda_malloc(&d_h, sizeof(uint16_t) * nx));
    uint8_t *d_blocks = (uint8_t *)d_b + out_offset;
    CHECK_OK(rq_cuda_upload(d_x, x, sizeof(float) * nx));
    CHECK_OK(rq_cuda_memset(d_b, 0xAB, n * bytes + out_offset)); /* poison */
    CHECK_OK(rq_cuda_memset(d_y, 0xFF, sizeof(float) * nx));
    CHECK_OK(rq_cuda_encode(g, d_x, d_blocks, n, NULL));
    CHECK_OK(rq_cuda_quantizer_check(g));
    CHECK_OK(rq_cuda_download(gpu, d_blocks, n * bytes));
    /* decode the CPU's blocks on the GPU */
    CHECK_OK(rq_cuda_upload(d_blocks, cpu, n * bytes));
    CHECK_OK(rq_cuda_decode(g, d_blocks, d_y, n, NULL));
    CHECK_OK(rq_cuda_decode_f16(g, d_blocks, d_h, n, NULL));
    CHECK_OK(rq_cuda_download(gdec, d_y, sizeof(float) * nx));
    CHECK_OK(rq_cuda_download(g16, d_h, sizeof(uint16_t) * nx));

    int bad = 0;
    for (size_t v = 0; v < n; v++) {
        int blk_bad = memcmp(cpu + v * bytes, gpu + v * bytes, bytes) != 0;
        int dec_bad = memcmp(dec + v * d, gdec + v * d, sizeof(float) * (size_t)d) != 0;
        int h_bad = 0;
        for (int i = 0; i < d; i++) h_bad |= g16[v * d + i] != rq_f32_to_f16(dec[v * d + i]);
        if (blk_bad || dec_bad || h_bad) {
            if (bad < 3) {
                size_t k = 0;
                while (k < bytes && cpu[v * bytes + k] == gpu[v * bytes + k]) k++;
                CHECK(0, "%s d=%d vector %zu: block %s (first differing byte %zu: cpu %02x gpu %02x), decode %s, f16 %s",
                      type, d, v, blk_bad ? "DIFFERS" : "same", k, k < bytes ? cpu[v * bytes + k] : 0,
                      k < bytes ? gpu[v * bytes + k] : 0, dec_bad ? "DIFFERS" : "same", h_bad ? "DIFFERS" : "same");
            }
            bad++;
        }
    }
    rq_cuda_free(d_x);
    rq_cuda_free(d_b);
    rq_cuda_free(d_y);
    rq_cuda_free(d_h);
    free(x);
    free(dec);
    free(gdec);
    free(g16);
    free(cpu);
    free(gpu);
    rq_cuda_quantizer_free(g);
    rq_quantizer_free(q);
    return bad;
}

static int parity_dims(const int *dims, size_t n_dims, size_t n_vec) {
    int combos = 0, bad = 0;
    char name[32];
    rq_quant_config cfg = rq_quant_config_default();
    for (size_t f = 0; f < sizeof FAMILIES / sizeof FAMILIES[0]; f++)
        for (int b = 1; b <= 4; b++)
            for (int p = 0; p < 2; p++)
                for (size_t k = 0; k < n_dims; k++) {
                    snprintf(name, sizeof name, "%s%d%s", FAMILIES[f], b, p ? "p" : "");
                    bad += parity_one(name, dims[k], n_vec, &cfg, 0);
                    combos++;
                }
    TEST_NOTE("%d type x head_dim combinations, %zu vectors each: %d mismatching vectors (blocks byte-exact, "
              "decode 0 ulp)", combos, n_vec, bad);
    return bad;
}

static void test_cuda_encode_parity_head_dims(void) {
    if (skip_without_gpu()) return;
    char name[160];
    if (rq_cuda_device_name(name, sizeof name) == RQ_OK) TEST_NOTE("device: %s", name);
    parity_dims(HEAD_DIMS, sizeof HEAD_DIMS / sizeof HEAD_DIMS[0], 301);
}

static void test_cuda_encode_parity_odd_dims(void) {
    if (skip_without_gpu()) return;
    parity_dims(ODD_DIMS, sizeof ODD_DIMS / sizeof ODD_DIMS[0], 37);
}

/* Options: norm correction, the Gaussian codebook law, structured QJL, and
 * an output pointer that is not 16-byte aligned. */
static void test_cuda_encode_parity_options(void) {
    if (skip_without_gpu()) return;
    static const char *types[] = {"turbo1", "turbo3", "turbo4", "turbo2p", "turbo3p", "rotor3", "dense2p", "iso4"};
    static const int dims[] = {64, 96, 128, 256};
    int bad = 0, combos = 0;
    for (int opt = 0; opt < 3; opt++) {
        rq_quant_config cfg = rq_quant_config_default();
        cfg.seed = 7 + (uint64_t)opt;
        if (opt == 0) cfg.norm_correct = 1;
        if (opt == 1) cfg.law = RQ_LAW_GAUSS;
        if (opt == 2) cfg.qjl = RQ_QJL_STRUCTURED;
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
            for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
                bad += parity_one(types[t], dims[k], 100, &cfg, (size_t)(3 + opt));
                combos++;
            }
    }
    TEST_NOTE("%d option combinations (norm_correct, gauss law, structured QJL, unaligned output): %d mismatches",
              combos, bad);
}

/* Large batch (many CTAs in the grid-stride loop). */
static void test_cuda_encode_parity_large(void) {
    if (skip_without_gpu()) return;
    rq_quant_config cfg = rq_quant_config_default();
    int bad = parity_one("turbo3", 128, 100003, &cfg, 0) + parity_one("rotor4", 128, 20011, &cfg, 0);
    TEST_NOTE("turbo3 d=128 x 100003 and rotor4 d=128 x 20011 vectors: %d mismatches", bad);
}

static void test_cuda_encode_errors(void) {
    if (skip_without_gpu()) return;
    const int d = 128;
    const size_t n = 40;
    rq_quantizer *q = NULL;
    rq_cuda_quantizer *g = NULL;
    CHECK_OK(rq_quantizer_init(&q, "turbo3", d, NULL));
    CHECK_OK(rq_cuda_quantizer_init(&g, q));
    if (!g) {
        rq_quantizer_free(q);
        return;
    }
    size_t bytes = rq_quantizer_bytes_per_vector(q);
    float *x = malloc(sizeof(float) * n * d);
    uint8_t *cpu = malloc(bytes), *gpu = malloc(n * bytes);
    make_data(x, n, d, 5);
    x[7 * d + 3] = NAN;
    void *d_x = NULL, *d_b = NULL;
    CHECK_OK(rq_cuda_malloc(&d_x, sizeof(float) * n * d));
    CHECK_OK(rq_cuda_malloc(&d_b, n * bytes));
    CHECK_OK(rq_cuda_upload(d_x, x, sizeof(float) * n * d));
    CHECK_OK(rq_cuda_encode(g, d_x, d_b, n, NULL));
    rq_status st = rq_cuda_quantizer_check(g);
    CHECK(st == RQ_ERR_NONFINITE, "NaN: %s", rq_status_str(st));
    CHECK(rq_cuda_quantizer_check(g) == RQ_OK, "status not cleared");
    CHECK_OK(rq_cuda_download(gpu, d_b, n * bytes));
    int zero = 1;
    for (size_t k = 0; k < bytes; k++) zero &= gpu[7 * bytes + k] == 0;
    CHECK(zero, "the NaN vector's block is not all zero");
    for (size_t v = 0; v < n; v++) {
        if (v == 7) continue;
        CHECK_OK(rq_quantizer_encode(q, x + v * d, cpu, 1));
        CHECK(memcmp(cpu, gpu + v * bytes, bytes) == 0, "vector %zu differs beside the NaN vector", v);
    }
    /* a norm beyond fp16 */
    x[7 * d + 3] = 0.0f;
    for (int i = 0; i < d; i++) x[9 * d + i] = 1e5f;
    CHECK_OK(rq_cuda_upload(d_x, x, sizeof(float) * n * d));
    CHECK_OK(rq_cuda_encode(g, d_x, d_b, n, NULL));
    st = rq_cuda_quantizer_check(g);
    CHECK(st == RQ_ERR_RANGE, "huge norm: %s", rq_status_str(st));
    /* arguments */
    CHECK(rq_cuda_encode(NULL, d_x, d_b, n, NULL) == RQ_ERR_INVALID_ARG, "NULL quantizer");
    CHECK(rq_cuda_encode(g, NULL, d_b, n, NULL) == RQ_ERR_INVALID_ARG, "NULL input");
    CHECK_OK(rq_cuda_encode(g, NULL, NULL, 0, NULL));
    rq_quantizer *qf = NULL, *qb = NULL;
    rq_cuda_quantizer *gf = NULL;
    CHECK_OK(rq_quantizer_init(&qf, "q8_0", 128, NULL));
    CHECK(rq_cuda_quantizer_init(&gf, qf) == RQ_ERR_UNSUPPORTED && !gf, "q8_0 should be CPU only");
    CHECK_OK(rq_quantizer_init(&qb, "turbo3", 320, NULL));
    CHECK(rq_cuda_quantizer_init(&gf, qb) == RQ_ERR_DIM && !gf, "d = 320 > 256 should be RQ_ERR_DIM");
    rq_quantizer_free(qf);
    rq_quantizer_free(qb);
    rq_cuda_free(d_x);
    rq_cuda_free(d_b);
    free(x);
    free(cpu);
    free(gpu);
    rq_cuda_quantizer_free(g);
    rq_quantizer_free(q);
}

/* ---- attention ---------------------------------------------------------- */
/* Exact attention in double over decoded keys/values [n_kv][n_tok][d]. */
static void attention_ref(const float *q, const float *k, const float *v, int n_q, int n_kv, int d, size_t n_tok,
                          float scale, double *out) {
    double *s = malloc(sizeof(double) * n_tok);
    int G = n_q / n_kv;
    for (int h = 0; h < n_q; h++) {
        const float *kh = k + (size_t)(h / G) * n_tok * d, *vh = v + (size_t)(h / G) * n_tok * d;
        double mx = -INFINITY, sum = 0;
        for (size_t t = 0; t < n_tok; t++) {
            double dot = 0;
            for (int j = 0; j < d; j++) dot += (double)q[h * d + j] * kh[t * d + j];
            s[t] = dot * scale;
            if (s[t] > mx) mx = s[t];
        }
        for (int j = 0; j < d; j++) out[h * d + j] = 0;
        for (size_t t = 0; t < n_tok; t++) {
            double p = exp(s[t] - mx);
            sum += p;
            for (int j = 0; j < d; j++) out[h * d + j] += p * vh[t * d + j];
        }
        for (int j = 0; j < d; j++) out[h * d + j] /= sum;
    }
    free(s);
}

static double rel_err(const float *out, const double *ref, size_t n) {
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = out[i] - ref[i];
        if (!(diff == diff)) return INFINITY; /* NaN */
        e += diff * diff;
        r += ref[i] * ref[i];
    }
    return sqrt(e / (r > 0 ? r : 1));
}

typedef struct {
    const char *tk, *tv;
    int d, n_q, n_kv;
    size_t n_tok, stride;
    int splits;
    int simt; /* 1: force the CUDA-core packed kernel, 2: the generic tensor-core kernel */
} attn_case;

/* Runs one case on the packed kernel (tk/tv) or the f16 kernel (tk = NULL).
 * Returns the relative error. */
static double attn_one(const attn_case *c) {
    const int d = c->d, n_q = c->n_q, n_kv = c->n_kv;
    const size_t n_tok = c->n_tok, stride = c->stride ? c->stride : c->n_tok;
    const size_t nkv = (size_t)n_kv * stride;
    float *k = malloc(sizeof(float) * nkv * d), *v = malloc(sizeof(float) * nkv * d);
    float *q = malloc(sizeof(float) * (size_t)n_q * d), *out = malloc(sizeof(float) * (size_t)n_q * d);
    float *kd = malloc(sizeof(float) * (size_t)n_kv * n_tok * d), *vd = malloc(sizeof(float) * (size_t)n_kv * n_tok * d);
    double *ref = malloc(sizeof(double) * (size_t)n_q * d);
    rq_data_generate(RQ_DATA_OUTLIER, 11 + n_tok, k, nkv, d);
    rq_data_generate(RQ_DATA_ISOTROPIC, 12 + n_tok, v, nkv, d);
    rq_data_generate(RQ_DATA_OUTLIER, 13 + n_tok, q, (size_t)n_q, d);
    rq_rng rng;
    rq_rng_seed(&rng, 99 + n_tok);
    for (size_t i = 0; i < nkv; i++) { /* key norms ~ 5–20, value norms ~ 1–4 */
        float sk = (float)(5 + 15 * rq_rng_uniform(&rng)), sv = (float)(1 + 3 * rq_rng_uniform(&rng));
        for (int j = 0; j < d; j++) {
            k[i * d + j] *= sk;
            v[i * d + j] *= sv;
        }
    }
    for (int i = 0; i < n_q * d; i++) q[i] *= 3.0f;
    double err = INFINITY;
    rq_cuda_attn *a = NULL;
    CHECK_OK(rq_cuda_attn_init(&a, n_q, n_kv, d));
    if (!a) goto done;
    rq_cuda_attn_set_splits(a, c->splits);
    rq__cuda_attn_force_simt(a, c->simt);
    void *d_q = NULL, *d_o = NULL, *d_k = NULL, *d_v = NULL;
    CHECK_OK(rq_cuda_malloc(&d_q, sizeof(float) * (size_t)n_q * d));
    CHECK_OK(rq_cuda_malloc(&d_o, sizeof(float) * (size_t)n_q * d));
    CHECK_OK(rq_cuda_upload(d_q, q, sizeof(float) * (size_t)n_q * d));
    CHECK_OK(rq_cuda_memset(d_o, 0xFF, sizeof(float) * (size_t)n_q * d)); /* poison: NaN */
    rq_status st;
    if (c->tk) {
        rq_quantizer *qk = NULL, *qv = NULL;
        rq_cuda_quantizer *gk = NULL, *gv = NULL;
        rq_quant_config ck = rq_quant_config_default(), cv = ck;
        cv.seed = 4242;
        CHECK_OK(rq_quantizer_init(&qk, c->tk, d, &ck));
        CHECK_OK(rq_quantizer_init(&qv, c->tv, d, &cv));
        CHECK_OK(rq_cuda_quantizer_init(&gk, qk));
        CHECK_OK(rq_cuda_quantizer_init(&gv, qv));
        size_t bk = rq_quantizer_bytes_per_vector(qk), bv = rq_quantizer_bytes_per_vector(qv);
        uint8_t *kb = malloc(nkv * bk), *vb = malloc(nkv * bv);
        CHECK_OK(rq_quantizer_encode(qk, k, kb, nkv));
        CHECK_OK(rq_quantizer_encode(qv, v, vb, nkv));
        for (int h = 0; h < n_kv; h++) {
            CHECK_OK(rq_quantizer_decode(qk, kb + (size_t)h * stride * bk, kd + (size_t)h * n_tok * d, n_tok));
            CHECK_OK(rq_quantizer_decode(qv, vb + (size_t)h * stride * bv, vd + (size_t)h * n_tok * d, n_tok));
        }
        CHECK_OK(rq_cuda_malloc(&d_k, nkv * bk));
        CHECK_OK(rq_cuda_malloc(&d_v, nkv * bv));
        CHECK_OK(rq_cuda_upload(d_k, kb, nkv * bk));
        CHECK_OK(rq_cuda_upload(d_v, vb, nkv * bv));
        st = rq_cuda_attention(a, gk, gv, d_q, d_k, d_v, n_tok, stride, 0.0f, d_o, NULL);
        CHECK(st == RQ_OK, "attention: %s (%s)", rq_status_str(st), rq_cuda_error_str());
        free(kb);
        free(vb);
        rq_cuda_quantizer_free(gk);
        rq_cuda_quantizer_free(gv);
        rq_quantizer_free(qk);
        rq_quantizer_free(qv);
    } else {
        uint16_t *kh = malloc(sizeof(uint16_t) * nkv * d), *vh = malloc(sizeof(uint16_t) * nkv * d);
        for (size_t i = 0; i < nkv * d; i++) {
            kh[i] = rq_f32_to_f16(k[i]);
            vh[i] = rq_f32_to_f16(v[i]);
        }
        for (int h = 0; h < n_kv; h++)
            for (size_t i = 0; i < n_tok * d; i++) {
                kd[(size_t)h * n_tok * d + i] = rq_f16_to_f32(kh[(size_t)h * stride * d + i]);
                vd[(size_t)h * n_tok * d + i] = rq_f16_to_f32(vh[(size_t)h * stride * d + i]);
            }
        CHECK_OK(rq_cuda_malloc(&d_k, sizeof(uint16_t) * nkv * d));
        CHECK_OK(rq_cuda_malloc(&d_v, sizeof(uint16_t) * nkv * d));
        CHECK_OK(rq_cuda_upload(d_k, kh, sizeof(uint16_t) * nkv * d));
        CHECK_OK(rq_cuda_upload(d_v, vh, sizeof(uint16_t) * nkv * d));
        st = rq_cuda_attention_f16(a, d_q, d_k, d_v, n_tok, stride, 0.0f, d_o, NULL);
        CHECK(st == RQ_OK, "f16 attention: %s (%s)", rq_status_str(st), rq_cuda_error_str());
        free(kh);
        free(vh);
    }
    CHECK_OK(rq_cuda_synchronize());
    CHECK_OK(rq_cuda_download(out, d_o, sizeof(float) * (size_t)n_q * d));
    attention_ref(q, kd, vd, n_q, n_kv, d, n_tok, (float)(1.0 / sqrt((double)d)), ref);
    err = rel_err(out, ref, (size_t)n_q * d);
    rq_cuda_free(d_q);
    rq_cuda_free(d_o);
    rq_cuda_free(d_k);
    rq_cuda_free(d_v);
    rq_cuda_attn_free(a);
done:
    free(k);
    free(v);
    free(q);
    free(out);
    free(kd);
    free(vd);
    free(ref);
    return err;
}

static const attn_case ATTN_CASES[] = {
    /* tk, tv, d, n_q, n_kv, n_tok, stride, splits, simt */
    {"turbo3", "turbo3", 128, 8, 8, 1, 0, 0, 0},
    {"turbo3", "turbo3", 128, 32, 8, 1000, 0, 0, 0},
    {"turbo4", "turbo2", 128, 32, 8, 4097, 0, 0, 0},
    {"turbo3", "turbo3", 128, 32, 8, 5000, 5003, 7, 0},
    {"turbo2", "turbo4", 64, 9, 3, 777, 800, 0, 0},     /* SmolLM2 shape: 9 q heads, 3 KV heads */
    {"turbo3", "turbo1", 96, 12, 2, 300, 0, 1, 0},      /* Kronecker d, G = 6 */
    {"rotor3", "dense4", 128, 16, 1, 2049, 0, 0, 0},    /* G = 16: two query chunks */
    {"planar2", "iso3", 256, 4, 1, 1500, 1501, 0, 0},   /* gemma-like d = 256 */
    {"dense3", "rotor2", 80, 10, 5, 65, 0, 256, 0},
    {"iso4", "planar4", 192, 6, 3, 129, 0, 3, 0},
    {"turbo4", "turbo4", 112, 14, 2, 64, 0, 0, 0},
    {"turbo3", "turbo2", 40, 4, 2, 333, 0, 0, 0},       /* d % 16 = 8: CUDA-core kernel */
    {"turbo3", "turbo3", 128, 64, 8, 3001, 0, 0, 0},    /* G = 8: one full MMA column block */
};

static void attention_packed_cases(int simt) {
    double worst = 0;
    for (size_t i = 0; i < sizeof ATTN_CASES / sizeof ATTN_CASES[0]; i++) {
        attn_case c = ATTN_CASES[i];
        c.simt = simt;
        const double tol = (simt == 1 || c.d % 16) ? ATTN_REL_TOL : ATTN_MMA_REL_TOL;
        double e = attn_one(&c);
        CHECK(e <= tol, "%s/%s d=%d q=%d kv=%d tokens=%zu splits=%d: rel err %.3g (tol %.0e)", c.tk, c.tv, c.d,
              c.n_q, c.n_kv, c.n_tok, c.splits, e, tol);
        if (e > worst) worst = e;
    }
    TEST_NOTE("%zu cases, %s kernel: worst relative error vs the double reference on decoded blocks: %.3g (tol %.0e%s)",
              sizeof ATTN_CASES / sizeof ATTN_CASES[0],
              simt == 1 ? "CUDA-core" : simt == 2 ? "generic tensor-core" : "default (specialized tensor-core)", worst,
              simt == 1 ? ATTN_REL_TOL : ATTN_MMA_REL_TOL, simt == 1 ? "" : "; d % 16 != 0 cases use the CUDA-core kernel");
}

static void test_cuda_attention_packed(void) {
    if (skip_without_gpu()) return;
    attention_packed_cases(0);
}

static void test_cuda_attention_packed_simt(void) {
    if (skip_without_gpu()) return;
    attention_packed_cases(1);
}

static void test_cuda_attention_packed_generic_mma(void) {
    if (skip_without_gpu()) return;
    attention_packed_cases(2);
}

static void test_cuda_attention_f16(void) {
    if (skip_without_gpu()) return;
    double worst = 0;
    for (size_t i = 0; i < sizeof ATTN_CASES / sizeof ATTN_CASES[0]; i++) {
        attn_case c = ATTN_CASES[i];
        c.tk = c.tv = NULL;
        double e = attn_one(&c);
        CHECK(e <= ATTN_REL_TOL, "f16 d=%d q=%d kv=%d tokens=%zu splits=%d: rel err %.3g", c.d, c.n_q, c.n_kv,
              c.n_tok, c.splits, e);
        if (e > worst) worst = e;
    }
    TEST_NOTE("%zu cases, worst relative error of the f16 kernel: %.3g (tol %.0e)",
              sizeof ATTN_CASES / sizeof ATTN_CASES[0], worst, ATTN_REL_TOL);
}

static void test_cuda_attention_args(void) {
    if (skip_without_gpu()) return;
    rq_cuda_attn *a = NULL;
    CHECK(rq_cuda_attn_init(&a, 6, 4, 128) == RQ_ERR_SHAPE && !a, "6 q heads over 4 KV heads");
    CHECK(rq_cuda_attn_init(&a, 4, 4, 100) == RQ_ERR_DIM && !a, "d = 100 is not a multiple of 8");
    CHECK(rq_cuda_attn_init(&a, 4, 4, 512) == RQ_ERR_DIM && !a, "d = 512 > 256");
    CHECK_OK(rq_cuda_attn_init(&a, 4, 4, 128));
    rq_quantizer *qp = NULL, *qm = NULL;
    rq_cuda_quantizer *gp = NULL, *gm = NULL;
    CHECK_OK(rq_quantizer_init(&qp, "turbo3p", 128, NULL));
    CHECK_OK(rq_quantizer_init(&qm, "turbo3", 64, NULL));
    CHECK_OK(rq_cuda_quantizer_init(&gp, qp));
    CHECK_OK(rq_cuda_quantizer_init(&gm, qm));
    void *buf = NULL;
    CHECK_OK(rq_cuda_malloc(&buf, 1 << 16));
    CHECK(rq_cuda_attention(a, gp, gp, buf, buf, buf, 10, 0, 0, buf, NULL) == RQ_ERR_UNSUPPORTED,
          "QJL keys are CPU only");
    CHECK(rq_cuda_attention(a, gm, gm, buf, buf, buf, 10, 0, 0, buf, NULL) == RQ_ERR_SHAPE, "d mismatch");
    CHECK(rq_cuda_attention(a, gp, gp, buf, buf, buf, 0, 0, 0, buf, NULL) == RQ_ERR_INVALID_ARG, "no tokens");
    CHECK(rq_cuda_attention(a, gp, gp, buf, buf, buf, 10, 5, 0, buf, NULL) == RQ_ERR_SHAPE, "stride < tokens");
    rq_cuda_free(buf);
    rq_cuda_quantizer_free(gp);
    rq_cuda_quantizer_free(gm);
    rq_quantizer_free(qp);
    rq_quantizer_free(qm);
    rq_cuda_attn_free(a);
}

/* In a build without CUDA the API must say so, not crash. */
static void test_cuda_stub_or_device(void) {
    char name[160];
    rq_status st = rq_cuda_device_name(name, sizeof name);
    if (!rq_cuda_available()) {
        CHECK(st == RQ_ERR_UNSUPPORTED, "device_name without a device: %s", rq_status_str(st));
        void *p = (void *)1;
        CHECK(rq_cuda_malloc(&p, 16) == RQ_ERR_UNSUPPORTED && p == NULL, "malloc without a device");
        rq_quantizer *q = NULL;
        rq_cuda_quantizer *g = (rq_cuda_quantizer *)1;
        CHECK_OK(rq_quantizer_init(&q, "turbo3", 128, NULL));
        CHECK(rq_cuda_quantizer_init(&g, q) == RQ_ERR_UNSUPPORTED && g == NULL, "quantizer without a device");
        rq_quantizer_free(q);
        TEST_NOTE("no CUDA device: %s", rq_cuda_error_str());
    } else {
        CHECK_OK(st);
        TEST_NOTE("CUDA device: %s", name);
    }
}

/* 5-bit codes: the GPU kernels stop at 4 bits (RQ_CUDA_MAX_BITS); the
 * quantizer is refused cleanly, in every build, before any device state. */
static void test_cuda_5bit_unsupported(void) {
    int n = 0;
    for (size_t f = 0; f < sizeof FAMILIES / sizeof FAMILIES[0]; f++) {
        char name[32];
        snprintf(name, sizeof name, "%s5", FAMILIES[f]);
        for (int d = 64; d <= 256; d *= 2) {
            rq_quantizer *q = NULL;
            rq_cuda_quantizer *g = (rq_cuda_quantizer *)1;
            CHECK_OK(rq_quantizer_init(&q, name, d, NULL));
            if (!q) continue;
            rq_status st = rq_cuda_quantizer_init(&g, q);
            CHECK(st == RQ_ERR_UNSUPPORTED && g == NULL, "%s d=%d: %s", name, d, rq_status_str(st));
            rq_quantizer_free(q);
            n++;
        }
    }
    TEST_NOTE("%d 5-bit quantizers refused by rq_cuda_quantizer_init (%s)", n,
              rq_cuda_available() ? "GPU present" : "no GPU");
}


/* The n8 types (1-byte norm head): no GPU kernel reads them; refused
 * cleanly in every build (with a GPU, by a message naming them). */
static void test_cuda_n8_unsupported(void) {
    static const char *const N8[] = {"turbo2n8", "turbo3n8", "tcq3n8"};
    for (size_t i = 0; i < sizeof N8 / sizeof N8[0]; i++) {
        rq_quantizer *q = NULL;
        rq_cuda_quantizer *g = (rq_cuda_quantizer *)1;
        CHECK_OK(rq_quantizer_init(&q, N8[i], 128, NULL));
        if (!q) continue;
        rq_status st = rq_cuda_quantizer_init(&g, q);
        CHECK(st == RQ_ERR_UNSUPPORTED && g == NULL, "%s: %s", N8[i], rq_status_str(st));
        if (rq_cuda_available()) CHECK(strstr(rq_last_error(), "n8") != NULL, "%s: message '%s'", N8[i], rq_last_error());
        rq_quantizer_free(q);
    }
}

const rq_test tests_cuda[] = {
    {"cuda_stub_or_device", test_cuda_stub_or_device},
    {"cuda_n8_unsupported", test_cuda_n8_unsupported},
    {"cuda_5bit_unsupported", test_cuda_5bit_unsupported},
    {"cuda_encode_parity_head_dims", test_cuda_encode_parity_head_dims},
    {"cuda_encode_parity_odd_dims", test_cuda_encode_parity_odd_dims},
    {"cuda_encode_parity_options", test_cuda_encode_parity_options},
    {"cuda_encode_parity_large", test_cuda_encode_parity_large},
    {"cuda_encode_errors", test_cuda_encode_errors},
    {"cuda_attention_packed", test_cuda_attention_packed},
    {"cuda_attention_packed_simt", test_cuda_attention_packed_simt},
    {"cuda_attention_packed_generic_mma", test_cuda_attention_packed_generic_mma},
    {"cuda_attention_f16", test_cuda_attention_f16},
    {"cuda_attention_args", test_cuda_attention_args},
    {NULL, NULL},
};
