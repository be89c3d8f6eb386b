"""Fuzzing the project loader: mutated ``.canvas`` files load or fail with ``ProjectError``, never
anything else, never hang, and never write a byte anywhere.

The budget is small by default (CI); ``CANVAS_APP_LONG_FUZZ=1`` runs the ``fuzz_long`` test with
a larger one. Mutations work at three levels: raw bytes of the archive, entries of the zip, and
values inside ``canvas/document.json``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canvas_app.core.document import Document
from canvas_app.core.project_file import DOCUMENT_JSON, ProjectError, load_project, save_project

LONG = os.environ.get("CANVAS_APP_LONG_FUZZ") == "1"
SMALL_BUDGET, LONG_BUDGET = 60, 3000
HANG_S = 30  # one load taking this long counts as a hang


def _valid_project(folder: Path) -> bytes:
    doc = Document()
    rng = np.random.default_rng(0)
    doc.paste(-20, -10, rng.integers(0, 256, (40, 300, 4), dtype=np.uint8))
    doc.fill_mask(0, 0, 30, 30)
    frame = doc.add_frame(x=0, y=0, w=64, h=64, prompt="a red house", seed=3)
    doc.update_frame(frame.id, negative_prompt="blur")
    path = folder / "valid.canvas"
    save_project(doc, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _valid_project(tmp_path_factory.mktemp("fuzz-src"))


def _entries(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names are one of the mutations
        for name, blob in entries:
            zf.writestr(name, blob, zipfile.ZIP_STORED)
    return buf.getvalue()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _set(root: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return root


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    kind = draw(st.sampled_from(["bytes", "truncate", "entries", "json", "json", "tile"]))
    if kind == "bytes":
        data = bytearray(valid)
        for _ in range(draw(st.integers(1, 16))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if kind == "truncate":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    entries = _entries(valid)
    if kind == "entries":
        op = draw(st.sampled_from(["drop", "duplicate", "rename", "swap", "junk"]))
        i = draw(st.integers(0, len(entries) - 1))
        if op == "drop":
            entries.pop(i)
        elif op == "duplicate":
            entries.append(entries[i])
        elif op == "rename":
            name = draw(
                st.sampled_from(["../x", "/abs", "C:\\x", "canvas/image/9_9.png", "a\0b", "", "mimetype"])
            )
            entries[i] = (name, entries[i][1])
        elif op == "swap":
            j = draw(st.integers(0, len(entries) - 1))
            entries[i], entries[j] = (entries[i][0], entries[j][1]), (entries[j][0], entries[i][1])
        else:
            entries[i] = (entries[i][0], draw(st.binary(max_size=300)))
        return _zip(entries)
    if kind == "json":
        at = next(i for i, (n, _) in enumerate(entries) if n == DOCUMENT_JSON)
        meta = json.loads(entries[at][1])
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(_paths(meta)))
            meta = _set(meta, path, draw(json_values))
        entries[at] = (DOCUMENT_JSON, json.dumps(meta).encode())
        return _zip(entries)
    # A tile replaced by a PNG of another size, mode or content, or by a corrupted one.
    tiles = [i for i, (n, _) in enumerate(entries) if n.startswith("canvas/")]
    i = draw(st.sampled_from(tiles))
    shape = draw(st.sampled_from([(256, 256, 4), (256, 256), (255, 256, 4), (1, 1, 3), (256, 256, 3)]))
    buf = io.BytesIO()
    from PIL import Image

    Image.fromarray(np.full(shape, draw(st.integers(0, 255)), np.uint8)).save(buf, format="PNG")
    blob = bytearray(buf.getvalue())
    if draw(st.booleans()) and len(blob) > 40:
        blob[draw(st.integers(8, len(blob) - 1))] ^= 0xFF
    entries[i] = (entries[i][0], bytes(blob))
    return _zip(entries)


class _Hang(Exception):
    pass


def _on_alarm(_sig: int, _frame: object) -> None:
    raise _Hang()


def check_one(data: bytes, folder: Path) -> str:
    """Load one mutated file; returns "loaded" or "refused" and fails on anything else."""
    for old in folder.iterdir():
        old.unlink()
    target = folder / "fuzz.canvas"
    target.write_bytes(data)
    before = target.stat().st_mtime_ns
    use_alarm = sys.platform != "win32"
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(HANG_S)
    try:
        try:
            doc = load_project(target, max_bytes=256 * 2**20)
            outcome = "loaded"
        except ProjectError as exc:
            assert str(exc), "an error without a message"
            outcome = "refused"
        except _Hang:
            pytest.fail(f"loading hung for {HANG_S} s")
    finally:
        if use_alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    assert target.read_bytes() == data and target.stat().st_mtime_ns == before
    assert [p.name for p in folder.iterdir()] == ["fuzz.canvas"], "the loader wrote a file"
    if outcome == "loaded":
        # Whatever loads must also save and load back to the same document.
        again = folder / "again.canvas"
        save_project(doc, again)
        back = load_project(again)
        assert back.frames == doc.frames and back.image.bounds() == doc.image.bounds()
        again.unlink()
    return outcome


def _run(valid: bytes, tmp_path: Path, budget: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    work = tmp_path / "work"
    work.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # anything written relative to the working folder would show here
    seen = {"loaded": 0, "refused": 0}

    @settings(
        max_examples=budget,
        deadline=None,
        database=None,
        derandomize=not LONG,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        seen[check_one(data.draw(mutated(valid)), work)] += 1

    fuzz()
    assert list(cwd.iterdir()) == []
    return seen


def test_fuzzed_projects_load_or_fail_clearly(
    valid: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _run(valid, tmp_path, SMALL_BUDGET, monkeypatch)
    print(f"fuzz: {seen}")
    assert sum(seen.values()) >= SMALL_BUDGET // 2
    assert seen["refused"] > 0  # the mutations do reach the checks


@pytest.mark.fuzz_long
@pytest.mark.skipif(not LONG, reason="set CANVAS_APP_LONG_FUZZ=1 for the long fuzz run")
def test_fuzzed_projects_long_run(valid: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _run(valid, tmp_path, LONG_BUDGET, monkeypatch)
    print(f"long fuzz: {seen}")


def test_unmutated_project_loads(valid: bytes, tmp_path: Path) -> None:
    assert check_one(valid, tmp_path) == "loaded"
