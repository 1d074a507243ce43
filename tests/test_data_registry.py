"""The data registry: verification, cache -> mirror -> download order, atomic writes.

Downloads are served by a real HTTP server on 127.0.0.1, so the network code path
(urllib, progress bar, temp file + rename) runs exactly as it does for a reader.
"""

import hashlib
import http.server
import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from shared.config import ProfileError, settings
from shared.data import (
    REGISTRY,
    ChecksumError,
    DataFile,
    FetchError,
    check_gpt2_safetensors,
    fetch,
    local_copy,
    sha256_of,
)

CONTENT = b"It had always been rather a surprise to me.\n"
CONTENT_SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def server():
    """A local HTTP server; tests put bytes into ``server.files[path]``."""
    files = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.files = files
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting fails at once, like offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.txt"


def entry(urls, sha=CONTENT_SHA, **kw) -> DataFile:
    return DataFile("test-file", "test/file.txt", tuple(urls), sha256=sha, **kw)


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*") if p.is_file()] if folder.exists() else []


def test_download_verifies_and_caches(course_env, server):
    server.files["/file.txt"] = CONTENT
    path = fetch(entry([server.url + "/file.txt"]), progress=False)
    assert path == course_env / "test" / "file.txt"
    assert path.read_bytes() == CONTENT
    assert leftovers(course_env) == []


def test_cache_hit_needs_no_network(course_env, server):
    server.files["/file.txt"] = CONTENT
    fetch(entry([server.url + "/file.txt"]), progress=False)
    path = fetch(entry([closed_port_url()]), progress=False)  # the URL is unreachable now
    assert path.read_bytes() == CONTENT


def test_download_hash_mismatch_names_file_and_both_hashes(course_env, server):
    server.files["/file.txt"] = b"tampered"
    with pytest.raises(ChecksumError) as info:
        fetch(entry([server.url + "/file.txt"]), progress=False)
    message = str(info.value)
    assert "test-file" in message and CONTENT_SHA in message
    assert hashlib.sha256(b"tampered").hexdigest() in message
    assert not (course_env / "test" / "file.txt").exists()
    assert leftovers(course_env) == []  # the temporary download was removed


def test_backup_url_is_used_when_the_first_fails(course_env, server):
    server.files["/backup.txt"] = CONTENT
    path = fetch(entry([server.url + "/missing.txt", server.url + "/backup.txt"]), progress=False)
    assert path.read_bytes() == CONTENT


def test_zip_member_is_extracted_and_verified(course_env, server):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("readme", "not this one")
        zf.writestr("data/file.txt", CONTENT)
    server.files["/archive.zip"] = buffer.getvalue()
    path = fetch(entry([server.url + "/archive.zip"], member="file.txt"), progress=False)
    assert path.read_bytes() == CONTENT
    assert leftovers(course_env) == []  # neither the zip nor the extraction temp remains


def test_offline_without_mirror_fails_fast_naming_url_and_variable(course_env):
    url = closed_port_url()
    start = time.perf_counter()
    with pytest.raises(FetchError) as info:
        fetch(entry([url]), progress=False)
    assert time.perf_counter() - start < 30
    assert url in str(info.value) and "LLM_COURSE_MIRROR" in str(info.value)


def test_mirror_is_used_before_the_network(course_env, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "test").mkdir(parents=True)
    (mirror / "test" / "file.txt").write_bytes(CONTENT)
    monkeypatch.setenv("LLM_COURSE_MIRROR", str(mirror))
    assert fetch(entry([closed_port_url()]), progress=False).read_bytes() == CONTENT


def test_local_copy_finds_cache_mirror_or_wheel_without_downloading(course_env, tmp_path, monkeypatch):
    smol = REGISTRY["smollm2-135m-instruct"]
    assert local_copy(smol) is None  # empty cache, no mirror: fetch would have to download
    mirror = tmp_path / "mirror"
    monkeypatch.setenv("LLM_COURSE_MIRROR", str(mirror))
    assert local_copy(smol) is None
    wheel = mirror / smol.wheel_relpath
    wheel.parent.mkdir(parents=True)
    wheel.write_bytes(b"a wheel")
    assert local_copy(smol) == wheel
    cached = course_env / smol.relpath
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"gguf")
    assert local_copy(smol) == cached  # the cache comes first, as in fetch


