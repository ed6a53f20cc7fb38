"""How hard is the embedded mini benchmark? Base (POSE's Simple_CNN on DCT, CE + MSP) under the mini profile.

Trains the suite's Base method (``osma_bench.methods.base_cnn.BaseMethod``) on each protocol split
with the ``mini`` profile's budget (32x32, 16 images per known class per step, 12 epochs, Adam
1e-3, StepLR(50, 0.9), width 32, steps per epoch = largest class // 16), keeps the epoch with the
best validation accuracy (the profile's ``select_on``), and reports closed-set accuracy on the
test set (unseen-real images included, under ``real``) and the AUROC (scikit-learn, maximum
softmax probability, known test images against each unknown group) per group and for all unknowns.

    .venv/bin/python benchmarks/bench_mini_difficulty.py                 # build in memory, seed 0
    .venv/bin/python benchmarks/bench_mini_difficulty.py --data datasets/mini

Run by hand (minutes on a 2-core CPU); it is not a test.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from sklearn.metrics import roc_auc_score

GROUPS = ("seed", "arch", "dataset")


def _from_memory(seed: int, scale: str, workers: int | None):
    from osma_bench.data.mini.build import make_benchmark

    t0 = time.perf_counter()
    bench = make_benchmark(seed=seed, scale=scale, workers=workers,
                           progress=lambda stage, done, total: None)
    print(f"built in memory in {time.perf_counter() - t0:.1f} s ({bench.timings})", flush=True)
    splits = []
    for k, entry in enumerate(bench.splits, start=1):
        parts = {p: (bench.images[i], lab) for p, (i, lab) in entry["partitions"].items()}
        splits.append((k, len(entry["known_classes"]), parts))
    return splits


def _from_disk(root: Path, which: list[int]):
    from osma_bench.data import OSMADataset, load_card

    card = load_card(root)
    splits = []
    for k in which:
        parts = {}
        for p in ("train", "val", "test") + tuple(f"out_{g}" for g in GROUPS):
            ds = OSMADataset(root, k, p)
            images, labels = ds.load_all()
            parts[p] = (images.permute(0, 2, 3, 1).numpy(), np.asarray(labels))
        splits.append((k, len(card["splits"][str(k)]["known_classes"]), parts))
    return splits


def _to_float(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _profile() -> dict:
    path = Path(__file__).resolve().parents[1] / "osma_bench" / "harness" / "profiles" / "mini.yaml"
    return yaml.safe_load(path.read_text())


@torch.no_grad()
def _predict(method, images: torch.Tensor, batch: int) -> tuple[np.ndarray, np.ndarray]:
    logits, scores = [], []
    for start in range(0, len(images), batch):
        pred = method.predict(images[start : start + batch])
        logits.append(pred.logits)
        scores.append(pred.score)
    return torch.cat(logits).numpy(), torch.cat(scores).numpy()


def run_split(k: int, num_known: int, parts: dict, seed: int, profile: dict) -> dict:
    """Train Base on one split and return accuracy and AUROC per unknown group."""
    from osma_bench.methods.api import MethodSpec
    from osma_bench.methods.base_cnn import BaseMethod

    torch.manual_seed(seed)
    train_x, train_y = _to_float(parts["train"][0]), torch.as_tensor(parts["train"][1])
    per_class = int(profile["per_class"])
    by_class = [torch.nonzero(train_y == c).flatten() for c in range(num_known)]
    steps = max(len(ix) for ix in by_class) // per_class
    hp = BaseMethod.resolve_hparams("mini", {key: profile[key] for key in ("lr", "lr_step", "lr_gamma", "width")})
    spec = MethodSpec(num_classes=num_known, image_size=int(profile["image_size"]), device=torch.device("cpu"),
                      hparams=hp, seed=seed, epochs=int(profile["epochs"]), steps_per_epoch=steps, profile="mini")
    method = BaseMethod(spec)
    gen = torch.Generator().manual_seed(seed)
    val_x, val_y = _to_float(parts["val"][0]), parts["val"][1]
    best = (-1.0, None)
    t0 = time.perf_counter()
    for epoch in range(spec.epochs):
        orders = [ix[torch.randperm(len(ix), generator=gen)] for ix in by_class]

        def batches(orders=orders):
            for s in range(steps):
                pick = torch.cat([o.repeat(2)[s * per_class : (s + 1) * per_class] for o in orders])
                yield train_x[pick], train_y[pick]

        method.train_epoch(batches(), epoch)
        val_acc = float((_predict(method, val_x, 512)[0].argmax(1) == val_y).mean())
        if val_acc > best[0]:
            best = (val_acc, copy.deepcopy(method.state_dict()))
    method.load_state_dict(best[1])
    train_s = time.perf_counter() - t0
    test_logits, test_score = _predict(method, _to_float(parts["test"][0]), 512)
    result = {"split": k, "val_accuracy": best[0], "train_s": round(train_s, 1),
              "accuracy": float((test_logits.argmax(1) == parts["test"][1]).mean()), "auroc": {}}
    unknown_scores = []
    for g in GROUPS:
        _, score = _predict(method, _to_float(parts[f"out_{g}"][0]), 512)
        unknown_scores.append(score)
        y = np.r_[np.ones(len(test_score)), np.zeros(len(score))]
        result["auroc"][g] = float(roc_auc_score(y, np.r_[test_score, score]))
    allu = np.concatenate(unknown_scores)
    y = np.r_[np.ones(len(test_score)), np.zeros(len(allu))]
    result["auroc"]["all"] = float(roc_auc_score(y, np.r_[test_score, allu]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a built mini dataset (default: build in memory)")
    parser.add_argument("--seed", type=int, default=0, help="build seed (in memory) and training seed")
    parser.add_argument("--scale", default="full")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--splits", default="1,2,3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    which = [int(s) for s in args.splits.split(",")]
    splits = _from_disk(args.data, which) if args.data else [s for s in _from_memory(args.seed, args.scale,
                                                                                      args.workers) if s[0] in which]
    torch.set_num_threads(args.threads)
    profile = _profile()
    results = []
    for k, num_known, parts in splits:
        res = run_split(k, num_known, parts, args.seed, profile)
        results.append(res)
        au = "  ".join(f"{g} {100 * v:5.1f}" for g, v in res["auroc"].items())
        print(f"split{k}: accuracy {100 * res['accuracy']:5.1f}  AUROC {au}  ({res['train_s']} s)", flush=True)
    mean_acc = np.mean([r["accuracy"] for r in results])
    mean_au = {g: float(np.mean([r["auroc"][g] for r in results])) for g in GROUPS + ("all",)}
    print(f"mean:   accuracy {100 * mean_acc:5.1f}  AUROC " + "  ".join(f"{g} {100 * v:5.1f}" for g, v in mean_au.items()))
    if args.json:
        args.json.write_text(json.dumps({"splits": results, "mean_accuracy": mean_acc, "mean_auroc": mean_au}, indent=2))


if __name__ == "__main__":
    main()
