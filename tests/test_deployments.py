"""The deployments, used the way the Prefect UI uses them: plain HTTP to a real Prefect server.

A real ``prefect server start`` (temporary PREFECT_HOME, free port), the local AssemblyAI-compatible
server (conftest's ``local_api``: Whisper tiny.en, SmolLM2-135M) and ``python -m deployments.serve``
run as subprocesses. Runs are created with ``POST /api/deployments/{id}/create_flow_run`` (the UI's
Run / Custom run) and followed with ``GET /api/flow_runs/{id}``; artifacts, task runs and their state
history are read from the REST API. The last test brings the whole stack up the ``make up`` way
(``scripts/stack.py``: server, work pool, ``prefect deploy --all``, worker), runs a deployment
through the worker and takes it down again.

Server and serve start take 10-40 s each on a busy 2-core machine; the first transcription of the
sample call 20-80 s; later runs reuse the cached transcript and cost the LLM call(s).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest
import requests
import yaml

from conftest import FAST_PARAMETERS, ROOT, LocalApi, free_port

PYTHON = sys.executable
PREFECT = str(Path(sys.executable).parent / "prefect")
RUN_TIMEOUT_S = 600  # trigger → final state, generous: the CI machine has 2 shared cores
INLINE_SENTIMENT_PROMPT = (
    "Call transcript:\n{{ transcript_block }}\n\nAnswer each question from the transcript only.\n"
    "{% for q in questions %}{{ loop.index }}. {{ q.question }} ({{ q.answer_format }})\n{% endfor %}"
    "Reply with only a JSON object with keys answer_1 to answer_{{ questions | length }} (strings).")
ONE_QUESTION = [{"question": "Was the customer's problem solved?", "context": "Support call",
                 "answer_format": "yes or no, then one short sentence"}]

pytestmark = pytest.mark.timeout(900)


# ------------------------------------------------------------------------------ Prefect REST API
class PrefectApi:
    """The Prefect server's REST API at ``url`` (``http://127.0.0.1:PORT/api``), parsed into Prefect's
    own pydantic models."""

    def __init__(self, url: str, home: Path | None = None) -> None:
        self.url = url.rstrip("/")
        self.home = home  # the server's PREFECT_HOME, when we started it

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """One request. A 503 (the server's SQLite database was locked: nothing was written) is retried,
        as Prefect's own client does; so is a read that times out (the SQLite-backed server can stall
        for tens of seconds during bursts of writes, e.g. three concurrent subflows)."""
        read_only = method == "GET" or path.endswith("/filter")
        for delay_s in (1, 2, 4, 8, 8, 0):
            try:
                r = requests.request(method, f"{self.url}{path}", timeout=60, **kwargs)
            except (requests.Timeout, requests.ConnectionError):
                if not (read_only and delay_s):
                    raise
                time.sleep(delay_s)
                continue
            if r.status_code != 503 or not delay_s:
                return r
            time.sleep(delay_s)
        raise AssertionError("unreachable")

    def get(self, path: str, **params):
        r = self.request("GET", path, params=params)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict):
        r = self.request("POST", path, json=body)
        r.raise_for_status()
        return r.json()

    def deployment(self, name: str):
        """``name`` is ``"flow-name/deployment-name"``. Fails the test if the server does not have it."""
        from prefect.client.schemas.responses import DeploymentResponse

        r = self.request("GET", f"/deployments/name/{name}")
        assert r.status_code == 200, f"deployment {name}: {r.status_code} {r.text}"
        return DeploymentResponse.model_validate(r.json())

    def create_run(self, name: str, parameters: dict) -> requests.Response:
        """The UI's Custom run: ``POST /deployments/{id}/create_flow_run``; returns the raw response."""
        deployment = self.deployment(name)
        return self.request("POST", f"/deployments/{deployment.id}/create_flow_run", json={"parameters": parameters})

    def flow_run(self, flow_run_id: UUID):
        from prefect.client.schemas.objects import FlowRun

        return FlowRun.model_validate(self.get(f"/flow_runs/{flow_run_id}"))

    def run(self, name: str, parameters: dict, timeout_s: float = RUN_TIMEOUT_S, log: Path | None = None):
        """Create a run of deployment ``name`` and wait for a final state; return the ``FlowRun`` and the
        seconds from the create request to the final state."""
        from prefect.client.schemas.objects import FlowRun

        started = time.monotonic()
        r = self.create_run(name, parameters)
        assert r.status_code == 201, f"create_flow_run {name} {parameters}: {r.status_code} {r.text}"
        flow_run = FlowRun.model_validate(r.json())
        while time.monotonic() - started < timeout_s:
            flow_run = self.flow_run(flow_run.id)
            if flow_run.state is not None and flow_run.state.is_final():
                return flow_run, time.monotonic() - started
            time.sleep(1.0)
        tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        pytest.fail(f"{name} run {flow_run.id} is {flow_run.state and flow_run.state.name} after {timeout_s} s\n{tail}")

    def run_tree(self, flow_run_id: UUID) -> list[UUID]:
        """The flow run and all its subflow runs, at any depth."""
        ids, frontier = [flow_run_id], [flow_run_id]
        while frontier:
            children = self.post("/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [str(i) for i in frontier]}}})
            frontier = [UUID(c["id"]) for c in children if UUID(c["id"]) not in ids]
            ids += frontier
        return ids

    def artifacts(self, flow_run_ids: list[UUID]):
        from prefect.client.schemas.objects import Artifact

        body = {"artifacts": {"flow_run_id": {"any_": [str(i) for i in flow_run_ids]}}}
        return [Artifact.model_validate(a) for a in self.post("/artifacts/filter", body)]

    def task_runs(self, flow_run_ids: list[UUID]):
        from prefect.client.schemas.objects import TaskRun

        body = {"task_runs": {"flow_run_id": {"any_": [str(i) for i in flow_run_ids]}}}
        return [TaskRun.model_validate(t) for t in self.post("/task_runs/filter", body)]

    def task_run_state_names(self, task_run_id: UUID) -> list[str]:
        from prefect.client.schemas.objects import State

        return [State.model_validate(s).name for s in self.get("/task_run_states/", task_run_id=str(task_run_id))]


# ------------------------------------------------------------------------------ processes
def processes_with_env(name: str, value: str) -> list[int]:
    """Live processes whose environment has ``name=value`` (inherited by every child, including flow
    runs started in their own session)."""
    marker = f"{name}={value}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ and state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


def stop_group(process: subprocess.Popen, env_marker: tuple[str, str], timeout_s: float = 30) -> None:
    """SIGTERM the process group started with ``start_new_session``; SIGKILL it after ``timeout_s``,
    and then anything left with the environment ``env_marker`` (e.g. flow runs in their own session)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    for pid, kill in [(process.pid, os.killpg), *[(p, os.kill) for p in processes_with_env(*env_marker)]]:
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=timeout_s)


def wait_until(check, what: str, process: subprocess.Popen, log: Path, timeout_s: float = 300) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        assert process.poll() is None, f"{what}: the process exited ({process.returncode}); log:\n" \
                                       f"{log.read_text(errors='replace')[-3000:]}"
        try:
            if check():
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"{what} not reached within {timeout_s} s; log:\n{log.read_text(errors='replace')[-3000:]}")


def base_env(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: no AssemblyAI key, no stray Prefect API, fast retries."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSEMBLYAI_", "PREFECT_API_"))}
    env.pop("CALLFLOWS_API_KEY_SECRET_BLOCK", None)
    env.update({"CALLFLOWS_RETRY_DELAY_S": "0.2", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """A real ``prefect server start`` on a free port with a temporary PREFECT_HOME."""
    home = tmp_path_factory.mktemp("prefect_server")
    port = free_port()
    log = home / "server.log"
    with open(log, "ab") as out:
        process = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                   env=base_env(PREFECT_HOME=str(home), PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5"),
                                   stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    api = PrefectApi(f"http://127.0.0.1:{port}/api", home=home)
    try:
        took = wait_until(lambda: requests.get(f"{api.url}/health", timeout=2).ok, "Prefect server healthy",
                          process, log)
        print(f"\nPrefect server healthy after {took:.1f} s")
        yield api
    finally:
        stop_group(process, ("PREFECT_HOME", str(home)))


@pytest.fixture(scope="module")
def served(prefect_api, local_api: LocalApi, tmp_path_factory):
    """``python -m deployments.serve`` against ``prefect_api`` and ``local_api``, with temporary default
    ``results_dir`` and ``inbox``. Yields ``{"results": dir, "inbox": dir, "log": serve's log file}``."""
    work = tmp_path_factory.mktemp("served")
    results, inbox, log = work / "results", work / "inbox", work / "serve.log"
    env = base_env(PREFECT_API_URL=prefect_api.url, PREFECT_HOME=str(prefect_api.home),
                   CALLFLOWS_HOME=str(work / "callflows"), ASSEMBLYAI_BASE_URL=local_api.url,
                   ASSEMBLYAI_LLM_GATEWAY_BASE_URL=local_api.url, PREFECT_RUNNER_POLL_FREQUENCY="1")
    with open(log, "ab") as out:
        process = subprocess.Popen([PYTHON, "-m", "deployments.serve", "--results-dir", str(results),
                                    "--inbox", str(inbox)], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        took = wait_until(lambda: "Serving " in log.read_text(errors="replace"), "deployments served", process, log)
        print(f"\nServe ready after {took:.1f} s")
        yield {"results": results, "inbox": inbox, "log": log}
    finally:
        stop_group(process, ("CALLFLOWS_HOME", str(work / "callflows")))


@pytest.fixture()
def faults(local_api: LocalApi):
    """Inject faults on the local server (``add(route, status_code, **spec)``); cleared afterwards."""
    def add(route: str, status_code: int, **spec):
        r = requests.post(f"{local_api.url}/_local/faults", json={"route": route, "status_code": status_code, **spec},
                          timeout=10)
        r.raise_for_status()

    yield add
    requests.delete(f"{local_api.url}/_local/faults", timeout=10).raise_for_status()


def serve_definitions(monkeypatch, results_dir: str = "results", inbox: str = "inbox"):
    from deployments.serve import deployments

    monkeypatch.chdir(ROOT)  # entrypoints are relative to the current directory
    return deployments(results_dir=results_dir, inbox=inbox)


# ------------------------------------------------------------------------------ definitions
def test_prefect_yaml_defines_the_deployments_for_workers_and_for_serve(monkeypatch):
    """prefect.yaml is the one definition: the five deployments on the ``callflows`` pool (analyze-inbox
    on its own ``inbox`` queue: it waits for the analyze-call runs it starts), the pull step running
    flows in the project root, and ``deployments.serve`` building the same deployments from it with
    its own results_dir and inbox defaults."""
    from deployments.steps import project_root

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    from_yaml = {d["name"]: d for d in spec["deployments"]}
    assert sorted(from_yaml) == sorted(["call-sentiment", "sales-scorecard", "call-segmentation", "analyze-call",
                                        "analyze-inbox"])
    for name, y in from_yaml.items():
        assert y["work_pool"]["name"] == "callflows", name
        assert y["work_pool"]["work_queue_name"] == ("inbox" if name == "analyze-inbox" else "default"), name
        assert (ROOT / y["entrypoint"].split(":")[0]).is_file(), y["entrypoint"]
    assert from_yaml["analyze-inbox"]["schedules"] == [{"cron": "0 2 * * *", "timezone": "UTC", "active": True}]
    steps = [next(iter(step)) for step in spec["pull"]]
    assert steps == ["deployments.steps.project_root", "prefect.deployments.steps.set_working_directory"]
    assert project_root() == {"directory": str(ROOT)}

    served = {d.name: d for d in serve_definitions(monkeypatch, "/r", "/i")}
    assert sorted(served) == sorted(from_yaml)
    assert served["analyze-inbox"].parameters == {"inbox": "/i", "results_dir": "/r"}
    assert served["analyze-call"].parameters == {"audio": "samples/support_call.wav", "results_dir": "/r"}
    assert [(s.schedule.cron, s.schedule.timezone) for s in served["analyze-inbox"].schedules] == [("0 2 * * *", "UTC")]
    assert all(served[n].entrypoint == y["entrypoint"] and served[n].description == y["description"]
               for n, y in from_yaml.items())


# ------------------------------------------------------------------------------ through the server
def test_deployments_are_registered_with_closed_parameter_schemas(prefect_api, served, monkeypatch):
    """The server has each served deployment with its description, tags, default parameters (the
    temporary results_dir and inbox given to serve), a schema that enforces types and refuses unknown
    names, and the nightly schedule on analyze-inbox only."""
    expected = serve_definitions(monkeypatch, str(served["results"]), str(served["inbox"]))
    for d in expected:
        got = prefect_api.deployment(f"{d.flow_name}/{d.name}")
        assert (got.entrypoint, got.description, sorted(got.tags), got.parameters) == \
            (d.entrypoint, d.description, sorted(d.tags), d.parameters)
        assert got.enforce_parameter_schema is True
        assert got.parameter_openapi_schema["additionalProperties"] is False, d.name
        assert not got.paused
        schedules = [(s.schedule.cron, s.schedule.timezone, s.active) for s in got.schedules]
        assert schedules == ([("0 2 * * *", "UTC", True)] if d.name == "analyze-inbox" else []), d.name


def test_the_scheduler_creates_the_nightly_inbox_runs(prefect_api, served):
    """The server's scheduler turns analyze-inbox's cron into Scheduled runs at 02:00 UTC with the
    deployment's parameters (with SQLAlchemy 2.1 it silently never does: the lock pins it)."""
    from datetime import datetime, timedelta, timezone

    deployment = prefect_api.deployment("analyze-inbox/analyze-inbox")
    body = {"flow_runs": {"deployment_id": {"any_": [str(deployment.id)]}, "state": {"type": {"any_": ["SCHEDULED"]}}},
            "limit": 20}
    deadline = time.monotonic() + 180  # the scheduler loop runs every 5 s on this test server
    while not (runs := prefect_api.post("/flow_runs/filter", body)) and time.monotonic() < deadline:
        time.sleep(2)
    assert runs, "no scheduled analyze-inbox run after 180 s"
    now = datetime.now(timezone.utc)
    for run in runs:
        start = datetime.fromisoformat(run["expected_start_time"]).astimezone(timezone.utc)
        assert (start.hour, start.minute, start.second) == (2, 0, 0) and now < start < now + timedelta(days=101)
        assert run["parameters"] == {"inbox": str(served["inbox"]), "results_dir": str(served["results"])}


@pytest.mark.parametrize("deployment, parameters, message", [
    ("call-segmentation/call-segmentation", {"promt_template": "x"},
     "Additional properties are not allowed ('promt_template' was unexpected)"),
    ("call-sentiment/call-sentiment", {"temperature": "hot"},
     "Validation failed for field 'temperature'. Failure reason: 'hot' is not of type 'number'"),
    ("call-sentiment/call-sentiment", {"max_tokens": "lots"},
     "Validation failed for field 'max_tokens'. Failure reason: 'lots' is not of type 'integer'"),
    ("call-segmentation/call-segmentation", {"multichannel": True},
     "Validation failed for field 'multichannel'. Failure reason: True is not one of ['auto', 'on', 'off']"),
    ("sales-scorecard/sales-scorecard", {"roles": "Sales Rep"},
     "Validation failed for field 'roles'. Failure reason: 'Sales Rep' is not of type 'array'"),
    # nested models are closed too: a misspelt key inside a question or a rubric line, with its path
    ("call-sentiment/call-sentiment", {"questions": [{"question": "Why?", "contxt": "x"}]},
     "Validation failed for field 'questions[0]'. Failure reason: Additional properties are not allowed "
     "('contxt' was unexpected)"),
    ("analyze-call/analyze-call", {"rubric": [{"name": "Greets", "optins": ["yes", "no"]}]},
     "Validation failed for field 'rubric[0]'. Failure reason: Additional properties are not allowed "
     "('optins' was unexpected)"),
    ("analyze-inbox/analyze-inbox", {"max_recordings": 0},
     "Validation failed for field 'max_recordings'. Failure reason: 0 is less than the minimum of 1"),
])
def test_bad_parameters_are_refused_when_the_run_is_created(prefect_api, served, deployment, parameters, message):
    """An unknown parameter name and ill-typed or out-of-range values are refused by the server
    (409, naming the parameter); no run is created."""
    d = prefect_api.deployment(deployment)
    before = len(prefect_api.post("/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [str(d.id)]}}}))
    r = prefect_api.create_run(deployment, parameters)
    assert r.status_code == 409, r.text
    assert message in r.json()["detail"]
    after = len(prefect_api.post("/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [str(d.id)]}}}))
    assert after == before


def test_sentiment_run_then_new_prompt_reuses_the_transcript(prefect_api, served, local_api, tmp_path):
    """call-sentiment on the sample call (its default audio) completes with its artifact and
    sentiment.json; a rerun with new questions and an inline prompt template makes no upload and no
    transcription request (only the LLM call)."""
    results = tmp_path / "results"
    flow_run, first_s = prefect_api.run("call-sentiment/call-sentiment", {"results_dir": str(results)},
                                        log=served["log"])
    assert flow_run.state.is_completed(), flow_run.state.message
    assert "call-sentiment" in {a.key for a in prefect_api.artifacts(prefect_api.run_tree(flow_run.id))}
    [report] = results.glob("support_call-*/sentiment.json")
    assert len(json.loads(report.read_text())["answers"]) == 5  # the cookbook's questions

    local_api.reset_request_counts()
    rerun, rerun_s = prefect_api.run("call-sentiment/call-sentiment",
                                     {"results_dir": str(results), "questions": ONE_QUESTION,
                                      "prompt_template": INLINE_SENTIMENT_PROMPT}, log=served["log"])
    assert rerun.state.is_completed(), rerun.state.message
    counts = local_api.api_counts()
    assert counts.get("POST /v2/upload", 0) == 0 and counts.get("POST /v2/transcript", 0) == 0, counts
    assert counts.get("POST /v1/chat/completions", 0) >= 1, counts
    answers = json.loads(report.read_text())["answers"]
    assert [a["question"] for a in answers] == [ONE_QUESTION[0]["question"]]
    print(f"\ncall-sentiment: first run {first_s:.1f} s, rerun with a new prompt {rerun_s:.1f} s")


def test_transient_faults_are_retried_and_visible_in_the_task_states(prefect_api, served, local_api, faults, tmp_path):
    """With 503s on the transcript poll, one more than a polling task tolerates in a row (missed
    polls), and a 429 (Retry-After: 1) on the LLM Gateway, a call-sentiment run (new questions;
    speakers_expected=2, so a new transcript is polled) still completes; the task runs' state history
    shows AwaitingRetry and Retrying for both."""
    from tasks.transcription import POLL_FAILURES_TOLERATED

    faults("GET /v2/transcript/{transcript_id}", 503, times=POLL_FAILURES_TOLERATED + 1)
    faults("POST /v1/chat/completions", 429, times=1, retry_after=1)
    local_api.reset_request_counts()
    flow_run, took = prefect_api.run("call-sentiment/call-sentiment",
                                     {"results_dir": str(tmp_path), "questions": ONE_QUESTION, "speakers_expected": 2},
                                     log=served["log"])
    assert flow_run.state.is_completed(), flow_run.state.message
    tree = prefect_api.run_tree(flow_run.id)
    states = {t.name: prefect_api.task_run_state_names(t.id) for t in prefect_api.task_runs(tree)}
    for task_prefix in ("wait_for_transcript", "chat_completion"):
        names = next(v for k, v in states.items() if k.startswith(task_prefix))
        assert "AwaitingRetry" in names and "Retrying" in names and names[-1] == "Completed", (task_prefix, names)
    counts = local_api.request_counts()
    assert counts["POST /v1/chat/completions"] == 2, counts  # the 429, then the answer
    assert "call-sentiment" in {a.key for a in prefect_api.artifacts(tree)}
    print(f"\ncall-sentiment with faults (new transcript): {took:.1f} s")


def test_permanent_error_is_not_retried_and_fails_with_the_api_message(prefect_api, served, local_api, faults,
                                                                       tmp_path):
    """A 400 on transcript creation is sent once (not retried) and the run ends Failed with the API's
    message (speakers_expected=3: options not in the cache, so the request is made)."""
    faults("POST /v2/transcript", 400, times=1, body={"error": "speakers_expected is out of range for this plan"})
    local_api.reset_request_counts()
    flow_run, _ = prefect_api.run("call-segmentation/call-segmentation",
                                  {"results_dir": str(tmp_path), "speakers_expected": 3}, log=served["log"])
    assert flow_run.state.is_failed(), flow_run.state
    assert "HTTP 400: speakers_expected is out of range for this plan" in flow_run.state.message
    assert local_api.api_counts().get("POST /v2/transcript") == 1
    tree = prefect_api.run_tree(flow_run.id)
    submit = [t for t in prefect_api.task_runs(tree) if t.name.startswith("submit_transcript")]
    assert len(submit) == 1 and "AwaitingRetry" not in prefect_api.task_run_state_names(submit[0].id)


def test_analyze_call_deployment(prefect_api, served, tmp_path):
    """analyze-call on the sample call completes: analysis.json with the three analyses, the
    analyses' own files, and the analyze-call artifact plus one per analysis subflow."""
    flow_run, took = prefect_api.run("analyze-call/analyze-call", {"results_dir": str(tmp_path), **FAST_PARAMETERS}, log=served["log"])
    assert flow_run.state.is_completed(), flow_run.state.message
    [analysis_path] = tmp_path.glob("support_call-*/analysis.json")
    analysis = json.loads(analysis_path.read_text())
    assert analysis["errors"] == {} and all(analysis[k] for k in ("sentiment", "scorecard", "segmentation"))
    for name in ("sentiment.json", "scorecard.json", "segmentation.json", "metrics.json", "captions.vtt"):
        assert (analysis_path.parent / name).is_file(), name
    keys = {a.key for a in prefect_api.artifacts(prefect_api.run_tree(flow_run.id))}
    assert {"analyze-call", "call-sentiment", "sales-scorecard", "call-segmentation"} <= keys
    print(f"\nanalyze-call (transcript cached): {took:.1f} s")


def test_analyze_inbox_deployment_analyses_new_recordings_once(prefect_api, served, local_api, tmp_path):
    """analyze-inbox over an inbox with the sample call and a non-audio file: the call is analysed by
    a child run of the analyze-call deployment (report and ledger written), the other file skipped; a second run skips the call and makes no API
    request at all."""
    inbox, results = tmp_path / "inbox", tmp_path / "results"
    inbox.mkdir()
    shutil.copy(ROOT / "samples" / "support_call.wav", inbox / "call-1.wav")
    (inbox / "notes.txt").write_text("not a recording\n")
    params = {"inbox": str(inbox), "results_dir": str(results), **FAST_PARAMETERS}
    flow_run, took = prefect_api.run("analyze-inbox/analyze-inbox", params, log=served["log"])
    assert flow_run.state.is_completed(), flow_run.state.message
    report = json.loads((results / "inbox-report.json").read_text())
    status = {Path(r["audio"]).name: r["status"] for r in report["recordings"]}
    assert status == {"call-1.wav": "analysed", "notes.txt": "skipped"}
    from callflows.ledger import Ledger

    [row] = Ledger.open(results).all()
    assert row.status == "analysed" and row.flow_run_id == report["recordings"][0]["flow_run_id"]
    [call] = prefect_api.run_tree(flow_run.id)[1:2]
    assert prefect_api.flow_run(call).name == "analyze-call-1"  # a run of the analyze-call deployment
    assert len(list(results.glob("call-1-*/analysis.json"))) == 1
    assert "analyze-inbox" in {a.key for a in prefect_api.artifacts([flow_run.id])}

    local_api.reset_request_counts()
    again, again_s = prefect_api.run("analyze-inbox/analyze-inbox", params, log=served["log"])
    assert again.state.is_completed(), again.state.message
    report = json.loads((results / "inbox-report.json").read_text())
    assert [r["status"] for r in report["recordings"]] == ["skipped", "skipped"]
    assert local_api.api_counts() == {}
    print(f"\nanalyze-inbox: first run {took:.1f} s, second run (all skipped) {again_s:.1f} s")


# ------------------------------------------------------------------------------ the make up way
def stack(command: str, env: dict, timeout_s: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, str(ROOT / "scripts" / "stack.py"), command], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)


@pytest.mark.timeout(1200)
def test_stack_up_runs_a_deployment_through_the_worker_then_down_leaves_nothing(tmp_path):
    """``stack.py up`` on free ports in a temporary CALLFLOWS_HOME starts the Prefect server (global
    concurrency limits created) and the local server (test models), creates the work pool (concurrency
    limit 1 call worker × 1 + 1) with its ``default`` and ``inbox`` queues, deploys prefect.yaml
    (schemas closed; analyze-inbox on ``inbox``) and starts a call worker and the inbox worker; a
    call-sentiment run (default audio, resolved in the project root by the pull step) completes
    through the worker; ``down`` stops the workers, the local server and the Prefect server in that
    order, leaves no process behind, and is idempotent."""
    from conftest import TEST_LLM_MODEL, TEST_STT_MODEL
    from tasks.limits import TRANSCRIPTS_LIMIT

    home = tmp_path / "callflows"
    port, local_api_url = free_port(), f"http://127.0.0.1:{free_port()}"
    env = base_env(CALLFLOWS_HOME=str(home), PREFECT_HOME=str(home / "prefect"), CALLFLOWS_PREFECT_PORT=str(port),
                   CALLFLOWS_LOCAL_API_URL=local_api_url, CALLFLOWS_STT_MODEL=TEST_STT_MODEL,
                   CALLFLOWS_LOCAL_LLM=TEST_LLM_MODEL, PREFECT_WORKER_QUERY_SECONDS="1")
    api = PrefectApi(f"http://127.0.0.1:{port}/api")
    started = time.monotonic()
    up = stack("up", env)
    up_s = time.monotonic() - started
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"Prefect UI: http://127.0.0.1:{port}" in up.stdout and "make down" in up.stdout
        assert f"Local API: started at {local_api_url}" in up.stdout
        assert f"Global concurrency limits: {TRANSCRIPTS_LIMIT} created" in up.stdout, up.stdout
        pids = {p.stem: int(p.read_text()) for p in (home / "run").glob("*.pid")}
        assert sorted(pids) == ["local-api", "prefect-server", "worker-1", "worker-inbox"], pids
        assert set(pids.values()) <= set(processes_with_env("CALLFLOWS_HOME", str(home)))
        assert (home / "run" / "db").read_text().strip() == "sqlite"
        status = stack("status", env, timeout_s=120)
        assert status.returncode == 0, status.stdout + status.stderr
        names = ["prefect-server", "local-api", "worker-1", "worker-inbox"]
        assert all(line.startswith(name) and "running (pid" in line for name, line in
                   zip(names, status.stdout.splitlines())), status.stdout
        pool = api.get("/work_pools/callflows")
        assert pool["concurrency_limit"] == 2, pool
        assert api.deployment("analyze-inbox/analyze-inbox").work_queue_name == "inbox"
        assert api.deployment("analyze-call/analyze-call").work_queue_name == "default"
        workers = {w["name"] for w in api.post("/work_pools/callflows/workers/filter", {})
                   if w["status"] == "ONLINE"}
        assert {"callflows-worker-1", "callflows-worker-inbox"} <= workers, workers

        r = api.create_run("call-sentiment/call-sentiment", {"promt_template": "x"})
        assert r.status_code == 409 and "'promt_template' was unexpected" in r.text, r.text
        flow_run, run_s = api.run("call-sentiment/call-sentiment",
                                  {"results_dir": str(tmp_path / "results"), "questions": ONE_QUESTION},
                                  log=home / "logs" / "worker.log")
        assert flow_run.state.is_completed(), flow_run.state.message
        assert api.deployment("call-sentiment/call-sentiment").work_pool_name == "callflows"
        assert len(list((tmp_path / "results").glob("support_call-*/sentiment.json"))) == 1
    finally:
        started = time.monotonic()
        down = stack("down", env, timeout_s=300)
        down_s = time.monotonic() - started
    assert down.returncode == 0, down.stdout + down.stderr
    assert [line.split(":")[0] for line in down.stdout.splitlines()] == ["serve", "worker-1", "worker-inbox",
                                                                        "local-api", "prefect-server"]
    assert all("stopped (pid" in line for line in down.stdout.splitlines()[1:]), down.stdout
    assert processes_with_env("CALLFLOWS_HOME", str(home)) == []
    assert list((home / "run").iterdir()) == []
    for url in (f"{local_api_url}/_local/health", f"{api.url}/health"):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)
    again = stack("down", env, timeout_s=120)
    assert again.returncode == 0 and again.stdout.count("not running") == 4, again.stdout
    print(f"\nstack up {up_s:.1f} s, worker run {run_s:.1f} s (transcription included), down {down_s:.1f} s")
