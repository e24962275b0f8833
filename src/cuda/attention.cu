/*
 * attention.cu — decode attention on the GPU over packed KV blocks, and an
 * f16 kernel built the same way as the baseline (DESIGN.md §2).
 *
 * One new token: q [n_q_heads][d]; keys and values of KV head h are the
 * contiguous blocks d_k + (h·kv_stride + t)·bytes, t < n_tokens (the type's
 * exact layout, docs/FORMAT.md §5). Query head h_q reads KV head
 * h_q / (n_q_heads / n_kv_heads) (GQA).
 *
 *  1. k_qrot     q′ = Π_K q · scale · log2(e)          (once per query head)
 *  2. split kernels, grid (split, KV head, query chunk): each CTA streams its
 *     token range in tiles (global → shared by cp.async, double-buffered),
 *     scores s_t = n′_t Σ_j c[code_tj] q′_j for all GQA query heads of the KV
 *     head at once (every block is read once per CTA), online softmax in
 *     base 2, acc += p_t n′_v,t c[code_v,t] in V's rotated domain, and
 *     writes (m, l, acc) per split (flash-decoding split-K). Variants:
 *       2d k_attn_mmaq   tensor cores, d ∈ {64, 128, 256}, 2–4-bit codes
 *                        known at compile time (the default where it applies)
 *       2c k_attn_mma    tensor cores, any d % 16 == 0, any code width
 *       2a k_attn_packed CUDA cores (d % 8 == 0), float end to end
 *  3. k_combine  merges the splits, divides by l, applies Π_Vᵀ once.
 * The f16 kernel (2b, k_attn_f16) shares steps 1 and 3 (no rotation) and the
 * tile / softmax structure of 2a.
 *
 * Precision: 2a and 2b accumulate in float (FMA requested explicitly with
 * fmaf; the file is built with -fmad=false like the rest of src/cuda). The
 * tensor-core kernels multiply fp16 centroids with q′ and the softmax
 * weights given as exact fp16 hi + lo pairs, accumulating in float: the only
 * extra rounding is each centroid's to fp16 (≤ 2^-11 relative); tests/
 * test_cuda.c names the tolerances.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "internal.h"
}
#include "rq_cuda.cuh"
#include "rq_cuda_host.h"

#define ATT_THREADS 128
#define ATT_MAX_SPLITS 256
#define TT_PACKED 64 /* tokens per tile, packed kernel */
#define TT_F16 32    /* tokens per tile, f16 kernel    */
#define LOG2E 1.4426950408889634f

struct attn_args {
    const float *qr;   /* [n_q][d] rotated, scaled queries            */
    const uint8_t *k, *v;
    size_t n_tokens, stride;
    int n_q, n_kv, G, d;
    int splits, tps;   /* splits per head, tokens per split          */
    int bk, bv;        /* block bytes                                 */
    int mk, mv;        /* MSE bits                                    */
    int ko, vo;        /* code offsets                                */
    float ck[16], cv[16];
    float *ws_o;       /* [n_q][splits][d]                            */
    float *ws_ml;      /* [n_q][splits][2]                            */
};

typedef void (*attn_kernel)(const attn_args);

struct rq_cuda_attn {
    int n_q, n_kv, d;
    int force_splits;
    int simt;        /* 1: packed attention on the CUDA cores even where tensor cores apply */
    int generic_mma; /* 1: the runtime-width tensor-core kernel even where a specialized one exists */
    float *qr, *ws_o, *ws_ml;
    const void *occ_fn; /* cache of the last occupancy query */
    size_t occ_smem;
    int occ_per_sm;
    rq_dev_rot none;
};

/* ---------------------------------------------------------------------------
 * 1. rotate (and scale) vectors, one team each; also used for Π_Vᵀ in 3.
 * ------------------------------------------------------------------------- */
template <int E>
__global__ void __launch_bounds__(256) k_qrot(const rq_dev_rot R, const float *__restrict__ in,
                                              float *__restrict__ out, int n, int d, float mult) {
    extern __shared__ __align__(16) float rows[];
    const int tid = threadIdx.x, team = tid >> 4, r = tid & 15;
    const int v = blockIdx.x * 16 + team;
    float *rowa = rows + team * 2 * d, *rowb = rowa + d;
    float y[E];
#pragma unroll
    for (int e = 0; e < E; e++) y[e] = (v < n && r + 16 * e < d) ? in[(size_t)v * d + r + 16 * e] : 0.0f;
    rq_team_rotate<E>(R, y, rowa, rowb, false, r);
    if (v < n)
#pragma unroll
        for (int e = 0; e < E; e++)
            if (r + 16 * e < d) out[(size_t)v * d + r + 16 * e] = y[e] * mult;
}

/* ---------------------------------------------------------------------------
 * Shared pieces of the split kernels
 * ------------------------------------------------------------------------- */
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o >= 1; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o >= 1; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

/* Online softmax over one tile of TT tokens for each of GT query heads.
 * sc[t·GT + g]: base-2 scores (−∞ for tokens past the end); on return it
 * holds the weights p_t · vnorm[t]; ml = {m[GT], l[GT], alpha[GT]}. */
template <int GT, int TT>
__device__ __forceinline__ void tile_softmax(float *sc, const float *vnorm, float *ml, int ng, int nt) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    constexpr int PER = TT / 32;
    for (int g = warp; g < GT; g += ATT_THREADS / 32) {
        if (g >= ng) {
#pragma unroll
            for (int k = 0; k < PER; k++) sc[(lane + 32 * k) * GT + g] = 0.0f;
            if (lane == 0) ml[2 * GT + g] = 0.0f;
            continue;
        }
        float s[PER], mx = -INFINITY;
#pragma unroll
        for (int k = 0; k < PER; k++) {
            s[k] = sc[(lane + 32 * k) * GT + g];
            mx = fmaxf(mx, s[k]);
        }
        mx = warp_max(mx);
        const float m_old = ml[g], m_new = fmaxf(m_old, mx);
        const float alpha = exp2f(m_old - m_new); /* m_old = −∞ on the first tile → 0 */
        float sum = 0.0f;
#pragma unroll
        for (int k = 0; k < PER; k++) {
            const int t = lane + 32 * k;
            const float p = t < nt ? exp2f(s[k] - m_new) : 0.0f;
            sum += p;
            sc[t * GT + g] = t < nt ? p * vnorm[t] : 0.0f;
        }
        sum = warp_sum(sum);
        if (lane == 0) {
            ml[g] = m_new;
            ml[GT + g] = ml[GT + g] * alpha + sum;
            ml[2 * GT + g] = alpha;
        }
    }
}

/* Sum the token-lane partials of acc[GT][8] (thread = code group g, token
 * lane tl) and write the split's (acc, m, l). red: ntl·d floats. */
template <int GT>
__device__ __forceinline__ void split_write(const attn_args &A, float acc[GT][8], const float *ml, float *red,
                                           int q0, int ng, int split, int g, int tl, int ntl) {
    const int tid = threadIdx.x, d = A.d;
#pragma unroll
    for (int gq = 0; gq < GT; gq++) {
        if (gq >= ng) break;
        if (tl < ntl)
#pragma unroll
            for (int k = 0; k < 8; k++) red[tl * d + 8 * g + k] = acc[gq][k];
        __syncthreads();
        for (int j = tid; j < d; j += ATT_THREADS) {
            float s = 0.0f;
            for (int u = 0; u < ntl; u++) s += red[u * d + j];
            A.ws_o[((size_t)(q0 + gq) * A.splits + split) * d + j] = s;
        }
        __syncthreads();
    }
    if (tid < ng) {
        float *o = A.ws_ml + ((size_t)(q0 + tid) * A.splits + split) * 2;
        o[0] = ml[tid];
        o[1] = ml[GT + tid];
    }
}

/* 8 codes of b bits from b bytes (little-endian bitstream, 8 codes = b bytes) */
__device__ __forceinline__ uint32_t load_group(const uint8_t *p, int b) {
    uint32_t w = p[0];
    if (b > 1) w |= (uint32_t)p[1] << 8;
    if (b > 2) w |= (uint32_t)p[2] << 16;
    if (b > 3) w |= (uint32_t)p[3] << 24;
    return w;
}

