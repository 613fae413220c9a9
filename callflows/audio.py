"""Check the ``audio`` argument before any request: a local recording or an http(s) URL.

A local file must exist, be non-empty and look like audio or video (magic bytes, via the ``filetype``
library); a URL must be http(s), the only schemes AssemblyAI can fetch. Errors are
``AudioInputError`` with a message that names the input and the fix.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import filetype

from callflows.errors import AudioInputError

SUPPORTED_HINT = "wav, mp3, m4a, flac, ogg, opus, webm, aac, amr, aiff, mp4, mov, mkv"
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class AudioSource:
    """A checked ``audio`` argument.

    ``kind`` is ``"file"`` (``value`` is an absolute path; ``sha256`` and ``size_bytes`` are set) or
    ``"url"`` (``value`` is the URL as given). ``cache_key`` identifies the recording's content for
    caching: ``sha256:<hex>`` for files, ``url:<url>`` for URLs.
    """

    kind: Literal["file", "url"]
    value: str
    sha256: str | None = None
    size_bytes: int | None = None
    mime: str | None = None

    @property
    def cache_key(self) -> str:
        return f"sha256:{self.sha256}" if self.kind == "file" else f"url:{self.value}"

    @property
    def name(self) -> str:
        """A short name for result folders: the file stem, or the URL's last path segment."""
        raw = Path(self.value).stem if self.kind == "file" else (Path(urlparse(self.value).path).stem or "audio")
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in raw)[:60] or "audio"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (constant memory). Memoised per
    (path, size, mtime), so checking the same recording twice in one process hashes it once."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_audio(audio: str | Path) -> AudioSource:
    """Validate ``audio`` (a local path or an http(s) URL) without sending anything.

    Raises ``AudioInputError`` for: an empty argument, an unsupported URL scheme, a missing file,
    a directory, an empty file, or a file whose content is not a known audio/video format.
    """
    text = str(audio).strip()
    if not text:
        raise AudioInputError("audio is empty: pass a local recording path or an http(s) URL")
    parsed = urlparse(text)
    if parsed.scheme and len(parsed.scheme) > 1:  # "C:" style drive letters are paths
        if parsed.scheme.lower() in ("http", "https"):
            if not parsed.netloc:
                raise AudioInputError(f"audio URL {text!r} has no host: pass a full http(s) URL")
            return AudioSource(kind="url", value=text)
        raise AudioInputError(
            f"audio {text!r} uses the unsupported URL scheme '{parsed.scheme}': AssemblyAI fetches only "
            f"http(s) URLs. Pass a public http(s) URL, or download the file and pass its local path")
    path = Path(text).expanduser()
    if not path.exists():
        raise AudioInputError(f"audio file not found: {text!r} (resolved to {path.absolute()}). Check the path")
    if path.is_dir():
        raise AudioInputError(f"audio {text!r} is a directory: pass one recording file "
                              f"(the batch flow takes a folder)")
    size = path.stat().st_size
    if size == 0:
        raise AudioInputError(f"audio file {text!r} is empty (0 bytes): re-export or re-download the recording")
    try:
        kind = filetype.guess(str(path))
    except OSError as exc:
        raise AudioInputError(f"audio file {text!r} cannot be read ({exc.strerror}): check its permissions") from None
    if kind is None or kind.mime.split("/")[0] not in ("audio", "video"):
        detected = kind.mime if kind else "an unknown type (no audio header)"
        raise AudioInputError(
            f"audio file {text!r} does not look like audio: detected {detected}. "
            f"Pass a recording in a common format ({SUPPORTED_HINT})")
    return AudioSource(kind="file", value=str(path.resolve()), sha256=file_sha256(path), size_bytes=size,
                       mime=kind.mime)


def wav_channels(source: AudioSource) -> int | None:
    """Number of channels of a local WAV file (read from its header), or None when the source is a
    URL, not a WAV, or a WAV the standard library cannot parse (the API then decides)."""
    if source.kind != "file" or not (source.mime or "").endswith("wav"):
        return None
    import wave

    try:
        with wave.open(source.value) as w:
            return w.getnchannels()
    except (wave.Error, EOFError, OSError):
        return None
