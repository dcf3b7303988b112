"""Bring your own reward model: an audit saves its reward model, another scores with it as it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.factories import noisy_split, tiny_config
from worker.influence.audit import run_audit
from worker.influence.config import EngineConfig


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory):
    train, val, flips = noisy_split()
    target = tmp_path_factory.mktemp("models") / "job-1"
    first = run_audit(train, val, tiny_config(methods=["loss"]), save_model_to=target)
    return first, target, train, val, flips


def test_an_audit_saves_a_loadable_reward_model(saved) -> None:
    first, target, _, _, _ = saved
    assert first.metrics.model_dump()["model_dir"] == str(target.resolve())
    assert (target / "config.json").exists() and (target / "tokenizer.json").exists()
    assert not Path(str(target) + ".partial").exists()


def test_pretrained_mode_scores_with_the_saved_model_as_it_is(saved) -> None:
    first, target, train, val, flips = saved
    config = tiny_config(
        model=str(target),
        mode="pretrained",
        methods=["loss", "influence", "self_influence", "length", "oof_loss"],
        default_method="loss",
        crossfit_repeats=1,
    )
    second = run_audit(train, val, config)
    # No training: the margins are the saved model's own, i.e. the first audit's.
    np.testing.assert_allclose(second.scores["margin"], first.scores["margin"], atol=1e-5)
    assert second.metrics.model_dump()["val_accuracy"] == first.metrics.model_dump()["val_accuracy"]
    assert second.metrics.model_dump()["history"][0]["pretrained"] is True
    for column in ("harm_influence", "harm_self_influence", "harm_oof_loss", "harm_length"):
        assert np.all(np.isfinite(second.scores[column])), column
    # The saved model learned the task, so the flips have the highest loss under it.
    order = np.argsort(-second.scores["harm_loss"])
    assert set(flips) <= set(order[:10].tolist())


def test_pretrained_mode_refuses_what_it_cannot_do(saved) -> None:
    _, target, train, val, _ = saved
    with pytest.raises(ValueError, match="save_model saves a trained LoRA"):
        EngineConfig(model=str(target), mode="pretrained", save_model=True).validate()
    with pytest.raises(ValueError, match="tracin needs"):
        EngineConfig(model=str(target), mode="pretrained", methods=["loss", "tracin"]).validate()
