"""A PNG chart of the layers that dominate training FLOPs and activation memory."""

from __future__ import annotations

import io

from .cost import format_bytes, format_count

PANELS = (
    # column, share column, title, formatter
    ("training_flops", "training_flops_share", "training FLOPs per step", lambda v: f"{format_count(v)}FLOP"),
    ("activation_bytes", "activation_bytes_share", "activations kept for backward", format_bytes),
)


def bar_labels(rows, column: str, share: str, formatter) -> list[str]:
    """The value at the end of each bar: '227 MFLOP (17.0%)'."""
    return [f"{formatter(value)} ({fraction:.1%})" for value, fraction in zip(rows[column], rows[share], strict=True)]


def top_layers_png(layers, top: int = 12) -> tuple[bytes, int, int]:
    """Two bar charts, one above the other (training FLOPs, activation memory), of the ``top`` layers, each
    bar labelled with its value and share: (png, width, height)."""
    from matplotlib.figure import Figure  # a bare Figure renders with Agg; pyplot's global backend is left alone

    shown = min(top, len(layers))
    figure = Figure(figsize=(9, 2 * (0.3 * shown + 0.9)), dpi=100)
    for index, (column, share, title, formatter) in enumerate(PANELS, start=1):
        axes = figure.add_subplot(2, 1, index)
        rows = layers.nlargest(top, column)[::-1]
        bars = axes.barh([_short(name) for name in rows["name"]], rows[column], color="#f28e2b")
        axes.bar_label(bars, labels=bar_labels(rows, column, share, formatter), padding=4, fontsize=10)
        axes.set_title(f"top {len(rows)} layers: {title}", fontsize=12, loc="left")
        axes.tick_params(axis="y", labelsize=10)
        axes.set_xticks([])
        axes.margins(x=0.35)  # room for the labels right of the longest bar
        for side in ("top", "right", "bottom"):
            axes.spines[side].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    width, height = (int(v) for v in figure.canvas.get_width_height())
    return buffer.getvalue(), width, height


def _short(name: str, limit: int = 36) -> str:
    return name if len(name) <= limit else "..." + name[-(limit - 3):]
