"""Same numbers? A fingerprint of what the shipped code computes, to check a "same numbers" change against.

SHA-256 hashes (16 hex digits each) of:

* ``env_B512``, ``env_B8``, ``env_B1``: 400 steps of the batched env under seeded random slates: every observation
  (candidate ids and shopper features), reward, termination, truncation and info array (latent state included);
* ``env_single``: 300 steps of the single env across episode ends (the one-shopper kernel);
* ``ppo_small_8192``, ``slateq_small_2048``: the network weights after a short seeded training run of each RL agent
  on the ``small`` preset (SB3's rollouts and minibatches, the replay buffer, the optimisers).

``python -m stickyrec.experiments.fingerprint`` prints them as JSON; ``--check tests/data/fingerprint.json`` compares
with the committed ones and exits 1 naming what moved. ``tests/test_fingerprint.py`` runs the check in the fast
suite. A change that is meant to move numbers re-writes the file with ``--write`` in the same commit and says why.
Torch and BLAS kernels differ between CPU families, so the committed hashes hold for the machine kind CI runs on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from stickyrec.envs import RetentionConfig, RetentionEnv, RetentionVectorEnv, make_config


def _feed(digest, value) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            digest.update(key.encode())
            _feed(digest, value[key])
        return
    array = np.ascontiguousarray(np.asarray(value))
    digest.update(f"{array.dtype}{array.shape}".encode())
    digest.update(array.tobytes())


def env_hash(batch_size: int, steps: int = 400, seed: int = 7, action_seed: int = 3) -> str:
    digest = hashlib.sha256()
    config = RetentionConfig()
    env = RetentionVectorEnv(batch_size)
    for part in env.reset(seed=seed):
        _feed(digest, part)
    rng = np.random.default_rng(action_seed)
    for _ in range(steps):
        slates = np.argsort(rng.random((batch_size, config.n_candidates)), axis=1)[:, : config.slate_size]
        for part in env.step(slates):
            _feed(digest, part)
    return digest.hexdigest()[:16]


def single_env_hash(steps: int = 300, seed: int = 11, action_seed: int = 4) -> str:
    digest = hashlib.sha256()
    env = RetentionEnv()
    for part in env.reset(seed=seed):
        _feed(digest, part)
    rng = np.random.default_rng(action_seed)
    for _ in range(steps):
        result = env.step(rng.permutation(env.config.n_candidates)[: env.config.slate_size])
        for part in result:
            _feed(digest, part)
        if result[2] or result[3]:
            _feed(digest, env.reset()[0])
    return digest.hexdigest()[:16]


def weights_hash(agent) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(agent.net.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def fingerprint() -> dict[str, str]:
    from stickyrec.agents.rl.ppo import PPOAgent
    from stickyrec.agents.rl.slateq import SlateQAgent

    out = {f"env_B{b}": env_hash(b) for b in (512, 8, 1)}
    out["env_single"] = single_env_hash()
    small = make_config("small")
    ppo = PPOAgent(seed=0, n_envs=64, n_steps=16, batch_size=512).train(small, 8192, progress=False)
    out["ppo_small_8192"] = weights_hash(ppo)
    slateq = SlateQAgent(seed=0, n_envs=32, learning_starts=256).train(small, 2048, progress=False)
    out["slateq_small_2048"] = weights_hash(slateq)
    return out


def differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    keys = sorted(set(expected) | set(actual))
    return [f"{k}: expected {expected.get(k)}, got {actual.get(k)}" for k in keys if expected.get(k) != actual.get(k)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stickyrec.experiments.fingerprint", description=__doc__.split("\n")[0]
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", type=Path, metavar="FILE", help="compare with a committed fingerprint")
    group.add_argument("--write", type=Path, metavar="FILE", help="write the fingerprint to FILE")
    args = parser.parse_args(argv)
    actual = fingerprint()
    print(json.dumps(actual, indent=1))
    if args.write:
        from stickyrec.io import write_json_atomic

        write_json_atomic(args.write, actual)
    if args.check:
        moved = differences(json.loads(args.check.read_text()), actual)
        for line in moved:
            print(f"moved: {line}", file=sys.stderr)
        return 1 if moved else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
