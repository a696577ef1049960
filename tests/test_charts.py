"""The top-layers chart: legible values on its bars, and a picture that grows with the rows it shows."""

import io

import pandas as pd
from matplotlib import image

from nns_callbacks.charts import PANELS, bar_labels, top_layers_png

LAYERS = pd.DataFrame(
    {
        "name": ["conv", "dense", "norm"],
        "training_flops": [227e6, 3.25e6, 0.0],
        "training_flops_share": [227 / 230.25, 3.25 / 230.25, 0.0],
        "activation_bytes": [3 * 2**20, 1536, 0],
        "activation_bytes_share": [1.0 - 1536 / (3 * 2**20 + 1536), 1536 / (3 * 2**20 + 1536), 0.0],
    }
)


def test_bar_labels_carry_value_and_share():
    column, share, _, formatter = PANELS[0]
    # 227 / 230.25 = 98.6%, 3.25 / 230.25 = 1.4%
    assert bar_labels(LAYERS, column, share, formatter) == ["227 MFLOP (98.6%)", "3.25 MFLOP (1.4%)", "0 FLOP (0.0%)"]
    column, share, _, formatter = PANELS[1]
    assert bar_labels(LAYERS, column, share, formatter)[:2] == ["3 MiB (100.0%)", "1.5 KiB (0.0%)"]


def test_png_size_is_what_it_says_and_grows_with_rows():
    png, width, height = top_layers_png(LAYERS, top=3)
    assert image.imread(io.BytesIO(png)).shape[:2] == (height, width)
    _, _, two_rows_height = top_layers_png(LAYERS, top=2)
    assert width == 900 and two_rows_height < height
