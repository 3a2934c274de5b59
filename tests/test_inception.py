"""Inception-v3 and Inception-ResNet-v2: keras.applications' weights load into ours and give the
same outputs (small inputs: 75x75, the minimum both accept), the auxiliary head of Inception-v3
appears only when asked for, layer names are meaningful, and the residual scales are keras'."""

import keras
import numpy as np
import pytest

from helpers import kc, max_abs_diff, random_images
from keras_convnets.models.inception_resnet_v2 import ScaledResidual, inception_resnet_v2
from keras_convnets.models.inception_v3 import inception_v3

SMALL = (75, 75, 3)


def _perturbed(reference):
    """keras' random init leaves BN at identity statistics; move them, so the transfer check sees
    every moving mean/variance and offset land in the right place."""
    rng = np.random.default_rng(1)
    weights = []
    for w, v in zip(reference.get_weights(), reference.weights):
        if w.ndim == 1:
            w = w + rng.normal(scale=0.05, size=w.shape).astype(w.dtype)
            if "moving_variance" in v.path:
                w = np.abs(w) + 0.5
        weights.append(w)
    return weights


def _transfer(ours, reference, x):
    assert [w.shape for w in ours.weights] == [w.shape for w in reference.weights]
    weights = _perturbed(reference)
    reference.set_weights(weights)
    ours.set_weights(weights)
    return max_abs_diff(ours(x, training=False), reference(x, training=False))


@pytest.mark.parametrize(
    "ours,reference",
    [(inception_v3, keras.applications.InceptionV3), (inception_resnet_v2, keras.applications.InceptionResNetV2)],
    ids=["inception_v3", "inception_resnet_v2"],
)
def test_keras_weights_give_equal_outputs(ours, reference):
    kwargs = dict(input_shape=SMALL, classes=7, classifier_activation=None)  # logits: a stricter check
    ref = reference(weights=None, **kwargs)
    mine = ours(**kwargs)
    assert mine.count_params() == ref.count_params()
    assert _transfer(mine, ref, random_images(SMALL)) < 1e-4


def test_inception_v3_auxiliary_head_only_when_asked():
    plain = inception_v3(input_shape=SMALL)
    assert len(plain.outputs) == 1
    assert not [layer.name for layer in plain.layers if layer.name.startswith("aux")]
    with_aux = inception_v3(input_shape=(299, 299, 3), aux_logits=True)
    assert with_aux.output_names == ["predictions", "aux_predictions"]
    main, aux = with_aux(random_images((299, 299, 3), n=1), training=False)
    assert tuple(main.shape) == tuple(aux.shape) == (1, 1000)
    # §4: 5x5/3 avg pool, 1x1 conv 128, 5x5 conv 768, FC; BN (no scale) after each conv
    aux_params = (768 * 128 + 3 * 128) + (5 * 5 * 128 * 768 + 3 * 768) + (768 * 1000 + 1000)
    assert with_aux.count_params() - kc.model_info("inception_v3")["reference_params"]["value"] == aux_params
    assert aux_params == 3_327_592
    # the aux head sits on mixed7, the last 17x17 module
    assert with_aux.get_layer("aux_avgpool").input.shape[1:] == (17, 17, 768)


def test_inception_v3_auxiliary_head_bad_arguments():
    with pytest.raises(ValueError, match="299x299"):
        inception_v3(input_shape=(298, 298, 3), aux_logits=True)
    with pytest.raises(ValueError, match="include_top"):
        inception_v3(input_shape=(299, 299, 3), include_top=False, aux_logits=True)


def test_layer_names_are_meaningful():
    """All names are given (none of Keras' creation-order names), so they are deterministic."""
    model = inception_v3(input_shape=SMALL)
    names = [layer.name for layer in model.layers]
    assert {f"mixed{i}" for i in range(11)} <= set(names)
    auto = ("conv2d", "batch_normalization", "activation", "average_pooling2d", "max_pooling2d", "concatenate")
    assert not [n for n in names if n.startswith(auto)]
    assert "mixed4_branch7x7dbl_5_conv" in names and "mixed9_branch3x3_2a_conv" in names


def test_inception_resnet_v2_residual_scales():
    model = inception_resnet_v2(input_shape=SMALL, depth_multiplier=0.5)  # 5, 10, 5 blocks
    scales = {layer.name: layer.scale for layer in model.layers if isinstance(layer, ScaledResidual)}
    assert sorted(scales) == sorted(
        [f"block35_{i}_add" for i in range(1, 6)] + [f"block17_{i}_add" for i in range(1, 11)]
        + [f"block8_{i}_add" for i in range(1, 6)]
    )
    assert scales["block35_1_add"] == 0.17 and scales["block17_10_add"] == 0.1 and scales["block8_4_add"] == 0.2
    # the last block is linear and unscaled (TF-slim/keras), then conv_7b
    assert scales["block8_5_add"] == 1.0
    names = {layer.name for layer in model.layers}
    assert "block8_4_relu" in names and "block8_5_relu" not in names
    assert ScaledResidual.from_config(ScaledResidual(0.17).get_config()).scale == 0.17


def test_width_multiplier_scales_the_inception_v3_branches():
    half = kc.build("inception_v3", input_shape=SMALL, width_multiplier=0.5)
    assert half.get_layer("mixed0_branch1x1_1_conv").filters == 32
    assert half.get_layer("mixed10").output.shape[-1] == (160 + 2 * 192 + 2 * 192 + 96)
