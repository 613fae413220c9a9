"""Call sentiment flow (AssemblyAI cookbook "Analyze the sentiment of a customer call").

audio → inputs checked → transcribe (speaker_labels + sentiment_analysis; multichannel for stereo WAV;
cached) → captions → the ``call-sentiment`` task (``tasks.analyses.analyze_sentiment``): per-sentence
sentiment per speaker and the LLM's answers to the questions → ``SentimentReport`` (JSON file +
markdown artifact).
"""
from __future__ import annotations


from prefect import flow

from callflows.audio import call_options, check_audio
from callflows.llm import DEFAULT_LLM_MODEL
from callflows.prompts import load_template, render
from callflows.sentiment import (DEFAULT_QUESTIONS, Question, SentimentReport, check_questions, example_context,
                                 needs_roles)
from callflows.usage import load_prices, transcription_usage
from flows.parameters import (DEFAULT_PII_POLICIES, MaxTokens, PollTimeout, RedactPiiSub, SpeakersExpected,
                              Temperature, check_max_tokens, optional, redaction)
from flows.transcribe import fetch_captions, transcribe
from tasks.analyses import analyze_sentiment
from tasks.reports import result_dir


@flow(name="call-sentiment")
def call_sentiment(
    audio: str,
    questions: list[Question] = DEFAULT_QUESTIONS,
    prompt_template: str = "sentiment",
    model: str = DEFAULT_LLM_MODEL,
    max_tokens: MaxTokens = 0,
    temperature: Temperature = 0.0,
    speakers_expected: SpeakersExpected = 0,
    redact_pii: bool = False,
    redact_pii_policies: list[str] = DEFAULT_PII_POLICIES,
    redact_pii_sub: RedactPiiSub = "hash",
    results_dir: str = "results",
    poll_timeout_s: PollTimeout = 3600.0,
) -> SentimentReport:
    """Analyse the sentiment of one call: ``<results_dir>/<audio name>-<transcript id[:8]>/sentiment.json``.

    Args:
        audio: Local recording path or http(s) URL.
        questions: Questions for the LLM, each with optional context and answer format.
        prompt_template: A template name in prompts/ or the template text.
        model: LLM Gateway model (the local server answers any catalogue name with its own model).
        max_tokens: Answer limit in tokens for each LLM request; 0 (the default) allows the longest
            answer the answer's schema permits.
        temperature: LLM sampling temperature; 0 is the most deterministic.
        speakers_expected: Exact number of speakers, only if certain; 0 lets the speech model decide.
        results_dir: Folder for the results: each call's files go in a folder named after the recording
            and its transcript id.
        redact_pii: Redact personal data in the transcript (AssemblyAI's PII redaction): the analysis, its
            files, artifact and prompt then see only the redacted text.
        redact_pii_policies: What to redact: AssemblyAI's policy names (the local server supports the
            default six).
        redact_pii_sub: Replace redacted text with # marks (hash) or the policy's name (entity_name).
        poll_timeout_s: Seconds to wait for the transcript to complete.

    Raises ``InputError`` (audio, questions, template, max_tokens, redaction policies or the price table;
    before any request), ``APIError``,
    ``TranscriptFailedError``, ``LLMOutputError`` (after one retry with the validation error; the
    report without answers is still written as ``sentiment.partial.json``).
    """
    questions = check_questions(questions)
    max_tokens = check_max_tokens(max_tokens, 64)
    render(load_template(prompt_template), example_context(questions))  # before any request
    source = check_audio(audio)
    options = call_options(source, None, optional(speakers_expected),
                           redaction(redact_pii, redact_pii_policies, redact_pii_sub))
    prices = load_prices()
    transcript, billed = transcribe(source, options, poll_timeout_s)
    out_dir = result_dir(results_dir, source.name, transcript.id)
    transcription = transcription_usage(transcript, options, billed,
                                        bool(needs_roles(questions) and transcript.utterances), prices)
    return analyze_sentiment(transcript, fetch_captions(transcript, out_dir), questions, audio=audio,
                             out_dir=str(out_dir), prompt_template=prompt_template, model=model,
                             max_tokens=max_tokens, temperature=temperature, transcription=transcription)
