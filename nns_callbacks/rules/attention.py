"""Attention layers: MultiHeadAttention, GroupedQueryAttention, Attention, AdditiveAttention.

Projections multiply by weights; the score and value products multiply two
activations, so both of their operands get a gradient product backward.
"""

from __future__ import annotations

import keras

from ..registry import LayerCall, LayerCost, register_cost_rule
from .activations import FLOPS_PER_ELEMENT


def attention_cost(
    projection_macs: int,
    score_macs: int,
    scores: int,
    elementwise: int,
    projection_bias: int,
    saved: int,
) -> LayerCost:
    """Weight products (projections), activation products and a softmax over ``scores`` elements."""
    softmax = round(FLOPS_PER_ELEMENT["softmax"] * scores)
    forward_elementwise = elementwise + softmax + projection_bias
    return LayerCost(
        macs=projection_macs + score_macs,
        elementwise_flops=forward_elementwise,
        input_grad_flops=2 * projection_macs,
        weight_grad_flops=2 * projection_macs + projection_bias,
        internal_grad_flops=4 * score_macs + elementwise + softmax,
        saved_elements=saved,
    )


def _masked(call: LayerCall, *names: str) -> bool:
    return any(call.argument(name) not in (None, False) for name in names)


@register_cost_rule(keras.layers.MultiHeadAttention)
def multi_head_attention(layer, call: LayerCall) -> LayerCost:
    """Q, K, V and output projections; scores B*H*Tq*Tv*key_dim and B*H*Tq*Tv*value_dim MACs."""
    query, value = call.shape_of("query"), call.shape_of("value")
    key = call.shape_of("key") or value
    batch, tq, tv = query[0], query[1], value[1]
    heads, key_dim, value_dim = layer.num_heads, layer.key_dim, layer.value_dim
    out_dim = call.output_shape[-1]
    q_len, kv_len = batch * _positions(query), batch * _positions(value)
    projection_macs = heads * (
        q_len * query[-1] * key_dim
        + kv_len * key[-1] * key_dim
        + kv_len * value[-1] * value_dim
        + q_len * value_dim * out_dim // heads
    )
    scores = batch * heads * _positions(query) * _positions(value)
    score_macs = scores * (key_dim + value_dim)
    bias = heads * (q_len * key_dim + kv_len * (key_dim + value_dim)) + q_len * out_dim
    masking = scores if _masked(call, "attention_mask", "use_causal_mask", "query_mask", "value_mask") else 0
    scaling = q_len * heads * key_dim
    saved = 3 * scores + q_len * heads * (key_dim + value_dim) + kv_len * heads * (key_dim + value_dim)
    return attention_cost(
        projection_macs, score_macs, scores, masking + scaling, bias if layer.use_bias else 0, saved
    )


def _positions(shape: tuple[int, ...]) -> int:
    """Positions attended over: every axis but batch and features."""
    count = 1
    for size in shape[1:-1]:
        count *= size
    return count


@register_cost_rule(keras.layers.GroupQueryAttention)
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
    masking = scores if _masked(call, "attention_mask", "use_causal_mask", "query_mask", "value_mask") else 0
    scaling = batch * tq * hq * dim
    saved = 3 * scores + batch * (2 * tq * hq * dim + 2 * tv * hkv * dim)
    return attention_cost(
        projection_macs, 2 * scores * dim, scores, masking + scaling, bias if layer.use_bias else 0, saved
    )


def _dot_attention_shapes(call: LayerCall):
    query, value = call.input_shapes[0], call.input_shapes[1]
    key = call.input_shapes[2] if len(call.input_shapes) > 2 else value
    return query, value, key


@register_cost_rule(keras.layers.Attention)
def dot_attention(layer, call: LayerCall) -> LayerCost:
    """Scores q.k (B*Tq*Tv*d MACs) or tanh-concat, softmax, then scores.v (B*Tq*Tv*d MACs)."""
    query, value, key = _dot_attention_shapes(call)
    batch, tq, tv, dim = query[0], query[1], value[1], query[-1]
    scores = batch * tq * tv
    if layer.score_mode == "concat":
        score_macs, score_flops = 0, 3 * scores * key[-1]
    else:
        score_macs, score_flops = scores * dim, (scores if layer.use_scale else 0)
    masking = scores if _masked(call, "mask", "use_causal_mask") else 0
    out_macs = scores * value[-1]
    return attention_cost(0, score_macs + out_macs, scores, score_flops + masking, 0, 2 * scores)


@register_cost_rule(keras.layers.AdditiveAttention)
def additive_attention(layer, call: LayerCall) -> LayerCost:
    """Scores sum(scale * tanh(q + k)): 4 FLOPs per (Tq, Tv, d) triple; softmax; scores.v MACs."""
    query, value, key = _dot_attention_shapes(call)
    batch, tq, tv, dim = query[0], query[1], value[1], query[-1]
    scores = batch * tq * tv
    score_flops = (4 if layer.use_scale else 3) * scores * dim
    masking = scores if _masked(call, "mask", "use_causal_mask") else 0
    return attention_cost(0, scores * value[-1], scores, score_flops + masking, 0, 2 * scores + scores * dim)
