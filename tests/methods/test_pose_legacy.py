"""POSE's ``legacy`` step against the official step order (ICTMCG/POSE ``train_epoch_POSE``): the
same classifier forwards in the same order (so BatchNorm running statistics evolve alike), two
independent draws of an earlier augmentation model per step, and the ablation architectures."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from osma_bench.methods.pose import POSEMethod
from osma_bench.nn import AugmentationModel, batch_hard_triplet_loss
from tests.methods.test_base_pose import K, make


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(12, 3, 32, 32, generator=gen) * 2 - 1, torch.arange(K).repeat_interleave(4)


def official_step(method: POSEMethod, aug: AugmentationModel, opt_aug, earlier, draws, x, y, epoch):
    """The official step, written out independently: phase 1 forwards aug(x), x, then (with an
    earlier model) prev(x); phase 2 forwards x, the updated aug(x) and (from epoch 1) prev'(x), each
    ``prev`` drawn on its own from ``draws``. CE on softmax(z) / T (the official double softmax)."""
    hp, model = method.hp, method.model
    pixels = x.contiguous(memory_format=torch.channels_last)
    model.requires_grad_(False)
    aug.requires_grad_(True)
    aug_img = aug(pixels)
    loss = F.mse_loss(aug_img, x)
    _, f_aug = model(aug_img)
    _, f_x = model(x)
    if earlier:
        loss = loss + hp["w_close"] * (1 - F.cosine_similarity(f_x, f_aug, dim=1, eps=1e-6).mean()).clamp_min(
            1 - hp["known_sim_limit"])
        _, f_prev = model(earlier[next(draws)](pixels))
        loss = loss + hp["w_div"] * F.cosine_similarity(f_aug, f_prev, dim=1, eps=1e-6).mean()
    opt_aug.zero_grad()
    loss.backward()
    opt_aug.step()
    model.requires_grad_(True)
    aug.requires_grad_(False)
    logits, f_x = model(x)
    loss = F.cross_entropy(logits.softmax(dim=1) / hp["temperature"], y)
    labels = torch.cat([y, y + K])
    _, f_aug = model(aug(pixels))
    loss = loss + batch_hard_triplet_loss(torch.cat([f_x, f_aug]), labels, hp["triplet_margin"])
    if epoch >= 1:
        _, f_prev = model(earlier[next(draws)](pixels))
        loss = loss + batch_hard_triplet_loss(torch.cat([f_x, f_prev]), labels, hp["triplet_margin"])
    method.optimizer.zero_grad()
    loss.backward()
    method.optimizer.step()


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module):
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.allclose(p.float(), q.float(), atol=1e-6), name


def stem_calls(method):
    calls = []
    return calls, method.model.stem.register_forward_hook(lambda m, i, o: calls.append(m.training))


def test_legacy_epoch0_makes_the_official_four_train_mode_forwards(batch):
    torch.manual_seed(0)
    x, y = batch
    method = make(POSEMethod, legacy=True, dropout=0.0)
    reference = copy.deepcopy(method)
    calls, hook = stem_calls(method)
    torch.manual_seed(1)
    method.train_epoch([(x, y)], 0)
    hook.remove()
    assert calls == [True] * 4  # aug(x), x, x, updated aug(x): all update BatchNorm statistics

    torch.manual_seed(1)
    aug = AugmentationModel(hidden=32, kernel_size=3).to(memory_format=torch.channels_last)
    reference.model.train()
    official_step(reference, aug, torch.optim.Adam(aug.parameters(), lr=1e-2), [], iter(()), x, y, 0)
    assert_same_state(method.model, reference.model)  # weights and running statistics
    assert_same_state(method.aug_models[-1], aug)
    # the default computes f(x) once and skips the unused aug(x) forward: 2 forwards, other statistics
    default = make(POSEMethod, dropout=0.0)
    calls, hook = stem_calls(default)
    default.train_epoch([(x, y)], 0)
    hook.remove()
    assert len(calls) == 2


def test_legacy_later_epoch_matches_the_official_step_with_two_draws(batch):
    torch.manual_seed(0)
    x, y = batch
    method = make(POSEMethod, legacy=True, dropout=0.0)
    for epoch in range(3):  # three earlier augmentation models
        method.train_epoch([(x, y)], epoch)
        method.predict(x)  # validation: eval mode from here on, as in the official loop
    reference = copy.deepcopy(method)
    generator = torch.Generator()
    generator.set_state(method.generator.get_state())
    draws = iter(int(torch.randint(3, (1,), generator=generator)) for _ in range(4))
    calls, hook = stem_calls(method)
    torch.manual_seed(1)
    method.train_epoch([(x, y)] * 2, 3)
    hook.remove()
    assert calls == [False] * 12  # 6 forwards per step, the model in eval mode (official)

    torch.manual_seed(1)
    aug = AugmentationModel(hidden=32, kernel_size=3).to(memory_format=torch.channels_last)
    reference.model.eval()
    opt_aug = torch.optim.Adam(aug.parameters(), lr=1e-2)
    for _ in range(2):
        official_step(reference, aug, opt_aug, reference.aug_models, draws, x, y, 3)
    assert_same_state(method.model, reference.model)
    assert_same_state(method.aug_models[-1], aug)


def record_earlier_calls(method):
    used, hooks = [], []
    for i, aug in enumerate(method.aug_models):
        hooks.append(aug.register_forward_hook(lambda m, inp, out, i=i: used.append(i)))
    return used, hooks


@pytest.mark.parametrize("legacy", [True, False])
def test_draws_of_earlier_models(legacy, batch):
    """Legacy: two independent draws per step (phase 1, then phase 2), the generator's sequence
    of two separate draws; default: one draw per step shared by both phases."""
    torch.manual_seed(0)
    x, y = batch
    method = make(POSEMethod, legacy=legacy)
    for epoch in range(4):
        method.train_epoch([(x, y)], epoch)
    steps = 8
    generator = torch.Generator()
    generator.set_state(method.generator.get_state())
    per_step = 2 if legacy else 1
    expected = [int(torch.randint(4, (1,), generator=generator)) for _ in range(steps * per_step)]
    used, hooks = record_earlier_calls(method)
    method.train_epoch([(x, y)] * steps, 4)
    for h in hooks:
        h.remove()
    assert used == expected
    if legacy:
        pairs = list(zip(used[::2], used[1::2], strict=True))
        assert any(a != b for a, b in pairs)  # the two phases do use different earlier models


@pytest.mark.parametrize("layers,kernel", [(1, 3), (2, 5), (3, 3), (2, 1)])
def test_augmentation_architectures_construct_and_train(layers, kernel, batch):
    torch.manual_seed(0)
    x, y = batch
    method = make(POSEMethod, aug_layers=layers, aug_kernel=kernel)
    for epoch in range(2):
        losses = method.train_epoch([(x, y)], epoch)
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    aug = method.aug_models[-1]
    convs = [m for m in aug.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == layers and all(c.kernel_size == (kernel, kernel) for c in convs)
    assert aug(x).shape == x.shape
    clone = make(POSEMethod, aug_layers=layers, aug_kernel=kernel)
    clone.load_state_dict(method.state_dict())
    assert torch.equal(clone.aug_models[-1](x), aug(x))


def test_w_div_is_the_base_am_switch(batch):
    """w_div = 0 (the paper's Base+AM) trains; the diversity term moves the augmentation model."""
    x, y = batch
    results = []
    for w_div in (0.0, 1e-4, 10.0):
        torch.manual_seed(0)
        method = make(POSEMethod, w_div=w_div)
        method.train_epoch([(x, y)], 0)
        torch.manual_seed(1)
        losses = method.train_epoch([(x, y)] * 2, 1)
        assert torch.isfinite(torch.tensor(losses["loss_distant_preaug"]))
        results.append(torch.cat([p.flatten() for p in method.aug_models[-1].parameters()]))
    assert not torch.equal(results[0], results[2])


def test_even_kernel_and_bad_layers_are_refused():
    from osma_bench.errors import OsmaError
    from osma_bench.harness.config import resolve

    with pytest.raises(OsmaError, match="aug_kernel: expected one of 1, 3"):
        resolve(POSEMethod, "smoke", {"aug_kernel": "4"})
    with pytest.raises(OsmaError, match="aug_layers: expected an int"):
        resolve(POSEMethod, "smoke", {"aug_layers": "0"})
    with pytest.raises(ValueError, match="odd"):
        AugmentationModel(kernel_size=2)
