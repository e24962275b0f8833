/*
 * tcq.c — the TCQ encoder (Viterbi over the bitshift trellis, tail-biting)
 * and the reference decoders (tcq.h; docs/FORMAT.md §5.1).
 *
 * Trellis: state s_t = window t (L bits, stream bits [t·k, t·k + L)); the
 * predecessors of s are ((s mod P) << k) | j, j < 2^k, P = 2^(L−k). The
 * cost of s at step t is the least Σ_{u ≤ t} (y_u − lut[s_u])² over paths
 * ending in s, computed in float as best + e·e with e = y_t − lut[s] (no
 * FMA), best = the smallest predecessor cost, the first j on ties. The
 * stream bits [t·k, t·k + k) are the low k bits of s_t.
 * Tail-biting: the last states' top bits are the first state's low bits
 * ((s_{T−1} >> k) == s_0 mod P). Pass 1 runs free and takes them from its
 * best end state; pass 2 allows only start and end states that agree with
 * them (the others cost +∞), so its best path is a valid circular stream.
 */
#include "tcq.h"
#include "internal.h"

#include <math.h>
#include <string.h>

/* One Viterbi pass. tb < 0: free; else start states with s mod P == tb,
 * end states with s >> k == tb. back (pass 2 only): T × P predecessor
 * choices. Returns the best end state (the first on ties). */
static int viterbi(const float *y, int T, int k, const float *lut, int tb, uint8_t (*back)[64]) {
    const int P = 1 << (RQ_TCQ_L - k), J = 1 << k;
    float cost[RQ_TCQ_STATES], best[64];
    for (int s = 0; s < RQ_TCQ_STATES; s++) {
        float e = y[0] - lut[s];
        cost[s] = (tb < 0 || (s & (P - 1)) == tb) ? e * e : INFINITY;
    }
    for (int t = 1; t < T; t++) {
        for (int lo = 0; lo < P; lo++) {
            const float *c = cost + (lo << k);
            float b = c[0];
            int bj = 0;
            for (int j = 1; j < J; j++)
                if (c[j] < b) b = c[j], bj = j;
            best[lo] = b;
            if (back) back[t][lo] = (uint8_t)bj;
        }
        const float yt = y[t];
        for (int s = 0; s < RQ_TCQ_STATES; s++) {
            float e = yt - lut[s];
            cost[s] = best[s & (P - 1)] + e * e;
        }
    }
    int bs = -1;
    float bc = INFINITY;
    for (int s = 0; s < RQ_TCQ_STATES; s++) {
        if (tb >= 0 && (s >> k) != tb) continue;
        if (bs < 0 || cost[s] < bc) bs = s, bc = cost[s];
    }
    return bs;
}

void rq__tcq_encode_ref(const float *y, int T, int k, const float *lut, uint8_t *out) {
    uint8_t back[RQ_TCQ_MAX_T][64];
    int tb = viterbi(y, T, k, lut, -1, NULL) >> k;
    rq__tcq_traceback(viterbi(y, T, k, lut, tb, back), T, k, (const uint8_t (*)[64])back, out);
}

void rq__tcq_traceback(int s, int T, int k, const uint8_t (*back)[64], uint8_t *out) {
    const int P = 1 << (RQ_TCQ_L - k);
    memset(out, 0, (size_t)T * (size_t)k / 8);
    for (int t = T - 1; t >= 0; t--) {
        size_t bit = (size_t)t * (size_t)k;
        unsigned v = (unsigned)s & ((1u << k) - 1);
        out[bit >> 3] |= (uint8_t)(v << (bit & 7));
        if ((bit & 7) + (size_t)k > 8) out[(bit >> 3) + 1] |= (uint8_t)(v >> (8 - (bit & 7)));
        if (t) {
            int lo = s & (P - 1);
            s = (lo << k) | back[t][lo];
        }
    }
}

void rq__tcq_decode_ref(const uint8_t *s, int T, int k, const float *lut, float scale, float *y) {
    const size_t nb = (size_t)T * (size_t)k / 8;
    uint8_t ext[RQ_TCQ_MAX_T * RQ_TCQ_MAX_BITS / 8 + 2];
    memcpy(ext, s, nb); /* the circular stream, its first two bytes again after it */
    ext[nb] = s[0];
    ext[nb + 1] = s[1];
    for (int t = 0; t < T; t++) {
        size_t bit = (size_t)t * (size_t)k;
        unsigned w = (unsigned)(ext[bit >> 3] | (ext[(bit >> 3) + 1] << 8)) >> (bit & 7);
        y[t] = scale * lut[w & (RQ_TCQ_STATES - 1)];
    }
}

void rq__decode_tcq_n_ref(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes, const float *ntab,
                          const float *lut) {
    for (int t = 0; t < n; t++, blk += stride, out += d)
        rq__tcq_decode_ref(blk + off_codes, d, bits, lut, rq__head_norm(blk, ntab), out);
}
