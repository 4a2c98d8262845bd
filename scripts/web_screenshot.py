"""The README's screenshot of `freqnet serve`: headless Chromium uploads the sample photo, waits for the result,
moves the loupe over it and saves docs/web_app.png.

    python scripts/web_screenshot.py --out docs/web_app.png   (needs chromium, chromium-driver, selenium)
"""

from __future__ import annotations

import argparse
import shutil
import threading
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
from waitress.server import create_server

from freqnet.web.server import create_app

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "web_app.png")
    parser.add_argument("--image", type=Path, default=ROOT / "freqnet" / "assets" / "samples" / "chelsea.png")
    parser.add_argument("--model", default="x2")
    args = parser.parse_args()
    app = create_app()
    server = create_server(app, host="127.0.0.1", port=0)
    threading.Thread(target=server.run, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,900", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(f"http://127.0.0.1:{server.effective_port}/")
        WebDriverWait(driver, 20).until(lambda d: len(Select(d.find_element(By.ID, "model")).options) >= 2)
        Select(driver.find_element(By.ID, "model")).select_by_value(args.model)
        driver.find_element(By.ID, "files").send_keys(str(args.image.resolve()))
        WebDriverWait(driver, 120).until(lambda d: d.execute_script(
            "const a = document.querySelector('.compare .after'); return a && a.complete && a.naturalWidth > 0"))
        compare = driver.find_element(By.CSS_SELECTOR, ".compare")
        ActionChains(driver).move_to_element_with_offset(compare, 120, -60).perform()
        driver.save_screenshot(str(args.out))
    finally:
        driver.quit()
        server.close()
        app.extensions["freqnet_jobs"].close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
