"""The shipped code computes the committed numbers: observations, rewards, infos and short training runs.

A change that moves any of them fails here; one that means to move them re-writes ``tests/data/fingerprint.json``
(``python -m stickyrec.experiments.fingerprint --write tests/data/fingerprint.json``) and says why in its commit.
"""

from __future__ import annotations

import json
from pathlib import Path

from stickyrec.experiments import fingerprint

COMMITTED = Path(__file__).parent / "data" / "fingerprint.json"


def test_the_env_and_short_training_runs_reproduce_the_committed_fingerprint():
    expected = json.loads(COMMITTED.read_text())
    assert set(expected) == {"env_B512", "env_B8", "env_B1", "env_single", "ppo_small_8192", "slateq_small_2048"}
    assert fingerprint.differences(expected, fingerprint.fingerprint()) == []


def test_a_moved_number_is_named():
    moved = fingerprint.differences({"env_B1": "aaaa", "env_B8": "bbbb"}, {"env_B1": "aaaa", "env_B8": "cccc"})
    assert moved == ["env_B8: expected bbbb, got cccc"]
