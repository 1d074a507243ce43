"""The output policy of docs/NOTEBOOKS.md, as functions the tests and the test report use.

A notebook's code cells are deterministic (output compared exactly), timing (compared after
the sanitizer) or trajectory (output not compared, marked with the cell tag
``nbval-ignore-output``). Every marked cell must be followed by a *guard*: an unmarked code
cell that asserts the claim the prose makes about it.
"""

import ast
import json
import re
from pathlib import Path

IGNORE_TAG = "nbval-ignore-output"
FORBIDDEN_TAGS = ("nbval-skip", "nbval-raise", "raises-exception")
FORBIDDEN_COMMENTS = ("NBVAL_SKIP", "NBVAL_IGNORE_OUTPUT", "NBVAL_RAISES_EXCEPTION", "NBVAL_CHECK_OUTPUT")
MAX_SIGNIFICANT_DIGITS = 6

# A decimal number standing alone: not part of a version ("2.13.0"), a name ("v1.5") or an address.
_FLOAT = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?:[eE][-+]?\d+)?(?![\w.])")


def load_cells(notebook: Path) -> list[dict]:
    return json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def is_marked(cell: dict) -> bool:
    return cell["cell_type"] == "code" and IGNORE_TAG in cell.get("metadata", {}).get("tags", [])


def _python(cell: dict) -> str:
    """The cell's code with IPython magics and shell escapes blanked out, so ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source(cell).splitlines())


def is_guard(cell: dict) -> bool:
    """An unmarked code cell with at least one ``assert`` statement."""
    if cell["cell_type"] != "code" or is_marked(cell):
        return False
    try:
        tree = ast.parse(_python(cell))
    except SyntaxError:
        return False
    return any(isinstance(node, ast.Assert) for node in ast.walk(tree))


def unguarded_marked_cells(cells: list[dict]) -> list[int]:
    """Indices of marked cells whose next code cell is not a guard."""
    code = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code"]
    missing = []
    for position, index in enumerate(code):
        if is_marked(cells[index]):
            following = code[position + 1] if position + 1 < len(code) else None
            if following is None or not is_guard(cells[following]):
                missing.append(index)
    return missing


def skip_markers(cells: list[dict]) -> list[str]:
    """Every use of a skip/ignore marker other than the one documented tag."""
    found = []
    for i, cell in enumerate(cells):
        tags = cell.get("metadata", {}).get("tags", [])
        found += [f"cell {i}: tag {tag!r}" for tag in tags if tag in FORBIDDEN_TAGS]
        found += [f"cell {i}: comment {word}" for word in FORBIDDEN_COMMENTS if word in source(cell)]
    return found


def significant_digits(number: str) -> int:
    """Digits of a decimal literal's mantissa from its first to its last non-zero digit.

    '0.00125' -> 3; '100000.0' -> 1: zeros at either end carry no rounding noise.
    """
    mantissa = re.split("[eE]", number.lstrip("+-"))[0]
    return len(mantissa.replace(".", "").strip("0"))


def output_texts(cell: dict) -> list[str]:
    """The text of every stored output of a code cell (streams, text/* data, errors)."""
    texts = []
    for output in cell.get("outputs", []):
        if "text" in output:
            texts.append(source({"source": output["text"]}))
        for mime, data in output.get("data", {}).items():
            if mime.startswith("text/"):
                texts.append(source({"source": data}))
        if output.get("output_type") == "error":
            texts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return texts


def over_precise_floats(cells: list[dict]) -> list[str]:
    """Floats with more than MAX_SIGNIFICANT_DIGITS digits in the outputs of unmarked cells."""
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or is_marked(cell):
            continue
        for text in output_texts(cell):
            found += [
                f"cell {i}: {number}"
                for number in _FLOAT.findall(text)
                if significant_digits(number) > MAX_SIGNIFICANT_DIGITS
            ]
    return found


def marked_cell_count(notebook: Path) -> int:
    return sum(map(is_marked, load_cells(notebook)))
