"""The method registry is the one list of methods: the database, the engine's columns, the API's
enums and the typed job metrics all agree with it."""

from __future__ import annotations

import json
import typing
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from tests.factories import noisy_split, synthetic_pairs, tiny_config
from worker.influence import columns
from worker.influence.config import DEVICES, HEAD_FEATURES, HESSIANS, MODES, SOLVERS
from worker.influence.methods import (
    GRADIENT_METHODS,
    HARM_COLUMNS,
    METHOD_NAMES,
    METHODS,
    OUTSIDE_COLUMN_SPECS,
    SCORE_COLUMNS,
    MethodName,
    harm_column,
)
from worker.influence.results import stored_json, with_fields

NOT_SCORES = {"id", "job_id", "pair_id", "split"}


def test_score_columns_are_the_scores_table() -> None:
    from backend.models import Score

    table = [c.name for c in Score.__table__.columns if c.name not in NOT_SCORES]
    assert tuple(table) == SCORE_COLUMNS
    assert SCORE_COLUMNS[0] == "harm"


def test_pair_scores_carry_every_column() -> None:
    from backend.schemas import PairScores

    assert tuple(f for f in PairScores.model_fields if f != "split") == SCORE_COLUMNS


def test_every_method_fills_known_columns_and_has_a_harm_column() -> None:
    assert tuple(METHODS) == METHOD_NAMES == typing.get_args(MethodName)
    filled: set[str] = set()
    for name, spec in METHODS.items():
        assert spec.name == name
        assert set(spec.columns) <= set(SCORE_COLUMNS), name
        assert spec.harm_column in spec.columns and spec.harm_column in HARM_COLUMNS, name
        assert harm_column(name) == spec.harm_column == f"harm_{name}"
        assert spec.label and spec.description and spec.orientation, name
        assert not spec.lora_only or spec.needs_checkpoints, name
        assert not spec.needs_curvature or spec.needs_gradients, name
        filled |= set(spec.columns)
    # Every column but the default method's copy and the column groups filled outside the
    # methods (reward models, the judge) is some method's.
    outside = {c.name for c in OUTSIDE_COLUMN_SPECS}
    assert filled == set(SCORE_COLUMNS) - {"harm"} - outside
    assert tuple(c for c in SCORE_COLUMNS if c.startswith("harm")) == HARM_COLUMNS


def test_what_methods_need() -> None:
    assert {
        "gradient_similarity",
        "influence",
        "datainf",
        "self_influence",
        "corrected_loss",
        "tracin",
        "group",
    } == GRADIENT_METHODS
    assert {m for m, s in METHODS.items() if s.needs_curvature} == {
        "influence",
        "self_influence",
        "corrected_loss",
        "group",
    }
    assert {m for m, s in METHODS.items() if s.needs_checkpoints or s.lora_only} == {"tracin"}
    assert METHODS["corrected_loss"].columns[1] == "harm_self_influence"
    # Greedy is compared with the top-K of its own first-order effects, which it fills too.
    assert {"harm_influence", "removal_effect_influence"} <= set(METHODS["group"].columns)
    assert set(METHODS["loss"].columns) == {"loss", "margin", "harm_loss"}


def test_unknown_method_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known methods: loss, gradient_similarity"):
        harm_column("vibes")


def test_columns_module_reexports_the_registry() -> None:
    assert columns.METHODS == METHOD_NAMES
    assert columns.SCORE_COLUMNS is SCORE_COLUMNS
    assert columns.HARM_COLUMNS is HARM_COLUMNS
    assert columns.GRADIENT_METHODS is GRADIENT_METHODS


def test_backend_sort_keys_and_harm_columns_come_from_the_registry() -> None:
    from backend.services import review

    assert ("index", "length", *SCORE_COLUMNS) == review.SORT_KEYS
    assert review.HARM_COLUMNS == HARM_COLUMNS


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    from backend.main import create_app

    return create_app().openapi()


def test_openapi_carries_the_choices_as_enums(openapi) -> None:
    props = openapi["components"]["schemas"]["AuditCreate"]["properties"]
    assert props["methods"]["items"]["enum"] == list(METHOD_NAMES)
    assert props["default_method"]["enum"] == ["auto", *METHOD_NAMES]  # auto: the job chooses
    for field, choices in [
        ("mode", MODES),
        ("hessian", HESSIANS),
        ("solver", SOLVERS),
        ("device", DEVICES),
        ("head_features", HEAD_FEATURES),
    ]:
        assert props[field]["enum"] == list(choices), field
    # Labels and descriptions run parallel to the enum, for clients that show the options.
    for prop, first in ((props["methods"]["items"], 0), (props["default_method"], 1)):
        assert prop["x-enum-labels"][first:] == [METHODS[m].label for m in METHOD_NAMES]
        assert prop["x-enum-descriptions"][first:] == [METHODS[m].description for m in METHOD_NAMES]
        assert len(prop["x-enum-labels"]) == len(prop["enum"])


def test_openapi_types_job_metrics_by_kind(openapi) -> None:
    schemas = openapi["components"]["schemas"]
    metrics = schemas["JobPublic"]["properties"]["metrics"]["anyOf"][0]
    assert metrics["discriminator"]["propertyName"] == "kind"
    assert set(metrics["discriminator"]["mapping"]) == {"audit", "verify", "judge"}
    for name in ("AuditMetrics", "VerifyMetrics", "JudgeMetrics"):
        # Every key a job writes is declared; a response holds no other (old ones are dropped).
        assert schemas[name]["additionalProperties"] is False
        assert "kind" in schemas[name]["required"]
    assert "/api/v1/methods" in openapi["paths"]


