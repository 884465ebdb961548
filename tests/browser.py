"""A real browser for tests: Debian's ``chromium-headless-shell`` renders a page, and a small script
run inside it reports what a reader would see (text, images, widths). Tests that need it skip with
the install command when it is absent; ``.ci/run`` installs it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

INSTALL = "apt-get update && apt-get install -y chromium-headless-shell"

# Run after the page has loaded; its findings are written into the DOM that --dump-dom prints.
PROBE = """<script>
window.addEventListener('load', () => {
  const vw = window.innerWidth, text = document.body.innerText;
  const clipped = e => { for (let a = e.parentElement; a; a = a.parentElement)
    if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX)) return true; return false; };
  const wide = [...document.querySelectorAll('body *')]  // a box past the right edge, not inside a scroll box
    .filter(e => e.getBoundingClientRect().right > vw + 1 && !clipped(e))
    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : ''));
  const report = {
    viewport: vw, scroll_width: document.documentElement.scrollWidth,
    stars: (text.match(/\\*\\*/g) || []).length, backticks: (text.match(/`/g) || []).length,
    headings_hash: (text.match(/^#{1,6} /gm) || []).length,
    stray_li: [...document.querySelectorAll('li')].filter(li => !['UL', 'OL'].includes(li.parentElement.tagName)).length,
    images: [...document.images].map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0,
                                            right: Math.round(i.getBoundingClientRect().right)})),
    wide: wide, text: text,
  };
  const pre = document.createElement('pre');
  pre.id = 'likra-probe';
  pre.textContent = JSON.stringify(report);
  document.body.appendChild(pre);
});
</script>"""


def browser() -> str | None:
    return shutil.which("chromium-headless-shell") or next(
        (p for p in ("/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/headless_shell") if Path(p).exists()), None)


def _run(args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    exe = browser()
    assert exe, f"chromium-headless-shell is not installed ({INSTALL})"
    return subprocess.run([exe, "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=timeout)


def inspect_page(page: str | Path, width: int = 1280, height: int = 900) -> dict:
    """Open an HTML file in the browser at ``width`` x ``height`` and return the probe's findings."""
    source = Path(page).read_text()
    with tempfile.TemporaryDirectory() as tmp:
        probed = Path(tmp) / "page.html"
        probed.write_text(source.replace("</body>", PROBE + "</body>") if "</body>" in source else source + PROBE)
        out = _run([f"--window-size={width},{height}", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()])
    m = re.search(r'<pre id="likra-probe">(.*?)</pre>', out.stdout, re.S)
    assert m, f"the probe did not run (browser exit {out.returncode}): {out.stderr[-2000:]}"
    import html

    return json.loads(html.unescape(m.group(1)))


def inspect_url(url: str, width: int = 1280, height: int = 900, budget_ms: int = 10000) -> str:
    """The DOM of a live page after its scripts ran for ``budget_ms`` of virtual time."""
    return _run([f"--window-size={width},{height}", f"--virtual-time-budget={budget_ms}", "--dump-dom", url]).stdout


def screenshot(page: str | Path, png: str | Path, width: int = 1280, height: int = 2400) -> Path:
    """A PNG of the page as the browser draws it (a file path or a URL)."""
    url = page if str(page).startswith("http") else Path(page).resolve().as_uri()
    out = _run([f"--window-size={width},{height}", f"--screenshot={Path(png).resolve()}", url])
    assert Path(png).exists(), f"no screenshot (browser exit {out.returncode}): {out.stderr[-2000:]}"
    return Path(png)
