"""The agent registry (kinds, what they need, how they are built from a config entry) and typed hyperparameters."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from stickyrec.agents import Agent, RandomPolicy
from stickyrec.agents.base import NEEDS_DATA, NEEDS_ENV, NEEDS_NOTHING
from stickyrec.agents.hyperparameters import HyperparameterError, Hyperparameters, choice, flag, integer, number
from stickyrec.agents.registry import AGENTS, get_agent_class, kinds, needs, register, unregister
from stickyrec.experiments.experiment import ExperimentConfig, make_agent

BUILT_IN = {
    "random": NEEDS_NOTHING,
    "click_chaser": NEEDS_NOTHING,
    "relevance_quality": NEEDS_NOTHING,
    "ctr_rating": NEEDS_NOTHING,
    "myopic_oracle": NEEDS_NOTHING,
    "long_term_oracle": NEEDS_NOTHING,
    "popularity": NEEDS_DATA,
    "item_cf": NEEDS_DATA,
    "mlp": NEEDS_DATA,
    "multi_objective": NEEDS_DATA,
    "retention_mlp": NEEDS_DATA,
    "ppo": NEEDS_ENV,
    "slateq": NEEDS_ENV,
}
# registered by the experiments layer (``experiments.campaigns``, imported with ``experiments.experiment``)
CAMPAIGN_KINDS = {"campaign": NEEDS_NOTHING, "campaign_oracle": NEEDS_NOTHING, "campaign_ppo": NEEDS_NOTHING}


def test_every_built_in_kind_is_registered_and_its_class_agrees():
    assert dict(zip(kinds(), map(needs, kinds()))) == BUILT_IN | CAMPAIGN_KINDS
    assert kinds(needs=NEEDS_ENV) == ("ppo", "slateq")
    assert kinds(needs=NEEDS_DATA) == ("popularity", "item_cf", "mlp", "multi_objective", "retention_mlp")
    for kind, need in BUILT_IN.items():
        cls = get_agent_class(kind)
        assert AGENTS[kind] is cls and issubclass(cls, Agent)
        assert cls.kind == kind and cls.name == kind and cls.needs == need
        assert (cls.default_steps is not None) == (need == NEEDS_ENV)
        assert (cls.file_suffix is not None) == (need != NEEDS_NOTHING)
    priority = {kind: get_agent_class(kind).priority for kind in BUILT_IN}
    assert priority["ppo"] == priority["slateq"] < priority["mlp"] < priority["popularity"] < priority["random"]


def test_listing_kinds_imports_no_torch():
    code = (
        "import sys; from stickyrec.agents.registry import kinds; from stickyrec.agents.rl import RL_AGENT_NAMES;"
        " kinds(); assert 'torch' not in sys.modules, 'torch imported'; print(RL_AGENT_NAMES)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "('ppo', 'slateq')"


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown agent kind 'dqn'; allowed: random, .*slateq"):
        get_agent_class("dqn")
    with pytest.raises(KeyError):
        AGENTS["dqn"]


def test_a_registered_kind_is_usable_in_a_config_and_refuses_a_second_owner():
    class SeededFirstK(Agent):
        kind = "seeded_first_k"

        def __init__(self, offset: int = 0) -> None:
            self.offset = offset

        def act(self, observation):
            ids = observation["candidate_ids"]
            return np.tile(np.arange(self.config.slate_size) + self.offset, (ids.shape[0], 1))

    register(SeededFirstK)
    try:
        assert get_agent_class("seeded_first_k") is SeededFirstK and needs("seeded_first_k") == NEEDS_NOTHING
        with pytest.raises(ValueError, match="taken"):
            register(type("Other", (SeededFirstK,), {}))
        experiment = ExperimentConfig.from_dict(
            {"name": "x", "seeds": 1, "agents": {"first": {"kind": "seeded_first_k", "params": {"offset": 2}}}}
        )
        agent = make_agent(experiment.agent("first"), seed=0)
        assert isinstance(agent, SeededFirstK) and agent.offset == 2 and agent.name == "first"
    finally:
        unregister("seeded_first_k")
    assert "seeded_first_k" not in kinds()
    with pytest.raises(ValueError, match="built-in"):
        unregister("ppo")


def test_from_spec_builds_each_kind_as_a_config_entry_says():
    random = RandomPolicy.from_spec({}, seed=5, reward=None)
    assert random.rng.random() == np.random.default_rng(5).random()
    assert get_agent_class("item_cf").from_spec({}, seed=0).ranking == "weighted_sum"  # the configs' ranking
    ppo = get_agent_class("ppo").from_spec({"n_envs": 8}, seed=3, reward="click")
    assert ppo.params.n_envs == 8 and ppo.params.seed == 3 and ppo.reward.click == 1.0
    assert get_agent_class("slateq").from_spec({}, seed=0).reward == get_agent_class("ppo")().reward  # default
    mlp = get_agent_class("mlp").from_spec({"embed_dim": 8, "epochs": 2}, seed=0)
    assert mlp.params.embed_dim == 8 and mlp.fit_options == {"epochs": 2}
    with pytest.raises(ValueError, match="takes no reward"):
        get_agent_class("popularity").from_spec({}, seed=0, reward="click")
    with pytest.raises(ValueError, match="unexpected keyword argument 'epoch'; allowed: embed_dim"):
        get_agent_class("mlp").from_spec({"epoch": 2}, seed=0)


# --- typed hyperparameters --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ToyConfig(Hyperparameters):
    size: int = integer(4, low=1)
    rate: float = number(0.1, low=0.0, high=1.0, open_low=True)
    scale: float = number(2.0, low=1.0)
    on: bool = flag(True)
    mode: str = choice("fast", ("fast", "slow"), note="slow is exact")

    def check(self) -> None:
        if self.size > 10 and self.mode == "slow":
            raise ValueError("size > 10 needs mode='fast'")


def test_hyperparameters_are_checked_converted_and_round_trip():
    config = ToyConfig(size=np.int64(5), rate=1, on=np.bool_(False))
    assert config.to_dict() == {"size": 5, "rate": 1.0, "scale": 2.0, "on": False, "mode": "fast"}
    assert type(config.size) is int and type(config.rate) is float and type(config.on) is bool
    assert ToyConfig.from_kwargs(**config.to_dict()) == config
    assert config.replace(size=7).size == 7 and config.size == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.size = 3


@pytest.mark.parametrize(
    "kwargs, field, message",
    [
        ({"size": 0}, "size", "size must be an integer >= 1, got 0"),
        ({"size": True}, "size", "size must be an integer >= 1, got True"),
        ({"size": 2.5}, "size", "size must be an integer >= 1"),  # 2.0 (YAML 2e0) is the integer 2
        ({"rate": 0.0}, "rate", r"rate must be a finite number in \(0.0, 1.0\], got 0.0"),
        ({"rate": float("nan")}, "rate", "rate must be a finite number"),
        ({"scale": 0.5}, "scale", "scale must be a finite number >= 1.0, got 0.5"),
        ({"scale": "big"}, "scale", "scale must be a finite number"),
        ({"on": 1}, "on", "on must be True or False, got 1"),
        ({"mode": "medium"}, "mode", r"mode='medium'; allowed: 'fast', 'slow' \(slow is exact\)"),
    ],
)
def test_bad_hyperparameters_name_the_field_and_what_is_allowed(kwargs, field, message):
    with pytest.raises(HyperparameterError, match=message) as caught:
        ToyConfig(**kwargs)
    assert caught.value.field == field and isinstance(caught.value, ValueError)


def test_unknown_hyperparameters_and_cross_field_constraints_are_refused():
    with pytest.raises(ValueError, match="ToyConfig got an unexpected keyword argument 'sise'; allowed: size, rate"):
        ToyConfig.from_kwargs(sise=3)
    with pytest.raises(ValueError, match="size > 10 needs mode='fast'"):
        ToyConfig(size=11, mode="slow")


def test_agents_take_keyword_arguments_or_a_config_and_save_a_loadable_dict():
    from stickyrec.agents.mlp import MLPClickModel, MLPConfig
    from stickyrec.agents.rl.ppo import PPOAgent, PPOConfig
    from stickyrec.agents.rl.slateq import SlateQAgent, SlateQConfig

    ppo = PPOAgent(seed=0, n_envs=64, n_steps=16, batch_size=512)
    assert ppo.params == PPOConfig(seed=0, n_envs=64, n_steps=16, batch_size=512)
    assert PPOAgent(params=ppo.params).hyperparameters == ppo.hyperparameters
    assert PPOAgent(**ppo.hyperparameters).params == ppo.params  # what a checkpoint saves builds it again
    slateq = SlateQAgent(seed=0, n_envs=32, learning_starts=256)
    assert slateq.params == SlateQConfig(seed=0, n_envs=32, learning_starts=256)
    assert SlateQAgent(**slateq.hyperparameters).hyperparameters == slateq.hyperparameters
    mlp = MLPClickModel(embed_dim=8, hidden_dim=4)
    assert (
        mlp.params == MLPConfig(embed_dim=8, hidden_dim=4) and MLPClickModel(**mlp.hyperparameters).params == mlp.params
    )
    with pytest.raises(ValueError, match="not both"):
        PPOAgent(params=ppo.params, n_envs=3)
    with pytest.raises(ValueError, match="params must be a PPOConfig"):
        PPOAgent(params=slateq.params)
