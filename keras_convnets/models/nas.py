"""NASNet-A, PNASNet-5 and AmoebaNet-A: one genotype-driven cell network, variants as data.

The cells are data (:mod:`keras_convnets.nas.genotype`), the ops a library
(:mod:`keras_convnets.nas.ops`), the network one builder (:func:`keras_convnets.nas.nas_network`).
Each variant below is that builder with the configuration of TF-slim's ``nasnet.py`` /
``pnasnet.py`` hparams or the TPU AmoebaNet code, checked against keras.applications (NASNet),
timm (PNASNet-5 Large) or the papers' tables.
"""

from __future__ import annotations

from keras_convnets.nas import (  # noqa: F401  (the search's interface, importable from here too)
    AMOEBANET_A,
    GENOTYPES,
    NASNET_A,
    OP_SETS,
    OPS,
    PNASNET_5,
    Genotype,
    nas_network,
    random_genotype,
)
from keras_convnets.registry import variant

FAMILY = "nas"
KNOBS = ("width_multiplier", "depth_multiplier", "resolution")
NASNET_PAPER = dict(paper="Zoph et al., Learning Transferable Architectures for Scalable Image Recognition",
                    year=2018, arxiv="1707.07012")
PNAS_PAPER = dict(paper="Liu et al., Progressive Neural Architecture Search", year=2018, arxiv="1712.00559")
AMOEBA_PAPER = dict(paper="Real et al., Regularized Evolution for Image Classifier Architecture Search",
                    year=2019, arxiv="1802.01548")
# ImageNet stem (3x3/2 VALID conv, then four halvings): keras.applications' NASNet minimum is
# 32 px (1x1 final map); the graph itself builds from 3 px, which PNASNet/AmoebaNet register as
# they have no keras minimum. CIFAR stem: SAME-padded halvings only, any side >= 1 builds.
IMAGENET_MIN_KERAS, IMAGENET_MIN, CIFAR_MIN = 32, 3, 1


def _paper_rounding(value: float, last_digit: float) -> float:
    """Relative tolerance of a figure printed to ``last_digit`` (half a unit of the last digit)."""
    return 0.5 * last_digit / value


# PNAS's mult-adds come out 0.12-0.25% under the paper's printed figures (see the notes), just
# outside their rounding; every other paper figure here holds to half a unit of its last digit.
PNAS_MACS_TOLERANCE = 0.005


nasnet_mobile = variant(
    "nasnet_mobile",
    nas_network,
    # slim mobile_imagenet_config: N=4, F=44 (4 @ 1056), stem x1, no skip, dense keep 0.5,
    # drop-path keep 1.0. keras.applications' zero-padded strided pools, for equal outputs.
    dict(genotype=NASNET_A, num_cells=4, filters=44, stem="imagenet", stem_multiplier=1.0,
         skip_reduction=False, padding_style="keras", dropout_rate=0.5, drop_path_keep_prob=1.0,
         default_size=224, min_size=IMAGENET_MIN_KERAS),
    family=FAMILY, **NASNET_PAPER, default_size=224, min_size=IMAGENET_MIN_KERAS,
    ref_params=5_326_716, params_kind="total", params_source="keras.applications.NASNetMobile count_params()",
    ref_macs=563_638_816, macs_source="counted on keras.applications.NASNetMobile (conv + dense, 224 px)",
    knobs=KNOBS, test_size=32,
    notes="NASNet-A 4 @ 1056. Same weight order and shapes as keras.applications.NASNetMobile: "
          "set_weights(keras.get_weights()) gives equal outputs (padding_style='keras': strided pools see "
          "keras' explicit zero padding; TF-slim's SAME padding is padding_style='same').",
)

