from __future__ import annotations

import os

import pytest

from videmo.corpus import CorpusError, discover

from .conftest import make_config


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_recursive_ids_kinds_and_globs(tmp_path):
    root = tmp_path / "c"
    touch(root / "2019" / "biden_58.0.mp4")
    touch(root / "2019" / "trump_1.MKV")
    touch(root / "2020" / "sub" / "x.webm")
    touch(root / "2020" / "notes.txt")
    touch(root / "seq" / "f10.png")
    touch(root / "seq" / "f2.png")
    touch(root / ".hidden.mp4")
    clips = discover(make_config(tmp_path, root))
    assert [(c.clip_id, c.kind) for c in clips] == [
        ("2019/biden_58.0", "video"), ("2019/trump_1", "video"), ("2020/sub/x", "video"),
        ("seq", "images")]
    only = discover(make_config(tmp_path, root, corpus={"include": ["2019/*"],
                                                        "exclude": ["*trump*"]}))
    assert [c.clip_id for c in only] == ["2019/biden_58.0"]


def test_duplicate_ids_name_both_files(tmp_path):
    root = tmp_path / "c"
    a, b = touch(root / "a.mp4"), touch(root / "a.avi")
    with pytest.raises(CorpusError) as e:
        discover(make_config(tmp_path, root))
    assert str(a) in str(e.value) and str(b) in str(e.value)


def test_missing_and_empty_corpus(tmp_path):
    with pytest.raises(CorpusError, match="corpus path does not exist: .*nowhere"):
        discover(make_config(tmp_path, tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no clips found under"):
        discover(make_config(tmp_path, tmp_path / "empty"))
    with pytest.raises(CorpusError, match="corpus.paths' is empty"):
        discover(make_config(tmp_path, []))


def test_symlink_loop_is_cut(tmp_path):
    root = tmp_path / "c"
    touch(root / "sub" / "v.mp4")
    os.symlink(root, root / "sub" / "loop")
    clips = discover(make_config(tmp_path, root))
    assert [c.clip_id for c in clips] == ["sub/v"]


def test_directory_named_like_a_video_is_walked_not_read(tmp_path):
    root = tmp_path / "c"
    (root / "x.mp4").mkdir(parents=True)
    touch(root / "x.mp4" / "inner.mp4")
    assert [c.clip_id for c in discover(make_config(tmp_path, root))] == ["x.mp4/inner"]
