/*
 * attn_x86.h — helpers shared by the AVX2 and AVX-512 attention slots: the
 * 4-byte code loader and the F16C norm read (head_s, also for the TCQ
 * decoders). Included by src/simd/attn_*.c and tcq_*.c only. (The value blocks' decoders are the kernel
 * table's values_decode slots, one per block kind and level.)
 */
#ifndef RQ_ATTN_X86_H
#define RQ_ATTN_X86_H

#include "attn_kernels.h"

#include <immintrin.h>

/* 4 bytes from p (little-endian); only the low 8·b bits are used. Readers
 * may touch up to 3 bytes past the codes (the AVX-512 VBMI decoder, 8-byte
 * loads: up to 6): blocks live in pages with RQ_PAGE_SLACK bytes of tail
 * padding (kvcache.c). */
static inline uint32_t load_u32(const uint8_t *p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

static inline float f16s(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | (p[1] << 8))); }

/* A code block's head (rq__head_norm): the fp16 by F16C, or for the 1-byte
 * kinds (ntab = the layout's norm_table ≠ NULL) the table's float. */
static inline float head_s(const uint8_t *p, const float *ntab) { return ntab ? ntab[p[0]] : f16s(p); }

#endif
