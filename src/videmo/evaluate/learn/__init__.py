"""Learn a clip's label from labelled clips, and evaluate it as a careful researcher would.

``videmo learn RUN`` reads a labelled run's own per-frame table and recorded config (nothing
is re-extracted) and writes ``RUN/learn/`` (``learn.out``, ``--out``):

* ``results.csv`` (schema.LEARN_RESULT_COLUMNS): one row per (classifier, features) with
  accuracy and macro-F1, their 95% bootstrap intervals, the clips and groups they were
  measured on, and the exact McNemar p-value against the majority vote. Rows of kind
  ``baseline`` (the majority vote, the mean, ``prior``: always the commonest class of the
  training fold, the chance level to beat), ``rule`` (the expressive-frame rules of
  :mod:`videmo.evaluate.rules`) and ``learned`` (out-of-fold predictions of the classifiers).
* ``predictions.csv`` (every clip's out-of-fold prediction of every row, its group and fold),
  ``summary.txt``, ``results.png`` (accuracy with its interval per row), ``learn_config.yaml``.
* ``model/``: the best learned row by the outer CV, refitted on every clip, with its card.

**Where is what** (each module one concern; the CV loop knows no learner by name):

* :mod:`.base`: the :class:`~.base.ClipLearner` interface (inputs, grid, estimator with
  ``fit``/``predict``, export, load) and the registry of learners (``learn.classifiers``).
* :mod:`.pooled` (``logistic``, ``gboost``) and :mod:`.lstm` (``lstm``): the shipped learners.
* :mod:`.families`: feature families (``learn.features``) and the mesh join.
* :mod:`.clips`: the per-clip data, pooled statistics and frame sequences.
* :mod:`.cv`: person-grouped folds, nested selection, the refit on every clip.
* :mod:`.run`: ``videmo learn`` (:func:`.run.learn`): baselines, rules, results, files.
* :mod:`.model_io`: the model folder (save, load, apply: what ``videmo report
  --classifier`` imports).
* :mod:`.card`: summary.txt, the model card, results.png.
* :mod:`videmo.evaluate.stats`: the bootstrap intervals and McNemar's test.

**Honest evaluation** (details in :mod:`.cv`):

* Person-grouped outer folds; nested selection of a tuned learner's settings and feature set
  on the training fold only. Choosing the *deployed* model as the best learned row of the
  outer CV is itself a choice among rows: its outer number is optimistic by that choice (the
  card says so).
* Intervals: percentile bootstrap (``learn.bootstrap`` resamples, seeded) of accuracy and
  macro-F1. Clips of one person are not independent, so the resampled unit is the group when
  there are at least ``stats.MIN_BOOTSTRAP_GROUPS`` groups (a cluster bootstrap); with fewer
  groups it has too few distinct resamples to mean anything and clips are resampled instead
  (``learn.bootstrap_unit`` forces either). Every row uses the same resamples.
* ``p_vs_vote``: the exact McNemar test (two-sided binomial on the clips where exactly one of
  the row and the majority vote is right), paired on the same clips.
* Every labelled clip that was extracted counts; a clip without a face row is ``no_face`` for
  every row (wrong). Labelled clips that failed or were never extracted are left out and
  named in the summary.

This package imports nothing itself: import the module you need (``videmo report`` imports
only :mod:`.model_io` and what it reads).
"""
