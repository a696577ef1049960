"""Contract tests: one per Keras internal that nns_callbacks relies on (nns_callbacks/keras_compat.py).

A Keras release that moves one of them fails the test named after it.
"""

import functools
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from nns_callbacks import keras_compat as compat

L = keras.layers


def functional():
    inputs = keras.Input((4,), name="features")
    return keras.Model(inputs, L.Dense(2, name="fc")(inputs))


def test_functional_is_the_class_of_graph_models():
    assert isinstance(functional(), compat.Functional)
    assert not isinstance(keras.Sequential([L.Dense(2)]), compat.Functional)


def test_a_built_sequential_runs_a_functional_graph():
    model = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    assert isinstance(compat.graph_of(model), compat.Functional)
    assert compat.graph_of(keras.Sequential([L.Dense(2)])) is None  # not built: no graph yet


def test_run_graph_computes_every_node_with_the_given_function():
    seen = []

    def operation_fn(op):
        seen.append(op.name)
        return op

    outputs = compat.run_graph(functional(), keras.KerasTensor((3, 4)), operation_fn)
    assert seen == ["fc"] and tuple(outputs.shape) == (3, 2)


def test_inputs_struct_keeps_dict_inputs_by_name():
    a, b = keras.Input((2,), name="a"), keras.Input((3,), name="b")
    model = keras.Model({"a": a, "b": b}, L.Concatenate()([a, b]))
    assert set(compat.inputs_struct(model)) == {"a", "b"}


@pytest.mark.parametrize(
    ("layer", "base"),
    [
        (L.MaxPooling2D, "BasePooling"),
        (L.GlobalAveragePooling1D, "BaseGlobalPooling"),
        (L.Conv2D, "BaseConv"),
        (L.Conv2DTranspose, "BaseConvTranspose"),
        (L.DepthwiseConv2D, "BaseDepthwiseConv"),
        (L.SeparableConv2D, "BaseSeparableConv"),
    ],
)
def test_layer_families_share_their_base_class(layer, base):
    assert issubclass(layer, getattr(compat, base))


def test_adaptive_pooling_has_its_base_class_where_keras_has_the_layers():
    if not hasattr(L, "AdaptiveMaxPooling2D"):
        assert compat.BaseAdaptivePooling is None
    else:
        assert issubclass(L.AdaptiveMaxPooling2D, compat.BaseAdaptivePooling)


def test_conv_lstm_cell_is_the_cell_of_conv_lstm():
    assert isinstance(L.ConvLSTM2D(2, 3).cell, compat.ConvLSTMCell)


@pytest.mark.parametrize(("application", "layer"), [("ConvNeXtTiny", "LayerScale")])
def test_applications_define_their_own_layers(application, layer):
    model = getattr(keras.applications, application)(weights=None, input_shape=(32, 32, 3))
    assert any(isinstance(x, getattr(compat, layer)) for x in model.layers)
    assert compat.CustomScaleLayer is not None  # InceptionResNetV2's, too slow to build here


@pytest.mark.parametrize(
    ("function", "module", "name"),
    [
        (lambda x: keras.ops.add(x, x), "OPS_NUMPY", "Add"),
        (lambda x: keras.ops.einsum("ij,jk->ik", x, keras.ops.transpose(x)), "OPS_NUMPY", "Einsum"),
        (lambda x: keras.ops.softmax(x), "OPS_NN", "Softmax"),
        (lambda x: keras.ops.rsqrt(x), "OPS_MATH", "Rsqrt"),
        (lambda x: keras.ops.cast(x, "float16"), "OPS_CORE", "Cast"),
        (lambda x: keras.ops.inv(x), "OPS_LINALG", "Inv"),
        (lambda x: keras.ops.image.resize(keras.ops.reshape(x, (1, 3, 3, 1)), (6, 6)), "OPS_IMAGE", "Resize"),
    ],
)
def test_keras_ops_on_symbolic_tensors_are_op_classes_of_these_modules(function, module, name):
    output = function(keras.KerasTensor((3, 3)))
    operation = output._keras_history.operation
    assert type(operation) is getattr(getattr(compat, module), name)
    assert compat.op_label(operation) == {"Add": "add", "Einsum": "einsum", "Softmax": "softmax",
                                          "Rsqrt": "rsqrt", "Cast": "cast", "Inv": "inv", "Resize": "resize"}[name]


