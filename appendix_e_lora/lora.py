# GENERATED from lora.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
# ruff: noqa: E402 (each cell keeps its own imports, where the notebook needs them)
"""Appendix E — Parameter-efficient fine-tuning with LoRA"""

__all__ = [
    "ADAPTER_FORMAT",
    "COMPARED",
    "LoRAConfig",
    "LoRALinear",
    "adapter_state_dict",
    "apply_lora",
    "load_adapter",
    "lora_layers",
    "merge_lora",
    "plot_comparison",
    "read_adapter",
    "save_adapter",
    "training_costs",
]


# appendix_e_lora/lora.ipynb, E.2.1 The layer
import copy
import itertools
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from shared import atomic_write


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update (Hu et al., 2021).

    ``y = base(x) + (alpha / rank) * x @ A.T @ B.T`` with ``A``: (rank, in_features) and
    ``B``: (out_features, rank). ``A`` starts random (like ``nn.Linear``'s weights) and ``B`` at
    zero, so a fresh layer computes exactly what ``base`` computes. Shapes: (..., in_features)
    -> (..., out_features).
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if rank < 1:
            raise ValueError(f"rank must be at least 1, got {rank}")
        super().__init__()
        self.base = base.requires_grad_(False)
        self.rank, self.alpha, self.scaling = rank, alpha, alpha / rank
        like = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, **like))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's own initialisation

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def merged(self) -> nn.Linear:
        """A plain, frozen ``nn.Linear`` with weight ``W + (alpha / rank) * B @ A``: same outputs, base cost."""
        base = self.base
        linear = nn.Linear(
            base.in_features,
            base.out_features,
            bias=base.bias is not None,
            device=base.weight.device,
            dtype=base.weight.dtype,
        )
        with torch.no_grad():
            linear.weight.copy_(base.weight + self.scaling * (self.lora_B @ self.lora_A))
            if base.bias is not None:
                linear.bias.copy_(base.bias)
        return linear.requires_grad_(False)

    def extra_repr(self):
        return f"rank={self.rank}, alpha={self.alpha}"


# appendix_e_lora/lora.ipynb, E.2.2 Choosing the layers: `LoRAConfig` and `apply_lora`
@dataclass(frozen=True)
class LoRAConfig:
    """Where LoRA goes in a model and how large it is; calling it applies it: ``LoRAConfig()(model)``.

    ``rank``: r, the inner width of the update B @ A. ``alpha``: the update is scaled by
    alpha / rank. ``targets``: name parts that select the nn.Linear layers to adapt; a layer is
    selected when one of them is a whole part of its dotted name ("ff" selects
    ``trf_blocks.0.ff.layers.0``, "att.W_query" only attention's query projections).
    ``train_also``: modules that stay fully trainable, e.g. a new classification head ("out_head").
    """

    rank: int = 8
    alpha: float = 16.0
    targets: tuple = ("W_query", "W_key", "W_value", "out_proj", "ff")
    train_also: tuple = ()

    def __post_init__(self):
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"rank must be a positive integer, got {self.rank!r}")
        if not isinstance(self.alpha, (int, float)) or not self.alpha > 0:
            raise ValueError(f"alpha must be a positive number, got {self.alpha!r}")
        for field_name in ("targets", "train_also"):
            names = getattr(self, field_name)
            if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
                raise ValueError(f"{field_name} must be a list of module names such as ('ff',), got {names!r}")
            object.__setattr__(self, field_name, tuple(names))  # a list is fine too; store a tuple
        if not self.targets:
            raise ValueError("targets is empty: name at least one layer to adapt, e.g. ('W_query', 'W_value')")

    def selects(self, name: str) -> bool:
        """Whether the layer called ``name`` (a dotted module path) is one of the targets."""
        return any(f".{target}." in f".{name}." for target in self.targets)

    def __call__(self, model: nn.Module) -> nn.Module:
        return apply_lora(model, self)


def apply_lora(model: nn.Module, config: LoRAConfig) -> nn.Module:
    """Freeze ``model`` and wrap each selected nn.Linear in a LoRALinear, in place; return it.

    Afterwards only the LoRA matrices and the ``config.train_also`` modules are trainable.
    Raises ValueError when no linear layer matches the targets, when a ``train_also`` module does
    not exist or is itself a target, or when the model already has LoRA layers.
    """
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("the model already has LoRA layers: apply LoRA once (merge_lora first to add another)")
    linear_names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    chosen = [name for name in linear_names if config.selects(name)]
    if not chosen:
        raise ValueError(
            f"no nn.Linear matches targets {config.targets}; "
            f"the model's linear layers are named like {linear_names[:4]}"
        )
    for name in config.train_also:
        try:
            model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"train_also names {name!r}, which the model does not have") from None
        if config.selects(name) or any(n.startswith(f"{name}.") for n in chosen):
            raise ValueError(f"{name!r} is both a LoRA target and in train_also: choose one")
    model.requires_grad_(False)
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), config.rank, config.alpha))
    for name in config.train_also:
        model.get_submodule(name).requires_grad_(True)
    return model


def lora_layers(model: nn.Module) -> dict:
    """{dotted name: LoRALinear} of every LoRA layer in ``model``."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


# appendix_e_lora/lora.ipynb, E.3.1 `merge_lora`
def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by its merged nn.Linear, in place; return the model.

    The merged model computes the same outputs (up to float rounding) at the cost of the base model.
    """
    for name, layer in lora_layers(model).items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, layer.merged())
    return model


