"""`/staff/import` (SPEC §12): upload a CSV, preview what it would do with the row errors, then
`Import`. The same service as `portalpay import`, so the rules are the API's. And the CSV
downloads, in the import's own format, with every formula-looking cell neutralised.
"""

import csv
import io
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from domain.company_records import neutralise_formula
from starters.portal.deps import Deps
from starters.portal.staff.console.web import PAGE_HEADERS, Staff, render, require_csrf, staff_context
from starters.record_import import HEADERS, ImportKind, ImportRefused, report_json, run_import
from starters.staff_changes.actions import staff_services

router = APIRouter(include_in_schema=False)

# An upload (and its copy in the preview's form) may be this large; the rest of the portal keeps
# MAX_REQUEST_BYTES. Ten thousand invoice rows are about 1 MiB.
IMPORT_PATH = "/staff/import"
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
_EXPORT_LIMIT = 100_000


async def _page(request: Request, staff: Any, **context: Any) -> HTMLResponse:
    defaults: dict[str, Any] = {
        "kinds": [k.value for k in ImportKind],
        "kind": "customers",
        "report": None,
        "error": None,
        "csv_text": None,
    }
    return await render(
        request,
        "staff/import.html",
        {**defaults, **context},
        staff=staff,
        status_code=400 if context.get("error") else 200,
    )


@router.get(IMPORT_PATH, response_class=HTMLResponse)
async def import_page(request: Request, staff: Staff) -> HTMLResponse:
    return await _page(request, staff)


@router.post(IMPORT_PATH, response_class=HTMLResponse)
async def import_upload(request: Request, staff: Staff) -> HTMLResponse:
    form = await request.form(max_part_size=MAX_UPLOAD_BYTES)
    require_csrf(staff, form)
    kind_text = form.get("kind")
    if kind_text not in [k.value for k in ImportKind]:
        return await _page(
            request, staff, error="Choose what the file holds: customers, contacts or invoices."
        )
    kind = ImportKind(str(kind_text))
    commit = form.get("action") == "import"
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read()
    elif isinstance(form.get("csv_text"), str) and form.get("csv_text"):
        # The previewed file, sent back by the `Import` button.
        data = str(form.get("csv_text")).encode("utf-8")
    else:
        return await _page(request, staff, kind=kind.value, error="Choose a CSV file to upload.")
    try:
        report = await run_import(
            staff_services(request), kind, data, commit=commit, client=staff_context(request, staff)
        )
    except ImportRefused as exc:
        return await _page(request, staff, kind=kind.value, error=f"The file cannot be imported: {exc}.")
    csv_text = None if commit else data.decode("utf-8-sig")
    return await _page(request, staff, kind=kind.value, report=report_json(report), csv_text=csv_text)


_EXPORTS = {
    ImportKind.CUSTOMERS: "SELECT external_id, name FROM customers ORDER BY created_at, id LIMIT $1",
    ImportKind.CONTACTS: (
        "SELECT ct.external_id, c.external_id AS customer_external_id, ct.name, ct.email, ct.phone,"
        " ct.is_primary AS primary, ct.portal_payer FROM contacts ct JOIN customers c ON c.id = ct.customer_id"
        " ORDER BY c.created_at, c.id, ct.id LIMIT $1"
    ),
    ImportKind.INVOICES: (
        "SELECT i.external_id, c.external_id AS customer_external_id, i.number, i.kind,"
        " to_char(i.amount_cents / 100.0, 'FM9999999990.00') AS amount, i.currency, i.due_date"
        " FROM invoices i JOIN customers c ON c.id = i.customer_id ORDER BY i.created_at, i.id LIMIT $1"
    ),
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return neutralise_formula(str(value))


@router.get(IMPORT_PATH + "/export/{kind}.csv")
async def export_csv(kind: ImportKind, deps: Deps, staff: Staff) -> Response:
    """What PortalPay holds, in the import's columns; text a spreadsheet would run is neutralised."""
    rows = await deps.pool.fetch(_EXPORTS[kind], _EXPORT_LIMIT)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADERS[kind])
    for row in rows:
        writer.writerow([_cell(row[column]) for column in HEADERS[kind]])
    headers = {**PAGE_HEADERS, "Content-Disposition": f'attachment; filename="portalpay-{kind.value}.csv"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
