"""RL agents: rewards, the Plackett-Luce policy, the SB3 VecEnv adapter, PPO and SlateQ through the agent interface."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch

from stickyrec.agents.checkpoint import decode_checkpoint, encode_checkpoint
from stickyrec.agents.rl import load_agent, make_reward, make_rl_agent
from stickyrec.agents.rl.base import isolated_global_rng
from stickyrec.agents.rl.ppo import PPOAgent, gumbel_top_k, plackett_luce
from stickyrec.agents.rl.sb3_adapter import SB3VecEnv, flatten_observation
from stickyrec.agents.rl.slateq import SlateQAgent
from stickyrec.envs.rewards import RewardMix
from stickyrec.envs.vector import RetentionVectorEnv

TINY = {
    "ppo": {"n_envs": 16, "n_steps": 8, "batch_size": 64, "n_epochs": 2, "hidden": 16, "embed": 8},
    "slateq": {"n_envs": 16, "batch_size": 32, "learning_starts": 32, "buffer_size": 2000, "hidden": 16, "embed": 8},
}


def _info(**overrides):
    info = {
        "clicked_position": np.array([0, -1, 2]),
        "purchased": np.array([True, False, False]),
        "revenue": np.array([5.0, 0.0, 0.0]),
        "returned": np.array([False, True, False]),
        "return_gap_days": np.array([0.0, 3.0, 0.0]),
        "churned": np.array([False, False, True]),
    }
    return {**info, **overrides}


# --- rewards --------------------------------------------------------------------------------------------------------
def test_reward_mix_weights_each_term():
    reward = RewardMix(click=1.0, revenue=0.1, return_visit=2.0, return_gap=-0.5, churn=-10.0, purchase=3.0)
    np.testing.assert_allclose(reward(_info()), [1 + 0.5 + 3, 2 - 1.5, 1 - 10])
    assert reward(_info()).dtype == np.float32
    np.testing.assert_allclose(make_reward("retention")(_info()), [0, 1, 0])
    np.testing.assert_allclose(make_reward("click")(_info()), [1, 0, 1])
    np.testing.assert_allclose(make_reward({"revenue": 1})(_info()), [5, 0, 0])


def test_rated_click_pays_the_public_rating_of_the_clicked_item_and_needs_the_catalog():
    class Catalog:
        rating = np.array([0.9, 0.2, 0.5, 0.7])

    info = _info(clicked_item=np.array([3, -1, 1]))
    reward = make_reward("quality_stickiness")
    assert reward.needs_catalog and not make_reward("stickiness").needs_catalog
    # clicked items 3 (rating 0.7, bought) and 1 (0.2); the no-click row gets no rating but its return visit
    np.testing.assert_allclose(reward.bind(Catalog())(info), [3 * 0.7 + 1, 1, 3 * 0.2], rtol=1e-6)
    np.testing.assert_allclose(reward(info, Catalog()), reward.bind(Catalog())(info))
    with pytest.raises(ValueError, match="reads item ratings from the catalog"):
        reward(info)


def test_the_default_reward_is_retention_aware():
    from stickyrec.agents.rl import DEFAULT_REWARD

    default = make_reward(None)
    assert make_reward(DEFAULT_REWARD) == default and default.return_visit > 0 and default.click == 0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("clicks", "unknown reward 'clicks'"),
        ({"clickz": 1.0}, "unknown reward term"),
        ({"click": float("nan")}, "click=nan"),
        ({}, "every reward weight is zero"),
        (3, "allowed: a name"),
    ],
)
def test_bad_reward_is_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        make_reward(spec)


# --- Plackett-Luce --------------------------------------------------------------------------------------------------
def test_plackett_luce_log_prob_matches_sequential_softmax_and_sums_to_one():
    scores = torch.tensor([[0.3, -1.2, 2.0, 0.5]], dtype=torch.float64)
    total = 0.0
    for slate in itertools.permutations(range(4), 2):
        log_prob, _ = plackett_luce(scores, torch.tensor([slate]))
        p = torch.softmax(scores[0], 0)
        first = p[slate[0]]
        second = p[slate[1]] / (1 - p[slate[0]])
        assert float(log_prob) == pytest.approx(float(torch.log(first * second)), abs=1e-12)
        total += float(log_prob.exp())
    assert total == pytest.approx(1.0, abs=1e-12)


def test_plackett_luce_entropy_is_the_sum_of_conditional_entropies():
    scores = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
    _, entropy = plackett_luce(scores, torch.tensor([[2, 0]]))
    p1 = torch.softmax(scores[0], 0)
    p2 = torch.softmax(scores[0, :2], 0)  # after candidate 2 is taken
    expected = -(p1 * p1.log()).sum() - (p2 * p2.log()).sum()
    assert float(entropy) == pytest.approx(float(expected), abs=1e-12)


def test_gumbel_top_k_draws_distinct_candidates_at_softmax_rates():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(20000, 1)
    slates = gumbel_top_k(scores, 2, torch.Generator().manual_seed(0))
    assert (slates[:, 0] != slates[:, 1]).all()
    first = torch.bincount(slates[:, 0], minlength=4).double() / len(slates)
    np.testing.assert_allclose(first.numpy(), [0.5, 0.3, 0.15, 0.05], atol=0.015)  # ~4 standard errors


# --- the SB3 VecEnv adapter -----------------------------------------------------------------------------------------
def test_vec_env_adapter_follows_sb3_protocol(short_config):
    venv = SB3VecEnv(short_config, 8, make_reward("retention"), seed=3)
    reference = RetentionVectorEnv(8, config=short_config)
    obs = venv.reset()
    ref_obs, _ = reference.reset(seed=3)
    assert obs.shape == (8, short_config.n_candidates + ref_obs["shopper"].shape[1]) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs, flatten_observation(ref_obs))
    assert venv.observation_space.contains(obs[0])
    slates = np.tile(np.arange(short_config.slate_size), (8, 1))
    finished = truncated_seen = 0
    for _ in range(200):
        obs, reward, done, infos = venv.step(slates)
        ref_obs, _, terminated, truncated, ref_info = reference.step(slates)
        np.testing.assert_array_equal(obs, flatten_observation(ref_obs))
        np.testing.assert_array_equal(reward, ref_info["returned"].astype(np.float32))
        np.testing.assert_array_equal(done, terminated | truncated)
        for row in np.flatnonzero(done):
            final = flatten_observation({key: value[row] for key, value in ref_info["final_obs"].items()})
            np.testing.assert_array_equal(infos[row]["terminal_observation"], final)
            assert infos[row]["TimeLimit.truncated"] == bool(truncated[row] and not terminated[row])
            assert infos[row]["episode"]["l"] >= 1
            finished += 1
            truncated_seen += infos[row]["TimeLimit.truncated"]
        assert all(not infos[row] for row in np.flatnonzero(~done))
    assert finished > 0 and truncated_seen > 0  # a 5-day horizon: both endings occur
    assert venv.stats()["steps"] == 200 * 8


# --- training, acting, determinism, save/load -------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["ppo", "slateq"])
def trained(request, small_config):
    agent = make_rl_agent(request.param, seed=7, **TINY[request.param]).train(small_config, 400, progress=False)
    return request.param, agent


def _observation(config, n=12, seed=99):
    env = RetentionVectorEnv(n, config=config)
    obs, _ = env.reset(seed=seed)
    return env, obs


def test_trained_agent_acts_through_the_interface(trained, small_config):
    name, agent = trained
    env, obs = _observation(small_config)
    agent.bind(env)
    slates = agent.act(obs)
    assert slates.shape == (12, small_config.slate_size)
    assert all(len(set(row)) == small_config.slate_size for row in slates.tolist())
    assert agent.history["steps"] >= 400
    env.step(slates)  # a valid action for the env


def test_same_seed_same_actions_and_rewards(trained, small_config):
    name, agent = trained
    again = make_rl_agent(name, seed=7, **TINY[name]).train(small_config, 400, progress=False)
    env, obs = _observation(small_config)
    np.testing.assert_array_equal(agent.bind(env).act(obs), again.bind(env).act(obs))
    assert agent.history["reward_per_step"] == again.history["reward_per_step"] > 0  # same rewards in training
    assert agent.history["click_rate"] == again.history["click_rate"]
    for key, value in agent.net.state_dict().items():
        assert torch.equal(value, again.net.state_dict()[key]), key
    other = make_rl_agent(name, seed=8, **TINY[name]).train(small_config, 400, progress=False)
    assert any(not torch.equal(v, other.net.state_dict()[k]) for k, v in agent.net.state_dict().items())


def test_training_does_not_touch_the_callers_global_rng(small_config):
    def seed_all():
        np.random.seed(123)  # noqa: NPY002 (the point: the caller's global state)
        random.seed(123)
        torch.manual_seed(123)

    def draw():
        return np.random.random(), random.random(), float(torch.rand(1))  # noqa: NPY002

    seed_all()
    expected = draw()
    seed_all()
    make_rl_agent("ppo", seed=1, **TINY["ppo"]).train(small_config, 200, progress=False)
    assert draw() == expected
    with isolated_global_rng(5):
        inside = draw()
    with isolated_global_rng(5):
        assert draw() == inside


def test_save_load_gives_identical_actions(trained, small_config, tmp_path):
    name, agent = trained
    path = tmp_path / f"{name}.pt"
    agent.save(path)
    loaded = load_agent(path)
    assert type(loaded) is type(agent) and loaded.hyperparameters == agent.hyperparameters
    env, obs = _observation(small_config)
    np.testing.assert_array_equal(agent.bind(env).act(obs), loaded.bind(env).act(obs))
    payload = decode_checkpoint(path)  # plain data only: no pickle needed
    assert payload["name"] == name


def test_checkpoint_of_another_agent_or_env_is_refused(trained, small_config, tmp_path):
    name, agent = trained
    path = tmp_path / "agent.pt"
    agent.save(path)
    other = SlateQAgent if name == "ppo" else PPOAgent
    with pytest.raises(ValueError, match=f"holds agent '{name}', not '{other.name}'"):
        other.load(path)
    wrong_env = RetentionVectorEnv(2, config=small_config.replace(n_candidates=40))
    with pytest.raises(ValueError, match="trained on another env: n_candidates 30"):
        load_agent(path).bind(wrong_env)
    other_catalog = RetentionVectorEnv(2, config=small_config.replace(catalog_seed=small_config.catalog_seed + 1))
    with pytest.raises(ValueError, match="catalog_fingerprint"):
        load_agent(path).bind(other_catalog)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04 truncated zip"])
def test_corrupt_checkpoint_is_refused(tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable stickyrec checkpoint"):
        load_agent(path)
    with pytest.raises(ValueError, match="does not exist"):
        PPOAgent.load(tmp_path / "missing.pt")


def test_truncated_checkpoint_is_refused(trained, tmp_path):
    name, agent = trained
    path = tmp_path / "agent.pt"
    agent.save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="not a readable stickyrec checkpoint"):
        load_agent(path)


def test_pickled_object_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(encode_checkpoint({"format": "stickyrec.agent", "payload": object()}))  # needs unpickling
    with pytest.raises(ValueError, match="not a readable stickyrec checkpoint"):
        load_agent(path)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("dqn", {}, "unknown RL agent 'dqn'; allowed: ppo, slateq"),
        ("ppo", {"n_envs": 0}, "n_envs must be an integer >= 1"),
        ("ppo", {"gamma": 1.5}, "gamma must be a finite number in"),
        ("slateq", {"learning_rate": "fast"}, "learning_rate must be a finite number"),
        ("slateq", {"not_a_param": 1}, "unexpected keyword argument 'not_a_param'"),
        ("slateq", {"n_step": 0}, "n_step must be an integer >= 1"),
        ("slateq", {"n_step": 4, "n_envs": 64, "buffer_size": 200}, "buffer_size=200 cannot hold n_step=4 env steps"),
    ],
)
def test_bad_agent_arguments(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_rl_agent(name, **kwargs)


def test_untrained_agent_cannot_act_or_save(small_config, tmp_path):
    agent = PPOAgent()
    env, obs = _observation(small_config)
    agent.bind(env)
    with pytest.raises(ValueError, match="not trained"):
        agent.act(obs)
    with pytest.raises(ValueError, match="not trained"):
        agent.save(tmp_path / "x.pt")


# --- the CLI ----------------------------------------------------------------------------------------------------
def test_cli_train_writes_agent_logs_and_checkpoints(tmp_path, capsys):
    from stickyrec.experiments.cli import main

    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--agent",
            "ppo",
            "--config",
            "small",
            "--steps",
            "256",
            "--seed",
            "3",
            "--quiet",
            "--param",
            "n_envs=16",
            "--param",
            "n_steps=8",
            "--param",
            "batch_size=64",
            "--out",
            str(out),
            "--eval-shoppers",
            "20",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "trained ppo on 256 shopper-steps" in printed and "retained d30" in printed
    assert (out / "agent.pt").exists() and (out / "config.yaml").exists()
    assert list((out / "tb").glob("events.out.tfevents.*")), "no TensorBoard event file"
    import json

    meta = json.loads((out / "train.json").read_text())
    assert meta["agent"] == "ppo" and meta["seed"] == 3 and meta["history"]["steps"] == 256
    assert isinstance(load_agent(out / "agent.pt"), PPOAgent)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--reward", "clicks"], "unknown reward 'clicks'"),
        (["--param", "n_envs=0"], "n_envs must be an integer >= 1"),
        (["--param", "reward=click"], "set reward with its own option"),
        (["--steps", "0"], "--steps must be at least 1"),
    ],
)
def test_cli_train_refuses_bad_input_before_training(tmp_path, capsys, argv, message):
    from stickyrec.experiments.cli import main

    out = tmp_path / "run"
    assert main(["train", "--agent", "slateq", "--config", "small", "--out", str(out), "--quiet", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "agent.pt").exists()


@pytest.mark.parametrize("name", ["ppo", "slateq"])
def test_training_logs_losses_return_speed_clicks_and_churn(small_config, tmp_path, name):
    import csv

    agent = make_rl_agent(name, seed=2, **{**TINY[name], "n_envs": 32})
    agent.train(small_config.replace(horizon_days=5.0), 2048, log_dir=tmp_path, progress=False)
    assert list(tmp_path.glob("events.out.tfevents.*")), "no TensorBoard event file"
    with open(tmp_path / "progress.csv") as handle:
        columns = set(next(csv.reader(handle)))
    loss = "train/value_loss" if name == "ppo" else "train/q_loss"
    speed = "time/fps" if name == "ppo" else "time/steps_per_second"
    assert {loss, "rollout/ep_rew_mean", speed, "env/click_rate", "env/churn_share_of_episodes"} <= columns


# --- the comparison table ---------------------------------------------------------------------------------------
# --- discounting by simulated time ---------------------------------------------------------------------------------
def _filled_buffers(gap_days, gamma_day, gamma=0.9, lam=0.8):
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer

    from stickyrec.agents.rl.ppo import TimeDiscountedRolloutBuffer

    class Source:
        last_gap_days = np.zeros(1)

    obs_space, act_space = spaces.Box(-1, 1, (2,)), spaces.MultiDiscrete([3, 3])
    out = []
    for cls in (RolloutBuffer, TimeDiscountedRolloutBuffer):
        buffer = cls(len(gap_days), obs_space, act_space, gae_lambda=lam, gamma=gamma, n_envs=1)
        buffer.gap_source, buffer.gamma_day = Source(), gamma_day
        buffer.reset()
        for t, gap in enumerate(gap_days):
            Source.last_gap_days = np.array([gap])
            buffer.add(
                np.zeros((1, 2)),
                np.zeros((1, 2)),
                np.array([1.0 + t]),
                np.array([t == 2]),
                torch.tensor([0.5 * t]),
                torch.zeros(1),
            )
        buffer.compute_returns_and_advantage(torch.tensor([2.0]), np.array([False]))
        out.append(buffer)
    return out


def test_time_discount_equals_sb3_when_days_are_not_discounted():
    plain, timed = _filled_buffers([0.0, 3.0, 0.0, 2.0], gamma_day=1.0)
    np.testing.assert_allclose(timed.advantages, plain.advantages, rtol=1e-6)
    np.testing.assert_allclose(timed.returns, plain.returns, rtol=1e-6)


def test_time_discount_discounts_the_days_between_sessions():
    gamma, day = 0.9, 0.5
    _, timed = _filled_buffers([0.0, 2.0], gamma_day=day, gamma=gamma, lam=1.0)
    # lambda = 1: returns are discounted reward sums with the bootstrap value 2.0 after the last step
    second = 2.0 + gamma * day**2 * 2.0
    first = 1.0 + gamma * second
    np.testing.assert_allclose(timed.returns[:, 0], [first, second], rtol=1e-6)


# --- SlateQ's n-step replay ------------------------------------------------------------------------------------------
def test_slateq_n_step_returns_follow_each_shopper_and_stop_at_her_episode_end():
    from stickyrec.agents.rl.slateq import ReplayBuffer

    n_envs, steps, capacity, n_step = 3, 9, 21, 3  # wraps: 27 transitions into 21 rows
    rng = np.random.default_rng(5)
    reward = rng.normal(size=(steps, n_envs)).astype(np.float32)
    discount = rng.uniform(0.5, 1.0, size=(steps, n_envs)).astype(np.float32)
    churned = rng.random((steps, n_envs)) < 0.15
    done = churned | (rng.random((steps, n_envs)) < 0.15)  # the rest of the ends are horizon truncations
    buffer = ReplayBuffer(capacity, n_candidates=4, slate_size=2, shopper_dim=2, n_envs=n_envs)
    for t in range(steps):  # shopper vector = (step, slot), next shopper = (step + 1, slot): tags to check with
        tag = np.stack([np.full(n_envs, t), np.arange(n_envs)], axis=1).astype(np.float32)
        buffer.add(
            tag,
            np.zeros((n_envs, 4), np.int32),
            np.zeros((n_envs, 2)),
            np.zeros(n_envs),
            reward[t],
            tag + [1, 0],
            np.zeros((n_envs, 4), np.int32),
            churned[t].astype(np.float32),
            discount[t],
            done[t],
        )
    with pytest.raises(ValueError, match="3 env slots got 2"):
        buffer.add(*[np.zeros(2)] * 10)
    batch = buffer.sample(500, np.random.default_rng(0), n_step=n_step)
    starts = batch["shopper"].numpy().astype(int)
    assert starts[:, 0].min() == steps - capacity // n_envs  # the oldest kept step is sampled...
    assert starts[:, 0].max() == steps - n_step  # ...and none whose n - 1 later steps are not written yet
    for (t, slot), r, d, nxt in zip(starts, batch["reward"], batch["discount"], batch["next_shopper"]):
        want_r, want_d, last = 0.0, 1.0, t
        for i in range(n_step):  # by hand: sum rewards until her episode ended, discount 0 after a churn
            want_r += want_d * reward[t + i, slot]
            want_d *= discount[t + i, slot] * (1.0 - churned[t + i, slot])
            last = t + i
            if done[t + i, slot]:
                break
        assert float(r) == pytest.approx(want_r, rel=1e-5, abs=1e-6) and float(d) == pytest.approx(want_d, rel=1e-5)
        assert nxt.tolist() == [last + 1, slot]  # bootstraps from the state after her last included step
    one = buffer.sample(200, np.random.default_rng(0), n_step=1)
    rows = one["shopper"].numpy().astype(int)
    np.testing.assert_allclose(one["reward"], reward[rows[:, 0], rows[:, 1]])
    np.testing.assert_allclose(one["discount"], discount[rows[:, 0], rows[:, 1]] * ~churned[rows[:, 0], rows[:, 1]])


def test_slateq_slate_is_the_best_slate_under_its_own_choice_model(small_config):
    """Dinkelbach's rounds reach the slate of greatest expected Q (checked against every ordered slate)."""
    torch.manual_seed(3)
    agent = make_rl_agent("slateq", seed=0, **TINY["slateq"])
    agent.train(small_config, 64, progress=False)
    net, n, m, k = agent.net, 40, 6, small_config.slate_size
    with torch.no_grad():
        net.position_bias.copy_(-0.4 * torch.arange(k))
        q, q_none = torch.randn(n, m) * 2.0, torch.randn(n)
        g, g0 = torch.randn(n, m) * 1.5, torch.randn(n)
        chosen = torch.topk(net.ranking_key(q, q_none, g, g0), k, dim=1, sorted=True).indices
        first_round = torch.topk(torch.exp(g) * (q - q_none[:, None]), k, dim=1, sorted=True).indices

        def value(slate):
            p = net.slate_choice_probabilities(torch.gather(g, 1, slate), g0)
            return (p * torch.cat([torch.gather(q, 1, slate), q_none[:, None]], dim=1)).sum(dim=1)

        every = torch.tensor(list(itertools.permutations(range(m), k)))
        best = torch.stack([value(slate.expand(n, k)) for slate in every], dim=1).max(dim=1).values
        reached, paper = value(chosen), value(first_round)
    np.testing.assert_allclose(reached, best, rtol=1e-5, atol=1e-5)
    assert (paper < best - 1e-4).any()  # the paper's one-round top-k rule falls short somewhere
