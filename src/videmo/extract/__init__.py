"""Extraction: clip -> sampled frames -> faces (detectors/) -> per-face features (features/)."""
