"""The detection benchmark: its cells (splits, flips, real disagreement) and its --quick run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.detection import main
from bench.lib.detection_data import SHARED_DATA, load_source, make_cell, vicuna_truth

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / "hh-rlhf").exists(), reason="needs ../shared/data (CI has it)"
)


def test_planted_cells_are_fresh_disjoint_and_flip_the_asked_share() -> None:
    source = load_source("helpful-base")
    cell = make_cell(source, 0.2, seed=0)
    assert (len(cell.train_index), len(cell.val_index)) == (1000, 300)
    assert not set(cell.train_index) & set(cell.val_index)
    assert cell.mislabelled.sum() == 200 and np.array_equal(cell.mislabelled, cell.train_swap)
    assert not cell.val_swap.any()  # validation keeps its true labels
    # Never hh-flip10's split (ANCHORS.md: default_rng(0).permutation(2354)[:1000]).
    anchors = np.random.default_rng(0).permutation(2354)[:1000]
    assert not np.array_equal(np.sort(cell.train_index), np.sort(anchors))
    other = make_cell(source, 0.2, seed=1)
    assert not np.array_equal(cell.train_index, other.train_index)
    flipped = cell.train_pairs(source)[int(np.flatnonzero(cell.train_swap)[0])]
    original = source.pairs[int(cell.train_index[np.flatnonzero(cell.train_swap)[0]])]
    assert (flipped.chosen, flipped.rejected) == (original.rejected, original.chosen)


def test_vicuna_cells_split_by_question_and_label_by_one_rater() -> None:
    source = load_source("vicuna80")
    assert source.groups is not None and source.votes is not None
    cell = make_cell(source, None, seed=0)
    train_q = set(source.groups[cell.train_index])
    val_q = set(source.groups[cell.val_index])
    assert not train_q & val_q and len(val_q) == 16
    truth = vicuna_truth(source.votes)
    assert np.all(truth[cell.train_index] > 0) and np.all(truth[cell.val_index] > 0)
    # A pair is mislabelled exactly when its presented order disagrees with the majority.
    presented_b = cell.train_swap
    np.testing.assert_array_equal(cell.mislabelled, presented_b != (truth[cell.train_index] == 2))
    assert 0.05 < cell.mislabelled.mean() < 0.35  # real disagreement, not planted
    np.testing.assert_array_equal(cell.val_swap, truth[cell.val_index] == 2)


def test_vicuna_truth_needs_a_strict_majority() -> None:
    votes = np.array([[1, 1, 2], [2, 2, 3], [1, 2, 3], [1, 3, 3], [2, 2, 2]])
    assert vicuna_truth(votes).tolist() == [1, 2, 0, 0, 2]


def test_quick_run_writes_every_dataset_method_and_baseline(tmp_path: Path) -> None:
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "detection.json").read_text())
    groups = result["summary"]["groups"]
    assert {key.split(" ")[0] for key in groups} == {
        "helpful-base",
        "harmless-base",
        "helpful-rejection-sampled",
        "llmbar",
        "vicuna80",
        "pandalm",
    }
    for entry in groups.values():
        assert {"random", "length", "loss", "oof_loss", "ensemble", "influence"} <= set(
            entry["methods"]
        )
        assert "default (per job)" in entry["methods"]
        for figures in entry["methods"].values():
            assert 0 <= figures["auroc"]["mean"] <= 1
            assert figures["auroc"]["n"] == 2
        assert "auroc_minus_length" in entry["methods"]["oof_loss"]
    for cell in result["cells"]:
        assert cell["command"].startswith("python -m bench.detection")
        assert {"trust", "estimate", "ceiling_clean_model_loss", "seed"} <= set(cell)
        choice = cell["default_choice"]
        assert choice["method"] in cell["methods"] and choice["reason"]
        assert choice["true_auroc"] == cell["methods"]["default (per job)"]["auroc"]
        if cell["canaries"]:  # 200 training pairs of a planted set: 20 canaries
            assert choice["canaries"] == cell["canaries"] == 20
            assert choice["expected_error"] == choice["expected_auroc"] - choice["true_auroc"]
    assert result["summary"]["default"]["rows"]
    selection = result["summary"]["selection"]["L64"]
    assert selection["default"] in selection["ranking"]
    text = (tmp_path / "detection.md").read_text()
    assert text.startswith("# Detection benchmark") and "## The per-job default" in text
    assert (tmp_path / "detection_auroc.png").stat().st_size > 1000
    # Resumable: a second run reuses every cell.
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cells").iterdir()}
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cells").iterdir()}
    assert before == after


def test_pandalm_cells_split_by_instruction_and_label_by_one_annotator() -> None:
    source = load_source("pandalm")
    assert source.groups is not None and source.votes is not None and len(source.pairs) == 999
    assert all(isinstance(p.chosen, str) and isinstance(p.rejected, str) for p in source.pairs)
    cell = make_cell(source, None, seed=0)
    assert not set(source.groups[cell.train_index]) & set(source.groups[cell.val_index])
    truth = vicuna_truth(source.votes)
    np.testing.assert_array_equal(
        cell.mislabelled, cell.train_swap != (truth[cell.train_index] == 2)
    )
    assert 0 < cell.mislabelled.mean() < 0.1  # the annotators agree on most items


def test_capped_cells_are_seeded_subsets_of_the_split() -> None:
    source = load_source("pandalm")
    cell = make_cell(source, None, seed=5)
    small = cell.capped(100, 40)
    assert (len(small.train_index), len(small.val_index)) == (100, 40)
    assert set(small.train_index) <= set(cell.train_index)
    assert set(small.val_index) <= set(cell.val_index)
    # Each kept pair keeps its presentation and its truth.
    where = {int(i): k for k, i in enumerate(cell.train_index)}
    rows = [where[int(i)] for i in small.train_index]
    np.testing.assert_array_equal(small.mislabelled, cell.mislabelled[rows])
    np.testing.assert_array_equal(small.train_swap, cell.train_swap[rows])
    assert np.array_equal(small.train_index, cell.capped(100, 40).train_index)  # seeded
    assert cell.capped(10**6, 10**6).train_index.tolist() == cell.train_index.tolist()


def test_rechoose_applies_the_current_rule_to_a_stored_cell() -> None:
    """A cell run under the older rule (no canary confirmation): harmless-base seed 2's figures.
    The loss's canary interval reaches below chance, so the current rule uses length."""
    from bench.lib.detection_default import DEFAULT_ROW, rechoose

    def ranking(auroc: float) -> dict:
        return {"auroc": auroc, "auroc_se": 0.07, "top10_hits": 4, "top10_size": 28}

    cell = {
        "canaries": 20,
        "trust": {"is_evidence": True, "val_accuracy": 0.63, "val_accuracy_ci95": [0.53, 0.72]},
        "methods": {
            "loss": {"auroc": 0.507},
            "length": {"auroc": 0.591},
            DEFAULT_ROW: {"auroc": 0.507},
        },
        "default_choice": {
            "method": "loss",
            "rule": "learned",
            "rankings": {"loss": ranking(0.62), "length": ranking(0.60)},
        },
    }
    assert rechoose(cell) is True
    choice = cell["default_choice"]
    assert (choice["method"], choice["rule"]) == ("length", "model_free")
    assert choice["as_run"] == {"method": "loss", "rule": "learned"}
    assert cell["methods"][DEFAULT_ROW]["auroc"] == 0.591
    assert choice["expected_error"] == pytest.approx(0.60 - 0.591)
    assert rechoose(cell) is True and cell["default_choice"]["as_run"]["method"] == "loss"


