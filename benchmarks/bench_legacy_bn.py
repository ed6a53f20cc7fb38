"""Why POSE's official eval-mode training (``legacy=true``) collapses: BatchNorm statistics frozen at epoch 0.

The official trainer never calls ``model.train()`` after the first validation, so from epoch 1 on
every BatchNorm layer normalises with the running statistics it had at the end of epoch 0. This
script prints figures on two things:

``--run DIR --data DATA`` (a finished ``legacy=true`` run, e.g. on the embedded benchmark)
    For every BatchNorm layer of the run's final model: how far its (frozen) running statistics
    are from the batch statistics of known validation images and of the first and last
    augmentation models' images (mean |mu_run - mu_batch| / sigma_batch over channels, and the
    mean log(var_run / var_batch): > 0 means the frozen statistics shrink the activations), and the validation accuracy in eval mode (running
    statistics, how the model is tested) against train-mode BatchNorm (batch statistics, dropout
    off). A large gap with high batch-statistics accuracy means the classifier learned features
    that the frozen statistics no longer normalise. Then, from the run's scores.h5: the share of
    float32 and float64 MSP exactly 1.0, legacy AUROC / OSCR with each, and legacy OSCR with the
    official tie order against the pessimistic one (the project's legacy order before issue 14).

``--synthetic`` (the ``paper`` profile's hyperparameters on synthetic 128x128 images)
    The official schedule in miniature: epoch 0 in training mode for N steps, then eval-mode
    training for ``--later-steps`` steps over ``--later-epochs`` epochs (one augmentation model each), with StepLR(500,
    0.9) and 8 images per class per step as in the paper, for each ``--configs`` pair N:lr (paper
    lr 1e-4; the mini profile's 1e-3 for contrast). Departures
    (CPU time): Simple_CNN width ``--width`` (paper 64) and ``--classes`` classes (paper 15).
    Synthetic classes: a faint fixed per-class pattern (``--strength`` grey levels) on random
    content (default), or the test suite's gratings (``--data-kind gratings``, solved within
    epoch 0). Prints the eval-mode accuracy on held-out synthetic images and the statistics gap of the
    first and last BatchNorm layers as training goes on, for each epoch-0 length given.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_legacy_bn.py --run tmp_runs/mini/pose+legacy/split1/seed0 \\
        --data datasets/mini
    OMP_NUM_THREADS=1 python benchmarks/bench_legacy_bn.py --synthetic --classes 4 --configs 18:1e-3,18:1e-4,100:1e-4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from osma_bench.data.synthetic import synthetic_images
from osma_bench.harness import checkpoint
from osma_bench.harness.config import resolve
from osma_bench.methods.api import MethodSpec
from osma_bench.methods.pose import POSEMethod


def batch_norms(model: torch.nn.Module) -> list[tuple[str, torch.nn.BatchNorm2d]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]


@torch.no_grad()
def batch_statistics(method: POSEMethod, images: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per BatchNorm layer, the mean and (biased) variance of its input over ``images`` (eval mode)."""
    stats, hooks = {}, []
    for name, bn in batch_norms(method.model):
        def hook(module, inp, out, name=name):
            x = inp[0].float()
            stats[name] = (x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False))
        hooks.append(bn.register_forward_hook(hook))
    method.model.eval()
    method.model(images)
    for h in hooks:
        h.remove()
    return stats


def gap(method: POSEMethod, images: torch.Tensor) -> dict[str, tuple[float, float]]:
    """Per BatchNorm layer: mean standardised mean shift and mean log variance ratio (running over
    batch; > 0: the frozen statistics shrink the activations) between its running statistics and
    the batch statistics of ``images``."""
    out = {}
    for name, (mu, var) in batch_statistics(method, images).items():
        bn = dict(batch_norms(method.model))[name]
        shift = ((bn.running_mean - mu).abs() / (var + bn.eps).sqrt()).mean().item()
        ratio = (bn.running_var + bn.eps).log().sub((var + bn.eps).log()).mean().item()
        out[name] = (shift, ratio)
    return out


@torch.no_grad()
def accuracy(method: POSEMethod, images: torch.Tensor, labels: torch.Tensor, batch_stats: bool) -> float:
    """Accuracy with running statistics (eval mode) or with each batch's own statistics (BatchNorm
    in training mode with momentum 0, so nothing is changed; dropout off)."""
    model = method.model
    model.eval()
    saved = []
    if batch_stats:
        for _, bn in batch_norms(model):
            saved.append(bn.momentum)
            bn.momentum = 0.0
            bn.train()
    correct = 0
    for start in range(0, len(labels), 256):
        logits, _ = model(images[start:start + 256])
        correct += int((logits.argmax(dim=1) == labels[start:start + 256]).sum())
    for (_, bn), momentum in zip(batch_norms(model), saved, strict=False):
        bn.momentum = momentum
    model.eval()
    return correct / len(labels)


