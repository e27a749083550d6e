"""Bad configs and bad slates are clear errors that name what is wrong and what is allowed — never silent fixes."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from stickyrec import envs
from stickyrec.envs import RetentionConfig
from tests.helpers import assert_step_equal

# --- config: single fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("n_items", 1, "integer in [2, "),
        ("n_categories", 0, "integer in [1, "),
        ("slate_size", 0, "integer in [1, "),
        ("temperature", 0.0, "number in (0, 100]"),  # open lower bound: 0 itself is out
        ("temperature", 100.5, "number in (0, 100]"),
        ("clickbait_share", 1.5, "number in [0, 1]"),
        ("clickbait_share", -0.1, "number in [0, 1]"),
        ("position_decay", 0.0, "number in (0, 1]"),
        ("horizon_days", -1.0, "number in (0, "),
        ("catalog_seed", -1, "integer in [0, "),
    ],
)
def test_out_of_range_value_names_field_value_and_allowed_range(field, value, allowed):
    """A value outside a field's range is a ValueError naming the field, the value and the allowed range."""
    with pytest.raises(ValueError) as error:
        RetentionConfig(**{field: value})
    message = str(error.value)
    assert repr(field) in message and repr(value) in message and "out of range" in message
    assert allowed in message


@pytest.mark.parametrize(
    "field, value", [("clickbait_share", float("nan")), ("temperature", float("inf")), ("reward_click", float("-inf"))]
)
def test_non_finite_value_is_rejected(field, value):
    """NaN and infinities are rejected, even for reward weights whose range is unbounded."""
    with pytest.raises(ValueError, match=rf"'{field}'.*not finite.*allowed: number in"):
        RetentionConfig(**{field: value})


@pytest.mark.parametrize(
    "field, value, kind",
    [
        ("n_items", "300", "has type str"),
        ("clickbait_share", "0.3", "has type str"),
        ("n_items", True, "has type bool"),
        ("clickbait_share", False, "has type bool"),
        ("n_items", 300.5, "is not an integer"),  # 300.0 (YAML 3e2) is the integer 300
        ("slate_size", 2.5, "is not an integer"),
        ("temperature", None, "has type NoneType"),
        ("temperature", [0.4], "has type list"),
    ],
)
def test_wrong_type_names_field_and_allowed_kind(field, value, kind):
    """A str, bool, None or list, or a float for an integer field, is a ValueError naming field and allowed kind."""
    with pytest.raises(ValueError) as error:
        RetentionConfig(**{field: value})
    message = str(error.value)
    assert repr(field) in message and kind in message
    assert re.search(r"allowed: (integer|number) in [\[(]", message)
    if field in ("n_items", "slate_size"):
        assert "allowed: integer in" in message


def test_int_for_float_field_is_accepted():
    """An int where a float is expected is fine (clickbait_share=0 is 0.0)."""
    assert RetentionConfig(clickbait_share=0).clickbait_share == 0


@pytest.mark.parametrize(
    "key, suggestion", [("n_item", "n_items"), ("clickbait", "clickbait_share"), ("temprature", "temperature")]
)
def test_unknown_key_suggests_close_names(key, suggestion):
    """An unknown key is a ValueError that names it and suggests the closest field names."""
    for build in (
        lambda: RetentionConfig().replace(**{key: 1}),
        lambda: envs.make_config(**{key: 1}),
        lambda: RetentionConfig.from_dict({key: 1}),
    ):
        with pytest.raises(ValueError, match=rf"unknown config key.*'{key}'.*did you mean.*{suggestion}"):
            build()


def test_unknown_key_through_gym_make_is_a_value_error():
    """gym.make with an unknown config keyword fails with the same clear ValueError."""
    with pytest.raises(ValueError, match="unknown config key.*did you mean n_items"):
        gym.make(envs.ENV_ID, n_item=100)


def test_unknown_preset_lists_the_allowed_ones():
    """An unknown preset name is a ValueError listing the presets."""
    with pytest.raises(
        ValueError, match="unknown config preset 'tiny'; allowed: default, online_retail, online_shoppers, small"
    ):
        envs.get_preset("tiny")


def test_config_of_the_wrong_kind_is_rejected():
    """make_config refuses something that is not a config, a preset name, a YAML path or a mapping."""
    with pytest.raises(ValueError, match="config must be"):
        envs.make_config(42)


