"""The t-SNE plot with a method's augmented samples: subsample, one embedding, legend."""

from __future__ import annotations

import numpy as np
import pytest

from osma_bench.evaluation.scores import make_table, write_scores
from osma_bench.report import build_report, plots, write_plots
from tests.report.conftest import SHA_A, fake_metrics, write_run


def scores_args(sources: list[str], per_source: int = 10, n: int = 60, seed: int = 0) -> dict:
    """``write_scores`` arguments: ``n`` test images in four groups, augmented rows from ``sources``."""
    rng = np.random.default_rng(seed)
    group = np.repeat([0, 1, 2, 3], n // 4)
    logits = rng.normal(size=(n, 3)).astype(np.float32)
    args = dict(index=np.arange(n), sha256=[f"{i:064x}" for i in range(n)], group=group,
                label=np.tile(np.arange(3), n // 3), logits=logits, score=logits.max(1) + (group == 0),
                features=rng.normal(size=(n, 4)), split=1, dataset_sha256=SHA_A, method="pose", num_classes=3)
    if sources:
        args.update(augmented_features=rng.normal(size=(per_source * len(sources), 4)) + 3.0,
                    augmented_source=np.repeat(sources, per_source))
    return args


def draw(monkeypatch, tmp_path, table):
    """Run ``_tsne`` and return its figure (kept open) for inspection."""
    plt = plots._figure()
    figures, close = [], plt.close
    monkeypatch.setattr(plt, "close", figures.append)
    path = tmp_path / "tsne.png"
    assert plots._tsne(plt, "pose", "split1 seed0", table, tmp_path / "tsne", ("png",), True) == [path]
    assert path.read_bytes()[:4] == b"\x89PNG"
    fig = figures[0]
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    points = {c.get_label(): len(c.get_offsets()) for c in ax.collections}
    close(fig)
    return labels, points


def test_plot_file_is_written_with_augmented_features(tmp_path):
    folder = write_run(tmp_path / "results", "pose", 1, 0, metrics=fake_metrics(0.9, 0.8, 0.7))
    write_scores(folder / "scores.h5", **scores_args(["aug_0", "aug_1"]))
    written, notes = write_plots(build_report(tmp_path / "results"), tmp_path / "plots")
    tsne = [p for p in written if p.name.endswith("_pose_tsne.png")]
    assert len(tsne) == 1 and tsne[0].stat().st_size > 1000 and not notes


def test_one_embedding_with_a_legend_entry_per_source(monkeypatch, tmp_path):
    table = make_table(**scores_args(["aug_0", "aug_1"]))
    labels, points = draw(monkeypatch, tmp_path, table)
    assert labels == ["known", "unknown seed", "unknown arch", "unknown dataset", "augmented aug_0",
                      "augmented aug_1"]
    assert points["augmented aug_0"] == points["augmented aug_1"] == 10 and points["known"] == 15


def test_many_sources_share_one_legend_entry(monkeypatch, tmp_path):
    names = [f"aug_{i}" for i in range(plots.TSNE_SOURCES_SHOWN + 2)]
    labels, points = draw(monkeypatch, tmp_path, make_table(**scores_args(names, per_source=3)))
    assert labels[-1] == f"augmented ({len(names)} sources)" and len(labels) == 5
    assert points[labels[-1]] == 3 * len(names)


def test_subsample_is_seeded_stratified_and_capped():
    table = make_table(**scores_args(["a", "b"], per_source=plots.TSNE_MAX_AUGMENTED))
    rows, aug = plots._tsne_rows(table, np.random.default_rng(0))
    again = plots._tsne_rows(table, np.random.default_rng(0))
    assert np.array_equal(rows, again[0]) and np.array_equal(aug, again[1])
    assert rows.size == 60 and aug.size == plots.TSNE_MAX_AUGMENTED
    assert (table.augmented.source[aug] == b"a").sum() == plots.TSNE_MAX_AUGMENTED // 2
    plain = make_table(**scores_args([]))
    assert plots._tsne_rows(plain, np.random.default_rng(0))[1].size == 0


@pytest.mark.parametrize("sources", [[], ["aug_0"]])
def test_test_image_subsample_does_not_depend_on_augmented_rows(sources):
    with_aug = make_table(**scores_args(sources))
    without = make_table(**scores_args([]))
    assert np.array_equal(plots._tsne_rows(with_aug, np.random.default_rng(3))[0],
                          plots._tsne_rows(without, np.random.default_rng(3))[0])
