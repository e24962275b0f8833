/*
 * rq_cuda.cuh — device-side description of a quantizer and the per-vector
 * building blocks shared by the CUDA kernels (the src/cuda .cu).
 *
 * Work unit: a *team* of 16 consecutive lanes (half a warp) owns one head
 * vector of d ≤ 256 floats. Lane r of the team holds the elements
 *     i = r + 16·e,   e = 0 … E−1            ("strided layout")
 * in registers. That layout is chosen for bit-exactness with the CPU
 * reference (docs/FORMAT.md, src/rotation.c, src/quant.c):
 *   - rq__sumsq_ref / rq__dot_ref sum with 16 interleaved partial sums,
 *     partial l taking i ≡ l (mod 16) in increasing i, then a pairwise tree
 *     acc[l] += acc[l+w], w = 8, 4, 2, 1. In the strided layout lane r's own
 *     sequential sum *is* partial r, and the tree is 4 xor-shuffles (IEEE
 *     addition is commutative, so lane l and lane l^w compute the same sum).
 *   - The Walsh–Hadamard butterflies run h = 1, 2, 4, … in that order (each
 *     butterfly node is one add or sub of the same two operands, so any
 *     execution order within a stage gives the same bits): h < 16 pairs lane
 *     r with lane r^h, h ≥ 16 pairs registers e and e + h/16 of one lane.
 * Every other rotation family (Kronecker Hadamard with an odd factor, dense,
 * rotor / planar / iso blocks) goes through a per-team shared-memory row with
 * exactly the CPU's per-output operation order.
 *
 * All .cu files are compiled with -fmad=false (no silent FMA contraction;
 * the CPU build uses -ffp-contract=off), IEEE division and square root
 * (nvcc's defaults -prec-div=true -prec-sqrt=true), and fp16 conversion with
 * __float2half_rn (round to nearest even, = rq_f32_to_f16). Kernels that do
 * not have to be bit-exact (attention) ask for FMA explicitly with fmaf().
 */
#ifndef RQ_CUDA_CUH
#define RQ_CUDA_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "blocks.h" /* the block layouts, shared with the C library */

#define RQ_CUDA_MAX_DIMS 256 /* d served by the GPU kernels (E = d/16 ≤ 16)  */
/* Code bits served by the GPU kernels: 16-entry codebooks, 8 codes per
 * 32-bit word in rq_team_pack, 16-entry attention LUTs. The 5-bit MSE types
 * are CPU only: rq_cuda_quantizer_init rejects them (RQ_ERR_UNSUPPORTED)
 * before anything is copied into these arrays. */
#define RQ_CUDA_MAX_BITS 4
#define RQ_CUDA_TEAM 16      /* lanes per vector                               */

/* A rotation as the kernels read it (plain data, passed by value). */
struct rq_dev_rot {
    int kind;            /* rq_rot_kind                                       */
    int d;
    /* hadamard: d = n_pow2 · n_odd */
    int n_pow2, n_odd;
    float h_scale;
    uint32_t neg[RQ_CUDA_MAX_DIMS / 32]; /* sign bit i set → σ_i = −1         */
    const float *q_odd;  /* n_odd × n_odd row-major (device), NULL if m = 1   */
    /* dense */
    const float *mat;    /* Π row-major (device)                               */
    const float *mat_t;  /* Πᵀ row-major (device)                              */
    /* rotor / planar / iso */
    const float *bp;     /* n_blocks × n_bp (device)                           */
    const float *bm;     /* rotor: n_blocks × 9, each block's 3×3 map M (device) */
    int block, n_blocks, n_bp;
};

