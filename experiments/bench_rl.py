"""How much of PPO's training time is the env? PPO on stickyrec against PPO on a null env with the same spaces.

    python -m stickyrec.experiments.bench_rl [--steps 300000] [--n-envs 256]

The null env (``NullSlateVecEnv``) has stickyrec's observation and action spaces and SB3's protocol but does no
simulation: observations cycle through a fixed table of valid rows, rewards are zero, every shopper's episode
lasts 150 steps. Both runs use the same PPO settings, one torch thread and one BLAS thread. Printed: steps/s of
each, the wall time spent inside the env's ``step_wait`` during the stickyrec run, and the env's share of training
time measured both ways (time inside the env / total; and 1 - null time / stickyrec time).
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402


def null_vec_env(config, num_envs: int, seed: int = 0, episode_length: int = 150):
    from stable_baselines3.common.vec_env import VecEnv

    from stickyrec.agents.rl.sb3_adapter import SB3VecEnv

    class NullSlateVecEnv(SB3VecEnv):
        """stickyrec's spaces with no simulation behind them."""

        def __init__(self) -> None:
            real = SB3VecEnv(config, num_envs, lambda info: np.zeros(num_envs, np.float32), seed=seed)
            VecEnv.__init__(self, num_envs, real.observation_space, real.action_space)
            self.venv, self.config = real.venv, real.config
            rng = np.random.default_rng(seed)
            rows = [real.reset()]
            for _ in range(7):
                rows.append(real.step(np.tile(np.arange(config.slate_size), (num_envs, 1)))[0])
            self.table = np.stack(rows)
            self.t, self.length = 0, rng.integers(0, episode_length, num_envs)
            self.episode_length = episode_length
            self.seconds_in_env = 0.0
            self.last_gap_days = np.zeros(num_envs)  # read by the time-discounted rollout buffer

        def reset(self):
            return self.table[0].copy()

        def step_async(self, actions):
            self._actions = actions

        def step_wait(self):
            t0 = time.perf_counter()
            self.t += 1
            self.length += 1
            done = self.length >= self.episode_length
            self.length[done] = 0
            infos = [{} for _ in range(self.num_envs)]
            obs = self.table[self.t % len(self.table)].copy()
            for row in np.flatnonzero(done).tolist():
                infos[row] = {"terminal_observation": obs[row], "TimeLimit.truncated": True}
            self.seconds_in_env += time.perf_counter() - t0
            return obs, np.zeros(self.num_envs, np.float32), done, infos

    return NullSlateVecEnv()


def _train(venv, agent, steps):
    from stickyrec.agents.rl.checkpoint import env_spaces
    from stickyrec.agents.rl.networks import catalog_tables

    agent.spaces = env_spaces(venv.config, venv.venv.catalog)
    agent.net = agent.build_net(agent.spaces, catalog_tables(venv.venv.catalog))  # a fresh network per run
    model = agent.sb3_model(venv)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    return model.num_timesteps, time.perf_counter() - t0


def main(argv=None) -> dict:
    import torch

    from stickyrec.agents.rl.base import isolated_global_rng
    from stickyrec.agents.rl.ppo import PPOAgent
    from stickyrec.agents.rl.sb3_adapter import SB3VecEnv
    from stickyrec.envs.config import make_config
    from stickyrec.envs.rewards import make_reward

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--n-envs", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = make_config("default")
    agent = PPOAgent(n_envs=args.n_envs)
    results = {}
    with isolated_global_rng(0):
        for label, venv in (
            ("null env", null_vec_env(config, args.n_envs)),
            ("stickyrec", SB3VecEnv(config, args.n_envs, make_reward("retention"))),
        ):
            steps, seconds = _train(venv, agent, args.steps)
            results[label] = {
                "steps": steps,
                "seconds": seconds,
                "steps_per_second": steps / seconds,
                "seconds_in_env": venv.seconds_in_env,
            }
    real, null = results["stickyrec"], results["null env"]
    print(
        f"PPO, {args.n_envs} shoppers per step, n_steps {agent.params.n_steps}, batch {agent.params.batch_size}, "
        f"{agent.params.n_epochs} epochs, one torch thread"
    )
    print(f"{'env':<10} {'steps':>9} {'seconds':>8} {'steps/s':>9} {'in env.step':>12}")
    for label, r in results.items():
        print(
            f"{label:<10} {r['steps']:>9,} {r['seconds']:>8.1f} {r['steps_per_second']:>9,.0f}"
            f" {r['seconds_in_env']:>11.1f}s"
        )
    share_inside = real["seconds_in_env"] / real["seconds"]
    share_diff = 1.0 - null["seconds"] / real["seconds"]
    print(
        f"env share of PPO training time: {share_inside:.1%} (time inside step_wait / total),"
        f" {share_diff:.1%} (1 - null time / stickyrec time)"
    )
    return {"results": results, "share_inside": share_inside, "share_diff": share_diff}


if __name__ == "__main__":
    main()
