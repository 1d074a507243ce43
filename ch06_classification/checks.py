"""Self-checks for the chapter 6 exercises (used by classification.ipynb and solutions.ipynb).

Each ``check_exercise_N(...)`` prints ``Correct!`` or says what is off. A check never raises
on a wrong answer: it explains, so the reader can try again. The checks take the reader's
models, not numbers typed in: they measure each accuracy themselves, on the chapter's splits
padded as in the chapter, with the model in evaluation mode. Accuracies depend on the base
model and the training budget, so the checks test what must hold for any reasonable run.
"""

from functools import lru_cache

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from shared import SPAM_SETTINGS, SpamDataset, calc_accuracy_loader, load_tokenizer, prepare_spam_splits, settings
from shared.exercises import call_safely, is_integer, is_number, not_answered, report

NOT_ANSWERED = "Not answered yet: replace the `None`s with your answers, then run the check again."


def chapter_tokenizer():
    """The tokenizer the chapter encodes messages with: its base model's own (course-base's in ``quick``)."""
    return load_tokenizer(SPAM_SETTINGS[settings().profile].base_model)


@lru_cache(maxsize=4)
def _dataset(split: str, max_length: int | None = None) -> SpamDataset:
    """One of the chapter's splits, encoded with the chapter's tokenizer.

    ``max_length=None`` pads to the longest training message, as the chapter pads every split.
    """
    paths = prepare_spam_splits(seed=123)
    if max_length is None and split != "train":
        max_length = _dataset("train").max_length
    return SpamDataset(paths[split], chapter_tokenizer(), max_length=max_length)


def _model_problem(name, model):
    """None if ``model`` is a module with parameters, else what is off."""
    if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
        return f"{name} should be your fine-tuned classifier (an nn.Module), got {type(model).__name__}."
    return None


