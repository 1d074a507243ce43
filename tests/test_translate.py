"""`llm-course translate`: translated twins that cannot drift from the English notebooks."""

import json
import shutil

import pytest

from llm_course import translate as tr
from shared.export import REPO_ROOT


def test_every_translated_notebook_is_current():
    """What `llm-course translate --check` checks, on the repository itself."""
    problems, untranslated = tr.translate("ko", check=True)
    assert problems == {}
    for notebook in set(tr.english_notebooks()) - set(untranslated):
        assert tr.twin_path(notebook, "ko").exists()


def notebook(*cells):
    return {
        "cells": [
            dict(
                cell_type=kind,
                id=cid,
                metadata={},
                source=text,
                **({"outputs": [], "execution_count": None} if kind == "code" else {}),
            )
            for kind, cid, text in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@pytest.fixture
def course(tmp_path):
    """A one-notebook course with a complete Korean catalogue and its generated twin."""
    folder = tmp_path / "ch09_demo"
    folder.mkdir()
    english = folder / "demo.ipynb"
    english.write_text(
        json.dumps(
            notebook(
                ("markdown", "t", "# Chapter 9 — A demo\n\nWe count the tokens of a text."),
                ("code", "c1", "tokens = text.split()  # split at spaces\nprint(len(tokens))"),
                ("markdown", "m", "The count depends on the tokenizer."),
            )
        )
    )
    nb = json.loads(english.read_text())
    entries = tr.skeleton(nb)
    entries["t"] = tr.Entry(entries["t"].source_hash, "# 9장 — 예시\n\n텍스트의 토큰을 셉니다.")
    entries["m"] = tr.Entry(entries["m"].source_hash, "개수는 토크나이저(tokenizer)에 따라 달라집니다.")
    tr.write_catalogue(tr.catalogue_path(english, "ko", tmp_path), entries, "test")
    problems, untranslated = tr.translate("ko", root=tmp_path)
    assert problems == {} and untranslated == []
    return tmp_path, english


def test_the_twin_has_the_translations_and_the_english_code(course):
    root, english = course
    twin = json.loads(tr.twin_path(english, "ko").read_text())
    assert "".join(twin["cells"][0]["source"]) == "# 9장 — 예시\n\n텍스트의 토큰을 셉니다."
    assert twin["cells"][1] == json.loads(english.read_text())["cells"][1]
    assert tr.translate("ko", check=True, root=root) == ({}, [])


def test_an_edited_english_cell_is_named(course):
    root, english = course
    nb = json.loads(english.read_text())
    nb["cells"][2]["source"] = "The count depends on the tokenizer and the text."
    english.write_text(json.dumps(nb))
    problems, _ = tr.translate("ko", check=True, root=root)
    (found,) = problems[english]
    assert found.startswith(
        "cell m (#2, 'The count depends on the tokenizer and the text.') changed since it was translated"
    )


def test_a_changed_code_token_in_the_twin_fails_and_a_comment_alone_does_not_count_as_code(course):
    root, english = course
    twin_file = tr.twin_path(english, "ko")
    twin = json.loads(twin_file.read_text())
    twin["cells"][1]["source"] = "tokens = text.split()  # 공백에서 나눔\nprint(len(tokens))"
    twin_file.write_text(json.dumps(twin))
    assert tr.code_problems(json.loads(english.read_text()), twin) == []  # comments may differ ...
    problems, _ = tr.translate("ko", check=True, root=root)
    assert problems[english] == ["demo.ko.ipynb differs from what `llm-course translate` writes: run it"]
    twin["cells"][1]["source"] = "tokens = text.split()\nprint(len(tokens) + 1)"
    twin_file.write_text(json.dumps(twin))
    problems, _ = tr.translate("ko", check=True, root=root)  # ... tokens may not
    assert "code cell c1 differs from the English code (tokens, comments aside)" in problems[english]


def test_missing_untranslated_and_orphaned_entries_are_named(course):
    root, english = course
    catalogue = tr.catalogue_path(english, "ko", root)
    entries = tr.read_catalogue(catalogue)
    del entries["m"]
    entries["gone"] = tr.Entry("0" * 12, "사라진 셀")
    entries["t"] = tr.Entry(entries["t"].source_hash, "# Chapter 9 — A demo\n\nWe count the tokens of a text.")
    tr.write_catalogue(catalogue, entries, "test")
    problems, _ = tr.translate("ko", check=True, root=root)
    assert sorted(problems[english]) == [
        "cell m (#2, 'The count depends on the tokenizer.') has no translation",
        "cell t (#0, '# Chapter 9 — A demo') is still the English text",
        "entry gone names no markdown cell of the English notebook; remove it",
    ]


def test_a_twin_without_a_catalogue_and_a_missing_twin_are_problems(course):
    root, english = course
    twin = tr.twin_path(english, "ko")
    twin.unlink()
    problems, _ = tr.translate("ko", check=True, root=root)
    assert problems[english] == ["demo.ko.ipynb is missing: run `llm-course translate`"]
    tr.translate("ko", root=root)
    shutil.rmtree(root / tr.CATALOGUE_ROOT)
    problems, untranslated = tr.translate("ko", check=True, root=root)
    assert untranslated == [english]
    assert problems[english] == ["demo.ko.ipynb exists but translations/ko/ch09_demo/demo.md does not"]


def test_a_second_entry_for_a_cell_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "x.md"
    path.write_text("<!-- x -->\n\n=== cell a 000000000000\n가\n\n=== cell a 000000000000\n나\n")
    with pytest.raises(tr.CatalogueError, match=r"x\.md:6: cell a has a second entry"):
        tr.read_catalogue(path)


def test_translated_twins_are_not_chapter_sources():
    """A twin exports no module (and conftest keeps nbval from running it a second time)."""
    from shared.export import is_translation

    assert is_translation(REPO_ROOT / "ch03_attention" / "attention.ko.ipynb")
    assert not is_translation(REPO_ROOT / "ch03_attention" / "attention.ipynb")


def test_the_colab_badge_needs_no_translation_and_opens_the_twin(course):
    from llm_course.colab import add_colab_cells, badge_source

    root, english = course
    english.write_text(json.dumps(add_colab_cells(json.loads(english.read_text()), "ch09_demo/demo.ipynb")))
    problems, _ = tr.translate("ko", root=root)
    assert problems == {}
    twin = json.loads(tr.twin_path(english, "ko").read_text())
    assert "".join(twin["cells"][0]["source"]) == badge_source("ch09_demo/demo.ko.ipynb")
    assert twin["metadata"]["llm_course_translation"] == {"language": "ko", "of": "demo.ipynb"}
    assert tr.translate("ko", check=True, root=root) == ({}, [])
