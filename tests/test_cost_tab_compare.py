"""The Cost tab as a comparison tool, in headless Chromium against a real TensorBoard server: twenty runs
(written by tests/plugin_logs.py), one row each, overlaid charts, a baseline, MFU against one peak, the
runs' states, downloads, and a run written while the page is open appearing on TensorBoard's reload.

The last test writes a new run into the logdir: it stays last in this module.
"""

import csv
import io
import json
import os
import pathlib
import time

import pytest
from playwright.sync_api import sync_playwright

from tests import plugin_logs
from tests.tensorboard_server import BROWSER_ARGS, chromium, fetch_json, serve, wait_for

RUNS = 20
WIDTH = 1600
AUTO_RELOAD_S = 30  # TensorBoard's own auto-reload period


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    roles = plugin_logs.comparison_runs(root, RUNS)
    return root, roles


@pytest.fixture(scope="module")
def tensorboard(logs):
    root, roles = logs
    # The "running" run's writer holds its lock while the tests run, as a callback does during fit.
    ready = lambda base: len(fetch_json(base, "/data/plugin/nns/runs")) == RUNS
    with plugin_logs.holding_lock(root / roles["running"].split("/")[0]), serve(root, ready) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(tensorboard, browser):
    """The Cost tab's page alone (its iframe document), 1600 px wide."""
    context = browser.new_context(viewport={"width": WIDTH, "height": 1200}, accept_downloads=True)
    opened = context.new_page()
    opened.goto(f"{tensorboard}/data/plugin_entry.html?name=nns")
    opened.wait_for_selector("section.details table.layers tbody tr", timeout=30_000)
    yield opened
    context.close()


def rows(page):
    return page.locator("table.compare tbody tr")


def cell(page, run, key):
    return page.locator(f'table.compare tr[data-run="{run}"] td[data-key="{key}"]')


def figure(text: str) -> str:
    """A cell's value without its ratio line or its mark."""
    return text.split("\n")[0].removeprefix("≠ ").strip()


def test_one_row_per_run_within_the_window(page):
    assert rows(page).count() == RUNS
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    assert page.evaluate("document.body.scrollWidth") <= WIDTH
    headings = page.locator("table.compare th").all_inner_texts()
    for title in ("model", "batch", "dtype policy", "optimizer", "params", "fwd MACs / sample", "train FLOPs / step",
                  "mem: estimate (sum)", "measured peak mem.", "peak FLOP/s (source)", "samples/s", "FLOP/s", "MFU",
                  "HFU"):
        assert title in headings
    assert page.locator("section.details").count() == 1  # one run's details, not one section per run


def test_overlay_charts_hold_every_run(page):
    charts = {page.locator(f"[data-testid=overlay-{i}] .title").inner_text(): page.locator(f"[data-testid=overlay-{i}] g.series")
              for i in range(4)}
    assert charts["samples/s per epoch"].count() == RUNS
    assert charts["measured peak memory per epoch (training)"].count() == RUNS
    # the run without a cost model has no FLOP/s nor MFU
    assert charts["achieved FLOP/s per epoch"].count() == charts["MFU per epoch"].count() == RUNS - 1
    # one colour per run, the same in the table and the charts
    swatch = page.locator('table.compare tr[data-run="run00/train"] .swatch').get_attribute("style")
    stroke = page.locator('[data-testid=overlay-0] g.series[data-run="run00/train"] path').get_attribute("stroke")
    assert stroke in swatch
    # epochs labelled from 1, as Keras prints them (the stored step of the first epoch is 0)
    labels = page.locator("[data-testid=overlay-0] svg text.x-tick").all_text_contents()
    assert "1" in labels and "0" not in labels
    title = page.locator('[data-testid=overlay-0] g.series[data-run="run00/train"] circle title').first.text_content()
    assert title.startswith("run00/train, epoch 1: ")


def test_states_are_marked(page, logs):
    _, roles = logs
    state = dict(rows(page).evaluate_all("rows => rows.map(r => [r.dataset.run, r.dataset.state])"))
    assert state[roles["running"]] == "running"  # its writer's lock is held
    assert state[roles["interrupted"]] == "interrupted"  # left running, its lock is free
    assert sum(value == "finished" for value in state.values()) == RUNS - 2
    no_cost = page.locator(f'table.compare tr[data-run="{roles["no_cost"]}"]')
    assert no_cost.get_attribute("data-cost") == "missing"
    assert "no cost model" in no_cost.locator("td.state").inner_text()
    notes = page.locator("[data-testid=run-notes]").inner_text()
    assert f"{roles['no_cost']}: no cost model: {plugin_logs.NO_COST_ERROR}" in notes
    assert f"{roles['interrupted']}: interrupted" in notes and "lock rule" in notes


