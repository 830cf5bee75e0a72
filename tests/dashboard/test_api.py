"""The API's answers to bad requests, on a Flask test client: documented codes, nothing stored.

No services are needed: the app is built in embedded mode on a SQLite file and its scheduler is
not started, so nothing that is accepted runs. What needs the whole stack is in tests/worker.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re

import pytest
from sqlalchemy import func, select

from store.jobs import get_job
from store.models import Job, Upload
from tests.dashboard.clients import build_client, finish
from tests.services import free_port

GOOD = b"Name,RT,Volume,Log P,Anchor\nGD1(36:1;O2),9.1,1000,1.5,T\n"


@pytest.fixture
def client(tmp_path):
    return build_client(tmp_path)


def post_job(client, files, form=None):
    data = dict(form or {})
    for field, (name, content) in (files or {}).items():
        data[field] = (io.BytesIO(content), name)
    return client.post("/api/jobs", data=data, content_type="multipart/form-data")


def stored_counts(db) -> tuple[int, int]:
    with db.session() as session:
        return (
            session.execute(select(func.count()).select_from(Job)).scalar_one(),
            session.execute(select(func.count()).select_from(Upload)).scalar_one(),
        )


@pytest.mark.parametrize(
    "files, form, status, code",
    [
        (None, {}, 400, "no_file"),
        ({"file": ("empty.csv", b"")}, {}, 422, "invalid_table"),
        ({"file": ("blank.csv", b"\n\n  \n")}, {}, 422, "invalid_table"),
        ({"file": ("report.pdf", b"%PDF-1.7 binary")}, {}, 415, "unsupported_type"),
        ({"file": ("peaks.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00")}, {}, 415, "unsupported_type"),
        ({"file": ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")}, {}, 415, "unsupported_type"),
        ({"file": ("broken.xlsx", GOOD)}, {}, 415, "unsupported_type"),
        ({"file": ("peaks.csv", b"Name;Mass\nGD1;1\n")}, {}, 422, "invalid_table"),
        ({"file": ("peaks.csv", GOOD)}, {"params": "{not json"}, 400, "malformed_parameters"),
        ({"file": ("peaks.csv", GOOD)}, {"params": "[1, 2]"}, 400, "malformed_parameters"),
        ({"file": ("peaks.csv", GOOD)}, {"params": json.dumps({"alpha": 2})}, 422, "invalid_parameters"),
        ({"file": ("peaks.csv", GOOD)}, {"params": json.dumps({"nonsense": 1})}, 422, "invalid_parameters"),
        ({"file": ("peaks.csv", GOOD + b"GX1(36:1;O2),abc,1,1,T\n")}, {}, 422, "invalid_rows"),
        ({"file": ("peaks.csv", GOOD)}, {"params": "[" * 100_000 + "]" * 100_000}, 400, "malformed_parameters"),
        ({"file": ("peaks.csv", GOOD)}, {"notify_email": "a" * 400 + "@example.org"}, 422, "invalid_email"),
        ({"file": ("peaks.csv", GOOD)}, {"notify_email": "a@b.org, c@d.org"}, 422, "invalid_email"),
        ({"file": ("peaks.csv", GOOD)}, {"mapping": "{not json"}, 400, "malformed_parameters"),
        ({"file": ("peaks.csv", GOOD)}, {"mapping": json.dumps({"RT": 3})}, 400, "malformed_parameters"),
        ({"file": ("peaks.csv", GOOD)}, {"mapping": json.dumps({"Colour": "RT"})}, 422, "invalid_table"),
        ({"file": ("peaks.csv", GOOD)}, {"mapping": json.dumps({"RT": "Retention"})}, 422, "invalid_table"),
    ],
)
def test_bad_submissions_get_their_status_and_store_nothing(client, files, form, status, code):
    before = stored_counts(client.db)
    response = post_job(client, files, form)
    assert response.status_code == status, response.text
    error = response.json["error"]
    assert error["code"] == code and error["message"]
    assert stored_counts(client.db) == before


def test_a_mapping_reads_a_table_with_other_column_names_and_the_job_keeps_it(client, porcine_csv):
    lines = porcine_csv.read_text(encoding="utf-8-sig").splitlines()
    renamed = "\n".join(["Metabolite name,Average Rt(min),Area,Log P,MS/MS matched", *lines[1:]]).encode()
    refused = post_job(client, {"file": ("export.csv", renamed)})
    assert refused.status_code == 422 and "missing required column" in refused.json["error"]["message"]
    mapping = {"Name": "Metabolite name", "RT": "Average Rt(min)", "Anchor": "MS/MS matched"}
    accepted = post_job(client, {"file": ("export.csv", renamed)}, {"mapping": json.dumps(mapping)})
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json["id"]
    finish(client, job_id)  # the analysis reads the stored file with the job's mapping
    mapped = client.get(f"/api/jobs/{job_id}/results").json
    assert mapped["provenance"]["input"]["mapping"] == {
        "name": "Metabolite name",
        "rt": "Average Rt(min)",
        "anchor": "MS/MS matched",
    }
    plain = post_job(client, {"file": ("peaks.csv", porcine_csv.read_bytes())}).json["id"]
    finish(client, plain)
    expected = client.get(f"/api/jobs/{plain}/results").json
    assert mapped["summary"]["counts"] == expected["summary"]["counts"]


def test_an_ms_dial_export_is_recognised_and_a_chosen_sample_is_kept_with_the_job(client):
    from tests import layout_fixtures

    export = layout_fixtures.msdial_alignment()
    wrong = post_job(client, {"file": ("Area_0.txt", export)}, {"mapping": json.dumps({"sample": "Brain_9"})})
    assert wrong.status_code == 422 and "Brain_9" in wrong.json["error"]["message"]
    accepted = post_job(client, {"file": ("Area_0.txt", export)}, {"mapping": json.dumps({"sample": "Brain_1"})})
    assert accepted.status_code == 202, accepted.text
    finish(client, accepted.json["id"])
    result = client.get(f"/api/jobs/{accepted.json['id']}/results").json
    reading = result["provenance"]["input"]["reading"]
    assert reading["layout"] == "msdial_alignment" and reading["sample"] == "Brain_1"
    assert result["summary"]["n_rows_skipped"] == 3 and result["summary"]["log_p_given"] is False


def test_invalid_rows_are_listed_with_row_column_value_and_reason(client):
    content = GOOD + b"GX1(36:1;O2),abc,1,1,T\nGD1(38:1;O2),10.5,1,1,maybe\n"
    error = post_job(client, {"file": ("peaks.csv", content)}).json["error"]
    details = {(d["row"], d["column"]) for d in error["details"]}
    assert details == {(2, "Name"), (2, "RT"), (3, "Anchor")}
    assert all(d["value"] is not None and d["reason"] for d in error["details"])


def test_too_large_is_413(client):
    big = GOOD + b"GD1(36:1;O2),9.1,1000,1.5,T\n" * (int(client.settings.max_upload_bytes * 1.5) // 28)
    before = stored_counts(client.db)
    response = post_job(client, {"file": ("big.csv", big)})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large"
    assert stored_counts(client.db) == before


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/jobs/00000000-0000-0000-0000-000000000000"),
        ("get", "/api/jobs/not-a-job"),
        ("get", "/api/jobs/00000000-0000-0000-0000-000000000000/results.csv"),
        ("post", "/api/jobs/00000000-0000-0000-0000-000000000000/cancel"),
        ("post", "/api/jobs/00000000-0000-0000-0000-000000000000/retry"),
        ("delete", "/api/jobs/00000000-0000-0000-0000-000000000000"),
        ("get", "/api/nowhere"),
    ],
)
def test_unknown_jobs_and_routes_are_404_json(client, method, path):
    response = client.open(path, method=method.upper())
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_list_filters_and_rejects_bad_filters(client):
    listing = client.get("/api/jobs", query_string={"status": "succeeded,failed", "limit": 5})
    assert listing.status_code == 200
    body = listing.json
    assert len(body["jobs"]) <= 5 and all(j["status"] in ("succeeded", "failed") for j in body["jobs"])
    assert client.get("/api/jobs", query_string={"status": "sleeping"}).status_code == 400
    assert client.get("/api/jobs", query_string={"limit": "ten"}).status_code == 400


def test_an_unreachable_queue_fails_the_job_once_with_the_reason_and_retry_keeps_it_failed(tmp_path):
    """Job control's one failure path: 503, the job stored as failed with why, and a retry while
    the queue is still down answers 503 again and leaves the job failed, never queued for ever."""
    client = build_client(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0", secret_key="k" * 40)
    response = post_job(client, {"file": ("peaks.csv", GOOD)})
    assert response.status_code == 503 and response.json["error"]["code"] == "queue_unavailable"
    (job,) = client.get("/api/jobs").json["jobs"]
    assert job["status"] == "failed" and job["error"].startswith("could not be queued")
    retried = client.post(f"/api/jobs/{job['id']}/retry")
    assert retried.status_code == 503
    assert get_job(client.db, job["id"]).status == "failed"


@pytest.mark.parametrize("offset", ["9" * 30, "-1"])
def test_an_offset_out_of_range_is_400(client, offset):
    response = client.get("/api/jobs", query_string={"offset": offset})
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_filter"


@pytest.mark.parametrize("path", ["/_dash-component-suites/nothing/x.js", "/_dash-component-suites/../../etc/passwd"])
def test_unknown_asset_paths_are_404(client, path):
    assert client.get(path).status_code == 404


def test_a_submission_while_the_database_is_down_is_503_and_stores_nothing(tmp_path):
    client = build_client(tmp_path)
    (tmp_path / "api.db").unlink()  # the database file is gone: every query fails
    (tmp_path / "api.db").mkdir()
    client.db.dispose()
    response = post_job(client, {"file": ("peaks.csv", GOOD)})
    assert response.status_code == 503 and response.json["error"]["code"] == "database_unavailable"


def test_downloads_keep_any_file_name(client, porcine_csv):
    """RFC 6266: an ASCII fallback and the exact name in RFC 5987 form, quotes and α included."""
    from urllib.parse import unquote

    jobs = client.application.extensions["rtcheck"].jobs
    job_id = jobs.submit(filename='α-GD1 "test".csv', content=porcine_csv.read_bytes(), parameters={}).job_id
    finish(client, job_id)
    response = client.get(f"/api/jobs/{job_id}/results.csv")
    assert response.status_code == 200
    header = response.headers["Content-Disposition"]
    header.encode("latin-1")  # what a WSGI server must be able to send
    exact = header.split("filename*=UTF-8''", 1)[1]
    assert unquote(exact) == 'α-GD1 "test"-rt-check.csv'
    assert header.startswith("attachment; filename=")


@pytest.mark.parametrize("path", ["/", "/jobs", "/methods", "/api/jobs", "/api/health", "/api/no-such-route"])
def test_every_response_refuses_framing_and_type_sniffing(client, path):
    response = client.get(path)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/", "/jobs", "/methods"])
def test_pages_may_run_only_this_servers_scripts_and_dashs_own_inline_script(client, path):
    client.get(path)  # Dash sets itself up (and adds its pages' inline script) at the first request
    response = client.get(path)
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    sources = policy["script-src"].split()
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*"} & set(sources)
    assert policy["default-src"] == policy["connect-src"] == "'self'" and policy["object-src"] == "'none'"
    html = response.get_data(as_text=True)
    executed = [
        body
        for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
        if "src=" not in attributes and "application/json" not in attributes and body.strip()
    ]
    executed = [body for body in executed if "does not support Internet Explorer" not in body]  # inside <!--[if IE]>
    assert executed, "the page has no inline script; the test would check nothing"
    for body in executed:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in sources, body[:80]
    external = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert external and all(src.startswith("/") and not src.startswith("//") for src in external)


@pytest.mark.parametrize(
    "origin, allowed",
    [
        (None, True),  # a script, not a browser
        ("http://localhost", True),  # the page's own origin
        ("https://localhost", False),  # same host, another scheme: another origin
        ("http://evil.example", False),
        ("http://localhost.evil.example", False),
        ("https://rtcheck.example.org", True),  # listed in ALLOWED_ORIGINS
    ],
)
def test_a_socket_is_opened_only_from_its_own_origin_or_a_listed_one(origin, allowed):
    from dashboard.ws import origin_allowed

    assert origin_allowed(origin, "localhost", ["https://rtcheck.example.org"], "http") is allowed


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("localhost:8050", True),
        ("127.0.0.1:8050", True),
        ("127.0.0.2", True),
        ("[::1]:8050", True),
        ("LOCALHOST", True),
        ("attacker.example:8050", False),  # a rebinding page's own name, pointed at 127.0.0.1
        ("localhost.attacker.example", False),
        ("10.0.0.5:8050", False),
    ],
)
def test_by_default_the_server_answers_only_to_loopback_host_names(tmp_path, host, allowed):
    client = build_client(tmp_path)
    response = client.get("/api/health", headers={"Host": host})
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "host_not_allowed"


@pytest.mark.parametrize(
    "settings, host, allowed",
    [
        ({"public_url": "https://rtcheck.lab.example/"}, "rtcheck.lab.example", True),
        ({"public_url": "https://rtcheck.lab.example/"}, "other.lab.example", False),
        ({"allowed_hosts": "a.example, b.example"}, "b.example:443", True),
        ({"allowed_hosts": "a.example, b.example"}, "c.example", False),
        ({"allowed_origins": "https://portal.example"}, "portal.example", True),
    ],
)
def test_trusted_hosts_come_from_allowed_hosts_or_the_public_address(tmp_path, settings, host, allowed):
    client = build_client(tmp_path, **settings)
    response = client.get("/api/health", headers={"Host": host})
    assert (response.status_code == 200) is allowed, response.get_json()


@pytest.mark.parametrize(
    "host, loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False)]
)
def test_which_bind_addresses_count_as_a_laptop_install(host, loopback):
    from settings import is_loopback

    assert is_loopback(host) is loopback
