"""Parameters of the predictive scheme, shared by the encoder and the decoder.

Changing any of them changes the stream: decoders only read streams written
with the same values.
"""

F16 = 16            # fixed-point precision of the per-voxel mean for ranges < 2**20
WQ = 12             # predictor weights are integers / 2**WQ
WMAX = 1 << 16      # bound of a predictor weight (encoder clips, decoder validates)
N0 = 8              # prior weight (in volumes) of the per-voxel scale prior
GSHIFT = 1          # mean grid g = 2**clip(qv // 2 + GSHIFT, 0, 12) (units 1/F)
NHIST = 6           # volumes of history
NF = 4              # fractional-prediction bins
NBC = 4             # classes of distance from the prediction to the data minimum
NG = NF * NBC       # groups (tables) per bucket
FRAC_MAX_B = 3.0    # fractional bins only for buckets whose Laplace scale is below this
ALPHA = 64          # prior pseudo-count of the adaptive tables
LCAP = 4096         # largest table half-width
K_MAX = 8           # temporal components of the low-rank predictor
LAMBDA = 10.0 * 256.0 ** 2   # ridge of the low-rank predictor
FIT_EVERY = 2       # the LS fit uses every 2nd volume (all of them for T < 40)
CB = 2.0            # counts kept on coarse bins of width floor(b / CB)
NCLS = 4            # predictor classes (quartiles of qv)
NBUCKET = 96
QV_MIN, QV_MAX = -24, 48
MAX_RANGE = 1 << 31          # hi - lo must be below this (else engine zstd)
PRIOR_BITS = 24              # fixed-point precision of the Laplace prior
NBITS = 41                   # escape bit lengths 0..40
LR_CLIP = 2.0 ** 26
MAX_ERROR = 1 << 30          # largest error bound (integer units)