# appendix_e_lora/lora.ipynb, E.3.2 Saving and loading only the adapter
ADAPTER_FORMAT = "llm-course-lora-1"


def adapter_state_dict(model: nn.Module, config: LoRAConfig) -> dict:
    """The parameters an adapter file holds: every LoRA matrix and the ``train_also`` modules' weights."""
    keep = tuple(f"{name}." for name in config.train_also)
    return {
        name: p
        for name, p in model.named_parameters()
        if name.endswith((".lora_A", ".lora_B")) or name.startswith(keep)
    }


def save_adapter(model: nn.Module, config: LoRAConfig, path) -> Path:
    """Save only the adapter (LoRA matrices, ``train_also`` weights and ``config``) as safetensors, atomically."""
    tensors = {name: p.detach().cpu().contiguous() for name, p in adapter_state_dict(model, config).items()}
    if not any(name.endswith(".lora_A") for name in tensors):
        raise ValueError("the model has no LoRA layers: apply_lora(model, config) before saving an adapter")
    metadata = {"format": ADAPTER_FORMAT, "config": json.dumps(asdict(config))}
    return atomic_write(path, save(tensors, metadata=metadata))


def read_adapter(path):
    """(config, tensors) of an adapter file, checked; safetensors only, so nothing in it is executed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no adapter file at {path}: save one with save_adapter(model, config, path)")
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError) as err:
        raise ValueError(
            f"{path} is not a readable safetensors file ({err}); it may be cut short: save it again"
        ) from err
    if metadata.get("format") != ADAPTER_FORMAT:
        raise ValueError(
            f"{path} is not a LoRA adapter written by save_adapter "
            f"(format {metadata.get('format')!r}, expected {ADAPTER_FORMAT!r})"
        )
    try:
        config = LoRAConfig(**json.loads(metadata["config"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} holds unreadable LoRA settings ({err}): save the adapter again") from err
    return config, tensors


def load_adapter(model: nn.Module, path) -> nn.Module:
    """Apply the adapter saved at ``path`` to a fresh base ``model``, in place; return the model.

    The file's LoRAConfig decides which layers get LoRA; every tensor must then fit the model
    exactly (names and shapes), else a ValueError says what differs. After such an error the
    model may already carry LoRA layers: start again from a fresh base model.
    """
    config, tensors = read_adapter(path)
    apply_lora(model, config)
    expected = adapter_state_dict(model, config)
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit this model: missing {missing[:3]}, unexpected {unexpected[:3]} "
            "(saved from another model, or with other targets?)"
        )
    for name, param in expected.items():
        if tensors[name].shape != param.shape:
            raise ValueError(
                f"{path}: {name} has shape {tuple(tensors[name].shape)}, the model expects "
                f"{tuple(param.shape)} (saved from a model of another size?)"
            )
    with torch.no_grad():
        for name, param in expected.items():
            param.copy_(tensors[name])
    return model


# appendix_e_lora/lora.ipynb, E.4 LoRA against full fine-tuning
def training_costs(model: nn.Module, batches, loss_fn, device, n_steps: int = 10, warmup: int = 2) -> dict:
    """What a training step of ``model`` costs; the model itself is not changed (a copy is trained).

    ``batches``: an iterable of (inputs, targets), cycled; ``loss_fn(inputs, targets, model, device)``
    returns the loss (chapter 5's ``calc_loss_batch`` and chapter 6's ``calc_class_loss_batch`` fit).
    Trains the copy with AdamW for ``warmup`` + ``n_steps`` steps. Returns {"trainable": parameters,
    "optimizer_MB": AdamW's state, "gradients_MB": the gradients, "step_ms": median step time}.
    """
    model = copy.deepcopy(model).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    times = []
    for _, (inputs, targets) in zip(range(warmup + n_steps), itertools.cycle(batches)):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss_fn(inputs, targets, model, device).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)]

    def megabytes(tensors):
        return sum(t.numel() * t.element_size() for t in tensors) / 1e6

    return {
        "trainable": sum(p.numel() for p in params),
        "optimizer_MB": megabytes(state),
        "gradients_MB": megabytes(p.grad for p in params),
        "step_ms": 1000 * statistics.median(times[warmup:]),
    }


COMPARED = {
    "trainable": ("trainable parameters", True),
    "optimizer_MB": ("AdamW state (MB)", True),
    "step_ms": ("ms per training step", False),
    "test accuracy": ("test accuracy", False),
}


def plot_comparison(results: dict, title: str = ""):
    """Bar charts, one per measure in COMPARED, of {"full": {...}, "LoRA": {...}} (training_costs + accuracy)."""
    fig, axes = plt.subplots(1, len(COMPARED), figsize=(3 * len(COMPARED), 3))
    for ax, (key, (label, log_scale)) in zip(axes, COMPARED.items()):
        ax.bar(list(results), [run[key] for run in results.values()], color=["#9ecae1", "#e6550d"])
        ax.set_title(label, fontsize=10)
        if log_scale:
            ax.set_yscale("log")
    fig.suptitle(title)
    plt.tight_layout()
    plt.show()
