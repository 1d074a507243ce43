"""Chapter 1: parameter counting, training FLOPs, the GPT-3 data mix, the exercise checks, the glossary.

Parameter counts are checked against Hugging Face ``transformers``' GPT-2, an independent
implementation; its models are built on the meta device, so no memory is allocated
and even GPT-3's 175 B parameters cost nothing but shapes.
"""

import json
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from ch01_intro.checks import check_exercise_1, check_exercise_2, check_exercise_3, check_exercise_4
from ch01_intro.intro import (
    GPT3_TRAINING_MIX,
    GPT3_TRAINING_TOKENS,
    count_gpt_parameters,
    gpt_parameter_breakdown,
    training_flops,
)
from shared.glossary import glossary

NOTEBOOK = Path(__file__).resolve().parent.parent / "ch01_intro" / "intro.ipynb"


def hf_gpt2(vocab_size, context_length, emb_dim, n_layers, n_heads, tie_embeddings=True):
    """A shape-only GPT-2 from transformers (qkv biases and a bias-free head, as in OpenAI's GPT-2)."""
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=context_length,
        n_embd=emb_dim,
        n_layer=n_layers,
        n_head=n_heads,
        tie_word_embeddings=tie_embeddings,
    )
    with torch.device("meta"):
        return GPT2LMHeadModel(config)


def n_params(module):
    return sum(p.numel() for p in module.parameters())  # parameters() counts a tied matrix once


# ---------------------------------------------------------------- count_gpt_parameters


def test_gpt2_small_count_is_the_published_124m_checkpoint():
    counted = count_gpt_parameters(vocab_size=50257, context_length=1024, emb_dim=768, n_layers=12)
    assert counted == n_params(hf_gpt2(50257, 1024, 768, 12, 12))
    assert counted == 124_439_808  # OpenAI GPT-2 "124M" as loaded by transformers


@pytest.mark.parametrize(
    "vocab_size, context_length, emb_dim, n_layers, n_heads",
    [
        (50257, 1024, 1024, 24, 16),  # GPT-2 medium
        (100, 16, 32, 2, 4),
        (1, 1, 8, 1, 1),  # the smallest possible model
        (257, 64, 48, 3, 6),
        (50257, 2048, 768, 12, 12),  # GPT-3 Small: a longer context
    ],
)
@pytest.mark.parametrize("tied", [True, False])
def test_count_matches_transformers(vocab_size, context_length, emb_dim, n_layers, n_heads, tied):
    model = hf_gpt2(vocab_size, context_length, emb_dim, n_layers, n_heads, tie_embeddings=tied)
    assert count_gpt_parameters(vocab_size, context_length, emb_dim, n_layers, tie_embeddings=tied) == n_params(model)


def test_breakdown_matches_transformers_part_by_part():
    model = hf_gpt2(300, 32, 64, 3, 4, tie_embeddings=False)
    t = model.transformer
    expected = {
        "token embedding": n_params(t.wte),
        "position embedding": n_params(t.wpe),
        "attention": sum(n_params(block.attn) for block in t.h),
        "feed-forward": sum(n_params(block.mlp) for block in t.h),
        "layer norms": sum(n_params(block.ln_1) + n_params(block.ln_2) for block in t.h) + n_params(t.ln_f),
        "output head": model.lm_head.weight.numel(),
    }
    assert gpt_parameter_breakdown(300, 32, 64, 3, tie_embeddings=False) == expected


def test_qkv_bias_adds_three_vectors_per_block():
    # GPT-2 in transformers always has qkv biases, so the bias-free variant (chapter 4's default)
    # is specified directly: query, key and value each lose a bias of emb_dim entries per block.
    with_bias = count_gpt_parameters(1000, 128, 96, 5, qkv_bias=True)
    without = count_gpt_parameters(1000, 128, 96, 5, qkv_bias=False)
    assert with_bias - without == 3 * 96 * 5


def test_gpt3_is_175_billion():
    counted = count_gpt_parameters(vocab_size=50257, context_length=2048, emb_dim=12288, n_layers=96)
    assert counted == n_params(hf_gpt2(50257, 2048, 12288, 96, 96))
    # The paper's "175B" is a rounded name; 1 % leaves room for that rounding and nothing else.
    assert abs(counted - 175e9) / 175e9 < 0.01


