"""The filter model from query parameters: what `GET /datasets/{id}/pairs` and the export take,
so a view's URL carries the same filter the bulk actions get as JSON."""

from __future__ import annotations

import json
import math
from typing import Annotated, Literal

from fastapi import Depends, Query
from pydantic import ValidationError

from backend.errors import BadInput
from backend.schemas import DB_ID_MAX, LengthRange, PairFilter, ReviewState, ScoreRange

LENGTH_FIELDS = ("prompt", "chosen", "rejected", "total")


def _unprocessable(parameter: str, value: str, why: str) -> BadInput:
    return BadInput(f"query parameter {parameter}={value!r}: {why}")


def _bound(parameter: str, raw: str, text: str, integer: bool = False) -> float | int | None:
    if text.strip() == "":
        return None
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise _unprocessable(parameter, raw, f"{text!r} is not {kind}") from None
    if not math.isfinite(value):
        raise _unprocessable(parameter, raw, "bounds are finite numbers")
    return value


def _ranges(parameter: str, values: list[str]) -> list[tuple[str, float | None, float | None]]:
    out = []
    for raw in values:
        parts = raw.split(":")
        if len(parts) != 3 or not parts[0]:
            raise _unprocessable(parameter, raw, "write it as name:min:max (a bound may be empty)")
        integer = parameter == "length"
        if integer and parts[0] not in LENGTH_FIELDS:
            raise _unprocessable(
                parameter, raw, f"{parts[0]!r} is not one of {', '.join(LENGTH_FIELDS)}"
            )
        out.append(
            (
                parts[0],
                _bound(parameter, raw, parts[1], integer),
                _bound(parameter, raw, parts[2], integer),
            )
        )
    return out


def _meta(values: list[str]) -> dict[str, str | bool | int | float]:
    out: dict[str, str | bool | int | float] = {}
    for raw in values:
        key, sep, text = raw.partition("=")
        if not sep or not key:
            raise _unprocessable("meta", raw, "write it as key=value")
        value: str | bool | int | float = text
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, bool | int | float) and not (
            isinstance(parsed, float) and not math.isfinite(parsed)
        ):
            value = parsed  # key=3, key=true, key=2.5; key="3" for the string
        elif isinstance(parsed, str):
            value = parsed
        out[key] = value
    return out


def pair_filter(
    job_id: Annotated[int | None, Query(ge=1, le=DB_ID_MAX)] = None,
    split: Annotated[Literal["train", "val", "all"], Query()] = "train",
    q: Annotated[
        str | None,
        Query(max_length=500, description="Words that must all occur in the texts."),
    ] = None,
    state: Annotated[
        list[ReviewState] | None, Query(description="Review states (repeat for several).")
    ] = None,
    flagged: bool | None = None,
    score: Annotated[
        list[str],
        Query(description="column:min:max on the job's scores, e.g. harm:0.5: (repeatable)"),
    ] = [],  # noqa: B006 - FastAPI copies defaults
    percentile: Annotated[
        list[str], Query(description="column:min:max in percent, e.g. harm:90:100")
    ] = [],  # noqa: B006
    length: Annotated[
        list[str],
        Query(description="prompt|chosen|rejected|total:min:max in characters, e.g. chosen::200"),
    ] = [],  # noqa: B006
    meta: Annotated[
        list[str], Query(description="key=value metadata equality (JSON numbers/booleans)")
    ] = [],  # noqa: B006
    tag: Annotated[
        list[str],
        Query(description="An exact-check tag, e.g. duplicate (repeatable: any of them)"),
    ] = [],  # noqa: B006
    not_tag: Annotated[
        list[str],
        Query(description="Leave out pairs with this tag, e.g. ambiguous (repeatable: any)"),
    ] = [],  # noqa: B006
) -> PairFilter:
    try:
        return PairFilter(
            job_id=job_id,
            split=split,
            q=q,
            states=state or None,
            flagged=flagged,
            scores=[ScoreRange(column=c, min=a, max=b) for c, a, b in _ranges("score", score)],
            percentiles=[
                ScoreRange(column=c, min=a, max=b) for c, a, b in _ranges("percentile", percentile)
            ],
            lengths=[
                LengthRange(field=c, min=a, max=b)  # type: ignore[arg-type]
                for c, a, b in _ranges("length", length)
            ],
            metadata=_meta(meta),
            tags=tag,
            exclude_tags=not_tag,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadInput(f"filter {where}: {first['msg']}") from None


FilterDep = Annotated[PairFilter, Depends(pair_filter)]
