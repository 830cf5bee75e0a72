"""Accounts in a real browser, in both modes, with sign-in required: sign in, upload, analyse,
see only one's own jobs, sign out; the account page (password, API tokens); the admin page
(add, change and disable accounts, the audit trail); wrong passwords and too many of them
(last: the limit holds for a minute per client address)."""

from __future__ import annotations

import re

import pytest
import requests

from tests.e2e.test_browser import JOB_URL, upload, wait_for_grid
from tests.services import wait_until

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def people(signed_in_server):
    """alice signs in through the page; bob's job exists (submitted with his token) before she does."""
    for name in ("alice", "bob", "erin"):
        signed_in_server.store("users", "add", name, password=PASSWORD)
    signed_in_server.store("users", "add", "root", "--role", "admin", password=PASSWORD)
    return {"bob_token": signed_in_server.store("tokens", "create", "bob").strip()}


def sign_in(page, username: str, password: str) -> None:
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_load_state()


def jobs_in_grid(page) -> list[dict]:
    return page.evaluate(
        """() => { const out = []; dash_ag_grid.getApi('jobs-grid').forEachNode(n => out.push(n.data)); return out; }"""
    )


def test_sign_in_analyse_see_only_ones_own_jobs_and_sign_out(signed_in_server, people, page, tiny_csv, porcine_csv):
    server = signed_in_server
    bobs = requests.post(
        f"{server.url}/api/jobs",
        files={"file": ("bobs-peaks.csv", tiny_csv.read_bytes())},
        headers={"Authorization": f"Bearer {people['bob_token']}"},
        timeout=60,
    )
    assert bobs.status_code == 202, bobs.text
    page.goto(server.url + "/jobs")
    page.wait_for_url(re.compile(r".*/login\?next=/jobs$"))
    sign_in(page, "alice", PASSWORD)
    page.wait_for_url(re.compile(r".*/jobs$"))
    assert "alice · analyst" in page.inner_text("#signed-in")
    page.goto(server.url + "/")
    upload(page, str(porcine_csv))
    page.locator(".file-card", has_text="porcine_brain_gangliosides.csv").wait_for()
    page.click("#analyze-button")  # a background callback: it must act for alice
    # The address bar, read from the page: after the sign-in form's POST and redirect, this
    # Chromium no longer reports the page's own history.pushState moves to Playwright's page.url.
    page.wait_for_function("re => new RegExp(re).test(location.href)", arg=JOB_URL.pattern, timeout=90_000)
    job_id = re.search(r"/jobs/([0-9a-f-]{36})", page.evaluate("location.href")).group(1)
    page.wait_for_selector("#main-graph .js-plotly-plot", timeout=90_000)
    audit = server.store("audit", "--user", "alice")
    assert f"job {job_id}" in audit and "submit" in audit  # recorded as alice's
    page.click("a.nav-link:has-text('Jobs')")
    wait_for_grid(page, "jobs-grid")
    assert wait_until(lambda: {r["id"] for r in jobs_in_grid(page)} == {job_id}, 30)  # not bob's
    assert "bobs-peaks.csv" not in page.inner_text("body")
    # Bob's job page is "no such job" for her, as is its API
    page.goto(f"{server.url}/jobs/{bobs.json()['id']}")
    page.wait_for_selector("text=No such job")
    page.click("#sign-out")
    page.wait_for_url(re.compile(r".*/login$"))
    page.go_back()  # nothing private comes back from the cache
    page.wait_for_load_state()
    assert "porcine_brain_gangliosides.csv" not in page.inner_text("body")
    assert page.locator("#sign-in").count() == 1 or "/login" in page.url


