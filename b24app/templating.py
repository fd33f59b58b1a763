"""Compiled templates shared by every app the process builds.

Jinja compiles a template's source to Python code the first time an environment loads it.
Production builds one app per worker, but the test suite builds one per test, and each new
environment would compile every template it renders again. The cache below keeps the
compiled code for the process, keyed by template and checked against the source's
checksum, so an edited template is compiled afresh.
"""

from __future__ import annotations

import threading

from jinja2.bccache import Bucket, BytecodeCache


class ProcessBytecodeCache(BytecodeCache):
    """Jinja's bytecode cache held in memory for the life of the process."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        """Fill the bucket from the cache; Jinja drops it when the source has changed."""
        with self._lock:
            data = self._compiled.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Keep the bucket's freshly compiled code."""
        data = bucket.bytecode_to_string()
        with self._lock:
            self._compiled[bucket.key] = data

    def clear(self) -> None:
        """Forget every compiled template."""
        with self._lock:
            self._compiled.clear()


COMPILED = ProcessBytecodeCache()
