"""Budgets of the capture app: shell size, capture screen ready time, quality round trip.

    .venv/bin/python benchmarks/web_app.py [--repeats 20] [--json FILE]

- Shell: bytes of the HTML, JavaScript and CSS the app at /app loads (its own files and
  /shared), uncompressed; the console's likewise. Budget: app shell under 200 KB.
- Capture screen ready: in Debian's Chromium (headless, on loopback, the fake camera playing
  a 1280x720 face video made from ../shared/data), from the click on "Continue to capture" to
  a live preview frame with "Take photo" enabled, measured in the page. Budget: under 1 s.
- Quality round trip: a 1280x720 frame grabbed from the preview as JPEG, POSTed to
  /v1/quality-check from the page ``--repeats`` times; the time to the verdict (face plug-in:
  the default dlib one). Budget: under 1 s.

Uses the browser tests' service and browser set-up (tests/test_browser.py). Prints a table
and writes JSON (default benchmarks/results/web_app.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_browser import (  # noqa: E402
    PHONE,
    at_start_of,
    choose_search,
    launch,
    serving,
)

WEB = ROOT / "src" / "biomatch" / "web"

ROUND_TRIPS = """async (repeats) => {
  const video = document.getElementById('preview');
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  const frame = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.92));
  const token = sessionStorage.getItem('biomatch.token');
  const times = [];
  let passed = 0;
  for (let i = 0; i < repeats; i++) {
    const form = new FormData();
    form.append('image', frame, 'frame.jpg');
    const started = performance.now();
    const response = await fetch('/v1/quality-check',
      {method: 'POST', body: form, headers: {Authorization: `Bearer ${token}`}});
    const verdict = await response.json();
    times.push(performance.now() - started);
    if (verdict.passed) passed++;
  }
  return {times, passed, width: canvas.width, height: canvas.height, bytes: frame.size};
}"""

READY = """() => new Promise((resolve) => {
  const started = performance.now();
  document.querySelector('#setup-form button[type=submit]').click();
  const poll = () => {
    const video = document.getElementById('preview');
    const shoot = document.getElementById('shoot');
    if (video.videoWidth > 0 && video.readyState >= 2 && !shoot.disabled && !shoot.hidden
        && !document.getElementById('capture').hidden) {
      resolve(performance.now() - started);
    } else {
      requestAnimationFrame(poll);
    }
  };
  poll();
})"""


def shell_bytes(*folders: str) -> int:
    return sum(
        path.stat().st_size
        for folder in folders
        for path in (WEB / folder).rglob("*")
        if path.suffix in {".html", ".js", ".css"}
    )


def measure(repeats: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory() as folder,
        serving(Path(folder)) as live,
        sync_playwright() as playwright,
    ):
        browser = launch(playwright, live)
        context = browser.new_context(viewport=PHONE)
        context.grant_permissions(["camera"], origin=live.url)
        page = context.new_page()
        page.goto(f"{live.url}/app/")
        loaded = page.evaluate(
            "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
        )
        page.get_by_label("Operator token").fill(live.tokens["officer"])
        page.get_by_role("button", name="Sign in").click()
        choose_search(page, "staff", "identify")
        ready = [page.evaluate(READY)]
        for _ in range(4):  # again, with the page warm: back to the search, on to capture
            page.get_by_role("button", name="Change search").click()
            ready.append(page.evaluate(READY))
        at_start_of(page, live, dark=False)  # grab a well-lit frame
        trips = page.evaluate(ROUND_TRIPS, repeats + 1)
        browser.close()
    times = trips["times"][1:]  # the first (a cold path) is reported apart
    return {
        "app_loaded_ms": round(loaded, 1),
        "capture_ready_first_ms": round(ready[0], 1),
        "capture_ready_median_ms": round(statistics.median(ready), 1),
        "quality_first_ms": round(trips["times"][0], 1),
        "quality_median_ms": round(statistics.median(times), 1),
        "quality_p95_ms": round(sorted(times)[max(0, int(len(times) * 0.95) - 1)], 1),
        "quality_max_ms": round(max(times), 1),
        "quality_passed": trips["passed"],
        "frame": f"{trips['width']}x{trips['height']} JPEG, {trips['bytes']} bytes",
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/web_app.json")
    args = parser.parse_args()
    result = {
        "app_shell_bytes": shell_bytes("app", "shared"),
        "console_shell_bytes": shell_bytes("console", "shared"),
        **measure(args.repeats),
        "machine": {"cpus": os.cpu_count(), "load_1min": os.getloadavg()[0]},
        "python": platform.python_version(),
    }
    budgets = {
        "app_shell_bytes": 200_000,
        "capture_ready_first_ms": 1000,
        "quality_median_ms": 1000,
    }
    print(f"{'measure':28} {'value':>12}  budget")
    for key, value in result.items():
        if isinstance(value, dict):
            continue
        budget = budgets.get(key)
        verdict = "" if budget is None else f"< {budget} " + ("ok" if value < budget else "OVER")
        print(f"{key:28} {value!s:>12}  {verdict}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
