"""The audio argument is checked before any request, with errors that name the input and the fix."""
import hashlib

import pytest

from callflows.audio import check_audio
from callflows.errors import AudioInputError


def test_sample_call_is_accepted_with_its_hash(sample_call):
    """A real WAV is accepted; its sha256 (the upload cache key) is the file's content hash."""
    source = check_audio(str(sample_call))
    assert source.kind == "file" and source.mime.startswith("audio/")
    assert source.sha256 == hashlib.sha256(sample_call.read_bytes()).hexdigest()
    assert source.cache_key == f"sha256:{source.sha256}"


def test_missing_file(tmp_path):
    with pytest.raises(AudioInputError, match=r"audio file not found: '.*nope\.wav'.*Check the path"):
        check_audio(str(tmp_path / "nope.wav"))


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioInputError, match=r"empty \(0 bytes\)"):
        check_audio(str(empty))


def test_text_file_is_not_audio(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("these are meeting notes, not a recording\n" * 20)
    with pytest.raises(AudioInputError, match=r"does not look like audio.*wav, mp3"):
        check_audio(str(text))


def test_image_is_not_audio(tmp_path):
    """A file with another known type (PNG) is named as such."""
    png = tmp_path / "call.mp3"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(AudioInputError, match=r"detected image/png"):
        check_audio(str(png))


def test_directory(tmp_path):
    with pytest.raises(AudioInputError, match=r"is a directory"):
        check_audio(str(tmp_path))


@pytest.mark.parametrize("url", ["ftp://example.com/call.wav", "s3://bucket/call.wav", "file:///tmp/call.wav"])
def test_unsupported_url_scheme(url):
    with pytest.raises(AudioInputError, match=r"unsupported URL scheme.*http\(s\)"):
        check_audio(url)


def test_http_url_is_passed_through_without_a_request():
    source = check_audio("https://example.com/recordings/call-42.mp3")
    assert source.kind == "url" and source.name == "call-42" and source.cache_key.startswith("url:")
