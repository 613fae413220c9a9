"""analyze-inbox fanned out over Prefect workers that share nothing but the Prefect API URL, the result
storage folder and the results folder (where the SQLite ledger lives), as two machines would.

``scripts/stack.py up`` brings up "machine A" (Prefect server, local server with the test models,
work pool, deployments, one call worker and the inbox worker) in its own CALLFLOWS_HOME; "machine B"
is a second call worker started by hand with another CALLFLOWS_HOME. Two analyze-inbox runs are
created at the same moment on one inbox of three recordings.
"""
from __future__ import annotations

import subprocess
import time
from uuid import UUID

import pytest

from conftest import FAST_PARAMETERS, SAMPLE_CALL, TEST_LLM_MODEL, TEST_STT_MODEL, free_port, trim_wav
from test_deployments import PREFECT, ROOT, PrefectApi, base_env, processes_with_env, stack, stop_group

RUN_TIMEOUT_S = 900


def _wait_final(api: PrefectApi, ids: list[UUID], timeout_s: float):
    started, runs = time.monotonic(), {}
    while time.monotonic() - started < timeout_s:
        runs = {i: api.flow_run(i) for i in ids}
        if all(r.state and r.state.is_final() for r in runs.values()):
            return runs
        time.sleep(2)
    pytest.fail(f"runs not final after {timeout_s} s: {[(i, r.state and r.state.name) for i, r in runs.items()]}")


def _children(api: PrefectApi, parent: UUID):
    """The flow runs started by the flow run ``parent`` (its direct children)."""
    from prefect.client.schemas.objects import FlowRun

    body = {"flow_runs": {"parent_flow_run_id": {"any_": [str(parent)]}}}
    return [FlowRun.model_validate(r) for r in api.post("/flow_runs/filter", body)]


