"""Local chat completions with llama-cpp-python over a verified GGUF from the registry.

One :class:`LocalLLM` per model name per process, created on first use by :func:`get_llm`. It holds
``CALLFLOWS_LLM_PARALLEL`` llama.cpp contexts (default 1; see :func:`_parallel`), each serving one
request at a time (llama.cpp contexts are not thread-safe); further requests wait for a free one.

Prefix reuse: llama-cpp-python keeps the evaluated tokens of the previous call and re-evaluates
only what follows the longest common token prefix. Prompts that put the transcript first (system
or first user message) and the task after it are therefore cheap after the first. Measured with a
2.2k-token transcript on 2 cores: Qwen2.5-Coder-1.5B first token after 50 s cold, 0.45 s for a
follow-up; SmolLM2-135M 15 s cold, 0.15 s follow-up.

The context itself holds only the *last* prompt, and the analyses of one call interleave their
requests (segmentation's caption prompt comes between sentiment and scorecard, which share the
speaker-line transcript). So several prompt states are kept in RAM: ``CALLFLOWS_LLM_STATE_CACHE_MB``
(default 1024; 0 turns it off) sizes llama-cpp's LlamaRAMCache (LRU, longest-prefix lookup). It costs
~0.2-0.4 s per call to save the state (about 29 KB per token for Qwen, 23 KB for SmolLM2; a
2k-token prompt state is ~60 MB). Measured by ``python -m bench.run --only 5`` with SmolLM2 on the
sample call: the scorecard prompt after the segmentation prompt went from 13.0 s to 0.34 s to first
token, a rerun with other questions after the scorecard from 3.95 s to 1.66 s.
"""
from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .models import LLM_MODELS, available_llm_models, llm_model_path

__all__ = ["LocalLLM", "LLMError", "PromptTooLongError", "get_llm", "available_llms",
           "to_llama_response_format", "message_text"]


class LLMError(ValueError):
    """A request the local LLM cannot serve (bad messages or response_format)."""


class PromptTooLongError(LLMError):
    """The prompt (plus at least one answer token) does not fit in the model's context window."""


# llama.cpp's CPU backend synchronises its threads with OpenMP barriers, and libgomp's default is
# to spin-wait. That is fine on an idle machine and catastrophic when the 2 cores are shared (other
# processes, or Whisper in the same server): the same 80-token SmolLM2 answer took 1.7 s idle and
# 27-59 s next to two busy processes. With OMP_WAIT_POLICY=PASSIVE it took 4.3-5.0 s under that load
# (GOMP_SPINCOUNT=10000: 5-29 s, erratic). libgomp reads the variable when it is loaded, i.e. on
# ``import llama_cpp``; we set it for that import only, and only if neither variable is set, so an
# operator on a dedicated machine can export OMP_WAIT_POLICY=ACTIVE.
_OMP_ENV = ("OMP_WAIT_POLICY", "PASSIVE")
_llama_module: Any = None
_import_lock = threading.Lock()


def _import_llama() -> Any:
    global _llama_module
    with _import_lock:
        if _llama_module is None:
            tuned = "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
            if tuned:
                os.environ[_OMP_ENV[0]] = _OMP_ENV[1]
            try:
                import llama_cpp
            finally:
                if tuned:
                    os.environ.pop(_OMP_ENV[0], None)
            _llama_module = llama_cpp
        return _llama_module


def _threads() -> int:
    """``CALLFLOWS_LLM_THREADS`` (default 2): CPU threads for each model, shared by its contexts."""
    try:
        return max(1, int(os.environ.get("CALLFLOWS_LLM_THREADS", "2")))
    except ValueError:
        return 2


def _parallel() -> int:
    """``CALLFLOWS_LLM_PARALLEL`` (default 1, at most 8): contexts per model that generate at the same
    time, each with ``CALLFLOWS_LLM_THREADS // n`` threads (at least 1), sharing the model's weights
    (mmap) and its prompt-state cache. Like llama.cpp's ``llama-server --parallel``, but one model
    evaluation per request instead of a shared batch.

    On the 2-core machine, token generation gains from more contexts, not more threads: SmolLM2-135M
    generated 31 tokens/s with 2 threads, 47 with 1 thread, and 85 in total from two 1-thread contexts
    at once (200-token answers, llama-cpp-python directly; 4 contexts: 87). ``python -m
    bench.llm_parallel`` measures it through this class. So 2 pays where requests arrive together (a
    batch of calls).
    """
    try:
        return min(8, max(1, int(os.environ.get("CALLFLOWS_LLM_PARALLEL", "1"))))
    except ValueError:
        return 1


def _repeat_penalty() -> float:
    """``CALLFLOWS_LLM_REPEAT_PENALTY`` (default 1.1, llama.cpp's classic default; 1.0: off).

    Greedy decoding of a small model loops ("0.0.0.0…") until a field's maxLength. Measured with
    SmolLM2-135M on the three prompts over the sample call's script (``bench/prompt_lookup.py``'s
    prompts, temperature 0): 112 / 287 / 781 tokens at 1.0 (the segmentation answer looped), 121 /
    245 / 143 at 1.1.
    """
    try:
        return max(1.0, float(os.environ.get("CALLFLOWS_LLM_REPEAT_PENALTY", "1.1")))
    except ValueError:
        return 1.1


