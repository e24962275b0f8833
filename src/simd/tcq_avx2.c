/*
 * tcq_avx2.c — AVX2 TCQ kernel (src/tcq.h): the decode_tcq_n slot of fused
 * attention, the same floats as rq__decode_tcq_n_ref (one multiply per
 * value, scale · lut[window]), and the tcq_encode slot (the Viterbi search
 * of rq__tcq_encode_ref, 8 states a lane, the same bytes; below).
 *
 * Eight values at a time: their windows (bits [i·k, i·k + 8) of the stream
 * from value t0, i·k ≤ 35, so within 6 bytes) from one 8-byte load
 * broadcast to both 128-bit lanes: vpshufb puts bytes ⌊i·k/8⌋ and the next
 * into dword i, vpsrlvd shifts by i·k mod 8; the LUT read by an 8-lane
 * gather.
 */
#include "attn_x86.h"
#include "tcq.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* One block's T values (T % 8 == 0). A group's windows lie in the 6 bytes
 * from its first (i·k + 8 ≤ 43 bits), read as 8: groups with 8 bytes left
 * in the stream load them; the last group (or two) takes the bytes left
 * (the stream's last 8 bytes shifted down, or byte by byte in streams
 * shorter than 8) and the stream's first byte after them: its windows wrap
 * by at most 8 − k ≤ 6 bits. No byte past the stream is read. */
static inline void decode_one(float *out, const uint8_t *s, int T, int k, const float *lut, __m256i shuf,
                              __m256i shift, float scale) {
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256i lo8 = _mm256_set1_epi32(0xff);
    const int nb = T * k / 8;
    for (int t = 0; t < T; t += 8) {
        const int off = t * k / 8;
        uint64_t x;
        if (off + 8 <= nb) memcpy(&x, s + off, 8);
        else {
            const int left = nb - off; /* 1 .. 7 */
            if (nb >= 8) memcpy(&x, s + nb - 8, 8), x >>= 8 * (8 - left);
            else
                for (int i = x = 0; i < left; i++) x |= (uint64_t)s[off + i] << (8 * i);
            x |= (uint64_t)s[0] << (8 * left);
        }
        const __m256i b = _mm256_broadcastsi128_si256(_mm_cvtsi64_si128((long long)x));
        const __m256i w = _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi8(b, shuf), shift), lo8);
        _mm256_storeu_ps(out + t, _mm256_mul_ps(vs, _mm256_i32gather_ps(lut, w, 4)));
    }
}

void rq__decode_tcq_n_avx2(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes, const float *ntab,
                           const float *lut) {
    uint8_t sh[32];
    int sv[8];
    for (int i = 0; i < 8; i++) { /* dword i: bytes b, b + 1 (within its lane: vpshufb indexes its own lane) */
        const int b = i * bits / 8;
        sh[4 * i] = (uint8_t)b, sh[4 * i + 1] = (uint8_t)(b + 1), sh[4 * i + 2] = sh[4 * i + 3] = 0x80;
        sv[i] = i * bits % 8;
    }
    const __m256i shuf = _mm256_loadu_si256((const __m256i *)(const void *)sh);
    const __m256i shift = _mm256_loadu_si256((const __m256i *)(const void *)sv);
    for (int t = 0; t < n; t++, blk += stride, out += d)
        decode_one(out, blk + off_codes, d, bits, lut, shuf, shift,
                   head_s(blk, ntab));
}

/* ---- encoder: the Viterbi search of rq__tcq_encode_ref, 8 states a lane ----
 * As tcq_avx512.c: the costs live transposed, position p = j·P + lo holding
 * state s = (lo << k) | j (P = 2^(L−k) ≥ 8, so a row j is P/8 whole
 * vectors), and the smallest predecessor cost of the states with low bits lo
 * is a vertical min over the J = 2^k rows (strict <, increasing j: the
 * reference's first j on ties). The new cost of position p is
 * best[s mod P] + e·e, e = y_t − lut[s], the reference's float operations in
 * its order. s mod P takes few patterns: k = 2, 3: best[8(i mod 2^(4−k))…]
 * — one 8-lane gather from best[] per distinct pattern (8 of them), shared
 * by the vectors that repeat it; k = 4, 5: s mod P = j mod P, a broadcast.
 * The end-state scan is the reference's, over the costs stored back. */
#define NV2 (RQ_TCQ_STATES / 8)

typedef struct {
    int k, P, J, n_pat;
    __m256 lut[NV2];     /* lut[s(p)] by position                                 */
    int pat[NV2];        /* vector v's best[] pattern (k ≤ 3) or best index (k ≥ 4) */
    __m256i gidx[NV2];   /* k ≤ 3: pattern q's 8 best[] indices                   */
    int start_mod[NV2 * 8]; /* s(p) mod P by position (the start-state mask)       */
} trellis2;

