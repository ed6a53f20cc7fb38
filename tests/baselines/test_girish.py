"""Girish et al. (ICCV 2021): the WTA-hash detector, one discovery round, the method and the whole path."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from baselines.girish import Girish, make_detector
from baselines.wta_hash import hash_distance_quantile
from osma_bench.discovery.girish_rounds import attribute, discover_round
from osma_bench.discovery.stages import UNDISCOVERED, attribute_to_nearest

HP = {"num_hashes": 256, "window": 2, "hash_block": 64, "quantile": 0.9, "overcluster": 9, "kmeans_max_iter": 100,
      "svm_purity": 0.5, "svm_min_size": 5}
HAS_RESNET = importlib.util.find_spec("osma_bench.nn.resnet") is not None


def planted(n_known=2, n_unknown=3, per=30, dim=16, seed=0):
    """Train features of the known classes; a pool of known and unknown sources (true ids)."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_known + n_unknown, dim, generator=gen) * 4
    def draw(c, n):
        return centres[c] + 0.4 * torch.randn(n, dim, generator=gen)
    train = torch.cat([draw(c, per) for c in range(n_known)])
    train_y = torch.arange(n_known).repeat_interleave(per)
    pool = torch.cat([draw(c, per) for c in range(n_known + n_unknown)])
    truth = np.repeat(np.arange(n_known + n_unknown), per)
    return train, train_y, pool, truth


def test_detector_thresholds_and_margins():
    train, train_y, pool, truth = planted()
    det = make_detector(HP, train, seed=0).fit([train[train_y == c] for c in range(2)], 0.9)
    codes = det.codes(train[train_y == 1])
    assert det.thresholds[1] == hash_distance_quantile(codes, 0.9, 2)
    margins = det.margins(pool)
    known_rows = truth < 2
    # a known image is within its own class's threshold; unknown sources are outside every class
    assert (margins[known_rows, torch.from_numpy(truth[known_rows])] > 0).float().mean() > 0.9
    assert (margins[~known_rows].max(1).values <= 0).all()


def test_attribution_gives_known_images_their_predicted_class():
    train, train_y, pool, truth = planted()
    preds = np.where(truth < 2, truth, 0)  # the network calls every unknown class 0
    labels, n_known, n_found = attribute(HP, np.full(len(truth), UNDISCOVERED), train, train_y, pool, preds, 2, 0)
    assert n_found == 0 and n_known >= 0.9 * (truth < 2).sum()
    assert np.all(labels[truth >= 2] == UNDISCOVERED)  # the detector rejects them despite the prediction
    assert np.all(labels[labels != UNDISCOVERED] == truth[labels != UNDISCOVERED])


def test_one_round_discovers_the_planted_unknown_sources():
    train, train_y, pool, truth = planted()
    preds = np.where(truth < 2, truth, 1)
    labels, log = discover_round(HP, np.full(len(truth), UNDISCOVERED), train, train_y, pool, preds, 2, 1, seed=0)
    assert log.new_clusters == 9 and log.after_merge < 9  # over-clustered, then merged
    found = labels >= 2
    assert found.sum() > 0.8 * (truth >= 2).sum()
    assert adjusted_rand_score(truth[found], labels[found]) == 1.0  # every discovered cluster is pure
    final = attribute_to_nearest(pool.double().numpy(), labels)
    assert adjusted_rand_score(truth, final) > 0.9


def test_profiles_scale_documented_hparams():
    mini = Girish.resolve_hparams("mini")
    assert mini["depth"] == 18 and mini["num_hashes"] == 512 and mini["window"] == 2
    paper = Girish.resolve_hparams("paper")
    assert paper["num_hashes"] == 2048 and paper["overcluster"] == 500 and paper["svm_min_size"] == 100
    assert paper["fc_dims"] == [512, 512, 128] and paper["dropout"] == 0.5 and paper["rounds"] == 4


needs_resnet = pytest.mark.skipif(not HAS_RESNET, reason="osma_bench.nn.resnet not written yet")


@needs_resnet
def test_method_trains_predicts_and_roundtrips(batch):
    from tests.baselines.conftest import make_method, roundtrip

    method = make_method(Girish)
    x, y = batch
    losses = method.train_epoch([(x, y)], 0)
    assert np.isfinite(losses["ce"])
    before = method.predict(x)
    assert before.features.shape == (12, 128) and before.logits.shape == (12, 3)
    method.finalize([(x, y)])
    pred = method.predict(x)
    assert pred.score.shape == (12,) and (pred.score > 0).float().mean() > 0.5  # training images are known
    again = make_method(Girish)
    again.load_state_dict(roundtrip(method.state_dict()))
    assert torch.allclose(again.predict(x).score, pred.score) and torch.allclose(again.predict(x).logits, pred.logits)
    method.reset_classifier(5)
    assert method.predict(x).logits.shape == (12, 5)


@needs_resnet
@pytest.mark.slow
def test_smoke_run_then_discover(synthetic_root, tmp_path):
    import json

    from osma_bench.cli import main
    from tests.baselines.conftest import smoke_run

    result = smoke_run(synthetic_root, tmp_path, "girish", epochs=1)
    assert main(["discover", "--run", str(result.path), "--method", "girish", "--data", str(synthetic_root)]) == 0
    data = json.loads((result.path / "clustering.json").read_text())
    methods = {r["method"] for r in data["results"]}
    assert methods == {"girish", "kmeans"}
    for entry in data["results"]:
        assert 0.0 <= entry["purity"] <= 1.0 and -1.0 <= entry["ari"] <= 1.0 and entry["k"] >= 1


def test_refinement_svms_use_thundersvm_default_gamma(monkeypatch):
    """Girish et al.'s SVMs (ThunderSVM) default to gamma 'auto'; the round passes the declared value."""
    import osma_bench.discovery.girish_rounds as rounds

    assert Girish.declared_hparams()["svm_gamma"].default == "auto"
    seen = {}
    real = rounds.refine_with_svms

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(rounds, "refine_with_svms", spy)
    train, train_y, pool, truth = planted()
    preds = np.where(truth < 2, truth, 1)
    rounds.discover_round(HP, np.full(len(truth), UNDISCOVERED), train, train_y, pool, preds, 2, 1, seed=0)
    assert seen.get("gamma") == HP.get("svm_gamma", "auto") == "auto"


def test_mini_round_one_epochs_depart_with_the_measurement():
    from osma_bench.harness.config import resolve

    mini = resolve(Girish, "mini")
    assert mini.values["epochs"] == 120 and "validation" in mini.departures["epochs"]
    assert resolve(Girish, "paper").values["epochs"] == 50
