"""Decoding: classifiers from brain activity (or model features), arrays in, arrays out.

- :data:`DECODERS`, :func:`make_decoder`: the decoder registry (``logistic``, ``svm``,
  ``ridge``, ``mlp``), each a ``StandardScaler -> [SelectKBest] -> classifier`` pipeline.
- :func:`decode`, :func:`cross_validate_decoding`: grouped (nested) cross-validation and
  permutation tests of the whole pipeline, returning a :class:`DecodingResult`.
- :func:`permute_labels`, :func:`correct_p_values`: the permutation scheme and the
  maximum-statistic / FDR correction across ROIs or feature spaces.
- :func:`decoding_metrics`: accuracy, balanced accuracy, recall, confusion, AUC.
"""

from scene2brain.decoding.crossval import DecodingResult, cross_validate_decoding, decode
from scene2brain.decoding.decoders import DECODERS, DecoderEntry, make_decoder
from scene2brain.decoding.metrics import decoding_metrics
from scene2brain.decoding.mlp import MLPDecoder
from scene2brain.decoding.permutation import correct_p_values, permutation_p_value, permute_labels

__all__ = [
    "DECODERS",
    "DecoderEntry",
    "DecodingResult",
    "MLPDecoder",
    "correct_p_values",
    "cross_validate_decoding",
    "decode",
    "decoding_metrics",
    "make_decoder",
    "permutation_p_value",
    "permute_labels",
]
