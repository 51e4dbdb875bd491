"""The series-model extension point: a toy model, registered in a few lines, round-trips
a run through the command line (compress, info, decompress)."""

import nibabel as nib
import numpy as np

from nipype_icainr import info
from nipype_icainr.cli import main
from nipype_icainr.codec import models
from nipype_icainr.masking import compute_mask


class MeanOnly(models.SeriesModel):
    """Codes no series at all: every voxel decodes to its coded mean frame value."""

    name = "meanonly"

    def fit(self, series, mask, budget, config, env):
        return models.Coded({}, {}, approx=np.zeros_like(series))

    def validate(self, part, shape, n_voxels, source):
        return {"n_voxels": n_voxels, "n_timepoints": shape[3]}

    def decode(self, sections, part, mask, device, source):
        return np.zeros((part["n_voxels"], part["n_timepoints"]))


def test_a_registered_toy_model_round_trips_through_the_cli(bold_file, tmp_path, capsys):
    models.register("meanonly", MeanOnly)
    try:
        config = tmp_path / "toy.yaml"
        config.write_text("base: default\nmodel: meanonly\n")
        packed, restored = tmp_path / "toy.icainr", tmp_path / "toy.nii.gz"
        assert main(["compress", bold_file, str(packed), "--config", str(config),
                     "--ratio", "20", "--quiet"]) == 0
        assert "meanonly model" in capsys.readouterr().out
        assert info(str(packed))["arch"]["name"] == "meanonly"
        assert set(info(str(packed))["sections"]) == {"MASK", "MEAN"}
        assert main(["decompress", str(packed), str(restored)]) == 0
    finally:
        models.unregister("meanonly")
    orig, dec = nib.load(bold_file), nib.load(str(restored))
    values = np.asarray(dec.dataobj, dtype=np.float64)
    assert dec.shape == orig.shape
    assert np.ptp(values, axis=-1).max() == 0  # nothing but the mean frame, constant in time
    data = np.asarray(orig.dataobj, dtype=np.float64)
    inside = compute_mask(data)  # the mean frame's step there is one stored unit (2.5)
    assert np.abs(values[..., 0] - data.mean(axis=-1))[inside].max() <= 2.5
    # an unregistered model is refused with one line
    assert main(["decompress", str(packed), str(tmp_path / "again.nii.gz")]) == 2
    assert "'meanonly'" in capsys.readouterr().err.strip().splitlines()[-1]
