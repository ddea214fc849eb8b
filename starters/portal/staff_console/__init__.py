"""The staff console (SPEC §10): server-rendered pages behind a staff sign-in."""

from fastapi import FastAPI, Request
from fastapi.responses import Response

from infra.settings import Settings
from starters.portal.staff_console import attention, customers, developers, imports, invoices, sign_in
from starters.portal.staff_console.web import PAGE_HEADERS, CsrfRefused, SignInRequired, redirect, templates


def install_staff_console(app: FastAPI, settings: Settings) -> None:
    for module in (sign_in, customers, invoices, attention, imports, developers):
        app.include_router(module.router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(_: Request, exc: SignInRequired) -> Response:
        return redirect("/staff/login")

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        response = templates.TemplateResponse(
            request,
            "staff/refused.html",
            {
                "staff": None,
                "csrf_token": None,
                "flash": None,
                "asset_version": "1",
                "company_name": settings.company_name,
            },
            status_code=403,
        )
        response.headers.update(PAGE_HEADERS)
        return response
