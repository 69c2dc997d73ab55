"""The final choice among candidates by their children: candidates within the limits, from the score's optimum
towards the fullest network, and the judge's pick returned (and again when the final steps re-run)."""

from __future__ import annotations

import numpy as np
import pytest

from nas.search import SearchSettings, search
from nas.search.candidates import candidate_networks, pick_by_children
from nas.search.discretize import NetworkScore, best_network
from nas.search.driver import refinalize
from nas.search.finalize import finalize
from nas.search.synthetic_gradients import prefer_large_networks


def _small_first(model) -> NetworkScore:  # noqa: ANN001
    """A score that rates every larger option lower: its optimum is the lightest network whatever the limit."""
    return NetworkScore(-model.block_ms, np.zeros(model.beta_shape))


def test_candidates_run_from_the_scores_optimum_to_fuller_networks_within_the_limits(make_model) -> None:
    model, other = make_model(3), make_model(4)
    score = _small_first(model)
    limit = model.min_latency_ms() + 0.6 * (model.max_latency_ms() - model.min_latency_ms())
    other_limit = other.min_latency_ms() + 0.8 * (other.max_latency_ms() - other.min_latency_ms())
    constraints = [(model, limit), (other, other_limit)]
    found = candidate_networks(score, constraints, 6)
    assert found[0] == best_network(score, constraints)
    assert len(found) == len(set(found)) >= 3
    assert all(model.choice_latency_ms(c) <= limit and other.choice_latency_ms(c) <= other_limit for c in found)
    # the latency term fills the budget: the last candidate uses far more of it than the score's optimum
    assert model.choice_latency_ms(found[-1]) > 0.9 * limit > model.choice_latency_ms(found[0])
    assert candidate_networks(score, constraints, 1) == found[:1]
    with pytest.raises(ValueError, match="count"):
        candidate_networks(score, constraints, 0)


def test_the_most_accurate_child_is_returned_and_recorded(make_model) -> None:
    model = make_model(5)
    score = _small_first(model)
    limit = model.min_latency_ms() + 0.5 * (model.max_latency_ms() - model.min_latency_ms())
    plain = finalize(model, score, limit)
    assert plain.judged == () and plain.choice == best_network(score, [(model, limit)])
    # a judge whose children are more accurate the larger they are (as on a supernet where size pays)
    larger_is_better = lambda choice: (model.choice_latency_ms(choice), -model.choice_latency_ms(choice))  # noqa: E731
    fin = finalize(model, score, limit, judge=larger_is_better, candidates=5)
    assert fin.choice == max((j.choice for j in fin.judged), key=model.choice_latency_ms)
    assert fin.latency_ms <= limit and fin.latency_ms > plain.latency_ms
    assert [j.latency_ms for j in fin.judged] == [model.choice_latency_ms(j.choice) for j in fin.judged]
    # a judge that agrees with the score keeps the score's optimum; a tie in top-1 goes to the lower loss
    assert finalize(model, score, limit, judge=lambda c: (50.0, model.choice_latency_ms(c)), candidates=5
                    ).choice == plain.choice
    choice, judged = pick_by_children(list(reversed([j.choice for j in fin.judged])), lambda c: (1.0, 0.0))
    assert choice == judged[0].choice  # full ties: the first candidate offered


def test_the_judge_decides_again_when_the_final_steps_re_run(make_model) -> None:
    model = make_model(6)
    calls = []

    def judge(choice):  # noqa: ANN001, ANN202
        calls.append(choice)
        return model.choice_latency_ms(choice), 0.0

    limit = model.min_latency_ms() + 0.7 * (model.max_latency_ms() - model.min_latency_ms())
    settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=20, seed=0, child_candidates=4)
    result = search(model, prefer_large_networks(0), settings, progress=False, judge=judge)
    first = len(calls)
    assert 1 < first <= 4 and result.attempts[0]["candidates"]
    assert sum(c["chosen"] for c in result.attempts[0]["candidates"]) == 1
    tighter = 0.9 * result.expected_latency_ms
    if tighter >= model.min_latency_ms():
        fin = refinalize(result, tighter)
        assert len(calls) > first and fin.latency_ms <= tighter and fin.judged
        assert result.attempts[-1]["candidates"] and result.choice == fin.choice