def _prompt_lookup_tokens() -> int:
    """``CALLFLOWS_LLM_PROMPT_LOOKUP``: tokens drafted by llama-cpp's prompt-lookup decoding (0: off).

    Off by default because it is slower here. ``python -m bench.prompt_lookup --repeats 1 --tokens 0,10``
    on the 2-core machine (Qwen2.5-Coder-1.5B, the three analyses' prompts and JSON schemas, greedy,
    prompt cached) took 13.0 / 42.5 / 19.8 s off (sentiment / scorecard / segmentation: 106 / 391 /
    187 tokens) against 26.7 / 90.0 / 47.4 s with 10 drafted tokens (which needs ``logits_all``).
    """
    try:
        return max(0, int(os.environ.get("CALLFLOWS_LLM_PROMPT_LOOKUP", "0")))
    except ValueError:
        return 0


def _state_cache_mb() -> int:
    try:
        return max(0, int(os.environ.get("CALLFLOWS_LLM_STATE_CACHE_MB", "1024")))
    except ValueError:
        return 1024


def message_text(content: Any) -> str:
    """A message's content as plain text: a string as is, or the ``text`` of each
    ``{"type": "text", "text": …}`` part joined with newlines. Other part types raise LLMError."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                texts.append(part)
            else:
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                raise LLMError(f"unsupported message content part type {kind!r} (only 'text')")
        return "\n".join(texts)
    raise LLMError(f"message content must be a string or a list of text parts, got {type(content).__name__}")


def to_llama_response_format(response_format: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI/AssemblyAI ``response_format`` → llama-cpp's.

    ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`` → ``{"type":
    "json_object", "schema": schema}`` (llama-cpp rejects "json_schema"); ``{"type": "json_object"}``
    passes through (any JSON); ``{"type": "text"}`` or None → None (free text).
    """
    if not response_format:
        return None
    if not isinstance(response_format, Mapping):
        raise LLMError("response_format must be an object")
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        out: dict[str, Any] = {"type": "json_object"}
        if isinstance(response_format.get("schema"), Mapping):
            out["schema"] = dict(response_format["schema"])
        return out
    if kind == "json_schema":
        js = response_format.get("json_schema")
        if not isinstance(js, Mapping) or not isinstance(js.get("schema"), Mapping):
            raise LLMError("response_format.json_schema.schema must be a JSON schema object")
        return {"type": "json_object", "schema": dict(js["schema"])}
    raise LLMError(f"unsupported response_format type {kind!r}")


class _SharedRAMCache:
    """Mixin for ``llama_cpp.LlamaRAMCache`` shared by a model's contexts: one lock around the LRU.
    A saved state loads into any context of the same model and context size."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()

    def __getitem__(self, key):
        with self._lock:
            return super().__getitem__(key)

    def __contains__(self, key):
        with self._lock:
            return super().__contains__(key)

    def __setitem__(self, key, value):
        with self._lock:
            super().__setitem__(key, value)


class _Context:
    """One ``llama_cpp.Llama`` context, recording the length of its first ``eval`` per request:
    llama-cpp's generate() evaluates the prompt's uncached suffix in that call (then one token per
    step), which gives ``cached_tokens``."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.recording = False
        self.first_eval: int | None = None
        llama_eval = llama.eval

        def eval_recorded(tokens):
            if self.recording and self.first_eval is None:
                self.first_eval = len(tokens)
            return llama_eval(tokens)

        llama.eval = eval_recorded


