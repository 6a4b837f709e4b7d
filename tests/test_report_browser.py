"""The HTML report in headless Chromium: no console errors, every figure loads, a screenshot.

Chromium is driven over the DevTools protocol (websockets); Debian's ``chromium``
package provides it (``.ci/run`` installs it).
"""

import base64
import contextlib
import io
import json
import re
import shutil
import subprocess
import time

import pytest
from PIL import Image
from run_fixtures import write_config

from scene2brain.pipeline.run import run_config

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium not found: install it (Debian: apt-get install chromium) to test the report"
)


class Browser:
    """A headless Chromium page with its console errors collected."""

    def __init__(self, profile):
        from websockets.sync.client import connect

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "about:blank"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            url = found.group(1) if found else None
        assert url is not None, "Chromium did not start its DevTools endpoint"
        self.stack = contextlib.ExitStack()
        self.socket = self.stack.enter_context(connect(url, max_size=None))
        self.events, self.next_id = [], 0
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=True)

    def send(self, method, params=None, session=False):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=120))
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply["error"]
                return reply["result"]
            self.events.append(reply)

    def open(self, url):
        self.send("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + 120
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            assert time.monotonic() < deadline, "page did not finish loading"
            self.events.append(json.loads(self.socket.recv(timeout=120)))

    def evaluate(self, expression):
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)["result"][
            "value"
        ]

    def errors(self):
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"].get("text"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(str(params.get("args")))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
        return found

    def images(self):
        script = "JSON.stringify(Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0]))"
        return json.loads(self.evaluate(script))

    def screenshot(self):
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=True)
        return base64.b64decode(data["data"])

    def close(self):
        self.stack.close()
        self.process.kill()
        self.process.wait()


@pytest.fixture
def browser(tmp_path):
    page = Browser(tmp_path / "profile")
    yield page
    page.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    changes = {
        "run": {"name": "browser test"},
        "dataset": {"simulation": {"n_stimuli": 120, "n_voxels": 200, "image_size": 64}},
        "evaluation": {"n_bootstraps": 20, "identification": True, "identification_voxels": 50},
        "report": {"enabled": True},
    }
    result = run_config(write_config(folder, changes), progress=False)
    return result.output / "report"


def test_report_files(report):
    pngs = sorted(p.stem for p in (report / "figures").glob("*.png"))
    assert sorted(p.stem for p in (report / "figures").glob("*.svg")) == pngs
    expected = {"roi_accuracy", "layer_hierarchy", "identification", "scatter_sim01", "noise_ceiling_truth_sim01"}
    expected |= {f"surface_{m}_sim01" for m in ("accuracy", "noise_ceiling", "best_layer", "best_alpha")}
    assert set(pngs) == expected
    html = (report / "index.html").read_text()
    assert html.count("data:image/png;base64,") == len(pngs)  # self-contained: every figure embedded
    assert "<img" in html and 'src="figures/' not in html
    for text in ("simulated", "sim01", "gabor", "efficientnet-lite0", "_blocks.2", "Compute time", "Versions", "PASS"):
        assert text in html, text
    # every figure of test scores says so (the layer and voxel choices are made on the training split)
    captions = (
        "median test-split accuracy",
        "Voxel by voxel, test split",
        "identification (Kay et al. 2008) of the test images, with voxels selected on training CV",
        "gabor [energy]",
    )
    for caption in captions:
        assert caption in html, caption


def test_report_opens_in_chromium_without_errors(report, browser, tmp_path):
    browser.open((report / "index.html").as_uri())
    images = browser.images()
    assert len(images) == len(list((report / "figures").glob("*.png")))
    assert all(ok for _, ok in images), [alt for alt, ok in images if not ok]
    assert browser.errors() == []
    shot = browser.screenshot()
    (report / "screenshot.png").write_bytes(shot)
    width, height = Image.open(io.BytesIO(shot)).size
    assert width >= 800 and height > 3000  # the whole page, figures included


def test_broken_pages_are_caught(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<html><body><img alt="bad" src="data:image/png;base64,AAAA">'
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    browser.open(page.as_uri())
    assert browser.images() == [["bad", False]]
    errors = browser.errors()
    assert any("boom" in e for e in errors) and any("Uncaught" in (e or "") for e in errors)
