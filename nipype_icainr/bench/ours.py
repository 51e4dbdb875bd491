"""The ICA-INR codec itself, through its public API.

``encode`` runs ``nipype_icainr.codec.api.compress`` on the *source file* (the
codec reads the NIfTI itself: its header, stored dtype and scaling) at the
target ratio, and the payload is the ``.icainr`` file's bytes, every byte
counted; ``decode`` is ``nipype_icainr.codec.api.decode_array`` on those
bytes. The codec sizes itself to the ratio, so there is no knob search: the
knob is the target ratio, and the achieved ratio is what is reported.

* ``icainr``: preset ``default`` (the CPU preset).
* ``icainr-decoding``: preset ``decoding`` (the default factorization keeping
  the most components within 0.5 dB of the best PSNR; for MVPA).
* ``icainr-paper``: preset ``paper``; listed only when
  ``torch.cuda.is_available()`` (it is meant for a GPU).

Context: ``source_path`` (required), ``shape`` (checked against the array),
``icainr_config`` (an optional overrides dict for ``compress``'s ``config``,
used by the tests to make the fit short), ``seed`` (default 0).
"""

import os
import tempfile

import numpy as np

from .methods import Method, check_array
from .search import Choice


class ICAINR(Method):
    name = "icainr"
    preset = "default"
    knob_doc = "none: the codec fits the target ratio itself (preset default)"

    def label(self, knob):
        return f"target {knob['ratio']:g}, preset {self.preset}"

    def search(self, data, mask, target_ratio, raw_bytes, quality):
        return Choice(knob={"ratio": float(target_ratio)}, n_bytes=None,
                      note=f"preset {self.preset}; sized by the codec")

    def encode(self, data, mask, knob):
        from ..codec.api import compress

        data = check_array(data)
        source = self.context.get("source_path")
        if not source or not os.path.isfile(source):
            raise ValueError("icainr needs the source NIfTI (context 'source_path')")
        expected = self.context.get("shape")
        if expected is not None and list(data.shape) != list(expected):
            raise ValueError(f"array shape {data.shape} is not the source's {expected}")
        with tempfile.TemporaryDirectory(prefix="icainr-bench-") as tmp:
            out = os.path.join(tmp, "run.icainr")
            res = compress(source, out, ratio=float(knob["ratio"]), preset=self.preset,
                           config=self.context.get("icainr_config"),
                           seed=int(self.context.get("seed", 0)), measure=False)
            with open(out, "rb") as fh:
                blob = fh.read()
        self.last_info = {"codec_ratio": res.get("ratio"), "warnings": res.get("warnings"),
                          "fit_seconds": res.get("fit_seconds"), "device": res.get("device")}
        return blob

    def decode(self, payload):
        from ..codec.api import decode_array

        with tempfile.TemporaryDirectory(prefix="icainr-bench-") as tmp:
            path = os.path.join(tmp, "run.icainr")
            with open(path, "wb") as fh:
                fh.write(payload)
            values, _desc = decode_array(path)
        return np.asarray(values, dtype=np.float64)


class ICAINRDecoding(ICAINR):
    name = "icainr-decoding"
    preset = "decoding"
    knob_doc = "none: the codec fits the target ratio itself (preset decoding)"


class ICAINRPaper(ICAINR):
    name = "icainr-paper"
    preset = "paper"
    knob_doc = "none: the codec fits the target ratio itself (preset paper, GPU)"
