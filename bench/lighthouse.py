"""``python -m bench.lighthouse``: Lighthouse's mobile scores for the public pages, measured
against a real ``loopmark serve`` with production settings (a measurement, not a test).

Lighthouse (Apache-2.0, from npm into bench/.cache: ``make lighthouse``) drives Debian's
Chromium (/usr/bin/chromium, headless) with its default mobile preset: a Moto G Power screen,
simulated slow 4G (150 ms RTT, 1.6 Mbps down) and a 4x CPU slowdown. The site runs as
``loopmark serve`` on 127.0.0.1 (port 19400 unless --port) with LOOPMARK_DEBUG=0 and a random
secret key, over the demo templates, its media and records in bench/.cache/lighthouse-site (kept
between runs, so the templates are prepared once). Before serving, one render per demo template
(its first suggested caption) is made and put in the gallery, so the result, share and gallery
pages show real loops.

Prints a table: the median of --runs runs (3 by default) per page of performance,
accessibility, best practices and SEO, with the median LCP, CLS and TBT; then every audit that
failed in any run, so a regression names its cause. --json writes every run's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache"
LIGHTHOUSE = CACHE / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = Path("/usr/bin/chromium")
DATA_DIR = CACHE / "lighthouse-site"
REPORTS = CACHE / "lighthouse-reports"
DEFAULT_PORT = 19400
NOT_FOUND = "404"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
METRICS = {
    "largest-contentful-paint": ("LCP s", 1000.0),
    "cumulative-layout-shift": ("CLS", 1.0),
    "total-blocking-time": ("TBT ms", 1.0),
}
START_SECONDS = 60
PREPARE_SECONDS = 600  # the first run prepares the three demo templates
RENDER_SECONDS = 300
LIGHTHOUSE_SECONDS = 240
CHROME_FLAGS = "--headless=new --no-sandbox --disable-gpu --no-first-run --disable-quic"


@dataclass
class PageResult:
    name: str
    path: str
    runs: list[dict[str, float]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # audit id -> title

    def median(self, column: str) -> float | None:
        values = [run[column] for run in self.runs if column in run]
        return statistics.median(values) if values else None


def site_env(port: int, data: Path) -> dict[str, str]:
    """Production settings: no debug, a real secret key, absolute links to this origin."""
    return {
        "LOOPMARK_DEBUG": "0",
        "LOOPMARK_SECRET_KEY": secrets.token_urlsafe(48),
        "LOOPMARK_SITE_URL": f"http://127.0.0.1:{port}",
        "LOOPMARK_DATA_DIR": str(data),
        "LOOPMARK_TEMPLATES_DIR": str(REPO / "templates_video"),
        "LOOPMARK_STORAGE": f"file://{data / 'media'}",
        "LOOPMARK_RECORDS": f"sqlite:///{data / 'loopmark.db'}",
        "LOOPMARK_DISPATCH": "local",
        "LOOPMARK_MEDIA_BASE_URL": "",
        "LOOPMARK_JSON_LOGS": "off",
    }


def seed(env: dict[str, str]) -> dict[str, str]:
    """One render per demo template, each in the gallery; their keys by template id."""
    from loopmark import create_app
    from loopmark.composition import setup_backends
    from loopmark.web.context import EXTENSION

    app = create_app({**env, "LOOPMARK_RATE_LIMITS": "off"})
    services = app.extensions[EXTENSION]
    try:
        setup_backends(services.settings)
        keys: dict[str, str] = {}
        for template in services.templates.all():
            caption = template.captions[0] if template.captions else "Monday mood"
            outcome = services.render.request(template.id, caption, wait_s=PREPARE_SECONDS)
            if outcome.status != "done":
                raise SystemExit(f"render of {template.id} did not finish: {outcome}")
            keys[template.id] = outcome.key
        listed = {entry.key for entry in services.gallery.entries()}
        for key in keys.values():
            record = services.render.records.get(key)
            if record is not None and key not in listed:
                services.gallery.add(record)
        return keys
    finally:
        services.close()


def start_server(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    loopmark = Path(sys.executable).with_name("loopmark")
    argv = [str(loopmark)] if loopmark.exists() else [sys.executable, "-m", "loopmark"]
    process = subprocess.Popen(
        [*argv, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"loopmark serve exited {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5):
                return process
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"loopmark serve did not answer on port {port} within {START_SECONDS} s")


def lighthouse(url: str, *, expect_error_status: bool = False) -> dict[str, Any]:
    """One Lighthouse run's report. Lighthouse refuses a page that answers an error status
    unless told that one is expected (the 404 page)."""
    flags = ["--ignore-status-code"] if expect_error_status else []
    completed = subprocess.run(
        [
            str(LIGHTHOUSE),
            url,
            "--output=json",
            "--output-path=stdout",
            "--quiet",
            f"--only-categories={','.join(CATEGORIES)}",
            f"--chrome-flags={CHROME_FLAGS}",
            "--disable-full-page-screenshot",
            *flags,
        ],
        env={**os.environ, "CHROME_PATH": str(CHROMIUM)},
        capture_output=True,
        timeout=LIGHTHOUSE_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"lighthouse {url}: {completed.stderr.decode()[-2000:]}")
    report: dict[str, Any] = json.loads(completed.stdout)
    if report.get("runtimeError"):
        raise RuntimeError(f"lighthouse {url}: {report['runtimeError']}")
    return report


def figures(report: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    run: dict[str, float] = {}
    for category in CATEGORIES:
        score = report["categories"][category]["score"]
        if score is not None:
            run[category] = round(score * 100)
    audits = report["audits"]
    for audit_id, (column, divisor) in METRICS.items():
        value = audits.get(audit_id, {}).get("numericValue")
        if value is not None:
            run[column] = value / divisor
    failed = {
        audit_id: audit["title"]
        for audit_id, audit in audits.items()
        if audit.get("score") is not None
        and audit["score"] < 0.9
        and audit.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings")
    }
    return run, failed


def pages(keys: dict[str, str]) -> list[tuple[str, str]]:
    key = next(iter(keys.values()))
    return [
        ("home", "/"),
        ("result", f"/r/{key}"),
        ("share", f"/s/{key}"),
        ("gallery", "/gallery"),
        ("credits", "/credits"),
        ("privacy", "/privacy"),
        (NOT_FOUND, "/no-such-page"),
        ("home (de)", "/?lang=de"),
    ]


def table(results: list[PageResult]) -> str:
    columns = [*CATEGORIES, *(column for column, _ in METRICS.values())]
    heads = ["page", "perf", "a11y", "best pr.", "SEO", "LCP s", "CLS", "TBT ms"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for result in results:
        cells = [result.name]
        for column in columns:
            value = result.median(column)
            if value is None:
                cells.append("–")
            elif column == "LCP s":
                cells.append(f"{value:.1f}")
            elif column == "CLS":
                cells.append(f"{value:.3f}")
            else:
                cells.append(f"{value:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lighthouse", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--page", action="append", help="only these pages (by name)")
    parser.add_argument("--fresh", action="store_true", help="start from an empty data dir")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args(argv)
    if not LIGHTHOUSE.exists():
        print(f"{LIGHTHOUSE} is missing: run `make lighthouse`", file=sys.stderr)
        return 2
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    if args.fresh:
        shutil.rmtree(DATA_DIR, ignore_errors=True)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    env = site_env(args.port, DATA_DIR)
    keys = seed(env)
    server = start_server(args.port, env, DATA_DIR / "serve.log")
    results: list[PageResult] = []
    try:
        base = f"http://127.0.0.1:{args.port}"
        for name, path in pages(keys):
            if args.page and name not in args.page:
                continue
            result = PageResult(name, path)
            for _ in range(args.runs):
                report = lighthouse(base + path, expect_error_status=name == NOT_FOUND)
                run, failed = figures(report)
                result.runs.append(run)
                result.failed.update(failed)
            # The last run's full report, to read an audit's details.
            REPORTS.mkdir(parents=True, exist_ok=True)
            (REPORTS / f"{name.replace(' ', '-')}.json").write_text(json.dumps(report))
            print(f"{name}: {result.runs}", file=sys.stderr)
            results.append(result)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(table(results))
    print()
    for result in results:
        if result.failed:
            audits = "; ".join(f"{k} ({v})" for k, v in sorted(result.failed.items()))
            print(f"{result.name}: {audits}")
    if args.json:
        args.json.write_text(
            json.dumps([r.__dict__ for r in results], indent=2, default=str) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
