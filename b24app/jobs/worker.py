"""The job worker: ``flask --app app jobs worker``, or a thread inside another process."""

from __future__ import annotations

import logging
import threading
import time

import click
from flask import Flask
from flask.cli import AppGroup

from b24app.jobs.runner import run_once, run_until_idle, worker_name
from b24app.jobs.wakeup import Wakeup

log = logging.getLogger(__name__)

jobs_cli = AppGroup("jobs", help="Run bulk binding jobs.")


def work(
    app: Flask,
    stop: threading.Event,
    poll_interval: float,
    name: str,
    wakeup: Wakeup | None = None,
) -> None:
    """Run job steps until ``stop`` is set; when idle, rest until a job is announced or
    ``poll_interval`` seconds have passed."""
    log.info("job worker %s started", name)
    waiting = wakeup or Wakeup(app)
    try:
        while not stop.is_set():
            try:
                with app.app_context():
                    busy = run_once(name, slice_seconds=float(app.config["JOB_SLICE_SECONDS"]))
            except Exception:  # a worker must outlive one bad step; the lease hands it on
                log.exception("job worker %s: a step failed", name)
                busy = False
            if not busy and not stop.is_set():
                waiting.wait(poll_interval)
    finally:
        waiting.close()
    log.info("job worker %s stopped", name)


class WorkerThread:
    """A job worker in a daemon thread of this process (the dev runner, browser tests)."""

    def __init__(self, app: Flask, poll_interval: float = 1.0) -> None:
        self.app = app
        self.poll_interval = poll_interval
        self.name = worker_name()
        self._stop = threading.Event()
        self._wakeup = Wakeup(app)
        self._thread = threading.Thread(
            target=work,
            args=(app, self._stop, poll_interval, self.name, self._wakeup),
            name="job-worker",
            daemon=True,
        )

    def start(self) -> WorkerThread:
        """Start working."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current step."""
        self._stop.set()
        self._wakeup.interrupt()
        self._thread.join(timeout)


@jobs_cli.command("worker")
@click.option(
    "--poll",
    default=1.0,
    show_default=True,
    help="Seconds to rest when idle (on PostgreSQL a queued job wakes the worker at once).",
)
@click.option("--once", is_flag=True, help="Run until no job is left, then exit.")
def worker_command(poll: float, once: bool) -> None:
    """Run jobs (any number of workers on any number of hosts may run at once)."""
    from flask import current_app

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()
    name = worker_name()
    if once:
        click.echo(f"{run_until_idle(app, name)} job steps run")
        return
    try:
        work(app, stop, poll, name)
    except KeyboardInterrupt:
        stop.set()
        time.sleep(0)
