"""Tests for estimate(): the model walk, errors, warnings, batch scaling, exports and conventions."""

import dataclasses
import importlib
import io
import json
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
from keras import ops

from nns_callbacks import LayerCost, ModelCost, estimate
from nns_callbacks.cost import PER_SAMPLE_FIELDS, TOTAL_FIELDS, format_bytes, format_count

estimate_module = importlib.import_module("nns_callbacks.estimation")


@pytest.fixture
def fresh_warnings():
    """Python's own registry of warnings already shown, forgotten (each estimate warns once per cause)."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        yield


def rows(cost: ModelCost) -> dict:
    """name -> row dict (first call of each name)."""
    return {r["name"]: r for r in reversed(cost.layers.to_dict("records"))}


def mlp(widths=(16, 8, 4), name="mlp"):
    x = keras.Input((widths[0],))
    y = x
    for i, w in enumerate(widths[1:]):
        y = keras.layers.Dense(w, name=f"d{i}")(y)
    return keras.Model(x, y, name=name)


# Nested models


def test_functional_and_sequential_nested_in_functional():
    enc_in = keras.Input((16,))
    encoder = keras.Model(enc_in, keras.layers.Dense(8, name="dense_1")(enc_in), name="encoder")
    head = keras.Sequential([keras.layers.Dense(4, name="dense_2"), keras.layers.ReLU(name="act")], name="head")
    x = keras.Input((16,))
    model = keras.Model(x, keras.layers.Dense(2, name="out")(head(encoder(x))))
    cost = estimate(model)
    assert list(cost.layers["name"]) == ["encoder/dense_1", "head/dense_2", "head/act", "out"]
    assert cost.forward_macs == 16 * 8 + 8 * 4 + 4 * 2  # 168
    assert cost.params == model.count_params() == (16 * 8 + 8) + (8 * 4 + 4) + (4 * 2 + 2)  # 182
    assert cost.layers["params"].sum() == model.count_params()
    assert rows(cost)["head/dense_2"]["output_shape"] == "(4,)"


def test_two_levels_of_nesting_qualify_names_with_every_model():
    inner_in = keras.Input((6,))
    inner = keras.Model(inner_in, keras.layers.Dense(3, name="proj")(inner_in), name="inner")
    mid_in = keras.Input((6,))
    middle = keras.Model(mid_in, inner(keras.layers.Dense(6, name="pre")(mid_in)), name="middle")
    x = keras.Input((6,))
    cost = estimate(keras.Model(x, middle(x)), batch_size=2)
    assert list(cost.layers["name"]) == ["middle/pre", "middle/inner/proj"]
    assert cost.forward_macs == 2 * (6 * 6 + 6 * 3)  # 108


# Shared layers


@pytest.fixture
def shared_model():
    a = keras.Input((3, 5), name="short")
    b = keras.Input((7, 5), name="long")
    dense = keras.layers.Dense(4, name="shared")
    return keras.Model([a, b], keras.layers.Concatenate(axis=1, name="cat")([dense(a), dense(b)]))


def test_shared_layer_costed_at_every_call_with_its_shapes(shared_model):
    cost = estimate(shared_model, batch_size=2)
    calls = cost.layers[cost.layers["name"] == "shared"]
    assert list(calls["call"]) == [1, 2]
    assert list(calls["output_shape"]) == ["(3, 4)", "(7, 4)"]
    assert list(calls["forward_macs"]) == [2 * 3 * 4 * 5, 2 * 7 * 4 * 5]  # 120, 280
    assert cost.forward_macs == 120 + 280


def test_shared_layer_parameters_counted_once(shared_model):
    cost = estimate(shared_model)
    calls = cost.layers[cost.layers["name"] == "shared"]
    assert list(calls["params"]) == [5 * 4 + 4, 0]
    assert cost.layers["params"].sum() == cost.params == shared_model.count_params() == 24


def test_shared_layer_inside_nested_model_and_outside():
    dense = keras.layers.Dense(5, name="tied")
    inner_in = keras.Input((5,))
    inner = keras.Model(inner_in, dense(inner_in), name="inner")
    x = keras.Input((5,))
    model = keras.Model(x, dense(inner(x)))
    cost = estimate(model)
    assert list(cost.layers["name"]) == ["inner/tied", "tied"]
    assert list(cost.layers["params"]) == [30, 0]
    assert cost.forward_macs == 2 * 5 * 5  # 50


# Subclassed models and layers


class TwoDense(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(8, activation="relu", name="hidden")
        self.out = keras.layers.Dense(2, name="out")

    def call(self, x):
        return self.out(self.hidden(x))


class Residual(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.a = keras.layers.Dense(6, name="a")
        self.b = keras.layers.Dense(6, name="b")

    def call(self, x):
        return self.b(self.a(x)) + x


class Scaled(keras.Model):
    """A subclassed model with a weight of its own besides its sublayers."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3, name="dense")

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(3,), initializer="ones", name="scale")

    def call(self, x):
        return self.dense(x) * self.scale


def test_subclassed_model_built_on_data():
    model = TwoDense()
    model(np.zeros((1, 5), "float32"))
    cost = estimate(model, batch_size=3)
    assert list(cost.layers["name"]) == ["hidden", "out"]
    assert cost.forward_macs == 3 * (5 * 8 + 8 * 2)  # 168
    assert cost.params == cost.layers["params"].sum() == model.count_params() == (5 * 8 + 8) + (8 * 2 + 2)


