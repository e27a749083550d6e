"""The supervised MLP click model (agents/mlp.py): trains and predicts on a tiny log in seconds, beats chance on
held-out shoppers, is reproducible from its seed, round-trips through save/load exactly, refuses foreign files,
and acts with valid slates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium.vector import AutoresetMode

from stickyrec import envs
from stickyrec.agents.checkpoint import FORMAT, decode_checkpoint, encode_checkpoint
from stickyrec.agents.mlp import MLPClickModel, roc_auc
from stickyrec.agents.registry import load_agent
from stickyrec.envs.spaces import top_k


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Training is timed in seconds on one thread; restore the caller's setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def collect_log(config, n_shoppers: int, seed: int) -> pd.DataFrame:
    """Random slates to the horizon; one row per impression with the serve-time shopper vector (s0 .. s{F-1})."""
    env = envs.RetentionVectorEnv(n_shoppers, config=config, autoreset_mode=AutoresetMode.DISABLED)
    simulator = env.unwrapped.simulator
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    k, positions, frames, step = config.slate_size, np.arange(config.slate_size), [], 0
    while simulator.state.alive.any():
        rows = np.flatnonzero(simulator.state.alive)
        slates = top_k(rng.random(obs["candidate_ids"].shape), k)
        items = np.take_along_axis(obs["candidate_ids"], slates, axis=1)
        next_obs, _, _, _, info = env.step(slates)
        clicked = info["clicked_position"][rows, None] == positions
        frame = pd.DataFrame(
            np.repeat(obs["shopper"][rows], k, axis=0), columns=[f"s{j}" for j in range(obs["shopper"].shape[1])]
        )
        frame.insert(0, "shopper", np.repeat(rows, k))
        frame.insert(1, "day", np.repeat(info["day"][rows], k))
        frame.insert(2, "step", step)
        frame.insert(3, "position", np.tile(positions, rows.size))
        frame.insert(4, "item_id", items[rows].ravel())
        frame.insert(5, "clicked", clicked.ravel())
        frame.insert(6, "purchased", (clicked & info["purchased"][rows, None]).ravel())
        frames.append(frame)
        obs, step = next_obs, step + 1
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def world():
    config = envs.get_preset("small")
    log = collect_log(config, 200, seed=0)
    shopper = log["shopper"].to_numpy()
    part = np.random.default_rng(1).permutation(200)[shopper] % 5  # shoppers 3:1:1 into train, val, test
    splits = {
        name: log[mask].reset_index(drop=True)
        for name, mask in (("train", part < 3), ("val", part == 3), ("test", part == 4))
    }
    return config, envs.make_catalog(config), splits


FIT = {"epochs": 4, "batch_size": 1024, "lr": 3e-3, "patience": 2, "seed": 7, "progress": False}


@pytest.fixture(scope="module")
def trained(world):
    config, catalog, splits = world
    model = MLPClickModel(embed_dim=32, hidden_dim=32)
    history = model.fit(splits["train"], splits["val"], catalog, **FIT)
    return model, history


def test_trains_in_seconds_and_beats_chance_on_held_out_shoppers(world, trained):
    _, _, splits = world
    model, history = trained
    assert len(splits["train"]) > 50_000 and splits["test"]["clicked"].sum() > 300
    assert history["seconds"] < 15
    assert len(history["train_loss"]) == len(history["val_loss"]) >= 1
    assert history["val_loss"][history["best_epoch"]] == min(history["val_loss"])
    predicted = model.predict_click(splits["test"])
    assert predicted.shape == (len(splits["test"]),) and np.all((predicted > 0) & (predicted < 1))
    assert roc_auc(splits["test"]["clicked"], predicted) > 0.65
    bought = model.predict_purchase(splits["test"])
    assert np.all(bought <= predicted)


def test_same_seed_same_model_other_seed_another(world):
    _, catalog, splits = world
    train, val, test = splits["train"].iloc[:20_000], splits["val"].iloc[:5_000], splits["test"].iloc[:5_000]
    settings = {**FIT, "epochs": 2, "progress": True}  # the progress bars run too (tqdm writes to stderr)
    runs = [MLPClickModel(embed_dim=16, hidden_dim=16) for _ in range(3)]
    histories = [model.fit(train, val, catalog, **{**settings, "seed": seed}) for model, seed in zip(runs, (3, 3, 4))]
    first, again, other = (model.predict_click(test) for model in runs)
    assert np.array_equal(first, again)
    assert histories[0]["val_loss"] == histories[1]["val_loss"]
    assert not np.array_equal(first, other)


def test_save_load_round_trip_is_exact(world, trained, tmp_path):
    config, catalog, splits = world
    model, _ = trained
    path = tmp_path / "mlp.pt"
    model.save(path)
    loaded = MLPClickModel.load(path, catalog=catalog)
    assert loaded.hyperparameters == model.hyperparameters
    assert loaded.history["val_loss"] == model.history["val_loss"]
    for key, value in model.net.state_dict().items():
        assert torch.equal(value, loaded.net.state_dict()[key]), key
    assert np.array_equal(model.predict_click(splits["test"]), loaded.predict_click(splits["test"]))
    env = envs.RetentionVectorEnv(16, config=config, autoreset_mode=AutoresetMode.DISABLED)
    obs, _ = env.reset(seed=5)
    model.bind(env)
    loaded.bind(env)
    assert np.array_equal(
        model.score_candidates(obs["shopper"], obs["candidate_ids"]),
        loaded.score_candidates(obs["shopper"], obs["candidate_ids"]),
    )
    assert np.array_equal(model.act(obs), loaded.act(obs))


def test_load_refuses_corrupt_foreign_and_mismatched_files(world, trained, tmp_path):
    _, catalog, _ = world
    model, _ = trained
    good = tmp_path / "mlp.pt"
    model.save(good)
    cases = {}
    cases["garbage"] = tmp_path / "garbage.pt"
    cases["garbage"].write_bytes(np.random.default_rng(0).bytes(4096))
    cases["truncated"] = tmp_path / "truncated.pt"
    cases["truncated"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["tensor"] = tmp_path / "tensor.pt"
    cases["tensor"].write_bytes(encode_checkpoint(torch.zeros(3)))
    cases["other agent"] = tmp_path / "cf.pt"
    cases["other agent"].write_bytes(
        encode_checkpoint({"format": FORMAT, "version": 1, "name": "item_cf", "state": {}})
    )
    payload = decode_checkpoint(good)
    cases["damaged"] = tmp_path / "damaged.pt"
    cases["damaged"].write_bytes(encode_checkpoint({**payload, "shopper_mean": torch.zeros(payload["f_user"] + 1)}))
    cases["wrong weights"] = tmp_path / "weights.pt"
    state = dict(payload["state"])
    state["head.weight"] = torch.zeros(2, 7)
    cases["wrong weights"].write_bytes(encode_checkpoint({**payload, "state": state}))
    messages = {
        "garbage": "not a readable",
        "truncated": "not a readable",
        "tensor": "holds a Tensor",
        "other agent": "holds agent 'item_cf'",
        "damaged": "shopper_mean",
        "wrong weights": "head.weight",
    }
    for name, path in cases.items():
        with pytest.raises(ValueError, match=messages[name]):
            MLPClickModel.load(path)
    with pytest.raises(ValueError, match="does not exist"):
        MLPClickModel.load(tmp_path / "missing.pt")
    assert not list(tmp_path.glob("*.tmp*"))  # save leaves no temporary file behind

    other_catalog = envs.make_catalog(envs.get_preset("small").replace(catalog_seed=1))
    with pytest.raises(ValueError, match="not the catalog"):
        MLPClickModel.load(good, catalog=other_catalog)
    bigger = envs.RetentionVectorEnv(2, config=envs.get_preset("default"))
    with pytest.raises(ValueError, match="300 x"):
        MLPClickModel.load(good).bind(bigger)


def test_a_relabelled_mlp_saves_a_file_its_own_class_loads(world, tmp_path):
    """A config may show the MLP under another label; its file still records the kind ``mlp`` and loads."""
    from stickyrec.experiments.experiment import ExperimentConfig, make_agent

    _, catalog, splits = world
    experiment = ExperimentConfig.from_dict(
        {
            "name": "relabel",
            "seeds": 1,
            "env": {"preset": "small"},
            "agents": {"click_model": {"kind": "mlp", "params": {"embed_dim": 8, "hidden_dim": 8, "epochs": 1}}},
        }
    )
    agent = make_agent(experiment.agent("click_model"), seed=0)
    assert agent.name == "click_model" and agent.kind == "mlp" and isinstance(agent, MLPClickModel)
    training = agent.fit_log(splits["train"].iloc[:5000], splits["val"].iloc[:1000], catalog, seed=0)
    assert training == {"epochs": 1} and agent.train_settings["epochs"] == 1
    path = tmp_path / f"{agent.kind}{agent.file_suffix}"  # where the runner saves it
    agent.save(path)
    assert decode_checkpoint(path)["name"] == "mlp"
    for loaded in (MLPClickModel.load(path, catalog=catalog), load_agent(path)):
        assert isinstance(loaded, MLPClickModel) and loaded.hyperparameters == agent.hyperparameters
        test = splits["test"].iloc[:500]
        assert np.array_equal(loaded.predict_click(test), agent.predict_click(test))


def test_act_returns_distinct_valid_slates_ranked_by_click_score(world, trained):
    config, _, splits = world
    model, _ = trained
    env = envs.RetentionVectorEnv(64, config=config, autoreset_mode=AutoresetMode.DISABLED)
    obs, _ = env.reset(seed=11)
    model.bind(env)
    for _ in range(5):
        slates = model.act(obs)
        assert slates.shape == (64, config.slate_size) and slates.dtype.kind in "iu"
        assert slates.min() >= 0 and slates.max() < config.n_candidates
        assert all(len(set(row)) == config.slate_size for row in slates.tolist())
        scores = model.score_candidates(obs["shopper"], obs["candidate_ids"])
        ranked = np.take_along_axis(scores, slates, axis=1)
        assert np.all(np.diff(ranked, axis=1) <= 0)  # best first
        assert np.all(np.sort(scores, axis=1)[:, -config.slate_size :][:, ::-1] == ranked)  # the k best
        obs, *_ = env.step(slates)  # the env accepts them

    # The act-time fast path (cached item part, folded cross features) equals the training path's logit, both for
    # the env's (B, M) candidates and for one candidate per shopper (the two ways it computes relevance).
    def logits_via_rows(shopper, ids):
        rows = pd.DataFrame(np.repeat(shopper, ids.shape[1], axis=0), columns=[f"s{j}" for j in range(model.f_user)])
        rows["item_id"], rows["position"] = ids.ravel(), 0
        p = model.predict_click(rows).astype(np.float64)
        with torch.no_grad():
            return (np.log(p) - np.log1p(-p) - float(model.net.position_bias[0])).reshape(ids.shape)

    fast = model.score_candidates(obs["shopper"], obs["candidate_ids"])
    assert np.allclose(fast, logits_via_rows(obs["shopper"], obs["candidate_ids"]), atol=1e-3)
    test = splits["test"].iloc[:300]
    features = test[[f"s{j}" for j in range(model.f_user)]].to_numpy(np.float32)
    ids = test["item_id"].to_numpy()[:, None]
    assert np.allclose(model.score_candidates(features, ids), logits_via_rows(features, ids), atol=1e-3)


def test_bad_inputs_are_clear_errors(world, trained):
    _, catalog, splits = world
    model, _ = trained
    train, val = splits["train"].iloc[:2000], splits["val"].iloc[:500]
    with pytest.raises(ValueError, match="not trained"):
        MLPClickModel().act({"shopper": np.zeros((1, 36)), "candidate_ids": np.zeros((1, 30), dtype=int)})
    with pytest.raises(ValueError, match="lacks column"):
        MLPClickModel().fit(train.drop(columns="clicked"), val, catalog, epochs=1, progress=False)
    unknown = train.copy()
    unknown.loc[0, "item_id"] = catalog.n_items
    with pytest.raises(ValueError, match="item id 300"):
        MLPClickModel().fit(unknown, val, catalog, epochs=1, progress=False)
    with pytest.raises(ValueError, match="empty"):
        MLPClickModel().fit(train.iloc[:0], val, catalog, epochs=1, progress=False)
    last = max((c for c in train.columns if c[:1] == "s" and c[1:].isdigit()), key=lambda c: int(c[1:]))
    with pytest.raises(ValueError, match="cross_features=False"):
        MLPClickModel().fit(train.drop(columns=last), val.drop(columns=last), catalog, epochs=1, progress=False)
    with pytest.raises(ValueError, match="lr"):
        MLPClickModel().fit(train, val, catalog, lr=0.0, progress=False)
    with pytest.raises(ValueError, match="shopper feature columns"):
        model.predict_click(splits["test"].drop(columns="s3"))
    before = model.predict_click(splits["test"].iloc[:100])
    with pytest.raises(ValueError, match="item id 300"):
        model.fit(unknown, val, catalog, epochs=1, progress=False)  # a failed re-fit leaves the model as it was
    assert np.array_equal(model.predict_click(splits["test"].iloc[:100]), before)
    with pytest.raises(ValueError, match="shape"):
        model.score_candidates(np.zeros((2, 5), np.float32), np.zeros((2, 30), dtype=int))
    plain = MLPClickModel(embed_dim=8, hidden_dim=8, cross_features=False)
    plain.fit(train.drop(columns=last), val.drop(columns=last), catalog, epochs=1, progress=False)
    assert plain.predict_click(val.drop(columns=last)).shape == (500,)


def test_roc_auc_ranks_with_ties_averaged():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    rng = np.random.default_rng(0)
    labels = rng.random(400) < 0.3
    scores = rng.integers(0, 12, 400).astype(float)  # many ties
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert roc_auc(labels, scores) == pytest.approx(pairs, abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([1, 1], [0.2, 0.3])
