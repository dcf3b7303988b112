"""EngineConfig validation and the `score` command line."""

from __future__ import annotations

import dataclasses
import gzip
import json
import sys
import typing
from pathlib import Path

import pytest

from worker.influence.config import EngineConfig

ROOT = Path(__file__).resolve().parents[2]
HH_TEST = ROOT.parent / "shared" / "data" / "hh-rlhf" / "helpful-base-test.jsonl.gz"


def test_defaults_are_valid_and_documented() -> None:
    EngineConfig().validate()
    hints = typing.get_type_hints(EngineConfig)
    simple = {str, int, float, bool, list[str], str | None, int | None, float | None}
    simple |= {list[str] | None}
    for f in dataclasses.fields(EngineConfig):
        assert f.metadata.get("help"), f.name
        hint = hints[f.name]
        if typing.get_origin(hint) is list:
            (hint,) = typing.get_args(hint)
        if typing.get_origin(hint) is typing.Literal:
            # A choice: the API shows it as an enum; its default is one of the choices.
            choices = typing.get_args(hint)
            assert all(isinstance(c, str) for c in choices), f.name
            default = f.default_factory() if f.default is dataclasses.MISSING else [f.default]
            assert set(default) <= set(choices), f.name
            continue
        assert hints[f.name] in simple, (f.name, hints[f.name])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"methods": ["loss", "magic"]}, "unknown method.*'magic'.*known methods: loss"),
        ({"methods": []}, "methods is empty"),
        ({"damping": 0.0}, "damping must be > 0"),
        ({"damping": -1.0}, "damping must be > 0"),
        ({"influence_damping": 0.0}, "influence_damping must be > 0.*leave it unset"),
        ({"influence_damping": 1e7}, "influence_damping must be between"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": -2}, "batch_size must be a positive integer"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0"),
        ({"default_method": "influence", "methods": ["loss"]}, "default_method 'influence'"),
        ({"model": "/no/such/model"}, "looks like a local path but no such directory"),
        ({"model": "./missing"}, "looks like a local path"),
        ({"mode": "full"}, "mode must be one of lora, head"),
        ({"hessian": "exact", "projection_dim": 64}, "hessian='exact' works in the full"),
        ({"mode": "head", "methods": ["loss", "tracin"]}, "tracin needs the SGD checkpoints"),
    ],
)
def test_bad_configs_fail_with_a_clear_message(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EngineConfig(**overrides).validate()


def test_the_influence_solve_damping_follows_the_mode() -> None:
    """LoRA's influence solve is damped against σ₁; head mode keeps `damping` (its detection
    table was measured so); an explicit influence_damping wins everywhere."""
    from worker.influence.config import LORA_INFLUENCE_DAMPING

    assert EngineConfig().influence_solve_damping() == (LORA_INFLUENCE_DAMPING, "top_eigenvalue")
    for mode in ("head", "pretrained"):
        config = EngineConfig(mode=mode, damping=0.5)
        assert config.influence_solve_damping() == (0.5, "mean_diagonal")
        explicit = EngineConfig(mode=mode, influence_damping=0.2)
        assert explicit.influence_solve_damping() == (0.2, "top_eigenvalue")


def test_hub_ids_and_existing_paths_are_accepted(tmp_path: Path) -> None:
    EngineConfig(model="sentence-transformers/all-MiniLM-L6-v2").validate()
    with pytest.raises(ValueError, match="holds no config.json"):
        EngineConfig(model=str(tmp_path)).validate()
    (tmp_path / "config.json").write_text("{}")
    EngineConfig(model=str(tmp_path)).validate()


def test_hub_id_fails_at_run_time_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.influence.model import load_backbone

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="could not load model 'no-org/no-model'"):
        load_backbone(EngineConfig(model="no-org/no-model"))