@pytest.mark.parametrize("bad", [0, -768, 768.0, True, "768", None])
def test_bad_hyperparameters_are_rejected_by_name(bad):
    with pytest.raises(ValueError, match="emb_dim must be a positive integer"):
        count_gpt_parameters(50257, 1024, bad, 12)


# ---------------------------------------------------------------- training FLOPs and the GPT-3 mix


def test_training_flops_reproduces_gpt3_compute():
    # Brown et al. (2020), Table D.1: 3.64e3 petaflop/s-days for GPT-3 175B. 6ND ignores the
    # attention term, which the paper's figure includes; 1 % covers that difference.
    reported = 3.64e3 * 1e15 * 86400
    estimate = training_flops(175e9, 300e9)
    assert abs(estimate - reported) / reported < 0.01


@pytest.mark.parametrize("n_params, n_tokens", [(0, 1e9), (1e9, -5)])
def test_training_flops_rejects_non_positive_sizes(n_params, n_tokens):
    with pytest.raises(ValueError, match="must be positive"):
        training_flops(n_params, n_tokens)


def test_gpt3_mix_matches_the_paper_totals():
    assert sum(row["tokens"] for row in GPT3_TRAINING_MIX.values()) == pytest.approx(499e9)
    # Table 2.2's weights are rounded to whole percent and add up to 101 %.
    assert sum(row["weight"] for row in GPT3_TRAINING_MIX.values()) == pytest.approx(1.0, abs=0.011)
    assert GPT3_TRAINING_TOKENS == 300e9


# ---------------------------------------------------------------- chapter 4's model has the counted size


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_chapter_4_model_has_the_counted_size(qkv_bias):
    """Section 1.7 says chapter 4's GPT has the size section 1.6.2's formula gives (untied head)."""
    from shared import GPTConfig, GPTModel

    cfg = GPTConfig(vocab_size=97, context_length=16, emb_dim=24, n_heads=4, n_layers=2, qkv_bias=qkv_bias)
    model = GPTModel(cfg)
    assert n_params(model) == count_gpt_parameters(97, 16, 24, 2, qkv_bias=qkv_bias, tie_embeddings=False)


# ---------------------------------------------------------------- exercise checks


def verdict(capsys):
    """Everything the check printed."""
    return capsys.readouterr().out


def assert_correct(capsys):
    out = verdict(capsys)
    assert out.startswith("Correct!"), out


def assert_rejected(capsys, *fragments):
    out = verdict(capsys)
    assert out and "Correct!" not in out, out
    for fragment in fragments:
        assert fragment in out, (fragment, out)


NOT_ANSWERED = [None, ...]


def windowed(tokens, context_size):  # written independently of the checker's reference
    pairs = []
    for end in range(1, len(tokens)):
        context = list(tokens[:end])
        while len(context) > context_size:
            context.pop(0)
        pairs.append((tuple(context), tokens[end]))  # tuples are accepted as contexts
    return pairs


def test_check_exercise_1_accepts_a_solution(capsys):
    check_exercise_1(windowed)
    assert_correct(capsys)


def test_check_exercise_1_accepts_a_solution_that_consumes_its_input(capsys):
    def popping(tokens, context_size):
        pairs, seen = [], [tokens.pop(0)]
        while tokens:
            pairs.append((seen[-context_size:], tokens[0]))
            seen.append(tokens.pop(0))
        return pairs

    check_exercise_1(popping)
    assert_correct(capsys)


@pytest.mark.parametrize(
    "wrong, fragment",
    [
        (lambda tokens, size: [(tokens[:i], tokens[i]) for i in range(1, len(tokens))], "longer than"),  # no limit
        (
            lambda tokens, size: [(tokens[i - size : i], tokens[i]) for i in range(1, len(tokens))],
            "max(0, i - context_size)",
        ),
        (
            lambda tokens, size: [(tokens[max(0, i - size - 1) : i], tokens[i]) for i in range(1, len(tokens))],
            "longer than",
        ),
        (
            lambda tokens, size: [(tokens[max(0, i - size) : i], tokens[i]) for i in range(len(tokens))],
            "one per token but the first",
        ),
        (
            lambda tokens, size: [(tokens[max(0, i - size) : i + 1], tokens[i]) for i in range(1, len(tokens))],
            "ends with its own target",
        ),
    ],
)
def test_check_exercise_1_rejects_typical_mistakes(capsys, wrong, fragment):
    check_exercise_1(wrong)
    assert_rejected(capsys, fragment)


