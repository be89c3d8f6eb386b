"""Procedural scenes with captions: the training data of the built-in model.

A scene is drawn wider than the model's native size so that training crops have plausible neighbours
(what lets outpainting and tiled panoramas continue a scene). Every object keeps its box, so the
caption of any crop is computed from what the crop actually shows. Deterministic by seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SCENE_W, SCENE_H = 256, 128
SUPERSAMPLE = 2

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (210, 40, 40),
    "orange": (240, 140, 30),
    "yellow": (245, 215, 50),
    "green": (50, 160, 60),
    "blue": (40, 90, 210),
    "purple": (130, 60, 180),
    "pink": (240, 130, 180),
    "white": (240, 240, 240),
    "black": (25, 25, 30),
    "brown": (120, 75, 40),
    "gray": (128, 128, 128),
}
SKY_COLORS = ["blue", "orange", "pink", "purple", "gray", "black"]
# Sky colours drawn as a vertical gradient (top, horizon).
SKY_GRADIENTS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "blue": ((40, 100, 200), (150, 200, 240)),
    "orange": ((200, 90, 40), (250, 190, 100)),
    "pink": ((200, 100, 150), (250, 190, 210)),
    "purple": ((70, 40, 120), (160, 110, 190)),
    "gray": ((110, 110, 115), (175, 175, 180)),
    "black": ((8, 8, 20), (35, 35, 60)),
}
BACKGROUND_COLORS = ["white", "black", "gray", "blue", "yellow", "pink", "green", "orange"]
SHAPES = ["circle", "square", "triangle"]
SHAPE_COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "white", "black"]
HOUSE_COLORS = ["red", "yellow", "blue", "white"]
SUN_COLORS = ["yellow", "orange", "red", "white"]
MOON_COLORS = ["white", "yellow"]
TREE_COLORS = ["green", "orange", "pink"]
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
PLURALS = {
    "house": "houses",
    "tree": "trees",
    "circle": "circles",
    "square": "squares",
    "triangle": "triangles",
}

# Object/colour pairs never drawn in training scenes, to measure generalisation.
HELD_OUT = {("sun", "purple"), ("house", "black")}
# The renderer also avoids two placements in the whole scene. Training crops shift positions, so
# these still reach the captions: they are not held out, only rarer. Kept so that the data stage
# reproduces the scenes the shipped weights were trained on.
RENDER_EXCLUSIONS = HELD_OUT | {("circle", "green", "right"), ("tree", "pink", "left")}
# Colours only the held-out combinations use (training palettes stay as they were, so the data
# stage reproduces the same scenes).
EVAL_ONLY_COLORS = {"sun": ["purple"], "house": ["black"]}


@dataclass
class SceneObject:
    kind: str
    color: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in scene pixels

    @property
    def center_x(self) -> float:
        return (self.box[0] + self.box[2]) / 2

    @property
    def area(self) -> int:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


@dataclass
class Scene:
    kind: str  # "landscape" or "shapes"
    background: str
    objects: list[SceneObject] = field(default_factory=list)
    water: bool = False


def position_word(center_x: float, crop_x: int, crop_w: int) -> str:
    rel = (center_x - crop_x) / crop_w
    return "left" if rel < 0.38 else "right" if rel > 0.62 else "center"


def is_held_out(
    kind: str, color: str, position: str | None = None, held_out: frozenset = frozenset(RENDER_EXCLUSIONS)
) -> bool:
    return (kind, color) in held_out or (kind, color, position) in held_out


def _gradient(top: tuple[int, int, int], bottom: tuple[int, int, int], w: int, h: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    rows = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    return np.broadcast_to(rows, (h, w, 3)).astype(np.uint8)


def _jitter(rgb: tuple[int, int, int], rng: random.Random, amount: int = 14) -> tuple[int, int, int]:
    r, g, b = (max(0, min(255, c + rng.randint(-amount, amount))) for c in rgb)
    return (r, g, b)


def _pick(rng: random.Random, kind: str, palette: list[str], held_out: frozenset) -> str:
    if not held_out:
        palette = palette + EVAL_ONLY_COLORS.get(kind, [])
    while True:
        color = rng.choice(palette)
        if (kind, color) not in held_out:
            return color


class _Painter:
    """Draws at SUPERSAMPLE x and keeps object boxes in scene pixels."""

    def __init__(self, base: np.ndarray, rng: random.Random) -> None:
        s = SUPERSAMPLE
        self.image = Image.fromarray(base).resize((base.shape[1] * s, base.shape[0] * s), Image.BILINEAR)
        self.draw = ImageDraw.Draw(self.image)
        self.rng = rng

    def s(self, *values: float) -> list[float]:
        return [v * SUPERSAMPLE for v in values]

    def finish(self) -> np.ndarray:
        w, h = self.image.size
        return np.asarray(self.image.resize((w // SUPERSAMPLE, h // SUPERSAMPLE), Image.LANCZOS))


def _free_x(rng: random.Random, taken: list[tuple[int, int]], width: int, lo: int, hi: int) -> int | None:
    for _ in range(30):
        x = rng.randint(lo, hi - width)
        if all(x + width + 4 <= a or x >= b + 4 for a, b in taken):
            taken.append((x, x + width))
            return x
    return None


def _place_on_ground(
    rng: random.Random,
    taken: list[tuple[int, int]],
    kind: str,
    palette: list[str],
    widths: tuple[int, int],
    held_out: frozenset,
) -> tuple[int, int, str] | None:
    """(x, width, colour) of a house or tree in a free stretch of ground, or None where none fits
    or the draw is an excluded combination."""
    w = rng.randint(*widths)
    x = _free_x(rng, taken, w, 2, SCENE_W - 2)
    if x is None:
        return None
    color = _pick(rng, kind, palette, held_out)
    if is_held_out(kind, color, position_word(x + w / 2, 0, SCENE_W), held_out):
        return None
    return x, w, color


def _draw_landscape(rng: random.Random, held_out: frozenset) -> tuple[Scene, np.ndarray]:
    sky = rng.choice(SKY_COLORS)
    scene = Scene("landscape", sky)
    top, bottom = SKY_GRADIENTS[sky]
    base = _gradient(_jitter(top, rng), _jitter(bottom, rng), SCENE_W, SCENE_H)
    p = _Painter(base, rng)
    horizon = rng.randint(70, 88)
    # Sun or moon.
    celestial = rng.choice(["sun", "moon", "sun", "moon", None])
    if celestial:
        color = _pick(rng, celestial, SUN_COLORS if celestial == "sun" else MOON_COLORS, held_out)
        r = rng.randint(10, 15)
        cx, cy = rng.randint(r + 4, SCENE_W - r - 4), rng.randint(r + 4, horizon - r - 16)
        rgb = _jitter(COLORS[color], rng, 8)
        p.draw.ellipse(p.s(cx - r, cy - r, cx + r, cy + r), fill=rgb)
        if celestial == "moon":  # a crescent: cut with the sky colour
            off = r * 0.55
            sky_rgb = tuple(int(v) for v in base[cy, min(SCENE_W - 1, int(cx + off))])
            p.draw.ellipse(p.s(cx - r + off, cy - r - 2, cx + r + off, cy + r - 2), fill=sky_rgb)
        scene.objects.append(SceneObject(celestial, color, (cx - r, cy - r, cx + r, cy + r)))
    # Clouds (not captioned individually: texture).
    if sky not in ("black",):
        for _ in range(rng.randint(0, 3)):
            cx, cy = rng.randint(0, SCENE_W), rng.randint(8, horizon - 30)
            shade = _jitter((235, 235, 240), rng, 10)
            for _ in range(4):
                dx, dy, rr = rng.randint(-14, 14), rng.randint(-4, 4), rng.randint(6, 10)
                p.draw.ellipse(
                    p.s(cx + dx - rr * 1.6, cy + dy - rr, cx + dx + rr * 1.6, cy + dy + rr), fill=shade
                )
    # Hills then ground.
    hill_rgb = _jitter((70, 140, 60) if sky != "black" else (25, 60, 30), rng, 12)
    x = -20
    while x < SCENE_W + 20:
        w = rng.randint(70, 130)
        h = rng.randint(10, 26)
        p.draw.ellipse(p.s(x, horizon - h, x + w, horizon + h), fill=hill_rgb)
        x += w - rng.randint(15, 35)
    ground_rgb = _jitter((90, 165, 70) if sky != "black" else (30, 70, 35), rng, 10)
    p.draw.rectangle(p.s(0, horizon, SCENE_W, SCENE_H), fill=ground_rgb)
    if rng.random() < 0.3:
        scene.water = True
        water_rgb = _jitter((60, 110, 200) if sky != "black" else (20, 30, 70), rng, 10)
        wy = rng.randint(horizon + 20, SCENE_H - 12)
        p.draw.rectangle(p.s(0, wy, SCENE_W, SCENE_H), fill=water_rgb)
        for _ in range(8):
            lx, ly = rng.randint(0, SCENE_W), rng.randint(wy + 2, SCENE_H - 2)
            p.draw.line(p.s(lx, ly, lx + 10, ly), fill=_jitter(water_rgb, rng, 30), width=2)
    # Houses and trees stand on the ground, spread along the scene.
    taken: list[tuple[int, int]] = []
    ground_y = horizon + rng.randint(14, 24)
    for _ in range(rng.randint(0, 3)):
        placed = _place_on_ground(rng, taken, "house", HOUSE_COLORS, (26, 34), held_out)
        if placed is None:
            continue
        hx, w, color = placed
        wall_h = int(w * 0.75)
        top_y = ground_y - wall_h
        p.draw.rectangle(p.s(hx, top_y, hx + w, ground_y), fill=_jitter(COLORS[color], rng, 10))
        roof_rgb = _jitter((120, 50, 40) if color != "red" else (90, 40, 35), rng, 10)
        p.draw.polygon(p.s(hx - 3, top_y, hx + w / 2, top_y - w * 0.55, hx + w + 3, top_y), fill=roof_rgb)
        dw, dh = w * 0.22, wall_h * 0.5
        dx = hx + w * 0.39
        p.draw.rectangle(p.s(dx, ground_y - dh, dx + dw, ground_y), fill=(70, 45, 30))
        p.draw.rectangle(
            p.s(hx + w * 0.1, top_y + wall_h * 0.2, hx + w * 0.28, top_y + wall_h * 0.45),
            fill=(160, 210, 240),
        )
        scene.objects.append(
            SceneObject("house", color, (hx - 3, int(top_y - w * 0.55), hx + w + 3, ground_y))
        )
    for _ in range(rng.randint(0, 3)):
        placed = _place_on_ground(rng, taken, "tree", TREE_COLORS, (16, 24), held_out)
        if placed is None:
            continue
        tx, w, color = placed
        base_y = ground_y + rng.randint(-4, 6)
        trunk_h = rng.randint(10, 16)
        cx = tx + w / 2
        p.draw.rectangle(p.s(cx - 2.5, base_y - trunk_h, cx + 2.5, base_y), fill=(95, 60, 30))
        crown = _jitter(COLORS[color] if color != "green" else (40, 120, 45), rng, 12)
        ch = rng.randint(18, 26)
        p.draw.ellipse(p.s(tx, base_y - trunk_h - ch, tx + w, base_y - trunk_h + 4), fill=crown)
        scene.objects.append(SceneObject("tree", color, (tx, base_y - trunk_h - ch, tx + w, base_y)))
    return scene, p.finish()


def _draw_shapes(rng: random.Random, held_out: frozenset) -> tuple[Scene, np.ndarray]:
    bg = rng.choice(BACKGROUND_COLORS)
    scene = Scene("shapes", bg)
    base = np.empty((SCENE_H, SCENE_W, 3), np.uint8)
    base[:] = _jitter(COLORS[bg], rng, 10)
    p = _Painter(base, rng)
    taken: list[tuple[int, int]] = []
    # Shapes come in groups of one kind and colour, which is what a caption can name.
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(SHAPES)
        color = _pick(rng, kind, [c for c in SHAPE_COLORS if c != bg], held_out)
        for _ in range(rng.randint(1, 3)):
            size = rng.randint(22, 36)
            x = _free_x(rng, taken, size, 4, SCENE_W - 4)
            if x is None:
                continue
            if is_held_out(kind, color, position_word(x + size / 2, 0, SCENE_W), held_out):
                continue
            y = rng.randint(8, SCENE_H - size - 8)
            rgb = _jitter(COLORS[color], rng, 10)
            box = (x, y, x + size, y + size)
            if kind == "circle":
                p.draw.ellipse(p.s(*box), fill=rgb)
            elif kind == "square":
                p.draw.rectangle(p.s(*box), fill=rgb)
            else:
                p.draw.polygon(p.s(x, y + size, x + size / 2, y, x + size, y + size), fill=rgb)
            scene.objects.append(SceneObject(kind, color, box))
    return scene, p.finish()


def render_scene(seed: int, include_held_out: bool = False) -> tuple[Scene, np.ndarray]:
    """Draw scene ``seed``: (description, SCENE_H x SCENE_W x 3 uint8 pixels).

    Training scenes never show the HELD_OUT pairs; the evaluation classifier sees everything.
    """
    rng = random.Random(seed)
    held_out = frozenset() if include_held_out else frozenset(RENDER_EXCLUSIONS)
    if rng.random() < 0.6:
        scene, pixels = _draw_landscape(rng, held_out)
    else:
        scene, pixels = _draw_shapes(rng, held_out)
    # A touch of blur and grain so the model does not learn perfectly flat fills.
    img = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(0.3))
    noise = np.random.default_rng(seed).normal(0, 2.0, pixels.shape)
    return scene, np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8)


# How much of an object's width a crop must show for the caption to name it. Complete captions name
# every object at least half inside, so that a one-phrase caption means one object in the picture.
MOSTLY_INSIDE = 0.7
HALF_INSIDE = 0.5


def visible_objects(
    scene: Scene, crop_x: int, crop_w: int, min_inside: float = MOSTLY_INSIDE
) -> list[SceneObject]:
    """Objects with at least ``min_inside`` of their width inside [crop_x, crop_x + crop_w)."""
    out = []
    for obj in scene.objects:
        x0, _, x1, _ = obj.box
        inside = min(x1, crop_x + crop_w) - max(x0, crop_x)
        if inside >= min_inside * (x1 - x0):
            out.append(obj)
    return out


def _group_phrase(kind: str, color: str, count: int, position: str) -> str:
    noun = PLURALS.get(kind, kind) if count > 1 else kind
    amount = "a" if count == 1 else COUNT_WORDS[count]
    where = "in the center" if position == "center" else f"on the {position}"
    return f"{amount} {color} {noun} {where}"


def crop_groups(
    scene: Scene, crop_x: int, crop_w: int, min_inside: float = MOSTLY_INSIDE
) -> list[tuple[str, str, int, str]]:
    """(kind, colour, count, position) of each group of like objects the crop shows, largest first."""
    groups: dict[tuple[str, str], list[SceneObject]] = {}
    for obj in visible_objects(scene, crop_x, crop_w, min_inside):
        groups.setdefault((obj.kind, obj.color), []).append(obj)

    def largest_area(objs: list[SceneObject]) -> int:
        return max(o.area for o in objs)

    out = []
    for (kind, color), objs in sorted(groups.items(), key=lambda kv: -largest_area(kv[1])):
        center = sum(o.center_x for o in objs) / len(objs)
        out.append((kind, color, min(len(objs), 3), position_word(center, crop_x, crop_w)))
    return out


def setting_phrase(scene: Scene) -> str:
    return f"{scene.background} sky" if scene.kind == "landscape" else f"{scene.background} background"


def object_phrase(kind: str, color: str, count: int, position: str) -> str:
    if kind in ("sun", "moon"):
        return f"a {color} {kind} on the {position}" if position != "center" else f"a {color} {kind}"
    return _group_phrase(kind, color, count, position)


def caption_for_crop(
    scene: Scene,
    crop_x: int,
    crop_w: int,
    rng: random.Random | None = None,
    min_inside: float = MOSTLY_INSIDE,
) -> str:
    """A caption naming what the crop shows: the largest group first, then the rest, then the sky.

    With ``rng``, phrases after the first are dropped at random so short prompts work too.
    """
    phrases = [object_phrase(*group) for group in crop_groups(scene, crop_x, crop_w, min_inside)]
    setting = setting_phrase(scene)
    if scene.kind == "landscape":
        setting += ", hills" + (", water" if scene.water else "")
    if rng is not None and len(phrases) > 1:
        phrases = phrases[:1] + [ph for ph in phrases[1:] if rng.random() < 0.6]
    return ", ".join([*phrases, setting])


def vocabulary() -> list[str]:
    words = set("a the on in of sky background hills water center left right and with under above".split())
    words |= set(COLORS) | set(SHAPES) | {"house", "tree", "sun", "moon"} | set(PLURALS.values())
    words |= set(COUNT_WORDS.values())
    return sorted(words)
