"""Figures and displays of chapter 5, so that each notebook cell shows one call.

Hand-written (not exported from the notebook): plotting is presentation, not course code.
Every ``plot_*`` function draws one figure and shows it.
"""

import difflib
import inspect
import textwrap

import matplotlib.pyplot as plt
import torch

from ch05_pretraining.pretraining import lr_at_step


def plot_token_loss(target_probas, vocab_size=50257):
    """-ln p against p on a log axis, with the model's target probabilities marked."""
    p = torch.logspace(-6, 0, 200)
    plt.figure(figsize=(6, 3))
    plt.semilogx(p, -torch.log(p), label=r"$-\ln p$")
    marked = target_probas.flatten()
    plt.scatter(marked, -torch.log(marked), color="C3", zorder=3, label=f"our {marked.numel()} target tokens")
    plt.axvline(1 / vocab_size, color="gray", ls=":", label=f"uniform guess, 1/{vocab_size:,}")
    plt.xlabel("probability given to the true next token")
    plt.ylabel("loss for that token")
    plt.legend()
    plt.tight_layout()
    plt.show()


def plot_losses(history, steps_per_epoch):
    """Training and validation loss against epochs (bottom axis) and tokens seen (top axis)."""
    epochs = [s / steps_per_epoch for s in history["steps"]]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(epochs, history["train_losses"], label="training loss")
    ax.plot(epochs, history["val_losses"], ls="--", label="validation loss")
    ax.set_xlabel("epochs")
    ax.set_ylabel("loss")
    ax.legend()
    top = ax.twiny()  # the same curves against tokens seen
    top.plot(history["tokens_seen"], history["train_losses"], alpha=0)
    top.set_xlabel("tokens seen")
    fig.tight_layout()
    plt.show()


def plot_lr_schedules(total_steps=150, peak_lr=4e-4, warmup_steps=15, min_lr=4e-5):
    """The three schedules ``lr_at_step`` offers; the legend sits outside, clear of the warmup ramp."""
    steps = range(total_steps)
    schedules = {
        "constant": {},
        f"warmup ({warmup_steps} steps)": dict(warmup_steps=warmup_steps),
        "warmup + cosine decay": dict(warmup_steps=warmup_steps, cosine_decay=True, min_lr=min_lr),
    }
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    for style, (label, options) in zip(["-", "--", "-"], schedules.items()):
        ax.plot(steps, [lr_at_step(s, total_steps, peak_lr, **options) for s in steps], ls=style, label=label)
    ax.axvspan(0, warmup_steps, color="gray", alpha=0.15, lw=0)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    plt.show()


def plot_temperatures(next_logits, temperatures, tokenizer, title, top=8):
    """Probabilities of the ``top`` most likely next tokens at several temperatures (log axis).

    A log axis keeps the flat high-temperature distribution visible next to the sharp ones.
    """
    top_ids = next_logits.topk(top).indices
    labels = [repr(tokenizer.decode([i])) for i in top_ids.tolist()]
    width = 0.8 / len(temperatures)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for k, temperature in enumerate(temperatures):
        probs = torch.softmax(next_logits / temperature, dim=-1)[top_ids].cpu()
        ax.bar(
            torch.arange(top) + (k - (len(temperatures) - 1) / 2) * width,
            probs,
            width=width,
            label=f"T = {temperature}",
        )
    ax.set_yscale("log")
    ax.set_xticks(range(top), labels, rotation=30)
    ax.set_ylabel("probability (log scale)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    plt.show()


def _body(function):
    """Source lines of ``function`` without its docstring."""
    lines = textwrap.dedent(inspect.getsource(function)).splitlines()
    doc = inspect.getdoc(function)
    if doc is None:
        return lines
    start = next(i for i, line in enumerate(lines) if '"""' in line)
    end = (
        start if lines[start].count('"""') == 2 else next(i for i in range(start + 1, len(lines)) if '"""' in lines[i])
    )
    return lines[:start] + lines[end + 1 :]


def show_diff(old, new):
    """Print a unified diff between two functions' source (docstrings left out)."""
    for line in difflib.unified_diff(_body(old), _body(new), old.__name__, new.__name__, lineterm="", n=2):
        print(line)
