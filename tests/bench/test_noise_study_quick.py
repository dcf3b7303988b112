"""The noise-study benchmark in --quick mode (tiny model, a few cells) and its metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.lib.metrics import auroc, bottom_mask, detection, rank_average, top_mask
from bench.lib.noise_data import flip_mask, make_split

REPO = Path(__file__).resolve().parents[2]


def test_auroc_and_detection_by_hand() -> None:
    harm = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.3, 0.4, 0.5, 0.6, 0.0])
    flips = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    # Flip 0.9 outranks all 8 clean pairs, flip 0.1 outranks one (0.0): (8 + 1) / 16.
    assert auroc(harm, flips) == pytest.approx(9 / 16)
    assert auroc(np.ones(10), flips) == pytest.approx(0.5)  # all tied
    assert auroc(harm, np.zeros(10, dtype=bool)) is None
    found = detection(harm, flips, top_fraction=0.1)
    assert found == {
        "auroc": pytest.approx(9 / 16),
        "precision_at_k": 0.5,
        "recall_top": 0.5,
        "precision_top": 1.0,
    }
    assert top_mask(harm, 2).tolist() == [True, True] + [False] * 8
    assert np.flatnonzero(bottom_mask(harm, 2)).tolist() == [2, 9]
    np.testing.assert_allclose(rank_average(harm, -harm), np.full(10, 5.5))


def test_splits_are_disjoint_and_flips_nested() -> None:
    split = make_split(100, 40, 20, 30, seed=3)
    rows = np.concatenate([split.train, split.val, split.test])
    assert len(set(rows.tolist())) == 90
    smaller = make_split(100, 10, 20, 30, seed=3)
    np.testing.assert_array_equal(smaller.test, split.test)  # test set independent of n_train
    low, high = flip_mask(40, 0.1, 3), flip_mask(40, 0.3, 3)
    assert (low.sum(), high.sum()) == (4, 12)
    assert np.all(high[low])  # the 10% flips are among the 30% flips
    with pytest.raises(ValueError, match="exceeds"):
        make_split(100, 60, 20, 30, seed=0)


def test_quick_mode_writes_sane_results_and_resumes(tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    command = [
        sys.executable,
        "-m",
        "bench.noise_study",
        "--quick",
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--device",
        "cpu",
    ]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for name in (
        "noise_study.json",
        "noise_study.md",
        "noise_study_accuracy.png",
        "noise_study_detection.png",
        "noise_study_helpful.png",
    ):
        assert (out / name).stat().st_size > 0, name
    result = json.loads((out / "noise_study.json").read_text())
    assert result["cells_planned"] == result["cells_finished"] == 9
    assert result["command"].startswith("python -m bench.noise_study --quick")
    assert result["settings"]["model"] == "tiny" and result["settings"]["seeds"] == [0, 1]

    groups = {(g["setup"], g["recipe"], g["noise"]): g for g in result["groups"]}
    assert set(groups) == {
        ("head", "default", 0.0),
        ("head", "default", 0.2),
        ("head", "l2-val", 0.0),
        ("head", "l2-val", 0.2),
        ("lora", "anchors", 0.2),
    }
    head = groups[("head", "default", 0.2)]
    assert head["n_seeds"] == 2 and head["seeds"] == [0, 1]
    assert set(head["methods"]) == {
        "loss",
        "gradient_similarity",
        "influence",
        "datainf",
        "self_influence",
        "rank_average",
        "random",
    }
    for entry in head["methods"].values():
        assert 0 <= entry["auroc"]["mean"] <= 1
        assert 0 <= entry["recall_top"]["mean"] <= 1
        diff = entry["harmful_minus_full"]
        assert diff["n"] == 2 and diff["ci_low"] <= diff["mean"] <= diff["ci_high"]
        assert -1 <= diff["mean"] <= 1
        assert "helpful_minus_full" in entry
    assert "auroc" not in groups[("head", "default", 0.0)]["methods"]["influence"]
    # At 0% noise the oracle removes nothing, so it is the full model.
    assert groups[("head", "default", 0.0)]["oracle_minus_full"]["mean"] == 0.0

    cells = {
        (c["spec"]["setup"], c["spec"]["recipe"], c["spec"]["noise"], c["spec"]["seed"]): c
        for c in result["cells"]
    }
    cell = cells[("head", "default", 0.2, 0)]
    assert cell["n_flips"] == 16 and cell["retrain"]["k"] == 8
    assert cell["retrain"]["full"]["n_train"] == 80
    assert cell["retrain"]["oracle"]["n_train"] == 64
    assert all(r["n_train"] == 72 for r in cell["retrain"]["harmful"].values())
    for arm in [cell["retrain"]["full"], *cell["retrain"]["harmful"].values()]:
        assert 0 <= arm["accuracy"] <= 1 and arm["loss"] > 0
    tuned = cells[("head", "l2-val", 0.2, 0)]
    best = min(tuned["l2_search_val_loss"], key=tuned["l2_search_val_loss"].get)
    assert tuned["config"]["weight_decay"] == pytest.approx(float(best))
    lora = cells[("lora", "anchors", 0.2, 0)]
    assert set(lora["retrain"]["harmful"]) == {"influence", "loss", "random"}
    assert lora["retrain"]["helpful"]["influence"]["n_train"] == 36
    assert {"influence", "influence_exact", "loss"} <= set(lora["detection"])

    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "9 of 9 cells cached" in again.stdout
    rerun = json.loads((out / "noise_study.json").read_text())
    assert rerun["groups"] == result["groups"]
