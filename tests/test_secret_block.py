"""The API key may live in a Prefect Secret block; it is then never a flow or task parameter."""
from prefect import flow

from conftest import start_local_api
from tasks.transcription import upload_audio

KEY = "blk-key-7f3a9c1e5d"


@flow
def upload_with_block(path: str, sha: str):
    return upload_audio.with_options(refresh_cache=True)(path, sha, return_state=True)


def test_key_from_a_secret_block_authenticates_and_stays_out_of_parameters(prefect_harness, tmp_path, sample_call,
                                                                         monkeypatch):
    """With CALLFLOWS_API_KEY_SECRET_BLOCK set, tasks read the key from the block: a keyed server
    accepts the upload, and the key appears in no flow or task run parameter."""
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client

    server = start_local_api(tmp_path / "keyed", api_key=KEY)
    try:
        Secret(value=KEY).save("callflows-test-key", overwrite=True)
        monkeypatch.setenv("CALLFLOWS_API_KEY_SECRET_BLOCK", "callflows-test-key")
        monkeypatch.setenv("ASSEMBLYAI_BASE_URL", server.url)
        state = upload_with_block(str(sample_call), "e" * 64)
        assert state.is_completed(), state.message
        assert server.request_counts().get("POST /v2/upload") == 1
        with get_client(sync_client=True) as client:
            task_run = client.read_task_run(state.state_details.task_run_id)
            flow_run = client.read_flow_run(task_run.flow_run_id)
        assert KEY not in repr(flow_run.parameters) and KEY not in repr(task_run)
        assert KEY not in server.log_path.read_text()
    finally:
        server.stop()


def test_without_the_block_the_keyed_server_refuses(prefect_harness, tmp_path, sample_call, monkeypatch):
    """Control: the same upload with no key fails with 401 after one request (not retried)."""
    server = start_local_api(tmp_path / "keyed2", api_key=KEY)
    try:
        monkeypatch.setenv("ASSEMBLYAI_BASE_URL", server.url)
        monkeypatch.delenv("CALLFLOWS_API_KEY_SECRET_BLOCK", raising=False)
        state = upload_with_block(str(sample_call), "d" * 64, return_state=True)
        assert state.is_failed()
        assert server.request_counts().get("POST /v2/upload") == 1
    finally:
        server.stop()
