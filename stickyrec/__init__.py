"""stickyrec: a reinforcement-learning recommendation simulator for e-commerce retention.

One import namespace over the repository's folders: ``stickyrec.envs`` (the simulated world), ``stickyrec.agents``
(slate policies) and ``stickyrec.experiments`` (the platform's log, runs, reports and the CLI).
``import stickyrec`` registers ``stickyrec/Retention-v0`` with Gymnasium, and so does
``gym.make("stickyrec:stickyrec/Retention-v0")`` with no import at all. docs/architecture.md maps the rest.
"""

from __future__ import annotations

import os as _os

from gymnasium.envs.registration import register as _register
from gymnasium.envs.registration import registry as _registry

__version__ = "0.1.0"

# In a source checkout this folder holds only the namespace root and the subpackages are its sibling folders
# (envs/, agents/, experiments/); an installed wheel has them inside. Extend the search path in the first case only.
_here = _os.path.dirname(_os.path.abspath(__file__))
_checkout = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "envs")) and _os.path.isfile(
    _os.path.join(_checkout, "envs", "__init__.py")
):
    __path__.append(_checkout)  # noqa: F821 (a package's own __path__)

ENV_ID = "stickyrec/Retention-v0"

if ENV_ID not in _registry:
    _register(
        id=ENV_ID,
        entry_point="stickyrec.envs.env:RetentionEnv",
        vector_entry_point="stickyrec.envs.vector:RetentionVectorEnv",
    )

__all__ = ["ENV_ID", "__version__"]
