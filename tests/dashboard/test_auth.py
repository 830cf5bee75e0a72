"""Who may see, run and delete what: sign-in, tokens, roles, groups, CSRF, rate limits, audit.

One app with sign-in required (embedded mode, SQLite) and five accounts:
alice and carol (analysts in group lab1), bob (analyst, no group), vera (viewer in lab1),
root (admin). alice owns the job every test looks at.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from store import accounts, audit
from tests.conftest import REPO
from tests.dashboard.clients import build_client

PASSWORD = "correct horse battery"
PEOPLE = {
    "alice": ("analyst", "lab1"),
    "carol": ("analyst", "lab1"),
    "bob": ("analyst", None),
    "vera": ("viewer", "lab1"),
    "root": ("admin", None),
}
# What anyone may reach without signing in (and nothing else: the URL map test checks it)
PUBLIC_PATHS = {"/login", "/api/health", "/api/openapi.json", "/metrics", "/_favicon.ico"}


@pytest.fixture(scope="module")
def site(tmp_path_factory, tiny_csv):
    tmp = tmp_path_factory.mktemp("auth")
    client = build_client(tmp, auth_required=True, login_rate_limit="10 per minute", upload_rate_limit="1000/hour")
    db = client.db
    tokens = {}
    for name, (role, group) in PEOPLE.items():
        accounts.add_user(db, name, PASSWORD, role=role, group=group)
        tokens[name] = accounts.create_token(db, name, "tests")[1]
    app = client.application

    def as_(name: str | None, **environ):
        fresh = app.test_client()
        if name:
            fresh.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tokens[name]}"
        fresh.environ_base.update(environ)
        return fresh

    response = as_("alice").post("/api/jobs", data={"file": (tiny_csv.open("rb"), "tiny.csv")})
    assert response.status_code == 202, response.get_json()
    return {"db": db, "app": app, "as": as_, "tokens": tokens, "job": response.get_json()["id"], "csv": tiny_csv}


def submit(site, who: str) -> str:
    response = site["as"](who).post("/api/jobs", data={"file": (site["csv"].open("rb"), "tiny.csv")})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def sign_in(client, username: str, password: str = PASSWORD, next_path: str = "/"):
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token, "next": next_path}
    )


def filled(rule, job_id: str) -> str:
    path = rule.rule
    for argument in rule.arguments:
        path = re.sub(rf"<(?:[a-z]+:)?{argument}>", job_id if argument == "job_id" else "x", path)
    return path


def test_anonymous_requests_get_401_or_the_sign_in_page_on_every_route(site):
    """Every route Flask knows, every method: a new route cannot be forgotten."""
    anonymous = site["as"](None)
    checked = 0
    for rule in site["app"].url_map.iter_rules():
        path = filled(rule, site["job"])
        if path in PUBLIC_PATHS or path.startswith(("/assets/", "/_dash-component-suites/", "/ws/")):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = anonymous.open(path, method=method, headers={"Accept": "text/html"})
            if method == "GET" and not path.startswith(("/api/", "/_dash-", "/_reload")):
                assert response.status_code == 302, (method, path)
                assert response.headers["Location"].startswith("/login?next="), (method, path)
            else:
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.get_json()["error"]["code"] == "unauthorized"
            checked += 1
    assert checked >= 15


def test_only_the_public_paths_answer_anonymously(site):
    anonymous = site["as"](None)
    for path in sorted(PUBLIC_PATHS - {"/_favicon.ico"}):
        assert anonymous.get(path).status_code == 200, path
    assert anonymous.get("/api/health").get_json()["jobs"] is None  # no job counts for strangers


def test_a_job_records_who_submitted_it(site):
    from store.jobs import get_job

    alice = accounts.get_account(site["db"], "alice")
    assert get_job(site["db"], site["job"]).owner_id == alice.id


@pytest.mark.parametrize(
    "method, suffix",
    [
        ("get", ""),
        ("get", "/results"),
        ("get", "/results.json"),
        ("get", "/results.csv"),
        ("get", "/results.xlsx"),
        ("post", "/cancel"),
        ("post", "/retry"),
        ("delete", ""),
    ],
)
def test_another_users_job_does_not_exist_for_them(site, method, suffix):
    response = getattr(site["as"]("bob"), method)(f"/api/jobs/{site['job']}{suffix}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_listings_and_counts_hold_only_what_the_caller_may_see(site):
    bobs = submit(site, "bob")
    listed = {
        name: {job["id"] for job in site["as"](name).get("/api/jobs?limit=1000").get_json()["jobs"]} for name in PEOPLE
    }
    assert site["job"] in listed["alice"] and bobs not in listed["alice"]
    assert site["job"] in listed["carol"] and site["job"] in listed["vera"]  # the same group
    assert listed["bob"] == {bobs}
    assert {site["job"], bobs} <= listed["root"]
    counts = site["as"]("bob").get("/api/jobs").get_json()["counts"]
    assert sum(counts.values()) == 1


def test_group_members_and_admins_may_act_on_the_job(site):
    job = submit(site, "alice")
    assert site["as"]("carol").get(f"/api/jobs/{job}").status_code == 200
    assert site["as"]("carol").post(f"/api/jobs/{job}/cancel").status_code in (200, 409)
    assert site["as"]("root").delete(f"/api/jobs/{job}").status_code == 204


def test_viewers_read_but_cannot_change_anything(site):
    viewer = site["as"]("vera")
    assert viewer.get(f"/api/jobs/{site['job']}").status_code == 200
    refused = [
        viewer.post("/api/jobs", data={"file": (site["csv"].open("rb"), "tiny.csv")}),
        viewer.post(f"/api/jobs/{site['job']}/cancel"),
        viewer.post(f"/api/jobs/{site['job']}/retry"),
        viewer.delete(f"/api/jobs/{site['job']}"),
    ]
    assert [r.status_code for r in refused] == [403] * 4
    assert {r.get_json()["error"]["code"] for r in refused} == {"forbidden"}


def test_a_revoked_token_and_a_disabled_account_are_refused(site):
    db = site["db"]
    accounts.add_user(db, "temp", PASSWORD)
    token_id, token = accounts.create_token(db, "temp")
    client = site["app"].test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/jobs", headers=headers).status_code == 200
    accounts.revoke_token(db, token_id)
    assert client.get("/api/jobs", headers=headers).status_code == 401
    _, second = accounts.create_token(db, "temp")
    accounts.set_disabled(db, "temp")
    refused = client.get("/api/jobs", headers={"Authorization": f"Bearer {second}"})
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/jobs", headers={"Authorization": "Bearer rtc_made-up"}).status_code == 401


def test_a_session_ends_when_the_account_is_disabled_or_its_password_changes(site):
    db = site["db"]
    accounts.add_user(db, "dora", PASSWORD)
    browser = site["app"].test_client()
    assert sign_in(browser, "dora").status_code == 302
    assert browser.get("/api/jobs").status_code == 200
    accounts.set_password(db, "dora", "another long password")
    assert browser.get("/api/jobs").status_code == 401
    assert sign_in(browser, "dora", "another long password").status_code == 302
    accounts.set_disabled(db, "dora")
    assert browser.get("/api/jobs").status_code == 401
    assert sign_in(browser, "dora", "another long password").status_code == 401


def test_sign_in_redirects_to_the_page_asked_for_and_never_off_site(site):
    browser = site["app"].test_client()
    assert browser.get("/jobs").headers["Location"] == "/login?next=/jobs"
    assert sign_in(browser, "alice", next_path="/jobs").headers["Location"] == "/jobs"
    for hostile in ("https://evil.example/", "//evil.example/x", "/login", "javascript:alert(1)"):
        other = site["app"].test_client()
        assert sign_in(other, "alice", next_path=hostile).headers["Location"] == "/"


def test_a_wrong_password_says_so_and_the_eleventh_attempt_in_a_minute_is_refused(site):
    browser = site["app"].test_client()
    browser.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    for attempt in range(10):
        response = sign_in(browser, "alice", "wrong password!")
        assert response.status_code == 401, attempt
        assert "Wrong user name or password." in response.get_data(as_text=True)
    response = sign_in(browser, "alice")  # even the right password: the address is blocked
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    elsewhere = site["app"].test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.1.2.4"
    assert sign_in(elsewhere, "alice").status_code == 302  # others are not locked out
    failures = audit.recent(site["db"], action="sign_in_failed", actor="alice")
    assert len(failures) >= 10 and failures[0].address == "10.1.2.3"


def test_cookie_writes_need_the_csrf_token_and_the_apps_own_origin(site):
    browser = site["app"].test_client()
    sign_in(browser, "alice")
    upload = lambda: {"file": (site["csv"].open("rb"), "tiny.csv")}  # noqa: E731
    refused = browser.post("/api/jobs", data=upload())
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    token = browser.get_cookie("_csrf_token").value
    cross_site = browser.post(
        "/api/jobs", data=upload(), headers={"X-CSRFToken": token, "Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403 and cross_site.get_json()["error"]["code"] == "csrf_failed"
    accepted = browser.post("/api/jobs", data=upload(), headers={"X-CSRFToken": token, "Origin": "http://localhost"})
    assert accepted.status_code == 202, accepted.get_json()


def test_dash_callbacks_need_the_csrf_token_too(site):
    browser = site["app"].test_client()
    sign_in(browser, "alice")
    body = {"output": "x.children", "outputs": {"id": "x", "property": "children"}, "inputs": [], "changedPropIds": []}
    refused = browser.post("/_dash-update-component", json=body)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    token = browser.get_cookie("_csrf_token").value
    passed = browser.post("/_dash-update-component", json=body, headers={"X-CSRFToken": token})
    assert passed.status_code != 403  # past the guard (Dash itself then answers for the made-up callback)


def test_a_logout_ends_the_session_and_pages_are_not_cached(site):
    browser = site["app"].test_client()
    sign_in(browser, "alice")
    page = browser.get("/jobs")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert browser.get("/api/jobs").headers["Cache-Control"] == "no-store"
    token = browser.get_cookie("_csrf_token").value
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    assert browser.get("/api/jobs").status_code == 401
    assert browser.get("/jobs").status_code == 302


def test_session_cookies_are_httponly_and_samesite_lax(site):
    browser = site["app"].test_client()
    response = sign_in(browser, "alice")
    cookie = next(v for v in response.headers.getlist("Set-Cookie") if v.startswith("rtcheck_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_cookies_are_secure_behind_https(tmp_path):
    client = build_client(tmp_path, auth_required=True, public_url="https://rtcheck.lab.example/")
    accounts.add_user(client.db, "alice", PASSWORD)
    client.environ_base["HTTP_HOST"] = "rtcheck.lab.example"
    response = sign_in(client, "alice")
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies and all("Secure" in cookie for cookie in cookies)


def test_every_change_is_in_the_audit_trail_with_who_and_from_where(site):
    job = submit(site, "carol")
    site["as"]("carol", REMOTE_ADDR="10.9.8.7").post(f"/api/jobs/{job}/cancel")
    entries = [e for e in audit.recent(site["db"], actor="carol") if e.target == f"job {job}"]
    assert [e.action for e in entries][:2] in (["cancel", "submit"], ["submit"])
    printed = subprocess.run(
        [sys.executable, "-m", "store", "audit", "--user", "carol", "--url", site["db"].url],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"job {job}" in printed and "submit" in printed


def test_single_user_mode_answers_only_this_machine(tmp_path):
    client = build_client(tmp_path)  # AUTH_REQUIRED=false
    assert client.get("/api/jobs").status_code == 200
    client.environ_base["REMOTE_ADDR"] = "192.168.1.20"
    refused = client.get("/api/jobs")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "local_only"


def test_single_user_mode_still_refuses_writes_from_other_sites(tmp_path, tiny_csv):
    client = build_client(tmp_path)
    response = client.post(
        "/api/jobs", data={"file": (tiny_csv.open("rb"), "tiny.csv")}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "csrf_failed"
    refused = client.post("/_dash-update-component", json={})  # no CSRF token: a cross-site form
    assert refused.status_code == 403


def test_without_an_admin_production_refuses_to_start(tmp_path, postgres_url):
    from dashboard.factory import create_app
    from settings import Settings
    from store.db import Database
    from store.migrate import upgrade

    upgrade(Database(postgres_url))
    settings = Settings(
        _env_file=None,
        app_env="production",
        secret_key="k" * 40,
        database_url=postgres_url,
        redis_url="redis://127.0.0.1:6379/15",
        data_dir=tmp_path,
    )
    with pytest.raises(RuntimeError, match="no enabled admin account"):
        create_app(settings, start_background=False)
