"""Screenshots of TensorBoard on a grid's runs, taken with a headless Chromium (for docs/tensorboard.md).

Starts ``tensorboard --logdir ROOT`` on a loopback port, opens its dashboards in Chromium through
Playwright and saves one PNG each: the opening page, the custom-scalars layout (each score beside
its references) and the HPARAMS table. Needs what the package does not: Playwright
(``pip install playwright``) and a Chromium (Debian: ``apt-get install chromium``)::

    python benchmarks/tensorboard_screenshots.py runs/shots --out docs/tensorboard --chromium /usr/bin/chromium
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PAGES = {"opening": "", "custom_scalars": "#custom_scalars", "hparams": "#hparams"}
# Chromium in a closed network: no background connections, no first-run or sync (they hang or spam).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"tensorboard did not answer at {url} within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path, help="a grid's root (or any folder of TensorBoard logs)")
    parser.add_argument("--out", type=Path, default=Path("docs/tensorboard"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds a page may take to draw its charts")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(args.logdir), "--host", "127.0.0.1",
                              "--port", str(port), "--reload_interval", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(url + "data/logdir")
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            for name, fragment in PAGES.items():
                page.goto(url + fragment, wait_until="networkidle")
                time.sleep(args.settle)
                page.screenshot(path=str(args.out / f"{name}.png"))
                print(f"{args.out / f'{name}.png'}: {page.url}")
            browser.close()
    finally:
        board.terminate()
        board.wait(timeout=30)


if __name__ == "__main__":
    main()
