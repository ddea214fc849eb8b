"""SPEC §12 `/staff/import`: upload, preview with the row errors, `Import`; CSRF like every console
form; CSV downloads in the import's format with formula cells neutralised."""

import csv
import io
import uuid

from tests.console.support import console_client, csrf_of, make_staff, signed_in
from tests.portal.conftest import Portal


async def test_upload_preview_then_import_and_download(portal: Portal) -> None:
    t = uuid.uuid4().hex[:8]
    creds = await make_staff(portal.pool)
    body = (
        f"external_id,name\nW-{t}-1,Acme\nW-{t}-2,=SUM(A1:A9)\nW-{t} 3,Bad Id\n@W-{t}-4,+cmd|' /C calc'!A0\n"
    )
    async with console_client(portal.app) as http:
        csrf = await signed_in(http, creds)
        page = await http.get("/staff/import")
        assert page.status_code == 200 and 'name="csrf_token"' in page.text and "Import" in page.text

        refused = await http.post(
            "/staff/import",
            data={"kind": "customers", "action": "preview", "csrf_token": "wrong"},
            files={"file": ("c.csv", body.encode(), "text/csv")},
        )
        assert refused.status_code == 403

        preview = await http.post(
            "/staff/import",
            data={"kind": "customers", "action": "preview", "csrf_token": csrf},
            files={"file": ("c.csv", body.encode(), "text/csv")},
        )
        assert preview.status_code == 200, preview.text
        assert "3 would be created" in " ".join(preview.text.split()) and "1 failed" in preview.text
        assert "<td>4</td><td>external_id</td>" in preview.text.replace("\n", "")
        assert (
            await portal.pool.fetchval(
                "SELECT count(*) FROM customers WHERE external_id LIKE $1", f"%W-{t}-%"
            )
            == 0
        )

        done = await http.post(
            "/staff/import",
            data={
                "kind": "customers",
                "action": "import",
                "csrf_token": csrf_of(preview.text),
                "csv_text": body,
            },
        )
        assert done.status_code == 200 and "Imported" in done.text, done.text
        names = await portal.pool.fetch(
            "SELECT external_id, name FROM customers WHERE external_id LIKE $1 ORDER BY external_id",
            f"%W-{t}-%",
        )
        assert [r["name"] for r in names] == ["+cmd|' /C calc'!A0", "Acme", "=SUM(A1:A9)"]
        audit = await portal.pool.fetchrow(
            "SELECT actor FROM audit_events WHERE event_type = 'CUSTOMER_CHANGED' AND details->>'external_id' = $1",
            f"W-{t}-1",
        )
        assert audit is not None and audit["actor"] == creds.email

        export = await http.get("/staff/import/export/customers.csv")
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        rows = {r["external_id"]: r["name"] for r in csv.DictReader(io.StringIO(export.text))}
        assert rows[f"W-{t}-1"] == "Acme"
        assert rows[f"W-{t}-2"] == "'=SUM(A1:A9)"
        assert rows[f"'@W-{t}-4"] == "'+cmd|' /C calc'!A0"
        for cell in (c for r in csv.reader(io.StringIO(export.text)) for c in r):
            assert not cell.startswith(("=", "+", "-", "@")), cell

    async with console_client(portal.app) as anonymous:
        r = await anonymous.get("/staff/import/export/customers.csv")
        assert r.status_code in (303, 401) and "W-" not in r.text


async def test_the_developers_page_lists_keys_by_prefix_only(portal: Portal) -> None:
    from infra.stores import api_keys

    issued = await api_keys.create_key(
        portal.pool,
        pepper=portal.harness.settings.secret("api_key_pepper").encode(),
        name=f"CRM {uuid.uuid4().hex[:6]}",
        scopes=("events:read",),
        mode="test",
    )
    creds = await make_staff(portal.pool)
    async with console_client(portal.app) as http:
        await signed_in(http, creds)
        page = await http.get("/staff/developers")
        assert page.status_code == 200
        assert issued.record.name in page.text and issued.record.prefix in page.text
        assert issued.secret not in page.text and issued.secret[len(issued.record.prefix) :] not in page.text
    async with console_client(portal.app) as anonymous:
        r = await anonymous.get("/staff/developers")
        assert r.status_code == 303 and issued.record.name not in r.text
