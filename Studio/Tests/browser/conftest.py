"""Fixtures for the studio's end-to-end tests: a trained run, a running convnet-studio on a free
loopback port, and a headless Chromium (Debian's chromium + chromedriver) driven by Selenium.

Binaries: $CONVNET_BIN (default .build/release/convnet of the checkout) and $CONVNET_STUDIO_BIN
(default Studio/.build/release/convnet-studio). Outputs (screenshot, latency figures) go to
$STUDIO_TEST_OUT (default Studio/.build/studio-tests)."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

STUDIO_DIR = pathlib.Path(__file__).resolve().parents[2]
REPO = STUDIO_DIR.parent
CONVNET = pathlib.Path(os.environ.get("CONVNET_BIN", REPO / ".build/release/convnet"))
STUDIO = pathlib.Path(os.environ.get("CONVNET_STUDIO_BIN", STUDIO_DIR / ".build/release/convnet-studio"))
OUT = pathlib.Path(os.environ.get("STUDIO_TEST_OUT", STUDIO_DIR / ".build/studio-tests"))


class Server:
    def __init__(self, runs, extra=()):
        self.runs = runs
        self.process = subprocess.Popen(
            [str(STUDIO), "--port", "0", "--runs", str(runs), "--convnet", str(CONVNET), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr = []
        threading.Thread(target=lambda: self.stderr.extend(self.process.stderr), daemon=True).start()
        self.url = None
        deadline = time.time() + 60
        line = self.process.stdout.readline()
        while line and time.time() < deadline:
            if line.startswith("convnet studio: http://"):
                self.url = line.split(": ", 1)[1].strip().rstrip("/")
                break
            line = self.process.stdout.readline()
        if not self.url:
            self.process.kill()
            raise RuntimeError("convnet-studio did not print its URL: " + "".join(self.stderr))
        self.host, self.port = self.url[len("http://"):].rsplit(":", 1)
        self.port = int(self.port)

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path, body):
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())

    def interrupt(self, timeout=90):
        """Ctrl-C: SIGINT, then the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def binaries():
    for path in (CONVNET, STUDIO):
        if not path.exists():
            pytest.fail(f"{path} is missing: build with `swift build -c release` and `swift build -c release --package-path Studio`")
    OUT.mkdir(parents=True, exist_ok=True)
    return CONVNET, STUDIO


@pytest.fixture(scope="session")
def runs(binaries, tmp_path_factory):
    """A runs folder with one 1-epoch two-conv run on mnist-sample, trained by `convnet train`."""
    root = tmp_path_factory.mktemp("runs")
    subprocess.run([str(CONVNET), "train", "--model", "two-conv", "--epochs", "1", "--out", str(root / "base")],
                   check=True, capture_output=True, timeout=600)
    return root


@pytest.fixture(scope="session")
def server(runs):
    s = Server(runs)
    yield s
    try:
        status = s.interrupt()
        assert status == 0, "convnet-studio did not exit cleanly on SIGINT: " + "".join(s.stderr)
    finally:
        s.close()


@pytest.fixture(scope="session")
def browser(binaries):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,2300"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()
