"""How far may another CPU move the numbers of videmo's golden tests? Measure it.

A golden test must hold on any x86-64 machine the README supports, but LiteRT and TensorFlow
pick their kernels by CPU (XNNPACK's micro-kernels per instruction set, oneDNN's per ISA): the
sums run in another order and float32 results move in their last bits, more after many layers.
We cannot borrow every CPU, so we bound the move by the widest spread we can produce on one:
LiteRT's three op resolvers (``BUILTIN``: optimized kernels + the XNNPACK delegate, what videmo
runs; ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``: optimized kernels, no XNNPACK; ``BUILTIN_REF``:
the plain reference kernels, a wholly different summation order) at 1 and 2 threads, and
TensorFlow with oneDNN on and off, batched and one face at a time. Two kernel families as far
apart as the reference and XNNPACK differ by more than two XNNPACK builds for two ISAs do.

Run from the repository root (it prints one table; nothing is written):

    PYTHONPATH=src:. python scripts/kernel_spread.py

The tolerances in tests/test_mesh.py, tests/test_train.py and tests/test_fer_parity.py cite
its output; tests/data/README.md ("Tolerances of the golden tests") holds the measured numbers.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESOLVERS = ("BUILTIN", "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "BUILTIN_REF")
CONFIGS = [(r, t) for r in RESOLVERS for t in (1, 2)]


def use_resolver(name: str) -> None:
    """Make every LiteRT interpreter created from now on use op resolver ``name``."""
    import ai_edge_litert.interpreter as li

    original = getattr(li, "_videmo_original", li.Interpreter)
    li._videmo_original = original
    kind = li.OpResolverType[name]

    class Interpreter(original):
        def __init__(self, *args, **kwargs):
            kwargs["experimental_op_resolver_type"] = kind
            super().__init__(*args, **kwargs)

    li.Interpreter = Interpreter


def mesh_parity_numbers(threads: int) -> dict[str, np.ndarray]:
    """What tests/test_mesh.py compares with MediaPipe, on its golden frames."""
    from tests.conftest import SAMPLE, read_frames
    from videmo.extract.features.mesh import FaceMesh

    with np.load(REPO / "tests" / "data" / "mesh_golden.npz") as g:
        golden = {k: g[k] for k in g.files}
    frames = [read_frames(SAMPLE / f"{clip}.flv", int(i) + 1)[-1]
              for clip, i in zip(golden["clip"], golden["frame"], strict=True)]
    mesh = FaceMesh(threads)
    out: dict[str, list] = {k: [] for k in ("box", "kps", "score", "landmarks", "blendshapes",
                                            "matrix", "angles")}
    for frame in frames:
        (face,) = mesh.detect([frame])[0]
        r = mesh.mesh(frame, face)
        out["box"].append(face.box)
        out["kps"].append(face.keypoints)
        out["score"].append(face.confidence)
        out["landmarks"].append(r.landmarks)
        out["blendshapes"].append(r.blendshapes)
        out["matrix"].append(r.matrix)
        out["angles"].append((r.yaw, r.pitch, r.roll))
    return {k: np.asarray(v, np.float64) for k, v in out.items()} | {"golden": golden}


def frame_model_inputs(threads: int) -> dict[str, np.ndarray]:
    """The frame models' golden inputs recomputed from the stored crops."""
    from videmo.extract.features.mesh import FaceMesh
    from videmo.train import features

    with np.load(REPO / "tests" / "data" / "frame_models_golden.npz") as g:
        crops = g["crops"]
    mesh = FaceMesh(threads)
    res = [features.mesh_image(mesh, features.upscale(c, 192)) for c in crops]
    return {"source": np.array([s for _, s in res]),
            "landmarks": np.stack([r.landmarks for r, _ in res]).astype(np.float64),
            "blendshapes": np.stack([r.blendshapes for r, _ in res]).astype(np.float64)}


@functools.cache
def fer_faces() -> np.ndarray:
    """The 64x64 inputs tests/test_fer_parity.py scores: Haar faces of every 6th frame."""
    from tests.conftest import SAMPLE_CLIPS, read_frames
    from videmo.extract.detectors.haar import HaarDetector
    from videmo.extract.features.emotions import crop_faces

    haar, faces = HaarDetector(), []
    for clip in SAMPLE_CLIPS:
        for frame in read_frames(clip)[::6]:
            inputs, _ = crop_faces(frame, haar.detect([frame])[0])
            faces.extend(inputs)
    return np.stack(faces)


def fer_scores(threads: int) -> np.ndarray:
    from videmo.extract.features.emotions import TfliteModel

    return TfliteModel(threads).predict(fer_faces()).astype(np.float64)


def keras_probabilities() -> dict[str, list]:
    """(inner) The frame models on the stored golden inputs, batched and one by one."""
    from videmo.extract.features import frame_model as FM

    with np.load(REPO / "tests" / "data" / "frame_models_golden.npz") as g:
        blend, lms = g["blendshapes"], g["landmarks"]
    out = {}
    for name in FM.FRAME_MODEL_FILES:
        model = FM.load_frame_model(name)
        x = FM.features(model.card, blend, lms)
        out[name] = model.predict_features(x).tolist()
        out[name + "/one-by-one"] = np.concatenate(
            [model.predict_features(x[i:i + 1]) for i in range(len(x))]).tolist()
    return out


