"""The genotype-driven cell networks: genotypes as data, the op library, the drop-path schedule,
keras.applications' NASNetMobile weights. The registry test covers the registered variants."""

from __future__ import annotations

import json
import random
import re

import keras
import numpy as np
import pytest

from helpers import max_abs_diff, random_images, train_one_step
from keras_convnets.nas import (
    AMOEBANET_A,
    NASNET_A,
    OP_SETS,
    OPS,
    PNASNET_5,
    Genotype,
    ScheduledDropPath,
    cell_keep_prob,
    nas_network,
    random_genotype,
    set_drop_path_step,
)
from keras_convnets.nas.ops import OpContext, apply_op

GENOTYPES = {"nasnet_a": NASNET_A, "pnasnet_5": PNASNET_5, "amoebanet_a": AMOEBANET_A}


# ------------------------------------------------------------------------------ genotypes
def test_genotypes_equal_the_tf_slim_and_tpu_arrays():
    """The genotypes in TF-slim's/TPU's own (operations, hiddenstate_indices, used_hiddenstates)
    arrays, copied from nasnet_utils.py, pnasnet.py and amoeba_net/model_specs.py."""
    nasnet = Genotype.from_slim(
        (["separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2", "avg_pool_3x3", "none",
          "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2", "none"],
         [0, 1, 1, 1, 0, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0]),
        (["separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2", "avg_pool_3x3",
          "separable_5x5_2", "none", "avg_pool_3x3", "separable_3x3_2", "max_pool_3x3"],
         [0, 1, 0, 1, 0, 1, 3, 2, 2, 0], [1, 1, 1, 0, 0, 0, 0]),
        op_set="nasnet",
    )
    pnas = Genotype.from_slim(
        (["separable_5x5_2", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3", "separable_5x5_2",
          "separable_3x3_2", "separable_3x3_2", "max_pool_3x3", "separable_3x3_2", "none"],
         [1, 1, 0, 0, 0, 0, 4, 0, 1, 0], [1, 1, 0, 0, 0, 0, 0]),
        op_set="pnas",
    )
    amoeba = Genotype.from_slim(
        (["avg_pool_3x3", "max_pool_3x3", "separable_3x3_2", "none", "none", "avg_pool_3x3", "separable_3x3_2",
          "separable_5x5_2", "avg_pool_3x3", "separable_3x3_2"],
         [0, 0, 1, 1, 0, 1, 0, 2, 5, 0], [1, 0, 1, 0, 0, 1, 0]),
        (["separable_3x3_2", "avg_pool_3x3", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3", "max_pool_3x3",
          "separable_3x3_2", "1x7_7x1", "avg_pool_3x3", "separable_7x7_2"],
         [1, 0, 0, 2, 1, 0, 4, 0, 1, 0], [1, 1, 0, 0, 0, 0, 0]),
        op_set="amoeba",
    )
    assert (NASNET_A, PNASNET_5, AMOEBANET_A) == (nasnet, pnas, amoeba)
    assert PNASNET_5.shared_cell and not NASNET_A.shared_cell


@pytest.mark.parametrize("genotype", [NASNET_A, PNASNET_5, AMOEBANET_A, random_genotype("nasnet", 3),
                                      random_genotype("pnas", 4), random_genotype("amoeba", 5)],
                         ids=["nasnet_a", "pnasnet_5", "amoebanet_a", "random_nasnet", "random_pnas", "random_amoeba"])
def test_text_and_dict_forms_round_trip(genotype):
    assert Genotype.from_string(str(genotype)) == genotype
    assert Genotype.from_dict(json.loads(json.dumps(genotype.to_dict()))) == genotype
    assert hash(Genotype.from_string(str(genotype))) == hash(genotype)


def test_text_form_reads_like_the_reference_table():
    assert str(NASNET_A).startswith("[nasnet] normal: sep5(h0)+sep3(h1), sep5(h1)+sep3(h1), avg3(h0)+id(h1),")
    assert str(PNASNET_5).endswith("sep3(h1)+id(h0) -> n2,n3,n4,n5,n6")
    assert "reduction: sep3(h1)+avg3(h0), max3(h0)+sep7(n2)" in str(AMOEBANET_A)


