"""Schemathesis against ``/api/openapi.json``, with a real session on an installed portal.

Each operation gets ``FUZZ_EXAMPLES`` generated cases, valid and invalid by the schema
(positive and negative modes), sent in-process (WSGI) to the app, which talks to the
sandbox portal over real HTTP. Every answer must conform to the document (status, content
type, response schema); invalid data must be refused; no 5xx but the documented 502/503;
every error is ``{"error": {"code", "message", ...}}``; and a refused request leaves the
portal exactly as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (  # type: ignore[attr-defined]
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.conftest import (
    FuzzTarget,
    assert_error_shape,
    assert_no_server_error,
    fuzz_settings,
)

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
OPERATIONS = [
    (method.upper(), path)
    for path, item in json.loads(DOCUMENT.read_text())["paths"].items()
    for method in item
]
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


# The session header is the runner's to choose (see CREDENTIALS): generated cases leave it
# alone, so that a case's invalid parts are never hidden behind a header put back on it.
CONFIG = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})

# Who sends a case: mostly the store administrator; sometimes the store manager and the
# employee (whose writes are refused), no session, a forged one, another scheme, or an
# arbitrary Authorization header.
_RAW_HEADER = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(
    lambda text: f"raw:{text.strip()}"
)
CREDENTIALS = st.sampled_from(
    ["admin"] * 6 + ["manager", "employee", "none", "forged", "basic", "empty", "raw"]
).flatmap(lambda credential: _RAW_HEADER if credential == "raw" else st.just(credential))


def live_schema(target: FuzzTarget) -> Any:
    """Load the document the running app serves (in-process: requests go through WSGI)."""
    return schemathesis.openapi.from_wsgi("/api/openapi.json", target.app, config=CONFIG)


def test_the_served_document_is_the_committed_one(fuzz_target: FuzzTarget) -> None:
    served = fuzz_target.app.test_client().get("/api/openapi.json")
    assert served.status_code == 200
    assert served.get_json() == json.loads(DOCUMENT.read_text())


class Tally:
    """What a run saw: statuses, and the documented upstream answers among them."""

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.codes: dict[str, int] = {}

    def add(self, status: int, code: str | None = None) -> None:
        """Count one answer (and its error code)."""
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if code:
            self.codes[code] = self.codes.get(code, 0) + 1

    def describe(self) -> str:
        """The statuses seen, with how often."""
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.codes.items()))
        return f"{statuses} ({codes})"

    @property
    def total(self) -> int:
        """How many cases ran."""
        return sum(self.statuses.values())


# Ids the seeded portal has (orders 1-120, deals 1-60, invoices 1-30) and a few it has not,
# so that valid requests also find real orders and owners and bind, rebind and unbind them.
SMALL_ID = st.integers(min_value=1, max_value=130)
OWNER_TYPE = st.one_of(st.sampled_from([2, 31]), st.sampled_from([5, 1, 3]))
_REALISTIC = {
    "orderId": SMALL_ID,
    "order_id": SMALL_ID,
    "ownerId": SMALL_ID,
    "ownerTypeId": OWNER_TYPE,
    "type": OWNER_TYPE,
    "record_id": st.integers(min_value=1, max_value=40),
    "job_id": st.integers(min_value=1, max_value=10),
}


@st.composite
def realistic(draw: st.DrawFn, operation: Any) -> Any:
    """A valid case whose ids are drawn from what the portal and the app hold."""
    case = draw(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    for values in (case.query, case.path_parameters, case.body):
        if not isinstance(values, dict):
            continue
        for key in list(values):
            if key in _REALISTIC and isinstance(values[key], int):
                values[key] = draw(_REALISTIC[key])
            elif key == "orderIds" and isinstance(values[key], list):
                values[key] = [draw(SMALL_ID) for _ in values[key]]
    return case


def cases_of(operation: Any) -> st.SearchStrategy[Any]:
    """Valid cases (random and realistic ids) and invalid ones, in equal shares."""
    return st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        realistic(operation),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


class Runner:
    """Sends cases as one user and checks each answer and the portal after it.

    The portal's fingerprint after one case is the one before the next: nothing else
    touches the portal while a fuzz test runs.
    """

    def __init__(self, target: FuzzTarget) -> None:
        self.target = target
        self.tally = Tally()
        self.last = target.watch.fingerprint()

    def authorization(self, credential: str) -> dict[str, str]:
        """The Authorization header of one credential."""
        sessions = self.target.sessions
        headers = {
            "admin": f"Bearer {sessions[1]}",
            "manager": f"Bearer {sessions[2]}",
            "employee": f"Bearer {sessions[3]}",
            "forged": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "basic": "Basic YWRtaW46YWRtaW4=",
            "empty": "Bearer ",
        }
        if credential.startswith("raw:"):
            return {"Authorization": credential.removeprefix("raw:")}
        return {"Authorization": headers[credential]} if credential in headers else {}

    def run(self, case: Any, credential: str = "admin") -> Any:
        """Send one case as ``credential``, check it and return the answer."""
        what = f"{case.method} {case.formatted_path} as {credential}"
        response = case.call(headers=self.authorization(credential))
        before, self.last = self.last, self.target.watch.fingerprint()
        assert_no_server_error(response.status_code, what)
        case.validate_response(response, checks=CHECKS)
        if response.status_code < 400:
            self.tally.add(response.status_code)
            return response
        body = response.json()
        assert_error_shape(response.status_code, body, what)
        self.tally.add(response.status_code, body["error"]["code"])
        self.target.watch.assert_same(before, self.last, what)
        return response


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation(fuzz_target: FuzzTarget, method: str, path: str) -> None:
    """Valid and invalid requests of one operation, mostly as the store administrator."""
    operation = live_schema(fuzz_target)[path][method]
    runner = Runner(fuzz_target)

    @fuzz_settings()
    @given(case=cases_of(operation), credential=CREDENTIALS)
    def fuzz(case: Any, credential: str) -> None:
        runner.run(case, credential)

    fuzz()
    assert runner.tally.total > 0
    print(f"{method} {path}: {runner.tally.total} cases, {runner.tally.describe()}")