def test_gpu_weights_are_fp16_packed_and_load_back(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from bench.gpu.lora_cells import PACKED, convert_fp16, unpack
    from worker.influence.model import minilm_dir

    size = convert_fp16(minilm_dir(), tmp_path / "packed")
    assert size < 44 * 2**20  # the carried tree must stay under 64 MiB
    assert (tmp_path / "packed" / f"model.safetensors{PACKED}").exists()
    restored = unpack(tmp_path / "packed", tmp_path / "restored")
    half = load_file(restored / "model.safetensors")
    full = load_file(minilm_dir() / "model.safetensors")
    assert set(half) == set(full)
    for name, tensor in full.items():
        if tensor.is_floating_point():
            assert half[name].dtype == torch.float16
            torch.testing.assert_close(half[name].float(), tensor, rtol=1e-3, atol=1e-4)
    assert (restored / "tokenizer.json").exists() and (restored / "config.json").exists()


@pytest.mark.slow
def test_gpu_script_dry_run_runs_both_steps_on_the_cpu(tmp_path: Path) -> None:
    """bench/gpu/run_lora_cells.sh run --dry-run: the GPU run's steps, tiny, on this CPU."""
    import subprocess

    from bench.lib.paths import REPO

    done = subprocess.run(
        [
            str(REPO / "bench" / "gpu" / "run_lora_cells.sh"),
            "run",
            "--dry-run",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["dry_run"] is True and report["summary_returncode"] == 0
    assert [s["name"] for s in report["steps"]] == ["detection-lora", "targeted-lora"]
    assert all(s["returncode"] == 0 for s in report["steps"]), report
    assert "--mode lora" in report["steps"][1]["command"]
    summary = json.loads((tmp_path / "detection-lora" / "detection.json").read_text())
    assert summary["cells"] and all(c["mode"] == "lora" for c in summary["cells"])
    assert all("default_choice" in c for c in summary["cells"])
