"""The ICA-INR codec: NIfTI -> ``.icainr`` -> NIfTI. Imports no Nipype."""

from .api import compress, decompress, info
from .errors import ICAINRError

__all__ = ["compress", "decompress", "info", "ICAINRError"]
