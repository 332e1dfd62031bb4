"""Entropy coding: quality -> gains -> integer tables, quantisation, range coding, integer h_s and context."""
from .context import CheckerboardContext
from .hyper import HyperSynthesis
from .latent import FactorizedCoding, HyperpriorCoding, HyperStreams, check_quality
from .range_coder import FrequencyTables

__all__ = ["CheckerboardContext", "FactorizedCoding", "FrequencyTables", "HyperSynthesis", "HyperStreams", "HyperpriorCoding",
           "check_quality"]
