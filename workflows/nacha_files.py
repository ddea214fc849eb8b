"""The NACHA jobs (SPEC §13), each a workflow so a Schedule runs it and a restart loses nothing.

`NachaOriginationWorkflow` (Schedule `nacha-origination`, before each cut-off; and
`portalpay nacha send-now`): one activity writes, checks, stores and uploads one file of the due
entries. A failed upload leaves the file unsent; the scheduled run tries again every few minutes
until it is uploaded (the activity tells staff once it has failed for 30 minutes); `send-now` tries
once and reports. `NachaInboundWorkflow` (Schedule `nacha-inbound`, every 15 minutes): reads the
bank's new files, applies returns and notices, settles entries whose quiet days have passed.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.ach_files import InboundInput, InboundReport, OriginationInput, OriginationReport

ORIGINATION_SCHEDULE_ID = "nacha-origination"
INBOUND_SCHEDULE_ID = "nacha-inbound"
ORIGINATE_NACHA_FILE = "originate_nacha_file"
INGEST_NACHA_INBOUND = "ingest_nacha_inbound"

UPLOAD_RETRY_EVERY = timedelta(minutes=5)
# About four hours of tries per run keeps its history short; the next scheduled run goes on.
MAX_UPLOAD_TRIES = 48
NACHA_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=10,
)
NACHA_TIMEOUT = timedelta(minutes=5)


@workflow.defn
class NachaOriginationWorkflow:
    @workflow.run
    async def run(self, input: OriginationInput) -> OriginationReport:
        tries = 0
        first: OriginationReport | None = None
        while True:
            tries += 1
            report: OriginationReport = await workflow.execute_activity(
                ORIGINATE_NACHA_FILE,
                input,
                result_type=OriginationReport,
                start_to_close_timeout=NACHA_TIMEOUT,
                retry_policy=NACHA_RETRY,
                summary="write, check, store and upload the NACHA file of the due entries",
            )
            if report.uploaded:
                workflow.set_current_details(f"uploaded {report.file_name}: {report.entries} entries")
                if first is None:
                    first = report
                elif report.file_name:
                    first.more_files.append(report.file_name)
                    first.error = None
                if report.reused_unsent_file:
                    continue  # that file was written before: what came due since goes in the next one
                return first
            if report.error is None:
                workflow.set_current_details("no entries due")
                return first or report
            if first is not None:
                first.error = report.error  # an earlier file went; this one is still to go
            workflow.set_current_details(
                f"{report.file_name} not uploaded ({report.error}); trying again every"
                f" {int(UPLOAD_RETRY_EVERY.total_seconds() // 60)} minutes"
            )
            if not input.retry_until_sent or tries >= MAX_UPLOAD_TRIES:
                return first or report
            await workflow.sleep(UPLOAD_RETRY_EVERY)


@workflow.defn
class NachaInboundWorkflow:
    @workflow.run
    async def run(self, input: InboundInput) -> InboundReport:
        report: InboundReport = await workflow.execute_activity(
            INGEST_NACHA_INBOUND,
            input,
            result_type=InboundReport,
            start_to_close_timeout=NACHA_TIMEOUT,
            retry_policy=NACHA_RETRY,
            summary="read the bank's returns and notices of change; settle quiet entries",
        )
        workflow.set_current_details(
            f"{len(report.files)} new file(s), {report.settled} settled"
            + (f"; {report.error}" if report.error else "")
        )
        return report
