"""The closed-form PSD check of the 3x3 shock correlation matrix (the performance issue:
validation at a million cells): vectorised, and the same verdicts as ``eigvalsh``."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.params import (
    baseline,
    correlation_matrix,
    psd_ok,
    repeat_params,
    validate_params,
)

EIG_TOL = 1e-10  # eigvalsh's verdict: the smallest eigenvalue >= -EIG_TOL


def _eig_ok(c: np.ndarray, r: np.ndarray, ae: np.ndarray) -> np.ndarray:
    mats = np.stack([correlation_matrix(*v) for v in zip(c, r, ae, strict=True)])
    return np.linalg.eigvalsh(mats)[:, 0] >= -EIG_TOL


def test_random_matrices_get_the_verdicts_of_eigvalsh():
    rng = np.random.default_rng(7)
    c, r, ae = rng.uniform(-1, 1, (3, 20_000))
    smallest = np.linalg.eigvalsh(np.stack([correlation_matrix(*v) for v in
                                            zip(c, r, ae, strict=True)]))[:, 0]
    clear = np.abs(smallest) > 1e-9  # off the boundary (the boundary is tested below)
    ok = psd_ok(c, r, ae)
    np.testing.assert_array_equal(ok[clear], smallest[clear] >= 0)
    assert 0.2 < ok.mean() < 0.8  # both verdicts occur often


def _boundary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Singular correlation matrices (rank 2: three unit vectors in a plane) and the
    largest corr_alt_eq each (r, c) allows, plus the half-width of its allowed interval."""
    a, b = np.random.default_rng(seed).uniform(0.3, 2.8, (2, n))
    r, c = np.cos(a), np.cos(b)
    width = np.sqrt((1 - r * r) * (1 - c * c))
    return r, c, r * c + width, width


def test_singular_matrices_at_the_boundary_are_accepted_by_both():
    r, c, top, _ = _boundary(2000, 1)
    low = r * c - np.sqrt((1 - r * r) * (1 - c * c))
    for ae in (top, low):
        assert _eig_ok(c, r, ae).all()
        assert psd_ok(c, r, ae).all()


def test_just_outside_the_boundary_is_refused_by_both():
    r, c, top, width = _boundary(2000, 2)
    keep = width > 0.05  # a step of 1e-6 out is a clearly negative eigenvalue there
    r, c, ae = r[keep], c[keep], top[keep] + 1e-6
    assert not _eig_ok(c, r, ae).any()
    assert not psd_ok(c, r, ae).any()


@pytest.mark.parametrize(("c", "r", "ae", "ok"), [
    (1.0, 1.0, 1.0, True),  # all ones: rank 1
    (1.0, -1.0, -1.0, True),
    (-1.0, -1.0, 1.0, True),
    (1.0, 1.0, -1.0, False),  # |entries| <= 1 and det = -4
    (0.0, 0.0, 0.0, True),  # the identity
    (0.9, 0.0, -0.9, False),
    (0.5, 0.5, -0.5, True),  # det = 0: exactly singular
    (0.5, 0.85, float("nan"), True),  # unset: rho_ca x correlation, always PSD
    (-1.0, 1.0, float("nan"), True),
    (1.0, 1.0, 0.999, False),
])
def test_edge_cases_agree_with_eigvalsh(c, r, ae, ok):
    arr = (np.array([c]), np.array([r]), np.array([ae]))
    filled = (arr[0], arr[1], np.where(np.isnan(arr[2]), arr[0] * arr[1], arr[2]))
    assert bool(_eig_ok(*filled)[0]) is ok
    assert bool(psd_ok(*arr)[0]) is ok


def test_a_block_names_its_first_bad_cell_in_the_kernel_message():
    """validate_params over a stacked block (as farm's check_cells calls it): one call,
    the message of the first cell that is not PSD, unchanged."""
    block = repeat_params(baseline(), 5000)
    corr = np.full(5000, 0.5)
    alt_eq = np.full(5000, np.nan)
    corr[1234], alt_eq[1234] = 0.9, -0.9
    corr[4000], alt_eq[4000] = -0.8, 0.95
    with pytest.raises(ValueError) as err:
        validate_params(block._replace(correlation=corr, corr_alt_eq=alt_eq))
    assert str(err.value).startswith(
        "model parameters correlation=0.9, rho_ca=0.85, corr_alt_eq=-0.9 give a shock "
        "correlation matrix that is not positive semi-definite; allowed: correlations for "
        "which [[1, rho_ca, c], [rho_ca, 1, corr_alt_eq], [c, corr_alt_eq, 1]] is positive "
        "semi-definite (leave corr_alt_eq unset for rho_ca x correlation, always valid)")
    validate_params(block._replace(correlation=np.where(corr > 0.6, 0.5, corr),
                                   corr_alt_eq=np.full(5000, np.nan)))
