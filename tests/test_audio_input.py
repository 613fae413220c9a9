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


# --------------------------------------------------------------------------- WAV header checks

def _wav(frames, *, rate=16000, channels=1, width=2, format_tag=1, declared=None, before_data=b""):
    """A RIFF/WAVE file's bytes: ``frames`` frames of silence; ``declared`` overrides the data size the
    header gives; ``before_data`` is inserted as extra chunks between ``fmt `` and ``data``."""
    import struct

    data = b"\0" * (frames * channels * width)
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * channels * width, channels * width, width * 8)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + before_data
            + b"data" + struct.pack("<I", len(data) if declared is None else declared) + data)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_truncated_wav_names_declared_and_present_bytes(sample_call, tmp_path):
    """A WAV cut short (an interrupted copy) is refused from its header: declared vs present bytes."""
    from callflows.audio import read_wav_header

    cut = tmp_path / "cut.wav"
    cut.write_bytes(sample_call.read_bytes()[:2000])
    declared = read_wav_header(sample_call).data_declared
    with pytest.raises(AudioInputError, match=rf"'.*cut\.wav' looks cut short: its WAV header declares "
                                              rf"{declared:,} bytes of audio data but only 1,956 are present.*"
                                              rf"Copy or export the recording again"):
        check_audio(str(cut))


@pytest.mark.parametrize("size", [13, 30, 40])
def test_wav_cut_inside_its_header_is_corrupt(sample_call, tmp_path, size):
    """Cut before the audio data starts (inside fmt, or before the data chunk): the header cannot be read."""
    cut = tmp_path / "cut.wav"
    cut.write_bytes(sample_call.read_bytes()[:size])
    with pytest.raises(AudioInputError, match=r"'.*cut\.wav' is a WAV file whose header cannot be read \(.+\): "
                                              r"the file looks cut short or corrupt.*Copy or export"):
        check_audio(str(cut))


def test_wav_without_fmt_chunk_is_corrupt(tmp_path):
    bad = tmp_path / "nofmt.wav"
    bad.write_bytes(b"RIFF\x20\0\0\0WAVEdata\x10\0\0\0" + b"\0" * 16)
    with pytest.raises(AudioInputError, match=r"header cannot be read \(its 'data' chunk comes before any 'fmt '"):
        check_audio(str(bad))


@pytest.mark.parametrize("frames, rate, ok", [(1600, 16000, False), (2559, 16000, False), (2560, 16000, True),
                                              (1280, 8000, True), (0, 16000, False)])
def test_wav_shorter_than_160_ms_is_refused(tmp_path, frames, rate, ok):
    """Duration = frames / rate from the header; under 160 ms (the API's minimum) is refused."""
    short = tmp_path / "short.wav"
    short.write_bytes(_wav(frames, rate=rate))
    if ok:
        assert check_audio(str(short)).kind == "file"
        return
    ms = frames * 1000 // rate
    with pytest.raises(AudioInputError, match=rf"'.*short\.wav' is {ms} ms long: AssemblyAI needs at least 160 ms "
                                              rf"of audio \(\"Audio duration is too short\.\"\)\. Pass a longer"):
        check_audio(str(short))


def test_wav_duration_counts_frames_not_bytes(tmp_path):
    """Stereo 32-bit float (format 3) at 8 kHz: 1000 frames are 125 ms whatever the frame size."""
    f = tmp_path / "float.wav"
    f.write_bytes(_wav(1000, rate=8000, channels=2, width=4, format_tag=3))
    with pytest.raises(AudioInputError, match=r"is 125 ms long"):
        check_audio(str(f))
    f.write_bytes(_wav(2000, rate=8000, channels=2, width=4, format_tag=3))
    assert check_audio(str(f)).size_bytes == f.stat().st_size


def test_wav_with_extra_chunks_and_unknown_data_size_is_accepted(tmp_path):
    """LIST/odd-sized chunks before the data are skipped (padded or not); a data size a streaming
    encoder left unknown (0 or 0xFFFFFFFF) is taken from the bytes present."""
    from callflows.audio import read_wav_header

    extra_padded = b"LIST\x05\0\0\0INFO1\0"  # odd size, padded to even as RIFF says
    extra_unpadded = b"junk\x03\0\0\0abc"  # odd size, no pad byte (some writers)
    for i, (declared, before) in enumerate([(None, extra_padded), (None, extra_unpadded), (0, b""),
                                            (0xFFFFFFFF, extra_padded)]):
        path = tmp_path / f"ok{i}.wav"
        path.write_bytes(_wav(4000, declared=declared, before_data=before))
        header = read_wav_header(path)
        assert not header.truncated and header.duration_s == 0.25, (declared, before)
        assert check_audio(str(path)).kind == "file"


def test_sample_call_header_matches_the_wave_module(sample_call):
    import wave

    from callflows.audio import read_wav_header

    header = read_wav_header(sample_call)
    with wave.open(str(sample_call)) as w:
        assert header.duration_s == w.getnframes() / w.getframerate()
        assert header.channels == w.getnchannels() and header.sample_rate == w.getframerate()
    assert header.data_declared == header.data_present and not header.truncated
