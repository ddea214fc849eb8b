"""The processes a benchmark or fault campaign runs against, each its own OS process.

A Temporal dev server (in memory, headless, our search attributes), a dedicated embedded
PostgreSQL (pgserver's binaries, its own data directory, so it can be restarted without touching
`.portalpay/`), the PortalPay worker (`portalpay worker`) and the portal (`portalpay portal`).
Each child is watched with psutil for RSS and CPU, and can be SIGKILLed and started again.
"""

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from starters.cli.dev_stack import SEARCH_ATTRIBUTES, temporal_binary

STARTUP_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ProcessSample:
    rss_bytes: int
    cpu_seconds: float


class ManagedProcess:
    """One child process, started from `argv` with `env`; output goes to `log_path`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.starts = 0

    def start(self) -> "ManagedProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sample(self) -> ProcessSample:
        """RSS and CPU time of the process and its children (the dev server forks none; uvicorn none)."""
        if not self.alive():
            return ProcessSample(0, 0.0)
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
            rss = cpu = 0.0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    cpu += t.user + t.system
            return ProcessSample(int(rss), cpu)
        except psutil.Error:
            return ProcessSample(0, 0.0)

    def kill(self) -> None:
        """SIGKILL, no warning: what a crashed machine or an OOM kill looks like to Temporal."""
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class EmbeddedPostgres:
    """A PostgreSQL of our own from pgserver's binaries, restartable with `pg_ctl`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.url = ""

    def start(self) -> str:
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pgserver.postgres_server import get_server

        from infra.db import server_user_ready

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with server_user_ready():  # the campaign starts beside the suite in .ci/run, on a fresh machine too
            self.url = str(get_server(str(self.data_dir), cleanup_mode=None).get_uri())
        return self.url

    def sample(self) -> ProcessSample:
        """RSS and CPU of the postmaster and every backend it forked."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            root = psutil.Process(pid)
            rss = cpu = 0.0
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    cpu += t.user + t.system + t.children_user + t.children_system
            return ProcessSample(int(rss), cpu)
        except (OSError, ValueError, IndexError, psutil.Error):
            return ProcessSample(0, 0.0)

    def restart(self, *, immediate: bool) -> None:
        """`immediate` is a crash (no checkpoint; WAL replay on start); otherwise a fast shutdown."""
        from pgserver.postgres_server import pg_ctl  # type: ignore[attr-defined]

        user = "pgserver" if os.geteuid() == 0 else None
        mode = "immediate" if immediate else "fast"
        pg_ctl(["-w", "-m", mode, "restart"], pgdata=self.data_dir, user=user, timeout=60)

    def stop(self) -> None:
        """Stop it ourselves: after a restart pgserver's own exit hook no longer knows the pid."""
        from pgserver.postgres_server import pg_ctl  # type: ignore[attr-defined]

        user = "pgserver" if os.geteuid() == 0 else None
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=user, timeout=60)


@dataclass
class StackConfig:
    work_dir: Path
    database_url: str | None = None  # else a dedicated embedded PostgreSQL under work_dir
    temporal_address: str | None = None  # else a dev server started here
    portal_url: str | None = None  # else `portalpay portal` started here
    task_queue: str = field(default_factory=lambda: f"bench-{secrets.token_hex(4)}")
    # The dev server keeps its state in `<work_dir>/temporal.db` (SQLite) instead of memory, so it
    # can be restarted mid-run with every workflow still there.
    persist_temporal: bool = False
    # Scale-out: this many `portalpay worker` and `portalpay portal` processes on one server and DB.
    workers: int = 1
    portals: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    # One node: one task-queue partition, so a task never waits for forwarding between partitions.
    server_dynamic_config: tuple[str, ...] = (
        "matching.numTaskqueueReadPartitions=1",
        "matching.numTaskqueueWritePartitions=1",
    )


def stack_secrets() -> dict[str, str]:
    return {
        "STAFF_API_TOKEN": secrets.token_urlsafe(18),
        "OPERATOR_API_TOKEN": secrets.token_urlsafe(18),
        "LINK_SIGNING_KEY": secrets.token_urlsafe(32),
        "OTP_HMAC_KEY": secrets.token_urlsafe(32),
        "AUDIT_CHAIN_KEY": secrets.token_urlsafe(32),
        "BANK_FINGERPRINT_KEY": secrets.token_urlsafe(32),
        "PROCESSOR_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "API_KEY_PEPPER": secrets.token_urlsafe(32),
        "CODEC_KEYS": "bench1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "WEBHOOK_SECRET_KEYS": "bench1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    }


