/*
 * quant.cu — GPU quantizers: a device copy of an rq_quantizer (rotation,
 * codebook, QJL matrix) and the fused encode / decode kernels. Encode writes
 * byte-for-byte the blocks of rq_quantizer_encode (docs/FORMAT.md §5) for
 * every MSE and PROD type of every rotation family with d ≤ 256 and codes of
 * ≤ 4 bits (the 5-bit MSE types are CPU only: RQ_ERR_UNSUPPORTED).
 *
 * Encode, one launch: x → ‖x‖ → u = x·fl(1/‖x‖) → y = Πu → codes → packed
 * block (+ QJL residual sketch for PROD) — the whole pipeline in registers
 * and shared memory, one 16-lane team per vector (rq_cuda.cuh explains why
 * that layout reproduces the CPU's float order exactly). A CTA of 256
 * threads handles 16 vectors per step; the 16 blocks are assembled in shared
 * memory and leave as one contiguous, 16-byte-aligned store.
 *
 * The operation order is the CPU's (src/quant.c encode_one,
 * rq__decode_rotated; src/rotation.c): every line below that computes a
 * float says which CPU line it mirrors. Compiled with -fmad=false.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

extern "C" {
#include "internal.h"
}
#include "rq_cuda.cuh"
#include "rq_cuda_host.h"

#define ENC_THREADS 256
#define ENC_TEAMS (ENC_THREADS / RQ_CUDA_TEAM)

/* ---------------------------------------------------------------------------
 * Shared-memory layout of the encode/decode kernels (per CTA)
 *   stage  ENC_TEAMS blocks, contiguous as in global memory (16-aligned)
 *   codes  ENC_TEAMS × 256 bytes (one byte per code, per team)
 *   cent   16 floats (centroids)
 *   rows   ENC_TEAMS × 2 × d floats, only for shared-memory rotations
 * ------------------------------------------------------------------------- */
struct enc_smem {
    int stage, codes, cent, rows, total;
};

static enc_smem enc_layout(const rq_dev_q &Q, int need_rows) {
    enc_smem s;
    s.stage = 0;
    s.codes = (ENC_TEAMS * Q.bytes + 15) & ~15;
    s.cent = s.codes + ENC_TEAMS * RQ_CUDA_MAX_DIMS;
    s.rows = s.cent + 16 * (int)sizeof(float);
    s.total = s.rows + (need_rows ? ENC_TEAMS * 2 * Q.d * (int)sizeof(float) : 0);
    return s;
}

static int rot_needs_rows(const rq_dev_rot &R) {
    return R.kind != RQ_ROT_NONE && !(R.kind == RQ_ROT_HADAMARD && R.n_odd == 1);
}

/* ---------------------------------------------------------------------------
 * Encode
 * ------------------------------------------------------------------------- */
