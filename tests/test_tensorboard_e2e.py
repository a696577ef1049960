"""End to end: the quickstart and a tiny MLP train with NNSCallback, then a real TensorBoard server shows
the cost panels in its own dashboards and in our Cost tab (the ``nns`` plugin).

Everything is read back through TensorBoard's HTTP API (the endpoints its dashboards use), on
127.0.0.1 only, with urllib; the Cost tab also in headless Chromium, driven by Playwright.
"""

import functools
import json
import os
import pathlib
import subprocess
import sys
import urllib.error

import keras
import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from examples.quickstart import small_cnn
from nns_callbacks import NNSCallback, estimate
from nns_callbacks.cost import format_bytes, format_count
from tests.tensorboard_server import BROWSER_ARGS, ROOT, chromium, env, fetch, fetch_json, serve

# small_cnn: conv 3*3*3*16 + 16, conv 3*3*16*32 + 32, dense 8*8*32*4 + 4.
QUICKSTART_PARAMS = 448 + 4_640 + 8_196
EPOCHS = 2
BATCH_SIZE = 64
TRAIN, VALIDATION = "quickstart/train", "quickstart/validation"
TINY_TRAIN = "tiny_mlp/train"


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    """Logs of a short quickstart run (2 epochs, 2 validation batches per epoch)."""
    root = tmp_path_factory.mktemp("e2e")
    logs = root / "logs"
    command = [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--log-dir", str(logs / "quickstart"),
               "--epochs", str(EPOCHS), "--samples", "640", "--batch-size", str(BATCH_SIZE)]
    done = subprocess.run(command, cwd=root, env=env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"quickstart failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    train_tiny_mlp(logs / "tiny_mlp")
    return logs


def tiny_mlp():
    """A second model to compare with: Dense(4) on 8 features, SGD."""
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(4)(inputs), name="tiny_mlp")
    model.compile(optimizer="sgd", loss="mse")
    return model


def train_tiny_mlp(log_dir) -> None:
    data = np.zeros((64, 8), np.float32), np.zeros((64, 4), np.float32)
    tiny_mlp().fit(*data, batch_size=16, epochs=1, verbose=0, callbacks=[NNSCallback(log_dir=str(log_dir), peak_flops=1e12)])


def _ready(base: str) -> bool:
    """The server has loaded both runs, including the last epoch's scalars."""
    tags = fetch_json(base, "/data/plugin/scalars/tags")
    return "cost/params" in tags.get(TRAIN, {}) and "epoch_samples_per_sec" in tags.get(VALIDATION, {})


@pytest.fixture(scope="module")
def tensorboard(log_dir):
    """The base URL of a TensorBoard server on ``log_dir``, stopped after the module's tests."""
    with serve(log_dir, _ready) as base:
        yield base


def test_runs_train_and_validation(tensorboard):
    assert {TRAIN, VALIDATION, TINY_TRAIN} <= set(fetch_json(tensorboard, "/data/runs"))


def test_cost_and_throughput_scalars(tensorboard):
    tags = fetch_json(tensorboard, "/data/plugin/scalars/tags")
    train, validation = set(tags[TRAIN]), set(tags[VALIDATION])
    cost = {"cost/params", "cost/forward_macs_per_sample", "cost/training_flops_per_sample",
            "cost/memory/activation_bytes", "cost/memory/training_bytes", "cost/peak_flops_per_sec"}
    throughput = {"epoch_samples_per_sec", "epoch_steps_per_sec", "epoch_tflops_per_sec", "epoch_mfu"}
    assert cost <= train
    assert throughput <= train
    assert throughput <= validation


def test_scalar_values(tensorboard):
    [(_, step, params)] = fetch_json(tensorboard, "/data/plugin/scalars/scalars", run=TRAIN, tag="cost/params")
    assert (step, params) == (0, QUICKSTART_PARAMS)
    rates = fetch_json(tensorboard, "/data/plugin/scalars/scalars", run=TRAIN, tag="epoch_samples_per_sec")
    assert [step for _, step, _ in rates] == list(range(EPOCHS))
    assert all(value > 0 for _, _, value in rates)
    mfu = fetch_json(tensorboard, "/data/plugin/scalars/scalars", run=TRAIN, tag="epoch_mfu")
    assert all(0 < value < 10 for _, _, value in mfu)  # peak measured on this CPU