class LocalLLM:
    """A loaded GGUF chat model. Use :func:`get_llm` rather than constructing it directly.

    Attributes: ``name`` (registry name), ``n_ctx`` (context window in tokens), ``load_seconds``,
    ``parallel`` (contexts), ``llama`` (the first context's ``llama_cpp.Llama``, for benchmarks).
    """

    def __init__(self, name: str) -> None:
        llama_cpp = _import_llama()

        spec = LLM_MODELS[name]
        path = llm_model_path(name)  # verifies sha256
        t0 = time.monotonic()
        self.name = name
        self.parallel = _parallel()
        lookup = _prompt_lookup_tokens()
        cache_mb = _state_cache_mb()
        cache = None
        if cache_mb > 0:
            cache = type("SharedRAMCache", (_SharedRAMCache, llama_cpp.LlamaRAMCache), {})(
                capacity_bytes=cache_mb << 20)
        self._free: queue.LifoQueue[_Context] = queue.LifoQueue()
        for _ in range(self.parallel):
            draft = None
            if lookup:
                from llama_cpp.llama_speculative import LlamaPromptLookupDecoding
                draft = LlamaPromptLookupDecoding(num_pred_tokens=lookup)
            # a draft model needs the logits of every evaluated token (n_ctx × vocabulary floats)
            llama = llama_cpp.Llama(model_path=str(path), n_ctx=int(spec.options.get("n_ctx", 8192)),
                                    n_threads=max(1, _threads() // self.parallel), n_batch=512, verbose=False,
                                    draft_model=draft, logits_all=draft is not None)
            if cache is not None:
                llama.set_cache(cache)
            self._free.put(_Context(llama))
        self.llama = self._free.queue[0].llama
        self.n_ctx = int(self.llama.n_ctx())
        self.load_seconds = time.monotonic() - t0

    @contextlib.contextmanager
    def _context(self) -> Iterator[_Context]:
        """A free context for one request (blocks until one is); the most recently used first."""
        ctx = self._free.get()
        try:
            yield ctx
        finally:
            self._free.put(ctx)

    def _params(self, messages: Iterable[Mapping[str, Any]], max_tokens: int,
                temperature: float | None, response_format: Mapping[str, Any] | None) -> dict[str, Any]:
        msgs = []
        for m in messages:
            if not isinstance(m, Mapping) or "role" not in m:
                raise LLMError("each message must be an object with a role")
            role = m["role"]
            if role not in ("system", "user", "assistant", "tool"):
                raise LLMError(f"unsupported message role {role!r}")
            msgs.append({"role": "user" if role == "tool" else role, "content": message_text(m.get("content"))})
        if not msgs:
            raise LLMError("messages must not be empty")
        if max_tokens is None or int(max_tokens) < 1:
            raise LLMError("max_tokens must be a positive integer")
        params: dict[str, Any] = {"messages": msgs, "max_tokens": int(max_tokens), "repeat_penalty": _repeat_penalty()}
        if temperature is not None:
            if not 0 <= float(temperature) <= 2:
                raise LLMError("temperature must be between 0 and 2")
            params["temperature"] = float(temperature)
        rf = to_llama_response_format(response_format)
        if rf is not None:
            params["response_format"] = rf
        return params

    def chat(self, messages: Sequence[Mapping[str, Any]], *, max_tokens: int = 1000,
             temperature: float | None = None,
             response_format: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One chat completion.

        ``messages``: ``[{role: system|user|assistant, content: str | [{type: "text", text}]}]``.
        ``temperature`` None = llama-cpp's default (0.2). ``response_format``: see
        :func:`to_llama_response_format` (a JSON schema constrains the output by grammar).
        Returns ``{content: str, finish_reason: "stop" | "length", prompt_tokens: int,
        completion_tokens: int, cached_tokens: int}``; ``cached_tokens``: prompt tokens not evaluated
        again (prefix of the context's previous prompt or of a cached state; 0 if unknown). Blocks
        while every context of this model is generating. Raises LLMError / PromptTooLongError for bad requests.
        """
        params = self._params(messages, max_tokens, temperature, response_format)
        with self._context() as ctx:
            ctx.recording, ctx.first_eval = True, None
            try:
                resp = ctx.llama.create_chat_completion(**params)
            except ValueError as e:
                if "context window" in str(e) or "exceed" in str(e):
                    raise PromptTooLongError(
                        f"prompt too long for {self.name} (context window {self.n_ctx} tokens): {e}") from None
                raise
            finally:
                ctx.recording = False
            evaluated = ctx.first_eval
        choice = resp["choices"][0]
        usage = resp.get("usage") or {}
        finish = choice.get("finish_reason") or "stop"
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        return {
            "content": choice["message"].get("content") or "",
            "finish_reason": "length" if finish == "length" else "stop",
            "prompt_tokens": prompt_tokens,
            "completion_tokens": int(usage.get("completion_tokens", 0)),
            "cached_tokens": 0 if evaluated is None else max(0, prompt_tokens - evaluated),
        }

    def time_to_first_token(self, messages: Sequence[Mapping[str, Any]], *, max_tokens: int = 8) -> float:
        """Seconds until the first streamed token of a completion (for benchmarks)."""
        params = self._params(messages, max_tokens, 0.0, None)
        with self._context() as ctx:
            t0 = time.monotonic()
            first = None
            for _ in ctx.llama.create_chat_completion(stream=True, **params):
                if first is None:
                    first = time.monotonic() - t0
            return first if first is not None else time.monotonic() - t0


_llms: dict[str, LocalLLM] = {}
_llms_lock = threading.Lock()


def get_llm(name: str) -> LocalLLM:
    """The process-wide LocalLLM for a registry name ("qwen2.5-coder-1.5b", "smollm2-135m"),
    loaded on first call (sha256 check of the GGUF: ~4 s for qwen's 1.1 GB on first use, then
    cached; mmap load < 1 s). Raises KeyError, ModelNotInstalledError, ModelIntegrityError."""
    if name not in LLM_MODELS:
        raise KeyError(f"unknown LLM {name!r}; known: {', '.join(sorted(LLM_MODELS))}")
    with _llms_lock:
        llm = _llms.get(name)
        if llm is None:
            llm = LocalLLM(name)
            _llms[name] = llm
        return llm


def available_llms() -> list[str]:
    """Names of the LLMs whose weight packages are installed (cheap; no hashing or loading)."""
    return available_llm_models()
