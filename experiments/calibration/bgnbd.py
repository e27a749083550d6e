"""BG/NBD, the buy-till-you-die baseline (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

A customer buys at Poisson rate lambda ~ Gamma(r, alpha) while alive; after each repeat purchase she leaves for
good with probability p ~ Beta(a, b). Her history in the calibration weeks is ``x`` (repeat purchases), ``t_x``
(time of the last one, since her first purchase; 0 when ``x = 0``) and ``T`` (her age at the calibration end), all
times in one unit (weeks in ``transactions.Split.summary``).

Everything here is closed form: the log-likelihood (FHL eq. 6, in log space with ``gammaln``/``betaln`` and a
``logaddexp`` of its two terms, so it neither overflows nor underflows for heavy buyers), P(alive) (eq. 13), the
expected purchases of a new customer E[X(t)] (eq. 9) and of a customer given her history (eq. 10), and the chance
of at least one purchase in the next t. The Gaussian hypergeometric functions of eqs. 9 and 10 are evaluated after
Euler's transformation, 2F1(A, B; C; z) = (1 - z)^(C - A - B) 2F1(C - A, C - B; C; z), which removes the
(1 - z)^(r + x) factor that underflows while 2F1 overflows for heavy buyers.

``fit_bgnbd`` maximises the likelihood over the logs of (r, alpha, a, b) with L-BFGS-B and the analytic gradient
(digamma terms); the standard errors come from the inverse Hessian of the negative log-likelihood in log space
(central differences of that gradient), carried back to (r, alpha, a, b) by the delta method
(se(theta) = theta * se(log theta)).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

PARAMETERS = ("r", "alpha", "a", "b")


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in PARAMETERS}


@dataclass(frozen=True)
class BGNBDFit:
    """A maximum-likelihood fit: parameters, their standard errors and the fit's diagnostics."""

    params: BGNBDParams
    se: dict[str, float]  # standard errors of r, alpha, a, b (delta method from the log-space Hessian)
    cov_log: np.ndarray  # covariance of (log r, log alpha, log a, log b)
    log_likelihood: float  # total, at the optimum
    customers: int
    converged: bool
    seconds: float
    message: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "params": self.params.as_dict(),
            "se": dict(self.se),
            "log_likelihood": self.log_likelihood,
            "customers": self.customers,
            "converged": self.converged,
            "seconds": self.seconds,
        }


def _arrays(x, t_x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    x, t_x, T = np.broadcast_arrays(x, t_x, T)
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("x (repeat purchases) must be whole numbers of zero or more")
    if np.any(t_x < 0) or np.any(t_x > T + 1e-9):
        raise ValueError("t_x must lie in [0, T]: the last purchase falls between the first one and the end")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("t_x must be 0 for customers without repeat purchases (x = 0)")
    return x, t_x, T


def _unpack(params) -> tuple[float, float, float, float]:
    if isinstance(params, BGNBDFit):
        params = params.params
    values = tuple(float(getattr(params, name)) for name in PARAMETERS)
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"BG/NBD parameters must be positive and finite, got {dict(zip(PARAMETERS, values))}")
    return values


