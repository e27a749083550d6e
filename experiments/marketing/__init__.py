"""The platform's marketing side: churn early warning and purchase intent, scored on the simulator's truth.

Modules: ``logs`` (the log at step and session grain), ``features`` (examples from the log alone), ``models``
(``ChurnWarning``, ``IntentModel``), ``scores`` (metrics), ``hazard`` and ``intent`` (the ceilings: the true hazard
and the true purchase chance, re-simulated from copies of the latent state by ``replay``), ``warning``
(``evaluate_warning``, ``evaluate_intent``, ``run_demo``: import them from there; the demo is
``python -m stickyrec.experiments.marketing.warning``), ``uplift`` (``UpliftModel``: two-model and X-learner
uplift from a randomised campaign; ``uplift_curve``, ``qini_coefficient`` scored on true effects, ``qini_observed``
from a log alone, ``target_by_budget``).
"""

from stickyrec.experiments.marketing.features import (
    CHURN_FEATURES,
    INTENT_FEATURES,
    WARNING_FEATURES,
    intent_examples,
    snapshot_days,
    warning_examples,
)
from stickyrec.experiments.marketing.hazard import StateSnapshots, true_hazard
from stickyrec.experiments.marketing.intent import SessionSnapshots, true_intent
from stickyrec.experiments.marketing.logs import StepRecorder, log_steps, session_table
from stickyrec.experiments.marketing.models import ChurnWarning, IntentModel
from stickyrec.experiments.marketing.scores import flag_top, lead_times, precision_at, ranking_scores, reliability

__all__ = [
    "CHURN_FEATURES",
    "INTENT_FEATURES",
    "WARNING_FEATURES",
    "ChurnWarning",
    "IntentModel",
    "SessionSnapshots",
    "StateSnapshots",
    "StepRecorder",
    "flag_top",
    "intent_examples",
    "lead_times",
    "log_steps",
    "precision_at",
    "ranking_scores",
    "reliability",
    "session_table",
    "snapshot_days",
    "true_hazard",
    "true_intent",
    "warning_examples",
]
