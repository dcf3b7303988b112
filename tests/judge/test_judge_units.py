"""The judge's pure parts: parsing answers, filling the template, the request key, the
estimate's token count, and the columns from two verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.influence.judge import JudgeOptions, JudgeTemplate, request_key
from worker.influence.judge.options import CHARS_PER_TOKEN, estimate_tokens
from worker.influence.judge.parse import MalformedAnswer, Verdict, choice_of, p_first
from worker.influence.judge.run import _outcome, summary


@pytest.mark.parametrize(
    ("answer", "choice"),
    [("A", "A"), ("B.", "B"), (" **B**", "B"), ("(A)", "A"), ("A is better", "A"),
     ("Response B", "B"), ("answer: b", "B"), ("I think Response A is better.", "A")],
)  # fmt: skip
def test_answers_that_name_one_position(answer: str, choice: str) -> None:
    assert choice_of(answer) == choice


@pytest.mark.parametrize(
    ("answer", "why"),
    [("A sunny day", "neither"), ("Hello", "neither"), ("", "neither"),
     ("Response A and Response B", "both")],
)  # fmt: skip
def test_malformed_answers_say_why(answer: str, why: str) -> None:
    with pytest.raises(MalformedAnswer, match=why):
        choice_of(answer)


def test_confidence_from_the_first_tokens_alternatives() -> None:
    top = [
        {"token": "A", "logprob": math.log(0.6)},
        {"token": " B", "logprob": math.log(0.2)},
        {"token": "The", "logprob": math.log(0.2)},
    ]
    assert p_first(top) == pytest.approx(0.75)
    assert p_first([{"token": "The", "logprob": -0.1}]) is None
    assert p_first(None) is None


def test_template_fills_each_placeholder_once_and_never_a_text_twice() -> None:
    template = JudgeTemplate(system="", user="P={prompt} A={response_a} B={response_b}")
    messages = template.messages("{response_a}", "x {response_b} {}", "y")
    assert messages == [{"role": "user", "content": "P={response_a} A=x {response_b} {} B=y"}]
    assert JudgeTemplate(user="{prompt} {response_a}").problems() == [
        "template.user must contain {response_b} exactly once (found 0)"
    ]


def test_request_key_is_the_exact_request() -> None:
    messages = [{"role": "user", "content": "hi"}]
    key = request_key("http://h/v1/", "m", messages, {"max_tokens": 4})
    assert key == request_key("http://h/v1", "m", messages, {"max_tokens": 4})
    assert key != request_key("http://h/v1", "m2", messages, {"max_tokens": 4})
    assert key != request_key("http://h/v1", "m", messages, {"max_tokens": 5})
    assert key != request_key("http://h/v1", "m", [{"role": "user", "content": "hi!"}], {})


def test_estimate_counts_both_orders_and_the_cut_texts() -> None:
    template = JudgeTemplate(system="", user="{prompt}{response_a}{response_b}", max_chars=100)
    options = JudgeOptions(base_url="http://h/v1", model="m", template=template, max_tokens=3)
    lengths = np.array([[40, 40, 40], [400, 10, 10]])  # the second prompt is cut to 100
    estimate = estimate_tokens(lengths, options)
    per_request = [math.ceil(120 / CHARS_PER_TOKEN) + 4, math.ceil(120 / CHARS_PER_TOKEN) + 4]
    assert estimate.requests == 4 and estimate.completion_tokens == 12
    assert estimate.prompt_tokens == 2 * sum(per_request)


def test_columns_from_two_verdicts() -> None:
    results: dict = {
        (0, "chosen_first"): Verdict("A", 0.9),  # picks chosen
        (0, "chosen_second"): Verdict("A", 0.7),  # picks rejected (shown first): position bias
        (1, "chosen_first"): "MalformedAnswer: the answer names neither A nor B",
        (1, "chosen_second"): Verdict("B", None),  # picks chosen, no log-probabilities
    }
    outcome = _outcome(2, results)
    c = outcome.columns
    assert c["judge_agree_chosen_first"][0] == 1 and c["judge_agree_chosen_second"][0] == 0
    assert c["judge_p_chosen"][0] == pytest.approx((0.9 + 0.3) / 2)
    assert c["judge_against"][0] == 1 and c["judge_confidence"][0] == pytest.approx(0.8)
    assert np.isnan(c["judge_agree_chosen_first"][1]) and c["judge_agree_chosen_second"][1] == 1
    assert c["judge_failed_orders"].tolist() == [0, 1] and np.isnan(c["judge_confidence"][1])
    assert [(f.index, f.order) for f in outcome.failures] == [(1, "chosen_first")]
    metrics = summary(c)
    assert metrics["first_position_rate"] == pytest.approx(2 / 3, abs=1e-4)  # rounded
    assert metrics["consistency"] == 0.0 and metrics["pairs_judged_both_orders"] == 1


def test_the_engines_columns_are_the_registrys() -> None:
    from worker.influence.judge import JUDGE_COLUMNS
    from worker.influence.judge_columns import JUDGE_COLUMN_SPECS
    from worker.influence.methods import SCORE_COLUMNS

    assert tuple(c.name for c in JUDGE_COLUMN_SPECS) == JUDGE_COLUMNS
    assert set(JUDGE_COLUMNS) <= set(SCORE_COLUMNS)


def test_an_answer_without_a_letter_is_read_from_its_log_probabilities() -> None:
    from worker.influence.judge import parse_answer

    top = [{"token": "You", "logprob": -0.5}, {"token": "B", "logprob": -1.0}]
    assert parse_answer("You are right", top) == Verdict("B", 0.0)
    with pytest.raises(MalformedAnswer, match="neither"):
        parse_answer("You are right", [{"token": "You", "logprob": -0.5}])
