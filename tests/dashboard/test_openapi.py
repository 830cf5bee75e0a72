"""The OpenAPI document matches the routes and every documented operation answers as documented.

On a Flask test client (tests/dashboard/clients.py): jobs are analysed in this process, which is
all the document's answers need. /metrics, which follows workers and sockets, is tested on the
stack (tests/worker/test_metrics.py).
"""

from __future__ import annotations

import io
import re

import pytest

from tests.dashboard.clients import build_client, finish

UNKNOWN = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def client(tmp_path):
    return build_client(tmp_path)


def spec(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def flask_api_routes(server) -> set[tuple[str, str]]:
    routes = set()
    for rule in server.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or "<path:" in rule.rule:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule[len("/api") :])
        routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_every_route_is_documented_and_every_documented_route_exists(client):
    documented = {(path, method) for path, item in spec(client)["paths"].items() for method in item}
    assert documented == flask_api_routes(client.application)


def check_shape(document: dict, response_spec: dict, response) -> None:
    """The answer's media type, and for JSON the documented schema's required fields, are there."""
    content = response_spec.get("content")
    if not content:
        assert not response.data
        return
    media = next(iter(content))
    assert response.headers["Content-Type"].startswith(media)
    schema = content[media].get("schema", {})
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        body = response.get_json()
        required = document["components"]["schemas"][name].get("required", [])
        assert set(required) <= set(body), (name, required, list(body))
        if name == "Error":
            assert {"code", "message", "details"} <= set(body["error"])


def submitted(client, content: bytes, name: str) -> str:
    response = client.post("/api/jobs", data={"file": (io.BytesIO(content), name)}, content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def test_every_documented_operation_answers_as_documented(client, porcine_csv):
    document = spec(client)
    content = porcine_csv.read_bytes()
    done = submitted(client, content, "porcine.csv")
    doomed = submitted(client, content, "doomed.csv")
    finish(client, done)
    finish(client, doomed)
    calls = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            targets = [done, UNKNOWN] if "{job_id}" in path else [None]
            for job_id in targets:
                if method == "delete" and job_id == done:
                    job_id = doomed
                url = "/api" + path.replace("{job_id}", job_id or "")
                if path == "/jobs" and method == "post":
                    response = client.post(
                        url, data={"file": (io.BytesIO(content), "p.csv")}, content_type="multipart/form-data"
                    )
                else:
                    response = client.open(url, method=method.upper())
                documented = operation["responses"]
                assert str(response.status_code) in documented, (method, path, response.status_code)
                check_shape(document, documented[str(response.status_code)], response)
                calls += 1
    assert calls >= 20
