"""Per-image outcomes as short text: one value per test image, in the test set's order, NaN where an image has none.

Every cell of a dataset is scored on the same first ``n_test`` test images, so two cells' per-image outcomes pair up
image by image (the paired variance of a difference). The evaluation writes them beside each metrics row
(``metrics.json``'s ``images``), the transfer job beside each target (``transfer.json``), the aggregate step into
``images.csv`` and ``transfer.csv``.

Two encodings, chosen by the values:

* ``b:<valid>:<ones>`` when every value is 0, 1 or NaN (accuracies, rates): ``valid`` = base64 of
  ``np.packbits(~isnan(values))``, ``ones`` = base64 of ``np.packbits(values == 1)`` (n/4 characters for n images);
* ``f:<data>`` otherwise: base64 of the values as little-endian float32 (a cosine, a confidence).

:func:`decode` needs ``n``, the number of values (packed bits are padded to a multiple of 8). Numpy and stdlib only:
the analysis imports it.
"""

from __future__ import annotations

import base64

import numpy as np

__all__ = ["decode", "encode"]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def encode(values) -> str:
    """A 1-d array of floats (NaN allowed) as text: ``b:`` for values in {0, 1, NaN}, else ``f:`` (float32)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"perimage.encode: expected a 1-d array, got shape {v.shape}")
    valid = ~np.isnan(v)
    if np.all((v[valid] == 0) | (v[valid] == 1)):
        return f"b:{_b64(np.packbits(valid).tobytes())}:{_b64(np.packbits(v == 1).tobytes())}"
    return f"f:{_b64(v.astype('<f4').tobytes())}"


def decode(text: str, n: int) -> np.ndarray:
    """The ``n`` values :func:`encode` wrote, as float64 (NaN where none); ValueError for text it did not write."""
    n = int(n)
    kind, _, rest = str(text).partition(":")
    try:
        if kind == "b":
            valid_txt, sep, ones_txt = rest.partition(":")
            if not sep:
                raise ValueError("two fields expected")
            bits = [np.unpackbits(np.frombuffer(base64.b64decode(t, validate=True), dtype=np.uint8))
                    for t in (valid_txt, ones_txt)]
            if any(len(b) < n or len(b) >= n + 8 for b in bits):
                raise ValueError(f"{len(bits[0])} / {len(bits[1])} bits for {n} values")
            valid, ones = bits[0][:n].astype(bool), bits[1][:n].astype(bool)
            out = ones.astype(np.float64)
            out[~valid] = np.nan
            return out
        if kind == "f":
            out = np.frombuffer(base64.b64decode(rest, validate=True), dtype="<f4").astype(np.float64)
            if len(out) != n:
                raise ValueError(f"{len(out)} values, expected {n}")
            return out
    except ValueError as e:  # binascii.Error is a ValueError
        raise ValueError(f"perimage.decode: not per-image values of {n} images ({e})") from None
    raise ValueError(f"perimage.decode: unknown encoding {kind!r} (expected 'b:' or 'f:')")