def test_subclassed_model_built_from_input_shape():
    model = TwoDense()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Keras "build() was called ... unbuilt state" warning
        cost = estimate(model, input_shape=(5,))
    assert model.built
    assert cost.forward_macs == 5 * 8 + 8 * 2  # 56
    assert cost.params == model.count_params() == 66


def test_subclassed_model_with_own_weights_gets_a_row_for_them():
    model = Scaled()
    cost = estimate(model, input_shape=(4,))
    assert cost.params == cost.layers["params"].sum() == model.count_params() == (4 * 3 + 3) + 3
    own = rows(cost)[f"{model.name} (own weights)"]
    assert own["params"] == 3
    assert not own["counted"]


def test_subclassed_layer_inside_functional_model():
    x = keras.Input((6,))
    model = keras.Model(x, Residual(name="block")(keras.layers.Dense(6, name="pre")(x)))
    cost = estimate(model)
    r = rows(cost)
    assert list(cost.layers["name"]) == ["pre", "block/a", "block/b", "block/add"]
    assert r["block/add"]["forward_flops"] == 6  # the residual add inside Residual.call
    assert cost.forward_macs == 3 * 6 * 6  # 108
    assert cost.params == model.count_params() == 3 * (6 * 6 + 6)
    # pre: first after Input, weight gradient only: 2 * 36 + 6 bias = 78
    assert r["pre"]["backward_flops"] == 78
    # block/a needs the input gradient for pre: 2 * 36 + 78 = 150
    assert r["block/a"]["backward_flops"] == 150


def test_subclassed_layer_first_after_input_has_no_input_gradient():
    x = keras.Input((6,))
    cost = estimate(keras.Model(x, Residual(name="block")(x)))
    r = rows(cost)
    assert r["block/a"]["backward_flops"] == 2 * 36 + 6  # 78
    assert r["block/b"]["backward_flops"] == 2 * 36 + 2 * 36 + 6  # 150


class WithSequential(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.body = keras.Sequential([keras.layers.Dense(8, name="h"), keras.layers.ReLU(name="r")], name="body")
        self.head = keras.layers.Dense(2, name="head")

    def call(self, x):
        return self.head(self.body(x))


def test_sequential_inside_subclassed_model_is_expanded():
    model = WithSequential()
    cost = estimate(model, input_shape=(5,), batch_size=2)
    assert list(cost.layers["name"]) == ["body/h", "body/r", "head"]
    assert cost.forward_macs == 2 * (5 * 8 + 8 * 2)  # 112
    assert cost.params == model.count_params() == (5 * 8 + 8) + (8 * 2 + 2)


def test_estimate_leaves_the_graph_alone():
    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Dense(2, name="fc")(x) * 3.0)
    operations = model.operations
    nodes = [len(op._inbound_nodes) for op in operations]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            estimate(model)
    assert [len(op._inbound_nodes) for op in operations] == nodes


# batch_size


def conv_model():
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.ReLU(name="relu")(y)
    y = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    return keras.Model(x, keras.layers.Dense(3, name="fc")(y))


@pytest.mark.parametrize("batch_size", [2, 7, 32])
def test_batch_size_scales_totals_linearly(batch_size):
    model = conv_model()
    one = estimate(model, batch_size=1, optimizer="adam")
    many = estimate(model, batch_size=batch_size, optimizer="adam")
    for field in ("forward_macs", "forward_flops", "backward_flops", "activation_bytes"):
        assert getattr(many, field) == batch_size * getattr(one, field), field
        assert getattr(many, f"{field}_per_sample") == getattr(one, field), field
    for field in ("params", "weight_bytes", "gradient_bytes", "optimizer_bytes", "optimizer_flops"):
        assert getattr(many, field) == getattr(one, field), field
    assert many.training_flops - many.optimizer_flops == batch_size * (one.training_flops - one.optimizer_flops)
    assert many.forward_macs == batch_size * (8 * 8 * 4 * 3 * 3 * 3 + 4 * 3)  # conv + fc


def test_per_sample_divides_by_batch():
    cost = estimate(mlp(), batch_size=4)
    assert cost.per_sample() == {f"{f}_per_sample": getattr(cost, f) / 4 for f in PER_SAMPLE_FIELDS}


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "2", None])
def test_bad_batch_size_raises(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        estimate(mlp(), batch_size=batch_size)


# Errors on input shapes


def test_unbuilt_model_without_input_shape_raises():
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="input_shape"):
        estimate(model)
    assert estimate(model, input_shape=(3,)).forward_macs == 3 * 2


def test_unbuilt_subclassed_model_without_input_shape_raises():
    with pytest.raises(ValueError, match="input_shape"):
        estimate(TwoDense())


def variable_length_model(name="tokens"):
    x = keras.Input((None, 8), name=name)
    return keras.Model(x, keras.layers.Dense(4)(x))


def test_unknown_dimension_names_input_and_axis():
    with pytest.raises(ValueError) as info:
        estimate(variable_length_model())
    message = str(info.value)
    assert "'tokens'" in message
    assert "dimension 1" in message
    assert "input_shape" in message


