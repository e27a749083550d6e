"""Per-customer predictions from the calibrated simulator: her latent propensities conditioned on her history.

A calibrated world draws each shopper's visit rate lambda ~ Gamma(r, alpha) and dropout propensity p ~ Beta(a, b)
independently. Seen through her purchase days, a customer of that world is (to a close approximation) a Poisson
stream of purchase days at rate kappa * lambda who leaves for good with probability p after each one, the first
included. kappa, purchase days per unit of visit rate, depends on the within-session model and the status-quo
policy; ``fit_kappa`` measures it on the log by marginal likelihood. Given her history (x repeat purchase days,
the last at t_x, age T), the likelihood of (lambda, p) is

    L = (1 - p)^(x + 1) lam^x exp(-lam T) + p (1 - p)^x lam^x exp(-lam t_x),       lam = kappa lambda,

and her posterior over a quantile grid of the population law is prior x P(she is a customer | lambda) x L. Because
lambda and p are independent, every sum over the grid factorises into a lambda-sum times a p-sum, except the
expected purchases, which take one (lambda, p) product per distinct history. The predictions for the next t days:

- P(alive) = E[(1 - p)^(x + 1) lam^x exp(-lam T)] / E[L];
- E[purchase days] = E[alive-term x (1 - exp(-lam p t)) / p] / E[L];
- P(at least one) = E[alive-term x (1 - exp(-lam t))] / E[L].

``posterior_grid`` also reports the effective sample size of each customer's weights over the lambda nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

LAMBDA_NODES = 600
P_NODES = 200
KAPPA_RANGE = (0.05, 20.0)


def _quantile_nodes(n: int, tail: int) -> tuple[np.ndarray, np.ndarray]:
    """Probability levels (midpoints) and their masses: equal steps in the body, log-spaced steps in both tails."""
    body = np.linspace(0.01, 0.99, n + 1)
    low = np.geomspace(1e-7, 0.01, tail + 1)
    high = 1.0 - np.geomspace(0.01, 1e-7, tail + 1)
    edges = np.unique(np.concatenate([[0.0], low, body, high, [1.0]]))
    return (edges[1:] + edges[:-1]) / 2.0, np.diff(edges)


@dataclass(frozen=True)
class Grid:
    """Nodes of the population law: lambda (per day) with prior masses times the customer-selection weight, and p
    with prior masses."""

    lam: np.ndarray
    lam_mass: np.ndarray
    p: np.ndarray
    p_mass: np.ndarray


def population_grid(fields: dict[str, float], selection=None) -> Grid:
    """Quantile grid of lambda ~ Gamma(r, alpha) and p ~ Beta(a, b); ``selection(lam)`` is P(customer | lambda)."""
    u, mass = _quantile_nodes(LAMBDA_NODES, 60)
    lam = special.gammaincinv(fields["visit_rate_gamma_shape"], u) / fields["visit_rate_gamma_rate"]
    lam = np.maximum(lam, np.finfo(float).tiny)
    if selection is not None:
        mass = mass * selection(lam)
    v, p_mass = _quantile_nodes(P_NODES, 30)
    p = np.clip(special.betaincinv(fields["dropout_beta_a"], fields["dropout_beta_b"], v), 1e-12, 1 - 1e-12)
    return Grid(lam, mass / mass.sum(), p, p_mass / p_mass.sum())


def selection_curve(visit_rate: np.ndarray, customer: np.ndarray):
    """P(customer | lambda) from a simulated ensemble: logistic in log lambda, fitted by maximum likelihood."""
    z = np.log(np.maximum(visit_rate, 1e-300))
    y = customer.astype(float)
    if y.all() or not y.any():
        return lambda lam: np.ones_like(lam)
    model = stats.linregress(z, y)  # a start
    coef = np.array([model.intercept, model.slope * 4.0])

    def nll(c):
        eta = c[0] + c[1] * z
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta))

    coef = optimize.minimize(nll, coef, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-6}).x
    return lambda lam: special.expit(coef[0] + coef[1] * np.log(np.maximum(lam, 1e-300)))


def _histories(x, t_x, T) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (x, t_x, T) rows and the inverse index (predictions are computed once per distinct history)."""
    rows = np.stack([np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float)], axis=1)
    return np.unique(rows, axis=0, return_inverse=True)