/* ---------------------------------------------------------------------------
 * 2a. packed K/V
 * Tiles of TT tokens stream global → shared with cp.async, double-buffered:
 * tile i+1 is in flight while tile i is scored and accumulated.
 * smem: qs[GT][d] | cK[16] cV[16] | sc[TT][GT] | vn[TT] | ml[4·GT] | red[1024]
 *       | rawK[2] (TT·bk + 16 each, 16-aligned) | rawV[2]
 * ------------------------------------------------------------------------- */
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem) {
    const unsigned sa = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(sa), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait1() { asm volatile("cp.async.wait_group 1;\n" ::); }

/* Start copying n bytes at src (global) to buf + (src mod 16) (shared, buf
 * 16-aligned): 16-byte cp.async for the aligned middle, plain bytes for the
 * unaligned head and tail. */
__device__ __forceinline__ void tile_issue(uint8_t *buf, const uint8_t *src, int n, int tid) {
    uint8_t *dst = buf + ((uintptr_t)src & 15);
    int head = (int)((16 - ((uintptr_t)src & 15)) & 15);
    if (head > n) head = n;
    const int n16 = (n - head) >> 4;
    for (int k = tid; k < n16; k += ATT_THREADS) cp_async16(dst + head + 16 * k, src + head + 16 * k);
    for (int k = tid; k < head; k += ATT_THREADS) dst[k] = src[k];
    for (int k = head + 16 * n16 + tid; k < n; k += ATT_THREADS) dst[k] = src[k];
}

template <int GT>
__global__ void __launch_bounds__(ATT_THREADS) k_attn_packed(const attn_args A) {
    extern __shared__ __align__(16) float smf[];
    constexpr int TT = TT_PACKED;
    const int tid = threadIdx.x;
    const int split = blockIdx.x, hk = blockIdx.y;
    const int d = A.d, NG = d / 8;
    const int q0 = hk * A.G + blockIdx.z * GT;
    const int ng = min(GT, A.G - (int)blockIdx.z * GT);
    float *qs = smf;
    float *cK = qs + GT * d, *cV = cK + 16;
    float *sc = cV + 16;
    float *vn = sc + TT * GT;
    float *ml = vn + TT;
    float *red = ml + 4 * GT;
    const int szk = (TT * A.bk + 16 + 15) & ~15, szv = (TT * A.bv + 16 + 15) & ~15;
    uint8_t *rawk = (uint8_t *)(red + 1024), *rawv = rawk + 2 * szk;

    for (int i = tid; i < GT * d; i += ATT_THREADS) {
        const int g = i / d;
        qs[i] = g < ng ? A.qr[(size_t)(q0 + g) * d + (i - g * d)] : 0.0f;
    }
    if (tid < 16) {
        cK[tid] = A.ck[tid];
        cV[tid] = A.cv[tid];
    }
    if (tid < GT) {
        ml[tid] = -INFINITY;
        ml[GT + tid] = 0.0f;
    }

    const int mask_k = (1 << A.mk) - 1, mask_v = (1 << A.mv) - 1;
    const size_t t_begin = (size_t)split * A.tps;
    const size_t t_end = min(A.n_tokens, t_begin + (size_t)A.tps);
    const int n_tiles = (int)((t_end - t_begin + TT - 1) / TT);
    const uint8_t *gk = A.k + ((size_t)hk * A.stride + t_begin) * A.bk;
    const uint8_t *gv = A.v + ((size_t)hk * A.stride + t_begin) * A.bv;
    /* value phase mapping: code group g, token lane tl */
    const int grp = tid % NG, tl = tid / NG, ntl = ATT_THREADS / NG;
    float acc[GT][8];
#pragma unroll
    for (int a = 0; a < GT; a++)
#pragma unroll
        for (int k = 0; k < 8; k++) acc[a][k] = 0.0f;

    {
        const int nt0 = (int)min((size_t)TT, t_end - t_begin);
        tile_issue(rawk, gk, nt0 * A.bk, tid);
        tile_issue(rawv, gv, nt0 * A.bv, tid);
        cp_async_commit();
    }
    for (int it = 0; it < n_tiles; it++) {
        const size_t t0 = t_begin + (size_t)it * TT;
        const int nt = (int)min((size_t)TT, t_end - t0);
        if (it + 1 < n_tiles) { /* prefetch the next tile into the other buffer */
            const size_t t1 = t0 + TT;
            const int nt1 = (int)min((size_t)TT, t_end - t1);
            tile_issue(rawk + ((it + 1) & 1) * szk, gk + (t1 - t_begin) * A.bk, nt1 * A.bk, tid);
            tile_issue(rawv + ((it + 1) & 1) * szv, gv + (t1 - t_begin) * A.bv, nt1 * A.bv, tid);
        }
        cp_async_commit();
        cp_async_wait1(); /* every group but the newest: tile it has landed */
        __syncthreads();
        const uint8_t *srck = gk + (t0 - t_begin) * A.bk, *srcv = gv + (t0 - t_begin) * A.bv;
        const uint8_t *tk = rawk + (it & 1) * szk + ((uintptr_t)srck & 15);
        const uint8_t *tv = rawv + (it & 1) * szv + ((uintptr_t)srcv & 15);

        /* scores: tokens u and u + 32 (u = tid/4), quarter p = tid&3 takes
         * code groups p, p+4, …; each q′ load serves both tokens */
        {
            const int u = tid >> 2, p = tid & 3;
            float s0[GT], s1[GT];
#pragma unroll
            for (int a = 0; a < GT; a++) s0[a] = s1[a] = 0.0f;
            const bool v0 = u < nt, v1 = u + 32 < nt;
            const uint8_t *c0 = tk + u * A.bk + A.ko, *c1 = tk + (u + 32) * A.bk + A.ko;
            for (int g = p; g < NG; g += 4) {
                float ca[8], cb[8];
                const uint32_t w0 = v0 ? load_group(c0 + g * A.mk, A.mk) : 0u;
                const uint32_t w1 = v1 ? load_group(c1 + g * A.mk, A.mk) : 0u;
#pragma unroll
                for (int k = 0; k < 8; k++) {
                    ca[k] = cK[(w0 >> (A.mk * k)) & mask_k];
                    cb[k] = cK[(w1 >> (A.mk * k)) & mask_k];
                }
#pragma unroll
                for (int a = 0; a < GT; a++) {
                    const float4 qa = *(const float4 *)(qs + a * d + 8 * g);
                    const float4 qb = *(const float4 *)(qs + a * d + 8 * g + 4);
                    float x = s0[a], y = s1[a];
                    x = fmaf(ca[0], qa.x, x);
                    y = fmaf(cb[0], qa.x, y);
                    x = fmaf(ca[1], qa.y, x);
                    y = fmaf(cb[1], qa.y, y);
                    x = fmaf(ca[2], qa.z, x);
                    y = fmaf(cb[2], qa.z, y);
                    x = fmaf(ca[3], qa.w, x);
                    y = fmaf(cb[3], qa.w, y);
                    x = fmaf(ca[4], qb.x, x);
                    y = fmaf(cb[4], qb.x, y);
                    x = fmaf(ca[5], qb.y, x);
                    y = fmaf(cb[5], qb.y, y);
                    x = fmaf(ca[6], qb.z, x);
                    y = fmaf(cb[6], qb.z, y);
                    x = fmaf(ca[7], qb.w, x);
                    y = fmaf(cb[7], qb.w, y);
                    s0[a] = x;
                    s1[a] = y;
                }
            }
#pragma unroll
            for (int a = 0; a < GT; a++) {
                s0[a] += __shfl_xor_sync(0xffffffffu, s0[a], 1);
                s0[a] += __shfl_xor_sync(0xffffffffu, s0[a], 2);
                s1[a] += __shfl_xor_sync(0xffffffffu, s1[a], 1);
                s1[a] += __shfl_xor_sync(0xffffffffu, s1[a], 2);
            }
            if (p == 0) {
                const float n0 = v0 ? rq_dev_f16_at(tk + u * A.bk) : 0.0f;
                const float n1 = v1 ? rq_dev_f16_at(tk + (u + 32) * A.bk) : 0.0f;
#pragma unroll
                for (int a = 0; a < GT; a++) {
                    sc[u * GT + a] = v0 ? s0[a] * n0 : -INFINITY;
                    sc[(u + 32) * GT + a] = v1 ? s1[a] * n1 : -INFINITY;
                }
            }
            if (tid < TT) vn[tid] = tid < nt ? rq_dev_f16_at(tv + tid * A.bv) : 0.0f;
        }
        __syncthreads();
        tile_softmax<GT, TT>(sc, vn, ml, ng, nt);
        __syncthreads();

        /* values in the rotated domain */
        if (tl < ntl) {
#pragma unroll
            for (int a = 0; a < GT; a++) {
                const float al = ml[2 * GT + a];
#pragma unroll
                for (int k = 0; k < 8; k++) acc[a][k] *= al;
            }
            for (int t = tl; t < nt; t += ntl) {
                const uint32_t w = load_group(tv + t * A.bv + A.vo + grp * A.mv, A.mv);
                float c[8];
#pragma unroll
                for (int k = 0; k < 8; k++) c[k] = cV[(w >> (A.mv * k)) & mask_v];
#pragma unroll
                for (int a = 0; a < GT; a++) {
                    const float pw = sc[t * GT + a];
#pragma unroll
                    for (int k = 0; k < 8; k++) acc[a][k] = fmaf(pw, c[k], acc[a][k]);
                }
            }
        }
        __syncthreads();
    }
    split_write<GT>(A, acc, ml, red, q0, ng, split, grp, tl, ntl);
}

/* ---------------------------------------------------------------------------
 * 2c. packed K/V on the tensor cores (d % 16 == 0; up to 8 query heads per
 * CTA). The arithmetic per code is then only its decode: extract the bits,
 * look the centroid up in a 16-entry fp16 table (8 words: any access
 * pattern is bank-conflict free), pack two into a half2 register.
 *   scores  S[t][g] = Σ_j c_K[t][j] q′[j][g]  — mma m16n8k16: A = 16 tokens
 *           × 16 coordinates of decoded keys, B = q′ (16 × 8 queries), f32
 *           accumulation. The k-slots of a thread map to 4 *consecutive*
 *           coordinates (the contraction order is free), so one 32-bit
 *           window of the bitstream holds all four codes.
 *   values  Oᵀ[j][g] += Σ_t c_V[t][j] P[g][t]  — A = 16 coordinates × 16
 *           tokens (a thread's two A rows are adjacent coordinates, one
 *           2b-bit field per token), B = Pᵀ (16 tokens × 8 queries).
 * q′ and P enter as fp16 hi + lo pairs (two MMAs), so the only rounding
 * beyond float is the fp16 centroid (≤ 2^-11 relative per coordinate).
 * Each (coordinate, query) of the output belongs to one thread: no
 * reduction at the end. Warp w scores tokens 16w … 16w+15 of each tile and
 * accumulates coordinate tiles w, w+4, ….
 * smem: lutK[16] lutV[16] (fp16) | sc[8][SCS] | vn[TT] | nk[TT] | ml[4·8]
 *       | rawK[2] | rawV[2] | q′ fragments [d/16][32] × 16 bytes
 * ------------------------------------------------------------------------- */
#define MMA_Q 8       /* query heads per CTA (the MMA's N) */
#define SCS (TT_PACKED + 8) /* row stride of sc: conflict-free 8-byte reads */

__device__ __forceinline__ void mma16816(float c[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* 32 bits of a code stream starting at bit `bit` (≤ 15 bits of slack are
 * read past the requested field; the tile buffers have 16 bytes of slack).
 * area: 2-byte aligned. Returns the stream shifted so bit `bit` is bit 0. */
__device__ __forceinline__ uint32_t bits_at(const uint8_t *area, int bit) {
    const int e = (bit >> 4) << 1; /* even byte index */
    const uint32_t lo = *(const uint16_t *)(area + e), hi = *(const uint16_t *)(area + e + 2);
    return (lo | (hi << 16)) >> (bit & 15);
}

__device__ __forceinline__ uint32_t pack_h2(uint16_t lo, uint16_t hi) { return (uint32_t)lo | ((uint32_t)hi << 16); }

__device__ __forceinline__ void split_h2(float x, float y, uint32_t &hi, uint32_t &lo) {
    const __half hx = __float2half_rn(x), hy = __float2half_rn(y);
    const __half lx = __float2half_rn(x - __half2float(hx)), ly = __float2half_rn(y - __half2float(hy));
    hi = pack_h2(__half_as_ushort(hx), __half_as_ushort(hy));
    lo = pack_h2(__half_as_ushort(lx), __half_as_ushort(ly));
}

template <int DMAX>
__global__ void __launch_bounds__(ATT_THREADS) k_attn_mma(const attn_args A) {
    extern __shared__ __align__(16) float smf[];
    constexpr int TT = TT_PACKED;
    constexpr int KC = DMAX / 16;     /* max coordinate chunks          */
    constexpr int MT = DMAX / 16 / 4; /* max coordinate tiles per warp  */
    static_assert(TT_PACKED == 64, "4 warps x 16 tokens per tile");
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int gid = lane >> 2, tig = lane & 3;
    const int split = blockIdx.x, hk = blockIdx.y;
    const int d = A.d, nkc = d / 16;
    const int q0 = hk * A.G + blockIdx.z * MMA_Q;
    const int ng = min(MMA_Q, A.G - (int)blockIdx.z * MMA_Q);
    uint16_t *lutK = (uint16_t *)smf, *lutV = lutK + 16;
    float *sc = smf + 16;
    float *vn = sc + MMA_Q * SCS, *nk = vn + TT, *ml = nk + TT;
    const int szk = (TT * A.bk + 16 + 15) & ~15, szv = (TT * A.bv + 16 + 15) & ~15;
    uint8_t *rawk = (uint8_t *)(ml + 4 * MMA_Q), *rawv = rawk + 2 * szk;

    if (tid < 16) {
        lutK[tid] = __half_as_ushort(__float2half_rn(A.ck[tid]));
        lutV[tid] = __half_as_ushort(__float2half_rn(A.cv[tid]));
    }
    if (tid < MMA_Q) {
        ml[tid] = -INFINITY;
        ml[MMA_Q + tid] = 0.0f;
    }
    /* q′ as B fragments (hi0, hi1, lo0, lo1) per (chunk kc, lane): query
     * gid, coordinates 16kc + 4tig + {0,1} / {2,3} */
    uint4 *qfrag = (uint4 *)(rawv + 2 * szv);
    for (int i = tid; i < nkc * 32; i += ATT_THREADS) {
        const int kc = i >> 5, ln = i & 31, qg = ln >> 2, qt = ln & 3;
        uint4 f = make_uint4(0u, 0u, 0u, 0u);
        if (qg < ng) {
            const float4 v = *(const float4 *)(A.qr + (size_t)(q0 + qg) * d + 16 * kc + 4 * qt);
            split_h2(v.x, v.y, f.x, f.z);
            split_h2(v.z, v.w, f.y, f.w);
        }
        qfrag[i] = f;
    }
    float acc[MT][4];
#pragma unroll
    for (int m = 0; m < MT; m++) acc[m][0] = acc[m][1] = acc[m][2] = acc[m][3] = 0.0f;

    const int mk = A.mk, mv = A.mv;
    const uint32_t mask_k = (1u << mk) - 1u, mask_v = (1u << mv) - 1u;
    const size_t t_begin = (size_t)split * A.tps;
    const size_t t_end = min(A.n_tokens, t_begin + (size_t)A.tps);
    const int n_tiles = (int)((t_end - t_begin + TT - 1) / TT);
    const uint8_t *gk = A.k + ((size_t)hk * A.stride + t_begin) * A.bk;
    const uint8_t *gv = A.v + ((size_t)hk * A.stride + t_begin) * A.bv;
    {
        const int nt0 = (int)min((size_t)TT, t_end - t_begin);
        tile_issue(rawk, gk, nt0 * A.bk, tid);
        tile_issue(rawv, gv, nt0 * A.bv, tid);
        cp_async_commit();
    }
    for (int it = 0; it < n_tiles; it++) {
        const size_t t0 = t_begin + (size_t)it * TT;
        const int nt = (int)min((size_t)TT, t_end - t0);
        if (it + 1 < n_tiles) {
            const size_t t1 = t0 + TT;
            const int nt1 = (int)min((size_t)TT, t_end - t1);
            tile_issue(rawk + ((it + 1) & 1) * szk, gk + (t1 - t_begin) * A.bk, nt1 * A.bk, tid);
            tile_issue(rawv + ((it + 1) & 1) * szv, gv + (t1 - t_begin) * A.bv, nt1 * A.bv, tid);
        }
        cp_async_commit();
        cp_async_wait1();
        __syncthreads();
        const uint8_t *srck = gk + (t0 - t_begin) * A.bk, *srcv = gv + (t0 - t_begin) * A.bv;
        const uint8_t *tk = rawk + (it & 1) * szk + ((uintptr_t)srck & 15);
        const uint8_t *tv = rawv + (it & 1) * szv + ((uintptr_t)srcv & 15);

        /* ---- scores: warp w, tokens 16w + gid and 16w + gid + 8 ---- */
        {
            const int ta = 16 * warp + gid, tb = ta + 8;
            const uint8_t *ca = tk + ta * A.bk + A.ko, *cb = tk + tb * A.bk + A.ko;
            float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int kc = 0; kc < KC; kc++) {
                if (kc < nkc) {
                    const int bit = (16 * kc + 4 * tig) * mk;
                    const uint32_t wa = bits_at(ca, bit), wb = bits_at(cb, bit);
                    const uint32_t a0 = pack_h2(lutK[wa & mask_k], lutK[(wa >> mk) & mask_k]);
                    const uint32_t a2 = pack_h2(lutK[(wa >> (2 * mk)) & mask_k], lutK[(wa >> (3 * mk)) & mask_k]);
                    const uint32_t a1 = pack_h2(lutK[wb & mask_k], lutK[(wb >> mk) & mask_k]);
                    const uint32_t a3 = pack_h2(lutK[(wb >> (2 * mk)) & mask_k], lutK[(wb >> (3 * mk)) & mask_k]);
                    const uint4 b = qfrag[kc * 32 + lane];
                    mma16816(c, a0, a1, a2, a3, b.x, b.y);
                    mma16816(c, a0, a1, a2, a3, b.z, b.w);
                }
            }
            /* c: (token ta: queries 2tig, 2tig+1), (token tb: same) */
            const float na = ta < nt ? rq_dev_f16_at(tk + ta * A.bk) : 0.0f;
            const float nb = tb < nt ? rq_dev_f16_at(tk + tb * A.bk) : 0.0f;
            const int g0 = 2 * tig, g1 = g0 + 1;
            sc[g0 * SCS + ta] = ta < nt ? c[0] * na : -INFINITY;
            sc[g1 * SCS + ta] = ta < nt ? c[1] * na : -INFINITY;
            sc[g0 * SCS + tb] = tb < nt ? c[2] * nb : -INFINITY;
            sc[g1 * SCS + tb] = tb < nt ? c[3] * nb : -INFINITY;
            if (tid < TT) vn[tid] = tid < nt ? rq_dev_f16_at(tv + tid * A.bv) : 0.0f;
        }
        __syncthreads();

        /* ---- online softmax: warp w takes queries w, w+4; 2 tokens per lane ---- */
        for (int g = warp; g < MMA_Q; g += 4) {
            float *row = sc + g * SCS;
            if (g >= ng) {
                row[lane] = 0.0f;
                row[lane + 32] = 0.0f;
                if (lane == 0) ml[2 * MMA_Q + g] = 0.0f;
                continue;
            }
            const float s0 = row[lane], s1 = row[lane + 32];
            const float mx = warp_max(fmaxf(s0, s1));
            const float m_old = ml[g], m_new = fmaxf(m_old, mx);
            const float alpha = exp2f(m_old - m_new);
            const float p0 = lane < nt ? exp2f(s0 - m_new) : 0.0f;
            const float p1 = lane + 32 < nt ? exp2f(s1 - m_new) : 0.0f;
            row[lane] = p0 * vn[lane];
            row[lane + 32] = p1 * vn[lane + 32];
            const float sum = warp_sum(p0 + p1);
            if (lane == 0) {
                ml[g] = m_new;
                ml[MMA_Q + g] = ml[MMA_Q + g] * alpha + sum;
                ml[2 * MMA_Q + g] = alpha;
            }
        }
        __syncthreads();

        /* ---- values: coordinate tiles mt = warp, warp + 4, … ---- */
        {
            const float al0 = ml[2 * MMA_Q + 2 * tig], al1 = ml[2 * MMA_Q + 2 * tig + 1];
#pragma unroll
            for (int m = 0; m < MT; m++) {
                acc[m][0] *= al0;
                acc[m][1] *= al1;
                acc[m][2] *= al0;
                acc[m][3] *= al1;
            }
#pragma unroll
            for (int kc = 0; kc < TT / 16; kc++) {
                /* Pᵀ fragment: tokens 16kc + 2tig + {0,1} (+8), query gid */
                const int T0 = 16 * kc + 2 * tig;
                const float2 pa = *(const float2 *)(sc + gid * SCS + T0);
                const float2 pb = *(const float2 *)(sc + gid * SCS + T0 + 8);
                uint32_t bh0, bl0, bh1, bl1;
                split_h2(pa.x, pa.y, bh0, bl0);
                split_h2(pb.x, pb.y, bh1, bl1);
                const uint8_t *v0 = tv + T0 * A.bv + A.vo, *v1 = v0 + A.bv;
                const uint8_t *v8 = v0 + 8 * A.bv, *v9 = v8 + A.bv;
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    const int mt = warp + 4 * m;
                    if (mt < nkc) {
                        const int bit = (16 * mt + 2 * gid) * mv;
                        const uint32_t w0 = bits_at(v0, bit), w1 = bits_at(v1, bit);
                        const uint32_t w8 = bits_at(v8, bit), w9 = bits_at(v9, bit);
                        /* rows gid / gid+8 = coordinates 16mt + 2gid / + 1 */
                        const uint32_t a0 = pack_h2(lutV[w0 & mask_v], lutV[w1 & mask_v]);
                        const uint32_t a1 = pack_h2(lutV[(w0 >> mv) & mask_v], lutV[(w1 >> mv) & mask_v]);
                        const uint32_t a2 = pack_h2(lutV[w8 & mask_v], lutV[w9 & mask_v]);
                        const uint32_t a3 = pack_h2(lutV[(w8 >> mv) & mask_v], lutV[(w9 >> mv) & mask_v]);
                        mma16816(acc[m], a0, a1, a2, a3, bh0, bh1);
                        mma16816(acc[m], a0, a1, a2, a3, bl0, bl1);
                    }
                }
            }
        }
        __syncthreads();
    }
    /* acc[m]: (coord 16mt + 2gid: queries 2tig, 2tig+1), (coord + 1: same) */
#pragma unroll
    for (int m = 0; m < MT; m++) {
        const int mt = warp + 4 * m;
        if (mt >= nkc) continue;
        const int j = 16 * mt + 2 * gid, g0 = 2 * tig, g1 = g0 + 1;
        if (g0 < ng) {
            float *o = A.ws_o + ((size_t)(q0 + g0) * A.splits + split) * d + j;
            o[0] = acc[m][0];
            o[1] = acc[m][2];
        }
        if (g1 < ng) {
            float *o = A.ws_o + ((size_t)(q0 + g1) * A.splits + split) * d + j;
            o[0] = acc[m][1];
            o[1] = acc[m][3];
        }
    }
    if (tid < ng) {
        float *o = A.ws_ml + ((size_t)(q0 + tid) * A.splits + split) * 2;
        o[0] = ml[tid];
        o[1] = ml[MMA_Q + tid];
    }
}

/* ---------------------------------------------------------------------------
 * 2d. the tensor-core kernel specialized for d ∈ {64, 128, 256} and code
 * widths known at compile time (MK, MV ∈ {2, 3, 4}): the same arithmetic as
 * 2c, with the contraction order chosen so that each thread's codes are one
 * contiguous run of the bitstream, loaded once per token and unpacked with
 * constant shifts.
 *   keys    thread tig owns coordinates [tig·d/4, (tig+1)·d/4): chunk kc
 *           feeds it coordinates tig·d/4 + 4kc + {0..3} (q′ fragments use
 *           the same map), i.e. codes 4kc … 4kc+3 of its run.
 *   values  warp w owns coordinates [w·d/4, (w+1)·d/4); thread gid the
 *           2·MT of them from w·d/4 + gid·2·MT: its A rows gid / gid+8 of
 *           coordinate tile m are coordinates base + 2m / base + 2m + 1.
 * ------------------------------------------------------------------------- */
/* centroid (fp16 bits) of the code at bit S of x; the index arithmetic is
 * done on the byte offset (code·2) directly */
template <int S, int M>
__device__ __forceinline__ uint32_t lut_at(const uint16_t *lut, uint32_t x) {
    uint32_t off;
    if constexpr (S >= 1) off = (x >> (S - 1)) & ((uint32_t)M << 1);
    else off = (x << 1) & ((uint32_t)M << 1);
    return *(const uint16_t *)((const char *)lut + off);
}
/* centroid of code i of a run held in words w[] (code i at bit i·B) */
template <int I, int B, int NW>
__device__ __forceinline__ uint32_t lut_run(const uint16_t *lut, const uint32_t (&w)[NW]) {
    constexpr int bit = I * B, wi = bit >> 5, sh = bit & 31, M = (1 << B) - 1;
    if constexpr (wi + 1 >= NW) { /* only in switch cases beyond this d (never executed) */
        return 0u;
    } else if constexpr (sh + B <= 32) {
        return lut_at<sh, M>(lut, w[wi]);
    } else {
        const uint32_t x = (w[wi] >> sh) | (w[wi + 1] << (32 - sh));
        return lut_at<0, M>(lut, x);
    }
}

/* Register lookup table for codes of ≤ 3 bits: the fp16 centroids split
 * into a low-byte plane (lo0: codes 0–3, lo1: 4–7) and a high-byte plane;
 * PRMT gathers the bytes of four codes at once (selector nibble i = code i)
 * and two more PRMTs interleave them into the half2 pairs (c0, c1), (c2, c3).
 * No shared-memory access. */
struct rlut {
    uint32_t lo0, lo1, hi0, hi1;
};
__device__ __forceinline__ rlut rlut_make(const float *c) {
    rlut t;
    uint32_t h[8];
#pragma unroll
    for (int i = 0; i < 8; i++) h[i] = __half_as_ushort(__float2half_rn(c[i]));
    t.lo0 = (h[0] & 0xffu) | (h[1] & 0xffu) << 8 | (h[2] & 0xffu) << 16 | (h[3] & 0xffu) << 24;
    t.lo1 = (h[4] & 0xffu) | (h[5] & 0xffu) << 8 | (h[6] & 0xffu) << 16 | (h[7] & 0xffu) << 24;
    t.hi0 = (h[0] >> 8) | (h[1] >> 8) << 8 | (h[2] >> 8) << 16 | (h[3] >> 8) << 24;
    t.hi1 = (h[4] >> 8) | (h[5] >> 8) << 8 | (h[6] >> 8) << 16 | (h[7] >> 8) << 24;
    return t;
}
/* sel: four codes in nibbles 0..3 (bit 3 of each nibble clear) */
__device__ __forceinline__ void rlut_get4(const rlut &t, uint32_t sel, uint32_t &p01, uint32_t &p23) {
    const uint32_t lo = __byte_perm(t.lo0, t.lo1, sel), hi = __byte_perm(t.hi0, t.hi1, sel);
    p01 = __byte_perm(lo, hi, 0x5140);
    p23 = __byte_perm(lo, hi, 0x7362);
}
/* four consecutive B-bit codes (x bits 0..4B) → nibble selector */
template <int B>
__device__ __forceinline__ uint32_t spread4(uint32_t x) {
    constexpr uint32_t M = (1u << B) - 1u;
    return (x & M) | ((x << (4 - B)) & (M << 4)) | ((x << (8 - 2 * B)) & (M << 8)) | ((x << (12 - 3 * B)) & (M << 12));
}
/* bits [I, I+4B) of a run held in words w[] (compile-time position) */
template <int I, int B, int NW>
__device__ __forceinline__ uint32_t run_bits(const uint32_t (&w)[NW]) {
    constexpr int wi = I >> 5, sh = I & 31;
    if constexpr (wi + 1 >= NW) {
        return 0u; /* only in switch cases beyond this d (never executed) */
    } else if constexpr (sh + 4 * B <= 32) {
        return w[wi] >> sh;
    } else {
        return (w[wi] >> sh) | (w[wi + 1] << (32 - sh));
    }
}

template <int D, int MK, int MV>
__global__ void __launch_bounds__(ATT_THREADS) k_attn_mmaq(const attn_args A) {
    extern __shared__ __align__(16) float smf[];
    constexpr int TT = TT_PACKED;
    constexpr int NKC = D / 16;          /* coordinate chunks                  */
    constexpr int MT = D / 64;           /* coordinate tiles per warp          */
    constexpr int NV = 2 * MT;           /* value coordinates per thread       */
    constexpr int QBITS = D / 4 * MK;    /* bits of a key run (multiple of 16) */
    constexpr int NH = QBITS / 16;       /* its 16-bit halfwords               */
    constexpr int NW = (QBITS + 31) / 32 + 1;
    static_assert(TT == 64, "4 warps x 16 tokens per tile");
    static_assert(NV * MV <= 32, "a thread's value run fits one 32-bit window");
    constexpr int BK = 2 + D * MK / 8, BV = 2 + D * MV / 8; /* MSE blocks: fp16 n′, codes */
    __shared__ uint16_t s_lut[32]; /* static: its address folds into the LDS offsets */
    __shared__ uint4 s_rlut[2];    /* register tables (rlut) of K and V, loaded per use */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int gid = lane >> 2, tig = lane & 3;
    const int split = blockIdx.x, hk = blockIdx.y;
    const int q0 = hk * A.G + blockIdx.z * MMA_Q;
    const int ng = min(MMA_Q, A.G - (int)blockIdx.z * MMA_Q);
    uint16_t *lutK = s_lut, *lutV = s_lut + 16;
    float *sc = smf + 16;
    float *vn = sc + MMA_Q * SCS, *nk = vn + TT, *ml = nk + TT;
    constexpr int szk = (TT * BK + 16 + 15) & ~15, szv = (TT * BV + 16 + 15) & ~15;
    uint8_t *rawk = (uint8_t *)(ml + 4 * MMA_Q), *rawv = rawk + 2 * szk;
    uint4 *qfrag = (uint4 *)(rawv + 2 * szv);
    /* softmax weights p·n′_v as fp16 hi / lo, [query][token] (the value MMA's B) */
    uint16_t *ph = (uint16_t *)(qfrag + NKC * 32), *pl = ph + MMA_Q * SCS;

    if (tid < 16) {
        lutK[tid] = __half_as_ushort(__float2half_rn(A.ck[tid]));
        lutV[tid] = __half_as_ushort(__float2half_rn(A.cv[tid]));
    }
    if (tid < MMA_Q) {
        ml[tid] = -INFINITY;
        ml[MMA_Q + tid] = 0.0f;
    }
    for (int i = tid; i < NKC * 32; i += ATT_THREADS) {
        const int kc = i >> 5, ln = i & 31, qg = ln >> 2, qt = ln & 3;
        uint4 f = make_uint4(0u, 0u, 0u, 0u);
        if (qg < ng) {
            const float4 v = *(const float4 *)(A.qr + (size_t)(q0 + qg) * D + qt * (D / 4) + 4 * kc);
            split_h2(v.x, v.y, f.x, f.z);
            split_h2(v.z, v.w, f.y, f.w);
        }
        qfrag[i] = f;
    }
    float acc[MT][4];
#pragma unroll
    for (int m = 0; m < MT; m++) acc[m][0] = acc[m][1] = acc[m][2] = acc[m][3] = 0.0f;
    constexpr bool RK = MK <= 3, RV = MV <= 3; /* register tables (else the shared one) */
    if (tid == 0) {
        const rlut x = rlut_make(A.ck), y = rlut_make(A.cv);
        s_rlut[0] = make_uint4(x.lo0, x.lo1, x.hi0, x.hi1);
        s_rlut[1] = make_uint4(y.lo0, y.lo1, y.hi0, y.hi1);
    }

    const size_t t_begin = (size_t)split * A.tps;
    const size_t t_end = min(A.n_tokens, t_begin + (size_t)A.tps);
    const int n_tiles = (int)((t_end - t_begin + TT - 1) / TT);
    const uint8_t *gk = A.k + ((size_t)hk * A.stride + t_begin) * BK;
    const uint8_t *gv = A.v + ((size_t)hk * A.stride + t_begin) * BV;
    const int vbase = warp * (D / 4) + gid * NV; /* first value coordinate of this thread */
    /* every tile of this split starts 16-byte aligned when the split does
     * (TT·BK and TT·BV are multiples of 16): then full tiles are copied by a
     * fixed, unrolled set of 16-byte cp.async per thread */
    const bool aligned = (((uintptr_t)gk | (uintptr_t)gv) & 15) == 0;
    auto issue = [&](int it, uint8_t *bk_, uint8_t *bv_) {
        const size_t tt0 = (size_t)it * TT;
        const int ntt = (int)min((size_t)TT, t_end - t_begin - tt0);
        if (aligned && ntt == TT) {
            constexpr int CK = TT * BK / 16, CV = TT * BV / 16;
            const uint8_t *sk = gk + tt0 * BK, *sv = gv + tt0 * BV;
#pragma unroll
            for (int c = tid; c < CK; c += ATT_THREADS) cp_async16(bk_ + 16 * c, sk + 16 * c);
#pragma unroll
            for (int c = tid; c < CV; c += ATT_THREADS) cp_async16(bv_ + 16 * c, sv + 16 * c);
        } else {
            tile_issue(bk_, gk + tt0 * BK, ntt * BK, tid);
            tile_issue(bv_, gv + tt0 * BV, ntt * BV, tid);
        }
    };
    issue(0, rawk, rawv);
    cp_async_commit();
    for (int it = 0; it < n_tiles; it++) {
        const size_t t0 = t_begin + (size_t)it * TT;
        const int nt = (int)min((size_t)TT, t_end - t0);
        if (it + 1 < n_tiles) issue(it + 1, rawk + ((it + 1) & 1) * szk, rawv + ((it + 1) & 1) * szv);
        cp_async_commit();
        cp_async_wait1();
        __syncthreads();
        const uint8_t *srck = gk + (t0 - t_begin) * BK, *srcv = gv + (t0 - t_begin) * BV;
        const uint8_t *tk = rawk + (it & 1) * szk + ((uintptr_t)srck & 15);
        const uint8_t *tv = rawv + (it & 1) * szv + ((uintptr_t)srcv & 15);

        /* ---- scores: warp w, tokens 16w + gid and 16w + gid + 8 ---- */
        {
            const int ta = 16 * warp + gid, tb = ta + 8;
            const uint16_t *ra = (const uint16_t *)(tk + ta * BK + 2 + tig * (QBITS / 8));
            const uint16_t *rb = (const uint16_t *)(tk + tb * BK + 2 + tig * (QBITS / 8));
            uint32_t wa[NW], wb[NW];
#pragma unroll
            for (int w = 0; w < NW; w++) wa[w] = wb[w] = 0u;
#pragma unroll
            for (int h = 0; h < NH; h++) {
                wa[h >> 1] |= (uint32_t)ra[h] << (16 * (h & 1));
                wb[h >> 1] |= (uint32_t)rb[h] << (16 * (h & 1));
            }
            float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            const uint4 tku = s_rlut[0];
            const rlut tk8 = {tku.x, tku.y, tku.z, tku.w};
#pragma unroll
            for (int kc = 0; kc < NKC; kc++) {
                uint32_t a0, a1, a2, a3;
                /* compile-time code indices 4kc … 4kc+3 (kc is unrolled) */
#define RQ_PAIR(w, i) ((uint32_t)lut_run<(i), MK, NW>(lutK, w) | (lut_run<(i) + 1, MK, NW>(lutK, w) << 16))
                switch (kc) { /* unrolled: kc is a constant in each copy */
#define RQ_KC(k)                                                                      \
    case k:                                                                           \
        if constexpr (RK) {                                                           \
            rlut_get4(tk8, spread4<MK>(run_bits<4 * (k) * MK, MK, NW>(wa)), a0, a2); \
            rlut_get4(tk8, spread4<MK>(run_bits<4 * (k) * MK, MK, NW>(wb)), a1, a3); \
        } else {                                                                      \
            a0 = RQ_PAIR(wa, 4 * (k));                                                \
            a2 = RQ_PAIR(wa, 4 * (k) + 2);                                            \
            a1 = RQ_PAIR(wb, 4 * (k));                                                \
            a3 = RQ_PAIR(wb, 4 * (k) + 2);                                            \
        }                                                                             \
        break;
                    RQ_KC(0) RQ_KC(1) RQ_KC(2) RQ_KC(3) RQ_KC(4) RQ_KC(5) RQ_KC(6) RQ_KC(7)
                    RQ_KC(8) RQ_KC(9) RQ_KC(10) RQ_KC(11) RQ_KC(12) RQ_KC(13) RQ_KC(14) RQ_KC(15)
#undef RQ_KC
                default: a0 = a1 = a2 = a3 = 0u; break;
                }
#undef RQ_PAIR
                const uint4 b = qfrag[kc * 32 + lane];
                mma16816(c, a0, a1, a2, a3, b.x, b.y);
                mma16816(c, a0, a1, a2, a3, b.z, b.w);
            }
            const float na = ta < nt ? rq_dev_f16_at(tk + ta * BK) : 0.0f;
            const float nb = tb < nt ? rq_dev_f16_at(tk + tb * BK) : 0.0f;
            const int g0 = 2 * tig, g1 = g0 + 1;
            sc[g0 * SCS + ta] = ta < nt ? c[0] * na : -INFINITY;
            sc[g1 * SCS + ta] = ta < nt ? c[1] * na : -INFINITY;
            sc[g0 * SCS + tb] = tb < nt ? c[2] * nb : -INFINITY;
            sc[g1 * SCS + tb] = tb < nt ? c[3] * nb : -INFINITY;
            if (tid < TT) vn[tid] = tid < nt ? rq_dev_f16_at(tv + tid * BV) : 0.0f;
        }
        __syncthreads();

        /* ---- online softmax: warp w takes queries w, w+4; 2 tokens per lane ---- */
        for (int g = warp; g < MMA_Q; g += 4) {
            float *row = sc + g * SCS;
            uint16_t *rh = ph + g * SCS, *rl = pl + g * SCS;
            if (g >= ng) {
                rh[lane] = rh[lane + 32] = rl[lane] = rl[lane + 32] = 0;
                if (lane == 0) ml[2 * MMA_Q + g] = 0.0f;
                continue;
            }
            const float s0 = row[lane], s1 = row[lane + 32];
            const float mx = warp_max(fmaxf(s0, s1));
            const float m_old = ml[g], m_new = fmaxf(m_old, mx);
            const float alpha = exp2f(m_old - m_new);
            const float p0 = lane < nt ? exp2f(s0 - m_new) : 0.0f;
            const float p1 = lane + 32 < nt ? exp2f(s1 - m_new) : 0.0f;
            const float w0 = p0 * vn[lane], w1 = p1 * vn[lane + 32];
            const __half h0 = __float2half_rn(w0), h1 = __float2half_rn(w1);
            rh[lane] = __half_as_ushort(h0);
            rh[lane + 32] = __half_as_ushort(h1);
            rl[lane] = __half_as_ushort(__float2half_rn(w0 - __half2float(h0)));
            rl[lane + 32] = __half_as_ushort(__float2half_rn(w1 - __half2float(h1)));
            const float sum = warp_sum(p0 + p1);
            if (lane == 0) {
                ml[g] = m_new;
                ml[MMA_Q + g] = ml[MMA_Q + g] * alpha + sum;
                ml[2 * MMA_Q + g] = alpha;
            }
        }
        __syncthreads();

        /* ---- values ---- */
        {
            const float al0 = ml[2 * MMA_Q + 2 * tig], al1 = ml[2 * MMA_Q + 2 * tig + 1];
#pragma unroll
            for (int m = 0; m < MT; m++) {
                acc[m][0] *= al0;
                acc[m][1] *= al1;
                acc[m][2] *= al0;
                acc[m][3] *= al1;
            }
            const int vbit = vbase * MV;
            const uint4 tvu = s_rlut[1];
            const rlut tv8 = {tvu.x, tvu.y, tvu.z, tvu.w};
            const uint8_t *vcodes = tv + 2;
#pragma unroll
            for (int kc = 0; kc < TT / 16; kc++) {
                const int T0 = 16 * kc + 2 * tig;
                const uint32_t bh0 = *(const uint32_t *)(ph + gid * SCS + T0);
                const uint32_t bh1 = *(const uint32_t *)(ph + gid * SCS + T0 + 8);
                const uint32_t bl0 = *(const uint32_t *)(pl + gid * SCS + T0);
                const uint32_t bl1 = *(const uint32_t *)(pl + gid * SCS + T0 + 8);
                const uint32_t x0 = bits_at(vcodes + T0 * BV, vbit);
                const uint32_t x1 = bits_at(vcodes + (T0 + 1) * BV, vbit);
                const uint32_t x8 = bits_at(vcodes + (T0 + 8) * BV, vbit);
                const uint32_t x9 = bits_at(vcodes + (T0 + 9) * BV, vbit);
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    /* rows gid / gid+8 = value coordinates vbase + 2m / + 1 = codes 2m, 2m+1 */
                    const int s0 = 2 * m * MV, s1 = (2 * m + 1) * MV;
                    constexpr int M = (1 << MV) - 1;
                    uint32_t a0, a1, a2, a3;
                    if constexpr (RV) {
                        /* nibbles: (T0, 2m) (T1, 2m) (T0, 2m+1) (T1, 2m+1) → (a0, a1) */
                        const uint32_t u0 = x0 >> s0, u1 = x1 >> s0, u8 = x8 >> s0, u9 = x9 >> s0;
                        const uint32_t sa = (u0 & M) | ((u1 & M) << 4) | ((u0 << (8 - MV)) & (M << 8)) |
                                            ((u1 << (12 - MV)) & (M << 12));
                        const uint32_t sb = (u8 & M) | ((u9 & M) << 4) | ((u8 << (8 - MV)) & (M << 8)) |
                                            ((u9 << (12 - MV)) & (M << 12));
                        rlut_get4(tv8, sa, a0, a1);
                        rlut_get4(tv8, sb, a2, a3);
                    } else {
                        a0 = (uint32_t)lutV[(x0 >> s0) & M] | ((uint32_t)lutV[(x1 >> s0) & M] << 16);
                        a1 = (uint32_t)lutV[(x0 >> s1) & M] | ((uint32_t)lutV[(x1 >> s1) & M] << 16);
                        a2 = (uint32_t)lutV[(x8 >> s0) & M] | ((uint32_t)lutV[(x9 >> s0) & M] << 16);
                        a3 = (uint32_t)lutV[(x8 >> s1) & M] | ((uint32_t)lutV[(x9 >> s1) & M] << 16);
                    }
                    mma16816(acc[m], a0, a1, a2, a3, bh0, bh1);
                    mma16816(acc[m], a0, a1, a2, a3, bl0, bl1);
                }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int m = 0; m < MT; m++) {
        const int j = vbase + 2 * m, g0 = 2 * tig, g1 = g0 + 1;
        if (g0 < ng) {
            float *o = A.ws_o + ((size_t)(q0 + g0) * A.splits + split) * D + j;
            o[0] = acc[m][0];
            o[1] = acc[m][2];
        }
        if (g1 < ng) {
            float *o = A.ws_o + ((size_t)(q0 + g1) * A.splits + split) * D + j;
            o[0] = acc[m][1];
            o[1] = acc[m][3];
        }
    }
    if (tid < ng) {
        float *o = A.ws_ml + ((size_t)(q0 + tid) * A.splits + split) * 2;
        o[0] = ml[tid];
        o[1] = ml[MMA_Q + tid];
    }
}

template <int D>
static attn_kernel mmaq_kernel(int mk, int mv) {
#define RQ_MV(K)                                                                                      \
    (mv == 2 ? k_attn_mmaq<D, K, 2> : mv == 3 ? k_attn_mmaq<D, K, 3> : mv == 4 ? k_attn_mmaq<D, K, 4> \
                                                                              : (attn_kernel)NULL)
    return mk == 2 ? RQ_MV(2) : mk == 3 ? RQ_MV(3) : mk == 4 ? RQ_MV(4) : (attn_kernel)NULL;
#undef RQ_MV
}

/* ---------------------------------------------------------------------------
 * 2b. f16 K/V: [n_kv][stride][d] halves. The same pipeline as 2a: tiles of
 * TT tokens stream global → shared by 16-byte cp.async, double-buffered;
 * rows padded by 64 bytes so the score phase's 16-byte reads of two tokens
 * fall in different banks.
 * smem: qs[GT][d] | sc[TT][GT] | vn[TT] | ml[4·GT] | red[1024] | K[2][TT][rs] | V[2][TT][rs]
 * ------------------------------------------------------------------------- */
template <int GT, int DMAX>
__global__ void __launch_bounds__(ATT_THREADS) k_attn_f16(const attn_args A) {
    extern __shared__ __align__(16) float smf[];
    constexpr int TT = TT_F16;
    constexpr int MAXG = DMAX / 8 / 4; /* K groups of 8 per thread (4 threads per token) */
    const int tid = threadIdx.x;
    const int split = blockIdx.x, hk = blockIdx.y;
    const int d = A.d, NG = d / 8, rs = 2 * d + 64;
    const int q0 = hk * A.G + blockIdx.z * GT;
    const int ng = min(GT, A.G - (int)blockIdx.z * GT);
    float *qs = smf;
    float *sc = qs + GT * d;
    float *vn = sc + TT * GT;
    float *ml = vn + TT;
    float *red = ml + 4 * GT;
    uint8_t *kbuf = (uint8_t *)(red + 1024), *vbuf = kbuf + 2 * TT * rs;

    for (int i = tid; i < GT * d; i += ATT_THREADS) {
        const int g = i / d;
        qs[i] = g < ng ? A.qr[(size_t)(q0 + g) * d + (i - g * d)] : 0.0f;
    }
    if (tid < GT) {
        ml[tid] = -INFINITY;
        ml[GT + tid] = 0.0f;
    }
    if (tid < TT) vn[tid] = 1.0f;
    const size_t t_begin = (size_t)split * A.tps;
    const size_t t_end = min(A.n_tokens, t_begin + (size_t)A.tps);
    const int n_tiles = (int)((t_end - t_begin + TT - 1) / TT);
    const int grp = tid % NG, tl = tid / NG, ntl = ATT_THREADS / NG;
    const uint4 *K = (const uint4 *)A.k + ((size_t)hk * A.stride + t_begin) * NG; /* 8 halves per uint4 */
    const uint4 *V = (const uint4 *)A.v + ((size_t)hk * A.stride + t_begin) * NG;
    float acc[GT][8];
#pragma unroll
    for (int a = 0; a < GT; a++)
#pragma unroll
        for (int k = 0; k < 8; k++) acc[a][k] = 0.0f;

    auto issue = [&](int it) {
        const int t0 = it * TT, nt = (int)min((size_t)TT, t_end - t_begin - (size_t)t0);
        uint8_t *kb = kbuf + (it & 1) * TT * rs, *vb = vbuf + (it & 1) * TT * rs;
        for (int k = tid; k < nt * NG; k += ATT_THREADS) {
            const int t = k / NG, g = k - t * NG;
            cp_async16(kb + t * rs + 16 * g, K + (size_t)(t0 + t) * NG + g);
            cp_async16(vb + t * rs + 16 * g, V + (size_t)(t0 + t) * NG + g);
        }
    };
    issue(0);
    cp_async_commit();
    for (int it = 0; it < n_tiles; it++) {
        const int nt = (int)min((size_t)TT, t_end - t_begin - (size_t)it * TT);
        if (it + 1 < n_tiles) issue(it + 1);
        cp_async_commit();
        cp_async_wait1();
        __syncthreads();
        const uint8_t *kb = kbuf + (it & 1) * TT * rs, *vb = vbuf + (it & 1) * TT * rs;

        /* scores: token t = tid/4, quarter p = tid&3 takes groups p, p+4, … */
        const int t = tid >> 2, p = tid & 3;
        float s[GT];
#pragma unroll
        for (int a = 0; a < GT; a++) s[a] = 0.0f;
#pragma unroll
        for (int u = 0; u < MAXG; u++) {
            const int g = p + 4 * u;
            if (t < nt && g < NG) {
                const uint4 raw = *(const uint4 *)(kb + t * rs + 16 * g);
                const __half2 *h = (const __half2 *)&raw;
                float c[8];
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    const float2 f = __half22float2(h[k]);
                    c[2 * k] = f.x;
                    c[2 * k + 1] = f.y;
                }
#pragma unroll
                for (int a = 0; a < GT; a++) {
                    const float4 qa = *(const float4 *)(qs + a * d + 8 * g);
                    const float4 qb = *(const float4 *)(qs + a * d + 8 * g + 4);
                    float x = s[a];
                    x = fmaf(c[0], qa.x, x);
                    x = fmaf(c[1], qa.y, x);
                    x = fmaf(c[2], qa.z, x);
                    x = fmaf(c[3], qa.w, x);
                    x = fmaf(c[4], qb.x, x);
                    x = fmaf(c[5], qb.y, x);
                    x = fmaf(c[6], qb.z, x);
                    x = fmaf(c[7], qb.w, x);
                    s[a] = x;
                }
            }
        }
#pragma unroll
        for (int a = 0; a < GT; a++) {
            s[a] += __shfl_xor_sync(0xffffffffu, s[a], 1);
            s[a] += __shfl_xor_sync(0xffffffffu, s[a], 2);
        }
        if (p == 0)
#pragma unroll
            for (int a = 0; a < GT; a++) sc[t * GT + a] = t < nt ? s[a] : -INFINITY;
        __syncthreads();
        tile_softmax<GT, TT>(sc, vn, ml, ng, nt);
        __syncthreads();
        if (tl < ntl) {
#pragma unroll
            for (int a = 0; a < GT; a++) {
                const float al = ml[2 * GT + a];
#pragma unroll
                for (int k = 0; k < 8; k++) acc[a][k] *= al;
            }
            for (int tv = tl; tv < nt; tv += ntl) {
                const uint4 raw = *(const uint4 *)(vb + tv * rs + 16 * grp);
                const __half2 *h = (const __half2 *)&raw;
                float c[8];
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    const float2 f = __half22float2(h[k]);
                    c[2 * k] = f.x;
                    c[2 * k + 1] = f.y;
                }
#pragma unroll
                for (int a = 0; a < GT; a++) {
                    const float pw = sc[tv * GT + a];
#pragma unroll
                    for (int k = 0; k < 8; k++) acc[a][k] = fmaf(pw, c[k], acc[a][k]);
                }
            }
        }
        __syncthreads();
    }
    split_write<GT>(A, acc, ml, red, q0, ng, split, grp, tl, ntl);
}

