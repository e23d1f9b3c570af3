"""Operator lists: bundled for fgsim's model files, cached for others, validated JSON (never unpickled); a bad file
is ignored with a warning; the cached path imports neither torch nor diffusers."""

from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_opmodel_endtoend import tiny_model  # the tiny Wan config these tests share

import fgsim.opmodel as om
from fgsim.endtoend import list_models, load_model
from fgsim.opmodel import OPLIST_DIR, Op, _oplist_json, _read_oplist, oplist_key

ROOT = Path(__file__).resolve().parents[1]


def _bundled_models() -> list[tuple[str, str]]:
    return [(n, r) for n in list_models() if load_model(n).diffusers for r in load_model(n).resolutions]


def test_every_model_file_has_its_current_bundled_list():
    """Every (model file, resolution) has a bundled list with its current key, and no stale list is left: after
    editing fgsim/optrace.py or a model file's diffusers config, grid or text tokens, re-bundle."""
    want = set()
    for name, res in _bundled_models():
        key = oplist_key(load_model(name), res)
        path = om._bundled_path(key)
        assert path is not None, f"{name} {res}: no bundled operator list; run python validation/bundle_oplists.py"
        want.add(path.name)
    assert {p.name for p in OPLIST_DIR.glob("*.json.xz")} == want, "stale lists: run validation/bundle_oplists.py"


def _traced_with(path: Path) -> dict[str, str]:
    return json.loads(lzma.decompress(path.read_bytes()))["traced_with"]


def test_bundled_lists_read_back_valid(capsys):
    """Each bundled file parses and validates (keys, fields, types); it records what it was traced with."""
    for name, res in _bundled_models():
        key = oplist_key(load_model(name), res)
        ops = _read_oplist(om._bundled_path(key), key)
        assert ops and sum(o.kind == "attention" and o.cat == "attention" for o in ops) >= 2, (name, res)
    assert capsys.readouterr().err == ""
    assert set(_traced_with(om._bundled_path(oplist_key(load_model("wan2.1-14b"), "720p")))) == {"torch", "diffusers"}


def test_bundled_list_equals_a_fresh_trace():
    """The bundle is what the installed diffusers traces, field by field (buffer ids canonical) — for the reference
    DiT's small grid (Wan class) and HunyuanVideo's 17 frames (its own input path)."""
    pytest.importorskip("diffusers")
    for name, res in (("fgsim-reference-dit", "small"), ("hunyuanvideo", "480p-17f")):
        model = load_model(name)
        key = oplist_key(model, res)
        path = om._bundled_path(key)
        if _traced_with(path) != om._versions():
            pytest.skip(f"bundled with {_traced_with(path)}, installed {om._versions()}: another diffusers may "
                        "issue other operators (fgsim uses the bundled lists either way)")
        assert _read_oplist(path, key) == om.trace_model_ops(model, res), (name, res)


def test_tags_round_trip_without_ambiguity(tmp_path):
    """Tuples, dicts (even with a key 't' or 'd') and lists come back as they were."""
    op = Op("add", "modulation", "mem", bytes=12.0, mem_class="pointwise", reads=((0, 4.0), (1, 4.0)),
            writes=((2, 4.0),), sig="add[...]", gemm=None, sdpa=None,
            spec=("aten.add.Tensor", [("T", (2, 2), (2, 1), "bfloat16", 0), {"t": [1]}, {"d": (1, 2)}], {"alpha": 2}))
    gemm = Op("mm", "gemm", "gemm", bytes=1.0, flops=2.0, gemm=(1, 2, 3, 4, "bfloat16", False), in_block=True)
    sdpa = Op("sdpa", "attention", "attention", sdpa=(1, 2, 128, 128, 64), flops=3.0)
    p = tmp_path / "x.json"
    p.write_text(_oplist_json([op, gemm, sdpa], "k" * 32, tiny_model(), "480p"))
    assert _read_oplist(p, "k" * 32) == [op, gemm, sdpa]


def _bad_files(good: str) -> dict[str, bytes]:
    doc = json.loads(good)
    wrong_type = json.loads(good)
    wrong_type["ops"][0][3] = "many"  # bytes as a string
    wrong_cat = json.loads(good)
    wrong_cat["ops"][0][1] = "nonsense"
    short = json.loads(good)
    short["ops"][0] = short["ops"][0][:-1]
    other_key = dict(doc, key="0" * 32)
    old = json.dumps([{"name": "add"}])  # the format before
    return {"junk": b"junk", "truncated": good[: len(good) // 2].encode(), "not utf-8": b"\xff\xfe{",
            "wrong type": json.dumps(wrong_type).encode(), "wrong category": json.dumps(wrong_cat).encode(),
            "short row": json.dumps(short).encode(), "other key": json.dumps(other_key).encode(),
            "old format": old.encode(), "deep": b"[" * 100000, "tuple tag without list": json.dumps(
                dict(doc, ops=[[*doc["ops"][0][:9], {"t": 5}, *doc["ops"][0][10:]]])).encode()}


def test_corrupt_cache_is_ignored_with_a_warning(tmp_path, monkeypatch, capsys):
    """A cache file that is not a valid operator list of this key is reported on stderr (one line naming it) and
    ignored: the pass is traced again, the result equals the first trace, and the file is rewritten."""
    pytest.importorskip("diffusers")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("FGSIM_NO_CACHE", raising=False)
    first = om.model_ops(tiny_model(), "480p")
    path = om._ops_cache_path(tiny_model(), "480p")
    good = path.read_text()
    assert capsys.readouterr().err == ""
    for what, data in _bad_files(good).items():
        path.write_bytes(data)
        assert om.model_ops(tiny_model(), "480p") == first, what
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"fgsim: warning: operator list {path}: ") and \
            err[0].endswith("ignored, the pass is traced again"), (what, err)
        assert path.read_text() == good, what  # rewritten by the new trace
    assert om.model_ops(tiny_model(), "480p") == first and capsys.readouterr().err == ""