def test_rearrange_is_an_op_class_where_keras_has_it():
    if not hasattr(keras.ops, "rearrange"):
        assert compat.Rearrange is None
        return
    output = keras.ops.rearrange(keras.KerasTensor((2, 3)), "a b -> b a")
    assert isinstance(output._keras_history.operation, compat.Rearrange)


def test_dot_product_attention_is_an_op_class():
    q = keras.KerasTensor((2, 5, 4, 8))
    output = keras.ops.dot_product_attention(q, q, q)
    assert isinstance(output._keras_history.operation, compat.DotProductAttention)


def test_symbolic_layer_calls_and_ops_go_through_the_hooked_methods():
    seen = []

    def call_hook(layer, *args, **kwargs):
        seen.append("__call__")
        return compat.ORIGINAL_LAYER_CALL(layer, *args, **kwargs)

    def layer_hook(layer, *args, **kwargs):
        seen.append(type(layer).__name__)
        return layer.compute_output_spec(*args, **kwargs)

    def op_hook(op, *args, **kwargs):
        seen.append(type(op).__name__)
        return op.compute_output_spec(*args, **kwargs)

    dense = L.Dense(2)
    dense.build((None, 4))
    compat.patch_layer_calls(call_hook, layer_hook, op_hook)
    try:
        x = keras.KerasTensor((3, 4))
        dense(x) + x[:, :2]
    finally:
        compat.restore_layer_calls()
    assert seen[:2] == ["__call__", "Dense"] and "Add" in seen
    assert keras.layers.Layer.__call__ is compat.ORIGINAL_LAYER_CALL
    assert keras.Operation.symbolic_call is compat.ORIGINAL_OP_SYMBOLIC_CALL


def test_while_patched_a_symbolic_layer_call_records_no_graph_node():
    model = functional()
    layer = model.get_layer("fc")
    walking = [True]

    def layer_hook(layer, *args, **kwargs):  # as the walk's: outputs only while walking, Keras's own otherwise
        if walking[0]:
            return layer.compute_output_spec(*args, **kwargs)
        return compat.ORIGINAL_LAYER_SYMBOLIC_CALL(layer, *args, **kwargs)

    compat.patch_layer_calls(compat.ORIGINAL_LAYER_CALL, layer_hook, compat.ORIGINAL_OP_SYMBOLIC_CALL,
                             walking=lambda: walking[0])
    try:
        layer(keras.KerasTensor((3, 4)))
        assert len(layer._inbound_nodes) == 1 and layer.output is model.output
        walking[0] = False  # another thread, building a model meanwhile
        layer(keras.KerasTensor((3, 4)))
        assert len(layer._inbound_nodes) == 2
    finally:
        compat.restore_layer_calls()


def test_while_patched_weights_and_jax_arrays_combine_with_symbolic_tensors():
    weight = keras.Variable(np.ones((3,), "float32"))
    x = keras.KerasTensor((2, 3))
    compat.patch_symbolic_arithmetic()
    try:
        products = [weight * x, x * weight, weight + x, keras.ops.convert_to_tensor(np.ones(3, "float32")) * x]
    finally:
        compat.restore_symbolic_arithmetic()
    assert all(isinstance(p, keras.KerasTensor) and tuple(p.shape) == (2, 3) for p in products)
    with pytest.raises(Exception):  # noqa: B017  (restored: Keras refuses a weight times a symbolic tensor)
        weight * x


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.block = keras.Sequential([L.Dense(3), L.Dense(2)])

    def call(self, x):
        return self.block(x)


class OwnBuild(Subclassed):
    def build(self, input_shape):
        self.block.build(input_shape)


def test_default_build_is_marked_as_such():
    assert not compat.has_own_build(Subclassed())
    assert compat.has_own_build(OwnBuild())


def test_subclassed_models_record_their_build_shapes():
    model = Subclassed()
    model(np.zeros((2, 5), "float32"))
    assert list(compat.build_shapes(model).values()) == [(2, 5)]


