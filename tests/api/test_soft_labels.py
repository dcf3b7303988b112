"""Soft labels' arithmetic (backend/services/soft_labels.py), independent of which score columns
the registry has today: the source order, the probability and margin forms, a swap, ambiguity."""

from __future__ import annotations

import math

import pytest

from backend.services.soft_labels import SOURCES, SoftLabels


def _labels(**kwargs) -> SoftLabels:
    labels = SoftLabels(1, **kwargs)
    labels.sources = list(SOURCES)  # every source, as if registered
    return labels


def _raw(rm_mean=None, judge=None, oof=None, margin=None, tagged=False) -> tuple:
    """The selected values: the sources', then whether the job tagged the pair `ambiguous`."""
    return (rm_mean, judge, oof, margin, tagged)


def test_the_first_source_with_a_value_wins() -> None:
    labels = _labels()
    out, _ = labels.values(_raw(rm_mean=2.0, judge=0.1, margin=-3.0), swapped=False)
    assert out["confidence_source"] == "rm_mean" and out["margin"] == 2.0
    assert math.isclose(out["confidence"], 1 / (1 + math.exp(-2.0)))
    out, _ = labels.values(_raw(judge=0.8, oof=-1.0, margin=-3.0), swapped=False)
    assert out["confidence_source"] == "judge_p_chosen" and out["confidence"] == 0.8
    assert math.isclose(out["margin"], math.log(0.8 / 0.2))
    assert math.isclose(out["label_smoothing"], 0.2)
    out, _ = labels.values(_raw(oof=float("nan"), margin=-3.0), swapped=False)
    assert out["confidence_source"] == "margin"  # a NaN is no value
    assert out["label_smoothing"] == 0.5  # capped: a reversed pair is not smoothed past 0.5


def test_a_certain_judge_gives_a_bounded_margin() -> None:
    out, _ = _labels().values(_raw(judge=1.0), swapped=False)
    assert out["confidence"] == 1.0 and out["margin"] == 10.0 and out["label_smoothing"] == 0.0


def test_a_swapped_pair_flips_confidence_and_margin() -> None:
    labels = _labels()
    plain, _ = labels.values(_raw(margin=1.5), swapped=False)
    swapped, _ = labels.values(_raw(margin=1.5), swapped=True)
    assert math.isclose(swapped["confidence"], 1 - plain["confidence"])
    assert swapped["margin"] == -1.5


def test_no_source_gives_nulls_and_is_not_ambiguous() -> None:
    out, ambiguous = _labels().values(_raw(), swapped=False)
    assert set(out.values()) == {None} and not ambiguous


@pytest.mark.parametrize(
    ("raw", "band", "ambiguous"),
    [
        (_raw(judge=0.55), 0.1, True),
        (_raw(judge=0.65), 0.1, False),
        (_raw(judge=0.65), 0.2, True),
        (_raw(rm_mean=5.0, tagged=True), 0.1, True),  # the job's `ambiguous` tag
        (_raw(rm_mean=5.0), 0.1, False),
        (_raw(judge=0.55), 0.0, False),  # the default band: only the tag decides
        (_raw(judge=0.95, tagged=True), 0.0, True),
    ],
)
def test_ambiguity_and_which_file_keeps_a_pair(raw, band, ambiguous) -> None:
    for mode in ("include", "exclude", "only"):
        labels = _labels(ambiguous=mode, band=band)
        _, found = labels.values(raw, swapped=False)
        assert found is ambiguous
        kept = labels.keeps(found)
        assert kept is {"include": True, "exclude": not ambiguous, "only": ambiguous}[mode]