/* ---------------------------------------------------------------------------
 * 3. merge splits, normalize, Π_Vᵀ: one CTA of 256 threads per query head.
 *    Split weights f_s = 2^(m_s − M) in shared memory; thread (j, slice)
 *    sums output coordinate j over every S-th split (independent loads in
 *    flight), slices are added in shared memory, and warp 0 applies the
 *    inverse rotation (both of its teams run it: shuffles need every lane).
 * smem: f[ATT_MAX_SPLITS] | part[256] | red[8] | vec[d] | rows[2][2][d]
 * ------------------------------------------------------------------------- */
__device__ __forceinline__ float block_reduce(float x, float *red, bool is_max) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    x = is_max ? warp_max(x) : warp_sum(x);
    if (lane == 0) red[warp] = x;
    __syncthreads();
    float y = lane < (int)(blockDim.x >> 5) ? red[lane] : (is_max ? -INFINITY : 0.0f);
    y = is_max ? warp_max(y) : warp_sum(y);
    __syncthreads();
    return y;
}

template <int E>
__global__ void __launch_bounds__(256) k_combine(const rq_dev_rot R, const float *__restrict__ ws_o,
                                                 const float *__restrict__ ws_ml, int splits, int d,
                                                 float *__restrict__ out) {
    extern __shared__ __align__(16) float smc[];
    float *f = smc, *part = f + ATT_MAX_SPLITS, *red = part + 256, *vec = red + 8, *rows = vec + d;
    const int tid = threadIdx.x, h = blockIdx.x;
    const float *ml = ws_ml + (size_t)h * splits * 2;
    float m = -INFINITY;
    for (int s = tid; s < splits; s += 256) m = fmaxf(m, ml[2 * s]);
    const float M = block_reduce(m, red, true);
    float l = 0.0f;
    for (int s = tid; s < splits; s += 256) {
        const float w = exp2f(ml[2 * s] - M);
        f[s] = w;
        l = fmaf(w, ml[2 * s + 1], l);
    }
    const float L = block_reduce(l, red, false); /* ends with __syncthreads: f[] visible */
    const int S = 256 / d, j = tid % d, sl = tid / d;
    if (sl < S) {
        const float *o = ws_o + (size_t)h * splits * d + j;
        float acc = 0.0f;
#pragma unroll 4
        for (int s = sl; s < splits; s += S) acc = fmaf(f[s], __ldg(o + (size_t)s * d), acc);
        part[tid] = acc;
    }
    __syncthreads();
    if (tid < d) {
        float t = 0.0f;
        for (int u = 0; u < S; u++) t += part[u * d + tid];
        vec[tid] = t / L;
    }
    __syncthreads();
    if (tid < 32) {
        const int team = tid >> 4, r = tid & 15;
        float *rowa = rows + team * 2 * d, *rowb = rowa + d;
        float y[E];
        rq_team_load_row<E>(y, vec, d, r);
        rq_team_rotate<E>(R, y, rowa, rowb, true, r);
        if (team == 0)
#pragma unroll
            for (int e = 0; e < E; e++)
                if (r + 16 * e < d) out[(size_t)h * d + r + 16 * e] = y[e];
    }
}

