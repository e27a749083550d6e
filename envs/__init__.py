"""stickyrec's simulator: ``import envs`` registers ``stickyrec/Retention-v0``.

>>> import gymnasium as gym, envs
>>> env = gym.make("stickyrec/Retention-v0", clickbait_share=0.3)
>>> vec = gym.make_vec("stickyrec/Retention-v0", num_envs=4096)   # batched numpy shoppers
"""

from gymnasium.envs.registration import register, registry

from envs.catalog import Catalog, make_catalog
from envs.config import PRESETS, RetentionConfig, get_preset, make_config
from envs.env import INFO_KEYS, LATENT_SATISFACTION_KEY, RetentionEnv
from envs.simulator import RetentionSimulator, StepResponse
from envs.spaces import SlateSpace
from envs.vector import RetentionVectorEnv

ENV_ID = "stickyrec/Retention-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="envs.env:RetentionEnv", vector_entry_point="envs.vector:RetentionVectorEnv")

__all__ = ["ENV_ID", "INFO_KEYS", "LATENT_SATISFACTION_KEY", "PRESETS", "Catalog", "RetentionConfig",
           "RetentionEnv", "RetentionSimulator", "RetentionVectorEnv", "SlateSpace", "StepResponse",
           "get_preset", "make_catalog", "make_config"]
