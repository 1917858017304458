"""The observer annotation page (``videmo annotate``) and the merge of its events with frames.

* :mod:`.server` serves a local page that plays the corpus's clips with one button per event
  (the seven emotions, laughing, applause, booing, crying by default) and appends every press to
  ``RUN/annotations.csv`` (columns :data:`videmo.schema.ANNOTATION_COLUMNS`).
* :mod:`.transcode` turns clips a browser cannot play (flv, avi, ...) into cached WebM/VP9 copies.
* :mod:`.merge` joins the events to the per-frame table by time and measures how often an
  observer's emotion agrees with the predicted one; pure functions on tables.
"""

from __future__ import annotations

ANNOTATIONS_CSV = "annotations.csv"
