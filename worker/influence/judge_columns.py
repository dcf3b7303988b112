"""The registry entries of the LLM judge's columns (a judge job fills them: worker/jobs/judge.py,
engine worker/influence/judge/; worker/influence/methods.py adds them to the score columns). Each
pair is asked in both orders, chosen shown first and then second."""

from __future__ import annotations

from worker.influence.column_spec import ColumnSpec

JUDGE_COLUMN_SPECS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        "judge_p_chosen",
        label="judge: P(chosen better)",
        unit="probability, 0 to 1",
        orientation="lower_harmful",
        higher="the LLM judge prefers the labelled chosen answer",
    ),
    ColumnSpec(
        "judge_agree_chosen_first",
        label="judge agrees (chosen shown first)",
        unit="1 = agrees, 0 = not",
        orientation="lower_harmful",
        higher="the judge picked chosen when it was shown first",
        ranked=False,
    ),
    ColumnSpec(
        "judge_agree_chosen_second",
        label="judge agrees (chosen shown second)",
        unit="1 = agrees, 0 = not",
        orientation="lower_harmful",
        higher="the judge picked chosen when it was shown second",
        ranked=False,
    ),
    ColumnSpec(
        "judge_against",
        label="judge orders against the label",
        unit="orders, 0 to 2",
        orientation="higher_harmful",
        higher="the judge prefers rejected in both orders",
    ),
    ColumnSpec(
        "judge_confidence",
        label="judge confidence",
        unit="probability of its verdict, 0.5 to 1",
        orientation="unsigned",
        higher="the judge's first answer token was surer (log-probabilities)",
        partial=True,
    ),
    ColumnSpec(
        "judge_failed_orders",
        label="judge failures",
        unit="orders, 0 to 2",
        orientation="unsigned",
        higher="the judge's answer was malformed, timed out or refused",
        ranked=False,
    ),
)
"""The judge job's columns, in table order (`JUDGE_COLUMNS` of worker/influence/judge/run.py
names the same, for the engine; a test keeps the two equal)."""
