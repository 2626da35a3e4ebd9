"""The studio page in a real headless Chromium: drawing, feature maps, the confusion matrix, the toy
walkthrough and live training, with no console errors anywhere."""
import base64
import json
import pathlib
import struct
import subprocess
import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import CONVNET, OUT


def wait(driver, condition, timeout=60, what="condition"):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d), message=what)


def body_data(driver, key):
    return driver.execute_script(f"return document.body.dataset[{json.dumps(key)}] || null")


def page_errors(driver):
    errors = list(driver.execute_script("return window.studioErrors || ['the error collector did not load']"))
    errors += [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return errors


@pytest.fixture
def page(browser, server):
    browser.get(server.url + "/")
    wait(browser, lambda d: body_data(d, "ready") == "true", what="the page to load its model and walkthrough")
    yield browser
    assert page_errors(browser) == []


def draw_seven(driver):
    """A 7 with synthetic pointer events: a top bar, then a diagonal down."""
    pad = driver.find_element(By.ID, "pad")
    chain = ActionChains(driver, duration=10)
    chain.move_to_element_with_offset(pad, -50, -65).click_and_hold()
    for _ in range(10):
        chain.move_by_offset(10, 0)
    for _ in range(13):
        chain.move_by_offset(-4, 10)
    chain.release().perform()


def predict_cli(model, pixels, tmp_path):
    pgm = tmp_path / "drawn.pgm"
    pgm.write_bytes(b"P5\n28 28\n255\n" + bytes(pixels))
    result = subprocess.run([str(CONVNET), "predict", "--weights", str(model), "--json", "--top", "10", str(pgm)],
                            check=True, capture_output=True, text=True, timeout=60)
    predictions = json.loads(result.stdout.strip().splitlines()[-1])["predictions"]
    return predictions


def test_drawn_digit_matches_convnet_predict(page, server, tmp_path):
    before = page.execute_script("return window.studio.sequence")
    draw_seven(page)
    wait(page, lambda d: d.execute_script("return document.body.dataset.predictions && Number(document.body.dataset.predictions) > arguments[0]", before),
         what="the prediction after the stroke")
    wait(page, lambda d: body_data(d, "mapsShown") == body_data(d, "predictions"), what="the feature maps")
    pixels = page.execute_script("return window.studio.pixels")
    assert len(pixels) == 784 and sum(1 for v in pixels if v > 0) > 40
    shown_class = int(page.find_element(By.ID, "predicted-class").get_attribute("data-class"))
    shown_label = page.find_element(By.ID, "predicted-class").text
    bars = page.find_elements(By.CSS_SELECTOR, "#bars .bar-row")
    shown = {int(b.get_attribute("data-class")): float(b.get_attribute("data-probability")) for b in bars}
    texts = {int(b.get_attribute("data-class")): b.find_element(By.CLASS_NAME, "bar-value").text for b in bars}

    cli = predict_cli(server.runs / "base" / "model.npz", pixels, tmp_path)
    assert cli[0]["class"] == shown_class and cli[0]["label"] == shown_label
    assert len(shown) == len(cli) == 10
    for entry in cli:
        assert abs(shown[entry["class"]] - entry["probability"]) < 1e-6, (entry, shown[entry["class"]])
        assert texts[entry["class"]] == f"{100 * entry['probability']:.1f}%"
    stroke_ms = float(body_data(page, "strokeMs"))
    print(f"\nstroke end to new bars: {stroke_ms:.1f} ms (shown class {shown_label})")

    shot = OUT / "studio-drawn-digit.png"
    page.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot of the page with a drawn digit: {shot}")


def decode_maps(server, pixels):
    import urllib.request
    request = urllib.request.Request(server.url + "/api/maps", data=json.dumps({"pixels": pixels}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def floats(b64):
    raw = base64.b64decode(b64)
    return struct.unpack(f"<{len(raw) // 4}f", raw)


def test_feature_maps_filters_and_hover_values(page, server):
    draw_seven(page)
    wait(page, lambda d: body_data(d, "mapsShown") is not None and body_data(d, "mapsShown") == body_data(d, "predictions"), what="maps")
    maps = decode_maps(server, page.execute_script("return window.studio.pixels"))
    names = [layer["name"] for layer in maps["layers"]]
    assert names[0] == "conv1" and len(names) >= 6
    # One small image per channel of every image-shaped layer, and one per first-layer filter.
    for layer in maps["layers"]:
        canvases = page.find_elements(By.CSS_SELECTOR, f'#maps .layer[data-layer="{layer["name"]}"] canvas')
        assert len(canvases) == (layer["shape"][0] if len(layer["shape"]) == 3 else 1), layer["name"]
    filters = page.find_elements(By.CSS_SELECTOR, "#filters canvas")
    assert len(filters) == maps["filters"]["shape"][0]

    for layer_name, channel in (("conv1", 3), ("maxpool2", 7)):
        canvas = page.find_element(By.CSS_SELECTOR, f'#maps canvas[data-layer="{layer_name}"][data-channel="{channel}"]')
        ActionChains(page).move_to_element_with_offset(canvas, 3, -2).perform()
        box = page.find_element(By.ID, "hover-value")
        wait(page, lambda d: box.get_attribute("data-layer") == layer_name and box.get_attribute("data-channel") == str(channel), what="hover")
        layer = next(l for l in maps["layers"] if l["name"] == layer_name)
        c, h, w = layer["shape"]
        x, y = int(box.get_attribute("data-x")), int(box.get_attribute("data-y"))
        expected = floats(layer["data"])[channel * h * w + y * w + x]
        assert float(box.get_attribute("data-value")) == expected
        assert f"x {x}, y {y}" in box.text


def test_confusion_matrix_and_a_cell(page, server):
    page.find_element(By.ID, "confusion-load").click()
    wait(page, lambda d: body_data(d, "confusion") == "shown", timeout=120, what="the confusion matrix")
    cells = page.find_elements(By.CSS_SELECTOR, "#confusion td")
    assert len(cells) == 100
    counts = {(int(c.get_attribute("data-actual")), int(c.get_attribute("data-predicted"))): int(c.text) for c in cells}
    total = server.get("/api/confusion")["count"]
    assert sum(counts.values()) == total > 0
    # An off-diagonal cell with mistakes if there is one, else the fullest cell.
    wrong = [k for k, v in counts.items() if k[0] != k[1] and v > 0]
    actual, predicted = max(wrong, key=lambda k: counts[k]) if wrong else max(counts, key=counts.get)
    page.find_element(By.CSS_SELECTOR, f'#confusion td[data-actual="{actual}"][data-predicted="{predicted}"]').click()
    wait(page, lambda d: body_data(d, "cellShown") == f"{actual},{predicted}", what="the cell's images")
    images = page.find_elements(By.CSS_SELECTOR, "#cell-images .cell-image")
    assert len(images) == min(counts[(actual, predicted)], 64)
    assert "%" in images[0].text
    assert f"{counts[(actual, predicted)]} test images" in page.find_element(By.ID, "cell-title").text
    page.execute_script("document.getElementById('test-section').scrollIntoView()")
    page.save_screenshot(str(OUT / "studio-confusion.png"))
    print(f"\nscreenshot of the confusion matrix and a cell: {OUT / 'studio-confusion.png'}")


def test_walkthrough_steps_forward_and_back(page):
    title = page.find_element(By.ID, "walk-title")
    first = title.text
    assert first and page.find_element(By.ID, "walk-prev").get_attribute("disabled") is not None
    page.find_element(By.ID, "walk-next").click()
    page.find_element(By.ID, "walk-next").click()
    assert page.find_element(By.ID, "walk-pos").get_attribute("data-index") == "2"
    assert title.text != first
    assert page.find_elements(By.CSS_SELECTOR, "#walk-matrices table")
    page.find_element(By.ID, "walk-prev").click()
    page.find_element(By.ID, "walk-prev").click()
    assert title.text == first


def test_live_training_from_the_page(page, server):
    before = set(p.name for p in server.runs.iterdir())
    page.find_element(By.ID, "train-epochs").clear()
    page.find_element(By.ID, "train-epochs").send_keys("1")
    page.find_element(By.ID, "train-start").click()
    wait(page, lambda d: body_data(d, "training") == "running", what="the training to start")
    run = body_data(page, "trainRun")
    wait(page, lambda d: int(d.find_element(By.ID, "loss-chart").get_attribute("data-points")) >= 2, timeout=120,
         what="the loss chart to gain points")
    wait(page, lambda d: body_data(d, "training") == "done", timeout=300, what="the training to finish")
    assert int(page.find_element(By.ID, "acc-chart").get_attribute("data-points")) >= 1
    folder = server.runs / run
    assert run not in before and folder.is_dir()
    for name in ("metrics.csv", "metrics.jsonl", "checkpoint.npz", "model.npz", "report.html"):
        assert (folder / name).exists(), name
    wait(page, lambda d: run in d.find_element(By.ID, "model-info").text, what="drawing to use the new run")
    assert server.get("/api/model")["run"] == run
    page.execute_script("document.getElementById('train-section').scrollIntoView()")
    page.save_screenshot(str(OUT / "studio-training.png"))
    print(f"\nscreenshot of the finished live training: {OUT / 'studio-training.png'}")


def form_values(driver):
    value = lambda id: driver.find_element(By.ID, id).get_attribute("value")
    return {"model": value("train-model"), "dataset": value("train-dataset"), "optimizer": value("train-optimizer"),
            "learning_rate": float(value("train-lr")), "batch_size": int(value("train-batch")), "epochs": int(value("train-epochs"))}


def test_a_recipe_fills_the_form_and_sends_only_the_changes(page, server):
    recipes = server.get("/api/model")["recipes"]
    names = [o.get_attribute("value") for o in Select(page.find_element(By.ID, "train-recipe")).options]
    assert names == [""] + [r["name"] for r in recipes]
    # The recipe least like the form's defaults, so that filling it changes every field it can.
    recipe = max(recipes, key=lambda r: (r["model"] != "two-conv") + (r["dataset"] != "mnist-sample") + (r["epochs"] != 10))
    Select(page.find_element(By.ID, "train-recipe")).select_by_value(recipe["name"])
    assert form_values(page) == {k: recipe[k] for k in ("model", "dataset", "optimizer", "learning_rate", "batch_size", "epochs")}
    assert recipe["summary"] in page.find_element(By.ID, "recipe-note").text
    assert page.execute_script("return window.studio.trainRequest()") == {"recipe": recipe["name"]}

    # A changed field is sent as an override; an optimizer changed and changed back restores the recipe's rate.
    page.find_element(By.ID, "train-epochs").clear()
    page.find_element(By.ID, "train-epochs").send_keys("2")
    assert page.execute_script("return window.studio.trainRequest()") == {"recipe": recipe["name"], "epochs": 2}
    optimizer = Select(page.find_element(By.ID, "train-optimizer"))
    other = "adamw" if recipe["optimizer"] != "adamw" else "sgd"
    optimizer.select_by_value(other)
    assert page.find_element(By.ID, "train-lr").get_attribute("value") == ("0.001" if other == "adamw" else "0.01")
    assert page.execute_script("return window.studio.trainRequest()") == {
        "recipe": recipe["name"], "epochs": 2, "optimizer": other, "learning_rate": 0.001 if other == "adamw" else 0.01}
    optimizer.select_by_value(recipe["optimizer"])
    assert page.execute_script("return window.studio.trainRequest()") == {"recipe": recipe["name"], "epochs": 2}

    # No recipe: every field, as before.
    Select(page.find_element(By.ID, "train-recipe")).select_by_value("")
    request = page.execute_script("return window.studio.trainRequest()")
    assert "recipe" not in request and request["epochs"] == 2 and request["model"] == recipe["model"]
