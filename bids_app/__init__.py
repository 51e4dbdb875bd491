"""The BIDS App: ``icainr-bids`` (participant and group levels) and ``icainr-restore``.

Modules: ``cli`` (the command line), ``queries`` (pybids), ``participant`` and
``workflow`` (one ``workflows.init_icainr_wf`` per run, then the derivatives
sink), ``derivatives`` (BIDS names, sidecars, ``dataset_description.json``),
``group`` (the group QC table and report), ``restore`` (back to raw BIDS),
``fmriprep`` (``--run-fmriprep`` through ``fmriprep-docker``).
"""