def spread(values: list[np.ndarray]) -> float:
    return float(max(np.abs(v - values[0]).max() for v in values))


def main() -> None:
    sys.path.insert(0, str(REPO))
    from videmo.extract.features import pose

    parity, inputs, fer = {}, {}, {}
    for resolver, threads in CONFIGS:
        use_resolver(resolver)
        parity[resolver, threads] = mesh_parity_numbers(threads)
        inputs[resolver, threads] = frame_model_inputs(threads)
        fer[resolver, threads] = fer_scores(threads)
    golden = parity[CONFIGS[0]]["golden"]
    print(f"LiteRT configurations: {', '.join(f'{r}/{t}' for r, t in CONFIGS)}")
    print("\n## mesh parity frames (tests/test_mesh.py): spread across configurations, and the"
          " worst error against MediaPipe of any configuration")
    iod = np.array([pose.inter_ocular_distance(lm) for lm in golden["landmarks"]])
    rows = []
    from videmo.extract.features.face_geometry import head_pose

    poses = [head_pose(m) for m in golden["matrix"]]
    expected = {"box": golden["det_box"], "kps": golden["det_keypoints"],
                "score": golden["det_score"], "blendshapes": golden["blendshapes"],
                "angles": np.array([(p.yaw, p.pitch, p.roll) for p in poses])}
    for key in ("box", "kps", "score", "blendshapes", "angles"):
        vals = [parity[c][key] for c in CONFIGS]
        rows.append((key, spread(vals), max(np.abs(v - expected[key]).max() for v in vals)))
    lm = [parity[c]["landmarks"] for c in CONFIGS]
    lm_spread = max((np.linalg.norm(v - lm[0], axis=2).mean(axis=1) / iod).max() for v in lm)
    lm_err = max((np.linalg.norm(v - golden["landmarks"], axis=2).mean(axis=1) / iod).max()
                 for v in lm)
    rows.append(("landmarks mean 3D / IOD", lm_spread, lm_err))
    mats = [parity[c]["matrix"] for c in CONFIGS]
    rows.append(("matrix rotation", spread([m[:, :3, :3] for m in mats]),
                 max(np.abs(m[:, :3, :3] - golden["matrix"][:, :3, :3]).max() for m in mats)))
    rows.append(("matrix translation cm", spread([m[:, :3, 3] for m in mats]),
                 max(np.abs(m[:, :3, 3] - golden["matrix"][:, :3, 3]).max() for m in mats)))
    print(f"| {'quantity':28} | {'spread':>10} | {'worst error':>11} |")
    for name, s, e in rows:
        print(f"| {name:28} | {s:10.3g} | {e:11.3g} |")

    print("\n## frame-model golden inputs (tests/data/frame_models_golden.npz), recomputed from"
          " the stored crops")
    with np.load(REPO / "tests" / "data" / "frame_models_golden.npz") as g:
        stored = {k: g[k].astype(np.float64) for k in ("landmarks", "blendshapes")}
        stored["source"] = g["source"]
    for key in ("landmarks", "blendshapes"):
        vals = [inputs[c][key] for c in CONFIGS]
        print(f"{key}: spread {spread(vals):.3g}, worst vs stored "
              f"{max(np.abs(v - stored[key]).max() for v in vals):.3g}")
    print("sources equal to the stored ones in every configuration:",
          all((inputs[c]["source"] == stored["source"]).all() for c in CONFIGS))
    from videmo.extract.features import frame_model as FM
    for name in FM.FRAME_MODEL_FILES:
        model = FM.load_frame_model(name)
        probs = [model.predict_features(FM.features(model.card, inputs[c]["blendshapes"],
                                                    inputs[c]["landmarks"])) for c in CONFIGS]
        print(f"{name} probabilities on those inputs: spread {spread(probs):.3g}")

    print(f"\n## fer's quantized model (tests/test_fer_parity.py), {len(fer_faces())} faces")
    vals = [fer[c] for c in CONFIGS]
    flips = sum(int((np.round(v, 2) != np.round(vals[0], 2)).sum()) for v in vals)
    print(f"probability spread {spread(vals):.3g}; 2-decimal roundings that differ between "
          f"configurations: {flips}")

    print("\n## Keras frame models on the stored inputs: oneDNN on/off, batched/one by one")
    runs = {}
    for onednn in ("1", "0"):
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="3")
        done = subprocess.run([sys.executable, __file__, "--keras"], env=env, check=True,
                              capture_output=True, text=True)
        runs[onednn] = json.loads(done.stdout.strip().splitlines()[-1])
    golden_json = json.loads((REPO / "tests" / "data" / "frame_models_golden.json").read_text())
    for name in FM.FRAME_MODEL_FILES:
        vals = [np.array(runs[o][k]) for o in runs for k in (name, name + "/one-by-one")]
        rec = np.array(golden_json[name]["probabilities"])
        print(f"{name}: spread {spread(vals):.3g}, worst vs recorded "
              f"{max(np.abs(v - rec).max() for v in vals):.3g}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--keras"]:
        sys.path.insert(0, str(REPO))
        print(json.dumps(keras_probabilities()))
    else:
        main()
