# GENERATED from classification.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
# ruff: noqa: E402 (each cell keeps its own imports, where the notebook needs them)
"""Chapter 6 — Fine-tuning for classification: an SMS spam filter"""

__all__ = [
    "CLASS_NAMES",
    "SPAM_SETTINGS",
    "SPLIT_NAMES",
    "SpamDataset",
    "SpamSettings",
    "balance_classes",
    "calc_accuracy_loader",
    "calc_class_loss_batch",
    "calc_class_loss_loader",
    "check_length",
    "class_logits",
    "classify_text",
    "confusion_matrix",
    "finetune_spam_classifier",
    "load_sms_spam",
    "pad_or_truncate",
    "predict_loader",
    "prepare_for_classification",
    "prepare_spam_splits",
    "reinitialise_weights",
    "split_dataset",
    "train_classifier",
]


# ch06_classification/classification.ipynb, 6.2.1 A pitfall: the file is tab-separated, but not CSV
import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from shared import atomic_write, end_of_text_id, fetch, settings

CLASS_NAMES = ("ham", "spam")  # class index -> label name; "ham" is the data set's word for "not spam"
SPLIT_NAMES = ("train", "validation", "test")


# ch06_classification/classification.ipynb, 6.2.1 A pitfall: the file is tab-separated, but not CSV
def load_sms_spam() -> pd.DataFrame:
    """The SMS Spam Collection as a DataFrame with columns ``label`` ("ham"/"spam") and ``text``.

    The file is tab-separated without any quoting: a double quote is an ordinary character of
    a message. Reading it with CSV quoting rules would merge rows (see section 6.2), so quoting
    is switched off, and "NA"-like messages are kept as text rather than turned into NaN.
    """
    return pd.read_csv(
        fetch("sms-spam-collection"),
        sep="\t",
        header=None,
        names=["label", "text"],
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
    )


# ch06_classification/classification.ipynb, 6.2.2 A balanced subset
def balance_classes(df: pd.DataFrame, seed: int = 123) -> pd.DataFrame:
    """Undersample so that every label has as many rows as the rarest one (seeded).

    Returns a new DataFrame with the rows of each label, label by label, in a seeded random order.
    """
    n_per_class = df["label"].value_counts().min()
    parts = [rows.sample(n=n_per_class, random_state=seed) for _, rows in df.groupby("label", sort=True)]
    return pd.concat(parts).reset_index(drop=True)


# ch06_classification/classification.ipynb, 6.2.3 Train, validation and test splits — without leaking duplicates
def split_dataset(df: pd.DataFrame, train_frac: float = 0.7, val_frac: float = 0.1, seed: int = 123):
    """Split ``df`` into (train, validation, test) DataFrames, keeping identical texts together.

    Sizes: ``int(n * train_frac)`` and ``int(n * val_frac)`` rows, the rest for test. Distinct
    texts are visited in a seeded random order and each group of identical rows goes to the first
    split with room for all of it, so no message appears in two splits. Each split is returned
    in a seeded random order.
    """
    if not (0 < train_frac and 0 < val_frac and train_frac + val_frac < 1):
        raise ValueError(
            f"need 0 < train_frac, 0 < val_frac and train_frac + val_frac < 1 (the rest is the test set), "
            f"got train_frac={train_frac}, val_frac={val_frac}"
        )
    n_train, n_val = int(len(df) * train_frac), int(len(df) * val_frac)
    room = [n_train, n_val, len(df) - n_train - n_val]
    parts = [[], [], []]
    for _, copies in df.sample(frac=1, random_state=seed).groupby("text", sort=False):
        target = next((i for i in range(3) if len(copies) <= room[i]), None)
        if target is None:
            raise ValueError(
                f"a message with {len(copies)} copies fits in no split (room left: {room}): "
                "try another seed or deduplicate the data first"
            )
        parts[target].append(copies)
        room[target] -= len(copies)
    return tuple(pd.concat(p).sample(frac=1, random_state=seed).reset_index(drop=True) for p in parts)


