"""Typed errors. Every message says what failed, with which input, and what to do next.

``InputError`` and its subclasses are raised before any request is sent. ``APIError`` keeps the HTTP
status code and the API's own error text and says whether a retry can help (``retryable``). No error
message ever contains the API key: messages are built from response bodies and URLs, never headers.
"""
from __future__ import annotations


class CallflowsError(Exception):
    """Base class of every error this project raises on purpose."""


class InputError(CallflowsError, ValueError):
    """Bad input caught before any request: the message names the input and the fix."""


class AudioInputError(InputError):
    """The audio argument is missing, empty, not audio, or an unsupported URL."""


class DamagedAudioError(AudioInputError):
    """The file is audio but cannot be transcribed as it is: cut short, a corrupt header, or shorter
    than the API's 160 ms minimum. Unlike other audio input errors, a batch reports it as failed
    (the recording needs fixing), not skipped."""


class PromptError(InputError):
    """A prompt template is unknown, does not parse, uses an undefined variable, or breaks the sandbox."""


class ConfigurationError(CallflowsError):
    """Settings are inconsistent (for example a Secret block that does not exist)."""


class APIError(CallflowsError):
    """An HTTP call to AssemblyAI or the LLM Gateway failed.

    Attributes:
        status_code: HTTP status, or None when no response arrived (connection error, timeout).
        error: the API's error text (the ``error`` field, the gateway's ``message``/``errors``, or the
            start of a non-JSON body).
        method, url: the request that failed (the URL never carries the key).
        retryable: True for connection errors, timeouts, 408, 429 and 5xx.
        retry_after_s: seconds from a ``Retry-After`` header, when the API sent one.
        attempts: set on the error a task gives up with after its last retry.
    """

    def __init__(self, error: str, *, status_code: int | None = None, method: str = "", url: str = "",
                 retryable: bool = False, retry_after_s: float | None = None, attempts: int | None = None) -> None:
        self.error = error
        self.status_code = status_code
        self.method = method
        self.url = url
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.attempts = attempts
        where = f"{method} {url}".strip()
        code = f"HTTP {status_code}" if status_code is not None else "no response"
        if attempts:
            hint = f" (transient, but still failing after {attempts} attempts: retry limit reached; rerun later)"
        else:
            hint = " (transient: a retry can help)" if retryable else ""
        super().__init__(f"{where} failed with {code}: {error}{hint}")

    def gave_up(self, attempts: int) -> "APIError":
        """The same error, saying that ``attempts`` attempts were made and the retry limit is reached."""
        return _rebuild_api_error(type(self), self.error, self.status_code, self.method, self.url,
                                  self.retryable, self.retry_after_s, attempts)

    def __reduce__(self):  # keep attributes when pickled (Prefect persists failed states)
        return (_rebuild_api_error, (type(self), self.error, self.status_code, self.method, self.url,
                                     self.retryable, self.retry_after_s, self.attempts))


def _rebuild_api_error(cls, error, status_code, method, url, retryable, retry_after_s, attempts=None):
    return cls(error, status_code=status_code, method=method, url=url, retryable=retryable,
               retry_after_s=retry_after_s, attempts=attempts)


class TransportError(APIError):
    """No HTTP response: connection refused or reset, DNS failure, or a timeout. Always retryable."""


class BadRequestError(APIError):
    """HTTP 400 (the request itself is wrong). Not retryable."""


class AuthenticationError(APIError):
    """HTTP 401: the API key is missing or invalid. Not retryable: fix ASSEMBLYAI_API_KEY."""


class PermissionDeniedError(APIError):
    """HTTP 403, e.g. an upload URL used with another project's key. Not retryable."""


class NotFoundError(APIError):
    """The resource does not exist: HTTP 404, or AssemblyAI's 400 "transcript id not found"."""


class RateLimitError(APIError):
    """HTTP 429. Retryable after ``retry_after_s`` seconds when the API sent ``Retry-After``."""


class ServerError(APIError):
    """HTTP 5xx (or 408). Retryable."""


class TranscriptFailedError(CallflowsError):
    """The transcript ended with ``status: "error"``; ``error`` is AssemblyAI's message.

    Not retried by the tasks: the API's own guidance is to resubmit only on
    "Server error, developers have been alerted" (see ``resubmit_may_help``).
    """

    def __init__(self, transcript_id: str, error: str) -> None:
        self.transcript_id = transcript_id
        self.error = error
        super().__init__(f"Transcript {transcript_id} failed: {error}")

    @property
    def resubmit_may_help(self) -> bool:
        return self.error.lower().startswith("server error")

    def __reduce__(self):
        return (TranscriptFailedError, (self.transcript_id, self.error))


class TranscriptTimeoutError(CallflowsError):
    """The transcript was not completed before the polling deadline."""

    def __init__(self, transcript_id: str, status: str, waited_s: float) -> None:
        self.transcript_id = transcript_id
        self.status = status
        self.waited_s = waited_s
        super().__init__(f"Transcript {transcript_id} still '{status}' after {waited_s:.0f} s: raise the "
                         f"poll deadline (poll_timeout_s), or rerun later: the cached submission resumes "
                         f"polling the same transcript")

    def __reduce__(self):
        return (TranscriptTimeoutError, (self.transcript_id, self.status, self.waited_s))


class LLMOutputError(CallflowsError):
    """The LLM's answer is not valid JSON or does not match the expected schema.

    ``raw`` keeps the model's answer so nothing is lost.
    """

    def __init__(self, message: str, raw: str) -> None:
        self.raw = raw
        super().__init__(f"{message}. Raw answer (first 500 chars): {raw[:500]!r}")

    def __reduce__(self):
        return (_rebuild_llm_error, (str(self), self.raw))


def _rebuild_llm_error(text, raw):
    err = LLMOutputError.__new__(LLMOutputError)
    err.raw = raw
    Exception.__init__(err, text)
    return err
