"""The one input layer (``stickyrec.inputs``): bounded YAML, bounded reprs, one-line CLI errors, and a fuzz of
config files and ``--set`` strings that may raise nothing but ``ValueError``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stickyrec.envs.config import FIELDS, RetentionConfig, make_config
from stickyrec.envs.rewards import make_reward
from stickyrec.experiments.experiment import TOP_KEYS, load_experiment
from stickyrec.experiments.train import parse_reward
from stickyrec.inputs import MAX_DEPTH, MAX_FILE_BYTES, dump_yaml, error_line, load_yaml, short_repr


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The classic "billion laughs": ``width ** levels`` leaves from about 400 bytes (9 x 9)."""
    lines = ["a: &a [" + ", ".join(['"lol"'] * width) + "]"]
    names = "abcdefghijklmnopqrstuvwxyz"
    for level in range(1, levels):
        lines.append(f"{names[level]}: &{names[level]} [" + ", ".join([f"*{names[level - 1]}"] * width) + "]")
    return "\n".join(lines) + "\n"


def flow_bomb(levels: int = 9, width: int = 9) -> str:
    """The same bomb as one flow sequence, as a ``--set`` value."""
    items = ["&a [" + ",".join(["lol"] * width) + "]"]
    names = "abcdefghijklmnopqrstuvwxyz"
    for level in range(1, levels):
        items.append(f"&{names[level]} [" + ",".join([f"*{names[level - 1]}"] * width) + "]")
    return "[" + ",".join(items) + "]"


SMALL = "name: fuzz\nenv: {preset: small}\nagents: {random: {}, popularity: {}}\nseeds: 1\n"


@pytest.fixture
def small_experiment(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


# --- load_yaml -------------------------------------------------------------------------------------------------


def test_duplicate_keys_are_refused_naming_key_and_line():
    with pytest.raises(ValueError, match=r"^x\.yaml is not valid YAML: duplicate key 'seeds' \(first at line 1\)"):
        load_yaml("seeds: 1\nname: a\nseeds: 2\n", source="x.yaml")
    with pytest.raises(ValueError, match="duplicate key 'n_items'.*line 3"):
        load_yaml("catalog:\n  n_items: 1\n  n_items: 2\n", source="x.yaml")


def test_merge_keys_still_work():
    assert load_yaml("base: &b {a: 1, b: 2}\nc:\n  <<: *b\n  b: 3\n", source="x")["c"] == {"a": 1, "b": 3}


@pytest.mark.parametrize("as_file", [True, False])
def test_alias_bomb_fails_fast_in_one_line(tmp_path, as_file):
    text = alias_bomb()
    assert len(text.encode()) < 450  # the bomb was 403 bytes
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="aliases expand to more than") as info:
        load_yaml(path if as_file else text, source="bomb.yaml")
    assert time.perf_counter() - start < 1.0
    assert "\n" not in str(info.value) and "bomb.yaml" in str(info.value)


def test_small_aliases_are_fine():
    assert load_yaml("a: &x [1, 2]\nb: *x\n", source="x") == {"a": [1, 2], "b": [1, 2]}


def test_self_referencing_alias_is_refused():
    with pytest.raises(ValueError, match="refers to itself"):
        load_yaml("a: &x [*x]\n", source="x")


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        "{a: " * 5000 + "1" + "}" * 5000,
        "".join(" " * i + "a:\n" for i in range(5000))[:900_000],
    ],
    ids=["flow-list", "flow-map", "block"],
)
def test_deep_nesting_is_refused_without_recursion_error(text):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"nesting deeper than {MAX_DEPTH} levels"):
        load_yaml(text, source="deep.yaml")
    assert time.perf_counter() - start < 2.0


def test_moderate_nesting_is_fine():
    assert load_yaml("[" * 20 + "1" + "]" * 20, source="x") is not None


def test_big_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    with pytest.raises(ValueError, match=r"big\.yaml.*larger than 1 MB"):
        load_yaml(path, source=f"config file {str(path)!r}")
    with pytest.raises(ValueError, match="larger than 1 MB"):
        RetentionConfig.from_yaml(path)