template <int E, int BITS>
__global__ void __launch_bounds__(ENC_THREADS) k_encode(const rq_dev_q Q, enc_smem L, const float *__restrict__ x,
                                                        uint8_t *__restrict__ out, size_t n_vec, int *err) {
    extern __shared__ __align__(16) uint8_t sm[];
    const int tid = threadIdx.x, team = tid >> 4, r = tid & 15;
    const int d = Q.d, bytes = Q.bytes;
    uint8_t *stage = sm + L.stage;
    uint8_t *codes = sm + L.codes + team * RQ_CUDA_MAX_DIMS;
    float *cent = (float *)(sm + L.cent);
    float *rowa = (float *)(sm + L.rows) + team * 2 * d, *rowb = rowa + d;
    if (tid < 16) cent[tid] = Q.centroids[tid];
    float bnd[16];
#pragma unroll
    for (int k = 0; k < 16; k++) bnd[k] = Q.bounds[k];
    __syncthreads();

    for (size_t v0 = (size_t)blockIdx.x * ENC_TEAMS; v0 < n_vec; v0 += (size_t)gridDim.x * ENC_TEAMS) {
        const size_t v = v0 + team;
        const bool valid = v < n_vec;
        const int n_here = (int)min((size_t)ENC_TEAMS, n_vec - v0);
        uint8_t *blk = stage + team * bytes;

        /* load (strided: lane r holds x[r + 16e]) */
        float y[E];
        const float *xv = x + v * d;
        bool bad = false;
#pragma unroll
        for (int e = 0; e < E; e++) {
            const int i = r + 16 * e;
            y[e] = (valid && i < d) ? __ldg(xv + i) : 0.0f;
            if (!isfinite(y[e])) bad = true; /* all_finite */
        }
        const unsigned bal = __ballot_sync(0xffffffffu, bad);
        bad = ((bal >> (tid & 16)) & 0xffffu) != 0;

        const float norm = sqrtf(rq_team_sumsq<E>(y, d, r)); /* sqrtf(rq__sumsq_ref(x, d)) */
        int status = bad ? RQ_DEV_ERR_NONFINITE : 0;
        const __half hn = __float2half_rn(norm);
        if (!status && __hisinf(hn)) status = RQ_DEV_ERR_RANGE; /* f16_field(norm) */
        const bool zero = norm == 0.0f;

        const float inv = 1.0f / norm; /* float inv = 1.0f / norm */
#pragma unroll
        for (int e = 0; e < E; e++) y[e] = y[e] * inv; /* y[i] = x[i] * inv */
        rq_team_rotate<E>(Q.rot, y, rowa, rowb, false, r);

        float stored = norm;
        int code[E];
#pragma unroll
        for (int e = 0; e < E; e++) code[e] = 0;
        if (BITS > 0) {
#pragma unroll
            for (int e = 0; e < E; e++) {
                const int i = r + 16 * e;
                code[e] = rq_dev_cell<BITS>(bnd, y[e]);
                if (i < d) codes[i] = (uint8_t)code[e];
            }
            __syncwarp();
            rq_team_pack(codes, d, BITS, blk + Q.code_off, r);
            if (Q.norm_correct && !Q.prod) {
                float c[E];
#pragma unroll
                for (int e = 0; e < E; e++) c[e] = cent[code[e]];
                stored = norm / sqrtf(rq_team_sumsq<E>(c, d, r)); /* norm / sqrtf(rq__sumsq_ref(c, d)) */
            }
        }
        const __half hs = __float2half_rn(stored);
        if (!status && __hisinf(hs)) status = RQ_DEV_ERR_RANGE; /* f16_field(stored) */
        if (r == 0) {
            const unsigned short u = __half_as_ushort(hs);
            blk[0] = (uint8_t)(u & 0xff);
            blk[1] = (uint8_t)(u >> 8);
        }

        if (Q.prod) {
            /* r′ = norm·y − n16·c(code)  (quant.c: r[i] = norm * y[i] - (…)) */
            const float n16 = __half2float(hs);
            float res[E];
#pragma unroll
            for (int e = 0; e < E; e++)
                res[e] = norm * y[e] - (BITS > 0 ? n16 * cent[code[e]] : 0.0f);
            const float rnorm = sqrtf(rq_team_sumsq<E>(res, d, r));
            const __half hr = __float2half_rn(rnorm);
            if (!status && __hisinf(hr)) status = RQ_DEV_ERR_RANGE;
            if (r == 0) {
                const unsigned short u = __half_as_ushort(hr);
                blk[RQ_PROD_RNORM_OFF] = (uint8_t)(u & 0xff);
                blk[RQ_PROD_RNORM_OFF + 1] = (uint8_t)(u >> 8);
            }
            __syncwarp(); /* codes[] is reused for the sign bits */
            if (Q.qjl_s) {
                /* (S r′)_i = rq__dot_ref(S_i, r′, d): lane r's sequential sum is
                 * partial r, then the tree. */
                for (int i = 0; i < d; i++) {
                    const float *row = Q.qjl_s + (size_t)i * d;
                    float acc = 0.0f;
#pragma unroll
                    for (int e = 0; e < E; e++)
                        if (r + 16 * e < d) acc += __ldg(row + r + 16 * e) * res[e];
                    acc = rq_team_tree(acc);
                    if (r == (i & 15)) codes[i] = acc >= 0.0f;
                }
            } else {
                float sr[E];
#pragma unroll
                for (int e = 0; e < E; e++) sr[e] = res[e];
                rq_team_rotate<E>(Q.qjl_rot, sr, rowa, rowb, false, r);
#pragma unroll
                for (int e = 0; e < E; e++)
                    if (r + 16 * e < d) codes[r + 16 * e] = sr[e] >= 0.0f;
            }
            __syncwarp();
            rq_team_pack(codes, d, 1, blk + Q.sign_off, r);
        }

        /* zero vector → all-zero block; failed vector → all-zero block + status */
        __syncwarp();
        if (valid && (status || zero))
            for (int k = r; k < bytes; k += 16) blk[k] = 0;
        if (valid && status && r == 0) rq_dev_record_error(err, status);

        __syncthreads();
        rq_cta_copy_out(out + v0 * bytes, stage, n_here * bytes, tid, ENC_THREADS);
        __syncthreads();
    }
}

