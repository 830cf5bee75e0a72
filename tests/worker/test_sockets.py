"""Open sockets are capped, so idle ones cannot take every server thread from HTTP."""

from __future__ import annotations

import pytest
import requests
import websocket

from settings import Settings
from tests.services import wait_until
from tests.stack import LiveServer


@pytest.fixture
def live(tmp_path):
    from dashboard.factory import create_app

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        redis_url="",
        data_dir=tmp_path,
        app_env="test",
        auth_required=False,
        ws_max_connections=6,
        ws_max_per_client=4,
    )
    app = create_app(settings, start_background=False)
    with LiveServer(app.server) as server:
        yield server


def open_socket(live):
    try:
        return websocket.create_connection(f"{live.ws_url}/ws/jobs", timeout=10)
    except websocket.WebSocketBadStatusException as exc:
        assert exc.status_code == 429
        return None


def test_idle_sockets_beyond_the_cap_are_refused_and_http_keeps_answering(live):
    sockets = [open_socket(live) for _ in range(20)]  # one client, many idle sockets
    held = [s for s in sockets if s is not None]
    assert len(held) == 4  # WS_MAX_PER_CLIENT
    assert requests.get(f"{live.url}/api/health", timeout=5).status_code == 200  # a thread is free for it
    held.pop().close()  # a slot comes free once its socket has closed

    def reopened() -> bool:
        sock = open_socket(live)
        if sock is not None:
            held.append(sock)
        return sock is not None

    assert wait_until(reopened, 10)
    for sock in held:
        sock.close()
