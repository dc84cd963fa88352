"""The annotation page's server: it serves nothing outside RUN/micro/ (traversal, encoded traversal,
absolute paths, symbolic links out), checks the Host of every request and the form of every mark, and,
driven by a real headless Chromium, saves each click to micro.json and shows it again after a reload."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import threading
import time

import pytest
import torch
from PIL import Image

from chromaproxy.segment.micro_file import new_micro, read_micro, write_micro
from chromaproxy.web.server import AnnotationServer


def _toy_run(run):
    """A run folder as ``chromaproxy annotate`` leaves it: micro.json, micro/index.json and the strips."""
    classes = {1: {"name": "cat", "eigenvalues": [0, 0.3], "means": torch.rand(2, 4), "sizes": [30, 20]},
               2: {"name": "dog <b>", "eigenvalues": [0, 0.2, 0.4], "means": torch.rand(3, 4), "sizes": [9, 8, 7]}}
    (run / "micro" / "strips").mkdir(parents=True)
    write_micro(run / "micro.json", new_micro("toy", 4, classes))
    index = {}
    for c, entry in classes.items():
        strips = [f"strips/class{c}-cluster{m}.png" for m in range(len(entry["sizes"]))]
        for strip in strips:
            Image.new("RGB", (40, 20), (200, 30, 30)).save(run / "micro" / strip)
        index[str(c)] = {"name": entry["name"], "images": ["a", "b"], "strips": strips}
    (run / "micro" / "index.json").write_text(json.dumps({"settings": {}, "classes": index}))
    (run / "config.yaml").write_text("secret: true\n")
    return run


@pytest.fixture
def served(tmp_path):
    run = _toy_run(tmp_path / "run")
    server = AnnotationServer(run, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield run, server
    server.shutdown()
    server.server_close()


def _request(server, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    connection.request(method, path, body=body, headers=headers or {})  # sent as written: no normalisation
    response = connection.getresponse()
    return response.status, response.read()


@pytest.fixture
def secrets(served, tmp_path):
    """PNGs the server must never hand out: one in the run folder above micro/, one outside the run, and
    a symbolic link in micro/ pointing at the latter."""
    run, server = served
    Image.new("RGB", (4, 4)).save(run / "secret.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "secret.png")
    os.symlink(tmp_path / "secret.png", run / "micro" / "outside.png")
    return server, tmp_path / "secret.png"


@pytest.mark.parametrize("path", [
    "/files/../secret.png", "/files/%2e%2e/secret.png", "/files/%2E%2E%2Fsecret.png", "/files/strips/../../secret.png",
    "/files/strips/%2e%2e/%2e%2e/secret.png", "/files/../../secret.png", "/files/%2e%2e/%2e%2e/secret.png",
    "/files/..%5csecret.png", "/files/strips/%00.png", "/files/outside.png", "/files/strips/..%2f..%2f..%2fsecret.png",
])
def test_paths_leading_outside_the_micro_folder_are_forbidden(secrets, path):
    server, _ = secrets
    status, body = _request(server, "GET", path)
    assert status == 403 and not body.startswith(b"\x89PNG")


def test_absolute_paths_are_forbidden(secrets):
    server, outside = secrets
    for path in (f"/files/{outside}", f"/files/%2F{str(outside).lstrip('/')}", f"/files//{outside}"):
        status, body = _request(server, "GET", path)
        assert status == 403 and not body.startswith(b"\x89PNG"), path


@pytest.mark.parametrize("path", ["/config.yaml", "/micro.json", "/files/index.json", "/files/strips/none.png", "/etc/passwd"])
def test_other_paths_are_not_found(served, path):
    assert _request(served[1], "GET", path)[0] == 404


def test_the_page_its_state_and_a_strip_are_served(served):
    run, server = served
    status, page = _request(server, "GET", "/")
    assert status == 200 and b"Micro-annotation" in page
    status, state = _request(server, "GET", "/api/state")
    state = json.loads(state)
    assert status == 200 and [c["name"] for c in state["classes"]] == ["cat", "dog <b>"]
    strip = state["classes"][1]["clusters"][2]["strip"]
    status, png = _request(server, "GET", strip)
    assert status == 200 and png.startswith(b"\x89PNG")


def test_requests_naming_another_host_are_refused(served):
    assert _request(served[1], "GET", "/api/state", headers={"Host": "attacker.example:8765"})[0] == 403


def test_marks_must_be_well_formed_json(served):
    run, server = served
    json_headers = {"Content-Type": "application/json"}
    mark = json.dumps({"class": "2", "cluster": 1, "mark": "distractor"})
    assert _request(server, "POST", "/api/mark", mark, {"Content-Type": "text/plain"})[0] == 403
    for bad in ({"class": "9", "cluster": 0, "mark": "object"}, {"class": "2", "cluster": 5, "mark": "object"},
                {"class": "2", "cluster": 0, "mark": "maybe"}, ["not", "a", "mark"]):
        assert _request(server, "POST", "/api/mark", json.dumps(bad), json_headers)[0] == 400
    assert _request(server, "POST", "/api/mark", mark, json_headers)[0] == 200
    assert read_micro(run / "micro.json")["classes"]["2"]["clusters"][1]["mark"] == "distractor"


def _browser():
    """A headless Chromium driven by selenium, or None where none is installed (an error under CI)."""
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None
    if webdriver is None or chromium is None or driver is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs a browser for the annotation page: apt-get install chromium chromium-driver "
                        "and pip install selenium (.ci/run does both)")
        pytest.skip("no chromium + chromedriver + selenium here")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=options)


def _marks_shown(browser) -> dict[str, str]:
    rows = browser.find_elements("css selector", ".cluster")
    return {row.get_attribute("id"): row.get_attribute("data-mark") for row in rows}


def _wait(condition, seconds=20):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "the page did not get there in time"
        time.sleep(0.1)


def test_clicks_in_a_real_browser_are_saved_and_shown_after_a_reload(served):
    run, server = served
    browser = _browser()
    try:
        browser.get(server.url)
        _wait(lambda: len(_marks_shown(browser)) == 5)
        assert browser.find_element("css selector", "#class-2 h2").text == "dog <b> (class 2)"  # text, not markup
        for row, mark in (("class-1-cluster-0", "distractor"), ("class-2-cluster-2", "object"), ("class-1-cluster-0", "object"),
                          ("class-2-cluster-1", "distractor")):
            browser.find_element("css selector", f"#{row} button[data-mark='{mark}']").click()
            _wait(lambda: _marks_shown(browser)[row] == mark)
        _wait(lambda: browser.find_element("id", "status").text == "saved")
        saved = read_micro(run / "micro.json")["classes"]
        assert [c["mark"] for c in saved["1"]["clusters"]] == ["object", None]
        assert [c["mark"] for c in saved["2"]["clusters"]] == [None, "distractor", "object"]
        browser.refresh()
        _wait(lambda: len(_marks_shown(browser)) == 5)
        assert _marks_shown(browser) == {"class-1-cluster-0": "object", "class-1-cluster-1": "unmarked", "class-2-cluster-0": "unmarked",
                                         "class-2-cluster-1": "distractor", "class-2-cluster-2": "object"}
        assert browser.execute_script("return document.querySelector('#class-2-cluster-1 img').naturalWidth") == 40
    finally:
        browser.quit()