def pessimistic_oscr(known: np.ndarray, correct: np.ndarray, unknown: np.ndarray) -> float:
    """The official OSCR formula with ties ordered pessimistically (within a tie: correct known,
    wrong known, unknown, ascending), the order the project's legacy OSCR used before issue 14."""
    from osma_bench.evaluation.legacy import legacy_oscr

    scores = np.concatenate([known, unknown])
    rank = np.concatenate([np.where(correct, 0, 1), np.full(unknown.size, 2)])
    order = np.lexsort((rank, scores))
    dense = np.empty(scores.size)
    dense[order] = np.arange(scores.size, dtype=np.float64)  # distinct values in the pessimistic order
    return legacy_oscr(dense[:known.size], correct, dense[known.size:])


def scores_and_ties(run_dir: Path) -> None:
    """Legacy OSCR under three tie orders and legacy AUROC / OSCR with float32 and float64 MSP."""
    from osma_bench.evaluation import metrics as M
    from osma_bench.evaluation.scores import read_scores

    table = read_scores(run_dir / "scores.h5")
    known = table.group == 0
    logits = torch.from_numpy(table.logits.astype(np.float32))
    msp = {"float32": logits.softmax(dim=1).amax(dim=1).double().numpy(),
           "float64": logits.double().softmax(dim=1).amax(dim=1).numpy()}
    correct = table.logits[known].argmax(axis=1) == table.label[known]
    print(f"\nscores of {run_dir}: {known.sum()} known, {(~known).sum()} unknown test images (all groups)")
    for name, score in msp.items():
        k, u = score[known], score[~known]
        print(f"MSP in {name}: exactly 1.0 for {100 * (k == 1).mean():.1f}% known / {100 * (u == 1).mean():.1f}% "
              f"unknown;  legacy AUROC {100 * M.auroc(k, u, legacy=True):.2f}  OSCR "
              f"{100 * M.oscr(k, correct, u, legacy=True):.2f}  (tie-aware AUROC {100 * M.auroc(k, u):.2f}  "
              f"OSCR {100 * M.oscr(k, correct, u):.2f})")
    k, u = msp["float32"][known], msp["float32"][~known]
    print(f"OSCR on float32 MSP: official tie order {100 * M.oscr(k, correct, u, legacy=True):.2f}, pessimistic "
          f"ties {100 * pessimistic_oscr(k, correct, u):.2f}, tie-aware {100 * M.oscr(k, correct, u):.2f}")


def analyse_run(run_dir: Path, data: Path, limit: int) -> None:
    from osma_bench.harness.data import Partition, ordered_batches

    record = json.loads((run_dir / "run.json").read_text())
    config = record["config"]
    state = checkpoint.load(run_dir / "checkpoint.pt", torch.device("cpu"))
    val = Partition(data, int(record["split"]), "val", torch.device("cpu"), 4096.0, 0)
    images, labels = [], []
    for x, y in ordered_batches(val, 512):
        images.append(x)
        labels.append(y)
    images, labels = torch.cat(images)[:limit], torch.cat(labels)[:limit]
    num_classes = int(state["state"]["model"]["head.weight"].shape[0])
    spec = MethodSpec(num_classes, images.shape[-1], torch.device("cpu"), config, seed=int(record["seed"]),
                      epochs=int(config["epochs"]), steps_per_epoch=1, profile=record["profile"])
    method = POSEMethod(spec)
    method.load_state_dict(state["state"])
    print(f"run {run_dir} (legacy={config.get('legacy')}, final epoch {state['epoch']}, "
          f"{len(method.aug_models)} augmentation models), {len(labels)} validation images")
    print(f"validation accuracy  eval mode (running statistics): {100 * accuracy(method, images, labels, False):.1f}%"
          f"   batch statistics: {100 * accuracy(method, images, labels, True):.1f}%")
    history = record.get("history", [])
    if history:
        print("validation accuracy per epoch (run.json): "
              + " ".join(f"{100 * h['val_accuracy']:.1f}" for h in history))
    sets = {"known": images, "aug_0": method.aug_models[0](images),
            f"aug_{len(method.aug_models) - 1}": method.aug_models[-1](images)}
    gaps = {k: gap(method, v) for k, v in sets.items()}
    print("BatchNorm running vs batch statistics: mean |mu_run - mu_batch| / sigma_batch ; "
          "mean log(var_run / var_batch)")
    with torch.no_grad():
        method.model.eval()
        logits, feats = method.model(images)
    spread = (feats - feats.mean(dim=0)).norm(dim=1).mean() / feats.mean(dim=0).norm()
    print(f"features (eval mode): spread around their mean / norm of the mean {spread:.3f}; logits: mean "
          f"max - min {(logits.amax(dim=1) - logits.amin(dim=1)).mean():.3g}")
    print("layer".ljust(16) + "".join(k.rjust(22) for k in sets))
    for name in gaps["known"]:
        print(name.ljust(16) + "".join(f"{gaps[k][name][0]:10.2f} ;{gaps[k][name][1]:9.2f}".rjust(22) for k in sets))


