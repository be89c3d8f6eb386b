"""What Upscale Patch x2/x4 (the patch list's buttons, also in the Generate menu) upscales, and when
the actions are enabled.

The candidate shown on the selected frame comes first: an artist who likes a staged result upscales
it before accepting it (as Krita AI Diffusion and InvokeAI let one upscale a result), with the
prompt, settings and seed that made it; the actions then read "Upscale Candidate". Otherwise they
upscale the accepted patch selected in the list, with its lineage. Both go the one upscale path of
``GenerationController`` (the frame grows, the refined pixels are staged on it).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt

from canvas_app.ui.jobs import GenerationController
from canvas_app.ui.staging import PatchList
from canvas_app.ui.workspace import Workspace


def bind_upscale_actions(
    ws: Workspace, gen: GenerationController, patches: PatchList, error: Callable[[str], None]
) -> None:
    """Drive ``patches.upscale_actions``: their text, enabled state and what they run; ``error``
    gets a message a person can act on when an upscale is refused (nothing changes then)."""

    def candidate_shown() -> bool:
        return gen.shown_candidate(ws.selected_frame_id) is not None

    def update(*_args: object) -> None:
        candidate = candidate_shown()
        for scale, action in patches.upscale_actions.items():
            what = "Candidate" if candidate else "Patch"
            action.setText(f"Upscale {what} x{scale}")
            action.setToolTip(
                f"Upscale the staged candidate x{scale} before accepting it, with its own prompt and seed"
                if candidate
                else f"Upscale the selected patch x{scale} and refine it with its own prompt"
            )
            action.setEnabled(candidate or bool(patches.selected_patch_id()))

    def run(scale: int) -> int | None:
        frame_id, patch_id = ws.selected_frame_id, patches.selected_patch_id()
        try:
            if candidate_shown():
                rid = gen.upscale_candidate(frame_id, scale)
            else:
                patch = next((p for p in ws.doc.patches if p.id == patch_id), None)
                if patch is None:
                    return None
                rid = gen.upscale_patch(patch, scale)
        except (ValueError, RuntimeError) as exc:
            error(f"Cannot upscale: {exc}")
            return None
        ws.view.setFocus(Qt.FocusReason.OtherFocusReason)  # Enter accepts the upscaled result
        return rid

    for scale, action in patches.upscale_actions.items():
        action.triggered.connect(lambda _checked=False, s=scale: run(s))
    gen.staging_changed.connect(update)
    gen.job_changed.connect(update)
    ws.selection_changed.connect(update)
    ws.document_replaced.connect(update)
    patches.list.itemSelectionChanged.connect(update)
    update()