# --- config: cross-field checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, names",
    [
        ({"n_candidates": 20, "slate_size": 21}, ["slate_size", "n_candidates"]),
        ({"n_items": 50, "n_candidates": 60}, ["n_candidates", "n_items"]),
        ({"n_items": 50, "n_categories": 51, "n_candidates": 10, "popular_pool_size": 2}, ["n_categories", "n_items"]),
        ({"nearest_share": 0.7, "popular_share": 0.4}, ["nearest_share", "popular_share"]),
        ({"popular_pool_size": 19}, ["popular_pool_size"]),  # popular_share 0.2 * 100 candidates = 20 > 19
        ({"n_items": 150, "n_candidates": 100, "popular_pool_size": 120}, ["n_items", "popular_pool_size"]),
        ({"n_interest_clusters": 30_000}, ["n_interest_clusters"]),  # 30,000 x 2,000 items > 50,000,000
    ],
)
def test_cross_field_violation_names_the_fields_and_the_rule(overrides, names):
    """Inconsistent fields (slate larger than the candidates, pools larger than the catalog...) are a
    ValueError naming the fields involved and what is allowed."""
    with pytest.raises(ValueError) as error:
        RetentionConfig(**overrides)
    message = str(error.value)
    for name in names:
        assert name in message
    assert "allowed" in message or "must be at most" in message or "lower" in message


def test_cross_field_edge_values_are_accepted():
    """The boundary of each cross-field rule is allowed: slate = candidates = items, shares summing to 1."""
    config = RetentionConfig(
        n_items=60,
        n_categories=60,
        n_candidates=60,
        slate_size=60,
        nearest_share=0.5,
        popular_share=0.5,
        popular_pool_size=30,
        n_interest_clusters=4,
    )
    assert (config.n_nearest, config.n_popular) == (30, 30)


def test_replace_revalidates():
    """replace() runs the same checks: a valid preset cannot be turned into an invalid config."""
    with pytest.raises(ValueError, match="slate_size=31 exceeds n_candidates=30"):
        envs.get_preset("small").replace(slate_size=31)


# --- config: YAML --------------------------------------------------------------------------------------------


def test_yaml_flat_and_group_nested_forms_load(tmp_path):
    """A YAML file may give fields flat or nested under their group name, and pick a preset."""
    flat = tmp_path / "flat.yaml"
    flat.write_text("preset: small\nclickbait_share: 0.3\nslate_size: 4\n")
    nested = tmp_path / "nested.yaml"
    nested.write_text("preset: small\ncatalog:\n  clickbait_share: 0.3\nchoice:\n  slate_size: 4\n")
    expected = envs.get_preset("small").replace(clickbait_share=0.3, slate_size=4)
    assert RetentionConfig.from_yaml(flat) == expected
    assert RetentionConfig.from_yaml(nested) == expected
    assert envs.make_config(str(nested)) == expected
    assert envs.RetentionEnv(str(nested)).config == expected


def test_yaml_written_by_to_yaml_loads_back(tmp_path):
    """to_yaml() output (nested by group) loads back to the same config."""
    config = envs.get_preset("small").replace(temperature=0.7)
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml())
    assert RetentionConfig.from_yaml(path) == config


@pytest.mark.parametrize("text", ["", "[]", "# nothing\n"])
def test_empty_yaml_is_refused(tmp_path, text):
    """An empty (or ``[]``) YAML file is refused, naming the file: it used to give the default world silently."""
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"empty\.yaml.*config must be a mapping"):
        RetentionConfig.from_yaml(path)


def test_yaml_field_in_the_wrong_group_names_its_group(tmp_path):
    """A field nested under another group is a ValueError naming the field and the group it belongs to."""
    path = tmp_path / "wrong_group.yaml"
    path.write_text("choice:\n  clickbait_share: 0.3\n")
    with pytest.raises(ValueError, match="'clickbait_share' belongs to group 'catalog', not 'choice'"):
        RetentionConfig.from_yaml(path)