def test_unknown_dimension_of_unnamed_input_names_its_input_layer():
    model = variable_length_model(name=None)
    with pytest.raises(ValueError, match="input_layer"):
        estimate(model)


def test_unknown_dimension_resolved_by_input_shape():
    cost = estimate(variable_length_model(), input_shape=(10, 8), batch_size=2)
    assert cost.forward_macs == 2 * 10 * 8 * 4  # 640
    assert cost.layers["output_shape"].iloc[0] == "(10, 4)"


@pytest.mark.parametrize("input_shape", [(0, 8), (None, 8), (10, -8), (2.5, 8), "10x8", 10])
def test_bad_input_shape_raises(input_shape):
    with pytest.raises(ValueError, match="input_shape"):
        estimate(variable_length_model(), input_shape=input_shape)


def test_dict_inputs_keep_their_shapes_and_dtypes():
    b = keras.Input((3,), name="b")
    a = keras.Input((None,), name="a", dtype="int32")
    embedded = keras.layers.GlobalAveragePooling1D(name="pool")(keras.layers.Embedding(10, 2, name="emb")(a))
    model = keras.Model({"b": b, "a": a}, keras.layers.Concatenate()([keras.layers.Dense(2, name="fc")(b), embedded]))
    with pytest.raises(ValueError, match="input 'a'"):
        estimate(model)
    cost = estimate(model, input_shape={"a": (7,), "b": (3,)})
    r = rows(cost)
    assert r["fc"]["forward_macs"] == 3 * 2  # b has 3 features: not mixed up with a
    assert r["emb"]["output_shape"] == "(7, 2)"
    with pytest.raises(ValueError, match="does not fit input 'b'"):
        estimate(model, input_shape={"a": (7,), "b": (5,)})


def test_dict_inputs_of_known_shapes_are_matched_by_name():
    b = keras.Input((3,), name="b")  # dict order b, a; Keras flattens inputs sorted: a, b
    a = keras.Input((5,), name="a", dtype="int32")
    embedded = keras.layers.Flatten(name="flat")(keras.layers.Embedding(10, 2, name="emb")(a))
    model = keras.Model({"b": b, "a": a}, keras.layers.Concatenate()([keras.layers.Dense(2, name="fc")(b), embedded]))
    r = rows(estimate(model))
    assert r["fc"]["forward_macs"] == 3 * 2
    assert r["emb"]["output_shape"] == "(5, 2)"


def test_multiple_inputs_given_as_list():
    a = keras.Input((None, 4))
    b = keras.Input((None, 4))
    dense = keras.layers.Dense(2)
    model = keras.Model([a, b], keras.layers.Concatenate(axis=1)([dense(a), dense(b)]))
    cost = estimate(model, input_shape=[(3, 4), (5, 4)])
    assert cost.forward_macs == (3 + 5) * 4 * 2  # 64


# Unsupported layers


class Scale(keras.layers.Layer):
    """A custom layer with a weight, written with Keras ops and no cost rule."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.w


def test_custom_layers_without_rules_are_counted_op_by_op():
    x = keras.Input((4,))
    y = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    y = Scale(name="scale")(y)
    cost = estimate(keras.Model(x, keras.layers.Dense(3, name="fc")(y)), batch_size=2)
    r = rows(cost)
    assert list(cost.layers["name"]) == ["double/multiply", "scale/multiply", "scale", "fc"]
    assert r["double/multiply"]["type"] == "ops.Multiply"
    assert r["double/multiply"]["forward_flops"] == r["scale/multiply"]["forward_flops"] == 2 * 4  # 8
    assert r["scale"]["params"] == 4 and r["scale"]["forward_flops"] == 0  # the layer's own weights
    assert r["scale/multiply"]["activation_bytes"] == 2 * 4 * 4  # its output, float32
    assert cost.unsupported == {}
    assert cost.params == model_params(cost) == 4 + 4 * 3 + 3


class Opaque(keras.layers.Layer):
    """A custom layer written with TensorFlow functions instead of Keras ops: it cannot be traced."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        import tensorflow as tf

        return tf.math.multiply(x, self.w)


class Mystery(keras.Operation):
    """A Keras op of the user's own, with no cost rule (every keras.ops function has one or is free)."""

    def call(self, x):
        return keras.ops.sort(x)

    def compute_output_spec(self, x):
        return keras.KerasTensor(x.shape, x.dtype)


def unsupported_model():
    x = keras.Input((4,))
    y = keras.layers.Lambda(lambda t: Mystery()(t), name="sort")(x)
    y = keras.layers.Lambda(lambda t: Mystery()(t) + 1.0, name="sort_shift")(y)
    y = Opaque(name="opaque")(y)
    return keras.Model(x, keras.layers.Dense(3, name="fc")(y))


def test_unsupported_calls_warn_once_per_kind_in_each_estimate(fresh_warnings):
    model = unsupported_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cost = estimate(model)
        estimate(unsupported_model())  # a second model with the same ops is told too
    messages = [str(w.message) for w in caught if "counted as 0" in str(w.message)]
    assert len(messages) == 4 and len({m.split("'")[1] for m in messages}) == 2  # 2 kinds in each of 2 models
    assert any("ops.Mystery (2 call(s)) counted as 0: no cost rule" in m for m in messages)
    assert any("Opaque (not traceable) (1 call(s)) counted as 0: its call could not run" in m for m in messages)
    assert all(w.filename == __file__ for w in caught)
    assert cost.unsupported == {"ops.Mystery": 2, "Opaque (not traceable)": 1}


