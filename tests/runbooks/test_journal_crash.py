"""The journal survives a dropped session: a writer killed with SIGKILL loses no event it committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbooks.journal import JOURNAL_NAME, Journal
from tests.conftest import ROOT

REPORTED = 50  # events the writer reports committed before it is killed

# The cockpit's part in a dropped SSH session: it writes as fast as it can and is killed without
# a chance to close, checkpoint or flush anything. Each line is printed only after its commit.
WRITER = """
import itertools
from runbooks.journal import Journal

journal = Journal()
incident = journal.start_incident("prod", ["lock-contention"], title="writes hang")
journal.add_runbook(incident, "replication-lag")
print("incident", incident, flush=True)
for k in itertools.count():
    step, summary = f"step-{k}", f"event {k}"
    if k % 3 == 0:
        kind = "probe"
        event = journal.record(incident, kind, runbook_id="lock-contention", step_id=step, status="fail",
                               summary=summary, data={"k": k}, duration_ms=1.5)
    elif k % 3 == 1:
        kind = "manual"
        event = journal.mark(incident, "lock-contention", step, "pass", summary)
    else:
        kind = "note"
        event = journal.note(incident, summary, runbook_id="lock-contention", step_id=step)
    print("wrote", k, event, kind, flush=True)
"""


def test_a_killed_writer_loses_no_committed_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("WARROOM_DATA_DIR", str(data))  # the writer and the reader find it alike
    lines: list[list[str]] = []
    deadline = time.monotonic() + 60
    # `with` kills it if the test fails early, and closes the pipes.
    with subprocess.Popen([sys.executable, "-u", "-c", WRITER], cwd=ROOT, env=dict(os.environ),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as writer:
        assert writer.stdout is not None and writer.stderr is not None
        try:
            while len(lines) < REPORTED + 1 and time.monotonic() < deadline:
                line = writer.stdout.readline()
                if not line:
                    break
                lines.append(line.split())
        finally:
            writer.send_signal(signal.SIGKILL)  # mid-loop: it is writing the next events
            writer.wait(timeout=10)
        # Through the same stream: readline() may have buffered lines already read from the pipe.
        rest, errors = writer.stdout.read(), writer.stderr.read()
    assert writer.returncode == -signal.SIGKILL, (writer.returncode, errors)
    # What it printed before the kill; a line the kill cut short reports nothing.
    lines += [line.split() for line in rest.splitlines(keepends=True) if line.endswith("\n")]
    assert lines and lines[0][0] == "incident", (lines[:3], errors)
    incident = int(lines[0][1])
    reported = {int(event): (int(k), kind) for _, k, event, kind in lines[1:]}
    assert len(reported) >= REPORTED, (len(reported), errors)
    # Nothing was checkpointed: the committed events are in the write-ahead log the reader must replay.
    wal = data / f"{JOURNAL_NAME}-wal"
    assert wal.exists() and wal.stat().st_size > 0

    # A new process (the operator's next session) reads the file the killed one left behind.
    with Journal() as journal:
        assert journal.path == data / JOURNAL_NAME
        assert journal.db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        found = journal.last_incident()
        assert found is not None and found.id == incident and found.status == "open"
        assert found.runbooks == ("lock-contention", "replication-lag") and found.title == "writes hang"
        events = {e.id: e for e in journal.events(incident)}
    for event_id, (k, kind) in reported.items():
        event = events.get(event_id)
        assert event is not None, f"event {k} (id {event_id}) was reported committed and is gone"
        assert (event.kind, event.step_id, event.summary) == (kind, f"step-{k}", f"event {k}"), event
        if kind == "probe":
            assert event.status == "fail" and event.data == {"k": k} and event.duration_ms == 1.5
    # At most the one event being written when the kill came is more; none is half there.
    assert sorted(events) == list(range(1, len(events) + 1))
    assert len(reported) <= len(events) <= len(reported) + 1
    assert all(e.summary == f"event {e.step_id.removeprefix('step-')}" for e in events.values())

