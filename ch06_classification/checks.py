"""Self-checks for the chapter 6 exercises (used by classification.ipynb and solutions.ipynb).

Each ``check_exercise_N(...)`` prints ``Correct!`` or says what is off. A check never raises
on a wrong answer: it explains, so the reader can try again. Accuracies depend on the base
model and the training budget, so the checks test what must hold for any reasonable run.
"""


def _not_answered(*answers):
    if any(answer is None for answer in answers):
        print("Not answered yet: replace the `None`s with your answers, then run the check again.")
        return True
    return False


def _bad_fraction(name, value):
    """A message if ``value`` is not an accuracy between 0 and 1, else None."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return f"{name} should be a number (a fraction between 0 and 1), got {value!r}."
    if 1 < value <= 100:
        return f"{name} = {value}: give a fraction between 0 and 1, not a percentage."
    if not 0 <= value <= 1:
        return f"{name} = {value} is not an accuracy between 0 and 1."
    return None


def _usable(answers, accuracies):
    """True if every answer is given and each named accuracy is a fraction; else say what is off."""
    if _not_answered(*answers):
        return False
    for name, value in accuracies.items():
        problem = _bad_fraction(name, value)
        if problem:
            print(problem)
            return False
    return True


def _trainable(module):
    return [p.requires_grad for p in module.parameters()]


def check_exercise_1(model_other, test_accuracy_other, chapter_trained_all):
    """The classifier fine-tuned with the other choice of trainable parameters, and its test accuracy.

    ``chapter_trained_all``: True if the chapter trained every parameter (``quick``), so the answer
    should train only the last block, final norm and head; False (``book``): the answer trains all.
    """
    if not _usable([model_other, test_accuracy_other], {"test_accuracy_other": test_accuracy_other}):
        return
    head = getattr(model_other, "out_head", None)
    if getattr(head, "out_features", None) != 2:
        print("model_other.out_head should be the 2-class head: start from prepare_for_classification(...).")
        return
    top = [model_other.trf_blocks[-1], model_other.final_norm, model_other.out_head]
    top_ids = {id(p) for module in top for p in module.parameters()}
    below = [p for p in model_other.parameters() if id(p) not in top_ids]
    if not all(all(_trainable(module)) for module in top):
        print("The last block, the final norm and the head must be trainable in both recipes.")
        return
    if chapter_trained_all and any(p.requires_grad for p in below):
        n = sum(p.numel() for p in below if p.requires_grad)
        print(f"{n:,} parameters below the last block are trainable: the chapter trained everything, "
              "so train only the last block, final norm and head (prepare_for_classification alone).")
        return
    if not chapter_trained_all and not all(p.requires_grad for p in below):
        n = sum(p.numel() for p in below if not p.requires_grad)
        print(f"{n:,} parameters are still frozen: the chapter trained the last block only, so "
              "train everything (model_other.requires_grad_(True)).")
        return
    if test_accuracy_other <= 0.6:
        print(f"Test accuracy {test_accuracy_other:.1%} is hardly better than guessing: was the model "
              "fine-tuned (optimizer over its trainable parameters) and evaluated in eval mode?")
        return
    recipe = "last block only" if chapter_trained_all else "every parameter"
    print(f"Correct! {recipe}: test accuracy {test_accuracy_other:.1%}. Compare it, and the training "
          "time, with the chapter's classifier of section 6.7.")


def check_exercise_2(first_token_accuracy, last_token_accuracy):
    """Validation accuracies when reading the class scores at the first vs the last position."""
    accuracies = {"first_token_accuracy": first_token_accuracy, "last_token_accuracy": last_token_accuracy}
    if not _usable(accuracies.values(), accuracies):
        return
    if last_token_accuracy < 0.75:
        print(f"The last-token classifier reaches only {last_token_accuracy:.1%}: train it as in section 6.7.")
        return
    if first_token_accuracy >= last_token_accuracy:
        print("The first position should do worse than the last: does your wrapper return "
              "model(x)[:, :1, :] (position 0 only), and did you train and evaluate through it?")
        return
    print(f"Correct! First position {first_token_accuracy:.1%} vs last position {last_token_accuracy:.1%}. "
          "The first output has seen one token only, so all it can use is how a message begins.")


def check_exercise_3(long_train_dataset, test_accuracy_long, context_length):
    """A training set padded to the full context, and the test accuracy of a classifier trained on it."""
    if not _usable([long_train_dataset, test_accuracy_long], {"test_accuracy_long": test_accuracy_long}):
        return
    max_length = getattr(long_train_dataset, "max_length", None)
    if max_length is None or not hasattr(long_train_dataset, "input_ids"):
        print("long_train_dataset should be a SpamDataset (built with max_length=context_length).")
        return
    if max_length != context_length or long_train_dataset.input_ids.shape[1] != context_length:
        print(f"The rows are {long_train_dataset.input_ids.shape[1]} tokens long, the context is "
              f"{context_length}: pass max_length=context_length.")
        return
    if len(long_train_dataset) != 1045:
        print(f"The dataset has {len(long_train_dataset)} rows: build it from the training split (1,045 rows).")
        return
    if test_accuracy_long <= 0.5:
        print(f"Test accuracy {test_accuracy_long:.1%} is no better than guessing: was the model fine-tuned "
              "on long_train_dataset, and evaluated on test data padded the same way?")
        return
    print(f"Correct! Padded to {context_length} tokens: test accuracy {test_accuracy_long:.1%}. Longer rows "
          "cost time in every step, and the last position now sits far from the message's last word.")
