"""PPO choosing slates and a one-shot coupon together (``agents.rl.ppo_offers``) and its campaign arm
(``experiments.campaigns.CampaignPPO``).

The env reads the contact bit only at each shopper's decision step and then sends the campaign's coupons; the bit
enters the action's log-probability and entropy only there; the arm trains, sets its equal-budget threshold from the
training population and contacts exactly the deciding shoppers whose logit reaches it; bad settings
fail before any work.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stickyrec.agents.offers import campaign_coupons, campaign_deciding
from stickyrec.agents.rl.ppo_offers import OFFER_REWARD, OfferPPOAgent, OfferSB3VecEnv
from stickyrec.envs.rewards import make_reward
from stickyrec.envs.shoppers import SHOPPER_FEATURES
from stickyrec.experiments.campaigns import CampaignPPO, OfferStats
from stickyrec.experiments.rollout import rollout

DAY = 3
TINY = {"n_envs": 32, "n_steps": 16, "batch_size": 256}


@pytest.fixture(scope="module")
def world(small_config):
    return small_config.replace(horizon_days=10.0, offers="on")


def shopper_rows(step, elapsed):
    rows = np.zeros((len(step), len(SHOPPER_FEATURES)), dtype=np.float32)
    rows[:, SHOPPER_FEATURES.index("session_step")] = step
    rows[:, SHOPPER_FEATURES.index("horizon_elapsed")] = elapsed
    return rows


def test_the_campaign_rules_are_hand_derived():
    # horizon 10 days, T = 3: day = floor(elapsed * 10)
    rows = shopper_rows([0, 0, 1, 0, 0], [0.25, 0.35, 0.35, 0.35, 0.30])
    active = np.array([True, True, True, False, True])
    decided = np.array([False, False, False, False, True])
    assert campaign_deciding(rows, active, decided, 3, 10.0).tolist() == [False, True, False, False, False]
    contacted = np.array([True, True, True, False, True])
    sent, between = np.array([0, 0, 0, 0, 2]), np.full(5, 0.5)
    campaign_coupons(rows, contacted, sent, between, coupons=2, discount=0.2)
    # session starts reset the offer; contacted starts with coupons left get one; a mid-session row keeps its offer
    assert np.allclose(between, [0.2, 0.2, 0.5, np.nan, np.nan], equal_nan=True)
    assert sent.tolist() == [1, 1, 0, 0, 2]


def step_all(venv, bit_at_decisions: int, bit_elsewhere: int, steps: int = 400) -> np.ndarray:
    """Random slates; returns the observations' decision column summed per row."""
    rng = np.random.default_rng(0)
    obs = venv.reset()
    flags = np.zeros(venv.num_envs)
    k, m = venv.config.slate_size, venv.config.n_candidates
    for _ in range(steps):
        deciding = obs[:, -1] == 1
        flags += deciding
        assert np.array_equal(deciding, venv.deciding)
        slates = np.argsort(rng.random((venv.num_envs, m)), axis=1)[:, :k]
        bits = np.where(deciding, bit_at_decisions, bit_elsewhere)
        obs, _, _, _ = venv.step(np.column_stack([slates, bits]))
    return flags


def test_the_offer_env_reads_the_contact_bit_only_at_decisions(world):
    rules = OfferPPOAgent(seed=0, decision_day=DAY, coupons=2, **TINY).params
    venv = OfferSB3VecEnv(world, 16, make_reward(OFFER_REWARD), seed=5, rules=rules)
    shopper_dim = venv.venv.single_observation_space["shopper"].shape[0]
    assert venv.observation_space.shape[0] == world.n_candidates + shopper_dim + 1
    assert list(venv.action_space.nvec) == [world.n_candidates] * world.slate_size + [2]
    flags = step_all(venv, bit_at_decisions=0, bit_elsewhere=1)
    assert flags.sum() > 0 and venv.decisions == flags.sum()
    assert venv.contacts == 0 and not venv.contacted.any()  # the bits of 1 off the decision steps were ignored
    before = venv.decisions
    step_all(venv, bit_at_decisions=1, bit_elsewhere=0)
    assert venv.contacts == venv.decisions - before > 0  # counters run on: this pass contacted every decision
    assert (venv.sent <= 2).all() and (venv.sent[~venv.contacted] == 0).all()


