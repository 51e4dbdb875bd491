"""The ICA-INR network of Li et al. (2024), as the ``network`` series model.

Modules: ``net`` (the torch module, named as in the paper), ``fit`` (FastICA
initialisation, pre-training and training), ``weights`` (quantisation and ANS
coding of the parameters), ``model`` (the ``SeriesModel``).
"""

from .model import NetworkModel

__all__ = ["NetworkModel"]
