# GENERATED from gpt_model.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
# ruff: noqa: E402 (each cell keeps its own imports, where the notebook needs them)
"""Chapter 4 — Implementing a GPT model from scratch"""

__all__ = [
    "FeedForward",
    "GELU",
    "GPTConfig",
    "GPTModel",
    "GPT_CONFIGS",
    "LayerNorm",
    "TransformerBlock",
    "count_parameters",
    "generate_text_simple",
]


# ch04_gpt_model/gpt_model.ipynb, setup
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from shared import MultiHeadAttention


# ch04_gpt_model/gpt_model.ipynb, 4.1.1 The configuration
@dataclass(frozen=True)
class GPTConfig:
    """The hyperparameters that fix a GPT model's shape (frozen: make variants with
    ``dataclasses.replace(cfg, drop_rate=0.0)``).

    vocab_size:     number of token ids the model reads and predicts (GPT-2's BPE: 50,257).
    context_length: the most tokens the model can see at once (rows of the position embedding).
    emb_dim:        width of every token vector inside the model.
    n_heads:        attention heads per block; each gets emb_dim // n_heads features.
    n_layers:       number of transformer blocks stacked on top of each other.
    drop_rate:      dropout probability on embeddings, attention weights and shortcut branches.
    qkv_bias:       whether the query/key/value projections have a bias (GPT-2: yes).
    use_sdpa:       compute attention with PyTorch's fused kernel (same result, faster).
    """

    vocab_size: int = 50257
    context_length: int = 1024
    emb_dim: int = 768
    n_heads: int = 12
    n_layers: int = 12
    drop_rate: float = 0.1
    qkv_bias: bool = False
    use_sdpa: bool = False

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.emb_dim % self.n_heads != 0:
            nearest = self.n_heads * max(1, round(self.emb_dim / self.n_heads))
            raise ValueError(
                f"emb_dim ({self.emb_dim}) must be divisible by n_heads ({self.n_heads}) so that every "
                f"head gets emb_dim // n_heads features: use e.g. emb_dim={nearest}"
            )
        drop = self.drop_rate
        if isinstance(drop, bool) or not isinstance(drop, (int, float)) or not 0 <= drop < 1:
            raise ValueError(f"GPTConfig.drop_rate must be a number in [0, 1), got {drop!r}")
        for name in ("qkv_bias", "use_sdpa"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"GPTConfig.{name} must be True or False, got {getattr(self, name)!r}")


# ch04_gpt_model/gpt_model.ipynb, 4.1.1 The configuration
# The four sizes OpenAI released (Radford et al., 2019). All read GPT-2's 50,257-token
# vocabulary, see 1,024 tokens and use biases in the query/key/value projections.
GPT_CONFIGS = {
    "gpt2-small (124M)": GPTConfig(emb_dim=768, n_layers=12, n_heads=12, qkv_bias=True),
    "gpt2-medium (355M)": GPTConfig(emb_dim=1024, n_layers=24, n_heads=16, qkv_bias=True),
    "gpt2-large (774M)": GPTConfig(emb_dim=1280, n_layers=36, n_heads=20, qkv_bias=True),
    "gpt2-xl (1558M)": GPTConfig(emb_dim=1600, n_layers=48, n_heads=25, qkv_bias=True),
}


# ch04_gpt_model/gpt_model.ipynb, 4.2 Normalizing activations with layer normalization
class LayerNorm(nn.Module):
    """Normalise each token vector to mean 0 and variance 1, then rescale and shift it.

    x (..., emb_dim) -> same shape: y = scale * (x - mean) / sqrt(var + eps) + shift, with the
    mean and variance of each token vector over its last dimension, so every token is
    normalised on its own. The variance divides by emb_dim (not emb_dim - 1), as GPT-2 does.
    ``scale`` and ``shift`` (emb_dim,) are learned and start as the identity, letting training
    undo the normalisation where it hurts. PyTorch's fused ``F.layer_norm`` evaluates the
    formula in one pass instead of eight tensor operations.
    """

    def __init__(self, emb_dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        return F.layer_norm(x, self.scale.shape, self.scale, self.shift, self.eps)


# ch04_gpt_model/gpt_model.ipynb, 4.3.1 GELU
class GELU(nn.Module):
    """The GELU activation in its tanh approximation, the form GPT-2 was trained with.

    Elementwise: x (any shape) -> same shape,
        0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3))),
    computed by PyTorch's fused kernel. Close to ReLU for large |x|, but smooth, and slightly
    negative for small negative inputs.
    """

    def forward(self, x):
        return F.gelu(x, approximate="tanh")


# ch04_gpt_model/gpt_model.ipynb, 4.3.2 The feed-forward network
class FeedForward(nn.Module):
    """The per-token MLP of a transformer block: widen 4x, GELU, project back.

    x (batch, num_tokens, emb_dim) -> (batch, num_tokens, emb_dim). Every token goes
    through the same two linear layers independently; the 4 * emb_dim hidden layer is
    where most of a GPT's parameters live.
    """

    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg.emb_dim, 4 * cfg.emb_dim),
            GELU(),
            nn.Linear(4 * cfg.emb_dim, cfg.emb_dim),
        )

    def forward(self, x):
        return self.layers(x)


