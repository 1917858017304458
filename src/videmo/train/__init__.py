"""Frame classifiers trained on still faces (``videmo train``): FER2013 -> face mesh features ->
the blendshape LSTM, an MLP and gradient boosting on the same features, the landmark 1D-CNN.

- :mod:`~videmo.train.data`: the still-image set (FER2013's folders or its csv) and its splits.
- :mod:`~videmo.train.features`: blendshapes and landmarks per image, cached and resumable.
- :mod:`~videmo.train.models`: the models, their training and their metrics.
- :mod:`~videmo.train.run`: the command: extract, select features, train, evaluate, ship.
"""
