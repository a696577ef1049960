"""The roofline (each pass's time bound by the peak FLOP/s or the memory bandwidth), the roll-ups by block and
by kind (their sums are the totals, exactly), and ``summary(depth=N)``."""

import math

import keras
import pandas as pd
import pytest

from nns_callbacks import estimate
from nns_callbacks.rollups import KINDS, block_of, kind_of
from nns_callbacks.roofline import COMPUTE, MEMORY, pass_time, roofline


def table(*rows) -> pd.DataFrame:
    """A per-layer table of (name, type, forward FLOPs, backward FLOPs, optimizer FLOPs, forward, backward and
    optimizer bytes moved) rows."""
    records = []
    for name, type_name, ff, bf, of, fb, bb, ob in rows:
        records.append({"name": name, "type": type_name, "params": 1, "forward_macs": ff // 2, "forward_flops": ff,
                        "backward_flops": bf, "training_flops": ff + bf + of, "activation_bytes": 8,
                        "forward_bytes_moved": fb, "backward_bytes_moved": bb, "optimizer_bytes_moved": ob,
                        "training_bytes_moved": fb + bb + ob,
                        "arithmetic_intensity": (ff + bf + of) / (fb + bb + ob)})
    return pd.DataFrame(records)


@pytest.mark.parametrize(
    ("flops", "nbytes", "seconds", "bound"),
    [(1000, 10, 1000 / 100, COMPUTE), (1000, 1000, 1000 / 10, MEMORY), (100, 10, 1.0, COMPUTE)],
)
def test_a_pass_takes_the_longer_of_its_compute_and_its_memory_time(flops, nbytes, seconds, bound):
    # peak 100 FLOP/s, bandwidth 10 B/s: the ridge point is 10 FLOPs per byte; at 10 exactly, compute
    assert pass_time(flops, nbytes, 100.0, 10.0) == (pytest.approx(seconds), bound)


def test_each_pass_of_a_row_is_bound_on_its_own_and_the_step_is_their_sum():
    layers = table(
        # a product: forward and backward compute-bound, the optimizer's update memory-bound
        ("block_1/ffn/dense", "Dense", 4000, 8000, 20, 100, 200, 300),
        # a normalisation: every pass memory-bound
        ("block_1/norm", "LayerNormalization", 50, 100, 4, 400, 800, 12),
    )
    found = roofline(layers, peak_flops=100.0, memory_bandwidth=10.0)
    dense = 4000 / 100 + 8000 / 100 + 300 / 10  # 40 + 80 + 30
    norm = 400 / 10 + 800 / 10 + 12 / 10  # 40 + 80 + 1.2
    assert list(found.rows["seconds"]) == pytest.approx([dense, norm])
    assert list(found.rows["compute_seconds"]) == pytest.approx([120.0, 0.0])
    assert list(found.rows["memory_seconds"]) == pytest.approx([30.0, norm])
    assert list(found.rows["bound"]) == [COMPUTE, MEMORY]
    assert found.step_seconds == pytest.approx(dense + norm)
    assert list(found.rows["share"]) == pytest.approx([dense / (dense + norm), norm / (dense + norm)])
    assert found.ridge_point == 10.0
    assert found.training_flops == 4000 + 8000 + 20 + 50 + 100 + 4
    assert found.training_bytes_moved == 100 + 200 + 300 + 400 + 800 + 12
    assert found.bound_seconds() == {COMPUTE: pytest.approx(dense), MEMORY: pytest.approx(norm)}
    assert list(found.top(2)["name"]) == ["block_1/ffn/dense", "block_1/norm"]  # 150 s, then 121.2 s
    assert found.fraction_of(2 * (dense + norm)) == pytest.approx(0.5)
    assert found.fraction_of(None) is None and found.fraction_of(0.0) is None


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan, "fast", True, None])
def test_rates_must_be_positive_numbers(bad):
    layers = table(("a", "Dense", 2, 2, 0, 1, 1, 0))
    with pytest.raises(ValueError, match="peak_flops"):
        roofline(layers, bad, 1.0)
    with pytest.raises(ValueError, match="memory_bandwidth"):
        roofline(layers, 1.0, bad)


def nested_model():
    """Two blocks, each a model holding an ``ffn`` model and a normalisation: names ``block_i/ffn/up``."""

    def block(i):
        x = keras.Input((8,))
        ffn_in = keras.Input((8,))
        up = keras.layers.Dense(16, activation="relu", name="up")(ffn_in)
        ffn = keras.Model(ffn_in, keras.layers.Dense(8, name="down")(up), name="ffn")
        return keras.Model(x, keras.layers.LayerNormalization(name="norm")(ffn(x)), name=f"block_{i}")

    x = keras.Input((8,))
    y = block(2)(block(1)(keras.layers.Dense(8, name="stem")(x)))
    return keras.Model(x, keras.layers.Dense(3, name="head")(y))


@pytest.fixture(scope="module")
def nested_cost():
    return estimate(nested_model(), batch_size=4, optimizer="adam")


SUMS = {"params": "params", "forward_macs": "forward_macs", "forward_flops": "forward_flops",
        "training_flops": "training_flops", "training_bytes_moved": "training_bytes_moved",
        "activation_bytes": "activation_bytes"}


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_blocks_sum_to_the_totals_exactly(nested_cost, depth):
    blocks = nested_cost.by_block(depth)
    for column, total in SUMS.items():
        assert sum(blocks[column]) == getattr(nested_cost, total)
    assert sum(blocks["rows"]) == len(nested_cost.layers)
    expected = list(dict.fromkeys("/".join(name.split("/")[:depth]) for name in nested_cost.layers["name"]))
    assert list(blocks["block"]) == expected