/* ---------------------------------------------------------------------------
 * Decode: block → n′·c(code) (+ ‖r′‖·α·Sᵀs) → Πᵀ → f32 or f16
 * (quant.c rq__decode_rotated + rq_rotation_inverse).
 * ------------------------------------------------------------------------- */
template <int E, int BITS>
__global__ void __launch_bounds__(ENC_THREADS) k_decode(const rq_dev_q Q, enc_smem L, const uint8_t *__restrict__ in,
                                                        float *__restrict__ out32, __half *__restrict__ out16,
                                                        size_t n_vec) {
    extern __shared__ __align__(16) uint8_t sm[];
    const int tid = threadIdx.x, team = tid >> 4, r = tid & 15;
    const int d = Q.d, bytes = Q.bytes;
    uint8_t *stage = sm + L.stage;
    float *cent = (float *)(sm + L.cent);
    float *rowa = (float *)(sm + L.rows) + team * 2 * d, *rowb = rowa + d;
    if (tid < 16) cent[tid] = Q.centroids[tid];
    __syncthreads();

    for (size_t v0 = (size_t)blockIdx.x * ENC_TEAMS; v0 < n_vec; v0 += (size_t)gridDim.x * ENC_TEAMS) {
        const size_t v = v0 + team;
        const bool valid = v < n_vec;
        const int n_here = (int)min((size_t)ENC_TEAMS, n_vec - v0);
        rq_cta_copy_in(stage, in + v0 * bytes, n_here * bytes, tid, ENC_THREADS);
        __syncthreads();
        const uint8_t *blk = stage + team * bytes;

        float y[E];
        const float n = valid ? rq_dev_f16_at(blk) : 0.0f;
#pragma unroll
        for (int e = 0; e < E; e++) {
            const int i = r + 16 * e;
            if (BITS > 0 && valid && i < d) y[e] = n * cent[rq_dev_code(blk + Q.code_off, i, BITS)];
            else y[e] = 0.0f;
        }
        if (Q.prod) {
            const float g = (valid ? rq_dev_f16_at(blk + RQ_PROD_RNORM_OFF) : 0.0f) * Q.qjl_alpha;
            const uint8_t *sb = blk + Q.sign_off;
            float st[E];
            if (Q.qjl_s) {
                /* out[j] += row_i[j] · s_i in increasing i (rq__qjl_transpose) */
#pragma unroll
                for (int e = 0; e < E; e++) st[e] = 0.0f;
                for (int i = 0; i < d; i++) {
                    const float s = ((sb[i >> 3] >> (i & 7)) & 1) ? 1.0f : -1.0f;
                    const float *row = Q.qjl_s + (size_t)i * d;
#pragma unroll
                    for (int e = 0; e < E; e++)
                        if (r + 16 * e < d) st[e] += __ldg(row + r + 16 * e) * s;
                }
            } else {
#pragma unroll
                for (int e = 0; e < E; e++) {
                    const int i = r + 16 * e;
                    st[e] = i < d ? (((sb[i >> 3] >> (i & 7)) & 1) ? 1.0f : -1.0f) : 0.0f;
                }
                rq_team_rotate<E>(Q.qjl_rot, st, rowa, rowb, true, r);
            }
#pragma unroll
            for (int e = 0; e < E; e++) y[e] += g * st[e]; /* xr[i] += g * st[i] */
        }
        rq_team_rotate<E>(Q.rot, y, rowa, rowb, true, r);
        if (valid) {
#pragma unroll
            for (int e = 0; e < E; e++) {
                const int i = r + 16 * e;
                if (i < d) {
                    if (out32) out32[v * d + i] = y[e];
                    else out16[v * d + i] = __float2half_rn(y[e]);
                }
            }
        }
        __syncthreads();
    }
}

