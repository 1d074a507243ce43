"""The glossary: one Korean term per English concept, complete rows, the Korean edition's terms,
the course's term decisions, and the Korean notebooks using the glossary's terms."""

import re
from collections import defaultdict

import pytest

from shared.export import REPO_ROOT
from shared.glossary import GLOSSARY_PATH, GlossaryError, Term, glossary, read_glossary, show_glossary

HANGUL = re.compile(r"[가-힣]")

# The published Korean edition (밑바닥부터 만들면서 배우는 LLM, 길벗 2025) names these differently.
KOREAN_EDITION = {
    "pretraining": ("사전 학습", "사전 훈련"),
    "fine-tuning": ("미세 조정", "미세 튜닝"),
    "context vector": ("컨텍스트 벡터", "문맥 벡터"),
    "causal attention": ("인과적 어텐션", "코잘 어텐션"),
    "shortcut connection": ("지름길 연결", "숏컷 연결"),
    "weight tying": ("가중치 공유", "가중치 묶기"),
    "vanishing gradient": ("기울기 소실", "그레이디언트 소실"),
}

# The course's term decisions, followed by every Korean notebook.
DECISIONS = {
    "pretraining": "사전 학습",
    "fine-tuning": "미세 조정",
    "instruction fine-tuning": "지시 미세 조정",
    "classification fine-tuning": "분류 미세 조정",
    "context vector": "컨텍스트 벡터",
    "causal attention": "인과적 어텐션",
    "self-attention": "셀프 어텐션",
    "multi-head attention": "멀티 헤드 어텐션",
    "attention weights": "어텐션 가중치",
    "weight matrix": "가중치 행렬",
    "shortcut connection": "지름길 연결",
    "weight tying": "가중치 공유",
    "vanishing gradient": "기울기 소실",
    "token": "토큰",
    "tokenizer": "토크나이저",
    "byte pair encoding": "바이트 쌍 인코딩",
    "embedding": "임베딩",
    "positional embedding": "위치 임베딩",
    "context length": "컨텍스트 길이",
    "context cropping": "컨텍스트 자르기",
    "layer normalization": "층 정규화",
    "transformer block": "트랜스포머 블록",
    "logit": "로짓",
    "loss": "손실",
    "cross-entropy": "교차 엔트로피",
    "dropout": "드롭아웃",
    "batch": "배치",
    "parameter": "파라미터",
    "gradient": "기울기",
    "learning rate": "학습률",
    "optimizer": "옵티마이저",
}

# Korean terms the course never uses (the Korean edition's 미세 튜닝 only in its own column).
REJECTED = ["미세 튜닝", "멀티헤드", "바이트 페어", "문맥 자르기", "문맥 길이", "그래디언트", "매개변수 ("]


def names(term: Term) -> set[str]:
    """The English names of a term, lower-cased: 'byte pair encoding (BPE)' -> {byte pair encoding, bpe}."""
    main, _, alias = term.english.partition(" (")
    found = {main.strip().lower()}
    if alias:
        found |= {part.strip().lower() for part in alias.rstrip(")").split(",")}
    return found


@pytest.fixture(scope="module")
def chapters():
    return read_glossary()


@pytest.fixture(scope="module")
def terms(chapters):
    return [term for chapter in chapters.values() for term in chapter]


@pytest.fixture(scope="module")
def by_name(terms):
    return {name: term for term in terms for name in names(term)}


def test_every_chapter_has_a_table(chapters):
    assert sorted(chapters) == list(range(9))
    assert all(len(chapters[n]) >= 5 for n in chapters), {n: len(t) for n, t in chapters.items()}


def test_no_english_term_twice(terms):
    seen = defaultdict(list)
    for term in terms:
        for name in names(term):
            seen[name].append(term.korean)
    twice = {name: korean for name, korean in seen.items() if len(korean) > 1}
    assert not twice, f"English terms listed more than once: {twice}"


def test_no_korean_term_for_two_concepts(terms):
    seen = defaultdict(list)
    for term in terms:
        seen[term.korean].append(term.english)
    twice = {korean: english for korean, english in seen.items() if len(english) > 1}
    assert not twice, f"Korean terms used for more than one English concept: {twice}"


