"""Architecture and hyperparameter searches inside keras-tuner's own API.

- Spaces, as ``keras_tuner.HyperModel``\\ s over the registry: :class:`FamilyHyperModel` (model,
  width/depth multipliers, resolution, training hyperparameters), :class:`CompoundHyperModel`
  (EfficientNet's alpha/beta with gamma solved, phi = 1) and :class:`NasnetHyperModel` (a NASNet
  genotype as hyperparameters, built by ``keras_convnets.models.nas.nas_network``).
- :class:`RegularizedEvolution`, aging evolution (Real et al. 2018) as a ``keras_tuner.Oracle``.
- :class:`SearchTuner` / :func:`make_tuner`: any oracle with a MACs budget, MnasNet's reward and
  every trial's params and MACs recorded; with a ``TrialRunner`` (:class:`SearchContext`,
  :func:`search_task`) each trial runs in its own process.

``python -m keras_convnets.study search`` drives them; see the README's "Searches" section.
"""

from keras_convnets.tuning.datasource import SearchData, Splits, digits_data
from keras_convnets.tuning.evolution import RegularizedEvolution, mutate
from keras_convnets.tuning.hypermodels import (
    CompoundHyperModel,
    FamilyHyperModel,
    NasnetHyperModel,
    SearchHyperModel,
    best_trial,
    cost,
    resolve_model,
)
from keras_convnets.tuning.tuners import (
    ALGORITHMS,
    OBJECTIVES,
    HyperbandSearchTuner,
    MnasScore,
    SearchContext,
    SearchTuner,
    make_tuner,
    mnas_score,
    search_task,
)

SPACES = ("family", "compound", "nasnet")

__all__ = [
    "SPACES", "ALGORITHMS", "OBJECTIVES", "SearchData", "Splits", "digits_data", "RegularizedEvolution", "mutate",
    "SearchHyperModel", "FamilyHyperModel", "CompoundHyperModel", "NasnetHyperModel", "cost", "resolve_model",
    "best_trial",
    "SearchTuner", "HyperbandSearchTuner", "MnasScore", "make_tuner", "mnas_score", "SearchContext", "search_task",
]
