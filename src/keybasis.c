/*
 * keybasis.c — fitting a key basis for the KV cache (rq_key_basis_fit).
 *
 * A rotation-based quantizer stores x̂ = x + e with an error that, after the
 * random rotation, is close to isotropic: E[e eᵀ] ≈ (D/d)·‖x‖²·I. Stored in
 * the basis A (the cache keeps A·k and scores A⁻ᵀq against it, which leaves
 * every score <q, k> unchanged), the score error of query q is
 * <A⁻ᵀq, e′> with e′ the error of A·k, so
 *
 *     E[score error²] ∝ E‖A k‖² · E‖A⁻ᵀ q‖² = tr(P Sk) · tr(P⁻¹ Sq),  P = AᵀA,
 *
 * with Sk = E[k kᵀ], Sq = E[q qᵀ]. The minimum over P is the matrix
 * geometric mean P = Sk⁻¹ # Sq, the unique SPD solution of P Sk P = Sq:
 *     P = Sk^-½ (Sk^½ Sq Sk^½)^½ Sk^-½,   A = P^½ (symmetric).
 * Without a basis (P = I) the product is tr(Sk)·tr(Sq); with it, it is
 * (tr (Sk^½ Sq Sk^½)^½)² — never larger (Cauchy–Schwarz), and much smaller
 * when keys and queries put their energy in different directions, as in
 * real models (outlier key channels that queries barely read).
 *
 * Everything here is double precision with sqrt and division only, and the
 * Jacobi sweeps run in a fixed order: the same inputs give the same A on
 * every machine.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Symmetric eigendecomposition by cyclic Jacobi rotations: on return the
 * eigenvalues are in w and the eigenvectors in the columns of U (row-major
 * d×d). S is overwritten. */
static void jacobi_eigen(double *S, int d, double *w, double *U) {
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) U[i * d + j] = i == j;
    double total = 0;
    for (int i = 0; i < d * d; i++) total += S[i] * S[i];
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int i = 0; i < d; i++)
            for (int j = i + 1; j < d; j++) off += S[i * d + j] * S[i * d + j];
        if (off <= 1e-30 * total) break;
        for (int p = 0; p < d; p++)
            for (int q = p + 1; q < d; q++) {
                double apq = S[p * d + q];
                if (apq == 0) continue;
                double theta = (S[q * d + q] - S[p * d + p]) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < d; k++) { /* columns p, q */
                    double skp = S[k * d + p], skq = S[k * d + q];
                    S[k * d + p] = c * skp - s * skq;
                    S[k * d + q] = s * skp + c * skq;
                }
                for (int k = 0; k < d; k++) { /* rows p, q */
                    double spk = S[p * d + k], sqk = S[q * d + k];
                    S[p * d + k] = c * spk - s * sqk;
                    S[q * d + k] = s * spk + c * sqk;
                }
                for (int k = 0; k < d; k++) {
                    double ukp = U[k * d + p], ukq = U[k * d + q];
                    U[k * d + p] = c * ukp - s * ukq;
                    U[k * d + q] = s * ukp + c * ukq;
                }
            }
    }
    for (int i = 0; i < d; i++) w[i] = S[i * d + i];
}

/* out = U diag(f(w)) Uᵀ for f(w) = w^power, power = ±½ (eigenvalues clamped
 * at floor > 0). M is not modified; tmp needs 2·d² + d doubles. */
static void sym_power(const double *M, int d, double power, double floor, double *out, double *tmp) {
    double *S = tmp, *U = tmp + (size_t)d * d, *w = tmp + 2 * (size_t)d * d;
    memcpy(S, M, sizeof(double) * (size_t)d * d);
    jacobi_eigen(S, d, w, U);
    for (int i = 0; i < d; i++) {
        double x = w[i] > floor ? w[i] : floor;
        w[i] = power > 0 ? sqrt(x) : 1 / sqrt(x);
    }
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += U[i * d + k] * w[k] * U[j * d + k];
            out[i * d + j] = s;
        }
}

static void matmul(const double *a, const double *b, int d, double *out) {
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += a[i * d + k] * b[k * d + j];
            out[i * d + j] = s;
        }
}

/* Symmetrized copy of S with a ridge of `ridge`·tr(S)/d on the diagonal;
 * returns tr(S) (0 or negative: S is unusable). */
static double regularize(const double *S, int d, double ridge, double *out) {
    double tr = 0;
    for (int i = 0; i < d; i++) tr += S[i * d + i];
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) out[i * d + j] = 0.5 * (S[i * d + j] + S[j * d + i]);
    for (int i = 0; i < d; i++) out[i * d + i] += ridge * tr / d;
    return tr;
}

