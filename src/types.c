/*
 * types.c — the type registry: one row per KV type (docs/FORMAT.md §4).
 *
 * Names follow the community's: turbo{b} (randomized Hadamard + Lloyd-Max,
 * the llama.cpp forks' "turbo"), dense{b} (Haar matrix, the TurboQuant
 * paper), rotor{b} (Cl(3,0) rotors, RotorQuant), planar{b}, iso{b}, b = 1..5;
 * suffix "p" = the QJL ("prod") variant with b−1 MSE bits + 1 QJL bit per
 * value (turbo3p = 2-bit codes + 1-bit signs, the seed's convention), b = 1..4
 * only: there is deliberately no `5p` (the 5-bit MSE rows serve keys that
 * need more than 4 bits — on real models keys need more bits than values;
 * the QJL types keep their 1..4 range). Baselines in
 * llama.cpp's exact block layouts: f32, f16, q8_0, q4_0, and q4_0h = q4_0 after
 * the randomized Hadamard rotation (what upstream llama.cpp ships).
 */
#include "internal.h"

/* MSE rows b = 1..5, QJL rows b = 1..4 (no "5p", see above) */
#define ROWS(prefix, rot)                                                   \
    {prefix "1", RQ_FAMILY_MSE, rot, 1, 0}, {prefix "2", RQ_FAMILY_MSE, rot, 2, 0},   \
    {prefix "3", RQ_FAMILY_MSE, rot, 3, 0}, {prefix "4", RQ_FAMILY_MSE, rot, 4, 0},   \
    {prefix "5", RQ_FAMILY_MSE, rot, 5, 0},                                           \
    {prefix "1p", RQ_FAMILY_PROD, rot, 1, 0}, {prefix "2p", RQ_FAMILY_PROD, rot, 2, 0}, \
    {prefix "3p", RQ_FAMILY_PROD, rot, 3, 0}, {prefix "4p", RQ_FAMILY_PROD, rot, 4, 0}

static const rq_type_info TYPES[] = {
    {"f32", RQ_FAMILY_F32, RQ_ROT_NONE, 32, 0},
    {"f16", RQ_FAMILY_F16, RQ_ROT_NONE, 16, 0},
    {"q8_0", RQ_FAMILY_Q8_0, RQ_ROT_NONE, 8, 32},
    {"q4_0", RQ_FAMILY_Q4_0, RQ_ROT_NONE, 4, 32},
    {"q4_0h", RQ_FAMILY_Q4_0, RQ_ROT_HADAMARD, 4, 32},
    ROWS("turbo", RQ_ROT_HADAMARD),
    ROWS("dense", RQ_ROT_DENSE),
    ROWS("rotor", RQ_ROT_ROTOR),
    ROWS("planar", RQ_ROT_PLANAR),
    ROWS("iso", RQ_ROT_ISO),
};

int rq_type_count(void) { return (int)(sizeof TYPES / sizeof TYPES[0]); }

const rq_type_info *rq_type_at(int i) {
    return (i >= 0 && i < rq_type_count()) ? &TYPES[i] : NULL;
}

const rq_type_info *rq_type_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < rq_type_count(); i++)
        if (strcmp(TYPES[i].name, name) == 0) return &TYPES[i];
    return NULL;
}

/* Smallest d a rotation family accepts (one whole block). */
static int min_dims(rq_rot_kind k) {
    switch (k) {
    case RQ_ROT_ROTOR: return 3;
    case RQ_ROT_ISO: return 4;
    default: return RQ_MIN_DIMS;
    }
}

/* Largest odd factor the Hadamard–Kronecker construction serves. */
static bool hadamard_ok(int d) {
    while (d % 2 == 0) d /= 2;
    return d <= 63;
}

size_t rq_type_bytes_per_vector(const rq_type_info *t, int d) {
    if (!t || d < min_dims(t->rotation) || d > RQ_MAX_DIMS) return 0;
    if (t->rotation == RQ_ROT_HADAMARD && !hadamard_ok(d)) return 0;
    if (t->block_values && d % t->block_values) return 0;
    switch (t->family) {
    case RQ_FAMILY_F32: return 4 * (size_t)d;
    case RQ_FAMILY_F16: return 2 * (size_t)d;
    case RQ_FAMILY_Q8_0: return (size_t)d / 32 * 34; /* fp16 scale + 32 × int8   */
    case RQ_FAMILY_Q4_0: return (size_t)d / 32 * 18; /* fp16 scale + 16 B nibbles */
    case RQ_FAMILY_MSE: return 2 + rq__packed_bytes(d, t->n_bits); /* fp16 norm + codes */
    case RQ_FAMILY_PROD: /* fp16 norm + fp16 ‖r‖ + (b−1)-bit codes + d sign bits */
        return 4 + rq__packed_bytes(d, t->n_bits - 1) + rq__packed_bytes(d, 1);
    }
    return 0;
}