def test_the_account_page_changes_the_password_and_makes_tokens_the_api_takes(signed_in_server, people, page):
    server = signed_in_server
    page.goto(server.url + "/account")
    sign_in(page, "erin", PASSWORD)
    page.wait_for_selector("#page-account")
    page.fill("#token-label", "nightly batch")
    page.click("#token-create")
    token = page.locator("#new-token").inner_text().strip()
    page.locator("#token-list", has_text="nightly batch").wait_for()

    def jobs():
        return requests.get(f"{server.url}/api/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=30)

    assert jobs().status_code == 200
    page.click("#token-list button:has-text('Revoke')")
    page.locator("#account-alert", has_text="Token revoked").wait_for()
    assert jobs().status_code == 401
    # A wrong current password changes nothing; the right one changes it
    page.fill("#password-current", "not my password")
    page.fill("#password-new", "a brand new passphrase")
    page.fill("#password-repeat", "a brand new passphrase")
    page.click("#password-save")
    page.locator("#account-alert", has_text="current password is not right").wait_for()
    page.fill("#password-current", PASSWORD)
    page.fill("#password-new", "a brand new passphrase")
    page.fill("#password-repeat", "a brand new passphrase")
    page.click("#password-save")
    page.locator("#account-alert", has_text="Password changed").wait_for()
    page.goto(server.url + "/jobs")  # this session carries on
    wait_for_grid(page, "jobs-grid")
    page.click("#sign-out")
    page.wait_for_url(re.compile(r".*/login$"))
    sign_in(page, "erin", "a brand new passphrase")
    assert "erin · analyst" in page.inner_text("#signed-in")
    audit = server.store("audit", "--user", "erin")
    assert "token_created" in audit and "token_revoked" in audit and "password_set" in audit


def test_the_admin_page_adds_changes_and_disables_accounts(signed_in_server, people, page, browser):
    server = signed_in_server
    page.goto(server.url + "/admin")
    sign_in(page, "root", PASSWORD)
    page.wait_for_selector("#page-admin")
    page.select_option("#admin-role", "viewer")
    page.fill("#admin-group", "lipids")
    page.fill("#admin-new-name", "carol")
    page.fill("#admin-new-password", PASSWORD)
    page.click("#admin-add")
    page.locator("#admin-alert", has_text="added carol").wait_for()
    carol_row = page.locator("#admin-users tr", has_text="carol")
    assert carol_row.inner_text().split() == ["carol", "viewer", "lipids", "active"]
    # Carol signs in elsewhere: a viewer may look but not analyse
    other = browser.new_context()
    carols = other.new_page()
    carols.goto(server.url + "/")
    sign_in(carols, "carol", PASSWORD)
    assert "carol · viewer" in carols.inner_text("#signed-in")
    # Promoted to analyst, then disabled: her session ends at her next request
    page.select_option("#admin-user", "carol")
    page.select_option("#admin-role", "analyst")
    page.click("#admin-apply")
    page.locator("#admin-alert", has_text="carol: role and group saved").wait_for()
    assert "analyst" in page.locator("#admin-users tr", has_text="carol").inner_text()
    page.click("#admin-disable")
    page.locator("#admin-alert", has_text="carol disabled").wait_for()
    carols.goto(server.url + "/jobs")
    carols.wait_for_url(re.compile(r".*/login\?next=/jobs$"))
    other.close()
    # An admin cannot lock themselves out
    page.select_option("#admin-user", "root")
    page.click("#admin-disable")
    page.locator("#admin-alert", has_text="cannot disable your own account").wait_for()
    # Every change is in the trail on the page, newest first, with who made it
    page.reload()
    wait_for_grid(page, "admin-audit")
    trail = page.evaluate(
        """() => { const out = []; dash_ag_grid.getApi('admin-audit').forEachNodeAfterFilterAndSort(
               n => out.push([n.data.actor, n.data.action, n.data.target])); return out; }"""
    )
    assert trail[:3] == [
        ["root", "user_disabled", "user carol"],
        ["root", "role_changed", "user carol"],
        ["carol", "sign_in", ""],
    ], trail[:5]


def test_a_wrong_password_says_so_and_the_eleventh_attempt_is_refused(signed_in_server, people, page):
    page.goto(signed_in_server.url + "/login")
    for attempt in range(10):
        sign_in(page, "alice", "not the password")
        assert "Wrong user name or password." in page.inner_text("#login-message"), attempt
    sign_in(page, "alice", PASSWORD)  # right, but too late for a minute
    assert "Too many attempts" in page.inner_text("#login-message")
    # The page answered 401 and then 429, as it should; those are the only console errors
    expected = ("status of 401", "status of 429")
    page.console_log.errors = [e for e in page.console_log.errors if not any(x in e for x in expected)]