rq_status rq_key_basis_fit(const double *Sk, const double *Sq, int d, float *A) {
    static const char fn[] = "rq_key_basis_fit";
    if (!Sk || !Sq || !A) return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !Sk ? "Sk" : !Sq ? "Sq" : "A");
    if (d < 1 || d > RQ_MAX_DIMS) return rq__fail(RQ_ERR_INVALID_ARG, "%s: d = %d out of range (1..%d)", fn, d, RQ_MAX_DIMS);
    const size_t dd = (size_t)d * d;
    for (size_t i = 0; i < dd; i++)
        if (!isfinite(Sk[i]) || !isfinite(Sq[i]))
            return rq__fail(RQ_ERR_NONFINITE, "%s: %s[%zu][%zu] = %g", fn, isfinite(Sk[i]) ? "Sq" : "Sk", i / (size_t)d,
                            i % (size_t)d, isfinite(Sk[i]) ? Sq[i] : Sk[i]);
    double *buf = malloc(sizeof(double) * (8 * dd + (size_t)d));
    if (!buf) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory", fn);
    double *K = buf, *Q = buf + dd, *Kh = buf + 2 * dd, *Kih = buf + 3 * dd, *T = buf + 4 * dd,
           *T2 = buf + 5 * dd, *tmp = buf + 6 * dd;
    /* a small ridge keeps both moments invertible (a channel no query ever
     * reads would otherwise get an infinite weight) and bounds cond(A) */
    const double ridge = 1e-4;
    double trk = regularize(Sk, d, ridge, K), trq = regularize(Sq, d, ridge, Q);
    rq_status st = RQ_OK;
    if (!(trk > 0) || !(trq > 0)) /* no energy: nothing to fit */
        st = rq__fail(RQ_ERR_INVALID_ARG, "%s: tr(%s) = %g: the %s moment has no energy", fn, trk > 0 ? "Sq" : "Sk",
                      trk > 0 ? trq : trk, trk > 0 ? "query" : "key");
    if (!st) {
        const double fk = ridge * trk / d * 0.5, fq = ridge * trq / d * 0.5;
        sym_power(K, d, 0.5, fk, Kh, tmp);   /* Sk^½  */
        sym_power(K, d, -0.5, fk, Kih, tmp); /* Sk^-½ */
        matmul(Kh, Q, d, T);
        matmul(T, Kh, d, T2); /* Sk^½ Sq Sk^½ */
        sym_power(T2, d, 0.5, fk * fq, T, tmp);
        matmul(Kih, T, d, T2);
        matmul(T2, Kih, d, T); /* P = Sk⁻¹ # Sq */
        sym_power(T, d, 0.5, 1e-300, T2, tmp); /* A = P^½ */
        /* scale: keep the keys' energy, tr(A Sk Aᵀ) = tr(Sk), so f16 and
         * fixed-range formats see keys of the usual size */
        matmul(T2, K, d, T);
        double e = 0;
        for (int i = 0; i < d; i++)
            for (int k = 0; k < d; k++) e += T[i * d + k] * T2[i * d + k]; /* tr(A K Aᵀ), A symmetric */
        double s = e > 0 ? sqrt(trk / e) : 0;
        for (size_t i = 0; i < dd; i++) {
            A[i] = (float)(T2[i] * s);
            if (!isfinite(A[i]) && !st) st = rq__fail(RQ_ERR_RANGE, "%s: A[%zu] overflows float", fn, i);
        }
    }
    free(buf);
    return st;
}

/* Gauss–Jordan elimination with partial pivoting in double. */
rq_status rq_key_basis_inverse_t(const float *A, int d, float *out) {
    static const char fn[] = "rq_key_basis_inverse_t";
    if (!A || !out) return rq__fail(RQ_ERR_INVALID_ARG, "%s: %s is NULL", fn, !A ? "A" : "out");
    if (d < 1 || d > RQ_MAX_DIMS) return rq__fail(RQ_ERR_INVALID_ARG, "%s: d = %d out of range (1..%d)", fn, d, RQ_MAX_DIMS);
    const double max_cond = 1e7;
    const size_t dd = (size_t)d * d;
    double *M = malloc(sizeof(double) * 2 * dd);
    if (!M) return rq__fail(RQ_ERR_NOMEM, "%s: out of memory", fn);
    double *I = M + dd;
    double norm_a = 0;
    for (size_t i = 0; i < dd; i++)
        if (!isfinite(A[i])) {
            free(M);
            return rq__fail(RQ_ERR_NONFINITE, "%s: A[%zu][%zu] = %g", fn, i / (size_t)d, i % (size_t)d, (double)A[i]);
        }
    for (int j = 0; j < d; j++) {
        double s = 0;
        for (int i = 0; i < d; i++) s += fabs((double)A[i * d + j]);
        norm_a = s > norm_a ? s : norm_a;
    }
    for (size_t i = 0; i < dd; i++) M[i] = A[i], I[i] = 0;
    for (int i = 0; i < d; i++) I[i * d + i] = 1;
    rq_status st = RQ_OK;
    for (int c = 0; c < d && !st; c++) {
        int piv = c;
        for (int r = c + 1; r < d; r++)
            if (fabs(M[r * d + c]) > fabs(M[piv * d + c])) piv = r;
        if (!(fabs(M[piv * d + c]) > 1e-300 * norm_a) || norm_a == 0) {
            st = rq__fail(RQ_ERR_INVALID_ARG, "%s: A is singular (no pivot in column %d)", fn, c);
            break;
        }
        if (piv != c)
            for (int k = 0; k < d; k++) {
                double t = M[c * d + k];
                M[c * d + k] = M[piv * d + k], M[piv * d + k] = t;
                t = I[c * d + k];
                I[c * d + k] = I[piv * d + k], I[piv * d + k] = t;
            }
        double inv = 1 / M[c * d + c];
        for (int k = 0; k < d; k++) M[c * d + k] *= inv, I[c * d + k] *= inv;
        for (int r = 0; r < d; r++) {
            if (r == c || M[r * d + c] == 0) continue;
            double f = M[r * d + c];
            for (int k = 0; k < d; k++) M[r * d + k] -= f * M[c * d + k], I[r * d + k] -= f * I[c * d + k];
        }
    }
    if (!st) {
        double norm_i = 0;
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int i = 0; i < d; i++) s += fabs(I[i * d + j]);
            norm_i = s > norm_i ? s : norm_i;
        }
        if (!(norm_a * norm_i <= max_cond))
            st = rq__fail(RQ_ERR_INVALID_ARG, "%s: A is ill-conditioned (1-norm condition number %.3g > %.0e)", fn,
                          norm_a * norm_i, max_cond);
    }
    for (int i = 0; i < d && !st; i++)
        for (int j = 0; j < d; j++) out[i * d + j] = (float)I[j * d + i];
    free(M);
    return st;
}