def test_baseline_and_ratios(page):
    assert page.locator("tr.baseline").get_attribute("data-run") == "run00/train"
    page.locator('table.compare tr[data-run="run01/train"] input[type=radio]').check()
    assert page.locator("tr.baseline").get_attribute("data-run") == "run01/train"
    base = fetch_params(page, "run01/train")
    other = fetch_params(page, "run02/train")
    ratio = cell(page, "run02/train", "params").locator(".ratio").inner_text()
    assert ratio == f"×{float(f'{other / base:.3g}'):g}"
    assert cell(page, "run01/train", "params").locator(".ratio").count() == 0
    page.locator("select.baseline").select_option("run00/train")
    assert page.locator("tr.baseline").get_attribute("data-run") == "run00/train"


def fetch_params(page, run) -> int:
    return next(r for r in page.evaluate("fetch('runs').then(r => r.json())") if r["run"] == run)["cost"]["params"]


def test_sortable_columns(page):
    page.locator('table.compare th[data-key="samples_per_sec"]').click()
    values = [figure(t) for t in page.locator('table.compare td[data-key="samples_per_sec"]').all_inner_texts()]
    listed = {r["run"]: r for r in page.evaluate("fetch('runs').then(r => r.json())")}
    order = rows(page).evaluate_all("rows => rows.map(r => r.dataset.run)")
    rates = [latest_rate(page, run) for run in order]
    assert rates == sorted(rates) and len(values) == RUNS and set(order) == set(listed)
    page.locator('table.compare th[data-key="samples_per_sec"]').click()  # descending
    assert [latest_rate(page, run) for run in rows(page).evaluate_all("rows => rows.map(r => r.dataset.run)")] == sorted(rates, reverse=True)
    page.locator('table.compare th[data-key="run"]').click()
    assert rows(page).first.get_attribute("data-run") == "run00/train"


def latest_rate(page, run) -> float:
    served = page.evaluate(f"fetch('throughput?run={run}').then(r => r.json())")
    return served["train"]["epoch_samples_per_sec"][-1][1]


def test_different_peaks_are_marked_and_mfu_can_share_one(page, logs):
    _, roles = logs
    a100 = roles["a100"]
    assert "≠" in cell(page, a100, "peak_flops_per_sec").inner_text()
    assert "NVIDIA A100" in cell(page, a100, "peak_flops_per_sec").inner_text()
    assert "≠" not in cell(page, "run01/train", "peak_flops_per_sec").inner_text()
    assert "≠" in cell(page, a100, "mfu").inner_text()
    own = figure(cell(page, a100, "mfu").inner_text())
    page.locator("[data-testid=peak-notice] button").click()
    assert "MFU vs 989 TFLOP/s" in page.locator("table.compare thead").inner_text()
    served = page.evaluate(f"fetch('throughput?run={a100}').then(r => r.json())")
    tflops = served["train"]["epoch_tflops_per_sec"][-1][1]
    assert figure(cell(page, a100, "mfu").inner_text()) == f"{100 * tflops / 989:.1f}%" != own
    assert page.locator("[data-testid=overlay-2] .title").inner_text() == "MFU per epoch, against 989 TFLOP/s"
    page.locator("select.mfu-peak").select_option("own")
    assert figure(cell(page, a100, "mfu").inner_text()) == own


def test_filter_and_select_all(page):
    page.locator("input.run-filter").fill("run0[0-4]")
    assert page.locator(".runs label").count() == 5 and rows(page).count() == 5
    page.locator("input.select-all").click()  # all five were ticked: untick them
    assert rows(page).count() == 0
    page.locator("input.select-all").click()
    assert rows(page).count() == 5
    page.locator(".runs label", has_text="run02/train").locator("input").uncheck()
    assert rows(page).count() == 4
    assert page.locator("input.select-all").evaluate("box => box.indeterminate")
    page.locator("input.select-all").click()
    page.locator("input.run-filter").fill("(")  # not a regular expression: matched as text
    assert rows(page).count() == 0 and "not a regular expression" in page.locator(".toolbar").inner_text()
    page.locator("input.run-filter").fill("")
    assert rows(page).count() == RUNS


