/*
 * crc32c.c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial
 * value and final xor 0xFFFFFFFF), the checksum of the saved cache format
 * (docs/FORMAT.md §7). The reference takes one table lookup per byte; the
 * x86 levels use the SSE4.2 crc32 instruction (src/simd/crc_avx2.c), which
 * computes the same polynomial, so every level gives the same value.
 */
#include "simd/kernels.h"

#include <pthread.h>

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int b = 0; b < 8; b++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

/* The running register c (already inverted) over n more bytes. */
uint32_t rq__crc32c_ref(uint32_t c, const uint8_t *p, size_t n) {
    pthread_once(&crc_once, crc_init);
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c;
}

uint32_t rq__crc32c(const void *data, size_t n) {
    return rq__kernels()->crc32c(0xFFFFFFFFu, data, n) ^ 0xFFFFFFFFu;
}