def log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood ln L(r, alpha, a, b | x, t_x, T) (FHL 2005 eq. 6)."""
    r, alpha, a, b = _unpack(params)
    x, t_x, T = _arrays(x, t_x, T)
    return _log_likelihood(r, alpha, a, b, x, t_x, T)


def _log_likelihood(r, alpha, a, b, x, t_x, T) -> np.ndarray:
    return _log_likelihood_gradient(r, alpha, a, b, x, t_x, T, gradient=False)[0]


def _compress(x, t_x, T, weights=None):
    """Distinct (x, t_x, T) rows and how many customers share each (the likelihood is a weighted sum)."""
    rows = np.stack([x, t_x, T], axis=1)
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    w = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=float)
    counts = np.bincount(inverse.ravel(), weights=w, minlength=len(unique))
    return unique[:, 0], unique[:, 1], unique[:, 2], counts


def _per_count(r, a, b, counts: np.ndarray) -> dict[str, np.ndarray]:
    """The terms of eq. 6 and of its gradient that depend on x only, for each distinct count in ``counts``."""
    psi = special.digamma
    repeat = counts > 0
    base = special.betaln(a, b)
    left = np.full(counts.shape, -np.inf)
    left[repeat] = special.betaln(a + 1.0, b + counts[repeat] - 1.0) - base
    psi_abx = psi(a + b + counts)
    d_base_a, d_base_b = psi(a) - psi(a + b), psi(b) - psi(a + b)
    d_left_b = np.zeros(counts.shape)
    d_left_b[repeat] = psi(b + counts[repeat] - 1.0) - psi_abx[repeat] - d_base_b
    return {
        "common": special.gammaln(r + counts) - special.gammaln(r),
        "alive": special.betaln(a, b + counts) - base,
        "left": left,
        "d_r": psi(r + counts) - psi(r),
        "d_alive_a": psi(a + b) - psi_abx,
        "d_left_a": psi(a + 1.0) - psi_abx - d_base_a,
        "d_alive_b": psi(b + counts) - psi_abx - d_base_b,
        "d_left_b": d_left_b,
    }


def _log_likelihood_gradient(r, alpha, a, b, x, t_x, T, gradient: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-likelihood and its gradient in (log r, log alpha, log a, log b), shape (4, n).

    The gamma and digamma terms depend on x alone: they are computed once per distinct x (a few hundred values
    even for 50,000 customers) and gathered, leaving only logs and exps per customer.
    """
    counts, at = np.unique(x, return_inverse=True)
    terms = {name: values[at] for name, values in _per_count(r, a, b, counts).items()}
    log_T, log_tx = np.log(alpha + T), np.log(alpha + t_x)
    alive = terms["alive"] - (r + x) * log_T
    left = terms["left"] - (r + x) * log_tx  # -inf where x = 0
    total = np.logaddexp(alive, left)
    ll = terms["common"] + r * np.log(alpha) + total
    if not gradient:
        return ll, np.empty((4, 0))
    w_alive, w_left = np.exp(alive - total), np.exp(left - total)
    grad = np.stack(
        [
            terms["d_r"] + np.log(alpha) - w_alive * log_T - w_left * log_tx,
            r / alpha - (r + x) * (w_alive / (alpha + T) + w_left / (alpha + t_x)),
            w_alive * terms["d_alive_a"] + w_left * terms["d_left_a"],
            w_alive * terms["d_alive_b"] + w_left * terms["d_left_b"],
        ]
    )
    return ll, grad * np.array([r, alpha, a, b])[:, None]