def test_unsupported_calls_count_zero_and_are_marked(fresh_warnings):
    with pytest.warns(UserWarning, match="counted as 0"):
        cost = estimate(unsupported_model())
    r = rows(cost)
    for name in ("sort/mystery", "sort_shift/mystery", "opaque"):
        assert not r[name]["counted"]
        assert r[name]["forward_flops"] == r[name]["backward_flops"] == r[name]["activation_bytes"] == 0
    assert r["sort_shift/add"]["counted"] and r["sort_shift/add"]["forward_flops"] == 4
    assert r["fc"]["counted"]
    assert cost.forward_macs == 4 * 3
    assert r["opaque"]["params"] == 4  # weights are counted even where the call is not
    assert cost.params == model_params(cost) == 4 + 4 * 3 + 3


def model_params(cost):
    return int(cost.layers["params"].sum())


def test_keras_op_nodes_are_labelled_as_ops(fresh_warnings):
    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Dense(2, name="fc")(x) * 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = estimate(model)
    assert list(cost.layers["type"]) == ["Dense", "ops.Multiply"]


class Broken(keras.layers.Layer):
    def call(self, x):
        return x


def _broken_rule(layer, call):
    raise RuntimeError("boom")


def test_failing_rule_warns_and_counts_zero(fresh_warnings):
    x = keras.Input((4,))
    model = keras.Model(x, Broken(name="broken")(x))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cost = estimate(model, rules={Broken: _broken_rule})
    assert any("_broken_rule failed on broken" in str(w.message) for w in caught)
    assert all(w.filename == __file__ for w in caught)
    assert not rows(cost)["broken"]["counted"]
    assert cost.unsupported == {"Broken (rule failed)": 1}
    assert sum("no cost rule" in str(w.message) for w in caught) == 0  # one warning, about the failure


# Exports


@pytest.fixture
def exported():
    return estimate(conv_model(), batch_size=2, optimizer="adam")


def test_to_dict_fields(exported):
    data = exported.to_dict()
    expected = {
        "params", "trainable_params", "non_trainable_params", "forward_macs", "forward_flops", "backward_flops",
        "training_flops", "weight_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes", "training_bytes",
        "forward_macs_per_sample", "forward_flops_per_sample", "backward_flops_per_sample",
        "training_flops_per_sample", "activation_bytes_per_sample", "layers", "batch_size", "optimizer",
    }
    assert expected <= set(data)
    for name in TOTAL_FIELDS:
        assert data[name] == getattr(exported, name)
    assert data["training_bytes"] == (
        exported.weight_bytes + exported.gradient_bytes + exported.optimizer_bytes + exported.activation_bytes
    )
    assert data["forward_macs_per_sample"] == exported.forward_macs / 2
    assert [row["name"] for row in data["layers"]] == list(exported.layers["name"])
    assert data["optimizer"] == "Adam"


def test_to_json_round_trips(exported, tmp_path):
    assert json.loads(exported.to_json()) == exported.to_dict()
    path = tmp_path / "cost.json"
    assert exported.to_json(path) is None
    assert json.loads(path.read_text()) == exported.to_dict()


def test_to_csv_parses_back_to_the_table(exported, tmp_path):
    parsed = pd.read_csv(io.StringIO(exported.to_csv()))
    pd.testing.assert_frame_equal(parsed, exported.layers, check_dtype=False)
    path = tmp_path / "cost.csv"
    exported.to_csv(path)
    pd.testing.assert_frame_equal(pd.read_csv(path), exported.layers, check_dtype=False)


def test_to_markdown_and_summary(exported):
    text = exported.to_markdown()
    headings = ["layer", "type", "output shape", "params", "forward MACs", "training FLOPs",
                "share of training FLOPs", "activations kept", "counted"]
    assert "| " + " | ".join(headings) + " |" in text
    for name in TOTAL_FIELDS:
        assert f"| {name} |" in text
    conv = exported.layers.set_index("name").loc["conv"]
    nbsp = "\u00a0"
    assert (
        f"| conv | Conv2D | {conv['output_shape'].replace(' ', nbsp)} | {conv['params']:,} | "
        f"{format_count(conv['forward_macs']).replace(' ', nbsp)} |"
    ) in text
    assert f"| {conv['training_flops_share']:.1%} |" in text
    short = exported.to_markdown(max_rows=2)
    assert "... 3 more rows" in short
    summary = exported.summary()
    assert "conv" in summary and "fc" in summary and f"params {exported.params:,}" in summary


# Conventions at model level


def test_training_flops_is_forward_plus_backward_plus_optimizer():
    cost = estimate(conv_model(), batch_size=3, optimizer="adam")
    assert cost.optimizer_flops == 12 * cost.trainable_params  # Adam: 12 FLOPs per parameter
    assert cost.training_flops == cost.forward_flops + cost.backward_flops + cost.optimizer_flops
    assert cost.training_flops == cost.layers["training_flops"].sum()


