"""Mixed precision (amp=true) of the shared DCT classifier on the CPU: bfloat16 autocast where it is
meant to act, float32 for the DCT, the first convolution, every loss and the scores.

These tests run bfloat16 on any CPU (on one without bfloat16 kernels it is emulated and slow, which
is fine at the smoke sizes used here); the harness's refusal on such CPUs is tested in
tests/harness/test_precision.py.
"""

from __future__ import annotations

import torch

from baselines.proser import PROSER
from osma_bench.methods import pose as pose_module
from osma_bench.methods.api import MethodSpec
from osma_bench.methods.base_cnn import BaseMethod
from osma_bench.methods.pose import POSEMethod
from osma_bench.nn.dct import dct_2d
from tests.methods.test_base_pose import K, make

#: bfloat16 keeps 8 significant bits: one rounding is off by at most 2^-9 (relative). Each of the
#: nine autocast layers rounds its inputs and weights once; independent roundings add in quadrature
#: (about 3 x 2^-9 = 0.6% relative after nine layers). Measured: 0.3% (width 8 and 32 at 32x32,
#: three seeds). 2% leaves room for unlucky batches while a layer computed wrongly (or the DCT's DC
#: term of 4 N^2 rounded in bfloat16 before the first convolution) shows far above it.
FEATURE_TOLERANCE = 0.02




def twins(cls=BaseMethod):
    """The same trained weights twice: float32 and amp=true."""
    torch.manual_seed(0)
    fp32 = make(cls)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(24, 3, 32, 32, generator=gen) * 2 - 1
    fp32.train_epoch([(x, torch.arange(K).repeat_interleave(8))] * 3, 0)  # weights away from initialisation
    amp = make(cls, amp=True)
    amp.model.load_state_dict(fp32.model.state_dict())
    return fp32, amp


def test_bf16_predictions_close_to_float32_on_a_fixed_batch(batch):
    fp32, amp = twins()
    x, _ = batch
    ref, low = fp32.predict(x), amp.predict(x)
    assert low.logits.dtype == torch.float32 and low.features.dtype == torch.float32
    assert low.score.dtype == torch.float64
    rel = (low.features - ref.features).norm(dim=1) / ref.features.norm(dim=1)
    assert rel.max() < FEATURE_TOLERANCE
    assert not torch.equal(low.features, ref.features)  # autocast did act
    # Logits z / T (T = 0.1) and the MSP score follow the feature: same tolerance on their scale.
    scale = ref.logits.abs().max()
    assert (low.logits - ref.logits).abs().max() < FEATURE_TOLERANCE * scale
    assert (low.score - ref.score).abs().max() < 0.01
    assert (low.logits.argmax(1) == ref.logits.argmax(1)).float().mean() >= 0.9


def test_dct_and_first_convolution_stay_float32_and_exact(batch):
    _, amp = twins()
    x, y = batch
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = (inputs[0].dtype, output.dtype, output.detach().clone())
        return hook

    model = amp.model
    hooks = [model.transform.register_forward_hook(record("dct")),
             model.stem[0].register_forward_hook(record("first_conv")),
             model.stages[0][0].register_forward_hook(record("second_conv")),
             model.head.register_forward_hook(record("head"))]
    logits, _ = amp.forward_train(x)
    for h in hooks:
        h.remove()
    assert seen["dct"][:2] == (torch.float32, torch.float32)
    assert torch.equal(seen["dct"][2], dct_2d(x))  # bit-identical to the float32 DCT (DC term up to 4 N^2)
    assert seen["first_conv"][:2] == (torch.float32, torch.float32)
    assert seen["second_conv"][1] == torch.bfloat16  # autocast is on after the first block
    assert seen["head"][1] == torch.bfloat16 and logits.dtype == torch.bfloat16
    loss = amp.classification_loss(logits, y)
    assert loss.dtype == torch.float32


def test_pose_losses_are_float32_under_amp(batch, monkeypatch):
    x, y = batch
    seen = []
    real = pose_module.batch_hard_triplet_loss

    def spy(features, labels, margin):
        seen.append(features.dtype)
        return real(features, labels, margin)

    monkeypatch.setattr(pose_module, "batch_hard_triplet_loss", spy)
    torch.manual_seed(0)
    method = make(POSEMethod, amp=True)
    method.train_epoch([(x, y)], 0)
    losses = method.train_epoch([(x, y)], 1)  # with an earlier augmentation model: both triplet terms
    assert seen and all(dtype == torch.float32 for dtype in seen)
    assert {"loss_cls", "loss_metric", "loss_close_known"} <= set(losses)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert all(p.dtype == torch.float32 for p in method.model.parameters())


def test_proser_finetunes_under_autocast(batch):
    x, y = batch
    hp = PROSER.resolve_hparams("smoke", {"lr": 1e-3, "lr_step": 50, "lr_gamma": 0.9, "width": 8, "amp": True})
    torch.manual_seed(0)
    method = PROSER(MethodSpec(K, 32, torch.device("cpu"), hp, seed=0, epochs=2, steps_per_epoch=1, profile="smoke"))
    dtypes = []
    hook = method.model.stages[0][0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    method.train_epoch([(x, y)], 0)  # Base phase
    method.train_epoch([(x, y)], 1)  # fine-tuning
    hook.remove()
    assert method.finetuned == 1
    assert dtypes and set(dtypes) == {torch.bfloat16}
    out = method.predict(x)
    assert out.logits.dtype == torch.float32 and torch.isfinite(out.score).all()
