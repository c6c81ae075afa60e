"""``python -m bench.soak`` (``make soak``): a trade-show morning against the real server.

It starts ``loopmark serve`` (cheroot, the production settings: no debug, a site URL, a secret
key, one trusted proxy hop) with DynamoDB records on moto's server and local media, all on
loopback, and in about ten minutes (``--quick``: about three):

1. holds IDLE_CONNECTIONS idle keep-alive connections open while share pages are fetched;
2. sends a spike of unique renders from VISITORS simulated visitors behind one address (each
   with the visitor token its page gave it), then as many behind a trusted proxy
   (X-Forwarded-For);
3. kills the server with SIGKILL in the middle of the spike and starts it again;
4. freezes the records backend (SIGSTOP of moto's server) for FREEZE_SECONDS;
5. polls every accepted render until it is done.

Share pages are sampled all along. It reports requests served, 5xx answers (503s while the
backend is frozen are expected and counted apart), renders accepted against finished, share-page
p50/p99 by phase, the server's peak RSS and open descriptors, and writes bench/soak.md. Every
loop is bounded in count and time; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CLIP = REPO_ROOT.parent / "shared" / "clips" / "bigbuckbunny.mp4"
RESULTS = Path(__file__).resolve().parent / "soak.md"
TEMPLATE_ID = "soak"
IDLE_CONNECTIONS = 5000
VISITORS = 150  # per spike; two spikes (one address, then behind the proxy)
FREEZE_SECONDS = 20.0
START_TIMEOUT_SECONDS = 120.0
FINISH_TIMEOUT_SECONDS = 600.0
SAMPLE_INTERVAL_SECONDS = 0.05
VISITOR_HEADER = "X-Loopmark-Visitor"
# A visitor asks again after a 429/503 as long as Retry-After says (as the page does), for so long.
VISITOR_PATIENCE_SECONDS = 180.0
# Ports the soak may listen on (the server, moto); SOAK_PORTS=18100-18999 to choose others.
SOAK_PORTS = range(
    *(int(n) + i for i, n in enumerate(os.environ.get("SOAK_PORTS", "18100-18999").split("-")))
)
# bench/soak.md is written afresh each run down to this line; what follows it (notes, the
# figures of earlier runs) is kept.
NOTES_MARKER = "<!-- notes: kept across runs -->"


def free_port() -> int:
    """A free loopback port in SOAK_PORTS (this machine's helpers each keep to their own range)."""
    for port in SOAK_PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"soak: no free port in {SOAK_PORTS}")


def wait_http(url: str, deadline_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"soak: {url} exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise SystemExit(f"soak: {url} did not answer in {deadline_s:.0f} s") from None
            time.sleep(0.2)


@dataclass
class Tally:
    """What the load saw, thread-safe."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    frozen_503: int = 0
    # 5xx answers outside the freeze by status and error code ("503 records_unavailable").
    codes_5xx: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    share_ms: dict[str, list[float]] = field(default_factory=dict)
    phase: str = "warm"
    freezing: bool = False

    def answer(self, status: int) -> None:
        with self.lock:
            if status == 503 and self.freezing:
                self.frozen_503 += 1
            else:
                self.statuses[status] += 1

    def code_5xx(self, status: int, code: str) -> None:
        with self.lock:
            if not (status == 503 and self.freezing):
                self.codes_5xx[f"{status} {code}"] += 1

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] += 1

    def share(self, ms: float) -> None:
        with self.lock:
            self.share_ms.setdefault(self.phase, []).append(ms)


@dataclass
class Server:
    """``loopmark serve`` as a subprocess, restartable with the same settings."""

    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    peak_rss_kb: int = 0
    peak_fds: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loopmark", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=log,
            cwd=REPO_ROOT,
        )
        log.close()
        wait_http(f"{self.base}/healthz", START_TIMEOUT_SECONDS, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def sample(self) -> None:
        """Peak RSS and open descriptors of the running server (from /proc)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pid = self.proc.pid
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss = int(re.search(r"VmRSS:\s+(\d+)", status)[1])  # type: ignore[index]
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, TypeError):
            return
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        self.peak_fds = max(self.peak_fds, fds)


