"""P1-P2: one training step of GPT-2 small (124M), against Hugging Face and against the textbook path.

Every step is forward + cross-entropy loss + backward + AdamW step on a batch of 2 x 256
tokens of Tiny Shakespeare, with dropout 0 and float32 weights.

P1:  GPTModel (``use_sdpa=True``) against Hugging Face's ``GPT2LMHeadModel`` (SDPA attention)
     with the same weights (HF's GPT-2 initialisation, loaded into ours with
     ``load_gpt2_weights``), the same batch and the same ``torch.optim.AdamW`` settings
     (lr 1e-4, PyTorch's default implementation). Both losses on the batch must agree within
     1e-4 before anything is timed. Ratio: HF time / course time per step. Target: >= 1.0x.
     Also printed: tokens/s and the achieved training FLOP/s as a share of this machine's
     measured fp32 matmul peak (``matmul_peak_flops``), with
         FLOPs per step = tokens * (6 N + 12 L d T)
     N parameters (the tied embedding counted once: its matmul is the output head), L blocks
     of width d, T tokens per sequence. 6 N is a multiply-add per weight and token, forward
     (2 N) and backward (4 N); 12 L d T is attention's two T x T products (Q K^T, weights V),
     forward and backward, causal masking not discounted (Kaplan et al. 2020; PaLM, app. B).
P2a: the course's training fast path against the textbook path, GPTModel with the same weights
     and data on both: SDPA attention, fused AdamW and bf16 autocast where
     ``fast_path_options`` says the hardware supports it, against manual attention
     (``use_sdpa=False``), default AdamW and float32. 20 steps each (lr 4e-4, weight decay 0.1,
     chapter 5's settings) on 20 consecutive batches, interleaved step by step. Ratio: textbook
     time / fast-path time per step (median). Target: >= 1.8x.
     Where there is no bf16 (most laptop CPUs), the fast path keeps float32, so every linear layer,
     the layer norms, GELU, embeddings and loss cost exactly what they cost on the textbook path;
     only attention and the optimizer update change. The row then also prints the fp32 ceiling:
     the textbook step time divided by that step without its attention core (scores, mask,
     softmax, weighted sum; forward and backward, timed alone on the step's shapes) and without
     its AdamW update (timed alone). No fp32 fast path can beat it.
P2b: the fast path must train the same model: its loss on a held-out batch (float32) after the
     20 steps is within 2 % of the textbook path's. Ratio: 2 % / relative difference (>= 1.0x
     passes; inf when both are identical).

Run: python benchmarks/training.py [--quick]   (--quick: fewer repeats and 5 steps in P2)
"""

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from common import Result, gpt2_pair, interleaved_medians, matmul_peak_flops, run_script, shakespeare_tokens

from ch05_pretraining.pretraining import calc_loss_batch, fast_path_options
from shared import GPT_CONFIGS, GPTModel, load_gpt2_weights

BATCH, SEQ_LEN = 2, 256
P1_LR = 1e-4
P2_LR, P2_WEIGHT_DECAY, P2_STEPS = 4e-4, 0.1, 20
LOSS_AGREEMENT = 1e-4  # P1: the two models' losses on the first batch
LOSS_TOLERANCE = 0.02  # P2b: relative difference of the losses after training
HF_TARGET, FAST_PATH_TARGET = 1.0, 1.8


def text_batches(num_batches: int):
    """``num_batches`` (inputs, targets) pairs of shape (BATCH, SEQ_LEN): consecutive windows of Tiny
    Shakespeare, the targets shifted by one token; then one more, held out."""
    window = BATCH * SEQ_LEN
    tokens = shakespeare_tokens((num_batches + 1) * window + 1)
    return [
        (
            tokens[i * window : (i + 1) * window].view(BATCH, SEQ_LEN),
            tokens[i * window + 1 : (i + 1) * window + 1].view(BATCH, SEQ_LEN),
        )
        for i in range(num_batches + 1)
    ]


