"""The process-wide cache of compiled templates: compile once, recompile an edited one."""

from __future__ import annotations

from jinja2 import DictLoader, Environment

from b24app.templating import ProcessBytecodeCache


def environment(cache: ProcessBytecodeCache, source: str, compiled: list[str]) -> Environment:
    """A fresh environment on ``cache`` that notes each template it compiles."""

    class Counting(Environment):
        def _compile(self, source: str, filename: str):  # type: ignore[override]
            compiled.append(filename)
            return super()._compile(source, filename)

    return Counting(loader=DictLoader({"page.html": source}), bytecode_cache=cache)


def test_a_new_environment_reuses_the_compiled_template():
    cache, compiled = ProcessBytecodeCache(), []
    first = environment(cache, "Hello {{ name }}", compiled).get_template("page.html")
    second = environment(cache, "Hello {{ name }}", compiled).get_template("page.html")

    assert first.render(name="Anna") == second.render(name="Anna") == "Hello Anna"
    assert len(compiled) == 1


def test_an_edited_template_is_compiled_again():
    cache, compiled = ProcessBytecodeCache(), []
    environment(cache, "Hello {{ name }}", compiled).get_template("page.html")
    edited = environment(cache, "Bye {{ name }}", compiled).get_template("page.html")

    assert edited.render(name="Anna") == "Bye Anna"
    assert len(compiled) == 2


def test_clearing_forgets_what_was_compiled():
    cache, compiled = ProcessBytecodeCache(), []
    environment(cache, "Hi", compiled).get_template("page.html")
    cache.clear()
    environment(cache, "Hi", compiled).get_template("page.html")

    assert len(compiled) == 2
