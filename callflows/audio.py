"""Check the ``audio`` argument before any request: a local recording or an http(s) URL.

A local file must exist, be non-empty and look like audio or video (magic bytes, via the ``filetype``
library); a URL must be http(s), the only schemes AssemblyAI can fetch. A WAV (RIFF/WAVE) file is
also checked from its header chunks alone (a few small reads, never the audio itself): it must parse,
hold all the audio data its ``data`` chunk declares (not cut short, e.g. by an interrupted copy), and
last at least ``MIN_DURATION_MS`` (160 ms, AssemblyAI's minimum: "Audio duration is too short.").
Other formats are not decoded here: the API reports what it cannot read. Errors are
``AudioInputError`` with a message that names the input and the fix.
"""
from __future__ import annotations

import functools
import hashlib
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import filetype

from callflows.errors import AudioInputError, DamagedAudioError, InputError
from callflows.models import TranscriptionOptions

SUPPORTED_HINT = "wav, mp3, m4a, flac, ogg, opus, webm, aac, amr, aiff, mp4, mov, mkv"
MIN_DURATION_MS = 160  # AssemblyAI refuses shorter audio: "Audio duration is too short."
_HASH_CHUNK = 1 << 20
_MAX_WAV_CHUNKS = 64  # chunks read before ``data`` (fmt, LIST, fact, ...); real files have a handful
_UNKNOWN_DATA_SIZES = (0, 0xFFFFFFFF)  # written by streaming encoders that cannot seek back
_FRAME_FORMATS = (1, 3, 6, 7, 0xFFFE)  # PCM, IEEE float, A-law, mu-law, extensible: fixed bytes per frame


@dataclass(frozen=True)
class AudioSource:
    """A checked ``audio`` argument.

    ``kind`` is ``"file"`` (``value`` is an absolute path; ``sha256`` and ``size_bytes`` are set) or
    ``"url"`` (``value`` is the URL as given). ``channels`` is set for WAV files (from the header). ``cache_key`` identifies the recording's content for
    caching: ``sha256:<hex>`` for files, ``url:<url>`` for URLs.
    """

    kind: Literal["file", "url"]
    value: str
    sha256: str | None = None
    size_bytes: int | None = None
    mime: str | None = None
    channels: int | None = None

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
    a directory, an empty file, a file whose content is not a known audio/video format, and a WAV
    file whose header does not parse, whose audio data is cut short, or that lasts less than
    ``MIN_DURATION_MS`` (read from the header only).
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
    channels = _check_wav(path, text, size).channels if kind.extension == "wav" else None
    return AudioSource(kind="file", value=str(path.resolve()), sha256=file_sha256(path), size_bytes=size,
                       mime=kind.mime, channels=channels)


