"""The tree follows the style configured in pyproject.toml ([tool.ruff]): lint and format."""

import subprocess

import pytest

from shared.export import REPO_ROOT, ruff_command


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=" ".join)
def test_ruff_is_clean(command):
    result = subprocess.run(
        [*ruff_command(), *command, "--output-format", "concise", "."],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    if result.returncode != 0:
        pytest.fail(
            f"`ruff {' '.join(command)} .` found problems (`ruff check --fix .` and `ruff format .` fix most; "
            "a generated chapter module is fixed in its notebook, then `llm-course export`):\n"
            f"{result.stdout}{result.stderr}",
            pytrace=False,
        )
