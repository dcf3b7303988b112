"""`prefaudit score`: audit a preference file from the command line, without the web app.

Files are read through `backend.ingest`, then scored by the engine. Options are generated from
`EngineConfig`'s fields, so --help shows every engine option with its help text and default.
Runs as `prefaudit score` or `python -m backend.score_command`.
"""

# No `from __future__ import annotations`: Typer reads `score`'s annotations as real objects.

import dataclasses
import inspect
import json
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from backend.ingest.errors import PairFormatError
from backend.ingest.mapping import parse_mapping
from backend.ingest.parsing import ParsedPair
from backend.ingest.reading import read_pairs
from worker.influence.config import EngineConfig
from worker.influence.data import Pair, split_validation
from worker.influence.methods import harm_column
from worker.influence.results import stored_json

LIST_SEPARATOR = ","


def _engine_parameters() -> list[inspect.Parameter]:
    """One keyword Typer option per EngineConfig field; lists become comma-separated strings."""
    hints = typing.get_type_hints(EngineConfig)
    params = []
    for f in dataclasses.fields(EngineConfig):
        default: Any = (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        )
        hint = hints[f.name]
        help_text = f.metadata.get("help", "")
        if typing.get_origin(hint) in (list, typing.Union, type(int | None)) and any(
            typing.get_origin(a) is list or a is list for a in (hint, *typing.get_args(hint))
        ):
            hint = str | None
            default = LIST_SEPARATOR.join(default) if default else None
            help_text += " Comma-separated."
        option = typer.Option(help=help_text, show_default=True)
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[hint, option],
            )
        )
    return params


def _config_from_options(options: dict[str, Any]) -> EngineConfig:
    hints = typing.get_type_hints(EngineConfig)
    values = {}
    for f in dataclasses.fields(EngineConfig):
        value = options[f.name]
        if isinstance(value, str) and "list" in str(hints[f.name]):
            value = [v.strip() for v in value.split(LIST_SEPARATOR) if v.strip()]
        values[f.name] = value
    return EngineConfig(**values)


@dataclasses.dataclass
class _Reader:
    """Reads the command's files, stopping at a bad row or (skip) listing it on stderr."""

    skip: bool
    mapping: dict[str, str]

    def read(self, path: Path) -> list[ParsedPair]:
        skipped: list[PairFormatError] = []
        try:
            pairs = read_pairs(
                path, on_error=skipped.append if self.skip else None, mapping=self.mapping
            )
        except PairFormatError as exc:
            raise typer.BadParameter(
                f"{path}: {exc} (--on-bad-rows skip scores the rest)"
            ) from None
        for error in skipped:
            typer.echo(f"skipped {path}: {error}", err=True)
        return pairs


def _reader(on_bad_rows: str, mapping_json: str) -> _Reader:
    """The reader the options ask for, or BadParameter saying what is wrong with them."""
    if on_bad_rows not in ("reject", "skip"):
        raise typer.BadParameter(f"--on-bad-rows must be reject or skip (got {on_bad_rows!r})")
    try:
        mapping = parse_mapping(mapping_json)
    except PairFormatError as exc:
        raise typer.BadParameter(f"--columns: {exc.message}") from None
    return _Reader(skip=on_bad_rows == "skip", mapping=mapping)


@dataclasses.dataclass
class _Split:
    """The training and validation pairs, with each training pair's index and file row."""

    train: list[Pair]
    val: list[Pair]
    train_index: list[int]
    file_rows: list[int]


def _split(
    reader: _Reader, train: Path, val: Path | None, val_fraction: float, seed: int
) -> _Split:
    """TRAIN and --val as engine pairs; without --val, a seeded split of TRAIN."""
    parsed = reader.read(train)
    file_rows = [p.row for p in parsed]
    rows = [Pair(p.prompt, p.chosen, p.rejected) for p in parsed]
    if val is not None:
        val_pairs = [Pair(p.prompt, p.chosen, p.rejected) for p in reader.read(val)]
        return _Split(rows, val_pairs, list(range(len(rows))), file_rows)
    train_index, val_index = split_validation(len(rows), val_fraction, seed)
    return _Split(
        [rows[i] for i in train_index], [rows[i] for i in val_index], train_index, file_rows
    )


