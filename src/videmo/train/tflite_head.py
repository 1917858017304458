"""A new last layer on a TFLite network's own tensors: the flatbuffer edits behind ``pixels_real``.

The shipped pixel model (``models/pixels.tflite``) is three int8 networks in one graph, each
ending in global average pooling (256 values), a dense softmax layer, and the mean of the three.
``pixels_real`` keeps the three networks' weights and replaces their last layers with one
float layer fitted on real photos + FER2013 (``scripts/train_pixels_real.py``). The edits:

- :func:`with_outputs`: the same graph, its outputs replaced by the given tensors (the pooled
  vectors), every operator they do not need removed. Run with LiteRT's default (XNNPACK)
  kernels it gives the features exactly as the final file computes them: the head is fitted
  on these, not on a debugging path's.
- :func:`with_dense_head`: the pooled tensors dequantised, concatenated, one float
  ``FULLY_CONNECTED`` layer and a softmax appended as the only output (the standardisation of
  the features folded into the weights by :func:`fold_standardisation`).

TensorFlow's flatbuffer object API (``tensorflow.lite.tools.flatbuffer_utils``) reads and
writes the file: a training-time dependency; the result runs on ai-edge-litert alone.
"""

from __future__ import annotations

import numpy as np


def _schema():
    from tensorflow.lite.python import schema_py_generated as fb
    from tensorflow.lite.tools import flatbuffer_utils as fu

    return fb, fu


def _needed(subgraph, outputs: list[int]) -> list:
    """The operators of ``subgraph`` that ``outputs`` depend on, in their original order."""
    producer = {int(t): i for i, op in enumerate(subgraph.operators) for t in op.outputs}
    keep: set[int] = set()
    todo = [int(t) for t in outputs]
    while todo:
        t = todo.pop()
        i = producer.get(t)
        if i is None or i in keep:
            continue
        keep.add(i)
        todo.extend(int(x) for x in subgraph.operators[i].inputs if int(x) >= 0)
    return [op for i, op in enumerate(subgraph.operators) if i in keep]


def _set_outputs(model, outputs: list[int], names: list[str]) -> None:
    sg = model.subgraphs[0]
    sg.outputs = np.array(outputs, np.int32)
    sg.operators = _needed(sg, outputs)
    if model.signatureDefs:
        fb, _ = _schema()
        sig = model.signatureDefs[0]
        sig.outputs = []
        for name, index in zip(names, outputs, strict=True):
            t = fb.TensorMapT()
            t.name, t.tensorIndex = name, int(index)
            sig.outputs.append(t)


def with_outputs(model_bytes: bytes, tensors: list[int]) -> bytes:
    """``model_bytes`` with ``tensors`` (indices of subgraph 0) as its outputs, pruned."""
    _, fu = _schema()
    model = fu.read_model_from_bytearray(bytearray(model_bytes))
    _set_outputs(model, list(tensors), [f"pooled_{i}" for i in range(len(tensors))])
    return bytes(fu.convert_object_to_bytearray(model))


