"""Versions of the software that wrote a file or a result: recorded in every output."""

import platform

#: distributions whose versions the codec's output depends on, by the key they are stored under
CODEC_PACKAGES = {"numpy": "numpy", "torch": "torch", "scipy": "scipy",
                  "scikit_learn": "scikit-learn", "nibabel": "nibabel",
                  "imagecodecs": "imagecodecs", "constriction": "constriction"}
#: what the QC reports and the benchmark add: analysis, plotting and peer libraries
ANALYSIS_PACKAGES = {"nipype": "nipype", "nilearn": "nilearn", "matplotlib": "matplotlib",
                     "antspyx": "antspyx", "scikit_image": "scikit-image", "pybids": "pybids",
                     "zfpy": "zfpy", "av": "av"}


def software_versions(packages=CODEC_PACKAGES):
    """``{key: version}`` for nipype-icainr, Python and ``packages`` (installed ones only).

    Parameters
    ----------
    packages : dict
        ``{key: distribution name}``; the default is what the codec's bytes depend on.
    """
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    out = {"nipype_icainr": __version__, "python": platform.python_version()}
    for key, dist in packages.items():
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def analysis_versions():
    """The codec's versions plus those of the analysis and plotting libraries."""
    return software_versions(dict(CODEC_PACKAGES, **ANALYSIS_PACKAGES))
