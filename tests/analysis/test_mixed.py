"""The random-intercept model: closed forms checked against statsmodels and explicit refits."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from analysis.mixed import deletion_diagnostics, fit_random_effects, fit_random_intercept


def simulated(seed: int, n_groups: int = 6, per_group: int = 8, tau: float = 0.3, sigma: float = 0.1):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"G{i}" for i in range(n_groups)], per_group)
    x = np.column_stack([np.ones(len(groups)), rng.normal(size=len(groups)), rng.integers(0, 3, len(groups))])
    effects = dict(zip(sorted(set(groups)), rng.normal(0, tau, n_groups), strict=True))
    y = x @ np.array([10.0, 0.8, -0.5]) + np.array([effects[g] for g in groups]) + rng.normal(0, sigma, len(groups))
    return x, groups, y


@pytest.mark.parametrize("seed", range(5))
def test_reml_estimates_match_statsmodels_mixedlm(seed):
    x, groups, y = simulated(seed)
    fit = fit_random_intercept(x, groups, y)
    reference = sm.MixedLM(y, x, groups=groups).fit(reml=True)
    assert fit.sigma2 == pytest.approx(reference.scale, rel=1e-3)
    assert fit.tau2 == pytest.approx(float(np.asarray(reference.cov_re).ravel()[0]), rel=2e-3, abs=1e-6)
    assert np.allclose(fit.beta, reference.fe_params, atol=1e-4)
    blups = reference.random_effects
    assert np.allclose(fit.group_effects, [float(np.asarray(blups[g]).ravel()[0]) for g in fit.groups], atol=1e-4)


def test_single_group_is_ordinary_least_squares():
    x, _, y = simulated(1)
    fit = fit_random_intercept(x, np.array(["only"] * len(y)), y)
    ols = sm.OLS(y, x).fit()
    assert fit.groups == []
    assert fit.tau2 == 0
    assert np.allclose(fit.beta, ols.params)
    assert fit.sigma2 == pytest.approx(ols.scale)
    assert np.allclose(fit.leverage, ols.get_influence().hat_matrix_diag)


def _augmented(fit, x, groups):
    """[X | Z] over the fit's groups, to refit by hand."""
    z = (np.asarray(groups)[:, None] == np.array(fit.groups)[None, :]).astype(float)
    return np.hstack([x, z])


def test_leave_one_out_identity_matches_explicit_refits():
    """e_i / (1 - h_i) is the residual of a refit without observation i (variance ratio held fixed)."""
    x, groups, y = simulated(2)
    fit = fit_random_intercept(x, groups, y)
    lam = fit.sigma2 / fit.tau2
    a = _augmented(fit, x, groups)
    penalty = np.diag([0.0] * x.shape[1] + [lam] * len(fit.groups))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        theta = np.linalg.solve(a[keep].T @ a[keep] + penalty, a[keep].T @ y[keep])
        assert y[i] - a[i] @ theta == pytest.approx(fit.resid[i] / (1 - fit.leverage[i]), abs=1e-9)


def test_leaving_a_group_out_matches_an_explicit_refit():
    """`without` downdates the normal equations; the refit by hand agrees, prediction and variance."""
    x, groups, y = simulated(5)
    fit = fit_random_intercept(x, groups, y)
    lam = fit.sigma2 / fit.tau2
    a = _augmented(fit, x, groups)
    penalty = np.diag([0.0] * x.shape[1] + [lam] * len(fit.groups))
    test = np.flatnonzero(groups == "G2")
    keep = groups != "G2"
    system = a[keep].T @ a[keep] + penalty
    theta = np.linalg.solve(system, a[keep].T @ y[keep])
    predicted, variance = fit.without(test).predict_rows(test)
    assert np.allclose(predicted, a[test] @ theta, atol=1e-9)
    quad = np.sum((a[test] @ np.linalg.inv(system)) * a[test], axis=1)
    assert np.allclose(variance, fit.sigma2 * (1 + quad), rtol=1e-9)
    # The group's own effect is unknown to the fold: its prior variance τ² is in the prediction.
    assert np.all(variance > fit.tau2)


def test_two_factors_match_the_dense_mixed_model_equations():
    """Nested factors: the eliminated form gives Henderson's solution and its inverse exactly."""
    rng = np.random.default_rng(7)
    x, heads, y = simulated(6, n_groups=4, per_group=12)
    prefixes = np.array([f"{h}-{k}" for h, k in zip(heads, rng.integers(0, 4, len(heads)), strict=True)])
    fit = fit_random_effects(x, [("head", heads), ("prefix", prefixes)], y, [np.log(0.5), np.log(2.0)])
    head_levels, prefix_levels = sorted(set(heads)), sorted(set(prefixes))
    z1 = (heads[:, None] == np.array(head_levels)[None, :]).astype(float)
    z2 = (prefixes[:, None] == np.array(prefix_levels)[None, :]).astype(float)
    a = np.hstack([x, z1, z2])
    penalty = np.diag([0.0] * x.shape[1] + [0.5] * len(head_levels) + [2.0] * len(prefix_levels))
    system = a.T @ a + penalty
    theta = np.linalg.solve(system, a.T @ y)
    assert np.allclose(fit.theta, theta, atol=1e-9)
    assert np.allclose(fit.leverage, np.sum((a @ np.linalg.inv(system)) * a, axis=1), atol=1e-9)
    m = x.shape[1] + len(head_levels)
    assert np.allclose(fit.s_inverse, np.linalg.inv(system)[:m, :m], atol=1e-9)


def test_external_studentised_residuals_match_statsmodels_for_ols():
    x, _, y = simulated(3)
    y = y.copy()
    y[5] += 1.0  # one clear outlier
    fit = fit_random_intercept(x, np.array(["g"] * len(y)), y)
    t_external, _ = deletion_diagnostics(fit)
    reference = sm.OLS(y, x).fit().get_influence().resid_studentized_external
    assert np.allclose(t_external, reference)
    assert np.argmax(np.abs(t_external)) == 5


def test_unseen_group_gets_between_group_variance():
    x, groups, y = simulated(4)
    fit = fit_random_intercept(x, groups, y)
    row = x[:1]
    _, seen = fit.predict(row, np.array([groups[0]]))
    _, unseen = fit.predict(row, np.array(["never seen"]))
    assert unseen[0] > seen[0]
    # The unseen group's effect is unknown: its full prior variance is added, not a shrunken one.
    assert unseen[0] - fit.tau2 == pytest.approx(fit.sigma2 * (1 + row[0] @ fit.s_inverse[:3, :3] @ row[0]))