def test_sublayers_lists_every_nested_layer_once_in_order():
    model = Subclassed()
    model.build((None, 5))
    assert [type(x).__name__ for x in compat.sublayers(model)] == ["Subclassed", "Sequential", "Dense", "Dense"]


def test_sublayer_mapping_pairs_sublayers_of_layers_alike():
    first, second = Subclassed(), Subclassed()
    first.build((None, 5))
    second.build((None, 5))
    mapping = compat.sublayer_mapping(compat.sublayers(first), second)
    assert [mapping[id(x)] for x in compat.sublayers(first)] == compat.sublayers(second)
    assert compat.sublayer_mapping(compat.sublayers(first), L.Dense(2)) is None


class Scaled(Subclassed):
    """Weights of its own, one frozen, besides its sublayers'."""

    def build(self, input_shape):
        self.block.build(input_shape)
        self.scale = self.add_weight(shape=(2,), name="scale")
        self.offset = self.add_weight(shape=(2,), name="offset", trainable=False)


def ids(weights) -> list[int]:
    return [id(w) for w in weights]


def test_unseen_weights_are_those_of_layer_weights_not_seen_yet():
    model = Scaled()
    model.build((None, 5))
    seen, settled = set(), set()
    dense = model.block.layers[0]
    assert ids(compat.unseen_weights(dense, seen, settled)) == ids(dense.weights)
    rest = [id(w) for w in model.weights if id(w) not in ids(dense.weights)]
    assert ids(compat.unseen_weights(model, seen, settled)) == rest
    assert seen == set(ids(model.weights)) and compat.unseen_weights(model, seen, settled) == []


def test_has_trainable_weights_tells_whether_layer_trainable_weights_lists_any():
    model = Scaled()
    model.build((None, 5))
    assert compat.has_trainable_weights(model) and not compat.has_trainable_weights(L.Dropout(0.5))
    model.block.trainable = False
    model.scale.trainable = False
    assert not model.trainable_weights and not compat.has_trainable_weights(model)
    model.trainable = False
    assert not compat.has_trainable_weights(model.block.layers[0])


def test_has_weights_tells_whether_layer_weights_lists_any():
    model = Scaled()
    model.build((None, 5))
    empty = L.Dropout(0.5)
    known = {}
    assert [compat.has_weights(x, known) for x in (empty, model.block, model)] == [False, True, True]


def test_variable_shape_is_the_shape_as_a_tuple():
    variable = keras.Variable(np.zeros((3, 4), "float32"))
    assert compat.variable_shape(variable) == tuple(variable.shape) == (3, 4)


class _WithInit(keras.layers.Layer):
    def __init__(self, units, *, scale=1.0, **kwargs):
        super().__init__(**kwargs)


def test_symbolic_helpers_answer_as_keras_own_while_patched():
    import inspect

    from keras.src.backend.common.keras_tensor import KerasTensor

    layer = keras.layers.Dense(3)
    try:
        compat.patch_symbolic_helpers()
        helpers = compat.patches._OPERATION_MODULE.inspect
        assert compat.patches._LAYER_MODULE.inspect is helpers
        for function in (_WithInit.__init__, layer.call, layer.compute_output_shape, functools.partial(_WithInit.__init__, None)):
            assert helpers.signature(function) == inspect.signature(function)
            assert helpers.signature(function) == inspect.signature(function)  # remembered, still the same
        assert helpers.getfullargspec(_WithInit.__init__) == inspect.getfullargspec(_WithInit.__init__)
        assert helpers.Parameter is inspect.Parameter
        assert compat.patches._NAMING_MODULE.to_snake_case("EinsumDense2D") == compat.patches._ORIGINAL_TO_SNAKE_CASE("EinsumDense2D")
        is_tensor = compat.patches._BACKEND_MODULE.is_tensor
        assert [is_tensor(x) for x in (KerasTensor((2,)), None, 3, keras.ops.ones((2,)))] == [False, False, False, True]
    finally:
        compat.restore_symbolic_helpers()
    assert compat.patches._OPERATION_MODULE.inspect is compat.patches._LAYER_MODULE.inspect is inspect
    assert compat.patches._NAMING_MODULE.to_snake_case is compat.patches._ORIGINAL_TO_SNAKE_CASE
    assert compat.patches._BACKEND_MODULE.is_tensor is compat.ORIGINAL_IS_TENSOR
    assert not compat.ORIGINAL_IS_TENSOR(KerasTensor((2,)))  # what the quick answer relies on


