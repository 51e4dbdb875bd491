"""A decoder no file can hurt: hostile files, each decoded in a bounded child process.

Every case must end as a clean refusal (exit 2, one line ``icainr: error:
<file>: ...``, no traceback, no output file) or as a correct decode (exit 0, a
NIfTI of the header's shape); none may hang, print a traceback, or use more
memory than ``PEAK_MB``. The structured classes are in ``hostile_cases``; a
hypothesis fuzzer adds random JSON values at random places of valid headers and
random bytes in sections. Set ``ICAINR_HOSTILE_REPORT=path.json`` to keep the counts.
"""

import collections
import json
import os
import shutil

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nipype_icainr.codec import container  # noqa: E402

from . import hostile_cases  # noqa: E402
from .conftest import QUICK, TINY  # noqa: E402
from .hostile import Harness, verdict  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
#: peak resident memory any case may reach (the worker's own imports included)
PEAK_MB = 1500.0
FUZZ_EXAMPLES = int(os.environ.get("ICAINR_FUZZ_EXAMPLES", "150"))


@pytest.fixture(scope="module")
def bases(bold_file, tmp_path_factory):
    """One valid file per model and format: the material every hostile case is forged from."""
    from nipype_icainr import compress

    folder = tmp_path_factory.mktemp("bases")
    out = {}
    for name, kwargs in (("factor", {"ratio": 20, "config": QUICK}),
                         ("lossless", {"lossless": True}),
                         ("max_error", {"max_error": 5.0}),
                         ("network", {"ratio": 20, "config": TINY})):
        path = folder / f"{name}.icainr"
        compress(bold_file, str(path), device="cpu", seed=0, **kwargs)
        out[name] = path.read_bytes()
    for version in (2, 3, 4, 5, 6):
        out[f"v{version}"] = open(os.path.join(DATA, f"v{version}_factor.icainr"), "rb").read()
    # format 8: a float run whose background voxels are NaN at every time point
    import nibabel as nib
    import numpy as np

    img = nib.load(bold_file)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data[data.mean(axis=-1) < 0.2 * data.mean()] = np.nan
    nan_run = folder / "nan_bold.nii.gz"
    nib.Nifti1Image(data, img.affine).to_filename(str(nan_run))
    compress(str(nan_run), str(folder / "nan.icainr"), device="cpu", seed=0, ratio=20,
             config=QUICK)
    out["nan"] = (folder / "nan.icainr").read_bytes()
    assert out["nan"][8:10] == container.NAN_FORMAT_VERSION.to_bytes(2, "little")
    return out


@pytest.fixture(scope="module")
def harness():
    h = Harness()
    yield h
    h.close()


class Tally:
    """Outcome counts over every case run, and the worst peak memory."""

    def __init__(self):
        self.outcomes = collections.Counter()
        self.failures = []
        self.peak = (0.0, None)
        self.slowest = (0.0, None)

    def add(self, name, result, outcome):
        self.outcomes[outcome] += 1
        if result["peak_mb"] > self.peak[0]:
            self.peak = (result["peak_mb"], name)
        if result["seconds"] > self.slowest[0]:
            self.slowest = (result["seconds"], name)
        if outcome not in ("clean", "decoded") or result["peak_mb"] > PEAK_MB:
            self.failures.append((name, outcome, result["peak_mb"],
                                  result["stderr"].strip()[-300:]))

    def report(self, label):
        summary = {"label": label, "cases": sum(self.outcomes.values()),
                   "outcomes": dict(self.outcomes), "peak_mb": round(self.peak[0], 1),
                   "peak_case": self.peak[1], "slowest_s": round(self.slowest[0], 2),
                   "slowest_case": self.slowest[1], "failures": len(self.failures)}
        print(json.dumps(summary))
        path = os.environ.get("ICAINR_HOSTILE_REPORT")
        if path:
            with open(path, "a") as fh:
                fh.write(json.dumps(summary) + "\n")
        return summary


def run_one(harness, tally, folder, name, blob):
    """Decompress (and ``info``) one hostile file; classify and count."""
    path = os.path.join(folder, "case.icainr")
    out = os.path.join(folder, "case.nii.gz")
    with open(path, "wb") as fh:
        fh.write(blob)
    result = harness.run(["decompress", path, out])
    outcome = verdict(result, path, out)
    if result["rc"] == 0 and os.path.isfile(out):
        outcome = "decoded" if _plausible(out) else "decoded garbage"
    tally.add(name, result, outcome)
    if os.path.exists(out):
        os.unlink(out)
    info = harness.run(["info", path])
    outcome = verdict(info, path)
    tally.add(name + " (info)", info, "decoded" if info["rc"] == 0 else outcome)


def _plausible(path):
    import nibabel as nib
    import numpy as np

    try:
        img = nib.load(path)
        data = np.asarray(img.dataobj)
    except Exception:  # noqa: BLE001 - a file nibabel cannot read back is garbage
        return False
    # NaN only in whole voxels (NaN at every time point), as a format 8 file restores them
    nan = np.isnan(data)
    return (data.ndim >= 4 and not np.isinf(data).any()
            and bool((nan == nan[..., :1]).all()) and not nan.all())