/* ---------------------------------------------------------------------------
 * Host side
 * ------------------------------------------------------------------------- */
extern "C" rq_status rq_cuda_attn_init(rq_cuda_attn **out, int n_q_heads, int n_kv_heads, int head_dim) {
    if (!out) return RQ_ERR_INVALID_ARG;
    *out = NULL;
    if (n_q_heads <= 0 || n_kv_heads <= 0 || n_q_heads % n_kv_heads) return RQ_ERR_SHAPE;
    if (head_dim < 8 || head_dim > RQ_CUDA_MAX_DIMS || head_dim % 8) return RQ_ERR_DIM;
    if (!rq_cuda_available()) return RQ_ERR_UNSUPPORTED;
    rq_cuda_attn *a = (rq_cuda_attn *)calloc(1, sizeof *a);
    if (!a) return RQ_ERR_NOMEM;
    a->n_q = n_q_heads;
    a->n_kv = n_kv_heads;
    a->d = head_dim;
    size_t nq = (size_t)n_q_heads, d = (size_t)head_dim;
    if (rq__cuda_check(cudaMalloc((void **)&a->qr, nq * d * sizeof(float))) ||
        rq__cuda_check(cudaMalloc((void **)&a->ws_o, nq * ATT_MAX_SPLITS * d * sizeof(float))) ||
        rq__cuda_check(cudaMalloc((void **)&a->ws_ml, nq * ATT_MAX_SPLITS * 2 * sizeof(float)))) {
        rq_cuda_attn_free(a);
        return RQ_ERR_NOMEM;
    }
    a->none.d = head_dim;
    *out = a;
    return RQ_OK;
}