def _built(layer, shape=(2, 4)):
    layer.build(shape)
    return layer


def _spec(dtype="float32", mask=False):
    x = keras.KerasTensor((2, 4), dtype=dtype)
    if mask:
        x._keras_mask = keras.KerasTensor((2,), dtype="bool")
    return x


@pytest.mark.parametrize("layer, args, kwargs, expected", [
    (_built(keras.layers.Dense(3)), (_spec(),), {}, True),
    (_built(keras.layers.Dropout(0.5)), (_spec(),), {"training": True}, True),
    (keras.layers.Dense(3), (_spec(),), {}, False),  # Keras builds it first
    (_built(keras.layers.Dense(3)), (_spec(mask=True),), {}, False),  # Keras passes the mask on
    (_built(keras.layers.Dense(3)), (_spec("float16"),), {}, False),  # Keras casts the input to float32
    (_built(keras.layers.Dense(3, dtype="mixed_float16")), (_spec("float16"),), {}, False),  # autocast scope
    (_built(keras.layers.Embedding(5, 3, mask_zero=True), (2,)), (_spec("int32"),), {}, False),  # makes a mask
    (_built(keras.layers.Dense(3)), (np.zeros((2, 4), "float32"),), {}, False),  # Keras converts arrays
], ids=["plain", "constant-kwarg", "unbuilt", "masked", "cast", "mixed", "mask-maker", "array"])
def test_calls_as_given_only_where_keras_call_would_change_nothing(layer, args, kwargs, expected):
    assert compat.calls_as_given(layer, args, kwargs) is expected


def test_variable_dtype_is_the_dtype_it_stores():
    variable = keras.Variable(np.zeros((2,), "float16"))
    assert compat.variable_dtype(variable) == str(variable.dtype) == "float16"


def test_weights_are_layer_weights():
    shared = keras.layers.Dense(4)
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, shared(keras.layers.BatchNormalization()(inner_in)))
    x = keras.Input((4,))
    model = keras.Model(x, shared(inner(keras.layers.Dense(4)(x))))
    assert [id(w) for w in compat.weights(model)] == [id(w) for w in model.weights]
    assert len(compat.weights(model)) == 2 + 4 + 2  # the shared Dense's weights once


def test_weight_specs_describe_layer_weights_in_order():
    model = keras.Sequential([keras.layers.Dense(3), keras.layers.BatchNormalization()])
    model.build((None, 5))
    specs = compat.weight_specs(compat.weights(model))
    assert specs == tuple((tuple(w.shape), str(w.dtype), w.trainable) for w in model.weights)
    assert len(specs) == 6  # kernel, bias, gamma, beta, moving mean and variance


def test_a_layer_call_is_known_while_it_runs():
    seen = []

    class Probe(L.Layer):
        def call(self, x):
            seen.append(compat.in_layer_call())
            return x

    Probe()(np.zeros((1, 2), "float32"))
    assert seen == [True] and not compat.in_layer_call()


def test_keras_mask_is_the_mask_keras_attached():
    embedded = L.Embedding(10, 4, mask_zero=True)(keras.Input((3,), dtype="int32"))
    assert tuple(compat.keras_mask(embedded).shape) == (None, 3)
    assert compat.keras_mask(keras.KerasTensor((2, 3))) is None


def test_input_tensors_know_the_input_layer_that_made_them():
    assert compat.producer_name(keras.Input((3,), name="pixels")) == "pixels"


def compiled(steps_per_execution=1):
    model = functional()
    model.compile("sgd", "mse", steps_per_execution=steps_per_execution)
    return model


class Probe(keras.callbacks.Callback):
    """Records what the compat helpers see from inside a running fit."""

    def __init__(self):
        super().__init__()
        self.batches, self.adapters = [], []

    def on_train_begin(self, logs=None):
        self.adapters.append(compat.running_data_adapter())

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(batch)