def test_layer_table_and_notes_text(tensorboard):
    assert {"cost/layers", "cost/notes"} <= set(fetch_json(tensorboard, "/data/plugin/text/tags")[TRAIN])
    [layers] = fetch_json(tensorboard, "/data/plugin/text/text", run=TRAIN, tag="cost/layers")
    assert "<table>" in layers["text"] and "conv2d_1" in layers["text"]  # Markdown rendered as HTML
    [notes] = fetch_json(tensorboard, "/data/plugin/text/text", run=TRAIN, tag="cost/notes")
    assert "multiply-add" in notes["text"]


def test_top_layers_image(tensorboard):
    assert "cost/top_layers" in fetch_json(tensorboard, "/data/plugin/images/tags")[TRAIN]
    [image] = fetch_json(tensorboard, "/data/plugin/images/images", run=TRAIN, tag="cost/top_layers")
    png = fetch(tensorboard, "/data/plugin/images/individualImage?" + image["query"])
    assert png.startswith(b"\x89PNG")


def test_custom_scalars_layout(tensorboard):
    layout = fetch_json(tensorboard, "/data/plugin/custom_scalars/layout")
    titles = {category["title"]: category for category in layout["category"]}
    # the quick start measures per epoch on a CPU: no per-window or memory charts, which would stay empty
    assert set(titles) == {"nns_callbacks: throughput per epoch"}
    charts = {chart["title"]: chart for chart in titles["nns_callbacks: throughput per epoch"]["chart"]}
    assert set(charts) == {
        "samples/s (wall clock; steady state after the first step)", "achieved TFLOP/s (1e12 FLOP/s)",
        "MFU and HFU (model and counted FLOP/s / peak FLOP/s)", "start-up and compilation per epoch (s)",
    }
    assert charts["MFU and HFU (model and counted FLOP/s / peak FLOP/s)"]["multiline"]["tag"] == ["epoch_(mfu|hfu)"]


# The Cost tab: the nns plugin's routes and page.


@functools.cache
def quickstart_cost():
    """``estimate()`` of the quickstart's model as the quickstart compiles it, with the layer names of a
    fresh process."""
    keras.backend.clear_session()
    model = small_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return estimate(model, batch_size=BATCH_SIZE)


def test_plugins_listing_has_the_cost_tab(tensorboard):
    nns = fetch_json(tensorboard, "/data/plugins_listing")["nns"]
    assert nns["enabled"] and nns["tab_name"] == "Cost"
    assert nns["loading_mechanism"] == {"type": "IFRAME", "module_path": "/data/plugin/nns/index.js"}
    assert b"export async function render" in fetch(tensorboard, "/data/plugin/nns/index.js")
    # the module index.js imports, served beside it
    assert b'from "./roofline.js"' in fetch(tensorboard, "/data/plugin/nns/index.js")
    assert b"export function rooflineSection" in fetch(tensorboard, "/data/plugin/nns/roofline.js")


def test_plugin_runs(tensorboard):
    runs = fetch_json(tensorboard, "/data/plugin/nns/runs")
    assert [(r["run"], r["model"], r["batch_size"]) for r in runs] == [
        (TRAIN, "small_cnn", BATCH_SIZE), (TINY_TRAIN, "tiny_mlp", 16),
    ]


def test_plugin_layers_equal_estimate(tensorboard):
    served = fetch_json(tensorboard, "/data/plugin/nns/layers", run=TRAIN)
    expected = json.loads(quickstart_cost().to_json())
    assert {key: served[key] for key in expected} == expected  # totals, per-sample figures and every layer row
    assert served["peak"]["source"].startswith("measured")  # the quickstart's peak_flops="measure"
    assert (served["run"], served["step"]) == (TRAIN, 0)


def test_plugin_layers_unknown_run(tensorboard):
    with pytest.raises(urllib.error.HTTPError) as raised:
        fetch(tensorboard, "/data/plugin/nns/layers", run="no/such/run")
    assert raised.value.code == 404


def test_plugin_throughput_equals_scalars(tensorboard):
    served = fetch_json(tensorboard, "/data/plugin/nns/throughput", run=TRAIN)
    for run, series in ((TRAIN, served["train"]), (VALIDATION, served["validation"])):
        scalars = fetch_json(tensorboard, "/data/plugin/scalars/scalars", run=run, tag="epoch_samples_per_sec")
        assert series["epoch_samples_per_sec"] == [[step, value] for _, step, value in scalars]
        assert len(series["epoch_samples_per_sec"]) == EPOCHS


