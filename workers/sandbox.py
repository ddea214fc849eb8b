"""The workflow sandbox the worker runs attempts in, with the workflows' helper modules passed through.

The sandbox re-executes every module a workflow file imports for each new run (issue 13's profile:
a third of the worker's busy samples). The helper modules below hold constants (activity names,
retry policies, search-attribute keys) and small deterministic functions; executing them once per
process is safe and saves about a tenth of a run's workflow CPU (measured by replaying a recorded
history: docs/benchmarks.md). The workflow files themselves (`pay_invoice` with its state and
shared rules in `attempt_session`, `ach_payment`, `reconciliation`) stay sandboxed: passing them through would save about a third more, but it would
also take away the sandbox's restriction checks (a stray `datetime.now()` or `random` in workflow
code) — not worth about 4 % of an attempt's CPU.
"""

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

HELPER_MODULES = (
    "workflows.activity_options",
    "workflows.attempt_audit",
    "workflows.attempt_refusals",
    "workflows.attempt_steps",
    "workflows.attempt_view",
    "workflows.debit_rounds",
    "workflows.lifecycle_options",
    "workflows.otp_progress",
    "workflows.payment_lifecycle_steps",
    "workflows.search_attributes",
    "workflows.waiting_for",
)

WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*HELPER_MODULES)
)
