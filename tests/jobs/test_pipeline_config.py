"""The recipe a verify job retrains with, derived from its audit."""

from __future__ import annotations

from worker.influence.config import EngineConfig
from worker.influence.results import AuditMetrics
from worker.jobs.verify import verify_config


def chose(**choices: object) -> AuditMetrics:
    """An audit's metrics holding these head choices."""
    return AuditMetrics.model_validate({"kind": "audit", **choices})


def test_head_audit_passes_its_chosen_l2_to_verify() -> None:
    audit = EngineConfig(model="tiny", mode="head")
    assert verify_config(audit, chose(head_l2=0.001)).weight_decay == 0.001
    # The rest of the recipe is the audit's.
    assert verify_config(audit, chose(head_l2=0.001)).model == "tiny"


def test_explicit_l2_and_lora_audits_are_left_alone() -> None:
    explicit = EngineConfig(model="tiny", mode="head", weight_decay=0.3)
    assert verify_config(explicit, chose(head_l2=0.001)).weight_decay == 0.3
    lora = EngineConfig(model="tiny")
    assert verify_config(lora, chose(head_l2=0.001)) == lora
    # An audit from before head_l2 was recorded keeps the old behaviour.
    assert verify_config(EngineConfig(model="tiny", mode="head"), chose()).weight_decay == 0


def test_head_audit_passes_its_chosen_view_and_length_weight() -> None:
    audit = EngineConfig(model="tiny", mode="head")
    chosen = chose(head_l2=0.01, head_features="mean+length", head_length_weight=30.0)
    config = verify_config(audit, chosen)
    assert (config.head_features, config.head_length_weight, config.weight_decay) == (
        "mean+length",
        30.0,
        0.01,
    )
    explicit = EngineConfig(model="tiny", mode="head", head_features="pooler")
    assert verify_config(explicit, chosen).head_features == "pooler"