@pytest.fixture(scope="module")
def cost_tab(tensorboard):
    """The Cost tab's page (the plugin's iframe document) in headless Chromium."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        page.goto(f"{tensorboard}/data/plugin_entry.html?name=nns")
        page.wait_for_selector("section.details table.layers tbody tr", timeout=30_000)
        yield page
        browser.close()


def compare_rows(page) -> dict[str, dict[str, str]]:
    """The comparison table: ``{run: {column key: cell text}}``."""
    rows = {}
    for row in page.locator("table.compare tbody tr").all():
        cells = row.locator("td[data-key]")
        rows[row.get_attribute("data-run")] = {
            cell.get_attribute("data-key"): cell.inner_text().split("\n")[0].removeprefix("≠ ") for cell in cells.all()
        }
    return rows


def test_cost_tab_compares_runs(cost_tab):
    cost = quickstart_cost()
    rows = compare_rows(cost_tab)
    assert list(rows) == [TRAIN, TINY_TRAIN]
    assert [rows[run]["model"] for run in rows] == ["small_cnn", "tiny_mlp"]
    assert rows[TRAIN]["params"] == format_count(cost.params).strip()
    assert rows[TINY_TRAIN]["params"] == "36"
    assert rows[TRAIN]["training_flops"] == format_count(cost.training_flops).strip()
    assert rows[TRAIN]["training_bytes"] == format_bytes(cost.training_bytes)
    assert [rows[run]["dtype_policy"] for run in rows] == ["float32", "float32"]
    assert cost_tab.locator("tr.baseline").get_attribute("data-run") == TRAIN  # the first run is the baseline
    assert cost_tab.locator("body").get_attribute("data-reload") == "poll"
    assert "null" not in cost_tab.locator(".compare-view").inner_text()  # no note, no notice: nothing written


def test_cost_tab_layer_table_sorts_and_filters(cost_tab):
    cost = quickstart_cost()
    section = cost_tab.locator(f'section.details[data-run="{TRAIN}"]')
    names = section.locator("table.layers tbody tr td:first-child")
    assert names.all_inner_texts() == list(cost.layers["name"])
    section.locator("table.layers th", has_text="training FLOPs").first.click()
    by_flops = cost.layers.sort_values("training_flops", ascending=False, kind="stable")
    assert names.first.inner_text() == by_flops["name"].iloc[0]
    section.locator("input[type=search]").fill("conv")
    assert sorted(names.all_inner_texts()) == sorted(n for n in cost.layers["name"] if "conv" in n.lower())
    section.locator("input[type=search]").fill("")


def test_cost_tab_top_layers_chart(cost_tab):
    cost = quickstart_cost()
    labels = cost_tab.locator(f'section.details[data-run="{TRAIN}"] svg.top text').all_text_contents()
    biggest = cost.layers.sort_values("training_flops", ascending=False).iloc[0]
    assert biggest["name"] in labels
    assert f"{format_count(biggest.training_flops)}FLOP ({biggest.training_flops_share:.1%})" in labels


def test_cost_tab_details_of_another_run(cost_tab):
    cost_tab.locator(f'table.compare tr[data-run="{TINY_TRAIN}"] td.run').click()
    section = cost_tab.locator(f'section.details[data-run="{TINY_TRAIN}"]')
    section.locator("table.layers tbody tr").first.wait_for(timeout=10_000)
    assert section.locator("table.layers tbody tr td:nth-child(2)").all_inner_texts() == ["Dense"]  # its one layer
    assert cost_tab.locator("section.details").count() == 1  # one run's details at a time
    cost_tab.locator(f'table.compare tr[data-run="{TRAIN}"] td.run').click()
    cost_tab.locator(f'section.details[data-run="{TRAIN}"] table.layers tbody tr').first.wait_for(timeout=10_000)


def test_cost_tab_screenshot(cost_tab, tmp_path):
    """The whole page renders to a PNG (``NNS_SCREENSHOT=path`` keeps it, as docs/cost_tab.png was made)."""
    path = os.environ.get("NNS_SCREENSHOT") or str(tmp_path / "cost_tab.png")
    cost_tab.screenshot(path=path, full_page=True)
    assert pathlib.Path(path).read_bytes().startswith(b"\x89PNG")
