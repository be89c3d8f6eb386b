"""Persistent settings (QSettings): window layout, last model, device, preview rate, brushes,
recent files, added models. Values are read with types and defaults so a damaged file cannot
break the start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from PySide6.QtCore import QSettings

T = TypeVar("T")
ORG = "canvas-app"
APP = "canvas-app"
MAX_RECENT = 10
# Keys read in more than one place (start-up, the window, the Settings dialog).
DEVICE_KEY = "engine/device"  # "" = the best available
PREVIEW_KEY = "engine/preview_interval_s"
COMPILE_KEY = "engine/compile"  # torch.compile the UNet (engine/compiling.py); off by default
DEFAULT_PREVIEW_S = 0.1
MODEL_KEY = "model/last"  # the model new frames use
ENGINE_URL_KEY = "engine/server_url"  # "" = this computer; else an engine server (canvas-app serve)
ENGINE_TOKEN_KEY = "engine/server_token"


@dataclass(frozen=True)
class EngineChoice:
    """The engine the settings ask for (read at start-up, by the window's engine link and by the
    Settings dialog): this computer's ``device`` ("" = the best available) or an engine server
    (``url``, ``token``), whether to compile the UNet, and how often previews come."""

    device: str = ""
    preview_s: float = DEFAULT_PREVIEW_S
    url: str = ""
    token: str = ""
    compile: bool = False

    @property
    def engine_key(self) -> tuple[str, str, str, bool]:
        """What needs another engine when it changes (the preview rate changes on the running one)."""
        return (self.device, self.url, self.token, self.compile)


class Settings:
    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings(ORG, APP)

    def get(self, key: str, default: T) -> T:
        value: Any = self.q.value(key, default)
        try:
            if isinstance(default, bool):
                return (
                    value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
                ) and True  # type: ignore[return-value]
            if isinstance(default, int):
                return int(value)  # type: ignore[return-value]
            if isinstance(default, float):
                return float(value)  # type: ignore[return-value]
            if isinstance(default, list):
                if value is None or value == "":
                    return []  # type: ignore[return-value]
                return [str(v) for v in (value if isinstance(value, list) else [value])]  # type: ignore[return-value]
            if isinstance(default, str):
                return str(value)  # type: ignore[return-value]
        except (TypeError, ValueError):
            return default
        return value  # type: ignore[no-any-return]

    def set(self, key: str, value: Any) -> None:
        self.q.setValue(key, value)

    def sync(self) -> None:
        self.q.sync()

    # -- engine ----------------------------------------------------------------------------------
    def engine(self) -> EngineChoice:
        return EngineChoice(
            device=self.get(DEVICE_KEY, ""),
            preview_s=self.get(PREVIEW_KEY, DEFAULT_PREVIEW_S),
            url=self.get(ENGINE_URL_KEY, ""),
            token=self.get(ENGINE_TOKEN_KEY, ""),
            compile=self.get(COMPILE_KEY, False),
        )

    def set_engine(self, choice: EngineChoice) -> None:
        self.set(DEVICE_KEY, choice.device)
        self.set(PREVIEW_KEY, choice.preview_s)
        self.set(ENGINE_URL_KEY, choice.url)
        self.set(ENGINE_TOKEN_KEY, choice.token)
        self.set(COMPILE_KEY, choice.compile)

    # -- recent files ----------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        return self.get("files/recent", [])

    def add_recent(self, path: str) -> list[str]:
        recent = [p for p in self.recent_files() if p != path]
        recent.insert(0, path)
        recent = recent[:MAX_RECENT]
        self.set("files/recent", recent)
        return recent

    # -- models ----------------------------------------------------------------------------------
    def added_models(self) -> list[str]:
        return self.get("models/added", [])

    def add_model(self, path: str) -> None:
        added = self.added_models()
        if path not in added:
            self.set("models/added", added + [path])
