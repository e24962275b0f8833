/*
 * codebook.c — Lloyd-Max scalar codebooks for one coordinate of a randomly
 * rotated unit vector (TurboQuant, arXiv 2504.19874, §3.1: after a random
 * rotation each coordinate of a unit vector in R^d follows the Beta-type law
 * f(x) ∝ (1−x²)^((d−3)/2) on [−1, 1], and the MSE quantizer is the optimal
 * 2^b-level scalar quantizer of that law, found by the Lloyd-Max iteration).
 *
 * Two laws (rq_law): RQ_LAW_BETA, the exact law above for every d ≥ 2, and
 * RQ_LAW_GAUSS, its large-d limit N(0, 1/d) that the seed code used.
 *
 * Lloyd-Max alternates  bounds = midpoints of adjacent centroids  and
 * centroid_i = E[x | x in cell i] = ∫x f / ∫f  until the largest centroid
 * change is below CB_TOL·σ (σ = 1/√d). Only the positive half is iterated:
 * the laws are even, 2^b is even, so 0 is always a bound and the negative
 * half is the exact mirror image (c[L−1−i] = −c[i] bit for bit).
 *
 * Numerics (all in double; no libm transcendental is called, only + − × ÷,
 * sqrt, floor and rq__exp / rq__log from detmath.c, so every machine builds
 * bit-identical codebooks — glibc's exp/log/pow differ between CPUs):
 *  - ∫x f has a closed form: exact law  ∫_a^b x(1−x²)^k = [u_a^(k+1) − u_b^(k+1)]
 *    / (2(k+1)), u = 1−x², k = (d−3)/2;  Gaussian (z = x√d)  ∫_a^b z e^{−z²/2}
 *    = e^{−a²/2} − e^{−b²/2}. log(1−x²) comes from an atanh series (log1m),
 *    not from log of the rounded 1−x², which would lose ~d·2^-53 relative.
 *  - ∫f (the CDF F) is tabulated once on CB_GRID_CELLS cells (Simpson per
 *    cell, compensated running sum) and read at any point by cubic Hermite
 *    interpolation with the exact density as the derivative: O(h⁴) error,
 *    ~1e-14 relative here, and a C¹ function of the bound, so the Lloyd map
 *    stays smooth and converges to a clean fixed point.
 *  - Exact law: the grid variable is t with x = t(3 − t²)/2, for which
 *    1 − x² = (1−t²)²(4−t²)/4 and dx = 3(1−t²)/2 dt, so
 *    f dx = 1.5 (1−t²)^(d−2) (1 − t²/4)^((d−3)/2) dt — smooth on [0, 1] for
 *    every d ≥ 2 (at d = 2 the x-density has a (1−x²)^(−1/2) singularity,
 *    and at small d it is steep near ±1; in t both are gone).
 *  - Grid span: the laws are concentrated in |x| ≲ few σ; the grid covers
 *    |x| ≤ min(1, 12σ) (Gaussian: |z| ≤ 12). The mass beyond 12σ is < 1e-31,
 *    far below double rounding of the cell masses. With 8192 cells that is
 *    more than 400 grid cells per σ at every d.
 *  - Stopping: Lloyd converges linearly (≈ 0.97 per step at b = 4, ≈ 0.99
 *    at b = 5: the slowest mode slows as the cells multiply), so the
 *    distance to the fixed point is ~30× (b = 4) to ~110× (b = 5) the last
 *    change: CB_TOL·σ = 1e-12σ keeps it ≲ 1e-10σ, far inside the 1e-9
 *    promised in rotorquant.h, and ~50× above the ~1e-15 rounding noise of
 *    one Lloyd step.
 *  - Distortion: D = E[x²] − 2Σ c_i ∫_i x f + Σ c_i² ∫_i f, with E[x²] = 1/d
 *    exactly for both laws.
 * Cost: one table (16385 density evaluations) plus ~700 (b = 4) to ~2500
 * (b = 5) cheap Lloyd steps; 1–6 ms per codebook.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

#define CB_GRID_CELLS 8192     /* CDF table cells (Hermite error ~ h⁴)        */
#define CB_SPAN_SIGMAS 12.0    /* grid end in σ units (tail mass < 1e-31)     */
#define CB_TOL 1e-12           /* stop: max centroid change < CB_TOL·σ        */
#define CB_MAX_ITERS 100000    /* never reached in practice (≤ ~2500 needed)  */
#define CB_MAX_HALF (1 << (RQ_MAX_BITS - 1)) /* levels on the positive half   */

