"""Attention layers: MultiHeadAttention, GroupedQueryAttention, Attention, AdditiveAttention.

Projections multiply by weights; the score and value products multiply two
activations, so both of their operands get a gradient product backward.
"""

from __future__ import annotations

import functools

import keras

from ..keras_compat import DotProductAttention
from ..registry import LayerCall, LayerCost, attention_kernel_kind, register_builtin_rule, register_cost_rule
from .activations import BACKWARD_FLOPS_PER_ELEMENT, FLOPS_PER_ELEMENT


def attention_cost(
    projection_macs: int,
    score_macs: int,
    scores: int,
    elementwise: tuple[int, int],
    projection_bias: int,
    saved: int,
    intermediate: int | None = None,
) -> LayerCost:
    """Weight products (projections), activation products and a softmax over ``scores`` elements.

    ``elementwise`` is (forward, backward) FLOPs of the other elementwise work; ``intermediate``: the elements
    of the tensors the layer's kernels pass to each other (default: those it keeps, ``saved``).
    """
    softmax = round(FLOPS_PER_ELEMENT["softmax"] * scores)
    softmax_backward = round(BACKWARD_FLOPS_PER_ELEMENT["softmax"] * scores)
    forward, backward = elementwise
    return LayerCost(
        macs=projection_macs + score_macs,
        elementwise_flops=forward + softmax + projection_bias,
        input_grad_flops=2 * projection_macs,
        weight_grad_flops=2 * projection_macs + projection_bias,
        internal_grad_flops=4 * score_macs + backward + softmax_backward,
        saved_elements=saved,
        intermediate_elements=saved if intermediate is None else intermediate,
    )


def runs_fused(flash_attention, dtype) -> bool:
    """Whether attention runs as a fused (flash) kernel: as asked (``estimate(attention=...)``), as the op's
    ``flash_attention`` argument says, else as the backend decides: torch's scaled-dot-product attention picks a
    flash kernel (on CPUs too); JAX uses cuDNN's on a GPU for 16-bit inputs, and its TPU kernel; TensorFlow and
    JAX on a CPU materialise the scores."""
    kind = attention_kernel_kind()
    if kind != "auto":
        return kind == "fused"
    if flash_attention is not None:
        return bool(flash_attention)
    backend = keras.backend.backend()
    if backend == "torch":
        return True
    if backend == "jax":
        platform = _jax_platform()
        return platform == "tpu" or (platform == "gpu" and str(dtype) in ("float16", "bfloat16"))
    return False


@functools.cache
def _jax_platform() -> str:
    import jax

    return jax.devices()[0].platform


def _layer_runs_fused(layer, call: LayerCall) -> bool:
    """Keras's attention layers call the fused op only without dropout and without returned scores."""
    if getattr(layer, "dropout", 0) or getattr(layer, "_dropout", 0) or call.argument("return_attention_scores"):
        return False
    return runs_fused(getattr(layer, "_flash_attention", None), getattr(layer, "compute_dtype", None))


def _masked(call: LayerCall, *names: str) -> bool:
    """Whether any of these call arguments is given (an identity test: a symbolic mask has no truth value)."""
    return any(_given(call.argument(name)) for name in names)


def _given(value) -> bool:
    """A tensor or ``True``; a list (one mask per input) when any of its items is."""
    if isinstance(value, (list, tuple)):
        return any(_given(item) for item in value)
    return value is not None and value is not False


@register_cost_rule(keras.layers.MultiHeadAttention)
def multi_head_attention(layer, call: LayerCall) -> LayerCost:
    """Q, K, V and output projections; scores B*H*Tq*Tv*key_dim and B*H*Tq*Tv*value_dim MACs."""
    query, value = call.shape_of("query"), call.shape_of("value")
    key = call.shape_of("key") or value
    batch = query[0]
    heads, key_dim, value_dim = layer.num_heads, layer.key_dim, layer.value_dim
    out_dim = call.output_shape[-1]
    q_len, kv_len = batch * _positions(query), batch * _positions(value)
    projection_macs = heads * (
        q_len * query[-1] * key_dim
        + kv_len * key[-1] * key_dim
        + kv_len * value[-1] * value_dim
        + q_len * value_dim * out_dim
    )
    scores = batch * heads * _positions(query) * _positions(value)
    score_macs = scores * (key_dim + value_dim)
    bias = heads * (q_len * key_dim + kv_len * (key_dim + value_dim)) + q_len * out_dim
    masking = 2 * scores if _masked(call, "attention_mask", "use_causal_mask", "query_mask", "value_mask") else 0
    scaling = q_len * heads * key_dim
    kept_scores = q_len * heads if _layer_runs_fused(layer, call) else 3 * scores  # fused: the log-sum-exp
    saved = kept_scores + q_len * heads * (key_dim + value_dim) + kv_len * heads * (key_dim + value_dim)
    return attention_cost(
        projection_macs, score_macs, scores, (masking + scaling, scaling), bias if layer.use_bias else 0, saved
    )


def _positions(shape: tuple[int, ...]) -> int:
    """Positions attended over: every axis but batch and features."""
    count = 1
    for size in shape[1:-1]:
        count *= size
    return count


