"""The label store under concurrent writers, crashes and outside edits of the labels file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.data.labels_io import read_labels
from judgealign.data.loading import load_labels
from judgealign.errors import DataError
from judgealign.labelling.session import LabellingSession
from judgealign.labelling.store import (
    Adjudication,
    LabelStore,
    adjudicated_path_for,
    store_path_for,
)
from judgealign.rubric import load_rubric

RUBRIC = load_rubric("ml-notebook")
DIM = "model_use"
N_ITEMS = 200

# One writer process: saves every item once as its rater, printing each confirmed save.
WRITER = """
import sys
from pathlib import Path
from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.labelling.session import LabellingSession
from judgealign.rubric import load_rubric
labels, rater, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
items = [Item(id=f"t{i}", output=f"text {i}") for i in range(n)]
s = LabellingSession(items, load_rubric("ml-notebook"), labels, rater=rater).load()
print("ready", flush=True)
for i in range(n):
    s.save(f"t{i}", "model_use", 1 + i % 3, f"{rater} on t{i}: " + "why " * 20)
    print(f"confirmed t{i}", flush=True)
"""


def items(n: int = N_ITEMS) -> list[Item]:
    return [Item(id=f"t{i}", output=f"text {i}") for i in range(n)]


def writer(labels: Path, rater: str, n: int = N_ITEMS) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(labels), rater, str(n)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_four_processes_lose_no_save(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    procs = [writer(labels, f"r{k}") for k in range(4)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert all(out.count("confirmed") == N_ITEMS for out in outputs)
    rows = read_labels(labels, RUBRIC)  # the export other commands read, still valid
    assert len(rows) == 4 * N_ITEMS
    assert {(lb.rater, lb.item) for lb in rows} == {
        (f"r{k}", f"t{i}") for k in range(4) for i in range(N_ITEMS)
    }
    assert all(lb.rationale.startswith(f"{lb.rater} on {lb.item}:") for lb in rows)
    with LabelStore(labels, RUBRIC) as store:
        history = store.history()
    assert len(history) == 4 * N_ITEMS and {c.kind for c in history} == {"save"}
    assert all(c.actor == c.rater and c.at.endswith("+00:00") for c in history)
    assert not list(tmp_path.glob(".labels.jsonl.*"))  # no temporary file left


def test_threads_lose_no_save(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    raters = [f"r{k}" for k in range(6)]
    s = LabellingSession(items(30), RUBRIC, labels, rater="r0", raters=raters).load()
    errors: list[BaseException] = []

    def run(rater: str) -> None:
        try:
            for i in range(30):
                s.save(f"t{i}", DIM, 2, f"{rater}", rater=rater)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(read_labels(labels, RUBRIC)) == 6 * 30
    assert s.saved_count == 6 * 30


def test_kill_9_mid_save_loses_nothing_confirmed(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    confirmed: set[str] = set()
    for attempt in range(4):
        proc = writer(labels, f"k{attempt}")
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        early = [proc.stdout.readline() for _ in range(3 + 5 * attempt)]
        time.sleep(0.004 * attempt)  # a different moment of the next save each time
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        lines = [*early, *out.splitlines()]
        got = {line.split()[1] for line in lines if line.startswith("confirmed")}
        assert len(got) < N_ITEMS  # killed mid-run, not after it
        confirmed |= {f"k{attempt}:{item}" for item in got}
        # Every save answered before the kill is in the labels file and in the store.
        in_file = {f"{lb.rater}:{lb.item}" for lb in read_labels(labels, RUBRIC)}
        assert confirmed <= in_file
        with LabelStore(labels, RUBRIC) as store:
            in_store = {f"{lb.rater}:{lb.item}" for lb in store.labels()}
        assert confirmed <= in_store
    assert confirmed, "the writer was killed before it confirmed anything"
    # The store opens cleanly after the crashes and keeps taking saves.
    s = LabellingSession(items(), RUBRIC, labels, rater="after").load()
    s.save("t0", DIM, 3)
    assert len(read_labels(labels, RUBRIC)) >= len(confirmed) + 1
    assert not list(tmp_path.glob(".labels.jsonl.*.tmp*"))


def test_outside_edits_are_taken_in_and_recorded(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    s = LabellingSession(items(3), RUBRIC, labels, rater="ann").load()
    s.save("t0", DIM, 1, "first")
    s.save("t1", DIM, 2, "second")
    # Someone edits the file by hand: changes t0, removes t1, adds a line of their own.
    lines = labels.read_text().splitlines()
    edited = json.loads(lines[0]) | {"score": 3, "rationale": "fixed by hand"}
    extra = {"item": "t2", "dimension": DIM, "score": 2, "rater": "cy", "note": "kept"}
    labels.write_text(json.dumps(edited) + "\n" + json.dumps(extra) + "\n")
    s.save("t2", DIM, 1, "mine")
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    assert rows[0]["rationale"] == "fixed by hand" and rows[0]["score"] == 3
    assert rows[1] == extra  # the outside line, byte for byte (its extra field kept)
    assert rows[2]["rater"] == "ann" and rows[2]["item"] == "t2"
    assert len(rows) == 3
    history = s.history(limit=50)
    kinds = [(c.kind, c.item, c.score, c.previous_score) for c in history]
    assert ("file", "t0", 3.0, 1.0) in kinds  # the hand edit, with what it replaced
    assert ("file", "t1", None, 2.0) in kinds  # the removed line is recorded, not silent
    assert ("file", "t2", 2.0, None) in kinds and kinds[-1] == ("save", "t2", 1.0, None)


def test_removed_file_is_written_again(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    s = LabellingSession(items(2), RUBRIC, labels, rater="ann").load()
    s.save("t0", DIM, 1)
    labels.unlink()
    assert [lb.item for lb in s.labels] == ["t0"]
    assert [lb.item for lb in read_labels(labels, RUBRIC)] == ["t0"]


def test_broken_outside_edit_refuses_saves_and_loses_nothing(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    s = LabellingSession(items(2), RUBRIC, labels, rater="ann").load()
    s.save("t0", DIM, 1)
    labels.write_text('{"item": "t0", "dimension": "model_use", "score": 9}\n')
    with pytest.raises(DataError, match="off the scale"):
        s.save("t1", DIM, 2)
    labels.unlink()  # the user gives up on the edit: the store still has the label
    assert [(lb.item, lb.score) for lb in s.labels] == [("t0", 1.0)]


def test_adjudicated_export_one_label_per_item(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    s = LabellingSession(items(3), RUBRIC, labels, rater="ann", raters=["ann", "bob"]).load()
    s.save("t0", DIM, 1, "a0", rater="ann")
    s.save("t0", DIM, 3, "b0", rater="bob")
    s.save("t1", DIM, 2, "a1", rater="ann")
    s.save("t1", DIM, 3, "b1", rater="bob")
    s.save("t2", DIM, 0, "n/a", rater="ann")
    s.adjudicate("t0", DIM, 2, "both half right", "cy")
    out = adjudicated_path_for(labels)
    assert out.name == "labels.adjudicated.jsonl"
    consensus = {lb.item: lb for lb in load_labels(out, RUBRIC)}
    assert (consensus["t0"].score, consensus["t0"].rater) == (2.0, "adjudicated")
    assert (consensus["t1"].score, consensus["t1"].rater) == (2.5, "mean")
    assert "ann: a1" in consensus["t1"].rationale and "bob: b1" in consensus["t1"].rationale
    assert (consensus["t2"].score, consensus["t2"].rater) == (0.0, "ann")
    # The raters' own labels stay in the labels file, unchanged by the adjudication.
    assert len(read_labels(labels, RUBRIC)) == 5
    s.adjudicate("t0", DIM, 3, "on second thought", "cy")
    history = [c for c in s.history() if c.kind == "adjudicate"]
    assert [(c.score, c.previous_score, c.actor) for c in history] == [
        (2.0, None, "cy"),
        (3.0, 2.0, "cy"),
    ]


def test_csv_labels_file(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    s = LabellingSession(items(2), RUBRIC, labels, rater="ann").load()
    s.save("t0", DIM, 2, 'quote " and, comma')
    s.save("t1", DIM, 0)
    assert [(lb.item, lb.score, lb.rationale) for lb in read_labels(labels, RUBRIC)] == [
        ("t0", 2.0, 'quote " and, comma'),
        ("t1", 0.0, ""),
    ]
    assert store_path_for(labels).name == "labels.csv.db"


def test_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    with LabelStore(labels, RUBRIC) as store:
        store.put(Label(item="t0", dimension=DIM, score=1, rater="ann"))
        store.conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(DataError, match="newer judgealign"):
        LabelStore(labels, RUBRIC).open()


def test_adjudication_model_roundtrip() -> None:
    a = Adjudication(
        item="t0", dimension=DIM, score=2, rationale="", adjudicator="cy", updated_at="x"
    )
    assert Adjudication.model_validate_json(a.model_dump_json()) == a
