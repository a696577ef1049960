"""A PNG chart of the layers that dominate training FLOPs and activation memory."""

from __future__ import annotations

import io


def top_layers_png(layers, top: int = 12) -> tuple[bytes, int, int]:
    """Two horizontal bar charts (training GFLOPs, activation MiB) of the top layers: (png, width, height)."""
    from matplotlib.figure import Figure  # a bare Figure renders with Agg; pyplot's global backend is left alone

    figure = Figure(figsize=(12, 0.35 * top + 1.6), dpi=80)
    panels = [
        ("training_flops", 1e9, "training FLOPs per step (GFLOP)"),
        ("activation_bytes", 2**20, "activations kept for backward (MiB)"),
    ]
    for index, (column, scale, title) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, 2, index)
        rows = layers.nlargest(top, column)[::-1]
        axes.barh([_short(name) for name in rows["name"]], rows[column] / scale, color="#4e79a7")
        axes.set_title(title, fontsize=10)
        axes.tick_params(labelsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    width, height = (int(v) for v in figure.canvas.get_width_height())
    return buffer.getvalue(), width, height


def _short(name: str, limit: int = 32) -> str:
    return name if len(name) <= limit else "..." + name[-(limit - 3):]
