"""The protobuf wire format, read by hand: enough for the few model metadata files videmo reads
(the face landmarker's geometry metadata; YuNet's ONNX graph in scripts/yunet_tflite.py)
without a protobuf or onnx dependency."""

from __future__ import annotations

from collections.abc import Iterator


def varint(buf: bytes, i: int) -> tuple[int, int]:
    """The base-128 varint at ``buf[i]`` and the offset after it."""
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def fields(buf: bytes, where: str = "protobuf message",
           error: type[Exception] = ValueError) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of one message: an int for varints, the
    bytes for 64-bit, length-delimited and 32-bit fields. Groups (wire types 3, 4) raise
    ``error`` naming ``where``."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            size, i = varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise error(f"{where}: unsupported protobuf wire type {wire}")
        yield number, wire, value
