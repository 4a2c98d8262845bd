"""`freqnet serve`: the API (upload -> job -> result -> download, errors, limits, queue, cancel) through Flask's test
client, and one end-to-end run in headless Chromium (skipped, saying why, where no browser is installed)."""

import io
import shutil
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from freqnet.cli import main

pytest.importorskip("flask")
pytest.importorskip("waitress")
from freqnet.web.server import create_app  # noqa: E402

SAMPLE = Path("freqnet/assets/samples/chelsea.png")


def png_bytes(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, len(mode)), np.uint8).squeeze(),
                    mode).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client, data: bytes, name: str = "a.png", **fields):
    return client.post("/api/jobs", data={"image": (io.BytesIO(data), name), **fields},
                       content_type="multipart/form-data")


def wait(client, job_id: str, timeout: float = 60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").get_json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


@pytest.fixture
def app():
    app = create_app(max_upload_mb=1, max_pixels=200_000, max_waiting=2)
    yield app
    app.extensions["freqnet_jobs"].close()


def test_upload_job_result_download(app):
    client = app.test_client()
    models = client.get("/api/models").get_json()["models"]
    assert {"x2", "x4"} <= {m["name"] for m in models}
    response = upload(client, SAMPLE.read_bytes(), "cat.png", model="x2", detail="0.8")
    assert response.status_code == 202
    job = wait(client, response.get_json()["id"])
    assert job["state"] == "done" and job["progress"] == 1.0
    assert (job["width"], job["height"], job["out_width"], job["out_height"]) == (175, 150, 350, 300)
    result = client.get(f"/api/jobs/{job['id']}/result?download=1")
    assert result.status_code == 200 and "cat_x2.png" in result.headers["Content-Disposition"]
    assert Image.open(io.BytesIO(result.data)).size == (350, 300)
    assert Image.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/input").data)).size == (175, 150)
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/api/results.zip?ids={job['id']}").data))
    assert archive.namelist() == ["cat_x2.png"]


def test_bad_inputs_are_clear_errors(app):
    client = app.test_client()
    response = upload(client, b"not an image at all", "notes.png")
    assert response.status_code == 400 and "not an image" in response.get_json()["error"]
    assert upload(client, SAMPLE.read_bytes(), model="x9").status_code == 400
    assert upload(client, SAMPLE.read_bytes(), detail="3").status_code == 400
    assert client.post("/api/jobs", data={}, content_type="multipart/form-data").status_code == 400
    assert client.get("/api/jobs/nope").status_code == 404


def test_oversize_upload_and_pixel_limit_are_413(app):
    client = app.test_client()
    too_heavy = upload(client, png_bytes(700, 700))  # ~1.5 MB of noise, over the 1 MB limit
    assert too_heavy.status_code == 413 and "MB" in too_heavy.get_json()["error"]
    too_many = upload(client, png_bytes(600, 400, "L"))  # 240 000 pixels, over 200 000, small file
    assert too_many.status_code == 413 and "megapixels" in too_many.get_json()["error"]
    assert not any(app.extensions["freqnet_jobs"].folder.iterdir())  # refused uploads are not kept


def test_full_queue_is_429_and_queued_jobs_cancel():
    app = create_app(max_waiting=2, start_worker=False)  # nothing runs: jobs stay queued
    try:
        client = app.test_client()
        first, second = (upload(client, SAMPLE.read_bytes()).get_json()["id"] for _ in range(2))
        busy = upload(client, SAMPLE.read_bytes())
        assert busy.status_code == 429 and "busy" in busy.get_json()["error"]
        assert client.delete(f"/api/jobs/{first}").get_json()["state"] == "cancelled"
        assert upload(client, SAMPLE.read_bytes()).status_code == 202  # the cancelled one freed a place
        assert client.get(f"/api/jobs/{second}/result").status_code == 409
    finally:
        app.extensions["freqnet_jobs"].close()


def test_temporary_folder_is_removed_on_close():
    app = create_app()
    folder = app.extensions["freqnet_jobs"].folder
    upload(app.test_client(), SAMPLE.read_bytes())
    app.extensions["freqnet_jobs"].close()
    assert not folder.exists()


def test_remote_host_needs_an_explicit_flag(capsys):
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def browser():
    """Headless Chromium through Selenium, or a skip that says what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no headless browser: apt-get install chromium chromium-driver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_page_end_to_end_in_a_real_browser(tmp_path):
    from waitress.server import create_server

    driver = browser()
    app = create_app()
    server = create_server(app, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        driver.get(f"http://127.0.0.1:{server.effective_port}/")
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select, WebDriverWait

        WebDriverWait(driver, 20).until(lambda d: len(Select(d.find_element(By.ID, "model")).options) >= 2)
        Select(driver.find_element(By.ID, "model")).select_by_value("x2")
        driver.find_element(By.ID, "files").send_keys(str(SAMPLE.resolve()))
        sizes = """const c = document.querySelector('.compare');
                   if (!c || c.hidden) return null;
                   const b = c.querySelector('.before'), a = c.querySelector('.after');
                   if (!b.complete || !a.complete || !a.naturalWidth || !b.naturalWidth) return null;
                   return [b.naturalWidth, b.naturalHeight, a.naturalWidth, a.naturalHeight];"""
        found = WebDriverWait(driver, 90).until(lambda d: d.execute_script(sizes))
        assert found == [175, 150, 350, 300]
        link = driver.find_element(By.CSS_SELECTOR, ".job .download")
        assert link.get_attribute("download") == "chelsea_x2.png"
        driver.save_screenshot(str(tmp_path / "page.png"))
    finally:
        driver.quit()
        server.close()
        app.extensions["freqnet_jobs"].close()


def test_server_process_cleans_up_on_sigterm(tmp_path):
    """The real command: serves on localhost, and a SIGTERM (service managers, `timeout`) removes every upload."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "freqnet", "serve", "--port", str(port)], env=env,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                assert time.time() < deadline and server.poll() is None, "server did not start"
                time.sleep(0.3)
        assert "freqnet" in page
        assert len(list(tmp_path.glob("freqnet-serve-*"))) == 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert list(tmp_path.glob("freqnet-serve-*")) == []
    assert f"127.0.0.1:{port}" in server.stderr.read()
