"""Prefect's run log lines about failures, made readable where the failure is one of ours.

Prefect's engines (prefect 3.8) log each failed attempt at INFO with the exception's repr and the
delay to 16 decimals, and log a failed run's error up to four times (the task's "Retries are
exhausted" with a traceback, its "Finished in state Failed(...)", the flow's "Encountered exception
during execution" with a traceback of Prefect's engine, and the flow's "Finished in state
Failed(...)"). For a ``CallflowsError``, whose message already names the request, the status and the
fix, ``RunLogFilter`` (on the ``prefect.task_runs`` and ``prefect.flow_runs`` loggers, so the API log
handler and the console see the same) makes that:

- a failed attempt: WARNING ``ServerError: POST …/v2/upload failed with HTTP 503 … - retry 1/4 in 1.5 s``;
- the failure: one ERROR line ``ServerError: …``, the first time it is said (by the task, or by the
  flow when the task's engine said nothing), without a traceback; a later line with the same
  message is dropped, or for "Finished in state Failed(...)" keeps the state without the copy.

Any other exception (a bug) keeps Prefect's lines and tracebacks.
"""
from __future__ import annotations

import logging
import re
from collections import deque

from callflows.errors import CallflowsError

RETRY_MESSAGE = "Task run failed with %s: %r - Retry %s/%s will start %s"  # prefect/task_engine.py
FINISHED_FAILED = re.compile(r"Finished in state Failed\('(?:Task|Flow) run encountered an exception:? (\w+): (.*)'\)$",
                             re.DOTALL)
FAILED_PREFIXES = ("Task run failed with exception: ", "Encountered exception during execution: ")
SAID: deque[str] = deque(maxlen=64)  # the messages of the failures logged lately, in this process


def _ours(names: set[str], cls: type) -> set[str]:
    names.add(cls.__name__)
    for sub in cls.__subclasses__():
        _ours(names, sub)
    return names


def one_line(exc: BaseException) -> str:
    """``ErrorType: message`` on one line (whitespace collapsed)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


class RunLogFilter(logging.Filter):
    """Rewrites (or drops, returning False) Prefect's failure records for ``CallflowsError``\\ s."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == RETRY_MESSAGE and isinstance(record.args, tuple) and len(record.args) == 5:
            _, exc, attempt, retries, when = record.args
            if isinstance(exc, CallflowsError):
                seconds = re.match(r"([0-9.]+) second", str(when))
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                record.msg, record.args = "%s - retry %s/%s %s", (
                    one_line(exc), attempt, retries, f"in {float(seconds[1]):.1f} s" if seconds else str(when))
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, CallflowsError) and str(record.msg).startswith(FAILED_PREFIXES):
            text = str(exc)
            if any(text in said for said in SAID):
                return False  # the flow re-raising a task's error: said once already
            SAID.append(text)
            record.msg, record.args, record.exc_info, record.exc_text = one_line(exc), (), None, None
            return True
        finished = FINISHED_FAILED.match(str(record.msg))
        if finished and finished[1] in _ours(set(), CallflowsError):
            if any(said in finished[2] for said in SAID):
                record.msg, record.args = "Finished in state Failed", ()
            else:  # the first to say it (a task whose engine logs no failure line)
                SAID.append(finished[2])
        return True


def install() -> None:
    """Add ``RunLogFilter`` to Prefect's run loggers (once per process)."""
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RunLogFilter) for f in logger.filters):
            logger.addFilter(RunLogFilter())
