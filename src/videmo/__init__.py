"""videmo: emotion in video, per clip, reproducibly.

Stages: ``extract`` (frames -> faces -> seven FER scores, a per-frame table) and ``report``
(map to three classes, vote per clip, evaluate against golden labels, export tables and figures).
"""

__version__ = "0.1.0"