static void trellis2_init(trellis2 *tr, int k, const float *lut) {
    tr->k = k, tr->P = 1 << (RQ_TCQ_L - k), tr->J = 1 << k, tr->n_pat = 0;
    for (int v = 0; v < NV2; v++) {
        float l[8];
        int b[8];
        for (int i = 0; i < 8; i++) {
            const int p = 8 * v + i, j = p / tr->P, lo = p % tr->P, st = (lo << k) | j;
            l[i] = lut[st], b[i] = st & (tr->P - 1), tr->start_mod[p] = b[i];
        }
        tr->lut[v] = _mm256_loadu_ps(l);
        if (k >= 4) { /* b[i] = j mod P, the same in every lane */
            tr->pat[v] = b[0];
            continue;
        }
        int q = 0;
        while (q < tr->n_pat && memcmp(&tr->gidx[q], b, sizeof b)) q++;
        if (q == tr->n_pat) tr->gidx[tr->n_pat++] = _mm256_loadu_si256((const __m256i *)(const void *)b);
        tr->pat[v] = q;
    }
}

/* one pass (tb < 0: free); back: T × 64 predecessor choices, or NULL;
 * returns the best end state as the reference's scan */
static int viterbi_avx2(const trellis2 *tr, const float *y, int T, int tb, uint8_t (*back)[64]) {
    const int k = tr->k, P = tr->P, J = tr->J, PV = P / 8;
    __m256 C[NV2], G[NV2];
    float best[64], cs[RQ_TCQ_STATES];
    /* bytes 0, 4, 8, 12 of each lane to its low dword; the lanes' dwords together */
    const __m256i lowb = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1,
                                          -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i two = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
    const __m256 y0 = _mm256_set1_ps(y[0]);
    for (int v = 0; v < NV2; v++) {
        __m256 e = _mm256_sub_ps(y0, tr->lut[v]);
        C[v] = _mm256_mul_ps(e, e);
    }
    if (tb >= 0) /* start states: s mod P == tb */
        for (int v = 0; v < NV2; v++) {
            float c[8];
            _mm256_storeu_ps(c, C[v]);
            for (int i = 0; i < 8; i++)
                if (tr->start_mod[8 * v + i] != tb) c[i] = INFINITY;
            C[v] = _mm256_loadu_ps(c);
        }
    for (int t = 1; t < T; t++) {
        for (int u = 0; u < PV; u++) {
            __m256 b = C[u];
            __m256i bj = _mm256_setzero_si256();
            for (int j = 1; j < J; j++) {
                const __m256 c = C[j * PV + u], m = _mm256_cmp_ps(c, b, _CMP_LT_OQ);
                b = _mm256_blendv_ps(b, c, m);
                const __m256 vj = _mm256_castsi256_ps(_mm256_set1_epi32(j));
                bj = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bj), vj, m));
            }
            _mm256_storeu_ps(best + 8 * u, b);
            if (back) {
                const __m256i b8 = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(bj, lowb), two);
                _mm_storel_epi64((__m128i *)(void *)(back[t] + 8 * u), _mm256_castsi256_si128(b8));
            }
        }
        if (k <= 3)
            for (int q = 0; q < tr->n_pat; q++) G[q] = _mm256_i32gather_ps(best, tr->gidx[q], 4);
        const __m256 yt = _mm256_set1_ps(y[t]);
        for (int v = 0; v < NV2; v++) {
            const __m256 e = _mm256_sub_ps(yt, tr->lut[v]);
            const __m256 bv = k <= 3 ? G[tr->pat[v]] : _mm256_broadcast_ss(best + tr->pat[v]);
            C[v] = _mm256_add_ps(bv, _mm256_mul_ps(e, e));
        }
    }
    for (int v = 0; v < NV2; v++) _mm256_storeu_ps(cs + 8 * v, C[v]);
    int bs = -1;
    float bc = INFINITY;
    for (int s = 0; s < RQ_TCQ_STATES; s++) { /* the reference's scan, in state order */
        if (tb >= 0 && (s >> k) != tb) continue;
        const float c = cs[(s & (J - 1)) * P + (s >> k)];
        if (bs < 0 || c < bc) bs = s, bc = c;
    }
    return bs;
}

void rq__tcq_encode_avx2(const float *y, int T, int k, const float *lut, uint8_t *out) {
    if (k < 2 || k > 5) {
        rq__tcq_encode_ref(y, T, k, lut, out);
        return;
    }
    trellis2 tr;
    trellis2_init(&tr, k, lut);
    uint8_t back[RQ_TCQ_MAX_T][64];
    int tb = viterbi_avx2(&tr, y, T, -1, NULL) >> k;
    rq__tcq_traceback(viterbi_avx2(&tr, y, T, tb, back), T, k, (const uint8_t (*)[64])back, out);
}