def download(page, button) -> str:
    with page.expect_download() as info:
        page.locator(button).click()
    return pathlib.Path(info.value.path()).read_text()


def test_csv_and_json_downloads_hold_the_table(page):
    shown = rows(page).evaluate_all("rows => rows.map(r => r.dataset.run)")
    records = list(csv.DictReader(io.StringIO(download(page, "button.download-csv"))))
    assert [r["run"] for r in records] == shown
    document = json.loads(download(page, "button.download-json"))
    assert [r["run"] for r in document["rows"]] == shown and document["baseline"] == "run00/train"
    for record, row in zip(records, document["rows"], strict=True):
        for key in ("samples_per_sec", "mfu", "training_bytes"):
            assert (float(record[key]) if record[key] else None) == row[key]
    by_run = {r["run"]: r for r in document["rows"]}
    assert by_run["run01/train"]["samples_per_sec"] == latest_rate(page, "run01/train")
    assert by_run["run01/train"]["params"] == fetch_params(page, "run01/train")
    assert by_run["run01/train"]["params_vs_baseline"] == pytest.approx(
        fetch_params(page, "run01/train") / fetch_params(page, "run00/train"))
    assert by_run["run00/train"]["baseline"] is True and by_run["run07/train"]["cost"] == "missing"
    assert float(next(r for r in records if r["run"] == "run01/train")["samples_per_sec"]) == pytest.approx(
        latest_rate(page, "run01/train"))
    assert {"state", "model", "batch_size", "training_bytes", "peak_flops_per_sec", "peak_source", "mfu"} <= set(records[0])


def test_details_of_one_run_sort_output_shapes_numerically(page):
    page.locator('table.compare tr[data-run="run03/train"] td.run').click()  # mlp_xs: 512, 2048, 64, 10 wide
    section = page.locator('section.details[data-run="run03/train"]')
    section.locator("table.layers tbody tr").first.wait_for(timeout=10_000)
    section.locator('table.layers th[data-key="output_shape"]').click()
    shapes = section.locator("table.layers tbody tr td:nth-child(3)").all_inner_texts()
    assert shapes == ["(10,)", "(64,)", "(512,)", "(2048,)"]
    assert page.locator("section.details").count() == 1
    assert "epoch_samples_per_sec (training, epoch 3)" in section.locator("dl.figures").last.inner_text()
    page.locator("select.details-run").select_option("run00/train")
    page.locator('section.details[data-run="run00/train"]').wait_for(timeout=10_000)


def test_a_sharded_run_shows_its_mesh_and_one_devices_share(page, logs):
    _, roles = logs
    run = roles["sharded"]
    cost = page.evaluate(f"fetch('layers?run={run}').then(r => r.json())")
    assert figure(cell(page, run, "devices").inner_text()) == "8"
    shown, unit = figure(cell(page, run, "per_device_training_bytes").inner_text()).split()
    scale = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
    assert float(shown) * scale == pytest.approx(cost["per_device"]["training_bytes"], rel=0.01)
    assert figure(cell(page, roles["a100"], "devices").inner_text()) == "\u2013"  # one device: nothing to say (an en dash)
    page.locator("select.details-run").select_option(run)
    share = page.locator(f'section.details[data-run="{run}"] [data-testid=per-device]')
    share.wait_for(timeout=10_000)
    assert share.inner_text() == "Per device: 8 devices, mesh batch 2 x model 4"
    listed = page.locator(f'section.details[data-run="{run}"]').inner_text()
    assert "unknown sharding" in listed and "communication_bytes" in listed


def predicted(row: dict, peak: float, bandwidth: float) -> tuple[float, str]:
    """A row's predicted seconds and bound, by hand: each pass (forward, backward, the optimizer's update)
    takes max(FLOPs / peak, bytes / bandwidth); the row is bound where most of its time is."""
    passes = [(row["forward_flops"], row["forward_bytes_moved"]), (row["backward_flops"], row["backward_bytes_moved"]),
              (row["training_flops"] - row["forward_flops"] - row["backward_flops"], row["optimizer_bytes_moved"])]
    compute = sum(f / peak for f, b in passes if f / peak >= b / bandwidth)
    memory = sum(b / bandwidth for f, b in passes if f / peak < b / bandwidth)
    return compute + memory, "compute" if compute >= memory else "memory"


