"""Self-checks for the chapter 1 exercises (used by intro.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check
never raises on a wrong answer: it explains, so the reader can try again.
"""

import math

from ch01_intro.intro import GPT3_TRAINING_MIX, GPT3_TRAINING_TOKENS, gpt_parameter_breakdown, training_flops
from shared.exercises import call_safely, is_number, not_a_function, not_answered, report

# (tokens, context_size) cases: a limit larger than the text, a limit of 1, a one-token text,
# and contexts shorter than the limit at the start (where `tokens[i - size:i]` goes wrong).
PAIR_CASES = [
    ("the cat sat on the mat".split(), 3),
    (list("abcdefgh"), 1),
    ([5, 9, 2, 7], 10),
    (["solo"], 2),
    (list("abcde"), 2),
]


def _number_problem(name, answer, expected, rel_tol):
    """None if ``answer`` is a finite number within ``rel_tol`` of ``expected``, else what is off."""
    if not is_number(answer):
        return f"{name} should be a number (an int or a float), got a {type(answer).__name__}."
    if not math.isfinite(answer):
        return f"{name} = {answer} is not a finite number."
    if abs(answer - expected) > rel_tol * abs(expected):
        return f"{name} = {answer:.4g} is off."
    return None


def _pairs_problem(got):
    """None if ``got`` is a list of (context, next token) pairs with list/tuple contexts, else what is off."""
    if not isinstance(got, (list, tuple)):
        return f"Return a list of (context, next_token) pairs, not a {type(got).__name__}."
    for pair in got:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            return f"Each item must be a pair (context, next_token); got {pair!r}."
        if not isinstance(pair[0], (list, tuple)):
            return f"Each context must be a list of tokens; got a {type(pair[0]).__name__} in {pair!r}."
    return None


def check_exercise_1(make_pairs):
    """Check ``make_pairs(tokens, context_size)``, which should return the list of
    (context, next token) pairs of ``tokens``, each context being at most the
    ``context_size`` tokens before the target."""
    if not_a_function(make_pairs, "make_pairs(tokens, context_size)"):
        return
    for tokens, size in PAIR_CASES:
        expected = [(list(tokens[max(0, i - size) : i]), tokens[i]) for i in range(1, len(tokens))]
        ok, got = call_safely(make_pairs, list(tokens), size)  # a copy: the reader's code may change it
        if not ok:
            return
        problem = _pairs_problem(got)
        if problem:
            print(f"make_pairs({tokens}, {size}): {problem}")
            return
        got = [(list(context), target) for context, target in got]
        if got == expected:
            continue
        if len(got) != len(expected):
            print(
                f"make_pairs({tokens}, {size}) returned {len(got)} pairs; a text of {len(tokens)} tokens "
                f"gives {len(expected)}: one per token but the first."
            )
        elif got and all(context and context[-1] == target for context, target in got):
            print(
                f"make_pairs({tokens}, {size}): every context ends with its own target; the context is "
                "what comes *before* the next token."
            )
        elif any(len(context) > size for context, _ in got):
            print(f"make_pairs({tokens}, {size}) returned a context longer than {size} tokens: {got}.")
        else:
            print(
                f"make_pairs({tokens}, {size}) returned {got}, expected {expected}. Near the start the "
                "context is shorter than the limit: it begins at position max(0, i - context_size)."
            )
        return
    print("Correct!")


def _if_off(problem, hint):
    """``problem`` with ``hint`` added when the answer is a number that is off (not a wrong type)."""
    return f"{problem} {hint}" if problem and problem.endswith("is off.") else problem


def check_exercise_2(embedding_share, feed_forward_share):
    """Check the shares (fractions between 0 and 1) of GPT-3 175B's parameters that sit in
    the token embedding and in the feed-forward layers (tied output head, 1% tolerance)."""
    if not_answered(embedding_share) or not_answered(feed_forward_share):
        return
    parts = gpt_parameter_breakdown(50257, 2048, 12288, 96)
    total = sum(parts.values())
    problems = []
    for name, answer, part in [
        ("embedding_share", embedding_share, "token embedding"),
        ("feed_forward_share", feed_forward_share, "feed-forward"),
    ]:
        problem = _number_problem(name, answer, parts[part] / total, 0.01)
        if problem and is_number(answer) and answer > 1:
            problem += " It should be a fraction between 0 and 1, not a percentage."
        hint = (
            f"Divide the {part}'s parameters by the total, both from gpt_parameter_breakdown(50257, 2048, 12288, 96)."
        )
        problems.append(_if_off(problem, hint))
    report(*problems)


def check_exercise_3(flops, gpu_hours):
    """Check the 6ND estimate for Llama 2 7B (7e9 parameters, 2e12 tokens) and the A100
    GPU-hours it takes at half of 312 TFLOPS (1% tolerance)."""
    if not_answered(flops) or not_answered(gpu_hours):
        return
    expected_flops = training_flops(7e9, 2e12)
    problem = _number_problem("flops", flops, expected_flops, 0.01)
    if problem:
        print(_if_off(problem, "Use 6 * parameters * training tokens."))
        return
    expected_hours = expected_flops / (0.5 * 312e12) / 3600
    problem = _number_problem("gpu_hours", gpu_hours, expected_hours, 0.01)
    if problem:
        if problem.endswith("is off."):
            ratio = gpu_hours / expected_hours
            if abs(ratio - 3600) < 36:
                problem += " That is in seconds: divide by 3,600 seconds per hour."
            elif abs(ratio - 0.5) < 0.005:
                problem += " That assumes the full 312 TFLOPS peak; the section assumes half of it is sustained."
            else:
                problem += " Divide the FLOPs by the sustained FLOPs per second (0.5 * 312e12), then by 3,600."
        print(problem)
        return
    print("Correct!")
    print(
        "Meta reports 184,320 A100 GPU-hours for Llama 2 7B (Touvron et al., 2023, 'Llama 2', Table 2): "
        "your estimate is the right order of magnitude."
    )


def check_exercise_4(epochs):
    """Check ``epochs``: {source name: how many times GPT-3's training went through that source},
    for every source of ``GPT3_TRAINING_MIX`` (2% tolerance: the published weights are rounded)."""
    if not_answered(epochs):
        return
    if not isinstance(epochs, dict) or set(epochs) != set(GPT3_TRAINING_MIX):
        print(f"epochs must be a dict with exactly the keys {sorted(GPT3_TRAINING_MIX)}.")
        return
    problems = []
    for source, row in GPT3_TRAINING_MIX.items():
        drawn = row["weight"] * GPT3_TRAINING_TOKENS
        problem = _number_problem(f"epochs[{source!r}]", epochs[source], drawn / row["tokens"], 0.02)
        hint = f"Divide the tokens drawn from it during training (weight * {GPT3_TRAINING_TOKENS:.0e}) by the tokens it contains."
        problems.append(_if_off(problem, hint))
    report(*problems)
