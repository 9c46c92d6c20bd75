"""The capture app and the review console driven in a real browser (Debian's Chromium through
Playwright), as their users would: a field operator on a phone (390x844) and on a tablet, two
reviewers and an auditor. The phone's camera is Chromium's fake device playing a video made
here from a real face photo in ../shared/data: a dark stretch, then a well-lit one. axe-core
checks every screen (no serious or critical violations); screenshots of each screen go to
$BIOMATCH_SCREENSHOTS (default reports/screenshots).

Skipped with a message where Chromium, Playwright or axe-core is missing; in CI (CI=true)
their absence fails instead."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import pytest

from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.roles import Role
from biomatch.api import create_app
from biomatch.modalities import (
    Capture,
    CapturePart,
    ModelInfo,
    QualityCheck,
    QualityReport,
)
from biomatch.modalities.finger import FingerModality
from biomatch.results import SearchContext
from biomatch.service import BioMatch
from tests.conftest import EXAMPLES, REPO, SHARED, settings_for_tests, shared_file

# Once, in the SQLite pass of `make test`: the routes behind these screens run on both
# stores in test_app_api.py and test_accountability.py, and CI's time is shared.
pytestmark = pytest.mark.store("sqlite")

CHROMIUM = os.environ.get("BIOMATCH_CHROMIUM", "/usr/bin/chromium")
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("BIOMATCH_SCREENSHOTS", REPO / "reports" / "screenshots"))
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 820, "height": 1180}
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
AUTHORITY = "Identity Checks Act s.4"
FPS, PHASE_FRAMES, DARKEN = 4, 8, 0.16  # 2 s dark, then 2 s well lit, in a loop
FVC2002 = SHARED / "finger" / "fvc2002_db1b" / "DB1_B"
PRINTS_POLICY = {"modes": ["identify"], "probe_retention_hours": 24}


def _missing(what: str) -> None:
    message = f"browser tests need {what}; run scripts/install.sh (as root for Chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _require_tools() -> Any:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _missing(f"Chromium at {CHROMIUM}")
    if not AXE.exists():
        _missing(f"axe-core at {AXE} (npm ci)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python (pip install -e '.[dev]')")
    return sync_playwright


# -- the service, the camera ------------------------------------------------------------------


@dataclass
class Live:
    url: str
    core: BioMatch
    tokens: dict[str, str]
    camera: Path
    threshold: float

    def encounters(self, name: str = "reviewer") -> list[Any]:
        return self.core.list_encounters(Principal(None, name, Role.AUDITOR), 1000)

    def audit_actions(self) -> list[str]:
        auditor = Principal(None, "test-auditor", Role.AUDITOR)
        return [entry.action for entry in self.core.audit_entries(auditor, 0, 100_000)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _camera_video(photo: Path, target: Path) -> float:
    """A Y4M video of the photo, dark then well lit; returns the preview brightness that
    separates the two."""
    bgr = cv2.imread(str(photo))
    dark = np.clip(bgr.astype(np.float32) * DARKEN, 0, 255).astype(np.uint8)
    height, width = bgr.shape[:2]
    with target.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in [dark] * PHASE_FRAMES + [bgr] * PHASE_FRAMES:
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return float(dark.mean() + bgr.mean()) / 2


def _enrol(core: BioMatch, gallery: str, subject: str, *photos: str) -> None:
    enroller = Principal(None, "setup-enroller", Role.ENROLLER)
    core.enrol(enroller, gallery, subject, [shared_file(EXAMPLES / p).read_bytes() for p in photos])


def _populate(core: BioMatch) -> dict[str, str]:
    tokens = {
        name: core.create_operator(SYSTEM, name, Role(role)).token
        for name, role in {
            "officer": "field_operator",
            "reviewer": "reviewer",
            "reviewer2": "reviewer",
            "auditor": "auditor",
        }.items()
    }
    policy = {
        "modes": ["verify", "identify"],
        "probe_retention_hours": 24,
        "confirmations_required": 2,
    }
    core.create_gallery(SYSTEM, "staff", "Staff register", policy=_policy(policy))
    core.create_gallery(
        SYSTEM, "practice", "Practice gallery", policy=_policy({**policy, "training": True})
    )
    for subject, photos in {
        "obama": ("obama.jpg", "obama-480p.jpg"),  # two templates: each a chance to match
        "biden": ("biden.jpg",),
        "alex": ("alex-lacamoire.png",),
        "lin": ("lin-manuel-miranda.png",),
    }.items():
        _enrol(core, "staff", subject, *photos)
    _enrol(core, "practice", "trainee-obama", "obama.jpg")
    return tokens


def _policy(fields: dict[str, Any]) -> Any:
    from biomatch.accountability.policy import GalleryPolicy

    return GalleryPolicy.model_validate(fields)


@contextmanager
def serving(folder: Path) -> Iterator[Live]:
    """The service on a free loopback port, with operators, galleries and enrolled people,
    and the fake camera's video."""
    import uvicorn

    photo = shared_file(EXAMPLES / "obama-720p.jpg")
    settings = settings_for_tests(folder / "data").model_copy(
        update={"legal_authorities": [AUTHORITY, "Police Act 1996 s.30"]}
    )
    core = BioMatch(settings)
    tokens = _populate(core)
    camera = folder / "camera.y4m"
    threshold = _camera_video(photo, camera)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, core), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the test service did not start"
    try:
        yield Live(f"http://127.0.0.1:{port}", core, tokens, camera, threshold)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def launch(playwright: Any, live: Live) -> Any:
    """Chromium on a fresh profile (Playwright makes a temporary user-data-dir per launch)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[*LAUNCH_ARGS, f"--use-file-for-fake-video-capture={live.camera}"],
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    _require_tools()
    with serving(tmp_path_factory.mktemp("browser")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(live: Live) -> Iterator[Any]:
    sync_playwright = _require_tools()
    with sync_playwright() as playwright:
        chromium = launch(playwright, live)
        yield chromium
        chromium.close()


# -- what every screen gets: axe-core, a screenshot ---------------------------------------------


def check_screen(page: Any, name: str) -> None:
    """No serious or critical axe-core violation on what is shown; a screenshot of it."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: {bad}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def open_page(browser: Any, live: Live, viewport: dict[str, int], path: str) -> Any:
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    context.grant_permissions(["camera"], origin=live.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    page.goto(f"{live.url}{path}")
    page.errors = errors  # checked at the end of each flow
    return page


BRIGHTNESS = """() => {
  const video = document.getElementById('preview');
  const canvas = document.createElement('canvas');
  canvas.width = 32; canvas.height = 18;
  const g = canvas.getContext('2d', {willReadFrequently: true});
  g.drawImage(video, 0, 0, 32, 18);
  const d = g.getImageData(0, 0, 32, 18).data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
  return sum / (d.length / 4 * 3);
}"""


def at_start_of(page: Any, live: Live, dark: bool, timeout_s: float = 12) -> None:
    """Wait for the camera to turn dark (or well lit), so that a shot now lands well
    inside that 2-second stretch of the video."""

    def wanted(level: float) -> bool:
        return (level < live.threshold) == dark

    page.wait_for_function("() => document.getElementById('preview').videoWidth > 0")
    deadline = time.monotonic() + timeout_s
    previous = wanted(page.evaluate(BRIGHTNESS))
    while time.monotonic() < deadline:
        now = wanted(page.evaluate(BRIGHTNESS))
        if now and not previous:
            return
        previous = now
        time.sleep(0.04)
    raise AssertionError("the fake camera never changed phase")


def take_photo(page: Any, live: Live, dark: bool = False) -> None:
    at_start_of(page, live, dark)
    page.get_by_role("button", name="Take photo").click()


def sign_in(page: Any, token: str, label: str = "Operator token") -> None:
    page.get_by_label(label).fill(token)
    page.get_by_role("button", name="Sign in").click()


def sign_in_by_keyboard(page: Any, token: str) -> None:
    for _ in range(12):
        if page.evaluate("() => document.activeElement && document.activeElement.id") == "token":
            break
        page.keyboard.press("Tab")
    else:
        raise AssertionError("the token field is not reachable by keyboard")
    page.keyboard.type(token)
    page.keyboard.press("Enter")


def choose_search(page: Any, gallery: str, mode: str, subject: str | None = None) -> None:
    page.get_by_label("Gallery", exact=True).select_option(gallery)
    page.get_by_label(
        "Verify a claimed identity" if mode == "verify" else "Identify: search"
    ).check()
    if subject:
        page.get_by_label("Claimed identity (subject ID)").fill(subject)
    page.get_by_label("Purpose", exact=True).select_option("identity_check")
    page.get_by_label("Legal authority", exact=True).select_option(AUTHORITY)


# -- the field operator -------------------------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.parametrize("viewport", [PHONE, TABLET], ids=["phone", "tablet"])
def test_field_operator_captures_verifies_and_identifies(
    browser: Any, live: Live, viewport: dict[str, int]
) -> None:
    device = "phone" if viewport is PHONE else "tablet"
    page = open_page(browser, live, viewport, "/app/")
    check_screen(page, f"{device}-1-sign-in")
    sign_in_by_keyboard(page, live.tokens["officer"])

    page.get_by_role("heading", name="New search").wait_for()
    stored = page.evaluate("() => [sessionStorage.getItem('biomatch.token'), localStorage.length]")
    assert stored == [live.tokens["officer"], 0]  # this tab only, never localStorage
    page.get_by_role("button", name="Continue to capture").click()
    page.get_by_text("Before searching, give").wait_for()  # nothing chosen: refused
    choose_search(page, "staff", "verify", subject="obama")
    check_screen(page, f"{device}-2-search")
    page.get_by_role("button", name="Continue to capture").click()

    page.get_by_role("heading", name="Face capture").wait_for()
    take_photo(page, live, dark=True)
    reasons = page.locator("#reasons")
    reasons.wait_for()
    assert "Too dark" in reasons.inner_text()
    assert page.get_by_role("button", name="Verify identity").is_hidden()  # only a pass searches
    check_screen(page, f"{device}-3-quality-reasons")

    assert page.evaluate("() => document.activeElement.id") == "retake"  # focus follows
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "shoot"
    at_start_of(page, live, dark=False)
    page.keyboard.press("Enter")
    page.get_by_text("Good capture: ready to search.").wait_for()
    assert page.evaluate("() => document.activeElement.textContent") == "Verify identity"
    page.keyboard.press("Enter")
    outcome = page.locator(".outcome")
    outcome.wait_for()
    assert outcome.inner_text() == "Verified"
    result = page.locator("#result-body").inner_text()
    assert "unrelated people would score this high" in result
    assert "the best of its 2 templates" in result  # obama's FMR counts both
    check_screen(page, f"{device}-4-verified")

    page.get_by_role("button", name="New search").click()
    choose_search(page, "staff", "identify")
    page.get_by_role("button", name="Continue to capture").click()
    take_photo(page, live)
    page.get_by_text("Good capture: ready to search.").wait_for()
    page.get_by_role("button", name="Search gallery").click()
    banner = page.locator("#leads-banner")
    banner.wait_for()
    assert "Leads, not identifications" in banner.inner_text()
    first = page.locator(".candidate").first
    assert first.get_by_role("heading").inner_text() == "1. obama"
    photo = first.get_by_role("img", name="Enrolled reference photo of obama")
    photo.wait_for()
    assert photo.evaluate("img => img.complete && img.naturalWidth > 0")
    check_screen(page, f"{device}-5-leads")
    assert not page.errors, page.errors


@pytest.mark.shared_data
def test_offline_captures_queue_encrypted_and_drain_on_reconnect(browser: Any, live: Live) -> None:
    page = open_page(browser, live, PHONE, "/app/")
    sign_in(page, live.tokens["officer"])
    choose_search(page, "staff", "identify")
    page.get_by_role("button", name="Continue to capture").click()
    identify_before = sum(e.kind == "identify" for e in live.encounters())
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")

    page.context.set_offline(True)
    page.get_by_text("Offline: captures are queued").wait_for()
    take_photo(page, live)
    page.get_by_role("heading", name="Waiting to send (1)").wait_for()
    page.get_by_role("button", name="Retake").click()
    take_photo(page, live)
    page.get_by_role("heading", name="Waiting to send (2)").wait_for()
    stored = page.evaluate(
        """() => new Promise((resolve) => {
          const open = indexedDB.open('biomatch-offline');
          open.onsuccess = () => {
            const tx = open.result.transaction(['captures', 'keys']);
            const captures = tx.objectStore('captures').getAll();
            const key = tx.objectStore('keys').get('queue');
            tx.oncomplete = () => {
              const first = new Uint8Array(captures.result[0].sealed);
              resolve({extractable: key.result.key.extractable, type: key.result.key.type,
                       jpeg: first[0] === 0xff && first[1] === 0xd8, size: first.length});
            };
          };
        })"""
    )
    assert stored["extractable"] is False and stored["type"] == "secret"
    assert stored["jpeg"] is False and stored["size"] > 1000  # AES-GCM ciphertext, not a JPEG
    page.get_by_role("button", name="Discard").last.click()
    page.get_by_role("heading", name="Waiting to send (1)").wait_for()
    check_screen(page, "phone-6-offline-queue")
    page.reload()  # still offline: the app comes from its service worker's copy
    page.get_by_role("heading", name="Waiting to send (1)").wait_for()
    assert page.evaluate(
        "async () => Boolean(await (await caches.open('biomatch-app-v1')).match('/app/app.js'))"
    )

    page.context.set_offline(False)
    sent = page.locator(".sent-item")
    sent.wait_for(timeout=20_000)
    assert "top: obama" in sent.inner_text()
    page.get_by_role("heading", name="Waiting to send (0)").wait_for()
    assert (
        page.evaluate(
            """() => new Promise((resolve) => {
          const open = indexedDB.open('biomatch-offline');
          open.onsuccess = () => {
            const request = open.result.transaction('captures').objectStore('captures').count();
            request.onsuccess = () => resolve(request.result);
          };
        })"""
        )
        == 0
    )
    check_screen(page, "phone-7-queue-drained")
    assert sum(e.kind == "identify" for e in live.encounters()) == identify_before + 1
    assert "capture.offline_discarded" in live.audit_actions()
    assert not page.errors, page.errors


@pytest.mark.shared_data
def test_training_mode_searches_only_the_training_gallery(browser: Any, live: Live) -> None:
    page = open_page(browser, live, PHONE, "/app/")
    sign_in(page, live.tokens["officer"])
    page.get_by_label("Training mode").check()
    assert page.locator("#training-banner").is_visible()
    options = page.get_by_label("Gallery", exact=True).locator("option").all_inner_texts()
    assert options == ["practice: Practice gallery"]
    choose_search(page, "practice", "identify")
    check_screen(page, "phone-8-training-search")
    page.get_by_role("button", name="Continue to capture").click()
    take_photo(page, live)
    page.get_by_text("Good capture: ready to search.").wait_for()
    page.get_by_role("button", name="Search gallery").click()
    page.get_by_text("Training search").wait_for()
    assert page.locator(".candidate h3").first.inner_text() == "1. trainee-obama"
    latest = max(live.encounters(), key=lambda e: e.started_at)
    assert (latest.gallery, latest.training) == ("practice", True)
    assert not page.errors, page.errors


class _ContactlessStandIn:
    """Stands in for the contactless finger plug-in: what the app reads of one (modality
    finger, capture kind contactless), a four-finger split into the frame's quarters and a
    gate that fails every fingertip on one named check, so the fake camera's frame gives a
    known answer."""

    info = ModelInfo("finger", "contactless-stand-in", "0", 0, capture_kind="contactless")
    capture_layouts = ("four_finger",)

    def split_capture(self, image: Any, layout: str, hand: str) -> list[CapturePart]:
        width = image.shape[1] // 4
        positions = (7, 8, 9, 10) if hand == "left" else (5, 4, 3, 2)
        boxes = [(k * width, 0, (k + 1) * width, image.shape[0]) for k in range(4)]
        return [
            CapturePart(code, image[:, box[0] : box[2]], box)
            for code, box in zip(positions, boxes, strict=True)
        ]

    def analyse(
        self, image: Any, *, primary_only: bool = False, stop_at_failure: bool = False
    ) -> Capture:
        missing = QualityCheck(
            "finger_count", 0, ">= 1", False, "No fingers found: hold them inside the outline."
        )
        return Capture(QualityReport((missing,)))


@pytest.mark.shared_data
def test_finger_capture_appears_with_the_contactless_plugin(browser: Any, live: Live) -> None:
    page = open_page(browser, live, PHONE, "/app/")
    # The installed contactless plug-in (issue #10) puts finger capture on the menu. Its gate
    # is stood in for, so that the fake camera's frame fails on one known reason.
    real = live.core.modality("finger-contactless")
    live.core._plugins["finger-contactless"] = _ContactlessStandIn()  # type: ignore[assignment]
    try:
        sign_in(page, live.tokens["officer"])
        choose_search(page, "staff", "identify")
        page.get_by_label("Four fingers of one hand").check()
        page.get_by_role("button", name="Continue to capture").click()
        assert "which hand" in page.locator("#setup-error").inner_text()
        page.get_by_label("Left hand").check()
        page.get_by_role("button", name="Continue to capture").click()
        page.get_by_role("heading", name="Finger capture").wait_for()
        assert page.locator("#guide").get_attribute("class") == "guide hand"
        assert "left hand" in page.locator("#capture-instructions").inner_text()
        take_photo(page, live)
        page.locator("#fingertips").wait_for()  # the service split it: layout sent
        assert "Too few usable fingertips" in page.locator("#reasons").inner_text()
        fingertips = page.locator("#fingertips li").all_inner_texts()
        assert [text.split(":")[0] for text in fingertips] == [
            "Left index",
            "Left middle",
            "Left ring",
            "Left little",
        ]  # fmt: skip (the hand sent: left-hand positions 7-10)
        assert all("No fingers found" in text for text in fingertips)
        # Each fingertip's box is drawn on the photo, where the service found it.
        expect(page.locator("#fingertip-boxes")).to_be_visible()
        boxes = page.locator("#fingertip-boxes g")
        assert boxes.count() == 4
        drawn = boxes.evaluate_all("gs => gs.map(g => [g.getAttribute('class'), g.textContent])")
        assert drawn == [["bad", "index"], ["bad", "middle"], ["bad", "ring"], ["bad", "little"]]
        frame = page.locator("#still").evaluate("img => [img.naturalWidth, img.naturalHeight]")
        view = page.locator("#fingertip-boxes").get_attribute("viewBox")
        assert view == f"0 0 {frame[0]} {frame[1]}"  # in the photo's own pixels
        first = page.locator("#fingertip-boxes rect").first
        assert float(first.get_attribute("width") or 0) == frame[0] // 4
        check_screen(page, "phone-9-finger-quality")
        page.get_by_role("button", name="Retake").click()
        assert page.locator("#fingertip-boxes").is_hidden()
    finally:
        live.core._plugins["finger-contactless"] = real
    assert not page.errors, page.errors


class _FourPrintsStandIn(FingerModality):
    """Stands in for the contactless finger plug-in with the contact matcher: whatever the
    camera shows, a four-finger photo splits into two FVC2002 impressions (left index and
    middle) and two blank tiles, which fail the gate, so a real search runs on two of the
    four fingertips."""

    capture_layouts = ("four_finger",)

    def __init__(self, core: BioMatch) -> None:
        super().__init__(core.settings.finger)
        self.info = replace(self.info, capture_kind="contactless")
        tiles = [_fvc_tile(FVC2002 / f"{name}.tif") for name in ("101_1", "102_1")]
        blank = np.full_like(tiles[0], 200)
        self._tiles = [*tiles, blank, blank]

    def split_capture(self, image: Any, layout: str, hand: str) -> list[CapturePart]:
        width = self._tiles[0].shape[1]
        return [
            CapturePart(position, tile, (k * width, 0, (k + 1) * width, tile.shape[0]))
            for k, (position, tile) in enumerate(zip((7, 8, 9, 10), self._tiles, strict=True))
        ]


def _fvc_tile(path: Path) -> np.ndarray:
    grey = cv2.imread(str(shared_file(path)), cv2.IMREAD_GRAYSCALE)
    return np.dstack([grey] * 3)


@pytest.mark.shared_data
def test_a_four_finger_search_says_which_fingertips_it_left_out(browser: Any, live: Live) -> None:
    enroller = Principal(None, "setup-enroller", Role.ENROLLER)
    live.core.create_gallery(SYSTEM, "prints", "Contact prints", policy=_policy(PRINTS_POLICY))
    for subject, fingers in {"p101": ("101_2", "102_2"), "p105": ("105_2", "106_2")}.items():
        files = [shared_file(FVC2002 / f"{name}.tif") for name in fingers]
        captures = [(code, f.read_bytes()) for code, f in zip((7, 8), files, strict=True)]
        live.core.enrol_positions(enroller, "prints", subject, captures)
    real = live.core.modality("finger-contactless")
    live.core._plugins["finger-contactless"] = _FourPrintsStandIn(live.core)  # type: ignore[assignment]
    try:
        page = open_page(browser, live, PHONE, "/app/")
        sign_in(page, live.tokens["officer"])
        choose_search(page, "prints", "identify")
        page.get_by_label("Four fingers of one hand").check()
        page.get_by_label("Left hand").check()
        page.get_by_role("button", name="Continue to capture").click()
        take_photo(page, live)
        page.get_by_text("Good capture: 2 of 4 fingertips usable").wait_for()
        classes = page.locator("#fingertip-boxes g").evaluate_all(
            "gs => gs.map(g => g.getAttribute('class'))"
        )
        assert classes == ["ok", "ok", "bad", "bad"]
        fingertips = page.locator("#fingertips li").all_inner_texts()
        assert [text.split(":")[1].strip()[:10] for text in fingertips] == [
            "usable.", "usable.", "not usable", "not usable"
        ]  # fmt: skip
        page.get_by_role("button", name="Search gallery").click()
        page.locator("#leads-banner").wait_for()
        note = page.locator("#left-out").inner_text()
        assert note.startswith("Searched without the left ring, left little fingertips")
        first = page.locator(".candidate").first
        assert first.get_by_role("heading").inner_text() == "1. p101"
        # The scanner's TIFF print is shown (served as a PNG of its pixels).
        photo = first.get_by_role("img", name="Enrolled reference photo of p101")
        photo.wait_for()
        expect(photo).to_have_js_property("complete", True)
        assert photo.evaluate("img => img.naturalWidth") == 388
        check_screen(page, "phone-10-fingertips-left-out")
    finally:
        live.core._plugins["finger-contactless"] = real
    latest = max(live.encounters(), key=lambda e: e.started_at)
    assert latest.gallery == "prints"
    left_out = cast(list[dict[str, Any]], latest.result["parts_left_out"])
    assert [part["position"] for part in left_out] == [9, 10]
    parts = cast(list[dict[str, Any]], latest.result["parts"])
    assert [(p["position"], p["passed"]) for p in parts] == [
        (7, True), (8, True), (9, False), (10, False)
    ]  # fmt: skip
    assert parts[1]["region"] == [388, 0, 776, 374]  # where the stand-in cut it
    assert not page.errors, page.errors
    # The reviewer sees what the search left out and, for a fused lead, each finger's evidence.
    console = open_page(browser, live, TABLET, "/console/")
    sign_in(console, live.tokens["reviewer"], "Reviewer or auditor token")
    console.get_by_role("heading", name="Awaiting your review").wait_for()
    console.locator("tr", has_text="prints").get_by_role("button", name="Review").click()
    note = console.locator("#parts-left-out")
    note.wait_for()
    assert "Left ring" in note.inner_text() and "Left little" in note.inner_text()
    boxes = console.locator("#compare .boxes")
    expect(boxes).to_be_visible()  # the fingertips drawn on the probe photo, once it loads
    drawn = boxes.locator("g").evaluate_all("gs => gs.map(g => g.getAttribute('class'))")
    assert drawn == ["ok", "ok", "bad", "bad"]
    evidence = console.locator(".candidate-card[data-subject='p101'] .evidence li")
    assert [text.split(":")[0] for text in evidence.all_inner_texts()] == [
        "Left index", "Left middle"
    ]  # fmt: skip
    check_screen(console, "tablet-console-6-four-finger-review")
    assert not console.errors, console.errors


# -- reviewers and the auditor ------------------------------------------------------------------


def _lead_for_review(live: Live) -> str:
    officer = Principal(None, "officer", Role.FIELD_OPERATOR)
    probe = shared_file(EXAMPLES / "obama2.jpg").read_bytes()
    context = SearchContext(
        purpose="criminal_investigation", legal_authority=AUTHORITY, case_reference="CASE-77"
    )
    return live.core.identify(officer, "staff", probe, context, top_k=3).encounter_id


def _review(page: Any, encounter: str, reason: str, keyboard: bool = False) -> None:
    page.get_by_role("heading", name="Awaiting your review").wait_for()
    row = page.locator("tr", has_text="CASE-77")
    row.get_by_role("button", name="Review").click()
    page.locator("#probe-photo").wait_for()
    card = page.locator(".candidate-card[data-subject='obama']")
    card.get_by_role("img").wait_for()
    assert "the best of its 2 templates" in card.locator(".candidate-score").inner_text()
    if keyboard:
        card.get_by_label("Confirm").focus()
        page.keyboard.press("Space")
        page.keyboard.press("Tab")  # the next control after the radio group: the reason
        page.keyboard.type(reason)
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
    else:
        card.get_by_label("Confirm").check()
        card.get_by_label("Reason (required)").fill(reason)
        card.get_by_role("button", name="Record decision").click()
    page.locator(".candidate-card[data-subject='obama'] >> text=You decided: confirm").wait_for()


@pytest.mark.shared_data
def test_free_text_authority_where_none_is_configured(browser: Any, live: Live) -> None:
    configured = live.core.settings.legal_authorities
    live.core.settings.legal_authorities = []
    try:
        page = open_page(browser, live, PHONE, "/app/")
        sign_in(page, live.tokens["officer"])
        for _ in range(2):  # the form is rebuilt each time
            page.get_by_label("Training mode").click()
        page.get_by_label("Gallery", exact=True).select_option("staff")
        page.get_by_label("Identify: search").check()
        page.get_by_label("Purpose", exact=True).select_option("identity_check")
        authority = page.get_by_label("Legal authority", exact=True)
        assert authority.evaluate("node => node.tagName") == "INPUT"
        authority.fill("Police Act 1996 s.30")
        page.get_by_role("button", name="Continue to capture").click()
        page.get_by_role("heading", name="Face capture").wait_for()
        assert not page.errors, page.errors
    finally:
        live.core.settings.legal_authorities = configured


def test_console_on_a_phone(browser: Any, live: Live) -> None:
    page = open_page(browser, live, PHONE, "/console/")
    check_screen(page, "phone-console-1-sign-in")
    sign_in(page, live.tokens["reviewer"], "Reviewer or auditor token")
    page.get_by_role("heading", name="Awaiting your review").wait_for()
    check_screen(page, "phone-console-2-queue")
    assert not page.errors, page.errors


def _seqs(page: Any) -> list[int]:
    cells = page.locator("#log-table tbody tr td:first-child").all_inner_texts()
    return [int(cell) for cell in cells]


@pytest.mark.shared_data
def test_two_reviewers_confirm_and_the_auditor_sees_it(browser: Any, live: Live) -> None:
    encounter = _lead_for_review(live)
    first = open_page(browser, live, TABLET, "/console/")
    check_screen(first, "tablet-console-1-sign-in")
    sign_in_by_keyboard(first, live.tokens["reviewer"])
    first.get_by_role("heading", name="Awaiting your review").wait_for()
    check_screen(first, "tablet-console-2-queue")
    _review(first, encounter, "Same ear shape and hairline; mole by the left eye.")
    status = first.locator(".candidate-card[data-subject='obama'] .candidate-status")
    assert "lead (1 of 2 confirmations)" in status.inner_text()
    check_screen(first, "tablet-console-3-review")

    second = open_page(browser, live, TABLET, "/console/")
    sign_in(second, live.tokens["reviewer2"], "Reviewer or auditor token")
    _review(second, encounter, "Agree: ear, hairline and mole all match.", keyboard=True)
    status = second.locator(".candidate-card[data-subject='obama'] .candidate-status")
    assert "confirmed (2 of 2 confirmations)" in status.inner_text()
    second.get_by_role("button", name="Back to the queue").click()
    row = second.locator("tr", has_text="CASE-77")  # its other two leads still await review
    expect(row.locator("td").nth(4)).to_have_text("2")

    auditor = open_page(browser, live, TABLET, "/console/")
    sign_in(auditor, live.tokens["auditor"], "Reviewer or auditor token")
    auditor.get_by_text("Chain intact").wait_for()
    check_screen(auditor, "tablet-console-4-audit-log")
    first_seqs = _seqs(auditor)
    assert first_seqs == sorted(first_seqs, reverse=True)  # newest first
    auditor.get_by_role("button", name="Older entries").click()
    expect(auditor.locator("#log-table tbody tr").first.locator("td").first).to_have_text(
        str(first_seqs[-1] - 1)
    )
    auditor.get_by_role("button", name="Newer entries").click()
    expect(auditor.locator("#log-table tbody tr").first.locator("td").first).to_have_text(
        str(first_seqs[0])
    )
    auditor.get_by_label("Purpose", exact=True).fill("criminal_investigation")
    auditor.get_by_role("button", name="Filter").click()
    rows = auditor.locator("#log-table tbody tr")
    expect(rows.filter(has_not_text="criminal_investigation")).to_have_count(0)
    expect(rows.filter(has_text=encounter[:8]).first).to_be_visible()
    auditor.get_by_role("button", name="Transparency report").click()
    auditor.get_by_role("heading", name="Transparency report").wait_for()
    body = auditor.locator("#report-body")
    assert body.locator("svg[role=img]").count() >= 3
    purposes = body.get_by_role("img", name="Searches per day, by purpose")
    assert purposes.count() == 1
    decisions = body.locator("figure", has_text="Adjudication decisions").get_by_role("img")
    assert "Confirm 2" in str(decisions.get_attribute("aria-label"))
    check_screen(auditor, "tablet-console-5-report")
    for page in (first, second, auditor):
        assert not page.errors, page.errors
