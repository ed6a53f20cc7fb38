"""The perturbations and the spec: parsing, what each does to pixels, determinism, batch independence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from osma_bench.data import OSMADataset
from osma_bench.errors import OsmaError
from osma_bench.robustness.perturbations import (
    DEFAULT_SPEC,
    KINDS,
    Perturbation,
    Settings,
    format_spec,
    gaussian_kernel,
    parse_spec,
)


@pytest.fixture(scope="module")
def images(synthetic):
    part = OSMADataset(synthetic, 1, "test")
    pixels, _ = part.load_all()
    return pixels, np.asarray(part.indices, np.int64)


def changed(a: torch.Tensor, b: torch.Tensor, levels: int) -> float:
    """Fraction of pixel values that moved by more than ``levels``."""
    return float(((a.int() - b.int()).abs() > levels).float().mean())


def test_spec_parsing_default_canonical_form_and_duplicates():
    default = parse_spec(None)
    assert format_spec(default) == "jpeg:95,85,75,50 resize:0.75,0.5 blur:0.5,1 noise:0.01,0.02 crop:0.9"
    assert parse_spec("default") == default == parse_spec(DEFAULT_SPEC) == parse_spec([])
    assert {p.kind for p in default} == set(KINDS)
    spec = parse_spec(["jpeg:90,90 blur:1.0", "jpeg:70;noise:0.05"])
    assert [p.label for p in spec] == ["jpeg:90", "blur:1", "jpeg:70", "noise:0.05"]
    assert format_spec(spec) == "jpeg:90,70 blur:1 noise:0.05"


@pytest.mark.parametrize("text, message", [
    ("sharpen:1", "unknown perturbation 'sharpen'"),
    ("jpeg", "give strengths after a colon"),
    ("jpeg:", "give strengths after a colon"),
    ("jpeg:75.5", "is not an integer"),
    ("jpeg:0", r"outside \[1, 100\]"),
    ("jpeg:101", r"outside \[1, 100\]"),
    ("resize:0", r"outside \(0, 1\]"),
    ("resize:1.5", r"outside \(0, 1\]"),
    ("blur:abc", "is not a number"),
    ("noise:nan", "is not a number"),
    ("crop:-0.5", r"outside \(0, 1\]"),
])
def test_bad_specs_are_one_clear_error(text, message):
    with pytest.raises(OsmaError, match=message):
        parse_spec(text)


def test_settings_are_checked():
    with pytest.raises(OsmaError, match="--interpolation 'nearest'"):
        Settings(interpolation="nearest")
    with pytest.raises(OsmaError, match="--seed"):
        Settings(seed=-1)


def test_jpeg_at_quality_100_changes_few_pixels_and_at_10_many(images):
    pixels, indices = images
    q100 = Perturbation("jpeg", 100).apply(pixels, indices, Settings())
    q10 = Perturbation("jpeg", 10).apply(pixels, indices, Settings())
    assert q100.dtype == torch.uint8 and q100.shape == pixels.shape
    assert changed(q100, pixels, 2) < 0.01  # at most rounding of the DCT
    assert float((q100.int() - pixels.int()).abs().float().mean()) < 1.0
    assert changed(q10, pixels, 4) > 0.5


@pytest.mark.parametrize("label", [p.label for p in parse_spec(DEFAULT_SPEC)] + ["blur:6", "resize:0.1"])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_each_image_is_perturbed_alone_so_batches_do_not_matter(images, label, interpolation):
    pixels, indices = images
    kind, strength = label.split(":")
    p = Perturbation(kind, float(strength))
    settings = Settings(interpolation=interpolation, seed=3)
    whole = p.apply(pixels, indices, settings)
    assert whole.dtype == torch.uint8 and whole.shape == pixels.shape
    assert not torch.equal(whole, pixels)
    pieces = torch.cat([p.apply(pixels[i:i + 5], indices[i:i + 5], settings) for i in range(0, len(pixels), 5)])
    assert torch.equal(whole, pieces)
    order = np.random.default_rng(0).permutation(len(pixels))  # another order, same images: same results
    assert torch.equal(p.apply(pixels[order], indices[order], settings), whole[order])


def test_noise_is_seeded_per_image_and_has_the_stated_std(images):
    pixels, indices = images
    flat = torch.full((200, 3, 32, 32), 128, dtype=torch.uint8)
    ids = np.arange(200)
    out = Perturbation("noise", 0.02).apply(flat, ids, Settings(seed=0)).double() / 255
    assert abs(float(out.std()) - 0.02) < 0.002  # rounding to 1/255 adds a little
    same = Perturbation("noise", 0.02).apply(pixels, indices, Settings(seed=0))
    assert torch.equal(same, Perturbation("noise", 0.02).apply(pixels, indices, Settings(seed=0)))
    assert not torch.equal(same, Perturbation("noise", 0.02).apply(pixels, indices, Settings(seed=1)))
    assert not torch.equal(same, Perturbation("noise", 0.02).apply(pixels, indices + 1, Settings(seed=0)))


def test_resize_and_crop_at_full_size_and_blur_of_a_flat_image_change_nothing(images):
    pixels, indices = images
    for label in ("resize:1", "crop:1"):
        kind, strength = label.split(":")
        for interpolation in ("bilinear", "bicubic"):
            out = Perturbation(kind, float(strength)).apply(pixels, indices, Settings(interpolation))
            assert torch.equal(out, pixels), label
    flat = torch.full((2, 3, 8, 8), 77, dtype=torch.uint8)
    assert torch.equal(Perturbation("blur", 10).apply(flat, np.arange(2), Settings()), flat)


def test_blur_kernel_and_strength():
    weights = gaussian_kernel(1.0)
    assert len(weights) == 7 and abs(float(weights.sum()) - 1) < 1e-12 and int(weights.argmax()) == 3
    impulse = torch.zeros((1, 3, 15, 15), dtype=torch.uint8)
    impulse[..., 7, 7] = 255
    mild = Perturbation("blur", 0.5).apply(impulse, np.arange(1), Settings())
    strong = Perturbation("blur", 1.5).apply(impulse, np.arange(1), Settings())
    assert int(strong[0, 0, 7, 7]) < int(mild[0, 0, 7, 7]) < 255
    assert int((strong > 0).sum()) > int((mild > 0).sum())


def test_resize_loses_detail_and_crop_magnifies_the_centre(images):
    pixels, indices = images
    half = Perturbation("resize", 0.5).apply(pixels, indices, Settings())
    quarter = Perturbation("resize", 0.25).apply(pixels, indices, Settings())
    err = [float((x.int() - pixels.int()).abs().float().mean()) for x in (half, quarter)]
    assert 0 < err[0] < err[1]
    ramp = torch.arange(32, dtype=torch.uint8).mul(8).expand(1, 3, 32, 32).contiguous()
    cropped = Perturbation("crop", 0.5).apply(ramp, np.arange(1), Settings())
    assert int(cropped[0, 0, 0, 0]) > 0 and int(cropped[0, 0, 0, -1]) < 248  # the outer columns are gone


def test_apply_checks_its_input(images):
    pixels, indices = images
    with pytest.raises(ValueError, match="uint8"):
        Perturbation("jpeg", 90).apply(pixels.float(), indices, Settings())
    with pytest.raises(ValueError, match="indices"):
        Perturbation("jpeg", 90).apply(pixels, indices[:-1], Settings())
    empty = pixels[:0]
    assert Perturbation("jpeg", 90).apply(empty, indices[:0], Settings()).shape == empty.shape
