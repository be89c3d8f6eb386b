"""The desktop entry and the MIME package validate with the freedesktop tools, and the install script
puts everything where an XDG desktop looks for it (and takes it away again)."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINUX = ROOT / "packaging" / "linux"
DESKTOP = LINUX / "canvas-app.desktop"
MIME_XML = LINUX / "canvas-app-mime.xml"
MIME_RNG = LINUX / "shared-mime-info.rng"
INSTALL = ROOT / "packaging" / "install-desktop.sh"
MIME_TYPE = "application/x-canvas-app-project"
NS = "{http://www.freedesktop.org/standards/shared-mime-info}"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"{name} not installed (apt-get install desktop-file-utils libxml2-utils shared-mime-info)"
        )
    return path


def _desktop_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive in desktop files
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def _run_install(data_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(data_home), "HOME": str(data_home.parent)}
    return subprocess.run(
        ["bash", str(INSTALL), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_desktop_file_validates() -> None:
    result = subprocess.run(
        [_tool("desktop-file-validate"), str(DESKTOP)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_desktop_entry_fields() -> None:
    entry = _desktop_entry(DESKTOP)
    assert entry["Type"] == "Application"
    assert entry["Icon"] == "canvas-app"
    assert entry["Exec"].split()[-1] == "%f"
    assert MIME_TYPE in entry["MimeType"].split(";")
    assert "Graphics" in entry["Categories"].split(";")


def test_desktop_exec_is_a_valid_command_line() -> None:
    # The menu entry and "Open with" run Exec with the file in place of %f: the app must accept it.
    # canvas_app.cli hands everything after "gui" to the app's own parser.
    from canvas_app.app import parse_args

    argv = _desktop_entry(DESKTOP)["Exec"].split()
    assert argv[:2] == ["canvas-app", "gui"]
    args = parse_args([a.replace("%f", "/tmp/a b.canvas") for a in argv[2:]])
    assert args.project == "/tmp/a b.canvas"
    assert parse_args([a for a in argv[2:] if a != "%f"]).project is None


def test_mime_xml_validates_against_schema() -> None:
    result = subprocess.run(
        [_tool("xmllint"), "--noout", "--relaxng", str(MIME_RNG), str(MIME_XML)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_schema_rejects_a_misspelled_element(tmp_path: Path) -> None:
    # The schema is only worth running if it can fail.
    bad = tmp_path / "bad.xml"
    bad.write_text(MIME_XML.read_text(encoding="utf-8").replace("<glob ", "<glib ", 1), encoding="utf-8")
    result = subprocess.run(
        [_tool("xmllint"), "--noout", "--relaxng", str(MIME_RNG), str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0


def test_mime_xml_declares_project_and_openraster() -> None:
    import xml.etree.ElementTree as ET

    types = {el.get("type"): el for el in ET.parse(MIME_XML).getroot().iter(f"{NS}mime-type")}
    assert set(types) == {MIME_TYPE, "image/openraster"}
    globs = {t: [g.get("pattern") for g in el.iter(f"{NS}glob")] for t, el in types.items()}
    assert globs[MIME_TYPE] == ["*.canvas"] and globs["image/openraster"] == ["*.ora"]
    parents = {t: [s.get("type") for s in el.iter(f"{NS}sub-class-of")] for t, el in types.items()}
    # A project is an OpenRaster image (Krita and GIMP open it), which is a zip.
    assert parents == {MIME_TYPE: ["image/openraster"], "image/openraster": ["application/zip"]}
    priority = {t: int(el.find(f"{NS}magic").get("priority")) for t, el in types.items()}
    assert priority[MIME_TYPE] > priority["image/openraster"]


def test_install_and_uninstall_into_xdg_data_home(tmp_path: Path) -> None:
    data_home = tmp_path / "xdg-data"
    result = _run_install(data_home, "--exec", str(tmp_path / "my apps" / "canvas-app"))
    assert result.returncode == 0, result.stderr

    desktop = data_home / "applications" / "canvas-app.desktop"
    entry = _desktop_entry(desktop)
    assert entry["Exec"] == f'"{tmp_path / "my apps" / "canvas-app"}" gui %f'
    assert (data_home / "mime" / "packages" / "canvas-app.xml").read_bytes() == MIME_XML.read_bytes()
    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        hicolor = data_home / "icons" / "hicolor" / f"{size}x{size}"
        assert (hicolor / "apps" / "canvas-app.png").is_file()
        assert (hicolor / "mimetypes" / "application-x-canvas-app-project.png").is_file()
    assert (data_home / "icons" / "hicolor" / "scalable" / "apps" / "canvas-app.svg").is_file()
    assert not (tmp_path / ".local").exists(), "wrote outside XDG_DATA_HOME"
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout
    if shutil.which("update-mime-database"):
        # The MIME database was rebuilt: *.canvas now maps to our type.
        assert f"{MIME_TYPE}:*.canvas" in (data_home / "mime" / "globs2").read_text(encoding="utf-8")

    result = _run_install(data_home, "--uninstall")
    assert result.returncode == 0, result.stderr
    left = [p for p in data_home.rglob("*") if p.is_file() and "canvas-app" in p.name]
    assert left == []
    assert not (data_home / "icons" / "hicolor" / "48x48" / "apps" / "canvas-app.png").exists()
    if shutil.which("update-mime-database"):
        assert "*.canvas" not in (data_home / "mime" / "globs2").read_text(encoding="utf-8")


def test_install_defaults_to_home_local_share(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env["HOME"] = str(tmp_path)
    result = subprocess.run(
        ["bash", str(INSTALL)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".local" / "share" / "applications" / "canvas-app.desktop").is_file()


def test_install_refuses_unknown_argument_and_unsafe_exec(tmp_path: Path) -> None:
    assert _run_install(tmp_path / "d", "--frobnicate").returncode == 2
    result = _run_install(tmp_path / "d", "--exec", "/opt/$HOME/canvas-app")
    assert result.returncode == 2 and "dollar" in result.stderr
    assert not (tmp_path / "d" / "applications" / "canvas-app.desktop").exists()


def _magic_matches(match, data: bytes) -> bool:
    """Evaluate one shared-mime-info <match> (string type only) and its children against ``data``."""
    assert match.get("type") == "string"
    value = match.get("value").encode("latin-1").decode("unicode_escape").encode("latin-1")
    offset = int(match.get("offset"))
    if data[offset : offset + len(value)] != value:
        return False
    children = match.findall(f"{NS}match")
    return not children or any(_magic_matches(c, data) for c in children)


def _sniff(data: bytes) -> set[str]:
    import xml.etree.ElementTree as ET

    found = set()
    for el in ET.parse(MIME_XML).getroot().iter(f"{NS}mime-type"):
        for magic in el.findall(f"{NS}magic"):
            if any(_magic_matches(m, data) for m in magic.findall(f"{NS}match")):
                found.add(el.get("type"))
    return found


def test_magic_recognises_files_written_by_core(tmp_path: Path) -> None:
    # Ties the MIME magic to what core's project writer and OpenRaster exporter really write.
    import numpy as np

    from canvas_app.core.document import Document
    from canvas_app.core.project_file import export_ora, save_project

    doc = Document()
    doc.paste(0, 0, np.full((8, 8, 4), 200, dtype=np.uint8))
    save_project(doc, tmp_path / "a.canvas")
    export_ora(doc, tmp_path / "a.ora")
    # A project matches both magics; ours has the higher priority (checked above), so it wins.
    assert _sniff((tmp_path / "a.canvas").read_bytes()[:256]) == {MIME_TYPE, "image/openraster"}
    assert _sniff((tmp_path / "a.ora").read_bytes()[:256]) == {"image/openraster"}
    # Projects written by canvas-app 0.1 (our type as the first entry) are still recognised.
    legacy = b"PK\003\004" + b"\0" * 26 + b"mimetype" + MIME_TYPE.encode()
    assert _sniff(legacy + b"\0" * 64) == {MIME_TYPE}
    assert _sniff(b"PK\003\004" + b"\0" * 124) == set()