/* One law on the positive half, in "natural units" y: y = x for the exact
 * law, y = z = x√d for the Gaussian (whose codebook is then d-independent).
 * The grid variable v is t (exact law) or z (Gaussian). */
typedef struct {
    rq_law law;
    int n_dims;
    double k;       /* exact law exponent (d−3)/2                              */
    double p_scale; /* exact law: 1/(2(k+1)), so P(y) = u^(k+1)·p_scale       */
    double y_end;   /* end of the grid in natural units                        */
    double h;       /* grid step in v                                          */
    double mass;    /* F(y_end) = ∫_0^y_end f: the positive half's mass        */
    double *F;      /* F at the nodes v_j = j·h, CB_GRID_CELLS + 1 entries     */
    double *g;      /* dF/dv at the nodes                                      */
} cb_law;

/* log(1 − w) for 0 ≤ w ≤ 1, accurate to a few ulp even for tiny w.
 * w ≤ ½: log(1−w) = −2 atanh(a), a = w/(2−w) ≤ ⅓, series in a² ≤ 1/9.
 * w > ½: 1 − w is exact (Sterbenz), so rq__log of it is accurate. */
static double log1m(double w) {
    if (w <= 0.0) return 0.0;
    if (w >= 1.0) return -HUGE_VAL;
    if (w > 0.5) return rq__log(1.0 - w);
    double a = w / (2.0 - w), a2 = a * a, p = a, sum = a;
    for (int n = 3; n <= 61; n += 2) { /* (1/3)^61 / 61 < 1e-30: ample */
        p *= a2;
        double term = p / (double)n;
        sum += term;
        if (term < 1e-18 * sum) break;
    }
    return -2.0 * sum;
}

/* x(t) = t(3 − t²)/2 maps [0, 1] onto [0, 1] monotonically. */
static double x_of_t(double t) { return 0.5 * t * (3.0 - t * t); }

/* Inverse of x_of_t by Newton's method, monotone convergence on each branch. */
static double t_of_x(double x) {
    if (x <= 0.0) return 0.0;
    if (x >= 1.0) return 1.0;
    if (x <= 0.5) {
        /* q(t) = x(t) − x is concave increasing on [0, 1]; from t = 2x/3
         * (left of the root) Newton rises monotonically: stop when it stalls. */
        double t = x * (2.0 / 3.0);
        for (int it = 0; it < 100; it++) {
            double tn = t - (x_of_t(t) - x) / (1.5 * (1.0 - t * t));
            if (!(tn > t)) break;
            t = tn;
        }
        return t;
    }
    /* s = 1 − t solves p(s) = s²(3 − s)/2 − (1 − x) = 0 (1 − x is exact here);
     * p is convex increasing on [0, 1]; Newton from s = 1 falls monotonically. */
    double u = 1.0 - x, s = 1.0;
    for (int it = 0; it < 100; it++) {
        double sn = s - (0.5 * s * s * (3.0 - s) - u) / (1.5 * s * (2.0 - s));
        if (!(sn < s)) break;
        s = sn;
    }
    return 1.0 - s;
}

/* Density in the grid variable: dF/dv. */
static double law_density(const cb_law *L, double v) {
    if (L->law == RQ_LAW_GAUSS) return rq__exp(-0.5 * v * v);
    double t2 = v * v;
    double e = L->k * log1m(0.25 * t2);
    if (L->n_dims > 2) e += (double)(L->n_dims - 2) * log1m(t2); /* −inf at t = 1 */
    return 1.5 * rq__exp(e);
}

/* P(y) with ∫_a^b y f(y) dy = P(a) − P(b). */
static double law_moment1(const cb_law *L, double y) {
    if (L->law == RQ_LAW_GAUSS) return rq__exp(-0.5 * y * y);
    return L->p_scale * rq__exp((L->k + 1.0) * log1m(y * y));
}