/* ---------------------------------------------------------------------------
 * Host side
 * ------------------------------------------------------------------------- */
static int g_num_sms = 0;

int rq__cuda_num_sms(void) {
    if (!g_num_sms) {
        int dev = 0, n = 0;
        if (cudaGetDevice(&dev) == cudaSuccess &&
            cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess)
            g_num_sms = n;
        else
            g_num_sms = 1;
    }
    return g_num_sms;
}

static rq_status upload_floats(rq_cuda_quantizer *g, const float *h, size_t n, const float **dst) {
    if (g->n_dev_mem >= (int)(sizeof g->dev_mem / sizeof g->dev_mem[0])) return RQ_ERR_NOMEM;
    void *p = NULL;
    if (rq__cuda_check(cudaMalloc(&p, n * sizeof(float)))) return RQ_ERR_NOMEM;
    g->dev_mem[g->n_dev_mem++] = p;
    if (rq__cuda_check(cudaMemcpy(p, h, n * sizeof(float), cudaMemcpyHostToDevice))) return RQ_ERR_UNSUPPORTED;
    *dst = (const float *)p;
    return RQ_OK;
}

rq_status rq__cuda_dev_rot(rq_cuda_quantizer *g, const rq_rotation *rot, rq_dev_rot *R) {
    memset(R, 0, sizeof *R);
    if (!rot) return RQ_OK;
    const int d = rot->n_dims;
    R->kind = (int)rot->kind;
    R->d = d;
    rq_status st = RQ_OK;
    switch (rot->kind) {
    case RQ_ROT_NONE: break;
    case RQ_ROT_HADAMARD:
        R->n_pow2 = rot->n_pow2;
        R->n_odd = rot->n_odd;
        R->h_scale = rot->h_scale;
        for (int i = 0; i < d; i++)
            if (rot->signs[i] < 0) R->neg[i >> 5] |= 1u << (i & 31);
        if (rot->n_odd > 1) st = upload_floats(g, rot->q_odd, (size_t)rot->n_odd * rot->n_odd, &R->q_odd);
        break;
    case RQ_ROT_DENSE:
        st = upload_floats(g, rot->mat, (size_t)d * d, &R->mat);
        if (!st) st = upload_floats(g, rot->mat_t, (size_t)d * d, &R->mat_t);
        break;
    case RQ_ROT_ROTOR:
    case RQ_ROT_PLANAR:
    case RQ_ROT_ISO:
        R->block = rot->block;
        R->n_blocks = rot->n_blocks;
        R->n_bp = rot->n_block_params;
        st = upload_floats(g, rot->block_params, (size_t)rot->n_blocks * rot->n_block_params, &R->bp);
        if (!st && rot->kind == RQ_ROT_ROTOR) st = upload_floats(g, rot->block_mats, (size_t)rot->n_blocks * 9, &R->bm);
        break;
    default: st = RQ_ERR_UNSUPPORTED; break; /* a family without GPU kernels */
    }
    return st;
}

extern "C" void rq_cuda_quantizer_free(rq_cuda_quantizer *g) {
    if (!g) return;
    for (int i = 0; i < g->n_dev_mem; i++) cudaFree(g->dev_mem[i]);
    if (g->d_err) cudaFree(g->d_err);
    free(g);
}

