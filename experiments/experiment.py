"""Experiment configs: what ``stickyrec run CONFIG`` runs, validated in full before any work starts.

A config is a YAML file (``experiments/configs/*.yaml`` ships the canonical ones)::

    name: quick                      # results go to results/<name>/ unless --out says otherwise
    description: one line for the report
    env:                             # the base scenario: an env preset plus field overrides
      preset: small
      horizon_days: 30
    scenarios:                       # optional; each scenario is the base env plus its own overrides
      - {name: cb0, env: {clickbait_share: 0.0}}
      - {name: cb3, env: {clickbait_share: 0.3}}
    agents:                          # label -> spec; kind (agents.registry) defaults to the label
      random: {}
      mlp: {params: {epochs: 5}}
      ppo: {steps: 50000, reward: quality_stickiness, params: {n_envs: 64}}
      ppo_click: {kind: ppo, reward: click}
    seeds: 2                         # every agent runs seeds 0..seeds-1
    data: {shoppers: 3000}           # logged shoppers per seed, for the log-trained agents (popularity, CF, MLP)
    evaluation: {shoppers: 2000, population_seed: 1000000}
    report: {reference: mlp, resamples: 300, cohort_days: [1, 3, 7, 14, 30, 45]}

Seeds pair the agents: in seed ``s`` every agent meets the same held-out population (population seed
``population_seed + s * shoppers``: slot i is seeded ``+ i``, so the populations of different seeds never
overlap), log-trained agents learn from the log of population ``DATA_SEED_OFFSET + s * data.shoppers`` (logged
under random slates), RL agents train with seed ``s``.

Command-line overrides (``--set``) address any key by its dotted path, values parsed as YAML:
``--set env.clickbait_share=0.3``, ``--set seeds=3``, ``--set agents.ppo.steps=20000``,
``--set agents.mlp.params.epochs=3``. A typo anywhere fails at once with a ``ValueError`` naming the key.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stickyrec.agents.base import NEEDS_DATA, NEEDS_ENV
from stickyrec.agents.hyperparameters import HyperparameterError
from stickyrec.agents.registry import get_agent_class, kinds, needs
from stickyrec.envs.config import RetentionConfig, flatten_groups
from stickyrec.envs.rewards import DEFAULT_REWARD
from stickyrec.experiments import campaigns  # noqa: F401 (registers the campaign kinds: campaign, campaign_oracle, campaign_ppo)
from stickyrec.inputs import integral, load_yaml, short_repr

CONFIG_DIR = Path(__file__).parent / "configs"
DATA_SEED_OFFSET = 500_000  # logged populations: far from RL training seeds and from evaluation populations

TOP_KEYS = ("name", "description", "env", "scenarios", "agents", "seeds", "data", "evaluation", "report")
_SECTION_KEYS = {
    "data": ("shoppers",),
    "evaluation": ("shoppers", "population_seed"),
    "report": ("reference", "resamples", "cohort_days"),
}
_AGENT_KEYS = ("kind", "reward", "steps", "params")


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """One row of the comparison: an agent kind with its training budget, reward design and parameters.

    ``label`` is what the report shows; ``kind`` (a registry kind) is the agent's class and saved identity."""

    label: str
    kind: str
    reward: str | None = None  # RL agents only: a reward preset or a weight mapping (envs.rewards)
    steps: int | None = None  # RL agents only: env steps of training (None: the agent's default budget)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def needs(self) -> str:
        """What the agent learns from: ``"none"``, ``"data"`` (the logged data) or ``"rl"`` (the env)."""
        return needs(self.kind)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.reward is not None:
            out["reward"] = self.reward
        if self.steps is not None:
            out["steps"] = self.steps
        out["params"] = copy.deepcopy(self.params)
        return out


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    env: RetentionConfig


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A fully resolved, validated experiment. ``to_dict()`` round-trips through ``from_dict``."""

    name: str
    description: str
    env: dict[str, Any]  # the base env as given (preset + overrides); resolved per scenario in ``scenarios``
    scenarios: tuple[Scenario, ...]
    scenario_overrides: tuple[dict[str, Any], ...]
    agents: tuple[AgentSpec, ...]
    seeds: int
    data_shoppers: int = 3000
    eval_shoppers: int = 2000
    population_seed: int = 1_000_000
    reference: str = "mlp"  # the agent every other is tested against (log-rank, paired differences)
    resamples: int = 300
    cohort_days: tuple[int, ...] = (1, 3, 7, 14, 30, 45)

    @property
    def needs_data(self) -> bool:
        return any(a.needs == NEEDS_DATA for a in self.agents)

    def agent(self, label: str) -> AgentSpec:
        return next(a for a in self.agents if a.label == label)

    def eval_population_seed(self, seed: int) -> int:
        return self.population_seed + seed * self.eval_shoppers

    def data_population_seed(self, seed: int) -> int:
        return DATA_SEED_OFFSET + seed * self.data_shoppers

    def to_dict(self) -> dict[str, Any]:
        """The resolved config: every scenario's full env, every agent's spec (saved with the results)."""
        return {
            "name": self.name,
            "description": self.description,
            "env": copy.deepcopy(self.env),
            "scenarios": [
                {"name": s.name, "env": copy.deepcopy(o)} for s, o in zip(self.scenarios, self.scenario_overrides)
            ],
            "agents": {a.label: a.to_dict() for a in self.agents},
            "seeds": self.seeds,
            "data": {"shoppers": self.data_shoppers},
            "evaluation": {"shoppers": self.eval_shoppers, "population_seed": self.population_seed},
            "report": {"reference": self.reference, "resamples": self.resamples, "cohort_days": list(self.cohort_days)},
        }

    def resolved_envs(self) -> dict[str, dict[str, Any]]:
        return {s.name: s.env.to_dict() for s in self.scenarios}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "config") -> ExperimentConfig:
        return _parse(raw, source)


def _fail(source: str, key: str, message: str) -> ValueError:
    return ValueError(f"{source}: {key}: {message}")


def _check_keys(source: str, where: str, data: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise _fail(source, where, f"must be a mapping, got {type(data).__name__} {short_repr(data)}")
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise _fail(
            source, f"{where}.{unknown[0]}" if where else str(unknown[0]), f"unknown key; allowed: {', '.join(allowed)}"
        )
    return dict(data)


def _int(source: str, key: str, value: Any, low: int, high: int | None = None) -> int:
    value = integral(value)  # YAML's 1e3 where an integer is wanted
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")
        raise _fail(source, key, f"got {short_repr(value)}; allowed: {allowed}")
    return value


def _name(source: str, key: str, value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value
        or not all(c.isalnum() or c in "-_." for c in value)
        or value.startswith(".")
    ):
        raise _fail(
            source, key, f"got {short_repr(value)}; allowed: a non-empty name of letters, digits, '-', '_', '.'"
        )
    return value


def _env(source: str, key: str, base: RetentionConfig | None, data: Any) -> RetentionConfig:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise _fail(source, key, f"must be a mapping of env fields, got {type(data).__name__}")
    try:
        if base is None:
            return RetentionConfig.from_dict(data)
        return base.replace(**flatten_groups(data))
    except ValueError as exc:
        raise _fail(source, key, str(exc)) from None


def _check_agent(source: str, spec: AgentSpec) -> None:
    """Build the agent once, untrained, so a bad reward or parameter fails now, not an hour into the run."""
    try:
        make_agent(spec, seed=0)
    except HyperparameterError as exc:
        key = f"agents.{spec.label}.params.{exc.field}" if exc.field in spec.params else f"agents.{spec.label}"
        raise _fail(source, key, str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise _fail(source, f"agents.{spec.label}", str(exc)) from None


def make_agent(spec: AgentSpec, seed: int):
    """An untrained agent of a spec, labelled as the spec says: its class's ``from_spec(params, seed, reward)``."""
    agent = get_agent_class(spec.kind).from_spec(spec.params, seed, spec.reward)
    agent.name = spec.label  # the display label; the agent still saves as its kind
    return agent


