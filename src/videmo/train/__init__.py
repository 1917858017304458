"""Frame classifiers trained on still faces (``videmo train``): FER2013 -> face mesh features ->
the blendshape LSTM, an MLP and gradient boosting on the same features, the landmark 1D-CNN.

- :mod:`~videmo.train.data`: the still-image set (FER2013's folders or its csv) and its splits.
- :mod:`~videmo.train.features`: blendshapes and landmarks per image, cached and resumable.
- :mod:`~videmo.train.models`: the models, their training and their metrics.
- :mod:`~videmo.train.run`: the command: extract, select features, train, evaluate, ship.
- :mod:`~videmo.train.pixels`, :mod:`~videmo.train.pixel_run`: the pixel networks.

:data:`TRAIN_MODELS` names every model ``train.models`` accepts, with what it reads
(blendshapes or landmarks of the face mesh, or the pixels of a face crop); the config reads its
choices from it and the trainers their models.
"""

from __future__ import annotations

from videmo.registry import Registry

# train.models: name -> what the model reads (its frame model kind)
TRAIN_MODELS = Registry("train model (train.models)", {
    "blend_lstm": "blendshapes",
    "blend_mlp": "blendshapes",
    "blend_gboost": "blendshapes",
    "land_cnn_procrustes": "landmarks",
    "land_cnn_minmax": "landmarks",
    "pixel_vgg": "pixels",
    "pixel_vgg_48": "pixels",
    "pixel_vgg_64": "pixels",
})


def models_reading(*kinds: str) -> tuple[str, ...]:
    """The registered train models that read one of ``kinds``, in registry order."""
    return tuple(n for n in TRAIN_MODELS if TRAIN_MODELS.get(n) in kinds)
