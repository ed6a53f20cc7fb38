"""OpenMax: Weibull-calibrated open-set recognition, post hoc on the Base classifier.

Paper: Bendale, Boult. "Towards Open Set Deep Networks", CVPR 2016; official code
github.com/abhijitbendale/OSDN (``compute_openmax.py``, ``evt_fitting.py``, libMR for the Weibull fit).
Applied on POSE's Base classifier as in POSE's Table 2 (Yang et al., CVPR 2023).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.stats import rankdata

from baselines.weibull import WeibullTail, fit_high
from osma_bench.errors import OsmaError
from osma_bench.hparams import Choice, HParam, Int, IntList, Str, StrList
from osma_bench.methods.api import Batches, Method, MethodSpec, Prediction
from osma_bench.methods.base_cnn import BaseMethod
from osma_bench.methods.common import with_profiles

DISTANCES = ("eucos", "euclidean", "cosine")
#: Configuration keys a reused Base run must share with this run (they fix the trained network).
BASE_RUN_KEYS = ("image_size", "width", "feature_dim", "dropout", "input_transform", "temperature", "legacy",
                 "amp", "amp_dtype")


# -- the OpenMax computation, on activation vectors (numpy, float64) ------------------------------------

def distances_to(av: np.ndarray, mav: np.ndarray, distance: str) -> np.ndarray:
    """Distance of each row of ``av`` (N, D) to one mean activation vector ``mav`` (D,).

    As the official code: ``euclidean`` = ||v - mu|| / 200, ``cosine`` = 1 - cos(v, mu),
    ``eucos`` = their sum.
    """
    av = np.asarray(av, dtype=np.float64)
    mav = np.asarray(mav, dtype=np.float64)
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}")
    euclid = np.linalg.norm(av - mav, axis=-1) / 200.0
    if distance == "euclidean":
        return euclid
    norms = np.linalg.norm(av, axis=-1) * np.linalg.norm(mav)
    cosine = 1.0 - (av @ mav) / np.where(norms > 0, norms, 1.0)
    return cosine if distance == "cosine" else euclid + cosine


def class_distances(av: np.ndarray, mavs: np.ndarray, distance: str) -> np.ndarray:
    """``(N, K)``: distance of every activation vector to every class's MAV."""
    return np.stack([distances_to(av, mavs[k], distance) for k in range(len(mavs))], axis=1)


def alpha_weights(av: np.ndarray, alpha: int) -> np.ndarray:
    """``(N, K)``: weight ``(alpha - r) / alpha`` for the class of rank r = 0 .. alpha - 1, else 0."""
    av = np.asarray(av, dtype=np.float64)
    alpha = min(int(alpha), av.shape[1])
    order = np.argsort(-av, axis=1, kind="stable")
    weights = np.zeros_like(av)
    rows = np.arange(av.shape[0])
    for rank in range(alpha):
        weights[rows, order[:, rank]] = (alpha - rank) / alpha
    return weights


