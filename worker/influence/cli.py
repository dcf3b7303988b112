"""`prefaudit score`: audit a preference file from the command line, without the web app.

Options are generated from `EngineConfig`'s fields, so --help shows every engine option with its
help text and default.
"""

import dataclasses
import inspect
import json
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from worker.influence.config import EngineConfig

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
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from worker.influence.audit import harm_column, run_audit
    from worker.influence.data import Pair, split_validation
    from worker.influence.io import read_pairs

    config = _config_from_options(options)
    try:
        config.validate()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    from worker.influence.io import PairFormatError

    if on_bad_rows not in ("reject", "skip"):
        raise typer.BadParameter(f"--on-bad-rows must be reject or skip (got {on_bad_rows!r})")
    from worker.influence.formats import parse_mapping

    try:
        mapping = parse_mapping(mapping_json)
    except PairFormatError as exc:
        raise typer.BadParameter(f"--columns: {exc.message}") from None
    skipped: list[PairFormatError] = []

    def read(path: Path) -> list:
        try:
            return read_pairs(
                path, on_error=skipped.append if on_bad_rows == "skip" else None, mapping=mapping
            )
        except PairFormatError as exc:
            raise typer.BadParameter(
                f"{path}: {exc} (--on-bad-rows skip scores the rest)"
            ) from None

    parsed = read(train)
    for error in skipped:
        typer.echo(f"skipped {train}: {error}", err=True)
    file_rows = [p.row for p in parsed]
    rows = [Pair(p.prompt, p.chosen, p.rejected) for p in parsed]
    if val is not None:
        train_pairs, train_index = rows, list(range(len(rows)))
        before = len(skipped)
        val_pairs = [Pair(p.prompt, p.chosen, p.rejected) for p in read(val)]
        for error in skipped[before:]:
            typer.echo(f"skipped {val}: {error}", err=True)
    else:
        train_index, val_index = split_validation(len(rows), val_fraction, config.seed)
        train_pairs = [rows[i] for i in train_index]
        val_pairs = [rows[i] for i in val_index]
    typer.echo(f"{len(train_pairs)} training pairs, {len(val_pairs)} validation pairs", err=True)

    bars: dict[str, tqdm] = {}

    def progress(stage: str, fraction: float, message: str | None) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(total=100, desc=f"{stage:>19}", unit="%", leave=True)
        bar.n = round(100 * fraction)
        if message:
            bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    try:
        result = run_audit(train_pairs, val_pairs, config, progress=progress)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    finally:
        for bar in bars.values():
            bar.close()
    columns: dict[str, Any] = {
        "index": np.asarray(train_index, dtype=np.int64),
        "row": np.asarray([file_rows[i] for i in train_index], dtype=np.int64),
        "harm": result.scores["harm"],
    }
    for method in config.methods:
        columns[harm_column(method)] = result.scores[harm_column(method)]
    for method in config.methods:
        if f"removal_effect_{method}" in result.scores:
            columns[f"removal_effect_{method}"] = result.scores[f"removal_effect_{method}"]
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), out)
    if metrics_out is not None:
        metrics_out.write_text(json.dumps(result.metrics, indent=2, default=str) + "\n")
    for warning in result.metrics.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    acc = result.metrics["val_accuracy"]
    typer.echo(f"validation accuracy {acc:.3f}; wrote {len(train_pairs)} rows to {out}", err=True)


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
    app = typer.Typer(add_completion=False)
    app.command("score")(score)
    app(prog_name="prefaudit score")