extern "C" void rq_cuda_attn_free(rq_cuda_attn *a) {
    if (!a) return;
    cudaFree(a->qr);
    cudaFree(a->ws_o);
    cudaFree(a->ws_ml);
    free(a);
}

extern "C" void rq_cuda_attn_set_splits(rq_cuda_attn *a, int n_splits) {
    if (a) a->force_splits = n_splits < 0 ? 0 : n_splits > ATT_MAX_SPLITS ? ATT_MAX_SPLITS : n_splits;
}

/* Test/benchmark hook (not in the public header): 1 forces the CUDA-core
 * packed kernel for head dims the tensor-core kernel serves. */
extern "C" void rq__cuda_attn_force_simt(rq_cuda_attn *a, int on) {
    if (a) {
        a->simt = on == 1;
        a->generic_mma = on == 2;
    }
}

static int gt_of(int G) { return G <= 1 ? 1 : G <= 2 ? 2 : G <= 4 ? 4 : 8; }

/* Split the token range so that the grid is one full wave: `slots` CTAs
 * (multiprocessors × CTAs resident per multiprocessor, from the occupancy
 * calculator) — every CTA then streams about the same number of tokens and
 * several per multiprocessor overlap their loads. At least two tiles per
 * split, a whole number of tiles per split. The merge (k_combine) is
 * parallel over splits, so more splits cost little. */
