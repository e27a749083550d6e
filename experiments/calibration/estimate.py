"""Simulated method of moments: the shopper population's parameters that make the batched env's customers look
like a store's (docs/calibration-plan.md section 3).

The fitted parameters are the buy-till-you-die mixtures of ``envs/traits.py``: visit rates lambda ~ Gamma(r,
alpha) (alpha per day) and dropout propensities p ~ Beta(a, b), searched as theta = (log r, log alpha, logit m,
log k) with m = a / (a + b) and k = a + b (better conditioned than log a, log b). The within-session fields stay as
the base config has them: a transaction log cannot tell a shopper's visit rate from the chance that a visit buys.

``calibrate`` runs:

1. a start from BG/NBD fitted to the same calibration weeks, its alpha rescaled by one pilot simulation so that
   the simulated mean of repeat purchases matches the real one (the simulator's purchase days per unit of visit
   rate depend on the base config and the policy, so the rescaling is measured, never assumed);
2. Nelder-Mead on the chi-square distance between real and simulated moments (``moments.NAMES``), weighted by the
   real moments' bootstrap variances, with one fixed ensemble of ``ensemble`` shoppers and common random numbers
   (shopper j is seeded ``seed + j`` at every theta, and her slates come from her own stream);
3. the standard errors: a central-difference Jacobian of the moments at the optimum, and the sandwich
   Var(theta) = (J'WJ)^-1 J'W Sigma W J (J'WJ)^-1 (1 + N / S), Sigma the bootstrap covariance of the real
   moments, N the log's customers and S the simulated ones (the simulation's own noise).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

from stickyrec.envs.config import RetentionConfig
from stickyrec.experiments.calibration import moments as mom
from stickyrec.experiments.calibration.bgnbd import fit_bgnbd
from stickyrec.experiments.calibration.ensemble import simulate_purchase_days

PARAMS = ("visit_rate_gamma_shape", "visit_rate_gamma_rate", "dropout_beta_a", "dropout_beta_b")
THETA_NAMES = ("log_r", "log_alpha", "logit_m", "log_k")
JACOBIAN_STEP = 0.2  # in theta; smaller steps drown in the ensemble's noise (plan section 3)
BOUNDS = np.array([[-5.0, 5.0], [-3.0, 12.0], [-8.0, 4.0], [-3.0, 6.0]])  # keep the search inside sane worlds


def theta_to_fields(theta) -> dict[str, float]:
    """Config fields of a theta = (log r, log alpha, logit m, log(a + b))."""
    log_r, log_alpha, logit_m, log_k = np.clip(np.asarray(theta, dtype=float), BOUNDS[:, 0], BOUNDS[:, 1])
    m, k = 1.0 / (1.0 + math.exp(-logit_m)), math.exp(log_k)
    return {
        "visit_rate_gamma_shape": math.exp(log_r),
        "visit_rate_gamma_rate": math.exp(log_alpha),
        "dropout_beta_a": m * k,
        "dropout_beta_b": (1.0 - m) * k,
    }


def fields_to_theta(fields: dict[str, float]) -> np.ndarray:
    a, b = fields["dropout_beta_a"], fields["dropout_beta_b"]
    return np.array(
        [
            math.log(fields["visit_rate_gamma_shape"]),
            math.log(fields["visit_rate_gamma_rate"]),
            math.log(a / b),
            math.log(a + b),
        ]
    )


def world(base: RetentionConfig, theta) -> RetentionConfig:
    """The base config with heterogeneous shoppers at theta (gamma visit rates, beta dropout after purchases)."""
    return base.replace(
        visit_rate_distribution="gamma",
        dropout_distribution="beta",
        dropout_after="purchase_session",
        churn_window_days=math.inf,
        **theta_to_fields(theta),
    )


@dataclass
class Simulator:
    """One fixed ensemble: ``spans`` (days each shopper is followed after her first purchase) and seeds
    ``seed + j``. ``moments(theta)`` runs it at theta and returns its moments and its number of customers."""

    base: RetentionConfig
    spans: np.ndarray
    seed: int
    pool: int = 500

    def histories(self, theta) -> mom.Histories:
        days = simulate_purchase_days(world(self.base, theta), self.spans, seed=self.seed, pool=self.pool)
        customers = days.customers
        index = np.full(len(self.spans), -1, dtype=np.int64)
        index[customers] = np.arange(len(customers))
        keep = index[days.shopper] >= 0
        return mom.Histories(index[days.shopper[keep]], days.day[keep], self.spans[customers])

    def moments(self, theta) -> tuple[np.ndarray, int]:
        h = self.histories(theta)
        if h.n == 0:
            return np.full(len(mom.NAMES), np.nan), 0
        return mom.moment_vector(h), h.n


@dataclass
class SimulatedFit:
    """The result of ``calibrate``: fields (config values) with standard errors, theta with its covariance, the fit's
    chi-square and its over-identification test, and the record of every evaluation."""

    fields: dict[str, float]
    se: dict[str, float]
    theta: np.ndarray
    cov_theta: np.ndarray
    chi2: float
    j_statistic: float
    j_p_value: float
    real_moments: np.ndarray
    simulated_moments: np.ndarray
    moment_sd: np.ndarray
    customers: int
    simulated_customers: int
    evaluations: int
    seconds: float
    start: dict[str, float]
    stopped_by: str
    trace: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "params": {k: {"value": v, "se": self.se[k]} for k, v in self.fields.items()},
            "theta": dict(zip(THETA_NAMES, self.theta.tolist())),
            "cov_theta": self.cov_theta.tolist(),
            "chi2": self.chi2,
            "j_statistic": self.j_statistic,
            "j_p_value": self.j_p_value,
            "moments": {
                name: {"real": float(r), "simulated": float(s), "sd": float(sd)}
                for name, r, s, sd in zip(mom.NAMES, self.real_moments, self.simulated_moments, self.moment_sd)
            },
            "customers": self.customers,
            "search_customers": self.simulated_customers,
            "evaluations": self.evaluations,
            "fit_seconds": self.seconds,
            "stopped_by": self.stopped_by,
            "start": self.start,
        }


class _Budget(Exception):
    """Raised inside the objective when the search's time or evaluation budget is spent."""


