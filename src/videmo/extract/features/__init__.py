"""Per-face feature extractors, each with its own table (emotions, mesh) and helpers."""
