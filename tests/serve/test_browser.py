"""The web page at / in a real headless chromium (Selenium): type a text, see the predicted label, the
class bars and the token importances appear; a language model's suggestions and streamed generation;
a tagger's highlighted chunks (its model directory and its export). Skipped, with the reason, when
chromium, chromedriver or selenium is missing (`make test-browser`; Debian: apt-get install chromium chromium-driver).

`GRUTEXT_SCREENSHOT=PATH` writes the classifier page's screenshot there (`make test-browser` writes
runs/serve.png; `make test-browser SCREENSHOT=docs/img/serve.png` refreshes the README's picture);
otherwise it goes to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1100,1000",
)

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="browser test needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    pytest.importorskip("selenium", reason="browser test needs selenium (pip install 'grutext[browser]')")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    d = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    d.set_page_load_timeout(30)
    try:
        yield d
    finally:
        d.quit()


def _serve(model_dir: Path) -> Iterator[str]:
    """The server in a thread of this process on a free 127.0.0.1 port; stopped at the end."""
    import uvicorn

    from grutext.serve.app import create_app
    from grutext.serve.backend import open_backend

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(open_backend(model_dir, threads=1)), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def servers(model_dirs, tmp_path_factory) -> Iterator[dict[str, str]]:
    from grutext.export.exporter import export_model

    folders = {k: model_dirs[k] for k in ("clf", "lm", "tag")}
    folders["tag-onnx"] = tmp_path_factory.mktemp("page") / "tag-onnx"  # the tagger's export, run by the runtime
    export_model(model_dirs["tag"], folders["tag-onnx"], log=lambda s: None)
    gens = {k: _serve(folder) for k, folder in folders.items()}
    urls = {k: next(g) for k, g in gens.items()}
    yield urls
    for g in gens.values():
        next(g, None)


def _wait(driver, condition, what: str, timeout: float = 20.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d), message=f"page never showed {what}")


def _open(driver, url: str, task: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/")
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == task, f"a {task}")


def test_classifier_page_shows_the_label_bars_and_importances(driver, servers, tmp_path):
    from selenium.webdriver.common.by import By

    _open(driver, servers["clf"], "classifier")
    assert "classes: mid, neg, pos" in driver.find_element(By.ID, "model-line").text
    box = driver.find_element(By.ID, "cls-text")
    box.send_keys("the great movie of the night")
    driver.find_element(By.ID, "cls-go").click()
    _wait(driver, lambda d: d.find_element(By.ID, "label").text == "pos", "the label pos")
    bars = driver.find_elements(By.CSS_SELECTOR, "#bars .bar")
    assert [b.get_attribute("data-label") for b in bars][0] == "pos" and len(bars) == 3
    tokens = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#tokens span") or False, "the token importances")
    assert [t.text for t in tokens] == ["the", "great", "movie", "of", "the", "night"]
    assert "importance" in tokens[1].get_attribute("title")
    assert not driver.find_element(By.ID, "error").is_displayed()
    shot = Path(os.environ.get("GRUTEXT_SCREENSHOT") or tmp_path / "serve.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 1000


def test_language_model_page_suggests_and_streams(driver, servers):
    from selenium.webdriver.common.by import By

    _open(driver, servers["lm"], "language_model")
    driver.find_element(By.ID, "lm-text").send_keys("the cat ")
    chips = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#suggestions button") or False, "suggestions")
    assert len(chips) == 6
    first = chips[0].text
    chips[0].click()
    _wait(driver, lambda d: d.find_element(By.ID, "lm-text").get_attribute("value") == f"the cat {first} ", "a word")
    max_box = driver.find_element(By.ID, "lm-max")
    max_box.clear()
    max_box.send_keys("8")
    driver.find_element(By.ID, "lm-go").click()
    _wait(driver, lambda d: d.find_element(By.ID, "generated").text.strip() != "", "generated text")


@pytest.mark.parametrize("served", ["tag", "tag-onnx"])
def test_tagger_page_highlights_chunks(driver, servers, served):
    from selenium.webdriver.common.by import By

    _open(driver, servers[served], "tagger")
    driver.find_element(By.ID, "tag-text").send_keys("the dog sees a cat .")
    driver.find_element(By.ID, "tag-go").click()
    marks = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#tagged mark") or False, "chunks")
    assert [m.get_attribute("data-type") for m in marks] == ["NP", "VP", "NP"]
    assert driver.find_element(By.ID, "tagged").text.replace("NP", "").replace("VP", "").split() == [
        "the",
        "dog",
        "sees",
        "a",
        "cat",
        ".",
    ]


def test_page_shows_server_errors(driver, servers):
    from selenium.webdriver.common.by import By

    _open(driver, servers["clf"], "classifier")
    driver.execute_script("document.getElementById('cls-text').value = arguments[0]", "x" * 10_001)
    driver.find_element(By.ID, "cls-go").click()
    err = _wait(driver, lambda d: d.find_element(By.ID, "error").text or False, "the error")
    assert "the limit is 10000 per text (--max-chars)" in err
