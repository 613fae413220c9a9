"""LLM Gateway usage as each analysis result records it, and the default model."""
from __future__ import annotations

from pydantic import BaseModel, Field

from callflows.models import ChatCompletion, PromptTokensDetails

DEFAULT_LLM_MODEL = "claude-sonnet-4-5-20250929"  # the cookbook's model; the local server serves it locally


class LLMUsage(BaseModel):
    """The LLM requests behind one analysis: token counts are summed over its attempts (a rejected
    answer is asked again once), with OpenAI's names (``prompt_tokens``, ``completion_tokens``,
    ``prompt_tokens_details.cached_tokens``: prompt tokens the server reused from an earlier prompt)."""

    model: str
    served_by: str | None = Field(None, description="the local model that answered (local server only)")
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: PromptTokensDetails | None = None
    attempts: int = 1

    @property
    def cached_tokens(self) -> int:
        """``prompt_tokens_details.cached_tokens``, 0 when the API did not report it."""
        return (self.prompt_tokens_details.cached_tokens or 0) if self.prompt_tokens_details else 0

    @classmethod
    def of(cls, model: str, completions: list[ChatCompletion]) -> LLMUsage:
        """The usage of ``completions`` (one per attempt, in order); counts the API did not send stay None."""
        def total(values: list[int | None]) -> int | None:
            return None if not values or any(v is None for v in values) else sum(values)

        usages = [c.usage for c in completions]
        details = [u.prompt_tokens_details if u else None for u in usages]
        cached = total([d.cached_tokens if d else None for d in details])
        return cls(model=model, served_by=completions[-1].served_by if completions else None,
                   prompt_tokens=total([u.prompt_tokens if u else None for u in usages]),
                   completion_tokens=total([u.completion_tokens if u else None for u in usages]),
                   prompt_tokens_details=None if cached is None else PromptTokensDetails(cached_tokens=cached),
                   attempts=len(completions) or 1)