static void plan_splits(const rq_cuda_attn *a, size_t n_tokens, int tt, int n_chunks, size_t slots, int *splits,
                        int *tps) {
    size_t want;
    if (a->force_splits) {
        want = (size_t)a->force_splits;
    } else {
        size_t ctas = (size_t)a->n_kv * (size_t)n_chunks;
        want = (slots + ctas - 1) / ctas;
        size_t cap = (n_tokens + 2 * (size_t)tt - 1) / (2 * (size_t)tt);
        if (want > cap) want = cap;
    }
    if (want < 1) want = 1;
    if (want > ATT_MAX_SPLITS) want = ATT_MAX_SPLITS;
    size_t per = (n_tokens + want - 1) / want;
    per = (per + (size_t)tt - 1) / (size_t)tt * (size_t)tt;
    *tps = (int)per;
    *splits = (int)((n_tokens + per - 1) / per);
}

static size_t rot_rows_bytes(int d) { return 16 * 2 * (size_t)d * sizeof(float); }

template <int E>
static rq_status launch_rot(const rq_dev_rot &R, const float *in, float *out, int n, int d, float mult,
                            cudaStream_t s) {
    k_qrot<E><<<(n + 15) / 16, 256, rot_rows_bytes(d), s>>>(R, in, out, n, d, mult);
    return rq__cuda_check(cudaGetLastError()) ? RQ_ERR_UNSUPPORTED : RQ_OK;
}
template <int E>
static rq_status launch_combine(const rq_dev_rot &R, const rq_cuda_attn *a, int splits, float *out,
                                cudaStream_t s) {
    size_t smem = sizeof(float) * (ATT_MAX_SPLITS + 256 + 8 + 5 * (size_t)a->d);
    k_combine<E><<<a->n_q, 256, smem, s>>>(R, a->ws_o, a->ws_ml, splits, a->d, out);
    return rq__cuda_check(cudaGetLastError()) ? RQ_ERR_UNSUPPORTED : RQ_OK;
}

