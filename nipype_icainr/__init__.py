"""nipype-icainr: ICA-INR compression of 4D fMRI, with Nipype interfaces and a BIDS App.

The codec (``nipype_icainr.codec``) needs no Nipype; ``compress``, ``decompress``
and ``info`` are re-exported here.
"""

__version__ = "0.2.0"

from .codec.api import compress, decompress, info  # noqa: E402
from .codec.errors import ICAINRError  # noqa: E402

__all__ = ["__version__", "compress", "decompress", "info", "ICAINRError"]
