"""The observer page's HTTP inputs, generated (Hypothesis): every POSTed event ends in a saved
row holding exactly what was sent, or in a 400 naming the field; every request (method, path,
query, Range, Content-Length, Content-Type, body) gets an HTTP answer from the documented
set; the server never fails with a traceback. Clips are served by a fake transcoder (the files
as they are), so no ffmpeg is needed."""

from __future__ import annotations

import json
import math
import socket
import threading
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from videmo import schema
from videmo.annotate import server as srv
from videmo.extract.corpus import Clip

from .conftest import make_config

CLIPS = ["a", "b c", "d/é"]
BUTTONS = list(schema.EMOTIONS)
FIELDS = ("observer", "clip_id", "button", "media_ms", "wall_ms")


class FilesAsTheyAre:
    """A transcoder that serves every clip's own bytes."""

    def playable(self, clip: Clip):
        return SimpleNamespace(path=clip.path, mime="video/mp4")

    def prefetch(self, clip: Clip) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    base = tmp_path_factory.mktemp("annotate")
    corpus = base / "corpus"
    for i, cid in enumerate(CLIPS):
        path = corpus / f"{cid}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(range(256)) * (i + 1))
    cfg = make_config(base, corpus)
    server = srv.make_server(cfg, base / "run", transcoder=FilesAsTheyAre())
    errors: list[BaseException] = []
    handle_error = server.handle_error

    def record(request, client_address):
        import sys

        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            errors.append(exc)
        handle_error(request, client_address)

    server.handle_error = record
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield SimpleNamespace(server=server, port=server.server_address[1], errors=errors,
                          log=base / "run" / "annotations.csv")
    server.shutdown()
    server.server_close()
    thread.join(10)


def _raw(port: int, request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    assert status_line.startswith("HTTP/1."), data[:200]
    return int(status_line.split()[1]), body


# ---------------------------------------------------------------- events as JSON
NUMBER = st.one_of(st.integers(-10, 10**16), st.integers(), st.floats(),
                   st.sampled_from([10**400, -(10**400), 1e400]))
ANY_JSON = st.recursive(st.one_of(st.none(), st.booleans(), NUMBER, st.text(max_size=8)),
                        lambda inner: st.one_of(st.lists(inner, max_size=2),
                                                st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=2)), max_leaves=4)


@st.composite
def events(draw) -> dict:
    good = {"observer": draw(st.sampled_from(["alice", " bob ", "Zoë Ä.", "o'neil@lab"])),
            "clip_id": draw(st.sampled_from(CLIPS)), "button": draw(st.sampled_from(BUTTONS)),
            "media_ms": draw(st.integers(0, srv.MAX_MEDIA_MS)),
            "wall_ms": draw(st.integers(0, 10**14))}
    bad = {"observer": st.one_of(st.text(max_size=70), ANY_JSON),
           "clip_id": st.one_of(st.text(max_size=8), ANY_JSON),
           "button": st.one_of(st.text(max_size=8), ANY_JSON),
           "media_ms": st.one_of(NUMBER, ANY_JSON), "wall_ms": st.one_of(NUMBER, ANY_JSON)}
    event = {k: draw(bad[k]) if draw(st.integers(0, 4)) == 0 else v for k, v in good.items()}
    if draw(st.integers(0, 9)) == 0:
        del event[draw(st.sampled_from(FIELDS))]
    if draw(st.integers(0, 9)) == 0:
        event[draw(st.text(max_size=6))] = draw(ANY_JSON)
    return event


def _expected_error(event: dict) -> str | None:
    """The first field a valid event could not have, as the parser checks them."""
    if set(event) != set(FIELDS):
        return "fields"
    obs = event["observer"]
    if not isinstance(obs, str) or not srv.OBSERVER_RE.match(obs.strip()):
        return "observer"
    if not isinstance(event["clip_id"], str) or event["clip_id"] not in CLIPS:
        return "clip_id"
    if not isinstance(event["button"], str) or event["button"] not in BUTTONS:
        return "button"
    for key, top in (("media_ms", srv.MAX_MEDIA_MS), ("wall_ms", 1e14)):
        v = event[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                (isinstance(v, int) and 0 <= v <= top)
                or (isinstance(v, float) and math.isfinite(v) and 0 <= v <= top)):
            return key
    return None


