"""keras-hub models, TensorFlow backend: exact parameters, nothing uncounted, the decoder formula, and
the same count as the JAX backend (tests/jax_backend/test_keras_hub_xla.py checks them against XLA)."""

import json
import os
import pathlib
import subprocess
import sys
import warnings

import pytest

import nns_callbacks
from tests import hub_models

HERE = pathlib.Path(__file__).parent


def estimate(name):
    model, shapes = hub_models.build(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may be warned about: no rule failed, nothing unsupported
        return model, nns_callbacks.estimate(model, batch_size=hub_models.BATCH, input_shape=shapes)


@pytest.fixture(scope="module")
def estimates():
    return {name: estimate(name) for name in hub_models.MODELS}


@pytest.mark.parametrize("name", list(hub_models.MODELS))
def test_parameters_exact_and_nothing_uncounted(estimates, name):
    model, cost = estimates[name]
    assert cost.params == model.count_params() == int(cost.layers["params"].sum())
    assert cost.unsupported == {}
    assert cost.layers["counted"].all()


@pytest.mark.parametrize("name", hub_models.DECODERS)
def test_decoder_forward_formula(estimates, name):
    """2 x non-embedding parameters x tokens + 4 x batch x layers x seq^2 x hidden (+ the LM head)."""
    model, cost = estimates[name]
    backbone = getattr(model, "backbone", model)
    seq = hub_models.MODELS[name][1]
    tokens = hub_models.BATCH * seq
    products = 2 * (model.count_params() - hub_models.embedding_params(model)) * tokens
    attention = 4 * hub_models.BATCH * backbone.num_layers * seq**2 * backbone.hidden_dim  # the full square
    head = 2 * tokens * backbone.hidden_dim * hub_models.VOCAB if backbone is not model else 0
    formula = products + attention + head
    # Ours also counts the elementwise work (norms, activations, softmax, residuals): a few percent more.
    assert formula <= cost.forward_flops <= 1.05 * formula


def test_ops_inside_layers_are_rows_with_qualified_names(estimates):
    _, cost = estimates["LlamaBackbone"]
    rows = cost.layers.set_index("name")
    attention = rows.loc["transformer_layer_0/self_attention/einsum"]
    # scores: batch 2 x 4 query heads x 128 x 128 positions x head size 32 multiply-adds
    scores = 2 * 4 * 128 * 128
    assert attention["type"].tolist() == ["ops.Einsum", "ops.Einsum"]  # scores, then scores x values
    assert attention["forward_flops"].tolist() == [2 * scores * 32] * 2
    assert rows.loc["transformer_layer_0/self_attention/attention_softmax", "activation_bytes"] == 4 * scores  # float32


def test_lm_head_tied_to_the_embedding_is_counted(estimates):
    _, cost = estimates["LlamaCausalLM"]
    head = cost.layers.set_index("name").loc["token_embedding/matmul"]
    assert head["forward_macs"] == 2 * 128 * 128 * hub_models.VOCAB  # tokens x hidden x vocabulary


@pytest.fixture(scope="module")
def jax_estimates():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, str(HERE / "hub_models.py")], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(hub_models.MODELS))
def test_tensorflow_and_jax_backends_agree(estimates, jax_estimates, name):
    _, cost = estimates[name]
    params, forward, backward, _ = jax_estimates[name]
    assert cost.params == params
    assert cost.forward_flops == pytest.approx(forward, rel=0.02)
    assert cost.backward_flops == pytest.approx(backward, rel=0.02)
