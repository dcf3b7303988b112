"""Head mode's inputs: what a frozen backbone and the texts themselves say about each response.

A linear reward head on features f(x, y) gives margins Δ_i = wᵀz_i, z_i = f(x_i, y_c) − f(x_i, y_r).
Which f carries what the pairs differ in is an empirical question, so several views are computed
in one pass and the job picks one on validation loss (never on detection or test figures):

- `pooler`: the scalar head's own input (BERT's pooled [CLS]; a decoder's last real token);
- `mean`: the last hidden layer averaged over real tokens (what sentence encoders are trained for);
- `+length`: either of them with log(1 + characters) and log(1 + words) of the response appended.
  Preference labels correlate with length (longer is preferred in helpful-base, shorter refusals in
  harmless-base, and LLMBar's wrong answers are longer on purpose): a learned weight lets the
  training pairs decide the direction and strength instead of a fixed heuristic.

Every feature column is scaled to unit root-mean-square over the training differences (no
centring: z is antisymmetric, a flipped pair must have exactly −z), so one L2 penalty fits all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from worker.influence.config import HEAD_FEATURES
from worker.influence.data import Pair
from worker.influence.model import Encoded, head_module_name
from worker.influence.train import ShouldCancel, check_cancel

POOLINGS: tuple[str, ...] = ("pooler", "mean")
Pooled = dict[str, tuple[Tensor, Tensor]]
"""{pooling: (chosen [n, h], rejected [n, h])}, what `backbone_features` returns."""
__all__ = ["HEAD_FEATURES", "POOLINGS", "PairViews", "Pooled", "backbone_features", "pair_views"]
LENGTH_COLUMNS = 2
"""Columns `length_features` appends to a '+length' view."""


@dataclass
class PairViews:
    """Per-pair feature differences of every view, [n, d] float64 each, keyed by view name."""

    views: dict[str, Tensor]

    def __getitem__(self, name: str) -> Tensor:
        return self.views[name]

    def subset(self, index: Sequence[int] | np.ndarray) -> PairViews:
        where = torch.as_tensor(np.asarray(index, dtype=np.int64))
        return PairViews({k: v[where] for k, v in self.views.items()})


@torch.no_grad()
def backbone_features(
    model: torch.nn.Module,
    enc: Encoded,
    device: torch.device,
    batch_size: int = 32,
    progress: Callable[[float], None] | None = None,
    should_cancel: ShouldCancel | None = None,
) -> Pooled:
    """Pooled features of chosen and rejected texts for every pooling in `POOLINGS`.

    Returns {pooling: (chosen [n, h], rejected [n, h])}, float64 on `device`. One forward pass per
    batch serves both poolings: a hook on the head captures its input, and the last hidden layer
    comes from `output_hidden_states`. Decoder heads see every position, so the last real token
    (right padding) is picked, as the sequence-classification model itself does.
    """
    model.eval().to(device)
    head = getattr(model, head_module_name(model))
    captured: list[Tensor] = []
    hook = head.register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
    n = len(enc)
    order = np.argsort(enc.lengths(), kind="stable")
    out: dict[str, tuple[Tensor, Tensor]] = {}
    try:
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size].tolist()
            ids, mask = enc.batch(index, device)
            b, _, length = ids.shape
            flat_mask = mask.reshape(2 * b, length)
            captured.clear()
            result = model(
                input_ids=ids.reshape(2 * b, length),
                attention_mask=flat_mask,
                output_hidden_states=True,
            )
            pooled = captured[-1]
            if pooled.dim() == 3:
                last = flat_mask.sum(dim=1) - 1
                pooled = pooled[torch.arange(2 * b, device=device), last]
            hidden = result.hidden_states[-1]
            weights = flat_mask.to(hidden.dtype).unsqueeze(-1)
            mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
            where = torch.as_tensor(index, device=device)
            for name, feats in (("pooler", pooled), ("mean", mean)):
                feats = feats.double().reshape(b, 2, -1)
                if name not in out:
                    shape = (n, feats.shape[-1])
                    out[name] = (
                        torch.empty(shape, dtype=torch.float64, device=device),
                        torch.empty(shape, dtype=torch.float64, device=device),
                    )
                out[name][0][where] = feats[:, 0]
                out[name][1][where] = feats[:, 1]
            check_cancel(should_cancel)
            if progress is not None:
                progress(min(1.0, (start + batch_size) / n))
    finally:
        hook.remove()
    return out


def length_features(texts: Sequence[str]) -> Tensor:
    """[len(texts), 2] float64: log(1 + characters) and log(1 + whitespace-separated words)."""
    return torch.tensor(
        [[math.log1p(len(t)), math.log1p(len(t.split()))] for t in texts], dtype=torch.float64
    )


def pair_views(pooled: dict[str, tuple[Tensor, Tensor]], pairs: Sequence[Pair]) -> PairViews:
    """Feature differences z = f(chosen) − f(rejected) for every head-feature view (CPU)."""
    lengths = length_features([p.chosen for p in pairs]) - length_features(
        [p.rejected for p in pairs]
    )
    views: dict[str, Tensor] = {}
    for pooling, (chosen, rejected) in pooled.items():
        z = (chosen - rejected).cpu()
        views[pooling] = z
        views[f"{pooling}+length"] = torch.cat([z, lengths], dim=1)
    return PairViews(views)


def column_scale(z: Tensor) -> Tensor:
    """Per-column root-mean-square of the training differences (1 where a column is all zero)."""
    rms = z.double().pow(2).mean(dim=0).sqrt()
    return torch.where(rms > 0, rms, torch.ones_like(rms))


def truncation_rate(enc: Encoded, max_length: int) -> float:
    """Fraction of the encoded texts (chosen and rejected) cut at `max_length` tokens."""
    if not len(enc):
        return 0.0
    cut = sum((len(c) >= max_length) + (len(r) >= max_length) for c, r in enc.ids)
    return cut / (2 * len(enc))
