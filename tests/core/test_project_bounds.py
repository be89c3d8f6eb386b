"""Hostile project files: every count and value a file declares is bounded before anything is built,
so a few-kilobyte file fails in milliseconds with a ProjectError that says what is wrong."""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from canvas_app.core import limits, project_file
from canvas_app.core.document import Document
from canvas_app.core.project_file import DOCUMENT_JSON, ProjectError, load_project, save_project
from canvas_app.core.recovery import RECOVERY_DIR_ENV, RecoveryStore


def _project(folder: Path) -> Path:
    doc = Document()
    doc.paste(0, 0, np.full((20, 30, 4), 200, np.uint8))
    doc.add_frame(x=0, y=0, w=64, h=64, prompt="a house", seed=4)
    path = folder / "p.canvas"
    save_project(doc, path)
    return path


def _with_json(path: Path, change: dict | bytes, extra: dict[str, bytes] | None = None) -> Path:
    """A copy of ``path`` whose document.json is ``meta`` updated by ``change`` (or raw bytes)."""
    with zipfile.ZipFile(path) as zf:
        entries = [(i, zf.read(i)) for i in zf.infolist()]
        meta = json.loads(zf.read(DOCUMENT_JSON))
    raw = change if isinstance(change, bytes) else json.dumps({**meta, **change}).encode()
    out = path.with_name("hostile.canvas")
    with zipfile.ZipFile(out, "w") as zf:
        for info, data in entries:
            if info.filename == DOCUMENT_JSON:
                zf.writestr(DOCUMENT_JSON, raw, zipfile.ZIP_DEFLATED, 9)
            else:
                zf.writestr(info, data)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return out


def _load_fails(path: Path, match: str, within_s: float = 1.0) -> str:
    start = time.perf_counter()
    with pytest.raises(ProjectError, match=match) as info:
        load_project(path)
    elapsed = time.perf_counter() - start
    assert elapsed < within_s, f"took {elapsed:.2f} s"
    return str(info.value)


def test_a_million_empty_frames_fail_in_milliseconds(tmp_path: Path) -> None:
    path = _project(tmp_path)
    meta_raw = b'{"format": "canvas-app-project", "format_version": 1, "tile_size": 256, "frames": ['
    hostile = _with_json(path, meta_raw + b",".join([b"{}"] * 1_000_000) + b"]}")
    assert hostile.stat().st_size < 20_000  # a few kilobytes on disk
    message = _load_fails(hostile, "1,000,00[0-9] objects")
    assert "at most 10,000 frames" in message


def test_json_at_its_size_limit_fails_fast(tmp_path: Path) -> None:
    # The case: 22 million frames in 64 MiB of JSON, 66 KB compressed (ran 14 minutes).
    path = _project(tmp_path)
    count = (project_file.MAX_JSON_BYTES - 200) // 3
    raw = b'{"format": "canvas-app-project", "frames": [' + b"{}," * (count - 1) + b"{}]}"
    hostile = _with_json(path, raw)
    assert hostile.stat().st_size < 200_000
    _load_fails(hostile, "objects", within_s=5.0)


def test_a_million_listed_tiles_fail_fast(tmp_path: Path) -> None:
    path = _project(tmp_path)
    hostile = _with_json(path, {"image_tiles": [[i, 0] for i in range(1_000_000)]})
    _load_fails(hostile, "lists for .* archive entries")


def test_many_real_frames_are_refused_by_count(tmp_path: Path) -> None:
    path = _project(tmp_path)
    frames = [{"id": f"f{i}"} for i in range(limits.MAX_FRAMES + 1)]
    _load_fails(_with_json(path, {"frames": frames}), "lists 10,001 frames, more than 10,000")


def test_brackets_inside_prompts_do_not_count_as_structure(tmp_path: Path) -> None:
    # A1111-style prompts are full of brackets: they must not trip the structure count.
    path = _project(tmp_path)
    prompt = "(({[masterpiece]}))" * 500
    frames = [{"id": f"f{i}", "prompt": prompt} for i in range(20)]
    loaded = load_project(_with_json(path, {"frames": frames}))
    assert [f.prompt for f in loaded.frames.values()] == [prompt] * 20


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"steps": 5000}, "steps 5000 is outside 1..1000"),
        ({"steps": 0}, "steps 0 is outside"),
        ({"batch": 10_000}, "batch 10000 is outside 1..64"),
        ({"guidance": 1e300}, "guidance 1e\\+300 is outside 0..100"),
        ({"guidance": -1.0}, "guidance -1.0 is outside"),
        ({"strength": 2.0}, "strength 2.0 is outside 0..1"),
        ({"seed": 2**40}, "seed 1099511627776 is outside -1..4294967295"),
        ({"seed": -5}, "seed -5 is outside"),
        ({"x": 10**30}, "x 1000000000000000000000000000000 is outside"),
        ({"w": 10**9}, "w 1000000000 is outside|at most 16384"),
        ({"model": "m" * 100_000}, "model is 100,000 characters"),
        ({"id": "i" * 1000}, "id is 1,000 characters"),
    ],
)
def test_restored_frame_values_are_range_checked(tmp_path: Path, frame: dict, message: str) -> None:
    path = _project(tmp_path)
    _load_fails(_with_json(path, {"frames": [frame]}), message)


