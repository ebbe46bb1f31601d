#!/usr/bin/env python3
"""The coefficients of ubench.cu's tanh_fma (NOTES.md v15): tanh(x) ~ x P(x^2) / Q(x^2) with P of
degree 2, Q of degree 2 and Q(0) = 1, fitted to the relative error on [0, C] by least squares
with Lawson's reweighting (which tends to the minimax fit), on Chebyshev-spaced points. Needs
mpmath. Prints the fit's largest relative error on the points, 1 - tanh(C) (the clamp's error)
and the coefficients. tanh_fma_check.c then measures the float implementation over every float.

Run: python3 tanh_fma_fit.py [C]     (ubench.cu uses C = 5.2)"""
import sys
import mpmath as mp

mp.mp.dps = 30
NP, NQ = 3, 2  # coefficients of P; degree of Q (its constant term is 1)


def fit(c, npts=800, iters=120):
    xs = [max(c * (1 - mp.cos(mp.pi * (i + 0.5) / npts)) / 2, mp.mpf("1e-6")) for i in range(npts)]
    w = [mp.mpf(1)] * npts
    best = None
    for _ in range(iters):
        # x P(s) - tanh(x) (Q(s) - 1) = tanh(x), each row divided by tanh(x) and weighted
        rows, rhs = [], []
        for x, wi in zip(xs, w):
            t, s, sw = mp.tanh(x), x * x, mp.sqrt(wi)
            rows.append([sw * x * s**i / t for i in range(NP)] + [-sw * s**j for j in range(1, NQ + 1)])
            rhs.append(sw)
        a_mat, b_vec = mp.matrix(rows), mp.matrix(rhs)
        sol = mp.lu_solve(a_mat.T * a_mat, a_mat.T * b_vec)
        p = [sol[i] for i in range(NP)]
        q = [mp.mpf(1)] + [sol[NP + j] for j in range(NQ)]
        errs = [abs(x * mp.polyval(p[::-1], x * x) / mp.polyval(q[::-1], x * x) / mp.tanh(x) - 1) for x in xs]
        if best is None or max(errs) < best[0]:
            best = (max(errs), p, q)
        total = sum(wi * e for wi, e in zip(w, errs))
        w = [wi * e / total for wi, e in zip(w, errs)]
    return best


c = mp.mpf(sys.argv[1] if len(sys.argv) > 1 else "5.2")
err, p, q = fit(c)
print(f"C = {c}: fit {float(err):.3g}, clamp 1 - tanh(C) = {float(1 - mp.tanh(c)):.3g}")
print("P:", ", ".join(mp.nstr(v, 12) for v in p))
print("Q:", ", ".join(mp.nstr(v, 12) for v in q))