def test_python_tags_are_refused():
    for text in ("!!python/object/apply:os.system ['true']", "x: !!python/name:os.system"):
        with pytest.raises(ValueError, match="not valid YAML.*could not determine a constructor"):
            load_yaml(text, source="evil.yaml")


def test_exponent_numbers_are_floats():
    data = load_yaml("a: 1e9\nb: 1.5e-3\nc: .inf\nd: -2E3\ne: 1_000\nf: 3\ng: '1e9'\nh: -.inf\n", source="x")
    assert data == {"a": 1e9, "b": 1.5e-3, "c": float("inf"), "d": -2000.0, "e": 1000, "f": 3, "g": "1e9", "h": -1e999}
    assert isinstance(data["a"], float) and isinstance(data["f"], int)


def test_dump_yaml_round_trips_through_load_yaml():
    data = {"name": "1e5", "x": 1e9, "y": [1, "2E3", float("inf")], "z": "plain"}
    text = dump_yaml(data, sort_keys=False)
    assert load_yaml(text, source="x") == data
    assert dump_yaml({"a": 1, "b": [1.5, "s"]}) == yaml.safe_dump({"a": 1, "b": [1.5, "s"]})


def test_unhashable_keys_are_refused():
    with pytest.raises(ValueError, match="a key may not be a list"):
        load_yaml("{[1]: 2}", source="x")


def test_not_utf8_is_refused(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_yaml(path, source="bin.yaml")


# --- short_repr ------------------------------------------------------------------------------------------------


def test_short_repr_is_repr_for_small_values():
    for value in (1, 2.5, "abc", [1, 2], {"a": 1}, None, True, (1,), float("inf")):
        assert short_repr(value) == repr(value)


def test_short_repr_bounds_huge_and_cyclic_values():
    nested: list = ["lol"] * 9
    for _ in range(9):
        nested = [nested] * 9  # 9**10 leaves if walked
    cyclic: list = [1]
    cyclic.append(cyclic)
    start = time.perf_counter()
    for value in (nested, cyclic, "x" * 10**6, list(range(10**6)), 10**5000):
        text = short_repr(value)
        assert len(text) <= 80
    assert time.perf_counter() - start < 0.5
    assert len(short_repr("x" * 1000, limit=20)) == 20


def test_error_line_is_one_line_for_any_error():
    assert error_line(ValueError("bad seeds")) == "bad seeds"
    assert error_line(FileNotFoundError(2, "No such file or directory", "/x/y")) == "'/x/y': No such file or directory"
    assert error_line(RecursionError()) == "an input is nested too deeply"
    assert error_line(TypeError("unhashable type:\n 'list'")) == "TypeError: unhashable type: 'list'"


# --- the configs -----------------------------------------------------------------------------------------------


def test_env_yaml_accepts_exponent_numbers(tmp_path):
    path = tmp_path / "env.yaml"
    path.write_text("catalog: {clickbait_share: 2.5e-1}\n")
    assert RetentionConfig.from_yaml(path).clickbait_share == 0.25


def test_alias_bomb_in_env_and_seeds_fails_fast(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb() + SMALL.replace("seeds: 1", "seeds: *i"))
    start = time.perf_counter()
    with pytest.raises(ValueError, match="aliases expand"):
        load_experiment(str(path))
    assert time.perf_counter() - start < 1.0


def test_set_alias_bomb_fails_fast(small_experiment):
    value = flow_bomb()
    assert len(value) < 300
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^--set seeds: value .* is not valid YAML: aliases expand") as info:
        load_experiment(str(small_experiment), [f"seeds={value}"])
    assert time.perf_counter() - start < 1.0 and "\n" not in str(info.value)


def test_set_unclosed_list_is_one_line(small_experiment):
    with pytest.raises(ValueError, match=r"^--set env\.n_items: value '\[1' is not valid YAML") as info:
        load_experiment(str(small_experiment), ["env.n_items=[1"])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("env: {preset: [1]}", "unknown config preset \\[1\\]"),
        ("agents: {random: {kind: [ppo]}}", "unknown agent kind \\['ppo'\\]"),
        ("agents: {random: {kind: {a: 1}}}", "unknown agent kind"),
        ("scenarios: [{name: a, env: [1]}]", "scenarios\\[0\\].env: must be a mapping"),
        ("scenarios: [{name: a, env: abc}]", "scenarios\\[0\\].env: must be a mapping"),
        ("name: [1]", "name: got \\[1\\]"),
    ],
)
def test_unhashable_and_wrong_shaped_values_are_value_errors(tmp_path, text, message):
    raw = yaml.safe_load(SMALL)
    raw.update(yaml.safe_load(text))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=message):
        load_experiment(str(path))


