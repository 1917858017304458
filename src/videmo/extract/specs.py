"""What a face detector or a frame model declares: its spec, the one registry entry that says
everything the rest of videmo needs to know about it.

A plug-in is one module (the code that finds faces or scores them) plus one entry in
:data:`videmo.extract.detectors.DETECTORS` or
:data:`videmo.extract.features.frame_models.FRAME_MODELS`: a :class:`DetectorSpec` or a
:class:`FrameModelSpec`. From the specs alone

* the cache key is assembled (:func:`videmo.extract.keys.extract_key`): the part's options, the
  sha256 of its model files and the versions of the packages that run them;
* its options are validated, listed by ``videmo config --template`` and documented in
  docs/config.md (``section`` and ``options``: a frozen dataclass of :func:`videmo.config.opt`
  fields; the shipped parts' sections are fields of the config's own dataclasses);
* the pipeline batches frames (``batch_size``), hands grey frames to a grey detector (``grey``)
  and the pixel model frames a detector's box (``framing``);
* MODELS.md's table of which files and packages each part loads is checked against them.

Entries may be registered at run time (a test does), and every callable field may be a
``"module:attr"`` reference, imported on first use, so listing the parts imports no model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from videmo.config.keys import OPENCV_DISTRIBUTIONS
from videmo.registry import resolve

if TYPE_CHECKING:
    from videmo.config import Config

# A value a spec gives either as it is or as a function of the config (a reference to one, too).
PerConfig = Any

# The packages a spec may name, by the name the cache key records: the distributions whose
# version counts (the first installed one; OpenCV ships under several names). A name not here
# is its own distribution.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {"opencv": OPENCV_DISTRIBUTIONS}


def per_config(value: PerConfig, cfg: Config) -> Any:
    """``value`` as the config makes it: called when it is a function (or names one)."""
    if isinstance(value, str) and ":" in value:
        value = resolve(value)
    return value(cfg) if callable(value) else value


def _call(ref: str | Callable, *args: Any) -> Any:
    return (resolve(ref) if isinstance(ref, str) else ref)(*args)


@dataclass(frozen=True)
class PartSpec:
    """What detectors and frame models both declare.

    ``make``: ``"module:attr"`` (or the callable) that builds the part, ``make(cfg, threads)``;
    ``section``: the dotted config section of its options (``faces.haar``) or None;
    ``options``: for a part whose section is not a field of the config's dataclasses, the
    frozen dataclass of its options, or a ``"module:attr"`` reference to it (read back with
    ``cfg.options(section)``; in the cache key at its path only while the part is chosen);
    ``files``: the model files it loads (names in :mod:`videmo.models`), ``packages``: the
    packages that compute its numbers (see :data:`DISTRIBUTIONS`), each a tuple or a function
    of the config; ``doc``: one line for MODELS.md and the docs."""

    make: str | Callable[..., Any]
    section: str | None = None
    options: type | str | None = None
    files: PerConfig = ()
    packages: PerConfig = ()
    doc: str = ""

    def options_type(self) -> type | None:
        return resolve(self.options) if isinstance(self.options, str) else self.options

    def files_for(self, cfg: Config) -> tuple[str, ...]:
        return tuple(per_config(self.files, cfg))

    def packages_for(self, cfg: Config) -> tuple[str, ...]:
        return tuple(per_config(self.packages, cfg))


@dataclass(frozen=True)
class DetectorSpec(PartSpec):
    """A face detector (``faces.detector``): ``make(options, threads) -> FaceDetector``, where
    ``options`` is the plug-in's own section when it declares ``options``, else the ``faces``
    section (the shipped detectors read their sub-sections of it).

    ``batch_size``: frames per ``detect`` call (an int or a function of the config);
    ``grey``: it reads grey frames (they are converted before downscaling, a third of the
    work); ``keypoints``: its faces carry eye keypoints (the pixel model's ``align`` and the
    mesh use them; without, the eyes are searched); ``framing``: (scale, dx, dy) of the crop
    the pixel model cuts from its boxes, the name of a detector whose measured framing its
    boxes share, or None for its own measured in face_framing.json;
    ``key``: a function ``(faces_key, cfg) -> faces_key`` that leaves its options out of the
    cache key where they hold the behaviour of before they existed (so older runs stay done).
    """

    batch_size: PerConfig = 8
    grey: bool = False
    keypoints: bool = False
    framing: tuple[float, float, float] | str | None = None
    key: str | Callable[[dict, Config], dict] | None = None

    def build(self, cfg: Config, threads: int) -> Any:
        own = self.options is not None and self.section is not None
        return _call(self.make, cfg.options(self.section) if own else cfg.faces, threads)

    def batch_for(self, cfg: Config) -> int:
        return int(per_config(self.batch_size, cfg))

    def trim_key(self, faces: dict, cfg: Config) -> dict:
        return faces if self.key is None else _call(self.key, faces, cfg)


@dataclass(frozen=True)
class FrameModelSpec(PartSpec):
    """A frame model (``emotions.model``): ``make(cfg, threads)`` returns a scorer with
    ``score(batch) -> one (7,) array per face``.

    ``reads``: the feature extractors whose outputs it scores (``emotions.model`` turns them
    on; the mesh frame models read ``mesh``); ``keyed``: the ``emotions`` options that change
    its numbers (they, and its own ``section``'s options, enter the cache key)."""

    reads: tuple[str, ...] = ()
    keyed: tuple[str, ...] = ("model",)

    @property
    def reads_mesh(self) -> bool:
        return "mesh" in self.reads

    @property
    def scorer(self) -> str | Callable[..., Any]:
        return self.make

    def build(self, cfg: Config, threads: int) -> Any:
        return _call(self.make, cfg, threads)


def spec_of(entry: Any, kind: type[PartSpec]) -> Any:
    """A registry entry as a spec: a bare factory (a function registered the old way) is a
    spec with the defaults."""
    return entry if isinstance(entry, PartSpec) else kind(make=entry)
