"""Generation jobs on the GUI side: queue per frame, live previews, staging, accept, re-roll.

Each job moves through the state machine of ``canvas_app.ui.job_state`` (one table of transitions);
widgets only react to ``job_changed`` / ``staging_changed``. Results are staged per frame
(candidates accumulate across "generate more") until the artist accepts one, which core composites
over the document as it is then (one undoable patch), or discards them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import numpy as np
from PySide6.QtCore import QObject, QRectF, Signal

from canvas_app.core.composite import accept_candidate, accepted_pixels, preview_candidate
from canvas_app.core.frame_plan import decide_mode, decide_seed, plan_frame
from canvas_app.core.frames import Patch, PromptFrame
from canvas_app.core.limits import MAX_SEED
from canvas_app.core.request import FRAME_SETTINGS, GenerationRequest, Mode, frame_settings
from canvas_app.core.seams import REPAIR_STRENGTH
from canvas_app.core.upscale import upscale_request
from canvas_app.engine.api import Cancelled, Failed, Finished, Loading, Progress, Started
from canvas_app.ui.job_state import Job, JobEvent, JobState
from canvas_app.ui.qimage import array_to_qimage
from canvas_app.ui.set_aside import Growth, SetAside
from canvas_app.ui.workspace import Workspace
from canvas_app.workers.engine_worker import EngineWorker


@dataclass
class Candidate:
    frame: PromptFrame
    request: GenerationRequest
    image: np.ndarray  # the engine's decoded crop (the request's full size, context included)
    seed: int


@dataclass
class Staging:
    candidates: list[Candidate] = field(default_factory=list)
    index: int = 0

    @property
    def current(self) -> Candidate | None:
        return self.candidates[self.index] if self.candidates else None


def frame_pixels(candidate: Candidate) -> np.ndarray:
    """The part of a candidate's decoded crop that lies inside its frame (for thumbnails)."""
    ox, oy = candidate.request.origin
    f = candidate.frame
    return candidate.image[f.y - oy : f.y - oy + f.h, f.x - ox : f.x - ox + f.w]


_OUTCOME = {JobState.FINISHED: "Done", JobState.CANCELLED: "Cancelled", JobState.FAILED: "Failed"}


