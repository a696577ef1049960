"""Every use of Keras internals, in one place, each with its reason.

Keras ships a minor release every few weeks; anything here may move.  Each entry has a contract test in
``tests/test_keras_compat.py``, so a release that changes one fails one named test instead of silently
changing an estimate.  ``classes``: internal classes; ``layers``: models, layers and variables; ``fit``: the
running ``fit``; ``patches``: what the model walk patches while it records, and the speedups' switch.
"""

from . import patches  # noqa: F401  (the patches and the speedups switch, as compat.patches)
from .classes import (  # noqa: F401
    OPS_CORE,
    OPS_IMAGE,
    OPS_LINALG,
    OPS_MATH,
    OPS_NN,
    OPS_NUMPY,
    BaseAdaptivePooling,
    BaseConv,
    BaseConvTranspose,
    BaseDepthwiseConv,
    BaseGlobalPooling,
    BasePooling,
    BaseSeparableConv,
    ConvLSTMCell,
    CustomScaleLayer,
    DotProductAttention,
    Functional,
    LayerScale,
    Rearrange,
    ReLUOp,
    VariableBase,
    internal_class,
)
from .fit import (  # noqa: F401
    batch_hooks_may_overlap,
    dataset_batch_size,
    first_batch_size,
    running_data_adapter,
    running_frame_of,
    running_loop_local,
    samples_seen,
    steps_done,
    watch_batches,
)
from .layers import (  # noqa: F401
    build_shapes,
    graph_of,
    has_own_build,
    has_trainable_weights,
    has_weights,
    in_layer_call,
    inputs_struct,
    is_layer_class,
    keras_mask,
    layer_classes,
    op_label,
    present,
    producer_name,
    run_graph,
    says_output_too_small,
    sublayer_mapping,
    sublayers,
    type_name,
    unseen_weights,
    variable_dtype,
    variable_shape,
    weight_specs,
    weights,
)
from .patches import (  # noqa: F401
    ORIGINAL_IS_TENSOR,
    ORIGINAL_LAYER_CALL,
    ORIGINAL_LAYER_SYMBOLIC_CALL,
    ORIGINAL_OP_SYMBOLIC_CALL,
    calls_as_given,
    collector_paused,
    patch_layer_calls,
    patch_symbolic_arithmetic,
    patch_symbolic_helpers,
    restore_layer_calls,
    restore_symbolic_arithmetic,
    restore_symbolic_helpers,
    speedups,
)
