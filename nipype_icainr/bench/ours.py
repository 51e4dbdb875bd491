"""The ICA-INR codec itself, through its array-level core.

``encode`` is ``nipype_icainr.codec.core.encode`` on the array it is given,
with the image description the codec would store for the source file (stored
dtype, scaling, header: ``BenchInput.context()["image"]``), at the target
ratio; the payload is the whole ``.icainr`` file's bytes, every byte counted.
``decode`` is ``core.decode`` of those bytes. The codec sizes itself to the
ratio, so there is no knob search: the knob is the target ratio, and the
achieved ratio is what is reported.

* ``icainr``: preset ``default`` (the CPU preset).
* ``icainr-decoding``: preset ``decoding`` (the default factorization keeping
  the most components within 0.5 dB of the best PSNR; for MVPA).
* ``icainr-glm``: preset ``glm`` (the fewest components within 0.5 dB of the best
  PSNR; for GLM t-maps).
* ``icainr-paper``: preset ``paper``; listed only when
  ``torch.cuda.is_available()`` (it is meant for a GPU).

Context: ``image`` (required), ``icainr_config`` (an optional overrides dict,
used by the tests to make a fit short), ``seed`` (default 0).
"""

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
        from ..codec import core
        from ..codec.config import resolve_config

        data = check_array(data)
        image = self.context.get("image")
        if not image:
            raise ValueError("icainr needs the run's image description (context 'image')")
        if list(data.shape) != list(image["shape"]):
            raise ValueError(f"array shape {data.shape} is not the source's {image['shape']}")
        cfg = resolve_config(self.preset, self.context.get("icainr_config"))
        n_raw = core.raw_bytes(data.shape, image["dtype"])
        enc = core.encode(np.asarray(data, dtype=np.float64), image, cfg,
                          n_raw / float(knob["ratio"]), seed=int(self.context.get("seed", 0)),
                          measure=False, source=image.get("source_name"))
        self.last_info = {"codec_ratio": n_raw / len(enc.blob), "fit_seconds": enc.fit_seconds,
                          "device": enc.device, "model": enc.describe()}
        return enc.blob

    def decode(self, payload):
        from ..codec import core

        reconstruction, _ = core.decode(bytes(payload), "payload")
        return reconstruction.values()


class ICAINRDecoding(ICAINR):
    name = "icainr-decoding"
    preset = "decoding"
    knob_doc = "none: the codec fits the target ratio itself (preset decoding)"


class ICAINRGLM(ICAINR):
    name = "icainr-glm"
    preset = "glm"
    knob_doc = "none: the codec fits the target ratio itself (preset glm)"


class ICAINRPaper(ICAINR):
    name = "icainr-paper"
    preset = "paper"
    knob_doc = "none: the codec fits the target ratio itself (preset paper, GPU)"
