"""Held under load: 30 visitors at once against one ``streamlit run app.py``, measured on the server.

The server runs pinned to one core (``os.sched_setaffinity`` on every thread of the process, so
the worker processes it starts inherit it) and this client to the other, so the client does not
compete with the server for its core. Each visitor is a protocol-level client: it speaks
Streamlit's own websocket protocol (``/_stcore/stream``, ``BackMsg`` and ``ForwardMsg`` protobufs
from ``streamlit.proto``) exactly as the browser does, so 30 of them cost little on the client's
core. What the browser sends was read off a real Chromium session: a page is opened with a
``rerun_script`` naming its ``page_script_hash``; a stroke on the canvas (the custom component
``streamlit_drawable_canvas``) is a ``rerun_script`` whose widget states hold the canvas's JSON
state, ``{"drawing": {"raw": <Fabric.js JSON>, "data": <PNG data URL of the 280x280 canvas>}}``,
with the ``fragment_id`` of the fragment that holds the canvas, if any. A new visitor first fetches
index.html and the files it names (an empty browser cache), as a browser does. Among them,
``--browsers`` real Chromium visitors (Playwright, on the client's core) draw ones with the mouse on
the Draw page, clearing the canvas in between: the time from releasing the mouse to the reading and
its probability bars on their page is what a person sees, the browser's own rendering included (the
look inside the CNN, 9 more figures, stays closed, as the page opens it).

Each visitor opens Home, opens Draw, draws ``--digits`` digits (MNIST test digits re-drawn as on
the canvas, each revealed in ``--strokes`` strokes, then the canvas is cleared), each stroke
after looking at the last reading for ``--think`` seconds (uniform), then opens Train and Runs.
The first visitor does all this alone first (the cold server's costs, reported on their own);
the training workers the Train page starts are left to finish loading; then the other visitors
arrive within ``--arrival`` seconds and all of them go through the steps together, phase by phase
(Home, Draw, strokes, Train, Runs), so that the server's CPU time in a phase, divided by the
events in it, is the cost of one event. Reported, server side:

- CPU seconds (``/proc/PID/stat``: user + system, all threads) per page view and per stroke; the
  worker processes the server starts (the Train page keeps training workers warm) separately; how
  busy the server's core was with anything (``/proc/stat``: other work on this machine included),
  and how many elements the server sent per event (what was rendered: 0 would be a failed page);
- memory per session: the server's RSS growth with all visitors connected, over the first
  visitor's RSS, divided by the number of later sessions;
- stroke -> reading: from sending the stroke to the reading's "Predicted digit" (and to the end of
  the rerun, every figure of the reading sent), p50 / p95 / max;
- that every visitor was served (every page rendered without an exception, every stroke read,
  the digit predicted) and that ``/_stcore/health`` answered "ok" throughout (polled every 0.5 s).

    python benchmarks/load.py [--visitors 30] [--browsers 1] [--digits 3] [--strokes 3] [--think 2 6]
                              [--arrival 10] [--hosted [--epochs 5] [--drain 900]]
                              [--replicas 2] [--run-store sqlite|postgresql]

``--run-store postgresql``: the run store is a PostgreSQL server started here (tests/postgres_server.py's,
as the tests start it), its processes pinned to the server's core too; their CPU time per phase is
reported on its own line (the server's CPU above it is the app server's alone). ``--replicas 2``: two
``streamlit run app.py`` servers, both pinned to the one server core, sharing that PostgreSQL run store
(and one ZOO_HOME: one host), behind HAProxy started with deploy/haproxy.cfg as it is (on the client's
core, as this client's way in); the visitors go through the proxy and carry its stickiness cookie
(STUDIO_SERVER) from its first answer on, and every answer, the websocket's included, must come from the
server the cookie names (the proxy's X-Zoo-Server header), or the visitor was not served. Each server
gets a first visitor alone (its cold costs); the phases' CPU is the servers' summed, each server's share
and its CPU per event of its own in a second table; stroke -> reading and memory per session per server
too; the targets hold for the pooled numbers, memory per session for each server.

Local mode by default (everyone is the one local owner), in a temporary ZOO_HOME; the shipped
starter CNN reads the digits. ``--hosted``: the server runs with ZOO_MODE=hosted and an ``[auth]``
secrets file for the loopback OpenID Connect provider of tests/oidc_server.py, and each protocol
visitor signs in as ``visitor-N`` after its Home, as a browser does: the sidebar's Sign in
(``st.login`` answers with a redirect to /auth/login), the provider's page (the visitor's button),
/oauth2callback (the signed auth cookie), then the page and its websocket again with the cookies.
After Runs, each visitor starts small Playground runs (the 2-3-1 binary classifier, ``--epochs``
epochs), each from the Playground opened afresh: the per-person quota of queued or running runs
and one more, which the quota refuses (the host-wide cap is raised to every visitor's quota, so
the per-person one is what is reached); then the queue is waited on until it drains. Reported
besides: visitors signed in, runs started and refused (with the message), runs completed, and the
time the queue took to drain. The Chromium visitors are not signed in. Run it on a machine
with at least 2 cores; the load average before and after is printed with the numbers, since other
work on the machine shares the server's core. It exits 1 when a target is not met: at most 0.1 s
of server CPU per stroke, at most 5 MB per session after the first, p95 stroke -> reading at most
2 s, every visitor served and the server healthy; hosted, also every visitor signed in, every run
that started completed and the queue drained.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import html
import http.cookiejar
import io
import json
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from app_speed import describe_machine, start_server
from conftest import APP_SERVERS, STICKINESS_COOKIE, end, free_port, start_proxy  # the browser tests' proxy
from postgres_server import PostgresServer

SERVER_CORE, CLIENT_CORE = 0, 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
READ_TIMEOUT_SECONDS = 120
FABRIC_VERSION = "7.4.0"  # what the canvas's Fabric.js writes into its JSON, as a browser sent it
CONTEXT_INFO = {"timezone": "UTC", "timezone_offset": 0, "locale": "en-US", "color_scheme": "light"}


# --- the server process -----------------------------------------------------------------------------


def pin_process(pid: int, core: int) -> None:
    """Pin every thread of ``pid`` to ``core``; threads and processes it starts later inherit it."""
    for thread in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(thread), {core})


def descendants(pid: int) -> list[int]:
    children = []
    for thread in os.listdir(f"/proc/{pid}/task"):
        children_file = Path(f"/proc/{pid}/task/{thread}/children")
        if children_file.exists():
            children += [int(child) for child in children_file.read_text().split()]
    return children + [grandchild for child in children for grandchild in descendants(child)]


def stop_server(server) -> None:
    """Stop the server, then the worker processes it started (they outlive it by a moment)."""
    workers = descendants(server.pid)
    server.terminate()
    server.wait(timeout=30)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of ``pid`` so far (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def rss_megabytes(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE / 2**20


def core_busy_seconds(core: int) -> float:
    """CPU seconds that ``core`` spent on anything but idling so far, every process included."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
            return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS
    raise SystemExit(f"/proc/stat has no cpu{core}")