def _parse_scenarios(
    source: str, raw_scenarios: Any, base: RetentionConfig
) -> tuple[list[Scenario], list[dict[str, Any]]]:
    """The scenarios (the base env plus each one's overrides) and the overrides as given."""
    scenarios, overrides = [], []
    if raw_scenarios is None:
        raw_scenarios = [{"name": "default", "env": {}}]
    if not isinstance(raw_scenarios, list) or not raw_scenarios:
        raise _fail(source, "scenarios", "must be a non-empty list of {name, env} mappings")
    for i, item in enumerate(raw_scenarios):
        item = _check_keys(source, f"scenarios[{i}]", item, ("name", "env"))
        if "name" not in item:
            raise _fail(source, f"scenarios[{i}].name", "missing")
        scenario_name = _name(source, f"scenarios[{i}].name", item["name"])
        if any(s.name == scenario_name for s in scenarios):
            raise _fail(source, f"scenarios[{i}].name", f"{scenario_name!r} is used twice")
        env_overrides = item.get("env") or {}
        if not isinstance(env_overrides, Mapping):
            raise _fail(
                source, f"scenarios[{i}].env", f"must be a mapping of env fields, got {type(env_overrides).__name__}"
            )
        env_overrides = dict(env_overrides)
        if "preset" in env_overrides:
            raise _fail(source, f"scenarios[{i}].env.preset", "set the preset once, in the top-level env")
        scenarios.append(Scenario(scenario_name, _env(source, f"scenarios[{i}].env", base, env_overrides)))
        overrides.append(env_overrides)
    return scenarios, overrides