nasnet_large = variant(
    "nasnet_large",
    nas_network,
    # slim large_imagenet_config: N=6, F=168 (6 @ 4032), stem x3, skip_reduction_layer_input=1,
    # dense keep 0.5. slim trains with drop_path_keep_prob=0.7 over 250k steps; the default here
    # is 1.0 because each drop-path layer holds a step counter that count_params() would add to
    # keras' total. Pass drop_path_keep_prob=0.7, total_training_steps=... to train as slim.
    dict(genotype=NASNET_A, num_cells=6, filters=168, stem="imagenet", stem_multiplier=3.0,
         skip_reduction=True, padding_style="keras", dropout_rate=0.5, drop_path_keep_prob=1.0,
         default_size=331, min_size=IMAGENET_MIN_KERAS),
    family=FAMILY, **NASNET_PAPER, default_size=331, min_size=IMAGENET_MIN_KERAS,
    ref_params=88_949_818, params_kind="total", params_source="keras.applications.NASNetLarge count_params()",
    ref_macs=23_800_000_000, macs_source="paper, ImageNet results (23.8B mult-adds, 331 px)",
    macs_tolerance=_paper_rounding(23.8e9, 1e8), knobs=KNOBS, test_size=32,
    notes="NASNet-A 6 @ 4032; keras.applications.NASNetLarge weight order and shapes. Counted MACs "
          "23,783,414,658 (paper 23.8B). Train as slim with drop_path_keep_prob=0.7.",
)

nasnet_cifar = variant(
    "nasnet_cifar",
    nas_network,
    # slim cifar_config: N=6, F=32 (6 @ 768), stem 3F, no skip, dense keep 1.0, drop-path keep
    # 0.6 ramped over 937,500 steps.
    dict(genotype=NASNET_A, num_cells=6, filters=32, stem="cifar", stem_multiplier=3.0, skip_reduction=False,
         padding_style="same", dropout_rate=0.0, drop_path_keep_prob=0.6, total_training_steps=937_500,
         classes=10, default_size=32, min_size=CIFAR_MIN),
    family=FAMILY, **NASNET_PAPER, default_size=32, min_size=CIFAR_MIN, default_classes=10,
    ref_params=3_300_000, params_kind="trainable", params_source="paper, CIFAR-10 results (NASNet-A 6 @ 768: 3.3M)",
    params_tolerance=_paper_rounding(3.3e6, 1e5),
    ref_macs=544_333_312,
    macs_source="no published figure: counted on this faithful build of slim's cifar_config (32 px, 10 classes)",
    knobs=KNOBS, test_size=32,
    notes="NASNet-A 6 @ 768 on CIFAR-10: 3,346,538 trainable parameters (paper 3.3M). The paper gives no "
          "mult-adds for CIFAR, so ref_macs is this build's own count, recorded to catch regressions.",
)

pnasnet5_large = variant(
    "pnasnet5_large",
    nas_network,
    # slim pnasnet large_imagenet_config: 12 cells (N=4 a stack, the first of stacks 2 and 3
    # strided), F=216, stem x3, dense keep 0.5, drop-path keep 0.6 over 250k steps.
    dict(genotype=PNASNET_5, num_cells=4, filters=216, stem="imagenet", stem_multiplier=3.0,
         padding_style="same", dropout_rate=0.5, drop_path_keep_prob=0.6, total_training_steps=250_000,
         default_size=331, min_size=IMAGENET_MIN),
    family=FAMILY, **PNAS_PAPER, default_size=331, min_size=IMAGENET_MIN,
    ref_params=86_057_668, params_kind="trainable", params_source="timm pnasnet5large (port of the TF-slim model)",
    ref_macs=25_000_000_000, macs_source="paper, large-ImageNet results (25.0B mult-adds, 331 px)",
    macs_tolerance=PNAS_MACS_TOLERANCE, knobs=KNOBS, test_size=32,
    notes="PNASNet-5 N=4, F=216: trainable parameters equal timm's 86,057,668 exactly; counted MACs "
          "24,937,395,792, 0.25% under the paper's 25.0B, just outside its printed rounding (+-0.05B), "
          "hence a 0.5% tolerance. The structure is pinned by timm's exact parameter count; the paper "
          "does not say what its mult-add count includes beyond conv and dense layers.",
)