extern "C" rq_status rq_cuda_quantizer_init(rq_cuda_quantizer **out, const rq_quantizer *q) {
    if (!out) return RQ_ERR_INVALID_ARG;
    *out = NULL;
    if (!q) return RQ_ERR_INVALID_ARG;
    if (!rq_cuda_available()) return RQ_ERR_UNSUPPORTED;
    const rq_quantizer_view v = rq__quantizer_view(q);
    if (v.layout->norm_table) /* the 1-byte norm head: no GPU kernel reads it (no GPU to test one on) */
        return rq__fail(RQ_ERR_UNSUPPORTED, "rq_cuda_quantizer_init: %s: the n8 types (1-byte norm head) are CPU only",
                        q->type->name);
    if (!v.layout->codes || v.layout->trellis) return RQ_ERR_UNSUPPORTED; /* value blocks, TCQ: CPU only */
    if (q->mse_bits > RQ_CUDA_MAX_BITS) return RQ_ERR_UNSUPPORTED; /* 5-bit codes: CPU only */
    if (q->n_dims > RQ_CUDA_MAX_DIMS) return RQ_ERR_DIM;
    rq_cuda_quantizer *g = (rq_cuda_quantizer *)calloc(1, sizeof *g);
    if (!g) return RQ_ERR_NOMEM;
    rq_dev_q &Q = g->dq;
    const int d = q->n_dims;
    Q.d = d;
    Q.family = (int)q->type->family;
    Q.mse_bits = q->mse_bits;
    Q.prod = v.layout->signs;
    Q.bytes = (int)q->bytes;
    Q.code_off = (int)v.off_codes;
    Q.sign_off = (int)v.off_signs;
    Q.norm_correct = q->cfg.norm_correct;
    for (int k = 0; k < (1 << RQ_CUDA_MAX_BITS); k++) {
        Q.centroids[k] = 0.0f;
        Q.bounds[k] = INFINITY; /* unused bounds never count */
    }
    if (q->mse_bits > 0) {
        for (int k = 0; k < q->cb.n_levels; k++) Q.centroids[k] = q->cb.centroids[k];
        for (int k = 0; k + 1 < q->cb.n_levels; k++) Q.bounds[k] = q->cb.bounds[k];
    }
    Q.qjl_alpha = q->qjl_alpha;
    g->type_rot = (int)q->type->rotation;
    rq_status st = rq__cuda_dev_rot(g, q->rot, &Q.rot);
    if (!st && Q.prod) {
        if (q->qjl_s) st = upload_floats(g, q->qjl_s, (size_t)d * d, &Q.qjl_s);
        else st = rq__cuda_dev_rot(g, q->qjl_rot, &Q.qjl_rot);
    }
    if (!st && rq__cuda_check(cudaMalloc((void **)&g->d_err, sizeof(int)))) st = RQ_ERR_NOMEM;
    if (!st && rq__cuda_check(cudaMemset(g->d_err, 0, sizeof(int)))) st = RQ_ERR_UNSUPPORTED;
    if (st) {
        rq_cuda_quantizer_free(g);
        return st;
    }
    *out = g;
    return RQ_OK;
}

extern "C" int rq_cuda_quantizer_dims(const rq_cuda_quantizer *g) { return g ? g->dq.d : 0; }

/* one instantiation per (E, BITS) */
template <int E>
static void *encode_fn(int bits) {
    switch (bits) {
    case 0: return (void *)k_encode<E, 0>;
    case 1: return (void *)k_encode<E, 1>;
    case 2: return (void *)k_encode<E, 2>;
    case 3: return (void *)k_encode<E, 3>;
    default: return (void *)k_encode<E, 4>;
    }
}
template <int E>
static void *decode_fn(int bits) {
    switch (bits) {
    case 0: return (void *)k_decode<E, 0>;
    case 1: return (void *)k_decode<E, 1>;
    case 2: return (void *)k_decode<E, 2>;
    case 3: return (void *)k_decode<E, 3>;
    default: return (void *)k_decode<E, 4>;
    }
}

static int e_of(int d) { return d <= 64 ? 4 : d <= 128 ? 8 : 16; }