@pytest.mark.parametrize(
    "returns, fragment",
    [
        (None, "not a NoneType"),
        (42, "not a int"),
        ((p for p in [(["a"], "b")]), "not a generator"),
        ([("a", "b", "c")], "must be a pair"),
        ([("a", "b")], "context must be a list"),
    ],
)
def test_check_exercise_1_rejects_wrong_types_without_raising(capsys, returns, fragment):
    check_exercise_1(lambda tokens, size: returns)
    assert_rejected(capsys, fragment)


def test_check_exercise_1_reports_errors_and_placeholders(capsys):
    check_exercise_1(lambda tokens, size: 1 / 0)
    assert_rejected(capsys, "ZeroDivisionError")
    check_exercise_1(windowed(list("abc"), 2))  # the result, not the function
    assert_rejected(capsys, "function itself")
    for placeholder in NOT_ANSWERED:
        check_exercise_1(placeholder)
        assert_rejected(capsys, "Not answered yet")


def gpt3_shares():
    """The two shares, from transformers' GPT-3-shaped model (independent of the course's formula)."""
    gpt3 = hf_gpt2(50257, 2048, 12288, 96, 96)
    total = n_params(gpt3)
    embedding = gpt3.transformer.wte.weight.numel() / total
    feed_forward = sum(n_params(block.mlp) for block in gpt3.transformer.h) / total
    return embedding, feed_forward


def test_check_exercise_2_accepts_the_solution(capsys):
    check_exercise_2(*gpt3_shares())
    assert_correct(capsys)


def test_check_exercise_2_rejects_typical_mistakes(capsys):
    embedding, feed_forward = gpt3_shares()
    check_exercise_2(embedding, 100 * feed_forward)  # a percentage
    assert_rejected(capsys, "feed_forward_share", "not a percentage")
    check_exercise_2(feed_forward, embedding)  # swapped
    assert_rejected(capsys, "embedding_share", "gpt_parameter_breakdown")
    gpt2 = gpt_parameter_breakdown(50257, 1024, 768, 12)  # GPT-2 small's shares instead of GPT-3's
    total = sum(gpt2.values())
    check_exercise_2(gpt2["token embedding"] / total, gpt2["feed-forward"] / total)
    assert_rejected(capsys, "embedding_share")
    check_exercise_2(embedding, 0.5)  # only the first is right
    assert_rejected(capsys, "feed_forward_share")


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("0.0035", "should be a number"),
        (True, "should be a number"),
        (torch.tensor(0.0035), "should be a number"),
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
    ],
)
def test_check_exercise_2_rejects_wrong_types_without_raising(capsys, bad, fragment):
    _, feed_forward = gpt3_shares()
    check_exercise_2(bad, feed_forward)
    assert_rejected(capsys, fragment)


def test_check_exercise_2_reports_placeholders(capsys):
    for placeholder in NOT_ANSWERED:
        check_exercise_2(placeholder, 0.66)
        assert_rejected(capsys, "Not answered yet")
        check_exercise_2(0.0035, placeholder)
        assert_rejected(capsys, "Not answered yet")


LLAMA_FLOPS = 6 * 7e9 * 2e12


def test_check_exercise_3_accepts_the_solution(capsys):
    check_exercise_3(LLAMA_FLOPS, LLAMA_FLOPS / 156e12 / 3600)
    out = verdict(capsys)
    assert out.startswith("Correct!") and "184,320" in out