@contextmanager
def moto(data: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """moto's server answering one request at a time, as DynamoDB applies conditional writes to
    one item (tests.moto_server explains why the threaded one will not do)."""
    from tests.moto_server import SERIAL_MOTO_SERVER

    port = free_port()
    log = (data / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERIAL_MOTO_SERVER, str(port)], stdout=log, stderr=log
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/moto-api/", 60, proc)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(30)
        log.close()


def request(
    server: Server,
    tally: Tally,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, Any] | str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        sent = {"Content-Type": "application/json"} if payload else {}
        conn.request(method, path, body=payload, headers={**sent, **(headers or {})})
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:  # a kill mid-answer: IncompleteRead
        tally.error(type(exc).__name__)
        return 0, ""
    finally:
        conn.close()
    tally.answer(response.status)
    _last.retry_after = response.getheader("Retry-After")
    text = data.decode("utf-8", "replace")
    answer: dict[str, Any] | str = text
    if response.getheader("Content-Type", "").startswith("application/json"):
        try:
            answer = json.loads(text)
        except ValueError:
            pass
    if response.status >= 500:
        error = answer.get("error") if isinstance(answer, dict) else None
        tally.code_5xx(response.status, str(error.get("code")) if isinstance(error, dict) else "-")
    return response.status, answer


_last = threading.local()


def last_retry_after(default: float) -> float:
    """The Retry-After of this thread's last answer (seconds, within 1-30), or ``default``."""
    try:
        return min(max(float(getattr(_last, "retry_after", None) or default), 1.0), 30.0)
    except ValueError:
        return default


def hold_idle(server: Server, count: int, stop: threading.Event, held: list[int]) -> None:
    """Keep ``count`` idle keep-alive connections open; reopen what the server closes."""
    socks: list[socket.socket] = []
    while not stop.is_set():
        socks = [s for s in socks if s.fileno() != -1]
        while len(socks) < count and not stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            except OSError:
                break  # the server is restarting, or at its limit: try again shortly
            socks.append(sock)
        held.append(len(socks))
        stop.wait(5)
        for sock in list(socks):
            try:
                sock.setblocking(False)
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    sock.close()
            except BlockingIOError:
                pass
            except OSError:
                sock.close()
            finally:
                if sock.fileno() != -1:
                    sock.setblocking(True)
    for sock in socks:
        sock.close()


def sample_shares(server: Server, tally: Tally, keys: list[str], stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        server.sample()
        if keys:
            started = time.perf_counter()
            status, _ = request(server, tally, "GET", f"/s/{keys[i % len(keys)]}", timeout=10)
            if status == 200:
                tally.share((time.perf_counter() - started) * 1000)
            i += 1
        stop.wait(SAMPLE_INTERVAL_SECONDS)


def visitor_token(server: Server, tally: Tally, forwarded_for: str | None) -> str | None:
    """The token a visitor's page asks for (GET /api/visitor), as the page's script does."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    status, answer = request(server, tally, "GET", "/api/visitor", headers=headers)
    if status != 200 or not isinstance(answer, dict):
        return None
    token = answer.get("token")
    return token if isinstance(token, str) else None


def spike(
    server: Server, tally: Tally, label: str, count: int, behind_proxy: bool, accepted: set[str]
) -> Counter[int]:
    """``count`` visitors, each asking for one unique caption once (retrying after a 429/503 as
    the Retry-After says, within a bound)."""
    answers: Counter[int] = Counter()
    lock = threading.Lock()

    def visit(n: int) -> None:
        address = f"198.51.100.{n % 250 + 1}" if behind_proxy else None
        token = visitor_token(server, tally, address)
        headers = {VISITOR_HEADER: token} if token else {}
        if address:
            headers["X-Forwarded-For"] = address
        body = {"template": TEMPLATE_ID, "caption": f"{label} visitor {n}"}
        deadline = time.monotonic() + VISITOR_PATIENCE_SECONDS
        while True:
            _last.retry_after = None
            status, answer = request(server, tally, "POST", "/api/renders", body, headers)
            if status in (200, 202) and isinstance(answer, dict):
                with lock:
                    accepted.add(answer["key"])
                    answers[status] += 1
                return
            if status in (429, 503, 0) and time.monotonic() < deadline:
                time.sleep(last_retry_after(2.0))  # as the page's script does
                continue
            with lock:
                answers[status] += 1
            return

    threads = [threading.Thread(target=visit, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)  # the spike builds over a couple of seconds, as a crowd does
    for thread in threads:
        thread.join(300)
    return answers


def wait_finished(server: Server, tally: Tally, keys: set[str]) -> tuple[int, Counter[str]]:
    deadline = time.monotonic() + FINISH_TIMEOUT_SECONDS
    pending = set(keys)
    last: Counter[str] = Counter()
    while pending and time.monotonic() < deadline:
        last = Counter()
        for key in sorted(pending):
            status, answer = request(server, tally, "GET", f"/api/renders/{key}")
            if status == 200:
                pending.discard(key)
            else:
                last[str(status)] += 1
        if pending:
            time.sleep(1.0)
    return len(keys) - len(pending), last


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def prepare_template(env: dict[str, str]) -> None:
    """A 240-pixel, one-and-a-half-second template from the shared clip: quick to render."""
    subprocess.run(
        [
            sys.executable, "-m", "loopmark", "templates", "add", TEMPLATE_ID,
            "--video", str(CLIP), "--start", "1", "--duration", "1.5", "--width", "240",
            "--fps", "10", "--name", "Soak",
        ],
        env=env, check=True, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about three minutes, smaller")
    parser.add_argument("--idle", type=int, default=None, help="idle connections to hold")
    args = parser.parse_args(argv)
    idle = args.idle or (1500 if args.quick else IDLE_CONNECTIONS)
    visitors = 40 if args.quick else VISITORS
    freeze_s = 8.0 if args.quick else FREEZE_SECONDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, idle * 2 + 1024)), hard))

    data = Path(tempfile.mkdtemp(prefix="loopmark-soak-"))
    report: dict[str, Any] = {"idle_target": idle, "visitors_per_spike": visitors}
    started = time.monotonic()
    with moto(data) as (endpoint, moto_proc):
        port = free_port()
        env = {
            **os.environ,
            "LOOPMARK_DATA_DIR": str(data),
            "LOOPMARK_TEMPLATES_DIR": str(data / "templates"),
            "LOOPMARK_RECORDS": "dynamodb://loopmark-soak",
            "LOOPMARK_SITE_URL": f"http://127.0.0.1:{port}",
            "LOOPMARK_SECRET_KEY": "soak-" + "k" * 40,
            "LOOPMARK_PROXY_HOPS": "1",
            "LOOPMARK_TRUSTED_PROXIES": "127.0.0.1",
            "LOOPMARK_JSON_LOGS": "on",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "soak",
            "AWS_SECRET_ACCESS_KEY": "soak",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        env.pop("LOOPMARK_DEBUG", None)
        subprocess.run([sys.executable, "-m", "loopmark", "setup"], env=env, check=True,
                       cwd=REPO_ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
        prepare_template(env)
        server = Server(env=env, port=port, log=data / "server.log")
        server.start()
        tally = Tally()
        stop = threading.Event()
        held: list[int] = []
        shares: list[str] = []
        accepted: set[str] = set()
        keeper = threading.Thread(target=hold_idle, args=(server, idle, stop, held), daemon=True)
        sampler = threading.Thread(
            target=sample_shares, args=(server, tally, shares, stop), daemon=True
        )
        keeper.start()
        # A few renders first, so share pages have something to show.
        tally.phase = "warm"
        spike(server, tally, "warm", 5, False, accepted)
        done, _ = wait_finished(server, tally, set(accepted))
        shares.extend(sorted(accepted))
        sampler.start()
        time.sleep(10)
        report["idle_held_at_start"] = max(held) if held else 0

        tally.phase = "spike, one address"
        one_address = spike(server, tally, "one-address", visitors, False, accepted)
        report["spike_one_address"] = dict(one_address)

        tally.phase = "spike, behind a proxy (killed midway)"
        killer = threading.Timer(4.0, lambda: (server.kill(), server.start()))
        killer.start()
        behind_proxy = spike(server, tally, "proxy", visitors, True, accepted)
        killer.join()
        report["spike_behind_proxy"] = dict(behind_proxy)

        tally.phase = "records frozen"
        tally.freezing = True
        moto_proc.send_signal(signal.SIGSTOP)
        time.sleep(freeze_s)
        moto_proc.send_signal(signal.SIGCONT)
        tally.freezing = False
        time.sleep(5)

        tally.phase = "recovery"
        finished, still = wait_finished(server, tally, accepted)
        stop.set()
        sampler.join(30)
        keeper.join(30)
        server.sample()
        report.update(
            accepted=len(accepted),
            finished=finished,
            unfinished=dict(still),
            idle_held_max=max(held) if held else 0,
            statuses=dict(sorted(tally.statuses.items())),
            answers_5xx=sum(n for s, n in tally.statuses.items() if s >= 500),
            answers_503_while_frozen=tally.frozen_503,
            answers_5xx_by_code=dict(tally.codes_5xx.most_common()),
            connection_errors=dict(tally.errors),
            share_ms={
                phase: {
                    "n": len(values),
                    "p50": round(statistics.median(values), 1),
                    "p99": round(percentile(values, 0.99), 1),
                }
                for phase, values in tally.share_ms.items()
            },
            peak_rss_mb=round(server.peak_rss_kb / 1024, 1),
            peak_fds=server.peak_fds,
            seconds=round(time.monotonic() - started, 1),
        )
        server.stop()
    print(json.dumps(report, indent=2))
    write_markdown(report, quick=args.quick)
    ok = report["accepted"] == report["finished"] and report["answers_5xx"] == 0
    return 0 if ok else 1


def write_markdown(report: dict[str, Any], *, quick: bool) -> None:
    lines = [
        "# Soak: a trade-show morning against `loopmark serve`",
        "",
        f"`python -m bench.soak{' --quick' if quick else ''}`, {time.strftime('%Y-%m-%d')}, "
        f"on this two-core machine; {report['seconds']} s in all.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| idle connections held (most at once) | {report['idle_held_max']} "
        f"(target {report['idle_target']}) |",
        f"| renders accepted / finished | {report['accepted']} / {report['finished']} |",
        f"| 5xx answers (besides 503 while frozen) | {report['answers_5xx']} |",
        f"| … by status and error code | {report['answers_5xx_by_code'] or 'none'} |",
        f"| 503 answers while the records were frozen | {report['answers_503_while_frozen']} |",
        f"| answers by status | {report['statuses']} |",
        f"| connection errors | {report['connection_errors'] or 'none'} |",
        f"| server peak RSS | {report['peak_rss_mb']} MB |",
        f"| server peak open descriptors | {report['peak_fds']} |",
        "",
        "| share pages, by phase | n | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for phase, figures in report["share_ms"].items():
        lines.append(f"| {phase} | {figures['n']} | {figures['p50']} | {figures['p99']} |")
    previous = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    notes = previous[previous.index(NOTES_MARKER) :] if NOTES_MARKER in previous else NOTES_MARKER
    RESULTS.write_text("\n".join(lines) + "\n\n" + notes.rstrip("\n") + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
