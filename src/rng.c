/*
 * rng.c — the project's PRNG (docs/FORMAT.md §2), status strings, f16.
 *
 * xoshiro256** (Blackman & Vigna) seeded by four outputs of splitmix64.
 * Uniforms: top 53 bits × 2^-53. Gaussians: Marsaglia polar method, one
 * normal per accepted pair (the second is discarded so that each draw
 * depends only on the generator state), with rq__log from detmath.c.
 */
#include "internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rq_rng_seed(rq_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

uint64_t rq_rng_next(rq_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rq_rng_uniform(rq_rng *rng) {
    return (double)(rq_rng_next(rng) >> 11) * 0x1.0p-53;
}

double rq_rng_gauss(rq_rng *rng) {
    for (;;) {
        double u = 2.0 * rq_rng_uniform(rng) - 1.0;
        double v = 2.0 * rq_rng_uniform(rng) - 1.0;
        double s = u * u + v * v;
        if (s >= 1.0 || s == 0.0) continue;
        return u * sqrt(-2.0 * rq__log(s) / s); /* sqrt is correctly rounded */
    }
}

uint64_t rq_seed_derive(uint64_t seed, uint64_t stream, uint64_t index) {
    uint64_t a = index, b = stream, c;
    uint64_t hi = splitmix64(&a);
    b ^= hi;
    c = seed ^ splitmix64(&b);
    return splitmix64(&c);
}

/* ---- status strings --------------------------------------------------- */
const char *rq_status_str(rq_status s) {
    switch (s) {
    case RQ_OK: return "ok";
    case RQ_ERR_INVALID_ARG: return "invalid argument";
    case RQ_ERR_DIM: return "unsupported head dimension for this type";
    case RQ_ERR_BITS: return "bit width out of range (1..5)";
    case RQ_ERR_NONFINITE: return "input contains NaN or Inf";
    case RQ_ERR_NOMEM: return "out of memory";
    case RQ_ERR_UNKNOWN_TYPE: return "unknown type name";
    case RQ_ERR_RANGE: return "value out of range for the format";
    case RQ_ERR_FORMAT: return "malformed data";
    case RQ_ERR_IO: return "I/O error";
    case RQ_ERR_TRUNCATED: return "data truncated";
    case RQ_ERR_SHAPE: return "array shapes do not match";
    case RQ_ERR_UNSUPPORTED: return "not supported by this build";
    }
    return "unknown status";
}

#define RQ_STR2(x) #x
#define RQ_STR(x) RQ_STR2(x)
const char *rq_version_str(void)
{
    return RQ_STR(RQ_VERSION_MAJOR) "." RQ_STR(RQ_VERSION_MINOR) "." RQ_STR(RQ_VERSION_PATCH);
}

unsigned rq_version_number(void) { return RQ_VERSION_NUMBER; }

/* ---- IEEE half precision ---------------------------------------------- */
uint16_t rq_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* Inf or NaN (NaN keeps a quiet payload bit) */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to ≥ 65520 → Inf */
    if (absx < 0x38800000u) {                                   /* subnormal half or zero */
        if (absx < 0x33000000u) return (uint16_t)sign;          /* < 2^-25 → ±0 */
        uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(absx >> 23); /* 14..24 */
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((absx >> 13) - (112u << 10));
    uint32_t rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

float rq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0) {
        if (m == 0) {
            x = sign;
        } else { /* subnormal: normalize */
            int sh = 0;
            while (!(m & 0x400u)) {
                m <<= 1;
                sh++;
            }
            x = sign | ((uint32_t)(113 - sh) << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}