def _accuracy(model, split, max_length=None):
    """(ok, accuracy of ``model`` on ``split``), measured in evaluation mode on the model's device."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        loader = DataLoader(_dataset(split, max_length), batch_size=8)
        ok, accuracy = call_safely(calc_accuracy_loader, loader, model, device)
    finally:
        model.train(was_training)
    if not ok:
        print("(That error came from running your model on the chapter's data.)")
    return ok, accuracy


def _fraction_problem(name, value):
    """A message if ``value`` is not an accuracy between 0 and 1, else None."""
    if not is_number(value):
        return f"{name} should be a number (a fraction between 0 and 1), got {value!r}."
    if 1 < value <= 100:
        return f"{name} = {value}: give a fraction between 0 and 1, not a percentage."
    if not 0 <= value <= 1:
        return f"{name} = {value} is not an accuracy between 0 and 1."
    return None


def _trainable(module):
    return [p.requires_grad for p in module.parameters()]


def _recipe_problem(model_other, chapter_trained_all):
    """None if ``model_other`` trains the other choice of parameters than the chapter, else what is off."""
    if not all(isinstance(getattr(model_other, name, None), nn.Module) for name in ("trf_blocks", "final_norm")):
        return (
            "model_other should be the classifier itself, a GPTModel with trf_blocks, final_norm and the new "
            "out_head: start from prepare_for_classification(...)."
        )
    head = getattr(model_other, "out_head", None)
    if getattr(head, "out_features", None) != 2:
        return "model_other.out_head should be the 2-class head: start from prepare_for_classification(...)."
    top = [model_other.trf_blocks[-1], model_other.final_norm, model_other.out_head]
    top_ids = {id(p) for module in top for p in module.parameters()}
    below = [p for p in model_other.parameters() if id(p) not in top_ids]
    if not all(all(_trainable(module)) for module in top):
        return "The last block, the final norm and the head must be trainable in both recipes."
    if chapter_trained_all and any(p.requires_grad for p in below):
        n = sum(p.numel() for p in below if p.requires_grad)
        return (
            f"{n:,} parameters below the last block are trainable: the chapter trained everything, "
            "so train only the last block, final norm and head (prepare_for_classification alone)."
        )
    if not chapter_trained_all and not all(p.requires_grad for p in below):
        n = sum(p.numel() for p in below if not p.requires_grad)
        return (
            f"{n:,} parameters are still frozen: the chapter trained the last block only, so "
            "train everything (model_other.requires_grad_(True))."
        )
    return None


def check_exercise_1(model_other, test_accuracy_other, chapter_trained_all):
    """The classifier fine-tuned with the other choice of trainable parameters, and its test accuracy.

    ``chapter_trained_all``: True if the chapter trained every parameter (``quick``), so the answer
    should train only the last block, final norm and head; False (``book``): the answer trains all.
    The check measures ``model_other``'s test accuracy itself and compares it with the one reported.
    """
    if not_answered(model_other, NOT_ANSWERED) or not_answered(test_accuracy_other, NOT_ANSWERED):
        return
    if not isinstance(chapter_trained_all, bool):
        print(f"Pass TRAIN_ALL (True or False) as the third argument, not {chapter_trained_all!r}.")
        return
    problem = (
        _model_problem("model_other", model_other)
        or _fraction_problem("test_accuracy_other", test_accuracy_other)
        or _recipe_problem(model_other, chapter_trained_all)
    )
    if problem:
        print(problem)
        return
    ok, measured = _accuracy(model_other, "test")
    if not ok:
        return
    one_message = 1 / len(_dataset("test"))
    recipe = "last block only" if chapter_trained_all else "every parameter"
    report(
        f"You report {test_accuracy_other:.1%}, but model_other classifies {measured:.1%} of the test messages "
        "correctly (measured here in eval mode, on the test split padded like the training set). Report "
        "calc_accuracy_loader(test_loader, model_other, device) after model_other.eval()."
        if abs(test_accuracy_other - measured) > one_message + 1e-9
        else None,
        f"Test accuracy {measured:.1%} is hardly better than guessing: was the model fine-tuned (optimizer "
        "over its trainable parameters)?"
        if measured <= 0.6
        else None,
        correct=f"Correct! {recipe}: test accuracy {measured:.1%}. Compare it, and the training time, with the "
        "chapter's classifier of section 6.7.",
    )


def _reads_first_position_only(model) -> bool | None:
    """True if ``model``'s class scores (at its last output position) ignore every token after the first.

    Two batches of validation messages that agree in their first token only are compared;
    None (after printing why) if the model raised.
    """
    inputs = _dataset("validation").input_ids[:8]
    changed = inputs.clone()
    changed[:, 1:] = inputs[:, 1:].roll(1, dims=0)  # the other messages' tails
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ok, scores = call_safely(lambda x: model(x.to(device))[:, -1, :], inputs)
            ok_changed, scores_changed = call_safely(lambda x: model(x.to(device))[:, -1, :], changed)
    finally:
        model.train(was_training)
    if not (ok and ok_changed):
        return None
    return torch.allclose(scores, scores_changed, atol=1e-5)


def check_exercise_2(first_token_model, last_token_model):
    """Classifiers reading their class scores at the first and at the last position, fine-tuned alike.

    The check measures both validation accuracies itself, and checks that ``first_token_model``
    really reads position 0 only (its scores stay the same when every later token changes) and
    ``last_token_model`` does not.
    """
    if not_answered(first_token_model, NOT_ANSWERED) or not_answered(last_token_model, NOT_ANSWERED):
        return
    problem = _model_problem("first_token_model", first_token_model) or _model_problem(
        "last_token_model", last_token_model
    )
    if problem:
        print(problem)
        return
    first_only = _reads_first_position_only(first_token_model)
    if first_only is None:
        return
    if not first_only:
        print(
            "first_token_model's class scores change when later tokens change, so it does not read the first "
            "position: wrap the classifier in a module whose forward returns model(x)[:, :1, :]."
        )
        return
    last_first_only = _reads_first_position_only(last_token_model)
    if last_first_only is None:
        return
    if last_first_only:
        print("last_token_model reads the first position too: pass the chapter's classifier, which reads the last.")
        return
    ok, first_accuracy = _accuracy(first_token_model, "validation")
    ok_last, last_accuracy = _accuracy(last_token_model, "validation") if ok else (False, None)
    if not ok_last:
        return
    report(
        f"The last-token classifier reaches only {last_accuracy:.1%} on the validation set: train it as in section 6.7."
        if last_accuracy < 0.75
        else None,
        f"The first-position classifier reaches {first_accuracy:.1%}, little better than guessing: fine-tune it "
        "through the wrapper (train_classifier(first_token_model, ...)), not only the model inside."
        if first_accuracy < 0.55
        else None,
        "The first position should do worse than the last: were both fine-tuned with the same budget?"
        if first_accuracy >= last_accuracy
        else None,
        correct=f"Correct! First position {first_accuracy:.1%} vs last position {last_accuracy:.1%} (validation). "
        "The first output has seen one token only, so all it can use is how a message begins.",
    )


def check_exercise_3(long_train_dataset, model_long, context_length):
    """A training set padded to the full context, and the classifier fine-tuned on it.

    The check rebuilds the training split padded to ``context_length`` and compares it with
    ``long_train_dataset``, then measures ``model_long``'s accuracy on the test split padded the
    same way.
    """
    if not_answered(long_train_dataset, NOT_ANSWERED) or not_answered(model_long, NOT_ANSWERED):
        return
    if not is_integer(context_length):
        print(f"Pass the model's context_length (an int) as the last argument, not {context_length!r}.")
        return
    max_length = getattr(long_train_dataset, "max_length", None)
    input_ids = getattr(long_train_dataset, "input_ids", None)
    if not isinstance(max_length, int) or not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        print("long_train_dataset should be a SpamDataset (built with max_length=context_length).")
        return
    if max_length != context_length or input_ids.shape[1] != context_length:
        print(
            f"The rows are {input_ids.shape[1]} tokens long, the context is {context_length}: "
            "pass max_length=context_length."
        )
        return
    expected = _dataset("train", context_length)
    if len(long_train_dataset) != len(expected):
        print(
            f"The dataset has {len(long_train_dataset)} rows: build it from the training split "
            f"({len(expected):,} rows)."
        )
        return
    if not torch.equal(input_ids, expected.input_ids):
        print(
            "The rows differ from the training split's messages padded to the context: build it with "
            "SpamDataset(train_csv, tokenizer, max_length=context_length), in the split's order."
        )
        return
    problem = _model_problem("model_long", model_long)
    if problem:
        print(problem)
        return
    ok, measured = _accuracy(model_long, "test", context_length)
    if not ok:
        return
    report(
        f"model_long classifies {measured:.1%} of the test messages (padded to {context_length} tokens) correctly, "
        "hardly better than guessing: was it fine-tuned on long_train_dataset?"
        if measured <= 0.6
        else None,
        correct=f"Correct! Padded to {context_length} tokens: test accuracy {measured:.1%}. Longer rows cost time "
        "in every step, and the last position now sits far from the message's last word.",
    )