def test_corrupt_mirror_file_is_an_error_with_both_hashes(course_env, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "test").mkdir(parents=True)
    (mirror / "test" / "file.txt").write_bytes(CONTENT + b"!")
    monkeypatch.setenv("LLM_COURSE_MIRROR", str(mirror))
    with pytest.raises(ChecksumError) as info:
        fetch(entry([closed_port_url()]), progress=False)
    message = str(info.value)
    assert str(mirror / "test" / "file.txt") in message
    assert CONTENT_SHA in message and hashlib.sha256(CONTENT + b"!").hexdigest() in message


def test_damaged_cache_entry_is_replaced(course_env, server):
    server.files["/file.txt"] = CONTENT
    damaged = course_env / "test" / "file.txt"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"half a fi")
    assert fetch(entry([server.url + "/file.txt"]), progress=False).read_bytes() == CONTENT


def test_registry_entries_are_complete():
    for item in REGISTRY.values():
        assert item.urls and all(u.startswith("https://") for u in item.urls), item.name
        assert (item.sha256 is None) != (item.check is None), item.name  # exactly one way to verify
        assert item.sha256 is None or len(item.sha256) == 64


@pytest.mark.parametrize(
    "name",
    ["the-verdict", "sms-spam-collection", "instruction-data", "tinyshakespeare", "gpt2-encoder", "gpt2-vocab-bpe"],
)
def test_registry_hashes_match_the_offline_mirror(name):
    """The pinned hashes agree with the course data mirror (when one is configured)."""
    mirror = settings().mirror
    if mirror is None:
        pytest.skip("LLM_COURSE_MIRROR is not set")
    assert sha256_of(mirror / REGISTRY[name].relpath) == REGISTRY[name].sha256


def write_safetensors(path: Path, tensors: dict, extra_bytes: int = 0) -> None:
    """A safetensors file with zero-filled float32 tensors, written by hand."""
    header, offset = {}, 0
    for name, shape in tensors.items():
        size = 4
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset + extra_bytes))


def test_gpt2_weights_check_accepts_the_right_shapes(tmp_path):
    path = tmp_path / "model.safetensors"
    write_safetensors(path, {"wte.weight": [11, 4], "h.1.ln_1.weight": [4]})
    check_gpt2_safetensors(n_layers=2, emb_dim=4, vocab_size=11)(path)


def test_gpt2_weights_check_rejects_truncated_and_wrong_size(tmp_path):
    path = tmp_path / "model.safetensors"
    write_safetensors(path, {"wte.weight": [11, 4], "h.1.ln_1.weight": [4]})
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ChecksumError, match="incomplete"):
        check_gpt2_safetensors(n_layers=2, emb_dim=4, vocab_size=11)(path)
    write_safetensors(path, {"transformer.wte.weight": [11, 4], "transformer.h.1.ln_1.weight": [4]})
    with pytest.raises(ChecksumError, match="h.2.ln_1.weight"):
        check_gpt2_safetensors(n_layers=3, emb_dim=4, vocab_size=11)(path)


def test_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("LLM_COURSE_PROFILE", "nonsense")
    with pytest.raises(ProfileError, match="quick, book"):
        settings()


def test_gpt2_encoding_works_offline_from_the_registry(tmp_path):
    """Without TIKTOKEN_CACHE_DIR, the tokenizer is built from registry files (mirror here)."""
    mirror = settings().mirror
    if mirror is None:
        pytest.skip("LLM_COURSE_MIRROR is not set")
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")}
    env["LLM_COURSE_CACHE"] = str(tmp_path / "cache")
    code = "from shared import gpt2_encoding; print(gpt2_encoding().encode('Hello, world'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[15496, 11, 995]"  # tiktoken's documented ids for this string
    assert len(list((tmp_path / "cache" / "tiktoken").iterdir())) == 2


def test_atomic_write_replaces_whole_files_and_leaves_no_temp(tmp_path):
    from shared import atomic_write

    target = tmp_path / "sub" / "out.json"
    atomic_write(target, "first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_interrupted_atomic_write_keeps_the_previous_file(tmp_path):
    from shared import atomic_write

    target = tmp_path / "out.txt"
    atomic_write(target, "good")
    with pytest.raises(TypeError):
        atomic_write(target, 12345)  # fails mid-write: not bytes or text
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_gives_the_permissions_of_a_plain_new_file(tmp_path):
    from shared import atomic_write

    plain, atomic = tmp_path / "plain.txt", tmp_path / "atomic.txt"
    plain.write_text("x")
    atomic_write(atomic, "x")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
