"""WSGI entry point: ``flask --app app run`` or ``gunicorn app:app``."""

from b24app import create_app

app = create_app()
