"""Finding BOLD runs, their events and sidecars with pybids."""

import json
import os

from nipype_icainr.codec.errors import ICAINRError


def load_layout(bids_dir, validate=True):
    """A pybids ``BIDSLayout`` of ``bids_dir``; one-line errors for non-BIDS folders."""
    from bids import BIDSLayout

    if not os.path.isdir(bids_dir):
        raise ICAINRError(bids_dir, "no such directory")
    if not os.path.isfile(os.path.join(bids_dir, "dataset_description.json")):
        raise ICAINRError(bids_dir, "not a BIDS dataset (no dataset_description.json)")
    try:
        return BIDSLayout(bids_dir, validate=validate)
    except Exception as exc:
        raise ICAINRError(bids_dir, f"not a valid BIDS dataset ({str(exc).splitlines()[0]})") \
            from None


def check_events(path):
    """A BIDS events.tsv that FLA can use: the three columns, numbers, at least one row."""
    import pandas as pd

    try:
        events = pd.read_csv(path, sep="\t")
    except Exception as exc:
        raise ICAINRError(path, f"cannot read the events ({str(exc).splitlines()[0][:120]})") \
            from None
    missing = {"onset", "duration", "trial_type"} - set(events.columns)
    if missing:
        raise ICAINRError(path, f"missing column(s) {', '.join(sorted(missing))}, which FLA "
                                "needs (or pass --no-fla)")
    if events.empty:
        raise ICAINRError(path, "has no events (or pass --no-fla)")
    for column in ("onset", "duration"):
        values = pd.to_numeric(events[column], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax()) + 2
            raise ICAINRError(path, f"{column} is not a number on line {row}")
    return events


def read_filter_file(path):
    """fMRIPrep-style ``--bids-filter-file``: JSON ``{"bold": {entity: value, ...}}``."""
    if path is None:
        return {}
    try:
        with open(path) as fh:
            filters = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ICAINRError(path, f"cannot read the BIDS filter file ({exc})") from None
    if not isinstance(filters, dict) or not isinstance(filters.get("bold", {}), dict):
        raise ICAINRError(path, 'the BIDS filter file must hold {"bold": {...}}')
    return filters.get("bold", {})


def strip_label(label, prefix):
    return label[len(prefix):] if label.startswith(prefix) else label


def collect_runs(layout, participant_labels=None, session_labels=None, task=None, filters=None):
    """Every BOLD run matching the selection, with its events file and metadata.

    Returns a list of dicts: ``bold`` (path), ``events`` (path or None),
    ``metadata`` (the sidecar, inheritance applied), ``entities``, ``relpath``.
    """
    subjects = layout.get_subjects()
    if participant_labels:
        labels = [strip_label(p, "sub-") for p in participant_labels]
        unknown = sorted(set(labels) - set(subjects))
        if unknown:
            raise ICAINRError(layout.root, f"participant(s) {', '.join(unknown)} not found "
                                           f"(available: {', '.join(sorted(subjects)) or 'none'})")
        subjects = labels
    query = dict(subject=subjects, suffix="bold", datatype="func",
                 extension=[".nii", ".nii.gz"], return_type="object")
    if session_labels:
        query["session"] = [strip_label(s, "ses-") for s in session_labels]
    if task:
        query["task"] = task
    query.update(filters or {})
    runs = []
    for bold in layout.get(**query):
        events = layout.get_nearest(bold.path, suffix="events", extension=".tsv", strict=True,
                                    ignore_strict_entities=["suffix", "extension", "datatype"])
        runs.append({"bold": bold.path, "events": events, "metadata": bold.get_metadata(),
                     "entities": {k: v for k, v in bold.get_entities().items()
                                  if k in ("subject", "session", "task", "acquisition", "run",
                                           "direction", "echo", "reconstruction")},
                     "relpath": os.path.relpath(bold.path, layout.root)})
    if not runs:
        raise ICAINRError(layout.root, "no BOLD runs match the selection")
    return runs


def find_fmriprep_bold(fmriprep_dir, entities):
    """The fMRIPrep ``space-MNI152NLin2009cAsym_desc-preproc_bold`` of a run."""
    from bids import BIDSLayout

    if not os.path.isdir(fmriprep_dir):
        raise ICAINRError(fmriprep_dir, "no such directory")
    layout = BIDSLayout(fmriprep_dir, validate=False, config=["bids", "derivatives"])
    hits = layout.get(space="MNI152NLin2009cAsym", desc="preproc", suffix="bold",
                      extension=[".nii", ".nii.gz"], return_type="filename",
                      **{k: v for k, v in entities.items() if k != "datatype"})
    if not hits:
        raise ICAINRError(fmriprep_dir, "no space-MNI152NLin2009cAsym_desc-preproc_bold for "
                                        + "_".join(f"{k}-{v}" for k, v in entities.items()))
    return hits[0]