def two_dense():
    x = keras.Input((16,))
    y = keras.layers.Dense(8, name="a")(x)
    return keras.Model(x, keras.layers.Dense(4, name="b")(y))


# a: 16 -> 8, 128 MACs; b: 8 -> 4, 32 MACs.
A_WEIGHT_GRAD = 2 * 128 + 8  # 264
B_WEIGHT_GRAD = 2 * 32 + 4  # 68
B_INPUT_GRAD = 2 * 32  # 64


def test_first_layer_after_input_has_no_input_gradient():
    r = rows(estimate(two_dense()))
    assert r["a"]["backward_flops"] == A_WEIGHT_GRAD
    assert r["b"]["backward_flops"] == B_INPUT_GRAD + B_WEIGHT_GRAD


@pytest.mark.parametrize(
    ("frozen", "backward"),
    [
        ((), A_WEIGHT_GRAD + B_INPUT_GRAD + B_WEIGHT_GRAD),  # 396
        (("b",), A_WEIGHT_GRAD + B_INPUT_GRAD),  # b still passes the gradient to a: 328
        (("a",), B_WEIGHT_GRAD),  # nothing upstream of b needs a gradient: 68
        (("a", "b"), 0),
    ],
)
def test_frozen_layers_drop_their_weight_gradients(frozen, backward):
    model = two_dense()
    for name in frozen:
        model.get_layer(name).trainable = False
    cost = estimate(model)
    assert cost.backward_flops == backward
    assert cost.trainable_params == sum(p for n, p in (("a", 136), ("b", 36)) if n not in frozen)
    assert cost.training_flops == cost.forward_flops + backward


def test_frozen_nested_model_has_no_backward():
    enc_in = keras.Input((16,))
    encoder = keras.Model(enc_in, keras.layers.Dense(8, name="e")(enc_in), name="encoder")
    encoder.trainable = False
    x = keras.Input((16,))
    cost = estimate(keras.Model(x, keras.layers.Dense(4, name="b")(encoder(x))))
    r = rows(cost)
    assert r["encoder/e"]["backward_flops"] == 0
    assert r["b"]["backward_flops"] == B_WEIGHT_GRAD
    assert cost.trainable_params == 36


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0 "), (12.5, "12.5 "), (1234, "1.23 k"), (999_999, "1 M"), (3.86e9, "3.86 G"), (2.5e13, "25 T")],
)
def test_format_count(value, text):
    assert format_count(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(5, "5 B"), (1536, "1.5 KiB"), (1010 * 1024, "1010 KiB"), (3 * 2**20, "3 MiB"), (2.5 * 2**30, "2.5 GiB")],
)
def test_format_bytes(value, text):
    assert format_bytes(value) == text


@pytest.mark.parametrize("input_shape", [(10, 9), (1, 10, 8), (8,)])
def test_input_shape_must_fit_the_model_inputs(input_shape):
    with pytest.raises(ValueError, match="does not fit input 'tokens'"):
        estimate(variable_length_model(), input_shape=input_shape)


def test_input_shape_must_give_every_input():
    a = keras.Input((None, 4))
    b = keras.Input((None, 4))
    model = keras.Model([a, b], keras.layers.Concatenate(axis=1)([a, b]))
    with pytest.raises(ValueError, match="takes 2 input"):
        estimate(model, input_shape=(3, 4))


def test_nested_model_output_without_weights_upstream_needs_no_gradient():
    inner_in = keras.Input((4,))
    passthrough = keras.layers.Reshape((4,), name="same")(inner_in)
    inner = keras.Model(inner_in, [keras.layers.Dense(4, name="t")(inner_in), passthrough], name="inner")
    x = keras.Input((4,))
    trained, plain = inner(x)
    model = keras.Model(x, keras.layers.Concatenate()([trained, keras.layers.Dense(3, name="after")(plain)]))
    r = rows(estimate(model))
    assert r["after"]["backward_flops"] == 2 * 4 * 3 + 3  # weight gradient only: 27


@pytest.mark.parametrize("enabled", [True, False])
def test_garbage_collector_is_paused_during_an_estimate_and_left_as_it_was(enabled, monkeypatch):
    import gc

    monkeypatch.setenv("NNS_SPEEDUPS", "1")  # the pause is one of the speedups
    seen = []
    monkeypatch.setattr(estimate_module, "_model_cost", lambda *args: seen.append(gc.isenabled()) or 1 / 0)
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(ZeroDivisionError):
            estimate(mlp())
        assert seen == [False] and gc.isenabled() is enabled
    finally:
        gc.enable()


# Repeated blocks: traced once, replayed for the others