def fold_standardisation(coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray,
                         scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``coef @ ((x - mean) / scale) + intercept`` as ``w @ x + b``: returns (w, b)."""
    w = coef / scale[None, :]
    return w.astype(np.float32), (intercept - w @ mean).astype(np.float32)


def _opcode(model, builtin: int, version: int = 1) -> int:
    fb, _ = _schema()
    for i, code in enumerate(model.operatorCodes):
        if code.builtinCode == builtin:
            return i
    code = fb.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _tensor(model, name: str, shape: list[int], data: np.ndarray | None = None) -> int:
    """A new float32 tensor of subgraph 0 (a constant when ``data`` is given); its index."""
    fb, _ = _schema()
    buf = fb.BufferT()
    if data is not None:
        buf.data = np.frombuffer(np.ascontiguousarray(data, np.float32).tobytes(), np.uint8)
    model.buffers.append(buf)
    t = fb.TensorT()
    t.name, t.type, t.buffer = name.encode(), fb.TensorType.FLOAT32, len(model.buffers) - 1
    t.shape = np.array([1 if d < 0 else d for d in shape], np.int32)
    t.shapeSignature = np.array(shape, np.int32)
    sg = model.subgraphs[0]
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _op(model, builtin: int, inputs: list[int], outputs: list[int], options_type: int = 0,
        options=None) -> None:
    fb, _ = _schema()
    op = fb.OperatorT()
    op.opcodeIndex = _opcode(model, builtin)
    op.inputs, op.outputs = np.array(inputs, np.int32), np.array(outputs, np.int32)
    op.builtinOptionsType, op.builtinOptions = options_type, options
    model.subgraphs[0].operators.append(op)


def with_dense_head(model_bytes: bytes, pooled: list[int], weights: np.ndarray,
                    bias: np.ndarray, prefix: str = "real_head") -> bytes:
    """``model_bytes`` whose only output is ``softmax(weights @ concat(pooled) + bias)``.

    ``pooled``: tensor indices (int8 or float, each (batch, k)); ``weights`` (classes,
    sum of k), ``bias`` (classes,). Operators that only fed the old outputs are removed.
    """
    fb, fu = _schema()
    model = fu.read_model_from_bytearray(bytearray(model_bytes))
    sg = model.subgraphs[0]
    floats = []
    for i, t in enumerate(pooled):
        src = sg.tensors[t]
        width = int(src.shape[-1])
        if src.type == fb.TensorType.FLOAT32:
            floats.append(int(t))
            continue
        out = _tensor(model, f"{prefix}/features_{i}", [-1, width])
        _op(model, fb.BuiltinOperator.DEQUANTIZE, [int(t)], [out])
        floats.append(out)
    total = sum(int(sg.tensors[t].shape[-1]) for t in floats)
    n_out = int(weights.shape[0])
    if weights.shape != (n_out, total) or bias.shape != (n_out,):
        raise ValueError(f"head weights {weights.shape} and bias {bias.shape} do not fit "
                         f"{total} pooled values")
    cat = _tensor(model, f"{prefix}/features", [-1, total])
    concat = fb.ConcatenationOptionsT()
    concat.axis = 1
    _op(model, fb.BuiltinOperator.CONCATENATION, floats, [cat],
        fb.BuiltinOptions.ConcatenationOptions, concat)
    w = _tensor(model, f"{prefix}/weights", [n_out, total], weights)
    b = _tensor(model, f"{prefix}/bias", [n_out], bias)
    logits = _tensor(model, f"{prefix}/logits", [-1, n_out])
    _op(model, fb.BuiltinOperator.FULLY_CONNECTED, [cat, w, b], [logits],
        fb.BuiltinOptions.FullyConnectedOptions, fb.FullyConnectedOptionsT())
    probs = _tensor(model, f"{prefix}/softmax", [-1, n_out])
    softmax = fb.SoftmaxOptionsT()
    softmax.beta = 1.0
    _op(model, fb.BuiltinOperator.SOFTMAX, [logits], [probs],
        fb.BuiltinOptions.SoftmaxOptions, softmax)
    _set_outputs(model, [probs], ["output_0"])
    return bytes(fu.convert_object_to_bytearray(model))


class BatchedOutputs:
    """A grey-crop network's float outputs (int8 ones dequantised) for (n, 48, 48) crops, in
    batches of ``batch``, concatenated per crop: ``tensors`` (tensor details, e.g. the pooled
    vectors of a file loaded with ``experimental_preserve_all_tensors``) or the outputs."""

    def __init__(self, interpreter, tensors: list[dict] | None = None, batch: int = 64,
                 side: int = 48) -> None:
        self.it, self.batch, self.side = interpreter, batch, side
        self.tensors = tensors
        self.inp = interpreter.get_input_details()[0]["index"]
        self._size = -1

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(crops), self.batch):
            x = crops[start:start + self.batch]
            if len(x) != self._size:
                self.it.resize_tensor_input(self.inp, [len(x), self.side, self.side, 1])
                self.it.allocate_tensors()
                self._size = len(x)
            self.it.set_tensor(self.inp, x[..., None].astype(np.float32))
            self.it.invoke()
            parts = []
            for d in self.tensors or self.it.get_output_details():
                scale, zero = d["quantization"]
                v = self.it.get_tensor(d["index"]).astype(np.float32)
                parts.append((v - zero) * scale if scale else v)
            out.append(np.hstack(parts))
        return np.vstack(out)


def dense_softmax(x: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The appended head in numpy (what :func:`with_dense_head`'s file computes)."""
    z = x @ weights.T + bias
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
