/*
 * tcq_avx512.c — AVX-512 TCQ kernels (src/tcq.h): the decode_tcq_n slot of
 * fused attention (same floats as rq__decode_tcq_n_ref: one multiply per
 * value, scale · lut[window]) and the tcq_encode slot (same bytes as
 * rq__tcq_encode_ref).
 *
 * Decode, two ways: with AVX-512 VBMI the LUT as four byte planes read by
 * byte permutes, 64 values at a time (below; the slot's choice where the CPU
 * has VBMI); without, sixteen values at a time: their windows from one
 * 16-byte load (vpshufb, vpsrlvd), the LUT read by a gather (on the
 * Sapphire Rapids VM faster than the LUT held in 16 registers and read by
 * 8 vpermi2ps + a blend tree per 16 values, which is port-5 bound; the
 * byte planes need a quarter of the permutes; bench/tcq_bench times both).
 */
#include "attn_x86.h"
#include "tcq.h"

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Windows of 16 values t0 .. t0+15 (t0 % 16 == 0): their bits lie in the
 * 16 bytes at p = stream + t0·k/8 (value i: bits [i·k, i·k + 8), i·k ≤ 75).
 * The bytes broadcast to the four 128-bit lanes; vpshufb puts bytes
 * ⌊i·k/8⌋ and the next into dword i, vpsrlvd shifts by i·k mod 8. */
typedef struct {
    __m512i shuf, shift;
} window_ctl;

static void window_ctl_init(window_ctl *c, int k) {
    uint8_t sh[64];
    int sv[16];
    for (int i = 0; i < 16; i++) {
        int b = i * k / 8;
        sh[4 * i] = (uint8_t)b, sh[4 * i + 1] = (uint8_t)(b + 1), sh[4 * i + 2] = sh[4 * i + 3] = 0x80;
        sv[i] = i * k % 8;
    }
    c->shuf = _mm512_loadu_si512(sh);
    c->shift = _mm512_loadu_si512(sv);
}

static inline __m512i windows16(const window_ctl *c, __m128i bytes) {
    __m512i b = _mm512_broadcast_i32x4(bytes);
    return _mm512_and_si512(_mm512_srlv_epi32(_mm512_shuffle_epi8(b, c->shuf), c->shift), _mm512_set1_epi32(0xff));
}

/* One block's T values. Groups whose 16 bytes lie in the stream load them;
 * the rest (the last one or two: fewer than 16 bytes left, and the last
 * group's windows wrap) take the bytes left by a masked load with the
 * stream's first byte after them (a window wraps by at most 8 − k ≤ 6
 * bits). No byte past the stream is read. */
static inline void decode_one(float *out, const uint8_t *s, int T, int k, const float *lut, const window_ctl *c,
                              float scale) {
    const __m512 vs = _mm512_set1_ps(scale);
    const int nb = T * k / 8;
    for (int t = 0; t < T; t += 16) {
        const int off = t * k / 8, left = nb - off;
        __m128i bytes;
        if (left >= 16 && t + 16 < T) {
            bytes = _mm_loadu_si128((const __m128i *)(const void *)(s + off));
        } else {
            bytes = _mm_maskz_loadu_epi8(left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1), s + off);
            if (left < 16) bytes = _mm_mask_set1_epi8(bytes, (__mmask16)(1u << left), (char)s[0]);
        }
        __m512 v = _mm512_mul_ps(vs, _mm512_i32gather_ps(windows16(c, bytes), lut, 4));
        if (t + 16 <= T) _mm512_storeu_ps(out + t, v);
        else _mm512_mask_storeu_ps(out + t, (__mmask16)0xff, v); /* T % 16 == 8 */
    }
}

void rq__decode_tcq_n_avx512_gather(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits,
                                    size_t off_codes, const float *ntab, const float *lut) {
    window_ctl c;
    window_ctl_init(&c, bits);
    for (int t = 0; t < n; t++, blk += stride, out += d)
        decode_one(out, blk + off_codes, d, bits, lut, &c, head_s(blk, ntab));
}

