"""Conversation metrics (callflows.metrics) on hand-built utterances with known answers."""
from __future__ import annotations

import subprocess
import sys

import pytest

from callflows.metrics import (
    ConversationMetrics, Trajectory, conversation_metrics, interruptions, longest_monologue_ms,
    questions_asked, sentiment_counts, sentiment_trajectory, silence_share, speakers, speech_time_ms,
    talk_listen_ratio, talk_share, talk_time_ms, word_counts, words_per_minute,
)
from callflows.models import SentimentAnalysisResult, Utterance, Word
from callflows.sentiment import SentenceSentiment, SentimentCounts


def utt(speaker: str, start: int, end: int, text: str = "hello there", words: list[Word] | None = None) -> Utterance:
    return Utterance(speaker=speaker, text=text, start=start, end=end, confidence=0.9, words=words or [])


def sent(sentiment: str, start: int, end: int, speaker: str | None = "A", confidence: float = 0.9,
         ) -> SentimentAnalysisResult:
    return SentimentAnalysisResult(text="x.", start=start, end=end, sentiment=sentiment, confidence=confidence,
                                   speaker=speaker)


# A 20 s two-speaker call: A greets, B complains, A cuts in at 7 s while B talks until 8 s, A carries
# on after a 0.5 s pause, silence, B answers. Speech: 0-4, 4.5-10, 10.5-12, 13-16 s = 14 s of 20 s.
CALL = [
    utt("A", 0, 4000, "Hi, thanks for calling. How can I help?"),
    utt("B", 4500, 8000, "My bill is wrong. Can you check it? Why is it so high??"),
    utt("A", 7000, 10000, "Let me check."),
    utt("A", 10500, 12000, "Found it."),
    utt("B", 13000, 16000, "OK."),
]
CALL_MS = 20000


def test_talk_time_sums_utterance_durations_per_speaker() -> None:
    """Talk time is the sum of end - start per speaker in ms; overlapping talk counts for both."""
    assert talk_time_ms(CALL) == {"A": 4000 + 3000 + 1500, "B": 3500 + 3000}


def test_talk_share_is_share_of_speech_not_of_call() -> None:
    """Talk share divides by total talk time (15 s), not by the 20 s call, so shares sum to 1."""
    shares = talk_share(CALL)
    assert shares == pytest.approx({"A": 8500 / 15000, "B": 6500 / 15000})
    assert sum(shares.values()) == pytest.approx(1.0)


def test_talk_listen_ratio() -> None:
    """Ratio = own talk time / others' talk time; 0.0 for a silent or unknown speaker next to talkers."""
    assert talk_listen_ratio(CALL, "A") == pytest.approx(8500 / 6500)
    assert talk_listen_ratio(CALL, "B") == pytest.approx(6500 / 8500)
    assert talk_listen_ratio(CALL, "C") == 0.0


def test_talk_listen_ratio_three_speakers_counts_all_others() -> None:
    """With three speakers the listen side is the sum of both other speakers' talk time."""
    call = [utt("A", 0, 6000), utt("B", 6000, 8000), utt("C", 8000, 12000)]
    assert talk_listen_ratio(call, "A") == pytest.approx(6000 / 6000)
    assert talk_listen_ratio(call, "C") == pytest.approx(4000 / 8000)


def test_longest_monologue_merges_same_speaker_utterances_with_pauses() -> None:
    """A's 7-10 s and 10.5-12 s utterances form one 5 s monologue (the pause counts); B's longest is 3.5 s."""
    assert longest_monologue_ms(CALL) == {"A": 5000, "B": 3500}


def test_longest_monologue_broken_by_backchannel() -> None:
    """Another speaker's utterance, even a short backchannel, ends the run; the utterance it starts in is
    not split."""
    call = [utt("A", 0, 10000), utt("B", 4000, 4500, "mm-hmm"), utt("A", 11000, 14000), utt("A", 15000, 20000)]
    assert longest_monologue_ms(call) == {"A": 10000, "B": 500}


def test_interruptions_counts_turns_started_inside_another_speakers_turn() -> None:
    """A starts at 7 s while B talks until 8 s: one interruption, counted for A (the one who cuts in)."""
    assert interruptions(CALL) == {"A": 1, "B": 0}