@register_builtin_rule(getattr(keras.layers, "GroupQueryAttention", None))
def grouped_query_attention(layer, call: LayerCall) -> LayerCost:
    """Query heads Hq, key/value heads Hkv; scores B*Hq*Tq*Tv*head_dim MACs, twice."""
    query, value = call.shape_of("query"), call.shape_of("value")
    key = call.shape_of("key") or value
    batch, tq, tv = query[0], query[1], value[1]
    hq, hkv, dim = layer.num_query_heads, layer.num_key_value_heads, layer.head_dim
    out_dim = call.output_shape[-1]
    projection_macs = batch * (
        tq * query[-1] * hq * dim + tv * key[-1] * hkv * dim + tv * value[-1] * hkv * dim + tq * hq * dim * out_dim
    )
    scores = batch * hq * tq * tv
    bias = batch * (tq * hq * dim + 2 * tv * hkv * dim + tq * out_dim)
    masking = 2 * scores if _masked(call, "attention_mask", "use_causal_mask", "query_mask", "value_mask") else 0
    scaling = batch * tq * hq * dim
    kept_scores = batch * tq * hq if _layer_runs_fused(layer, call) else 3 * scores  # fused: the log-sum-exp
    saved = kept_scores + batch * (2 * tq * hq * dim + 2 * tv * hkv * dim)
    return attention_cost(
        projection_macs,
        2 * scores * dim,
        scores,
        (masking + scaling, scaling),
        bias if layer.use_bias else 0,
        saved,
    )


def _dot_attention_shapes(call: LayerCall):
    query, value = call.input_shapes[0], call.input_shapes[1]
    key = call.input_shapes[2] if len(call.input_shapes) > 2 else value
    return query, value, key


@register_cost_rule(keras.layers.Attention)
def dot_attention(layer, call: LayerCall) -> LayerCost:
    """Scores q.k (B*Tq*Tv*d MACs) or concat (3 FLOPs per (Tq, Tv, d) triple, 10 backward), softmax, scores.v."""
    query, value, key = _dot_attention_shapes(call)
    batch, tq, tv, dim = query[0], query[1], value[1], query[-1]
    scores = batch * tq * tv
    if layer.score_mode == "concat":
        triples = scores * key[-1]
        scale = 1 if layer.use_scale else 0
        score_macs, score_flops = 0, ((3 + scale) * triples, (10 + 9 * scale) * triples)
    else:
        scale = 1 if layer.use_scale else 0
        score_macs, score_flops = scores * dim, (scale * scores, 2 * scale * scores)
    masking = 3 * scores if _masked(call, "mask", "use_causal_mask") else 0
    out_macs = scores * value[-1]
    elementwise = (score_flops[0] + masking, score_flops[1] + masking // 3)
    return attention_cost(0, score_macs + out_macs, scores, elementwise, 0, 2 * scores)


@register_cost_rule(keras.layers.AdditiveAttention)
def additive_attention(layer, call: LayerCall) -> LayerCost:
    """Scores sum(scale * tanh(q + k)): 4 FLOPs per (Tq, Tv, d) triple (3 unscaled), 14 (10) backward; softmax; scores.v."""
    query, value, _ = _dot_attention_shapes(call)
    batch, tq, tv, dim = query[0], query[1], value[1], query[-1]
    scores = batch * tq * tv
    triples = scores * dim
    forward, backward = (4 * triples, 14 * triples) if layer.use_scale else (3 * triples, 10 * triples)
    masking = 3 * scores if _masked(call, "mask", "use_causal_mask") else 0
    elementwise = (forward + masking, backward + masking // 3)
    return attention_cost(0, scores * value[-1], scores, elementwise, 0, 2 * scores + triples)


@register_builtin_rule(DotProductAttention)
def dot_product_attention_op(op, call: LayerCall) -> LayerCost:
    """``ops.dot_product_attention``: B*N*T*S*(H + Hv) MACs; per score a scale, bias, mask, soft cap, softmax.

    Query (B, T, N, H), key (B, S, K, H), value (B, S, K, Hv); K key/value heads
    are shared by N / K query heads.  Scale 1, bias 1, mask 1 (backward 1 each
    but bias), soft cap 3 (backward 4) FLOPs per score.
    """
    query, key, value = call.shape_of("query"), call.shape_of("key"), call.shape_of("value")
    batch, t_q, heads, dim = query
    scores = batch * heads * t_q * key[1]
    bias = _given(call.argument("bias"))
    masked = _given(call.argument("mask")) or bool(op.is_causal)
    soft_cap = op.attn_logits_soft_cap is not None
    forward = scores * (1 + bias + masked + 3 * soft_cap)
    backward = scores * (1 + masked + 4 * soft_cap)
    if runs_fused(getattr(op, "flash_attention", None), call.output_dtypes[0] if call.output_dtypes else None):
        saved = batch * heads * t_q + call.output_elements  # the log-sum-exp per query and head, and the output
        passed = 0  # the scores stay in the kernel's on-chip memory
    else:
        saved = 2 * scores + call.output_elements  # logits and probabilities, as the unfused path keeps
        passed = 2 * scores
    return attention_cost(0, scores * (dim + value[-1]), scores, (forward, backward), 0, saved, passed)