@pytest.mark.parametrize(
    "flops, gpu_hours, fragment",
    [
        (LLAMA_FLOPS, LLAMA_FLOPS / 156e12, "in seconds"),  # forgot the 3,600
        (LLAMA_FLOPS, LLAMA_FLOPS / 312e12 / 3600, "half of it"),  # the peak, not the sustained rate
        (LLAMA_FLOPS, 184_320, "0.5 * 312e12"),  # Meta's figure, not the estimate
        (2 * 7e9 * 2e12, 2 * 7e9 * 2e12 / 156e12 / 3600, "6 * parameters"),  # forward pass only
        (7e9 * 2e12, 1.0, "6 * parameters"),
        ("8.4e22", 1.0, "should be a number"),
        (LLAMA_FLOPS, float("nan"), "not a finite number"),
    ],
)
def test_check_exercise_3_rejects_typical_mistakes(capsys, flops, gpu_hours, fragment):
    check_exercise_3(flops, gpu_hours)
    out = verdict(capsys)
    assert "Correct!" not in out and "184,320" not in out and fragment in out, out


def test_check_exercise_3_reports_placeholders(capsys):
    for placeholder in NOT_ANSWERED:
        check_exercise_3(placeholder, 1.0)
        assert_rejected(capsys, "Not answered yet")
        check_exercise_3(LLAMA_FLOPS, placeholder)
        assert_rejected(capsys, "Not answered yet")


EPOCHS = {
    "Common Crawl (filtered)": 180 / 410,
    "WebText2": 66 / 19,
    "Books1": 24 / 12,
    "Books2": 24 / 55,
    "Wikipedia": 9 / 3,
}  # billions of tokens drawn / available


def test_check_exercise_4_accepts_the_solution(capsys):
    check_exercise_4(EPOCHS)
    assert_correct(capsys)


@pytest.mark.parametrize(
    "wrong, fragment",
    [
        ({**EPOCHS, "Wikipedia": 3.4}, "Wikipedia"),  # the paper's own (inconsistent) figure
        ({source: 1 / n for source, n in EPOCHS.items()}, "Divide the tokens drawn"),  # inverted
        ({source: row["weight"] for source, row in GPT3_TRAINING_MIX.items()}, "Divide the tokens drawn"),
        ({**EPOCHS, "Books1": "2"}, "should be a number"),
        ({**EPOCHS, "Books1": None}, "should be a number"),
        ({"WebText2": 3.47}, "exactly the keys"),
        ({**EPOCHS, "arXiv": 1.0}, "exactly the keys"),
        ([3.47], "exactly the keys"),
    ],
)
def test_check_exercise_4_rejects_typical_mistakes(capsys, wrong, fragment):
    check_exercise_4(wrong)
    assert_rejected(capsys, fragment)


def test_check_exercise_4_reports_placeholders(capsys):
    for placeholder in NOT_ANSWERED:
        check_exercise_4(placeholder)
        assert_rejected(capsys, "Not answered yet")


# ---------------------------------------------------------------- glossary


def test_glossary_has_at_least_25_complete_terms():
    terms = glossary(1)
    assert len(terms) >= 25
    assert all(t.korean and t.english and t.meaning_ko and t.meaning_en for t in terms), "every row complete"
    english = [t.english for t in terms]
    assert len(set(english)) == len(english), "no term twice"


def test_glossary_has_the_terms_the_course_relies_on():
    pairs = {(t.korean, t.english) for t in glossary(1)}
    for korean, english in [
        ("대규모 언어 모델", "large language model (LLM)"),
        ("사전 학습", "pretraining"),
        ("미세 조정", "fine-tuning"),
        ("자기 지도 학습", "self-supervised learning"),
        ("창발적 행동", "emergent behavior"),
        ("토큰화", "tokenization"),
    ]:
        assert (korean, english) in pairs


def test_the_notebook_shows_the_glossary_in_both_languages():
    cells = {cell["id"]: cell for cell in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]}
    assert "".join(cells["a97d5734"]["source"]).strip().endswith("show_glossary(1)")
    shown = "".join("".join(output.get("text", "")) for output in cells["a97d5734"]["outputs"])
    for term in glossary(1):
        assert f"{term.korean} · {term.english}" in shown and term.meaning_ko in shown and term.meaning_en in shown
    assert "both languages" in "".join(cells["22d7996a"]["source"])
