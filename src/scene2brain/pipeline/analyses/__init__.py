"""The analyses of a run, in the order their tables are written and their report sections appear.

Adding an analysis: write one module here that defines an
:class:`~scene2brain.pipeline.analysis.Analysis` (its stages, its tables, its report
section) and add it to :data:`ANALYSES` (see ``docs/architecture.md``).
"""

from scene2brain.pipeline.analyses.decoding import DECODING_ANALYSIS
from scene2brain.pipeline.analyses.encoders import ENCODERS_ANALYSIS
from scene2brain.pipeline.analyses.encoding import ENCODING
from scene2brain.pipeline.analyses.ground_truth import GROUND_TRUTH
from scene2brain.pipeline.analyses.identification import IDENTIFICATION_ANALYSIS
from scene2brain.pipeline.analyses.rsa import RSA_ANALYSIS
from scene2brain.pipeline.analyses.sae import SAE_ANALYSIS

# ground truth last: its checks read the other analyses' tables
ANALYSES = [
    ENCODING,
    ENCODERS_ANALYSIS,
    IDENTIFICATION_ANALYSIS,
    DECODING_ANALYSIS,
    RSA_ANALYSIS,
    SAE_ANALYSIS,
    GROUND_TRUTH,
]

__all__ = ["ANALYSES"]
