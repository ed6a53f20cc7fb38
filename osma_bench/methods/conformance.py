"""One conformance suite for every registered method, built-in or plugin (as scikit-learn's
``check_estimator``): what the harness relies on, checked on tiny synthetic data under ``smoke``.

:func:`check_method` runs every check on one method class and raises ``AssertionError`` naming the
check that failed; ``tests/methods/test_conformance.py`` parametrizes it over the registry, so a new
method (or an installed plugin) is covered without a test of its own. A plugin's own test suite can
call it too::

    from osma_bench.methods.conformance import check_method
    check_method(MyMethod)

The checks follow the harness's lifecycle (docs/METHODS_GUIDE.md): construction, ``train_epoch``
on the class-balanced or shuffled loader, ``predict`` on validation batches, checkpointing with
``state_dict`` through ``torch.save`` / ``torch.load(weights_only=True)``, ``load_state_dict`` on
resume, ``finalize(train, val)`` and ``predict`` on test batches.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import torch

from osma_bench.harness.config import HARNESS_PARAMS, PROFILES, resolve
from osma_bench.harness.seeding import rng_state, seed_everything, set_rng_state
from osma_bench.hparams import Type
from osma_bench.methods.api import Method, MethodSpec

NUM_CLASSES = 3
IMAGE_SIZE = 32
#: The resume check interrupts after this many epochs of the method's smoke schedule.
RESUME_AFTER = 1


def _batches(seed: int, steps: int, per_class: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Class-balanced batches of separable synthetic images in the harness's range [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(per_class)
    out = []
    for _ in range(steps):
        noise = torch.rand(len(labels), 3, IMAGE_SIZE, IMAGE_SIZE, generator=gen) * 0.4 - 0.2
        tint = (labels.view(-1, 1, 1, 1).float() - 1.0) * 0.5
        out.append(((noise + tint).clamp(-1, 1), labels.clone()))
    return out


def _loader(batches: list) -> Callable[[], Iterator]:
    return lambda: iter(batches)


def make_spec(method_cls: type[Method], seed: int = 0) -> MethodSpec:
    """A smoke-profile spec (the method's own smoke schedule): K = 3 classes of 32x32 images, CPU."""
    values = resolve(method_cls, "smoke").values
    epochs = int(values["epochs"])
    return MethodSpec(NUM_CLASSES, IMAGE_SIZE, torch.device("cpu"), values, seed=seed, epochs=epochs,
                      steps_per_epoch=2, profile="smoke", split=1, dataset_sha256="0" * 64)


def _roundtrip(state: Any) -> Any:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _predict_all(method: Method, batches: list) -> list:
    with torch.no_grad():
        return [method.predict(x) for x, _ in batches]


def _assert_same_predictions(a: list, b: list, what: str) -> None:
    for pa, pb in zip(a, b, strict=True):
        assert torch.allclose(pa.logits, pb.logits, atol=1e-5, rtol=1e-5), f"{what}: logits differ"
        assert torch.allclose(pa.score.double(), pb.score.double(), atol=1e-6, rtol=1e-5), f"{what}: scores differ"


def check_declarations(method_cls: type[Method]) -> None:
    """Every declared hyperparameter validates its default, every profile resolves inside the
    declared ranges, each value survives ``--set key=<text>``, and nothing collides with the harness."""
    declared = method_cls.declared_hparams()
    assert method_cls.name, "the method has no name"
    assert method_cls.paper, f"{method_cls.name}: no paper"
    assert method_cls.__doc__ and len(method_cls.__doc__) > 40, f"{method_cls.name}: no docstring"
    clash = set(declared) & set(HARNESS_PARAMS)
    assert not clash, f"{method_cls.name}: declares harness key(s) {sorted(clash)}"
    for name, p in declared.items():
        p.validate(p.default, f"{method_cls.name} default")
        assert p.help, f"{method_cls.name}.{name}: no one-line meaning"
    assert set(method_cls.unused_budget) <= set(HARNESS_PARAMS), "unused_budget names non-budget keys"
    for profile in PROFILES:
        resolved = resolve(method_cls, profile)  # validates profile scaling and departures
        for key, value in resolved.values.items():
            p = {**HARNESS_PARAMS, **declared}[key]
            if value is None or p.type in (Type.STR, Type.STR_LIST):
                continue
            text = str(value).lower() if isinstance(value, bool) else ",".join(map(str, value)) \
                if isinstance(value, list) else repr(value)
            assert p.parse(text, "--set") == value, f"{method_cls.name}.{key}: --set {text} does not round-trip"


def check_training_and_predictions(method_cls: type[Method]) -> None:
    """Construct under smoke, train an epoch, then ``predict``: shapes, dtypes, finite scores."""
    spec = make_spec(method_cls)
    values = spec.hparams
    seed_everything(0, torch.device("cpu"))
    method = method_cls(spec)
    train = _batches(1, 2, int(values["per_class"]))
    losses = method.train_epoch(_loader(train)(), 0)
    assert losses is None or isinstance(losses, dict), "train_epoch must return a dict of losses (or None)"
    for value in (losses or {}).values():
        assert isinstance(float(value), float)
    method.finalize(_loader(train)(), _loader(_batches(2, 1, 2))())
    test = _batches(3, 1, 2)
    for (images, _), pred in zip(test, _predict_all(method, test), strict=True):
        n = len(images)
        assert pred.logits.shape == (n, NUM_CLASSES) or (pred.logits.ndim == 2 and pred.logits.shape[0] == n), \
            f"logits shape {tuple(pred.logits.shape)}"
        assert pred.logits.shape[1] >= NUM_CLASSES, "logits must cover the known classes"
        assert pred.score.shape == (n,), f"score shape {tuple(pred.score.shape)}"
        assert pred.logits.is_floating_point() and pred.score.is_floating_point(), "logits and score must be float"
        assert torch.isfinite(pred.score).all(), "non-finite scores"
        assert torch.isfinite(pred.logits[:, :NUM_CLASSES]).all(), "non-finite logits"
        if pred.features is not None:
            assert pred.features.shape[0] == n and pred.features.ndim == 2, "features must be (n, d)"


def check_state_roundtrip(method_cls: type[Method]) -> None:
    """``state_dict`` through torch.save / torch.load(weights_only=True) into a fresh instance gives
    identical predictions."""
    spec = make_spec(method_cls)
    seed_everything(0, torch.device("cpu"))
    method = method_cls(spec)
    train = _batches(1, 2, int(spec.hparams["per_class"]))
    method.train_epoch(_loader(train)(), 0)
    method.finalize(_loader(train)(), _loader(_batches(2, 1, 2))())
    state = _roundtrip(method.state_dict())
    seed_everything(5, torch.device("cpu"))
    fresh = method_cls(spec)
    fresh.load_state_dict(state)
    test = _batches(3, 1, 2)
    _assert_same_predictions(_predict_all(method, test), _predict_all(fresh, test), "state_dict round trip")


def check_resume(method_cls: type[Method]) -> None:
    """Training interrupted after an epoch and resumed from its checkpoint (method state and random
    states, as the harness saves them) equals an uninterrupted run."""
    spec = make_spec(method_cls)
    epochs = spec.epochs
    before = min(RESUME_AFTER, epochs - 1)
    per_class = int(spec.hparams["per_class"])
    data = [_batches(10 + e, 2, per_class) for e in range(epochs)]
    test = _batches(3, 1, 2)

    seed_everything(0, torch.device("cpu"))
    straight = method_cls(spec)
    for epoch in range(epochs):
        straight.train_epoch(_loader(data[epoch])(), epoch)

    seed_everything(0, torch.device("cpu"))
    first = method_cls(spec)
    for epoch in range(before):
        first.train_epoch(_loader(data[epoch])(), epoch)
    state, rng = _roundtrip(first.state_dict()), _roundtrip(rng_state())
    seed_everything(123, torch.device("cpu"))  # the new process starts elsewhere ...
    resumed = method_cls(spec)
    resumed.load_state_dict(state)
    set_rng_state(rng)  # ... and the harness restores the random states after loading
    for epoch in range(before, epochs):
        resumed.train_epoch(_loader(data[epoch])(), epoch)
    _assert_same_predictions(_predict_all(straight, test), _predict_all(resumed, test), "resume")


CHECKS: tuple[Callable[[type[Method]], None], ...] = (
    check_declarations,
    check_training_and_predictions,
    check_state_roundtrip,
    check_resume,
)


def check_method(method_cls: type[Method]) -> None:
    """Run every check of the suite on ``method_cls`` (AssertionError names the failing check)."""
    for check in CHECKS:
        try:
            check(method_cls)
        except AssertionError as exc:
            raise AssertionError(f"{method_cls.name}: {check.__name__}: {exc}") from exc
