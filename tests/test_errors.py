"""Fail or retry: every class of the error tree decides for itself, the tree in ``pipeline.errors``' docstring
shows the same decision, and ``fail_fast_as`` turns only the ``fail`` ones into the caller's failure."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import pipeline
from pipeline import errors
from pipeline.errors import (
    ClusterNotReady,
    ConfigError,
    LedgerError,
    SeedNewsError,
    SeedRootError,
    ValidationFailed,
    fail_fast_as,
)

TREE_LINE = re.compile(r"^[\s│├└─]*(\w+)\s+(retry|fail)\s", re.MULTILINE)


class Stop(Exception):
    """Stands in for Airflow's ``AirflowFailException``."""


def _tree_classes() -> list[type[SeedNewsError]]:
    """``SeedNewsError`` and every subclass any ``pipeline`` module defines."""
    for m in pkgutil.walk_packages(pipeline.__path__, "pipeline."):
        if m.name != "pipeline.__main__":
            importlib.import_module(m.name)
    found: list[type[SeedNewsError]] = []
    todo: list[type[SeedNewsError]] = [SeedNewsError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(c for c in cls.__subclasses__() if c.__module__.startswith("pipeline."))
    return found


def test_every_error_class_decides_fail_or_retry_itself():
    classes = _tree_classes()
    assert len(classes) >= 15
    undecided = [c.__name__ for c in classes if not isinstance(vars(c).get("retryable"), bool)]
    assert not undecided, f"set retryable on each of: {undecided}"


def test_the_docstring_tree_shows_each_decision():
    shown = {name: word == "retry" for name, word in TREE_LINE.findall(errors.__doc__ or "")}
    assert shown == {c.__name__: c.retryable for c in _tree_classes()}


@pytest.mark.parametrize("exc", [SeedRootError("seed folder '/x' does not exist"), ValidationFailed("7 missing")])
def test_a_fail_class_becomes_the_callers_failure_with_the_same_message(exc):
    with pytest.raises(Stop) as raised, fail_fast_as(Stop):
        raise exc
    assert str(raised.value) == str(exc) and raised.value.__cause__ is exc


@pytest.mark.parametrize("exc", [ClusterNotReady("red"), LedgerError("2 entries not written"), OSError("reset")])
def test_a_retry_class_and_any_other_error_pass_through_unchanged(exc):
    with pytest.raises(type(exc)) as raised, fail_fast_as(Stop):
        raise exc
    assert raised.value is exc


def test_nothing_raised_nothing_changed():
    with fail_fast_as(Stop):
        value = ConfigError.retryable
    assert value is False