static double v_of_y(const cb_law *L, double y) {
    return L->law == RQ_LAW_GAUSS ? y : t_of_x(y);
}

static double y_of_v(const cb_law *L, double v) {
    return L->law == RQ_LAW_GAUSS ? v : x_of_t(v);
}

/* F(y) = ∫_0^y f by cubic Hermite interpolation of the table. */
static double law_cdf(const cb_law *L, double y) {
    if (y <= 0.0) return 0.0;
    double u = v_of_y(L, y) / L->h;
    if (!(u < (double)CB_GRID_CELLS)) return L->mass;
    int j = (int)u;
    double s = u - (double)j, r = 1.0 - s;
    double h00 = (1.0 + 2.0 * s) * r * r, h01 = s * s * (3.0 - 2.0 * s);
    double h10 = s * r * r, h11 = -s * s * r;
    return h00 * L->F[j] + h01 * L->F[j + 1] + L->h * (h10 * L->g[j] + h11 * L->g[j + 1]);
}

/* Tabulates F on the grid (Simpson per cell, Neumaier-compensated sum). */
static rq_status law_init(cb_law *L, rq_law law, int n_dims) {
    L->law = law;
    L->n_dims = n_dims;
    L->k = 0.5 * (double)(n_dims - 3);
    L->p_scale = 1.0 / (2.0 * (L->k + 1.0));
    double v_end;
    if (law == RQ_LAW_GAUSS) {
        L->y_end = v_end = CB_SPAN_SIGMAS;
    } else {
        double x_end = CB_SPAN_SIGMAS / sqrt((double)n_dims);
        L->y_end = x_end < 1.0 ? x_end : 1.0;
        v_end = t_of_x(L->y_end);
    }
    L->h = v_end / (double)CB_GRID_CELLS;
    L->F = malloc(2 * (CB_GRID_CELLS + 1) * sizeof(double));
    if (!L->F) return RQ_ERR_NOMEM;
    L->g = L->F + CB_GRID_CELLS + 1;

    double sum = 0.0, comp = 0.0;
    L->F[0] = 0.0;
    L->g[0] = law_density(L, 0.0);
    for (int j = 0; j < CB_GRID_CELLS; j++) {
        double v0 = (double)j * L->h;
        L->g[j + 1] = law_density(L, (double)(j + 1) * L->h);
        double mid = law_density(L, v0 + 0.5 * L->h);
        double cell = L->h / 6.0 * (L->g[j] + 4.0 * mid + L->g[j + 1]);
        double ns = sum + cell; /* Neumaier: keep the rounding error of sum */
        comp += fabs(sum) >= fabs(cell) ? (sum - ns) + cell : (cell - ns) + sum;
        sum = ns;
        L->F[j + 1] = sum + comp;
    }
    L->mass = L->F[CB_GRID_CELLS];
    return RQ_OK;
}

/* Cell moments for bounds b[0..m] (b[0] = 0, b[m] = y_end): m0 = ∫f, m1 = ∫y f. */
static void cell_moments(const cb_law *L, const double *b, int m, double *m0, double *m1) {
    double f_lo = 0.0, p_lo = law_moment1(L, 0.0);
    for (int i = 0; i < m; i++) {
        double f_hi = i + 1 < m ? law_cdf(L, b[i + 1]) : L->mass;
        double p_hi = law_moment1(L, b[i + 1]);
        m0[i] = f_hi - f_lo;
        m1[i] = p_lo - p_hi;
        f_lo = f_hi;
        p_lo = p_hi;
    }
}

