"""The whole-run model: the stored array coded exactly, or with every value within a bound.

``--lossless`` gives back the stored array bit for bit (integers, and the bit
patterns of floats); ``--max-error E`` keeps every value within E (physical
units) by quantising in a closed loop; a ratio target that a lossless coding
reaches is written losslessly (the lossless floor). Modules: ``coder`` (the
predictors and entropy coders), ``model`` (the ``RunModel``).
"""

from .model import LosslessModel

__all__ = ["LosslessModel"]