def test_every_row_is_complete_and_the_korean_meaning_is_korean(terms):
    for term in terms:
        assert term.korean and term.english and term.meaning_ko and term.meaning_en, term
        assert HANGUL.search(term.meaning_ko), f"뜻 of {term.english!r} has no Hangul: {term.meaning_ko!r}"
        assert term.meaning_ko != term.meaning_en, term.english


def test_korean_edition_column_differs_from_the_course_term(terms):
    for term in terms:
        if term.korean_edition:
            assert term.korean_edition != term.korean, term
            assert HANGUL.search(term.korean_edition), term


def test_the_korean_editions_known_terms_are_listed(by_name):
    for english, (course, edition) in KOREAN_EDITION.items():
        assert english in by_name, f"{english!r} missing from the glossary"
        term = by_name[english]
        assert (term.korean, term.korean_edition) == (course, edition), term


def test_the_term_decisions_hold(by_name, terms):
    for english, korean in DECISIONS.items():
        assert english in by_name, f"{english!r} missing from the glossary"
        assert by_name[english].korean == korean, by_name[english]
    for term in terms:
        for cell in (term.korean, term.meaning_ko):
            for rejected in REJECTED:
                assert rejected not in cell, f"{rejected!r} in {term.english!r}: {cell!r}"


# The terms of the Korean summary of the book's chapter 1, in its order.
SUMMARY_TERMS = [
    "large language model",
    "deep neural network",
    "parameter",
    "next-word prediction",
    "artificial intelligence",
    "machine learning",
    "deep learning",
    "feature extraction",
    "machine translation",
    "text generation",
    "sentiment analysis",
    "text summarization",
    "pretraining",
    "fine-tuning",
    "self-supervised learning",
    "foundation model",
    "few-shot learning",
    "instruction fine-tuning",
    "classification fine-tuning",
    "transformer",
    "encoder",
    "decoder",
    "self-attention",
    "zero-shot learning",
    "autoregressive model",
    "emergent behavior",
    "token",
    "tokenization",
]


def test_summary_terms_come_first_in_chapter_1(chapters):
    first = [term.english.partition(" (")[0].lower() for term in chapters[1][: len(SUMMARY_TERMS)]]
    assert first == SUMMARY_TERMS


# ------------------------------------------------------------------ the Korean notebooks

# A term's first use in a Korean catalogue: Korean words, then the English in parentheses.
# Emphasis (*, **) and code spans (`meta`) are read as plain words; a term may wrap onto the next line.
# The word just before the parenthesis ends in Hangul, so code such as `GPTModel(config)` is no match,
# and nothing stands between them: "형태 (batch, tokens, d)" is a shape, not a gloss.
FIRST_USE = re.compile(r"([가-힣A-Za-z0-9*`\-–· ]*[가-힣][가-힣A-Za-z0-9*`\-– ]*?[가-힣]\**)\(([A-Za-z][^()]*?)\)")


def first_uses(text: str) -> list[tuple[str, str]]:
    """(Korean, English) for every `korean(english)` in a text; English cut at the first , or ;"""
    text = re.sub(r"[ \t]*\n[ \t]*", " ", text)
    return [
        (re.sub(r"[*`]", "", korean).strip(), re.split(r"[,;]", english)[0].strip().lower())
        for korean, english in FIRST_USE.findall(text)
    ]


def test_first_uses_are_parsed():
    text = "먼저 *자기회귀*(autoregressive) 모델과 대규모 언어\n모델(large language model, LLM)을 봅니다."
    assert first_uses(text) == [
        ("먼저 자기회귀", "autoregressive"),
        ("모델과 대규모 언어 모델", "large language model"),
    ]


def mismatches(root, by_name):
    """'file: korean(english) — the glossary says …' for every Korean catalogue under root.

    Only a term's main English name counts: an other name in parentheses, such as masked attention
    for causal attention, may be given with its own Korean words.
    """
    by_main = {term.english.partition(" (")[0].lower(): term for term in by_name.values()}
    found = []
    for path in sorted((root / "translations" / "ko").glob("**/*.md")):
        for korean, english in first_uses(path.read_text(encoding="utf-8")):
            term = by_main.get(english)
            if term and not korean.endswith(term.korean):
                found.append(f"{path.relative_to(root)}: {korean}({english}) — the glossary says {term.korean}")
    return found