# ch06_classification/classification.ipynb, 6.2.3 Train, validation and test splits — without leaking duplicates
def prepare_spam_splits(seed: int = 123, folder: Path | None = None) -> dict:
    """Load, balance and split the SMS Spam Collection; save the splits as CSV files.

    Returns {"train": path, "validation": path, "test": path}; the files go to ``folder``
    (default: ``settings().cache_dir / "sms_spam"``) and hold the columns ``label`` and ``text``.
    """
    folder = Path(folder) if folder is not None else settings().cache_dir / "sms_spam"
    splits = split_dataset(balance_classes(load_sms_spam(), seed=seed), seed=seed)
    paths = {name: folder / f"{name}.csv" for name in SPLIT_NAMES}
    for name, split in zip(SPLIT_NAMES, splits):
        atomic_write(paths[name], split.to_csv(index=False))
    return paths


# ch06_classification/classification.ipynb, 6.2.3 Train, validation and test splits — without leaking duplicates
@dataclass(frozen=True)
class SpamSettings:
    """How chapter 6 fine-tunes the spam classifier in one profile (sections 6.5 and 6.7)."""

    base_model: str  # a load_pretrained name
    train_all: bool  # every parameter, or only the last block, the final norm and the head
    batch_size: int
    learning_rate: float
    weight_decay: float
    num_epochs: int
    linear_decay: bool  # the learning rate falls linearly to 0 over the run
    max_steps: int | None = None  # stop after this many optimizer steps (None: every epoch)


# fmt: off
SPAM_SETTINGS = {  # per profile: the base model and the fine-tuning recipe (a table: one profile per entry)
    "quick": SpamSettings("course-base", train_all=True, batch_size=8, learning_rate=1e-3, weight_decay=0.1,
                          num_epochs=2, linear_decay=True),
    "book": SpamSettings("gpt2-small (124M)", train_all=False, batch_size=8, learning_rate=5e-5, weight_decay=0.1,
                         num_epochs=5, linear_decay=False),
}
# fmt: on


# ch06_classification/classification.ipynb, 6.3 From messages to batches: `SpamDataset`
def pad_or_truncate(token_ids: list[int], max_length: int, pad_token_id: int) -> list[int]:
    """Exactly ``max_length`` ids: the first ``max_length`` of ``token_ids``, padded at the end."""
    return token_ids[:max_length] + [pad_token_id] * (max_length - len(token_ids))


def check_length(max_length: int, context_length: int | None) -> None:
    """Raise ValueError unless 1 <= max_length <= context_length (when a context is given)."""
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    if context_length is not None and max_length > context_length:
        raise ValueError(
            f"max_length {max_length} is longer than the model's context_length {context_length}: "
            f"use max_length <= {context_length}"
        )


class SpamDataset(Dataset):
    """Labelled messages as equal-length rows of token ids.

    ``data``: a CSV path or DataFrame with columns ``label`` (a name in CLASS_NAMES) and ``text``.
    Each message is encoded with ``tokenizer`` and padded at the end with ``pad_token_id``
    (default: the tokenizer's <|endoftext|>) to ``max_length`` tokens; a longer message keeps its first ``max_length`` tokens. With
    ``max_length=None`` the length is that of the longest message, so nothing is truncated.
    ``context_length`` (the model's) is checked when given: ``max_length`` may not exceed it,
    and without ``max_length`` no message may be longer (pass ``max_length=context_length``
    to truncate such messages on purpose). An empty or whitespace-only message is a ValueError.

    ``dataset[i]`` -> (input_ids (max_length,) int64, label () int64: index into CLASS_NAMES).
    """

    def __init__(self, data, tokenizer, max_length=None, pad_token_id=None, context_length=None):
        df = data if isinstance(data, pd.DataFrame) else pd.read_csv(data, keep_default_na=False)
        texts, labels = df["text"].tolist(), df["label"].tolist()
        if not texts:
            raise ValueError("the data holds no messages")
        empty = [row for row, text in enumerate(texts) if not str(text).strip()]
        if empty:
            raise ValueError(f"{len(empty)} empty message(s), rows {empty[:5]}: drop them before building the dataset")
        unknown = sorted(set(labels) - set(CLASS_NAMES))
        if unknown:
            raise ValueError(f"unknown label(s) {unknown}: every label must be one of {CLASS_NAMES}")
        encoded = [tokenizer.encode(text) for text in texts]
        if max_length is None:
            max_length = max(len(ids) for ids in encoded)
            if context_length is not None and max_length > context_length:
                raise ValueError(
                    f"the longest message has {max_length} tokens but the model's context_length is "
                    f"{context_length}: pass max_length={context_length} to truncate longer messages"
                )
        check_length(max_length, context_length)
        self.max_length = max_length
        pad_token_id = end_of_text_id(tokenizer) if pad_token_id is None else pad_token_id
        self.input_ids = torch.tensor([pad_or_truncate(ids, max_length, pad_token_id) for ids in encoded])
        self.labels = torch.tensor([CLASS_NAMES.index(label) for label in labels])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.input_ids[index], self.labels[index]


