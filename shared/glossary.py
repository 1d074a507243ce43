"""The course's Korean–English glossary, ``ch01_intro/GLOSSARY.md``, read as data.

The file has one ``## Chapter N — title`` section per chapter, each with one table::

    | 한국어 | English | 한국어판 | 뜻 | meaning |
    |---|---|---|---|---|
    | 사전 학습 | pretraining | 사전 훈련 | 레이블 없는 … | the first training stage: … |

한국어 is the course's Korean term, 한국어판 the published Korean edition's term where it
differs (else empty), 뜻 and meaning the meaning in Korean and in English. A literal ``|``
inside a cell is written ``\\|``.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from shared.export import REPO_ROOT

GLOSSARY_PATH = REPO_ROOT / "ch01_intro" / "GLOSSARY.md"
HEADER = ("한국어", "English", "한국어판", "뜻", "meaning")
SECTION = re.compile(r"^## Chapter (\d+) — ", re.M)
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


class GlossaryError(ValueError):
    """A glossary that cannot be read: the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Term:
    korean: str  # the course's term, e.g. 사전 학습
    english: str  # e.g. pretraining; other names and abbreviations in parentheses
    korean_edition: str  # the Korean edition's term where it differs, else ""
    meaning_ko: str
    meaning_en: str


def _cells(line: str) -> list[str]:
    """The cells of one markdown table row, with ``\\|`` turned back into ``|``."""
    inner = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
    return [cell.strip().replace("\\|", "|") for cell in CELL_SEPARATOR.split(inner)]


def _parse_table(lines: list[tuple[int, str]], path: Path) -> list[Term]:
    """Terms from the ``(line number, text)`` table lines of one section."""
    if len(lines) < 2 or tuple(_cells(lines[0][1])) != HEADER:
        where = f"{path}:{lines[0][0]}" if lines else str(path)
        raise GlossaryError(f"{where}: a chapter table must start with the header | {' | '.join(HEADER)} |")
    terms = []
    for number, line in lines[2:]:
        cells = _cells(line)
        if len(cells) != len(HEADER):
            raise GlossaryError(
                f"{path}:{number}: a row needs {len(HEADER)} cells "
                f"({', '.join(HEADER)}), found {len(cells)}; write a literal | as \\|"
            )
        korean, english, edition, meaning_ko, meaning_en = cells
        missing = [name for name, cell in zip(HEADER, cells) if not cell and name != "한국어판"]
        if missing:
            raise GlossaryError(f"{path}:{number}: empty {', '.join(missing)}; only 한국어판 may be empty")
        terms.append(Term(korean, english, edition, meaning_ko, meaning_en))
    return terms


def read_glossary(path: Path = GLOSSARY_PATH) -> dict[int, list[Term]]:
    """{chapter number: its terms in file order} for every chapter section of the file."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    starts = [(int(m.group(1)), text.count("\n", 0, m.start())) for m in SECTION.finditer(text)]
    ends = [start for _, start in starts[1:]] + [len(lines)]
    chapters = {}
    for (chapter, start), end in zip(starts, ends):
        if chapter in chapters:
            raise GlossaryError(f"{path}:{start + 1}: a second section for chapter {chapter}; merge the two")
        table = [(n + 1, lines[n]) for n in range(start + 1, end) if lines[n].lstrip().startswith("|")]
        chapters[chapter] = _parse_table(table, Path(path))
    return chapters


def glossary(chapter: int, path: Path = GLOSSARY_PATH) -> list[Term]:
    """The terms one chapter introduces, in the order of its table."""
    chapters = read_glossary(path)
    if chapter not in chapters:
        raise GlossaryError(
            f"{path}: no section '## Chapter {chapter} — …'; the glossary has chapters {sorted(chapters)}"
        )
    return chapters[chapter]


def show_glossary(chapter: int, path: Path = GLOSSARY_PATH) -> None:
    """Print one chapter's terms in both languages: term · English, then the two meanings."""
    terms = glossary(chapter, path)
    print(f"Chapter {chapter}: {len(terms)} terms (한국어판: the Korean edition's term, where it differs)\n")
    for term in terms:
        edition = f"   [한국어판: {term.korean_edition}]" if term.korean_edition else ""
        print(f"{term.korean} · {term.english}{edition}")
        print(f"    {term.meaning_ko}")
        print(f"    {term.meaning_en}")