def test_interruptions_edge_cases() -> None:
    """Not interruptions: a clean hand-over (start == other's end), a simultaneous start, an overlap with
    one's own utterance. A turn overlapping two other speakers counts once."""
    handover = [utt("A", 0, 5000), utt("B", 5000, 8000)]
    assert interruptions(handover) == {"A": 0, "B": 0}
    simultaneous = [utt("A", 0, 5000), utt("B", 0, 3000)]
    assert interruptions(simultaneous) == {"A": 0, "B": 0}
    own_overlap = [utt("A", 0, 5000), utt("A", 4000, 6000)]
    assert interruptions(own_overlap) == {"A": 0}
    over_two = [utt("A", 0, 10000), utt("B", 1000, 10000), utt("C", 5000, 6000)]
    assert interruptions(over_two) == {"A": 0, "B": 1, "C": 1}


def test_interruptions_unsorted_input() -> None:
    """Utterances are put in time order first; the order of the input does not matter."""
    assert interruptions(list(reversed(CALL))) == {"A": 1, "B": 0}


def test_questions_asked_counts_sentences_ending_in_question_mark() -> None:
    """A asks 1 question, B asks 2 ("Why is it so high??" is one); "Really?!" counts once."""
    assert questions_asked(CALL) == {"A": 1, "B": 2}
    assert questions_asked([utt("A", 0, 1000, "Really?! No. Sure? Yes.")]) == {"A": 2}


def test_words_per_minute_uses_words_else_text() -> None:
    """WPM = words / talk minutes: A's words come from Utterance.words (3 words in 1.4 s of talk →
    128.6 wpm, not the 1 token of its text); B's from its text (5 words in 2 s → 150 wpm)."""
    words = [Word(text=t, start=i * 500, end=i * 500 + 400, confidence=0.9) for i, t in enumerate(["a", "b", "c"])]
    call = [utt("A", 0, 1500, "abc", words), utt("B", 2000, 4000, "one two three four five")]
    assert word_counts(call) == {"A": 3, "B": 5}
    assert words_per_minute(call) == pytest.approx({"A": 3 / (1400 / 60000), "B": 150.0})


def test_talk_time_leaves_out_long_pauses_inside_an_utterance() -> None:
    """With words, talk time is the words' time plus the pauses under PAUSE_MS between them: A says
    two words (0.4 s each, 0.1 s apart), types for 3 s, says one more; B's utterance has no words, so
    its span counts."""
    words = [Word(text="one", start=0, end=400, confidence=0.9), Word(text="moment", start=500, end=900, confidence=0.9),
             Word(text="done.", start=3900, end=4300, confidence=0.9)]
    call = [utt("A", 0, 4300, "one moment done.", words), utt("B", 5000, 6300, "thanks")]
    assert talk_time_ms(call) == {"A": 400 + 100 + 400 + 400, "B": 1300}
    assert talk_share(call)["A"] == pytest.approx(1300 / 2600)


def test_words_per_minute_zero_talk_time() -> None:
    """A speaker whose utterances have zero length gets 0.0 words per minute, not a division error."""
    assert words_per_minute([utt("A", 1000, 1000, "hm")]) == {"A": 0.0}


def test_silence_share_counts_overlap_once() -> None:
    """Speech is the union of utterance intervals: A and B overlap 7-8 s, counted once → 14 s of speech,
    6 s silence of 20 s = 0.3."""
    assert speech_time_ms(CALL) == 14000
    assert silence_share(CALL, CALL_MS) == pytest.approx(0.3)


def test_silence_share_clips_to_the_call_and_handles_edges() -> None:
    """Speech past duration_ms is clipped (share never negative); no speech → 1.0; zero duration → 0.0."""
    assert silence_share([utt("A", 0, 12000)], 10000) == 0.0
    assert silence_share([], 10000) == 1.0
    assert silence_share([], 0) == 0.0


def test_speakers_in_order_of_first_appearance() -> None:
    """Dict keys follow the first utterance of each speaker in time, whatever the input order."""
    call = [utt("B", 5000, 6000), utt("A", 0, 1000), utt("C", 2000, 3000)]
    assert speakers(call) == ["A", "C", "B"]
    assert list(talk_time_ms(call)) == ["A", "C", "B"]
    assert list(longest_monologue_ms(call)) == ["A", "C", "B"]


