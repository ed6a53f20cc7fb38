"""Damaged or hostile dataset files (card, shard entries, splits.h5 attributes): every reader
refuses with one line naming the file and the field, and nothing is written.

Data-driven: each row of CASES is (file format, mutation, expected message fragment); every row
is tried through every reader of that format (``verify-data`` and ``run``).
"""

from __future__ import annotations

import json

import h5py
import pytest

from osma_bench.cli import main

from .conftest import one_error_line


def _card(key_path, value):
    def mutate(root):
        card = json.loads((root / "dataset.json").read_text())
        obj = card
        for k in key_path[:-1]:
            obj = obj[k]
        if value is _DELETE:
            del obj[key_path[-1]]
        else:
            obj[key_path[-1]] = value
        (root / "dataset.json").write_text(json.dumps(card))
    return mutate


def _splits_attr(key, value):
    def mutate(root):
        with h5py.File(root / "splits.h5", "a") as fh:
            if value is _DELETE:
                del fh["split1"].attrs[key]
            else:
                fh["split1"].attrs[key] = value
    return mutate


def _raw(text: bytes):
    def mutate(root):
        (root / "dataset.json").write_bytes(text)
    return mutate


_DELETE = object()

CASES = [
    ("dataset.json", _raw(b"\xff\xfe not json"), "dataset.json: not valid JSON"),
    ("dataset.json", _raw(b"[1, 2]"), "field (top level): expected an object"),
    ("dataset.json", _card(["name"], "../../x"), "field name: '../../x' is not a plain name"),
    ("dataset.json", _card(["name"], "/etc/x"), "field name: '/etc/x' is not a plain name"),
    ("dataset.json", _card(["name"], "a\nb"), "field name:"),
    ("dataset.json", _card(["name"], ["list"]), "field name: expected a name"),
    ("dataset.json", _card(["image_size"], "abc"), "field image_size: expected an integer"),
    ("dataset.json", _card(["image_size"], 2**40), "field image_size: expected an integer in 1..4096"),
    ("dataset.json", _card(["shards"], "images-00000.h5"), "field shards: expected a list"),
    ("dataset.json", _card(["shards", 0, "sha256"], _DELETE), "field shards[0].sha256: missing"),
    ("dataset.json", _card(["shards", 0, "file"], "../../etc/passwd"), "field shards[0].file"),
    ("dataset.json", _card(["shards", 0, "num_images"], -5), "field shards[0].num_images"),
    ("dataset.json", _card(["num_images"], 10**12), "field num_images: expected the sum"),
    ("dataset.json", _card(["splits", "1", "known_classes"], _DELETE), "field splits.1.known_classes: missing"),
    ("dataset.json", _card(["splits", "1", "known_classes"], []), "field splits.1.known_classes: expected at least 1"),
    ("dataset.json", _card(["splits_file", "file"], "/abs.h5"), "field splits_file.file"),
    ("dataset.json", _card(["content_sha256"], "0" * 64), "content_sha256 differs from the recomputed content hash"),
    ("dataset.json", _card(["content_sha256"], 7), "field content_sha256: expected a SHA-256"),
    ("dataset.json", _card(["schema_version"], 99), "field schema_version"),
    ("splits.h5", _splits_attr("known_classes", "not json ["), "field split1.attrs.known_classes: expected a JSON list"),
    ("splits.h5", _splits_attr("known_classes", _DELETE), "field split1.attrs.known_classes: missing"),
    ("splits.h5", _splits_attr("unknown_seed", json.dumps({"a": 1})), "field split1.attrs.unknown_seed: expected a list"),
]


def _ids():
    return [f"{fmt}-{i}" for i, (fmt, _, _) in enumerate(CASES)]


@pytest.mark.parametrize(("fmt", "mutate", "fragment"), CASES, ids=_ids())
def test_verify_data_names_file_and_field(dataset_copy, capsys, fmt, mutate, fragment):
    mutate(dataset_copy)
    code = main(["verify-data", str(dataset_copy), "--no-audit"])
    out = capsys.readouterr()
    assert code in (1, 2) and "Traceback" not in out.err
    assert fragment in out.out + out.err


@pytest.mark.parametrize(("fmt", "mutate", "fragment"), CASES, ids=_ids())
def test_run_refuses_before_writing(dataset_copy, tmp_path, capsys, fmt, mutate, fragment):
    mutate(dataset_copy)
    out = tmp_path / "results"
    code = main(["run", "--method", "base", "--data", str(dataset_copy), "--profile", "smoke", "--device", "cpu",
                 "--out", str(out), "--no-progress", "--set", "num_threads=1"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and fragment in line
    assert not out.exists() and not (tmp_path / "x").exists()  # nothing written, not even above --out
