"""Quantisation and entropy coding of the network's parameters.

Each tensor is quantised uniformly with its own step ``alpha * std(tensor)``
(``alpha / 4`` for tensors of fewer than 64 values, which are mostly biases)
and its integer symbols are coded with an asymmetric numeral system
(``constriction``'s ``AnsCoder``) under a quantised Gaussian model whose
spread is measured on the symbols and stored. ANS comes within a fraction of a
percent of the model's entropy, better than the Huffman coding of the paper.
One global ``alpha`` is searched by bisection so that the whole file lands on
the byte budget set by the requested ratio.
"""

import math
import numpy as np

from ..errors import ICAINRError

#: symbols are clipped to +-MAX_SYMBOL (a huge alpha range is never useful)
MAX_SYMBOL = 1 << 20
SMALL_TENSOR = 64


def quantize_tensor(values, alpha):
    """Return ``(symbols int32, step)`` for one tensor (a float array)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    spread = float(values.std()) if values.size > 1 else 0.0
    if spread == 0.0:
        spread = max(float(np.abs(values).max()) if values.size else 0.0, 1e-8)
    step = alpha * spread / (4.0 if values.size < SMALL_TENSOR else 1.0)
    symbols = np.clip(np.round(values / step), -MAX_SYMBOL, MAX_SYMBOL).astype(np.int32)
    return symbols, float(np.float32(step))


def _model(lo, hi, mean, std):
    import constriction

    return constriction.stream.model.QuantizedGaussian(int(lo), int(hi), float(mean), float(std))


def encode_symbols(symbols):
    """ANS-code an int32 array; returns ``(words uint32, entry)`` for the manifest."""
    import constriction

    lo, hi = int(symbols.min()), int(symbols.max())
    if lo == hi:  # a constant tensor needs no payload
        return np.zeros(0, np.uint32), {"lo": lo, "hi": hi, "mean": 0.0, "std": 1.0, "words": 0}
    mean = float(np.float32(symbols.mean()))
    std = float(np.float32(max(symbols.std(), 0.3)))
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols, _model(lo, hi, mean, std))
    words = coder.get_compressed()
    return words, {"lo": lo, "hi": hi, "mean": mean, "std": std, "words": int(words.size)}


def _finite(value):
    """A finite real number (a Python int too large for a float is not)."""
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(float(value))
    except OverflowError:
        return False


def decode_symbols(words, entry, count, source):
    """Inverse of ``encode_symbols``; ``count`` is the tensor's (validated) size."""
    import constriction

    lo, hi = int(entry["lo"]), int(entry["hi"])
    if not -MAX_SYMBOL <= lo <= hi <= MAX_SYMBOL:
        raise ICAINRError(source, "a weight tensor has an invalid symbol range")
    if lo == hi:
        return np.full(count, lo, dtype=np.int32)
    std, mean = entry["std"], entry["mean"]
    if not (_finite(std) and _finite(mean) and 0.0 < float(std) < 1e7):
        raise ICAINRError(source, "a weight tensor has an invalid entropy model")
    try:
        coder = constriction.stream.stack.AnsCoder(np.ascontiguousarray(words, np.uint32))
        symbols = coder.decode(_model(lo, hi, float(mean), float(std)), count)
    except Exception:
        raise ICAINRError(source, "the weight section cannot be decoded") from None
    return np.asarray(symbols, dtype=np.int32)


def encode_state(state, alpha):
    """Quantise and code a ``{name: float array}`` mapping.

    Returns ``(payload bytes, manifest list, dequantised {name: array})``; the
    dequantised values are exactly what the decoder will rebuild.
    """
    manifest, chunks, decoded = [], [], {}
    for name, values in state.items():
        values = np.asarray(values)
        symbols, step = quantize_tensor(values, alpha)
        words, entry = encode_symbols(symbols)
        entry.update(name=name, shape=list(values.shape), step=step)
        manifest.append(entry)
        chunks.append(words.astype("<u4").tobytes())
        decoded[name] = (symbols.astype(np.float64) * step).astype(np.float32).reshape(values.shape)
    return b"".join(chunks), manifest, decoded


#: every manifest entry's fields and their types (checked before anything is decoded)
ENTRY_FIELDS = {"name": str, "shape": list, "step": float, "lo": int, "hi": int,
                "mean": float, "std": float, "words": int}


def check_manifest(manifest, source):
    """The weight manifest from an untrusted header: a list of entries, each with exactly
    ``ENTRY_FIELDS`` of the right types, finite numbers and distinct names."""
    def bad(what):
        return ICAINRError(source, f"the weight manifest is malformed ({what})")

    if not isinstance(manifest, list) or len(manifest) > 256:
        raise bad("not a list of at most 256 entries")
    for entry in manifest:
        if not isinstance(entry, dict) or set(entry) != set(ENTRY_FIELDS):
            raise bad("an entry does not have the expected fields")
        for key, kind in ENTRY_FIELDS.items():
            value = entry[key]
            if isinstance(value, bool):
                raise bad(f"{key} is a boolean")
            if kind is float:
                if not isinstance(value, (int, float)) or not _finite(value):
                    raise bad(f"{key} is not a finite number")
            elif kind is int:
                if not isinstance(value, int) or abs(value) > 1 << 40:
                    raise bad(f"{key} is not an integer")
            elif not isinstance(value, kind):
                raise bad(f"{key} is not a {kind.__name__}")
        if len(entry["name"]) > 128 or len(entry["shape"]) > 8 or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 1 << 31
                for d in entry["shape"]):
            raise bad("a name or shape is implausible")
    if len({e["name"] for e in manifest}) != len(manifest):
        raise bad("a weight is named twice")
    return manifest


def decode_state(payload, manifest, expected_shapes, source):
    """Rebuild ``{name: float32 array}``; every shape must match ``expected_shapes``."""
    check_manifest(manifest, source)
    names = [entry.get("name") for entry in manifest]
    if sorted(names) != sorted(expected_shapes):
        raise ICAINRError(source, "the weight manifest does not match the network")
    total_words = sum(int(entry["words"]) for entry in manifest)
    if total_words * 4 != len(payload) or any(int(e["words"]) < 0 for e in manifest):
        raise ICAINRError(source, "the weight section has the wrong size")
    words = np.frombuffer(payload, dtype="<u4")
    state, offset = {}, 0
    for entry in manifest:
        shape = tuple(int(s) for s in entry["shape"])
        if shape != tuple(expected_shapes[entry["name"]]):
            raise ICAINRError(source, f"weight {entry['name']} has shape {shape}, "
                                      f"expected {tuple(expected_shapes[entry['name']])}")
        n = int(entry["words"])
        count = int(np.prod(shape))
        step = float(entry["step"])
        if not (np.isfinite(step) and step > 0):
            raise ICAINRError(source, f"weight {entry['name']} has an invalid step")
        symbols = decode_symbols(words[offset:offset + n], entry, count, source)
        offset += n
        state[entry["name"]] = (symbols.astype(np.float64) * step).astype(np.float32).reshape(shape)
    return state
