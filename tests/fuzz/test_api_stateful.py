"""Stateful fuzzing: linked sequences (bind, bindings, unbind, history, undo, jobs).

The served document gets OpenAPI links between the operations whose answers name what the
next call acts on; schemathesis then walks them as a state machine with a real session.
Each step gets the checks of the single-operation fuzzing, the portal watch included.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput

from tests.fuzz.conftest import FuzzTarget, fuzz_examples, fuzz_settings
from tests.fuzz.test_api_fuzz import CONFIG, Runner


def _ref(path: str, method: str) -> str:
    """A JSON pointer to an operation of the document."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


BIND = ("/api/bindings", "post")
# source (path, method, status) -> {link name: (target path, method, parameters, body)}
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str], Any]]] = {
    ("/api/orders", "get", "200"): {
        "OrderBinding": (
            "/api/bindings",
            "get",
            {"query.orderId": "$response.body#/items/0/id"},
            None,
        ),
        "BindFirstOrder": (
            "/api/bindings",
            "post",
            {},
            {"orderId": "$response.body#/items/0/id", "ownerTypeId": 2, "ownerId": 1},
        ),
    },
    ("/api/owners", "get", "200"): {
        "OwnerOrders": (
            "/api/bindings",
            "get",
            {
                "query.ownerTypeId": "$response.body#/items/0/ownerTypeId",
                "query.ownerId": "$response.body#/items/0/id",
            },
            None,
        ),
        "BindToFirstOwner": (
            "/api/bindings",
            "post",
            {},
            {
                "orderId": 1,
                "ownerTypeId": "$response.body#/items/0/ownerTypeId",
                "ownerId": "$response.body#/items/0/id",
            },
        ),
    },
    ("/api/bindings", "post", "200"): {
        "ReadBinding": (
            "/api/bindings",
            "get",
            {"query.orderId": "$response.body#/binding/orderId"},
            None,
        ),
        "Unbind": (
            "/api/bindings/{order_id}",
            "delete",
            {
                "path.order_id": "$response.body#/binding/orderId",
                "query.ownerTypeId": "$response.body#/binding/ownerTypeId",
                "query.ownerId": "$response.body#/binding/ownerId",
            },
            None,
        ),
        "UndoBind": (
            "/api/history/{record_id}/undo",
            "post",
            {"path.record_id": "$response.body#/historyId"},
            None,
        ),
    },
    ("/api/bindings/{order_id}", "delete", "200"): {
        "UndoUnbind": (
            "/api/history/{record_id}/undo",
            "post",
            {"path.record_id": "$response.body#/historyId"},
            None,
        ),
    },
    ("/api/history", "get", "200"): {
        "UndoNewest": (
            "/api/history/{record_id}/undo",
            "post",
            {"path.record_id": "$response.body#/items/0/id"},
            None,
        ),
    },
    ("/api/history/{record_id}/undo", "post", "200"): {
        "UndoTheUndo": (
            "/api/history/{record_id}/undo",
            "post",
            {"path.record_id": "$response.body#/historyId"},
            None,
        ),
    },
    ("/api/jobs/bind", "post", "202"): {
        "JobState": ("/api/jobs/{job_id}", "get", {"path.job_id": "$response.body#/job/id"}, None),
        "JobItems": (
            "/api/jobs/{job_id}/items",
            "get",
            {"path.job_id": "$response.body#/job/id"},
            None,
        ),
        "CancelJob": (
            "/api/jobs/{job_id}/cancel",
            "post",
            {"path.job_id": "$response.body#/job/id"},
            None,
        ),
        "RetryJob": (
            "/api/jobs/{job_id}/retry-failed",
            "post",
            {"path.job_id": "$response.body#/job/id"},
            None,
        ),
        "UndoJob": (
            "/api/jobs/{job_id}/undo",
            "post",
            {"path.job_id": "$response.body#/job/id"},
            None,
        ),
    },
    ("/api/jobs", "get", "200"): {
        "NewestJob": (
            "/api/jobs/{job_id}",
            "get",
            {"path.job_id": "$response.body#/items/0/id"},
            None,
        ),
        "CancelNewestJob": (
            "/api/jobs/{job_id}/cancel",
            "post",
            {"path.job_id": "$response.body#/items/0/id"},
            None,
        ),
    },
}


def linked(document: dict[str, Any]) -> dict[str, Any]:
    """Add the links to the document (in place) and return it."""
    for (path, method, status), links in LINKS.items():
        answer = document["paths"][path][method]["responses"][status]
        answer["links"] = {
            name: {
                "operationRef": _ref(target, target_method),
                **({"parameters": parameters} if parameters else {}),
                **({"requestBody": body} if body is not None else {}),
            }
            for name, (target, target_method, parameters, body) in links.items()
        }
    return document


def test_the_links_name_real_operations(fuzz_target: FuzzTarget) -> None:
    document = linked(fuzz_target.app.test_client().get("/api/openapi.json").get_json())
    schema = schemathesis.openapi.from_dict(document)
    for (path, method, _), links in LINKS.items():
        assert schema[path][method.upper()] is not None
        for target, target_method, _, _ in links.values():
            assert schema[target][target_method.upper()] is not None


def test_linked_sequences(fuzz_target: FuzzTarget) -> None:
    document = linked(fuzz_target.app.test_client().get("/api/openapi.json").get_json())
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    schema.app = fuzz_target.app
    runner = Runner(fuzz_target)

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        """Every step through the runner: the administrator's session, every check, the watch."""

        def step(self, input: StepInput) -> StepOutput:
            return StepOutput(runner.run(input.case), input.case)

    # Sequences of up to ten steps; as many sequences as the single-operation runs have
    # cases, over the ten or so operations the links reach.
    Machine.run(settings=fuzz_settings(max(5, fuzz_examples() // 10), stateful_step_count=10))
    linked_statuses = set(runner.tally.statuses)
    print(f"stateful: {runner.tally.total} calls, {runner.tally.describe()}")
    assert runner.tally.total > 0
    assert linked_statuses & {200, 202}, runner.tally.describe()