def test_one_speaker_call() -> None:
    """One speaker: share 1.0, ratio None, monologue = span of all their utterances, no interruptions."""
    call = [utt("A", 1000, 4000, "Is this on? Hello."), utt("A", 5000, 7000, "Testing one two.")]
    assert talk_time_ms(call) == {"A": 5000}
    assert talk_share(call) == {"A": 1.0}
    assert talk_listen_ratio(call, "A") is None
    assert longest_monologue_ms(call) == {"A": 6000}
    assert interruptions(call) == {"A": 0}
    assert questions_asked(call) == {"A": 1}
    assert words_per_minute(call) == pytest.approx({"A": 7 / (5000 / 60000)})
    assert silence_share(call, 10000) == pytest.approx(0.5)


def test_empty_transcript() -> None:
    """No utterances: every per-speaker metric is {}, the ratio None, the call all silence."""
    for fn in (talk_time_ms, talk_share, longest_monologue_ms, interruptions, questions_asked, word_counts,
               words_per_minute):
        assert fn([]) == {}
    assert talk_listen_ratio([], "A") is None
    assert speech_time_ms([]) == 0
    assert silence_share([], 5000) == 1.0
    assert sentiment_counts([]) == {}
    m = conversation_metrics([], [], 5000)
    assert m.speakers == {} and m.speech_ms == 0 and m.silence_share == 1.0
    assert m.trajectory.direction is None and m.trajectory.start_score is None
    assert m.to_markdown_table().count("\n") == 2  # header only


def test_sentiment_counts_per_speaker() -> None:
    """Counts per speaker and label; sentences without a speaker go under "?"; SentenceSentiment works too."""
    results = [sent("POSITIVE", 0, 1000, "A"), sent("NEGATIVE", 1000, 2000, "B"), sent("POSITIVE", 2000, 3000, "A"),
               sent("NEUTRAL", 3000, 4000, None)]
    counts = sentiment_counts(results)
    assert list(counts) == ["A", "B", "?"]
    assert counts["A"] == SentimentCounts(POSITIVE=2)
    assert counts["B"] == SentimentCounts(NEGATIVE=1)
    assert counts["?"] == SentimentCounts(NEUTRAL=1)
    as_sentences = [SentenceSentiment(**r.model_dump()) for r in results]
    assert sentiment_counts(as_sentences) == counts


def test_trajectory_improving() -> None:
    """First third mean (-1 + 0)/2 = -0.5, last third (+1 + 0)/2 = +0.5: change +1.0 → improving; the
    middle third's sentence is ignored."""
    results = [sent("NEGATIVE", 0, 2000), sent("NEUTRAL", 3000, 5000), sent("NEGATIVE", 14000, 16000),
               sent("POSITIVE", 22000, 24000), sent("NEUTRAL", 25000, 27000)]
    t = sentiment_trajectory(results, 30000)
    assert (t.start_score, t.end_score, t.change, t.direction) == (-0.5, 0.5, 1.0, "improving")
    assert (t.start_sentences, t.end_sentences) == (2, 2)
    assert t.describe() == "improving (-0.50 → +0.50)"


def test_trajectory_worsening_at_threshold() -> None:
    """A change of exactly -0.25 (0.5 → 0.25) reaches the threshold → worsening."""
    results = [sent("NEUTRAL", 0, 1000), sent("POSITIVE", 1000, 2000),
               sent("POSITIVE", 25000, 26000), *[sent("NEUTRAL", 26000 + i * 1000, 27000 + i * 1000) for i in range(3)]]
    t = sentiment_trajectory(results, 30000)
    assert t.start_score == 0.5 and t.end_score == 0.25
    assert t.change == pytest.approx(-0.25)
    assert t.direction == "worsening"


def test_trajectory_steady_below_threshold() -> None:
    """A change of -0.1 (0.5 → 0.4) is below the 0.25 threshold → steady."""
    labels = ["POSITIVE", "NEUTRAL", "POSITIVE", "NEUTRAL", "NEUTRAL"]
    results = [sent("NEUTRAL", 0, 1000), sent("POSITIVE", 1000, 2000),
               *[sent(lab, 24000 + i * 1000, 25000 + i * 1000) for i, lab in enumerate(labels)]]
    t = sentiment_trajectory(results, 30000)
    assert t.change == pytest.approx(-0.1)
    assert t.direction == "steady"


def test_trajectory_none_when_a_third_has_no_sentences() -> None:
    """No sentence in the last third → end score None, so change and direction are None too."""
    t = sentiment_trajectory([sent("POSITIVE", 0, 2000), sent("NEGATIVE", 12000, 14000)], 30000)
    assert t.start_score == 1.0
    assert t.end_score is None and t.change is None and t.direction is None
    assert t.describe() == "n/a"
    assert sentiment_trajectory([], 30000) == Trajectory()


