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
    the files left out are counted once, in one INFO line for the root (not media: no
    warning)."""
    root = tmp_path / "c"
    for name in ("f1.png", "f2.PNG", "f10.jpg", "README.txt", "Thumbs.db", ".DS_Store"):
        touch(root / "seq" / name)
    touch(root / "seq" / "crops" / "c1.png")
    touch(root / "other" / "desktop.ini")
    with caplog.at_level("INFO", logger="videmo.extract.corpus"):
        clips = discover(make_config(tmp_path, root))
    assert [(c.clip_id, c.kind) for c in clips] == [("seq", "images"), ("seq/crops", "images")]
    assert [p.name for p in image_files(clips[0], make_config(tmp_path, root))] == [
        "f1.png", "f2.PNG", "f10.jpg"]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", f"corpus {root}: left out 3 file(s) that are not media (1 .ini, 1 .txt, "
                 f"1 .db); skipped 1 hidden file(s)")]


def test_the_sample_corpus_opens_without_a_warning(caplog):
    """The README's main job: ATTRIBUTION.md, SHA256SUMS, the CSVs are one INFO count."""
    from .conftest import REPO, SAMPLE

    with caplog.at_level("INFO", logger="videmo.extract.corpus"):
        clips = discover(make_config(REPO, SAMPLE))
    assert len(clips) == 6
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", f"corpus {SAMPLE}: left out 6 file(s) that are not media (4 .csv, 1 .md, "
                 f"1 SHA256SUMS)")]


MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


@pytest.mark.parametrize(("name", "data", "why"), [
    ("clip.MP5", MP4_HEAD, "an MP4/QuickTime file by its first bytes"),
    ("clip", b"\x1a\x45\xdf\xa3" + b"\x00" * 40, "a Matroska/WebM file by its first bytes"),
    ("movie.avi.part", b"RIFF\x00\x00\x00\x00AVI LIST", "a video (RIFF) by its first bytes"),
    ("cam.ts.bak", (b"\x47" + b"\x00" * 187) * 2, "an MPEG transport stream by its first bytes"),
    ("still.heic", b"x", "extension .heic not in corpus.video_extensions/image_extensions"),
    ("poster", b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image by its first bytes"),
])
def test_media_left_out_is_a_warning_that_names_it(tmp_path, caplog, name, data, why):
    root = tmp_path / "c"
    touch(root / "a.mp4")
    touch(root / "notes.md")
    touch(root / "sub" / name, data)
    with caplog.at_level("INFO", logger="videmo.extract.corpus"):
        discover(make_config(tmp_path, root))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"corpus {root}: ignored 1 file(s) that may be media videmo does not read "
                    f"(add the extension to corpus.video_extensions or rename the file): "
                    f"sub/{name} ({why})"),
        ("INFO", f"corpus {root}: left out 1 file(s) that are not media (1 .md)")]


def test_an_unreadable_file_is_a_warning(tmp_path, caplog):
    root = tmp_path / "c"
    touch(root / "a.mp4")
    (root / "gone.dat").symlink_to(tmp_path / "nowhere")  # listed, cannot be opened
    with caplog.at_level("INFO", logger="videmo.extract.corpus"):
        discover(make_config(tmp_path, root))
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "gone.dat (unreadable: No such file or directory)" in caplog.records[0].getMessage()


def test_a_thousand_files_beside_the_corpus_are_one_short_line(tmp_path, caplog):
    root = tmp_path / "c"
    touch(root / "a.mp4")
    for i in range(1000):
        touch(root / "meta" / f"{i}.json", b"{}")
    touch(root / "README")
    with caplog.at_level("INFO", logger="videmo.extract.corpus"):
        discover(make_config(tmp_path, root))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", f"corpus {root}: left out 1001 file(s) that are not media (1000 .json, "
                 f"1 README)")]


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
