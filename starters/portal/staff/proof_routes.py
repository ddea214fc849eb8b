"""Proof of authorization downloads (SPEC §9): a PDF for signed-in staff, JSON for the staff API.

Every export is audited `PROOF_EXPORTED` with the actor: the staff member's email, or `api` for the
bearer token (no header chooses it). An unknown payment is a 404 and audits nothing.
"""

import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from domain.proof import ProofOfAuthorization
from infra.proof_pdf import render_proof_pdf
from infra.stores.proofs import export_proof
from starters.portal.auth import require_staff
from starters.portal.deps import Deps, client_context
from starters.portal.errors import ERROR_RESPONSES, PortalError
from starters.portal.path_ids import PathId
from starters.portal.staff.api import API_ACTOR
from starters.portal.staff.console.web import PAGE_HEADERS, PlainId, Staff, not_found, staff_context

api_router = APIRouter(
    prefix="/api/staff",
    tags=["staff"],
    dependencies=[Depends(require_staff)],
    responses={k: v for k, v in ERROR_RESPONSES.items() if k in (401, 404, 422)},
)
console_router = APIRouter(include_in_schema=False)

PaymentId = PathId


@api_router.get(
    "/payments/{payment_id}/proof",
    summary="Proof of authorization for one payment (audited PROOF_EXPORTED, actor api)",
)
async def proof_json(payment_id: PaymentId, request: Request, deps: Deps) -> ProofOfAuthorization:
    document = await export_proof(
        deps.pool,
        payment_id,
        client_context(request, actor=API_ACTOR),
        formats=["json"],
        chain_key=deps.audit_key,
    )
    if document is None:
        raise PortalError(404, "PaymentNotFound", "No payment has this id.")
    return document


def _filename(payment_id: str) -> str:
    return "proof-" + re.sub(r"[^A-Za-z0-9_-]", "_", payment_id) + ".pdf"


@console_router.get("/staff/payments/{payment_id}/proof.pdf", response_model=None)
async def proof_pdf(
    request: Request, deps: Deps, staff: Staff, payment_id: PlainId
) -> Response | HTMLResponse:
    document = await export_proof(
        deps.pool, payment_id, staff_context(request, staff), formats=["pdf"], chain_key=deps.audit_key
    )
    if document is None:
        return await not_found(request, staff, "payment", payment_id)
    headers = dict(PAGE_HEADERS)
    headers["Content-Disposition"] = f'attachment; filename="{_filename(payment_id)}"'
    return Response(render_proof_pdf(document), media_type="application/pdf", headers=headers)