def test_bad_value_in_error_is_truncated(small_experiment):
    with pytest.raises(ValueError) as info:
        load_experiment(str(small_experiment), ["seeds=" + "[" + ",".join(["1"] * 10_000) + "]"])
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("data", [{None: 1}, {"catalog": {1: 2}}, {1.5: 3}, {True: 1}])
def test_non_string_env_keys_are_value_errors(data, small_experiment):
    """Found by the fuzz: a non-string key reached a ``**`` call (TypeError: keywords must be strings)."""
    with pytest.raises(ValueError, match="unknown config key"):
        RetentionConfig.from_dict(data)
    raw = load_yaml(small_experiment, source="x")
    raw["env"] = data
    path = small_experiment.parent / "keys.yaml"
    path.write_text(dump_yaml(raw))
    with pytest.raises(ValueError, match="env: unknown config key"):
        load_experiment(str(path))


def test_make_config_bad_preset_types():
    for preset in ([1], {"a": 1}, 3):
        with pytest.raises(ValueError, match="unknown config preset"):
            RetentionConfig.from_dict({"preset": preset})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("click=abc", "reward weight click='abc'; allowed: a finite number"),
        ("click=1,click=2", "term 'click' given twice"),
        ("click=1,=2", "expects a name or TERM=WEIGHT"),
        ("click=[1", "--reward click: value '\\[1' is not valid YAML"),
        ("clickz=1", "unknown reward term\\(s\\) \\['clickz'\\]"),
    ],
)
def test_reward_weights_are_parsed_with_clear_errors(text, message):
    with pytest.raises(ValueError, match=message):
        make_reward(parse_reward(text))


def test_reward_weights_are_floats():
    assert parse_reward("click=0.1,return_visit=1") == {"click": 0.1, "return_visit": 1.0}
    assert parse_reward("retention") == "retention"


# --- the CLI ---------------------------------------------------------------------------------------------------


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "stickyrec.experiments.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def assert_one_line_error(result, message):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stickyrec: error: "), result.stderr
    assert message in lines[0], lines[0]


def test_cli_errors_are_one_line(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb() + SMALL.replace("seeds: 1", "seeds: *i"))
    deep = tmp_path / "deep.yaml"
    deep.write_text("env: " + "[" * 5000 + "]" * 5000 + "\n")
    dup = tmp_path / "dup.yaml"
    dup.write_text(SMALL + "seeds: 2\n")
    kind = tmp_path / "kind.yaml"
    kind.write_text(SMALL.replace("random: {}", "random: {kind: [ppo]}"))
    out = tmp_path / "out"
    cases = [
        (("run", str(bomb), "--out", str(out)), "aliases expand"),
        (("run", str(deep), "--out", str(out)), "nesting deeper"),
        (("run", str(dup), "--out", str(out)), "duplicate key 'seeds'"),
        (("run", str(kind), "--out", str(out)), "unknown agent kind ['ppo']"),
        (("config", "--set", "n_items=[1"), "--set n_items: value '[1' is not valid YAML"),
        (("run", "quick", "--set", f"seeds={flow_bomb()}", "--out", str(out)), "aliases expand"),
        (("simulate", "--policies", ",", "--shoppers", "5"), "--policies needs at least one policy name"),
        (("train", "--agent", "ppo", "--reward", "click=abc", "--out", str(out)), "reward weight click='abc'"),
    ]
    for args, message in cases:
        assert_one_line_error(cli(*args), message)
    assert not out.exists()


