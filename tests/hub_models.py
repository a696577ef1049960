"""keras-hub models built from their constructors with small configurations (no weights), and their inputs.

Shared by the TensorFlow-backend tests and the JAX-backend XLA tests.  Run as a
script (``python tests/hub_models.py``) it prints our estimate of every model as
JSON, so that a test can compare the backends.
"""

from __future__ import annotations

import json
import warnings

import keras
import keras_hub
import numpy as np

BATCH = 2
VOCAB = 1000


def _bert(seq):
    return keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_heads=4, hidden_dim=128, intermediate_dim=256,
        max_sequence_length=seq,
    )


def _gpt2(seq):
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB, num_layers=2, num_heads=4, hidden_dim=128, intermediate_dim=256,
        max_sequence_length=seq,
    )


def _llama(seq):
    return keras_hub.models.LlamaBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, num_key_value_heads=2, hidden_dim=128,
        intermediate_dim=256,
    )


def _gemma(seq, **options):
    return keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, num_key_value_heads=1, hidden_dim=128,
        intermediate_dim=256, head_dim=32, **options,
    )


def _gemma2_style(seq):
    """Gemma 2's options: logit soft-capping, post-norms, sliding-window attention."""
    return _gemma(
        seq, query_head_dim_normalize=False, use_post_ffw_norm=True, use_post_attention_norm=True,
        final_logit_soft_cap=30.0, attention_logit_soft_cap=50.0, use_sliding_window_attention=True,
        sliding_window_size=64,
    )


def _vit(seq):
    return keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128
    )


def _resnet(seq):
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 32],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(32, 32, 3),
    )


def _mixtral(seq):
    """A mixture of experts: top-2 routing over 4 experts."""
    return keras_hub.models.MixtralBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, num_key_value_heads=2, hidden_dim=64,
        intermediate_dim=128, num_experts=4, top_k=2,
    )


def _t5(seq):
    """An encoder-decoder with relative position biases."""
    return keras_hub.models.T5Backbone(
        vocabulary_size=VOCAB, num_layers=2, num_heads=4, hidden_dim=64, intermediate_dim=128, key_value_dim=16
    )


def _falcon(seq):
    """ALiBi position biases built inside the decoder's call."""
    return keras_hub.models.FalconBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_attention_heads=4, hidden_dim=64, intermediate_dim=128
    )


def _gpt2_causal_lm(seq):
    return keras_hub.models.GPT2CausalLM(backbone=_gpt2(seq), preprocessor=None)


def _llama_causal_lm(seq):
    return keras_hub.models.LlamaCausalLM(backbone=_llama(seq), preprocessor=None)


MODELS = {
    # name: (constructor, sequence length)
    "BertBackbone": (_bert, 128),
    "GPT2Backbone": (_gpt2, 128),
    "GPT2Backbone-512": (_gpt2, 512),
    "GPT2CausalLM": (_gpt2_causal_lm, 128),
    "LlamaBackbone": (_llama, 128),
    "LlamaBackbone-512": (_llama, 512),
    "LlamaCausalLM": (_llama_causal_lm, 128),
    "GemmaBackbone": (_gemma, 128),
    "GemmaBackbone-gemma2-style": (_gemma2_style, 128),
    "MixtralBackbone": (_mixtral, 64),
    "T5Backbone": (_t5, 64),
    "FalconBackbone": (_falcon, 64),
    "ViTBackbone": (_vit, None),
    "ResNetBackbone": (_resnet, None),
}

DECODERS = ("GPT2Backbone", "GPT2Backbone-512", "GPT2CausalLM", "LlamaBackbone", "LlamaBackbone-512", "LlamaCausalLM")


def build(name: str):
    """The model ``name`` and its per-sample input shapes (``None``: the model's own)."""
    make, seq = MODELS[name]
    keras.utils.set_random_seed(0)
    model = make(seq)
    return model, input_shapes(model, seq)


def input_shapes(model, seq):
    """Per-sample shapes of a keras-hub model's inputs, the sequence axis set to ``seq``."""
    if not isinstance(model.input, dict):
        return None
    return {name: tuple(seq if d is None else d for d in x.shape[1:]) for name, x in model.input.items()}


def inputs(model, seq, batch: int = BATCH):
    """A batch of inputs: token ids below the vocabulary, an all-ones padding mask, normal images."""
    rng = np.random.default_rng(0)
    if not isinstance(model.input, dict):
        return rng.standard_normal((batch, *model.input.shape[1:])).astype("float32")
    data = {}
    for name, shape in input_shapes(model, seq).items():
        if "mask" in name:
            data[name] = np.ones((batch, *shape), "int32")
        else:
            data[name] = rng.integers(0, VOCAB, (batch, *shape)).astype("int32")
    return data


def embedding_params(model) -> int:
    """Parameters of the token and position embedding tables (the LM head reuses the token table)."""
    backbone = getattr(model, "backbone", model)
    tables = [backbone.token_embedding] + [getattr(backbone, "position_embedding", None) or []]
    return sum(layer.count_params() for layer in tables if layer)


def estimate_all() -> dict:
    """Our estimate of every model: {name: [params, forward FLOPs, backward FLOPs, activation bytes]}."""
    import nns_callbacks

    results = {}
    for name in MODELS:
        model, shapes = build(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cost = nns_callbacks.estimate(model, batch_size=BATCH, input_shape=shapes)
        results[name] = [cost.params, cost.forward_flops, cost.backward_flops, cost.activation_bytes]
    return results


if __name__ == "__main__":
    print(json.dumps(estimate_all()))