class _Objective:
    def __init__(self, sim: Simulator, real, sd, deadline: float, max_evals: int, progress, reserve: float = 0.0):
        self.sim, self.real, self.sd = sim, real, sd
        self.deadline, self.max_evals, self.progress = deadline, max_evals, progress
        self.reserve = reserve  # evaluations' worth of time to keep for what follows the search
        self.seconds = 0.0
        self.trace: list[dict] = []
        self.best: tuple[float, np.ndarray, np.ndarray, int] | None = None

    def chi2(self, simulated: np.ndarray) -> float:
        value = float(np.sum(((self.real - simulated) / self.sd) ** 2))
        return value if math.isfinite(value) else 1e12

    def __call__(self, theta: np.ndarray) -> float:
        now = time.perf_counter()
        mean = self.seconds / len(self.trace) if self.trace else 0.0
        if len(self.trace) >= self.max_evals or now + mean * (1.0 + self.reserve) > self.deadline:
            raise _Budget
        simulated, n = self.sim.moments(theta)
        self.seconds += time.perf_counter() - now
        value = self.chi2(simulated)
        self.trace.append({"theta": [float(t) for t in theta], "chi2": value, "customers": n})
        if self.best is None or value < self.best[0]:
            self.best = (value, np.array(theta, dtype=float), simulated, n)
        if self.progress is not None:
            self.progress(len(self.trace), value, self.best[0])
        return value


def start_theta(real_h: mom.Histories, real_moments: np.ndarray, sim: Simulator) -> np.ndarray:
    """BG/NBD's fit of the calibration weeks as a start, its alpha rescaled by one pilot run of the ensemble."""
    calibration = real_h.day <= real_h.T[real_h.customer]
    customer, day = real_h.customer[calibration], real_h.day[calibration]
    x = np.bincount(customer[day >= 1], minlength=real_h.n)
    t_x = np.zeros(real_h.n)
    np.maximum.at(t_x, customer, day.astype(float))
    fit = fit_bgnbd(x, t_x / 7.0, real_h.T / 7.0)
    a = float(np.clip(fit.params.a, 0.02, 20.0))
    b = float(np.clip(fit.params.b, 0.05, 200.0))
    theta = fields_to_theta(
        {
            "visit_rate_gamma_shape": float(np.clip(fit.params.r, 0.05, 50.0)),
            "visit_rate_gamma_rate": float(np.clip(fit.params.alpha * 7.0, 0.1, 1e4)),
            "dropout_beta_a": a,
            "dropout_beta_b": b,
        }
    )
    pilot, _ = sim.moments(theta)
    ratio = pilot[0] / real_moments[0] if real_moments[0] > 0 and pilot[0] > 0 else 1.0
    theta[1] += math.log(float(np.clip(ratio, 0.1, 10.0)))  # mean repeats ~ 1 / alpha
    return theta


def _search(objective: _Objective, theta0: np.ndarray, xatol: float) -> str:
    """Nelder-Mead, then one restart; returns why it stopped: "converged", "evaluations" or "budget" (only the last
    depends on the machine's speed: the others give the same fit for the same log, options and seed)."""
    simplex = np.vstack([theta0, theta0 + 0.4 * np.eye(len(theta0))])
    options = {"initial_simplex": simplex, "xatol": xatol, "fatol": 0.5, "maxfev": objective.max_evals}
    try:
        result = optimize.minimize(objective, theta0, method="Nelder-Mead", options=options)
        if objective.best is not None and len(objective.trace) < objective.max_evals - 8:
            # one restart from the best point: Nelder-Mead on a noisy surface often stalls on a collapsed simplex
            best = objective.best[1]
            options["initial_simplex"] = np.vstack([best, best + 0.2 * np.eye(len(best))])
            optimize.minimize(objective, result.x, method="Nelder-Mead", options=options)
    except _Budget:
        return "evaluations" if len(objective.trace) >= objective.max_evals else "budget"
    return "evaluations" if len(objective.trace) >= objective.max_evals else "converged"