class Block(keras.layers.Layer):
    """A transformer-style block: a norm, a projection with an activation, a residual add."""

    def __init__(self, width, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.width, self.activation = width, activation
        self.norm = keras.layers.LayerNormalization(name="norm")
        self.proj = keras.layers.Dense(width, activation=activation, name="proj")

    def call(self, x):
        return x + keras.ops.square(self.proj(self.norm(x)))

    def get_config(self):
        return {**super().get_config(), "width": self.width, "activation": self.activation}


def blocks_model(activations):
    x = keras.Input((5, 8))
    y = x
    for i, activation in enumerate(activations):
        y = Block(8, activation, name=f"block_{i}")(y)
    return keras.Model(x, y)


def test_repeated_blocks_have_their_own_rows_names_and_weights():
    model = blocks_model(["relu"] * 3)
    cost = estimate(model, batch_size=2)
    r = rows(cost)
    for i in range(3):
        block = f"block_{i}"
        assert [n for n in cost.layers["name"] if n.startswith(block + "/")] == [
            f"{block}/norm", f"{block}/proj", f"{block}/square", f"{block}/add"
        ]
        assert r[f"{block}/proj"]["params"] == 8 * 8 + 8  # each block's own weights
        assert r[f"{block}/proj"]["forward_macs"] == 2 * 5 * 8 * 8  # 640
        assert r[f"{block}/square"]["forward_flops"] == r[f"{block}/add"]["forward_flops"] == 2 * 5 * 8  # 80
    # the first block's norm gets no input gradient (it follows the Input); the others do
    assert r["block_0/norm"]["backward_flops"] < r["block_1/norm"]["backward_flops"] == r["block_2/norm"]["backward_flops"]
    assert cost.params == model.count_params() == int(cost.layers["params"].sum())


def test_block_called_again_replays_without_its_weights():
    block = Block(8, name="block")
    x = keras.Input((5, 8))
    model = keras.Model(x, block(block(block(x))))
    cost = estimate(model, batch_size=2)
    proj = cost.layers[cost.layers["name"] == "block/proj"]
    assert proj["call"].tolist() == [1, 2, 3]
    assert proj["params"].tolist() == [8 * 8 + 8, 0, 0]  # its weights are counted at its first call only
    assert proj["forward_macs"].tolist() == [2 * 5 * 8 * 8] * 3  # 640 at every call
    assert cost.params == model.count_params() == int(cost.layers["params"].sum())


class SharedProjectionBlock(keras.layers.Layer):
    """``Block`` with a projection layer that other blocks hold too."""

    def __init__(self, projection, **kwargs):
        super().__init__(**kwargs)
        self.norm = keras.layers.LayerNormalization(name="norm")
        self.proj = projection

    call = Block.call


def test_blocks_sharing_a_sublayer_count_its_weights_once():
    shared = keras.layers.Dense(8, activation="relu", name="proj")
    x = keras.Input((5, 8))
    y = x
    for i in range(3):
        y = SharedProjectionBlock(shared, name=f"block_{i}")(y)
    model = keras.Model(x, y)
    cost = estimate(model, batch_size=2)
    r = {(name, call): params for name, call, params in zip(cost.layers["name"], cost.layers["call"], cost.layers["params"])}
    assert [r[(f"block_{i}/proj", i + 1)] for i in range(3)] == [8 * 8 + 8, 0, 0]
    assert [r[(f"block_{i}/norm", 1)] for i in range(3)] == [2 * 8] * 3  # each block's own norm
    assert cost.params == model.count_params() == int(cost.layers["params"].sum())


def test_blocks_configured_differently_are_traced_each():
    cost = estimate(blocks_model(["relu", "gelu"]), batch_size=2)
    r = rows(cost)
    # the Dense layers' activations differ: ReLU 1 FLOP per element, exact GELU 65 (XLA's count)
    assert r["block_1/proj"]["forward_flops"] - r["block_0/proj"]["forward_flops"] == (65 - 1) * 2 * 5 * 8


class UnconfigurableBlock(keras.layers.Layer):
    """``Block`` in the layer's dtype policy, with a ``get_config`` that fails as some keras-hub layers' do:
    its plain attributes key its trace."""

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.norm = keras.layers.LayerNormalization(name="norm", dtype=self.dtype_policy)
        self.proj = keras.layers.Dense(width, activation="relu", name="proj", dtype=self.dtype_policy)

    call = Block.call

    def get_config(self):
        raise NotImplementedError


def test_blocks_alike_but_for_their_dtype_policy_are_traced_each():
    x = keras.Input((5, 8))
    y = x
    for i, dtype in enumerate(["float32", "float32", "mixed_bfloat16"]):
        y = UnconfigurableBlock(8, dtype=dtype, name=f"block_{i}")(y)
    cost = estimate(keras.Model(x, y), batch_size=2)
    r = rows(cost)
    # the bfloat16 block keeps its 2 x 5 x 8 float32 input and its bfloat16 tensors: 2 bytes an element
    assert r["block_2/square"]["activation_bytes"] == 2 * 5 * 8 * 2
    assert r["block_1/square"]["activation_bytes"] == 2 * 5 * 8 * 4


class ScaleOrShift(keras.layers.Layer):
    """exp(x) * scale, or x + shift: what it computes depends on which keyword argument it gets."""

    def call(self, x, scale=None, shift=None):
        return ops.exp(x) * scale if scale is not None else x + shift


def test_same_layer_called_with_another_keyword_is_traced_again():
    x, m = keras.Input((16,)), keras.Input((16,))
    y = ScaleOrShift(name="first")(x, scale=m)
    model = keras.Model([x, m], ScaleOrShift(name="second")(y, shift=m))
    cost = estimate(model, batch_size=2)
    # 2 x 16 elements per op, 1 FLOP each
    assert dict(zip(cost.layers["name"], cost.layers["forward_flops"], strict=True)) == {
        "first/exp": 32, "first/multiply": 32, "second/add": 32,
    }


def test_replayed_blocks_are_listed_among_the_walks_leaves():
    from nns_callbacks.input_specs import input_specs
    from nns_callbacks.walk import ModelWalk

    model = blocks_model(["relu"] * 3)
    walk = ModelWalk()
    walk.run(model, input_specs(model, 2))
    names = [f"block_{i}{name}" for i in range(3) for name in ("/norm", "/proj", "/square", "/add", "")]
    assert [leaf.path for leaf in walk.leaves] == names
    assert [leaf.layer for leaf in walk.leaves if leaf.path == "block_2/proj"] == [model.get_layer("block_2").proj]
    # block 0 (its input needs no gradient) and block 1 are traced leaf by leaf; block 2 replays block 1
    assert [len(getattr(entry, "call_indices", [entry])) for entry in walk.entries] == [1] * 10 + [5]


class MaskUser(keras.layers.Layer):
    """Zeroes the masked steps: one multiply more where a mask arrives."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        return x if mask is None else x * ops.cast(ops.expand_dims(mask, -1), x.dtype)


class Sublayers(keras.layers.Layer):
    """Calls layers with rules the ways Keras's ``__call__`` must step in (masks, casts) or not."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embed = keras.layers.Embedding(50, 8, mask_zero=True, name="embed")  # makes a mask
        self.masked = keras.layers.Dense(8, name="masked")  # passes its input's mask on
        self.mask_users = [MaskUser(name=f"mask_user_{i}") for i in range(2)]
        self.half = keras.layers.Dense(8, dtype="float16", name="half")  # casts its input
        self.keep = keras.layers.Dense(8, name="keep")  # keeps the input that "half" casts
        self.drop = keras.layers.Dropout(0.5, name="drop")
        self.soft = keras.layers.Softmax(name="soft")
        self.plain = keras.layers.EinsumDense("bsd,de->bse", (None, 8), name="plain")

    def call(self, tokens, mask):
        x = self.mask_users[1](self.masked(self.mask_users[0](self.embed(tokens))))
        z = ops.exp(x)  # no mask
        y = self.drop(self.half(z), training=True)
        return self.plain(self.soft(ops.cast(y, "float32") + self.keep(z), mask=mask))


@pytest.mark.filterwarnings("ignore:.*does not support masking")
def test_layers_costed_without_keras_call_cost_what_they_cost_through_it(monkeypatch):
    from nns_callbacks import keras_compat

    tokens, mask = keras.Input((6,), dtype="int32"), keras.Input((6, 8), dtype="bool")
    model = keras.Model([tokens, mask], Sublayers(name="sub")(tokens, mask))
    direct = estimate(model, batch_size=3).to_dict()
    monkeypatch.setattr(keras_compat, "calls_as_given", lambda *args: False)
    through_keras = estimate(model, batch_size=3).to_dict()
    assert direct == through_keras
    names = [row["name"] for row in direct["layers"]]
    assert "sub/mask_user_0/multiply" in names and "sub/mask_user_1/multiply" in names


def test_walk_leaves_the_model_graph_as_it_was():
    model = blocks_model(["relu"] * 2)
    outputs = [model.get_layer(f"block_{i}").output for i in range(2)]
    estimate(model, batch_size=3)
    estimate(model, batch_size=4)
    # a layer called again on symbolic tensors would have several outputs and raise here
    assert [model.get_layer(f"block_{i}").output for i in range(2)] == outputs
    with pytest.raises(AttributeError, match="never been called"):
        _ = model.get_layer("block_0").proj.output  # the walk's symbolic calls of it left no node behind


# Rules for one call


def test_rules_for_one_call_replace_the_registry_only_there():
    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Dense(3, name="fc")(x))

    def flat(layer, call):
        """Every Dense costs 1000 multiply-adds."""
        return LayerCost(macs=1000)

    assert estimate(model, rules={keras.layers.Dense: flat}).forward_macs == 1000
    assert estimate(model).forward_macs == 4 * 3  # the registry is untouched
    with pytest.raises(ValueError, match="rules must map classes"):
        estimate(model, rules={"Dense": flat})