# ch06_classification/classification.ipynb, 6.5 Model surgery: a classification head
def prepare_for_classification(model: nn.Module, num_classes: int = 2, trainable_blocks: int = 1) -> nn.Module:
    """Turn a pretrained GPTModel into a classifier, in place, and return it.

    Freezes every parameter, replaces ``out_head`` by a new trainable
    ``nn.Linear(emb_dim, num_classes)`` (with bias), and unfreezes the final layer norm and the
    last ``trainable_blocks`` transformer blocks. The model then maps (batch, num_tokens) ids to
    (batch, num_tokens, num_classes) class scores. The new head's weights come from torch's
    random generator: seed it first for reproducible results.
    """
    n_blocks = len(model.trf_blocks)
    if not 0 <= trainable_blocks <= n_blocks:
        raise ValueError(
            f"trainable_blocks must be between 0 and the model's {n_blocks} blocks, got {trainable_blocks}"
        )
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got num_classes={num_classes}")
    model.requires_grad_(False)
    model.out_head = nn.Linear(model.out_head.in_features, num_classes)
    model.final_norm.requires_grad_(True)
    for block in model.trf_blocks[n_blocks - trainable_blocks :]:
        block.requires_grad_(True)
    return model


# ch06_classification/classification.ipynb, 6.6 Which position's output? The last one
def class_logits(model: nn.Module, input_batch: torch.Tensor) -> torch.Tensor:
    """Class scores of each sequence, read at its last position: (batch, num_tokens) -> (batch, num_classes)."""
    return model(input_batch)[:, -1, :]


def calc_class_loss_batch(input_batch, target_batch, model, device) -> torch.Tensor:
    """Mean cross-entropy of one batch: input (batch, num_tokens) ids, target (batch,) class indices."""
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    return F.cross_entropy(class_logits(model, input_batch), target_batch)


def _batches(data_loader, num_batches):
    """The first ``num_batches`` batches of ``data_loader`` (all when None); an empty loader is an error."""
    if len(data_loader) == 0:
        raise ValueError("the data loader is empty: check the dataset and batch_size (drop_last?)")
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    return (batch for _, batch in zip(range(n), data_loader))


@torch.no_grad()
def calc_class_loss_loader(data_loader, model, device, num_batches=None) -> float:
    """Mean per-batch cross-entropy over the first ``num_batches`` batches (all when None)."""
    losses = [calc_class_loss_batch(x, y, model, device).item() for x, y in _batches(data_loader, num_batches)]
    return sum(losses) / len(losses)


@torch.no_grad()
def calc_accuracy_loader(data_loader, model, device, num_batches=None) -> float:
    """Fraction of examples whose highest-scoring class (at the last position) is the label.

    Uses the first ``num_batches`` batches (all when None). Call ``model.eval()`` first, so that
    dropout is off.
    """
    correct = total = 0
    for input_batch, target_batch in _batches(data_loader, num_batches):
        predictions = class_logits(model, input_batch.to(device)).argmax(dim=-1)
        correct += (predictions == target_batch.to(device)).sum().item()
        total += len(target_batch)
    return correct / total


