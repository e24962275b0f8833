/*
 * crc_avx2.c — CRC-32C by the SSE4.2 crc32 instruction (8 bytes per step),
 * the same register arithmetic as rq__crc32c_ref (src/crc32c.c): the
 * instruction implements exactly the reflected Castagnoli polynomial. Built
 * with the AVX2 level's flags (which include SSE4.2) and used by both x86
 * levels; every CPU they run on has SSE4.2.
 */
#include "kernels.h"

#include <immintrin.h>
#include <string.h>

uint32_t rq__crc32c_avx2(uint32_t c, const uint8_t *p, size_t n) {
    for (; n && ((uintptr_t)p & 7); n--) c = _mm_crc32_u8(c, *p++);
    uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* x86: little-endian, the byte order the polynomial consumes */
        c64 = _mm_crc32_u64(c64, w);
    }
    c = (uint32_t)c64;
    for (; n; n--) c = _mm_crc32_u8(c, *p++);
    return c;
}
