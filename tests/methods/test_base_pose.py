"""Base and POSE on random tensors: losses, checkpoints, legacy switches, and POSE's pass reuse."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F

from osma_bench.methods.api import MethodSpec
from osma_bench.methods.base_cnn import BaseMethod
from osma_bench.methods.pose import POSEMethod
from osma_bench.nn import AugmentationModel, batch_hard_triplet_loss

K = 3


def make(cls, **overrides):
    hp = cls.resolve_hparams("smoke", {"lr": 1e-3, "lr_step": 50, "lr_gamma": 0.9, "width": 8, **overrides})
    return cls(MethodSpec(K, 32, torch.device("cpu"), hp, seed=0, epochs=3, steps_per_epoch=2, profile="smoke"))




def roundtrip(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("cls", [BaseMethod, POSEMethod])
@pytest.mark.parametrize("legacy", [False, True])
def test_train_predict_checkpoint(cls, legacy, batch):
    torch.manual_seed(0)
    x, y = batch
    method = make(cls, legacy=legacy)
    first = method.train_epoch([(x, y)] * 2, 0)
    second = method.train_epoch([(x, y)] * 2, 1)
    assert first and all(torch.isfinite(torch.tensor(v)) for v in {**first, **second}.values())
    pred = method.predict(x)
    assert pred.logits.shape == (12, K) and pred.score.shape == (12,) and pred.features.shape == (12, 512)
    assert pred.score.dtype == torch.float64 and bool(((pred.score > 0) & (pred.score <= 1)).all())
    probs = (pred.logits.double()).softmax(dim=1).amax(dim=1)
    assert torch.allclose(pred.score, probs)
    clone = make(cls, legacy=legacy)
    clone.load_state_dict(roundtrip(method.state_dict()))
    assert torch.equal(clone.predict(x).logits, pred.logits)


def test_base_learns_separable_data(batch):
    torch.manual_seed(0)
    x, y = batch
    x = x * 0.1 + y.view(-1, 1, 1, 1).float() * 0.5 - 0.5  # class = brightness
    method = make(BaseMethod)
    losses = [method.train_epoch([(x, y)] * 10, e)["loss_cls"] for e in range(4)]
    assert losses[-1] < losses[0]
    assert (method.predict(x).logits.argmax(dim=1) == y).float().mean() >= 0.9


def test_logits_scaled_by_temperature_unless_legacy(batch):
    x, _ = batch
    for legacy, scale in ((False, 10.0), (True, 1.0)):
        torch.manual_seed(0)
        method = make(BaseMethod, legacy=legacy)
        raw, _ = method.model.eval()(x)
        assert torch.allclose(method.predict(x).logits, raw * scale, rtol=1e-5, atol=1e-5)


def test_classification_loss_fixed_and_legacy():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.2, 3.0]])
    labels = torch.tensor([0, 2])
    fixed, legacy = make(BaseMethod), make(BaseMethod, legacy=True)
    assert torch.allclose(fixed.classification_loss(logits, labels), F.cross_entropy(logits / 0.1, labels))
    assert torch.allclose(legacy.classification_loss(logits, labels),
                          F.cross_entropy(logits.softmax(dim=1) / 0.1, labels))


def test_pose_adds_one_augmentation_model_per_epoch(batch):
    torch.manual_seed(0)
    x, y = batch
    method = make(POSEMethod)
    assert method.augmented_samples(x) is None
    for epoch in range(3):
        losses = method.train_epoch([(x, y)], epoch)
        assert ("loss_metric_pre" in losses) == (epoch >= 1)
        assert ("loss_close_known" in losses) == (epoch >= 1)
    samples = method.augmented_samples(x)
    assert list(samples) == ["aug_0", "aug_1", "aug_2"]
    assert all(s.shape == x.shape for s in samples.values())
    assert not any(p.requires_grad for a in method.aug_models for p in a.parameters())


@pytest.mark.parametrize("legacy", [False, True])
def test_pose_training_mode(legacy, batch):
    torch.manual_seed(0)
    x, y = batch
    method = make(POSEMethod, legacy=legacy)
    method.train_epoch([(x, y)], 0)
    method.predict(x)  # validation puts the model in eval mode, as in the official loop
    modes = []
    hook = method.model.stem.register_forward_hook(lambda m, i, o: modes.append(m.training))
    method.train_epoch([(x, y)], 1)
    hook.remove()
    assert modes and all(mode == (not legacy) for mode in modes)


def reference_pose_step(method: POSEMethod, aug: AugmentationModel, prev: AugmentationModel, x, y):
    """The official code's step order, with every forward pass it makes (6), but one draw ``prev``
    for both phases: the default's sampling change (the official two draws are tested, for
    ``legacy``, in test_pose_legacy.py)."""
    hp, model = method.hp, method.model
    opt_aug = torch.optim.Adam(aug.parameters(), lr=hp["aug_lr"])
    pixels = x.contiguous(memory_format=torch.channels_last)  # the layout POSEMethod uses (same math)
    model.requires_grad_(False)
    aug_images = aug(pixels)
    loss = F.mse_loss(aug_images, x)
    _, f_aug = model(aug_images)
    _, f_x = model(x)
    _, f_prev = model(prev(pixels))
    sim = F.cosine_similarity(f_x, f_aug, dim=1, eps=1e-6).mean()
    loss = loss + hp["w_close"] * (1 - sim).clamp_min(1 - hp["known_sim_limit"])
    loss = loss + hp["w_div"] * F.cosine_similarity(f_aug, f_prev, dim=1, eps=1e-6).mean()
    opt_aug.zero_grad()
    loss.backward()
    opt_aug.step()
    model.requires_grad_(True)
    aug.requires_grad_(False)
    logits, f_x = model(x)
    loss = F.cross_entropy(logits / hp["temperature"], y)
    labels = torch.cat([y, y + K])
    _, f_aug = model(aug(pixels))
    loss = loss + batch_hard_triplet_loss(torch.cat([f_x, f_aug]), labels, hp["triplet_margin"])
    _, f_prev = model(prev(pixels))
    loss = loss + batch_hard_triplet_loss(torch.cat([f_x, f_prev]), labels, hp["triplet_margin"])
    method.optimizer.zero_grad()
    loss.backward()
    method.optimizer.step()


def test_pose_step_matches_the_official_step_with_fewer_passes(batch):
    """Given one shared draw, reusing f(x) and f(prev(x)) across the two phases changes no gradient."""
    torch.manual_seed(0)
    x, y = batch
    method = make(POSEMethod, dropout=0.0)
    method.train_epoch([(x, y)], 0)
    reference = copy.deepcopy(method)
    calls = []
    hook = method.model.stem.register_forward_hook(lambda m, i, o: calls.append(1))
    torch.manual_seed(1)
    method.train_epoch([(x, y)], 1)
    hook.remove()
    assert len(calls) == 4  # against 6 in the official code

    torch.manual_seed(1)
    aug = AugmentationModel(hidden=32, kernel_size=3).to(memory_format=torch.channels_last)
    prev = reference.aug_models[int(torch.randint(1, (1,), generator=reference.generator))]
    reference.model.train()
    reference_pose_step(reference, aug, prev, x, y)
    for a, b in zip(method.aug_models[-1].parameters(), aug.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    for a, b in zip(method.model.parameters(), reference.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("cls", [BaseMethod, POSEMethod])
def test_amp_keeps_dct_and_stem_in_float32(cls, batch):
    torch.manual_seed(0)
    x, y = batch
    method = make(cls, amp=True)
    dtypes = []
    hook = method.model.stem.register_forward_hook(lambda m, i, o: dtypes.append((i[0].dtype, o.dtype)))
    losses = method.train_epoch([(x, y)] * 2, 0)
    hook.remove()
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert dtypes and all(d == (torch.float32, torch.float32) for d in dtypes)
    assert method.predict(x).score.dtype == torch.float64


class FixedLogits(torch.nn.Module):
    """Stands in for Simple_CNN: the same logits whatever the input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits, torch.zeros(len(self.logits), 512)


def test_legacy_score_is_the_float32_msp():
    # margins 20 and 14: the official float32 softmax gives exactly 1.0 for the first only
    logits = torch.tensor([[20.0, 0.0, 0.0], [14.0, 0.0, 0.0], [2.0, 0.0, 1.0]])
    legacy, fixed = make(BaseMethod, legacy=True), make(BaseMethod)
    legacy.model = fixed.model = FixedLogits(logits)
    x = torch.zeros(3, 3, 32, 32)
    score = legacy.predict(x).score
    assert score.dtype == torch.float64
    assert torch.equal(score, logits.softmax(dim=1).amax(dim=1).double())  # float32 values
    assert score[0].item() == 1.0 and score[1].item() < 1.0
    assert logits.double().softmax(dim=1).amax(dim=1)[0].item() < 1.0  # float64 does not saturate
    # the default scores z / T in float64
    assert torch.equal(fixed.predict(x).score, (logits / 0.1).double().softmax(dim=1).amax(dim=1))