def test_the_contact_bit_enters_the_log_probability_only_at_decisions(world):
    agent = OfferPPOAgent(seed=0, decision_day=DAY, **TINY)
    venv = agent.make_venv(world)
    from stickyrec.agents.rl.checkpoint import env_spaces
    from stickyrec.agents.rl.networks import catalog_tables

    agent.net = agent.build_net(env_spaces(world, venv.catalog), catalog_tables(venv.catalog))
    policy = agent.sb3_model(venv).policy
    obs = venv.reset()
    for _ in range(60):  # until some rows decide
        if obs[:, -1].any():
            break
        actions, _, _ = policy.forward(torch.from_numpy(obs))
        obs, _, _, _ = venv.step(actions.numpy())
    deciding = obs[:, -1] == 1
    assert deciding.any() and not deciding.all()
    actions, _, _ = policy.forward(torch.from_numpy(obs))
    ones, zeros = actions.clone(), actions.clone()
    ones[:, -1], zeros[:, -1] = 1, 0
    _, lp1, h1 = policy.evaluate_actions(torch.from_numpy(obs), ones)
    _, lp0, h0 = policy.evaluate_actions(torch.from_numpy(obs), zeros)
    p = torch.sigmoid(agent.net.offer_logit(torch.from_numpy(obs[:, world.n_candidates : -1])))
    moved = (lp1 - lp0).detach().numpy()
    assert np.allclose(moved[~deciding], 0.0)
    assert np.allclose(moved[deciding], torch.log(p / (1 - p)).detach().numpy()[deciding], atol=1e-5)
    assert torch.equal(h1, h0)


def test_the_ppo_campaign_trains_then_contacts_the_deciding_shoppers_at_its_threshold(world):
    agent = CampaignPPO(steps=1024, ppo=TINY, threshold_shoppers=150, decision_day=DAY, share=0.4, seed=3)
    fitted = agent.fit_population(world, 500_000, 400)
    assert fitted["threshold_shoppers"] == 150 and fitted["decided"] > 50 and fitted["train_steps"] >= 1024
    assert 0.0 <= fitted["training_contact_share"] <= 1.0
    (offers,) = rollout(agent, world, 200, 1_000_000, [OfferStats(200)])
    columns = agent.shopper_columns()
    decided, score = columns["decided"], columns["campaign_score"]
    assert np.isfinite(score[decided]).all() and np.isnan(score[~decided]).all()
    want = decided & (np.nan_to_num(score, nan=-np.inf) >= agent.threshold)  # equal budgets: whatever its sign
    assert np.array_equal(columns["contacted"], want)
    assert np.array_equal(offers["offers_sent"].to_numpy() > 0, want)
    again = CampaignPPO(steps=1024, ppo=TINY, threshold_shoppers=150, decision_day=DAY, share=0.4, seed=3)
    assert again.fit_population(world, 500_000, 400)["threshold"] == fitted["threshold"]  # same seed, same numbers


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"slates": "random"}, "takes no slates"),
        ({"steps": 0}, "steps = 0"),
        ({"ppo": {"bogus": 1}}, "bogus"),
        ({"ppo": {"n_envs": 0}}, "n_envs"),
        ({"reward": {"coupon_cost": "a lot"}}, "coupon_cost"),
        ({"targeting": "uplift"}, "allowed: ppo"),
        ({"discount": 1.5}, "discount"),
    ],
)
def test_the_ppo_campaign_rejects_bad_settings_before_any_work(params, message):
    with pytest.raises(ValueError, match=message):
        CampaignPPO.from_spec(params, seed=0)


def test_the_offer_env_needs_offers_on(small_config):
    with pytest.raises(ValueError, match="offers: on"):
        OfferPPOAgent(seed=0, **TINY).make_venv(small_config)
