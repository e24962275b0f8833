/*
 * budget.c — a bits budget: the per-layer K/V types that minimise a
 * measured cost within B bits per value (rq_kv_alloc, include/rotorquant.h).
 *
 * The cost is additive over layers and sides (bench/fidelity/FINDINGS.md,
 * "Allocation and norms": additive and joint costs agree within 2%), so the
 * problem is a multiple-choice knapsack: per layer and side one candidate
 * type i with bits b_i and cost c_{l,i}; minimise Σ c subject to Σ b ≤ budget.
 * Solved as FINDINGS' allocator: a Lagrangian relaxation (per layer and side
 * argmin c + λ·b, λ found by bisection as the smallest price whose choice
 * fits the budget), then greedy upgrades (the single change of one layer
 * side to a costlier-in-bits type with the largest cost saved per bit added,
 * while it fits) to spend what the relaxation left. Deterministic: ties go
 * to the lower layer, K before V, the lower candidate index.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Per layer and side, the candidate minimising cost + λ·bits. */
static void lagrange_pick(const rq_kv_alloc_problem *p, const double *bk, const double *bv, double lambda, int *ck,
                          int *cv) {
    for (int l = 0; l < p->n_layers; l++)
        for (int side = 0; side < 2; side++) {
            const int n = side ? p->n_types_v : p->n_types_k;
            const double *cost = (side ? p->cost_v : p->cost_k) + (size_t)l * (size_t)n, *bits = side ? bv : bk;
            int best = 0;
            for (int i = 1; i < n; i++)
                if (cost[i] + lambda * bits[i] < cost[best] + lambda * bits[best]) best = i;
            (side ? cv : ck)[l] = best;
        }
}

/* Mean bits per value of a choice: blocks of both sides, every layer, plus
 * the overhead. */
static double choice_bits(const rq_kv_alloc_problem *p, const double *bk, const double *bv, const int *ck,
                          const int *cv) {
    double s = 0;
    for (int l = 0; l < p->n_layers; l++) s += bk[ck[l]] + bv[cv[l]];
    return s / (2.0 * p->n_layers) + p->overhead_bits;
}