/* A quantizer as the kernels read it. */
struct rq_dev_q {
    int d, family;       /* rq_family                                          */
    int mse_bits;        /* 0..RQ_CUDA_MAX_BITS                                */
    int prod;            /* QJL stage present                                  */
    int bytes;           /* per block                                          */
    int code_off;        /* RQ_MSE_CODES_OFF or RQ_PROD_CODES_OFF (blocks.h)   */
    int sign_off;        /* PROD: offset of the sign bits                       */
    int norm_correct;
    float bounds[1 << RQ_CUDA_MAX_BITS];    /* 2^b − 1 used                     */
    float centroids[1 << RQ_CUDA_MAX_BITS]; /* 2^b used                         */
    float qjl_alpha;
    const float *qjl_s;  /* Gaussian S, d×d row-major (device), or NULL        */
    rq_dev_rot rot;
    rq_dev_rot qjl_rot;  /* structured S (kind = hadamard), or kind = 0         */
};

/* Error codes the kernels record (first one wins): rq_status values. */
#define RQ_DEV_ERR_NONFINITE (-4)
#define RQ_DEV_ERR_RANGE (-7)

__device__ __forceinline__ void rq_dev_record_error(int *err, int code) {
    if (err) atomicCAS(err, 0, code);
}

/* ---------------------------------------------------------------------------
 * Team reductions (16 lanes)
 * ------------------------------------------------------------------------- */
__device__ __forceinline__ float rq_team_tree(float acc) {
    /* acc[l] += acc[l + w] for w = 8, 4, 2, 1; every lane ends with acc[0]. */
#pragma unroll
    for (int w = 8; w >= 1; w >>= 1) acc = acc + __shfl_xor_sync(0xffffffffu, acc, w, 16);
    return acc;
}

/* rq__sumsq_ref of the team's vector. */
template <int E>
__device__ __forceinline__ float rq_team_sumsq(const float v[E], int d, int r) {
    float acc = 0.0f;
#pragma unroll
    for (int e = 0; e < E; e++)
        if (r + 16 * e < d) acc = acc + v[e] * v[e];
    return rq_team_tree(acc);
}

/* ---------------------------------------------------------------------------
 * Exact per-block maps (copies of src/rotation_block.c rq__block_apply, same
 * expressions, same evaluation order). The rotor block is applied as its
 * 3×3 matrix M (docs/FORMAT.md §3): y_i = (M_i0 v_0 + M_i1 v_1) + M_i2 v_2,
 * inverse with Mᵀ.
 * ------------------------------------------------------------------------- */
__device__ __forceinline__ void rq_dev_qmul(const float a[4], const float b[4], float out[4]) {
    const float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    const float b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
    out[0] = a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3;
    out[1] = a0 * b1 + a1 * b0 + a2 * b3 - a3 * b2;
    out[2] = a0 * b2 - a1 * b3 + a2 * b0 + a3 * b1;
    out[3] = a0 * b3 + a1 * b2 - a2 * b1 + a3 * b0;
}

/* One block of a block family, in place on v (B floats). */
__device__ __forceinline__ void rq_dev_block_apply(const rq_dev_rot &R, int b, float *v, bool inverse) {
    const float *p = R.bp + (size_t)b * R.n_bp;
    if (R.block == 3) { /* rotor: y = M v, or Mᵀ v for the inverse */
        const float *m = R.bm + (size_t)b * 9;
        const float v0 = v[0], v1 = v[1], v2 = v[2];
        if (inverse) {
            v[0] = m[0] * v0 + m[3] * v1 + m[6] * v2;
            v[1] = m[1] * v0 + m[4] * v1 + m[7] * v2;
            v[2] = m[2] * v0 + m[5] * v1 + m[8] * v2;
        } else {
            v[0] = m[0] * v0 + m[1] * v1 + m[2] * v2;
            v[1] = m[3] * v0 + m[4] * v1 + m[5] * v2;
            v[2] = m[6] * v0 + m[7] * v1 + m[8] * v2;
        }
    } else if (R.block == 2) { /* planar */
        const float c = p[0], s = p[1], x0 = v[0], x1 = v[1];
        if (inverse) {
            v[0] = c * x0 + s * x1;
            v[1] = c * x1 - s * x0;
        } else {
            v[0] = c * x0 - s * x1;
            v[1] = s * x0 + c * x1;
        }
    } else { /* iso: q_L v conj(q_R); inverse conj(q_L) v q_R */
        float t[4], w[4] = {v[0], v[1], v[2], v[3]};
        if (inverse) {
            const float qlc[4] = {p[0], -p[1], -p[2], -p[3]};
            const float qr[4] = {p[4], p[5], p[6], p[7]};
            rq_dev_qmul(qlc, w, t);
            rq_dev_qmul(t, qr, w);
        } else {
            const float ql[4] = {p[0], p[1], p[2], p[3]};
            const float qrc[4] = {p[4], -p[5], -p[6], -p[7]};
            rq_dev_qmul(ql, w, t);
            rq_dev_qmul(t, qrc, w);
        }
        for (int i = 0; i < 4; i++) v[i] = w[i];
    }
}

