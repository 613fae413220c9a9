"""What a call's analysis used, and what it would cost on AssemblyAI: an estimate from a price table.

The table is ``callflows/prices.toml`` (or the file ``$CALLFLOWS_PRICES_FILE`` names): its source and
date, USD per audio hour for each speech model and each option that adds to the price, and USD per
million tokens for each LLM Gateway model. Pre-recorded audio is billed per second of
``audio_duration`` at the speech model's rate plus each priced option's rate
(assemblyai.com/docs/billing-and-pricing); LLM requests per token, cached prompt tokens at their own rate.

A run that reuses a cached transcript (a rerun with a new prompt, another analysis of the same call)
made no transcription request: its ``Usage`` says so (``transcription.billed`` False) and its cost is
its LLM requests only. The same run on the local server costs nothing; the estimate is what it would
cost on AssemblyAI.
"""
from __future__ import annotations

import functools
import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field

from callflows.errors import InputError
from callflows.llm import LLMUsage
from callflows.models import Transcript, TranscriptionOptions

PRICES_FILE = Path(__file__).with_name("prices.toml")
PRICES_ENV = "CALLFLOWS_PRICES_FILE"
SPEAKER_IDENTIFICATION = "speaker_identification"


class LLMPrice(BaseModel):
    """USD per million tokens."""

    input: float = Field(..., ge=0, description="prompt tokens evaluated")
    cached_input: float = Field(..., ge=0, description="prompt tokens reused (prompt_tokens_details.cached_tokens)")
    output: float = Field(..., ge=0, description="completion tokens")


class Prices(BaseModel):
    """The price table (``prices.toml``)."""

    currency: str
    source: str
    as_of: str
    note: str = ""
    speech_models: dict[str, float] = Field(..., description="speech model → USD per audio hour")
    options: dict[str, float] = Field(..., description="transcription option → USD per audio hour when on")
    llm: dict[str, LLMPrice] = Field(..., description="LLM Gateway model → USD per million tokens")


def load_prices(path: str | Path | None = None) -> Prices:
    """The price table at ``path``, else ``$CALLFLOWS_PRICES_FILE``, else the bundled ``prices.toml``.
    Raises ``InputError`` naming the file when it is missing or malformed."""
    target = Path(path or os.environ.get(PRICES_ENV) or PRICES_FILE)
    return _load(str(target.resolve()))


