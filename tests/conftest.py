"""Shared fixtures: an isolated course cache and mirror for every test that asks."""

import pytest


@pytest.fixture
def course_env(tmp_path, monkeypatch):
    """Point the course at an empty cache and no mirror; return the cache path."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LLM_COURSE_CACHE", str(cache))
    monkeypatch.delenv("LLM_COURSE_MIRROR", raising=False)
    monkeypatch.delenv("LLM_COURSE_PROFILE", raising=False)
    return cache