@pytest.mark.parametrize(
    "normal, concat, message",
    [
        ([[("sep3", 0), ("id", 1)], [("sep3", 3), ("id", 0)]], [2, 3],
         r"normal cell, block n3 \(2nd of 2\): input n3 refers to a state not yet computed; this block can use h0, h1, n2"),
        ([[("sep3", 0), ("conv9x9", 1)]], [2], r"normal cell, block n2 \(1st of 1\): op 'conv9x9' is not in op set 'pnas'"),
        ([[("sep3", 0), ("id", 1)]], [], r"normal cell: the output concat is empty"),
        ([[("sep3", 0)]], [2], r"block n2 \(1st of 1\): expected two \(op, input\) pairs"),
        ([[("sep3", 0), ("id", 1)]], [2, 2], r"lists a state twice"),
        ([[("sep3", 0), ("id", 1)]], [5], r"state 5 does not exist"),
        ([[("sep3", "h7"), ("id", 1)]], [2], r"a state must be an index or a name like 'h0'"),
    ],
)
def test_invalid_genotypes_say_which_block_is_wrong(normal, concat, message):
    with pytest.raises(ValueError, match=message):
        Genotype(normal, concat, op_set="pnas")


def test_invalid_reduction_cell_and_texts():
    good = [[("sep3", 0), ("id", 1)]]
    with pytest.raises(ValueError, match=r"reduction cell, block n2 .*: op 'dil_sep3' is not in op set 'pnas'"):
        Genotype(good, [2], [[("dil_sep3", 0), ("id", 1)]], [2], op_set="pnas")
    with pytest.raises(ValueError, match="reduction cell given without reduction_concat"):
        Genotype(good, [2], good)
    with pytest.raises(ValueError, match="op_set must be one of"):
        Genotype(good, [2], op_set="darts")
    with pytest.raises(ValueError, match="missing '-> <concat states>'"):
        Genotype.from_string("normal: sep3(h0)+id(h1)")
    with pytest.raises(ValueError, match="expected 'op\\(state\\)\\+op\\(state\\)'"):
        Genotype.from_string("cell: sep3 h0 + id(h1) -> n2")


@pytest.mark.parametrize("op_set", sorted(OP_SETS))
def test_random_genotypes_are_valid_and_use_their_op_set(op_set):
    assert len(OP_SETS[op_set]) == {"nasnet": 13, "pnas": 8, "amoeba": 8}[op_set]
    rng = np.random.default_rng(0)
    seen = set()
    for seed in range(50):
        g = random_genotype(op_set, rng if seed % 2 else random.Random(seed))
        assert g.op_set == op_set and set(g.ops()) <= set(OP_SETS[op_set])
        assert g.shared_cell == (op_set == "pnas")
        for kind in ("normal", "reduction"):
            blocks, concat = g.cell(kind)
            used = {i for block in blocks for _, i in block}
            assert concat and set(concat) == {s for s in range(2, 7) if s not in used}
        seen.add(g)
    assert len(seen) == 50
    assert random_genotype(op_set, 7) == random_genotype(op_set, 7)