@pytest.mark.timeout(1800)
def test_two_overlapping_inbox_runs_fan_out_over_two_machines_and_pay_once(tmp_path):
    """Two analyze-inbox runs started together on a 3-recording inbox: each recording is claimed by
    exactly one of them and analysed once, as a child analyze-call run of that inbox run, the calls
    spread over both workers (two at a time), with one upload and one transcript per recording on
    the local server; the cached task results are written to the shared storage folder, not to either
    machine's own Prefect home. A third run analyses again only the calls that failed, from the
    cached uploads and transcripts."""
    shared = tmp_path / "shared"
    storage, results, inbox = shared / "storage", shared / "results", shared / "inbox"
    inbox.mkdir(parents=True)
    for i, seconds in enumerate((14, 18, 22)):
        trim_wav(SAMPLE_CALL, inbox / f"call-{i}.wav", seconds)
    home_a, home_b = tmp_path / "machine-a", tmp_path / "machine-b"
    port, local_api_url = free_port(), f"http://127.0.0.1:{free_port()}"
    common = dict(CALLFLOWS_LOCAL_API_URL=local_api_url, CALLFLOWS_RESULT_STORAGE=str(storage),
                  PREFECT_WORKER_QUERY_SECONDS="1",
                  CALLFLOWS_POOL_CONCURRENCY="4")  # the pool's limit counts the 2 inbox runs too: 2 + 2 calls
    env_a = base_env(CALLFLOWS_HOME=str(home_a), PREFECT_HOME=str(home_a / "prefect"),
                     CALLFLOWS_PREFECT_PORT=str(port), CALLFLOWS_STT_MODEL=TEST_STT_MODEL,
                     CALLFLOWS_LOCAL_LLM=TEST_LLM_MODEL, **common)
    api = PrefectApi(f"http://127.0.0.1:{port}/api")
    up = stack("up", env_a)
    worker_b = None
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        home_b.mkdir()
        log_b = home_b / "worker.log"
        env_b = base_env(CALLFLOWS_HOME=str(home_b), PREFECT_HOME=str(home_b / "prefect"), PREFECT_API_URL=api.url,
                         **common)
        with open(log_b, "wb") as log:
            worker_b = subprocess.Popen([PREFECT, "worker", "start", "--pool", "callflows", "--work-queue", "default",
                                         "--limit", "1", "--name", "machine-b"], cwd=ROOT, env=env_b, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "machine-b" not in {
                w["name"] for w in api.post("/work_pools/callflows/workers/filter", {}) if w["status"] == "ONLINE"}:
            assert worker_b.poll() is None, log_b.read_text()
            time.sleep(1)

        import requests

        requests.delete(f"{local_api_url}/_local/requests", timeout=10).raise_for_status()
        params = {"inbox": str(inbox), "results_dir": str(results), "max_in_flight": 2, **FAST_PARAMETERS}
        created = [api.create_run("analyze-inbox/analyze-inbox", params) for _ in range(2)]
        assert all(r.status_code == 201 for r in created), [r.text for r in created]
        inbox_ids = [UUID(r.json()["id"]) for r in created]
        inbox_runs = _wait_final(api, inbox_ids, RUN_TIMEOUT_S)
        # The test LLM (SmolLM2-135M) may break an analysis's JSON: a call then ends Failed with the
        # other analyses written, which is the analysis's concern, not the fan-out's.
        assert all(r.state.type.value in ("COMPLETED", "FAILED") for r in inbox_runs.values()), inbox_runs

        children = {i: _children(api, i) for i in inbox_ids}
        calls = [c for runs in children.values() for c in runs]
        assert sorted(c.name for c in calls) == ["analyze-call-0", "analyze-call-1", "analyze-call-2"]
        analyze_call = api.deployment("analyze-call/analyze-call").id
        assert all(c.deployment_id == analyze_call and c.state.type.value in ("COMPLETED", "FAILED") for c in calls)
        spans = sorted((c.start_time, c.end_time) for c in calls)
        assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), f"no two calls overlapped: {spans}"
        ran_on_a = {c.id for c in calls if str(c.id) in (home_a / "logs" / "worker-1.log").read_text()}
        ran_on_b = {c.id for c in calls if str(c.id) in log_b.read_text()}
        assert ran_on_a and ran_on_b and ran_on_a | ran_on_b == {c.id for c in calls}, (ran_on_a, ran_on_b)

        counts = requests.get(f"{local_api_url}/_local/requests", timeout=10).json()["counts"]
        assert counts["POST /v2/upload"] == 3 and counts["POST /v2/transcript"] == 3, counts
        from callflows.ledger import Ledger

        rows = Ledger.open(results).all()
        assert len(rows) == 3 and {r.status for r in rows} <= {"analysed", "failed"}
        assert {r.flow_run_id for r in rows} == {str(c.id) for c in calls}
        assert {r.status == "analysed" for r in rows} == {c.state.is_completed() for c in calls}
        assert len(list(results.glob("call-*/analysis.json"))) == 3, "written by each call, also a partial failure"
        assert any(storage.rglob("*")), "cached results are in the shared storage folder"
        for home in (home_a, home_b):
            assert not any((home / "prefect" / "storage").rglob("*")), f"{home} kept results of its own"

        requests.delete(f"{local_api_url}/_local/requests", timeout=10).raise_for_status()
        third = api.create_run("analyze-inbox/analyze-inbox", params)
        [again] = _wait_final(api, [UUID(third.json()["id"])], RUN_TIMEOUT_S).values()
        failed = sum(r.status == "failed" for r in rows)
        assert len(_children(api, again.id)) == failed, "only the failed calls are analysed again"
        counts = requests.get(f"{local_api_url}/_local/requests", timeout=10).json()["counts"]
        assert counts.get("POST /v2/upload", 0) == 0 and counts.get("POST /v2/transcript", 0) == 0, counts
    finally:
        if worker_b is not None:
            stop_group(worker_b, ("CALLFLOWS_HOME", str(home_b)))
        down = stack("down", env_a, timeout_s=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert processes_with_env("CALLFLOWS_HOME", str(home_a)) == []
