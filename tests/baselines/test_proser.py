"""PROSER: placeholder losses and manifold mixup on tiny tensors, the schedule, a smoke run."""

from __future__ import annotations

import copy
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


def test_base_phase_is_the_base_run():
    """Issue 15: the dummy layer's initialisation must not shift the global RNG, so PROSER's Base
    phase is exactly a Base run of the same seed (same initial weights, same RNG afterwards)."""
    from osma_bench.methods.base_cnn import BaseMethod

    torch.manual_seed(3)
    base = make_method(BaseMethod)
    after_base = torch.get_rng_state()
    torch.manual_seed(3)
    proser = make_method(PROSER, epochs=3)
    assert torch.equal(torch.get_rng_state(), after_base)
    for (name, a), (_, b) in zip(base.model.state_dict().items(), proser.base.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_finetunes_the_validation_selected_base_epoch(batch):
    x, y = batch
    method = make_method(PROSER, epochs=4)  # 3 Base epochs + 1 fine-tuning epoch
    assert method.base_epochs == 3
    snapshots = []
    for epoch, accuracy in enumerate([0.5, 0.9, 0.7]):
        method.train_epoch([(x, y)], epoch)
        snapshots.append(copy.deepcopy(method.base.model.state_dict()))
        method.validated(epoch, accuracy)
    clone = make_method(PROSER, epochs=4)  # resume between the phases keeps the selection
    clone.load_state_dict(roundtrip(method.state_dict()))
    for m in (method, clone):
        m.train_epoch([], 3)  # no fine-tuning steps: the Base weights are the selected epoch's
        assert m.base_selected_epoch == 1 and m.run_record()["base_selected_epoch"] == 1
        for key, value in snapshots[1].items():
            assert torch.equal(m.base.model.state_dict()[key], value), key
    assert any(not torch.equal(snapshots[2][k], v) for k, v in snapshots[1].items())


def test_mini_finetunes_with_adam_1e4_and_paper_keeps_sgd():
    mini, paper = PROSER.resolve_hparams("mini"), PROSER.resolve_hparams("paper")
    assert (mini["finetune_optimizer"], mini["finetune_lr"]) == ("adam", 1e-4)
    assert (paper["finetune_optimizer"], paper["finetune_lr"]) == ("sgd", 1e-3)
    method = make_method(PROSER, epochs=3, finetune_optimizer="adam", finetune_lr=1e-4)
    assert isinstance(method.optimizer, torch.optim.Adam)


def test_smoke_run_records_the_selected_base_epoch(synthetic_root, tmp_path):
    import json

    result = smoke_run(synthetic_root, tmp_path, "proser", epochs=4)
    record = json.loads((result.path / "run.json").read_text())
    base_phase = [h["val_accuracy"] for h in record["history"][:3]]
    expected = max(range(3), key=lambda e: (base_phase[e], e))  # ties to the later epoch
    assert record["method_record"]["base_selected_epoch"] == expected
    assert record["method_record"]["base_selected_val_accuracy"] == base_phase[expected]