def _lambda_terms(grid: Grid, kappa: float, x, t_x, T):
    """log of mass x lam^x exp(-lam T) and of mass x lam^x exp(-lam t_x) over the lambda nodes (rows: histories),
    each row shifted by its largest term for stability; the nodes' rates lam (1, A); the shifts."""
    lam = kappa * grid.lam[None, :]
    base = x[:, None] * np.log(lam) + np.log(grid.lam_mass)[None, :]
    alive = base - lam * T[:, None]
    gone = base - lam * t_x[:, None]
    shift = np.maximum(alive.max(axis=1), gone.max(axis=1))[:, None]
    return alive - shift, gone - shift, lam, shift[:, 0]


def _p_sums(grid: Grid, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sum over p of (1 - p)^(x + 1) and of p (1 - p)^x, in logs (rows: histories)."""
    log_q = np.log1p(-grid.p)[None, :]
    log_mass = np.log(grid.p_mass)[None, :]
    alive = special.logsumexp(log_mass + (x[:, None] + 1) * log_q, axis=1)
    gone = special.logsumexp(log_mass + np.log(grid.p)[None, :] + x[:, None] * log_q, axis=1)
    return alive, gone


def fit_kappa(grid: Grid, x, t_x, T) -> float:
    """Purchase days per unit of visit rate, maximising the histories' marginal likelihood over log kappa in
    [log KAPPA_RANGE[0], log KAPPA_RANGE[1]] (bounded scalar search)."""
    rows, inverse = _histories(x, t_x, T)
    counts = np.bincount(inverse.ravel(), minlength=len(rows))
    result = optimize.minimize_scalar(
        lambda log_k: -float(counts @ _log_lik(grid, float(np.exp(log_k)), rows)),
        bounds=tuple(np.log(KAPPA_RANGE)),
        method="bounded",
        options={"xatol": 0.005},
    )
    return float(np.exp(result.x))


def _log_lik(grid: Grid, kappa: float, rows: np.ndarray) -> np.ndarray:
    """log E[L] per distinct history (up to terms free of lambda and p)."""
    x, t_x, T = rows[:, 0], rows[:, 1], rows[:, 2]
    alive, gone, _, shift = _lambda_terms(grid, kappa, x, t_x, T)
    pa, pg = _p_sums(grid, x)
    return shift + np.logaddexp(special.logsumexp(alive, axis=1) + pa, special.logsumexp(gone, axis=1) + pg)


def predict_customers(grid: Grid, kappa: float, x, t_x, T, horizon: float, chunk: int = 256) -> pd.DataFrame:
    """P(alive), expected purchase days and P(at least one) in the next ``horizon`` days, per customer (days)."""
    rows, inverse = _histories(x, t_x, T)
    out = np.empty((len(rows), 4))
    q = np.log1p(-grid.p)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        hx, ht, hT = part[:, 0], part[:, 1], part[:, 2]
        alive, gone, lam, _ = _lambda_terms(grid, kappa, hx, ht, hT)
        pa, pg = _p_sums(grid, hx)
        wa = np.exp(alive)  # (h, A), shifted
        total = wa.sum(axis=1) * np.exp(pa) + np.exp(gone).sum(axis=1) * np.exp(pg)
        p_alive = wa.sum(axis=1) * np.exp(pa) / total
        buys = (wa * -np.expm1(-lam * horizon)).sum(axis=1) * np.exp(pa) / total
        # expected purchases: sum_a sum_b wa_a * mass_b (1 - p_b)^(x + 1) (1 - exp(-lam_a p_b t)) / p_b
        pw = np.exp(np.log(grid.p_mass)[None, :] + (hx[:, None] + 1) * q[None, :])  # (h, B)
        inner = -np.expm1(-lam[0][:, None] * grid.p[None, :] * horizon) / grid.p[None, :]  # (A, B)
        expected = ((pw @ inner.T) * wa).sum(axis=1) / total  # a BLAS product: (h, B) x (B, A)
        weights = wa / wa.sum(axis=1, keepdims=True)
        ess = 1.0 / np.sum(weights**2, axis=1)
        out[start : start + len(part)] = np.stack([p_alive, expected, buys, ess], axis=1)
    values = out[inverse.ravel()]
    return pd.DataFrame(values, columns=["p_alive", "expected_purchases", "p_buy", "ess"])
