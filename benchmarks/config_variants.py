"""The codec under configuration overrides, one run: PSNR and connectivity per variant.

Usage::

    python benchmarks/config_variants.py RUN.nii.gz --ratios 50,100 \
        '{}' '{"dead_zone": 0.1}' '{"max_components": 160}'

Each variant is a JSON object of configuration keys over the ``default`` preset
(``icainr --config`` takes the same keys); ``{}`` is the preset itself, and an
override makes a configuration the file records whole, as ``--config`` does. For every ratio and variant the run is
coded and decoded with the benchmark's harness (``nipype_icainr.bench``: the
same encoder call in a child process and the same QC metrics as ``icainr bench``) and one line is printed:
achieved ratio, PSNR in the brain mask, FCA mean |dr| under k-means and
spatially compact parcels (and Power spheres for an MNI-space run), the mean
signed dr (``r_decoded - r_original``, positive when the decoded regions are
more alike than the original's) and the share of region pairs whose
correlation went up, then the model. For trying a quantiser or search setting
on a few runs before re-running the corpus benchmark.
"""

import argparse
import json
import math
import os
import tempfile

import numpy as np


def _signed(ref, key, decoded_img):
    """``(mean dr, share of pairs with dr > 0)`` for one FCA metric's regions."""
    from nipype_icainr.qc.connectivity import fca_from_signals, region_signals

    rr = ref.refs[key]
    if rr.get("signals") is None:
        return math.nan, math.nan
    s_dec = region_signals(decoded_img, ref.ctx.mask_img(), rr["labels"], rr["coords"])
    res = fca_from_signals(rr["signals"], s_dec)
    upper = np.triu_indices(res["r_original"].shape[0], 1)
    dr = res["r_decoded"][upper] - res["r_original"][upper]
    return float(dr.mean()), float((dr > 0).mean())


def main(argv=None):
    from nipype_icainr.bench.data import load_input
    from nipype_icainr.bench.measure import compress_in_child, decompress_in_child
    from nipype_icainr.bench.reference import Reference

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="4D NIfTI")
    parser.add_argument("variants", nargs="*", default=["{}"],
                        help="JSON objects of configuration overrides (default: {})")
    parser.add_argument("--ratios", default="100", help="comma-separated target ratios")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_intermixed_args(argv)
    variants = [json.loads(v) for v in args.variants]
    ratios = [float(r) for r in args.ratios.split(",")]

    inp = load_input(args.run)
    ref = Reference(inp, None, metrics=["psnr", "fca", "fca_compact", "fca_power"])
    fca_keys = [k for k in ("fca", "fca_compact", "fca_power") if k in ref.refs]
    with tempfile.TemporaryDirectory(prefix="icainr-variants-") as tmp:
        data_path, mask_path = os.path.join(tmp, "data.npy"), os.path.join(tmp, "mask.npy")
        payload, decoded_path = os.path.join(tmp, "payload"), os.path.join(tmp, "decoded.npy")
        np.save(data_path, inp.data)
        np.save(mask_path, inp.mask)
        for ratio in ratios:
            for cfg in variants:
                # "{}" is the preset itself; any override is a "custom" configuration,
                # which the file records whole (a longer header, so fewer bytes for the
                # model at the same ratio), as with icainr --config
                context = dict(inp.context(), seed=args.seed, icainr_config=cfg or None)
                comp = compress_in_child("icainr", context, data_path, mask_path,
                                         {"ratio": ratio}, payload)
                decompress_in_child("icainr", context, payload, decoded_path)
                decoded = inp.as_written(np.load(decoded_path))
                columns, _, _ = ref.compare(decoded)
                img = ref.ctx.decoded(values=decoded).img
                parts = [f"{ratio:g}x {json.dumps(cfg)}",
                         f"ratio {inp.raw_bytes / comp['bytes']:.1f}",
                         f"PSNR {columns.get('psnr_db', math.nan):.2f} dB"]
                for key in fca_keys:
                    if columns.get(key + "_mean_abs_dr") is None:  # e.g. too few spheres
                        continue
                    mean_dr, share_up = _signed(ref, key, img)
                    parts.append(f"{key} {columns[key + '_mean_abs_dr']:.4f} "
                                 f"(dr {mean_dr:+.4f}, {share_up:.0%} up)")
                parts.append(comp["info"].get("model", ""))
                print(" | ".join(parts), flush=True)


if __name__ == "__main__":
    main()