/* ---------------------------------------------------------------------------
 * Rotations on a team's vector. v: the strided registers (in and out).
 * rowa, rowb: this team's two shared-memory rows of ≥ d floats (used by
 * the shared-memory families only). Every lane of both teams of a warp
 * must call these together (they shuffle and __syncwarp).
 * ------------------------------------------------------------------------- */
template <int E>
__device__ __forceinline__ void rq_team_signs(const rq_dev_rot &R, float v[E], int r) {
#pragma unroll
    for (int e = 0; e < E; e++) {
        int i = r + 16 * e;
        if (i < R.d) v[e] = v[e] * (((R.neg[i >> 5] >> (i & 31)) & 1u) ? -1.0f : 1.0f);
    }
}

/* Unnormalized butterflies h = 1 … n−1 on the strided registers (n = d,
 * a power of two), h < 16 across lanes, h ≥ 16 within a lane. */
template <int E>
__device__ __forceinline__ void rq_team_fwht_reg(float v[E], int n, int r) {
#pragma unroll
    for (int h = 1; h < 16; h <<= 1) {
        if (h >= n) break;
        const bool upper = (r & h) != 0;
#pragma unroll
        for (int e = 0; e < E; e++) {
            float p = __shfl_xor_sync(0xffffffffu, v[e], h, 16);
            v[e] = upper ? p - v[e] : v[e] + p;
        }
    }
#pragma unroll
    for (int hh = 1; hh < E; hh <<= 1) {
        if (16 * hh >= n) break;
#pragma unroll
        for (int e = 0; e < E; e++) {
            if (e & hh) continue;
            float a = v[e], b = v[e + hh];
            v[e] = a + b;
            v[e + hh] = a - b;
        }
    }
}

template <int E>
__device__ __forceinline__ void rq_team_store_row(const float v[E], float *row, int d, int r) {
#pragma unroll
    for (int e = 0; e < E; e++)
        if (r + 16 * e < d) row[r + 16 * e] = v[e];
}

template <int E>
__device__ __forceinline__ void rq_team_load_row(float v[E], const float *row, int d, int r) {
#pragma unroll
    for (int e = 0; e < E; e++) v[e] = (r + 16 * e < d) ? row[r + 16 * e] : 0.0f;
}

/* fwht_wide (src/rotation.c) on a shared row: n_pow2 elements of m floats. */
__device__ __forceinline__ void rq_team_fwht_row(float *row, int n, int m, int r) {
    const int n_pairs = (n >> 1) * m;
    for (int h = 1; h < n; h <<= 1) {
        for (int k = r; k < n_pairs; k += 16) {
            int jj = k / m, a = k - jj * m;
            int j = (jj / h) * (2 * h) + (jj % h);
            float *pa = row + (size_t)j * m + a, *pb = row + (size_t)(j + h) * m + a;
            float u = *pa, w = *pb;
            *pa = u + w;
            *pb = u - w;
        }
        __syncwarp();
    }
}

