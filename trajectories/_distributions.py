"""Tail probabilities of the F and Student t distributions, for the p-values of `analysis`.

Both come from the regularized incomplete beta function I_x(a, b), evaluated by
its continued fraction (modified Lentz), on the side of the symmetry
I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges fast. Importing
`scipy.special` for these two numbers was 0.15 s of every `harness analyze` and
`harness report` (numpy included, a third of their start-up); the tests compare
both functions with scipy's over small and large degrees of freedom and far
tails (relative error below 1e-9).
"""

from __future__ import annotations

import math

_TINY = 1e-300  # keeps the fraction's terms off zero
_EPS = 1e-16
_MAX_TERMS = 100_000  # convergence takes O(sqrt(max(a, b))) terms on the fast side


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (fast for x < (a + 1) / (a + b + 2)); nan when it does not converge."""
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    value = d
    for m in range(1, _MAX_TERMS):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m)),  # even step
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))):  # odd step
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            value *= c * d
        if abs(c * d - 1.0) < _EPS:
            return value
    return math.nan


def _lower_tail(a: float, b: float, x: float, y: float) -> float:
    """I_x(a, b) for x in [0, 1], with y = 1 - x computed by the caller (exact where x is near 1)."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log(y) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _continued_fraction(b, a, y) / b


def f_survival(dfn: float, dfd: float, f: float) -> float:
    """P(F > f) for an F distribution with (dfn, dfd) degrees of freedom (`scipy.special.fdtrc`)."""
    if f <= 0.0:
        return 1.0
    if math.isinf(f):
        return 0.0
    scaled = dfn * f
    return _lower_tail(dfd / 2.0, dfn / 2.0, dfd / (dfd + scaled), scaled / (dfd + scaled))


def t_cdf(dof: float, t: float) -> float:
    """P(T <= t) for Student's t with `dof` degrees of freedom (`scipy.special.stdtr`)."""
    if math.isinf(t):
        return 0.0 if t < 0 else 1.0
    square = t * t
    tail = 0.5 * _lower_tail(dof / 2.0, 0.5, dof / (dof + square), square / (dof + square))  # P(T > |t|)
    return tail if t < 0 else 1.0 - tail
