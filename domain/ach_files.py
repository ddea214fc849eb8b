"""What the NACHA jobs report (SPEC §13): the origination run (one file of the due entries, uploaded
or not) and the inbound run (the bank's files read, returns and notices applied, entries settled).
Workflow inputs and results: pure data, no account number."""

from pydantic import BaseModel, Field


class OriginationInput(BaseModel):
    # The Schedule's run keeps trying a failed upload until the file is sent; `send-now` tries once
    # and reports, so the person at the terminal hears at once.
    retry_until_sent: bool = True


class OriginationReport(BaseModel):
    file_name: str | None = None
    entries: int = 0
    prenotes: int = 0
    debit_total_cents: int = 0
    uploaded: bool = False
    reused_unsent_file: bool = False  # a file written earlier that had not been uploaded
    error: str | None = None
    upload_attempts: int = 0
    staff_told: bool = False
    # After an earlier unsent file went out, the entries that came due meanwhile go in the same run.
    more_files: list[str] = Field(default_factory=list)

    @property
    def nothing_due(self) -> bool:
        return self.file_name is None and self.error is None


class InboundInput(BaseModel):
    pass


class IngestProblem(BaseModel):
    line: int | None = None
    message: str


class IngestReport(BaseModel):
    name: str
    sha256: str
    already_ingested: bool = False
    returns: int = 0
    notices: int = 0
    unknown_traces: list[str] = Field(default_factory=list)
    problems: list[IngestProblem] = Field(default_factory=list)
    events_delivered: int = 0


class InboundReport(BaseModel):
    files: list[IngestReport] = Field(default_factory=list)
    settled: int = 0
    error: str | None = None