def test_a_bad_choice_is_refused_naming_the_field_and_the_choices() -> None:
    from pydantic import ValidationError

    from backend.schemas import AuditCreate

    with pytest.raises(ValidationError) as info:
        AuditCreate.model_validate({"mode": "fast", "methods": ["loss", "vibes"]})
    errors = {e["loc"]: e["msg"] for e in info.value.errors()}
    assert "'lora', 'head' or 'pretrained'" in errors[("mode",)]
    assert "'tracin'" in errors[("methods", 1)] and "'ensemble'" in errors[("methods", 1)]


def _public(kind: str, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """A job's metrics as the API serialises them, from the dict the database stores."""
    from datetime import UTC, datetime

    from backend.schemas import JobPublic

    job = SimpleNamespace(
        id=1,
        dataset_id=1,
        kind=kind,
        status="succeeded",
        stage="done",
        progress=1.0,
        error=None,
        metrics=metrics,
        config={},
        created_at=datetime.now(UTC),
        started_at=None,
        finished_at=None,
    )
    public = JobPublic.model_validate(job)
    # Validate what the API sends once more, as a client (and FastAPI's response check) would.
    sent = json.loads(public.model_dump_json())
    assert JobPublic.model_validate(sent).model_dump(mode="json") == sent
    return sent["metrics"]


def _stored(value: dict[str, Any]) -> dict[str, Any]:
    """Through JSON, as the pipeline stores it."""
    return json.loads(json.dumps(value))


def test_audit_metrics_round_trip() -> None:
    from backend.schemas import AuditMetrics
    from worker.influence.audit import run_audit

    train, val, _ = noisy_split(n_train=24, n_val=8, flips=(3,))
    result = run_audit(
        train,
        val,
        tiny_config(
            epochs=1,
            methods=["loss", "influence", "length", "oof_loss"],
            crossfit_folds=2,
            crossfit_repeats=1,
        ),
    )
    # What worker/jobs/single.py adds before it stores them (worker/jobs/store.py writes them).
    final = with_fields(result.metrics, n_train=24, n_val=8, validation_source="x", seconds_total=1)
    stored = _stored(stored_json(final))
    assert "kind" not in stored
    sent = _public("audit", stored)
    assert sent == {**stored, "kind": "audit"}  # nothing lost, nothing added but the kind
    typed = AuditMetrics.model_validate(sent)
    assert typed.trust is not None and typed.trust.is_evidence in (True, False)
    assert typed.mislabelled is not None and typed.history and typed.truncation_rate
    assert typed.default_method == "length" and typed.n_train == 24
    assert typed.method_seconds is not None and set(typed.method_seconds) == {
        "influence",
        "length",
        "oof_loss",
    }
    with pytest.raises(ValidationError):  # a misspelt key fails where it is written
        with_fields(result.metrics, n_trian=24)


def test_verify_metrics_round_trip() -> None:
    from backend.schemas import VerifyMetrics
    from worker.influence.verify import run_verify

    train = synthetic_pairs(20, 1)
    result = run_verify(
        train,
        synthetic_pairs(8, 2),
        [i < 4 for i in range(20)],
        tiny_config(mode="head", methods=["loss"]),
        seeds=[0, 1],
    )
    final = with_fields(result, audit_job_id=5, rule="top 10% by harm", evaluated_on="the split")
    stored = _stored(stored_json(final))
    sent = _public("verify", stored)
    assert sent == {**stored, "kind": "verify"}
    typed = VerifyMetrics.model_validate(sent)
    assert typed.runs and {r.arm for r in typed.runs} == {"full", "pruned", "random"}
    assert typed.arms and typed.arms.pruned and typed.arms.pruned.accuracy.n == 2
    assert typed.differences and typed.differences.pruned_minus_random
    assert typed.summary and typed.seeds == [0, 1]


@pytest.mark.parametrize("kind", ["audit", "verify"])
def test_unfinished_and_failed_jobs_metrics_validate(kind: str) -> None:
    assert _public(kind, None) is None
    failed = {"traceback": "Traceback (most recent call last): ..."}
    assert _public(kind, failed) == {**failed, "kind": kind}
    # Rows from before a key existed read as stored; keys an older version wrote that no model
    # declares any more are dropped on reading (worker/influence/results.py), at every level.
    nested, kept = (
        ("runs", [{"seed": 0, "arm": "full", "n_train": 5, "accuracy": 1.0, "loss": 0.1}])
        if kind == "verify"
        else ("trust", {"n_val": 3})
    )
    gone = [{**kept[0], "gone": 1}] if isinstance(kept, list) else {**kept, "gone": 1}
    old = {"n_train": 5, "validation_accuracy": 0.5, "something": {"x": [1]}, nested: gone}
    assert _public(kind, old) == {"n_train": 5, nested: kept, "kind": kind}
    # A value of a shape no field takes any more is dropped (its key, whole) rather than failing.
    misfit = {"n_train": "not a count", "traceback": "..."}
    assert _public(kind, misfit) == {"traceback": "...", "kind": kind}