@keras.saving.register_keras_serializable("nns_tests")
class MinimalCell(keras.layers.Layer):
    """A custom recurrent cell: h = tanh(x W + h U)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units))
        self.u = self.add_weight(shape=(self.units, self.units))

    def call(self, x, states):
        h = keras.ops.tanh(x @ self.w + states[0] @ self.u)
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def minimal_cell_step(cell, call):
    """One step: (features + units) x units multiply-adds per sample."""
    batch, features = call.input_shape
    return LayerCost(macs=batch * (features + cell.units) * cell.units)


@pytest.mark.parametrize("wrap", [lambda rnn: rnn, lambda rnn: keras.layers.Bidirectional(rnn, name="rnn")])
def test_a_rule_for_a_custom_cell_costs_every_step_of_its_rnn(wrap):
    x = keras.Input((7, 3))
    model = keras.Model(x, wrap(keras.layers.RNN(MinimalCell(5), name="rnn"))(x))
    cost = estimate(model, batch_size=2, rules={MinimalCell: minimal_cell_step})
    directions = 2 if isinstance(model.get_layer("rnn"), keras.layers.Bidirectional) else 1
    assert cost.unsupported == {}
    assert cost.forward_macs == directions * 7 * 2 * (3 + 5) * 5  # steps x batch x (features + units) x units


class PairThatBreaks(keras.layers.Layer):
    """Returns (x, 2x) while the model is built, then fails on any input: Keras cannot tell its outputs."""

    broken = False

    def call(self, x):
        if PairThatBreaks.broken:
            raise RuntimeError("broken after the build")
        return x, x * 2.0


def test_a_layer_whose_outputs_cannot_be_computed_takes_them_from_the_models_graph(fresh_warnings):
    x = keras.Input((4,))
    first, second = PairThatBreaks(name="pair")(x)
    model = keras.Model(x, keras.layers.Concatenate(name="join")([first, keras.layers.Dense(3, name="fc")(second)]))
    PairThatBreaks.broken = True
    try:
        with pytest.warns(UserWarning, match="PairThatBreaks"):
            cost = estimate(model, batch_size=5)
    finally:
        PairThatBreaks.broken = False
    r = rows(cost)
    assert r["fc"]["forward_macs"] == 5 * 4 * 3  # costed after the broken layer, with its real shape
    assert r["join"]["output_shape"] == "(7,)"
    assert not r["pair"]["counted"]


def test_summary_has_a_header_left_aligned_names_and_memory_parts_that_add_up():
    x = keras.Input((8,))
    model = keras.Model(x, keras.layers.Dense(4, name="a_long_layer_name")(keras.layers.Dense(3, name="d")(x)))
    cost = estimate(model, batch_size=2, optimizer="adam")
    lines = cost.summary().splitlines()
    assert lines[0] == f"{model.name}: batch 2, dtype policy float32, optimizer Adam"
    assert lines[2].startswith("d ") and lines[3].startswith("a_long_layer_name ")  # names read from the left
    assert lines[-1] == (
        f"memory {format_bytes(cost.training_bytes)} = weights {format_bytes(cost.weight_bytes)} + "
        f"gradients {format_bytes(cost.gradient_bytes)} + optimizer {format_bytes(cost.optimizer_bytes)} + "
        f"activations {format_bytes(cost.activation_bytes)}"
    )
    assert cost.training_bytes == cost.weight_bytes + cost.gradient_bytes + cost.optimizer_bytes + cost.activation_bytes


def test_summary_shows_every_row_and_one_not_counted_line_under_one_header(exported):
    cost = dataclasses.replace(exported, unsupported={"ops.Sort": 2, "MyLayer (not traceable)": 1})
    lines = cost.summary(label="my label").splitlines()
    assert lines[0] == "my label: batch 2, dtype policy float32, optimizer Adam"  # the one header
    assert sum("batch 2" in line for line in lines) == 1
    assert len(lines) == 1 + 1 + len(cost.layers) + 2 + 1  # header, column titles, every row, totals, not counted
    assert lines[-1] == "Not counted (cost 0): MyLayer (not traceable) x1, ops.Sort x2"
    short = cost.summary(max_rows=2).splitlines()
    assert short[0].startswith(f"{cost.model_name}: batch 2") and "... 3 more rows" in short
    markdown = cost.to_markdown(label="my label").splitlines()
    assert markdown[0].startswith("**my label**, batch 2")
    assert [line for line in markdown if "Not counted" in line] == [lines[-1]]


def test_sums_beyond_64_bit_integers_stay_exact():
    """A batch of 2**40: every sum is past 2**63, and the shares still add up to one."""
    inputs = keras.Input((1024, 4096))
    model = keras.Model(inputs, keras.layers.Dense(64)(keras.layers.Dense(16384)(inputs)))
    cost = estimate(model, batch_size=2**40)
    tokens = 2**40 * 1024
    forward = tokens * (2 * 4096 * 16384 + 16384 + 2 * 16384 * 64 + 64)
    assert cost.forward_flops == forward > 2**63
    assert cost.layers["training_flops_share"].sum() == pytest.approx(1.0)
    assert (cost.layers["training_flops_share"] > 0).all()
    assert json.loads(cost.to_json())["forward_flops"] == forward


@pytest.mark.parametrize(
    ("shape", "message"),
    [({"a": (4,)}, r"no shape for input\(s\) 'b'"), ({"a": (4,), "b": (3,), "c": (2,)}, r"'c' not input\(s\)")],
)
def test_an_input_shape_dict_names_every_input_and_nothing_else(shape, message):
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    model = keras.Model({"a": a, "b": b}, keras.layers.Concatenate()([a, b]))
    with pytest.raises(ValueError, match=message):
        estimate(model, input_shape=shape)


class WindowBlock(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(4, 5)

    def call(self, x):
        return self.conv(x) * 2.0


@pytest.mark.parametrize("traced", [False, True])
def test_an_input_smaller_than_a_kernel_is_an_error_naming_the_layer(traced):
    inputs = keras.Input((None, None, 3))
    outputs = WindowBlock()(inputs) if traced else keras.layers.Conv2D(4, 5, name="conv")(inputs)
    with pytest.raises(ValueError, match=r"the input of .*conv.* \(Conv2D\), of shape \(1, 3, 3, 3\), is smaller"):
        estimate(keras.Model(inputs, outputs), input_shape=(3, 3, 3))