def test_importing_the_package_and_config_stays_torch_free() -> None:
    import subprocess

    code = (
        "import sys, worker.influence, worker.influence.config, worker.influence.data; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_score_command_writes_one_row_per_training_pair(tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    import typer
    from typer.testing import CliRunner

    from backend.score_command import (
        main,  # noqa: F401 - the module builds the command
        score,
    )

    train, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    with gzip.open(HH_TEST, "rt", encoding="utf-8") as lines:
        records = [json.loads(next(lines)) for _ in range(40)]
    train.write_text("".join(json.dumps(r) + "\n" for r in records[:30]))
    val.write_text("".join(json.dumps(r) + "\n" for r in records[30:]))
    app = typer.Typer()
    app.command("score")(score)
    app.command("noop")(lambda: None)  # a second command keeps "score" as a subcommand
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(
        app,
        [
            "score",
            str(train),
            "--val",
            str(val),
            "--model",
            "tiny",
            "--epochs",
            "1",
            "--methods",
            "influence,gradient_similarity",
            "--default-method",
            "influence",
            "--max-length",
            "64",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == [
        "index",
        "row",
        "harm",
        "harm_influence",
        "harm_gradient_similarity",
        "removal_effect_influence",
    ]
    assert table.column("index").to_pylist() == list(range(30))
    assert table.column("row").to_pylist() == list(range(1, 31))
    help_text = CliRunner().invoke(app, ["score", "--help"]).output
    for option in ("--damping", "--projection-dim", "--methods", "--val-fraction", "--on-bad-rows"):
        assert option in help_text

    # A bad row stops the command naming it, unless --on-bad-rows skip scores the rest.
    lines = train.read_text().splitlines()
    lines[4] = json.dumps({"chosen": "x"})  # no rejected (an empty one is accepted and tagged)
    train.write_text("\n".join(lines) + "\n")
    common = ["score", str(train), "--val", str(val), "--model", "tiny", "--epochs", "1"]
    common += ["--methods", "loss", "--default-method", "loss", "--out", str(out)]
    refused = CliRunner().invoke(app, common)
    assert refused.exit_code != 0 and "row 5" in refused.output
    skipped = CliRunner().invoke(app, [*common, "--on-bad-rows", "skip"])
    assert skipped.exit_code == 0, skipped.output
    assert "skipped" in skipped.output and "row 5" in skipped.output
    rows = pq.read_table(out).column("row").to_pylist()
    assert len(rows) == 29 and 5 not in rows and rows[4] == 6

    # --columns names a file's own fields; a bad mapping stops with what is wrong.
    # (the mapping reads --val too)
    for path, part in ((train, records[:30]), (val, records[30:])):
        renamed = [{"good": r["chosen"], "bad": r["rejected"]} for r in part]
        path.write_text("".join(json.dumps(r) + "\n" for r in renamed))
    mapped = CliRunner().invoke(
        app, [*common, "--columns", '{"chosen": "good", "rejected": "bad"}']
    )
    assert mapped.exit_code == 0, mapped.output
    assert pq.read_table(out).num_rows == 30
    wrong = CliRunner().invoke(app, [*common, "--columns", '{"answer": "good"}'])
    assert wrong.exit_code != 0 and "--columns" in wrong.output


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"target_modules": ["nope"]}, "not modules of a bert model"),
        ({"model": "tiny", "target_modules": ["q_proj", "v_proj"]}, "not modules of a bert"),
        ({"model": "smollm2-135m", "target_modules": ["query"]}, "not modules of a llama"),
        ({"max_length": 1024}, "exceeds the 512 positions"),
    ],
)
def test_the_models_own_limits_are_checked_at_creation(options, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        EngineConfig(**options).validate()


def test_a_local_model_directory_is_checked_against_its_config(tmp_path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "qwen2", "max_position_embeddings": 4096})
    )
    EngineConfig(
        model=str(tmp_path), target_modules=["q_proj", "v_proj"], max_length=4096
    ).validate()
    with pytest.raises(ValueError, match="exceeds the 4096 positions"):
        EngineConfig(model=str(tmp_path), max_length=8192).validate()
    with pytest.raises(ValueError, match="not modules of a qwen2"):
        EngineConfig(model=str(tmp_path), target_modules=["query"]).validate()
    # An architecture we do not know is not second-guessed.
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    EngineConfig(model=str(tmp_path), target_modules=["in_proj"]).validate()
