"""kronfluence (EK-FAC) on the engine's trained reward model, for the side-by-side benchmark.

kronfluence is installed for the benchmark only (`make bench` installs it). It scores a deep copy
of the trained model (its `prepare_model` freezes and wraps modules in place), tracking exactly the
engine's trainable modules: the LoRA A/B matrices and the scalar head.

A Bradley–Terry pair is two forwards through shared weights. ANCHORS.md found that kronfluence
1.0.1 keeps only one forward's hook when a model is called twice; here both responses of every
pair go through the model in **one** call of 2B sequences (as the engine does), so every hook sees
both. kronfluence then takes each of the 2B rows for an example of its own, which is right for
sums (influence is linear in the gradient) but not for self-influence, a quadratic form: the task's
per-sample-gradient hook adds the two rows of each pair, so every per-example gradient kronfluence
uses (eigenvalue correction, self and pairwise scores) is the pair's gradient g_c + g_r.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from worker.influence.model import Encoded, RewardModel, attention_bias


class _Indices(Dataset):
    """Items are the pair indices start … start+length−1 of one encoding; the loader's collate
    function pads a batch of them to [B, 2, L]."""

    def __init__(self, start: int, length: int) -> None:
        self.start, self.length = start, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> int:
        return self.start + index


def _margins(model: torch.nn.Module, batch: tuple[Tensor, Tensor], causal: bool) -> Tensor:
    ids, mask = batch
    b, two, length = ids.shape
    flat_ids, flat_mask = ids.reshape(b * two, length), mask.reshape(b * two, length)
    out = model(input_ids=flat_ids, attention_mask=attention_bias(flat_mask, causal))
    rewards = out.logits[..., 0].reshape(b, two)
    return rewards[:, 0] - rewards[:, 1]


def _task(tracked: list[str], causal: bool) -> Any:
    from kronfluence.task import Task

    class BradleyTerry(Task):
        """Loss = Σ softplus(−Δ); the measurement is the validation BT loss."""

        enable_post_process_per_sample_gradient = True

        def post_process_per_sample_gradient(self, module_name: str, gradient: Tensor) -> Tensor:
            # Rows come as (chosen, rejected) of pair 0, then of pair 1, ...: one example a pair.
            return gradient.reshape(-1, 2, *gradient.shape[1:]).sum(dim=1)

        def compute_train_loss(self, batch: Any, model: torch.nn.Module, sample: bool = False):
            margin = _margins(model, batch, causal)
            if not sample:
                return F.softplus(-margin).sum()
            with torch.no_grad():  # true Fisher: labels drawn from the model's own prediction
                sign = 2.0 * torch.bernoulli(torch.sigmoid(margin)) - 1.0
            return F.softplus(-sign * margin).sum()

        def compute_measurement(self, batch: Any, model: torch.nn.Module):
            return F.softplus(-_margins(model, batch, causal)).sum()

        def get_influence_tracked_modules(self):
            return tracked

        def get_attention_mask(self, batch: Any):
            ids, mask = batch
            return mask.reshape(-1, mask.shape[-1])

    return BradleyTerry()


def tracked_modules(rm: RewardModel) -> list[str]:
    """Names of the modules that own the trainable parameters (LoRA A/B, the head)."""
    names = []
    for name in rm.names:
        module = name.rsplit(".", 1)[0]
        if module not in names:
            names.append(module)
    return names


def identity_self_scores(rm: RewardModel, train: Encoded, pairs: int = 32) -> np.ndarray:
    """kronfluence's self-scores with the identity preconditioner on the first pairs: ‖g_i‖².

    The benchmark checks them against the engine's per-pair gradients, which proves that
    kronfluence sees the same modules, both forwards of a pair, and one example per pair.
    """
    subset = Encoded(ids=list(train.ids[:pairs]), pad_id=train.pad_id)
    return kronfluence_scores(rm, subset, subset, strategy="identity", pairwise=False)[
        "harm_self_influence"
    ]


def kronfluence_scores(
    rm: RewardModel,
    train: Encoded,
    val: Encoded,
    batch_size: int = 16,
    strategy: str = "ekfac",
    pairwise: bool = True,
) -> dict[str, Any]:
    """EK-FAC factors on the training pairs, then self-influence and influence on the validation
    loss, with kronfluence's default damping. Returns harm arrays (higher = more harmful) and the
    seconds of each stage."""
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments
    from kronfluence.utils.dataset import DataLoaderKwargs

    logging.getLogger("kronfluence").setLevel(logging.WARNING)
    device = rm.device
    model = copy.deepcopy(rm.module).eval()
    tracked = tracked_modules(rm)
    task = _task(tracked, rm.causal)
    model = prepare_model(model, task)
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="kronfluence-") as output:
        analyzer = Analyzer(
            analysis_name="hh-flip10",
            model=model,
            task=task,
            cpu=device.type == "cpu",
            disable_tqdm=True,
            output_dir=output,
        )

        def loader_kwargs(encoded: Encoded) -> DataLoaderKwargs:
            return DataLoaderKwargs(
                collate_fn=lambda index: encoded.batch(index, torch.device("cpu")), num_workers=0
            )

        factor_args = FactorArguments(strategy=strategy)
        score_args = ScoreArguments()
        train_set = _Indices(0, len(train))
        start = time.perf_counter()
        analyzer.set_dataloader_kwargs(loader_kwargs(train))
        analyzer.fit_all_factors(
            factors_name="ekfac",
            dataset=train_set,
            per_device_batch_size=batch_size,
            factor_args=factor_args,
            overwrite_output_dir=True,
        )
        seconds["factors"] = time.perf_counter() - start

        start = time.perf_counter()
        analyzer.compute_self_scores(
            scores_name="self",
            factors_name="ekfac",
            train_dataset=train_set,
            per_device_train_batch_size=batch_size,
            score_args=score_args,
            overwrite_output_dir=True,
        )
        self_scores = analyzer.load_self_scores("self")["all_modules"]
        seconds["self_influence"] = time.perf_counter() - start

        if not pairwise:
            return {"harm_self_influence": self_scores.double().cpu().numpy(), "seconds": seconds}
        # Query and train batches share one loader setting: index one encoding of both sets.
        start = time.perf_counter()
        both = Encoded(ids=list(train.ids) + list(val.ids), pad_id=train.pad_id)
        analyzer.set_dataloader_kwargs(loader_kwargs(both))
        analyzer.compute_pairwise_scores(
            scores_name="pairwise",
            factors_name="ekfac",
            query_dataset=_Indices(len(train), len(val)),
            train_dataset=_Indices(0, len(train)),
            per_device_query_batch_size=len(val),
            per_device_train_batch_size=batch_size,
            score_args=score_args,
            overwrite_output_dir=True,
        )
        pair_scores = analyzer.load_pairwise_scores("pairwise")["all_modules"]
        seconds["influence"] = time.perf_counter() - start
    # kronfluence: score = ∇f_valᵀ H⁻¹ ∇ℓ_i > 0 when upweighting pair i lowers the validation loss
    # (helpful); self-influence is large for outliers and mislabels (harmful).
    influence = pair_scores.double().sum(dim=0).cpu().numpy()
    return {
        "harm_self_influence": self_scores.double().cpu().numpy(),
        "harm_influence": -influence,
        "seconds": seconds,
        "tracked_modules": len(tracked),
        "strategy": strategy,
        "damping_factor": score_args.damping_factor,
        "version": _version(),
    }


def _version() -> str:
    import kronfluence

    return str(getattr(kronfluence, "__version__", "unknown"))
