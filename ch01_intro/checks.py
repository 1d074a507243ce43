"""Self-checks for the chapter 1 exercises (used by intro.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check
never raises on a wrong answer: it explains, so the reader can try again.
"""

from ch01_intro.intro import GPT3_TRAINING_MIX, GPT3_TRAINING_TOKENS, gpt_parameter_breakdown, training_flops


def _report(problems):
    """Print the self-check verdict: ``Correct!`` or each problem found."""
    print("Correct!" if not problems else "Not yet:\n- " + "\n- ".join(problems))


def _number_problem(name, answer, expected, rel_tol, hint):
    """None if ``answer`` is within ``rel_tol`` of ``expected``, else what is wrong with it."""
    if answer is None:
        return f"{name}: no answer yet"
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return f"{name} should be a number, got {type(answer).__name__}"
    if abs(answer - expected) > rel_tol * abs(expected):
        return f"{name} = {answer:.4g} is off: {hint}"
    return None


def check_exercise_1(make_pairs):
    """Check ``make_pairs(tokens, context_size)``, which should return the list of
    (context, next token) pairs of ``tokens``, each context being at most the
    ``context_size`` tokens before the target."""
    if make_pairs is None:
        return _report(["make_pairs: no answer yet"])
    if not callable(make_pairs):
        return _report([f"pass your function itself, not its result (got a {type(make_pairs).__name__})"])
    cases = [("the cat sat on the mat".split(), 3), (list("abcdefgh"), 1), ([5, 9, 2, 7], 10), (["solo"], 2)]
    problems = []
    for tokens, size in cases:
        expected = [(list(tokens[max(0, i - size):i]), tokens[i]) for i in range(1, len(tokens))]
        try:
            got = [(list(context), target) for context, target in make_pairs(tokens, size)]
        except Exception as exc:  # any failure is reported to the learner, not raised
            problems.append(f"make_pairs({tokens}, {size}) raised {type(exc).__name__}: {exc}")
            continue
        if got != expected:
            problems.append(f"make_pairs({tokens}, {size}) returned {got}, expected {expected}")
    _report(problems)


def check_exercise_2(embedding_share, feed_forward_share):
    """Check the shares (fractions between 0 and 1) of GPT-3 175B's parameters that sit in
    the token embedding and in the feed-forward layers (tied output head, 1% tolerance)."""
    parts = gpt_parameter_breakdown(50257, 2048, 12288, 96)
    total = sum(parts.values())
    problems = [
        _number_problem(name, answer, parts[part] / total, 0.01,
                        f"divide the {part}'s parameters by the total (a fraction, not a percentage)")
        for name, answer, part in [("embedding_share", embedding_share, "token embedding"),
                                   ("feed_forward_share", feed_forward_share, "feed-forward")]
    ]
    _report([p for p in problems if p])


def check_exercise_3(flops, gpu_hours):
    """Check the 6ND estimate for Llama 2 7B (7e9 parameters, 2e12 tokens) and the A100
    GPU-hours it takes at half of 312 TFLOPS (1% tolerance)."""
    expected_flops = training_flops(7e9, 2e12)
    expected_hours = expected_flops / (0.5 * 312e12) / 3600
    problems = [p for p in [
        _number_problem("flops", flops, expected_flops, 0.01, "use 6 * parameters * tokens"),
        _number_problem("gpu_hours", gpu_hours, expected_hours, 0.01,
                        "divide the FLOPs by the sustained FLOPs per second, then by 3600 seconds per hour"),
    ] if p]
    _report(problems)
    if not problems:
        print("Meta reports 184,320 A100 GPU-hours for Llama 2 7B (Touvron et al., 2023, 'Llama 2', Table 2): "
              "your estimate is the right order of magnitude.")


def check_exercise_4(epochs):
    """Check ``epochs``: {source name: how many times GPT-3's training went through that source},
    for every source of ``GPT3_TRAINING_MIX`` (2% tolerance: the published weights are rounded)."""
    if epochs is None:
        return _report(["epochs: no answer yet"])
    if not isinstance(epochs, dict) or set(epochs) != set(GPT3_TRAINING_MIX):
        return _report([f"epochs must be a dict with exactly the keys {sorted(GPT3_TRAINING_MIX)}"])
    problems = [
        _number_problem(source, epochs[source], row["weight"] * GPT3_TRAINING_TOKENS / row["tokens"], 0.02,
                        "divide the tokens drawn from it by the tokens it contains")
        for source, row in GPT3_TRAINING_MIX.items()
    ]
    _report([p for p in problems if p])