def test_translations_use_the_glossary_terms(by_name):
    assert list((REPO_ROOT / "translations" / "ko").glob("**/*.md")), "no Korean catalogue found"
    found = mismatches(REPO_ROOT, by_name)
    assert not found, "Korean terms that differ from the glossary:\n" + "\n".join(found)


def test_a_wrong_term_in_a_translation_is_reported(by_name, tmp_path):
    catalogue = tmp_path / "translations" / "ko" / "ch03_attention" / "attention.md"
    catalogue.parent.mkdir(parents=True)
    catalogue.write_text(
        "=== cell abc 0123456789ab\n각 토큰의 컨텍스트 벡터(context vector)와 "
        "문맥 벡터(context vector)를 비교합니다.\n",
        encoding="utf-8",
    )
    assert mismatches(tmp_path, by_name) == [
        "translations/ko/ch03_attention/attention.md: 와 문맥 벡터(context vector) — the glossary says 컨텍스트 벡터"
    ]


# ------------------------------------------------------------------ reading and showing


def write(tmp_path, body):
    path = tmp_path / "GLOSSARY.md"
    path.write_text(
        "# Glossary\n\n## Chapter 1 — Intro\n\n| 한국어 | English | 한국어판 | 뜻 | meaning |\n"
        "|---|---|---|---|---|\n" + body,
        encoding="utf-8",
    )
    return path


def test_glossary_reads_rows_as_terms(tmp_path):
    path = write(
        tmp_path,
        "| 사전 학습 | pretraining | 사전 훈련 | 첫 학습 단계입니다 | the first stage |\n"
        "| 토큰 | token |  | 텍스트의 단위 `a\\|b`입니다 | a unit of text |\n",
    )
    assert glossary(1, path) == [
        Term("사전 학습", "pretraining", "사전 훈련", "첫 학습 단계입니다", "the first stage"),
        Term("토큰", "token", "", "텍스트의 단위 `a|b`입니다", "a unit of text"),
    ]


@pytest.mark.parametrize(
    "rows, chapter, message",
    [
        (
            "| 토큰 | token |  | 텍스트의 단위입니다 | a unit of text |\n",
            4,
            r"no section '## Chapter 4 — …'.*chapters \[1\]",
        ),
        (
            "| 토큰 | token | 텍스트의 단위입니다 | a unit of text |\n",
            1,
            r"GLOSSARY.md:7: a row needs 5 cells .* found 4",
        ),
        ("| 토큰 | token |  |  | a unit of text |\n", 1, r"GLOSSARY.md:7: empty 뜻"),
        (
            "| 토큰 | token |  | 텍스트의 단위입니다 | a unit of text |\n\n## Chapter 1 — Again\n",
            1,
            r"GLOSSARY.md:9: a second section for chapter 1",
        ),
    ],
    ids=["missing chapter", "malformed row", "empty meaning", "chapter twice"],
)
def test_a_broken_glossary_is_named_with_its_line(tmp_path, rows, chapter, message):
    with pytest.raises(GlossaryError, match=message):
        glossary(chapter, write(tmp_path, rows))


def test_a_wrong_header_is_named(tmp_path):
    path = tmp_path / "GLOSSARY.md"
    path.write_text(
        "## Chapter 2 — Text\n\n| 한국어 | English | meaning |\n|---|---|---|\n| 토큰 | token | a unit |\n",
        encoding="utf-8",
    )
    with pytest.raises(GlossaryError, match=r"GLOSSARY.md:3: a chapter table must start with the header"):
        glossary(2, path)


def test_show_glossary_prints_both_languages(tmp_path, capsys):
    path = write(tmp_path, "| 사전 학습 | pretraining | 사전 훈련 | 첫 학습 단계입니다 | the first stage |\n")
    show_glossary(1, path)
    assert capsys.readouterr().out.splitlines()[2:] == [
        "사전 학습 · pretraining   [한국어판: 사전 훈련]",
        "    첫 학습 단계입니다",
        "    the first stage",
    ]


def test_the_course_glossary_is_the_default():
    assert GLOSSARY_PATH == REPO_ROOT / "ch01_intro" / "GLOSSARY.md"
    assert glossary(1)[0].korean == "대규모 언어 모델"
