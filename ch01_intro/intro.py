# GENERATED from intro.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
"""Chapter 1 — Understanding large language models"""

def gpt_parameter_breakdown(vocab_size, context_length, emb_dim, n_layers, qkv_bias=True, tie_embeddings=True):
    """Parameters of a GPT-2-style model, per part, computed from its hyperparameters.

    The model is the one this course builds: token and learned position embeddings,
    ``n_layers`` pre-norm transformer blocks (layer norm, multi-head attention, layer norm,
    feed-forward with hidden width ``4 * emb_dim``), a final layer norm and a linear output
    head without bias. Per part, with V = vocab_size, C = context_length, d = emb_dim:

    - token embedding ``V*d``; position embedding ``C*d``;
    - attention ``3*d*d (+ 3*d with qkv_bias)`` for query/key/value plus ``d*d + d`` for
      the output projection, per block;
    - feed-forward ``d*4d + 4d + 4d*d + d`` per block;
    - layer norms ``2*d`` each (scale and shift): two per block plus the final one;
    - output head ``V*d``, or 0 when tied to the token embedding (GPT-2 and GPT-3 tie it).

    The head count does not matter: heads split the same d x d matrices. Chapter 4's
    ``GPTModel(cfg)`` corresponds to ``qkv_bias=cfg.qkv_bias, tie_embeddings=False``.
    Returns a dict {part: count}, in model order.
    """
    for name, value in [("vocab_size", vocab_size), ("context_length", context_length),
                        ("emb_dim", emb_dim), ("n_layers", n_layers)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    d = emb_dim
    return {
        "token embedding": vocab_size * d,
        "position embedding": context_length * d,
        "attention": n_layers * (3 * d * d + (3 * d if qkv_bias else 0) + d * d + d),
        "feed-forward": n_layers * (d * 4 * d + 4 * d + 4 * d * d + d),
        "layer norms": (2 * n_layers + 1) * 2 * d,
        "output head": 0 if tie_embeddings else vocab_size * d,
    }


def count_gpt_parameters(vocab_size, context_length, emb_dim, n_layers, qkv_bias=True, tie_embeddings=True):
    """Total parameters of a GPT-2-style model; see ``gpt_parameter_breakdown`` for the formula.

    The defaults (biases on query/key/value, output head tied to the token embedding)
    describe OpenAI's GPT-2 and GPT-3; e.g. ``count_gpt_parameters(50257, 1024, 768, 12)``
    is GPT-2 small's 124,439,808.
    """
    return sum(gpt_parameter_breakdown(vocab_size, context_length, emb_dim, n_layers,
                                       qkv_bias=qkv_bias, tie_embeddings=tie_embeddings).values())

# GPT-3's training mix (Brown et al., 2020, Table 2.2): tokens in each source and the share
# of training batches drawn from it ("weight"; the published weights are rounded).
GPT3_TRAINING_MIX = {
    "Common Crawl (filtered)": {"tokens": 410e9, "weight": 0.60},
    "WebText2": {"tokens": 19e9, "weight": 0.22},
    "Books1": {"tokens": 12e9, "weight": 0.08},
    "Books2": {"tokens": 55e9, "weight": 0.08},
    "Wikipedia": {"tokens": 3e9, "weight": 0.03},
}
GPT3_TRAINING_TOKENS = 300e9  # tokens GPT-3 saw during training

def training_flops(n_params, n_tokens):
    """Approximate FLOPs to train a transformer: 6 * parameters * training tokens.

    2 FLOPs per parameter and token for the forward pass (a multiply and an add) and about
    4 for the backward pass (Kaplan et al., 2020). The attention scores add a term that
    grows with the context length; it is small for the models in this course and ignored.
    """
    if n_params <= 0 or n_tokens <= 0:
        raise ValueError(f"n_params and n_tokens must be positive, got {n_params} and {n_tokens}")
    return 6 * n_params * n_tokens

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
