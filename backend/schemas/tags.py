"""Exact-check tags as the API shows them (from `worker.influence.tags`), and the contamination
check's request and result."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.schemas.common import DbId


class TagInfo(BaseModel):
    """One exact check: the `tag=` value, its label, what it means, when it is computed
    (upload, an evaluation-set check, or an audit with the job's tokenizer) and what its number
    is, if it has one."""

    model_config = ConfigDict(from_attributes=True)
    name: str
    label: str
    description: str
    stage: Literal["upload", "audit", "evaluation"]
    value_label: str | None = None


class ContaminationCheck(BaseModel):
    """Check a dataset's prompts against another dataset used as the evaluation set."""

    eval_dataset_id: DbId = Field(description="The dataset whose prompts are the evaluation set.")
    n: int = Field(13, ge=3, le=50, description="Words per n-gram (13 as in GPT-3's check).")


class ContaminationResult(BaseModel):
    """The pairs of the dataset now tagged `contamination` (earlier tags of it are replaced)."""

    dataset_id: int
    eval_dataset_id: int
    n: int
    n_pairs: int = Field(description="Pairs checked.")
    n_eval_ngrams: int = Field(description="Distinct n-grams of the evaluation set's prompts.")
    tagged: int = Field(description="Pairs whose prompt shares an n-gram with the evaluation set.")
