"""``SlateSpace``: k distinct indices into M candidates, single and batched; ``top_k``: scores -> a slate."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from gymnasium.spaces import MultiDiscrete
from gymnasium.vector.utils import batch_space
from hypothesis import given
from hypothesis import strategies as st

from stickyrec.envs import SlateSpace
from stickyrec.envs.spaces import top_k
from tests.strategies import slates


@st.composite
def sizes(draw):
    n_candidates = draw(st.integers(1, 60))
    return n_candidates, draw(st.integers(1, n_candidates))


def _distinct_rows(x: np.ndarray) -> bool:
    ordered = np.sort(x, axis=-1)
    return not np.any(ordered[..., 1:] == ordered[..., :-1])


@given(sizes(), st.integers(0, 2**32))
def test_sample_is_always_k_distinct_indices_in_range(size, seed):
    """SlateSpace.sample returns k distinct int64 indices in 0..M-1, and the space contains it."""
    n_candidates, slate_size = size
    space = SlateSpace(n_candidates, slate_size, seed=seed)
    for _ in range(20):
        slate = space.sample()
        assert slate.shape == (slate_size,) and slate.dtype == np.int64
        assert slate.min() >= 0 and slate.max() < n_candidates
        assert _distinct_rows(slate)
        assert space.contains(slate)


def test_sample_covers_every_candidate_and_position():
    """Sampling is not stuck on a subset: every candidate appears at every slate position over many draws."""
    space = SlateSpace(8, 3, seed=0)
    seen = np.zeros((3, 8), dtype=bool)
    for _ in range(500):
        seen[np.arange(3), space.sample()] = True
    assert seen.all()


def test_sample_is_reproducible_from_the_seed():
    """Two spaces seeded alike sample the same slates."""
    a, b = SlateSpace(30, 5, seed=3), SlateSpace(30, 5, seed=3)
    for _ in range(10):
        assert np.array_equal(a.sample(), b.sample())


@given(sizes().flatmap(lambda size: st.tuples(st.just(size), slates(*size))))
def test_contains_accepts_every_valid_slate(drawn):
    """Any k distinct in-range int indices are in the space (lists too)."""
    (n_candidates, slate_size), slate = drawn
    space = SlateSpace(n_candidates, slate_size)
    assert space.contains(slate)
    assert space.contains(slate.tolist())


@pytest.mark.parametrize("slate", [[0, 1, 1], [2, 2, 2], [4, 0, 4]])
def test_contains_rejects_repeats(slate):
    """A slate that repeats a candidate is not in the space, though it is in the plain MultiDiscrete."""
    space = SlateSpace(5, 3)
    assert not space.contains(np.array(slate))
    assert MultiDiscrete([5, 5, 5]).contains(np.array(slate))


@pytest.mark.parametrize("slate", [[0, 1, 5], [-1, 0, 1], [0, 1], [0, 1, 2, 3], [[0, 1, 2]]])
def test_contains_rejects_out_of_range_and_wrong_shape(slate):
    """Out-of-range indices and the wrong length or shape are not in the space."""
    assert not SlateSpace(5, 3).contains(np.array(slate))


def test_contains_rejects_non_integer_dtype():
    """Float slates are not in the (int64) space."""
    assert not SlateSpace(5, 3).contains(np.array([0.0, 1.0, 2.0]))


def test_slate_larger_than_the_candidates_is_a_value_error():
    """k > M cannot be distinct: SlateSpace refuses it."""
    with pytest.raises(ValueError, match="slate_size=6 exceeds n_candidates=5"):
        SlateSpace(5, 6)


@pytest.mark.parametrize("n", [1, 4])
def test_batch_space_gives_a_batched_slate_space(n):
    """batch_space(SlateSpace, n) is a SlateSpace of shape (n, k) whose rows are independent valid slates."""
    single = SlateSpace(12, 4, seed=1)
    batched = batch_space(single, n)
    assert isinstance(batched, SlateSpace)
    assert batched.shape == (n, 4)
    assert (batched.n_candidates, batched.slate_size) == (12, 4)
    for _ in range(30):
        sample = batched.sample()
        assert sample.shape == (n, 4) and sample.dtype == np.int64
        assert _distinct_rows(sample) and batched.contains(sample)
        for row in sample:
            assert single.contains(row)


def test_batched_contains_rejects_a_repeat_in_any_row():
    """The batched space rejects the batch if any one row repeats a candidate."""
    batched = batch_space(SlateSpace(12, 3), 3)
    good = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    assert batched.contains(good)
    bad = good.copy()
    bad[1] = [4, 4, 5]
    assert not batched.contains(bad)


def test_batched_rows_differ():
    """Rows of a batched sample are drawn independently (not one slate copied)."""
    sample = batch_space(SlateSpace(100, 5, seed=0), 8).sample()
    assert len({tuple(row) for row in sample}) > 1


def test_space_equality_hash_and_pickle():
    """Spaces of the same sizes are equal (and hash alike); pickling keeps them equal and valid."""
    a, b = SlateSpace(30, 5), SlateSpace(30, 5)
    assert a == b and hash(a) == hash(b)
    assert a != SlateSpace(30, 4) and a != SlateSpace(31, 5)
    clone = pickle.loads(pickle.dumps(a))
    assert clone == a and clone.contains(clone.sample())


def test_top_k_orders_best_first_and_breaks_ties_by_index():
    assert top_k(np.array([[0.1, 0.5, 0.5, 0.2]]), 2).tolist() == [[1, 2]]
    assert top_k(np.array([[1.0, 1.0, 1.0]]), 3).tolist() == [[0, 1, 2]]
    assert top_k(np.array([3.0, 1.0, 2.0]), 2).tolist() == [0, 2]
