"""The SSRF table of SPEC §12: what a webhook URL may point at, checked with an injected resolver
(a name made to resolve to a metadata address, no /etc/hosts needed)."""

from ipaddress import ip_address

import pytest

from infra.webhook_address import (
    AddressRules,
    WebhookUrlRefused,
    check_webhook_url,
    parse_allowed_networks,
)

PROD = AddressRules(dev=False)
DEV = AddressRules(dev=True)
ON_PREMISES = AddressRules(dev=False, allowed_networks=parse_allowed_networks("10.0.0.0/8, 169.254.0.0/16"))

ANSWERS = {
    "hooks.example.com": ["93.184.216.34"],
    "metadata.example.com": ["169.254.169.254"],
    "rebind.example.com": ["93.184.216.34", "10.1.2.3"],
    "loop.example.com": ["127.0.0.1"],
    "v6meta.example.com": ["fd00:ec2::254"],
    "crm.internal": ["10.20.30.40"],
}


async def resolver(host: str, port: int) -> list[str]:
    if host not in ANSWERS:
        raise OSError("no such host")
    return ANSWERS[host]


REFUSED_EVERYWHERE_OUTSIDE_DEV = [
    "https://127.0.0.1/hook",
    "https://[::1]/hook",
    "https://0x7f000001/hook",
    "https://2130706433/hook",
    "https://0177.0.0.1/hook",
    "https://127.1/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::7f00:1]/hook",  # the deprecated IPv4-compatible form
    "https://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 around 169.254.169.254
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
    "https://[fd12::1]/hook",
    "https://loop.example.com/hook",
    "https://10.0.0.5/hook",
    "https://192.168.1.1/hook",
    "https://172.16.0.1/hook",
    "https://100.64.0.1/hook",
    "https://224.0.0.1/hook",
    "https://0.0.0.0/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://metadata.example.com/hook",
    "https://v6meta.example.com/hook",
    "https://rebind.example.com/hook",  # one internal answer is enough to refuse
    "https://[fe80::1]/hook",
    "http://hooks.example.com/hook",  # http outside dev
    "https://user:password@hooks.example.com/hook",
    "ftp://hooks.example.com/hook",
    "https://nowhere.invalid/hook",
    "https://hooks.example.com:99999/hook",
]


@pytest.mark.parametrize("url", REFUSED_EVERYWHERE_OUTSIDE_DEV)
async def test_outside_dev_internal_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(WebhookUrlRefused):
        await check_webhook_url(url, PROD, resolver)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.example.com/hook",
        "http://v6meta.example.com/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0:8000/hook",
        "http://10.0.0.5/hook",  # dev allows loopback, not the office network
    ],
)
async def test_dev_still_refuses_link_local_metadata_and_private(url: str) -> None:
    with pytest.raises(WebhookUrlRefused):
        await check_webhook_url(url, DEV, resolver)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1"),
        ("http://[::1]:8080/hook", "::1"),
        ("http://0x7f000001:8080/hook", "127.0.0.1"),
        ("http://loop.example.com:8080/hook", "127.0.0.1"),
        ("https://hooks.example.com/hook", "93.184.216.34"),
        ("https://[2002:5db8:d822::1]/hook", "2002:5db8:d822::1"),  # 6to4 around a public address
    ],
)
async def test_dev_allows_http_to_loopback(url: str, address: str) -> None:
    target = await check_webhook_url(url, DEV, resolver)
    assert target.address == ip_address(address)


async def test_a_public_name_is_pinned_to_the_address_checked() -> None:
    target = await check_webhook_url("https://hooks.example.com/in?x=1", PROD, resolver)
    assert target.connect_url == "https://93.184.216.34:443/in?x=1"
    assert target.host_header == "hooks.example.com"
    assert target.host == "hooks.example.com"  # the TLS server name


async def test_allowed_cidrs_admit_on_premises_receivers_but_never_metadata() -> None:
    target = await check_webhook_url("https://crm.internal:8443/hook", ON_PREMISES, resolver)
    assert target.address == ip_address("10.20.30.40")
    assert target.host_header == "crm.internal:8443"
    for url in ("https://metadata.example.com/hook", "https://169.254.1.1/hook"):
        with pytest.raises(WebhookUrlRefused):
            await check_webhook_url(url, ON_PREMISES, resolver)
    with pytest.raises(WebhookUrlRefused, match="https"):
        await check_webhook_url("http://crm.internal/hook", ON_PREMISES, resolver)
