"""WSGI entry point: ``flask --app app run`` or ``gunicorn app:app``."""

import gc

from b24app import create_app

app = create_app()

# What the app built at start lives as long as the process: keep it out of the collector's
# full passes, which otherwise walk it again and again (bench/README.md, "gc.freeze").
gc.freeze()
