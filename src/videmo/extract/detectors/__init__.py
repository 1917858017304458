"""Face detectors that map frames to boxes; one interface, chosen by faces.detector."""