class _Bars:
    """One tqdm bar per engine stage, the previous one closed when the next starts."""

    def __init__(self) -> None:
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, fraction: float, message: str | None) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            self.close()
            bar = self.bars[stage] = tqdm(total=100, desc=f"{stage:>19}", unit="%", leave=True)
        bar.n = round(100 * fraction)
        if message:
            bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _score(
    train: Path,
    val: Path | None,
    out: Path,
    val_fraction: float,
    metrics_out: Path | None,
    on_bad_rows: str = "reject",
    mapping_json: str = "",
    **options: Any,
) -> None:
    # The engine's audit loads torch: heavy, imported only when a file is scored.
    from worker.influence.audit import run_audit

    config = _config_from_options(options)
    try:
        config.validate()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    split = _split(_reader(on_bad_rows, mapping_json), train, val, val_fraction, config.seed)
    typer.echo(f"{len(split.train)} training pairs, {len(split.val)} validation pairs", err=True)
    bars = _Bars()
    try:
        result = run_audit(split.train, split.val, config, progress=bars)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    finally:
        bars.close()
    _write_scores(out, split, result.scores, config.methods)
    if metrics_out is not None:
        metrics_out.write_text(json.dumps(stored_json(result.metrics), indent=2) + "\n")
    for warning in result.metrics.warnings or []:
        typer.echo(f"warning: {warning}", err=True)
    acc = result.metrics.val_accuracy
    typer.echo(f"validation accuracy {acc:.3f}; wrote {len(split.train)} rows to {out}", err=True)


def _write_scores(out: Path, split: _Split, scores: dict[str, Any], methods: Sequence[str]) -> None:
    """One Parquet row per training pair in input order: its index, file row and scores."""
    # numpy and pyarrow: heavy, imported only when scores are written.
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {
        "index": np.asarray(split.train_index, dtype=np.int64),
        "row": np.asarray([split.file_rows[i] for i in split.train_index], dtype=np.int64),
        "harm": scores["harm"],
    }
    for method in methods:
        columns[harm_column(method)] = scores[harm_column(method)]
    for method in methods:
        if f"removal_effect_{method}" in scores:
            columns[f"removal_effect_{method}"] = scores[f"removal_effect_{method}"]
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), out)


def score(
    train: Annotated[
        Path,
        typer.Argument(
            help="Training pairs: .jsonl[.gz], .json, .csv, .tsv, .parquet, .arrow or a "
            "Hugging Face save_to_disk folder; prompt/chosen/rejected, HH transcripts, chat "
            "messages, SHP or UltraFeedback records (see --columns).",
            exists=True,
        ),
    ],
    *,
    val: Annotated[
        Path | None,
        typer.Option(
            help="Validation pairs (same formats); omitted: a seeded --val-fraction split "
            "of TRAIN.",
            exists=True,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Parquet file to write: one row per training pair in input order.")
    ] = Path("scores.parquet"),
    val_fraction: Annotated[
        float,
        typer.Option(help="Fraction of TRAIN split off for validation when --val is omitted."),
    ] = 0.1,
    metrics_out: Annotated[
        Path | None,
        typer.Option(
            help="Also write the job's metrics (training curve, λ, CG residual, timings) as JSON."
        ),
    ] = None,
    on_bad_rows: Annotated[
        str,
        typer.Option(
            help="reject: a bad row stops with its row and column. skip: score the good rows and "
            "list the skipped ones on stderr (the output's `row` column is each pair's row in "
            "the file)."
        ),
    ] = "reject",
    columns: Annotated[
        str,
        typer.Option(
            help="JSON naming the columns that hold the pair (in TRAIN and --val), e.g. "
            '\'{"prompt": "question", "chosen": "good", "rejected": "bad"}\' (default: the '
            "columns as named)."
        ),
    ] = "",
    **options: Any,
) -> None:
    """Score every training pair; higher harm = more harmful (see SCIENCE.md)."""
    _score(train, val, out, val_fraction, metrics_out, on_bad_rows, columns, **options)


_fixed = [p for p in inspect.signature(score).parameters.values() if p.kind != p.VAR_KEYWORD]
score.__signature__ = inspect.Signature(_fixed + _engine_parameters())  # type: ignore[attr-defined]
score.__annotations__ = {
    **{p.name: p.annotation for p in score.__signature__.parameters.values()},  # type: ignore[attr-defined]
    "return": None,
}


def main() -> None:
    """Run `score` as a command of its own."""
    app = typer.Typer(add_completion=False)
    app.command("score")(score)
    app(prog_name="prefaudit score")


if __name__ == "__main__":
    main()