def open_details(page, run):
    page.locator(f'table.compare tr[data-run="{run}"] td.run').click()
    section = page.locator(f'section.details[data-run="{run}"]')
    section.locator("[data-testid=roofline-section]").wait_for(timeout=10_000)
    return section


def test_roofline_of_a_run_has_its_roofs_its_blocks_and_the_measured_point(page):
    run = "run00/train"  # mlp_s: 4 x Dense(2048) and Dense(10) on 1024 features, batch 256, an H100
    section = open_details(page, run)
    document = page.evaluate(f"fetch('layers?run={run}').then(r => r.json())")
    peak, bandwidth = plugin_logs.H100["flops_per_sec"], plugin_logs.BANDWIDTHS[plugin_logs.H100["flops_per_sec"]]
    chart = section.locator("svg.roofline")
    labels = chart.locator("text.roof-label").all_text_contents()
    assert labels == ["memory: 3.35 TB/s", "peak: 989 TFLOP/s"]
    assert chart.locator("line.roof").evaluate_all("lines => lines.map(l => l.dataset.roof)") == ["memory", "compute"]
    assert chart.locator("text.ridge-label").text_content() == f"ridge {float(f'{peak / bandwidth:.4g}'):g} FLOP/B"
    # one point per block (each layer is a block of its own), coloured by its bound as computed by hand
    expected = {row["name"]: predicted(row, peak, bandwidth) for row in document["layers"]}
    points = chart.locator("circle.point").evaluate_all(
        "dots => dots.map(d => [d.dataset.name, d.dataset.bound, Number(d.getAttribute('cx')), Number(d.getAttribute('r'))])")
    assert {name: bound for name, bound, _, _ in points} == {name: bound for name, (_, bound) in expected.items()}
    intensity = {row["name"]: row["arithmetic_intensity"] for row in document["layers"]}
    by_x = [name for name, *_ in sorted(points, key=lambda p: p[2])]
    assert by_x == sorted(intensity, key=intensity.get)  # further right, more FLOPs per byte
    largest = max(expected, key=lambda name: expected[name][0])
    assert max(points, key=lambda p: p[3])[0] == largest  # the area follows the predicted time
    # the measured point: the latest achieved FLOP/s, below the peak's roof
    served = page.evaluate(f"fetch('throughput?run={run}').then(r => r.json())")
    achieved = served["train"]["epoch_tflops_per_sec"][-1][1]
    assert chart.locator("text.measured-label").text_content() == f"measured: {float(f'{achieved:.3g}'):g} TFLOP/s"
    roof_y = float(chart.locator('line.roof[data-roof="compute"]').get_attribute("y1"))
    assert float(chart.locator("circle.measured").get_attribute("cy")) > roof_y
    # the rows with most predicted time, their bound and share
    top = section.locator("table.roofline-top tbody tr")
    assert top.count() == len(document["layers"])
    assert top.first.locator("td").first.inner_text() == largest
    step = sum(seconds for seconds, _ in expected.values())
    assert top.first.locator("td").nth(3).inner_text() == f"{100 * expected[largest][0] / step:.1f}%"
    assert top.first.get_attribute("data-bound") == expected[largest][1]
    figures = section.locator("[data-testid=roofline-figures]").inner_text()
    assert f"Predicted step: {float(f'{step:.3g}'):g} s" in figures
    assert "of the measured steady step" in figures
    assert section.locator("[data-testid=by-kind] .kind-words").inner_text() == "MLP 100.0%"


def test_a_run_without_a_roofline_says_why_and_old_documents_still_show(page, logs):
    _, roles = logs
    section = open_details(page, roles["no_bandwidth"])
    assert "memory bandwidth is unknown" in section.locator("[data-testid=no-roofline]").inner_text()
    assert section.locator("[data-testid=by-kind] h3").inner_text() == "By kind (share of the training FLOPs)"
    section = open_details(page, roles["old_format"])
    assert "has no bytes moved" in section.locator("[data-testid=no-roofline]").inner_text()
    assert section.locator("[data-testid=by-kind]").count() == 0
    document = page.evaluate(f"fetch('layers?run={roles['old_format']}').then(r => r.json())")
    assert "training_bytes_moved" not in document  # as an older callback wrote it
    assert section.locator("table.layers tbody tr").count() == len(document["layers"])  # its table as before
    assert section.locator("table.layers tbody tr td").filter(has_text="–").count() == 2 * len(document["layers"])
    page.locator("select.details-run").select_option("run00/train")
    page.locator('section.details[data-run="run00/train"]').wait_for(timeout=10_000)


