"""The device-side image pipeline against a plain numpy reference (hash, crop, flip, normalization), and
the properties the trainer relies on: per-sample draws independent of the batch, seeded by epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrdecay.augment import AUGMENTS, ImagePipeline, augment_draws, mix32

from support import augment_reference as reference
from support import np_mix32

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_mix32_matches_numpy_and_is_a_bijection_sample():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2**32, size=10_000, dtype=np.uint64)
    x[:3] = [0, 1, 2**32 - 1]
    got = mix32(torch.from_numpy(x.astype(np.int64))).numpy().astype(np.uint64)
    assert np.array_equal(got, np_mix32(x))
    assert got.max() < 2**32 and np.unique(got).size == np.unique(x).size


@pytest.mark.parametrize("augment", AUGMENTS)
@pytest.mark.parametrize("shape,p", [((1, 1, 1, 1), 1), ((7, 3, 5, 7), 3), ((13, 1, 8, 8), 1), ((4, 3, 32, 32), 4), ((5, 2, 3, 4), 0)])
def test_pipeline_equals_numpy_reference(augment, shape, p):
    rng = np.random.default_rng(sum(shape) + p)
    x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    idx = rng.choice(10**6, size=shape[0], replace=False).astype(np.int64)
    mean = rng.uniform(0.2, 0.6, shape[1]).tolist()
    std = rng.uniform(0.1, 0.4, shape[1]).tolist()
    seed = int(rng.integers(0, 2**63))
    pipe = ImagePipeline(mean, std, augment=augment, padding=p)
    pipe.set_epoch(seed)
    got = pipe.train_batch(torch.from_numpy(x), torch.from_numpy(idx))
    assert got.dtype == torch.float32 and tuple(got.shape) == shape
    np.testing.assert_array_equal(got.numpy(), reference(x, idx, seed, mean, std, augment, p))
    # evaluation batches: normalization only
    np.testing.assert_array_equal(pipe.normalize(torch.from_numpy(x)).numpy(), reference(x, idx, seed, mean, std, "none", 0))


def test_draws_depend_on_sample_and_epoch_only():
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (64, 3, 6, 6), dtype=np.uint8))
    idx = torch.arange(1000, 1064)
    pipe = ImagePipeline([0.5] * 3, [0.25] * 3, augment="crop+flip", padding=2)
    pipe.set_epoch(42)
    whole = pipe.augment_batch(x, idx)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    shuffled = pipe.augment_batch(x[perm], idx[perm])
    assert torch.equal(shuffled, whole[perm])  # same image, same index → same augmentation, any batch
    singles = torch.cat([pipe.augment_batch(x[i : i + 1], idx[i : i + 1]) for i in range(64)])
    assert torch.equal(singles, whole)
    pipe.set_epoch(43)
    assert not torch.equal(pipe.augment_batch(x, idx), whole)
    pipe.set_epoch(42)
    assert torch.equal(pipe.augment_batch(x, idx), whole)


def test_draw_distribution():
    # offsets uniform over the 2p + 1 positions, flips half the time (a fixed seed: deterministic)
    idx = torch.arange(90_000)
    key = torch.tensor([123456789, 987654321])
    r0, r1, r2 = augment_draws(idx, key, 3)
    for r in (r0, r1):
        counts = np.bincount((r % 9).numpy(), minlength=9)
        chi2 = (((counts - 10_000) ** 2) / 10_000).sum()
        assert chi2 < 30, counts  # 8 degrees of freedom: p ~ 2e-4
    flips = ((r2 >> 16) & 1).numpy()
    assert abs(flips.mean() - 0.5) < 0.01
    # the three draws of a sample are not the same numbers
    assert (r0 != r1).float().mean() > 0.999 and (r1 != r2).float().mean() > 0.999
    assert abs(np.corrcoef((r0 % 9).numpy(), (r1 % 9).numpy())[0, 1]) < 0.02


def test_crop_keeps_pixels_and_pads_with_zero():
    x = torch.full((200, 1, 4, 4), 7, dtype=torch.uint8)
    pipe = ImagePipeline([0.0], [1 / 255], augment="crop", padding=2)  # scale 1, shift 0: raw values
    pipe.set_epoch(5)
    out = pipe.train_batch(x, torch.arange(200))
    vals = set(out.unique().tolist())
    assert vals == {0.0, 7.0}
    visible = (out == 7).sum(dim=(1, 2, 3))
    assert visible.min() >= 4 and visible.max() == 16  # at worst a 2 x 2 corner of the image stays


def test_channels_last_output():
    x = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    pipe = ImagePipeline([0.5] * 3, [0.2] * 3, augment="crop+flip", channels_last=True)
    out = pipe.train_batch(x, torch.arange(3))
    assert out.is_contiguous(memory_format=torch.channels_last)
    plain = ImagePipeline([0.5] * 3, [0.2] * 3, augment="crop+flip")
    assert torch.equal(plain.train_batch(x, torch.arange(3)), out)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(augment="rotate"), "augment must be one of"),
        (dict(padding=-1), "padding"),
        (dict(std=[0.0]), "std must be finite and > 0"),
        (dict(mean=[0.5, 0.5]), "equal-length"),
    ],
)
def test_pipeline_bad_arguments(kw, match):
    args = dict(mean=[0.5], std=[0.2])
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        ImagePipeline(args.pop("mean"), args.pop("std"), **args)


def test_pipeline_refuses_float_input_and_bad_seed():
    pipe = ImagePipeline([0.5], [0.2])
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(TypeError, match="uint8"):
        pipe.normalize(x)
    assert (x == 0).all()
    with pytest.raises(ValueError, match="seed"):
        pipe.set_epoch(-1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pipeline_in_a_cuda_graph_equals_eager():
    dev = torch.device("cuda")
    data = torch.randint(0, 256, (500, 3, 32, 32), dtype=torch.uint8, device=dev)
    idx = torch.zeros(128, dtype=torch.int64, device=dev)
    pipe = ImagePipeline([0.49, 0.48, 0.45], [0.25, 0.24, 0.26], augment="crop+flip", device=dev)
    out = torch.empty(128, 3, 32, 32, device=dev)

    def step():
        out.copy_(pipe.train_batch(data.index_select(0, idx), idx))

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        step()
    for epoch in range(3):
        pipe.set_epoch(1000 + epoch)
        idx.copy_(torch.randperm(500, device=dev)[:128])
        g.replay()
        eager = pipe.train_batch(data.index_select(0, idx), idx)
        assert torch.equal(out, eager)
        cpu = ImagePipeline([0.49, 0.48, 0.45], [0.25, 0.24, 0.26], augment="crop+flip")
        cpu.set_epoch(1000 + epoch)
        assert torch.equal(cpu.train_batch(data.index_select(0, idx).cpu(), idx.cpu()), out.cpu())