def test_yaml_unknown_key_suggests_close_names(tmp_path):
    """An unknown key in YAML, flat or nested, is a ValueError with suggestions."""
    path = tmp_path / "typo.yaml"
    path.write_text("catalog:\n  n_itemz: 300\n")
    with pytest.raises(ValueError, match="unknown config key.*'n_itemz'.*did you mean n_items"):
        RetentionConfig.from_yaml(path)
    path.write_text("clickbait_shares: 0.3\n")
    with pytest.raises(ValueError, match="did you mean clickbait_share"):
        RetentionConfig.from_yaml(path)


def test_yaml_bad_value_names_the_field(tmp_path):
    """A bad value in YAML is reported like a bad keyword argument."""
    path = tmp_path / "bad_value.yaml"
    path.write_text("catalog:\n  clickbait_share: 2.0\n")
    with pytest.raises(ValueError, match=r"'clickbait_share' = 2.0 is out of range; allowed: number in \[0, 1\]"):
        RetentionConfig.from_yaml(path)


def test_invalid_yaml_is_a_value_error_naming_the_file(tmp_path):
    """Malformed YAML is a ValueError naming the file (not a yaml.YAMLError leaking out)."""
    path = tmp_path / "broken.yaml"
    path.write_text("catalog: {n_items: [1, 2\n")
    with pytest.raises(ValueError, match=r"broken\.yaml.*not valid YAML"):
        RetentionConfig.from_yaml(path)


def test_yaml_that_is_not_a_mapping_is_rejected(tmp_path):
    """A YAML list (or scalar) at the top level is a ValueError: a config is a mapping."""
    path = tmp_path / "list.yaml"
    path.write_text("- n_items\n- 300\n")
    with pytest.raises(ValueError, match="config must be a mapping"):
        RetentionConfig.from_yaml(path)


def test_missing_yaml_file_is_a_value_error(tmp_path):
    """A config path that does not exist is a ValueError naming it."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ValueError, match=r"nope\.yaml.*does not exist"):
        RetentionConfig.from_yaml(missing)
    with pytest.raises(ValueError, match="does not exist"):
        envs.make_config(str(missing))


# --- slates --------------------------------------------------------------------------------------------------

SMALL = envs.get_preset("small")  # 30 candidates, slate of 5
K, M = SMALL.slate_size, SMALL.n_candidates

BAD_SLATES = {
    "repeated index": ([0, 1, 2, 3, 3], "repeats a candidate"),
    "negative index": ([0, 1, 2, 3, -1], "out of range"),
    "index equal to M": ([0, 1, 2, 3, M], "out of range"),
    "index above M": ([0, 1, 2, 3, M + 100], "out of range"),
    "too short": ([0, 1, 2, 3], "shape"),
    "too long": ([0, 1, 2, 3, 4, 5], "shape"),
    "2-d": ([[0, 1, 2, 3, 4]], "shape"),
    "scalar": (3, "shape"),
    "non-integer floats": ([0.0, 1.5, 2.0, 3.0, 4.0], "integer"),
    "nan": ([0.0, 1.0, 2.0, 3.0, np.nan], "integer"),
    "strings": (["0", "1", "2", "3", "4"], "integer"),
    "booleans": ([True, False, True, False, True], "integer"),
}


@pytest.mark.parametrize("name", list(BAD_SLATES))
def test_bad_slate_is_a_value_error(small_env, name):
    """A slate with repeats, out-of-range indices, the wrong length or shape, or non-integer entries is a
    ValueError saying what is wrong."""
    slate, what = BAD_SLATES[name]
    small_env.reset(seed=0)
    with pytest.raises(ValueError, match=what):
        small_env.step(np.asarray(slate) if not isinstance(slate, int) else slate)


def test_out_of_range_message_names_the_index_and_allowed_range(small_env):
    """The out-of-range error names the bad index and the allowed 0..M-1."""
    small_env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"slate index {M} is out of range; allowed: 0..{M - 1}"):
        small_env.step(np.array([0, 1, 2, 3, M]))
    with pytest.raises(ValueError, match=rf"slate index -2 is out of range; allowed: 0..{M - 1}"):
        small_env.step(np.array([0, -2, 2, 3, 4]))


@pytest.mark.parametrize("name", ["repeated index", "negative index", "index equal to M", "non-integer floats"])
def test_bad_slate_in_one_row_of_a_batch_is_a_value_error(name):
    """The batched env rejects a batch where one shopper's slate is bad, and the wrong batch shape."""
    vec = envs.RetentionVectorEnv(3, SMALL)
    vec.reset(seed=0)
    slate, what = BAD_SLATES[name]
    actions = np.array([[0, 1, 2, 3, 4], slate, [5, 6, 7, 8, 9]])
    with pytest.raises(ValueError, match=what):
        vec.step(actions)
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros((2, K), dtype=np.int64))