static rq_status run_rot(const rq_dev_rot &R, const float *in, float *out, int n, int d, float mult,
                         cudaStream_t s) {
    return d <= 64 ? launch_rot<4>(R, in, out, n, d, mult, s)
           : d <= 128 ? launch_rot<8>(R, in, out, n, d, mult, s)
                      : launch_rot<16>(R, in, out, n, d, mult, s);
}
static rq_status run_combine(const rq_dev_rot &R, const rq_cuda_attn *a, int splits, float *out, cudaStream_t s) {
    return a->d <= 64 ? launch_combine<4>(R, a, splits, out, s)
           : a->d <= 128 ? launch_combine<8>(R, a, splits, out, s)
                         : launch_combine<16>(R, a, splits, out, s);
}

static attn_kernel packed_kernel(int gt) {
    return gt == 1 ? k_attn_packed<1> : gt == 2 ? k_attn_packed<2> : gt == 4 ? k_attn_packed<4> : k_attn_packed<8>;
}
static attn_kernel f16_kernel(int gt, int d) {
    if (d <= 128)
        return gt == 1 ? k_attn_f16<1, 128> : gt == 2 ? k_attn_f16<2, 128> : gt == 4 ? k_attn_f16<4, 128> : k_attn_f16<8, 128>;
    return gt == 1 ? k_attn_f16<1, 256> : gt == 2 ? k_attn_f16<2, 256> : gt == 4 ? k_attn_f16<4, 256> : k_attn_f16<8, 256>;
}