# ------------------------------------------------------------------------------ ops and cells
@pytest.mark.parametrize("strides", [1, 2])
def test_every_op_gives_f_channels_at_the_cell_stride(strides):
    inp = keras.Input((9, 9, 6))
    outs = [apply_op(inp, op, 4, strides, OpContext(), name=f"t_{op}") for op in OPS]
    model = keras.Model(inp, outs)
    for op, y in zip(OPS, model(random_images((9, 9, 6), n=1))):
        assert tuple(y.shape) == (1, 9 // strides + (strides == 2), 9 // strides + (strides == 2), 4), op


@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_cells_produce_the_channels_their_concat_lists_imply(name):
    genotype = GENOTYPES[name]
    F = 16
    model = nas_network(genotype, 1, F, stem="imagenet", stem_multiplier=1.0, input_shape=(64, 64, 3),
                        include_top=False)
    normal, reduction = len(genotype.cell("normal")[1]), len(genotype.cell("reduction")[1])
    # (cell, width, states concatenated, output side): 64 px -> stem conv 31 -> 16 -> 8 -> 4 -> 2.
    if genotype.shared_cell:
        expected = [("stem_cell_0", F // 4, normal, 16), ("stem_cell_1", F // 2, normal, 8),
                    ("cell_0", F, normal, 8), ("cell_1", 2 * F, normal, 4), ("cell_2", 4 * F, normal, 2)]
    else:
        expected = [("stem_cell_0", F // 4, reduction, 16), ("stem_cell_1", F // 2, reduction, 8),
                    ("cell_0", F, normal, 8), ("reduction_cell_0", 2 * F, reduction, 4),
                    ("cell_1", 2 * F, normal, 4), ("reduction_cell_1", 4 * F, reduction, 2),
                    ("cell_2", 4 * F, normal, 2)]
    for cell, width, states, side in expected:
        shape = model.get_layer(f"{cell}_concat").output.shape
        assert tuple(shape[1:]) == (side, side, width * states), cell
    assert model.output.shape[-1] == 4 * F * normal


@pytest.mark.parametrize("op_set", sorted(OP_SETS))
def test_a_random_genotype_builds_trains_and_reloads(op_set, tmp_path):
    """What the search does with every sample: small N and F, CIFAR stem, 32 px; scheduled
    drop-path on, and (once, to keep the suite fast) the auxiliary head as a second output."""
    genotype = random_genotype(op_set, 0)
    aux = op_set == "nasnet"
    model = nas_network(genotype, 1, 8, stem="cifar", input_shape=(32, 32, 3), classes=3, aux_head=aux,
                        drop_path_keep_prob=0.8, total_training_steps=100, name="searched")
    x = random_images((32, 32, 3))
    y = np.array([0, 1])
    if aux:
        assert [o.shape[-1] for o in model.outputs] == [3, 3]
        # slim: on the second stack's output (16x16 at 32 px), 5x5/3 pool -> 4x4, a 4x4 conv to 768
        assert tuple(model.get_layer("aux_conv").kernel.shape) == (4, 4, 128, 768)
        model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy"] * 2, loss_weights=[1.0, 0.4],
                      run_eagerly=True)  # as helpers.train_one_step: tracing costs more than the step
        assert np.all(np.isfinite(model.train_on_batch(x, [y, y])))
    else:
        assert np.isfinite(train_one_step(model, x, 3))
    path = tmp_path / "searched.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(keras.tree.flatten(model(x, training=False)), keras.tree.flatten(reloaded(x, training=False))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the drop-path step counters travel with the weights
    steps = {int(l.step.numpy()) for l in reloaded.layers if isinstance(l, ScheduledDropPath)}
    assert steps == {1}


def test_width_and_depth_multipliers_scale_f_and_n():
    base = nas_network(PNASNET_5, 1, 16, input_shape=(8, 8, 3), include_top=False)
    wide = nas_network(PNASNET_5, 1, 16, width_multiplier=2.0, input_shape=(8, 8, 3), include_top=False)
    deep = nas_network(PNASNET_5, 1, 16, depth_multiplier=2.0, input_shape=(8, 8, 3), include_top=False)
    assert base.output.shape[-1] == 5 * 4 * 16 and wide.output.shape[-1] == 5 * 4 * 32
    def cells(m):
        return [l.name for l in m.layers if re.fullmatch(r"(stem_cell|cell|reduction_cell)_\d+_concat", l.name)]

    assert len(cells(base)) == 3 and len(cells(deep)) == 6
    with pytest.raises(ValueError, match="width_multiplier"):
        nas_network(PNASNET_5, width_multiplier=-1)


def test_network_arguments_are_validated():
    with pytest.raises(ValueError, match="genotype must be a Genotype"):
        nas_network(42)
    with pytest.raises(ValueError, match="stem must be one of"):
        nas_network(NASNET_A, stem="tiny")
    with pytest.raises(ValueError, match=r"drop_path_keep_prob must be in \(0, 1\]"):
        nas_network(NASNET_A, drop_path_keep_prob=0.0)
    with pytest.raises(ValueError, match="skip_reduction needs a genotype with a separate reduction cell"):
        nas_network(PNASNET_5, skip_reduction=True)
    with pytest.raises(ValueError, match="aux_head=True needs include_top=True"):
        nas_network(NASNET_A, aux_head=True, include_top=False)
    # the text and dict forms are accepted where a Genotype is
    assert nas_network(str(PNASNET_5), 1, 8, input_shape=(8, 8, 3)).output.shape[-1] == 1000


def test_aux_head_needs_room():
    with pytest.raises(ValueError, match="aux_head needs a fixed input size"):
        nas_network(NASNET_A, 1, 8, input_shape=(8, 8, 3), aux_head=True)


# ------------------------------------------------------------------------------ drop-path schedule
def test_drop_path_is_identity_at_inference():
    layer = ScheduledDropPath(0.5, total_training_steps=10, seed=0)
    x = np.ones((64, 2, 2, 3), "float32")
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    assert int(layer.step.numpy()) == 0  # inference does not advance the schedule


def test_drop_path_keep_prob_falls_with_cell_depth():
    assert [round(cell_keep_prob(0.6, i, 4), 3) for i in range(4)] == [0.9, 0.8, 0.7, 0.6]
    model = nas_network(NASNET_A, 1, 8, input_shape=(8, 8, 3), drop_path_keep_prob=0.6, total_training_steps=10)
    drops = [l for l in model.layers if isinstance(l, ScheduledDropPath)]
    by_cell = {}
    for l in drops:
        by_cell.setdefault(l.name.split("_n")[0], set()).add(l.keep_prob)
    # five cells (CIFAR stem, N=1), in build order; the last keeps drop_path_keep_prob
    order = ["cell_0", "reduction_cell_0", "cell_1", "reduction_cell_1", "cell_2"]
    assert sorted(by_cell) == sorted(order)
    for k, cell in enumerate(order):
        (keep,) = by_cell[cell]
        assert keep == pytest.approx(1 - (k + 1) / 5 * 0.4), cell
    # every path but the identities (slim's 'none'): 8 a normal cell, 9 a reduction cell
    assert len(drops) == 3 * 8 + 2 * 9


def test_drop_rate_rises_with_training_progress():
    layer = ScheduledDropPath(0.6, total_training_steps=100, seed=0)
    x = np.ones((4000, 1, 1, 1), "float32")

    def dropped(y):
        return float((np.asarray(y)[:, 0, 0, 0] == 0).mean())

    assert layer.current_keep_prob() == 1.0
    assert dropped(layer(x, training=True)) == 0.0  # step 0: nothing dropped yet
    for _ in range(49):
        layer(x[:1], training=True)
    assert int(layer.step.numpy()) == 50 and layer.current_keep_prob() == pytest.approx(0.8)
    assert dropped(layer(x, training=True)) == pytest.approx(0.2, abs=0.03)
    layer.step.assign(1000)  # past total_training_steps: the full rate, no further
    assert layer.current_keep_prob() == pytest.approx(0.6)
    y = np.asarray(layer(x, training=True))
    assert dropped(y) == pytest.approx(0.4, abs=0.03)
    assert np.allclose(y[y > 0], 1 / 0.6)  # survivors scaled by 1 / keep
    model = keras.Sequential([keras.Input((1, 1, 1)), ScheduledDropPath(0.5, 10), ScheduledDropPath(0.5, 10)])
    assert set_drop_path_step(model, 7) == 2 and {int(l.step.numpy()) for l in model.layers} == {7}


# ------------------------------------------------------------------------------ keras.applications
def test_nasnet_mobile_takes_keras_weights_with_equal_outputs():
    """keras' weight order and shapes, and equal outputs with keras' zero-padded strided pools, on
    perturbed weights (moving statistics and scales away from their initial values)."""
    from keras_convnets.models.nas import nasnet_mobile

    shape = (64, 64, 3)
    ref = keras.applications.NASNetMobile(weights=None, input_shape=shape, classifier_activation=None)
    ours = nasnet_mobile(input_shape=shape, classifier_activation=None)
    rng = np.random.default_rng(1)
    weights = [np.abs(rng.normal(size=w.shape)).astype("float32") * 0.5 + 0.5 if w.ndim == 1
               else w + 0.05 * rng.normal(size=w.shape).astype("float32") for w in ref.get_weights()]
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in weights]
    ref.set_weights(weights)
    ours.set_weights(weights)
    x = random_images(shape, n=2)
    expected = np.asarray(ref(x, training=False))
    assert np.abs(expected).max() > 1.0  # not a trivially small output
    assert max_abs_diff(ours(x, training=False), expected) < 1e-4
