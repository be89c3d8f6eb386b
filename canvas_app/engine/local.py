"""LocalDiffusersEngine: the Engine that runs requests in this process with torch + diffusers.

See ARCHITECTURE.md, "The flow of one generation". ``generate`` blocks until the run ends and never
raises for a failed run: it emits Failed with a message a person can act on, and the engine stays
ready for the next request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from canvas_app.core import limits
from canvas_app.core.vocabulary import REGION_LABELS
from canvas_app.engine.api import (
    Cancelled,
    CancelToken,
    EngineEvent,
    Failed,
    Finished,
    GenerationRequest,
    Loading,
    Mode,
    Progress,
    Started,
)
from canvas_app.engine.compiling import compile_from_environment
from canvas_app.engine.errors import EngineError, InputError
from canvas_app.engine.schedulers import canonical_name


@dataclass(frozen=True)
class EngineSettings:
    device: str | None = None  # None: best available; else e.g. "cuda", "cpu", "mps:fp32"
    allow_pickle: bool = False  # allow .ckpt/.bin/.pt checkpoints (they can run arbitrary code)
    previews: bool = True
    preview_interval_s: float = 0.1  # per tile
    infill: str = "telea"  # "telea" | "ns" | "edge": how empty pixels are filled before outpainting
    # torch.compile the UNet (engine/compiling.py): faster steps after a long first run per tile size.
    compile: bool = field(default_factory=compile_from_environment)


def validate(request: GenerationRequest) -> None:
    """Raise InputError for a request that cannot run, before any model is loaded."""
    w, h = request.width, request.height
    # The same bounds every import of settings checks against (core.limits).
    problem = (
        limits.size_problem(w, h)
        or limits.steps_problem(request.steps)
        or limits.batch_problem(request.batch)
        or limits.guidance_problem(request.guidance)
        or (limits.strength_problem(request.strength) if request.mode is not Mode.TXT2IMG else None)
        or limits.strength_problem(request.refine_strength)
    )
    if problem:
        raise InputError(problem)
    canonical_name(request.scheduler)
    if request.mode is Mode.TXT2IMG:
        return
    image = request.init_image
    if image is None:
        raise InputError(f"{request.mode.value} needs an init image")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError("the init image must be an RGB or RGBA 8-bit image")
    if image.shape[:2] != (h, w):
        raise InputError(f"the init image is {image.shape[1]}x{image.shape[0]}, the request {w}x{h}")
    mask = request.mask
    if request.mode is Mode.INPAINT and mask is None:
        raise InputError("inpaint needs a mask")
    if mask is not None and (mask.ndim != 2 or mask.shape != (h, w)):
        raise InputError(
            f"the mask is {mask.shape[1::-1] if mask.ndim >= 2 else mask.shape}, the image {w}x{h}"
        )
    if request.mode is Mode.OUTPAINT and (image.shape[2] != 4 and mask is None):
        raise InputError("outpaint needs an RGBA init image (transparent = empty) or a mask")


class LocalDiffusersEngine:
    """Runs one request at a time on the local device. Thread-safe: calls are serialised."""

    def __init__(self, settings: EngineSettings | None = None, **overrides: Any) -> None:
        from canvas_app.engine.models import ModelCache

        self.settings = replace(settings or EngineSettings(), **overrides)
        self._cache = ModelCache(self.settings.allow_pickle)
        self._device: Any = None
        # Re-entrant: generate() loads through load(), which other threads may also call to preload.
        self._lock = threading.RLock()

    # -- Engine protocol ------------------------------------------------------------------------
    def describe_device(self) -> str:
        return self.device().describe()

    def generate(
        self,
        request: GenerationRequest,
        emit: Callable[[EngineEvent], None],
        cancel: CancelToken,
        request_id: int = 0,
    ) -> None:
        from canvas_app.engine.sampler import RunCancelled

        with self._lock:
            try:
                self._generate(request, emit, cancel, request_id)
            except RunCancelled as stop:
                emit(Cancelled(request_id, stop.step))
            except EngineError as error:
                emit(Failed(request_id, str(error)))
            except Exception as error:  # noqa: BLE001 - any library failure must become Failed
                emit(Failed(request_id, self._describe_failure(error)))

    # -- public helpers -------------------------------------------------------------------------
    def device(self) -> Any:
        from canvas_app.engine.devices import limit_cpu_threads, pick_device

        if self._device is None:
            self._device = pick_device(self.settings.device)
            if self._device.device == "cpu":
                limit_cpu_threads()
        return self._device

    def load(self, model: str, inpaint: bool = False, loras: tuple[tuple[str, float], ...] = ()) -> Any:
        """Load (or reuse) a model; raises ModelError. Useful to warm up before the first request."""
        from canvas_app.engine.models import resolve_source

        source = resolve_source(model, self.settings.allow_pickle, inpaint)
        with self._lock:
            return self._cache.get(source, self.device(), loras)

    def _needs_loading(self, model: str, inpaint: bool, loras: tuple[tuple[str, float], ...]) -> bool:
        """Whether load() will read a model (worth telling a person), not reuse the loaded one."""
        from canvas_app.engine.errors import ModelError
        from canvas_app.engine.models import resolve_source

        try:
            source = resolve_source(model, self.settings.allow_pickle, inpaint)
        except ModelError:
            return False  # load() fails at once and says why
        current = self._cache.current
        return current is None or current.source != source or current.loras != loras

    def release(self) -> None:
        """Free the loaded model (the next request loads it again)."""
        with self._lock:
            self._cache.release()

    # -- the run ----------------------------------------------------------------------------------
    def _compile_ahead(
        self, model: Any, cond: Any, tile: Any, t: Any, emit: Callable[[EngineEvent], None], request_id: int
    ) -> None:
        """Compile the UNet for this run's tile shape before its steps start, saying so first (a
        first compile takes minutes on a CPU: the run must not look frozen)."""
        from canvas_app.engine.compiling import COMPILING_STAGE, CompiledUNet
        from canvas_app.engine.sampler import first_call_args

        compiled = model.extras.get("compiled_unet")
        if compiled is None:
            compiled = model.extras["compiled_unet"] = CompiledUNet(model.unet)
        args, kwargs = first_call_args(model, cond, tile, t)
        if compiled.is_new(*args, **kwargs):
            emit(Loading(request_id, COMPILING_STAGE, 0.95))
            compiled(*args, **kwargs)

    def _describe_failure(self, error: Exception) -> str:
        from canvas_app.engine.devices import free_memory, is_out_of_memory

        if is_out_of_memory(error):
            self._cache.release()
            free_memory(self.device().device)
            return (
                f"out of memory on {self.device().device}: try a smaller frame, fewer candidates or a "
                "smaller tile size"
            )
        lines = str(error).strip().splitlines()
        return f"generation failed: {type(error).__name__}: {lines[0] if lines else 'no details'}"

    def _generate(
        self,
        request: GenerationRequest,
        emit: Callable[[EngineEvent], None],
        cancel: CancelToken,
        request_id: int,
    ) -> None:
        import torch

        from canvas_app.engine import conditioning, images
        from canvas_app.engine.previews import Previewer, map_for_model
        from canvas_app.engine.sampler import SampleJob, denoise, prepare_timesteps
        from canvas_app.engine.schedulers import make_scheduler
        from canvas_app.engine.tiling import plan_tiles

        # 1. Check the request and load the model (the first run of a session says so: it can take
        # longer than the run itself)
        validate(request)
        masked = request.mode in (Mode.INPAINT, Mode.OUTPAINT)
        loading = self._needs_loading(request.model, masked, request.loras)
        if loading:
            emit(Loading(request_id, f"loading model {request.model}", 0.0))
        model = self.load(request.model, inpaint=masked, loras=request.loras)
        if loading:
            emit(Loading(request_id, "preparing the inputs", 0.9))
        factor = model.vae_factor
        if request.width % factor or request.height % factor:
            raise InputError(f"this model needs sizes that are multiples of {factor}")
        from canvas_app.engine import two_pass

        if two_pass.applies(request, model.native_size, factor):  # compose, then refine
            two_pass.run(self._generate, request, emit, cancel, request_id, model)
            return
        if "rgb_map" not in model.extras:
            location = model.source.location if model.source.kind == "folder" else None
            model.extras["rgb_map"] = map_for_model(model.vae, None if location is None else _path(location))
        previewer = Previewer(model.extras["rgb_map"], self.settings.preview_interval_s)
        notices: list[str] = list(model.extras.get("lora_notices", []))

        with torch.inference_mode():
            # 2. Inputs: infill, masks, latents of the init image
            inputs = images.prepare(request, model, self.settings.infill)
            notices += inputs.notices
            # 3. Text conditioning
            cond = conditioning.encode(model, request.prompt, request.negative_prompt, request.guidance)
            notices += conditioning.truncation_notices(model, request.prompt, request.negative_prompt)
            notices += conditioning.word_notices(model, request.prompt, request.negative_prompt)
            region_prompts = None
            if request.regions:
                from canvas_app.engine import regions

                region_prompts = regions.prepare(
                    model,
                    request.prompt,
                    request.negative_prompt,
                    request.regions,
                    request.guidance,
                    request.width,
                    request.height,
                    request.regions_method,
                )
                for region in request.regions:
                    notices += conditioning.truncation_notices(model, region.prompt, region.negative_prompt)
                    notices += conditioning.word_notices(
                        model, region.prompt, region.negative_prompt, REGION_LABELS
                    )
            # 4. Tiles
            tile_px = request.tile_plan.tile_size or model.native_size
            tile = max(1, tile_px // factor)
            overlap = max(0, request.tile_plan.overlap // factor)
            lw, lh = request.width // factor, request.height // factor
            tiles = plan_tiles(lw, lh, tile, overlap)
            strength = 1.0 if request.mode is Mode.TXT2IMG else request.strength

            device = model.unet.device
            probe, notice = make_scheduler(request.scheduler, model.scheduler_config)
            if notice:
                notices.append(notice)
            probe_steps = prepare_timesteps(probe, request.steps, strength, device)[0]
            per_candidate = len(probe_steps)
            total = per_candidate * request.batch
            if self.settings.compile and region_prompts is None and per_candidate:
                self._compile_ahead(model, cond, tiles[0], probe_steps[0], emit, request_id)
            emit(Started(request_id, total, len(tiles)))

            # 5. One denoising run per candidate (seed, seed + 1, ...)
            preview_colours = (
                None if inputs.reference is None else images.PreviewColours(inputs.reference, inputs.known)
            )
            candidates, seeds = [], []
            for b in range(request.batch):
                seed = request.seed + b
                offset = b * per_candidate
                scheduler, _ = make_scheduler(request.scheduler, model.scheduler_config)
                timesteps, from_noise = prepare_timesteps(scheduler, request.steps, strength, device)

                def hook(step: int, index: int, x0: Callable[[], Any], offset: int = offset) -> None:
                    preview = None
                    box = tiles[index].scaled(factor)
                    if self.settings.previews and previewer.due(index):
                        preview = previewer.render(x0(), index)
                        if preview_colours is not None:  # as the result will be (step 6)
                            preview = preview_colours(preview, box)
                    emit(Progress(request_id, offset + step, total, index, box, preview))

                job = SampleJob(
                    model=model,
                    cond=cond,
                    scheduler=scheduler,
                    timesteps=timesteps,
                    guidance=request.guidance,
                    seed=seed,
                    latent_w=lw,
                    latent_h=lh,
                    tiles=tiles,
                    ramp=overlap,
                    init_latents=inputs.init_latents,
                    from_noise=from_noise,
                    mask=inputs.latent_mask,
                    masked_image_latents=inputs.masked_image_latents,
                    regions=region_prompts,
                )
                latents = denoise(job, hook, lambda: cancel.cancelled)
                if not bool(torch.isfinite(latents).all()):
                    raise EngineError(_NAN_MESSAGE)
                # 6. Decode: the crop is the result (core composites it at accept)
                candidates.append(
                    images.correct_colours(
                        images.decode(model, latents, tile_px), inputs.reference, inputs.known
                    )
                )
                seeds.append(seed)
        emit(Finished(request_id, candidates, seeds, request, notices))


_NAN_MESSAGE = (
    "the model produced invalid values (NaN) and there is no result; this happens with some models "
    "in half precision: try the device with :fp32, another scheduler or another model"
)


def _path(location: str) -> Any:
    from pathlib import Path

    return Path(location)
