"""RemoteEngine against a real Ray Serve server on 127.0.0.1 serving the built-in model."""

from __future__ import annotations

import http.client
import json
import time
import uuid

import numpy as np
import pytest
from serve_support import RAY_MISSING, TOKEN, free_port, run

from canvas_app.engine.api import (
    Cancelled,
    CancelToken,
    Failed,
    Finished,
    GenerationRequest,
    Mode,
    Progress,
    Started,
    TilePlan,
)
from canvas_app.engine.remote import RemoteEngine
from canvas_app.engine.wire import encode_request

if RAY_MISSING:
    pytest.skip(RAY_MISSING, allow_module_level=True)

TERMINAL = (Finished, Cancelled, Failed)


@pytest.fixture(scope="module")
def local():
    import torch

    from canvas_app.engine.local import LocalDiffusersEngine

    # The replica runs with one thread (Ray gives it num_cpus=1): the same here, for equal sums.
    torch.set_num_threads(1)
    return LocalDiffusersEngine(device="cpu", preview_interval_s=0.0)


@pytest.fixture(scope="module")
def remote(server) -> RemoteEngine:
    return RemoteEngine(server.url, TOKEN)


def terminal(events):
    ends = [e for e in events if isinstance(e, TERMINAL)]
    assert len(ends) == 1, f"expected exactly one terminal event, got {ends}"
    assert events[-1] is ends[0]
    return ends[0]


def photo(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.clip(
        np.stack([127 + 100 * np.sin(xx / 9 + p) * np.cos(yy / 13 - p) for p in (0, 2, 4)], 2), 0, 255
    ).astype(np.uint8)


def test_server_describes_itself_and_lists_its_models(remote: RemoteEngine) -> None:
    assert "cpu" in remote.describe_device().lower()
    names = [m.name for m in remote.models()]
    assert names[0] == "builtin" and remote.models()[0].native_size == 128


def test_txt2img_equals_the_local_engine(remote: RemoteEngine, local) -> None:
    request = GenerationRequest(prompt="a red house by a lake", steps=6, seed=11, batch=2)
    events = run(remote, request, on_event=None)
    got = terminal(events)
    assert isinstance(got, Finished), got
    assert any(isinstance(e, Started) for e in events)
    previews = [e for e in events if isinstance(e, Progress) and e.preview is not None]
    assert previews and previews[0].preview.dtype == np.uint8
    want = terminal(run(local, request))
    assert isinstance(want, Finished)
    assert got.seeds == want.seeds == [11, 12]
    assert got.request is request
    for a, b in zip(got.candidates, want.candidates):
        assert a.shape == b.shape == (128, 128, 3)
        # Same code, same weights, same thread count, PNG lossless: bit for bit here. One level is
        # allowed because the replica's torch may pick other kernels on another CPU of a cluster.
        diff = int(np.abs(a.astype(int) - b.astype(int)).max())
        print(f"remote vs local txt2img: max difference {diff} levels")
        assert diff <= 1


def masked_requests() -> dict[str, GenerationRequest]:
    mask = np.zeros((128, 128), np.uint8)
    mask[32:96, 40:100] = 255
    rgba = np.dstack([photo(128, 128), np.full((128, 128), 255, np.uint8)])
    rgba[:, 80:, 3] = 0  # the right part is empty canvas
    return {
        "inpaint": GenerationRequest(
            prompt="a tree",
            mode=Mode.INPAINT,
            steps=4,
            seed=5,
            strength=1.0,
            init_image=photo(128, 128),
            mask=mask,
        ),
        # The inpaint settings travel and run the same on the server (issue 16).
        "inpaint-fill": GenerationRequest(
            prompt="",
            mode=Mode.INPAINT,
            steps=4,
            seed=5,
            strength=0.5,
            init_image=photo(128, 128),
            mask=mask,
            masked_content="fill",
            color_correction=True,
        ),
        "outpaint": GenerationRequest(
            prompt="hills", mode=Mode.OUTPAINT, steps=4, seed=6, strength=1.0, init_image=rgba
        ),
        "tiled": GenerationRequest(
            prompt="a wide lake", width=256, steps=3, seed=7, tile_plan=TilePlan(128, 32)
        ),
    }


@pytest.mark.parametrize("kind", ["inpaint", "inpaint-fill", "outpaint", "tiled"])
def test_masked_and_tiled_runs_equal_the_local_engine(remote: RemoteEngine, local, kind: str) -> None:
    request = masked_requests()[kind]
    events = run(remote, request)
    got = terminal(events)
    want = terminal(run(local, request))
    assert isinstance(got, Finished) and isinstance(want, Finished), (got, want)
    if kind == "tiled":
        assert next(e for e in events if isinstance(e, Started)).tiles > 1
    assert got.candidates[0].shape == (request.height, request.width, 3)
    assert np.abs(got.candidates[0].astype(int) - want.candidates[0].astype(int)).max() <= 1


def test_cancel_stops_within_one_step_and_the_server_stays_usable(remote: RemoteEngine) -> None:
    cancel = CancelToken()
    seen: list[int] = []

    def on_event(event) -> None:
        if isinstance(event, Progress):
            seen.append(event.step)
            if event.step == 2:
                cancel.cancel()

    t0 = time.perf_counter()
    events = run(remote, GenerationRequest(prompt="a boat", steps=200, seed=1), cancel, on_event)
    end = terminal(events)
    assert isinstance(end, Cancelled), end
    # The server's confirmation names the step it stopped at: within one step of the cancel
    # (plus the steps already streamed while the cancel call travelled).
    assert 2 <= end.step <= max(seen) + 1 < 200
    assert time.perf_counter() - t0 < 60
    assert isinstance(terminal(run(remote, GenerationRequest(prompt="a boat", steps=3))), Finished)


def test_a_dropped_stream_stops_the_server_run(server, remote: RemoteEngine) -> None:
    """The client goes away without /cancel: Ray Serve cancels the handler, the engine stops, and
    the next run does not wait behind 300 orphaned steps."""
    conn = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=30)
    body = encode_request(uuid.uuid4().hex, GenerationRequest(prompt="a hill", steps=300, seed=2))
    conn.request("POST", "/generate", body=body, headers={"Authorization": f"Bearer {TOKEN}"})
    response = conn.getresponse()
    stamps = []
    while len(stamps) < 4:
        if json.loads(response.readline())["type"] == "progress":
            stamps.append(time.perf_counter())
    step_s = (stamps[-1] - stamps[0]) / 3
    conn.sock.close()  # the network drops
    conn.close()
    t0 = time.perf_counter()
    events = run(remote, GenerationRequest(prompt="a hill", steps=3, seed=2))
    assert isinstance(terminal(events), Finished)
    # Had the orphaned run gone on, this one would have waited for its ~296 remaining steps.
    assert time.perf_counter() - t0 < max(100 * step_s, 2.0)


