"""`ProcessorReconciliationWorkflow`: the daily job of the `processor-reconciliation` Schedule, and
what `portalpay ops reconcile` runs now. One activity does the I/O; the workflow records the report."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.ach_payment import ReconcileInput, ReconcileReport
    from workflows import lifecycle_options as opts

SCHEDULE_ID = "processor-reconciliation"


@workflow.defn
class ProcessorReconciliationWorkflow:
    @workflow.run
    async def run(self, input: ReconcileInput) -> ReconcileReport:
        report: ReconcileReport = await workflow.execute_activity(
            opts.RECONCILE_PROCESSOR,
            input,
            result_type=ReconcileReport,
            start_to_close_timeout=opts.RECONCILE_TIMEOUT,
            heartbeat_timeout=opts.LIFECYCLE_TIMEOUT,
            retry_policy=opts.LIFECYCLE_RETRY,
            summary="deliver processor events a webhook missed; compare statuses",
        )
        workflow.set_current_details(
            f"delivered {len(report.delivered)} event(s); {len(report.mismatches)} mismatch(es)"
        )
        return report
