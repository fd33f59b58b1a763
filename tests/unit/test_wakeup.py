"""Announcing a queued job: a failed NOTIFY is logged, never raised (the job is stored)."""

import logging
import threading
import time

from flask import Flask
from sqlalchemy.exc import OperationalError

from b24app.jobs import wakeup


class _Refusing:
    """An engine whose connections fail, like a database that just went away."""

    def connect(self):
        raise OperationalError("NOTIFY b24app_jobs", {}, Exception("server closed the connection"))

    begin = connect


def test_a_notify_that_fails_is_logged_and_the_request_goes_on(monkeypatch, caplog):
    monkeypatch.setattr(wakeup, "_postgres", lambda engine: True)
    monkeypatch.setattr(wakeup, "db", type("FakeDb", (), {"engine": object()})())
    monkeypatch.setattr(wakeup, "statement_engine", _Refusing)
    with caplog.at_level(logging.WARNING, logger="b24app.jobs.wakeup"):
        wakeup.announce()
    assert "NOTIFY failed" in caplog.text


def test_without_postgres_an_announcement_wakes_a_waiting_worker_of_this_process(monkeypatch):
    monkeypatch.setattr(wakeup, "_postgres", lambda engine: False)
    monkeypatch.setattr(wakeup, "db", type("FakeDb", (), {"engine": object()})())
    waiting = wakeup.Wakeup(Flask(__name__))
    woke = threading.Event()

    def wait():
        waiting.wait(60)
        woke.set()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    time.sleep(0.05)
    assert not woke.is_set()
    wakeup.announce()
    assert woke.wait(10)
