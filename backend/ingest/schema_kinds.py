"""Record schemas beyond prompt / chosen / rejected text and HH-RLHF transcripts, each turned
into a (prompt, chosen, rejected) pair.

- `chat_messages`: `chosen` and `rejected` are message lists, OpenAI style (`{"role",
  "content"}`) or ShareGPT style (`{"from", "value"}`), ending with the assistant's answer. The
  messages before it (the same in both) are the prompt; a `prompt` field (text or messages) is
  used when the lists hold only the answers (as in UltraFeedback-binarized, TRL's format).
- `shp`: Stanford Human Preferences style: `history` (the prompt), `human_ref_A`,
  `human_ref_B` and `labels` (1: A is preferred, 0: B is).
- `ultrafeedback`: UltraFeedback's raw records: `instruction` and `completions`, each with a
  `response` and an `overall_score` (or `fine-grained_score`); the best-scored completion is
  chosen and the worst rejected.
Each becomes a (prompt, chosen, rejected) pair. A conversation is written as HH-RLHF writes it
("\\n\\nHuman: …\\n\\nAssistant: …"), ending with "\\n\\nAssistant: ", so `prompt + chosen` reads
as one transcript to the reward model. Every other field is kept as metadata. Exports of such
datasets are written as prompt / chosen / rejected records (what TRL and most trainers read).
"""

from __future__ import annotations

from typing import Any, Literal

from backend.ingest.errors import PairFormatError

SchemaKind = Literal[
    "prompt_chosen_rejected", "hh_transcript", "chat_messages", "shp", "ultrafeedback"
]
"""The two text schemas, and the three this module turns into prompt / chosen / rejected text
(chat-message lists, SHP, raw UltraFeedback)."""

ROLES = {
    "user": "Human",
    "human": "Human",
    "assistant": "Assistant",
    "gpt": "Assistant",
    "bot": "Assistant",
    "model": "Assistant",
    "chatgpt": "Assistant",
    "system": "System",
}


def kind_of(record: dict[str, Any]) -> SchemaKind | None:
    """The schema these fields name, or None (then: prompt/chosen/rejected or HH transcripts)."""
    if "human_ref_A" in record and "human_ref_B" in record:
        return "shp"
    if "completions" in record and "instruction" in record:
        return "ultrafeedback"
    if isinstance(record.get("chosen"), list) or isinstance(record.get("rejected"), list):
        return "chat_messages"
    return None


def _message(value: Any, row: int, column: str, k: int) -> tuple[str, str]:
    """(speaker, text) of one message."""
    where = f"{column}[{k}]"
    if not isinstance(value, dict):
        raise PairFormatError(
            f"message {k + 1} of {column!r} must be an object with a role and a content, got "
            f"{type(value).__name__}",
            row=row,
            column=where,
        )
    role = value.get("role", value.get("from"))
    content = value.get("content", value.get("value"))
    if not isinstance(role, str) or role.lower() not in ROLES:
        raise PairFormatError(
            f"message {k + 1} of {column!r} has role {role!r}; expected one of "
            f"{', '.join(sorted(ROLES))}",
            row=row,
            column=where,
        )
    if not isinstance(content, str):
        kind = "none" if content is None else type(content).__name__
        raise PairFormatError(
            f"message {k + 1} of {column!r} must have text content, got {kind}",
            row=row,
            column=where,
        )
    return ROLES[role.lower()], content


def _messages(value: Any, row: int, column: str) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not value:
        raise PairFormatError(f"{column!r} must be a non-empty list of messages", row, column)
    return [_message(m, row, column, k) for k, m in enumerate(value)]


def render(turns: list[tuple[str, str]]) -> str:
    """A conversation as HH-RLHF writes it, ready for the assistant's answer."""
    return "".join(f"\n\n{speaker}: {text}" for speaker, text in turns) + "\n\nAssistant: "


def _prompt_field(value: Any, row: int) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [("Human", value)]
    return _messages(value, row, "prompt")


def _answer(turns: list[tuple[str, str]], row: int, column: str) -> str:
    speaker, text = turns[-1]
    if speaker != "Assistant":
        raise PairFormatError(
            f"the last message of {column!r} must be the assistant's answer (it is the "
            f"{speaker.lower()}'s)",
            row=row,
            column=column,
        )
    if not text.strip():
        raise PairFormatError(f"the answer in {column!r} is empty", row=row, column=column)
    return text