static int grid_for(size_t n_vec) {
    size_t tiles = (n_vec + ENC_TEAMS - 1) / ENC_TEAMS;
    size_t cap = (size_t)rq__cuda_num_sms() * 8;
    return (int)(tiles < cap ? tiles : cap);
}

extern "C" rq_status rq_cuda_encode(rq_cuda_quantizer *g, const float *d_x, void *d_blocks, size_t n_vec,
                                    void *stream) {
    if (!g || (n_vec && (!d_x || !d_blocks))) return RQ_ERR_INVALID_ARG;
    if (!n_vec) return RQ_OK;
    const rq_dev_q &Q = g->dq;
    enc_smem L = enc_layout(Q, rot_needs_rows(Q.rot) || (Q.prod && rot_needs_rows(Q.qjl_rot)));
    const int E = e_of(Q.d);
    void *fn = E == 4 ? encode_fn<4>(Q.mse_bits) : E == 8 ? encode_fn<8>(Q.mse_bits) : encode_fn<16>(Q.mse_bits);
    uint8_t *outp = (uint8_t *)d_blocks;
    int *err = g->d_err;
    void *args[] = {(void *)&Q, (void *)&L, (void *)&d_x, (void *)&outp, (void *)&n_vec, (void *)&err};
    if (rq__cuda_check(cudaLaunchKernel(fn, dim3(grid_for(n_vec)), dim3(ENC_THREADS), args, (size_t)L.total,
                                        (cudaStream_t)stream)))
        return RQ_ERR_UNSUPPORTED;
    return RQ_OK;
}

extern "C" rq_status rq_cuda_quantizer_check(rq_cuda_quantizer *g) {
    if (!g) return RQ_ERR_INVALID_ARG;
    int h = 0;
    if (rq__cuda_check(cudaDeviceSynchronize())) return RQ_ERR_UNSUPPORTED;
    if (rq__cuda_check(cudaMemcpy(&h, g->d_err, sizeof h, cudaMemcpyDeviceToHost))) return RQ_ERR_UNSUPPORTED;
    if (h && rq__cuda_check(cudaMemset(g->d_err, 0, sizeof(int)))) return RQ_ERR_UNSUPPORTED;
    return (rq_status)h;
}

static rq_status decode_any(const rq_cuda_quantizer *g, const void *d_blocks, float *o32, __half *o16, size_t n_vec,
                            void *stream) {
    if (!g || (n_vec && (!d_blocks || (!o32 && !o16)))) return RQ_ERR_INVALID_ARG;
    if (!n_vec) return RQ_OK;
    const rq_dev_q &Q = g->dq;
    enc_smem L = enc_layout(Q, rot_needs_rows(Q.rot) || (Q.prod && rot_needs_rows(Q.qjl_rot)));
    const int E = e_of(Q.d);
    void *fn = E == 4 ? decode_fn<4>(Q.mse_bits) : E == 8 ? decode_fn<8>(Q.mse_bits) : decode_fn<16>(Q.mse_bits);
    const uint8_t *inp = (const uint8_t *)d_blocks;
    void *args[] = {(void *)&Q, (void *)&L, (void *)&inp, (void *)&o32, (void *)&o16, (void *)&n_vec};
    if (rq__cuda_check(cudaLaunchKernel(fn, dim3(grid_for(n_vec)), dim3(ENC_THREADS), args, (size_t)L.total,
                                        (cudaStream_t)stream)))
        return RQ_ERR_UNSUPPORTED;
    return RQ_OK;
}

extern "C" rq_status rq_cuda_decode(const rq_cuda_quantizer *g, const void *d_blocks, float *d_x, size_t n_vec,
                                    void *stream) {
    if (!d_x && n_vec) return RQ_ERR_INVALID_ARG;
    return decode_any(g, d_blocks, d_x, NULL, n_vec, stream);
}

extern "C" rq_status rq_cuda_decode_f16(const rq_cuda_quantizer *g, const void *d_blocks, uint16_t *d_x,
                                        size_t n_vec, void *stream) {
    if (!d_x && n_vec) return RQ_ERR_INVALID_ARG;
    return decode_any(g, d_blocks, NULL, (__half *)d_x, n_vec, stream);
}
