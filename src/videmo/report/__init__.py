"""The report: one model of a run's results (build), rendered as CSV, text, PNG figures and
HTML; comparisons of runs."""
