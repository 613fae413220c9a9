"""Background transcription: worker threads move transcripts queued → processing → completed | error.

* Jobs live in the store, not in memory: on start, every transcript found ``queued`` or
  ``processing`` (a crash or a stop mid-job) is queued again, oldest first; one found
  ``processing`` counts an ``interrupted``, and at ``max_interruptions`` (config) it ends in status
  ``error`` instead (a job that crashes the server every time must not loop forever).
* A job whose stored upload is gone ends in status ``error`` (AssemblyAI's download error).
* The audio is the stored upload when ``audio_url``'s path is ``/upload/<id>`` of one of our uploads
  (any host), otherwise it is downloaded (streamed, size-capped, with timeouts) into the data folder.
* Engines load lazily, on the first job, in the worker thread.
* Timings are kept in the record's ``local`` part and served at ``GET /_local/jobs/{id}``:
  ``queue_ms`` (created → started), ``processing_ms`` (started → finished: download + engines),
  ``transcribe_ms`` (the engine call alone), ``total_ms`` (created → finished), ``attempts``.
* Errors: ``AudioError`` and download failures put their own message in ``error``; a missing or
  corrupt model puts the engine's message (it says what to install); anything else is logged with
  its traceback and reported as AssemblyAI's "Server error, developers have been alerted".
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests

from .config import LocalApiConfig
from .latency import visible_at
from .store import UPLOAD_PATH_RE, Store, now_iso
from .transcripts import DOWNLOAD_ERROR, SERVER_ERROR, apply_result

log = logging.getLogger("local_api.jobs")

WEBHOOK_ATTEMPTS = 10
WEBHOOK_INTERVAL_S = 10.0
WEBHOOK_TIMEOUT_S = 10.0
INTERRUPTED_ERROR = ("Transcription was interrupted {times} by server restarts (crashes or stops "
                     "mid-job); submit the audio again")


def interrupted_error(n: int) -> str:
    """INTERRUPTED_ERROR for ``n`` interruptions ("3 times", "1 time")."""
    return INTERRUPTED_ERROR.format(times=f"{n} time" if n == 1 else f"{n} times")


class JobError(Exception):
    """A failure whose message goes into the transcript's ``error`` as is."""


def _ms_between(start_iso: str | None, end_iso: str | None) -> int | None:
    if not start_iso or not end_iso:
        return None
    try:
        delta = datetime.fromisoformat(end_iso) - datetime.fromisoformat(start_iso)
    except ValueError:
        return None
    return max(0, int(delta.total_seconds() * 1000))