def training_step(model, optimizer, batch, logits_of=lambda out: out, autocast_dtype=None):
    """One optimizer step on ``batch``; returns the loss (float32 cross-entropy)."""
    inputs, targets = batch
    optimizer.zero_grad()
    with torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast_dtype is not None):
        logits = logits_of(model(inputs))
    loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
    loss.backward()
    optimizer.step()
    return loss


def hf_logits(output):
    return output.logits


def training_flops(config, num_params: int, tokens: int) -> float:
    return tokens * (6 * num_params + 12 * config.n_layers * config.emb_dim * SEQ_LEN)


def course_vs_hf(config, batch, repeats: int) -> Result:
    ours, hf = gpt2_pair(replace(config, use_sdpa=True))
    hf.config.use_cache = False  # training: no key/value cache
    ours.train()
    hf.train()
    with torch.no_grad():
        loss_ours = F.cross_entropy(ours(batch[0]).flatten(0, 1), batch[1].flatten()).item()
        loss_hf = F.cross_entropy(hf(batch[0]).logits.flatten(0, 1), batch[1].flatten()).item()
    if abs(loss_ours - loss_hf) > LOSS_AGREEMENT:
        raise AssertionError(
            f"GPTModel and GPT2LMHeadModel disagree on the first batch: loss {loss_ours:.6f} "
            f"vs {loss_hf:.6f}; they must compute the same function to be compared"
        )

    opt_ours = torch.optim.AdamW(ours.parameters(), lr=P1_LR)
    opt_hf = torch.optim.AdamW(hf.parameters(), lr=P1_LR)
    t = interleaved_medians(
        {
            "course": lambda: training_step(ours, opt_ours, batch),
            "hf": lambda: training_step(hf, opt_hf, batch, hf_logits),
        },
        repeats=repeats,
    )
    tokens = batch[0].numel()
    num_params = sum(p.numel() for p in ours.parameters())
    achieved, peak = training_flops(config, num_params, tokens) / t["course"], matmul_peak_flops()
    return Result(
        "P1",
        "training step vs HF GPT2LMHeadModel (fp32, 2x256)",
        t["hf"] / t["course"],
        HF_TARGET,
        f"course {tokens / t['course']:,.0f} tok/s, HF {tokens / t['hf']:,.0f} tok/s; course "
        f"{achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.0%} of fp32 matmul peak {peak / 1e9:.1f} "
        f"GFLOP/s; first-batch losses {loss_ours:.5f} / {loss_hf:.5f}",
    )


def held_out_loss(model, batch) -> float:
    """Float32 loss on ``batch`` without dropout or gradients; the model stays in training mode."""
    model.eval()
    with torch.no_grad():
        loss = calc_loss_batch(*batch, model, "cpu").item()
    model.train()
    return loss


