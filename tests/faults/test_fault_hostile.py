"""Model folders are untrusted input: paths stored in them are not followed outside the folder, and
outputs are never written through a symbolic link."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.faults.util import copy_model, fails, run, snapshot

SECRET = "zanzibarsecret"


def _with_stored_paths(clf: Path, tmp_path: Path, **paths: str) -> Path:
    """A copy of `clf` whose config.json names `paths` as its data (manifest rewritten to match:
    the hostile author controls every file of the folder)."""
    from grutext.manifest import depends_of, write_manifest

    folder = copy_model(clf, tmp_path / "shared-model")
    meta = json.loads((folder / "config.json").read_text())
    meta["config"]["data"].update(paths)
    (folder / "config.json").write_text(json.dumps(meta, indent=2))
    (folder / "manifest.json").unlink()
    write_manifest(folder, config=meta["config"], depends=depends_of(meta))
    return folder


def _secret_file(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    p = outside / "secret.csv"
    p.write_text(f"text,label\n{SECRET} great,pos\n{SECRET} awful,neg\n{SECRET} okay,mid\n" * 4)
    return p


@pytest.mark.parametrize("how", ["relative-traversal", "absolute"])
def test_report_does_not_follow_stored_paths_outside_the_folder(clf, tmp_path, capsys, how):
    secret = _secret_file(tmp_path)
    stored = "../outside/secret.csv" if how == "relative-traversal" else str(secret)
    folder = _with_stored_paths(clf, tmp_path, train=stored, valid=stored, test=stored)
    out = tmp_path / "report.html"
    before = snapshot(tmp_path, skip=(out,))
    r = run(capsys, "report", folder, "--out", out)
    assert r.code == 0, r.err
    page = out.read_text()
    assert SECRET not in page
    assert "outside the model folder" in page and "pass --data FILE" in page
    assert snapshot(tmp_path, skip=(out,)) == before


def test_report_reads_a_file_the_user_names(clf, tmp_path, capsys):
    """The same file given on the command line is the user's choice: it is read."""
    secret = _secret_file(tmp_path)
    secret.write_text(f"text,label\n{SECRET} great,neg\n{SECRET} awful,pos\n{SECRET} okay,pos\n" * 4)  # wrong: mistakes
    folder = _with_stored_paths(clf, tmp_path, train="../outside/secret.csv")
    out = tmp_path / "report.html"
    r = run(capsys, "report", folder, "--out", out, "--data", secret, "--mistakes", "2")
    assert r.code == 0, r.err
    assert SECRET in out.read_text()


def test_stored_path_inside_the_folder_is_followed(clf, tmp_path, capsys):
    folder = copy_model(clf, tmp_path / "model")
    (folder / "valid.csv").write_text("text,label\nthe great film,pos\nan awful plot,neg\nokay book,mid\n")
    from grutext.artifact import load_model
    from grutext.explain.report import stored_data_config

    loaded = load_model(folder)
    loaded.config.data.train = loaded.config.data.valid = "valid.csv"
    assert stored_data_config(loaded).valid == str(folder / "valid.csv")
    loaded.config.data.valid = "../elsewhere.csv"
    with pytest.raises(Exception, match="outside the model folder"):
        stored_data_config(loaded)


def test_data_root_outside_is_refused_too(clf, tmp_path):
    from grutext.artifact import load_model
    from grutext.errors import DataError
    from grutext.explain.report import stored_data_config

    loaded = load_model(clf)
    loaded.config.data.train, loaded.config.data.data_root = "bbc-news", "/etc"
    with pytest.raises(DataError, match="data.data_root"):
        stored_data_config(loaded)


def test_report_refuses_a_symlink_in_the_model_folder(clf, tmp_path, capsys):
    folder = copy_model(clf, tmp_path / "model")
    victim = tmp_path / "victim.txt"
    victim.write_text("do not overwrite")
    (folder / "report.html").symlink_to(victim)
    before = snapshot(tmp_path)
    fails(capsys, ["report", folder], "report.html: is a symbolic link", code=2)
    assert snapshot(tmp_path) == before and victim.read_text() == "do not overwrite"


@pytest.mark.parametrize("flag,name", [("--html", "page.html"), ("--png", "map.png")])
def test_explain_refuses_to_write_through_a_symlink(clf, tmp_path, capsys, flag, name):
    pytest.importorskip("matplotlib")
    victim = tmp_path / "victim.txt"
    victim.write_text("do not overwrite")
    (tmp_path / name).symlink_to(victim)
    before = snapshot(tmp_path)
    fails(capsys, ["explain", clf, "a great film", flag, tmp_path / name], "is a symbolic link", code=2)
    assert snapshot(tmp_path) == before


def test_report_out_symlink_is_refused(clf, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("do not overwrite")
    (tmp_path / "r.html").symlink_to(victim)
    before = snapshot(tmp_path)
    fails(capsys, ["report", clf, "--out", tmp_path / "r.html"], "--out", "is a symbolic link", code=2)
    assert snapshot(tmp_path) == before


def test_curves_link_out_of_the_folder_is_not_embedded(clf, tmp_path, capsys):
    import base64

    folder = copy_model(clf, tmp_path / "model")
    outside = tmp_path / "private.png"
    outside.write_bytes(b"\x89PNG-private-bytes-" + SECRET.encode())
    (folder / "curves.png").unlink()
    (folder / "curves.png").symlink_to(outside)
    from grutext.manifest import depends_of, write_manifest

    meta = json.loads((folder / "config.json").read_text())
    (folder / "manifest.json").unlink()
    (folder / "curves.png").unlink()  # the manifest lists plain files only: add the link after it
    write_manifest(folder, config=meta["config"], depends=depends_of(meta))
    (folder / "curves.png").symlink_to(outside)
    out = tmp_path / "r.html"
    r = run(capsys, "report", folder, "--out", out, "--mistakes", "0")
    assert r.code == 0, r.err
    assert base64.b64encode(outside.read_bytes()).decode()[:40] not in out.read_text()


def test_output_path_replaces_a_file_atomically(tmp_path):
    from grutext.safeio import write_output

    target = tmp_path / "page.html"
    target.write_text("old")
    write_output(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]