def test_cli_os_error_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cli("run", str(tmp_path / "missing.yaml"), "--out", str(blocker / "x"))
    assert_one_line_error(result, "does not exist")


@pytest.mark.parametrize("command", ["simulate", "collect", "train"])
def test_negative_seed_is_refused_by_the_parser(tmp_path, command):
    extra = ("--agent", "ppo") if command == "train" else ()
    result = cli(
        command,
        *extra,
        "--seed",
        "-1",
        "--out" if command == "train" else "--quiet",
        *([str(tmp_path / "out")] if command == "train" else []),
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --seed: '-1' is not allowed; allowed: an integer >= 0" in result.stderr
    assert not list(tmp_path.iterdir())


def test_cli_debug_shows_the_traceback(tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text(SMALL + "seeds: 2\n")
    for args in (("--debug", "run", str(dup)), ("run", str(dup), "--debug")):
        result = cli(*args, "--out", str(tmp_path / "out"))
        assert result.returncode != 0 and "Traceback" in result.stderr and "duplicate key" in result.stderr


# --- fuzz ------------------------------------------------------------------------------------------------------

YAMLISH = "abcdeinklmprsty0123456789 :-[]{},&*!|>'\"#\n.e+_<%@?\t~"
KEYS = [*TOP_KEYS, "preset", "kind", "steps", "params", "reward", "shoppers", *list(FIELDS)[:12]]
SET_KEYS = ["seeds", "name", "env.n_items", "env.preset", "env.horizon_days", "agents.random.kind",
            "agents.popularity.params", "report.cohort_days", "data.shoppers", "evaluation.shoppers", "scenarios",
            "nope", "env.catalog.n_items", "agents", "env"]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.sampled_from(["small", "default", "ppo", "random", ".inf", "1e9", "", "[1", "*a", "&a"]),
    st.text(max_size=8),
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=20,
)
config_texts = st.one_of(
    st.text(alphabet=YAMLISH, max_size=300),
    trees.map(lambda tree: yaml.safe_dump(tree)),
    st.dictionaries(st.sampled_from(KEYS), trees, max_size=6).map(lambda d: SMALL + yaml.safe_dump(d)),
    st.tuples(st.text(alphabet=YAMLISH, max_size=40), st.text(alphabet=YAMLISH, max_size=40)).map(
        lambda parts: parts[0] + SMALL + parts[1]
    ),
)
set_strings = st.one_of(
    st.tuples(st.sampled_from(SET_KEYS), st.text(alphabet=YAMLISH, max_size=60)).map("=".join),
    st.tuples(st.sampled_from(SET_KEYS), trees).map(
        lambda kv: f"{kv[0]}={yaml.safe_dump(kv[1], default_flow_style=True).strip()}"
    ),
    st.text(alphabet=YAMLISH + "=", max_size=60),
)


def only_value_errors(call) -> None:
    try:
        call()
    except ValueError as exc:
        assert str(exc)


def fuzz_inputs(tmp_path, text: str, pairs: list[str]) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    only_value_errors(lambda: load_experiment(str(path)))
    only_value_errors(lambda: RetentionConfig.from_yaml(path))
    only_value_errors(lambda: load_experiment(str(tmp_path / "small.yaml"), pairs))
    for pair in pairs:
        key, _, value = pair.partition("=")
        only_value_errors(lambda key=key, value=value: make_config("small", **{key: load_yaml(value, source="--set")}))


def fuzz_settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=timedelta(seconds=5),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        derandomize=examples < 1000,
    )


@fuzz_settings(300)
@given(text=config_texts, pairs=st.lists(set_strings, max_size=3))
def test_fuzz_configs_and_set_strings_raise_only_value_errors(small_experiment, text, pairs):
    fuzz_inputs(small_experiment.parent, text, pairs)


@pytest.mark.slow
@fuzz_settings(10_000)
@given(text=config_texts, pairs=st.lists(set_strings, max_size=3))
def test_fuzz_configs_and_set_strings_raise_only_value_errors_10k(small_experiment, text, pairs):
    fuzz_inputs(small_experiment.parent, text, pairs)