@given(event=events())
def test_an_event_is_what_was_sent_or_a_bad_event_naming_the_field(event):
    clips = {c: Clip(c, Path(c)) for c in CLIPS}
    body = json.dumps(event).encode()
    field = _expected_error(event)
    try:
        parsed = srv.Event.from_json(body, clips, BUTTONS)
    except srv.BadEvent as e:
        assert field is not None, f"a valid event was refused: {e}"
        assert str(e).startswith(field) and "\n" not in str(e), (field, str(e))
        return
    assert field is None, f"accepted with a bad {field}: {event}"
    assert (parsed.observer, parsed.clip_id, parsed.button) == (
        event["observer"].strip(), event["clip_id"], event["button"])
    assert (parsed.media_ms, parsed.wall_ms) == (round(event["media_ms"]),
                                                 round(event["wall_ms"]))


@pytest.mark.parametrize("media_ms", [10**400, -(10**400)])
def test_a_huge_integer_is_a_bad_event_not_a_crash(media_ms):
    """Found by the property above: math.isfinite() raised OverflowError on a JSON integer
    too large for a float, and the request ended in a traceback."""
    body = json.dumps({"observer": "alice", "clip_id": "a", "button": "happy",
                       "media_ms": media_ms, "wall_ms": 0}).encode()
    with pytest.raises(srv.BadEvent, match="^media_ms: "):
        srv.Event.from_json(body, {"a": Clip("a", Path("a"))}, BUTTONS)


# ---------------------------------------------------------------- any request
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                    exclude_characters="\x7f"), max_size=12)
PATHS = st.one_of(
    st.sampled_from(["/", "/static/annotate.js", "/static/../x", "/api/events", "//",
                     "/api/events?observer=alice", "/media/", "/media/%ff", "/media/a%00"]),
    st.sampled_from(CLIPS).map(lambda c: "/media/" + quote(c, safe="")),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20)
    .map(lambda t: "/" + t))


@st.composite
def requests(draw) -> tuple[str, str, dict[str, str], bytes]:
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]))
    path = draw(PATHS)
    headers = {"Host": draw(st.sampled_from(["127.0.0.1", "localhost:8", "evil.example"]))}
    body = draw(st.one_of(st.binary(max_size=64),
                          events().map(lambda e: json.dumps(e).encode())))
    if draw(st.booleans()):
        headers["Range"] = draw(st.one_of(
            HEADER_TEXT,
            st.builds("bytes={}-{}".format, st.one_of(st.just(""), st.integers(0, 2000)),
                      st.one_of(st.just(""), st.integers(0, 2000))),
            st.sampled_from(["bytes=\u00b2-", "bytes=0-\u00b9", "bytes=\u00bd-"])))
    length = draw(st.sampled_from(["right", "right", "none", "other"]))
    if length == "right":
        headers["Content-Length"] = str(len(body))
    elif length == "other":
        headers["Content-Length"] = draw(st.one_of(  # never a smaller body than announced
            HEADER_TEXT.filter(lambda t: not (t.isascii() and t.strip().isdigit())),
            st.sampled_from(["\u00b2", "-1", "99999", " 3", "0x10"])))
    headers["Content-Type"] = draw(st.one_of(st.just("application/json"), HEADER_TEXT))
    return method, path, headers, body


ANSWERS = {200, 201, 206, 400, 403, 404, 411, 413, 415, 416, 501}


@given(request=requests())
def test_any_request_gets_an_answer_and_no_traceback(live, request):
    method, path, headers, body = request
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "Connection: close\r\n\r\n"
    before = len(live.errors)
    status, answer = _raw(live.port, head.encode("latin-1") + body)
    assert len(live.errors) == before, f"server error: {live.errors[-1]!r}"
    assert status in ANSWERS, (status, answer[:200])
    if status == 400 and path == "/api/events":
        detail = json.loads(answer)["error"]
        assert detail.split(":")[0].split()[0] in (*FIELDS, "fields", "body"), detail


@pytest.mark.parametrize("header", ["Content-Length: \u00b2", "Range: bytes=\u00b2-"])
def test_a_non_ascii_digit_in_a_header_is_an_http_error_not_a_crash(live, header):
    """Found by the property above: str.isdigit() and \\d accept '²', which int() refuses,
    so the request ended in a traceback (and no answer)."""
    method = "POST /api/events" if header.startswith("Content-Length") else "GET /media/a"
    before = len(live.errors)
    status, _ = _raw(live.port, f"{method} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}\r\n"
                                f"Content-Type: application/json\r\nConnection: close\r\n\r\n"
                                .encode("latin-1"))
    assert status in (411, 416) and len(live.errors) == before
