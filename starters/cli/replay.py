"""`portalpay replay`: replay histories against the current workflow code (SPEC §7).

Histories come from a workflow id (every run), a visibility query, or JSON files (as written by
`WorkflowHistory.to_json()`, the Temporal CLI or the UI). They are decoded with the one data
converter and the configured CODEC_KEYS, exactly as a worker would.
"""

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import typer
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from infra.codec import KEY_ID_METADATA, AesGcmPayloadCodec
from infra.converter import build_data_converter
from infra.resources import ExpectedFailure
from infra.settings import Settings
from infra.temporal import connect
from starters.cli.plumbing import console, err_console, run_async, settings_or_exit
from workflows.ach_payment import AchPaymentWorkflow
from workflows.pay_invoice import PayInvoiceWorkflow
from workflows.reconciliation import ProcessorReconciliationWorkflow

WORKFLOW_TYPE = "PayInvoiceWorkflow"
# Every workflow a worker runs: the attempt, the payment follower (SPEC §9) and reconciliation.
ALL_WORKFLOWS: tuple[type, ...] = (PayInvoiceWorkflow, AchPaymentWorkflow, ProcessorReconciliationWorkflow)


@dataclass
class ReplayLine:
    label: str
    run_id: str | None
    events: int
    error: str | None = None
    nondeterministic: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def render(self) -> str:
        run = f" run {self.run_id}" if self.run_id else ""
        if self.ok:
            return f"ok    {self.label}{run} ({self.events} events)"
        kind = "non-deterministic" if self.nondeterministic else "failed"
        return f"FAIL  {self.label}{run}: {kind}: {self.error}"


@dataclass
class _Source:
    label: str
    history: WorkflowHistory | None = None
    error: str | None = None


def replayer(data_converter: DataConverter, workflows: Sequence[type] = ALL_WORKFLOWS) -> Replayer:
    # Core's "failing workflow task" warnings repeat what each result line already says.
    quiet = TelemetryConfig(
        logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")), metrics=None
    )
    return Replayer(workflows=workflows, data_converter=data_converter, runtime=Runtime(telemetry=quiet))


def missing_key_ids(history: WorkflowHistory, known: set[str]) -> set[str]:
    """Codec key ids the history was encrypted under that the key ring lacks."""
    missing: set[str] = set()

    def visit(message: Message) -> None:
        if isinstance(message, Payload):
            kid = message.metadata.get(KEY_ID_METADATA)
            if kid is not None and kid.decode(errors="replace") not in known:
                missing.add(kid.decode(errors="replace"))
            return
        for descriptor, value in message.ListFields():
            if descriptor.message_type is None:
                continue
            if isinstance(value, Message):
                items = [value]
            elif descriptor.message_type.GetOptions().map_entry:
                items = list(value.values())
            else:
                items = list(value)
            for item in items:
                if isinstance(item, Message):
                    visit(item)

    for event in history.events:
        visit(event)
    return missing


async def replay_sources(
    sources: AsyncIterator[_Source],
    data_converter: DataConverter,
    *,
    workflows: Sequence[type] = ALL_WORKFLOWS,
) -> list[ReplayLine]:
    """Replay each history; `workflows` differs from the default only in tests of the tool itself."""
    lines: list[ReplayLine] = []
    pending: dict[int, _Source] = {}
    codec = data_converter.payload_codec
    known = set(codec.key_ids) if isinstance(codec, AesGcmPayloadCodec) else None

    async def histories() -> AsyncIterator[WorkflowHistory]:
        seen_runs: set[str] = set()
        async for source in sources:
            if source.history is None:
                lines.append(ReplayLine(source.label, None, 0, error=source.error))
                continue
            run_id = _run_id(source.history)
            if run_id in seen_runs:
                continue  # the replayer keys runs by id; the same run twice proves nothing new
            seen_runs.add(run_id)
            missing = missing_key_ids(source.history, known) if known is not None else set()
            if missing:
                lines.append(
                    ReplayLine(
                        source.label,
                        run_id,
                        len(source.history.events),
                        error=f"encrypted under codec key(s) {', '.join(sorted(missing))} not in CODEC_KEYS",
                    )
                )
                continue
            pending[id(source.history)] = source
            yield source.history

    async with replayer(data_converter, workflows).workflow_replay_iterator(histories()) as results:
        async for result in results:
            source = pending.pop(id(result.history))
            failure = result.replay_failure
            lines.append(
                ReplayLine(
                    source.label,
                    _run_id(result.history),
                    len(result.history.events),
                    error=None if failure is None else _first_line(failure),
                    nondeterministic=isinstance(failure, NondeterminismError),
                )
            )
    return lines


