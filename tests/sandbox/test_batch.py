"""batch: sequential commands, limits, halt, references and PHP-shaped members."""

from __future__ import annotations

from urllib.parse import quote, urlencode

BATCH_KEYS = {"result", "result_error", "result_total", "result_next", "result_time"}


def run_batch(sandbox, cmd, halt=0, user_id=1):
    response = sandbox.rest("batch", {"halt": halt, "cmd": cmd}, user_id=user_id)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_commands_run_and_answer_per_key(sandbox):
    result = run_batch(
        sandbox,
        {
            "me": "profile",
            "admin": "user.admin",
            "deals": "crm.deal.list?" + urlencode({"order[ID]": "ASC", "select[]": "ID"}),
        },
    )
    assert set(result) == BATCH_KEYS
    assert result["result"]["me"]["ID"] == "1"
    assert result["result"]["admin"] is True
    assert len(result["result"]["deals"]) == 50
    assert result["result_error"] == []
    assert result["result_total"] == {"deals": 60}
    assert result["result_next"] == {"deals": 50}
    assert set(result["result_time"]) == {"me", "admin", "deals"}
    assert {"start", "finish", "duration"} <= set(result["result_time"]["me"])


def test_a_batch_counts_once_against_the_limit_but_logs_its_commands(sandbox):
    run_batch(sandbox, {"a": "profile", "b": "user.admin"})
    counts = sandbox.calls()["counts"]
    assert counts == {"batch": 1, "profile": 1, "user.admin": 1}


def test_errors_go_to_result_error_and_the_batch_still_answers_200(sandbox):
    result = run_batch(
        sandbox,
        {"ok": "profile", "bad": "no.such.method", "denied": "sale.order.list"},
        user_id=3,
    )
    assert result["result"] == {"ok": result["result"]["ok"]}
    assert result["result_error"]["bad"] == {
        "error": "ERROR_METHOD_NOT_FOUND",
        "error_description": "Method not found!",
    }
    assert result["result_error"]["denied"]["error"] == "200040300010"


def test_halt_stops_at_the_first_error(sandbox):
    result = run_batch(sandbox, {"a": "profile", "b": "no.such", "c": "user.admin"}, halt=1)
    assert list(result["result"]) == ["a"]
    assert list(result["result_error"]) == ["b"]
    assert "c" not in result["result_time"]


def test_halt_with_a_failing_first_command_leaves_empty_members_as_lists(sandbox):
    result = run_batch(sandbox, {"x": "no.such", "y": "profile"}, halt=1)
    assert result["result"] == []
    assert result["result_total"] == []
    assert result["result_next"] == []
    assert list(result["result_error"]) == ["x"]


def test_more_than_fifty_commands_is_refused(sandbox):
    cmd = {f"c{i}": "user.admin" for i in range(51)}
    response = sandbox.rest("batch", {"cmd": cmd})
    assert response.status_code == 400
    assert response.json()["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    assert sandbox.calls()["counts"].get("user.admin") is None
    exactly_fifty = run_batch(sandbox, {f"c{i}": "user.admin" for i in range(50)})
    assert len(exactly_fifty["result"]) == 50


def test_nested_batch_is_not_allowed(sandbox):
    result = run_batch(sandbox, {"inner": "batch?cmd[a]=profile"})
    assert result["result_error"]["inner"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"


def test_references_to_fields_and_list_rows(sandbox):
    result = run_batch(
        sandbox,
        {
            "first": "crm.deal.list?" + urlencode({"order[ID]": "DESC", "select[]": "ID"}),
            "same": "crm.deal.list?filter[ID]=$result[first][0][ID]&select[]=ID&select[]=TITLE",
            "me": "profile",
            "access": "user.access?ACCESS[]=U$result[me][ID]",
        },
        user_id=2,
    )
    assert result["result_error"] == []
    newest = result["result"]["first"][0]["ID"]
    assert [deal["ID"] for deal in result["result"]["same"]] == [newest]
    assert result["result"]["access"] is True


def test_list_shaped_cmd_gives_list_shaped_results(sandbox):
    result = run_batch(sandbox, ["profile", "user.admin"])
    assert isinstance(result["result"], list)
    assert result["result"][1] is True


def test_double_encoded_form_variant(sandbox):
    token = sandbox.token(2)["access_token"]
    command = "user.access?" + urlencode({"ACCESS[]": "U2"})
    body = f"auth={token}&halt=0&cmd[check]={quote(command, safe='')}&cmd[me]=profile"
    response = sandbox.http.post(
        f"{sandbox.url}/rest/batch",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["result"] == {"check": True, "me": result["result"]["me"]}
    assert result["result"]["me"]["ID"] == "2"


def test_commands_run_in_order_so_later_ones_see_earlier_writes(sandbox, sandbox_app_url):
    handler = f"{sandbox_app_url}/app"
    result = run_batch(
        sandbox,
        {
            "bind": f"placement.bind?PLACEMENT=CRM_DEAL_DETAIL_TAB&HANDLER={quote(handler)}",
            "list": "placement.get",
        },
    )
    assert result["result"]["bind"] is True
    assert [p["handler"] for p in result["result"]["list"]] == [handler]