class JobRunner:
    """A FIFO of transcript ids served by ``config.workers`` daemon threads."""

    def __init__(self, store: Store, config: LocalApiConfig) -> None:
        self.store = store
        self.config = config
        self._queue: "queue.Queue[str | None]" = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._active: set[str] = set()
        self._active_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Re-queue unfinished jobs from the store, then start the workers.

        A job found ``processing`` was cut short (a crash, or a stop mid-job): it counts one more
        ``interrupted`` and is queued again, unless that makes ``config.max_interruptions``: then it
        ends in status ``error`` (:func:`interrupted_error`), so a job that kills the server every time
        can neither loop forever nor vanish."""
        pending = self.store.ids_with_status("queued", "processing")
        cap = self.config.max_interruptions
        now = now_iso()

        def requeue(record: dict) -> None:
            t, local = record["transcript"], record["local"]
            if t["status"] != "processing":
                return
            local["interrupted"] = int(local.get("interrupted", 0)) + 1
            if local["interrupted"] >= cap:
                t["status"] = "error"
                t["error"] = interrupted_error(local["interrupted"])
                local["completed"] = now
                local["total_ms"] = _ms_between(local.get("created"), now)
            else:
                t["status"] = "queued"

        requeued, given_up = 0, []
        for tid in pending:
            record = self.store.update(tid, requeue)
            if record is None:
                continue
            if record["transcript"]["status"] == "error":
                given_up.append(tid)
                log.error("job %s: interrupted %d times by server restarts; status error, not re-queued",
                          tid, record["local"]["interrupted"])
                continue
            self._queue.put(tid)
            requeued += 1
        if requeued:
            log.info("re-queued %d unfinished transcript(s) from a previous run", requeued)
        for i in range(self.config.workers):
            t = threading.Thread(target=self._work, name=f"local-api-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        for tid in given_up:  # the job is finished (in error): tell its webhook, as for any error
            self._notify(tid)

    def stop(self) -> None:
        """Ask workers to stop after their current job (a job cut short stays ``processing`` on disk
        and is re-queued by the next start, which counts it as interrupted)."""
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)

    def submit(self, transcript_id: str) -> None:
        self._queue.put(transcript_id)

    def stats(self) -> dict:
        with self._active_lock:
            active = sorted(self._active)
        return {"workers": self.config.workers, "waiting": self._queue.qsize(), "active": active}

    # ------------------------------------------------------------------ work
    def _work(self) -> None:
        while not self._stopping.is_set():
            tid = self._queue.get()
            if tid is None:
                return
            with self._active_lock:
                if tid in self._active:
                    continue
                self._active.add(tid)
            try:
                self._run(tid)
            except Exception:  # never let a worker die
                log.exception("job %s: unexpected failure outside the engine call", tid)
            finally:
                with self._active_lock:
                    self._active.discard(tid)

    def _run(self, tid: str) -> None:
        started = now_iso()

        def mark_processing(record: dict) -> None:
            record["transcript"]["status"] = "processing"
            local = record["local"]
            local["started"] = started
            local["attempts"] = int(local.get("attempts", 0)) + 1
            local["stt_model"] = self.config.stt_model

        record = self.store.load(tid)
        if record is None or record["transcript"]["status"] not in ("queued", "processing"):
            return
        record = self.store.update(tid, mark_processing)
        if record is None:
            return
        t0 = time.perf_counter()
        transcribe_ms = None
        result = None
        error = None
        try:
            if self.config.job_delay_s:
                time.sleep(self.config.job_delay_s)
            audio = self._audio_file(record)
            t1 = time.perf_counter()
            result = self._transcribe(audio, record["transcript"])
            transcribe_ms = int((time.perf_counter() - t1) * 1000)
        except JobError as e:
            error = str(e)
        except Exception as e:  # engine errors are classified by name: engines load lazily
            error = self._classify(tid, e)
        processing_ms = int((time.perf_counter() - t0) * 1000)
        finished = now_iso()

        def finish(rec: dict) -> None:
            t, local = rec["transcript"], rec["local"]
            if error is None:
                apply_result(t, result)
            else:
                t["status"] = "error"
                t["error"] = error
            local["completed"] = finished
            local["processing_ms"] = processing_ms
            local["transcribe_ms"] = transcribe_ms
            local["queue_ms"] = _ms_between(local.get("created"), started)
            local["total_ms"] = _ms_between(local.get("created"), finished)

        record = self.store.update(tid, finish)
        if record is None:
            return
        t = record["transcript"]
        log.info("job %s %s in %d ms (audio %ss, model %s)", tid, t["status"], processing_ms,
                 t.get("audio_duration"), self.config.stt_model)
        self._notify(tid, t)

    def _notify(self, tid: str, t: dict | None = None) -> None:
        """Deliver the webhook of a finished job, if it has one (in a thread of its own)."""
        if t is None:
            record = self.store.load(tid)
            t = record["transcript"] if record else {}
        if t.get("webhook_url"):
            threading.Thread(target=self._deliver_webhook, args=(tid,), daemon=True,
                             name=f"webhook-{tid[:8]}").start()

    def _classify(self, tid: str, exc: Exception) -> str:
        from local_api.engines.models import ModelError
        from local_api.engines.pipeline import AudioError  # also OptionsError, its subclass

        if isinstance(exc, AudioError):
            return str(exc) or "File does not appear to contain audio."
        if isinstance(exc, ModelError):
            log.error("job %s: speech model unavailable: %s", tid, exc)
            return f"Server error: {exc}"
        log.exception("job %s failed", tid, exc_info=exc)
        return SERVER_ERROR

    # ------------------------------------------------------------------ audio
    def _audio_file(self, record: dict) -> Path:
        t = record["transcript"]
        url = t["audio_url"]
        match = UPLOAD_PATH_RE.search(urlsplit(url).path)
        if match:
            path = self.store.upload_path(match.group(1))
            if path is None:
                raise JobError(DOWNLOAD_ERROR.format(url=url))
            return path
        dest = self.store.download_path(t["id"])
        if dest.is_file():
            return dest
        self._download(url, dest)
        return dest

    def _download(self, url: str, dest: Path) -> None:
        tmp = self.store.temp_path(".download")
        timeout = self.config.download_timeout_s
        size = 0
        try:
            with requests.get(url, stream=True, timeout=(timeout, timeout),
                              headers={"User-Agent": "callflows-local-api"}) as r:
                if r.status_code != 200:
                    raise JobError(DOWNLOAD_ERROR.format(url=url))
                with open(tmp, "wb") as f:
                    for chunk in r.iter_content(1 << 20):
                        size += len(chunk)
                        if size > self.config.max_download_bytes:
                            raise JobError(
                                f"Download error, {url} is larger than the limit of "
                                f"{self.config.max_download_bytes} bytes.")
                        f.write(chunk)
            if size == 0:
                raise JobError(DOWNLOAD_ERROR.format(url=url))
            tmp.replace(dest)
        except requests.RequestException as e:
            log.warning("download of %s failed: %s", url, e)
            raise JobError(DOWNLOAD_ERROR.format(url=url)) from None
        finally:
            tmp.unlink(missing_ok=True)

    # ------------------------------------------------------------------ engines
    def _transcribe(self, audio: Path, t: dict) -> dict:
        from local_api.engines import pipeline  # lazy: heavy imports and model loads

        return pipeline.transcribe_file(
            str(audio),
            speech_model=self.config.stt_model,
            # language_detection: None lets the engine detect the language
            language_code=None if t.get("language_detection") else (t.get("language_code") or "en_us"),
            speaker_labels=bool(t.get("speaker_labels")),
            speakers_expected=t.get("speakers_expected"),
            speaker_options=t.get("speaker_options"),
            sentiment_analysis=bool(t.get("sentiment_analysis")),
            punctuate=t.get("punctuate") is not False,
            format_text=t.get("format_text") is not False,
            multichannel=bool(t.get("multichannel")),
            redact_pii_policies=t.get("redact_pii_policies") if t.get("redact_pii") else None,
            redact_pii_sub=t.get("redact_pii_sub") or "hash",
        )

    # ------------------------------------------------------------------ webhooks
    def _deliver_webhook(self, tid: str) -> None:
        """POST {"transcript_id","status"} like AssemblyAI: up to 10 attempts 10 s apart, stop on
        2xx or 4xx; the last status code is stored in ``webhook_status_code``. A completed job with a
        latency profile delay (local_api/latency.py) is announced no sooner than clients see it."""
        record = self.store.load(tid)
        if record is None:
            return
        t, local = record["transcript"], record["local"]
        until = visible_at(local) if t["status"] == "completed" else None
        if until is not None and self._stopping.wait(max(0.0, until - time.time())):
            return
        headers = {}
        if t.get("webhook_auth_header_name") and local.get("webhook_auth_header_value") is not None:
            headers[t["webhook_auth_header_name"]] = local["webhook_auth_header_value"]
        body = {"transcript_id": tid, "status": t["status"]}
        code = None
        for attempt in range(WEBHOOK_ATTEMPTS):
            if self._stopping.is_set():
                return
            try:
                code = requests.post(t["webhook_url"], json=body, headers=headers,
                                     timeout=WEBHOOK_TIMEOUT_S).status_code
            except requests.RequestException as e:
                log.warning("webhook for %s, attempt %d: %s", tid, attempt + 1, type(e).__name__)
                code = None
            if code is not None and code < 500 and not 300 <= code < 400:
                break
            time.sleep(WEBHOOK_INTERVAL_S)

        def store_code(rec: dict) -> None:
            if rec["local"].get("deleted"):
                return
            rec["transcript"]["webhook_status_code"] = code

        self.store.update(tid, store_code)
