"""The `llm-course` command line, run as a reader would run it."""

import os
import shutil
import subprocess
import sys

import pytest

from shared.config import settings


def llm_course(*args, env_update=None):
    env = dict(os.environ, **(env_update or {}))
    return subprocess.run(
        [sys.executable, "-m", "llm_course.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_unknown_profile_fails_and_lists_valid_ones():
    result = llm_course("check", env_update={"LLM_COURSE_PROFILE": "nonsense"})
    assert result.returncode != 0
    assert "quick" in result.stdout + result.stderr and "book" in result.stdout + result.stderr


@pytest.fixture
def mirror_copy(tmp_path):
    mirror = settings().mirror
    if mirror is None:
        pytest.skip("LLM_COURSE_MIRROR is not set")
    copy = tmp_path / "mirror"
    shutil.copytree(mirror, copy, ignore=shutil.ignore_patterns("tiktoken_cache"))
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copy


def test_fetch_verifies_every_quick_file_from_the_mirror(mirror_copy, tmp_path):
    result = llm_course(
        "fetch", env_update={"LLM_COURSE_MIRROR": str(mirror_copy), "LLM_COURSE_CACHE": str(tmp_path / "cache")}
    )
    assert result.returncode == 0, result.stderr
    assert "6/6 files ready" in result.stdout


def test_fetch_with_an_altered_mirror_file_names_it_and_both_hashes(mirror_copy, tmp_path):
    from shared.data import REGISTRY, sha256_of

    altered = mirror_copy / REGISTRY["the-verdict"].relpath
    altered.write_bytes(altered.read_bytes().replace(b"Gisburn", b"Gisborn"))
    result = llm_course(
        "fetch", env_update={"LLM_COURSE_MIRROR": str(mirror_copy), "LLM_COURSE_CACHE": str(tmp_path / "cache")}
    )
    assert result.returncode != 0
    assert str(altered) in result.stderr
    assert REGISTRY["the-verdict"].sha256 in result.stderr and sha256_of(altered) in result.stderr


def test_check_reports_every_data_file(mirror_copy, tmp_path):
    result = llm_course(
        "check", env_update={"LLM_COURSE_MIRROR": str(mirror_copy), "LLM_COURSE_CACHE": str(tmp_path / "cache")}
    )
    assert result.returncode == 0, result.stdout
    for name in ("the-verdict", "sms-spam-collection", "instruction-data", "tinyshakespeare", "torch", "device"):
        assert any(line.startswith("OK") and name in line for line in result.stdout.splitlines()), name


def test_check_fails_when_data_is_not_available_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LLM_COURSE_MIRROR"}
    env["LLM_COURSE_CACHE"] = str(tmp_path / "empty")
    result = subprocess.run([sys.executable, "-m", "llm_course.cli", "check"], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert "FAIL the-verdict" in result.stdout


def test_run_help_documents_the_default_folder_and_fresh():
    result = llm_course("run", "--help")
    assert result.returncode == 0
    assert "runs/<profile>" in result.stdout and "--fresh" in result.stdout
    assert "Ollama" in result.stdout and "every run" in " ".join(result.stdout.split())


def test_run_refuses_an_unknown_profile_before_creating_anything(tmp_path):
    result = llm_course("run", "--profile", "nonsense", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "unknown profile 'nonsense'" in result.stderr and "quick" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_chat_without_a_model_in_the_run_folder_says_how_to_make_one(tmp_path):
    result = llm_course("chat", "--run", str(tmp_path))
    assert result.returncode == 2
    assert f"no fine-tuned model in {tmp_path / 'instruct-model'}" in result.stderr
    assert f"llm-course run --out {tmp_path}" in result.stderr and "Traceback" not in result.stderr
