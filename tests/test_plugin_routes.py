"""The nns plugin's routes against a real TensorBoard server, on runs whose documents cannot be read:
each such run is listed with its error and the others are served; an unknown run is 404 on every route."""

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from tests import plugin_logs
from tests.tensorboard_server import BROWSER_ARGS, chromium, fetch_json, serve, status_of

GOOD = "good/train"
NO_COST = "no_cost/train"
INTERRUPTED = "interrupted/train"
DAMAGED = {
    "bad_json/train": (b"{not json", "not JSON"),
    "a_list/train": ([1, 2], "a JSON list, not an object"),
    "no_model/train": ({"batch_size": 2}, "a JSON object without 'model'"),
    "bad_utf8/train": (b"\xff\xfe{}", "not UTF-8 text"),
    "float_tensor/train": (np.array([1.5, 2.0], np.float32), "a float32 tensor, not a JSON string"),
}
EPOCH = {"samples_per_sec": 100.0, "steps_per_sec": 10.0}


@pytest.fixture(scope="module")
def tensorboard(tmp_path_factory):
    root = tmp_path_factory.mktemp("routes")
    document = plugin_logs.cost_document("good_mlp", [8, 4], 2, peak=plugin_logs.H100)
    plugin_logs.write_run(root / "good", cost=document, status=plugin_logs.status_document("running"),
                          final_status=plugin_logs.status_document("finished"), epochs=[EPOCH], validation=[EPOCH])
    for run, (payload, _) in DAMAGED.items():
        plugin_logs.write_run(root / run.split("/")[0], cost=payload, epochs=[EPOCH])
    plugin_logs.write_run(root / "no_cost", status=plugin_logs.status_document("finished", "missing", "no rule for X"))
    plugin_logs.write_run(root / "interrupted", cost=document, status=plugin_logs.status_document("running"))
    plugin_logs.write_run(root / "z_bad_status", cost=document, status=b"nope")
    expected = {GOOD, NO_COST, INTERRUPTED, "z_bad_status/train", *DAMAGED}
    with serve(root, lambda base: {r["run"] for r in fetch_json(base, "/data/plugin/nns/runs")} == expected) as base:
        yield base


def runs(base) -> dict[str, dict]:
    return {entry["run"]: entry for entry in fetch_json(base, "/data/plugin/nns/runs")}


def test_runs_lists_damaged_runs_with_their_error(tensorboard):
    listed = runs(tensorboard)
    for run, (_, why) in DAMAGED.items():
        assert listed[run]["cost"] is None
        assert why in listed[run]["error"]
        assert listed[run]["status"]["cost"] == "damaged" and why in listed[run]["status"]["cost_error"]
    assert listed[GOOD]["error"] is None
    assert listed[GOOD]["cost"]["model"] == "good_mlp" and "layers" not in listed[GOOD]["cost"]
    assert listed[GOOD]["cost"]["peak"] == plugin_logs.H100


def test_run_states(tensorboard):
    listed = runs(tensorboard)
    assert (listed[GOOD]["status"]["state"], listed[GOOD]["status"]["rule"]) == ("finished", "document")
    interrupted = listed[INTERRUPTED]["status"]
    assert (interrupted["state"], interrupted["rule"]) == ("interrupted", "lock")  # its lock file is free
    assert ".nns-writer.lock" in interrupted["reason"]
    no_cost = listed[NO_COST]
    assert (no_cost["cost"], no_cost["status"]["cost"], no_cost["status"]["cost_error"]) == (None, "missing", "no rule for X")
    assert no_cost["status"]["writer"] == {"host": "test-host", "pid": 4242, "id": "writer-4242"}
    assert "not JSON" in listed["z_bad_status/train"]["status"]["error"]
    assert listed["z_bad_status/train"]["status"]["state"] == "unknown"
    assert listed["bad_json/train"]["status"]["state"] == "unknown"  # no run-status document
    assert all(isinstance(entry["updated"], float) for entry in listed.values())


@pytest.mark.parametrize("run", sorted(DAMAGED))
def test_layers_of_a_damaged_run_is_422_with_the_error(tensorboard, run):
    assert status_of(tensorboard, "/data/plugin/nns/layers", run=run) == 422
    assert status_of(tensorboard, "/data/plugin/nns/throughput", run=run) == 200  # its scalars are fine


def test_damaged_run_throughput_is_served(tensorboard):
    served = fetch_json(tensorboard, "/data/plugin/nns/throughput", run="bad_json/train")
    assert served == {"train": {"epoch_samples_per_sec": [[0, 100.0]], "epoch_steps_per_sec": [[0, 10.0]]},
                      "validation": {}}


def test_good_run_is_served(tensorboard):
    layers = fetch_json(tensorboard, "/data/plugin/nns/layers", run=GOOD)
    assert layers["model"] == "good_mlp" and [row["name"] for row in layers["layers"]] == ["dense", "dense_1"]
    throughput = fetch_json(tensorboard, "/data/plugin/nns/throughput", run=GOOD)
    assert throughput["validation"]["epoch_samples_per_sec"] == [[0, 100.0]]


@pytest.mark.parametrize("route", ["layers", "throughput"])
@pytest.mark.parametrize("run", ["no/such/run", "good/validation_x", "train"])
def test_unknown_run_is_404_on_every_route(tensorboard, route, run):
    assert status_of(tensorboard, f"/data/plugin/nns/{route}", run=run) == 404


def test_run_without_cost_model(tensorboard):
    assert status_of(tensorboard, "/data/plugin/nns/layers", run=NO_COST) == 404
    assert status_of(tensorboard, "/data/plugin/nns/throughput", run=NO_COST) == 200
    assert status_of(tensorboard, "/data/plugin/nns/layers", run="good/validation") == 404  # known, no cost model


def test_missing_run_argument_is_400(tensorboard):
    assert status_of(tensorboard, "/data/plugin/nns/layers") == 400
    assert status_of(tensorboard, "/data/plugin/nns/throughput") == 400


def test_page_shows_good_runs_and_lists_damaged_ones(tensorboard):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        page.goto(f"{tensorboard}/data/plugin_entry.html?name=nns")
        page.wait_for_selector(f'section.details[data-run="{GOOD}"] table.layers tbody tr', timeout=30_000)
        rows = page.locator("table.compare tbody tr")
        assert rows.count() == len(DAMAGED) + 4
        for run in DAMAGED:
            assert page.locator(f'table.compare tr[data-run="{run}"]').get_attribute("data-cost") == "damaged"
        notes = page.locator("[data-testid=run-notes]").inner_text()
        assert all(why in notes for _, why in DAMAGED.values())
        assert page.locator("tr.baseline").get_attribute("data-run") == GOOD  # the first run with a cost model
        browser.close()
