"""Linear model with random intercepts (one or several grouping factors), fitted by REML in closed form.

    y = X β + Σ_k Z_k u_k + e,   u_k ~ N(0, τ_k² I),   e ~ N(0, σ² I)

For fixed ratios λ_k = σ²/τ_k² this is penalised least squares on A = [X | Z_1 | Z_2 ...] with
penalty λ_k on the k-th block (Henderson's mixed-model equations), so everything the analysis
needs has a closed form: the hat matrix, exact leave-one-out residuals e_i / (1 − h_i), exact
leave-group-out errors, and prediction-error variances σ² a C⁻¹ aᵀ. The λ_k are chosen by
maximising the restricted likelihood, which after profiling out σ² is a function of them alone:

    −2 ℓ(λ) = (n − p) log(PRSS/(n − p)) + log|C| − Σ_k q_k log λ_k,   C = AᵀA + diag(0, λ_k I)

where PRSS = ‖y − Aθ‖² + Σ_k λ_k‖u_k‖².

The factor with the most levels (the engine nests prefixes in head groups; a large table has
hundreds of prefixes) is eliminated by block elimination: its own block of C is diagonal (one
level per row), so with B the other columns, G = ZᵀB its level sums and D = ZᵀZ + λI,

    C⁻¹_BB = S⁻¹,   S = BᵀB + P_B − Gᵀ D⁻¹ G,   log|C| = log|D| + log|S|,

and nothing of the size of its levels squared is ever formed. With one factor the estimates
are those of statsmodels' MixedLM (tests/analysis/test_mixed.py).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from scipy import optimize
from scipy.linalg import lapack

LOG_LAMBDA_BOUNDS = (-12.0, 12.0)
_SINGULAR = 1e-10  # squared pivot of scaled normal equations below which a coefficient rests on nothing


@dataclasses.dataclass
class Factor:
    """One grouping factor: its levels, variance, and where its effects sit in `theta`."""

    name: str
    levels: list[str]
    tau2: float  # between-level variance; 0 when the levels cannot be told apart
    log_lambda: float  # log of σ²/τ² used
    start: int
    column: int = 0  # which column of the labels handed to the fit holds this factor

    @property
    def stop(self) -> int:
        return self.start + len(self.levels)


@dataclasses.dataclass
class _Normal:
    """The normal equations of a fit, in the eliminated form, for a given set of variance ratios."""

    btb: np.ndarray  # BᵀB + penalty of the dense factors (m × m)
    bty: np.ndarray
    sums: np.ndarray  # G = ZᵀB, level sums of the eliminated factor (q × m)
    zty: np.ndarray
    counts: np.ndarray
    lam: float  # λ of the eliminated factor

    def solve(self):
        """(θ_B, θ_Z, Cholesky factor of S, log|C|) or None when S is singular."""
        d = self.counts + self.lam
        v = self.sums / d[:, None]
        factor = _Cholesky.of(self.btb - self.sums.T @ v)
        if factor is None:
            return None
        theta_b = factor.solve(self.bty - v.T @ self.zty)
        theta_z = (self.zty - self.sums @ theta_b) / d
        return theta_b, theta_z, factor, float(np.sum(np.log(d))) + factor.log_det


@dataclasses.dataclass
class _Cholesky:
    """Cholesky factor of a symmetric matrix scaled to unit diagonal (LAPACK directly: the fit
    factors small matrices thousands of times, and scipy's wrappers cost five times the work)."""

    upper: np.ndarray
    scale: np.ndarray

    @classmethod
    def of(cls, matrix: np.ndarray) -> _Cholesky | None:
        """The factor, or None when the matrix is singular to working precision."""
        scale = np.sqrt(np.maximum(np.diag(matrix), 1e-300))
        upper, info = lapack.dpotrf(matrix / np.outer(scale, scale), lower=0, clean=0)
        if info != 0 or np.min(np.abs(np.diag(upper))) ** 2 < _SINGULAR:
            return None
        return cls(upper, scale)

    @property
    def log_det(self) -> float:
        return float(2 * np.sum(np.log(np.abs(np.diag(self.upper)))) + 2 * np.sum(np.log(self.scale)))

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        scaled = rhs / (self.scale if rhs.ndim == 1 else self.scale[:, None])
        x, _ = lapack.dpotrs(self.upper, scaled, lower=0)
        return x / (self.scale if rhs.ndim == 1 else self.scale[:, None])

    def inverse(self) -> np.ndarray:
        return self.solve(np.eye(len(self.scale)))


@dataclasses.dataclass
class PenalisedFit:
    """A fitted random-intercept model with its training rows (for leave-group-out refits)."""

    n_fixed: int
    factors: list[Factor]  # dense factors first (their columns follow X in B), the eliminated one last
    theta: np.ndarray  # fixed effects, dense factors' effects, then the eliminated factor's
    s_inverse: np.ndarray  # (C⁻¹)_BB
    sigma2: float
    leverage: np.ndarray  # diagonal of the hat matrix, one per observation
    resid: np.ndarray
    penalised_rss: float
    eliminated: bool  # whether the last factor is eliminated (else there is no random effect at all)
    b: np.ndarray  # training design [X | dense Z] (n × m)
    y: np.ndarray
    level: np.ndarray  # eliminated factor's level of each training row (−1 without one)
    sums: np.ndarray  # G = ZᵀB of the training rows
    counts: np.ndarray

    # ---------------------------------------------------------------- shape

    @property
    def n(self) -> int:
        return len(self.resid)

    @property
    def m(self) -> int:
        return self.b.shape[1]

    @property
    def df(self) -> float:
        """Residual degrees of freedom: n minus the effective number of parameters, tr(H)."""
        return float(self.n - self.leverage.sum())

    @property
    def beta(self) -> np.ndarray:
        return self.theta[: self.n_fixed]

    @property
    def log_lambdas(self) -> list[float]:
        """The variance ratios in the order the factors were handed to the fit."""
        return [factor.log_lambda for factor in sorted(self.factors, key=lambda f: f.column)]

    def factor(self, name: str) -> Factor | None:
        return next((f for f in self.factors if f.name == name), None)

    # The first factor, for the one-factor case.
    @property
    def groups(self) -> list[str]:
        return self.factors[0].levels if self.factors else []

    @property
    def tau2(self) -> float:
        return self.factors[0].tau2 if self.factors else 0.0

    @property
    def log_lambda(self) -> float:
        return self.factors[0].log_lambda if self.factors else 0.0

    @property
    def group_effects(self) -> np.ndarray:
        return self.theta[self.factors[0].start : self.factors[0].stop] if self.factors else np.zeros(0)

    @property
    def _lam(self) -> float:
        return float(np.exp(self.factors[-1].log_lambda)) if self.eliminated else 1.0

    # ---------------------------------------------------------------- rows

    def rows(self, x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(b, level of the eliminated factor or −1, prior variance of the levels the fit never saw)."""
        labels = _as_columns(labels)
        blocks, unseen = [x], np.zeros(len(x))
        dense = self.factors[:-1] if self.eliminated else self.factors
        for factor in dense:
            position = _positions(labels[:, factor.column], factor.levels)
            z = np.zeros((len(x), len(factor.levels)))
            z[np.flatnonzero(position >= 0), position[position >= 0]] = 1.0
            blocks.append(z)
            unseen += np.where(position >= 0, 0.0, factor.tau2)
        level = np.full(len(x), -1, dtype=np.int64)
        if self.eliminated:
            factor = self.factors[-1]
            level = _positions(labels[:, factor.column], factor.levels)
            unseen += np.where(level >= 0, 0.0, factor.tau2)
        return np.hstack(blocks), level, unseen

    def unseen(self, labels: np.ndarray) -> list[np.ndarray]:
        """Per factor, which rows belong to a level the fit had no data for."""
        labels = _as_columns(labels)
        return [_positions(labels[:, f.column], f.levels) < 0 for f in self.factors]

    def quad(self, b: np.ndarray, level: np.ndarray) -> np.ndarray:
        """a C⁻¹ aᵀ for rows a = [b | e_level] (the level part dropped where level is −1)."""
        u = b @ self.s_inverse
        out = np.sum(u * b, axis=1)
        if self.eliminated:
            seen = level >= 0
            d = self.counts + self._lam
            v = self.sums[level[seen]] / d[level[seen], None]
            out[seen] += (
                -2 * np.sum(u[seen] * v, axis=1) + 1 / d[level[seen]] + np.sum((v @ self.s_inverse) * v, axis=1)
            )
        return out

    def mean(self, b: np.ndarray, level: np.ndarray) -> np.ndarray:
        out = b @ self.theta[: self.m]
        if self.eliminated:
            effects = self.theta[self.m :]
            seen = level >= 0
            out[seen] += effects[level[seen]]
        return out

    def predict(self, x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prediction and the variance of a new observation's prediction error."""
        b, level, unseen = self.rows(x, labels)
        return self.mean(b, level), self.sigma2 * (1 + self.quad(b, level)) + unseen

    def standard_errors(self) -> np.ndarray:
        dense = np.diag(self.s_inverse)
        if not self.eliminated:
            return np.sqrt(self.sigma2 * dense)
        d = self.counts + self._lam
        v = self.sums / d[:, None]
        level = 1 / d + np.sum((v @ self.s_inverse) * v, axis=1)
        return np.sqrt(self.sigma2 * np.concatenate([dense, level]))

    # ---------------------------------------------------------------- leave a group out

    def without(self, rows: np.ndarray) -> _HeldOutFit | None:
        """The fit refitted without training rows `rows`, variance ratios held.

        A fixed effect that only those rows carry (its column is zero everywhere else) is dropped
        from the refit: the rows that need it cannot be predicted (`_HeldOutFit.predictable`), the
        others can. None when the remaining equations are still singular.
        """
        b, y, level = self.b[rows], self.y[rows], self.level[rows]
        whole = self._whole
        normal = _Normal(
            whole.btb - b.T @ b,
            whole.bty - b.T @ y,
            whole.sums.copy(),
            whole.zty.copy(),
            whole.counts.copy(),
            whole.lam,
        )
        if self.eliminated:
            seen = level >= 0
            np.subtract.at(normal.sums, level[seen], b[seen])
            np.subtract.at(normal.zty, level[seen], y[seen])
            np.subtract.at(normal.counts, level[seen], 1.0)
        support = self._column_support - np.count_nonzero(b, axis=0)
        kept = np.flatnonzero((support > 0) | (np.arange(self.m) >= self.n_fixed))
        solved = dataclasses.replace(
            normal,
            btb=normal.btb[np.ix_(kept, kept)],
            bty=normal.bty[kept],
            sums=normal.sums[:, kept],
        ).solve()
        if solved is None:
            return None
        kept_theta, theta_z, factor, _ = solved
        theta_b = np.zeros(self.m)
        theta_b[kept] = kept_theta
        s_inverse = np.zeros((self.m, self.m))
        s_inverse[np.ix_(kept, kept)] = factor.inverse()
        refit = dataclasses.replace(
            self,
            theta=np.concatenate([theta_b, theta_z]),
            s_inverse=s_inverse,
            sums=normal.sums,
            counts=normal.counts,
        )
        return _HeldOutFit(refit, np.setdiff1d(np.arange(self.m), kept))

    @functools.cached_property
    def _column_support(self) -> np.ndarray:
        """How many training rows have a nonzero entry in each column of B."""
        return np.count_nonzero(self.b, axis=0)

    @functools.cached_property
    def _whole(self) -> _Normal:
        """The whole fit's normal equations (computed once; leave-group-out folds downdate them)."""
        btb = self.b.T @ self.b
        dense = self.factors[:-1] if self.eliminated else self.factors
        for factor in dense:
            idx = np.arange(factor.start, factor.stop)
            btb[idx, idx] += np.exp(factor.log_lambda)
        seen = self.level >= 0
        zty = (
            np.bincount(self.level[seen], weights=self.y[seen], minlength=len(self.counts))
            if self.eliminated
            else np.zeros(0)
        )
        return _Normal(btb, self.b.T @ self.y, self.sums, zty, self.counts.astype(float), self._lam)


@dataclasses.dataclass
class _HeldOutFit:
    fit: PenalisedFit
    dropped: np.ndarray  # columns of B the refit had no data for

    def predictable(self, rows: np.ndarray) -> np.ndarray:
        """Which training rows the refit can predict (none of the dropped columns needed)."""
        return ~np.any(self.fit.b[np.ix_(rows, self.dropped)] != 0, axis=1)

    def predict_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and σ²(1 + a C⁻¹ aᵀ) of training rows `rows` under this refit (σ² of the whole fit)."""
        b, level = self.fit.b[rows], self.fit.level[rows]
        return self.fit.mean(b, level), self.fit.sigma2 * (1 + self.fit.quad(b, level))


def _positions(values: np.ndarray, levels: list[str]) -> np.ndarray:
    index = {g: i for i, g in enumerate(levels)}
    return np.array([index.get(v, -1) for v in np.asarray(values, dtype=object).astype(str).tolist()], dtype=np.int64)


def _as_columns(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels, dtype=object)
    return labels[:, None] if labels.ndim == 1 else labels


def fit_random_effects(
    x: np.ndarray,
    factors: list[tuple[str, np.ndarray]],
    y: np.ndarray,
    log_lambdas: list[float | None] | None = None,
) -> PenalisedFit:
    """REML fit of y on x with one random intercept per level of each factor.

    A factor with fewer than two levels among the data is dropped. With `log_lambdas` given, the
    variance ratios are held at those values (a refit on part of the data that keeps the whole
    fit's variance components); None for a factor estimates it.
    """
    n, p = x.shape
    kept: list[tuple[str, list[str], np.ndarray, float | None, int]] = []
    for k, (name, labels) in enumerate(factors):
        labels = np.asarray(labels, dtype=object).astype(str)
        levels = sorted(set(labels.tolist()))
        if len(levels) >= 2:
            given = log_lambdas[k] if log_lambdas is not None and k < len(log_lambdas) else None
            kept.append((name, levels, labels, given, k))
    # Eliminate the factor with the most levels; the others are dense columns after X.
    kept.sort(key=lambda item: len(item[1]))
    blocks, starts = [x], []
    for _, levels, labels, _, _ in kept[:-1]:
        starts.append(sum(block.shape[1] for block in blocks))
        z = np.zeros((n, len(levels)))
        z[np.arange(n), _positions(labels, levels)] = 1.0
        blocks.append(z)
    b = np.hstack(blocks)
    m = b.shape[1]
    eliminated = bool(kept)
    level = _positions(kept[-1][2], kept[-1][1]) if eliminated else np.full(n, -1, dtype=np.int64)
    q = len(kept[-1][1]) if eliminated else 0
    counts = np.bincount(level, minlength=q).astype(float) if eliminated else np.zeros(0)
    sums = np.zeros((q, m))
    if eliminated:
        np.add.at(sums, level, b)
    zty = np.bincount(level, weights=y, minlength=q) if eliminated else np.zeros(0)
    btb, bty, yty = b.T @ b, b.T @ y, float(y @ y)
    sizes = [len(levels) for _, levels, _, _, _ in kept]

    def normal_for(ll: np.ndarray) -> _Normal:
        penalised = btb.copy()
        for start, (_, levels, _, _, _), value in zip(starts, kept[:-1], ll[:-1], strict=True):
            idx = np.arange(start, start + len(levels))
            penalised[idx, idx] += np.exp(value)
        return _Normal(penalised, bty, sums, zty, counts, float(np.exp(ll[-1])) if eliminated else 1.0)

    def criterion(ll: np.ndarray) -> float:
        solved = normal_for(ll).solve()
        if solved is None:
            return 1e300
        theta_b, theta_z, _, log_det = solved
        prss = max(yty - theta_b @ bty - theta_z @ zty, 1e-300)
        return float((n - p) * np.log(prss / (n - p)) + log_det - sum(q_ * v for q_, v in zip(sizes, ll, strict=True)))

    fixed = [given for _, _, _, given, _ in kept]
    ll = np.array([0.0 if value is None else value for value in fixed], dtype=float)
    free = [k for k, value in enumerate(fixed) if value is None]
    if free:
        # Coordinate descent: each variance ratio in turn by a bounded one-dimensional search, until
        # the restricted likelihood stops improving. Deterministic and tight, so the optimum does not
        # depend on the rows' order (through rounding in BᵀB).
        best = criterion(ll)
        for _ in range(6 if len(free) > 1 else 1):
            for k in free:

                def along(value: float, k: int = k) -> float:
                    trial = ll.copy()
                    trial[k] = value
                    return criterion(trial)

                ll[k] = float(
                    optimize.minimize_scalar(
                        along, bounds=LOG_LAMBDA_BOUNDS, method="bounded", options={"xatol": 1e-6}
                    ).x
                )
            now = criterion(ll)
            if best - now < 1e-7:
                break
            best = now
    normal = normal_for(ll)
    solved = normal.solve()
    if solved is None:  # the fixed effects themselves are singular: the plain least-squares inverse
        raise np.linalg.LinAlgError("singular normal equations")
    theta_b, theta_z, factor, _ = solved
    s_inverse = factor.inverse()
    fitted = b @ theta_b + (theta_z[level] if eliminated else 0.0)
    resid = y - fitted
    prss = float(resid @ resid)
    for start, (_, levels, _, _, _), value in zip(starts, kept[:-1], ll[:-1], strict=True):
        effects = theta_b[start : start + len(levels)]
        prss += float(np.exp(value) * effects @ effects)
    if eliminated:
        prss += float(np.exp(ll[-1]) * theta_z @ theta_z)
    sigma2 = prss / (n - p)
    factor_list = []
    for (name, levels, _, _, column), value, start in zip(kept, ll, [*starts, m][: len(kept)], strict=True):
        tau2 = sigma2 / np.exp(value) if value < LOG_LAMBDA_BOUNDS[1] - 1e-3 else 0.0
        factor_list.append(Factor(name, levels, float(tau2), float(value), int(start), column))
    fit = PenalisedFit(
        n_fixed=p,
        factors=factor_list,
        theta=np.concatenate([theta_b, theta_z]),
        s_inverse=s_inverse,
        sigma2=sigma2,
        leverage=np.zeros(n),
        resid=resid,
        penalised_rss=prss,
        eliminated=eliminated,
        b=b,
        y=y,
        level=level,
        sums=sums,
        counts=counts,
    )
    fit.leverage = fit.quad(b, level)
    return fit


def fit_random_intercept(
    x: np.ndarray, groups: np.ndarray, y: np.ndarray, log_lambda: float | None = None
) -> PenalisedFit:
    """REML fit of y on x with a random intercept per group (plain least squares for one group)."""
    return fit_random_effects(x, [("group", groups)], y, None if log_lambda is None else [log_lambda])


def deletion_diagnostics(fit: PenalisedFit) -> tuple[np.ndarray, np.ndarray]:
    """Externally studentised residuals and leave-one-out residual SDs, in closed form.

    Leaving out observation i changes the residual to e_i / (1 − h_i) exactly (a rank-one
    update of C), and its variance to σ²_(i) / (1 − h_i), with σ²_(i) the residual
    variance estimated without observation i.
    """
    h, e = fit.leverage, fit.resid
    with np.errstate(divide="ignore", invalid="ignore"):
        deleted_var = (fit.penalised_rss - e**2 / (1 - h)) / (fit.n - fit.n_fixed - 1)
        deleted_sd = np.sqrt(np.maximum(deleted_var, 0))
        t_external = e / (deleted_sd * np.sqrt(1 - h))
    return t_external, deleted_sd