@functools.lru_cache(maxsize=4)
def _load(path: str) -> Prices:
    try:
        return Prices.model_validate(tomllib.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise InputError(f"price table {path} cannot be used ({' '.join(str(exc).split())[:300]}): fix it, or "
                         f"unset {PRICES_ENV} to use the bundled table") from None


class TranscriptionUsage(BaseModel):
    """The transcription behind an analysis."""

    transcript_id: str
    audio_duration_s: float | None = Field(None, description="s: what AssemblyAI bills")
    speech_model: str | None = Field(None, description="speech_model_used, as the API reported it")
    priced_as: str | None = Field(None, description="the speech model priced: speech_model when the table has it, "
                                                    "else the first of the requested speech_models that it has")
    priced_options: list[str] = Field(default_factory=list,
                                      description="options that add to the price (prices.toml [options]) that were on")
    billed: bool = Field(..., description="False when this run reused a cached transcript and made no "
                                          "transcription request")


class CostEstimate(BaseModel):
    """An estimate in ``currency``, from the price table of ``prices_as_of``; None where the table has
    no price (e.g. an LLM model it does not list)."""

    estimate: bool = True
    currency: str
    transcription: float | None = Field(None, description="speech model and priced options; 0 when not billed")
    llm: dict[str, float | None] = Field(default_factory=dict, description="analysis → its LLM requests")
    total: float | None = Field(None, description="sum of the parts; None when a part has no price")
    prices_source: str
    prices_as_of: str
    notes: list[str] = Field(default_factory=list)


class Usage(BaseModel):
    """What one run used: the transcription, the LLM requests of each analysis (tokens summed over its
    attempts, with OpenAI's names), and the estimated cost."""

    transcription: TranscriptionUsage
    llm: dict[str, LLMUsage] = Field(default_factory=dict, description="analysis → its LLM requests")
    cost: CostEstimate

    def tokens(self) -> tuple[int, int, int]:
        """Prompt, cached prompt and completion tokens of all the LLM requests (unreported counts as 0)."""
        return (sum(u.prompt_tokens or 0 for u in self.llm.values()), sum(u.cached_tokens for u in self.llm.values()),
                sum(u.completion_tokens or 0 for u in self.llm.values()))

    def summary(self) -> str:
        """One line: audio, tokens and estimated cost."""
        t = self.transcription
        audio = "?" if t.audio_duration_s is None else f"{t.audio_duration_s:.0f} s"
        prompt, cached, completion = self.tokens()
        billed = "transcribed" if t.billed else "whose transcript was reused (not billed again)"
        return (f"{audio} of audio {billed}; {prompt} prompt tokens ({cached} cached) + {completion} completion "
                f"tokens; estimated cost {money(self.cost.total, self.cost.currency)}")


def money(value: float | None, currency: str = "USD") -> str:
    """``0.0123 USD``, or ``unknown`` for None."""
    return "unknown" if value is None else f"{value:.4f} {currency}"


def transcription_usage(transcript: Transcript, options: TranscriptionOptions, billed: bool,
                        speaker_identification: bool, prices: Prices) -> TranscriptionUsage:
    """The usage of ``transcript`` made with ``options``; ``billed`` False when it came from the cache.
    ``speaker_identification``: a ``/v1/understanding`` speaker identification ran on it."""
    on = {name for name, value in options.model_dump(exclude_none=True).items() if value is True}
    if speaker_identification:
        on.add(SPEAKER_IDENTIFICATION)
    used = transcript.speech_model_used
    priced = used if used in prices.speech_models else next(
        (m for m in options.speech_models if m in prices.speech_models), None)
    return TranscriptionUsage(transcript_id=transcript.id, audio_duration_s=transcript.audio_duration,
                              speech_model=used, priced_as=priced, priced_options=sorted(on & set(prices.options)),
                              billed=billed)


def llm_cost(usage: LLMUsage, prices: Prices) -> float | None:
    """USD of ``usage``'s requests; None when the model has no price or the API sent no token counts."""
    price = prices.llm.get(usage.model)
    if price is None or usage.prompt_tokens is None or usage.completion_tokens is None:
        return None
    cached = usage.cached_tokens
    return ((usage.prompt_tokens - cached) * price.input + cached * price.cached_input
            + usage.completion_tokens * price.output) / 1e6


def estimate(transcription: TranscriptionUsage, llm: dict[str, LLMUsage], prices: Prices | None = None) -> Usage:
    """``Usage`` with its ``CostEstimate`` (see the module docstring)."""
    prices = prices or load_prices()
    notes = []
    if not transcription.billed:
        transcription_cost: float | None = 0.0
        notes.append("the transcript was reused from the cache: no transcription cost in this run")
    elif transcription.audio_duration_s is None or transcription.priced_as not in prices.speech_models:
        transcription_cost = None
        notes.append(f"no price for speech model {transcription.speech_model!r} or no audio duration")
    else:
        if transcription.priced_as != transcription.speech_model:
            notes.append(f"transcription priced as {transcription.priced_as} (the server used "
                         f"{transcription.speech_model})")
        per_hour = prices.speech_models[transcription.priced_as] + sum(
            prices.options[o] for o in transcription.priced_options)
        transcription_cost = transcription.audio_duration_s / 3600 * per_hour
    llm_costs = {name: llm_cost(usage, prices) for name, usage in llm.items()}
    notes += [f"no price for LLM model {llm[name].model!r} in the price table" for name, c in llm_costs.items()
              if c is None]
    parts = [transcription_cost, *llm_costs.values()]
    total = None if any(p is None for p in parts) else round(sum(parts), 6)
    cost = CostEstimate(currency=prices.currency, transcription=_round(transcription_cost),
                        llm={k: _round(v) for k, v in llm_costs.items()}, total=total, prices_source=prices.source,
                        prices_as_of=prices.as_of, notes=notes)
    return Usage(transcription=transcription, llm=llm, cost=cost)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