/* ---- decode without a gather: AVX-512 VBMI byte permutes ----------------
 * The LUT as four byte planes (plane j: byte j of each of the 256 floats,
 * four registers of 64 entries each). 64 values at a time:
 *   windows  vpermb puts the 4 stream bytes of each group of 4 values into
 *            a dword, vpmultishiftqb takes each value's 8-bit window at its
 *            bit offset in the qword (k ≤ 5: offset ≤ 7 + 3k + 8 ≤ 32 bits);
 *   lookup   per plane, two vpermt2b (entries 0–127, 128–255; index bits
 *            0–6) and a byte blend on index bit 7: 64 bytes of the plane;
 *   floats   the planes interleaved (vpunpck{l,h}bw, then {l,h}wd) give four
 *            vectors of 16 floats, scale · lut[window] as the reference.
 * The unpacks work per 128-bit lane: output vector z, lane L, dword i comes
 * from window position p = 16L + 4z + i, so the windows are placed with
 * position p holding value 16z + 4L + i (a fixed order, set in the vpermb
 * and vpmultishiftqb controls) and the floats come out in value order.
 * All of it on port 5: ~26 cycles per 64 values (a vpermt2b takes two),
 * against ~27 for the 4 gathers of the other way (load ports); the two
 * interleaved (some chunks by gathers) measured slower than either alone,
 * the gathers taking port 5 too. bench/tcq_bench times both ways. */
#define VBMI __attribute__((target("avx512f,avx512bw,avx512vbmi")))

typedef struct {
    __m512i tab[4][4];  /* tab[j][q]: byte j of lut[64q .. 64q + 63]          */
    __m512i place;      /* vpermb: chunk byte of each group's 4 bytes          */
    __m512i shift;      /* vpmultishiftqb: each window's bit offset in its qword */
    uint64_t load_mask; /* the 8k + 1 bytes a full chunk's windows touch        */
} vbmi_ctl;

