"""A method added to the registry in a fixture reaches every derived place: its computation in
both engines, the database table, the API's `PairScores`, the OpenAPI `ScoreColumn` enum and what
the UI reads from it. Adding a method is one registry entry plus its scorer (and a migration)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from fastapi import FastAPI
from pydantic import create_model
from sqlalchemy import Float, MetaData

from backend.models import Score, score_table
from backend.schemas import pair_scores_model, score_column_enum
from tests.factories import noisy_split, tiny_config
from worker.influence import methods
from worker.influence.methods import (
    SCORE_COLUMNS,
    ColumnSpec,
    MethodName,
    MethodSpec,
    score_column_specs,
)
from worker.influence.stream import finalise_global, score_shard

ROOT = Path(__file__).resolve().parents[2]
HERE = "tests.engine.test_registry_columns"

PROMPT_LENGTH = MethodSpec(
    name=cast(MethodName, "prompt_length"),
    label="prompt length",
    harm_column="harm_prompt_length",
    owns=(
        ColumnSpec(
            "harm_prompt_length",
            label="prompt length",
            unit="characters",
            orientation="higher_harmful",
            higher="a long prompt (a toy score for this test)",
        ),
    ),
    orientation="High: a long prompt.",
    description="A toy method: minus the margin per shard, the margin's rank over all pairs.",
    single=f"{HERE}:score_prompt_length",
    shard=f"{HERE}:prompt_length_shard",
    finalise=f"{HERE}:prompt_length_global",
    reads=("margin",),
)


def score_prompt_length(ctx: Any) -> None:
    """The single-task scorer: any array over the training pairs will do."""
    ctx.scores["harm_prompt_length"] = -ctx.fitted.margins


def prompt_length_shard(shard: Any) -> dict[str, np.ndarray]:
    return {"harm_prompt_length": -shard.margins}


def prompt_length_global(
    columns: dict[str, np.ndarray], inputs: Any
) -> tuple[dict[str, np.ndarray], dict]:
    return {"harm_prompt_length": np.argsort(np.argsort(-columns["margin"])) + 0.0}, {"toy": 1}


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ColumnSpec, ...]]:
    """The registry with the toy method added (undone after the test); yields every column."""
    monkeypatch.setitem(methods.METHODS, "prompt_length", PROMPT_LENGTH)
    yield score_column_specs(methods.METHODS.values())
    # monkeypatch restores METHODS; the module's derived constants were never touched.


def test_its_column_is_in_the_database_table(registered: tuple[ColumnSpec, ...]) -> None:
    table = score_table(MetaData(), registered)
    column = table.columns["harm_prompt_length"]
    assert isinstance(column.type, Float) and column.nullable
    # Everything else is the real table's, in the same order.
    assert [c.name for c in table.columns][:-1] == [c.name for c in Score.__table__.columns]
    # Its sort index too (every score column gets one), beside the real table's.
    assert {i.name for i in table.indexes} == {i.name for i in Score.__table__.indexes} | {
        "ix_scores_sort_harm_prompt_length"
    }


def test_its_column_is_in_the_api_schema_and_the_openapi_enum(
    registered: tuple[ColumnSpec, ...],
) -> None:
    scores_model = pair_scores_model(registered)
    enum = score_column_enum(registered)
    assert list(scores_model.model_fields)[-1] == "harm_prompt_length"
    assert scores_model.model_validate({"split": "train", "harm_prompt_length": 3}).model_dump()[
        "harm_prompt_length"
    ] == pytest.approx(3.0)

    page = create_model("Page", column=(enum, ...), scores=(scores_model, ...))
    app = FastAPI()

    @app.get("/page", response_model=page)
    def read_page() -> Any:  # only its schema is read; the body answers a valid page anyway
        return {"column": "harm_prompt_length", "scores": {"split": "train"}}

    schemas = app.openapi()["components"]["schemas"]
    assert "harm_prompt_length" in schemas["PairScores"]["properties"]
    column_enum = schemas["ScoreColumn"]
    k = column_enum["enum"].index("harm_prompt_length")
    assert column_enum["enum"] == [c.name for c in registered]
    assert column_enum["x-enum-labels"][k] == "prompt length"
    assert column_enum["x-enum-units"][k] == "characters"
    assert column_enum["x-enum-orientations"][k] == "higher_harmful"
    assert column_enum["x-enum-ranked"][k] is True and column_enum["x-enum-shown"][k] is True

    # The UI's lists (frontend/src/api/scoreColumns.ts) are read from exactly these keys.
    source = (ROOT / "frontend/src/api/scoreColumns.ts").read_text()
    keys = set(re.findall(r'spec\["(x-enum-[a-z]+)"\]', source))
    assert keys and keys <= set(column_enum)


def test_both_engines_dispatch_to_its_computations(registered: tuple[ColumnSpec, ...]) -> None:
    from worker.influence.audit import run_audit

    train, val, _ = noisy_split(n_train=24, n_val=8, flips=(3,))
    config = tiny_config(
        mode="head",
        methods=["loss", "prompt_length"],
        default_method=cast(MethodName, "prompt_length"),
    )
    result = run_audit(train, val, config)
    margin = result.scores["margin"]
    np.testing.assert_allclose(result.scores["harm_prompt_length"], -margin)
    np.testing.assert_allclose(result.scores["harm"], -margin)
    assert result.metrics.model_dump()["default_method"] == "prompt_length"

    # The sharded engine: its per-shard scorer (with a solution), then its global finaliser.
    solution = cast(Any, object())
    shard = score_shard(margin, np.zeros((len(margin), 2)), solution, ["prompt_length"], 0.0)
    np.testing.assert_allclose(shard["harm_prompt_length"], -margin)
    out, metrics = finalise_global({"margin": margin}, ["prompt_length"], "prompt_length")
    assert metrics == {"toy": 1, "default_method": "prompt_length"}
    np.testing.assert_array_equal(out["harm"], out["harm_prompt_length"])


def test_the_fixture_does_not_leak() -> None:
    """Runs after the tests that register the toy method."""
    assert "prompt_length" not in methods.METHODS
    assert "harm_prompt_length" not in SCORE_COLUMNS
    assert "harm_prompt_length" not in Score.__table__.columns
