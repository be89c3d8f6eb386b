"""Draw the app icon and the project-file icon procedurally, as hicolor PNGs and as SVGs.

One list of shapes in a 256x256 design space feeds both renderers (Pillow and SVG), so the PNGs
and the scalable icon always show the same picture: an easel holding a canvas with a small
landscape, and a spark for "generated". PNGs are drawn 8x larger and downsampled, which gives
clean anti-aliased edges at 16 px.

    python packaging/make_icons.py [OUT_DIR]     # default: resources/icons
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

APP_ID = "canvas-app"
MIME_ICON = "application-x-canvas-app-project"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
DESIGN = 256
SUPERSAMPLE = 8

OUTLINE = "#3b2716"
WOOD = "#b9783c"
WOOD_DARK = "#8a5427"
CANVAS = "#f6efe1"
SKY = "#63b3ec"
SUN = "#ffcf3a"
HILL_FAR = "#5bb35a"
HILL_NEAR = "#2f8a44"
SPARK = "#ff5fa2"
PAGE = "#fbfbf8"
PAGE_FOLD = "#d9d6cc"


@dataclass(frozen=True)
class Shape:
    """A filled shape in design coordinates. kind: polygon (points), rect (box, radius), circle
    (box: cx, cy, r)."""

    kind: str
    fill: str | None  # None: outline only
    points: tuple[tuple[float, float], ...] = ()
    box: tuple[float, ...] = ()
    radius: float = 0.0
    outline: str | None = None
    width: float = 0.0


def _leg(top: tuple[float, float], bottom: tuple[float, float], half_width: float) -> tuple:
    (x0, y0), (x1, y1) = top, bottom
    length = math.hypot(x1 - x0, y1 - y0)
    nx, ny = (y1 - y0) / length * half_width, -(x1 - x0) / length * half_width
    return ((x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny))


def _hill(x0: float, x1: float, base: float, crest: float, phase: float, bumps: float) -> tuple:
    """A hill silhouette as a polygon: a sine-shaped crest between x0 and x1, flat at ``base``."""
    steps = 24
    top = []
    for i in range(steps + 1):
        x = x0 + (x1 - x0) * i / steps
        t = i / steps
        top.append((x, crest - 10 * math.sin(math.pi * bumps * t + phase)))
    return (*top, (x1, base), (x0, base))


def _spark(cx: float, cy: float, r: float) -> tuple:
    """A four-pointed star, the usual mark for 'generated'."""
    pts = []
    for i in range(8):
        angle = math.pi / 4 * i - math.pi / 2
        rr = r if i % 2 == 0 else r * 0.3
        pts.append((cx + rr * math.cos(angle), cy + rr * math.sin(angle)))
    return tuple(pts)


def _landscape(x0: float, y0: float, x1: float, y1: float) -> list[Shape]:
    """Sky, sun and two hills filling the box (x0, y0)-(x1, y1)."""
    w, h = x1 - x0, y1 - y0
    return [
        Shape("rect", SKY, box=(x0, y0, x1, y1)),
        Shape("circle", SUN, box=(x0 + 0.72 * w, y0 + 0.3 * h, 0.13 * min(w, h) + 4)),
        Shape("polygon", HILL_FAR, points=_hill(x0, x1, y1, y0 + 0.62 * h, 0.3, 1.3)),
        Shape("polygon", HILL_NEAR, points=_hill(x0, x1, y1, y0 + 0.8 * h, 2.2, 1.0)),
    ]


def app_icon_shapes() -> list[Shape]:
    stroke = {"outline": OUTLINE, "width": 5.0}
    shapes = [
        Shape("polygon", WOOD_DARK, points=_leg((128, 18), (128, 246), 7), **stroke),
        Shape("polygon", WOOD, points=_leg((128, 14), (44, 248), 9), **stroke),
        Shape("polygon", WOOD, points=_leg((128, 14), (212, 248), 9), **stroke),
        Shape("rect", CANVAS, box=(34, 40, 222, 180), radius=8, **stroke),
    ]
    shapes += _landscape(46, 52, 210, 168)
    shapes += [
        Shape("rect", WOOD, box=(22, 176, 234, 196), radius=5, **stroke),
        Shape("polygon", SPARK, points=_spark(214, 42, 34), **stroke),
    ]
    return shapes


def mime_icon_shapes() -> list[Shape]:
    """A page with a folded corner showing the same painting: the project-file icon."""
    stroke = {"outline": OUTLINE, "width": 5.0}
    fold = 52
    page = ((44, 10), (212 - fold, 10), (212, 10 + fold), (212, 246), (44, 246))
    shapes = [Shape("polygon", PAGE, points=page, **stroke)]
    shapes += _landscape(64, 84, 192, 196)
    shapes += [
        Shape("rect", None, box=(64, 84, 192, 196), outline=OUTLINE, width=4.0, radius=2),
        Shape(
            "polygon",
            PAGE_FOLD,
            points=((212 - fold, 10), (212 - fold, 10 + fold), (212, 10 + fold)),
            **stroke,
        ),
    ]
    return shapes


# -- Pillow ---------------------------------------------------------------------------------------
def render_png(shapes: list[Shape], size: int) -> Image.Image:
    """Render ``shapes`` to a ``size`` x ``size`` RGBA image."""
    big = size * SUPERSAMPLE
    scale = big / DESIGN
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    for s in shapes:
        width = max(1, round(s.width * scale)) if s.outline else 0
        fill = s.fill
        if s.kind == "polygon":
            pts = [(x * scale, y * scale) for x, y in s.points]
            draw.polygon(pts, fill=fill)
            if s.outline:
                draw.line([*pts, pts[0], pts[1]], fill=s.outline, width=width, joint="curve")
        elif s.kind == "rect":
            box = tuple(v * scale for v in s.box)
            draw.rounded_rectangle(box, radius=s.radius * scale, fill=fill, outline=s.outline, width=width)
        elif s.kind == "circle":
            cx, cy, r = (v * scale for v in s.box)
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=s.outline, width=width)
        else:
            raise ValueError(f"unknown shape kind {s.kind!r}")
    # A box filter: exact coverage, no ringing halo around the outline.
    return img.reduce(SUPERSAMPLE)


# -- SVG ------------------------------------------------------------------------------------------
def render_svg(shapes: list[Shape], title: str) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{DESIGN}" height="{DESIGN}" '
        f'viewBox="0 0 {DESIGN} {DESIGN}">',
        f"  <title>{title}</title>",
    ]
    for s in shapes:
        fill = s.fill or "none"
        stroke = (
            f' stroke="{s.outline}" stroke-width="{s.width:g}" stroke-linejoin="round"' if s.outline else ""
        )
        if s.kind == "polygon":
            pts = " ".join(f"{x:.2f},{y:.2f}" for x, y in s.points)
            out.append(f'  <polygon points="{pts}" fill="{fill}"{stroke}/>')
        elif s.kind == "rect":
            x0, y0, x1, y1 = s.box
            out.append(
                f'  <rect x="{x0:g}" y="{y0:g}" width="{x1 - x0:g}" height="{y1 - y0:g}" '
                f'rx="{s.radius:g}" fill="{fill}"{stroke}/>'
            )
        elif s.kind == "circle":
            cx, cy, r = s.box
            out.append(f'  <circle cx="{cx:.2f}" cy="{cy:.2f}" r="{r:.2f}" fill="{fill}"{stroke}/>')
        else:
            raise ValueError(f"unknown shape kind {s.kind!r}")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_icons(out_dir: Path) -> list[Path]:
    """Write every PNG size and the SVG of both icons under ``out_dir/hicolor``; return the paths."""
    written: list[Path] = []
    for name, context, shapes in (
        (APP_ID, "apps", app_icon_shapes()),
        (MIME_ICON, "mimetypes", mime_icon_shapes()),
    ):
        for size in SIZES:
            path = out_dir / "hicolor" / f"{size}x{size}" / context / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            render_png(shapes, size).save(path, optimize=True)
            written.append(path)
        svg = out_dir / "hicolor" / "scalable" / context / f"{name}.svg"
        svg.parent.mkdir(parents=True, exist_ok=True)
        svg.write_text(render_svg(shapes, name), encoding="utf-8")
        written.append(svg)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(__file__).resolve().parent.parent
    out_dir = Path(args[0]) if args else root / "resources" / "icons"
    for path in write_icons(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