def test_wrong_token_is_one_clear_failure(server) -> None:
    engine = RemoteEngine(server.url, "not-the-token")
    end = terminal(run(engine, GenerationRequest(prompt="x", steps=2)))
    assert isinstance(end, Failed) and "refused the token" in end.message
    assert "not connected" in engine.describe_device() and "refused the token" in engine.describe_device()


def test_a_model_the_server_lacks_is_refused(remote: RemoteEngine) -> None:
    end = terminal(run(remote, GenerationRequest(prompt="x", steps=2, model="/home/me/secret.safetensors")))
    assert isinstance(end, Failed) and "no model" in end.message


def test_server_down_is_one_clear_failure() -> None:
    engine = RemoteEngine(f"http://127.0.0.1:{free_port()}", TOKEN)
    end = terminal(run(engine, GenerationRequest(prompt="x", steps=2)))
    assert (
        isinstance(end, Failed) and "cannot reach" in end.message and "is the server running" in end.message
    )


def test_cli_generates_on_the_server(server, tmp_path, capsys) -> None:
    from PIL import Image

    from canvas_app.cli import main
    from canvas_app.core.image_metadata import REQUEST_KEY

    out = tmp_path / "house.png"
    args = [
        "generate",
        "--engine",
        server.url,
        "--prompt",
        "a house",
        "--steps",
        "3",
        "--seed",
        "4",
        "--out",
        str(out),
    ]
    assert main([*args, "--token", "wrong-token", "--quiet"]) == 1
    assert "refused the token" in capsys.readouterr().err and not out.exists()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert main([*args, "--token-file", str(token_file), "--quiet"]) == 0
    with Image.open(out) as img:
        assert img.size == (128, 128) and json.loads(img.text[REQUEST_KEY])["seed"] == 4


def test_a_replica_dying_mid_run_fails_once_and_the_next_run_works(server, remote: RemoteEngine) -> None:
    """The server restarting under a run (here: its replica killed): one Failed, then Ray Serve
    starts a new replica and the same engine object runs again."""
    import ray

    replicas = [a for a in ray.util.list_named_actors(all_namespaces=True) if "canvas-engine" in a["name"]]
    assert replicas, ray.util.list_named_actors(all_namespaces=True)

    def kill_at_step_2(event) -> None:
        if isinstance(event, Progress) and event.step == 2:
            ray.kill(ray.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"]))

    events = run(remote, GenerationRequest(prompt="a tower", steps=200, seed=3), on_event=kill_at_step_2)
    end = terminal(events)
    assert isinstance(end, Failed), end
    assert "engine server" in end.message
    deadline = time.monotonic() + 120
    while True:  # the new replica may take a while to come up
        end = terminal(run(remote, GenerationRequest(prompt="a tower", steps=2)))
        if isinstance(end, Finished) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert isinstance(end, Finished), end