def attention_core_seconds(config, repeats: int) -> float:
    """Seconds per training step spent in the textbook attention core of all n_layers blocks.

    The four lines of ``MultiHeadAttention``'s manual path, forward and backward, on the shapes of
    a (BATCH, SEQ_LEN) batch: queries/keys/values (BATCH, n_heads, SEQ_LEN, head_dim).
    """
    shape = (BATCH, config.n_heads, SEQ_LEN, config.emb_dim // config.n_heads)
    queries, keys, values = (torch.randn(shape, requires_grad=True) for _ in range(3))
    future = torch.triu(torch.ones(SEQ_LEN, SEQ_LEN, dtype=torch.bool), diagonal=1)
    grad = torch.randn(shape)

    def core():
        scores = (queries @ keys.transpose(2, 3)).masked_fill(future, float("-inf"))
        weights = torch.softmax(scores / shape[-1] ** 0.5, dim=-1)
        (weights @ values).backward(grad)

    return config.n_layers * interleaved_medians({"core": core}, repeats=repeats)["core"]


def fp32_ceiling(config, optimizer, step_seconds: float, repeats: int) -> str:
    """What an fp32 fast path could at most gain over ``step_seconds`` (a textbook step); see P2a."""
    optimizer_seconds = interleaved_medians({"step": optimizer.step}, repeats=repeats)["step"]
    attention_seconds = attention_core_seconds(config, repeats)
    rest = step_seconds - optimizer_seconds - attention_seconds
    return (
        f"fp32 ceiling {step_seconds / rest:.2f}x: of the textbook step's {step_seconds:.2f} s, attention "
        f"takes {attention_seconds:.2f} s and the AdamW update {optimizer_seconds:.2f} s; the other "
        f"{rest:.2f} s is float32 work the fast path does not change"
    )


def fast_vs_textbook(config, batches, steps: int) -> list:
    _, hf = gpt2_pair(config)  # only for its GPT-2 initialisation
    weights = hf.state_dict()
    options = fast_path_options("cpu")
    textbook = load_gpt2_weights(GPTModel(replace(config, use_sdpa=False)), weights).train()
    fast = load_gpt2_weights(GPTModel(replace(config, use_sdpa=True)), weights).train()
    del hf, weights
    held_out = batches[-1]
    loss_before = held_out_loss(textbook, held_out)
    opt_textbook = torch.optim.AdamW(textbook.parameters(), lr=P2_LR, weight_decay=P2_WEIGHT_DECAY)
    opt_fast = torch.optim.AdamW(
        fast.parameters(), lr=P2_LR, weight_decay=P2_WEIGHT_DECAY, fused=options["fused_adamw"]
    )
    data_textbook, data_fast = iter(batches[:steps]), iter(batches[:steps])
    t = interleaved_medians(  # warmup 1 + (steps - 1) timed = `steps` optimizer steps each
        {
            "textbook": lambda: training_step(textbook, opt_textbook, next(data_textbook)),
            "fast": lambda: training_step(fast, opt_fast, next(data_fast), autocast_dtype=options["autocast_dtype"]),
        },
        repeats=steps - 1,
    )

    loss_textbook, loss_fast = held_out_loss(textbook, held_out), held_out_loss(fast, held_out)
    difference = abs(loss_fast - loss_textbook) / loss_textbook
    bf16 = options["autocast_dtype"] is not None
    detail = (
        f"fast {t['fast']:.2f} s/step (SDPA, fused AdamW={options['fused_adamw']}, "
        f"{'bf16 autocast' if bf16 else 'fp32: no native bf16 on this CPU'}), textbook {t['textbook']:.2f} "
        f"s/step; median of {steps - 1} steps after 1 warmup"
    )
    if not bf16:  # after the held-out losses: timing the update changes the textbook weights
        detail += "; " + fp32_ceiling(config, opt_textbook, t["textbook"], repeats=max(3, steps // 4))
    speed = Result("P2a", "training fast path vs textbook path", t["textbook"] / t["fast"], FAST_PATH_TARGET, detail)
    loss = Result(
        "P2b",
        f"fast-path loss after {steps} steps within {LOSS_TOLERANCE:.0%} of textbook",
        LOSS_TOLERANCE / difference if difference else math.inf,
        1.0,
        f"held-out loss {loss_before:.4f} before; after: fast {loss_fast:.4f}, textbook "
        f"{loss_textbook:.4f} ({difference:.3%} apart)",
    )
    return [speed, loss]


def main(quick: bool = False, config=None) -> list:
    config = replace(config or GPT_CONFIGS["gpt2-small (124M)"], drop_rate=0.0)
    steps = 5 if quick else P2_STEPS
    batches = text_batches(steps)
    results = [course_vs_hf(config, batches[0], repeats=2 if quick else 5)]
    return results + fast_vs_textbook(config, batches, steps)


if __name__ == "__main__":
    run_script(main, quick_help="fewer repeats and steps: a smoke run, noisier")
