"""Nipype workflow factories (``init_*_wf``): registration -> compress -> decompress -> QC.

Not written yet: this package is reserved by the repository layout and is built
by the Nipype-workflow issue. The codec (``nipype_icainr.codec``) works without it.
"""
