"""Whisper's word pieces joined as written (issue 15, item 1): faster-whisper's own tokenizer and
punctuation merge on tiny.en's tokenizer.json give the pieces a transcription would, and
``join_pieces`` turns them into AssemblyAI's words (text, start/end in ms, confidence)."""
import pytest
import tokenizers
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import merge_punctuations

from local_api.engines.models import stt_model_dir
from local_api.engines.stt import join_pieces

# faster-whisper's defaults (WhisperModel.transcribe's prepend_punctuations / append_punctuations)
PREPENDED, APPENDED = "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、"


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(tokenizers.Tokenizer.from_file(str(stt_model_dir("tiny.en") / "tokenizer.json")),
                     multilingual=False)


def pieces_of(tokenizer: Tokenizer, text: str) -> list[tuple[str, float, float, float]]:
    """The word pieces faster-whisper's alignment yields for ``text`` (split_to_word_tokens, then
    merge_punctuations), each given 0.5 s from its index: (word, start_s, end_s, probability)."""
    words, tokens = tokenizer.split_to_word_tokens(tokenizer.encode(text))
    alignment = [{"word": w, "tokens": t} for w, t in zip(words, tokens)]
    merge_punctuations(alignment, PREPENDED, APPENDED)
    return [(a["word"], i * 0.5, i * 0.5 + 0.4, 0.5 + i / 100) for i, a in enumerate(alignment) if a["word"]]


@pytest.mark.parametrize("text", [
    " The branch hours are 9:30 a.m. to 5:00 p.m.",  # times, abbreviations
    " That's 1,250 dollars, 20% off, or 1.5 times less.",  # numbers, percent, contractions
    " It's $60, or about £45.50 (plus tax).",  # currencies, brackets
    " Bye-bye. Call 555-0123 by Dec. 5th, e.g. via e-mail: help@bank.com.",  # hyphens, phone, e-mail
    " He said \"no,\" O'Brien's U.S. team isn't ready.",  # quotes, apostrophes
])
def test_word_pieces_join_as_written(tokenizer, text):
    pieces = pieces_of(tokenizer, text)
    words = join_pieces(pieces)
    assert [w["text"] for w in words] == text.split()
    assert len(pieces) > len(words)  # Whisper did split some of these words
    at = 0  # each word spans its pieces: first start, last end (ms), the lowest confidence
    for w in words:
        run = [pieces[at]]
        at += 1
        while at < len(pieces) and not pieces[at][0].startswith(" "):
            run.append(pieces[at])
            at += 1
        assert (w["start"], w["end"]) == (round(run[0][1] * 1000), round(run[-1][2] * 1000))
        assert w["confidence"] == round(min(p[3] for p in run), 5)


def test_unspaced_languages_and_segments_keep_their_pieces():
    """Without spaces between words (``spaced=False``: zh, ja, th, …) every piece is a word; a
    segment's first piece is never joined to the word before; no word starts before ``after_ms``."""
    pieces = [("今日", 0.0, 0.3, 0.9), ("は", 0.3, 0.4, 0.8)]
    assert [w["text"] for w in join_pieces(pieces, spaced=False)] == ["今日", "は"]
    [word] = join_pieces([(":30", 1.0, 1.2, 0.9)], after_ms=1500)
    assert (word["text"], word["start"], word["end"]) == (":30", 1500, 1500)