def test_patch_view_and_metadata_are_bounded(tmp_path: Path) -> None:
    path = _project(tmp_path)
    patch = {"frame_id": "a", "x": 0, "y": 0, "w": 8, "h": 8, "seed": 1, "request_json": "{}"}
    _load_fails(_with_json(path, {"patches": [dict(patch, request_json="x" * 10**6)]}), "request_json is")
    _load_fails(
        _with_json(path, {"patches": [dict(patch, y=-(10**20))]}), "y -100000000000000000000 is outside"
    )
    _load_fails(_with_json(path, {"view": {"center_x": 1e300}}), "center_x")
    _load_fails(_with_json(path, {"metadata": {str(i): "" for i in range(5000)}}), "5,000 entries")
    _load_fails(_with_json(path, {"metadata": {"k": "v" * 100_000}}), "longer than 65,536")
    _load_fails(_with_json(path, {"image_tiles": [[2**40, 0]]}), "not a \\[tx, ty\\] pair")
    # A 5000-digit number is not something json can turn into an int: a clear error, not a crash.
    _load_fails(_with_json(path, b'{"frames": [{"x": ' + b"9" * 5000 + b"}]}"), "not valid JSON")


def test_memory_error_while_loading_is_a_project_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _project(tmp_path)

    def exhausted(*_args: object) -> None:
        raise MemoryError

    monkeypatch.setattr(project_file, "_load_tiles", exhausted)
    _load_fails(path, "needs more memory than is free on this machine")


def test_default_tile_memory_follows_the_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert limits.physical_memory_bytes() == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert limits.default_pixel_memory_bytes() == limits.physical_memory_bytes() // 2
    # On a 2 GiB machine, 5,000 image tiles (1.2 GiB decoded) are more than the 1 GiB allowed.
    monkeypatch.setattr(limits, "physical_memory_bytes", lambda: 2 * 2**30)
    path = _project(tmp_path)
    tiles = {f"canvas/image/{i}_5.png": b"" for i in range(5000)}
    hostile = _with_json(path, {"image_tiles": [[0, 0]] + [[i, 5] for i in range(5000)]}, tiles)
    message = _load_fails(hostile, "1.2 GiB decoded\\), more than the 1.0 GiB allowed on this machine")
    assert "half of its 2.0 GiB memory" in message and "machine with more memory" in message


def test_truncated_project_says_damaged_and_names_the_recovery_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recovery = tmp_path / "recovery"
    monkeypatch.setenv(RECOVERY_DIR_ENV, str(recovery))
    path = _project(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = _load_fails(path, "p.canvas is damaged or incomplete")
    assert "not a zip archive" not in message and "not a canvas project" not in message
    assert str(recovery) in message and "earlier copy" in message

    # With an autosaved copy of this very file, the message points at it.
    doc = Document()
    doc.paste(0, 0, np.full((4, 4, 4), 9, np.uint8))
    copy = RecoveryStore(recovery, session="crashed").write(doc.snapshot(), path)
    message = _load_fails(path, "damaged or incomplete")
    assert f"is at {copy}" in message and "autosaved" in message
    assert load_project(copy).image.bounds() == (0, 0, 4, 4)


def test_text_that_is_not_a_zip_is_still_not_a_project(tmp_path: Path) -> None:
    path = tmp_path / "notes.canvas"
    path.write_text("hello " * 100)
    _load_fails(path, "not a canvas project \\(not a zip archive")


def test_old_values_are_repaired_with_a_notice_not_refused(tmp_path):
    """A prompt past the cap is cut and strength 0 (older versions allowed it) is lifted, each said."""
    from canvas_app.core import limits
    from canvas_app.core.document import Document
    from canvas_app.core.frames import PromptFrame
    from canvas_app.core.project_file import load_project, save_project

    doc = Document()
    frame = PromptFrame(x=0, y=0, w=64, h=64, prompt="x")
    doc.add_frame(frame)
    path = tmp_path / "old.canvas"
    save_project(doc, path)
    # Rewrite document.json as an older version (or a hand edit) could have left it.
    import json
    import zipfile

    with zipfile.ZipFile(path) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    rewritten = tmp_path / "rewritten.canvas"
    with zipfile.ZipFile(rewritten, "w") as out:
        for info, data in entries:
            if info.filename == DOCUMENT_JSON:
                meta = json.loads(data)
                meta["frames"][0]["prompt"] = "a" * (limits.MAX_PROMPT_CHARS + 5)
                meta["frames"][0]["strength"] = 0
                data = json.dumps(meta).encode()
            out.writestr(info, data)
    loaded = load_project(rewritten)
    (only,) = loaded.frames.values()
    assert len(only.prompt) == limits.MAX_PROMPT_CHARS
    assert only.strength > 0
    assert len(loaded.load_notices) == 2
    assert "cut to" in loaded.load_notices[0] and "strength 0" in loaded.load_notices[1]
