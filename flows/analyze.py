"""Analyse one call: sentiment, sales scorecard and segmentation, concurrently, on one transcript.

audio → every input checked once (before any request) → transcribe once (the options the three
analyses share) → captions once → the three analysis tasks (``tasks.analyses``) submitted
concurrently on a thread pool, each on the same transcript and captions, so their prompts share the
transcript block → ``CallAnalysis`` (``analysis.json`` + markdown artifact ``analyze-call``).

One analysis failing does not lose the others: each result or error is collected, everything is
written, and then the run fails with ``AnalysesFailedError`` naming the failed analyses.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from callflows.audio import call_options, check_audio
from callflows.errors import CallflowsError, PromptError
from callflows.llm import DEFAULT_LLM_MODEL
from callflows.markdown import cell
from callflows.prompts import load_template, render
from callflows.scorecard import (DEFAULT_IDEAL_REP_TALK_SHARE, DEFAULT_ROLES, DEFAULT_RUBRIC, RubricCriterion,
                                 Scorecard, check_roles, check_rubric)
from callflows.scorecard import example_context as scorecard_example_context
from callflows.segmentation import DEFAULT_PHASES, PhaseTimeline, check_phase_names
from callflows.segmentation import example_context as segmentation_example_context
from callflows.sentiment import DEFAULT_QUESTIONS, Question, SentimentReport, check_questions
from callflows.sentiment import example_context as sentiment_example_context
from callflows.usage import Usage, estimate, load_prices, transcription_usage
from flows.parameters import (DEFAULT_PII_POLICIES, MaxTokens, Multichannel, PollTimeout, RedactPiiSub,
                              SpeakersExpected, check_max_tokens, multichannel_choice, optional, redaction)
from flows.transcribe import fetch_captions, transcribe
from tasks.analyses import analyze_sentiment, score_call, segment_call
from tasks.common import RESULT_STORAGE
from tasks.logs import one_line
from tasks.reports import publish_report, result_dir

ARTIFACT_KEY = "analyze-call"
RESULT_FILE = "analysis.json"

# analysis name (a CallAnalysis field) → (title, result file written by its task)
ANALYSES: dict[str, tuple[str, str]] = {
    "sentiment": ("call sentiment", "sentiment.json"),
    "scorecard": ("sales scorecard", "scorecard.json"),
    "segmentation": ("call segmentation", "segmentation.json"),
}


class CallAnalysis(BaseModel):
    """Result of the analyze-call flow (written as ``analysis.json``): the three analyses of one
    call, each ``None`` when it failed, with its one-line error in ``errors``."""

    audio: str = Field(..., description="the recording: local path or URL, as given")
    transcript_id: str
    audio_duration_s: float | None = Field(None, description="s")
    result_dir: str = Field(..., description="folder of analysis.json (the analyses' own files are next to it)")
    sentiment: SentimentReport | None = None
    scorecard: Scorecard | None = None
    segmentation: PhaseTimeline | None = None
    errors: dict[str, str] = Field(default_factory=dict,
                                   description="analysis name (sentiment, scorecard, segmentation) → one-line error")
    files: dict[str, str] = Field(default_factory=dict, description="analysis name → result file it wrote")
    timings_s: dict[str, float] = Field(default_factory=dict, description="wall time per step, s")
    usage: Usage | None = Field(None, description="audio transcribed, LLM tokens and estimated cost of this run")
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def ok(self) -> bool:
        """True when all three analyses succeeded."""
        return not self.errors

    def to_markdown(self) -> str:
        """A short summary: one row per analysis with its status, result file and headline."""
        duration = "?" if self.audio_duration_s is None else f"{self.audio_duration_s:.0f} s"
        out = [f"# Call analysis: {self.audio}", "",
               f"Transcript `{self.transcript_id}`, {duration} of audio. Results in `{self.result_dir}`.", "",
               "| analysis | status | result file | headline |", "|---|---|---|---|"]
        for name, (title, _) in ANALYSES.items():
            if name in self.errors:
                out.append(f"| {title} | **failed** | – | {cell(self.errors[name])} |")
            else:
                out.append(f"| {title} | ok | `{self.files.get(name, '?')}` | {cell(self._headline(name))} |")
        if self.usage:
            out += ["", f"Usage: {self.usage.summary()} (an estimate at the prices of "
                        f"{self.usage.cost.prices_as_of})."]
        out += ["", "The full reports are this run's artifacts `call-sentiment`, `sales-scorecard` and "
                    "`call-segmentation`."]
        return "\n".join(out) + "\n"

    def _headline(self, name: str) -> str:
        if name == "sentiment" and self.sentiment:
            c = self.sentiment.counts
            return (f"{c.total} sentences: {c.POSITIVE} positive, {c.NEUTRAL} neutral, {c.NEGATIVE} negative; "
                    f"{len(self.sentiment.answers)} questions answered; {_quotes(self.sentiment)}")
        if name == "scorecard" and self.scorecard:
            tl = self.scorecard.talk_listen
            share = "?" if tl.rep_talk_share is None else f"{tl.rep_talk_share:.0%}"
            return (f"{tl.rep_role} talked {share} (ideal {tl.ideal_rep_talk_share:.0%}); "
                    f"{_quotes(self.scorecard)}")
        if name == "segmentation" and self.segmentation:
            return " → ".join(f"{p.name} {p.start_time:.0f}-{p.end_time:.0f} s" for p in self.segmentation.phases)
        return ""


def _quotes(result: SentimentReport | Scorecard) -> str:
    return f"{result.unverified_quotes} unverified quote(s) ({result.misattributed_quotes} misattributed)"


class AnalysesFailedError(CallflowsError):
    """One or more analyses of ``analyze_call`` failed; the others' results are written.

    ``analysis`` is the ``CallAnalysis`` (with ``errors``), as written to ``analysis.json``.
    """

    def __init__(self, analysis: CallAnalysis) -> None:
        self.analysis = analysis
        failed = "; ".join(f"{ANALYSES[name][0]} failed: {error}" for name, error in analysis.errors.items())
        super().__init__(f"{len(analysis.errors)} of {len(ANALYSES)} analyses of {analysis.audio!r} failed: {failed}. "
                         f"The other results are in {analysis.result_dir}; rerun to retry (the transcript is cached)")

    def __reduce__(self):  # keep the analysis when pickled (Prefect persists failed states)
        return (AnalysesFailedError, (self.analysis,))


# The result is persisted so that the analyze-inbox run that started this run (or a later one, if
# that run died) can read it from the result storage.
@flow(name="analyze-call", task_runner=ThreadPoolTaskRunner(max_workers=len(ANALYSES)), persist_result=True,
      result_storage=RESULT_STORAGE)
def analyze_call(
    audio: str,
    results_dir: str = "results",
    model: str = DEFAULT_LLM_MODEL,
    sentiment_prompt_template: str = "sentiment",
    scorecard_prompt_template: str = "scorecard",
    segmentation_prompt_template: str = "segmentation",
    questions: list[Question] = DEFAULT_QUESTIONS,
    roles: list[str] = DEFAULT_ROLES,
    rubric: list[RubricCriterion] = DEFAULT_RUBRIC,
    phases: list[str] = DEFAULT_PHASES,
    max_tokens: MaxTokens = 0,
    speakers_expected: SpeakersExpected = 0,
    multichannel: Multichannel = "auto",
    redact_pii: bool = False,
    redact_pii_policies: list[str] = DEFAULT_PII_POLICIES,
    redact_pii_sub: RedactPiiSub = "hash",
    poll_timeout_s: PollTimeout = 3600.0,
) -> CallAnalysis:
    """Run the call sentiment, sales scorecard and call segmentation analyses on one recording,
    concurrently, on one transcript and one set of captions.

    The results go to ``<results_dir>/<audio name>-<transcript id[:8]>/``: ``analysis.json`` and each
    analysis's own files (``sentiment.json``, ``scorecard.json`` and ``metrics.json``, ``segmentation.json`` and
    ``captions.vtt``).

    Args:
        audio: Local recording path or http(s) URL.
        results_dir: Folder for the results: each call's files go in a folder named after the recording
            and its transcript id.
        model: LLM Gateway model (the local server answers any catalogue name with its own model).
        sentiment_prompt_template: Sentiment prompt: a template name in prompts/ or the template text.
        scorecard_prompt_template: Scorecard prompt: a template name in prompts/ or the template text.
        segmentation_prompt_template: Segmentation prompt: a template name in prompts/ or the template
            text.
        questions: Sentiment questions for the LLM, each with optional context and answer format.
        roles: Speaker roles, the company's side first: the scorecard coaches the first; quotes are
            checked against the side a claim is about.
        rubric: Scorecard criteria, each with its allowed answers.
        phases: Segmentation phase names in call order; anything else is Other.
        max_tokens: Answer limit in tokens for each LLM request; 0 (the default) allows the longest
            answer the answer's schema permits.
        speakers_expected: Exact number of speakers, only if certain; 0 lets the speech model decide.
        multichannel: One speaker per audio channel: auto turns it on for stereo WAV files.
        redact_pii: Redact personal data in the transcript (AssemblyAI's PII redaction): every analysis, file,
            artifact and prompt then sees only the redacted text.
        redact_pii_policies: What to redact: AssemblyAI's policy names (the local server supports the
            default six).
        redact_pii_sub: Replace redacted text with # marks (hash) or the policy's name (entity_name).
        poll_timeout_s: Seconds to wait for the transcript to complete.

    Returns a ``CallAnalysis`` with all three results and the run's ``usage`` (audio, LLM tokens,
    estimated cost: ``callflows.usage``).

    Raises ``InputError`` (audio, templates, questions, roles, rubric, phases, max_tokens, multichannel on a
    mono file, redaction policies, the price table: before any request), ``APIError`` /
    ``TranscriptFailedError`` / ``TranscriptTimeoutError`` when the shared transcription fails (no analysis can
    run then), and ``AnalysesFailedError`` when one or more analyses failed: raised after ``analysis.json``
    (with ``errors``), the artifact and the successful analyses' files are written; ``exc.analysis`` holds the
    ``CallAnalysis``.
    """
    logger = get_run_logger()
    questions = check_questions(questions)
    roles = check_roles(roles)
    rubric = check_rubric(rubric)
    names = check_phase_names(phases)
    max_tokens = check_max_tokens(max_tokens, 256)
    for parameter, template_name, context in (
            ("sentiment_prompt_template", sentiment_prompt_template, sentiment_example_context(questions)),
            ("scorecard_prompt_template", scorecard_prompt_template, scorecard_example_context(roles, rubric)),
            ("segmentation_prompt_template", segmentation_prompt_template, segmentation_example_context(names))):
        try:  # syntax, undefined variables, sandbox: before any request
            render(load_template(template_name), context)
        except PromptError as exc:  # three template parameters: say which one
            raise PromptError(f"{parameter}: {exc}") from None
    source = check_audio(audio)
    options = call_options(source, multichannel_choice(multichannel), optional(speakers_expected),
                           redaction(redact_pii, redact_pii_policies, redact_pii_sub))
    prices = load_prices()

    started = time.monotonic()
    transcript, billed = transcribe(source, options, poll_timeout_s)
    out_dir = result_dir(results_dir, source.name, transcript.id)
    captions = fetch_captions(transcript, out_dir)
    timings = {"transcription": time.monotonic() - started}

    llm = {"model": model, "temperature": 0.0, "max_tokens": max_tokens}
    common = {"audio": audio, "out_dir": str(out_dir)}
    started = time.monotonic()
    futures = {
        "sentiment": analyze_sentiment.submit(
            transcript, captions, questions, **common, prompt_template=sentiment_prompt_template, roles=roles,
            **llm),
        "scorecard": score_call.submit(
            transcript, captions, roles, rubric, **common, ideal_rep_talk_share=DEFAULT_IDEAL_REP_TALK_SHARE,
            prompt_template=scorecard_prompt_template, **llm),
        "segmentation": segment_call.submit(
            transcript, captions, names, **common, prompt_template=segmentation_prompt_template, **llm),
    }
    results: dict[str, BaseModel] = {}
    errors: dict[str, str] = {}
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except Exception as exc:  # noqa: BLE001 - any failure of one analysis must not lose the others
            errors[name] = one_line(exc)
            logger.error("%s failed: %s", ANALYSES[name][0], errors[name])
    timings["analyses"] = time.monotonic() - started

    files = {name: str(out_dir / ANALYSES[name][1]) for name in results}
    identified = "scorecard" in results or bool(getattr(results.get("sentiment"), "roles", None))
    usage = estimate(transcription_usage(transcript, options, billed, identified, prices),
                     {name: r.llm for name, r in results.items() if r.llm is not None}, prices)
    if errors:
        usage.cost.notes.append("the LLM requests of the failed analyses are not counted")
    logger.info("Usage: %s", usage.summary())
    analysis = CallAnalysis(audio=audio, transcript_id=transcript.id, audio_duration_s=transcript.audio_duration,
                            result_dir=str(out_dir), errors=errors, files=files,
                            timings_s={k: round(v, 2) for k, v in timings.items()}, usage=usage, **results)
    publish_report(analysis, analysis.to_markdown(), str(out_dir / RESULT_FILE), ARTIFACT_KEY)
    if errors:
        raise AnalysesFailedError(analysis)
    return analysis