/* Lloyd-Max on the positive half: c[0..m−1] ascending, in natural units. */
static rq_status lloyd_half(const cb_law *L, int m, double *c, double *dist, int *n_iters) {
    double b[CB_MAX_HALF + 1], m0[CB_MAX_HALF], m1[CB_MAX_HALF];
    double sigma = L->law == RQ_LAW_GAUSS ? 1.0 : 1.0 / sqrt((double)L->n_dims);
    double tol = CB_TOL * sigma;

    /* Start from equal-mass cells (quantiles read off the table; linear
     * interpolation within a grid cell is plenty for a starting point). */
    b[0] = 0.0;
    b[m] = L->y_end;
    for (int i = 1, j = 0; i < m; i++) {
        double target = L->mass * (double)i / (double)m;
        while (j < CB_GRID_CELLS - 1 && L->F[j + 1] <= target) j++;
        double df = L->F[j + 1] - L->F[j];
        double s = df > 0.0 ? (target - L->F[j]) / df : 0.0;
        b[i] = y_of_v(L, ((double)j + s) * L->h);
    }
    cell_moments(L, b, m, m0, m1);
    for (int i = 0; i < m; i++) c[i] = m1[i] / m0[i];

    int it = 0;
    for (;;) {
        if (it >= CB_MAX_ITERS) return RQ_ERR_UNSUPPORTED; /* did not converge */
        it++;
        for (int i = 1; i < m; i++) b[i] = 0.5 * (c[i - 1] + c[i]);
        cell_moments(L, b, m, m0, m1);
        double delta = 0.0;
        for (int i = 0; i < m; i++) {
            double cn = m1[i] / m0[i];
            double dc = fabs(cn - c[i]);
            if (!(dc <= delta)) delta = dc; /* NaN propagates to the check */
            c[i] = cn;
        }
        if (!(delta == delta)) return RQ_ERR_UNSUPPORTED; /* cannot happen */
        if (delta < tol) break;
    }

    /* E[(y − c(y))²] over the full (symmetric) law, with the final
     * centroids and their midpoint bounds. */
    for (int i = 1; i < m; i++) b[i] = 0.5 * (c[i - 1] + c[i]);
    cell_moments(L, b, m, m0, m1);
    double e2 = L->law == RQ_LAW_GAUSS ? 1.0 : 1.0 / (double)L->n_dims;
    double cross = 0.0, sq = 0.0;
    for (int i = 0; i < m; i++) {
        cross += c[i] * m1[i];
        sq += c[i] * c[i] * m0[i];
    }
    *dist = e2 - (2.0 * cross - sq) / L->mass;
    *n_iters = it;
    return RQ_OK;
}

rq_status rq_codebook_init(rq_codebook *cb, int n_dims, int n_bits, rq_law law) {
    if (!cb) return RQ_ERR_INVALID_ARG;
    memset(cb, 0, sizeof *cb); /* on error the codebook reads as empty */
    if (law != RQ_LAW_BETA && law != RQ_LAW_GAUSS) return RQ_ERR_INVALID_ARG;
    if (n_dims < RQ_MIN_DIMS || n_dims > RQ_MAX_DIMS) return RQ_ERR_DIM;
    if (n_bits < 1 || n_bits > RQ_MAX_BITS) return RQ_ERR_BITS;

    int n_levels = 1 << n_bits, m = n_levels / 2;
    cb_law L;
    rq_status st = law_init(&L, law, n_dims);
    if (st) return st;
    double c[CB_MAX_HALF], dist = 0.0;
    int n_iters = 0;
    st = lloyd_half(&L, m, c, &dist, &n_iters);
    free(L.F);
    if (st) return st;

    /* Natural units → x: the Gaussian codebook was computed for z = x√d. */
    double scale_div = law == RQ_LAW_GAUSS ? sqrt((double)n_dims) : 1.0;
    for (int i = 0; i < m; i++) {
        double ci = c[i] / scale_div;
        cb->centroids_f64[m + i] = ci;
        cb->centroids_f64[m - 1 - i] = -ci; /* exact mirror */
    }
    for (int i = 0; i < n_levels; i++) cb->centroids[i] = (float)cb->centroids_f64[i];
    for (int i = 0; i + 1 < n_levels; i++)
        cb->bounds[i] = (float)(0.5 * (cb->centroids_f64[i] + cb->centroids_f64[i + 1]));
    cb->n_dims = n_dims;
    cb->n_bits = n_bits;
    cb->n_levels = n_levels;
    cb->law = law;
    cb->distortion = law == RQ_LAW_GAUSS ? dist / (double)n_dims : dist;
    cb->n_iters = n_iters;
    return RQ_OK;
}

int rq_codebook_index(const rq_codebook *cb, float y) {
    /* Branch-free count of bounds strictly below y (NaN → 0). */
    int idx = 0;
    for (int i = 0; i + 1 < cb->n_levels; i++) idx += cb->bounds[i] < y;
    return idx;
}
