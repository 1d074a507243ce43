"""Self-checks for the chapter 7 exercises (used by instruction.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check never
raises on a wrong answer: it explains, so the reader can try again. Expected answers come
from the exercise's specification and the chapter's own code (``instruction_collate``,
``GPTModel``), not from stored numbers.
"""

import random

import torch

from shared import GPTConfig, GPTModel, format_input, gpt2_encoding, instruction_collate
from shared.exercises import call_answer, is_integer, not_a_function

NOT_ANSWERED = "Not answered yet: fill in your function, then run the check again."


def check_exercise_1(format_fn):
    """``format_fn`` builds the Phi-3-style prompt described in the exercise."""
    if not_a_function(format_fn, "format_input_phi3(entry)", NOT_ANSWERED):
        return
    cases = [
        ({"instruction": "Name a color.", "input": "", "output": "Blue."}, "<|user|>\nName a color.\n<|assistant|>\n"),
        (
            {"instruction": "Translate into German.", "input": "thank you", "output": "danke"},
            "<|user|>\nTranslate into German.\nthank you\n<|assistant|>\n",
        ),
        (
            {"instruction": "Say hi.", "output": "Hi."},  # no input field at all
            "<|user|>\nSay hi.\n<|assistant|>\n",
        ),
    ]
    prompts = []
    for entry, expected in cases:
        ok, got = call_answer(format_fn, dict(entry), message=NOT_ANSWERED)  # a copy: the answer may change it
        if not ok:
            return
        if not isinstance(got, str):
            print(f"Not yet: return the prompt as a string, not a {type(got).__name__}.")
            return
        if got != expected:
            print(f"Not yet: for {entry} expected\n{expected!r}\nbut got\n{got!r}")
            return
        prompts.append(got)
    tokenizer = gpt2_encoding()
    ours, alpaca = len(tokenizer.encode(prompts[1])), len(tokenizer.encode(format_input(cases[1][0])))
    print(
        f"Correct! This prompt has {ours} tokens where Alpaca's has {alpaca}: "
        f"{alpaca - ours} fewer tokens to process in every example."
    )


def _random_batch(rng):
    batch = []
    for _ in range(rng.randint(1, 5)):
        ids = [rng.randrange(50256) for _ in range(rng.randint(1, 9))]
        batch.append((ids, rng.randint(0, len(ids))))
    return batch


def check_exercise_2(mask_fn):
    """``mask_fn(targets, prompt_lengths, ignore_index)`` equals ``instruction_collate(mask_prompt=True)``."""
    if not_a_function(mask_fn, "mask_prompt_targets(targets, prompt_lengths, ignore_index=-100)", NOT_ANSWERED):
        return
    rng = random.Random(0)
    for _ in range(200):
        batch = _random_batch(rng)
        _, targets = instruction_collate(batch)
        _, expected = instruction_collate(batch, mask_prompt=True)
        original = targets.clone()
        ok, got = call_answer(mask_fn, targets, [p for _, p in batch], -100, message=NOT_ANSWERED)
        if not ok:
            return
        if not torch.equal(targets, original):
            print("Not yet: your function changed the targets tensor it was given; work on a copy (.clone()).")
            return
        if not isinstance(got, torch.Tensor) or not torch.equal(got, expected):
            print(
                f"Not yet: for the batch {batch}\nexpected\n{expected}\nbut got\n{got}\n"
                "Hint: the target at position j is token j + 1, so a prompt of p tokens "
                "covers targets 0 .. p - 2."
            )
            return
    print("Correct! Your masking matches instruction_collate(mask_prompt=True) on 200 random batches.")


def _tiny_model(tied):
    torch.manual_seed(0)
    model = GPTModel(GPTConfig(vocab_size=50, context_length=8, emb_dim=8, n_heads=2, n_layers=3, drop_rate=0.0))
    if tied:
        model.out_head.weight = model.tok_emb.weight
    return model


def check_exercise_3(freeze_fn):
    """``freeze_fn(model, num_blocks)`` leaves only the top blocks, final norm and head trainable."""
    if not_a_function(freeze_fn, "freeze_all_but_top(model, num_blocks)", NOT_ANSWERED):
        return
    for tied in (False, True):
        for num_blocks in (0, 1, 3):
            model = _tiny_model(tied)
            ok, count = call_answer(freeze_fn, model, num_blocks, message=NOT_ANSWERED)
            if not ok:
                return
            first_trainable = len(model.trf_blocks) - num_blocks
            expected = {id(p) for block in model.trf_blocks[first_trainable:] for p in block.parameters()}
            expected |= {id(p) for p in model.final_norm.parameters()} | {id(model.out_head.weight)}
            wrong = [name for name, p in model.named_parameters() if p.requires_grad != (id(p) in expected)]
            where = f"(num_blocks={num_blocks}, {'tied' if tied else 'separate'} output head)"
            if wrong:
                print(f"Not yet {where}: these parameters have the wrong requires_grad: {wrong}")
                return
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            if not is_integer(count):
                print(f"Not yet: return the number of parameters that train (an int), not a {type(count).__name__}.")
                return
            if count != trainable:
                print(
                    f"Not yet {where}: you returned {count}, but {trainable:,} parameters train. "
                    "Count each parameter once (model.parameters() skips a shared one)."
                )
                return
    print("Correct! Only the top blocks, the final norm and the output head train.")
