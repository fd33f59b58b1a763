import pytest

from b24app.bitrix.errors import (
    AccessDenied,
    AlreadyBound,
    BatchLengthExceeded,
    BitrixError,
    ExpiredToken,
    InsufficientScope,
    InvalidArgument,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidToken,
    MethodError,
    MethodNotFound,
    NotFound,
    OAuthError,
    OperationTimeLimit,
    OrderNotFound,
    Overloaded,
    PaymentRequired,
    PortalGone,
    RateLimited,
    RelationNotFound,
    ServerError,
    UserAccessError,
    error_from_response,
    oauth_error_from_response,
)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "expired_token", ExpiredToken),
        (401, "NO_AUTH_FOUND", InvalidToken),
        (401, "invalid_token", InvalidToken),
        (403, "insufficient_scope", InsufficientScope),
        (403, "user_access_error", UserAccessError),
        (403, "ACCESS_DENIED", AccessDenied),
        (403, "INVALID_CREDENTIALS", AccessDenied),
        (403, "allowed_only_intranet_user", AccessDenied),
        (400, "201650000001", AlreadyBound),
        (400, "200540400001", OrderNotFound),
        (400, "201240400001", OrderNotFound),
        (400, "201640400004", RelationNotFound),
        (400, "NOT_FOUND", NotFound),
        (503, "QUERY_LIMIT_EXCEEDED", RateLimited),
        (429, "OPERATION_TIME_LIMIT", OperationTimeLimit),
        (503, "OVERLOAD_LIMIT", Overloaded),
        (500, "INTERNAL_SERVER_ERROR", ServerError),
        (500, "ERROR_UNEXPECTED_ANSWER", ServerError),
        (500, "PORTAL_DELETED", PortalGone),
        (400, "0", InvalidArgument),
        (400, "INVALID_ARG_VALUE", InvalidArgument),
        (200, "ERROR_ARGUMENT", InvalidArgument),
        (404, "ERROR_METHOD_NOT_FOUND", MethodNotFound),
        (400, "ERROR_BATCH_LENGTH_EXCEEDED", BatchLengthExceeded),
    ],
)
def test_documented_codes_map_to_their_exception(status, code, expected):
    error = error_from_response(status, {"error": code, "error_description": "text"})
    assert type(error) is expected
    assert isinstance(error, BitrixError)
    assert (error.code, error.description, error.status) == (code, "text", status)


def test_write_denied_code_is_told_apart_from_read_denied():
    write = error_from_response(
        400, {"error": "200040300020", "error_description": "Access Denied"}
    )
    read = error_from_response(400, {"error": "200040300010", "error_description": "Access Denied"})
    assert isinstance(write, AccessDenied) and write.write is True
    assert isinstance(read, AccessDenied) and read.write is False


def test_numeric_codes_sent_as_json_numbers_are_normalised_to_strings():
    error = error_from_response(
        400, {"error": 200540400001, "error_description": "order does not exist"}
    )
    assert isinstance(error, NotFound)
    assert error.code == "200540400001"
    zero = error_from_response(400, {"error": 0, "error_description": "error"})
    assert isinstance(zero, InvalidArgument) and zero.code == "0"


def test_empty_code_with_message_is_an_invalid_argument_or_access_denied():
    bad = error_from_response(
        400, {"error": "", "error_description": "Parameter 'filter' must be array."}
    )
    assert isinstance(bad, InvalidArgument)
    denied = error_from_response(400, {"error": "", "error_description": "Access denied."})
    assert isinstance(denied, AccessDenied) and denied.write is False


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, InvalidToken),
        (403, AccessDenied),
        (404, NotFound),
        (429, OperationTimeLimit),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (400, MethodError),
        (418, MethodError),
    ],
)
def test_unknown_codes_map_by_http_status(status, expected):
    error = error_from_response(status, {"error": "SOMETHING_NEW", "error_description": "?"})
    assert type(error) is expected
    assert error.code == "SOMETHING_NEW"


@pytest.mark.parametrize("body", [None, "not json", [], {"result": 1}, 42])
def test_bodies_without_an_error_never_crash(body):
    error = error_from_response(502, body)
    assert isinstance(error, ServerError)
    assert error.code == "HTTP_502"


def test_time_limit_reads_reset_time_from_the_time_block():
    body = {
        "error": "OPERATION_TIME_LIMIT",
        "error_description": "Method is blocked due to operation time limit.",
        "time": {"operating_reset_at": 1705765533, "operating": 481.2},
    }
    error = error_from_response(429, body)
    assert isinstance(error, OperationTimeLimit)
    assert error.reset_at == 1705765533.0
    assert error_from_response(429, {"error": "OPERATION_TIME_LIMIT"}).reset_at is None


def test_batch_entries_without_status_map_by_code():
    error = error_from_response(None, {"error": "insufficient_scope", "error_description": ""})
    assert isinstance(error, InsufficientScope)
    assert error.status is None
    assert isinstance(error_from_response(None, {"error": "WHATEVER"}), MethodError)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("invalid_grant", InvalidGrant),
        ("invalid_client", InvalidClient),
        ("invalid_request", InvalidRequest),
        ("PAYMENT_REQUIRED", PaymentRequired),
        ("something_else", OAuthError),
    ],
)
def test_oauth_server_errors_map_whatever_the_status(code, expected):
    for status in (200, 400, 401):
        error = oauth_error_from_response(status, {"error": code, "error_description": "d"})
        assert type(error) is expected
        assert isinstance(error, BitrixError)


def test_error_text_carries_code_and_description():
    error = error_from_response(
        400, {"error": "201650000001", "error_description": "Duplicate entry"}
    )
    assert str(error) == "201650000001: Duplicate entry"
    assert "AlreadyBound" in repr(error)
