/*
 * tcq_avx2.c — AVX2 TCQ kernel (src/tcq.h): the decode_tcq_n slot of fused
 * attention, the same floats as rq__decode_tcq_n_ref (one multiply per
 * value, scale · lut[window]). The encoder keeps the reference at this
 * level (its Viterbi search wants AVX-512's 16-lane compares and masks).
 *
 * Eight values at a time: their windows (bits [i·k, i·k + 8) of the stream
 * from value t0, i·k ≤ 35, so within 6 bytes) from one 8-byte load
 * broadcast to both 128-bit lanes: vpshufb puts bytes ⌊i·k/8⌋ and the next
 * into dword i, vpsrlvd shifts by i·k mod 8; the LUT read by an 8-lane
 * gather.
 */
#include "attn_kernels.h"
#include "tcq.h"

#include <immintrin.h>
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

void rq__decode_tcq_n_avx2(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes,
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
                   _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(blk[0] | (blk[1] << 8)))));
}
