"""Evaluation: golden labels, frame and clip votes, expressive-frame rules, metrics."""
