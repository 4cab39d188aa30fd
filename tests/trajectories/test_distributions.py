"""The F and t tail probabilities agree with scipy.special's over small and large degrees of
freedom and far tails."""

from __future__ import annotations

import math

import pytest
from scipy import special

from trajectories._distributions import f_survival, t_cdf

DFN = [1, 2, 3, 5, 10, 50, 300, 2000]
DFD = [1, 2, 3, 7, 30, 100, 1000, 10466, 50000]
F_VALUES = [1e-8, 1e-3, 0.1, 0.5, 0.9, 1.0, 1.1, 2.0, 5.0, 20.0, 100.0, 1e4, 1e8]
DOF = [1, 2, 3, 5, 10, 30, 100, 1000, 10467, 100000]
T_VALUES = [-1e6, -100.0, -30.0, -10.0, -5.0, -2.0, -1.0, -0.3, -1e-6, 0.0, 1e-6, 0.3, 1.0, 2.0, 5.0, 40.0]


def agree(mine: float, ref: float) -> bool:
    if ref < 1e-290:  # scipy's denormal range: both must be about nothing
        return mine < 1e-280
    return mine == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("dfn", DFN)
def test_f_survival_agrees_with_fdtrc(dfn: int) -> None:
    bad = [(dfn, dfd, f, f_survival(dfn, dfd, f), float(special.fdtrc(dfn, dfd, f)))
           for dfd in DFD for f in F_VALUES if not agree(f_survival(dfn, dfd, f), float(special.fdtrc(dfn, dfd, f)))]
    assert bad == []


@pytest.mark.parametrize("dof", DOF)
def test_t_cdf_agrees_with_stdtr(dof: int) -> None:
    bad = [(dof, t, t_cdf(dof, t), float(special.stdtr(dof, t)))
           for t in T_VALUES if not agree(t_cdf(dof, t), float(special.stdtr(dof, t)))]
    assert bad == []


def test_ends_of_the_range() -> None:
    assert f_survival(3, 10, 0.0) == 1.0 and f_survival(3, 10, -1.0) == 1.0 and f_survival(3, 10, math.inf) == 0.0
    assert t_cdf(5, -math.inf) == 0.0 and t_cdf(5, math.inf) == 1.0 and t_cdf(5, 0.0) == 0.5
