"""A tiny registered family for the search tests, independent of the real families (which other
branches provide): two stages of conv-BN-ReLU with width and depth multipliers."""

from __future__ import annotations

from keras_convnets import blocks, registry, scaling

NAME = "toy_net"
STAGES = ((8, 1), (16, 2))  # (filters, repeats)


def toy_net(include_top=True, input_shape=None, input_tensor=None, pooling=None, classes=1000,
            classifier_activation="softmax", width_multiplier=1.0, depth_multiplier=1.0, name=NAME):
    blocks.check_common(include_top=include_top, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)
    width = scaling.check_multiplier("width_multiplier", width_multiplier)
    depth = scaling.check_multiplier("depth_multiplier", depth_multiplier)
    img = blocks.image_input(input_shape, input_tensor, default_size=32, min_size=8, model_name=name)
    x = img
    for s, (filters, repeats) in enumerate(STAGES):
        for r in range(scaling.round_repeats(repeats, depth)):
            x = blocks.conv_bn_act(x, scaling.round_filters(filters, width), 3, strides=2 if r == 0 else 1,
                                   name=f"stage{s + 1}_unit{r + 1}")
    x = blocks.classifier(x, include_top=include_top, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation)
    return blocks.functional_model(img, input_tensor, x, name)


def register():
    """Add toy_net to the registry (idempotent); returns its name."""
    if NAME not in registry._REGISTRY:
        registry._load()
        registry.register(NAME, toy_net, family="toy", paper="(test fixture)", year=2024, arxiv=None,
                          default_size=32, min_size=8, ref_params=1, params_source="test fixture", ref_macs=1,
                          knobs=("width_multiplier", "depth_multiplier", "resolution"), test_size=16)
    return NAME


def unregister():
    registry._REGISTRY.pop(NAME, None)


def family(**kwargs):
    """The toy family space used by the isolation tests (the same in a trial process)."""
    from keras_convnets import tuning

    register()
    return tuning.FamilyHyperModel([NAME], classes=10, resolutions=[16], widths=(0.5, 1.0, 0.5),
                                   depths=(0.5, 1.0, 0.5), tune_training=False, **kwargs)


class Crashing:
    """A hypermodel wrapper whose build kills its process when the width is 0.5 (a C++ crash or
    the OOM killer, as far as the search can tell): only ever run in a trial process."""

    def __init__(self, inner):
        self.inner = inner

    def build(self, hp):
        model = self.inner.build(hp)
        if hp.values.get("width_multiplier") == 0.5:
            import os

            os._exit(3)
        return model

    def __getattr__(self, name):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def search_context(train_examples: int, crash: bool = False):
    """A trial process's SearchContext for :func:`family` on digits (``TrialRunner``'s setup)."""
    from keras_convnets import tuning

    hypermodel = family()
    return tuning.SearchContext(tuning.digits_data(train_examples=train_examples, seed=0),
                                Crashing(hypermodel) if crash else hypermodel)
