"""`PUT /api/v1/customers/{external_id}` and its contacts (SPEC §12): 201 created, 200 otherwise.

A contact's email, phone, primary or payer mark changes exactly as a console change does (SPEC §11),
through the shared service.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from domain.api_scopes import CUSTOMERS_WRITE
from domain.company_records import RecordFieldError, checked_contact, checked_customer
from infra.stores import company_records as records
from starters.company_records import RecordRefused, upsert_contact, upsert_customer
from starters.portal.api_v1.auth import ApiKeyPrincipal, api_client_context, require_scope
from starters.portal.api_v1.errors import API_ERROR_RESPONSES, ApiError
from starters.portal.api_v1.schemas import ContactBody, CustomerBody, ExternalId
from starters.staff_changes.actions import staff_services

router = APIRouter(prefix="/api/v1", tags=["api v1"], responses=API_ERROR_RESPONSES)
CustomersWriter = Annotated[ApiKeyPrincipal, Depends(require_scope(CUSTOMERS_WRITE))]


def refused(exc: RecordRefused | RecordFieldError) -> ApiError:
    if isinstance(exc, RecordFieldError):
        return ApiError(422, "InvalidInput", exc.message, param=exc.field)
    return ApiError(exc.http_status, exc.error, exc.message, param=exc.field)


def answer(status: str, obj: dict[str, object]) -> JSONResponse:
    return JSONResponse(jsonable_encoder(obj), status_code=201 if status == "created" else 200)


@router.put("/customers/{external_id}", summary="Create or update a customer by the company's id")
async def put_customer(
    external_id: ExternalId, body: CustomerBody, request: Request, principal: CustomersWriter
) -> JSONResponse:
    services = staff_services(request)
    try:
        result = await upsert_customer(
            services, checked_customer(external_id, body.name), api_client_context(request, principal)
        )
    except (RecordRefused, RecordFieldError) as exc:
        raise refused(exc) from None
    row = await records.customer_by_external(services.pool, external_id)
    assert row is not None
    return answer(result.status, records.customer_object(row))


@router.put(
    "/customers/{customer_external_id}/contacts/{external_id}",
    summary="Create or update a contact; a payer or address change follows SPEC §11",
)
async def put_contact(
    customer_external_id: ExternalId,
    external_id: ExternalId,
    body: ContactBody,
    request: Request,
    principal: CustomersWriter,
) -> JSONResponse:
    services = staff_services(request)
    details: dict[str, str | None] = {
        name: getattr(body, name) for name in ("email", "phone") if name in body.model_fields_set
    }
    try:
        fields = checked_contact(
            customer_external_id, external_id, body.name, details, body.primary, body.portal_payer
        )
        result = await upsert_contact(
            services, fields, api_client_context(request, principal), customer_in_path=True
        )
    except (RecordRefused, RecordFieldError) as exc:
        raise refused(exc) from None
    assert result.id is not None
    row = await records.contact_by_id(services.pool, result.id)
    assert row is not None
    obj = records.contact_object(row, masked=False)  # the company's own data, to the company
    if result.problems:
        obj["problems"] = result.problems
    return answer(result.status, obj)