/* out_block = Q_m · in_block (or Q_mᵀ) for each of the n_pow2 runs of m. */
__device__ __forceinline__ void rq_team_odd_row(const rq_dev_rot &R, const float *in, float *out,
                                                bool transpose, int r) {
    const int m = R.n_odd;
    for (int o = r; o < R.d; o += 16) {
        int p = o / m, a = o - p * m;
        const float *blk = in + (size_t)p * m;
        float s = 0;
        for (int b = 0; b < m; b++)
            s += (transpose ? __ldg(R.q_odd + b * m + a) : __ldg(R.q_odd + a * m + b)) * blk[b];
        out[o] = s;
    }
    __syncwarp();
}

/* y = Π v (forward) or Πᵀ v (inverse), exactly as src/rotation.c. */
template <int E>
__device__ __forceinline__ void rq_team_rotate(const rq_dev_rot &R, float v[E], float *rowa, float *rowb,
                                               bool inverse, int r) {
    const int d = R.d;
    switch (R.kind) {
    case 2: /* hadamard */
        if (!inverse) rq_team_signs<E>(R, v, r);
        if (R.n_odd == 1) {
            rq_team_fwht_reg<E>(v, R.n_pow2, r);
#pragma unroll
            for (int e = 0; e < E; e++) v[e] = v[e] * R.h_scale;
        } else if (!inverse) {
            rq_team_store_row<E>(v, rowa, d, r);
            __syncwarp();
            rq_team_odd_row(R, rowa, rowb, false, r);
            rq_team_fwht_row(rowb, R.n_pow2, R.n_odd, r);
            rq_team_load_row<E>(v, rowb, d, r);
#pragma unroll
            for (int e = 0; e < E; e++) v[e] = v[e] * R.h_scale;
            __syncwarp();
        } else {
            rq_team_store_row<E>(v, rowa, d, r);
            __syncwarp();
            rq_team_fwht_row(rowa, R.n_pow2, R.n_odd, r);
            for (int i = r; i < d; i += 16) rowa[i] = rowa[i] * R.h_scale;
            __syncwarp();
            rq_team_odd_row(R, rowa, rowb, true, r);
            rq_team_load_row<E>(v, rowb, d, r);
            __syncwarp();
        }
        if (inverse) rq_team_signs<E>(R, v, r);
        break;
    case 1: { /* dense: y_i = Σ_j M_ij x_j in increasing j */
        rq_team_store_row<E>(v, rowa, d, r);
        __syncwarp();
        const float *mt = inverse ? R.mat : R.mat_t; /* mt[j·d + i] = M_ij */
        float acc[E];
#pragma unroll
        for (int e = 0; e < E; e++) acc[e] = 0.0f;
        for (int j = 0; j < d; j++) {
            const float xj = rowa[j];
            const float *col = mt + (size_t)j * d;
#pragma unroll
            for (int e = 0; e < E; e++)
                if (r + 16 * e < d) acc[e] += __ldg(col + r + 16 * e) * xj;
        }
#pragma unroll
        for (int e = 0; e < E; e++) v[e] = acc[e];
        __syncwarp();
        break;
    }
    case 3:
    case 4:
    case 5: { /* block families */
        rq_team_store_row<E>(v, rowa, d, r);
        __syncwarp();
        const int B = R.block, n_reg = d / B;
        const bool tail = n_reg < R.n_blocks;
        if (inverse && tail) {
            if (r == 0) rq_dev_block_apply(R, R.n_blocks - 1, rowa + d - B, true);
            __syncwarp();
        }
        for (int b = r; b < n_reg; b += 16) rq_dev_block_apply(R, b, rowa + b * B, inverse);
        __syncwarp();
        if (!inverse && tail) {
            if (r == 0) rq_dev_block_apply(R, R.n_blocks - 1, rowa + d - B, false);
            __syncwarp();
        }
        rq_team_load_row<E>(v, rowa, d, r);
        __syncwarp();
        break;
    }
    default: break; /* none */
    }
}

/* ---------------------------------------------------------------------------
 * Packed codes: little-endian bitstream, code i at bits [i·b, (i+1)·b).
 * ------------------------------------------------------------------------- */
