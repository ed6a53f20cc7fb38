"""build-data custom: the worked example manifest, seeded sampling, manifest errors."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pytest
import yaml

from osma_bench.data import load_card, read_split, verify_dataset
from osma_bench.data.build import run_build
from osma_bench.data.manifest import load_manifest, manifest_plan
from osma_bench.data.preprocess import PreprocessConfig
from osma_bench.errors import OsmaError

from .imagetree import write_image

EXAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "example_manifest.yaml"


def example_tree(base: Path) -> Path:
    """Copy the example manifest to ``base`` and generate its image tree (12 images a source)."""
    manifest = base / "example_manifest.yaml"
    shutil.copy(EXAMPLE, manifest)
    spec = yaml.safe_load(EXAMPLE.read_text())
    root = base / spec["root"]
    for i, src in enumerate(spec["sources"]):
        pattern = src["path"]
        folder = pattern.rsplit("/", 1)[0] if "*" in pattern else pattern
        fmt = "JPEG" if pattern.endswith(".jpg") else "PNG"
        for j in range(12):
            write_image(root / folder / f"{j:03d}.{'jpg' if fmt == 'JPEG' else 'png'}", 1000 * i + j,
                        size=(80, 72), fmt=fmt)
    return manifest


def test_example_manifest_builds(tmp_path):
    manifest = example_tree(tmp_path)
    spec = load_manifest(manifest)
    cfg = PreprocessConfig(size=spec["image_size"])
    out = run_build(manifest_plan(spec, manifest), tmp_path / "ex", cfg)
    assert verify_dataset(out) == []
    card = load_card(out)
    counts = card["splits"]["1"]["counts"]
    assert counts["train"] == {"real": 6, "sd15_ffhq_seed0": 6, "sdxl_ffhq": 6}
    assert counts["test"] == {"real": 2 + 3, "sd15_ffhq_seed0": 2, "sdxl_ffhq": 2}  # + unseen real coco
    assert counts["out"] == {"sd15_ffhq_seed1": 3, "dit_ffhq": 3, "sd15_celeba": 3}
    info = read_split(out, 2)
    assert info.known_classes == ["real", "sd15_ffhq_seed1", "dit_ffhq"]
    assert info.unknown["arch"] == ["sdxl_ffhq"]
    classes = {c["name"]: c for c in card["classes"]}
    assert classes["sd15_ffhq_seed1"]["seed"] == 1 and classes["real"]["real"] is True
    # coco images are unseen real and never in training
    from osma_bench.data.reader import ShardIndex
    store = ShardIndex(out, card)
    for k in (1, 2):
        train = read_split(out, k).partitions["train"][0]
        paths = [p.decode() if isinstance(p, bytes) else p for p in store.read_column("source_path", train)]
        assert not any("coco" in p for p in paths)
    test = read_split(out, 1).partitions["test"][0]
    flags = collections.Counter(bool(u) for u in store.read_column("unseen_real", test))
    assert flags[True] == 3
    # same manifest, same content; another seed, other content
    again = run_build(manifest_plan(spec, manifest), tmp_path / "ex2", cfg)
    assert load_card(again)["content_sha256"] == card["content_sha256"]
    spec2 = dict(spec, seed=1)
    other = run_build(manifest_plan(spec2, manifest), tmp_path / "ex3", cfg)
    assert load_card(other)["content_sha256"] != card["content_sha256"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s["sources"].append({"class": "x", "path": "fake/none/*.png"}), "no files match"),
        (lambda s: s["splits"][0]["known"].append("nope"), "has no source"),
        (lambda s: s.update(counts={"train": 50, "val": 2, "test": 2}), "needs 54"),
        (lambda s: s["sources"].append({"class": "dup", "path": "fake/dit_ffhq"}), "also matched"),
        (lambda s: s["sources"].append({"class": "esc", "path": "../x"}), "must stay under"),
        (lambda s: s["splits"][0]["unknown"].update(weird=["x"]), "unknown group"),
        (lambda s: s.pop("counts"), "missing 'counts'"),
    ],
)
def test_manifest_errors(tmp_path, edit, message):
    manifest = example_tree(tmp_path)
    spec = yaml.safe_load(manifest.read_text())
    edit(spec)
    manifest.write_text(yaml.safe_dump(spec))
    with pytest.raises(OsmaError, match=message):  # at planning time, or (input problems) when the build starts
        spec = load_manifest(manifest)
        run_build(manifest_plan(spec, manifest), tmp_path / "out", PreprocessConfig(size=spec["image_size"]))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
