# GENERATED from intro.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
# ruff: noqa: E402 (each cell keeps its own imports, where the notebook needs them)
"""Chapter 1 — Understanding large language models"""

__all__ = [
    "GPT3_TRAINING_MIX",
    "GPT3_TRAINING_TOKENS",
    "count_gpt_parameters",
    "gpt_parameter_breakdown",
    "training_flops",
]


# ch01_intro/intro.ipynb, 1.5.1 GPT-3's training data
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


# ch01_intro/intro.ipynb, 1.5.2 What pretraining costs
def training_flops(n_params, n_tokens):
    """Approximate FLOPs to train a transformer: 6 * parameters * training tokens.

    2 FLOPs per parameter and token for the forward pass (a multiply and an add) and about
    4 for the backward pass (Kaplan et al., 2020). The attention scores add a term that
    grows with the context length; it is small for the models in this course and ignored.
    """
    if n_params <= 0 or n_tokens <= 0:
        raise ValueError(f"n_params and n_tokens must be positive, got {n_params} and {n_tokens}")
    return 6 * n_params * n_tokens


# ch01_intro/intro.ipynb, 1.6.2 How large: counting a GPT's parameters
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
    for name, value in [
        ("vocab_size", vocab_size),
        ("context_length", context_length),
        ("emb_dim", emb_dim),
        ("n_layers", n_layers),
    ]:
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
    return sum(
        gpt_parameter_breakdown(
            vocab_size, context_length, emb_dim, n_layers, qkv_bias=qkv_bias, tie_embeddings=tie_embeddings
        ).values()
    )
