"""Brush settings for the active brush tool: size, hardness, opacity, colour; mask overlay."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QDoubleSpinBox,
    QFormLayout,
    QPushButton,
    QSlider,
    QWidget,
)

from canvas_app.ui.workspace import MAX_BRUSH, MIN_BRUSH, Workspace


class BrushPanel(QWidget):
    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws
        self._loading = False
        self.size = QDoubleSpinBox(
            minimum=MIN_BRUSH, maximum=MAX_BRUSH, decimals=1, suffix=" px", objectName="brush_size"
        )
        self.hardness = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, objectName="hardness")
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=100, objectName="opacity")
        self.color = QPushButton(
            objectName="color", toolTip="Paint colour (Ctrl+click on the canvas picks one)"
        )
        self.mask_visible = QCheckBox("Show mask", checked=True, objectName="mask_visible")
        self.clear_mask = QPushButton("Clear mask", objectName="clear_mask")
        form = QFormLayout(self)
        form.addRow("Size", self.size)
        form.addRow("Hardness", self.hardness)
        form.addRow("Opacity", self.opacity)
        form.addRow("Colour", self.color)
        form.addRow(self.mask_visible, self.clear_mask)
        self.size.valueChanged.connect(lambda v: self._set(size=float(v)))
        self.hardness.valueChanged.connect(lambda v: self._set(hardness=v / 100))
        self.opacity.valueChanged.connect(lambda v: self._set(opacity=v / 100))
        self.color.clicked.connect(self._choose_color)
        self.mask_visible.toggled.connect(ws.scene.set_mask_visible)
        self.clear_mask.clicked.connect(lambda: ws.doc.clear_mask())
        ws.brush_changed.connect(lambda _f: self.refresh())
        ws.tool_changed.connect(lambda _t: self.refresh())
        ws.color_changed.connect(lambda _c: self.refresh())
        self.refresh()

    @property
    def family(self) -> str:
        tool = self.ws.tools.get(self.ws.tool_name)
        return getattr(tool, "family", "") or "mask"

    def refresh(self) -> None:
        settings = self.ws.brushes[self.family]
        self._loading = True
        try:
            self.size.setValue(settings.size)
            self.hardness.setValue(round(settings.hardness * 100))
            self.opacity.setValue(round(settings.opacity * 100))
            r, g, b = self.ws.color
            self.color.setStyleSheet(f"background: rgb({r},{g},{b}); min-height: 18px")
            self.mask_visible.setChecked(self.ws.scene.mask_visible)
        finally:
            self._loading = False

    def _set(self, **changes: float) -> None:
        if not self._loading:
            self.ws.set_brush(self.family, **changes)

    def _choose_color(self) -> None:
        color = QColorDialog.getColor(QColor(*self.ws.color), self, "Paint colour")
        if color.isValid():
            self.ws.set_color((color.red(), color.green(), color.blue()))
