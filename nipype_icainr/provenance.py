"""Versions of the software that wrote a file or a result: recorded in every output."""

import platform

#: key -> distribution name, for every library a result may depend on
DISTRIBUTIONS = {"numpy": "numpy", "scipy": "scipy", "scikit_learn": "scikit-learn",
                 "nibabel": "nibabel", "imagecodecs": "imagecodecs",
                 "constriction": "constriction", "torch": "torch", "nipype": "nipype",
                 "nilearn": "nilearn", "matplotlib": "matplotlib", "antspyx": "antspyx",
                 "scikit_image": "scikit-image", "pybids": "pybids", "zfpy": "zfpy",
                 "av": "av"}
#: what every codec file depends on (a model adds its own, e.g. torch)
CODEC_PACKAGES = ("numpy", "scipy", "scikit_learn", "nibabel", "imagecodecs", "constriction")


def software_versions(packages=CODEC_PACKAGES, extra=()):
    """``{key: version}`` for nipype-icainr, Python, ``packages`` and ``extra``.

    Parameters
    ----------
    packages, extra : sequence of str
        Keys of ``DISTRIBUTIONS``; libraries that are not installed are left out.
    """
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    out = {"nipype_icainr": __version__, "python": platform.python_version()}
    for key in tuple(packages) + tuple(extra):
        try:
            out[key] = version(DISTRIBUTIONS[key])
        except PackageNotFoundError:
            pass
    return out


def analysis_versions():
    """The versions of every library of ``DISTRIBUTIONS`` that is installed."""
    return software_versions(tuple(DISTRIBUTIONS))