@dataclass
class CpuMeter:
    """The servers' CPU time, their workers' and their core's between two readings."""

    pids: dict[str, int]  # each server's name (HAProxy's; "" for a lone server) -> its process
    servers: dict[str, float] = field(default_factory=dict)
    workers: dict[int, float] = field(default_factory=dict)
    core: float = 0.0
    by_server: dict[str, tuple[float, float]] = field(default_factory=dict)  # the last read's, per server

    def read(self) -> tuple[float, float, float]:
        """(servers, workers, the servers' core busy with anything) CPU seconds since the last call,
        summed over the servers; ``by_server`` holds each server's (server, workers) share."""
        core = core_busy_seconds(SERVER_CORE)
        for name, pid in self.pids.items():
            server = cpu_seconds(pid)
            workers = {child: cpu_seconds(child) for child in descendants(pid)}
            self.by_server[name] = (
                server - self.servers.get(name, 0.0),
                sum(seconds - self.workers.get(child, 0.0) for child, seconds in workers.items()),
            )
            self.servers[name], self.workers = server, {**self.workers, **workers}
        used = (
            sum(server for server, _ in self.by_server.values()),
            sum(workers for _, workers in self.by_server.values()),
            core - self.core,
        )
        self.core = core
        return used


class HealthWatch(threading.Thread):
    """Polls ``/_stcore/health`` every half second; counts answers other than "ok" and the slowest."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stopped = f"{url}/_stcore/health", threading.Event()
        self.checks, self.failures, self.slowest = 0, [], 0.0

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    answer = response.read()
                if answer != b"ok":
                    self.failures.append(f"answered {answer[:40]!r}")
            except OSError as error:
                self.failures.append(str(error))
            self.checks += 1
            self.slowest = max(self.slowest, time.perf_counter() - started)


# --- what a visitor draws ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stroke:
    """The canvas's state after one stroke, as the canvas component sends it, and the digit drawn."""

    state: str
    label: int
    complete: bool  # the last stroke of its digit: the reading must be a digit


def canvas_state(pixels, paths: list[list]) -> str:
    """The canvas component's widget value: Fabric.js JSON of the paths and a PNG of the canvas."""
    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    objects = [
        {
            "type": "Path",
            "version": FABRIC_VERSION,
            "stroke": "#FFFFFF",
            "strokeWidth": 20,
            "fill": None,
            "path": path,
        }
        for path in paths
    ]
    raw = {"version": FABRIC_VERSION, "objects": objects, "background": "#000000"}
    data = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    return json.dumps({"drawing": {"raw": raw, "data": data}}, separators=(",", ":"))


