"""The explicitly coded factorization: voxel maps x activation patterns.

The mean-removed masked series ``X`` (N voxels x T) is approximated by
``A P`` with ``A`` (N x K) the voxel weights and ``P`` (K x T) the activation
patterns, both quantised and entropy coded:

* Basis: the K leading principal axes of ``X`` (``P`` rows orthonormal,
  ``A = X P^T``). On the studyforrest run the principal basis coded 4 % smaller
  than an ICA rotation of the same subspace (590 vs 615 kB for K = 40 at the
  same step), so the coded basis is PCA; ICA stays the paper preset's
  initialisation.
* Quantisation with one step ``d`` for every coefficient in the energy domain
  (reverse water-filling): map entries get step ``d``; pattern row k gets step
  ``d / ||A_k||`` because an error there is spread over the map's energy.
  Components whose entries fall below ``d/2`` cost almost nothing, so K and
  ``d`` are searched together for the best error at the byte budget.
* After the maps are quantised the patterns are refitted to them by least
  squares (they are the learnable K x T matrix), then quantised in the
  temporal DCT domain (orthonormal DCT-II, so the step keeps its meaning): a
  BOLD time course's energy sits in its low frequencies, so most of the high
  ones round to zero. On the Haxby slice (T = 1452, K = 100, map step 80, with
  the dead zone of 0.1 step the quantiser then had) the section took 24,404
  bytes instead of 34,896 for 6.7 % more squared error
  (``benchmarks/pattern_coding.py``; format 3, format 2 coded time samples).
  Maps and patterns are rounded plainly now (``quantise.DEAD_ZONE``).
* Reconstruction (format 6): the decoder moves each map entry towards the mean
  of its decoded neighbours, inside its quantisation cell, by one weight per
  component fitted by the encoder (``neighbours``); the patterns are refitted to
  the moved maps. Most entries of the weaker components round to zero at a
  coarse step, and a region's average of them with it; the neighbours restore
  part of it (studyforrest at 100x: +0.26 dB, FCA under k-means parcels 0.0392
  -> 0.0316, ``benchmarks/config_variants.py``).
* Entropy coding (constriction's ANS coder, quantised Laplace models): voxels
  are split in a checkerboard by ``(x + y + z) % 2``. Even voxels are coded
  first with a zero-mean Laplace of one scale per component; each odd voxel is
  coded with a Laplace centred on ``a_k`` x the mean of its (even) 6-neighbours
  and with scale ``c0_k + c1_k`` x their mean magnitude, which the decoder
  knows. Fitted per component and stored; measured 9 % smaller than one
  histogram per component on the studyforrest maps. Pattern coefficients are
  coded with a zero-mean Laplace whose scale is set per octave of frequency
  (0, 1, 2-3, 4-7, ... cycles) from one stored byte per band
  (``MIN_SCALE * 2 ** (code / 8)``). Since format 5 the maps' models are rounded
  onto a grid (scale to a quarter octave, mean to an eighth of a unit) and every
  symbol of one grid cell is coded with one categorical table built from
  integers (``tables``): map decoding on studyforrest 1.13 -> 0.37 s, the same
  PSNR at equal size within a few hundredths of a dB.
* Regional layer (format 7): about 8 % of the file holds the block averages
  (blocks of 4 x 4 x 4 voxels) of what the factorization leaves out, coarsely quantised
  and coded with JPEG XL; the decoder adds them to every voxel of the block.
  The truncation error is spatially coherent and moves region averages; on a
  skull-stripped run at 200x the layer cut the connectivity error under compact
  parcels fourfold at the same PSNR (``regional``).

Modules: ``basis`` (PCA), ``context`` (what the coder conditions on),
``quantise`` (steps, DCT, refit), ``neighbours`` (the maps' reconstruction),
``regional`` (the block averages of the residual),
``coding`` (ANS coding and the section layout), ``tables`` (the maps' coding tables),
``search`` (K and the step for a budget), ``model`` (the ``SeriesModel``).
"""

from .basis import principal_basis
from .coding import (MAX_COMPONENTS, PARAMS, TRANSFORMS, decode_factors, encode_factors, pack,
                     pattern_bands, unpack)
from .context import Activity, Checkerboard
from .model import FactorModel
from .quantise import dequantize, quantize_maps, to_frequency, to_time
from . import neighbours, regional
from .search import code_at_step, fit_to_budget, survey_step

__all__ = ["Activity", "Checkerboard", "FactorModel", "MAX_COMPONENTS", "PARAMS", "TRANSFORMS",
           "neighbours", "regional",
           "code_at_step", "decode_factors", "dequantize", "encode_factors", "fit_to_budget",
           "pack", "pattern_bands", "principal_basis", "quantize_maps", "survey_step",
           "to_frequency", "to_time", "unpack"]
