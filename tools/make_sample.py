"""Cut the bundled sample (a slab of the studyforrest run) from ../shared/data.

Run from the repository root: ``python tools/make_sample.py``. Keeps every
volume (the events stay valid), the int16 storage and the scl_slope of the
original, and a correct affine for the cut.
"""

import json
import os
import shutil
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.getcwd())
from nipype_icainr.io import describe_image, write_described  # noqa: E402

SRC = "../shared/data/studyforrest"
DST = "nipype_icainr/data/sample/studyforrest-slab"
RUN = "sub-02/func/sub-02_task-oneback_run-1"
CUT = (slice(16, 62), slice(4, 66), slice(13, 21))  # brain bounding box in x, y; 8 mid slices

img = nib.load(f"{SRC}/{RUN}_bold.nii.gz")
cut = img.slicer[CUT + (slice(None),)]
raw = np.asarray(img.dataobj.get_unscaled())[CUT]
desc = describe_image(cut, f"{SRC}/{RUN}_bold.nii.gz")
desc["scl_slope"], desc["scl_inter"] = float(img.dataobj.slope), float(img.dataobj.inter)
os.makedirs(f"{DST}/sub-02/func", exist_ok=True)
write_described(f"{DST}/{RUN}_bold.nii.gz", raw * img.dataobj.slope + img.dataobj.inter, desc, "sample")
check = nib.load(f"{DST}/{RUN}_bold.nii.gz")
assert np.array_equal(np.asarray(check.dataobj.get_unscaled()), raw)
assert np.allclose(check.affine, cut.affine)
for name in (f"{RUN}_events.tsv", f"{RUN}_bold.json", "participants.tsv", "LICENSE"):
    shutil.copyfile(f"{SRC}/{name}", f"{DST}/{name}")
with open(f"{SRC}/dataset_description.json") as fh:
    dd = json.load(fh)
dd["Name"] = "studyforrest visual localizer, one run, 8-slice slab (nipype-icainr sample)"
with open(f"{DST}/dataset_description.json", "w") as fh:
    json.dump(dd, fh, indent=2)
    fh.write("\n")
print(check.shape, os.path.getsize(f"{DST}/{RUN}_bold.nii.gz"))