def recalibrate(av: np.ndarray, dist: np.ndarray, tails: Sequence[WeibullTail], alpha: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenMax recalibration of activation vectors ``av`` (N, K) with their class distances ``dist``.

    ``w_c = alpha weight of c * W_c(dist_c)``; ``v_hat_c = v_c (1 - w_c)``; the unknown activation is
    ``sum_c v_c w_c``; probabilities are the softmax over the K + 1 activations. Returns
    ``(v_hat (N, K), unknown (N,), probabilities (N, K + 1))``.
    """
    av = np.asarray(av, dtype=np.float64)
    wscore = np.stack([tails[k].w_score(dist[:, k]) for k in range(av.shape[1])], axis=1)
    w = alpha_weights(av, alpha) * wscore
    v_hat = av * (1.0 - w)
    unknown = (av * w).sum(axis=1)
    scores = np.concatenate([v_hat, unknown[:, None]], axis=1)
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    return v_hat, unknown, probs


def mean_activation_vectors(av: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """MAV of each class from its correctly classified training vectors; returns ``(mavs, used)``.

    ``used`` marks the vectors that entered a MAV. A class with no correctly classified image
    falls back to all its images (the official code would have no model for it).
    """
    correct = av.argmax(axis=1) == labels
    used = np.zeros(len(labels), dtype=bool)
    mavs = np.zeros((num_classes, av.shape[1]))
    for k in range(num_classes):
        members = labels == k
        if not members.any():
            raise OsmaError(f"openmax: known class {k} has no training images; cannot fit its Weibull model")
        chosen = members & correct if (members & correct).any() else members
        mavs[k] = av[chosen].mean(axis=0)
        used |= chosen
    return mavs, used


def fit_tails(av: np.ndarray, labels: np.ndarray, used: np.ndarray, mavs: np.ndarray, distance: str,
              tail_size: int) -> list[WeibullTail]:
    """One libMR-FitHigh Weibull per class on the ``tail_size`` largest distances to its MAV."""
    tails = []
    for k in range(len(mavs)):
        members = used & (labels == k)
        tails.append(fit_high(distances_to(av[members], mavs[k], distance), tail_size))
    return tails


def auroc(known_score: np.ndarray, unknown_score: np.ndarray) -> float:
    """Tie-aware AUROC (Mann-Whitney) of known-vs-unknown with higher score = known."""
    n_k, n_u = len(known_score), len(unknown_score)
    ranks = rankdata(np.concatenate([known_score, unknown_score]))
    return float((ranks[:n_k].sum() - n_k * (n_k + 1) / 2) / (n_k * n_u))


def select_on_validation(train_av: np.ndarray, train_labels: np.ndarray, val_av: np.ndarray,
                         val_labels: np.ndarray, tail_sizes: Iterable[int], alphas: Iterable[int],
                         distances: Iterable[str]) -> tuple[tuple[int, int, str], dict[str, float]]:
    """Choose (tail size, alpha, distance) on validation data of the known classes only.

    Leave-one-class-out: for each known class c, OpenMax is rebuilt on the other classes (their
    activation coordinates, MAVs and Weibull tails, c's coordinate removed), validation images of
    the other classes act as known and those of c as unknown; the criterion is the mean AUROC of
    ``1 - P(unknown)`` over the held-out classes. The first best candidate in grid order wins.
    Returns the choice and the criterion of every candidate (``"tail/alpha/distance"`` keys).
    """
    num_classes = train_av.shape[1]
    alphas = sorted({min(int(a), num_classes - 1) for a in alphas if int(a) >= 1})
    grid = list(itertools.product([int(t) for t in tail_sizes], alphas, list(distances)))
    totals = {cand: 0.0 for cand in grid}
    held_out = [c for c in range(num_classes) if (val_labels == c).any() and (val_labels != c).any()]
    if not held_out or num_classes < 2:
        raise OsmaError("openmax: validation data must hold at least two known classes to choose the "
                        "tail size, alpha and distance")
    for c in held_out:
        keep = [k for k in range(num_classes) if k != c]
        remap = {k: i for i, k in enumerate(keep)}
        tr_mask = train_labels != c
        tr_av = train_av[tr_mask][:, keep]
        tr_labels = np.array([remap[int(k)] for k in train_labels[tr_mask]], dtype=np.int64)
        mavs, used = mean_activation_vectors(tr_av, tr_labels, len(keep))
        v_av = val_av[:, keep]
        is_known = val_labels != c
        for distance in dict.fromkeys(d for _, _, d in grid):
            dist = class_distances(v_av, mavs, distance)
            for tail in dict.fromkeys(t for t, _, _ in grid):
                tails = fit_tails(tr_av, tr_labels, used, mavs, distance, tail)
                for alpha in alphas:
                    _, _, probs = recalibrate(v_av, dist, tails, alpha)
                    score = 1.0 - probs[:, -1]
                    totals[(tail, alpha, distance)] += auroc(score[is_known], score[~is_known])
    criterion = {f"{t}/{a}/{d}": v / len(held_out) for (t, a, d), v in totals.items()}
    best = max(grid, key=lambda cand: (totals[cand], -grid.index(cand)))
    return best, criterion


# -- reusing a finished Base run ---------------------------------------------------------------------------

def load_base_run(run_dir: str | Path, spec: MethodSpec, base: BaseMethod, method: str) -> dict[str, Any]:
    """Load a finished Base run's selected checkpoint into ``base``; returns its run.json.

    The run must be a complete ``base`` run with the same seed and the same network configuration
    (and, where the harness provides them in the spec, the same dataset content hash and split).
    """
    from osma_bench.harness import checkpoint

    run_dir = Path(run_dir)
    record_path = run_dir / "run.json"
    try:
        record = json.loads(record_path.read_text())
    except FileNotFoundError:
        raise OsmaError(f"{method}: base_run {run_dir}: no run.json; pass the folder of a finished Base run "
                        "(results/<dataset>/base/split<k>/seed<s>)") from None
    except (OSError, ValueError) as exc:
        raise OsmaError(f"{method}: base_run {record_path}: unreadable ({exc})") from None
    if not isinstance(record, dict):
        raise OsmaError(f"{method}: base_run {record_path}: not a run record")
    problems = []
    if record.get("method") != "base":
        problems.append(f"method is {record.get('method')!r}, not 'base'")
    if record.get("status") != "complete":
        problems.append(f"status is {record.get('status')!r}, not 'complete'")
    if record.get("seed") != spec.seed:
        problems.append(f"seed {record.get('seed')} differs from this run's {spec.seed}")
    for attr, key in (("split", "split"), ("dataset_sha256", "dataset_sha256")):
        mine = getattr(spec, attr, None)
        if mine is not None and record.get(key) != mine:
            problems.append(f"{key} {record.get(key)!r} differs from this run's {mine!r}")
    config = record.get("config") or {}
    for key in BASE_RUN_KEYS:
        if key in spec.hparams and key in config and config[key] != spec.hparams[key]:
            problems.append(f"config {key}={config[key]!r} differs from this run's {spec.hparams[key]!r}")
    if problems:
        raise OsmaError(f"{method}: base_run {run_dir} cannot be reused: " + "; ".join(problems))
    best = run_dir / checkpoint.BEST
    path = best if config.get("select_on", "val_accuracy") == "val_accuracy" and best.is_file() else run_dir / checkpoint.LAST
    payload = checkpoint.load(path, spec.device)
    try:
        base.load_state_dict(payload["state"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise OsmaError(f"{method}: base_run {path}: does not fit this run's network ({exc})") from None
    return record


# -- the method --------------------------------------------------------------------------------------------

class OpenMax(Method):
    """OpenMax on the Base classifier: MAVs, per-class Weibull tails, alpha-weighted recalibration.

    Training: a :class:`~osma_bench.methods.base_cnn.BaseMethod` trains for the run's epochs (the Base
    budget of the profile), or ``base_run=DIR`` reuses a finished Base run of the same dataset, split
    and seed (then pass ``--epochs 1``: the epochs do nothing). ``finalize`` fits the model post hoc
    on the selected Base checkpoint:

    - activation vectors (AV) = the Base logits (``z / T``, the classifier's effective logits);
    - MAV of each class = mean AV of its correctly classified training images;
    - per class, libMR FitHigh on the ``tail_size`` largest AV-to-MAV distances (:mod:`baselines.weibull`);
    - at test time the top ``alpha`` classes get weights ``(alpha - r) / alpha``,
      ``w_c = weight * W_c(d_c)``, ``v_hat_c = v_c (1 - w_c)``, unknown activation ``sum v_c w_c``,
      softmax over K + 1. Logits = ``v_hat``; score = 1 - P(unknown) (higher = known).

    Tail size, alpha and the distance type are chosen on validation data only (leave-one-class-out,
    see :func:`select_on_validation`) among ``tail_size_grid`` x ``alpha_grid`` x ``distance_grid``
    when ``finalize`` receives a validation loader; otherwise the paper defaults are used. The values
    used (and every candidate's criterion) are written to run.json under ``method_record``
    (:meth:`run_record`); the ``tail_size``/``alpha``/``distance`` entries of ``hyperparameters`` are
    only the fallback defaults.

    Defaults (paper / official code): ``tail_size`` 20, ``alpha`` 10 (capped at K), ``distance`` eucos
    (Euclidean / 200 + cosine), libMR translation 10,000. The official single-crop scoring is used
    (the paper averages 10 crops; the suite evaluates one image once). Grids: tails 5/10/20/50,
    alpha 1/2/3/5/10, all three distances. Per-profile scaling: none of OpenMax's own (its Base
    phase follows the profile exactly as Base does); ``smoke`` narrows the grids to keep tests quick.

    ``amp=true``: the Base phase and the activation vectors run under Base's autocast; the Weibull
    fits and the recalibration are float64 (NumPy). A reused ``base_run`` must match ``amp``.
    """

    name: ClassVar[str] = "openmax"
    supports_amp: ClassVar[bool] = True
    paper: ClassVar[str] = "Bendale & Boult, Towards Open Set Deep Networks (OpenMax), CVPR 2016"
    hparams: ClassVar[tuple[HParam, ...]] = (
        *BaseMethod.hparams,
        Int("tail_size", 20, "Weibull tail size when not chosen on validation", low=1, paper="20"),
        Int("alpha", 10, "classes recalibrated (top alpha, capped at K) when not chosen on validation", low=1,
            paper="10"),
        Choice("distance", "eucos", DISTANCES, "AV-to-MAV distance when not chosen on validation", paper="eucos"),
        IntList("tail_size_grid", [5, 10, 20, 50], "tail sizes tried on validation data", low=1,
                paper="- (the paper fixes 20)"),
        IntList("alpha_grid", [1, 2, 3, 5, 10], "alpha values tried on validation data", low=1,
                paper="- (the paper fixes 10)"),
        StrList("distance_grid", list(DISTANCES), "distances tried on validation data", choices=DISTANCES,
                paper="- (the paper fixes eucos)"),
        Str("base_run", None, "a finished Base run folder of the same dataset, split and seed to build on "
            "(then --epochs 1)", nullable=True, paper="-"),
    )
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = with_profiles({
        "smoke": {"tail_size_grid": [2, 20], "alpha_grid": [1, 10]},
    })

    def __init__(self, spec: MethodSpec) -> None:
        super().__init__(spec)
        self.base = BaseMethod(spec)
        for key, allowed in (("distance", DISTANCES),):
            if self.hp[key] not in allowed:
                raise OsmaError(f"openmax: {key} must be one of {', '.join(allowed)}, got {self.hp[key]!r}")
        bad = [d for d in self.hp["distance_grid"] if d not in DISTANCES]
        if bad:
            raise OsmaError(f"openmax: distance_grid holds unknown distance(s) {bad}; use {', '.join(DISTANCES)}")
        self.base_run = self.hp.get("base_run")
        if self.base_run:
            load_base_run(self.base_run, spec, self.base, "openmax")
        self.mavs: np.ndarray | None = None
        self.tails: list[WeibullTail] = []
        self.choice: dict[str, Any] = {}

    def train_epoch(self, loader: Batches, epoch: int) -> dict[str, float]:
        """Base training (nothing when a Base run is reused)."""
        if self.base_run:
            return {}
        self.mavs = None
        losses = self.base.train_epoch(loader, epoch)
        self.step_losses = self.base.step_losses
        return losses

    @torch.no_grad()
    def _activations(self, loader: Batches) -> tuple[np.ndarray, np.ndarray]:
        avs, labels = [], []
        for images, y in loader:
            avs.append(self.base.predict(images).logits.double().cpu().numpy())
            labels.append(y.cpu().numpy())
        if not avs:
            raise OsmaError("openmax: the loader given to finalize is empty")
        return np.concatenate(avs), np.concatenate(labels).astype(np.int64)

    def finalize(self, train_loader: Batches, val_loader: Batches | None = None) -> None:
        """Fit MAVs and Weibull tails on the training set; choose the settings on ``val_loader``."""
        train_av, train_labels = self._activations(train_loader)
        k = train_av.shape[1]
        if val_loader is not None:
            val_av, val_labels = self._activations(val_loader)
            (tail, alpha, distance), criterion = select_on_validation(
                train_av, train_labels, val_av, val_labels, self.hp["tail_size_grid"], self.hp["alpha_grid"],
                self.hp["distance_grid"])
            self.choice = {"tail_size": tail, "alpha": alpha, "distance": distance, "selected_on": "validation",
                           "criterion": criterion}
        else:
            tail, alpha, distance = int(self.hp["tail_size"]), int(self.hp["alpha"]), str(self.hp["distance"])
            self.choice = {"tail_size": tail, "alpha": alpha, "distance": distance, "selected_on": "defaults"}
        self.choice["alpha"] = min(int(self.choice["alpha"]), k)
        self.mavs, used = mean_activation_vectors(train_av, train_labels, k)
        self.tails = fit_tails(train_av, train_labels, used, self.mavs, self.choice["distance"],
                               int(self.choice["tail_size"]))

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        """OpenMax logits ``v_hat`` and score ``1 - P(unknown)``; Base's MSP before ``finalize``."""
        base = self.base.predict(images)
        if self.mavs is None:
            return base
        av = base.logits.double().cpu().numpy()
        dist = class_distances(av, self.mavs, self.choice["distance"])
        v_hat, _, probs = recalibrate(av, dist, self.tails, int(self.choice["alpha"]))
        device = base.logits.device
        return Prediction(torch.from_numpy(v_hat).float().to(device),
                          torch.from_numpy(1.0 - probs[:, -1]).to(device), base.features)

    def run_record(self) -> dict[str, Any]:
        """The tail size, alpha and distance used, how they were chosen, and each candidate's criterion."""
        return {key: value for key, value in self.choice.items()}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"base": self.base.state_dict()}
        if self.mavs is not None:
            state["openmax"] = {
                "mavs": torch.from_numpy(self.mavs),
                "tails": torch.from_numpy(np.stack([t.as_array() for t in self.tails])),
                "tail_size": int(self.choice["tail_size"]), "alpha": int(self.choice["alpha"]),
                "distance": str(self.choice["distance"]), "selected_on": str(self.choice["selected_on"]),
            }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base.load_state_dict(state["base"])
        fitted = state.get("openmax")
        if fitted is None:
            self.mavs, self.tails, self.choice = None, [], {}
            return
        self.mavs = fitted["mavs"].double().cpu().numpy()
        self.tails = [WeibullTail.from_array(row) for row in fitted["tails"].double().cpu().numpy()]
        self.choice = {k: fitted[k] for k in ("tail_size", "alpha", "distance", "selected_on")}