VBMI static void vbmi_ctl_init(vbmi_ctl *c, int k, const float *lut) {
    uint8_t place[64], shift[64], tr[64];
    for (int g = 0; g < 16; g++) {
        const int v0 = 16 * (g % 4) + 4 * (g / 4), bit = v0 * k; /* the group's first value, its first bit */
        for (int i = 0; i < 4; i++)
            place[4 * g + i] = (uint8_t)(bit / 8 + i), shift[4 * g + i] = (uint8_t)(32 * (g % 2) + bit % 8 + i * k);
    }
    c->place = _mm512_loadu_si512(place);
    c->shift = _mm512_loadu_si512(shift);
    c->load_mask = (1ull << (8 * k + 1)) - 1;
    /* 16 floats → byte j of float i at lane j, byte i: a vpermb; four such
     * vectors (64 entries) are a 4×4 transpose of 128-bit lanes from the
     * four planes' registers */
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 16; i++) tr[16 * j + i] = (uint8_t)(4 * i + j);
    const __m512i vtr = _mm512_loadu_si512(tr);
    for (int q = 0; q < 4; q++) {
        __m512i r[4];
        for (int m = 0; m < 4; m++) r[m] = _mm512_permutexvar_epi8(vtr, _mm512_loadu_si512(lut + 64 * q + 16 * m));
        __m512i x0 = _mm512_shuffle_i64x2(r[0], r[1], _MM_SHUFFLE(1, 0, 1, 0));
        __m512i x1 = _mm512_shuffle_i64x2(r[0], r[1], _MM_SHUFFLE(3, 2, 3, 2));
        __m512i x2 = _mm512_shuffle_i64x2(r[2], r[3], _MM_SHUFFLE(1, 0, 1, 0));
        __m512i x3 = _mm512_shuffle_i64x2(r[2], r[3], _MM_SHUFFLE(3, 2, 3, 2));
        c->tab[0][q] = _mm512_shuffle_i64x2(x0, x2, _MM_SHUFFLE(2, 0, 2, 0));
        c->tab[1][q] = _mm512_shuffle_i64x2(x0, x2, _MM_SHUFFLE(3, 1, 3, 1));
        c->tab[2][q] = _mm512_shuffle_i64x2(x1, x3, _MM_SHUFFLE(2, 0, 2, 0));
        c->tab[3][q] = _mm512_shuffle_i64x2(x1, x3, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

/* plane j's bytes of lut[w] for 64 windows (hi: their bit 7) */
VBMI static inline __m512i vbmi_plane(const vbmi_ctl *c, int j, __m512i w, __mmask64 hi) {
    return _mm512_mask_blend_epi8(hi, _mm512_permutex2var_epi8(c->tab[j][0], w, c->tab[j][1]),
                                  _mm512_permutex2var_epi8(c->tab[j][2], w, c->tab[j][3]));
}

/* One block's T values, 64 a chunk. A chunk's windows touch its 8k bytes
 * and one more; the last chunk's windows wrap: the bytes left, then the
 * stream's first byte (a window wraps by at most 8 − k ≤ 6 bits). Masked
 * loads: no byte past the stream is read. */
VBMI static inline void vbmi_decode_one(float *out, const uint8_t *s, int T, int k, const vbmi_ctl *c, float scale) {
    const __m512 vs = _mm512_set1_ps(scale);
    const int nb = T * k / 8;
    for (int t = 0; t < T; t += 64) {
        const int off = t * k / 8, left = T - t;
        __m512i raw;
        if (left > 64) raw = _mm512_maskz_loadu_epi8(c->load_mask, s + off);
        else {
            const int avail = nb - off; /* ≤ 8k ≤ 40 */
            raw = _mm512_mask_set1_epi8(_mm512_maskz_loadu_epi8((1ull << avail) - 1, s + off), 1ull << avail,
                                        (char)s[0]);
        }
        const __m512i w = _mm512_multishift_epi64_epi8(c->shift, _mm512_permutexvar_epi8(c->place, raw));
        const __mmask64 hi = _mm512_movepi8_mask(w);
        const __m512i p0 = vbmi_plane(c, 0, w, hi), p1 = vbmi_plane(c, 1, w, hi);
        const __m512i p2 = vbmi_plane(c, 2, w, hi), p3 = vbmi_plane(c, 3, w, hi);
        const __m512i a = _mm512_unpacklo_epi8(p0, p1), b = _mm512_unpackhi_epi8(p0, p1);
        const __m512i e = _mm512_unpacklo_epi8(p2, p3), f = _mm512_unpackhi_epi8(p2, p3);
        const __m512 v[4] = {
            _mm512_castsi512_ps(_mm512_unpacklo_epi16(a, e)), _mm512_castsi512_ps(_mm512_unpackhi_epi16(a, e)),
            _mm512_castsi512_ps(_mm512_unpacklo_epi16(b, f)), _mm512_castsi512_ps(_mm512_unpackhi_epi16(b, f))};
        if (left >= 64)
            for (int z = 0; z < 4; z++) _mm512_storeu_ps(out + t + 16 * z, _mm512_mul_ps(vs, v[z]));
        else
            for (int z = 0; 16 * z < left; z++) /* left % 8 == 0 */
                _mm512_mask_storeu_ps(out + t + 16 * z, left - 16 * z >= 16 ? (__mmask16)0xffff : (__mmask16)0xff,
                                      _mm512_mul_ps(vs, v[z]));
    }
}

VBMI void rq__decode_tcq_n_avx512_vbmi(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits,
                                       size_t off_codes, const float *ntab, const float *lut) {
    vbmi_ctl c;
    vbmi_ctl_init(&c, bits, lut);
    for (int t = 0; t < n; t++, blk += stride, out += d)
        vbmi_decode_one(out, blk + off_codes, d, bits, &c, head_s(blk, ntab));
}

/* AVX-512 VBMI (Ice Lake and later), as attn_avx512.c asks */
bool rq__tcq_has_vbmi(void) { return __builtin_cpu_supports("avx512vbmi"); }

/* VBMI from 512 values a call: below, building the byte planes (~50 port-5
 * ops) costs more than it saves (bench/tcq_bench --blocks 1, 2, 4: at d = 64
 * gathers win up to 4 blocks, at d = 128 up to 2) */
void rq__decode_tcq_n_avx512(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes, const float *ntab,
                             const float *lut) {
    if ((size_t)n * (size_t)d >= 512 && rq__tcq_has_vbmi())
        rq__decode_tcq_n_avx512_vbmi(out, blk, stride, n, d, bits, off_codes, ntab, lut);
    else rq__decode_tcq_n_avx512_gather(out, blk, stride, n, d, bits, off_codes, ntab, lut);
}

/* ---- int8 key tiles (decode_tcq8_n; rq_cache_config.int8_scores) --------
 * The windows of 64 values in value order (vpermb + vpmultishiftqb as the
 * float decode above, group g of 4 values at dword g), then ONE lookup in
 * the 256-byte table tab8: two vpermt2b (entries 0–127, 128–255) and a byte
 * blend on window bit 7 give the 64 biased bytes; whole groups of 4 tokens
 * go to the tile (attn_kernels.h, rq__i8_at) by a 4×4 transpose of 128-bit
 * blocks (as attn_avx512.c's decode_mse8_n), the tail's pieces one by one. */
typedef struct {
    __m512i tab[4];     /* tab8[64q .. 64q + 63] */
    __m512i place, shift;
    uint64_t load_mask; /* the 8k + 1 bytes a full chunk's windows touch */
} tcq8_ctl;

VBMI static void tcq8_ctl_init(tcq8_ctl *c, int k, const uint8_t *tab8) {
    uint8_t place[64], shift[64];
    for (int g = 0; g < 16; g++) {
        const int bit = 4 * g * k; /* the group's first bit */
        for (int i = 0; i < 4; i++)
            place[4 * g + i] = (uint8_t)(bit / 8 + i), shift[4 * g + i] = (uint8_t)(32 * (g % 2) + bit % 8 + i * k);
    }
    c->place = _mm512_loadu_si512(place);
    c->shift = _mm512_loadu_si512(shift);
    c->load_mask = (1ull << (8 * k + 1)) - 1;
    for (int q = 0; q < 4; q++) c->tab[q] = _mm512_loadu_si512(tab8 + 64 * q);
}

/* tab8[window] of values t .. t+63 of a stream of T values (t % 64 == 0);
 * positions past T are 128. Byte reads as vbmi_decode_one's: no byte past
 * the stream. */
VBMI static inline __m512i tcq8_chunk(const tcq8_ctl *c, const uint8_t *s, int T, int k, int t) {
    const int off = t * k / 8, left = T - t;
    __m512i raw;
    if (left > 64) raw = _mm512_maskz_loadu_epi8(c->load_mask, s + off);
    else {
        const int avail = T * k / 8 - off; /* ≤ 8k ≤ 40 */
        raw = _mm512_mask_set1_epi8(_mm512_maskz_loadu_epi8((1ull << avail) - 1, s + off), 1ull << avail, (char)s[0]);
    }
    const __m512i w = _mm512_multishift_epi64_epi8(c->shift, _mm512_permutexvar_epi8(c->place, raw));
    __m512i x = _mm512_mask_blend_epi8(_mm512_movepi8_mask(w), _mm512_permutex2var_epi8(c->tab[0], w, c->tab[1]),
                                       _mm512_permutex2var_epi8(c->tab[2], w, c->tab[3]));
    if (left < 64) x = _mm512_mask_blend_epi8(((__mmask64)1 << left) - 1, _mm512_set1_epi8((char)128), x);
    return x;
}

/* bytes 16p .. 16p+15 of x to dst + 64p (p < np) */
static inline void tcq8_pieces(uint8_t *dst, __m512i x, int np) {
    _mm_storeu_si128((__m128i *)(void *)dst, _mm512_castsi512_si128(x));
    if (np > 1) _mm_storeu_si128((__m128i *)(void *)(dst + 64), _mm512_extracti32x4_epi32(x, 1));
    if (np > 2) _mm_storeu_si128((__m128i *)(void *)(dst + 128), _mm512_extracti32x4_epi32(x, 2));
    if (np > 3) _mm_storeu_si128((__m128i *)(void *)(dst + 192), _mm512_extracti32x4_epi32(x, 3));
}

VBMI static void decode_tcq8_n_vbmi(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n, int d,
                                    int bits, size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac) {
    tcq8_ctl c;
    tcq8_ctl_init(&c, bits, tab8);
    const int d64 = d & ~63, rem = d - d64, dp = (int)rq__i8_dp(d), np = (rem + 15) / 16;
    int t = t0;
    for (; t % 4 == 0 && t + 4 <= t0 + n; t += 4, blk += 4 * stride) { /* whole groups of 4 tokens */
        const uint8_t *s[4];
        for (int u = 0; u < 4; u++) ks[t + u] = head_s(blk + u * stride, ntab) * cfac, s[u] = blk + u * stride + off_codes;
        uint8_t *dst = tile + (size_t)(t / 4) * 4 * (size_t)dp;
        for (int j = 0; j < d64; j += 64, dst += 256) {
            const __m512i x0 = tcq8_chunk(&c, s[0], d, bits, j), x1 = tcq8_chunk(&c, s[1], d, bits, j);
            const __m512i x2 = tcq8_chunk(&c, s[2], d, bits, j), x3 = tcq8_chunk(&c, s[3], d, bits, j);
            const __m512i a = _mm512_shuffle_i64x2(x0, x1, 0x44), b = _mm512_shuffle_i64x2(x0, x1, 0xee);
            const __m512i e = _mm512_shuffle_i64x2(x2, x3, 0x44), f = _mm512_shuffle_i64x2(x2, x3, 0xee);
            _mm512_storeu_si512(dst, _mm512_shuffle_i64x2(a, e, 0x88));
            _mm512_storeu_si512(dst + 64, _mm512_shuffle_i64x2(a, e, 0xdd));
            _mm512_storeu_si512(dst + 128, _mm512_shuffle_i64x2(b, f, 0x88));
            _mm512_storeu_si512(dst + 192, _mm512_shuffle_i64x2(b, f, 0xdd));
        }
        for (int u = 0; rem && u < 4; u++) tcq8_pieces(dst + 16 * u, tcq8_chunk(&c, s[u], d, bits, d64), np);
    }
    for (; t < t0 + n; t++, blk += stride) { /* single tokens */
        ks[t] = head_s(blk, ntab) * cfac;
        uint8_t *dst = tile + (size_t)(t / 4) * 4 * (size_t)dp + (size_t)(t % 4) * 16;
        for (int j = 0; j < d; j += 64, dst += 256)
            tcq8_pieces(dst, tcq8_chunk(&c, blk + off_codes, d, bits, j), d - j >= 64 ? 4 : np);
    }
}

void rq__decode_tcq8_n_avx512(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n, int d,
                              int bits, size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac) {
    if (bits >= RQ_TCQ_MIN_BITS && bits <= RQ_TCQ_MAX_BITS && rq__tcq_has_vbmi())
        decode_tcq8_n_vbmi(tile, ks, t0, blk, stride, n, d, bits, off_codes, ntab, tab8, cfac);
    else rq__decode_tcq8_n_ref(tile, ks, t0, blk, stride, n, d, bits, off_codes, ntab, tab8, cfac);
}

/* ---- encoder: the Viterbi search of rq__tcq_encode_ref, 16 states a lane ----
 * The costs live transposed: position p = j·P + lo holds state
 * s = (lo << k) | j, so the predecessors of every state with low bits lo
 * (positions j·P + lo, j < 2^k) are one column: the smallest predecessor
 * cost is a vertical min over 2^k vectors (strict <, increasing j: the
 * reference's first j on ties), and the new cost of position p is
 * best[s mod P] (a permute of best) + e·e, e = y_t − lut[s]: the reference's
 * float operations in its order, so the same bits. The best end state is
 * the smallest state index among those of least cost, as the reference's
 * first-minimum scan. k = 5 (P = 8): a vector holds two j, its halves
 * are compared at the end (smaller cost, then smaller j). */
#define NV (RQ_TCQ_STATES / 16)

typedef struct {
    int k, P, J;
    __m512 lut[NV];   /* lut[s(p)] by position           */
    __m512i bidx[NV]; /* s(p) mod P: where best[] is read */
    __m512i st[NV];   /* s(p)                            */
} trellis;

static void trellis_init(trellis *tr, int k, const float *lut) {
    tr->k = k, tr->P = 1 << (RQ_TCQ_L - k), tr->J = 1 << k;
    for (int v = 0; v < NV; v++) {
        float l[16];
        int b[16], s[16];
        for (int i = 0; i < 16; i++) {
            int p = 16 * v + i, j = p / tr->P, lo = p % tr->P;
            s[i] = (lo << k) | j, b[i] = s[i] & (tr->P - 1), l[i] = lut[s[i]];
        }
        tr->lut[v] = _mm512_loadu_ps(l), tr->bidx[v] = _mm512_loadu_si512(b), tr->st[v] = _mm512_loadu_si512(s);
    }
}

/* best[] (P/16 vectors) gathered to position vector v */
static inline __m512 best_at(const trellis *tr, const __m512 *best, int v) {
    switch (tr->P) {
    case 8: /* best[0] lanes 0–7 */
    case 16: return _mm512_permutexvar_ps(tr->bidx[v], best[0]);
    case 32: return _mm512_permutex2var_ps(best[0], tr->bidx[v], best[1]);
    default: { /* 64 */
        __m512 lo = _mm512_permutex2var_ps(best[0], tr->bidx[v], best[1]);
        __m512 hi = _mm512_permutex2var_ps(best[2], tr->bidx[v], best[3]);
        return _mm512_mask_blend_ps(_mm512_test_epi32_mask(tr->bidx[v], _mm512_set1_epi32(32)), lo, hi);
    }
    }
}

/* one pass (tb < 0: free); back: T × 64 predecessor choices, or NULL */
static int viterbi_avx512(const trellis *tr, const float *y, int T, int tb, uint8_t (*back)[64]) {
    const int k = tr->k, P = tr->P, J = tr->J, PV = P / 16;
    const __m512 inf = _mm512_set1_ps(INFINITY);
    __m512 C[NV], best[4];
    __m512 y0 = _mm512_set1_ps(y[0]);
    for (int v = 0; v < NV; v++) {
        __m512 e = _mm512_sub_ps(y0, tr->lut[v]);
        C[v] = _mm512_mul_ps(e, e);
        if (tb >= 0) /* start states: s mod P == tb */
            C[v] = _mm512_mask_mov_ps(inf, _mm512_cmpeq_epi32_mask(tr->bidx[v], _mm512_set1_epi32(tb)), C[v]);
    }
    for (int t = 1; t < T; t++) {
        if (P == 8) { /* k = 5: vector v holds j = 2v (lanes 0–7) and 2v + 1 (lanes 8–15) */
            const __m512i j0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
            __m512 b = C[0];
            __m512i bj = j0;
            for (int v = 1; v < NV; v++) { /* each parity's first minimum */
                __mmask16 m = _mm512_cmp_ps_mask(C[v], b, _CMP_LT_OQ);
                b = _mm512_mask_mov_ps(b, m, C[v]);
                bj = _mm512_mask_mov_epi32(bj, m, _mm512_add_epi32(j0, _mm512_set1_epi32(2 * v)));
            }
            /* the odd j's against the even: the smaller cost, on ties the smaller j */
            __m512 bo = _mm512_shuffle_f32x4(b, b, 0xee);
            __m512i jo = _mm512_shuffle_i32x4(bj, bj, 0xee);
            __mmask16 m = _mm512_cmp_ps_mask(bo, b, _CMP_LT_OQ) |
                          (_mm512_cmp_ps_mask(bo, b, _CMP_EQ_OQ) & _mm512_cmplt_epi32_mask(jo, bj));
            best[0] = _mm512_mask_mov_ps(b, m, bo);
            bj = _mm512_mask_mov_epi32(bj, m, jo);
            if (back) _mm_storel_epi64((__m128i *)(void *)back[t], _mm512_cvtepi32_epi8(bj));
        }
        for (int u = 0; u < PV; u++) {
            __m512 b = C[u];
            __m512i bj = _mm512_setzero_si512();
            for (int j = 1; j < J; j++) {
                __m512 c = C[j * PV + u];
                __mmask16 m = _mm512_cmp_ps_mask(c, b, _CMP_LT_OQ);
                b = _mm512_mask_mov_ps(b, m, c);
                bj = _mm512_mask_mov_epi32(bj, m, _mm512_set1_epi32(j));
            }
            best[u] = b;
            if (back) _mm_storeu_si128((__m128i *)(void *)(back[t] + 16 * u), _mm512_cvtepi32_epi8(bj));
        }
        const __m512 yt = _mm512_set1_ps(y[t]);
        for (int v = 0; v < NV; v++) {
            __m512 e = _mm512_sub_ps(yt, tr->lut[v]);
            C[v] = _mm512_add_ps(best_at(tr, best, v), _mm512_mul_ps(e, e));
        }
    }
    /* the least cost among the allowed end states, then its smallest state */
    __mmask16 ok[NV];
    __m512 m = inf;
    for (int v = 0; v < NV; v++) {
        ok[v] = tb < 0 ? 0xffff : _mm512_cmpeq_epi32_mask(_mm512_srli_epi32(tr->st[v], (unsigned)k), _mm512_set1_epi32(tb));
        m = _mm512_mask_min_ps(m, ok[v], m, C[v]);
    }
    const float mc = _mm512_reduce_min_ps(m);
    const __m512 vm = _mm512_set1_ps(mc);
    int bs = RQ_TCQ_STATES;
    for (int v = 0; v < NV; v++) {
        __mmask16 eq = ok[v] & _mm512_cmp_ps_mask(C[v], vm, _CMP_EQ_OQ);
        if (eq) {
            int s = _mm512_mask_reduce_min_epi32(eq, tr->st[v]);
            bs = s < bs ? s : bs;
        }
    }
    if (bs == RQ_TCQ_STATES) /* every allowed cost +∞ (never for finite y): the reference's first allowed state */
        for (int v = 0; v < NV; v++)
            if (ok[v]) {
                int s = _mm512_mask_reduce_min_epi32(ok[v], tr->st[v]);
                bs = s < bs ? s : bs;
            }
    return bs;
}

void rq__tcq_encode_avx512(const float *y, int T, int k, const float *lut, uint8_t *out) {
    if (k < 2 || k > 5) {
        rq__tcq_encode_ref(y, T, k, lut, out);
        return;
    }
    trellis tr;
    trellis_init(&tr, k, lut);
    uint8_t back[RQ_TCQ_MAX_T][64];
    int tb = viterbi_avx512(&tr, y, T, -1, NULL) >> k;
    rq__tcq_traceback(viterbi_avx512(&tr, y, T, tb, back), T, k, (const uint8_t (*)[64])back, out);
}