def _parse_agent(source: str, label: Any, spec_raw: Any) -> AgentSpec:
    """One agent entry, resolved (an RL agent's default budget and reward filled in) and built once to check it."""
    label = _name(source, "agents", label)
    if "__" in label:
        raise _fail(source, f"agents.{label}", "labels may not contain '__' (it separates cell names)")
    spec_raw = _check_keys(source, f"agents.{label}", spec_raw, _AGENT_KEYS)
    kind = spec_raw.get("kind", label)
    if not isinstance(kind, str) or kind not in kinds():
        raise _fail(
            source,
            f"agents.{label}.kind" if "kind" in spec_raw else f"agents.{label}",
            f"unknown agent kind {short_repr(kind)}; allowed: {', '.join(kinds())} (or set kind:)",
        )
    trains_in_env = needs(kind) == NEEDS_ENV
    for rl_only in ("reward", "steps"):
        if rl_only in spec_raw and not trains_in_env:
            raise _fail(
                source,
                f"agents.{label}.{rl_only}",
                f"only RL agents ({', '.join(kinds(needs=NEEDS_ENV))}) take {rl_only}",
            )
    steps = spec_raw.get("steps")
    if steps is not None:
        steps = _int(source, f"agents.{label}.steps", steps, 1)
    reward = spec_raw.get("reward")
    if reward is not None and not isinstance(reward, (str, Mapping)):
        raise _fail(
            source, f"agents.{label}.reward", f"must be a preset name or a weight mapping, got {short_repr(reward)}"
        )
    params = spec_raw.get("params") or {}
    if not isinstance(params, Mapping):
        raise _fail(source, f"agents.{label}.params", f"must be a mapping, got {type(params).__name__}")
    for key in ("reward", "seed"):
        if key in params:
            raise _fail(source, f"agents.{label}.params.{key}", "set it in the spec (reward:) or with seeds:")
    if trains_in_env:  # resolved: the saved config says exactly what ran
        steps = get_agent_class(kind).default_steps if steps is None else steps
        reward = DEFAULT_REWARD if reward is None else reward
    spec = AgentSpec(label, kind, dict(reward) if isinstance(reward, Mapping) else reward, steps, dict(params))
    _check_agent(source, spec)
    return spec