def test_batch_end_hooks_say_which_steps_are_done():
    probe = Probe()
    compiled(steps_per_execution=2).fit(np.ones((100, 4)), np.ones((100, 2)), batch_size=32, verbose=0,
                                        callbacks=[probe])
    assert [compat.steps_done(batch, 2) for batch in probe.batches] == [2, 4]  # 4 steps in 2 executions


class ThreadProbe(keras.callbacks.Callback):
    """An async-safe callback that notes the thread of each batch-end hook."""

    async_safe = True

    def __init__(self):
        super().__init__()
        self.threads = set()

    def on_train_batch_end(self, batch, logs=None):
        self.threads.add(threading.get_ident())


def test_batch_hooks_overlap_only_where_the_backend_says_so():
    probe = ThreadProbe()
    callbacks = keras.callbacks.CallbackList([probe], model=compiled())
    if getattr(callbacks, "_async_train", False):  # Keras dispatches the hooks to a thread pool
        assert compat.batch_hooks_may_overlap()
    if not compat.batch_hooks_may_overlap():
        compiled().fit(np.ones((64, 4)), np.ones((64, 2)), batch_size=8, verbose=0, callbacks=[probe])
        assert probe.threads == {threading.get_ident()}


def test_the_running_fit_shows_its_data_adapter():
    probe = Probe()
    compiled().fit(np.ones((40, 4)), np.ones((40, 2)), batch_size=16, verbose=0, callbacks=[probe])
    adapter = probe.adapters[0]
    assert (adapter.batch_size, adapter.num_batches, adapter.partial_batch_size) == (16, 3, 8)
    assert compat.running_data_adapter() is None  # outside any fit


def batches():
    for _ in range(3):
        yield np.ones((16, 4), "float32"), np.ones((16, 2), "float32")


class Batches(keras.utils.PyDataset):
    def __len__(self):
        return 3

    def __getitem__(self, index):
        return np.ones((16, 4), "float32"), np.ones((16, 2), "float32")


@pytest.mark.parametrize(
    "data",
    [
        lambda: batches(),
        lambda: Batches(),
        lambda: tf.data.Dataset.from_tensor_slices((np.ones((48, 4)), np.ones((48, 2)))).batch(16).filter(
            lambda x, y: True
        ),
    ],
)
def test_the_first_batch_size_of_generators_datasets_and_pipelines(data):
    probe = Probe()
    compiled().fit(data(), epochs=1, verbose=0, callbacks=[probe])
    adapter = probe.adapters[0]
    assert (compat.first_batch_size(adapter) or compat.dataset_batch_size(adapter)) == 16


def test_the_loss_tracker_counts_the_samples_of_the_pass():
    model = compiled()
    model.fit(np.ones((40, 4)), np.ones((40, 2)), batch_size=16, verbose=0)
    assert compat.samples_seen(model) == 40.0
    model.evaluate(np.ones((7, 4)), np.ones((7, 2)), batch_size=4, verbose=0)
    assert compat.samples_seen(model) == 7.0


def test_keras_activations_relu_runs_its_own_op_class():
    output = keras.activations.relu(keras.KerasTensor((3, 3)), max_value=6.0)
    assert isinstance(output._keras_history.operation, compat.ReLUOp)


class ListProbe(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.found = compat.running_loop_local("callbacks", lambda x: isinstance(x, keras.callbacks.CallbackList))


def test_the_running_fit_shows_its_callback_list():
    probe, other = ListProbe(), keras.callbacks.History()
    compiled().fit(np.ones((8, 4)), np.ones((8, 2)), verbose=0, callbacks=[probe, other])
    assert probe in probe.found.callbacks and other in probe.found.callbacks


def test_keras_says_an_input_smaller_than_a_window_gives_no_output():
    layer = keras.layers.Conv2D(4, 5)
    with pytest.raises(ValueError) as refused:
        layer(keras.KerasTensor((1, 3, 3, 3)))
    assert compat.says_output_too_small(refused.value)
    assert not compat.says_output_too_small(ValueError("some other trouble"))
