"""DNA-Det (AAAI 2022): SupCon on a hand-made batch, loss weighting, crops, transformations, smoke run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from baselines.dnadet import (
    AutomaticWeightedLoss,
    DNADet,
    apply_transformation,
    supcon_loss,
    transformation_table,
)
from tests.baselines.conftest import make_method, roundtrip, smoke_run


def test_supcon_hand_made_batch():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    # two images (labels 0, 1), two identical views each, orthogonal across images, T = 1:
    # every anchor has 1 positive (sim 1) and 2 negatives (sim 0): loss = log(e + 2) - 1
    features = torch.stack([torch.stack([e1, e1]), torch.stack([e2, e2])])
    loss = supcon_loss(features, torch.tensor([0, 1]), temperature=1.0, base_temperature=1.0)
    assert math.isclose(float(loss), math.log(math.e + 2) - 1, rel_tol=1e-6)
    # same labels: 3 positives per anchor, sims (1, 0, 0) -> -(1/3) sum(s - log(e + 2))
    same = supcon_loss(features, torch.tensor([0, 0]), temperature=1.0, base_temperature=1.0)
    assert math.isclose(float(same), math.log(math.e + 2) - 1 / 3, rel_tol=1e-6)
    # temperature 0.5 with base 1: logits doubled, loss scaled by T / T_base = 0.5
    half = supcon_loss(features, torch.tensor([0, 1]), temperature=0.5, base_temperature=1.0)
    assert math.isclose(float(half), 0.5 * (math.log(math.exp(2) + 2) - 2), rel_tol=1e-6)


def test_supcon_matches_a_direct_loop():
    gen = torch.Generator().manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(4, 3, 5, generator=gen), dim=-1)
    labels = torch.tensor([0, 1, 0, 2])
    flat = [(feats[i, v], int(labels[i])) for v in range(3) for i in range(4)]
    total = []
    for a, (fa, la) in enumerate(flat):
        others = [(fb, lb) for b, (fb, lb) in enumerate(flat) if b != a]
        denom = torch.logsumexp(torch.stack([fa @ fb / 0.07 for fb, _ in others]), 0)
        pos = [fa @ fb / 0.07 - denom for fb, lb in others if lb == la]
        total.append(-torch.stack(pos).mean())
    assert torch.allclose(supcon_loss(feats, labels), torch.stack(total).mean(), atol=1e-5)


def test_automatic_weighting():
    awl = AutomaticWeightedLoss(2)
    with torch.no_grad():
        awl.params.copy_(torch.tensor([1.0, 2.0]))
    out = awl(torch.tensor(3.0), torch.tensor(4.0))
    assert math.isclose(float(out.detach()), 0.5 * 3 + math.log(2) + 0.5 / 4 * 4 + math.log(5), rel_tol=1e-6)


def test_transformation_table_has_170_classes_that_run():
    table = transformation_table()
    assert len(table) == 170 and len(set(table)) == 170
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    rng = np.random.default_rng(1)
    kinds = {}
    for kind, params in table:
        out = apply_transformation(img, kind, params, rng)
        assert out.size == img.size and out.mode == "RGB"
        kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds == {"jpeg": 24, "jpeg2": 24, "gblur": 14, "mblur": 14, "resize": 80, "noise": 14}


def test_random_crops_are_crops(batch):
    x, _ = batch
    method = make_method(DNADet)
    crops = method.random_crops(x)
    assert crops.shape == (12, 4, 3, 16, 16)
    # every crop is a window of its own image
    c = crops[3, 2]
    windows = x[3].unfold(1, 16, 1).unfold(2, 16, 1)  # (3, 17, 17, 16, 16)
    assert ((windows - c[:, None, None]).abs().amax(dim=(0, 3, 4)) == 0).any()


def test_pretraining_then_training_and_state(batch):
    x, y = batch
    method = make_method(DNADet)
    head_before = method.net.head[1].weight.detach().clone()
    stem_before = method.net.stem[0].weight.detach().clone()
    pre = method.train_epoch([(x, y)], 0)
    assert set(pre) == {"pre_loss_cls", "pre_loss_con"}
    assert torch.equal(head_before, method.net.head[1].weight)  # the attribution head is idle in pre-training
    assert not torch.equal(stem_before, method.net.stem[0].weight)  # the shared backbone learns
    main = method.train_epoch([(x, y)], 1)
    assert set(main) == {"loss_cls", "loss_con"}
    assert not torch.equal(head_before, method.net.head[1].weight)
    pred = method.predict(x)  # whole image, not crops
    assert pred.logits.shape == (12, 3) and pred.features.shape == (12, 64)
    other = make_method(DNADet)
    other.load_state_dict(roundtrip(method.state_dict()))
    assert torch.equal(other.predict(x).logits, pred.logits)


@pytest.mark.parametrize("legacy", [False, True])
def test_losses_finite(batch, legacy):
    x, y = batch
    method = make_method(DNADet, legacy=legacy, pretrain_epochs=0)
    losses = method.train_epoch([(x, y)], 0)
    assert all(math.isfinite(v) for v in losses.values())


def test_smoke_run(synthetic_root, tmp_path):
    smoke_run(synthetic_root, tmp_path / "out", "dnadet", epochs=2)


def _mini_method(**overrides) -> DNADet:
    from osma_bench.methods.api import MethodSpec

    hp = {**DNADet.resolve_hparams("mini", overrides), "lr": 1e-3, "lr_step": 50, "lr_gamma": 0.9}
    return DNADet(MethodSpec(15, 32, torch.device("cpu"), hp, seed=0, epochs=12, profile="mini"))


def test_mini_trains_and_tests_on_the_same_feature_map_size():
    """Issue 15: at mini, 16-px crops gave a 1x1 map in training but the 32-px test image a 2x2 one."""
    method = _mini_method()
    train_side, test_side = method.feature_map_sides()
    assert train_side == test_side == 2
    assert int(method.hp["crop_size"]) == 32 and int(method.hp["pretrain_epochs"]) == 0
    old = _mini_method(crop_size=16, num_crops=16)
    assert old.feature_map_sides() == (1, 2)  # the check tells the two geometries apart


def test_mini_epochs_are_a_declared_departure_with_its_measurement():
    from osma_bench.harness.config import resolve

    resolved = resolve(DNADet, "mini")
    assert resolved.values["epochs"] == 24 and resolved.sources["epochs"].startswith("budget departure: ")
    assert "0.943" in resolved.departures["epochs"] and resolved.values["pretrain_epochs"] == 0
