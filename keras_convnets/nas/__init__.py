"""Genotype-driven cell networks: NASNet-A, PNASNet-5, AmoebaNet-A and any sampled genotype.

The stable interface the architecture searches build on:
:class:`Genotype`, :data:`OP_SETS`, :func:`random_genotype` and :func:`nas_network`.
"""

from keras_convnets.nas.genotype import (
    AMOEBANET_A,
    GENOTYPES,
    NASNET_A,
    OP_SETS,
    OPS,
    PNASNET_5,
    Genotype,
    random_genotype,
    state_name,
)
from keras_convnets.nas.layers import ScheduledDropPath, cell_keep_prob, scheduled_keep_prob, set_drop_path_step
from keras_convnets.nas.network import STEMS, nas_network

__all__ = [
    "Genotype", "OP_SETS", "OPS", "random_genotype", "nas_network", "state_name", "STEMS",
    "NASNET_A", "PNASNET_5", "AMOEBANET_A", "GENOTYPES",
    "ScheduledDropPath", "cell_keep_prob", "scheduled_keep_prob", "set_drop_path_step",
]
