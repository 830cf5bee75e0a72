"""The OpenAPI document matches the routes and their answers; /metrics follows the jobs."""

from __future__ import annotations

import re
import uuid

import requests
import websocket

from tests.stack import submit, wait_for_status

UNKNOWN = "00000000-0000-0000-0000-000000000000"


def spec(full_stack) -> dict:
    response = requests.get(f"{full_stack.live.url}/api/openapi.json", timeout=10)
    assert response.status_code == 200
    return response.json()


def flask_api_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.server.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or "<path:" in rule.rule:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule[len("/api") :])
        routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_every_route_is_documented_and_every_documented_route_exists(full_stack):
    documented = {(path, method) for path, item in spec(full_stack)["paths"].items() for method in item}
    assert documented == flask_api_routes(full_stack.app)


def check_shape(document: dict, response_spec: dict, response: requests.Response) -> None:
    """The answer's media type, and for JSON the documented schema's required fields, are there."""
    content = response_spec.get("content")
    if not content:
        assert not response.content
        return
    media = next(iter(content))
    assert response.headers["Content-Type"].startswith(media)
    schema = content[media].get("schema", {})
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        body = response.json()
        required = document["components"]["schemas"][name].get("required", [])
        assert set(required) <= set(body), (name, required, list(body))
        if name == "Error":
            assert {"code", "message", "details"} <= set(body["error"])


def test_every_documented_operation_answers_as_documented(full_stack, porcine_csv):
    document = spec(full_stack)
    base = f"{full_stack.live.url}/api"
    done = submit(full_stack.live.url, porcine_csv.read_bytes(), "porcine.csv").json()["id"]
    wait_for_status(full_stack.live.url, done)
    doomed = submit(full_stack.live.url, porcine_csv.read_bytes(), "doomed.csv").json()["id"]
    wait_for_status(full_stack.live.url, doomed)
    calls = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            targets = [done, UNKNOWN] if "{job_id}" in path else [None]
            for job_id in targets:
                if method == "delete" and job_id == done:
                    job_id = doomed
                url = base + path.replace("{job_id}", job_id or "")
                if path == "/jobs" and method == "post":
                    response = requests.post(url, files={"file": ("p.csv", porcine_csv.read_bytes())}, timeout=60)
                else:
                    response = requests.request(method, url, timeout=60)
                documented = operation["responses"]
                assert str(response.status_code) in documented, (method, path, response.status_code)
                check_shape(document, documented[str(response.status_code)], response)
                calls += 1
    assert calls >= 20


def metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name}{labels} missing"
    return float(match.group(1))


def test_metrics_follow_the_jobs_and_the_sockets(full_stack, porcine_csv):
    url = f"{full_stack.live.url}/metrics"
    before = requests.get(url, timeout=10)
    assert before.headers["Content-Type"].startswith("text/plain")
    succeeded_before = metric(before.text, "rtcheck_jobs", '{status="succeeded"}')
    durations_before = metric(before.text, "rtcheck_job_duration_seconds_count")
    accepted_before = (
        metric(before.text, "rtcheck_http_requests_total", '{method="POST",status="202"}')
        if 'status="202"' in before.text
        else 0.0
    )
    job_id = submit(full_stack.live.url, porcine_csv.read_bytes(), f"{uuid.uuid4().hex}.csv").json()["id"]
    wait_for_status(full_stack.live.url, job_id)
    socket = websocket.create_connection(f"{full_stack.live.ws_url}/ws/jobs", timeout=10)
    socket.recv()
    try:
        after = requests.get(url, timeout=10).text
    finally:
        socket.close()
    assert metric(after, "rtcheck_jobs", '{status="succeeded"}') == succeeded_before + 1
    assert metric(after, "rtcheck_job_duration_seconds_count") == durations_before + 1
    assert metric(after, "rtcheck_http_requests_total", '{method="POST",status="202"}') == accepted_before + 1
    assert metric(after, "rtcheck_websocket_connections") >= 1
    assert metric(after, "rtcheck_queue_depth") == 0
