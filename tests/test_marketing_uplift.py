"""Uplift learners and targeting scores (experiments.marketing.uplift), on hand-made cases and synthetic campaigns."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stickyrec.experiments.marketing.uplift import (
    UpliftModel,
    qini_coefficient,
    qini_observed,
    target_by_budget,
    uplift_curve,
)


def test_uplift_curve_by_hand():
    curve = uplift_curve([3.0, 2.0, 1.0, 0.0], [1.0, 0.0, -1.0, 0.0], points=5)
    # top 1: +1; top 2: +1; top 3: 0; all 4: 0 (per shopper of 4)
    assert curve["model"].tolist() == [0.0, 0.25, 0.25, 0.0, 0.0]
    assert curve["perfect"].tolist() == [0.0, 0.25, 0.25, 0.25, 0.0]
    assert curve["random"].tolist() == [0.0] * 5
    assert qini_coefficient(curve) == pytest.approx(2 / 3)  # area 0.125 of the perfect 0.1875


def test_perfect_and_reversed_rankings_score_one_and_below_zero():
    rng = np.random.default_rng(0)
    truth = rng.normal(0.02, 0.1, 500)
    assert qini_coefficient(uplift_curve(truth, truth)) == pytest.approx(1.0)
    assert qini_coefficient(uplift_curve(-truth, truth)) < 0


def test_qini_observed_by_hand():
    # ranked: T responder, C non-responder, T non-responder, C responder
    q = qini_observed([4, 3, 2, 1], [1, 0, 1, 0], [1, 0, 0, 1], points=5)
    assert q["qini"].tolist() == pytest.approx([0.0, 0.25, 0.25, 0.25, 0.0])


def test_target_by_budget_takes_the_best_scores_that_fit_and_skips_harm():
    mask = target_by_budget([0.5, 0.9, -0.2, 0.1, 0.3], [2.0, 2.0, 1.0, 1.0, 2.0], budget=5.0)
    assert mask.tolist() == [True, True, False, False, False]  # 0.9 then 0.5 (4.0 spent); 0.3 would pass 5.0
    assert not target_by_budget([-1.0, -2.0], 1.0, budget=10.0).any()
    for budget in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="budget"):
            target_by_budget([1.0], 1.0, budget)


@given(st.lists(st.floats(-1, 1), min_size=1, max_size=40), st.floats(0, 50))
def test_a_budgeted_campaign_never_overspends(scores, budget):
    cost = np.linspace(0.5, 3.0, len(scores))
    mask = target_by_budget(scores, cost, budget)
    assert cost[mask].sum() <= budget + 1e-9
    assert (np.asarray(scores)[mask] > 0).all()


@pytest.mark.parametrize("learner", ["two_model", "x_learner"])
def test_learners_recover_a_known_effect_from_a_randomised_campaign(learner):
    rng = np.random.default_rng(1)
    n = 2000
    x = rng.normal(size=(n, 3))
    treated = rng.random(n) < 0.5
    tau = np.where(x[:, 0] > 0, 0.3, -0.2)  # persuadables vs sleeping dogs, on one observable feature
    y = 0.4 + 0.1 * x[:, 1] + treated * tau + rng.normal(0, 0.3, n)
    model = UpliftModel(learner, seed=0).fit(x, treated, y, propensity=0.5)
    x_new = rng.normal(size=(2000, 3))
    truth = np.where(x_new[:, 0] > 0, 0.3, -0.2)
    predicted = model.predict(x_new)
    assert np.corrcoef(predicted, truth)[0, 1] > 0.8
    assert qini_coefficient(uplift_curve(predicted, truth)) > 0.8


def test_bad_uplift_data_is_refused():
    with pytest.raises(ValueError, match="at least 2 of each"):
        UpliftModel().fit(np.zeros((5, 2)), [1, 1, 1, 1, 1], np.zeros(5))
    with pytest.raises(ValueError, match="unknown"):
        UpliftModel("s_learner")
    with pytest.raises(ValueError, match="not fitted"):
        UpliftModel().predict(np.zeros((1, 2)))
