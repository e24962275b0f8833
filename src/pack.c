/*
 * pack.c — bit packing of b-bit codes (b = 1..5): a little-endian bitstream,
 * code i occupying bits [i·b, (i+1)·b) (docs/FORMAT.md §4). Eight codes fill
 * exactly b bytes, which is what the SIMD unpackers load at a time. A code
 * starts at bit offset ≤ 7 of its byte and has ≤ 8 bits, so it spans at most
 * two bytes (5 bits at offset 7: bits 7..11) — the two-byte read/write below
 * covers every b ≤ 8; the last byte's unused high bits stay zero.
 */
#include "internal.h"

size_t rq__packed_bytes(int n, int bits) { return ((size_t)n * (size_t)bits + 7) / 8; }

void rq__pack_ref(const uint8_t *codes, int n, int bits, uint8_t *out) {
    size_t nb = rq__packed_bytes(n, bits);
    memset(out, 0, nb);
    for (int i = 0; i < n; i++) {
        size_t bit = (size_t)i * (size_t)bits;
        unsigned v = (unsigned)codes[i] << (bit & 7);
        out[bit >> 3] |= (uint8_t)v;
        if ((bit & 7) + (size_t)bits > 8) out[(bit >> 3) + 1] |= (uint8_t)(v >> 8);
    }
}

void rq__unpack_ref(const uint8_t *in, int n, int bits, uint8_t *codes) {
    unsigned mask = (1u << bits) - 1;
    for (int i = 0; i < n; i++) {
        size_t bit = (size_t)i * (size_t)bits;
        unsigned v = in[bit >> 3];
        if ((bit & 7) + (size_t)bits > 8) v |= (unsigned)in[(bit >> 3) + 1] << 8;
        codes[i] = (uint8_t)((v >> (bit & 7)) & mask);
    }
}
