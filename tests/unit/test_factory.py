from b24app import create_app


def test_config_override_is_applied():
    app = create_app({"TESTING": True})
    assert app.testing


def test_healthz_answers_ok():
    client = create_app({"TESTING": True}).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
