/*
 * rotation.c — the rotation ops table and the public rotation API, plus the
 * fixed-order reductions every kernel shares.
 *
 * Each family is one file holding its ops row (rq_rot_ops, internal.h):
 * name, which dimensions it serves, init (draws its parameters from the
 * seed), the reference forward Π and inverse Πᵀ, and free.
 *
 *   none      the identity (this file)
 *   dense     Haar orthogonal d×d matrix              rotation_dense.c
 *   hadamard  (H_{2^k} ⊗ Q_m) · diag(σ)               rotation_hadamard.c
 *   rotor / planar / iso: block-diagonal families     rotation_block.c
 *
 * rq_rotation_forward / _inverse run at the process's SIMD level through the
 * kernel layer (rq__rotate, src/simd/dispatch.c), bit-identical to the
 * reference rows at every level.
 *
 * Randomness: one rq_rng stream seeded with the rotation's seed; draw order
 * is part of the format (docs/FORMAT.md §2–3).
 */
#include "internal.h"
#include "simd/kernels.h"

#include <stdlib.h>

/* ---- fixed-order reductions ------------------------------------------ */
float rq__sumsq_ref(const float *x, int n) {
    float acc[16] = {0};
    for (int i = 0; i < n; i++) acc[i & 15] += x[i] * x[i];
    for (int w = 8; w >= 1; w >>= 1)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    return acc[0];
}

float rq__dot_ref(const float *a, const float *b, int n) {
    float acc[16] = {0};
    for (int i = 0; i < n; i++) acc[i & 15] += a[i] * b[i];
    for (int w = 8; w >= 1; w >>= 1)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    return acc[0];
}

/* ---- none: the identity ------------------------------------------------ */
static bool none_dims_ok(int d) { return (void)d, true; }
static rq_status none_init(rq_rotation *r, uint64_t seed) { return (void)r, (void)seed, RQ_OK; }
static void none_apply(const rq_rotation *r, const float *x, float *y) {
    if (y != x) memcpy(y, x, sizeof(float) * (size_t)r->n_dims);
}
static void none_free(rq_rotation *r) { (void)r; }

static const rq_rot_ops ROT_NONE = {
    .name = "none", .dims_ok = none_dims_ok, .init = none_init, .forward = none_apply, .inverse = none_apply,
    .free = none_free,
};

/* ---- the table: one row per rq_rot_kind (each defined in its family's file) */
extern const rq_rot_ops rq__rot_dense, rq__rot_hadamard, rq__rot_rotor, rq__rot_planar, rq__rot_iso;
static const rq_rot_ops *const ROT_OPS[RQ_ROT_COUNT] = {
    [RQ_ROT_NONE] = &ROT_NONE,
    [RQ_ROT_DENSE] = &rq__rot_dense,
    [RQ_ROT_HADAMARD] = &rq__rot_hadamard,
    [RQ_ROT_ROTOR] = &rq__rot_rotor,
    [RQ_ROT_PLANAR] = &rq__rot_planar,
    [RQ_ROT_ISO] = &rq__rot_iso,
};

const rq_rot_ops *rq__rot_ops(rq_rot_kind kind) {
    return ((int)kind >= 0 && kind < RQ_ROT_COUNT) ? ROT_OPS[kind] : NULL;
}

/* ---- public API --------------------------------------------------------- */
const char *rq_rot_kind_name(rq_rot_kind kind) {
    const rq_rot_ops *ops = rq__rot_ops(kind);
    return ops ? ops->name : "?";
}

void rq_rotation_free(rq_rotation *rot) {
    if (!rot) return;
    rq__rot_ops(rot->kind)->free(rot);
    free(rot);
}

rq_status rq_rotation_init(rq_rotation **out, rq_rot_kind kind, int n_dims, uint64_t seed) {
    if (!out) return rq__fail(RQ_ERR_INVALID_ARG, "rq_rotation_init: out is NULL");
    *out = NULL;
    const rq_rot_ops *ops = rq__rot_ops(kind);
    if (!ops) return rq__fail(RQ_ERR_INVALID_ARG, "rq_rotation_init: kind = %d is not an rq_rot_kind", (int)kind);
    if (n_dims < RQ_MIN_DIMS || n_dims > RQ_MAX_DIMS)
        return rq__fail(RQ_ERR_DIM, "rq_rotation_init: n_dims = %d out of range (%d..%d)", n_dims, RQ_MIN_DIMS,
                        RQ_MAX_DIMS);
    if (!ops->dims_ok(n_dims))
        return rq__fail(RQ_ERR_DIM, "rq_rotation_init: the %s family does not serve n_dims = %d", ops->name, n_dims);
    rq_rotation *r = calloc(1, sizeof *r);
    if (!r) return RQ_ERR_NOMEM;
    r->kind = kind;
    r->n_dims = n_dims;
    rq_status st = ops->init(r, seed);
    if (st != RQ_OK) {
        rq_rotation_free(r);
        return st;
    }
    *out = r;
    return RQ_OK;
}

rq_status rq_rotation_forward(const rq_rotation *rot, const float *x, float *y, size_t n_vec) {
    if (!rot || (n_vec && (!x || !y))) return RQ_ERR_INVALID_ARG;
    const rq_kernels *k = rq__kernels();
    size_t d = (size_t)rot->n_dims;
    for (size_t v = 0; v < n_vec; v++) rq__rotate(k, rot, x + v * d, 1.0f, y + v * d); /* x·1 = x exactly */
    return RQ_OK;
}

rq_status rq_rotation_inverse(const rq_rotation *rot, const float *x, float *y, size_t n_vec) {
    if (!rot || (n_vec && (!x || !y))) return RQ_ERR_INVALID_ARG;
    const rq_kernels *k = rq__kernels();
    size_t d = (size_t)rot->n_dims;
    for (size_t v = 0; v < n_vec; v++) rq__rotate_inv(k, rot, x + v * d, y + v * d);
    return RQ_OK;
}

int rq_rotation_dims(const rq_rotation *rot) { return rot ? rot->n_dims : 0; }
rq_rot_kind rq_rotation_kind(const rq_rotation *rot) { return rot ? rot->kind : RQ_ROT_NONE; }
size_t rq_rotation_n_params(const rq_rotation *rot) { return rot ? rot->n_params : 0; }
