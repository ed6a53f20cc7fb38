"""PROSER: placeholder losses and manifold mixup on tiny tensors, the schedule, a smoke run."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.proser import (
    PROSER,
    classifier_placeholder_losses,
    data_placeholder_loss,
    dummy_logits,
    features_from_stage,
    features_until_stage,
    mixing_pairs,
    proser_score,
)
from osma_bench.errors import OsmaError
from osma_bench.nn import SimpleCNN
from tests.baselines.conftest import make_method, roundtrip, smoke_run


def test_classifier_placeholder_losses_by_hand():
    known, dummy, labels = torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0]]), torch.tensor([0])
    loss_true, loss_dummy = classifier_placeholder_losses(known, dummy, labels)
    e = math.e
    assert float(loss_true) == pytest.approx(math.log(e**2 + 1 + e) - 2)      # CE([2, 0, 1], 0)
    assert float(loss_dummy) == pytest.approx(math.log(1 + e) - 1)            # CE([-1e9, 0, 1], 2)


def test_dummy_logits_and_data_placeholder_loss():
    logits = dummy_logits(torch.tensor([[0.0, 0.0]]), torch.tensor([[-1.0, 0.0]]))  # max of the dummies
    assert torch.equal(logits, torch.tensor([[0.0, 0.0, 0.0]]))
    assert float(data_placeholder_loss(logits)) == pytest.approx(math.log(3))


def test_mixing_pairs_skip_same_class():
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    rows, partners = mixing_pairs(labels, different_classes=True)
    assert len(rows) > 0 and bool((labels[rows] != labels[partners]).all())
    rows, partners = mixing_pairs(labels, different_classes=False)
    assert torch.equal(rows, torch.arange(6)) and sorted(partners.tolist()) == list(range(6))


def test_proser_score_by_hand():
    score = proser_score(torch.tensor([[0.0, 0.0, math.log(2)]]), temperature=1.0)
    assert float(score) == pytest.approx(0.25 - 0.5)


def test_stage_split_composes_to_the_feature():
    torch.manual_seed(0)
    model = SimpleCNN(3, image_size=32, width=8).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for stage in (1, 2, 3, 4):
        split = features_from_stage(model, features_until_stage(model, x, stage), stage)
        assert torch.allclose(split, model.features(x), atol=1e-5)


def test_schedule_base_then_finetune(batch):
    torch.manual_seed(0)
    x, y = batch
    method = make_method(PROSER, epochs=3)
    assert method.base_epochs == 2
    method.train_epoch([(x, y)], 0)
    assert torch.equal(method.predict(x).score, method.base.predict(x).score)
    method.train_epoch([(x, y)], 1)
    dummy_before = method.dummy.weight.detach().clone()
    losses = method.train_epoch([(x, y)] * 2, 2)
    assert set(losses) == {"loss", "loss_mix", "loss_true", "loss_dummy"}
    assert not torch.equal(method.dummy.weight, dummy_before)
    pred = method.predict(x)
    assert pred.logits.shape == (12, 3) and bool(((pred.score >= -1) & (pred.score <= 1)).all())
    clone = make_method(PROSER, epochs=3)
    clone.load_state_dict(roundtrip(method.state_dict()))
    assert torch.equal(clone.predict(x).score, pred.score)
    with pytest.raises(OsmaError, match="finetune_epochs"):
        make_method(PROSER, epochs=1)


def test_smoke_run(synthetic_root, tmp_path):
    smoke_run(synthetic_root, tmp_path, "proser", epochs=2)
