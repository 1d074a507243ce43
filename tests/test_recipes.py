"""One recipe per fine-tuning chapter: the notebook's cells, the one-call function and the pipeline agree.

Chapter 6 and chapter 7 build their fine-tuning step by step in the notebook, then export the
same recipe as one function (``finetune_spam_classifier``, ``finetune_instruction_model``) that
``llm-course run`` calls with the same settings object. Each test replays the notebook's cells
in their order (including the loss estimates that draw from the training shuffle before
training, and the restart of that shuffle), on a tiny base model and a few steps, and asserts
the function and the pipeline stage produce the same numbers, bit for bit: the same code on the
same CPU in the same order must give identical floats.
"""

import dataclasses

import pytest
import torch
from torch.utils.data import DataLoader

from ch05_pretraining import pretraining as ch05
from ch06_classification import classification as ch06
from ch07_instruction import instruction as ch07
from llm_course import stages
from shared import GPTConfig, GPTModel, calc_loss_loader, fast_path_options, gpt2_encoding, set_sdpa, set_seed

TINY = GPTConfig(vocab_size=50257, context_length=128, emb_dim=16, n_heads=2, n_layers=1, drop_rate=0.0)


def tiny_base(name):
    """Stands in for load_pretrained: the same small random GPT every time it is called."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return GPTModel(TINY).eval()


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def run_context(tmp_path, profile="quick"):
    return stages.RunContext(profile=profile, out=tmp_path, plan=stages.PLANS[profile], device=torch.device("cpu"))


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """An empty course cache; the data comes through the mirror, as in every test run."""
    monkeypatch.setenv("LLM_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LLM_COURSE_PROFILE", raising=False)


@pytest.fixture
def spam_recipe(empty_cache, monkeypatch):
    monkeypatch.setattr(ch06, "load_pretrained", tiny_base)
    monkeypatch.setattr(ch06, "load_tokenizer", lambda name: gpt2_encoding())
    recipe = dataclasses.replace(ch06.SPAM_SETTINGS["quick"], batch_size=16, max_steps=6)
    monkeypatch.setitem(ch06.SPAM_SETTINGS, "quick", recipe)
    return recipe


def spam_notebook_cells(recipe, restart_shuffle=True):
    """Sections 6.2-6.7 of the notebook, cell by cell (with a tiny base model)."""
    tokenizer, paths = gpt2_encoding(), ch06.prepare_spam_splits(seed=123)
    train_dataset = ch06.SpamDataset(paths["train"], tokenizer, context_length=TINY.context_length)
    val_dataset = ch06.SpamDataset(paths["validation"], tokenizer, max_length=train_dataset.max_length)
    test_dataset = ch06.SpamDataset(paths["test"], tokenizer, max_length=train_dataset.max_length)
    train_loader = DataLoader(
        train_dataset,
        batch_size=recipe.batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(123),
    )
    val_loader = DataLoader(val_dataset, batch_size=recipe.batch_size)
    test_loader = DataLoader(test_dataset, batch_size=recipe.batch_size)
    next(iter(val_loader))
    model = tiny_base(recipe.base_model)
    set_seed(123)
    ch06.prepare_for_classification(model, num_classes=len(ch06.CLASS_NAMES), trainable_blocks=1)
    if recipe.train_all:
        model.requires_grad_(True)
    for loader in (train_loader, val_loader, test_loader):  # 6.6: the untrained head's accuracy
        ch06.calc_accuracy_loader(loader, model, "cpu", num_batches=10)
    set_seed(123)
    if restart_shuffle:
        train_loader.generator.manual_seed(123)
    set_sdpa(model, True)
    optimizer = torch.optim.AdamW(
        (p for p in model.parameters() if p.requires_grad),
        lr=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        fused=fast_path_options("cpu")["fused_adamw"],
    )
    total_steps = recipe.num_epochs * len(train_loader)
    scheduler = (
        torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=total_steps)
        if recipe.linear_decay
        else None
    )
    ch06.train_classifier(
        model,
        train_loader,
        val_loader,
        optimizer,
        "cpu",
        num_epochs=recipe.num_epochs,
        eval_freq=20,
        eval_iter=5,
        scheduler=scheduler,
        max_steps=recipe.max_steps,
    )
    return model.eval(), {"validation": val_loader, "test": test_loader}


def test_spam_notebook_function_and_pipeline_give_the_same_classifier(spam_recipe, tmp_path):
    notebook_model, loaders = spam_notebook_cells(spam_recipe)
    model, _, _ = ch06.finetune_spam_classifier("quick", "cpu", recipe=spam_recipe)
    assert same_weights(model, notebook_model), "finetune_spam_classifier and the notebook's cells differ"
    accuracy = {split: ch06.calc_accuracy_loader(loader, notebook_model, "cpu") for split, loader in loaders.items()}
    result = stages.finetune_spam(run_context(tmp_path))
    assert {split: result["accuracy"][split] for split in accuracy} == accuracy


def test_spam_recipe_equality_can_fail(spam_recipe):
    """Without the restart of the shuffle, the notebook would train on another order of batches."""
    notebook_model, _ = spam_notebook_cells(spam_recipe, restart_shuffle=False)
    model, _, _ = ch06.finetune_spam_classifier("quick", "cpu", recipe=spam_recipe)
    assert not same_weights(model, notebook_model)


@pytest.fixture
def instruction_recipe(empty_cache, monkeypatch):
    entries = ch07.load_instruction_data()[:200]
    monkeypatch.setattr(ch07, "load_instruction_data", lambda: list(entries))
    monkeypatch.setattr(ch07, "load_pretrained", tiny_base)
    for module in (ch05, ch07):  # the pipeline stage reads the tokenizer through chapter 5
        monkeypatch.setattr(module, "load_tokenizer", lambda name: gpt2_encoding())
    recipe = dataclasses.replace(ch07.FINETUNE_SETTINGS["quick"], batch_size=8, max_steps=5)
    monkeypatch.setitem(ch07.FINETUNE_SETTINGS, "quick", recipe)
    return recipe


def instruction_notebook_cells(recipe, restart_shuffle=True):
    """Sections 7.2-7.6 of the notebook, cell by cell (with a tiny base model)."""
    tokenizer = gpt2_encoding()
    train_entries, _, val_entries = ch07.split_entries(ch07.load_instruction_data(), seed=123)
    train_loader, val_loader = ch07.make_instruction_loaders(
        train_entries,
        val_entries,
        tokenizer,
        recipe.batch_size,
        TINY.context_length,
        device="cpu",
        mask_prompt=recipe.mask_prompt,
    )
    next(iter(val_loader))
    model = tiny_base(recipe.base_model)
    with torch.no_grad():  # 7.6: the losses before fine-tuning
        calc_loss_loader(train_loader, model, "cpu", num_batches=5)
        calc_loss_loader(val_loader, model, "cpu", num_batches=5)
    set_seed(123)
    if restart_shuffle:
        train_loader.generator.manual_seed(123)
    history = ch07.finetune(
        model,
        train_loader,
        val_loader,
        recipe,
        "cpu",
        start_context=ch07.format_input(val_entries[0]),
        tokenizer=tokenizer,
    )
    return model.eval(), history


def test_instruction_notebook_function_and_pipeline_give_the_same_model(instruction_recipe, tmp_path, capsys):
    notebook_model, notebook_history = instruction_notebook_cells(instruction_recipe)
    model, history = ch07.finetune_instruction_model("quick", "cpu", recipe=instruction_recipe)
    assert same_weights(model, notebook_model), "finetune_instruction_model and the notebook's cells differ"
    assert history["val_losses"] == notebook_history["val_losses"]
    stages.finetune_instructions(run_context(tmp_path))
    assert same_weights(stages.read_run_model(tmp_path), notebook_model)


def test_instruction_recipe_equality_can_fail(instruction_recipe, capsys):
    """Without the restart of the shuffle, the notebook would train on another order of batches."""
    notebook_model, _ = instruction_notebook_cells(instruction_recipe, restart_shuffle=False)
    model, _ = ch07.finetune_instruction_model("quick", "cpu", recipe=instruction_recipe)
    assert not same_weights(model, notebook_model)