/* Code of y: number of bounds strictly below y (rq_codebook_index). */
template <int BITS>
__device__ __forceinline__ int rq_dev_cell(const float *bounds, float y) {
    int c = 0;
#pragma unroll
    for (int k = 0; k < (1 << BITS) - 1; k++) c += bounds[k] < y;
    return c;
}

/* Pack the team's d codes (one byte each in codes[]) into dst (⌈d·b/8⌉
 * bytes): lane r writes the b bytes of code groups r, r + 16, … */
__device__ __forceinline__ void rq_team_pack(const uint8_t *codes, int d, int bits, uint8_t *dst, int r) {
    const int n_bytes = (d * bits + 7) / 8, n_groups = (d + 7) / 8;
    for (int g = r; g < n_groups; g += 16) {
        uint32_t w = 0;
        for (int k = 0; k < 8; k++) {
            int i = 8 * g + k;
            uint32_t c = i < d ? codes[i] : 0u;
            w |= c << (bits * k);
        }
        for (int k = 0; k < bits && g * bits + k < n_bytes; k++) dst[g * bits + k] = (uint8_t)(w >> (8 * k));
    }
}

/* Code i of a packed stream (byte loads: src may be unaligned). */
__device__ __forceinline__ int rq_dev_code(const uint8_t *src, int i, int bits) {
    int bit = i * bits;
    unsigned v = src[bit >> 3];
    if ((bit & 7) + bits > 8) v |= (unsigned)src[(bit >> 3) + 1] << 8;
    return (int)((v >> (bit & 7)) & ((1u << bits) - 1u));
}

__device__ __forceinline__ float rq_dev_f16_at(const uint8_t *p) {
    unsigned short h = (unsigned short)(p[0] | (p[1] << 8));
    return __half2float(__ushort_as_half(h));
}

/* Copy n bytes from shared src to global dst (16-byte stores where the two
 * are equally aligned), by the nthreads threads of the CTA. */
__device__ __forceinline__ void rq_cta_copy_out(uint8_t *dst, const uint8_t *src, int n, int tid, int nthreads) {
    if ((((uintptr_t)dst ^ (uintptr_t)src) & 15) == 0) {
        int head = (int)((16 - ((uintptr_t)dst & 15)) & 15);
        if (head > n) head = n;
        int n16 = (n - head) >> 4;
        for (int k = tid; k < head; k += nthreads) dst[k] = src[k];
        const uint4 *s4 = (const uint4 *)(src + head);
        uint4 *d4 = (uint4 *)(dst + head);
        for (int k = tid; k < n16; k += nthreads) d4[k] = s4[k];
        for (int k = head + 16 * n16 + tid; k < n; k += nthreads) dst[k] = src[k];
    } else {
        for (int k = tid; k < n; k += nthreads) dst[k] = src[k];
    }
}

/* Copy n bytes global → shared, same scheme. */
__device__ __forceinline__ void rq_cta_copy_in(uint8_t *dst, const uint8_t *src, int n, int tid, int nthreads) {
    if ((((uintptr_t)dst ^ (uintptr_t)src) & 15) == 0) {
        int head = (int)((16 - ((uintptr_t)src & 15)) & 15);
        if (head > n) head = n;
        int n16 = (n - head) >> 4;
        for (int k = tid; k < head; k += nthreads) dst[k] = src[k];
        const uint4 *s4 = (const uint4 *)(src + head);
        uint4 *d4 = (uint4 *)(dst + head);
        for (int k = tid; k < n16; k += nthreads) d4[k] = __ldg(s4 + k);
        for (int k = head + 16 * n16 + tid; k < n; k += nthreads) dst[k] = src[k];
    } else {
        for (int k = tid; k < n; k += nthreads) dst[k] = src[k];
    }
}

/* Host side (src/cuda/quant.cu): the device description of a quantizer. */
struct rq_cuda_quantizer {
    rq_dev_q dq;
    void *dev_mem[8]; /* owned device allocations */
    int n_dev_mem;
    int *d_err;       /* first data error of any encode since the last check */
    int type_rot;     /* rq_rot_kind                                          */
};

#endif /* RQ_CUDA_CUH */