def test_oversized_file_is_not_read_nor_written(tmp_path, monkeypatch, capsys):
    pytest.importorskip("diffusers")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("FGSIM_NO_CACHE", raising=False)
    first = om.model_ops(tiny_model(), "480p")
    path = om._ops_cache_path(tiny_model(), "480p")
    size = path.stat().st_size
    monkeypatch.setattr(om, "OPLIST_MAX_BYTES", size - 1)
    assert om.model_ops(tiny_model(), "480p") == first
    assert f"{size} bytes, more than the {size - 1}" in capsys.readouterr().err
    assert not path.exists()  # the new trace's text is too large to cache: the old file is not kept either


def test_cache_directory_is_bounded(tmp_path, monkeypatch):
    """Writing a list keeps the CACHE_KEEP most recently written ones; files fgsim did not write stay."""
    pytest.importorskip("diffusers")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("FGSIM_NO_CACHE", raising=False)
    monkeypatch.setattr(om, "CACHE_KEEP", 2)
    root = tmp_path / "fgsim" / "ops"
    root.mkdir(parents=True)
    for i in range(3):
        p = root / f"{i:032x}.json"
        p.write_text("[]")
        os.utime(p, (1000 + i, 1000 + i))
    (root / "notes.json").write_text("{}")
    om.model_ops(tiny_model(), "480p")
    left = sorted(p.name for p in root.iterdir())
    assert left == sorted([om._ops_cache_path(tiny_model(), "480p").name, f"{2:032x}.json", "notes.json"])


def test_no_cache_traces_and_writes_nothing(tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("FGSIM_NO_CACHE", "1")
    called = []
    monkeypatch.setattr(om, "_bundled_path", lambda key: called.append(key))
    assert om._ops_cache_path(tiny_model(), "480p") is None
    assert [o.name for o in om.model_ops(tiny_model(), "480p")] and not called
    assert not (tmp_path / "fgsim").exists()


def test_bundled_model_predicts_without_torch_or_diffusers(tmp_path):
    """`predict --model` on a bundled model reads the bundled list: torch and diffusers are never imported."""
    code = ("import sys\nfrom fgsim.cli import main\n"
            "rc = main(['predict', '--model', 'wan2.1-14b', '--resolution', '720p', '--no-progress'])\n"
            "print('imported:', sorted(m for m in ('torch', 'diffusers', 'triton') if m in sys.modules), rc)\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), PYTHONPATH=os.pathsep.join(
        [str(ROOT), str(ROOT / "kernels"), os.environ.get("PYTHONPATH", "")]))
    env.pop("FGSIM_NO_CACHE", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "imported: [] 0", r.stdout[-500:]
    assert "end-to-end (wan2.1-14b 720p" in r.stdout and not (tmp_path / "fgsim").exists()


def test_predict_output_is_the_same_from_the_bundled_list_and_a_fresh_trace(monkeypatch, capsys):
    """`predict --model` prints the same bytes (table and --json) whether the pass's operators come from the bundled
    list or are traced with the installed diffusers (FGSIM_NO_CACHE=1)."""
    pytest.importorskip("diffusers")
    from fgsim import endtoend
    from fgsim.cli import main

    model, res = "fgsim-reference-dit", "small"
    key = oplist_key(load_model(model), res)
    if _traced_with(om._bundled_path(key)) != om._versions():
        pytest.skip("the bundle was traced with other torch / diffusers versions")
    outs = {}
    for mode in ("bundled", "traced"):
        if mode == "traced":
            monkeypatch.setenv("FGSIM_NO_CACHE", "1")
        else:
            monkeypatch.delenv("FGSIM_NO_CACHE", raising=False)
        for extra in ([], ["--json"]):
            endtoend._PARTS_CACHE.clear()
            assert main(["predict", "--model", model, "--resolution", res, "--no-progress", *extra]) == 0
            outs[mode, bool(extra)] = capsys.readouterr().out
    assert outs["bundled", False] == outs["traced", False] and outs["bundled", True] == outs["traced", True]
    assert "end-to-end (fgsim-reference-dit small" in outs["bundled", False]


def test_corrupt_bundled_list_is_ignored_with_a_warning(tmp_path, monkeypatch, capsys):
    """A damaged bundled file (here truncated) is reported and passed over: the user's cache or a new trace
    gives the same operators."""
    pytest.importorskip("diffusers")
    model, res = load_model("fgsim-reference-dit"), "small"
    key = oplist_key(model, res)
    good = om._bundled_path(key)
    if _traced_with(good) != om._versions():
        pytest.skip("the bundle was traced with other torch / diffusers versions")
    want = _read_oplist(good, key)
    bad_dir = tmp_path / "oplists"
    bad_dir.mkdir()
    (bad_dir / good.name).write_bytes(good.read_bytes()[:100])
    monkeypatch.setattr(om, "OPLIST_DIR", bad_dir)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FGSIM_NO_CACHE", raising=False)
    assert om.model_ops(model, res) == want
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"fgsim: warning: operator list {bad_dir / good.name}: ") and \
        err[0].endswith("ignored, the user's cache or a new trace is used"), err