@dataclass(frozen=True)
class WavHeader:
    """What a WAV file's ``fmt `` and ``data`` chunk headers say.

    ``data_declared`` is the size the ``data`` chunk header gives (None when the writer left it
    unknown: 0 or 0xFFFFFFFF, as streaming encoders do); ``data_present`` is the number of bytes
    that actually follow that header in the file.
    """

    format_tag: int
    channels: int
    sample_rate: int
    byte_rate: int
    block_align: int
    data_declared: int | None
    data_present: int

    @property
    def truncated(self) -> bool:
        return self.data_declared is not None and self.data_declared > self.data_present

    @property
    def duration_s(self) -> float | None:
        """Duration of the audio data: frames / rate (PCM and other fixed-size frames), else bytes /
        average byte rate; None when the header gives neither."""
        data = self.data_present if self.data_declared is None else min(self.data_declared, self.data_present)
        if self.format_tag in _FRAME_FORMATS and self.block_align and self.sample_rate:
            return (data // self.block_align) / self.sample_rate
        if self.byte_rate:
            return data / self.byte_rate
        return None


class WavHeaderError(ValueError):
    """The RIFF/WAVE header of a file cannot be parsed; the message says where it stops making sense."""


def _plausible_chunk_id(raw: bytes) -> bool:
    return len(raw) == 4 and all(32 <= b < 127 for b in raw)


def read_wav_header(path: str | Path) -> WavHeader:
    """Parse the chunk headers of the RIFF/WAVE file at ``path`` up to its ``data`` chunk.

    Reads only chunk headers and the ``fmt `` chunk (seeking over everything else). Raises
    ``WavHeaderError`` when the file is not RIFF/WAVE, the file ends before the ``data`` chunk, or
    the ``fmt `` chunk is missing or impossible.
    """
    size = Path(path).stat().st_size
    fmt: tuple[int, ...] | None = None
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise WavHeaderError("it does not start with a RIFF/WAVE header")
        pos = 12
        for _ in range(_MAX_WAV_CHUNKS):
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                what = "a 'data' chunk" if fmt else "its 'fmt ' and 'data' chunks"
                raise WavHeaderError(f"the file ends at byte {size:,}, before {what}")
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            body = pos + 8
            if chunk_id == b"fmt ":
                raw = f.read(min(chunk_size, 40))
                if chunk_size < 16 or len(raw) < 16:
                    raise WavHeaderError(f"its 'fmt ' chunk is {min(chunk_size, len(raw))} bytes, "
                                         f"not the 16 or more a WAV file needs")
                fmt = struct.unpack("<HHIIH", raw[:14])
            elif chunk_id == b"data":
                if fmt is None:
                    raise WavHeaderError("its 'data' chunk comes before any 'fmt ' chunk")
                format_tag, channels, sample_rate, byte_rate, block_align = fmt
                if not channels or not (sample_rate or byte_rate):
                    raise WavHeaderError(f"its 'fmt ' chunk says {channels} channel(s) at {sample_rate} Hz")
                return WavHeader(format_tag=format_tag, channels=channels, sample_rate=sample_rate,
                                 byte_rate=byte_rate, block_align=block_align,
                                 data_declared=None if chunk_size in _UNKNOWN_DATA_SIZES else chunk_size,
                                 data_present=max(0, size - body))
            pos = body + chunk_size
            if chunk_size % 2:  # RIFF pads odd chunks to even; tolerate writers that do not
                f.seek(pos)
                ahead = f.read(5)
                unpadded, padded = ahead[:4], ahead[1:5]
                if unpadded not in (b"data", b"fmt ") and (
                        _plausible_chunk_id(padded) or not _plausible_chunk_id(unpadded)):
                    pos += 1
        raise WavHeaderError(f"no 'data' chunk among its first {_MAX_WAV_CHUNKS} chunks")


def _check_wav(path: Path, text: str, size: int) -> WavHeader:
    """The WAV file's header; ``DamagedAudioError`` if the file is corrupt, cut short, or shorter than
    the API's minimum."""
    try:
        header = read_wav_header(path)
    except WavHeaderError as exc:
        raise DamagedAudioError(
            f"audio file {text!r} is a WAV file whose header cannot be read ({exc}): the file looks cut "
            f"short or corrupt ({size:,} bytes). Copy or export the recording again") from None
    except OSError as exc:
        raise AudioInputError(f"audio file {text!r} cannot be read ({exc.strerror}): check its permissions") from None
    if header.truncated:
        raise DamagedAudioError(
            f"audio file {text!r} looks cut short: its WAV header declares {header.data_declared:,} bytes of "
            f"audio data but only {header.data_present:,} are present (an interrupted copy or download?). "
            f"Copy or export the recording again")
    duration_s = header.duration_s
    if duration_s is not None and round(duration_s * 1000, 6) < MIN_DURATION_MS:
        raise DamagedAudioError(
            f"audio file {text!r} is {math.floor(duration_s * 1000)} ms long: AssemblyAI needs at least "
            f"{MIN_DURATION_MS} ms of audio (\"Audio duration is too short.\"). Pass a longer recording")
    return header


def wav_channels(source: AudioSource) -> int | None:
    """Number of channels of a local WAV file (read from its header by ``check_audio``), or None when
    the source is a URL or not a WAV (the API then decides)."""
    return source.channels if source.kind == "file" else None


def call_options(source: AudioSource, multichannel: bool | None, speakers_expected: int | None,
                 redaction: dict | None = None) -> TranscriptionOptions:
    """Transcription options shared by the analyses, so they reuse one cached transcript:
    ``multichannel`` (one speaker per channel) for stereo WAV input unless ``multichannel=False``,
    otherwise ``speaker_labels`` (with ``speakers_expected``); ``sentiment_analysis`` always; the PII
    redaction options ``redaction`` (``flows.parameters.redaction``) when given.

    Raises ``InputError`` (before any request) for ``multichannel=True`` on a mono WAV file.
    """
    channels = wav_channels(source)
    if multichannel is None:
        multichannel = bool(channels and channels >= 2)
    elif multichannel and channels == 1:
        raise InputError(f"multichannel is on but {source.value!r} is mono (1 channel): pass a stereo recording with "
                         f"one speaker per channel, or set multichannel to auto or off to use speaker labels")
    if multichannel:
        return TranscriptionOptions(multichannel=True, sentiment_analysis=True, **(redaction or {}))
    return TranscriptionOptions(speaker_labels=True, sentiment_analysis=True, speakers_expected=speakers_expected,
                                **(redaction or {}))