class GenerationController(QObject):
    """Turns frames into engine requests and engine events into canvas previews and staging."""

    job_changed = Signal(str)  # frame id
    staging_changed = Signal(str)  # frame id
    error = Signal(str)  # a message for a person
    busy_changed = Signal(bool)
    # When the queue empties: how the last job ended ("Done", "Cancelled", "Failed"), for the status bar.
    outcome = Signal(str)
    # Around an accept: just before the candidate is composited (the document as it is before it)
    # and just after (frame id, Candidate; then frame id, Patch). The seam check listens.
    accepting = Signal(str, object)
    accepted = Signal(str, object)

    def __init__(self, ws: Workspace, worker: EngineWorker) -> None:
        super().__init__()
        self.ws = ws
        self.worker = worker
        self.jobs: dict[int, Job] = {}
        self.staging: dict[str, Staging] = {}
        self.last_seed: dict[str, int] = {}
        self.context_padding = 32
        # Candidates an upscale set aside: staged again on cancel, error, or undo of the growth.
        self.set_aside = SetAside(self.staging)
        self._bound_doc = ws.doc
        ws.doc.events.history_changed.connect(self._on_history_changed)
        worker.loading.connect(self._on_loading)
        worker.started.connect(self._on_started)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.cancelled.connect(self._on_cancelled)
        worker.failed.connect(self._on_failed)
        ws.document_replaced.connect(self._on_document_replaced)

    # -- queries ---------------------------------------------------------------------------------
    def active_jobs(self, frame_id: str | None = None) -> list[Job]:
        return [
            j for j in self.jobs.values() if j.state.active and (frame_id is None or j.frame.id == frame_id)
        ]

    @property
    def busy(self) -> bool:
        return bool(self.active_jobs())

    def mode_for(self, frame_id: str) -> Mode:
        doc = self.ws.doc
        frame = doc.frame(frame_id)
        return decide_mode(doc.image.read(*frame.rect), doc.mask.read(*frame.rect))

    # -- commands --------------------------------------------------------------------------------
    def generate(self, frame_id: str, seed: int | None = None, **overrides: object) -> int:
        """Queue a generation for the frame; returns the request id. Raises ValueError with a
        readable message when the frame cannot be generated."""
        doc = self.ws.doc
        frame = doc.frame(frame_id)
        mode = overrides.pop("mode", None)
        plan = plan_frame(doc, frame, self.context_padding, seed=seed, mode=mode)  # type: ignore[arg-type]
        request = plan.request(frame, **overrides)
        return self._submit(frame, request)

    def upscale(self, frame_id: str, scale: int) -> int:
        """Upscale x2/x4 what the frame shows: the candidate staged on it (``upscale_candidate``),
        else what lies under it. The frame grows ``scale`` times from its top-left corner (one undo
        step) and the Lanczos-upscaled pixels, refined at low strength in tiles, are staged on it
        like any candidate. Raises ValueError (empty frame, too large)."""
        if self.shown_candidate(frame_id) is not None:
            return self.upscale_candidate(frame_id, scale)
        frame = self.ws.doc.frame(frame_id)
        return self._upscale(frame, frame.rect, frame, scale)

    def shown_candidate(self, frame_id: str) -> Candidate | None:
        """The candidate staged and shown on the frame; None without one, or while a run for the
        frame goes (its previews show instead)."""
        staging = self.staging.get(frame_id)
        if staging is None or staging.current is None or self.active_jobs(frame_id):
            return None
        return staging.current

    def upscale_candidate(self, frame_id: str, scale: int) -> int:
        """Upscale x2/x4 the candidate shown on the frame before accepting it: its frame as
        accepting it would make it, refined with the prompt, settings and seed that made it. The
        staged candidates are set aside while it runs (they no longer fit the grown frame): staged
        again if it is cancelled or fails, or when the growth is undone. Raises ValueError
        (nothing staged, too large) before anything changes."""
        cand = self.shown_candidate(frame_id)
        if cand is None:
            raise ValueError("no candidate is staged on this frame")
        rect = cand.frame.rect
        pixels = accepted_pixels(self.ws.doc, cand.request, cand.image, rect)
        return self._upscale(self.ws.doc.frames.get(frame_id), rect, cand.request, scale, pixels, cand.seed)

    def upscale_patch(self, patch: Patch, scale: int) -> int:
        """Upscale x2/x4 an accepted patch: its pixels as they are now, refined with the prompt,
        settings and seed that made it (its lineage: upscaling it again gives the same result).
        Staged on the patch's frame, moved onto the patch and grown ``scale`` times (one undo
        step), or on a new frame where that one is gone. Raises ValueError (empty, too large)
        before anything changes."""
        lineage = GenerationRequest.from_json(patch.request_json)
        return self._upscale(self.ws.doc.frames.get(patch.frame_id), patch.rect, lineage, scale)

    def _upscale(
        self,
        frame: PromptFrame | None,
        rect: tuple[int, int, int, int],
        settings: PromptFrame | GenerationRequest,
        scale: int,
        pixels: np.ndarray | None = None,
        seed: int | None = None,
    ) -> int:
        """The one way every upscale goes: ``pixels`` (default: the document's under ``rect``)
        upscaled with ``settings``' prompt, settings and seed (``seed`` overrides it), staged on
        ``frame`` grown over ``rect``."""
        doc = self.ws.doc
        x, y, w, h = rect
        pixels = doc.image.read(*rect) if pixels is None else pixels
        seed = decide_seed(settings.seed if seed is None else seed)
        request = upscale_request(pixels, scale, settings, seed=seed)
        big = dict(x=x, y=y, w=w * scale, h=h * scale)
        last = doc.history.last
        before, aside = None, None
        if frame is None:  # a patch whose frame was deleted: a new frame with the patch's settings
            names = tuple(n for n in FRAME_SETTINGS if n != "batch")
            frame = doc.add_frame(PromptFrame(**big, **frame_settings(settings, names)))  # type: ignore[arg-type]
        else:
            before = frame.rect
            aside = self.staging.pop(frame.id, None)  # candidates of the small frame no longer fit it
            frame = doc.update_frame(frame.id, f"Upscale x{scale}", **big)
        command = doc.history.last
        self.ws.select_frame(frame.id)
        rid = self._submit(frame, replace(request, origin=(frame.x, frame.y)))
        growth = Growth(frame.id, None if command is last else command, before, frame.rect, aside)
        self.set_aside.begin(rid, growth)
        self._show_staging(frame.id)
        return rid

    def repair_seam(self, frame_id: str, band: tuple[tuple[int, int], np.ndarray]) -> int:
        """Re-inpaint ``band`` ((canvas x, y), HxW uint8) of the frame at the repair's low strength,
        planned like any generation; the result is staged on the frame. Raises ValueError when the
        band lies outside the frame."""
        doc = self.ws.doc
        frame = doc.frame(frame_id)
        plan = plan_frame(doc, frame, self.context_padding, seed=random.randint(0, MAX_SEED), mask=band)
        return self._submit(frame, plan.request(frame, strength=REPAIR_STRENGTH, batch=1))

    def _submit(self, frame: PromptFrame, request: GenerationRequest) -> int:
        frame_id = frame.id
        self.last_seed[frame_id] = request.seed
        was_busy = self.busy
        rid = self.worker.submit(request)
        self.jobs[rid] = Job(rid, frame, request)
        self._show_job(frame_id)
        if not was_busy:
            self.busy_changed.emit(True)
        return rid

    def generate_more(self, frame_id: str) -> int:
        """Another batch with a fresh seed; its candidates join the staged ones."""
        return self.generate(frame_id, seed=random.randint(0, MAX_SEED))

    def cancel(self, frame_id: str | None = None) -> bool:
        """Cancel the frame's jobs (or, with None, the running job and everything queued)."""
        jobs = self.active_jobs(frame_id)
        for job in jobs:
            self.worker.cancel(job.request_id)
        return bool(jobs)

    def reroll_patch(self, patch: Patch, prompt: str | None = None, negative: str | None = None) -> int:
        """Generate the patch's region again with a new seed (and optionally an edited prompt),
        with the settings recorded in its lineage. The result is staged on the patch's frame."""
        doc = self.ws.doc
        lineage = GenerationRequest.from_json(patch.request_json)
        frame = doc.frames.get(patch.frame_id)
        # Batch is the frame's own choice; the rest is what made the patch.
        settings = frame_settings(lineage, tuple(n for n in FRAME_SETTINGS if n != "batch"))
        if prompt is not None:
            settings["prompt"] = prompt
        if negative is not None:
            settings["negative_prompt"] = negative
        # The lineage keeps the regions relative to the crop; the frame keeps them relative to itself.
        dx, dy = lineage.origin[0] - patch.x, lineage.origin[1] - patch.y
        regions = tuple(r.shifted(dx, dy) for r in lineage.regions)
        if frame is None:
            frame = doc.add_frame(
                PromptFrame(x=patch.x, y=patch.y, w=patch.w, h=patch.h, regions=regions, **settings)  # type: ignore[arg-type]
            )
        elif frame.visible_regions() != regions:
            settings["regions"] = regions  # type: ignore[assignment]
        if frame.rect != patch.rect or any(getattr(frame, k) != v for k, v in settings.items()):
            frame = doc.update_frame(
                frame.id, "Re-roll settings", x=patch.x, y=patch.y, w=patch.w, h=patch.h, **settings
            )
        self.ws.select_frame(frame.id)
        # The original mode: a txt2img patch is re-rolled from scratch, not as img2img of itself.
        return self.generate(frame.id, seed=random.randint(0, MAX_SEED), mode=lineage.mode)

    def select_candidate(self, frame_id: str, index: int) -> None:
        staging = self.staging.get(frame_id)
        if staging is None or not staging.candidates:
            return
        staging.index = index % len(staging.candidates)
        self._show_staging(frame_id)

    def step_candidate(self, frame_id: str, delta: int) -> None:
        staging = self.staging.get(frame_id)
        if staging is not None:
            self.select_candidate(frame_id, staging.index + delta)

    def accept(self, frame_id: str) -> Patch | None:
        """Write the current candidate into the document as one undoable patch."""
        staging = self.staging.get(frame_id)
        if staging is None or staging.current is None:
            return None
        cand = staging.current
        self.accepting.emit(frame_id, cand)
        patch = accept_candidate(
            self.ws.doc, cand.frame.id, cand.frame.rect, cand.request, cand.image, cand.seed
        )
        del self.staging[frame_id]
        self.accepted.emit(frame_id, patch)
        self._show_staging(frame_id)
        return patch

    def discard(self, frame_id: str) -> None:
        if self.staging.pop(frame_id, None) is not None:
            self._show_staging(frame_id)

    def shutdown(self) -> None:
        self.worker.cancel_all()

    # -- worker events ---------------------------------------------------------------------------
    def _on_loading(self, ev: Loading) -> None:
        job = self.jobs.get(ev.request_id)
        if job is None:
            return
        job.apply(JobEvent.LOADING)
        job.stage, job.stage_fraction = ev.stage, ev.fraction
        self._show_job(job.frame.id)

    def _on_started(self, ev: Started) -> None:
        job = self.jobs.get(ev.request_id)
        if job is None:
            return
        job.apply(JobEvent.STARTED)
        job.total, job.tiles = ev.total_steps, max(1, ev.tiles)
        item = self.ws.scene.frame_items.get(job.frame.id)
        if item is not None:
            item.clear_previews()
            # The staged candidate would hide the live previews of this run: show it again after.
            item.set_staged(None)
        self._show_job(job.frame.id)

    def _on_progress(self, ev: Progress) -> None:
        job = self.jobs.get(ev.request_id)
        if job is None or job.apply(JobEvent.PROGRESS) is not JobState.RUNNING:
            return
        job.record_progress(ev.step, ev.total, ev.tile)
        item = self.ws.scene.frame_items.get(job.frame.id)
        if item is not None and ev.preview is not None:
            ox, oy = job.request.origin
            x, y, w, h = ev.tile_box
            item.set_preview(
                ev.tile, QRectF(ox + x, oy + y, w, h), array_to_qimage(np.ascontiguousarray(ev.preview))
            )
        self._show_job(job.frame.id)

    def _on_finished(self, ev: Finished) -> None:
        job = self.jobs.get(ev.request_id)
        if job is None:
            return
        job.apply(JobEvent.FINISHED)
        staging = self.staging.setdefault(job.frame.id, Staging())
        first_new = len(staging.candidates)
        for image, seed in zip(ev.candidates, ev.seeds, strict=False):
            staging.candidates.append(Candidate(job.frame, job.request, np.asarray(image), int(seed)))
        staging.index = min(first_new, len(staging.candidates) - 1)
        if ev.notices:
            job.message = "; ".join(ev.notices)
        for frame_id in self.set_aside.finished(ev.request_id, self.ws.doc):
            self._show_staging(frame_id)
        self._end_job(job)

    def _on_cancelled(self, ev: Cancelled) -> None:
        job = self.jobs.get(ev.request_id)
        if job is None:
            return
        job.apply(JobEvent.CANCELLED)
        self.set_aside.called_off(ev.request_id, self.ws.doc)
        self._end_job(job)

    def _on_failed(self, ev: Failed) -> None:
        job = self.jobs.get(ev.request_id)
        if job is None:
            return
        job.apply(JobEvent.FAILED)
        job.message = ev.message
        self.set_aside.called_off(ev.request_id, self.ws.doc)
        self._end_job(job)
        self.error.emit(ev.message)

    def _end_job(self, job: Job) -> None:
        item = self.ws.scene.frame_items.get(job.frame.id)
        if item is not None and not self.active_jobs(job.frame.id):
            item.clear_previews()
        self._show_staging(job.frame.id)
        self.job_changed.emit(job.frame.id)
        if not self.busy:
            self.busy_changed.emit(False)
            self.outcome.emit(_OUTCOME[job.state])

    def _on_document_replaced(self) -> None:
        self.set_aside.clear()  # before the cancels arrive: they must not touch the new document
        self.cancel()
        self.staging.clear()
        self._bound_doc.events.history_changed.disconnect(self._on_history_changed)
        self._bound_doc = self.ws.doc
        self._bound_doc.events.history_changed.connect(self._on_history_changed)
        self.jobs = {rid: j for rid, j in self.jobs.items() if j.state.active}

    def _on_history_changed(self) -> None:
        for frame_id in self.set_aside.sync(self.ws.doc):
            self._show_staging(frame_id)

    # -- display ---------------------------------------------------------------------------------
    def status_text(self, frame_id: str) -> tuple[str, float | None]:
        jobs = self.active_jobs(frame_id)
        queued = f" · +{len(jobs) - 1} queued" if len(jobs) > 1 else ""
        running = [j for j in jobs if j.state is JobState.RUNNING]
        if running:
            job = running[0]
            eta = job.eta_seconds()
            text = f"step {job.step}/{job.total}"
            if job.tiles > 1:
                text += f" · tile {job.tile + 1}/{job.tiles}"
            if eta is not None:
                text += f" · {eta:.0f}s left"
            return text + queued, job.fraction
        loading = [j for j in jobs if j.state is JobState.LOADING]
        if loading:
            job = loading[0]
            return f"{job.stage} {job.stage_fraction:.0%}" + queued, job.stage_fraction
        if jobs:
            return f"queued ({len(jobs)})", 0.0
        staging = self.staging.get(frame_id)
        if staging and staging.candidates:
            return f"candidate {staging.index + 1}/{len(staging.candidates)} · Enter accepts", None
        return "", None

    def _show_job(self, frame_id: str) -> None:
        item = self.ws.scene.frame_items.get(frame_id)
        if item is not None:
            text, fraction = self.status_text(frame_id)
            item.set_status(text, fraction)
        self.job_changed.emit(frame_id)

    def _show_staging(self, frame_id: str) -> None:
        """Show the current candidate as accepting it would write it now (composited over the
        document), unless a run for the frame is under way (then its previews show)."""
        item = self.ws.scene.frame_items.get(frame_id)
        staging = self.staging.get(frame_id)
        if item is not None:
            cand = staging.current if staging else None
            if cand is None or self.active_jobs(frame_id):
                item.set_staged(None)
            else:
                ox, oy = cand.request.origin
                preview = preview_candidate(self.ws.doc, cand.request, cand.image)
                rect = QRectF(ox, oy, cand.request.width, cand.request.height)
                item.set_staged(array_to_qimage(np.ascontiguousarray(preview)), rect)
            text, fraction = self.status_text(frame_id)
            item.set_status(text, fraction)
        self.staging_changed.emit(frame_id)
