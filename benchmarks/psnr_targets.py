"""How close `compress(psnr=P)` lands to P on real runs (masked PSNR of the written NIfTI).

    python benchmarks/psnr_targets.py    (from the repository root; needs ../shared/data)
"""
import time
from nipype_icainr.codec.api import compress
for path, targets in [("nipype_icainr/data/sample/studyforrest-slab/sub-02/func/sub-02_task-oneback_run-1_bold.nii.gz", (42, 48)),
                      ("../shared/data/corpus/gift__sub-107_lowres.nii", (50, 58)),
                      ("../shared/data/corpus/pymvpa__haxby2001_run001_bold_25mm.nii.gz", (40, 50)),
                      ("../shared/data/corpus/qap__functional_scan.nii.gz", (45, 50))]:
    for p in targets:
        t=time.time(); r = compress(path, "/tmp/pc.icainr", psnr=p, force=True)
        print(f"{path.split('/')[-1][:30]:30s} target {p} got {r['psnr']:.3f} (+{r['psnr']-p:.3f}) ratio {r['ratio']:.1f} {time.time()-t:.0f}s", flush=True)
