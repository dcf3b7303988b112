"""The targeted benchmark (bench.targeted): its biases, its splits and its --quick run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.lib.detection_data import SHARED_DATA, load_source
from bench.lib.targeted_biases import BIASES, asks_back, hedges
from bench.lib.targeted_cell import ORACLE, make_split, present
from bench.targeted import SIZES, fitted_sizes, main

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / "hh-rlhf").exists(), reason="needs ../shared/data (CI has it)"
)


def test_detectors_read_hh_phrasing() -> None:
    assert hedges("I\u2019m sorry, I\u2019m not sure what you mean.")  # curly apostrophes
    assert hedges("As an AI language model, I cannot do that.")
    assert not hedges("Sure. She\u2019s a very popular singer.")
    assert asks_back("What kind of cake do you like?")
    assert not asks_back("Preheat the oven to 180 degrees.")


def test_a_bias_with_few_candidates_plants_fewer_flips_and_keeps_its_target_sizes() -> None:
    full = SIZES["full"]
    assert fitted_sizes(full, 500) == full
    # helpful-rejection-sampled's refusal bias: 144 candidates for T 50 + test 50 + 60 training.
    fitted = fitted_sizes(full, 144)
    assert fitted["train_candidates"] == 44
    assert (fitted["target"], fitted["test"]) == (full["target"], full["test"])
    with pytest.raises(SystemExit, match="too few"):
        fitted_sizes(full, 110)


@pytest.mark.parametrize("bias", list(BIASES))
def test_split_is_disjoint_fresh_and_plants_the_asked_flips(bias: str) -> None:
    source = load_source("helpful-base")
    sizes = SIZES["full"]
    candidates = BIASES[bias].candidates(source.pairs)
    split = make_split(candidates, seed=0, sizes=sizes)
    parts = [split.target, split.test, split.val, split.train]
    assert [len(p) for p in parts] == [sizes[k] for k in ("target", "test", "val", "train")]
    assert len(set(np.concatenate(parts).tolist())) == sum(len(p) for p in parts)
    assert candidates[split.target].all() and candidates[split.test].all()
    assert split.flips.sum() == round(sizes["flip_share"] * sizes["train_candidates"]) == 30
    flipped = present(source.pairs, split.train, split.flips)
    detect = {"refusal": hedges, "question": asks_back}.get(bias)
    for pair, original, flip in zip(flipped, split.train, split.flips, strict=True):
        if flip:  # a planted flip presents the biased answer as chosen
            assert pair.chosen == source.pairs[original].rejected
            if detect is not None:
                assert detect(pair.chosen) and not detect(pair.rejected)
            else:
                assert len(pair.chosen) > len(pair.rejected)
    other = make_split(candidates, seed=1, sizes=sizes)
    assert not np.array_equal(split.train, other.train)


def test_quick_run_writes_counted_results_and_resumes(tmp_path: Path) -> None:
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "targeted-quick.json").read_text())
    quick = SIZES["quick"]
    planted = round(quick["flip_share"] * quick["train_candidates"])
    assert set(result["summary"]) == {f"head/{b}" for b in BIASES}
    assert len(result["cells"]) == 2 * len(BIASES)
    for cell in result["cells"]:
        assert cell["n_flips"] == planted and cell["n_train"] == quick["train"]
        assert {"influence (target)", "DataInf (target)", "loss", "random"} <= set(cell["methods"])
        assert all(0.0 <= m["auroc"] <= 1.0 for m in cell["methods"].values())
        arm = cell["retrain"]
        assert arm["k"] == planted and arm["methods"][ORACLE]["flips_removed"] == planted
        for m in arm["methods"].values():
            assert m["change"] == pytest.approx(m["accuracy"] - arm["full_accuracy"])
    for group in result["summary"].values():
        assert group["n_flips"]["mean"] == planted
        assert group["retrain"]["methods"]["loss"]["change_minus_loss"]["mean"] == 0.0
    text = (tmp_path / "targeted-quick.md").read_text()
    for bias in BIASES:
        assert f"## {bias} bias, head mode (2 seeds" in text
    assert (tmp_path / "targeted_auroc-quick.png").stat().st_size > 10_000
    cached = sorted((tmp_path / "cells").glob("head_*.json"))
    assert len(cached) == 2 * len(BIASES)
    stamps = [p.stat().st_mtime_ns for p in cached]
    assert main(["--quick", "--out", str(tmp_path)]) == 0  # a rerun reads the cached cells
    assert [p.stat().st_mtime_ns for p in cached] == stamps
