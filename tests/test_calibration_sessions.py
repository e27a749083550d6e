"""Session-level shape: the real targets, the simulator's session measures, and the small fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from stickyrec.envs import get_preset
from stickyrec.experiments.calibration import sessions

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_shoppers_intention"


@pytest.fixture(scope="module")
def tiny():
    return get_preset("small").replace(max_session_steps=20)


def test_targets_are_the_shipped_constants(tmp_path):
    csv = tmp_path / "s.csv"
    csv.write_text("ProductRelated;Revenue;Month\n1;FALSE;Feb\n18;TRUE;Mar\n30;FALSE;May\n60;FALSE;May\n")
    got = sessions.real_targets(csv)
    assert got["sessions"] == 4 and got["buy_share"] == 0.25 and got["pages_median"] == 24.0
    assert got["pages_at_least_median_share"] == 0.5 and got["pages_over_50_share"] == 0.25
    with pytest.raises(ValueError, match="lacks columns"):
        (tmp_path / "bad.csv").write_text("Pages;Revenue\n1;TRUE\n")
        sessions.real_targets(tmp_path / "bad.csv")
    assert 0.15 < sessions.TARGETS["buy_share"] < 0.16 and sessions.TARGETS["pages_median"] == 18.0


@pytest.mark.skipif(not SOURCE.is_dir(), reason="the shared UCI copy is only on the development machine")
def test_targets_recompute_from_the_real_csv():
    assert sessions.real_targets(SOURCE / "online_shoppers_intention.csv") == sessions.TARGETS


def test_session_shape_is_sane(tiny):
    shape = sessions.session_shape(tiny, n_shoppers=64, seed=3, steps=60, median=5)
    assert shape["sessions"] > 64
    assert 0.0 < shape["buy_share"] < 1.0 and 0.0 <= shape["capped_share"] <= 1.0
    for key in ("impressions", "clicks", "impressions_plus_clicks"):
        assert shape[key]["median"] <= shape[key]["p90"]
    assert 1.0 <= shape["impressions"]["mean"] <= 20.0  # the cap
    assert shape["clicks"]["mean"] <= shape["impressions"]["mean"]
    assert shape["impressions_plus_clicks"]["mean"] == pytest.approx(
        shape["impressions"]["mean"] + shape["clicks"]["mean"]
    )
    assert sessions.session_shape(tiny, n_shoppers=64, seed=3, steps=60, median=5) == shape  # seeded
    cheap = sessions.session_shape(
        tiny.replace(purchase_bias=tiny.purchase_bias + 3.0), n_shoppers=64, seed=3, steps=60
    )
    assert cheap["buy_share"] > shape["buy_share"]
    with pytest.raises(ValueError, match="must exceed max_session_steps"):
        sessions.session_shape(tiny, n_shoppers=8, steps=20)


def test_fit_moves_the_share_toward_the_target(tiny):
    targets = {**sessions.TARGETS, "buy_share": 0.03, "pages_median": 5.0}
    fit = sessions.fit_session_shape(
        tiny, ("purchase_bias",), targets=targets, n_shoppers=64, steps=60, seed=1, max_evaluations=6, step_size=1.0
    )
    assert fit["evaluations"] <= 6
    start, best = fit["start"]["buy_share"], fit["shape"]["buy_share"]
    assert abs(best - 0.03) < abs(start - 0.03)
    assert fit["params"]["purchase_bias"] < tiny.purchase_bias
    with pytest.raises(ValueError, match="not allowed"):
        sessions.fit_session_shape(tiny, ("slate_size",))


def test_shape_distance_counts_percentage_points():
    t = sessions.TARGETS
    shape = {
        "buy_share": t["buy_share"] + 0.01,
        "at_least_median_share": t["pages_at_least_median_share"] - 0.02,
        "over_50_share": t["pages_over_50_share"] + 0.02,
    }
    assert sessions.shape_distance(shape) == pytest.approx(1.0 + 0.5 * 4)
    assert sessions.shape_distance(shape, tail=True) == pytest.approx(1.0 + 0.5 * 4 + 0.5 * 4)
