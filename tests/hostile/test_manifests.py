"""Hostile and broken manifests, annotation lists and image trees for ``build-data``.

Data-driven: MANIFEST_CASES rows are (name, edit of the manifest text, expected fragment); each goes
through ``build-data custom`` and must end in an ``error:`` refusal naming the file, with no
traceback and nothing written. Tree cases check that one refusal names every bad input.
"""

from __future__ import annotations

import os

import pytest
import yaml

from osma_bench.cli import main
from osma_bench.data import load_card

from .conftest import one_error_line


def _yaml_edit(fn):
    def edit(text: str) -> bytes:
        spec = yaml.safe_load(text)
        fn(spec)
        return yaml.safe_dump(spec).encode()
    return edit


BOMB = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)])

MANIFEST_CASES = [
    ("billion-laughs", lambda t: (BOMB + "\n" + t).encode(), "expands to more than"),
    ("duplicate-key", lambda t: (t + "\nseed: 3\n").encode(), "key 'seed' appears twice"),
    ("yes-as-count", _yaml_edit(lambda s: s["counts"].update(train=True)), "counts.train: must be an integer"),
    ("image-size-text", _yaml_edit(lambda s: s.update(image_size="abc")), "field image_size: expected an integer"),
    ("seed-text", _yaml_edit(lambda s: s.update(seed="abc")), "field seed: expected an integer"),
    ("seed-huge", _yaml_edit(lambda s: s.update(seed=2**70)), "field seed"),
    ("name-list", _yaml_edit(lambda s: s.update(name=["a"])), "field name: expected a name"),
    ("name-absolute", _yaml_edit(lambda s: s.update(name="/tmp/evil")), "field name: '/tmp/evil' is not a plain name"),
    ("name-dotdot", _yaml_edit(lambda s: s.update(name="../../x")), "field name: '../../x'"),
    ("sources-number", _yaml_edit(lambda s: s.update(sources=5)), "field sources: expected a list"),
    ("source-class-list", _yaml_edit(lambda s: s["sources"][0].update({"class": ["x"]})), "field sources[0].class"),
    ("real-text", _yaml_edit(lambda s: s["sources"][0].update(real="yes")), "field sources[0].real"),
    ("known-empty", _yaml_edit(lambda s: s["splits"][0].update(known=[])), "field splits[0].known: expected at least 1"),
    ("latin-1", lambda t: (t + "\ndescription: café\n").replace("description: Attribute", "x_: y").encode("latin-1"),
     "not UTF-8 text"),
    ("python-tag", lambda t: (t + "\nextra: !!python/object/apply:os.system ['touch pwned']\n").encode(),
     "not valid YAML"),
    ("too-large", lambda t: (t + "\n#" + "x" * (1 << 20) + "\n").encode(), "may have at most"),
    ("not-a-mapping", lambda t: b"- just\n- a list\n", "a manifest is a mapping"),
]


@pytest.fixture
def example(tmp_path):
    from tests.data.test_build_custom import example_tree

    return example_tree(tmp_path)


@pytest.mark.parametrize(("case", "edit", "fragment"), MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_bad_manifest_is_one_error(example, tmp_path, capsys, monkeypatch, case, edit, fragment):
    monkeypatch.chdir(tmp_path)
    example.write_bytes(edit(example.read_text()))
    assert main(["build-data", "custom", "--manifest", str(example), "--out", str(tmp_path / "ds")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert fragment in line and str(example) in line
    assert not (tmp_path / "ds").exists() and not (tmp_path / "ds.partial").exists()
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "x").exists()


def test_manifest_with_a_byte_order_mark_builds(example, tmp_path, capsys):
    example.write_bytes(b"\xef\xbb\xbf" + example.read_bytes())
    assert main(["build-data", "custom", "--manifest", str(example), "--out", str(tmp_path / "ds")]) == 0
    assert load_card(tmp_path / "ds")["num_images"] > 0


def test_one_refusal_names_every_bad_input(example, tmp_path, capsys):
    """A zero-byte file, a truncated PNG, an image copied into another class, a symlink loop, a
    non-UTF-8 file name and a glob that matches nothing: all named in one refusal."""
    root = example.parent / "example"
    ffhq = root / "real" / "ffhq"
    (ffhq / "000.png").write_bytes(b"")  # zero bytes
    truncated = (ffhq / "001.png").read_bytes()
    (ffhq / "001.png").write_bytes(truncated[: len(truncated) // 2])
    (root / "fake" / "dit_ffhq" / "copy.png").write_bytes((root / "fake" / "sd15_celeba" / "003.png").read_bytes())
    os.symlink("loop.png", ffhq / "loop.png")  # points at itself
    (ffhq / os.fsdecode(b"caf\xe9.png")).write_bytes((ffhq / "002.png").read_bytes()[:10])
    spec = yaml.safe_load(example.read_text())
    spec["counts"] = {"train": 12, "val": 0, "test": 0, "unknown": 12}  # every image of a class is used
    spec["sources"].append({"class": "ghost", "path": "fake/ghost/*.png"})
    example.write_text(yaml.safe_dump(spec))
    assert main(["build-data", "custom", "--manifest", str(example), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.lstrip("\n")  # the progress bar leaves a blank line
    assert err.startswith("error: ") and "Traceback" not in err
    for fragment in ("real/ffhq/000.png: empty file", "real/ffhq/001.png:", "real/ffhq/loop.png: symbolic link",
                     "real/ffhq/caf\\xe9.png: file name is not valid UTF-8", "no files match 'fake/ghost/*.png'",
                     "same content"):
        assert fragment in err, fragment
    assert not (tmp_path / "ds").exists() and not (tmp_path / "ds.partial").exists()
