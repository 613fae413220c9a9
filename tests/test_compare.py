"""Results per prompt version and their comparison (callflows.provenance, callflows.compare), on
hand-built results; the flows' reruns are tested end to end in test_sentiment_flow, test_scorecard
and test_segmentation."""
from __future__ import annotations

import json
import os

import pytest

from callflows.compare import compare, load_result
from callflows.errors import InputError
from callflows.llm import LLMUsage
from callflows.metrics import conversation_metrics
from callflows.models import Utterance
from callflows.prompts import PromptTemplate
from callflows.provenance import Provenance, other_versions
from callflows.scorecard import CriterionResult, Scorecard, TalkListenAnalysis
from callflows.segmentation import OTHER, Phase, PhaseTimeline
from callflows.sentiment import Question, QuestionAnswer, SentimentCounts, SentimentReport
from flows.cli import main

TEMPLATE = PromptTemplate(name="sentiment", source="{{ transcript_block }}\nQ: {{ questions }}")


def provenance(questions: list[Question], **kw) -> Provenance:
    return Provenance.of("sentiment", kw.pop("template", TEMPLATE), {"questions": questions}, model="m",
                         max_tokens=kw.pop("max_tokens", None), temperature=0.0, **kw)


def sentiment(answers: dict[str, str], questions: list[Question]) -> SentimentReport:
    return SentimentReport(audio="call.wav", transcript_id="t1", sentences=[], counts=SentimentCounts(),
                           counts_by_speaker={}, prompt_template="sentiment", llm=LLMUsage(model="m"),
                           answers=[QuestionAnswer(question=q, answer=a) for q, a in answers.items()],
                           provenance=provenance(questions))


def scorecard(summary: str, criteria: list[tuple[str, str, bool]], suggestions: list[str]) -> Scorecard:
    metrics = conversation_metrics([Utterance(speaker="A", text="Hello there.", start=0, end=1000, confidence=1.0)],
                                   [], 1000)
    return Scorecard(audio="call.wav", transcript_id="t1", roles={"A": "Sales Rep"}, metrics=metrics, summary=summary,
                     talk_listen=TalkListenAnalysis(rep_role="Sales Rep", ideal_rep_talk_share=0.4, assessment="ok"),
                     sentiment_shifts=[], coaching_suggestions=suggestions,
                     criteria=[CriterionResult(name=n, answer=a, reason="r", quote="Hello there",
                                               quote_check="verified" if v else "not_found") for n, a, v in criteria],
                     unverified_quotes=sum(not v for _, _, v in criteria), prompt_template="scorecard",
                     llm=LLMUsage(model="m"))


def timeline(cut: float) -> PhaseTimeline:
    return PhaseTimeline(audio="call.wav", transcript_id="t1", audio_duration_s=10.0,
                         phase_names=["Greeting", "Problem", OTHER],
                         phases=[Phase(name="Greeting", start_time=0, end_time=cut, summary="hi"),
                                 Phase(name="Problem", start_time=cut, end_time=10.0, summary="the issue")])


def test_version_depends_on_the_prompt_not_on_the_flow_run():
    q1, q2 = [Question(question="How did it go?")], [Question(question="Was the customer happy?")]
    same = [provenance(q1, flow_run_id="run-1"), provenance(q1, flow_run_id="run-2")]
    assert same[0].version == same[1].version and len(same[0].version) == 12
    others = [provenance(q2), provenance(q1, max_tokens=100),
              provenance(q1, template=PromptTemplate(name="sentiment", source=TEMPLATE.source + "!"))]
    assert len({p.version for p in [same[0], *others]}) == 4
    assert others[0].differences(same[0]) == ["parameters.questions changed"]
    assert others[1].differences(same[0]) == ["max_tokens: None → 100"]
    assert provenance(q1, max_tokens=0).max_tokens is None  # 0 and None both mean the schema's bound
    assert same[0].version_path("out").as_posix() == f"out/versions/sentiment-{same[0].version}.json"


def test_other_versions_are_newest_first_and_exclude_this_one(tmp_path):
    versions = tmp_path / "versions"
    versions.mkdir()
    for i, name in enumerate(["sentiment-aaa", "sentiment-bbb", "sentiment-ccc", "scorecard-ddd"]):
        (versions / f"{name}.json").write_text("{}")
        os.utime(versions / f"{name}.json", (1000 + i, 1000 + i))
    assert [p.stem for p in other_versions(tmp_path, "sentiment", "bbb")] == ["sentiment-ccc", "sentiment-aaa"]
    assert other_versions(tmp_path / "nowhere", "sentiment", "x") == []


def test_sentiment_answers_side_by_side_with_what_changed():
    q1 = [Question(question="How did it go?")]
    a = sentiment({"How did it go?": "Well.", "Old only?": "Yes."}, q1)
    b = sentiment({"How did it go?": "Badly | slowly."}, [Question(question="How did it go?", context="x")])
    out = compare(a, b)
    assert "Changed from A to B: parameters.questions changed." in out
    assert "| How did it go? | Well. | Badly \\| slowly. |" in out
    assert "| Old only? | Yes. | – (not asked) |" in out
    assert "Changed from A to B: nothing (same prompt)." in compare(a, a)


def test_scorecard_rubric_answers_and_suggestions_side_by_side():
    a = scorecard("First.", [("Greeted", "yes", True), ("Asked", "no", False)], ["s1", "s2", "s3"])
    b = scorecard("Second.", [("Greeted", "partly", True)], ["t1", "t2", "t3"])
    out = compare(a, b)
    assert "| summary | First. | Second. |" in out and "| unverified quotes | 1 | 0 |" in out
    assert "| Greeted | **yes**: r “Hello there” | **partly**: r “Hello there” |" in out
    assert "| Asked | **no**: r “Hello there” *(not found)* | – (not in the rubric) |" in out
    assert "| 2 | s2 | t2 |" in out


def test_segmentation_timelines_phase_by_phase():
    out = compare(timeline(4.0), timeline(6.5))
    assert "| 1 | **Greeting** 0.0–4.0 s: hi | **Greeting** 0.0–6.5 s: hi |" in out
    assert "| 2 | **Problem** 4.0–10.0 s: the issue | **Problem** 6.5–10.0 s: the issue |" in out


def test_load_result_and_the_command_refuse_what_is_not_a_comparable_result(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(timeline(4.0).model_dump_json())
    b.write_text(timeline(6.5).model_dump_json())
    assert isinstance(load_result(a), PhaseTimeline)
    assert main(["compare", str(a), str(b)]) == 0
    assert "| 1 | **Greeting** 0.0–4.0 s: hi | **Greeting** 0.0–6.5 s: hi |" in capsys.readouterr().out

    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "analysis.json").write_text(json.dumps({"audio": "x", "files": {}}))
    (tmp_path / "broken.json").write_text(json.dumps({"phases": [], "audio": "x"}))
    for name, says in [("missing.json", "is not a file"), ("bad.json", "is not JSON"),
                       ("analysis.json", "is not a sentiment, scorecard or segmentation result"),
                       ("broken.json", "is not a valid segmentation result")]:
        with pytest.raises(InputError, match=says):
            load_result(tmp_path / name)
    s = tmp_path / "s.json"
    s.write_text(sentiment({"Q?": "A."}, [Question(question="Q??")]).model_dump_json())
    assert main(["compare", str(a), str(s)]) == 2
    assert "cannot compare a segmentation result with a sentiment result" in capsys.readouterr().err
