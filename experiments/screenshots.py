"""Full-page screenshots of a run's report.html in headless Chromium, at desktop and phone width.

    python -m stickyrec.experiments.screenshots RUN_DIR [--chromium PATH]

writes ``RUN_DIR/figures/report_desktop.png`` (1280 px wide) and ``report_phone.png`` (420 px). Needs Playwright
(``pip install -e '.[browser]'``) and a Chromium (Debian's ``chromium`` package; found on PATH, or ``--chromium``).
``open_report`` is the one way the browser test and this script load a report.
"""

from __future__ import annotations

import argparse
import shutil
from contextlib import contextmanager
from pathlib import Path

from stickyrec.io import write_bytes_atomic

WIDTHS = {"desktop": 1280, "phone": 420}


def chromium_path(path: str | None = None) -> str:
    """The Chromium to drive: ``path``, else ``chromium`` (or ``chromium-browser``) on PATH."""
    found = path or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).is_file():
        raise ValueError(
            f"no Chromium at {path!r}"
            if path
            else "no Chromium on PATH; install Debian's chromium (apt-get install chromium) or pass --chromium PATH"
        )
    return found


@contextmanager
def open_report(html: Path, width: int, chromium: str | None = None):
    """A Playwright page showing ``html`` at ``width`` px; yields (page, console errors, requested URLs)."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(chromium), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.set_default_timeout(180_000)  # a long page on a busy machine takes a while to shoot
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(Path(html).resolve().as_uri(), wait_until="load")
            yield page, errors, requests
        finally:
            browser.close()


def screenshots(run_dir: str | Path, chromium: str | None = None) -> dict[str, Path]:
    """Write the report's full-page screenshots under ``run_dir/figures``; returns their paths by name."""
    run_dir = Path(run_dir)
    html = run_dir / "report.html"
    if not html.is_file():
        raise ValueError(f"{run_dir} has no report.html; run `stickyrec report {run_dir}` first")
    chromium_path(chromium)
    out = {}
    for name, width in WIDTHS.items():
        with open_report(html, width, chromium) as (page, _, _):
            path = run_dir / "figures" / f"report_{name}.png"
            write_bytes_atomic(path, page.screenshot(full_page=True))
            out[name] = path
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stickyrec.experiments.screenshots", description=__doc__)
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--chromium", default=None, help="the Chromium executable (default: chromium on PATH)")
    args = parser.parse_args(argv)
    for name, path in screenshots(args.run_dir, args.chromium).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