def test_compare_table_holds_the_roofline_fraction(page, logs):
    _, roles = logs
    served = page.evaluate("fetch('throughput?run=run01/train').then(r => r.json())")
    fraction = served["train"]["epoch_roofline_fraction"][-1][1]
    assert figure(cell(page, "run01/train", "roofline_fraction").inner_text()) == f"{100 * fraction:.1f}%"
    assert figure(cell(page, roles["old_format"], "roofline_fraction").inner_text()) == "–"


def test_roofline_screenshot(page, tmp_path):
    """The roofline section renders to a PNG (``NNS_SCREENSHOTS=docs`` keeps it as docs/cost_tab_roofline.png)."""
    folder = os.environ.get("NNS_SCREENSHOTS")
    path = pathlib.Path(folder or tmp_path) / "cost_tab_roofline.png"
    section = open_details(page, "run01/train")
    section.locator("[data-testid=roofline-section]").screenshot(path=str(path))
    assert path.read_bytes().startswith(b"\x89PNG")
    page.locator("select.details-run").select_option("run00/train")
    page.locator('section.details[data-run="run00/train"]').wait_for(timeout=10_000)


def test_theme_follows_the_browser_alone(page):
    assert page.locator("body").get_attribute("data-theme") == "the browser's colour scheme"
    page.emulate_media(color_scheme="dark")
    page.wait_for_function("document.body.classList.contains('dark')")
    page.emulate_media(color_scheme="light")
    page.wait_for_function("!document.body.classList.contains('dark')")


def test_screenshot(page, tmp_path):
    """The comparison view renders to a PNG (``NNS_SCREENSHOTS=docs`` keeps it as docs/cost_tab_compare.png)."""
    folder = os.environ.get("NNS_SCREENSHOTS")
    path = pathlib.Path(folder or tmp_path) / "cost_tab_compare.png"
    page.evaluate("window.scrollTo(0, 0)")
    bottom = page.locator(".compare-view").bounding_box()
    page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": WIDTH, "height": bottom["y"] + bottom["height"]})
    assert path.read_bytes().startswith(b"\x89PNG")


def test_inside_tensorboard_a_new_run_appears_on_its_reload(tensorboard, browser, logs):
    """Inside TensorBoard, the tab refreshes on TensorBoard's reload (the plugin API's DataReloaded message),
    and follows TensorBoard's theme."""
    root, _ = logs
    context = browser.new_context(viewport={"width": WIDTH, "height": 1000})
    page = context.new_page()
    page.goto(f"{tensorboard}/#nns")
    opened = time.monotonic()
    frame = page.frame_locator("iframe")
    frame.locator("section.details table.layers tbody tr").first.wait_for(timeout=30_000)
    assert frame.locator("table.compare tbody tr").count() == RUNS
    assert frame.locator("body").get_attribute("data-reload") == "tensorboard"

    new = plugin_logs.comparison_run(root, RUNS, "run_new")
    wait_for(lambda: new in {r["run"] for r in fetch_json(tensorboard, "/data/plugin/nns/runs")}, message="the new run")
    if time.monotonic() - opened < AUTO_RELOAD_S - 5:  # not before TensorBoard reloads (by itself every 30 s)
        assert frame.locator(f'table.compare tr[data-run="{new}"]').count() == 0
    page.locator("button.reload-button").click()
    frame.locator(f'table.compare tr[data-run="{new}"]').wait_for(timeout=15_000)
    assert frame.locator("table.compare tbody tr").count() == RUNS + 1
    assert "on TensorBoard's reload" in frame.locator(".reload-note").inner_text()

    assert frame.locator("body").get_attribute("data-theme") == "TensorBoard's theme"
    page.locator('button[aria-label="Menu for changing light or dark theme"]').click()
    page.locator('button[title="Force dark TensorBoard theme."]').click()
    frame.locator("body.dark").wait_for(timeout=5_000)
    context.close()
