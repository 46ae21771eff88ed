"""The temporary Prefect API server `newsetl ingest` starts before it imports Prefect."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from newsetl.cli import _start_prefect_server


def test_the_server_starts_without_prefect_imported_here_and_stops_with_its_port() -> None:
    # A fresh interpreter: this test process has imported Prefect long ago.
    script = textwrap.dedent("""
        import sys, urllib.request
        from newsetl.tasks.prefect_server import api_is_healthy, start_temporary_server
        server = start_temporary_server()
        assert not any(m == "prefect" or m.startswith("prefect.") for m in sys.modules), "imported Prefect"
        url = server.wait_healthy(120)
        assert api_is_healthy(url)
        with urllib.request.urlopen(url + "/version", timeout=5) as resp:
            print("version", resp.read().decode())
        server.stop()
        server.stop()  # idempotent: the ingest's exit paths may each stop it
        assert server.proc.returncode is not None
        assert not api_is_healthy(url, timeout=1)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout and "version" in out.stdout


def test_a_server_that_dies_before_it_is_healthy_is_reported_with_its_output() -> None:
    from newsetl.tasks.prefect_server import ServeError, start_temporary_server

    # A database URL that cannot be opened: the server exits during its start-up.
    server = start_temporary_server(settings={"PREFECT_API_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:////nonexistent/dir/x.db"})
    try:
        with pytest.raises(ServeError, match="exited with code"):
            server.wait_healthy(120)
    finally:
        server.stop()


def test_no_early_server_when_the_environment_names_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with contextlib.ExitStack() as stack:
        assert _start_prefect_server(stack) is None


def test_the_early_server_is_stopped_when_the_run_exits_without_using_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with contextlib.ExitStack() as stack:
        server = _start_prefect_server(stack)
        assert server is not None
        url = server.wait_healthy(120)
    assert server.proc.returncode is not None
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/health", timeout=2)


def test_the_server_skips_block_registration(tmp_path: Path) -> None:
    """The temporary server does not register the installed collections' block types at start (importing
    them cost 0.4 s of its start-up): on a fresh PREFECT_HOME it knows no block type, and it wrote no
    registration memo. A Prefect that renamed the settings would register them again: this fails then."""
    import json

    from newsetl.tasks.prefect_server import start_temporary_server

    server = start_temporary_server(settings={"PREFECT_HOME": str(tmp_path)})
    try:
        url = server.wait_healthy(120)
        request = urllib.request.Request(url + "/block_types/filter", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert json.loads(resp.read()) == []
    finally:
        server.stop()
    assert not (tmp_path / "memo_store.toml").exists()


HEALTH_SERVER = textwrap.dedent("""
    import http.server, sys

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"true")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    print(server.server_address[1], flush=True)
    server.serve_forever()
""")


def test_a_local_server_whose_port_another_process_took_starts_again_on_a_free_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `newsetl serve` started at once both found port 4200 free: the second one's server failed to bind,
    and its health check was answered by the first one's, so the second served on the first's server (a
    user trial). The answer now counts only from the server this process started; else that one starts
    again on a free port. The race is set up for real but for its timing: another process (a health
    endpoint that says "true") holds the port, and the free-port check is made to miss it, as it does when
    the other process takes the port just after the check."""
    from newsetl.tasks import prefect_server
    from newsetl.tasks.prefect_server import LocalServerConfig, api_is_healthy, local_prefect_server

    other = subprocess.Popen([sys.executable, "-c", HEALTH_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None
        taken = int(other.stdout.readline())
        assert api_is_healthy(f"http://127.0.0.1:{taken}/api")  # it would pass for a Prefect server
        monkeypatch.setattr(prefect_server, "port_is_free", lambda host, port: True)
        said: list[str] = []
        monkeypatch.setattr(prefect_server, "say", said.append)
        with local_prefect_server(tmp_path / "home", LocalServerConfig(port=taken)) as api_url:
            port = int(api_url.rsplit(":", 1)[1].split("/")[0])
            assert port != taken and api_is_healthy(api_url)
            with urllib.request.urlopen(f"{api_url}/admin/version", timeout=10) as resp:
                assert resp.status == 200  # a Prefect server's endpoint: ours answers it
        assert any(f"another process took port {taken}" in m for m in said), said
        assert other.poll() is None  # the other process was left alone
    finally:
        other.kill()
        other.wait()