# ch06_classification/classification.ipynb, 6.7 Fine-tuning
def train_classifier(
    model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter, scheduler=None, max_steps=None
):
    """Fine-tune a classifier; return its history for plotting.

    Each step trains on one batch of ``train_loader``. Every ``eval_freq`` steps the model is
    evaluated on the first ``eval_iter`` batches of each loader (an estimate: cheap, but noisy).
    Returns a dict of equally long lists, one entry per evaluation: "examples_seen",
    "train_loss", "val_loss", "train_acc", "val_acc". ``scheduler`` (optional, a
    ``torch.optim.lr_scheduler``) is stepped after every optimizer step. ``max_steps`` (optional)
    ends training after that many steps. Leaves the model in eval mode.
    """
    history = {key: [] for key in ("examples_seen", "train_loss", "val_loss", "train_acc", "val_acc")}
    examples_seen, step = 0, 0
    for epoch in range(num_epochs):
        model.train()
        progress = tqdm(train_loader, desc=f"epoch {epoch + 1}/{num_epochs}")
        for input_batch, target_batch in progress:
            optimizer.zero_grad()
            loss = calc_class_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            examples_seen += len(target_batch)
            step += 1
            if step % eval_freq == 0:
                model.eval()
                history["examples_seen"].append(examples_seen)
                for split, loader in [("train", train_loader), ("val", val_loader)]:
                    history[f"{split}_loss"].append(calc_class_loss_loader(loader, model, device, eval_iter))
                    history[f"{split}_acc"].append(calc_accuracy_loader(loader, model, device, eval_iter))
                model.train()
                progress.set_postfix(
                    train_loss=f"{history['train_loss'][-1]:.3f}", val_loss=f"{history['val_loss'][-1]:.3f}"
                )
            if step == max_steps:
                break
        if history["examples_seen"]:
            tqdm.write(
                f"epoch {epoch + 1}: train accuracy {history['train_acc'][-1]:.1%}, "
                f"validation accuracy {history['val_acc'][-1]:.1%} (last estimates)"
            )
        if step == max_steps:
            break
    model.eval()
    return history


# ch06_classification/classification.ipynb, 6.7.1 The recipe in one call
from torch.utils.data import DataLoader

from shared import fast_path_options, get_device, load_pretrained, load_tokenizer, set_sdpa, set_seed


def finetune_spam_classifier(profile=None, device=None, prepare_model=None, seed=123, recipe=None):
    """Sections 6.2-6.7 in one call: splits, datasets, loaders, base model, new head, fine-tuning.

    Follows ``recipe``, a SpamSettings (default: the profile's, ``SPAM_SETTINGS``; change one
    setting with ``dataclasses.replace(SPAM_SETTINGS["quick"], learning_rate=5e-3)``).
    ``prepare_model`` (optional) is called on the classifier once the new head is in place and the
    recipe has chosen the trainable parameters; it returns the model to fine-tune, and the optimizer
    trains every parameter that then has ``requires_grad``. Returns (model, history, loaders): the
    model in eval mode on ``device``, ``train_classifier``'s history, and a dict of the "train",
    "validation" and "test" DataLoaders. ``seed`` sets the new head's random weights and the order
    of the training batches; the splits stay the same for every seed (section 6.7.3).
    """
    recipe = recipe or SPAM_SETTINGS[settings(profile).profile]
    device = device or get_device()
    tokenizer, paths = load_tokenizer(recipe.base_model), prepare_spam_splits(seed=123)
    model = load_pretrained(recipe.base_model)
    train_ds = SpamDataset(paths["train"], tokenizer, context_length=model.config.context_length)
    loaders = {
        "train": DataLoader(
            train_ds,
            batch_size=recipe.batch_size,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(seed),
        )
    }
    for split in ("validation", "test"):
        dataset = SpamDataset(paths[split], tokenizer, max_length=train_ds.max_length)
        loaders[split] = DataLoader(dataset, batch_size=recipe.batch_size)

    set_seed(seed)
    prepare_for_classification(model, num_classes=len(CLASS_NAMES), trainable_blocks=1)
    if recipe.train_all:
        model.requires_grad_(True)
    if prepare_model is not None:
        model = prepare_model(model)
    model.to(device)
    set_seed(seed)
    set_sdpa(model, True)
    optimizer = torch.optim.AdamW(
        (p for p in model.parameters() if p.requires_grad),
        lr=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        fused=fast_path_options(device)["fused_adamw"],
    )
    total_steps = recipe.num_epochs * len(loaders["train"])
    scheduler = (
        torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=total_steps)
        if recipe.linear_decay
        else None
    )
    history = train_classifier(
        model,
        loaders["train"],
        loaders["validation"],
        optimizer,
        device,
        num_epochs=recipe.num_epochs,
        eval_freq=20,
        eval_iter=5,
        scheduler=scheduler,
        max_steps=recipe.max_steps,
    )
    return model.eval(), history, loaders