class Stack:
    """Starts what the config does not name, and stops what it started (in reverse)."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.postgres: EmbeddedPostgres | None = None
        self.temporal: ManagedProcess | None = None
        self.worker: ManagedProcess | None = None  # the first of `workers`
        self.portal: ManagedProcess | None = None  # the first of `portals`
        self.workers: list[ManagedProcess] = []
        self.portals: list[ManagedProcess] = []
        self.portal_urls: list[str] = [config.portal_url] if config.portal_url else []
        self.env: dict[str, str] = {}
        self.database_url = config.database_url or ""
        self.temporal_address = config.temporal_address or ""
        self.portal_url = config.portal_url or ""
        self.processor: ManagedProcess | None = None
        self.processor_port = free_port()

    # ---- pieces ---------------------------------------------------------------------------

    def start_database(self) -> str:
        if not self.database_url:
            self.postgres = EmbeddedPostgres(self.config.work_dir / "pgdata")
            self.database_url = self.postgres.start()
        return self.database_url

    async def start_temporal(self) -> str:
        if self.temporal_address:
            return self.temporal_address
        port = free_port()
        argv = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--headless",
            "--log-level",
            "error",
        ]
        if self.config.persist_temporal:
            argv += ["--db-filename", str(self.config.work_dir / "temporal.db")]
        for name, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        for item in self.config.server_dynamic_config:
            argv += ["--dynamic-config-value", item]
        self.temporal = ManagedProcess(
            "temporal", argv, dict(os.environ), self.config.work_dir / "temporal.log"
        )
        self.temporal.start()
        self.temporal_address = f"127.0.0.1:{port}"
        await wait_for_port(port, self.temporal)
        return self.temporal_address

    async def restart_temporal(self, *, kill: bool) -> float:
        """Stop the dev server (SIGKILL, or SIGTERM) and start it again on the same port and file.

        Returns the seconds it was not listening. Only meaningful with `persist_temporal`: an
        in-memory server would come back empty.
        """
        assert self.temporal is not None and self.config.persist_temporal
        went = time.monotonic()
        if kill:
            self.temporal.kill()
        else:
            self.temporal.stop()
        self.temporal.start()
        await wait_for_port(int(self.temporal_address.rsplit(":", 1)[1]), self.temporal)
        return time.monotonic() - went

    def build_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "ATTEMPT_", "PAYMENT_"))}
        # Secrets already in the environment win: a given portal must accept the bench's links.
        env.update({k: os.environ.get(k) or v for k, v in stack_secrets().items()})
        env.update(
            {
                "PORTALPAY_ENV": "dev",
                "PORTALPAY_STATE_DIR": str(self.config.work_dir / "state"),
                "DATABASE_URL": self.database_url,
                "TEMPORAL_ADDRESS": self.temporal_address,
                "TEMPORAL_NAMESPACE": "default",
                "TEMPORAL_TASK_QUEUE": self.config.task_queue,
                "PYTHONUNBUFFERED": "1",
                # The sandbox processor is a service of its own (SPEC §9): this stack runs one.
                "PROCESSOR_SANDBOX_URL": f"http://127.0.0.1:{self.processor_port}",
            }
        )
        env.update(self.config.extra_env)
        self.env = env
        return env

    def worker_process(self, name: str = "worker") -> ManagedProcess:
        argv = [sys.executable, "-m", "starters.cli.app", "worker"]
        return ManagedProcess(name, argv, self.env, self.config.work_dir / f"{name}.log")

    async def start_portal(self) -> str:
        if self.portal_url:
            return self.portal_url
        for _ in range(self.config.portals):
            await self._start_one_portal(f"portal-{len(self.portals) + 1}" if self.portals else "portal")
        self.portal, self.portal_url = self.portals[0], self.portal_urls[0]
        return self.portal_url

    async def _start_one_portal(self, name: str) -> None:
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "starters.cli.app",
            "portal",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        env = {**self.env, "PORTAL_BASE_URL": f"http://127.0.0.1:{port}"}
        portal = ManagedProcess(name, argv, env, self.config.work_dir / f"{name}.log").start()
        url = f"http://127.0.0.1:{port}"
        self.portals.append(portal)
        self.portal_urls.append(url)
        await wait_for_http(f"{url}/healthz", portal)

    # ---- whole ----------------------------------------------------------------------------

    async def start_processor(self) -> None:
        """`portalpay processor`, its webhooks to the first portal (the worker retries debits until it is up)."""
        if self.processor is not None or not self.portal_urls:
            return
        env = {**self.env, "PROCESSOR_WEBHOOK_URL": f"{self.portal_urls[0]}/webhooks/processor/sandbox"}
        argv = [sys.executable, "-m", "starters.cli.app", "processor"]
        self.processor = ManagedProcess(
            "processor", argv, env, self.config.work_dir / "processor.log"
        ).start()
        await wait_for_port(self.processor_port, self.processor)

    async def start(self, *, worker: bool = True, portal: bool = True) -> "Stack":
        from infra.db import migrate_url

        self.config.work_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.start_database)
        await migrate_url(self.database_url)
        await self.start_temporal()
        self.build_env()
        if worker and self.worker is None:
            self.workers = [
                self.worker_process("worker" if i == 0 else f"worker-{i + 1}").start()
                for i in range(self.config.workers)
            ]
            self.worker = self.workers[0]
        if portal:
            await self.start_portal()
            await self.start_processor()
        return self

    def stop(self) -> None:
        for proc in (self.processor, *self.portals, *self.workers, self.worker, self.temporal):
            if proc is not None:
                proc.stop()
        if self.postgres is not None:
            self.postgres.stop()


async def wait_for_port(port: int, proc: ManagedProcess | None, within: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited at start:\n{proc.tail()}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"nothing listening on port {port} after {within:.0f}s")


async def wait_for_http(url: str, proc: ManagedProcess | None, within: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if proc is not None and not proc.alive():
                raise RuntimeError(f"{proc.name} exited at start:\n{proc.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer after {within:.0f}s")
