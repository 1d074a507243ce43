"""The course profile and folders, read from environment variables.

``LLM_COURSE_PROFILE`` picks the scale: ``quick`` (default; every notebook runs
in minutes on a laptop CPU) or ``book`` (book-scale models and OpenAI's GPT-2
weights). ``LLM_COURSE_CACHE`` is where downloads and trained models go;
``LLM_COURSE_MIRROR`` is an optional local folder consulted before the network.
"""

import os
from dataclasses import dataclass
from pathlib import Path

PROFILES = {
    "quick": "small models, every notebook in minutes on a 2-core CPU (default)",
    "book": "book-scale settings and OpenAI's GPT-2 weights (download; GPU recommended)",
}


class ProfileError(ValueError):
    """An unknown ``LLM_COURSE_PROFILE`` value."""


@dataclass(frozen=True)
class Settings:
    profile: str
    cache_dir: Path
    mirror: Path | None

    @property
    def quick(self) -> bool:
        return self.profile == "quick"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "llm-course"


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        valid = ", ".join(PROFILES)
        raise ProfileError(f"unknown profile {profile!r}: LLM_COURSE_PROFILE must be one of {valid}")
    return profile


def settings(profile: str | None = None) -> Settings:
    """The active settings; ``profile`` overrides ``LLM_COURSE_PROFILE``."""
    profile = check_profile(profile or os.environ.get("LLM_COURSE_PROFILE") or "quick")
    cache = os.environ.get("LLM_COURSE_CACHE")
    mirror = os.environ.get("LLM_COURSE_MIRROR")
    return Settings(
        profile=profile,
        cache_dir=Path(cache).expanduser() if cache else default_cache_dir(),
        mirror=Path(mirror).expanduser() if mirror else None,
    )
