"""``pipeline.run.heap``: planning, batches and parse workers pause Python's cyclic collector, and whoever
embeds the library gets it back exactly as it was, after an error too, however the pauses overlap."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from pipeline.errors import SeedRootError
from pipeline.run import heap
from pipeline.run.flow import plan
from pipeline.run.options import RunOptions


@pytest.fixture(autouse=True)
def _collector_on():
    gc.enable()
    yield
    gc.enable()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> weakref.ref:
    a, b = Node(), Node()
    a.other, b.other = b, a  # only the cyclic collector can free these two
    return weakref.ref(a)


def test_the_collector_is_off_in_the_block_and_back_after():
    with heap.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with heap.paused():
        pass
    assert not gc.isenabled()


def test_an_error_in_the_block_gives_the_collector_back():
    with pytest.raises(ValueError), heap.paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_overlapping_blocks_in_two_threads_restart_it_only_when_the_last_ends():
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with heap.paused():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    with heap.paused():
        t.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # this block ended, the other thread's has not
    leave.set()
    t.join(10)
    assert gc.isenabled()


def test_a_young_pass_frees_a_cycle_made_while_paused():
    with heap.paused():
        ref = _cycle()
        assert ref() is not None  # paused: nothing collects it on its own
        assert heap.collect_young() >= 2
        assert ref() is None


def test_planning_gives_the_collector_back_on_success_and_on_a_refused_folder(tmp_path):
    (tmp_path / "a.md").write_text("---\ntitle: A\n---\n", encoding="utf-8")
    p = plan(RunOptions(seed_dir=str(tmp_path), dry_run=True))
    assert p.todo == 1
    assert gc.isenabled()
    with pytest.raises(SeedRootError):
        plan(RunOptions(seed_dir=str(tmp_path / "missing"), dry_run=True))
    assert gc.isenabled()
