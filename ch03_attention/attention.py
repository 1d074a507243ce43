# GENERATED from attention.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
# ruff: noqa: E402 (each cell keeps its own imports, where the notebook needs them)
"""Chapter 3 — Coding attention: from a dot product to multi-head causal attention"""

__all__ = ["CausalAttention", "MultiHeadAttention", "MultiHeadAttentionWrapper"]


# ch03_attention/attention.ipynb, setup
import torch
import torch.nn as nn
import torch.nn.functional as F


# ch03_attention/attention.ipynb, 3.5.3 A compact causal attention class
class CausalAttention(nn.Module):
    """One head of causal self-attention with dropout on the attention weights.

    x (batch, num_tokens, d_in) -> context vectors (batch, num_tokens, d_out).
    Token i attends to tokens 0..i only, so the layer can be trained to predict
    the next token without seeing it.
    """

    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.context_length = context_length
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        # True above the diagonal = "a future token: do not look". Not persistent:
        # it is rebuilt from context_length, so state_dicts hold only weights.
        mask = torch.triu(torch.ones(context_length, context_length, dtype=torch.bool), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        num_tokens = x.shape[1]
        if num_tokens > self.context_length:
            raise ValueError(
                f"input has {num_tokens} tokens but context_length is {self.context_length}: "
                "shorten the input or build the layer with a larger context_length"
            )
        queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)  # (b, T, d_out) each
        scores = queries @ keys.transpose(1, 2)  # (b, T, T)
        scores = scores.masked_fill(self.mask[:num_tokens, :num_tokens], float("-inf"))
        weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)
        weights = self.dropout(weights)
        return weights @ values  # (b, T, d_out)


# ch03_attention/attention.ipynb, 3.6.1 Stacking multiple single-head attention layers
class MultiHeadAttentionWrapper(nn.Module):
    """Multi-head attention as a list of independent ``CausalAttention`` heads.

    x (batch, num_tokens, d_in) -> (batch, num_tokens, d_out): each of the
    ``num_heads`` heads produces ``d_out // num_heads`` features and the results
    are concatenated. Clear but slow (one small matmul per head); it is the
    reference that ``MultiHeadAttention`` is checked against.
    """

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        if d_out % num_heads != 0:
            raise ValueError(
                f"d_out ({d_out}) must be divisible by num_heads ({num_heads}): choose d_out as a multiple of num_heads"
            )
        head_dim = d_out // num_heads
        self.heads = nn.ModuleList(
            CausalAttention(d_in, head_dim, context_length, dropout, qkv_bias) for _ in range(num_heads)
        )

    def forward(self, x):
        return torch.cat([head(x) for head in self.heads], dim=-1)  # (b, T, num_heads * head_dim)


# ch03_attention/attention.ipynb, 3.7 The exported layer: the minimal one plus errors, SDPA and a cache hook
class MultiHeadAttention(nn.Module):
    """Causal multi-head self-attention, all heads in one batched matmul.

    x (batch, num_tokens, d_in) -> (batch, num_tokens, d_out). The query, key and
    value projections produce every head at once; the heads are split off as a
    tensor dimension, attend in parallel, and are merged and mixed by ``out_proj``.
    It computes what the chapter's teaching version, ``MinimalMultiHeadAttention``,
    computes, and adds:

    * clear ``ValueError``s for bad arguments and inputs;
    * ``use_sdpa=True`` (a plain attribute, which can be flipped on an existing
      module): the attention step runs through PyTorch's fused
      ``scaled_dot_product_attention``; the result is the same up to rounding;
    * ``forward(x, cache=None)``: with a key/value cache (chapter 5), ``x`` holds
      only the new tokens; the layer hands its new keys and values to
      ``cache.update(self, keys, values)``, which returns those of every position
      so far, and the new tokens attend to all cached positions plus themselves.
    """

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False, use_sdpa=False):
        super().__init__()
        if d_out % num_heads != 0:
            raise ValueError(
                f"d_out ({d_out}) must be divisible by num_heads ({num_heads}): choose d_out as a multiple of num_heads"
            )
        self.d_in = d_in
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.context_length = context_length
        self.use_sdpa = use_sdpa
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)  # mixes what the heads found
        self.dropout = nn.Dropout(dropout)
        # True above the diagonal = "a future token: do not look". Not persistent:
        # it is rebuilt from context_length, so state_dicts hold only weights.
        mask = torch.triu(torch.ones(context_length, context_length, dtype=torch.bool), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x, cache=None):
        self._check_input(x)
        b, num_tokens, _ = x.shape
        # (b, T, d_out) -> (b, T, heads, head_dim) -> (b, heads, T, head_dim)
        queries = self.W_query(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        keys = self.W_key(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        values = self.W_value(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)

        num_cached = 0
        if cache is not None:
            keys, values = cache.update(self, keys, values)  # (b, heads, cached + T, head_dim)
            num_cached = keys.shape[2] - num_tokens
            if num_cached + num_tokens > self.context_length:
                raise ValueError(
                    f"{num_cached} cached + {num_tokens} new tokens = {num_cached + num_tokens} positions, "
                    f"more than context_length {self.context_length}: reset the cache or use a larger context_length"
                )
        total = num_cached + num_tokens
        # Row i is the new token at position num_cached + i: it may see columns 0..num_cached + i.
        future = self.mask[num_cached:total, :total]  # (T, total), True = masked; no cache: the top-left corner

        if self.use_sdpa:
            context = self._fused_attention(queries, keys, values, future, num_cached)
        else:
            scores = queries @ keys.transpose(2, 3)  # (b, heads, T, total)
            scores = scores.masked_fill(future, float("-inf"))
            weights = torch.softmax(scores / self.head_dim**0.5, dim=-1)
            weights = self.dropout(weights)
            context = weights @ values  # (b, heads, T, head_dim)

        # (b, heads, T, head_dim) -> (b, T, heads, head_dim) -> (b, T, d_out)
        context = context.transpose(1, 2).contiguous().view(b, num_tokens, self.d_out)
        return self.out_proj(context)

    def _check_input(self, x):
        """Raise a ValueError that names the problem and the fix, before a shape error deep inside."""
        if x.dim() != 3:
            raise ValueError(
                f"x must have shape (batch, num_tokens, d_in), got {x.dim()}-D shape {tuple(x.shape)}: "
                "for a single sequence use x.unsqueeze(0)"
            )
        if x.shape[2] != self.d_in:
            raise ValueError(f"x has {x.shape[2]} features per token but the layer expects d_in={self.d_in}")
        if x.shape[1] > self.context_length:
            raise ValueError(
                f"input has {x.shape[1]} tokens but context_length is {self.context_length}: "
                "shorten the input or build the layer with a larger context_length"
            )

    def _fused_attention(self, queries, keys, values, future, num_cached):
        """The attention step through PyTorch's fused kernel: (b, heads, T, head_dim) context vectors."""
        dropout_p = self.dropout.p if self.training else 0.0
        if num_cached == 0:
            return F.scaled_dot_product_attention(queries, keys, values, dropout_p=dropout_p, is_causal=True)
        # is_causal aligns the mask top-left, which is wrong once queries are fewer than
        # keys, so pass the offset mask explicitly (SDPA's True = may attend).
        return F.scaled_dot_product_attention(queries, keys, values, attn_mask=~future, dropout_p=dropout_p)
