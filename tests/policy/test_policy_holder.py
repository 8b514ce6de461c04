"""PolicyHolder: a broken policy never takes effect; the last good one stays in force."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.errors import PolicyError
from broker.paths import project_dir
from broker.policy import PolicyHolder, make_input

NOW = datetime(2023, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(project_dir("policies"), target)
    return target


def resident_in_italy():
    return make_input(provider="pin", now=NOW, fiscal_code="RSSMRA80A01H501U",
                      attributes={"pin_privilege": "dispositivo", "pin_kind": "standard"},
                      identity={"residence": "italy", "italian_document": True})


def test_broken_at_start_refuses(folder: Path) -> None:
    (folder / "pin.yaml").write_text("version: 1\nrules:\n  - id: x\n    bogus: 1\n")
    with pytest.raises(PolicyError) as info:
        PolicyHolder(folder)
    assert any(p.startswith(f"{folder / 'pin.yaml'}:3: ") for p in info.value.problems)


def test_reload_keeps_last_good_engine_when_broken(folder: Path) -> None:
    holder = PolicyHolder(folder)
    before = holder.engine
    assert not holder.engine.decide(resident_in_italy()).allow

    pin = folder / "pin.yaml"
    # an admin deletes the 2021 restriction but leaves a typo behind
    text = pin.read_text()
    broken = text.split("  - id: pin-only-abroad-since-2021")[0] + "  - id: oops\n    whn: {}\n"
    pin.write_text(broken)
    problems = holder.reload()
    assert problems
    assert any(p.startswith(f"{pin}:") and "whn: unknown key" in p for p in problems)
    assert holder.engine is before
    assert holder.problems == problems
    # the restriction is still in force
    d = holder.engine.decide(resident_in_italy())
    assert not d.allow and d.reason == "pin_not_eligible"


def test_reload_takes_a_good_change(folder: Path) -> None:
    holder = PolicyHolder(folder)
    pin = folder / "pin.yaml"
    pin.write_text(pin.read_text().split("  - id: pin-only-abroad-since-2021")[0])
    assert holder.reload() == []
    assert holder.problems == []
    d = holder.engine.decide(resident_in_italy())
    assert d.allow and d.reason == "pin-dispositivo"


def test_reload_when_folder_vanishes(folder: Path) -> None:
    holder = PolicyHolder(folder)
    before = holder.engine
    shutil.rmtree(folder)
    assert holder.reload()
    assert holder.engine is before


def test_readers_never_see_a_half_loaded_engine(folder: Path) -> None:
    """Reloads alternating good and broken files while other threads decide."""
    holder = PolicyHolder(folder)
    good = (folder / "cns.yaml").read_text()
    full = len(holder.engine.rules)
    errors: list[BaseException] = []
    seen: set[int] = set()
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                engine = holder.engine
                seen.add(len(engine.rules))
                assert not engine.decide(resident_in_italy()).allow
        except BaseException as exc:
            errors.append(exc)

    def reloader() -> None:
        try:
            for i in range(20):
                (folder / "cns.yaml").write_text(good if i % 2 else "version: 1\nrules: [\n")
                holder.reload()
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    reloaders = [threading.Thread(target=reloader) for _ in range(2)]
    for t in readers + reloaders:
        t.start()
    for t in reloaders:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert seen == {full}  # a broken cns.yaml never removed the CNS rule
    (folder / "cns.yaml").write_text(good)
    assert holder.reload() == []
