"""A job's stored `config` read back as its request model: the one place it is decoded."""

from __future__ import annotations

from typing import Any

from backend.schemas import AuditCreate, VerifyCreate

AuditOptions = AuditCreate
"""An audit's options (the API's request model), for code that must not import the API's schemas."""
VerifyOptions = VerifyCreate


def audit_options(config: dict[str, Any]) -> AuditOptions:
    """The options an audit job was created with (`jobs.config`, as the API wrote it)."""
    return AuditCreate.model_validate(config)


def verify_options(config: dict[str, Any]) -> VerifyOptions:
    """The options a verify job was created with."""
    return VerifyCreate.model_validate(config)


def validation_source(options: AuditOptions, seed: int) -> str:
    """Where an audit's validation pairs came from, in words (job metrics)."""
    if options.val_dataset_id is not None:
        return f"dataset {options.val_dataset_id}"
    return f"seeded {options.val_fraction:.0%} split (seed {seed})"