rq_status rq_kv_alloc(const rq_kv_alloc_problem *p, double budget, int *choice_k, int *choice_v, double *bits_out,
                      double *cost_out) {
    static const char fn[] = "rq_kv_alloc";
    if (!p || !choice_k || !choice_v)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !p ? "p" : !choice_k ? "choice_k" : "choice_v");
    if (p->n_layers < 1 || p->n_layers > 4096)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: n_layers = %d out of range (1..4096)", fn, p->n_layers);
    if (p->n_types_k < 1 || p->n_types_k > 64 || p->n_types_v < 1 || p->n_types_v > 64)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: %d key and %d value candidates (1..64 each)", fn, p->n_types_k,
                        p->n_types_v);
    if (!p->types_k || !p->types_v || !p->cost_k || !p->cost_v)
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: a candidate or cost table is NULL", fn);
    if (!(p->overhead_bits >= 0) || isinf(p->overhead_bits) || !(budget > 0) || isinf(budget))
        return rq__fail(RQ_ERR_INVALID_ARG, "%s: budget %g / overhead %g bits (finite, budget > 0, overhead ≥ 0)", fn,
                        budget, p->overhead_bits);
    double bk[64], bv[64];
    for (int side = 0; side < 2; side++) {
        const int n = side ? p->n_types_v : p->n_types_k;
        for (int i = 0; i < n; i++) {
            const char *name = (side ? p->types_v : p->types_k)[i];
            const rq_type_info *t = name ? rq_type_find(name) : NULL;
            if (!t) return rq__fail(RQ_ERR_UNKNOWN_TYPE, "%s: unknown %s type '%s'", fn, side ? "value" : "key", name ? name : "(NULL)");
            const size_t bytes = rq_type_bytes_per_vector(t, p->head_dim);
            if (!bytes) return rq__fail(RQ_ERR_DIM, "%s: type %s does not take head_dim %d", fn, name, p->head_dim);
            (side ? bv : bk)[i] = 8.0 * (double)bytes / p->head_dim;
        }
        const double *cost = side ? p->cost_v : p->cost_k;
        for (size_t i = 0; i < (size_t)p->n_layers * (size_t)n; i++)
            if (!isfinite(cost[i]) || cost[i] < 0)
                return rq__fail(RQ_ERR_NONFINITE, "%s: %s cost [%zu][%zu] = %g (finite, ≥ 0)", fn, side ? "value" : "key",
                                i / (size_t)n, i % (size_t)n, cost[i]);
    }
    /* the cheapest choice must fit */
    for (int l = 0; l < p->n_layers; l++) { /* the fewest bits on every side */
        int a = 0, b = 0;
        for (int i = 1; i < p->n_types_k; i++) a = bk[i] < bk[a] ? i : a;
        for (int i = 1; i < p->n_types_v; i++) b = bv[i] < bv[b] ? i : b;
        choice_k[l] = a, choice_v[l] = b;
    }
    const double min_bits = choice_bits(p, bk, bv, choice_k, choice_v);
    if (min_bits > budget + 1e-12)
        return rq__fail(RQ_ERR_RANGE, "%s: a budget of %.4f bits/value is below the smallest choice (%.4f)", fn, budget,
                        min_bits);
    /* bisection on λ: lo's choice does not fit (or λ = 0), hi's fits */
    int *tk = malloc(sizeof(int) * 2 * (size_t)p->n_layers);
    if (!tk) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory", fn);
    int *tv = tk + p->n_layers;
    lagrange_pick(p, bk, bv, 0, tk, tv);
    if (choice_bits(p, bk, bv, tk, tv) <= budget) {
        memcpy(choice_k, tk, sizeof(int) * (size_t)p->n_layers), memcpy(choice_v, tv, sizeof(int) * (size_t)p->n_layers);
    } else {
        double lo = 0, hi = 1;
        for (int it = 0; it < 200; it++, hi *= 2) { /* a price high enough to fit */
            lagrange_pick(p, bk, bv, hi, tk, tv);
            if (choice_bits(p, bk, bv, tk, tv) <= budget) break;
        }
        for (int it = 0; it < 100; it++) {
            const double mid = 0.5 * (lo + hi);
            lagrange_pick(p, bk, bv, mid, tk, tv);
            if (choice_bits(p, bk, bv, tk, tv) <= budget) hi = mid;
            else lo = mid;
        }
        lagrange_pick(p, bk, bv, hi, tk, tv);
        if (choice_bits(p, bk, bv, tk, tv) <= budget)
            memcpy(choice_k, tk, sizeof(int) * (size_t)p->n_layers), memcpy(choice_v, tv, sizeof(int) * (size_t)p->n_layers);
    }
    free(tk);
    /* greedy: the best single upgrade per bit while one fits */
    double used = choice_bits(p, bk, bv, choice_k, choice_v);
    for (;;) {
        int bl = -1, bs = 0, bi = 0;
        double best = 0;
        for (int l = 0; l < p->n_layers; l++)
            for (int side = 0; side < 2; side++) {
                const int n = side ? p->n_types_v : p->n_types_k, cur = (side ? choice_v : choice_k)[l];
                const double *cost = (side ? p->cost_v : p->cost_k) + (size_t)l * (size_t)n, *bits = side ? bv : bk;
                for (int i = 0; i < n; i++) {
                    const double db = (bits[i] - bits[cur]) / (2.0 * p->n_layers), dc = cost[cur] - cost[i];
                    if (db <= 0 || dc <= 0 || used + db > budget + 1e-12) continue;
                    if (dc / db > best) best = dc / db, bl = l, bs = side, bi = i;
                }
            }
        if (bl < 0) break;
        int *ch = bs ? choice_v : choice_k;
        used += ((bs ? bv : bk)[bi] - (bs ? bv : bk)[ch[bl]]) / (2.0 * p->n_layers);
        ch[bl] = bi;
    }
    if (bits_out) *bits_out = choice_bits(p, bk, bv, choice_k, choice_v);
    if (cost_out) {
        double c = 0;
        for (int l = 0; l < p->n_layers; l++)
            c += p->cost_k[(size_t)l * (size_t)p->n_types_k + (size_t)choice_k[l]] +
                 p->cost_v[(size_t)l * (size_t)p->n_types_v + (size_t)choice_v[l]];
        *cost_out = c;
    }
    return RQ_OK;
}
