"""`bulk_read`: the collector is paused inside, back afterwards, and nothing made inside is lost to it."""

from __future__ import annotations

import gc
import weakref

from trajectories.lineage import bulk_read


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_the_collector_is_paused_inside_and_back_afterwards() -> None:
    assert gc.isenabled()
    with bulk_read():
        assert not gc.isenabled()
        with bulk_read():  # nested: the outer block's pause holds
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_objects_made_inside_do_not_start_a_pass_when_the_block_ends() -> None:
    passes: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        with bulk_read():
            kept = [{"n": i} for i in range(50_000)]  # counted as new while paused
        after = [[] for _ in range(200)]  # re-enabled as is, the first of these starts a pass over all 50,000
    finally:
        gc.callbacks.remove(seen)
    assert passes == []
    assert gc.get_freeze_count() == 0  # moved to the oldest generation, not left frozen
    assert len(kept) == 50_000 and len(after) == 200


def test_a_cycle_made_inside_is_still_collected() -> None:
    with bulk_read():
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        probe = weakref.ref(a)
        del a, b
    assert probe() is not None  # a cycle: reference counting alone does not free it
    gc.collect()
    assert probe() is None