def test_step_before_reset_is_a_runtime_error(small_env):
    """Stepping a fresh single env is a RuntimeError telling to reset first."""
    with pytest.raises(RuntimeError, match="reset"):
        small_env.step(np.arange(K))


def test_step_after_the_episode_ended_is_a_runtime_error(small_env, rng):
    """Once terminated or truncated, the single env refuses to step until reset."""
    small_env.reset(seed=0)
    for _ in range(5000):
        _, _, terminated, truncated, _ = small_env.step(rng.permutation(M)[:K])
        if terminated or truncated:
            break
    with pytest.raises(RuntimeError, match="reset"):
        small_env.step(np.arange(K))
    small_env.reset()
    small_env.step(np.arange(K))  # and works again after reset


def test_vector_step_before_reset_is_an_error():
    """Stepping a fresh batched env is an error (as for the single env and Gymnasium's SyncVectorEnv),
    not a silent step of empty shopper slots returning all-zero observations."""
    vec = envs.RetentionVectorEnv(2, SMALL)
    with pytest.raises((RuntimeError, gym.error.ResetNeeded)):
        vec.step(np.tile(np.arange(K), (2, 1)))


def test_bad_reset_options_and_seeds_are_value_errors():
    """The batched env's reset rejects unknown options, a malformed reset_mask and a seed list of wrong length."""
    vec = envs.RetentionVectorEnv(3, SMALL)
    with pytest.raises(ValueError, match="unknown reset option"):
        vec.reset(seed=0, options={"mask": np.ones(3, dtype=bool)})
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(seed=0, options={"reset_mask": np.ones(2, dtype=bool)})
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(seed=0, options={"reset_mask": np.ones(3, dtype=np.int64)})
    with pytest.raises(ValueError, match="2 seeds for 3 shoppers"):
        vec.reset(seed=[1, 2])


def test_bad_autoreset_mode_and_batch_size_are_value_errors():
    """An unsupported autoreset mode or a non-positive batch size is a ValueError."""
    with pytest.raises(ValueError, match="autoreset_mode"):
        envs.RetentionVectorEnv(2, SMALL, autoreset_mode=AutoresetMode.NEXT_STEP)
    with pytest.raises(ValueError, match="batch_size"):
        envs.RetentionVectorEnv(0, SMALL)


# --- a rejected slate changes nothing ---------------------------------------------------------------------------

BAD_FOR_STATE = ["repeated index", "negative index", "index equal to M", "too short", "non-integer floats", "booleans"]


def test_rejected_slates_leave_the_single_env_unchanged(rng):
    """After any number of rejected slates, the env steps exactly like one that never saw them."""
    clean, poked = envs.RetentionEnv(SMALL), envs.RetentionEnv(SMALL)
    clean.reset(seed=21)
    poked.reset(seed=21)
    for step in range(60):
        for name in BAD_FOR_STATE if step % 3 == 0 else ():
            with pytest.raises(ValueError):
                poked.step(np.asarray(BAD_SLATES[name][0]))
        action = rng.permutation(M)[:K]
        expected = clean.step(action)
        assert_step_equal(poked.step(action), expected)
        if expected[2] or expected[3]:
            clean.reset()
            poked.reset()


def test_rejected_slates_leave_the_batched_env_unchanged(rng):
    """A rejected batch of slates changes no shopper of the batched env: later steps match a clean env."""
    clean, poked = envs.RetentionVectorEnv(3, SMALL), envs.RetentionVectorEnv(3, SMALL)
    clean.reset(seed=5)
    poked.reset(seed=5)
    for step in range(40):
        if step % 4 == 0:
            for name in ("repeated index", "negative index", "index equal to M", "non-integer floats"):
                with pytest.raises(ValueError):
                    poked.step(np.array([[0, 1, 2, 3, 4], BAD_SLATES[name][0], [5, 6, 7, 8, 9]]))
        actions = np.stack([rng.permutation(M)[:K] for _ in range(3)])
        assert_step_equal(poked.step(actions), clean.step(actions))