def chat_pair(record: dict[str, Any], row: int) -> tuple[str, str, str, tuple[str, ...]]:
    """(prompt, chosen, rejected, fields used) of a chat-messages record."""
    for key in ("chosen", "rejected"):
        if key not in record:
            raise PairFormatError(f"missing column {key!r}", row=row, column=key)
    chosen = _messages(record["chosen"], row, "chosen")
    rejected = _messages(record["rejected"], row, "rejected")
    chosen_text = _answer(chosen, row, "chosen")
    rejected_text = _answer(rejected, row, "rejected")
    if chosen[:-1] != rejected[:-1]:
        raise PairFormatError(
            "'chosen' and 'rejected' differ before their last message: a pair answers one "
            "conversation",
            row=row,
            column="rejected",
        )
    context = chosen[:-1]
    if not context:
        if "prompt" not in record:
            raise PairFormatError(
                "the messages hold only the answers and there is no 'prompt' column",
                row=row,
                column="prompt",
            )
        context = _prompt_field(record["prompt"], row)
    return render(context), chosen_text, rejected_text, ("prompt", "chosen", "rejected")


def shp_pair(record: dict[str, Any], row: int) -> tuple[str, str, str, tuple[str, ...]]:
    """(prompt, chosen, rejected, fields used) of an SHP record."""
    for key in ("history", "human_ref_A", "human_ref_B", "labels"):
        if key not in record:
            raise PairFormatError(f"missing column {key!r} (an SHP record)", row=row, column=key)
    label = record["labels"]
    if isinstance(label, str) and label.strip() in ("0", "1"):
        label = int(label)
    if isinstance(label, bool) or label not in (0, 1):
        raise PairFormatError(
            f"'labels' must be 1 (A is preferred) or 0 (B is), got {label!r}",
            row=row,
            column="labels",
        )
    texts = {}
    for key in ("history", "human_ref_A", "human_ref_B"):
        value = record[key]
        if not isinstance(value, str) or (key != "history" and not value.strip()):
            raise PairFormatError(f"{key!r} must be non-empty text", row=row, column=key)
        texts[key] = value
    a, b = texts["human_ref_A"], texts["human_ref_B"]
    chosen, rejected = (a, b) if label == 1 else (b, a)
    return texts["history"], chosen, rejected, ("history", "human_ref_A", "human_ref_B")


def ultrafeedback_pair(
    record: dict[str, Any], row: int
) -> tuple[str, str, str, tuple[str, ...], dict[str, Any]]:
    """(prompt, chosen, rejected, fields used, extra metadata) of a raw UltraFeedback record."""
    instruction = record["instruction"]
    if not isinstance(instruction, str) or not instruction.strip():
        raise PairFormatError("'instruction' must be non-empty text", row=row, column="instruction")
    completions = record["completions"]
    if not isinstance(completions, list):
        raise PairFormatError("'completions' must be a list", row=row, column="completions")
    scored = []
    for k, completion in enumerate(completions):
        where = f"completions[{k}]"
        if not isinstance(completion, dict):
            raise PairFormatError("each completion must be an object", row=row, column=where)
        response = completion.get("response")
        score = completion.get("overall_score", completion.get("fine-grained_score"))
        if not isinstance(response, str) or not response.strip():
            raise PairFormatError("a completion's 'response' is empty", row=row, column=where)
        if isinstance(score, bool) or not isinstance(score, int | float) or score != score:
            raise PairFormatError(
                f"a completion's 'overall_score' must be a number, got {score!r}",
                row=row,
                column=where,
            )
        scored.append((float(score), k, response, completion.get("model")))
    if len(scored) < 2:
        raise PairFormatError("fewer than two completions: no preference", row, "completions")
    best = max(scored, key=lambda s: (s[0], -s[1]))  # ties: the earlier one
    worst = min(scored, key=lambda s: (s[0], s[1]))
    if best[0] == worst[0]:
        raise PairFormatError(
            "every completion has the same score: no preference", row=row, column="completions"
        )
    extra = {
        "score_chosen": best[0],
        "score_rejected": worst[0],
        "model_chosen": best[3],
        "model_rejected": worst[3],
    }
    return instruction, best[2], worst[2], ("instruction", "completions"), extra