def fingerprint_images(class_index: int, n: int, size: int, rng: np.random.Generator, strength: float) -> np.ndarray:
    """``n`` uint8 images: random smooth content (different in every image) plus a fixed, faint
    high-frequency pattern of the class (``strength`` grey levels), a stand-in for a generator's
    fingerprint; harder than the gratings of :func:`synthetic_images`, whose class is the content."""
    pattern = np.random.default_rng(1000 + class_index).normal(0.0, 1.0, (size, size, 3)).astype(np.float32)
    low = rng.normal(0.0, 1.0, (n, size // 16, size // 16, 3)).astype(np.float32)
    content = np.kron(low, np.ones((1, 16, 16, 1), np.float32))  # blocky smooth content
    noise = rng.normal(0.0, 6.0, (n, size, size, 3)).astype(np.float32)
    return np.clip(127.5 + 45.0 * content + noise + strength * pattern[None], 0, 255).astype(np.uint8)


def synthetic_run(epoch0: int, lr: float, later: int, args, held_x, held_y, batches) -> None:
    overrides = {"legacy": True, "width": args.width, "num_threads": args.threads, "lr": lr}
    config = resolve(POSEMethod, "paper", overrides).values
    spec = MethodSpec(args.classes, 128, torch.device("cpu"), config, seed=0, epochs=1 + args.later_epochs,
                      steps_per_epoch=epoch0,
                      profile="paper")
    torch.manual_seed(0)
    method = POSEMethod(spec)
    first, last = batch_norms(method.model)[0][0], batch_norms(method.model)[-1][0]
    started = time.perf_counter()
    print(f"\nepoch 0: {epoch0} train-mode steps, then {later} eval-mode steps (lr {config['lr']}, width "
          f"{args.width}, {args.classes} classes x {config['per_class']} images per step)")
    print("step  epoch  loss_cls  eval-mode acc  batch-stat acc  gap first BN (shift; log var ratio)  gap last BN")
    schedule = [(0, epoch0)] + [(e, later // args.later_epochs) for e in range(1, args.later_epochs + 1)]
    step = 0
    for epoch, n in schedule:
        losses = method.train_epoch(batches[step:step + n], epoch)
        step += n
        method.predict(held_x[:8])  # validation: the official loop leaves the model in eval mode
        g = gap(method, held_x)
        print(f"{step:4d}  {epoch:5d}  {losses['loss_cls']:8.3f}  {100 * accuracy(method, held_x, held_y, False):12.1f}%"
              f"  {100 * accuracy(method, held_x, held_y, True):13.1f}%  {g[first][0]:12.2f} ;{g[first][1]:6.2f}"
              f"  {g[last][0]:9.2f} ;{g[last][1]:6.2f}")
    print(f"({time.perf_counter() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a finished POSE run directory (with checkpoint.pt)")
    parser.add_argument("--data", type=Path, help="its dataset folder")
    parser.add_argument("--limit", type=int, default=1200, help="validation images used for --run")
    parser.add_argument("--synthetic", action="store_true", help="the paper-profile run on synthetic 128x128 data")
    parser.add_argument("--configs", default="18:1e-3,18:1e-4,100:1e-4",
                        help="epoch-0 length:learning rate pairs to compare (paper lr 1e-4, mini 1e-3)")
    parser.add_argument("--later-steps", type=int, default=100, help="eval-mode steps after epoch 0")
    parser.add_argument("--later-epochs", type=int, default=4, help="epochs (augmentation models) they make")
    parser.add_argument("--width", type=int, default=8, help="Simple_CNN width (paper 64)")
    parser.add_argument("--classes", type=int, default=5, help="known classes (paper 15)")
    parser.add_argument("--data-kind", choices=("fingerprint", "gratings"), default="fingerprint",
                        help="synthetic classes: a faint per-class pattern on random content, or gratings")
    parser.add_argument("--strength", type=float, default=4.0, help="fingerprint amplitude in grey levels")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.run:
        if args.data is None:
            parser.error("--run needs --data")
        analyse_run(args.run, args.data, args.limit)
        scores_and_ties(args.run)
    if args.synthetic:
        rng = np.random.default_rng(0)

        def images(n):
            if args.data_kind == "gratings":
                x = np.concatenate([synthetic_images(k, n, 128, rng) for k in range(args.classes)])
            else:
                x = np.concatenate([fingerprint_images(k, n, 128, rng, args.strength) for k in range(args.classes)])
            return torch.from_numpy(x).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)

        labels = torch.arange(args.classes)
        held_x, held_y = images(40), labels.repeat_interleave(40)
        configs = [(int(a), float(b)) for a, b in (c.split(":") for c in args.configs.split(","))]
        total = max(e for e, _ in configs) + args.later_steps
        order = torch.randperm(total, generator=torch.Generator().manual_seed(0))
        pool = images(8 * 4)  # 32 images per class, drawn into class-balanced steps of 8 per class
        batches = []
        for s in range(total):
            idx = torch.cat([k * 32 + (torch.arange(8) + 8 * int(order[s] % 4)) for k in range(args.classes)])
            batches.append((pool[idx], labels.repeat_interleave(8)))
        for epoch0, lr in configs:
            synthetic_run(epoch0, lr, args.later_steps, args, held_x, held_y, batches)
    if not (args.run or args.synthetic):
        parser.error("give --run DIR --data DATA and/or --synthetic")


if __name__ == "__main__":
    main()