def _parse(raw: Mapping[str, Any], source: str) -> ExperimentConfig:
    data = _check_keys(source, "", raw, TOP_KEYS)
    for required in ("name", "agents", "seeds"):
        if required not in data:
            raise _fail(source, required, "missing; every experiment names itself, its agents and its seeds")
    name = _name(source, "name", data["name"])
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise _fail(source, "description", f"must be a string, got {type(description).__name__}")
    env_raw = data.get("env") or {}
    base = _env(source, "env", None, env_raw)

    scenarios, overrides = _parse_scenarios(source, data.get("scenarios"), base)
    agents_raw = data["agents"]
    if not isinstance(agents_raw, Mapping) or not agents_raw:
        raise _fail(source, "agents", "must be a non-empty mapping of label -> spec")
    agents = [_parse_agent(source, label, spec_raw) for label, spec_raw in agents_raw.items()]

    seeds = _int(source, "seeds", data["seeds"], 1, 1000)
    data_section = _check_keys(source, "data", data.get("data"), _SECTION_KEYS["data"])
    eval_section = _check_keys(source, "evaluation", data.get("evaluation"), _SECTION_KEYS["evaluation"])
    report = _check_keys(source, "report", data.get("report"), _SECTION_KEYS["report"])
    data_shoppers = _int(source, "data.shoppers", data_section.get("shoppers", 3000), 10, 100_000)
    eval_shoppers = _int(source, "evaluation.shoppers", eval_section.get("shoppers", 2000), 10, 1_000_000)
    population_seed = _int(
        source, "evaluation.population_seed", eval_section.get("population_seed", 1_000_000), 100_000
    )  # clear of RL training seeds
    data_end = DATA_SEED_OFFSET + seeds * data_shoppers
    if population_seed < data_end and population_seed + seeds * eval_shoppers > DATA_SEED_OFFSET:
        raise _fail(
            source,
            "evaluation.population_seed",
            f"{population_seed} overlaps the logged populations (seeds {DATA_SEED_OFFSET}..{data_end - 1});"
            f" allowed: a seed >= {data_end}, or one whose {seeds} x {eval_shoppers} shoppers end below"
            f" {DATA_SEED_OFFSET}",
        )
    labels = [a.label for a in agents]
    reference = report.get("reference", "mlp" if "mlp" in labels else labels[0])
    if reference not in labels:
        raise _fail(
            source, "report.reference", f"{short_repr(reference)} is not one of the agents: {', '.join(labels)}"
        )
    resamples = _int(source, "report.resamples", report.get("resamples", 300), 20, 100_000)
    cohort_days = report.get("cohort_days", [1, 3, 7, 14, 30, 45])
    if not isinstance(cohort_days, list) or not cohort_days:
        raise _fail(source, "report.cohort_days", f"must be a non-empty list of days, got {short_repr(cohort_days)}")
    horizon = min(s.env.horizon_days for s in scenarios)
    for day in cohort_days:
        _int(source, "report.cohort_days", day, 1, int(horizon))
    return ExperimentConfig(
        name,
        description,
        dict(env_raw),
        tuple(scenarios),
        tuple(overrides),
        tuple(agents),
        seeds,
        data_shoppers,
        eval_shoppers,
        population_seed,
        reference,
        resamples,
        tuple(sorted(set(cohort_days))),
    )


def apply_overrides(raw: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """``key.path=value`` strings applied to the raw config mapping (values parsed as YAML scalars)."""
    raw = copy.deepcopy(raw)
    for pair in pairs:
        path, sep, text = pair.partition("=")
        if not sep or not path or any(not part for part in path.split(".")):
            raise ValueError(f"--set expects dotted.key=value, got {short_repr(pair)}")
        value = load_yaml(text, source=f"--set {path}: value {short_repr(text)}")
        parts = path.split(".")
        if parts[0] not in TOP_KEYS:
            raise ValueError(f"--set {path}: unknown key {short_repr(parts[0])}; allowed: {', '.join(TOP_KEYS)}")
        if parts[0] == "scenarios":
            raise ValueError(f"--set {path}: scenarios are a list; set env.FIELD for every scenario, or edit the file")
        node = raw
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                if parts[0] == "agents" and i == 1:
                    raise ValueError(
                        f"--set {path}: no agent {short_repr(part)} in this config;"
                        f" agents: {', '.join(raw.get('agents') or {})}"
                    )
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"--set {path}: {'.'.join(parts[: i + 1])} is not a mapping")
            node = child
        node[parts[-1]] = value
    return raw


def find_config(name_or_path: str) -> Path:
    """A YAML path, or the name of a shipped config (``quick`` -> experiments/configs/quick.yaml)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ValueError(f"experiment config {str(path)!r} does not exist")
        return path
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ValueError(
        f"no experiment config {short_repr(name_or_path)}; give a .yaml path or one of: {', '.join(names)}"
    )


def load_experiment(name_or_path: str, overrides: list[str] | None = None) -> ExperimentConfig:
    path = find_config(name_or_path)
    raw = load_yaml(path, source=str(path))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: an experiment config is a mapping, got {type(raw).__name__}")
    return _parse(apply_overrides(raw, overrides or []), str(path))


__all__ = [
    "AgentSpec",
    "ExperimentConfig",
    "Scenario",
    "apply_overrides",
    "find_config",
    "load_experiment",
    "make_agent",
]
