"""stickyrec's simulator: the world of shoppers, items and slates (``import stickyrec`` registers the env).

>>> import gymnasium as gym, stickyrec
>>> env = gym.make("stickyrec/Retention-v0", clickbait_share=0.3)
>>> vec = gym.make_vec("stickyrec/Retention-v0", num_envs=4096)   # batched numpy shoppers
"""

from stickyrec import ENV_ID  # the root package registers it
from stickyrec.envs.catalog import Catalog, make_catalog
from stickyrec.envs.config import PRESETS, RetentionConfig, get_preset, make_config
from stickyrec.envs.env import CHURN_CAUSE_KEYS, INFO_KEYS, LATENT_SATISFACTION_KEY, RetentionEnv
from stickyrec.envs.offers import OFFER_INFO_KEYS, UPLIFT_TYPE_KEY, UPLIFT_TYPES
from stickyrec.envs.simulator import RetentionSimulator, StepResponse
from stickyrec.envs.spaces import SlateSpace
from stickyrec.envs.vector import RetentionVectorEnv

__all__ = [
    "CHURN_CAUSE_KEYS",
    "ENV_ID",
    "INFO_KEYS",
    "LATENT_SATISFACTION_KEY",
    "OFFER_INFO_KEYS",
    "PRESETS",
    "Catalog",
    "RetentionConfig",
    "RetentionEnv",
    "RetentionSimulator",
    "RetentionVectorEnv",
    "SlateSpace",
    "StepResponse",
    "UPLIFT_TYPES",
    "UPLIFT_TYPE_KEY",
    "get_preset",
    "make_catalog",
    "make_config",
]
