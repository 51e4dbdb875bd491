"""Nipype interfaces wrapping the codec, the QC metrics and the report.

Import them into any Nipype workflow::

    from nipype_icainr.interfaces import ICAINRCompress, ICAINRDecompress
"""

from .codec import ICAINRCompress, ICAINRDecompress
from .qc import ConnectivityQC, DecodingQC, FirstLevelQC, QCMetric
from .report import QCReport

__all__ = ["ICAINRCompress", "ICAINRDecompress", "FirstLevelQC", "ConnectivityQC",
           "DecodingQC", "QCMetric", "QCReport"]