# ch04_gpt_model/gpt_model.ipynb, 4.5 The transformer block
class TransformerBlock(nn.Module):
    """One GPT-2 block: pre-LayerNorm attention and feed-forward, each wrapped in a shortcut.

    x (batch, num_tokens, emb_dim) -> same shape:
        x = x + dropout(attention(norm1(x)))
        x = x + dropout(feed_forward(norm2(x)))
    ``cache`` (chapter 5's key/value cache) is handed to the attention layer unchanged.
    """

    def __init__(self, cfg):
        super().__init__()
        self.norm1 = LayerNorm(cfg.emb_dim)
        self.att = MultiHeadAttention(
            d_in=cfg.emb_dim,
            d_out=cfg.emb_dim,
            context_length=cfg.context_length,
            dropout=cfg.drop_rate,
            num_heads=cfg.n_heads,
            qkv_bias=cfg.qkv_bias,
            use_sdpa=cfg.use_sdpa,
        )
        self.norm2 = LayerNorm(cfg.emb_dim)
        self.ff = FeedForward(cfg)
        self.drop_shortcut = nn.Dropout(cfg.drop_rate)

    def forward(self, x, cache=None):
        x = x + self.drop_shortcut(self.att(self.norm1(x), cache=cache))
        x = x + self.drop_shortcut(self.ff(self.norm2(x)))
        return x


# ch04_gpt_model/gpt_model.ipynb, 4.6.2 The full model, as a diff from the minimal one
class GPTModel(nn.Module):
    """A GPT-2-style language model: token ids -> next-token logits at every position.

    idx (batch, num_tokens) int64 -> logits (batch, num_tokens, vocab_size).
    Token embedding + position embedding -> dropout -> n_layers TransformerBlocks ->
    final LayerNorm -> linear output head. The head is a separate matrix ("untied");
    GPT-2 shares it with the token embedding, which ``model.out_head.weight =
    model.tok_emb.weight`` reproduces.

    ``forward(idx, cache=None)``: with a key/value cache (chapter 5), ``idx`` holds only
    the new tokens; their positions start at ``cache.length`` and the model calls
    ``cache.advance(num_tokens)`` once every block has stored its keys and values.
    """

    def __init__(self, cfg):
        super().__init__()
        if not isinstance(cfg, GPTConfig):
            raise TypeError(
                f"GPTModel needs a GPTConfig, got {type(cfg).__name__}: use GPTConfig(...) or GPT_CONFIGS[name]"
            )
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim)
        self.drop_emb = nn.Dropout(cfg.drop_rate)
        self.trf_blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_layers))
        self.final_norm = LayerNorm(cfg.emb_dim)
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)

    def forward(self, idx, cache=None):
        if idx.dim() != 2:
            raise ValueError(
                f"idx must have shape (batch, num_tokens), got {idx.dim()}-D shape {tuple(idx.shape)}: "
                "for a single sequence use idx.unsqueeze(0)"
            )
        num_tokens = idx.shape[1]
        start = cache.length if cache is not None else 0
        context_length = self.config.context_length
        if num_tokens == 0:
            raise ValueError("idx holds no tokens: pass at least one token id per sequence")
        if cache is None and num_tokens > context_length:
            raise ValueError(
                f"input has {num_tokens} tokens but the model's context_length is {context_length}: "
                f"keep only the last {context_length} tokens (generate_text_simple does this) "
                "or build the model with a larger context_length"
            )
        if start + num_tokens > context_length:
            raise ValueError(
                f"{start} cached + {num_tokens} new tokens = {start + num_tokens} positions, more than "
                f"the model's context_length {context_length}: start a fresh cache from the last "
                f"{context_length} tokens or fewer"
            )
        positions = torch.arange(start, start + num_tokens, device=idx.device)  # (num_tokens,)
        x = self.tok_emb(idx) + self.pos_emb(positions)  # (batch, num_tokens, emb_dim)
        x = self.drop_emb(x)
        for block in self.trf_blocks:
            x = block(x, cache=cache)
        logits = self.out_head(self.final_norm(x))  # (batch, num_tokens, vocab_size)
        if cache is not None:
            cache.advance(num_tokens)
        return logits


# ch04_gpt_model/gpt_model.ipynb, 4.6.3 Counting parameters
def count_parameters(module):
    """Number of trainable numbers in ``module``; a tensor shared by two layers counts once."""
    return sum(p.numel() for p in module.parameters())


# ch04_gpt_model/gpt_model.ipynb, 4.7 Generating text
def generate_text_simple(model, idx, max_new_tokens, context_size):
    """Extend every sequence in ``idx`` by ``max_new_tokens`` greedily chosen tokens.

    idx (batch, num_tokens) int64 -> (batch, num_tokens + max_new_tokens). At each step
    the model sees only the last ``context_size`` tokens (a longer prompt is cropped,
    never an error), and the id with the largest logit at the last position is appended.
    Greedy decoding is deterministic once dropout is off: call ``model.eval()`` first.
    """
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if isinstance(context_size, bool) or not isinstance(context_size, int) or context_size < 1:
        raise ValueError(f"context_size must be a positive integer, got {context_size!r}")
    for _ in range(max_new_tokens):
        context = idx[:, -context_size:]  # (batch, <= context_size)
        with torch.no_grad():
            logits = model(context)  # (batch, T, vocab_size)
        next_id = logits[:, -1, :].argmax(dim=-1, keepdim=True)  # (batch, 1)
        idx = torch.cat([idx, next_id], dim=1)
    return idx
