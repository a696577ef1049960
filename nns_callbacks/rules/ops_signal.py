"""Fourier transforms, short-time Fourier transforms and framing (``keras.ops``, ``keras.ops.math``).

XLA's cost analysis counts an FFT as 8 FLOPs (4 complex multiply-adds) per operand element
per factor of floor(log2 L) over the transformed lengths L: 8 x prod(floor(log2 L)) x
operand elements (a 2-D transform multiplies the two logs).  That is XLA's count, not the
textbook 5 N log2 N of a radix-2 FFT; it is followed on every backend.  Building the
complex input from (real, imaginary) costs 2 per element; a transform's gradient is the
inverse transform of the cotangent.
"""

from __future__ import annotations

import math

from ..keras_compat import OPS_MATH as kmath
from ..registry import LayerCall, LayerCost, register_builtin_rule
from .ops import elements


def fft_flops(lengths, operand_elements: int) -> int:
    """XLA's count of an FFT over ``lengths``: 8 x prod(floor(log2 L)) x operand elements."""
    return 8 * math.prod(max(int(length).bit_length() - 1, 0) for length in lengths) * operand_elements


def _complex_cost(call: LayerCall, forward: int, backward: int) -> LayerCost:
    """An op on a (real, imaginary) pair: each part's gradient gets half the inverse transform."""
    count = len(call.input_shapes)
    return LayerCost(elementwise_flops=forward, operand_grad_flops=(backward // max(count, 1),) * count, keeps="nothing")


@register_builtin_rule(getattr(kmath, "FFT", None), getattr(kmath, "FFT2", None), getattr(kmath, "IFFT2", None))
def fft_op(op, call: LayerCall) -> LayerCost:
    """Complex transform over the last axis (FFT2, IFFT2: the last two): ``fft_flops`` + 2 per element to build
    the complex input; the gradient the inverse transform, as much."""
    axes = 1 if type(op).__name__ == "FFT" else 2
    shape = call.input_shapes[0]
    n = elements(shape)
    flops = fft_flops(shape[-axes:], n) + 2 * n
    return _complex_cost(call, flops, flops)


@register_builtin_rule(getattr(kmath, "RFFT", None))
def rfft_op(op, call: LayerCall) -> LayerCost:
    """A real transform of length L: ``fft_flops`` over the L real inputs + 1 per output; gradient an inverse
    real transform over the L / 2 + 1 outputs (+ 4 per output)."""
    length = getattr(op, "fft_length", None) or call.input_shape[-1]
    n_in = elements(call.input_shape[:-1]) * length
    n_out = elements(call.output_shape)
    return LayerCost(elementwise_flops=fft_flops([length], n_in) + n_out,
                     operand_grad_flops=(fft_flops([length], n_out) + 4 * n_out,), keeps="nothing")


@register_builtin_rule(getattr(kmath, "IRFFT", None))
def irfft_op(op, call: LayerCall) -> LayerCost:
    """An inverse real transform of length L: ``fft_flops`` over the L / 2 + 1 complex inputs + 1 per input;
    gradient a real transform of the L outputs (+ 4 per input)."""
    n_in = elements(call.input_shapes[0])
    length = getattr(op, "fft_length", None) or call.output_shape[-1]
    n_out = elements(call.output_shape)
    return _complex_cost(call, fft_flops([length], n_in) + n_in, fft_flops([length], n_out) + 4 * n_in)


def _frames(signal: int, sequence_length: int, stride: int, fft_length: int, center: bool) -> int:
    padded = signal + (2 * (fft_length // 2) if center else 0)
    return max((padded - fft_length) // stride + 1, 0)


@register_builtin_rule(getattr(kmath, "STFT", None))
def stft_op(op, call: LayerCall) -> LayerCost:
    """Frames x (a real transform of fft_length, ``fft_flops``, + the window multiply, fft_length, + scaling
    each bin, 2 per bin); gradient: the inverse per frame and the overlap-add."""
    length = op.fft_length
    batch = elements(call.input_shape[:-1])
    frames = _frames(call.input_shape[-1], op.sequence_length, op.sequence_stride, length, op.center) * batch
    bins = length // 2 + 1
    flops = fft_flops([length], frames * length) + frames * length + 2 * frames * bins
    backward = fft_flops([length], frames * bins) + 2 * frames * length + 2 * frames * bins
    return LayerCost(elementwise_flops=flops, operand_grad_flops=(backward,), keeps="nothing")


@register_builtin_rule(getattr(kmath, "ISTFT", None))
def istft_op(op, call: LayerCall) -> LayerCost:
    """Frames x (an inverse real transform over the bins, the window multiply and the overlap-add: 4.4 per frame
    sample) + the window normalisation (3 per output sample); gradient a transform per frame."""
    length = op.fft_length
    real = call.input_shapes[0]
    frames = elements(real[:-1])
    bins = real[-1]
    flops = fft_flops([length], frames * bins) + frames * bins + round(4.4 * frames * length) + 3 * elements(
        call.output_shape)
    backward = fft_flops([length], frames * length) + 2 * frames * length + 2 * frames * bins
    return _complex_cost(call, flops, backward)


@register_builtin_rule(getattr(kmath, "ExtractSequences", None))
def extract_sequences_op(op, call: LayerCall) -> LayerCost:
    """JAX frames with a convolution and an identity kernel: sequence_length MACs per output element, plus
    building the identity (2 per entry); the gradient the transposed convolution."""
    length = op.sequence_length
    macs = elements(call.output_shape) * length
    return LayerCost(elementwise_flops=2 * macs + 2 * length * length, operand_grad_flops=(2 * macs,), keeps="nothing")
