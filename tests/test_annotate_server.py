"""The annotation server without a browser: routes, safety, the CSV log, transcoding, the CLI.

Raw HTTP requests (a socket, so no client normalises the path) check that only the page, its
assets and the corpus's clips by id are served. Needs ffmpeg (scripts/browser-setup.sh installs
it); the sample corpus is served in place and checked unchanged against its SHA256SUMS.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from videmo import config as config_mod
from videmo import schema as S
from videmo.annotate import ANNOTATIONS_CSV
from videmo.annotate import server as srv
from videmo.annotate.merge import read_annotations
from videmo.annotate.transcode import Transcoder, cache_key, find_ffmpeg

from . import browser
from .conftest import REPO, SAMPLE, SAMPLE_CLIPS, make_config

CLIP = SAMPLE_CLIPS[0].stem
ffmpeg_tool = browser.ffmpeg_tool  # installs ffmpeg when missing (a fixture)


@pytest.fixture(scope="module")
def cache_dir(ffmpeg_tool, tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("transcode")


class Running:
    """A server on a free port, serving in a thread."""

    def __init__(self, cfg: config_mod.Config, run_dir: Path):
        self.server = srv.make_server(cfg, run_dir)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.app.transcoder.close()
        self.thread.join(10)

    def raw(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send bytes as they are; (status, headers, body) of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(request)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        return int(lines[0].split()[1]), headers, body

    def get(self, path: str, headers: str = "") -> tuple[int, dict[str, str], bytes]:
        return self.raw(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{headers}"
                        "Connection: close\r\n\r\n".encode())

    def post(self, body: bytes | dict, ctype: str = "application/json",
             length: int | None = None, host: str = "127.0.0.1") -> tuple[int, dict]:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        n = len(data) if length is None else length
        status, _, answer = self.raw(
            f"POST /api/events HTTP/1.1\r\nHost: {host}:{self.port}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {n}\r\nConnection: close\r\n\r\n".encode() + data)
        return status, json.loads(answer) if answer else {}


def _cfg(tmp_path: Path, cache: Path, **annotate) -> config_mod.Config:
    return make_config(tmp_path, SAMPLE, annotate={"cache": str(cache), **annotate})


@pytest.fixture
def running(tmp_path, cache_dir):
    r = Running(_cfg(tmp_path, cache_dir), tmp_path / "run")
    yield r
    r.stop()


def event(**change) -> dict:
    return {"observer": "alice", "clip_id": CLIP, "button": "happy", "media_ms": 1234,
            "wall_ms": 1_767_225_600_000, **change}


def rows(run_dir: Path) -> list[list[str]]:
    with open(run_dir / ANNOTATIONS_CSV, newline="") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize("path", [
    "/../etc/passwd", "/media/../../etc/passwd", "/media/..%2F..%2Fetc%2Fpasswd",
    "/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/media/%252e%252e%252fetc%252fpasswd",
    "/media/%2Fetc%2Fpasswd", "/media//etc/passwd", "/media/" + str(SAMPLE_CLIPS[0]),
    "/media/" + CLIP + ".flv", "/media/no_such_clip", "/media/%ff%fe", "/media/",
    "/static/../server.py", "/static/..%2Fserver.py", "/static/%2e%2e/server.py",
    "/static/index.html", "/static/", "/templates/index.html", "/etc/passwd", "//etc/passwd",
    "/data/sample/crema-d/" + SAMPLE_CLIPS[0].name, "/api/events/../../etc/passwd",
    "http://127.0.0.1/../etc/passwd",
])
def test_only_the_page_assets_and_clips_by_id_are_served(running, path):
    status, _, body = running.get(path)
    assert status == 404, path
    assert b"root:" not in body and b"import" not in body and b"FLV" not in body[:3]


def test_page_and_assets_are_self_contained(running):
    status, headers, page = running.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in headers["content-security-policy"]
    text = page.decode()
    for button in config_mod.AnnotateConfig().buttons:
        assert f'data-button="{button}"' in text
    assert 'data-key="h"' in text and CLIP in text
    for name in srv.ASSETS:
        status, headers, body = running.get(f"/static/{name}")
        assert status == 200 and headers["content-type"] == srv.ASSETS[name]
        text += body.decode()
    assert "http://" not in text and "https://" not in text  # no CDN, nothing fetched


def test_a_clip_is_transcoded_once_and_served_with_ranges(running, cache_dir):
    sums = dict(reversed(line.split()) for line in
                (SAMPLE / "SHA256SUMS").read_text().splitlines())
    status, headers, body = running.get(f"/media/{CLIP}")
    assert status == 200 and headers["content-type"] == "video/webm"
    assert headers["accept-ranges"] == "bytes" and int(headers["content-length"]) == len(body)
    assert body[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM file
    copy = cache_dir / f"{cache_key(SAMPLE_CLIPS[0])}.webm"
    assert copy.read_bytes() == body
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                            "-of", "csv=p=0", str(copy)], capture_output=True, text=True)
    assert probe.stdout.split() == ["vp9", "opus"]
    mtime = copy.stat().st_mtime_ns
    status, headers, part = running.get(f"/media/{CLIP}", "Range: bytes=100-199\r\n")
    assert status == 206 and part == body[100:200]
    assert headers["content-range"] == f"bytes 100-199/{len(body)}"
    status, _, tail = running.get(f"/media/{CLIP}", "Range: bytes=-10\r\n")
    assert status == 206 and tail == body[-10:]
    status, _, _ = running.get(f"/media/{CLIP}", f"Range: bytes={len(body)}-\r\n")
    assert status == 416
    assert copy.stat().st_mtime_ns == mtime  # served from the cache
    for clip in SAMPLE_CLIPS:  # the originals are only read
        assert hashlib.sha256(clip.read_bytes()).hexdigest() == sums[clip.name]


def test_a_press_is_on_disk_when_acknowledged(running, tmp_path):
    status, answer = running.post(event())
    assert status == 201 and answer["saved"] and answer["clips"] == {CLIP: 1}
    table = rows(tmp_path / "run")
    assert table[0] == list(S.ANNOTATION_COLUMNS)
    assert table[1][:5] == ["alice", CLIP, "happy", "1234", "2026-01-01T00:00:00.000Z"]
    status, _, body = running.get("/api/events?observer=alice")
    assert status == 200 and json.loads(body)["observer_total"] == 1
    df = read_annotations(tmp_path / "run" / ANNOTATIONS_CSV)
    assert df[S.MEDIA_MS].tolist() == [1234]


@pytest.mark.parametrize("body, why", [
    (event(clip_id="no_such_clip"), "clip_id"),
    (event(clip_id="../" + CLIP), "clip_id"),
    (event(button="giggling"), "button"),
    (event(button="HAPPY"), "button"),
    (event(observer="=HYPERLINK(\"x\")"), "observer"),
    (event(observer=""), "observer"),
    (event(observer="a" * 65), "observer"),
    (event(observer=["alice"]), "observer"),
    (event(media_ms=-1), "media_ms"),
    (event(media_ms="1234"), "media_ms"),
    (event(media_ms=True), "media_ms"),
    (event(media_ms=None), "media_ms"),
    (event(wall_ms=1e300), "wall_ms"),
    ({**event(), "extra": "__import__('os').system('touch /tmp/x')"}, "fields"),
    ({k: v for k, v in event().items() if k != "button"}, "fields"),
    (b"{'observer': 'alice'}", "not JSON"),
    (b'{"media_ms": NaN}', "fields"),
    (b"[1, 2]", "object"),
    (b"\xff\xfe", "not JSON"),
])
def test_bad_events_get_400_and_write_nothing(running, tmp_path, body, why):
    status, answer = running.post(body)
    assert status == 400 and why in answer["error"]
    assert not (tmp_path / "run" / ANNOTATIONS_CSV).exists()


def test_size_type_and_host_are_checked(running, tmp_path):
    status, answer = running.post(b"{" + b" " * 5000 + b"}")
    assert status == 413 and "4096" in answer["error"]
    assert running.post(b"", length=10**9)[0] == 413  # the body is never read
    assert running.post(event(), ctype="application/x-www-form-urlencoded")[0] == 415
    assert running.post(event(), ctype="text/plain")[0] == 415
    status, _, _ = running.raw(b"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Connection: close\r\n\r\n")
    assert status == 411
    assert running.post(event(), host="attacker.example")[0] == 403  # DNS rebinding
    status, _, _ = running.raw(f"GET / HTTP/1.1\r\nHost: attacker.example:{running.port}\r\n"
                               "Connection: close\r\n\r\n".encode())
    assert status == 403
    assert running.post(event(), host="localhost")[0] == 201
    assert len(rows(tmp_path / "run")) == 2


def test_concurrent_presses_are_whole_rows_under_one_header(running, tmp_path):
    def press(i: int) -> None:
        assert running.post(event(observer=f"obs{i % 4}", media_ms=i))[0] == 201

    threads = [threading.Thread(target=press, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    table = rows(tmp_path / "run")
    assert table[0] == list(S.ANNOTATION_COLUMNS)
    assert sorted(int(r[3]) for r in table[1:]) == list(range(40))
    assert all(len(r) == len(S.ANNOTATION_COLUMNS) for r in table)


def test_a_second_session_appends_and_counts_what_is_there(tmp_path, cache_dir):
    cfg = _cfg(tmp_path, cache_dir)
    first = Running(cfg, tmp_path / "run")
    try:
        assert first.post(event(media_ms=10))[0] == 201
        assert first.post(event(media_ms=20))[0] == 201
    finally:
        first.stop()
    second = Running(cfg, tmp_path / "run")
    try:
        _, _, body = second.get("/api/events?observer=alice")
        assert json.loads(body)["observer_total"] == 2
        status, answer = second.post(event(observer="bob", button="applause", media_ms=30))
        assert status == 201 and answer["observer_total"] == 1 and answer["total"] == 3
    finally:
        second.stop()
    table = rows(tmp_path / "run")
    assert [r[0] for r in table] == ["observer", "alice", "alice", "bob"]


def test_a_row_cut_by_a_crash_is_dropped_and_a_foreign_file_refused(tmp_path, cache_dir):
    run = tmp_path / "run"
    run.mkdir()
    header = ",".join(S.ANNOTATION_COLUMNS) + "\n"
    whole = f"alice,{CLIP},sad,5,2026-01-01T00:00:00.000Z,2026-01-01T00:00:00.100Z\n"
    (run / ANNOTATIONS_CSV).write_text(header + whole + f"bob,{CLIP},ha")
    r = Running(_cfg(tmp_path, cache_dir), run)
    try:
        assert r.post(event())[1]["total"] == 2
    finally:
        r.stop()
    assert (run / ANNOTATIONS_CSV).read_text().startswith(header + whole + "alice,")
    (run / ANNOTATIONS_CSV).write_text("clip,label\nx,happy\n")
    with pytest.raises(srv.AnnotateError, match="has the header"):
        srv.make_server(_cfg(tmp_path, cache_dir), run)


def test_missing_ffmpeg_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(srv.AnnotateError, match="apt-get install ffmpeg"):
        srv.make_server(_cfg(tmp_path, tmp_path / "cache"), tmp_path / "run")


def test_cache_key_follows_size_and_mtime(tmp_path):
    clip = tmp_path / "c.flv"
    clip.write_bytes(SAMPLE_CLIPS[0].read_bytes())
    key = cache_key(clip)
    assert cache_key(clip) == key
    os.utime(clip, ns=(0, 10**18))
    assert cache_key(clip) != key


def test_auto_serves_browser_formats_as_they_are(ffmpeg_tool, tmp_path):
    ffmpeg, ffprobe = find_ffmpeg()
    webm = tmp_path / "clip.webm"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(SAMPLE_CLIPS[0]), "-t", "0.3", "-c:v",
                    "libvpx-vp9", "-deadline", "realtime", "-an", str(webm)], check=True)
    clip = srv.Clip("clip", webm)
    auto = Transcoder(tmp_path / "c1", "auto", ffmpeg, ffprobe).playable(clip)
    assert auto.path == webm and not auto.transcoded and auto.mime == "video/webm"
    always = Transcoder(tmp_path / "c2", "always", ffmpeg, ffprobe).playable(clip)
    assert always.transcoded and always.path.parent == tmp_path / "c2"
    flv = Transcoder(tmp_path / "c3", "auto", ffmpeg, ffprobe).playable(
        srv.Clip("flv", SAMPLE_CLIPS[1]))
    assert flv.transcoded and flv.mime == "video/webm"


def _default_sigint() -> None:  # whatever the test runner itself was started with
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ignore_sigint() -> None:  # what a shell's background job or nohup starts with
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("sig, ignored_at_start", [
    (signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False)])
def test_cli_prints_the_url_and_stops_on_ctrl_c(tmp_path, cache_dir, sig, ignored_at_start):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"corpus: {{paths: ['{SAMPLE}']}}\nannotate: {{cache: '{cache_dir}'}}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
    # the child starts with SIGINT at its default, or ignored (then Python installs no
    # KeyboardInterrupt handler of its own: the server must, or Ctrl-C never stops it)
    proc = subprocess.Popen([sys.executable, "-m", "videmo", "annotate", str(cfg), "--out",
                             str(tmp_path / "run"), "--observer", "alice"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_ignore_sigint if ignored_at_start else _default_sigint)
    try:
        line = proc.stdout.readline()
        assert line.startswith("videmo annotate: http://127.0.0.1:"), line + proc.stderr.read()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            page = b""
            while chunk := s.recv(65536):
                page += chunk
        assert b" 200 " in page.split(b"\r\n")[0] and b'value="alice"' in page
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped; 0 events" in out and "Traceback" not in err


@pytest.mark.parametrize("annotate, message", [
    ({"buttons": []}, "at least one button"),
    ({"buttons": ["happy", "happy"]}, "appears twice"),
    ({"buttons": ["Happy face"]}, "not a button name"),
    ({"shortcuts": {"hapy": "x"}}, "did you mean 'happy'"),
    ({"shortcuts": {"sad": "h"}}, "'h' is given to happy and sad"),
    ({"shortcuts": {"sad": "ss"}}, "one printable character"),
    ({"port": 70000}, "at most 65535"),
    ({"transcode": "never"}, "is not one of"),
])
def test_annotate_config_errors_name_the_key(tmp_path, annotate, message):
    with pytest.raises(config_mod.ConfigError, match=message):
        make_config(tmp_path, SAMPLE, annotate=annotate)


def test_annotate_config_defaults_and_subsets(tmp_path):
    a = make_config(tmp_path, SAMPLE).annotate
    assert a.buttons == [*S.EMOTIONS, *S.OBSERVER_EVENTS] and a.host == "127.0.0.1"
    assert len(set(a.keys().values())) == len(a.buttons) == 11
    sub = make_config(tmp_path, SAMPLE, annotate={"buttons": ["happy", "sad", "nod"],
                                                  "shortcuts": {"nod": "o"}}).annotate
    assert sub.keys() == {"happy": "h", "sad": "s", "nod": "o"}


def test_segments_play_parts_of_a_recording_and_events_stay_on_its_time_line(tmp_path,
                                                                             cache_dir):
    """With corpus.segments the page's items are the segments (recording, start, end, in the
    file's order); an event is the recording's, at the recording's time, and merges with the
    recording's frames as any clip's event does (issue 21, item 5)."""
    from videmo.annotate.merge import join_frames

    other = SAMPLE_CLIPS[1].stem
    (tmp_path / "seg.csv").write_text(f"recording,start,end,id\n{CLIP},0.5,1.5,q1\n"
                                      f"{other},0,1,q2\n{CLIP},1.2,2.0,q3\nnope,0,1,bad\n")
    cfg = make_config(tmp_path, SAMPLE, annotate={"cache": str(cache_dir)},
                      corpus={"segments": "seg.csv"})
    r = Running(cfg, tmp_path / "run")
    try:
        _, _, page = r.get("/")
        data = json.loads(page.decode().split('type="application/json">')[1].split("</script>")[0])
        assert [(c["id"], c["segment"], c["start"], c["end"]) for c in data["clips"]] == [
            (CLIP, "q1", 0.5, 1.5), (other, "q2", 0.0, 1.0), (CLIP, "q3", 1.2, 2.0)]
        assert r.server.app.order == [CLIP, other]
        status, _ = r.post(event(media_ms=1300))  # inside q1 and q3, on the recording's clock
        assert status == 201
        status, _ = r.post(event(clip_id="q1"))  # a segment id is not a clip
        assert status == 400
        _, _, js = r.get("/static/annotate.js")
        assert b"s.start" in js and b"video.pause()" in js
    finally:
        r.stop()
    logged = rows(tmp_path / "run")
    assert logged[1][1:4] == [CLIP, "happy", "1300"]
    events = read_annotations(tmp_path / "run" / ANNOTATIONS_CSV)
    from videmo.extract.pipeline import frame_table

    frames = frame_table([(CLIP, i, i / 30, 1, 0, 10, 10, 50, 50, float("nan"),
                           *[1 / 7] * 7) for i in (30, 39, 45)]).to_pandas()
    joined = join_frames(events, frames)
    assert list(joined[S.FRAME_INDEX]) == [39]
