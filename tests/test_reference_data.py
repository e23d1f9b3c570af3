"""The reference DiT's procedural dataset, labels and latent codec (CPU)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fgsim.errors import FgsimError  # noqa: E402
from fgsim.reference.data import (  # noqa: E402
    IMAGES,
    LATENT_CHANNELS,
    MOTIONS,
    NUM_CLASSES,
    ClipDataset,
    ClipLabel,
    ClipRenderer,
    LatentCodec,
    camera_path,
    clip_params,
    latent_shape,
    token_grid,
    video_shape,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def renderer() -> ClipRenderer:
    return ClipRenderer("cpu")


def test_import_fgsim_reference_does_not_import_torch():
    code = "import sys, fgsim, fgsim.reference, fgsim.reference.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_clips_are_deterministic_and_batch_independent(renderer):
    a = ClipDataset(seed=7, renderer=renderer)
    b = ClipDataset(seed=7, renderer=renderer)
    va, la = a.clips([3, 5], 9, 32, 48)
    vb, lb = b.clips([3, 5], 9, 32, 48)
    assert va.shape == (2, 3, 9, 32, 48) and va.dtype == torch.float32
    assert la.shape == (2, 3) and la.dtype == torch.int64
    assert torch.equal(va, vb) and torch.equal(la, lb)
    v5, l5 = a.clips([5], 9, 32, 48)  # clip 5 alone is clip 5 of the batch
    assert torch.equal(v5[0], va[1]) and torch.equal(l5[0], la[1])
    assert float(va.min()) >= 0.0 and float(va.max()) <= 1.0
    assert float(va.std()) > 0.05  # real image content, not a constant
    assert [x.as_list() for x in a.labels([3, 5])] == la.tolist()
    vc, _ = ClipDataset(seed=8, renderer=renderer).clips([3, 5], 9, 32, 48)
    assert not torch.equal(va, vc)


def test_frames_move(renderer):
    ds = ClipDataset(seed=1, renderer=renderer)
    lab = ClipLabel(IMAGES.index("coffee"), MOTIONS.index("pan_right"), 0)
    v, _ = ds.clips([0], 9, 64, 96, labels=[lab])
    assert float((v[0, :, -1] - v[0, :, 0]).abs().mean()) > 0.01  # the camera pans
    static = ClipLabel(lab.image, MOTIONS.index("static"), 0)
    s, _ = ds.clips([0], 9, 64, 96, labels=[static])
    assert torch.equal(s[0, :, 0], s[0, :, -1])  # no shapes, no motion: identical frames


def test_label_override_keeps_other_parameters():
    p = clip_params(3, 11)
    other = ClipLabel((p.label.image + 1) % len(IMAGES), p.label.motion, 1 - p.label.shapes)
    q = clip_params(3, 11, other)
    assert q.label == other
    assert (p.scale, p.center, p.pan_speed) == (q.scale, q.center, q.pan_speed)
    assert np.array_equal(p.pos, q.pos) and np.array_equal(p.kind, q.kind)


def test_camera_stays_on_canvas():
    for i in range(40):
        p = clip_params(0, i)
        cam = camera_path(p, 81, 480 / 832)
        assert np.all(np.abs(cam[:, 2]) + cam[:, 0] <= 1 + 1e-9)
        assert np.all(np.abs(cam[:, 3]) + cam[:, 1] <= 1 + 1e-9)


def test_labels_round_trip():
    ids = [ClipLabel.from_class_id(i).class_id for i in range(NUM_CLASSES)]
    assert ids == list(range(NUM_CLASSES))
    lab = ClipLabel.parse("coffee/zoom_in/shapes")
    assert lab.name == "coffee/zoom_in/shapes" and ClipLabel.parse(str(lab.class_id)) == lab
    with pytest.raises(FgsimError, match="bad label"):
        ClipLabel.parse("coffee/fly/shapes")
    with pytest.raises(FgsimError, match="out of range"):
        ClipLabel.from_class_id(NUM_CLASSES)


def test_wan480p_grid_is_an_81_frame_480x832_clip():
    assert video_shape(21, 60, 104) == (81, 480, 832)
    assert latent_shape(81, 480, 832) == (21, 60, 104)
    assert token_grid(21, 60, 104) == (21, 30, 52)
    assert np.prod(token_grid(21, 60, 104)) == 32_760
    with pytest.raises(FgsimError, match="not encodable"):
        latent_shape(80, 480, 832)
    with pytest.raises(FgsimError, match="not encodable"):
        latent_shape(81, 484, 832)


def test_pixel_unshuffle_is_exact_and_documented():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 9, 16, 24, generator=gen)
    ident = LatentCodec(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    z = ident.encode(x)
    assert z.shape == (2, LATENT_CHANNELS, 3, 2, 3)
    assert torch.equal(ident.decode(z), x)  # the rearrangement is exact
    # channel ((c*4 + dt)*8 + dy)*8 + dx at (t, i, j) = colour c of frame 4t + dt - 3 (frame 0 for t = 0)
    rng = np.random.default_rng(1)
    for _ in range(50):
        b, c, dt, dy, dx = (int(rng.integers(n)) for n in (2, 3, 4, 8, 8))
        t, i, j = (int(rng.integers(n)) for n in (3, 2, 3))
        frame = max(0, 4 * t + dt - 3)
        assert z[b, ((c * 4 + dt) * 8 + dy) * 8 + dx, t, i, j] == x[b, c, frame, 8 * i + dy, 8 * j + dx]


def test_codec_normalises_and_round_trips():
    codec = LatentCodec.from_config()
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, 5, 16, 16, generator=gen)
    z = codec.encode(x)
    assert torch.allclose(codec.decode(z), x, atol=1e-6, rtol=0)
    mid = torch.full((1, 3, 5, 8, 8), 0.5)
    zc = codec.encode(mid)  # channel c of colour k is (0.5 - mean_k) / std_k
    k = 1
    ch = k * 4 * 8 * 8 + 17
    assert torch.allclose(zc[0, ch], torch.tensor((0.5 - codec.mean[k]) / codec.std[k]))
    with pytest.raises(FgsimError, match="must be"):
        codec.encode(torch.zeros(1, 4, 5, 16, 16))
