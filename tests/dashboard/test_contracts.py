"""Contracts kept in one place are the ones the docs, the OpenAPI document and the scripts use."""

from __future__ import annotations

import re

from dashboard import ids
from dashboard.errors import ERRORS
from dashboard.openapi import document
from tests.conftest import REPO


def test_docs_api_names_every_error_code_with_its_status():
    text = (REPO / "docs" / "api.md").read_text()
    rows = {
        code: int(status)
        for status, codes in re.findall(r"^\| (\d{3}) \| ([^|]+) \|", text, re.M)
        for code in re.findall(r"`([a-z_]+)`", codes)
    }
    assert rows == {code: status for code, (status, _) in ERRORS.items()}


def test_the_openapi_error_schema_lists_every_code():
    schema = document("/")["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
    assert schema["enum"] == list(ERRORS)


def test_clientside_ids_are_the_ids_of_dashboard_ids():
    script = (REPO / "assets" / "clientside.js").read_text()
    block = re.search(r"const IDS = \{(.*?)\};", script, re.S).group(1)
    used = set(re.findall(r':\s*"([a-z-]+)"', block))
    known = {value for name, value in vars(ids).items() if name.isupper() and isinstance(value, str)}
    assert used and used <= known, used - known
    # And no id is written into the script anywhere else.
    rest = script.replace(block, "")
    assert not [value for value in known if f'"{value}"' in rest or f"'#{value}" in rest]