def _run_id(history: WorkflowHistory) -> str:
    try:
        return history.run_id
    except RuntimeError:
        return "?"


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:400]


async def file_sources(paths: Iterable[Path]) -> AsyncIterator[_Source]:
    for path in paths:
        try:
            text = path.read_text()
            # The file names the history; the id only feeds workflow.info() during replay.
            yield _Source(str(path), WorkflowHistory.from_json(path.stem, text))
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            yield _Source(str(path), error=f"cannot read: {_first_line(exc)}")


async def workflow_id_sources(client: Client, workflow_id: str) -> AsyncIterator[_Source]:
    """Every run of the id that visibility knows, else (visibility lags) the latest run."""
    query = f"WorkflowId = '{_plain(workflow_id)}'"
    seen = False
    try:
        async for wf in client.list_workflows(query):
            seen = True
            history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
            yield _Source(wf.id, history)
        if not seen:
            yield _Source(workflow_id, await client.get_workflow_handle(workflow_id).fetch_history())
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise ExpectedFailure(f"no workflow {workflow_id}") from None
        raise ExpectedFailure(f"cannot fetch {workflow_id}: {err.message.splitlines()[0][:160]}") from None


async def query_sources(client: Client, query: str, limit: int) -> AsyncIterator[_Source]:
    # Only this workflow type is registered with the replayer; anything else would fail to replay.
    scoped = f"WorkflowType = '{WORKFLOW_TYPE}' AND ({query})"
    try:
        async for wf in client.list_workflows(scoped, limit=limit):
            history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
            yield _Source(wf.id, history)
    except RPCError as err:
        raise ExpectedFailure(f"visibility query failed: {err.message.splitlines()[0][:160]}") from None


async def _chain(*iterators: AsyncIterator[_Source]) -> AsyncIterator[_Source]:
    for iterator in iterators:
        async for item in iterator:
            yield item


def _plain(value: str) -> str:
    if "'" in value or "\\" in value:
        raise ExpectedFailure(f"{value!r} is not a valid workflow id")
    return value


async def run_replay(
    settings: Settings,
    files: Sequence[Path],
    workflow_id: str | None,
    query: str | None,
    limit: int,
    *,
    client: Client | None = None,
) -> list[ReplayLine]:
    converter = build_data_converter(settings.codec_key_ring())
    iterators: list[AsyncIterator[_Source]] = [file_sources(files)] if files else []
    if workflow_id or query:
        client = client or await connect(settings)
        if workflow_id:
            iterators.append(workflow_id_sources(client, workflow_id))
        if query:
            iterators.append(query_sources(client, query, limit))
    return await replay_sources(_chain(*iterators), converter)


def replay(
    files: list[Path] = typer.Argument(None, help="History JSON files (Temporal UI/CLI or to_json())."),
    workflow_id: str | None = typer.Option(None, "--workflow-id", help="Replay every run of this id."),
    query: str | None = typer.Option(
        None, "--query", help="Visibility query, e.g. \"PaymentStatus = 'PAID'\" (PayInvoiceWorkflow only)."
    ),
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many runs from --query."),
) -> None:
    """Replay histories against the current code; exit 1 on any non-determinism or failure."""

    if not files and not workflow_id and not query:
        err_console.print("[red]error:[/] give history files, --workflow-id or --query")
        raise typer.Exit(2)
    settings = settings_or_exit()
    lines = run_async(run_replay)(settings, list(files or []), workflow_id, query, limit)
    for line in lines:
        colour = "green" if line.ok else "red"
        console.print(line.render(), style=colour, markup=False, highlight=False, soft_wrap=True)
    failed = sum(not line.ok for line in lines)
    if not lines:
        err_console.print("[red]error:[/] no history matched")
        raise typer.Exit(1)
    console.print(f"{len(lines)} replayed, {failed} failed", highlight=False)
    if failed:
        raise typer.Exit(1)
