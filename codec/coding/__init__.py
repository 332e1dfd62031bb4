"""Entropy coding: quality -> gains -> integer tables, quantisation, range coding, integer h_s."""
from .hyper import HyperSynthesis
from .latent import FactorizedCoding, HyperpriorCoding, HyperStreams, check_quality
from .range_coder import FrequencyTables

__all__ = ["FactorizedCoding", "FrequencyTables", "HyperSynthesis", "HyperStreams", "HyperpriorCoding",
           "check_quality"]