pnasnet5_mobile = variant(
    "pnasnet5_mobile",
    nas_network,
    # slim pnasnet mobile_imagenet_config: 9 cells (N=3), F=54, stem x1, drop-path keep 1.0.
    dict(genotype=PNASNET_5, num_cells=3, filters=54, stem="imagenet", stem_multiplier=1.0,
         padding_style="same", dropout_rate=0.5, drop_path_keep_prob=1.0,
         default_size=224, min_size=IMAGENET_MIN),
    family=FAMILY, **PNAS_PAPER, default_size=224, min_size=IMAGENET_MIN,
    ref_params=5_100_000, params_kind="trainable", params_source="paper, mobile-ImageNet results (PNASNet-5 N=3, F=54: 5.1M)",
    params_tolerance=_paper_rounding(5.1e6, 1e5),
    ref_macs=588_000_000, macs_source="paper, mobile-ImageNet results (588M mult-adds, 224 px)",
    macs_tolerance=PNAS_MACS_TOLERANCE,
    knobs=KNOBS, test_size=32,
    notes="PNASNet-5 mobile: 5,064,487 trainable parameters (paper 5.1M), 587,293,200 MACs, 0.12% under "
          "the paper's 588M (outside its printed rounding of +-0.5M, as for the large model; tolerance 0.5%). "
          "Odd stem-cell widths (13, 27) follow slim: the factorized reduction gives the odd channel to "
          "its second path.",
)

amoebanet_a = variant(
    "amoebanet_a",
    nas_network,
    # TPU amoeba_net: stem conv of 32 filters (stem_reduction_size), 18 normal cells (N=6) + 2
    # reductions, conv ops in a F/4 bottleneck, dense keep 0.5, drop-connect keep 0.7.
    dict(genotype=AMOEBANET_A, num_cells=6, filters=190, stem="imagenet", stem_multiplier=1.0,
         skip_reduction=False, padding_style="same", dropout_rate=0.5, drop_path_keep_prob=0.7,
         total_training_steps=250_000, default_size=331, min_size=IMAGENET_MIN),
    family=FAMILY, **AMOEBA_PAPER, default_size=331, min_size=IMAGENET_MIN,
    ref_params=86_700_000, params_kind="trainable", params_source="paper, ImageNet results (AmoebaNet-A N=6, F=190: 86.7M)",
    params_tolerance=_paper_rounding(86.7e6, 1e5),
    ref_macs=23_100_000_000, macs_source="paper, ImageNet results (23.1B mult-adds, 331 px)",
    macs_tolerance=_paper_rounding(23.1e9, 1e8),
    knobs=KNOBS, test_size=32,
    notes="AmoebaNet-A N=6, F=190 at 331 px: 86,718,797 trainable parameters (paper 86.7M), "
          "23,133,663,507 MACs (paper 23.1B). Both figures pin down details the paper leaves out: the "
          "stem conv has 32 filters (TPU stem_reduction_size; 96 would give 23.37B) and 1x7_7x1 sits in "
          "the TPU code's F/4 bottleneck (without it: 96.0M, 26.4B). Drop-path keep 0.7 ramped over "
          "total_training_steps (250,000 here; the TPU code uses the run's total steps).",
)

amoebanet_a_mobile = variant(
    "amoebanet_a_mobile",
    nas_network,
    dict(genotype=AMOEBANET_A, num_cells=4, filters=50, stem="imagenet", stem_multiplier=1.0,
         skip_reduction=False, padding_style="same", dropout_rate=0.5, drop_path_keep_prob=1.0,
         default_size=224, min_size=IMAGENET_MIN),
    family=FAMILY, **AMOEBA_PAPER, default_size=224, min_size=IMAGENET_MIN,
    ref_params=5_100_000, params_kind="trainable", params_source="paper, mobile-ImageNet results (AmoebaNet-A N=4, F=50: 5.1M)",
    params_tolerance=_paper_rounding(5.1e6, 1e5),
    ref_macs=555_000_000, macs_source="paper, mobile-ImageNet results (555M mult-adds, 224 px)",
    macs_tolerance=_paper_rounding(555e6, 1e6),
    knobs=KNOBS, test_size=32,
    notes="AmoebaNet-A mobile: 5,086,930 trainable parameters (paper 5.1M), 554,687,204 MACs (paper 555M). "
          "Odd stem-cell widths (12, 25) as slim computes them.",
)
