"""End to end through a real Prefect server: serve the deployments, run them with the CLI.

Starts ``prefect server start`` on a free loopback port and ``python -m flows.deployments``
(serving every ``<flow>/mch-radar`` deployment), each in its own process group, ingests the
shipped sample meanwhile (the ``ingest`` flow itself is covered by ``test_flows.py``), then runs
``prefect deployment run 'train-simvp/mch-radar'`` (a tiny config) and
``'forecast/mch-radar'`` with ``--watch``, and checks the checkpoint and the forecast store
entry on disk. Everything started here is stopped in ``finally`` blocks, even on failure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.flows.sample import FIRST, LAST, SOURCE, TINY_OVERRIDES
from tests.flows.sample import TINY_TRAINING as SAMPLE_TRAINING

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.timeout(240)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new process group (so all its children can be stopped)."""
    handle = log.open("wb")
    try:
        return subprocess.Popen(
            list(command),
            env=env,
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        handle.close()  # the child keeps its own descriptor


def stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGINT the process group, then SIGKILL it if it is still alive after ``grace`` s."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
    try:  # children (flow-run subprocesses, uvicorn workers) may outlive the leader
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=grace)


def wait_for(url: str, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout} s:\n{log.read_text()[-4000:]}")


def run_deployment(
    name: str, env: dict[str, str], params: dict[str, object], timeout: int = 150
) -> str:
    """``prefect deployment run NAME --params JSON --watch``; returns its output."""
    command = [
        str(BIN / "prefect"),
        "--no-prompt",
        "deployment",
        "run",
        name,
        "--params",
        json.dumps(params),
        "--watch",
        "--watch-interval",
        "1",
        "--watch-timeout",
        str(timeout),
    ]
    done = subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout + 30
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{output}"
    assert "Completed" in output, output
    return output


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A Prefect server on a free loopback port and a serve process for ``SOURCE``."""
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PREFECT_") and key != "NOWCAST_DATA_DIR"
    }
    env.update(
        HOME=str(home),
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        NOWCAST_DATA_DIR=str(tmp_path / "data"),
        NOWCAST_DASK_WORKERS="1",
        PYTHONPATH=str(REPO),
    )
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    server = start(
        [
            str(BIN / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ui",
        ],
        env,
        server_log,
    )
    try:
        from pipelines.ingest import ingest_source

        # one event of the sample (the 2016-07-11 one), while the server starts
        ingest_source(
            SOURCE,
            data_dir=env["NOWCAST_DATA_DIR"],
            start=FIRST,
            end=LAST,
            progress=False,
        )
        wait_for(f"http://127.0.0.1:{port}/api/health", 90, server, server_log)
        serve = start(
            [sys.executable, "-m", "flows.deployments", "--sources", SOURCE, "--no-schedules"],
            env,
            serve_log,
        )
        try:
            wait_for(
                f"http://127.0.0.1:{port}/api/deployments/name/forecast/{SOURCE}",
                60,
                serve,
                serve_log,
            )
            yield env
        finally:
            stop(serve, grace=5)  # nothing runs any more; its schedules are off
    finally:
        stop(server)


def test_served_deployments_train_and_forecast(served: dict[str, str], tmp_path: Path) -> None:
    import xarray as xr

    run_deployment(f"train-simvp/{SOURCE}", served, TINY_TRAINING)
    checkpoints = list((tmp_path / "data" / "models" / SOURCE).rglob("best.pt"))
    assert len(checkpoints) == 1, checkpoints

    # Wanted "now" (the run's scheduled time), the 2016 sample is stale: reported, not fatal.
    run_deployment(f"forecast/{SOURCE}", served, {"render": False})
    store = tmp_path / "data" / "forecasts" / f"{SOURCE}.zarr"
    with xr.open_zarr(store) as forecast:
        assert forecast.sizes["init_time"] == 1 and bool(forecast["forecast_complete"][0])
        assert str(forecast["init_time"].values[0]).startswith("2016-07-12T00:00")
        assert str(checkpoints[0]) == str(forecast["checkpoint"].values[0])


#: Parameters of the train-simvp deployment run (``overrides`` are its train_source options).
TINY_TRAINING = {**SAMPLE_TRAINING, "overrides": TINY_OVERRIDES}