@pytest.mark.parametrize("kind", ["factor", "lossless", "max_error", "network", "v4", "v5",
                                  "v6", "nan"])
def test_structured_hostile_files_are_refused_in_one_line(bases, harness, tmp_path, kind):
    tally = Tally()
    for name, blob in hostile_cases.all_cases(bases[kind]):
        run_one(harness, tally, str(tmp_path), f"{kind}:{name}", blob)
    summary = tally.report(f"structured {kind}")
    assert summary["cases"] > 200
    assert not tally.failures, tally.failures[:5]
    assert tally.outcomes["clean"] > 0.8 * summary["cases"]


@pytest.mark.parametrize("kind", ["v2", "v3"])
def test_forged_legacy_files_are_refused_in_one_line(bases, harness, tmp_path, kind):
    tally = Tally()
    for name, blob in hostile_cases.legacy_cases(bases[kind]):
        run_one(harness, tally, str(tmp_path), name, blob)
    tally.report(f"legacy {kind}")
    assert not tally.failures, tally.failures[:5]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_headers_never_hurt_the_decoder(bases, harness, tmp_path_factory, data):
    kind = data.draw(st.sampled_from(["factor", "lossless", "network"]))
    header, sections, block, _ = container.unpack(bases[kind], "base")
    path = data.draw(st.sampled_from(list(hostile_cases.paths(header))))
    if data.draw(st.booleans()):
        forged = hostile_cases.replaced(header, path, None, delete=True)
    else:
        forged = hostile_cases.replaced(header, path, data.draw(JSON))
    _fuzz_once(harness, tmp_path_factory, f"{kind}:{'/'.join(map(str, path))}",
               container.pack(forged, sections, block))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_sections_never_hurt_the_decoder(bases, harness, tmp_path_factory, data):
    kind = data.draw(st.sampled_from(["factor", "lossless", "max_error", "network", "nan"]))
    header, sections, block, _ = container.unpack(bases[kind], "base")
    tag = data.draw(st.sampled_from(sorted(sections)))
    payload = bytearray(sections[tag])
    edits = data.draw(st.lists(st.tuples(st.integers(0, max(len(payload) - 1, 0)),
                                         st.integers(0, 255)), min_size=1, max_size=8))
    for pos, value in edits:
        if payload:
            payload[pos] = value
    if data.draw(st.booleans()):
        payload = payload[:data.draw(st.integers(0, len(payload)))]
    _fuzz_once(harness, tmp_path_factory, f"{kind}:{tag}",
               container.pack(header, dict(sections, **{tag: bytes(payload)}), block))


_FUZZ = collections.defaultdict(Tally)


def _fuzz_once(harness, tmp_path_factory, name, blob):
    folder = str(tmp_path_factory.getbasetemp() / "fuzz")
    os.makedirs(folder, exist_ok=True)
    tally = Tally()
    run_one(harness, tally, folder, name, blob)
    _FUZZ["fuzz"].outcomes.update(tally.outcomes)
    assert not tally.failures, tally.failures


def test_fuzz_report():
    """The fuzzers' counts (printed; kept with ICAINR_HOSTILE_REPORT)."""
    if _FUZZ["fuzz"].outcomes:
        _FUZZ["fuzz"].report("fuzzed headers and sections")


def test_a_run_beyond_the_expansion_bound_is_padded_by_the_encoder(bold_file, tmp_path,
                                                                  monkeypatch):
    """The encoder pads a file whose run would exceed the decoder's expansion bound
    (with the bound lowered here: real runs reach it only when almost constant), and
    the decoder refuses the same file without its padding."""
    import nibabel as nib
    import numpy as np

    from nipype_icainr import compress, decompress, info
    from nipype_icainr.codec import limits
    from nipype_icainr.codec.errors import ICAINRError

    monkeypatch.setattr(limits, "FREE_SAMPLES", 1000)
    monkeypatch.setattr(limits, "SAMPLES_PER_BYTE", 16)
    out = tmp_path / "run.icainr"
    compress(bold_file, str(out), ratio=60, config=QUICK)
    sections = info(str(out))["sections"]
    shape = nib.load(bold_file).shape
    assert sections[limits.PAD_TAG] > 0
    assert np.prod(shape) <= limits.allowance(sum(sections.values()))
    back = tmp_path / "back.nii.gz"
    decompress(str(out), str(back))
    assert nib.load(back).shape == shape
    header, parts, block, _ = container.read_file(str(out))
    del parts[limits.PAD_TAG]
    bare = tmp_path / "bare.icainr"
    bare.write_bytes(container.pack(header, parts, block))
    with pytest.raises(ICAINRError, match="decompression bomb"):
        decompress(str(bare), str(tmp_path / "bare.nii.gz"))
    shutil.rmtree(tmp_path)