def test_trajectory_uses_sentence_midpoint() -> None:
    """A sentence belongs to the third holding its midpoint: 8-11 s (mid 9.5 s) is in the first third of a
    30 s call, 9-12 s (mid 10.5 s) is not."""
    t = sentiment_trajectory([sent("POSITIVE", 8000, 11000), sent("NEGATIVE", 9000, 12000),
                              sent("NEUTRAL", 20000, 21000)], 30000)
    assert t.start_sentences == 1 and t.start_score == 1.0
    assert t.end_sentences == 1 and t.end_score == 0.0


def test_trajectory_confidence_weighting_and_speaker_filter() -> None:
    """Unweighted, POSITIVE(0.9) + NEGATIVE(0.3) average 0; weighted by confidence they give 0.5. The
    speaker filter keeps only that speaker's sentences, with thirds of the whole call."""
    results = [sent("POSITIVE", 0, 1000, "A", 0.9), sent("NEGATIVE", 1000, 2000, "A", 0.3),
               sent("NEGATIVE", 2000, 3000, "B"), sent("POSITIVE", 25000, 26000, "A"),
               sent("NEGATIVE", 29000, 30000, "B")]
    assert sentiment_trajectory(results, 30000, "A").start_score == 0.0
    weighted = sentiment_trajectory(results, 30000, "A", weight_by_confidence=True)
    assert weighted.start_score == pytest.approx(0.5) and weighted.weighted
    b = sentiment_trajectory(results, None, "B")  # duration from the latest end of all sentences: 30 s
    assert (b.start_score, b.end_score, b.direction) == (-1.0, -1.0, "steady")


def test_conversation_metrics_assembles_everything() -> None:
    """conversation_metrics fills call-level and per-speaker numbers from the functions above."""
    results = [sent("NEGATIVE", 4500, 6000, "B"), sent("NEUTRAL", 0, 2000, "A"),
               sent("POSITIVE", 13000, 16000, "B"), sent("POSITIVE", 14000, 15000, None)]
    m = conversation_metrics(CALL, results, CALL_MS)
    assert isinstance(m, ConversationMetrics)
    assert (m.duration_ms, m.speech_ms, m.silence_share) == (20000, 14000, pytest.approx(0.3))
    assert list(m.speakers) == ["A", "B"]
    a, b = m.speakers["A"], m.speakers["B"]
    assert (a.talk_time_ms, a.longest_monologue_ms, a.interruptions, a.questions, a.words) == (8500, 5000, 1, 1, 13)
    assert a.talk_share == pytest.approx(8500 / 15000)
    assert a.words_per_minute == pytest.approx(13 / (8500 / 60000))
    assert b.talk_listen_ratio == pytest.approx(6500 / 8500)
    assert b.sentiment == SentimentCounts(POSITIVE=1, NEGATIVE=1)
    assert (b.trajectory.start_score, b.trajectory.end_score, b.trajectory.direction) == (-1.0, 1.0, "improving")
    assert (m.trajectory.start_score, m.trajectory.end_score) == (-0.5, 1.0)  # all sentences, incl. "?"
    ConversationMetrics.model_validate_json(m.model_dump_json())  # round-trips as JSON


def test_to_markdown_table_one_row_per_speaker() -> None:
    """The table has a header and one row per speaker: share in %, seconds with one decimal."""
    table = conversation_metrics(CALL, [], CALL_MS).to_markdown_table()
    lines = table.strip().splitlines()
    assert len(lines) == 4
    assert lines[2] == "| A | 8.5 | 56.7% | 1.31 | 5.0 | 1 | 1 | 13 | 92 | 0/0/0 | n/a |"
    assert lines[3].startswith("| B | 6.5 | 43.3% | 0.76 | 3.5 | 0 | 2 | 14 | 129 |")


def test_one_speaker_conversation_table_shows_undefined_ratio() -> None:
    """A one-speaker call renders its undefined talk/listen ratio as "–" and 100.0% share."""
    table = conversation_metrics([utt("A", 0, 3000, "one two three")], [], None).to_markdown_table()
    assert "| A | 3.0 | 100.0% | – | 3.0 | 0 | 0 | 3 | 60 |" in table


def test_metrics_module_does_not_import_prefect() -> None:
    """The core package stays free of Prefect: importing callflows.metrics loads no prefect module."""
    code = "import sys, callflows.metrics; sys.exit(any(m.split('.')[0] == 'prefect' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
