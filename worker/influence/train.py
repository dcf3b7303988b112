"""Bradley–Terry training of the LoRA reward model, with per-epoch metrics and TracIn checkpoints.

Loss ℓ_i(θ) = softplus(−Δ_i(θ)) = −log σ(Δ_i), Δ_i = r_θ(x_i, y_c) − r_θ(x_i, y_r) (SCIENCE.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from worker.influence.config import EngineConfig
from worker.influence.model import Encoded, RewardModel

Progress = Callable[[str, float, str | None], None]
ShouldCancel = Callable[[], bool]


class Cancelled(Exception):
    """The job was cancelled at a checkpoint between batches."""


def check_cancel(should_cancel: ShouldCancel | None) -> None:
    if should_cancel is not None and should_cancel():
        raise Cancelled("cancelled by request")


@dataclass
class Checkpoint:
    """Trainable parameters after an epoch and the learning rate used in it (for TracIn-CP)."""

    epoch: int
    learning_rate: float
    params: dict[str, Tensor]


@dataclass
class TrainingResult:
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    seconds_per_epoch: list[float] = field(default_factory=list)  # optimisation pass only
    seen_margins: list[np.ndarray] = field(default_factory=list)
    """Per epoch, Δ_i [n] when pair i's batch was drawn, before the update it caused (train mode):
    in epoch 1 each pair is scored before the model has trained on it."""


def bt_loss(margins: Tensor) -> Tensor:
    """Per-pair Bradley–Terry loss softplus(−Δ), shape of `margins`."""
    return torch.nn.functional.softplus(-margins)


@torch.no_grad()
def evaluate_margins(rm: RewardModel, enc: Encoded, batch_size: int = 64) -> np.ndarray:
    """Δ for every pair in eval mode (dropout off), float64 [n], in `enc` order."""
    rm.module.eval()
    order = np.argsort(enc.lengths(), kind="stable")
    out = np.empty(len(enc), dtype=np.float64)
    params = rm.detached_params()
    for start in range(0, len(enc), batch_size):
        index = order[start : start + batch_size].tolist()
        ids, mask = enc.batch(index, rm.device)
        out[index] = rm.margins(params, ids, mask).double().cpu().numpy()
    return out


def summarise(margins: np.ndarray) -> dict[str, float]:
    """Mean BT loss and pairwise accuracy (Δ > 0) of a set of margins."""
    loss = np.logaddexp(0.0, -margins)
    return {"loss": float(loss.mean()), "accuracy": float((margins > 0).mean())}


def train_reward_model(
    rm: RewardModel,
    train: Encoded,
    val: Encoded,
    config: EngineConfig,
    progress: Progress | None = None,
    should_cancel: ShouldCancel | None = None,
) -> TrainingResult:
    """AdamW on the mean BT loss; batches reshuffled each epoch by a generator seeded by `seed`.

    Train loss/accuracy per epoch are running means over the epoch's batches (train mode);
    validation loss/accuracy are measured in eval mode after each epoch.
    """
    params = list(rm.params.values())
    autocast = training_autocast(config.precision, rm.device)
    if config.gradient_checkpointing:
        enable_checkpointing(rm)
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    n = len(train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    result = TrainingResult()
    for epoch in range(config.epochs):
        start = time.perf_counter()
        rm.module.train()
        order = torch.randperm(n, generator=generator).tolist()
        loss_sum, correct = 0.0, 0
        seen = np.full(n, np.nan)
        for step in range(steps_per_epoch):
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            ids, mask = train.batch(index, rm.device)
            with autocast:
                margins = rm.margins(rm.params, ids, mask).float()
            loss = bt_loss(margins).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(index)
            correct += int((margins.detach() > 0).sum())
            seen[index] = margins.detach().double().cpu().numpy()
            if step % 4 == 0:
                check_cancel(should_cancel)
                if progress is not None:
                    done = (epoch * steps_per_epoch + step + 1) / (config.epochs * steps_per_epoch)
                    progress("training", done, f"epoch {epoch + 1}/{config.epochs}")
        # One epoch's cost is the optimisation pass alone; validation is timed apart.
        seconds = time.perf_counter() - start
        val_stats = summarise(evaluate_margins(rm, val))
        result.seconds_per_epoch.append(seconds)
        result.seen_margins.append(seen)
        result.history.append(
            {
                "epoch": epoch + 1,
                "train_loss": loss_sum / n,
                "train_accuracy": correct / n,
                "val_loss": val_stats["loss"],
                "val_accuracy": val_stats["accuracy"],
                "seconds": seconds,
                "val_seconds": time.perf_counter() - start - seconds,
            }
        )
        result.checkpoints.append(
            Checkpoint(
                epoch=epoch + 1,
                learning_rate=float(optimizer.param_groups[0]["lr"]),
                params={k: v.detach().clone() for k, v in rm.params.items()},
            )
        )
        if progress is not None:
            progress(
                "training",
                (epoch + 1) / config.epochs,
                f"epoch {epoch + 1}: val accuracy {val_stats['accuracy']:.3f}",
            )
    rm.module.eval()
    if config.gradient_checkpointing:
        disable_checkpointing(rm)
    return result


def training_autocast(precision: str, device: torch.device) -> Any:
    """The autocast context of the training forwards: bf16 when asked (or 'auto' on a CUDA GPU
    with bf16 support), else a no-op. Parameters and optimiser state stay fp32."""
    import contextlib

    use_bf16 = precision == "bf16" or (
        precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    )
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _base(rm: RewardModel) -> Any:
    module: Any = rm.module
    return module.get_base_model() if hasattr(module, "get_base_model") else module


def enable_checkpointing(rm: RewardModel) -> None:
    """Activation checkpointing of the transformers backbone (non-reentrant, as PEFT needs)."""
    base = _base(rm)
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ValueError(
            f"{type(base).__name__} does not support gradient checkpointing; "
            "set gradient_checkpointing=False"
        )
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def disable_checkpointing(rm: RewardModel) -> None:
    _base(rm).gradient_checkpointing_disable()