def jacobian(sim: Simulator, theta: np.ndarray, step: float = JACOBIAN_STEP) -> tuple[np.ndarray, np.ndarray, int]:
    """Central differences of the moments in theta (columns), the moments at theta, and its customers."""
    center, n = sim.moments(theta)
    cols = []
    for k in range(len(theta)):
        delta = np.zeros(len(theta))
        delta[k] = step
        up, _ = sim.moments(theta + delta)
        down, _ = sim.moments(theta - delta)
        cols.append((up - down) / (2 * step))
    return np.stack(cols, axis=1), center, n


def sandwich(J: np.ndarray, W: np.ndarray, sigma: np.ndarray, factor: float) -> np.ndarray:
    """(J'WJ)^-1 J'W Sigma W J (J'WJ)^-1, times ``factor``."""
    bread = np.linalg.pinv(J.T @ W @ J)
    return bread @ (J.T @ W @ sigma @ W @ J) @ bread * factor


def field_errors(theta: np.ndarray, cov: np.ndarray) -> dict[str, float]:
    """Delta-method standard errors of the config fields from theta's covariance."""
    base = np.array([theta_to_fields(theta)[p] for p in PARAMS])
    grads = []
    for k in range(len(theta)):
        h = np.zeros(len(theta))
        h[k] = 1e-5
        up = np.array([theta_to_fields(theta + h)[p] for p in PARAMS])
        grads.append((up - base) / 1e-5)
    G = np.stack(grads, axis=1)
    var = np.einsum("ij,jk,ik->i", G, cov, G)
    return {p: float(math.sqrt(max(v, 0.0))) for p, v in zip(PARAMS, var)}


def calibrate(
    real_h: mom.Histories,
    base: RetentionConfig,
    *,
    ensemble: int = 3000,
    jacobian_ensemble: int = 6000,
    seed: int = 0,
    budget_s: float = 420.0,
    max_evals: int = 40,
    xatol: float = 0.02,
    bootstrap_reps: int = 200,
    progress: Callable[[int, float, float], None] | None = None,
    reserve_shoppers: int = 0,
) -> SimulatedFit:
    """Fit theta to the real log's calibration weeks (``real_h``); see the module docstring.

    ``budget_s`` bounds the whole fit: the search stops early enough to leave time, at its measured pace, for the
    Jacobian's 2 x 4 + 1 runs of ``jacobian_ensemble`` shoppers and ``reserve_shoppers`` more (what the caller
    simulates next, e.g. a validation run).
    """
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    real = mom.moment_vector(real_h)
    boot = mom.bootstrap_moments(real_h, bootstrap_reps, rng)
    usable = np.isfinite(real) & np.all(np.isfinite(boot), axis=0)
    sd = np.where(usable, boot.std(axis=0, ddof=1), np.inf)
    sd = np.where(sd > 0, sd, np.inf)  # a moment with no spread (e.g. no gaps at all) cannot be matched: ignore it
    spans = real_h.T[rng.integers(real_h.n, size=ensemble)]
    sim = Simulator(base, spans, seed=seed)
    theta0 = start_theta(real_h, real, sim)
    reserve = ((2 * len(THETA_NAMES) + 1) * jacobian_ensemble + reserve_shoppers) / ensemble
    objective = _Objective(sim, real, sd, started + budget_s, max_evals, progress, reserve)
    stopped_by = _search(objective, theta0, xatol)
    chi2, theta, simulated, n_sim = objective.best
    big = Simulator(base, real_h.T[rng.integers(real_h.n, size=jacobian_ensemble)], seed=seed + 10_000_000)
    J, center, n_big = jacobian(big, theta)
    keep = np.isfinite(sd) & np.all(np.isfinite(J), axis=1) & np.isfinite(center)
    W = np.diag(1.0 / sd[keep] ** 2)
    sigma = np.cov(boot[:, keep], rowvar=False)
    cov = sandwich(J[keep], W, sigma, 1.0 + real_h.n / max(n_sim, 1))
    resid = (real - center)[keep]
    j_stat = float(resid @ np.linalg.pinv(sigma * (1.0 + real_h.n / max(n_big, 1))) @ resid)
    dof = int(keep.sum()) - len(theta)
    fields = theta_to_fields(theta)
    return SimulatedFit(
        fields=fields,
        se=field_errors(theta, cov),
        theta=theta,
        cov_theta=cov,
        chi2=chi2,
        j_statistic=j_stat,
        j_p_value=float(stats.chi2.sf(j_stat, dof)) if dof > 0 else float("nan"),
        real_moments=real,
        simulated_moments=center,
        moment_sd=np.where(np.isfinite(sd), sd, np.nan),
        customers=real_h.n,
        simulated_customers=n_sim,
        evaluations=len(objective.trace),
        seconds=time.perf_counter() - started,
        start=theta_to_fields(theta0),
        stopped_by=stopped_by,
        trace=objective.trace,
    )
