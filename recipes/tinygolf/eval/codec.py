"""The int8 + zlib artifact format of the tinygolf recipe (evaluator-owned).

`encode(state_dict)` quantizes a model's state_dict and compresses it;
`decode(blob)` inverts it. Used on both sides of the round trip: by the
train-phase driver (golf_run.py, which prepare.py copies with this file into
the train data folder) to write `model.int8.zlib`, by the eval phase
(predict.py) to load it, and by the host (score.py) to check it. Pure numpy + zlib + json: decoding never unpickles anything.

Quantization:
  * float tensors with 2+ dims: int8 per row (first dim), one float16 scale
    per row, scale = absmax(row) / 127, q = round(w / scale) in [-127, 127];
  * float tensors with 0-1 dims: int8 per tensor, one float16 scale;
  * other dtypes (int buffers, bools): stored raw;
  * a tensor that aliases an earlier one (tied weights) is stored once.

Layout before compression: b"TGQ1", uint32 (little endian) header length,
the header (JSON: one entry per state_dict key, in order), then each entry's
scales (float16) and values (int8, or the raw bytes), in header order.
Compressed with zlib level 9.
"""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np

MAGIC = b"TGQ1"
MAX_DECODED_BYTES = 64 * 2**20  # refuse to inflate more than this (zip bombs)
_RAW_DTYPES = {"int8", "int16", "int32", "int64", "uint8", "bool"}


def _scale_and_q(w: np.ndarray, axis_rows: bool) -> tuple[np.ndarray, np.ndarray]:
    flat = w.reshape(w.shape[0], int(np.prod(w.shape[1:]))) if axis_rows else w.reshape(1, w.size)
    absmax = np.abs(flat).max(axis=1) if flat.shape[1] else np.zeros(flat.shape[0])
    scale = (absmax / 127.0).astype(np.float16)
    safe = np.where(scale.astype(np.float32) > 0, scale.astype(np.float32), 1.0)
    q = np.clip(np.round(flat / safe[:, None]), -127, 127).astype(np.int8)
    return scale, q.reshape(w.shape)


def encode(state_dict) -> bytes:
    """Quantize and compress a {name: torch.Tensor} state_dict."""
    header, chunks, seen = [], [], {}
    for name, tensor in state_dict.items():
        t = tensor.detach().cpu()
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), str(t.dtype))
        if key in seen:
            header.append({"name": name, "alias": seen[key]})
            continue
        seen[key] = name
        dtype = str(t.dtype).removeprefix("torch.")
        shape = list(t.shape)
        if t.is_floating_point():
            w = t.float().numpy()
            rows = w.ndim >= 2
            scale, q = _scale_and_q(w, rows)
            header.append({"name": name, "dtype": dtype, "shape": shape, "kind": "row" if rows else "tensor"})
            chunks += [scale.tobytes(), q.tobytes()]
        else:
            if dtype not in _RAW_DTYPES:
                raise ValueError(f"{name}: cannot store dtype {dtype}")
            header.append({"name": name, "dtype": dtype, "shape": shape, "kind": "raw"})
            chunks.append(np.ascontiguousarray(t.numpy()).tobytes())
    head = json.dumps(header, separators=(",", ":")).encode()
    return zlib.compress(MAGIC + struct.pack("<I", len(head)) + head + b"".join(chunks), 9)


def decode(blob: bytes) -> dict[str, np.ndarray]:
    """{name: float32 (dequantized) or raw numpy array}; ValueError when the blob is not in this format."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(blob, MAX_DECODED_BYTES)
    except zlib.error as exc:
        raise ValueError(f"not a zlib stream: {exc}") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"inflates to more than {MAX_DECODED_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise ValueError("the zlib stream is truncated or followed by extra bytes")
    if data[:4] != MAGIC or len(data) < 8:
        raise ValueError("bad magic: not an int8 artifact of this recipe")
    (n_head,) = struct.unpack("<I", data[4:8])
    try:
        header = json.loads(data[8 : 8 + n_head])
    except ValueError:
        raise ValueError("the header is not JSON") from None
    if not isinstance(header, list):
        raise ValueError("the header must be a list of entries")
    pos, out = 8 + n_head, {}
    for entry in header:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name in out:
            raise ValueError(f"bad or repeated entry name {name!r}")
        if set(entry) == {"name", "alias"}:
            if entry["alias"] not in out:
                raise ValueError(f"{name}: alias of unknown entry {entry['alias']!r}")
            out[name] = out[entry["alias"]]
            continue
        if set(entry) != {"name", "dtype", "shape", "kind"}:
            raise ValueError(f"{name}: unexpected fields {sorted(entry)}")
        shape, kind, dtype = entry["shape"], entry["kind"], entry["dtype"]
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ValueError(f"{name}: bad shape {shape!r}")
        count = int(np.prod(shape)) if shape else 1
        if kind in ("row", "tensor"):
            if dtype not in ("float32", "float16", "bfloat16", "float64"):
                raise ValueError(f"{name}: kind {kind} needs a float dtype, got {dtype!r}")
            if kind == "row" and len(shape) < 2:
                raise ValueError(f"{name}: per-row scales need 2+ dims, got shape {shape}")
            if kind == "tensor" and len(shape) >= 2:
                raise ValueError(f"{name}: tensors with 2+ dims are quantized per row")
            n_scales = shape[0] if kind == "row" else 1
            scales = np.frombuffer(data, np.float16, n_scales, pos).astype(np.float32) if n_scales else np.zeros(0, np.float32)
            pos += 2 * n_scales
            if pos + count > len(data):
                raise ValueError(f"{name}: truncated values")
            q = np.frombuffer(data, np.int8, count, pos)
            pos += count
            if q.size and (q.min() < -127):
                raise ValueError(f"{name}: int8 value -128 is outside [-127, 127]")
            if not np.all(np.isfinite(scales)) or np.any(scales < 0):
                raise ValueError(f"{name}: scales must be finite and >= 0")
            rows = q.reshape(n_scales, -1) if n_scales else q.reshape(0, 0)
            out[name] = (rows.astype(np.float32) * scales[:, None]).reshape(shape)
        elif kind == "raw":
            if dtype not in _RAW_DTYPES:
                raise ValueError(f"{name}: raw storage is only for integer/bool buffers, got {dtype!r}")
            np_dtype = np.dtype(dtype)
            n_bytes = count * np_dtype.itemsize
            if pos + n_bytes > len(data):
                raise ValueError(f"{name}: truncated values")
            out[name] = np.frombuffer(data, np_dtype, count, pos).reshape(shape).copy()
            pos += n_bytes
        else:
            raise ValueError(f"{name}: unknown kind {kind!r}")
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} trailing bytes after the last tensor")
    return out