# ch06_classification/classification.ipynb, 6.7.2 Looking closer: errors and the confusion matrix
@torch.no_grad()
def predict_loader(model, data_loader, device):
    """(predicted, true): the class indices of every example in ``data_loader``, in order."""
    predicted, true = [], []
    for input_batch, target_batch in data_loader:
        predicted += class_logits(model, input_batch.to(device)).argmax(dim=-1).tolist()
        true += target_batch.tolist()
    return predicted, true


def confusion_matrix(predicted, true, num_classes=len(CLASS_NAMES)):
    """counts[t][p]: how many examples of true class t were predicted as class p."""
    counts = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(true, predicted):
        counts[t][p] += 1
    return counts


# ch06_classification/classification.ipynb, 6.7.3 Is the result real? Three seeds and a control
from shared import GPTModel


def reinitialise_weights(model: nn.Module, seed: int = 123) -> nn.Module:
    """The control of section 6.7.3: fresh random weights everywhere except the classification head.

    The new weights come from a ``GPTModel`` built with the same configuration (chapter 4's
    initialisation, seeded with ``seed``); ``out_head`` and the choice of trainable parameters stay.
    Use it as ``finetune_spam_classifier``'s ``prepare_model``: same architecture and recipe,
    no pretraining. Returns ``model``, changed in place.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = GPTModel(model.config)
    state = {name: value for name, value in fresh.state_dict().items() if not name.startswith("out_head.")}
    state.update({name: value for name, value in model.state_dict().items() if name.startswith("out_head.")})
    model.load_state_dict(state)
    return model


# ch06_classification/classification.ipynb, 6.8 Using the classifier
@torch.no_grad()
def classify_text(text, model, tokenizer, device, max_length=None, pad_token_id=None) -> str:
    """The predicted class name of one message: "spam" or "ham" (see CLASS_NAMES).

    The message is encoded with ``tokenizer`` and, when ``max_length`` is given, padded at the end
    (with ``pad_token_id``, default the tokenizer's <|endoftext|>, as in ``SpamDataset``) or
    truncated to exactly ``max_length`` tokens. Pass the training set's ``max_length``: the
    model learned to read a message at the last position of a row padded that way. Without
    ``max_length`` the message is used as it is. Raises ValueError for an empty message, for
    ``max_length`` above the model's context length, or (without ``max_length``) for a message
    longer than the context. Puts the model in eval mode.
    """
    if not text.strip():
        raise ValueError("the message is empty: there is nothing to classify")
    context_length = model.pos_emb.num_embeddings
    token_ids = tokenizer.encode(text)
    if max_length is None:
        if len(token_ids) > context_length:
            raise ValueError(
                f"the message has {len(token_ids)} tokens but the model's context_length is {context_length}: "
                f"pass max_length={context_length} (or less) to truncate it"
            )
        max_length = len(token_ids)
    check_length(max_length, context_length)
    pad_token_id = end_of_text_id(tokenizer) if pad_token_id is None else pad_token_id
    input_batch = torch.tensor([pad_or_truncate(token_ids, max_length, pad_token_id)], device=device)
    model.eval()
    return CLASS_NAMES[class_logits(model, input_batch).argmax(dim=-1).item()]
