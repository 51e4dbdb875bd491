"""The BIDS App (``bids_dir output_dir participant|group``).

Not written yet: this package is reserved by the repository layout and is built
by the BIDS-App issue, on top of ``workflows``.
"""
