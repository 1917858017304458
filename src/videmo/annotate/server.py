"""``videmo annotate``: a local web page where observers mark events in the corpus's clips.

The page plays the configured corpus's clips one after another, with one button (and keyboard
shortcut) per event of ``annotate.buttons``. Every press is POSTed at once and appended to
``RUN/annotations.csv`` (:data:`videmo.schema.ANNOTATION_COLUMNS`) by this one server process,
under a lock, flushed and fsync-ed before the page hears "saved": closing the browser loses
nothing acknowledged, and a second observer (or a second session) appends, never overwrites.

Safe to leave running on a workstation:

* it binds 127.0.0.1 unless ``--host`` says otherwise, and with a loopback address it answers only
  requests whose Host header is a loopback name (a web page elsewhere cannot reach it through DNS
  rebinding);
* it serves its own page and assets (held in memory) and the corpus's clips by clip id, looked up
  in a table: no path from a request ever reaches the file system, so ``../``, absolute or
  percent-encoded paths and unknown ids get 404;
* it accepts events only as JSON (a cross-site form cannot send it), for known clips and buttons,
  with bodies of at most :data:`MAX_BODY` bytes (413 otherwise); client input is parsed as JSON
  and validated, never evaluated, and written through the csv module.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import io
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jinja2

from videmo import schema
from videmo.annotate import ANNOTATIONS_CSV
from videmo.annotate.transcode import TranscodeError, Transcoder, default_cache_dir
from videmo.config import Config
from videmo.extract.corpus import Clip, discover

log = logging.getLogger(__name__)

MAX_BODY = 4096  # one event is about 150 bytes of JSON
OBSERVER_RE = re.compile(r"^[\w][\w .@'-]{0,63}$")  # no leading =, +, -: safe in a spreadsheet
MAX_MEDIA_MS = 7 * 24 * 3600 * 1000
CHUNK = 256 * 1024
ASSETS = {"annotate.js": "text/javascript; charset=utf-8",
          "annotate.css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; "
       "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


class AnnotateError(RuntimeError):
    """The annotation page cannot start (no ffmpeg, no playable clip, bad annotations file)."""


class BadEvent(ValueError):
    """A POSTed event is malformed or names an unknown clip or button (answered with 400)."""


def utc_iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """One button press, as validated from the page."""

    observer: str
    clip_id: str
    button: str
    media_ms: int
    wall_ms: int

    @classmethod
    def from_json(cls, body: bytes, clips: dict[str, Clip], buttons: list[str]) -> Event:
        """Parse and check a POSTed event; every problem is a BadEvent naming the field."""
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BadEvent("body is not JSON") from None
        if not isinstance(data, dict):
            raise BadEvent("body must be a JSON object")
        expected = {"observer", "clip_id", "button", "media_ms", "wall_ms"}
        if set(data) != expected:
            raise BadEvent(f"fields must be exactly {', '.join(sorted(expected))}")
        observer, clip_id, button = data["observer"], data["clip_id"], data["button"]
        if not isinstance(observer, str) or not OBSERVER_RE.match(observer.strip()):
            raise BadEvent("observer: 1-64 letters, digits, spaces or . @ ' - (starting with a "
                           "letter or digit)")
        if not isinstance(clip_id, str) or clip_id not in clips:
            raise BadEvent("clip_id: not a clip of this corpus")
        if not isinstance(button, str) or button not in buttons:
            raise BadEvent("button: not one of annotate.buttons")
        numbers = {}
        for key, top in (("media_ms", MAX_MEDIA_MS), ("wall_ms", 1e14)):
            v = data[key]
            # NaN fails the comparison; an int too large for a float is compared exactly
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= top:
                raise BadEvent(f"{key}: a number of milliseconds from 0 to {top:.0f}")
            numbers[key] = round(v)
        return cls(observer.strip(), clip_id, button, numbers["media_ms"], numbers["wall_ms"])


class AnnotationLog:
    """RUN/annotations.csv: appended one row per event, never rewritten.

    Each append holds a thread lock and an exclusive ``flock`` (two servers on one run directory
    stay whole rows), writes the header only into an empty file, then flushes and fsyncs before
    returning. A row cut short by a crash (no final newline) is removed at start: it was never
    acknowledged to the page.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._check_existing()

    def _check_existing(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            data = f.read()
            if not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                log.warning("%s: dropping an unfinished last row (%d bytes) left by a crash",
                            self.path, len(data) - cut)
                f.truncate(cut)
                data = data[:cut]
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
        if not rows:
            return
        if tuple(rows[0]) != schema.ANNOTATION_COLUMNS:
            raise AnnotateError(f"{self.path} has the header {rows[0]}, not "
                                f"{list(schema.ANNOTATION_COLUMNS)}: move it away or choose "
                                "another run directory (--out)")
        i_obs = schema.ANNOTATION_COLUMNS.index(schema.OBSERVER)
        i_clip = schema.ANNOTATION_COLUMNS.index(schema.CLIP_ID)
        for row in rows[1:]:
            if len(row) == len(schema.ANNOTATION_COLUMNS):
                self._counts[(row[i_obs], row[i_clip])] += 1

    def append(self, event: Event) -> None:
        received = dt.datetime.now(dt.UTC).timestamp()
        values = {schema.OBSERVER: event.observer, schema.CLIP_ID: event.clip_id,
                  schema.BUTTON: event.button, schema.MEDIA_MS: event.media_ms,
                  schema.WALL_TIME: utc_iso(event.wall_ms / 1000),
                  schema.RECEIVED_AT: utc_iso(received)}
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        with self._lock, open(self.path, "a", encoding="utf-8", newline="") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            if f.seek(0, os.SEEK_END) == 0:
                writer.writerow(schema.ANNOTATION_COLUMNS)
            writer.writerow([values[c] for c in schema.ANNOTATION_COLUMNS])
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
            self._counts[(event.observer, event.clip_id)] += 1

    def counts(self, observer: str | None = None) -> dict[str, Any]:
        """Events per clip of ``observer``, that observer's total and the file's total."""
        with self._lock:
            mine = {c: n for (o, c), n in self._counts.items() if o == observer}
            return {"observer": observer, "clips": mine, "observer_total": sum(mine.values()),
                    "total": sum(self._counts.values())}


class App:
    """Everything a request may touch: the clip table, the rendered page, the log."""

    def __init__(self, cfg: Config, run_dir: Path, observer: str = "",
                 transcoder: Transcoder | None = None):
        self.cfg = cfg
        a = cfg.annotate
        clips = discover(cfg)
        videos = [c for c in clips if c.kind == "video"]
        if len(videos) < len(clips):
            log.warning("%d image-sequence clip(s) left out: the page plays video files only",
                        len(clips) - len(videos))
        if not videos:
            raise AnnotateError("the corpus has no video files to annotate (corpus.paths)")
        self.clips: dict[str, Clip] = {c.clip_id: c for c in videos}
        self.order = [c.clip_id for c in videos]
        self.buttons = list(a.buttons)
        if transcoder is None:
            try:
                cache = cfg.resolve(a.cache) if a.cache else default_cache_dir()
                transcoder = Transcoder(cache, a.transcode)
            except TranscodeError as e:
                raise AnnotateError(str(e)) from None
        self.transcoder = transcoder
        self.log = AnnotationLog(run_dir / ANNOTATIONS_CSV)
        env = jinja2.Environment(loader=jinja2.PackageLoader("videmo.annotate", "templates"),
                                 autoescape=True, undefined=jinja2.StrictUndefined)
        items = [{"id": c, "src": "/media/" + quote(c, safe="")} for c in self.order]
        if cfg.corpus.segments is not None:  # play segments of long recordings
            items = segment_items(cfg, videos)
            self.order = list(dict.fromkeys(i["id"] for i in items))
        page = {"clips": items,
                "buttons": [{"name": b, "key": a.keys().get(b, ""),
                             "emotion": b in schema.EMOTIONS} for b in self.buttons],
                "observer": observer}
        self.page = env.get_template("index.html").render(page=page, run=str(run_dir)) \
            .encode("utf-8")
        files = resources.files("videmo.annotate") / "templates"
        self.assets = {name: (files / name).read_bytes() for name in ASSETS}


def segment_items(cfg: Config, videos: list[Clip]) -> list[dict[str, Any]]:
    """The page's items with ``corpus.segments``: one per segment, playing its recording from
    ``start`` to ``end``. Events keep the recording's id and its time line (``media_ms`` is the
    recording's ``currentTime``), so they merge with the recording's frames as any clip's do."""
    from videmo.evaluate.segments import load_segments
    from videmo.extract.chunks import probe_duration

    segments, issues = load_segments(cfg, [c.clip_id for c in videos],
                                     {c.clip_id: probe_duration(c, cfg) for c in videos})
    for line in issues.lines() if issues else []:
        log.warning("segments %s: %s (left out)", issues.path, line)
    if not segments:
        raise AnnotateError(f"corpus.segments {cfg.corpus.segments}: no segment of a video of "
                            f"the corpus to play")
    return [{"id": s.recording, "src": "/media/" + quote(s.recording, safe=""),
             "segment": s.segment_id, "start": s.start_s, "end": s.end_s} for s in segments]


class Handler(BaseHTTPRequestHandler):
    """Routes: ``/``, ``/static/NAME``, ``/media/CLIP_ID`` (percent-encoded), ``/api/events``."""

    server_version = "videmo-annotate"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    server: AnnotateServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        log.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------ helpers
    def _send(self, status: int, body: bytes = b"", ctype: str = "text/plain; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: HTTPStatus, detail: str = "") -> None:
        body = json.dumps({"error": detail or status.phrase}).encode()
        self._send(status, body, "application/json")

    def _json(self, data: Any, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _host_ok(self) -> bool:
        if not self.server.loopback_only:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name in LOOPBACK_NAMES

    def _route(self) -> tuple[str, str]:
        """(raw path, query) of the request; the path is matched, never opened."""
        parts = urlsplit(self.path)
        return parts.path, parts.query

    # ------------------------------------------------------------ methods
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if not self._host_ok():
            return self._error(HTTPStatus.FORBIDDEN, "unknown Host")
        app = self.server.app
        path, query = self._route()
        if path == "/":
            return self._send(HTTPStatus.OK, app.page, "text/html; charset=utf-8",
                              {"Content-Security-Policy": CSP})
        if path.startswith("/static/") and path[len("/static/"):] in app.assets:
            name = path[len("/static/"):]
            return self._send(HTTPStatus.OK, app.assets[name], ASSETS[name])
        if path.startswith("/media/"):
            try:
                clip = app.clips.get(unquote(path[len("/media/"):], errors="strict"))
            except UnicodeDecodeError:
                clip = None
            if clip is None:
                return self._error(HTTPStatus.NOT_FOUND)
            return self._media(clip)
        if path == "/api/events":
            observer = parse_qs(query).get("observer", [""])[0].strip()
            return self._json(app.log.counts(observer))
        return self._error(HTTPStatus.NOT_FOUND)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return self._error(HTTPStatus.FORBIDDEN, "unknown Host")
        path, _ = self._route()
        if path != "/api/events":
            return self._error(HTTPStatus.NOT_FOUND)
        length = self.headers.get("Content-Length")
        if length is None or not (length.isascii() and length.isdigit()):  # not '²' either
            self.close_connection = True
            return self._error(HTTPStatus.LENGTH_REQUIRED)
        if int(length) > MAX_BODY:
            self.close_connection = True  # the body is not read
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"an event is at most {MAX_BODY} bytes")
        body = self.rfile.read(int(length))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")
        app = self.server.app
        try:
            event = Event.from_json(body, app.clips, app.buttons)
        except BadEvent as e:
            return self._error(HTTPStatus.BAD_REQUEST, str(e))
        try:
            app.log.append(event)
        except OSError as e:
            log.error("cannot write %s: %s", app.log.path, e)
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR,
                               f"cannot write {app.log.path.name}: {e.strerror}")
        self._json({"saved": True, **app.log.counts(event.observer)}, HTTPStatus.CREATED)

    def _media(self, clip: Clip) -> None:
        app = self.server.app
        try:
            playable = app.transcoder.playable(clip)
        except (TranscodeError, OSError) as e:
            log.error("%s", e)
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"cannot play {clip.clip_id}")
        i = app.order.index(clip.clip_id)
        if i + 1 < len(app.order):
            app.transcoder.prefetch(app.clips[app.order[i + 1]])
        try:
            f = open(playable.path, "rb")
        except OSError as e:
            log.error("cannot open %s: %s", playable.path, e)
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"cannot read {clip.clip_id}")
        with f:
            size = os.fstat(f.fileno()).st_size
            start, end = 0, size - 1
            status = HTTPStatus.OK
            rng = self.headers.get("Range")
            if rng:
                m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip(), flags=re.ASCII)
                if not m or (not m[1] and not m[2]):
                    return self._error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                if m[1]:
                    start, end = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1)
                else:
                    start = max(size - int(m[2]), 0)
                if start > end or start >= size:
                    return self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                                      headers={"Content-Range": f"bytes */{size}"})
                status = HTTPStatus.PARTIAL_CONTENT
            self.send_response(status)
            self.send_header("Content-Type", playable.mime)
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-cache")
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            f.seek(start)
            left = end - start + 1
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                while left > 0:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)


class AnnotateServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, app: App, host: str, port: int):
        self.app = app
        try:
            self.loopback_only = ipaddress.ip_address(host).is_loopback
        except ValueError:
            self.loopback_only = host.lower() == "localhost"
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def make_server(cfg: Config, run_dir: Path | None = None, observer: str = "",
                transcoder: Transcoder | None = None) -> AnnotateServer:
    """A bound, not yet serving server for ``cfg`` (tests run ``serve_forever`` in a thread)."""
    run_dir = run_dir if run_dir is not None else cfg.out_dir
    app = App(cfg, run_dir, observer=observer, transcoder=transcoder)
    try:
        return AnnotateServer(app, cfg.annotate.host, cfg.annotate.port)
    except OSError as e:
        raise AnnotateError(f"cannot listen on {cfg.annotate.host}:{cfg.annotate.port} "
                            f"(annotate.host / annotate.port, --host / --port): "
                            f"{e.strerror}") from None


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def serve(cfg: Config, observer: str = "") -> int:
    """Serve until Ctrl-C; prints the URL first. Returns the exit code (0)."""
    if observer and not OBSERVER_RE.match(observer):
        raise AnnotateError(f"--observer {observer!r}: 1-64 letters, digits, spaces or . @ ' - "
                            "(starting with a letter or digit)")
    server = make_server(cfg, observer=observer)
    app = server.app
    print(f"videmo annotate: {server.url} ({len(app.order)} clips; events -> "
          f"{app.log.path}); Ctrl-C stops", flush=True)
    if not server.loopback_only:
        log.warning("serving on %s: anyone on that network can see the clips and add events",
                    cfg.annotate.host)
    # Ctrl-C stops it even when started with SIGINT ignored (Python then installs no handler:
    # a shell's background job, nohup), and so does SIGTERM (a scheduler, kill)
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
        app.transcoder.close()
    print(f"videmo annotate: stopped; {app.log.counts()['total']} events in {app.log.path}",
          flush=True)
    return 0