def digit_strokes(digit, label: int, strokes: int, rng) -> list[Stroke]:
    """One MNIST digit re-drawn as on the canvas (white on black), revealed left to right in
    ``strokes`` parts, then the cleared canvas."""
    import numpy as np

    from zoo.ml.inference import redraw_on_canvas

    drawn = redraw_on_canvas(digit, rng)
    ink = drawn[..., 3] if drawn[0, 0, 3] == 0 else np.abs(drawn[..., 0].astype(int) - int(drawn[0, 0, 0]))
    ink = ink.astype(np.uint8)
    columns = np.flatnonzero(ink.any(axis=0))
    edges = np.linspace(columns[0], columns[-1] + 1, strokes + 1).round().astype(int)
    result, paths = [], []
    for part in range(1, strokes + 1):
        shown = np.where(np.arange(ink.shape[1]) < edges[part], ink, 0).astype(np.uint8)
        rows, cols = np.nonzero(ink[:, edges[part - 1] : edges[part]])
        order = np.argsort(rows)[:: max(1, len(rows) // 40)]
        paths.append(
            [
                ["M" if i == 0 else "L", int(cols[j] + edges[part - 1]), int(rows[j])]
                for i, j in enumerate(order)
            ]
        )
        pixels = np.zeros((*ink.shape, 4), np.uint8)
        pixels[..., :3], pixels[..., 3] = shown[..., np.newaxis], 255
        result.append(Stroke(canvas_state(pixels, list(paths)), label, part == strokes))
    blank = np.zeros((*ink.shape, 4), np.uint8)
    blank[..., 3] = 255
    result.append(Stroke(canvas_state(blank, []), label, False))
    return result


def visitor_drawings(visitors: int, digits: int, strokes: int) -> list[list[Stroke]]:
    """Each visitor's strokes, made before the load starts (the client's core stays free)."""
    import numpy as np

    from zoo.ml.data import load_embedded_mnist

    data = load_embedded_mnist()
    rng = np.random.default_rng(0)
    drawings = []
    for visitor in range(visitors):
        chosen = [(visitor * digits + index) % len(data.x_test) for index in range(digits)]
        drawings.append(
            [
                stroke
                for index in chosen
                for stroke in digit_strokes(data.x_test[index], int(data.y_test[index]), strokes, rng)
            ]
        )
    return drawings


# --- one visitor, speaking Streamlit's protocol -------------------------------------------------------


@dataclass
class Rerun:
    """What came back for one rerun request."""

    sent: float
    finished: asyncio.Future
    first_metric: float | None = None
    metric: str | None = None
    elements: int = 0
    problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what st.error said
    through_reruns: bool = False  # wait past an st.rerun() to the end of the rerun it asked for
    server: str = ""  # the server that answered (HAProxy's name for it; "" without a proxy)


class Visitor:
    """One browser session: a websocket to ``/_stcore/stream``, pages opened and strokes drawn."""

    def __init__(self, number: int, url: str) -> None:
        self.number, self.url = number, url
        self.pages: dict[str, str] = {}  # page name -> page_script_hash
        self.widgets: dict[str, tuple[str, str]] = {}  # user key -> (widget id, fragment id)
        self.buttons: dict[str, tuple[str, str]] = {}  # label -> (widget id, fragment id)
        self.page = ""
        self.query = ""  # the page URL's query string, as the app last set it
        self.login_path: str | None = None  # where st.login sent the browser
        self.cookies: dict[str, str] = {}  # hosted mode: the app's cookies once signed in
        self.server = ""  # behind the proxy: its stickiness cookie's value, from its first answer on
        self.rerun: Rerun | None = None
        self.problems: list[str] = []
        self.static_bytes = 0

    async def fetch_static(self) -> None:
        """index.html and the scripts, styles and fonts it names, as an empty browser cache does."""

        def fetch(path: str) -> bytes:
            headers = {"Accept-Encoding": "gzip", **self.cookie_header()}
            request = urllib.request.Request(f"{self.url}/{path}", headers=headers)
            with urllib.request.urlopen(request, timeout=60) as response:
                for cookie in response.headers.get_all("Set-Cookie") or []:  # the proxy's, on a first answer
                    name, _, value = cookie.split(";", 1)[0].partition("=")
                    if name == STICKINESS_COOKIE:
                        self.server = value
                self.check_server(response.headers.get("X-Zoo-Server"))
                return response.read()

        index = await asyncio.to_thread(fetch, "")
        paths = re.findall(rb'(?:src|href)="\./([^"]+)"', index)
        bodies = await asyncio.gather(*(asyncio.to_thread(fetch, path.decode()) for path in paths))
        self.static_bytes = len(index) + sum(len(body) for body in bodies)

    def cookie_header(self) -> dict[str, str]:
        """The browser's Cookie header: the proxy's stickiness cookie, and the app's once signed in."""
        cookies = {**({STICKINESS_COOKIE: self.server} if self.server else {}), **self.cookies}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}

    async def connect(self) -> None:
        import websockets

        ws_url = self.url.replace("http://", "ws://") + "/_stcore/stream"
        subprotocols = ["streamlit"]
        if self.cookies:  # as the browser does: the XSRF cookie's value as the second subprotocol
            subprotocols.append(self.cookies["_streamlit_xsrf"])
        self.socket = await websockets.connect(
            ws_url,
            subprotocols=subprotocols,
            additional_headers=self.cookie_header(),
            origin=self.url,
            max_size=None,
            compression=None,
        )
        self.check_server(self.socket.response.headers.get("X-Zoo-Server"))
        self.reader = asyncio.create_task(self.read_forever())

    def check_server(self, answered: str | None) -> None:
        """Behind the proxy, every answer must come from the server the stickiness cookie names (the
        proxy says which in X-Zoo-Server): a visitor moved to another server would lose its session."""
        if self.server and answered != self.server:
            self.problems.append(f"visitor {self.number}: answered by {answered}, not by {self.server}")

    async def close(self) -> None:
        await self.socket.close()
        self.reader.cancel()

    async def read_forever(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        async for payload in self.socket:
            message = ForwardMsg()
            message.ParseFromString(payload)
            self.receive(message, time.perf_counter())

    def receive(self, message, now: float) -> None:
        kind = message.WhichOneof("type")
        rerun = self.rerun
        if kind == "navigation":
            self.pages = {page.page_name: page.page_script_hash for page in message.navigation.app_pages}
        elif kind == "auth_redirect":
            self.login_path = message.auth_redirect.url
        elif kind == "page_info_changed":
            self.query = message.page_info_changed.query_string
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            element_kind = element.WhichOneof("type")
            inner = getattr(element, element_kind)
            widget_id = getattr(inner, "id", "") if hasattr(inner, "id") else ""
            if widget_id.startswith("$$ID-"):
                self.widgets[widget_id.split("-", 2)[2]] = (widget_id, message.delta.fragment_id)
            if element_kind == "button":
                self.buttons[inner.label] = (widget_id, message.delta.fragment_id)
            if rerun is not None:
                rerun.elements += 1
                if element_kind == "metric" and rerun.first_metric is None:
                    rerun.first_metric, rerun.metric = now, inner.body
                elif element_kind == "exception":
                    rerun.problems.append(f"exception: {inner.message[:200]}")
                elif element_kind == "alert" and inner.format == inner.ERROR:
                    rerun.errors.append(inner.body)
        elif kind == "script_finished" and rerun is not None and not rerun.finished.done():
            early = message.script_finished == message.FINISHED_EARLY_FOR_RERUN
            if not (early and rerun.through_reruns):
                rerun.finished.set_result(now)

    async def request(
        self,
        page_hash: str = "",
        widgets: dict[str, str | bool] | None = None,
        fragment: str = "",
        query: str = "",
        expect_error: bool = False,
    ) -> Rerun:
        """Send a ``rerun_script`` (a page opened, or widget values changed: JSON, or ``True`` for a
        button's click) and wait for its end. An ``st.error`` is a problem unless ``expect_error``."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        state = message.rerun_script
        state.page_script_hash = page_hash
        state.fragment_id = fragment
        state.query_string = query
        for widget_id, value in (widgets or {}).items():
            widget = state.widget_states.widgets.add()
            widget.id = widget_id
            if isinstance(value, bool):
                widget.trigger_value = value
            else:
                widget.json_value = value
        for name, value in CONTEXT_INFO.items():
            setattr(state.context_info, name, value)
        state.context_info.url = f"{self.url}/{self.page}" + (f"?{query}" if query else "")
        self.rerun = rerun = Rerun(time.perf_counter(), asyncio.get_running_loop().create_future())
        rerun.server = self.server
        rerun.through_reruns = expect_error  # a start that is not refused reruns the page
        await self.socket.send(message.SerializeToString())
        await asyncio.wait_for(rerun.finished, READ_TIMEOUT_SECONDS)
        problems = rerun.problems + ([] if expect_error else [f"error: {e[:200]}" for e in rerun.errors])
        self.problems += [f"visitor {self.number}, {self.page or 'Home'}: {problem}" for problem in problems]
        return rerun

    async def open_home(self) -> Rerun:
        await self.fetch_static()
        await self.connect()
        return await self.request()

    async def open_page(self, name: str, query: str = "") -> Rerun:
        self.page = name.lower()
        return await self.request(self.pages[name], query=query)

    async def sign_in(self, provider_url: str) -> Rerun:
        """Sign in as ``visitor-N`` the way a browser does: the sidebar's Sign in (``st.login`` sends
        the browser to the app's /auth/login), which redirects to the provider's page; there the
        visitor's button, which redirects to the app's /oauth2callback (the auth cookie is set), then
        to the app; the page loads again, its websocket carrying the cookies."""
        widget_id, fragment = self.widgets["sign-in"]
        await self.request(self.pages.get("Home", ""), {widget_id: True}, fragment)
        if self.login_path is None:
            raise RuntimeError(f"visitor {self.number}: Sign in did not redirect to the provider")
        self.cookies = await asyncio.to_thread(self.sign_in_over_http, f"visitor-{self.number}", provider_url)
        await self.close()
        await self.connect()
        rerun = await self.request()
        if "Playground" not in self.pages:
            self.problems.append(f"visitor {self.number}: signed in, but not offered the Playground")
        return rerun

    def sign_in_over_http(self, user: str, provider_url: str) -> dict[str, str]:
        """/auth/login -> the provider's page; its form sent as ``user`` -> /oauth2callback -> the app.
        Returns the app's cookies (Authlib's session, the signed user, Streamlit's XSRF token)."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(f"{self.url}{self.login_path}", timeout=READ_TIMEOUT_SECONDS) as response:
            page = response.read().decode()
        form = {
            name: html.unescape(value) for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', page)
        }
        form["user"] = user  # the provider's page: who signs in
        body = urllib.parse.urlencode(form).encode()
        with opener.open(f"{provider_url}/authorize", body, timeout=READ_TIMEOUT_SECONDS) as response:
            response.read()  # followed: /oauth2callback, then the app's page
        with opener.open(f"{self.url}/_stcore/health", timeout=READ_TIMEOUT_SECONDS) as response:
            response.read()  # as the page does before its websocket: this sets the XSRF cookie
        return {cookie.name: cookie.value for cookie in jar}

    async def start_runs(self, starts: int, epochs: int) -> list[Rerun]:
        """Start ``starts`` small Playground runs (the 2-3-1 binary classifier, ``epochs`` epochs),
        each from the Playground opened afresh (as in a new tab: a Start on a page that follows a
        live run of one's own would stop that run first); refused starts say why in an st.error."""
        query, reruns = f"num_epochs={epochs}", []
        for _ in range(starts):
            await self.open_page("Playground", query)
            widget_id, fragment = self.buttons["Start training"]
            reruns.append(
                await self.request(
                    self.pages["Playground"], {widget_id: True}, fragment, query, expect_error=True
                )
            )
        return reruns

    async def draw(self, stroke: Stroke) -> Rerun:
        widget_id, fragment = self.widgets["draw.canvas.0"]  # the page's first canvas (Clear makes the next)
        rerun = await self.request(self.pages["Draw"], {widget_id: stroke.state}, fragment)
        if stroke.complete and (rerun.metric is None or not rerun.metric.isdigit()):
            self.problems.append(f"visitor {self.number}: a stroke of a {stroke.label} got no reading")
        return rerun


# --- the run ------------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    events: int
    seconds: float
    server_cpu: float
    workers_cpu: float
    core_busy: float  # the server's core, busy with anything (this machine's other work included)
    elements: float  # the median number of elements the server sent for one event: what was rendered
    by_server: dict[str, tuple[float, float, int]]  # each server's CPU, its workers' CPU and its events
    database_cpu: float = 0.0  # a PostgreSQL run store's processes (those alive when read)


async def strokes_of(visitor: Visitor, strokes: list[Stroke], think: tuple[float, float], rng) -> list[Rerun]:
    readings = []
    for stroke in strokes:
        await asyncio.sleep(rng.uniform(*think))
        readings.append(await visitor.draw(stroke))
    return readings


class BrowserVisitor:
    """A real Chromium (Playwright, on the client's core) on the Draw page, drawing with the mouse
    among the protocol visitors: what a person sees, the browser's own rendering included."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.server = ""  # behind the proxy: its stickiness cookie's value

    async def open(self, playwright) -> None:
        from conftest import CHROMIUM, CHROMIUM_ARGS  # the browser tests' launch settings

        self.browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.page = await self.browser.new_page(viewport={"width": 1400, "height": 1600})
        await self.page.goto(f"{self.url}/draw")
        await self.page.locator("canvas.upper-canvas").wait_for(timeout=READ_TIMEOUT_SECONDS * 1000)
        for cookie in await self.page.context.cookies():
            if cookie["name"] == STICKINESS_COOKIE:
                self.server = cookie["value"]

    async def draw(self, digits: int, think: tuple[float, float], rng) -> list[float]:
        """Draw ``digits`` ones (a vertical stroke each, the canvas cleared in between); return the
        seconds from releasing the mouse to the reading and its probability bars on the page."""
        from playwright.async_api import expect

        timeout = READ_TIMEOUT_SECONDS * 1000
        predicted, figures = self.page.get_by_test_id("stMetricValue"), self.page.locator(".js-plotly-plot")
        latencies = []
        for index in range(digits):
            await asyncio.sleep(rng.uniform(*think))
            if index:
                await self.page.get_by_role("button", name="Clear").click()
                await expect(predicted).to_have_count(0, timeout=timeout)
            box = await self.page.locator("canvas.upper-canvas").bounding_box()
            await self.page.mouse.move(box["x"] + 140, box["y"] + 45)
            await self.page.mouse.down()
            for step in range(1, 20):
                await self.page.mouse.move(box["x"] + 140, box["y"] + 45 + 10 * step, steps=2)
            await self.page.mouse.up()
            started = time.perf_counter()
            await expect(predicted).to_have_count(1, timeout=timeout)
            await expect(figures).to_have_count(1, timeout=timeout)
            latencies.append(time.perf_counter() - started)
        await self.browser.close()
        return latencies


async def workers_settled(meter: CpuMeter, quiet: float = 0.1, longest: float = 120) -> None:
    """Wait until the worker processes the Train page started have loaded (under ``quiet`` CPU
    seconds in 2 s), so that their start does not count against the visitors' phases."""
    deadline = time.perf_counter() + longest
    meter.read()
    while time.perf_counter() < deadline:
        await asyncio.sleep(2)
        if meter.read()[1] < quiet:
            return


async def start_runs_and_drain(visitors: list[Visitor], arguments, phase, meter: CpuMeter) -> dict:
    """Every visitor starts their quota of small Playground runs and one more; then the queue is
    waited on until no run is queued or running. Returns what the report says of them."""
    from zoo.core.settings import HOSTED_LIMITS
    from zoo.runs.store import open_run_store

    quota = HOSTED_LIMITS.active_runs_per_owner
    starts = await phase(
        "Playground: start a run (page + Start)",
        len(visitors) * (quota + 1),
        [visitor.start_runs(quota + 1, arguments.epochs) for visitor in visitors],
    )
    store, started = open_run_store(), time.perf_counter()
    meter.read()
    while store.active_runs() and time.perf_counter() - started < arguments.drain:
        await asyncio.sleep(1)
    server_cpu, workers_cpu, _ = meter.read()
    runs = store.list_runs(limit=10 * len(visitors) * (quota + 1))
    refusals = [error for reruns in starts for rerun in reruns for error in rerun.errors]
    return {
        "quota": quota,
        "signed_in": sum("Playground" in visitor.pages for visitor in visitors),
        "starts": sum(len(reruns) for reruns in starts),
        "refusals": refusals,
        "runs": [run.status for run in runs],
        "owners": len({run.owner for run in runs}),
        "drain": (time.perf_counter() - started, server_cpu, workers_cpu, not store.active_runs()),
    }


async def run_load(
    url: str,
    pids: dict[str, int],
    arguments,
    provider_url: str | None = None,
    database: PostgresServer | None = None,
) -> dict:
    """The phases against ``url``: a lone server, or the proxy in front of the servers ``pids`` names
    (HAProxy's name of each -> its process); each server gets a first visitor of its own, alone.
    With a PostgreSQL ``database``, its processes' CPU time is measured per phase too."""
    meter = CpuMeter(pids)
    meter.read()
    database_meter = CpuMeter({"postgresql": postmaster(database)}) if database else None
    rng = random.Random(1)
    drawings = visitor_drawings(arguments.visitors, arguments.digits, arguments.strokes)
    phases: list[Phase] = []

    async def phase(name: str, events: int, work) -> list:
        meter.read()
        if database_meter:
            database_meter.read()
        started = time.perf_counter()
        results = await asyncio.gather(*work)
        server, workers, core = meter.read()
        database_cpu = sum(database_meter.read()[:2]) if database_meter else 0.0
        reruns = [rerun for result in results for rerun in (result if isinstance(result, list) else [result])]
        reruns = [rerun for rerun in reruns if isinstance(rerun, Rerun)]  # a browser's are its latencies
        elements = statistics.median(rerun.elements for rerun in reruns)
        events_of = {name: sum(rerun.server == name for rerun in reruns) for name in pids}
        for browser in browsers:  # the events that were no protocol visitor's, shared by the browsers
            events_of[browser.server] += (events - len(reruns)) // len(browsers)
        by_server = {name: (*meter.by_server[name], events_of[name]) for name in pids}
        phases.append(
            Phase(
                name,
                events,
                time.perf_counter() - started,
                server,
                workers,
                core,
                elements,
                by_server,
                database_cpu,
            )
        )
        return results

    visitors = [Visitor(number, url) for number in range(arguments.visitors)]
    browsers: list[BrowserVisitor] = []
    first_strokes = []
    # Each first visitor alone: a cold server's costs (imports, the model's load and compile); behind
    # the proxy, each new visitor goes to the next server, so each server gets one of its own.
    for first in visitors[: len(pids)]:
        who = "first visitor" + (f" {first.number + 1}" if len(pids) > 1 else "")
        await phase(f"{who}: Home (cold)", 1, [first.open_home()])
        if provider_url:
            await phase(f"{who}: sign in (cold)", 1, [first.sign_in(provider_url)])
        await phase(f"{who}: Draw (cold)", 1, [first.open_page("Draw")])
        first_strokes += await phase(
            f"{who}: strokes",
            len(drawings[first.number]),
            [strokes_of(first, drawings[first.number], (0, 0), rng)],
        )
        await phase(f"{who}: Train (cold)", 1, [first.open_page("Train")])
        await phase(f"{who}: Runs (cold)", 1, [first.open_page("Runs")])
    if {first.server for first in visitors[: len(pids)]} != set(pids):
        raise SystemExit(f"the first visitors did not reach every server: {[v.server for v in visitors]}")
    await workers_settled(meter)
    rss_first = {name: rss_megabytes(pid) for name, pid in pids.items()}
    later = visitors[len(pids) :]
    browsers += [BrowserVisitor(url) for _ in range(arguments.browsers)]
    if browsers:  # opened before the phases: its start and static files are not counted
        from playwright.async_api import async_playwright

        playwright = await async_playwright().start()
        for browser in browsers:
            await browser.open(playwright)

    async def arrive(visitor: Visitor) -> Rerun:
        await asyncio.sleep(rng.uniform(0, arguments.arrival))
        return await visitor.open_home()

    await phase("new visitor: Home (static files + page)", len(later), [arrive(visitor) for visitor in later])
    if provider_url:
        await phase(
            "sign in (login, provider, callback, Home)", len(later), [v.sign_in(provider_url) for v in later]
        )
    await phase("Draw page view", len(visitors), [visitor.open_page("Draw") for visitor in visitors])
    think = tuple(arguments.think)
    stroke_count = sum(len(drawings[visitor.number]) for visitor in visitors)
    stroke_count += len(browsers) * (2 * arguments.digits - 1)  # a stroke and a reset per digit
    readings = await phase(
        "Draw stroke (all visitors drawing)",
        stroke_count,
        [strokes_of(visitor, drawings[visitor.number], think, rng) for visitor in visitors]
        + [browser.draw(arguments.digits, think, rng) for browser in browsers],
    )
    if browsers:
        await playwright.stop()
    await phase("Train page view", len(visitors), [visitor.open_page("Train") for visitor in visitors])
    await phase("Runs page view", len(visitors), [visitor.open_page("Runs") for visitor in visitors])
    rss_all = {name: rss_megabytes(pid) for name, pid in pids.items()}
    hosted = {}
    if provider_url:
        hosted = await start_runs_and_drain(visitors, arguments, phase, meter)
    for visitor in visitors:
        await visitor.close()
    return {
        **hosted,
        "phases": phases,
        "first_strokes": [reading for readings_of in first_strokes for reading in readings_of],
        "readings": [reading for readings_of in readings[: len(visitors)] for reading in readings_of],
        "browser_readings": [latency for latencies in readings[len(visitors) :] for latency in latencies],
        "rss_first": rss_first,
        "rss_all": rss_all,
        "sessions": {  # the sessions after each server's first
            name: sum(visitor.server == name for visitor in later + browsers) for name in pids
        },
        "problems": [problem for visitor in visitors for problem in visitor.problems],
        "static_bytes": statistics.median(visitor.static_bytes for visitor in later) if later else 0,
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latency_row(name: str, values: list[float]) -> str:
    return (
        f"| {name:<44} | {statistics.median(values):>6.2f} | {percentile(values, 0.95):>6.2f} | "
        f"{max(values):>6.2f} | {len(values):>4} |"
    )


def server_lines(results: dict, servers: list[str]) -> None:
    """Behind the proxy: each server's share of every phase, its CPU seconds per event of its own."""
    header = "".join(f" {server + ' events':>11} | {server + ' CPU s/event':>16} |" for server in servers)
    print(f"\n| {'phase, per server':<44} |{header}")
    print(f"|{'-' * 46}|" + f"{'-' * 13}|{'-' * 18}|" * len(servers))
    for phase in results["phases"]:
        cells = ""
        for server in servers:
            cpu, _workers, events = phase.by_server[server]
            per_event = f"{cpu / events:.3f}" if events else f"({cpu:.2f} s)"
            cells += f" {events:>11} | {per_event:>16} |"
        print(f"| {phase.name:<44} |{cells}")


def hosted_lines(results: dict, visitors: int) -> None:
    """Hosted mode: who signed in, the runs started and refused, and the queue's draining."""
    quota, runs, refusals = results["quota"], results["runs"], results["refusals"]
    print(
        f"Signed in: {results['signed_in']} of {visitors} visitors (each as visitor-N, through /auth/login, "
        f"the provider's page and /oauth2callback); runs are owned by {results['owners']} of them"
    )
    print(
        f"Runs: {results['starts']} Start presses ({quota} within the per-person quota of {quota} "
        f"queued or running runs, and 1 beyond, per visitor): {len(runs)} started, {len(refusals)} refused"
    )
    for message in sorted(set(refusals)):
        print(f"  refused {refusals.count(message)} x: {message}")
    seconds, server_cpu, workers_cpu, drained = results["drain"]
    statuses = ", ".join(f"{runs.count(status)} {status}" for status in sorted(set(runs)))
    print(
        f"Queue: {'drained' if drained else 'NOT drained'} {seconds:.0f} s after the last Start "
        f"({statuses}); meanwhile server CPU {server_cpu:.1f} s, worker processes {workers_cpu:.1f} s "
        "(those alive when read: a worker that ended between readings is not counted)"
    )


def report(
    results: dict, arguments, health: dict[str, HealthWatch], loads: tuple[str, str], startup: float
) -> bool:
    visitors, servers = arguments.visitors, list(health)
    print(f"\nMachine: {describe_machine()}")
    if len(servers) > 1:
        print(
            f"{len(servers)} servers ({', '.join(servers)}) behind HAProxy (deploy/haproxy.cfg), the "
            f"visitors through the proxy; run store: {arguments.run_store} (shared)"
        )
    elif arguments.run_store != "sqlite":
        print(f"Run store: {arguments.run_store}")
    print(
        f"Server{'s' if len(servers) > 1 else ''} pinned to core {SERVER_CORE}, this client (all {visitors} "
        f"visitors) to core {CLIENT_CORE} (os.sched_setaffinity); `streamlit run app.py` ready after "
        f"{startup:.1f} s (not counted)"
    )
    print(f"Load average (1, 5, 15 min) before: {loads[0]}; after: {loads[1]}")
    print(
        f"{visitors} visitors, {arguments.digits} digits x {arguments.strokes} strokes + a clear each, "
        f"think {arguments.think[0]:g}-{arguments.think[1]:g} s, arrivals within {arguments.arrival:g} s\n"
    )
    print(
        f"| {'phase':<44} | {'events':>6} | {'wall s':>6} | {'server CPU s':>12} | {'per event':>9} | "
        f"{'elements':>8} | {'workers CPU s':>13} | {'core busy':>9} |"
    )
    print(f"|{'-' * 46}|{'-' * 8}|{'-' * 8}|{'-' * 14}|{'-' * 11}|{'-' * 10}|{'-' * 15}|{'-' * 11}|")
    stroke_cpu = None
    for phase in results["phases"]:
        per_event = phase.server_cpu / phase.events
        if phase.name.startswith("Draw stroke"):
            stroke_cpu = per_event
        print(
            f"| {phase.name:<44} | {phase.events:>6} | {phase.seconds:>6.1f} | {phase.server_cpu:>12.2f} | "
            f"{per_event:>9.3f} | {phase.elements:>8g} | {phase.workers_cpu:>13.2f} | "
            f"{phase.core_busy / phase.seconds:>9.0%} |"
        )
    if len(servers) > 1:
        server_lines(results, servers)
    if arguments.run_store == "postgresql":
        print(
            "\nPostgreSQL's own processes (pinned to the servers' core; not in the servers' CPU above), "
            "CPU s (per event): "
            + "; ".join(
                f"{p.name} {p.database_cpu:.2f} ({p.database_cpu / p.events:.3f})"
                for p in results["phases"]
                if not p.name.startswith("first")
            )
        )
    readings = results["readings"]
    to_metric = [reading.first_metric - reading.sent for reading in readings if reading.first_metric]
    to_end = [reading.finished.result() - reading.sent for reading in readings]
    alone = [reading.finished.result() - reading.sent for reading in results["first_strokes"]]
    print(f"\n| {'stroke -> reading (s)':<44} | {'p50':>6} | {'p95':>6} | {'max':>6} | {'n':>4} |")
    print(f"|{'-' * 46}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 6}|")
    print(latency_row("first visitor alone, to the end of the rerun", alone))
    print(latency_row(f"{visitors} visitors, to 'Predicted digit'", to_metric))
    print(latency_row(f"{visitors} visitors, to the end (every figure sent)", to_end))
    if len(servers) > 1:
        for server in servers:
            on_server = [
                reading.finished.result() - reading.sent for reading in readings if reading.server == server
            ]
            print(latency_row(f"  of them on {server}, to the end", on_server))
    if results["browser_readings"]:
        print(latency_row("Chromium among them: mouse up -> reading", results["browser_readings"]))
    print()
    per_session = {}
    for server in servers:
        rss_first, rss_all, sessions = (results[key][server] for key in ("rss_first", "rss_all", "sessions"))
        per_session[server] = (rss_all - rss_first) / max(1, sessions)
        print(
            f"Server {server + ' ' if server else ''}RSS: {rss_first:.0f} MB after the first visitor, "
            f"{rss_all:.0f} MB with all {sessions + 1} connected: "
            f"{per_session[server]:+.1f} MB per later session"
        )
    print(f"Static files per new visitor: {results['static_bytes'] / 2**20:.1f} MB (gzip accepted)")
    problems = results["problems"]
    print(f"Every visitor served: {'yes' if not problems else 'NO'} ({len(readings)} strokes read)")
    for problem in problems[:10]:
        print(f"  {problem}")
    for server, watch in health.items():
        print(
            f"Server {server + ' ' if server else ''}healthy: {'yes' if not watch.failures else 'NO'} "
            f"({watch.checks} checks of /_stcore/health, slowest {watch.slowest:.2f} s, "
            f"{len(watch.failures)} failed)"
        )
    if "runs" in results:
        hosted_lines(results, visitors)
    p95 = percentile(to_end, 0.95)
    targets = [
        ("server CPU per Draw stroke <= 0.1 s", stroke_cpu is not None and stroke_cpu <= 0.1),
        ("memory per session after the first <= 5 MB", max(per_session.values()) <= 5),
        (f"p95 stroke -> reading <= 2 s ({p95:.2f} s)", p95 <= 2),
        (
            "every visitor served, server healthy",
            not problems and not any(watch.failures for watch in health.values()),
        ),
    ]
    if "runs" in results:
        completed = all(status == "completed" for status in results["runs"])
        served = results["signed_in"] == visitors and completed and results["drain"][3]
        targets.append(("every visitor signed in, every run completed, the queue drained", served))
    print("\nTargets: " + "; ".join(f"{name}: {'met' if met else 'NOT met'}" for name, met in targets))
    return all(met for _, met in targets)


def hosted_setup(visitors: int, home: Path) -> tuple:
    """The loopback OpenID Connect provider (tests/oidc_server.py) knowing ``visitor-0`` ...; the
    server's environment (hosted mode, the host-wide cap on active runs raised to every visitor's
    quota, so that the per-person quota is the one reached) and its ``[auth]`` secrets file."""
    from oidc_server import OidcProvider

    from zoo.core.settings import HOSTED_LIMITS

    users = {
        f"visitor-{n}": {"sub": f"visitor-{n}", "name": f"Visitor {n}", "email": f"visitor-{n}@example.org"}
        for n in range(visitors)
    }
    provider = OidcProvider(users=users).start()
    secrets = home / "secrets.toml"
    secrets.write_text(provider.auth_secrets("http://127.0.0.1:{port}/oauth2callback"))
    active_runs = str(visitors * HOSTED_LIMITS.active_runs_per_owner)
    return provider, {"ZOO_MODE": "hosted", "ZOO_LIMIT_ACTIVE_RUNS": active_runs}, secrets


def start_database(stack: contextlib.ExitStack) -> PostgresServer:
    """A PostgreSQL server (tests/postgres_server.py's, as the tests start it), removed when ``stack``
    closes, its processes pinned to the app servers' core: the run store's work is the servers' side."""
    database = PostgresServer()
    stack.callback(database.remove)
    database.start()
    for pid in [postmaster(database), *descendants(postmaster(database))]:
        pin_process(pid, SERVER_CORE)
    print(f"PostgreSQL {database.url()}, process {postmaster(database)}", flush=True)
    return database


def postmaster(database: PostgresServer) -> int:
    """The process of a started PostgreSQL server (its other processes are its children)."""
    return int((database.data / "postmaster.pid").read_text().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=30, help="visitors at once (default 30)")
    parser.add_argument("--digits", type=int, default=3, help="digits each visitor draws (default 3)")
    parser.add_argument("--strokes", type=int, default=3, help="strokes per digit, then a clear (default 3)")
    parser.add_argument(
        "--think", type=float, nargs=2, default=[2.0, 6.0], metavar=("MIN", "MAX"),
        help="seconds a visitor looks at a reading before the next stroke, uniform (default 2 6)",
    )  # fmt: skip
    parser.add_argument(
        "--browsers", type=int, default=1, help="real Chromium visitors drawing among them (default 1)"
    )
    parser.add_argument(
        "--arrival", type=float, default=10.0, help="new visitors arrive within (default 10 s)"
    )
    parser.add_argument(
        "--hosted", action="store_true",
        help="hosted mode: each visitor signs in (loopback OpenID Connect provider) and starts runs",
    )  # fmt: skip
    parser.add_argument(
        "--replicas", type=int, default=1, choices=range(1, len(APP_SERVERS) + 1),
        help="app servers behind HAProxy (deploy/haproxy.cfg), sharing a PostgreSQL run store (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--run-store", choices=("sqlite", "postgresql"),
        help="the run store: SQLite in ZOO_HOME (one server's default) or a PostgreSQL server started here",
    )  # fmt: skip
    parser.add_argument("--epochs", type=int, default=5, help="hosted: epochs of each run (default 5)")
    parser.add_argument(
        "--drain", type=float, default=900.0, help="hosted: wait at most this for the queue (default 900 s)"
    )
    arguments = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2 and os.cpu_count() < 2:
        raise SystemExit("this benchmark needs 2 cores: one for the server, one for its visitors")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if arguments.run_store is None:
        arguments.run_store = "postgresql" if arguments.replicas > 1 else "sqlite"
    if arguments.replicas > 1 and arguments.run_store == "sqlite":
        raise SystemExit("several servers share one run store: use --run-store postgresql with --replicas")
    if arguments.replicas > 1 and arguments.hosted:
        raise SystemExit("--hosted is measured on one server: leave out --replicas")
    with (
        tempfile.TemporaryDirectory(prefix="zoo-load-", ignore_cleanup_errors=True) as home,
        contextlib.ExitStack() as stack,
    ):
        os.environ["ZOO_HOME"] = home
        provider, env, secrets = None, {}, None
        if arguments.hosted:
            provider, env, secrets = hosted_setup(arguments.visitors, Path(home))
            stack.callback(provider.stop)
        database = None
        if arguments.run_store == "postgresql":
            database = start_database(stack)
            env["ZOO_RUN_STORE"] = os.environ["ZOO_RUN_STORE"] = database.create_database()
        names = APP_SERVERS[: arguments.replicas] if arguments.replicas > 1 else ("",)
        servers, startup = {}, 0.0
        for name in names:
            server, url, seconds = start_server(
                Path(home) / f"streamlit{name and '-' + name}.log", env, secrets
            )
            stack.callback(stop_server, server)
            servers[name], startup = (server, url), max(startup, seconds)
            pin_process(server.pid, SERVER_CORE)
            print(f"server {name + ' ' if name else ''}{url}, process {server.pid}", flush=True)
        if arguments.replicas > 1:
            port = free_port()
            proxy = start_proxy([url for _, url in servers.values()], port, Path(home) / "haproxy.log")
            stack.callback(end, proxy)
            pin_process(proxy.pid, CLIENT_CORE)
            url = f"http://127.0.0.1:{port}"
            print(f"HAProxy {url} (deploy/haproxy.cfg), process {proxy.pid}", flush=True)
        os.sched_setaffinity(0, {CLIENT_CORE})
        loads = [", ".join(f"{value:.1f}" for value in os.getloadavg())]
        health = {name: HealthWatch(server_url) for name, (_, server_url) in servers.items()}
        for watch in health.values():
            watch.start()
        pids = {name: server.pid for name, (server, _) in servers.items()}
        results = asyncio.run(run_load(url, pids, arguments, provider and provider.url, database))
        for watch in health.values():
            watch.stopped.set()
        loads.append(", ".join(f"{value:.1f}" for value in os.getloadavg()))
    met = report(results, arguments, health, tuple(loads), startup)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
