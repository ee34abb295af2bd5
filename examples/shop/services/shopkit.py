"""What the three shop services share: the environment contract, a tiny router, JSON replies,
database connections and calls to other services through their egress proxies.

Built on the standard library's ``ThreadingHTTPServer`` so that a service is healthy about 50 ms
after it is started (aiohttp alone costs ~190 ms to import); psycopg is imported in the background
once the port is bound, and only a service with a database needs it.

Trust model. A service listens in plain HTTP on loopback behind its trustproof gateway. The
gateway terminates mutual TLS, validates the access token, evaluates the Cedar policies, *strips
every caller-supplied* ``X-Trustproof-*`` header and then adds the verified identity
(``X-Trustproof-Principal``, ``-Principal-Kind``, ``-Roles``, ``-Route``, ``-Request-Id``,
``-Client-Spiffe-Id``) and ``X-Trustproof-Gateway-Proof``, an HMAC over that identity, the method,
the path and the time, keyed per run (``trustproof.gateway.proof``). Loopback alone does not keep
other callers out: any local process can reach the port and forge ``X-Trustproof-Principal``. So
when ``TRUSTPROOF_GATEWAY_PROOF_KEY_FILE`` is set (the sandbox sets it), every request but
``GET /healthz`` (the controller's health checks come directly) must carry a valid proof; anything
else is answered ``401 {"error": "not from the gateway", "reason": "missing" | "malformed" |
"stale" | "bad-signature"}`` by the service itself (``X-Served-By`` is set), before any handler or
database, and identity headers are believed only once the proof verified. Without the variable
(a service started alone, as in tests) the headers are believed as they are, and a warning says so
at startup. ``load_env`` refuses to bind a non-loopback address either way. Outbound calls go
to a plain-HTTP egress proxy (``TRUSTPROOF_EGRESS_<CALLEE>``) that adds the client certificate and
the token: a service never sees a credential. The database is reached with the workload's own
certificate (the DSN names the files, which the sandbox rotates in place), so a new connection is
opened per request and always presents the current certificate.

Every response carries ``X-Served-By: <service>`` and ``X-Trustproof-Handler: <METHOD /template>``
(``none`` when no handler matched), and every JSON body carries ``served_by``, ``route``,
``caller`` and ``request_id``, so a probe can prove which handler really ran and for whom.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from trustproof.gateway.proof import verify_proof

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[tuple[Any, ...]]

REQUIRED = ("TRUSTPROOF_SERVICE", "TRUSTPROOF_SPIFFE_ID", "TRUSTPROOF_HOST", "TRUSTPROOF_PORT")
PROOF_KEY_FILE = "TRUSTPROOF_GATEWAY_PROOF_KEY_FILE"
PROOF_KEY_BYTES = 32
MAX_BODY = 1 << 20
EGRESS_TIMEOUT = 5.0  # seconds, per downstream call
DB_CONNECT_TIMEOUT = 5  # seconds
DRAIN_SECONDS = 0.5  # how long SIGTERM waits for requests in flight
INSUFFICIENT_PRIVILEGE = "42501"


class EnvError(Exception):
    """The environment contract is not met; the message names the variable."""


class HttpError(Exception):
    """Ends a request with ``status`` and a JSON body ``{"error": ..., **extra}``."""

    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.extra = extra


@dataclass(frozen=True)
class Env:
    service: str
    spiffe_id: str
    host: str
    port: int
    variables: Mapping[str, str]  # every TRUSTPROOF_* variable, for the optional ones
    proof_key: bytes | None = field(default=None, repr=False)  # None: identity headers unproven

    def egress(self, callee: str) -> tuple[str, str | None]:
        var = "TRUSTPROOF_EGRESS_" + _env_name(callee)
        return var, self.variables.get(var) or None

    def dsn(self, datastore: str) -> tuple[str, str | None]:
        var = f"TRUSTPROOF_DB_{_env_name(datastore)}_DSN"
        return var, self.variables.get(var) or None


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def load_env(environ: Mapping[str, str], *, calls: tuple[str, ...] = ()) -> Env:
    """Read the environment contract; raise `EnvError` naming the first problem."""
    for var in REQUIRED:
        if not environ.get(var):
            raise EnvError(f"{var} is not set (the trustproof sandbox sets it)")
    host, port_text = environ["TRUSTPROOF_HOST"], environ["TRUSTPROOF_PORT"]
    if not is_digits(port_text) or not 0 < int(port_text) < 65536:
        raise EnvError(f"TRUSTPROOF_PORT must be a port number, got {port_text!r}")
    if not _is_loopback(host):
        raise EnvError(
            f"TRUSTPROOF_HOST must be a loopback address, got {host!r}: this service trusts "
            "X-Trustproof-* headers, so only its gateway may reach it"
        )
    spiffe_id = environ["TRUSTPROOF_SPIFFE_ID"]
    if not spiffe_id.startswith("spiffe://"):
        raise EnvError(f"TRUSTPROOF_SPIFFE_ID must be a spiffe:// URI, got {spiffe_id!r}")
    env = Env(
        service=environ["TRUSTPROOF_SERVICE"],
        spiffe_id=spiffe_id,
        host=host,
        port=int(port_text),
        variables={k: v for k, v in environ.items() if k.startswith("TRUSTPROOF_")},
        proof_key=_proof_key(environ.get(PROOF_KEY_FILE) or None),
    )
    for callee in calls:
        var, url = env.egress(callee)
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname or parts.port is None:
                raise EnvError(f"{var} must look like http://127.0.0.1:PORT, got {url!r}")
    return env


def _proof_key(path: str | None) -> bytes | None:
    """The gateway-proof key named by ``TRUSTPROOF_GATEWAY_PROOF_KEY_FILE``, when it is set."""
    if path is None:
        return None
    try:
        key = Path(path).read_bytes()
    except OSError as exc:
        raise EnvError(
            f"{PROOF_KEY_FILE} names {path!r}, which cannot be read: {exc.strerror}"
        ) from None
    if len(key) < PROOF_KEY_BYTES:
        raise EnvError(
            f"{PROOF_KEY_FILE} names {path!r}, which holds {len(key)} bytes; "
            f"a gateway-proof key has {PROOF_KEY_BYTES}"
        )
    return key


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Request:
    env: Env
    method: str
    path: str
    query: dict[str, str]
    params: dict[str, str]
    headers: Message[str, str]  # case-insensitive
    body: bytes
    route: str = "none"

    @property
    def caller(self) -> str | None:
        return self.headers.get("X-Trustproof-Principal")

    @property
    def request_id(self) -> str | None:
        return self.headers.get("X-Trustproof-Request-Id")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(400, f"the body is not JSON: {exc}") from None

    def id_param(self, name: str = "id") -> int:
        return positive_int(self.params.get(name), name)

    @contextmanager
    def db(self, datastore: str) -> Iterator[Connection]:
        """A pooled connection made with the current certificate files (a rotation retires the
        older ones), one transaction: committed when the block ends, rolled back when it
        raises."""
        var, dsn = self.env.dsn(datastore)
        if dsn is None:
            raise HttpError(503, f"{var} is not set: {self.env.service} has no database")
        try:
            import psycopg  # noqa: PLC0415 (imported late: costs 130 ms at startup)
        except ImportError:
            raise HttpError(503, f"psycopg is not installed for {sys.executable}") from None
        try:
            with POOL.connection(dsn) as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise database_error(datastore, exc, self.route) from None

    def call(self, callee: str, method: str, path: str, body: Any = None) -> Any:
        """Call another service through this service's egress proxy; its JSON answer, or a 502
        that names the downstream status and reason (a refusal is never turned into success)."""
        var, url = self.env.egress(callee)
        if url is None:
            raise HttpError(503, f"{var} is not set: {self.env.service} cannot call {callee}")
        parts = urlsplit(url)
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=EGRESS_TIMEOUT)
        try:
            conn.request(method, parts.path.rstrip("/") + path, body=payload, headers=headers)
            response = conn.getresponse()
            status, raw = response.status, response.read(MAX_BODY)
        except (OSError, http.client.HTTPException) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            log_error(f"{self.env.service} -> {callee}: {method} {path} failed: {detail}")
            raise HttpError(
                502,
                f"{callee} could not be reached: {detail}",
                downstream={"service": callee, "status": None, "reason": "unreachable"},
            ) from None
        finally:
            conn.close()
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if 200 <= status < 300:
            return answer
        fields = answer if isinstance(answer, dict) else {}
        reason = fields.get("reason") or fields.get("error") or HTTPStatus(status).phrase
        downstream = {"service": callee, "status": status, "reason": reason}
        for key in ("error", "stage", "detail", "sqlstate", "request_id", "downstream"):
            if key in fields:
                downstream[key] = fields[key]
        raise HttpError(
            502, f"{callee} refused {method} {path}: HTTP {status} {reason}", downstream=downstream
        )


def positive_int(value: Any, name: str) -> int:
    """A PostgreSQL ``integer`` id; anything else is the caller's mistake (400)."""
    if isinstance(value, str) and is_digits(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise HttpError(400, f"{name} must be a positive integer")
    return value


def is_digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts characters ``int`` refuses, like '²')."""
    return text.isascii() and text.isdigit()


class ConnectionPool:
    """A few idle database connections per DSN, each tagged with the modification times of the
    certificate and key files it was made with: after a rotation rewrites them, older
    connections are closed instead of reused (the new files are read at the next connect).
    A connection that failed is never returned to the pool."""

    def __init__(self, max_idle: int = 4) -> None:
        self.max_idle = max_idle
        self._idle: dict[str, list[tuple[tuple[int, ...], Connection]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def stamp(dsn: str) -> tuple[int, ...]:
        files = re.findall(r"\bssl(?:cert|key)=(\S+)", dsn)
        stamps = []
        for name in files:
            try:
                stamps.append(os.stat(name).st_mtime_ns)
            except OSError:
                stamps.append(0)
        return tuple(stamps)

    @contextmanager
    def connection(self, dsn: str) -> Iterator[Connection]:
        import psycopg  # noqa: PLC0415 (imported late: costs 130 ms at startup)

        stamp = self.stamp(dsn)
        conn = None
        with self._lock:
            idle = self._idle.setdefault(dsn, [])
            while idle and conn is None:
                made_with, candidate = idle.pop()
                if made_with == stamp and not candidate.closed:
                    conn = candidate
                else:
                    candidate.close()
        if conn is None:
            conn = psycopg.connect(dsn, connect_timeout=DB_CONNECT_TIMEOUT, autocommit=True)
        healthy = False
        try:
            yield conn
            healthy = True
        finally:
            with self._lock:
                idle = self._idle.setdefault(dsn, [])
                if healthy and not conn.closed and len(idle) < self.max_idle:
                    idle.append((stamp, conn))
                    conn = None
            if conn is not None:
                conn.close()


POOL = ConnectionPool()


def database_error(datastore: str, exc: Exception, where: str) -> HttpError:
    """PostgreSQL refusing the workload's role is a 403; anything else makes the service
    unavailable (503). The SQLSTATE is kept, the traceback is not."""
    sqlstate: str | None = getattr(exc, "sqlstate", None)
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    log_error(f"database {datastore} on {where}: {sqlstate or 'no SQLSTATE'}: {detail}")
    if sqlstate == INSUFFICIENT_PRIVILEGE:
        return HttpError(403, "the database refused this service", sqlstate=sqlstate, detail=detail)
    error = "database unavailable" if sqlstate is None else "database error"
    return HttpError(503, error, datastore=datastore, sqlstate=sqlstate, detail=detail)


@dataclass(frozen=True)
class Reply:
    body: dict[str, Any]
    status: int = 200


Handler = Callable[[Request], Reply]


@dataclass
class Router:
    routes: list[tuple[str, re.Pattern[str], str, Handler]] = field(default_factory=list)

    def route(self, template: str) -> Callable[[Handler], Handler]:
        """Register a handler for ``"METHOD /path/{param}"``, spelled as in trustproof.yaml."""
        method, _, path = template.partition(" ")
        pattern = re.compile(
            "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"
        )

        def register(handler: Handler) -> Handler:
            self.routes.append((method, pattern, template, handler))
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]] | list[str]:
        """The route, its handler and parameters; or the methods the path offers (maybe none)."""
        offered: list[str] = []
        lookup = "GET" if method == "HEAD" else method
        for route_method, pattern, template, handler in self.routes:
            found = pattern.match(path)
            if found is None:
                continue
            if route_method == lookup:
                return template, handler, {k: unquote(v) for k, v in found.groupdict().items()}
            offered.append(route_method)
        return offered


_output = threading.Lock()
_inflight_lock = threading.Lock()


def log_request(service: str, method: str, path: str, status: int, caller: str | None) -> None:
    """One line per request on stdout; the path without its query, no headers, no body."""
    with _output:
        sys.stdout.write(f"{service} {method} {path} {status} caller={caller or '-'}\n")
        sys.stdout.flush()


def log_error(message: str) -> None:
    with _output:
        sys.stderr.write(message.replace("\n", " ") + "\n")
        sys.stderr.flush()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the gateway pools its upstream connections
    server_version = "shopkit"
    disable_nagle_algorithm = True
    wbufsize = -1  # headers and body leave in one write (no Nagle/delayed-ACK stall)
    timeout = 120  # idle keep-alive connections are closed after this
    env: Env
    router: Router
    inflight: list[int]
    identity_trusted = False  # may X-Trustproof-* headers be believed for the current request?

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        pass  # replaced by log_request

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests (bad request line, unsupported method) get JSON too."""
        self.close_connection = True
        self.identity_trusted = False  # no proof was checked (and the headers may be stale)
        self._reply(code, {"error": message or HTTPStatus(code).phrase}, "none")

    def _dispatch(self) -> None:
        with _inflight_lock:
            self.inflight[0] += 1
        try:
            self._serve()
        finally:
            with _inflight_lock:
                self.inflight[0] -= 1

    def _serve(self) -> None:
        self.identity_trusted = self.env.proof_key is None
        path = urlsplit(self.path).path or "/"
        body, problem = self._read_body()
        if problem is not None:
            self.close_connection = True
            self._reply(problem.status, {"error": problem.error}, "none")
            return
        if path == "/healthz" and self.command in ("GET", "HEAD"):
            self._reply(200, {"ok": True, "spiffe_id": self.env.spiffe_id}, "GET /healthz")
            return
        refusal = self._proof_refusal()
        if refusal is not None:
            log_error(f"{self.env.service} {self.command} {path}: not from the gateway: {refusal}")
            self._reply(401, {"error": "not from the gateway", "reason": refusal}, "none")
            return
        self.identity_trusted = True
        found = self.router.match(self.command, path)
        if isinstance(found, list):
            if found:
                error = f"{path} offers {', '.join(found)} only"
                self._reply(405, {"error": error}, "none", {"Allow": ", ".join(found)})
            else:
                self._reply(404, {"error": f"no route for {self.command} {path}"}, "none")
            return
        template, handler, params = found
        request = Request(
            env=self.env,
            method=self.command,
            path=path,
            query=dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True)),
            params=params,
            headers=self.headers,
            body=body,
            route=template,
        )
        try:
            reply = handler(request)
        except HttpError as exc:
            reply = Reply({"error": exc.error, **exc.extra}, exc.status)
        except Exception as exc:  # a bug in the handler: say so, without a traceback
            log_error(f"{self.env.service} {template}: unhandled {type(exc).__name__}: {exc}")
            reply = Reply({"error": f"internal error ({type(exc).__name__})"}, 500)
        self._reply(reply.status, reply.body, template)

    def _proof_refusal(self) -> str | None:
        """Why this request cannot have come through the gateway; None when it did (or when no
        key is configured, so that nothing can be told)."""
        key = self.env.proof_key
        if key is None:
            return None
        check = verify_proof(key, self.command, self.path, self.headers.items(), time.time())
        return None if check.ok else check.reason

    def _read_body(self) -> tuple[bytes, HttpError | None]:
        if self.headers.get("Transfer-Encoding"):
            return b"", HttpError(411, "send a Content-Length, not a chunked body")
        length = self.headers.get("Content-Length", "0").strip() or "0"
        if not is_digits(length):
            return b"", HttpError(400, "Content-Length is not a number")
        if int(length) > MAX_BODY:
            return b"", HttpError(413, f"bodies are limited to {MAX_BODY} bytes")
        return self.rfile.read(int(length)), None

    def _reply(
        self,
        status: int,
        body: dict[str, Any],
        route: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        headers = getattr(self, "headers", None) if self.identity_trusted else None
        caller = headers.get("X-Trustproof-Principal") if headers else None
        envelope = {
            "served_by": self.env.service,
            "route": route,
            "caller": caller,
            "request_id": headers.get("X-Trustproof-Request-Id") if headers else None,
            **body,
        }
        payload = json.dumps(envelope, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Served-By", self.env.service)
        self.send_header("X-Trustproof-Handler", route)
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        target = getattr(self, "path", "")
        path = urlsplit(target).path if target else "-"
        log_request(self.env.service, self.command or "-", path, status, caller)


def _warm_psycopg() -> None:
    with suppress(ImportError):
        import psycopg  # noqa: F401, PLC0415


def serve(router: Router, *, calls: tuple[str, ...] = (), datastores: tuple[str, ...] = ()) -> None:
    """Run a service until SIGTERM or SIGINT. Exit 2 when the environment contract is not met,
    3 when the address cannot be bound, 0 after a graceful stop (well within 1 s)."""
    prog = os.path.basename(sys.argv[0]) or "service"
    try:
        env = load_env(os.environ, calls=calls)
    except EnvError as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        raise SystemExit(2) from None

    class Handler(_Handler):
        pass

    Handler.env, Handler.router, Handler.inflight = env, router, [0]

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in env.host else socket.AF_INET
        request_queue_size = 128  # the default 5 drops connections under a burst of probes
        daemon_threads = True

    try:
        server = Server((env.host, env.port), Handler)
    except OSError as exc:
        sys.stderr.write(f"{prog}: cannot listen on {env.host}:{env.port}: {exc.strerror}\n")
        raise SystemExit(3) from None
    if any(env.dsn(name)[1] for name in datastores):
        threading.Thread(target=_warm_psycopg, daemon=True).start()

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if env.proof_key is None:
        log_error(
            f"{env.service}: warning: {PROOF_KEY_FILE} is not set, so X-Trustproof-* identity "
            f"headers are trusted without proof: any local process reaching port {env.port} "
            "can claim any identity"
        )
    sys.stdout.write(f"{env.service} listening on http://{env.host}:{env.port}\n")
    sys.stdout.flush()
    server.serve_forever(poll_interval=0.1)
    deadline = time.monotonic() + DRAIN_SECONDS
    while Handler.inflight[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    server.server_close()
    sys.stdout.write(f"{env.service} stopped\n")
    sys.stdout.flush()