def test_blocks_at_depth_one_and_two_are_named_by_their_path(nested_cost):
    assert list(nested_cost.by_block(1)["block"]) == ["stem", "block_1", "block_2", "head"]
    assert list(nested_cost.by_block(2)["block"]) == [
        "stem", "block_1/ffn", "block_1/norm", "block_2/ffn", "block_2/norm", "head"]
    ffn = nested_cost.by_block(2).set_index("block").loc["block_1/ffn"]
    rows = nested_cost.layers[nested_cost.layers["name"].str.startswith("block_1/ffn/")]
    assert ffn["rows"] == 2 and ffn["params"] == (8 * 16 + 16) + (16 * 8 + 8)
    assert ffn["training_flops"] == rows["training_flops"].sum()
    assert ffn["arithmetic_intensity"] == pytest.approx(ffn["training_flops"] / ffn["training_bytes_moved"])


def test_predicted_seconds_by_block_and_by_kind_add_up_to_the_step(nested_cost):
    found = nested_cost.roofline(1e9, 1e8)
    for frame in (nested_cost.by_block(1, 1e9, 1e8), nested_cost.by_kind(1e9, 1e8)):
        assert math.fsum(frame["seconds"]) == pytest.approx(found.step_seconds, rel=1e-12)
        assert math.fsum(frame["share"]) == pytest.approx(1.0)
        assert set(frame["bound"]) <= {COMPUTE, MEMORY}


def test_one_rate_without_the_other_is_an_error(nested_cost):
    with pytest.raises(ValueError, match="both"):
        nested_cost.by_kind(peak_flops=1e9)


@pytest.mark.parametrize("depth", [0, -1, 1.5, True, "1"])
def test_depth_must_be_a_positive_integer(nested_cost, depth):
    with pytest.raises(ValueError, match="depth"):
        nested_cost.by_block(depth)


@pytest.mark.parametrize(
    ("name", "type_name", "kind"),
    [
        ("mha", "MultiHeadAttention", "attention"),
        ("transformer_layer_0/self_attention/softmax", "ops.Softmax", "attention"),
        ("transformer_layer_0/self_attention/query", "EinsumDense", "attention"),
        ("block/attn_out", "Dense", "attention"),
        ("sdpa", "ops.DotProductAttention", "attention"),
        ("transformer_layer_0/feedforward_intermediate_dense", "Dense", "mlp"),
        ("vit/mlp/fc1", "ops.Matmul", "mlp"),
        ("head", "Dense", "mlp"),
        ("transformer_layer_0/self_attention_layer_norm", "LayerNormalization", "normalization"),
        ("bn", "BatchNormalization", "normalization"),
        ("decoder/rms", "ops.RMSNorm", "normalization"),
        ("token_embedding/take", "ops.Take", "embedding"),
        ("emb", "ReversibleEmbedding", "embedding"),
        ("conv1", "Conv2D", "convolution"),
        ("block_1_depthwise", "DepthwiseConv2D", "convolution"),
        ("transformer_layer_0/add", "ops.Add", "other"),
        ("conv1_relu", "Activation", "other"),
    ],
)
def test_kind_of_a_row(name, type_name, kind):
    assert kind_of(name, type_name) == kind


def test_kinds_sum_to_the_totals_exactly_and_come_in_order(nested_cost):
    kinds = nested_cost.by_kind()
    for column, total in SUMS.items():
        assert sum(kinds[column]) == getattr(nested_cost, total)
    assert list(kinds["kind"]) == [kind for kind in KINDS if kind in {"mlp", "normalization"}]


def test_a_transformer_splits_into_attention_mlp_normalisation_and_embedding():
    from tests import hub_models

    model, shapes = hub_models.build("GPT2Backbone")
    cost = estimate(model, batch_size=2, input_shape=shapes)
    kinds = cost.by_kind().set_index("kind")
    assert {"attention", "mlp", "normalization", "embedding"} <= set(kinds.index)
    assert kinds["training_flops"].sum() == cost.training_flops
    assert kinds["training_bytes_moved"].sum() == cost.training_bytes_moved
    # two layers of attention: 4 projections of 128 x 128 each; MLP: 128 -> 256 -> 128
    assert kinds.loc["attention", "params"] == 2 * 4 * (128 * 128 + 128)
    assert kinds.loc["mlp", "params"] == 2 * ((128 * 256 + 256) + (256 * 128 + 128))


def test_block_of_a_name():
    assert block_of("block_3/ffn/dense", 1) == "block_3"
    assert block_of("block_3/ffn/dense", 2) == "block_3/ffn"
    assert block_of("block_3/ffn/dense", 5) == "block_3/ffn/dense"


def test_summary_collapses_to_blocks_at_a_depth(nested_cost):
    lines = nested_cost.summary(depth=1).splitlines()
    assert lines[0].startswith(f"{nested_cost.model_name}: batch 4")
    assert lines[1].split()[:2] == ["block", "rows"]
    assert [line.split()[0] for line in lines[2:6]] == ["stem", "block_1", "block_2", "head"]
    assert lines[6].startswith(f"params {nested_cost.params:,}")
    assert len(nested_cost.summary(depth=2).splitlines()) == 1 + 1 + 6 + 2
    assert "... 2 more rows" in nested_cost.summary(depth=1, max_rows=2)
