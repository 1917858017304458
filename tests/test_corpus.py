from __future__ import annotations

import os

import pytest

from videmo.extract.corpus import CorpusError, discover, image_files

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


def test_image_folder_with_stray_files_is_still_a_clip(tmp_path, caplog):
    """README.txt, Thumbs.db, .DS_Store or a subfolder beside the images do not drop the clip;
    the files left out are named once, in one warning for the root."""
    root = tmp_path / "c"
    for name in ("f1.png", "f2.PNG", "f10.jpg", "README.txt", "Thumbs.db", ".DS_Store"):
        touch(root / "seq" / name)
    touch(root / "seq" / "crops" / "c1.png")
    touch(root / "other" / "desktop.ini")
    with caplog.at_level("WARNING", logger="videmo.extract.corpus"):
        clips = discover(make_config(tmp_path, root))
    assert [(c.clip_id, c.kind) for c in clips] == [("seq", "images"), ("seq/crops", "images")]
    assert [p.name for p in image_files(clips[0], make_config(tmp_path, root))] == [
        "f1.png", "f2.PNG", "f10.jpg"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert ("ignored 3 file(s) that are neither videos nor images" in warnings[0]
            and "other/desktop.ini, seq/README.txt, seq/Thumbs.db" in warnings[0])
    assert "skipped 1 hidden file(s)" in warnings[0]


def test_images_beside_videos_are_not_a_clip(tmp_path, caplog):
    """A thumbnail next to its video (youtube-dl's clip.jpg) or frames exported beside their
    source are not a clip of their own; they are named as ignored."""
    root = tmp_path / "c"
    touch(root / "talks" / "clip.mp4")
    touch(root / "talks" / "clip.jpg")
    touch(root / "seq" / "f1.png")
    with caplog.at_level("WARNING", logger="videmo.extract.corpus"):
        clips = discover(make_config(tmp_path, root))
    assert [(c.clip_id, c.kind) for c in clips] == [("seq", "images"), ("talks/clip", "video")]
    assert [r.getMessage() for r in caplog.records] == [
        f"corpus {root}: ignored 1 image(s) in folders that hold videos (an image sequence needs "
        f"a folder of its own): talks/clip.jpg"]


def test_only_hidden_litter_gives_no_warning(tmp_path, caplog):
    root = tmp_path / "c"
    touch(root / "seq" / "f1.png")
    touch(root / "seq" / ".DS_Store")
    touch(root / "seq" / "._f1.png")  # macOS AppleDouble: never a frame
    with caplog.at_level("WARNING", logger="videmo.extract.corpus"):
        clips = discover(make_config(tmp_path, root))
    assert [(c.clip_id, c.kind) for c in clips] == [("seq", "images")]
    assert [p.name for p in image_files(clips[0], make_config(tmp_path, root))] == ["f1.png"]
    assert caplog.records == []