/* qpc: query heads per CTA (grid z = ⌈G / qpc⌉) */
static rq_status launch_attn(rq_cuda_attn *a, attn_args &A, attn_kernel fn, int tt, int qpc, size_t smem,
                             cudaStream_t s) {
    const int n_chunks = (A.G + qpc - 1) / qpc;
    if (a->occ_fn != (const void *)fn || a->occ_smem != smem) {
        if (smem > 48 * 1024 && rq__cuda_check(cudaFuncSetAttribute((const void *)fn,
                                                                     cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                                     (int)smem)))
            return RQ_ERR_UNSUPPORTED;
        int n = 0;
        if (rq__cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, fn, ATT_THREADS, smem)) || n < 1) n = 1;
        a->occ_fn = (const void *)fn;
        a->occ_smem = smem;
        a->occ_per_sm = n;
    }
    const int per_sm = a->occ_per_sm;
    plan_splits(a, A.n_tokens, tt, n_chunks, (size_t)rq__cuda_num_sms() * (size_t)per_sm, &A.splits, &A.tps);
    fn<<<dim3(A.splits, A.n_kv, n_chunks), ATT_THREADS, smem, s>>>(A);
    return rq__cuda_check(cudaGetLastError()) ? RQ_ERR_UNSUPPORTED : RQ_OK;
}

static rq_status attn_common(rq_cuda_attn *a, const float *d_q, size_t n_tokens, size_t kv_stride, float scale,
                             float *d_out, attn_args &A) {
    if (!a || !d_q || !d_out) return RQ_ERR_INVALID_ARG;
    if (n_tokens == 0) return RQ_ERR_INVALID_ARG;
    if (kv_stride == 0) kv_stride = n_tokens;
    if (kv_stride < n_tokens) return RQ_ERR_SHAPE;
    if (!(scale > 0.0f) || !isfinite(scale)) scale = (float)(1.0 / sqrt((double)a->d));
    memset(&A, 0, sizeof A);
    A.qr = a->qr;
    A.n_tokens = n_tokens;
    A.stride = kv_stride;
    A.n_q = a->n_q;
    A.n_kv = a->n_kv;
    A.G = a->n_q / a->n_kv;
    A.d = a->d;
    A.ws_o = a->ws_o;
    A.ws_ml = a->ws_ml;
    (void)scale;
    return RQ_OK;
}

extern "C" rq_status rq_cuda_attention(rq_cuda_attn *a, const rq_cuda_quantizer *k, const rq_cuda_quantizer *v,
                                       const float *d_q, const void *d_k, const void *d_v, size_t n_tokens,
                                       size_t kv_stride, float scale, float *d_out, void *stream) {
    attn_args A;
    rq_status st = attn_common(a, d_q, n_tokens, kv_stride, scale, d_out, A);
    if (st) return st;
    if (!k || !v || !d_k || !d_v) return RQ_ERR_INVALID_ARG;
    const rq_dev_q &K = k->dq, &V = v->dq;
    if (K.d != a->d || V.d != a->d) return RQ_ERR_SHAPE;
    if (K.prod || V.prod || K.mse_bits < 1 || V.mse_bits < 1) return RQ_ERR_UNSUPPORTED; /* QJL types: CPU only */
    if (K.mse_bits > RQ_CUDA_MAX_BITS || V.mse_bits > RQ_CUDA_MAX_BITS) return RQ_ERR_UNSUPPORTED; /* never built */
    if (!(scale > 0.0f) || !isfinite(scale)) scale = (float)(1.0 / sqrt((double)a->d));
    cudaStream_t s = (cudaStream_t)stream;
    A.k = (const uint8_t *)d_k;
    A.v = (const uint8_t *)d_v;
    A.bk = K.bytes;
    A.bv = V.bytes;
    A.mk = K.mse_bits;
    A.mv = V.mse_bits;
    A.ko = K.code_off;
    A.vo = V.code_off;
    for (int i = 0; i < 16; i++) {
        A.ck[i] = K.centroids[i];
        A.cv[i] = V.centroids[i];
    }
    st = run_rot(K.rot, d_q, a->qr, a->n_q, a->d, scale * LOG2E, s);
    if (st) return st;
    const size_t raw = 2 * (size_t)((TT_PACKED * A.bk + 16 + 15) & ~15) + 2 * (size_t)((TT_PACKED * A.bv + 16 + 15) & ~15);
    if (a->d % 16 == 0 && !a->simt) { /* tensor cores */
        size_t smem = sizeof(float) * (16 + MMA_Q * SCS + 2 * TT_PACKED + 4 * MMA_Q) + raw + (size_t)a->d / 16 * 32 * 16 +
                      2 * MMA_Q * SCS * sizeof(uint16_t); /* k_attn_mmaq's fp16 weights (unused by k_attn_mma) */
        attn_kernel fn = NULL;
        if (!a->generic_mma) {
            if (a->d == 64) fn = mmaq_kernel<64>(A.mk, A.mv);
            else if (a->d == 128) fn = mmaq_kernel<128>(A.mk, A.mv);
            else if (a->d == 256) fn = mmaq_kernel<256>(A.mk, A.mv);
        }
        if (!fn) fn = a->d <= 128 ? k_attn_mma<128> : k_attn_mma<256>;
        st = launch_attn(a, A, fn, TT_PACKED, MMA_Q, smem, s);
    } else {
        const int gt = gt_of(A.G);
        size_t smem = sizeof(float) * ((size_t)gt * a->d + 32 + TT_PACKED * gt + TT_PACKED + 4 * gt + 1024) + raw;
        st = launch_attn(a, A, packed_kernel(gt), TT_PACKED, gt, smem, s);
    }
    if (st) return st;
    return run_combine(V.rot, a, A.splits, d_out, s);
}

extern "C" rq_status rq_cuda_attention_f16(rq_cuda_attn *a, const float *d_q, const uint16_t *d_k,
                                           const uint16_t *d_v, size_t n_tokens, size_t kv_stride, float scale,
                                           float *d_out, void *stream) {
    attn_args A;
    rq_status st = attn_common(a, d_q, n_tokens, kv_stride, scale, d_out, A);
    if (st) return st;
    if (!d_k || !d_v) return RQ_ERR_INVALID_ARG;
    if (((uintptr_t)d_k | (uintptr_t)d_v) & 15) return RQ_ERR_INVALID_ARG; /* 16-byte loads */
    if (!(scale > 0.0f) || !isfinite(scale)) scale = (float)(1.0 / sqrt((double)a->d));
    cudaStream_t s = (cudaStream_t)stream;
    A.k = (const uint8_t *)d_k;
    A.v = (const uint8_t *)d_v;
    st = run_rot(a->none, d_q, a->qr, a->n_q, a->d, scale * LOG2E, s);
    if (st) return st;
    const int gt = gt_of(A.G);
    size_t smem = sizeof(float) * ((size_t)gt * a->d + TT_F16 * gt + TT_F16 + 4 * gt + 1024) +
                  4 * (size_t)TT_F16 * (2 * (size_t)a->d + 64);
    st = launch_attn(a, A, f16_kernel(gt, a->d), TT_F16, gt, smem, s);
    if (st) return st;
    return run_combine(a->none, a, A.splits, d_out, s);
}