def hessian(gradient, theta: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Hessian at ``theta`` by central differences of an analytic ``gradient`` (symmetrised)."""
    n = len(theta)
    h = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = step
        h[i] = (gradient(theta + e) - gradient(theta - e)) / (2 * step)
    return (h + h.T) / 2


def _starts(x, T, counts) -> list[np.ndarray]:
    mean_T = max(float(np.average(T, weights=counts)), 1e-3)
    mean_x = float(np.average(x, weights=counts))
    rate = max(mean_x / mean_T, 1e-3)
    return [np.log([1.0, 1.0 / rate, 1.0, 1.0]), np.log([0.3, 0.3 / rate, 0.7, 2.5])]


def fit_bgnbd(x, t_x, T, *, weights=None, tol: float = 1e-10) -> BGNBDFit:
    """Maximum-likelihood BG/NBD fit to per-customer (x, t_x, T); see the module docstring."""
    started = time.perf_counter()
    x, t_x, T = _arrays(x, t_x, T)
    if x.size == 0:
        raise ValueError("cannot fit BG/NBD to zero customers")
    ux, ut, uT, counts = _compress(x.ravel(), t_x.ravel(), T.ravel(), weights)
    total = float(counts.sum())

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(np.clip(theta, -30, 30))
        ll, grad = _log_likelihood_gradient(r, alpha, a, b, ux, ut, uT)
        value = -float(np.dot(counts, ll)) / total
        if not np.isfinite(value):
            return 1e300, np.zeros(4)
        return value, -(grad @ counts) / total

    best = None
    bounds = [(-12.0, 12.0), (-12.0, 18.0), (-12.0, 12.0), (-12.0, 12.0)]
    for start in _starts(ux, uT, counts):
        result = optimize.minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": tol, "gtol": 1e-10, "maxiter": 2000},
        )
        if best is None or result.fun < best.fun:
            best = result
    theta = best.x
    h = hessian(lambda th: objective(th)[1] * total, theta)
    try:
        cov_log = np.linalg.inv(h)
    except np.linalg.LinAlgError:
        cov_log = np.full((4, 4), np.nan)
    values = np.exp(theta)
    se_log = np.sqrt(np.where(np.diag(cov_log) > 0, np.diag(cov_log), np.nan))
    params = BGNBDParams(*(float(v) for v in values))
    at_bound = any(abs(t - lo) < 1e-6 or abs(t - hi) < 1e-6 for t, (lo, hi) in zip(theta, bounds))
    return BGNBDFit(
        params=params,
        se={name: float(v * s) for name, v, s in zip(PARAMETERS, values, se_log)},
        cov_log=cov_log,
        log_likelihood=-float(best.fun) * total,
        customers=int(round(total)),
        converged=bool(best.success) and not at_bound,
        seconds=time.perf_counter() - started,
        message=str(best.message),
    )


def prob_alive(params, x, t_x, T) -> np.ndarray:
    """P(alive at T | x, t_x, T) (FHL eq. 13); 1 for customers without repeat purchases."""
    r, alpha, a, b = _unpack(params)
    x, t_x, T = _arrays(x, t_x, T)
    out = np.ones_like(x)
    rep = x > 0
    xr = x[rep]
    log_odds = np.log(a) - np.log(b + xr - 1.0) + (r + xr) * (np.log(alpha + T[rep]) - np.log(alpha + t_x[rep]))
    out[rep] = special.expit(-log_odds)
    return out


def _nudge(a: float) -> float:
    """``a`` kept 1e-6 off 1, where eqs. 9 and 10 are 0/0 (their limit is continuous in a)."""
    return a if abs(a - 1.0) > 1e-6 else 1.0 + 1e-6


def expected_purchases(params, t) -> np.ndarray:
    """E[X(t)]: expected repeat purchases of a customer in the ``t`` after her first purchase (FHL eq. 9)."""
    r, alpha, a, b = _unpack(params)
    a = _nudge(a)
    t = np.asarray(t, dtype=float)
    if np.any(t < 0):
        raise ValueError("t must be zero or more")
    z = t / (alpha + t)
    tail = np.power(1.0 - z, a - 1.0) * special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b - 1.0, z)
    return (a + b - 1.0) / (a - 1.0) * (1.0 - tail)


def conditional_expected_purchases(params, t, x, t_x, T) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` after T, given the history (FHL eq. 10)."""
    r, alpha, a, b = _unpack(params)
    a = _nudge(a)
    x, t_x, T = _arrays(x, t_x, T)
    t = np.asarray(t, dtype=float)
    if np.any(t < 0):
        raise ValueError("t must be zero or more")
    z = t / (alpha + T + t)
    tail = np.power(1.0 - z, a - 1.0) * special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
    return (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail) * prob_alive(params, x, t_x, T)


def prob_purchase(params, t, x, t_x, T) -> np.ndarray:
    """P(at least one purchase in the next ``t`` after T | x, t_x, T).

    Alive at T, her rate has the posterior Gamma(r + x, alpha + T), and she cannot leave before her next purchase,
    so P(none in t | alive) = ((alpha + T) / (alpha + T + t))^(r + x).
    """
    r, alpha, _, _ = _unpack(params)
    x, t_x, T = _arrays(x, t_x, T)
    t = np.asarray(t, dtype=float)
    none = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
    return prob_alive(params, x, t_x, T) * (1.0 - none)


def expected_cumulative_repeats(params, first_purchase, at, unit: float = 7.0) -> np.ndarray:
    """Expected repeat purchases of a cohort up to each time in ``at``: sum_i E[X(at - first_i)] over at >= first_i.

    ``first_purchase`` and ``at`` are numbers in one clock (e.g. days since some origin); ``unit`` converts their
    differences to the fit's time unit (7: days to weeks). This is the model's side of the tracking plot.
    """
    first = np.asarray(first_purchase, dtype=float).ravel()
    at = np.asarray(at, dtype=float).ravel()
    starts, counts = np.unique(first, return_counts=True)
    ages = at[:, None] - starts[None, :]
    positive = ages > 0
    expected = np.zeros_like(ages)
    distinct, inverse = np.unique(ages[positive], return_inverse=True)
    expected[positive] = expected_purchases(params, distinct / unit)[inverse]
    return expected @ counts.astype(float)


def simulate_bgnbd(params, T, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Histories (x, t_x, T) drawn from BG/NBD for customers of ages ``T`` (for recovery tests).

    Each customer draws lambda and p; she could make at most K ~ Geometric(p) repeat purchases before leaving and
    makes N ~ Poisson(lambda T) if alive throughout, so x = min(N, K); given N, the purchase times are uniform
    order statistics, so t_x / T ~ Beta(x, N - x + 1).
    """
    r, alpha, a, b = _unpack(params)
    T = np.asarray(T, dtype=float)
    n = T.shape[0]
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    k = rng.geometric(np.clip(p, 1e-12, 1.0))
    count = rng.poisson(lam * T)
    x = np.minimum(count, k)
    t_x = np.zeros(n)
    rep = x > 0
    t_x[rep] = T[rep] * rng.beta(x[rep], count[rep] - x[rep] + 1)
    return {"x": x.astype(np.int64), "t_x": t_x, "T": T.copy(), "lambda": lam, "p": p}
