"""The NACHA_* settings (SPEC §13), checked at start-up when PROCESSOR=nacha: each problem is one line
naming the setting, so a person fixes the bank's values before a file is ever written."""

import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.nacha.model import Originator
from domain.nacha.writer import originator_problems
from domain.routing import is_valid_aba_routing


class NachaSettingsError(ValueError):
    """One line for a person: which NACHA_* setting is wrong and what it must look like."""


@dataclass(frozen=True)
class SftpTarget:
    host: str
    port: int
    username: str
    folder: str  # where files to the bank go
    returns_folder: str  # where the bank's returns and notices of change arrive
    key_file: Path
    host_key: str  # one OpenSSH line: the only host key accepted


@dataclass(frozen=True)
class NachaConfig:
    immediate_destination: str
    immediate_origin: str
    destination_name: str
    origin_name: str
    company_name: str
    company_id: str
    odfi_id: str
    entry_description: str
    cutoff: time
    cutoff_zone: ZoneInfo
    sftp: SftpTarget
    prenote_wait_days: int
    settle_after_banking_days: int

    def originator(self) -> Originator:
        """Who the files are from and to, as the NACHA writer takes it."""
        return Originator(
            immediate_destination=self.immediate_destination,
            immediate_origin=self.immediate_origin,
            destination_name=self.destination_name,
            origin_name=self.origin_name,
            company_name=self.company_name,
            company_id=self.company_id,
            odfi_id=self.odfi_id,
            entry_description=self.entry_description,
        )


_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")


def _text(name: str, value: str | None, *, max_len: int, exact: bool = False) -> str:
    if value is None or not value.strip():
        raise NachaSettingsError(f"{name} is required when PROCESSOR=nacha")
    if not _PRINTABLE.match(value):
        raise NachaSettingsError(f"{name} must be plain ASCII letters, digits and spaces")
    if exact and len(value) != max_len:
        raise NachaSettingsError(f"{name} must be exactly {max_len} characters (it has {len(value)})")
    if len(value) > max_len:
        raise NachaSettingsError(f"{name} must be at most {max_len} characters (it has {len(value)})")
    return value


def _digits(name: str, value: str | None, length: int) -> str:
    if value is None or not re.fullmatch(rf"[0-9]{{{length}}}", value):
        raise NachaSettingsError(f"{name} must be exactly {length} digits")
    return value


def parse_cutoff(value: str) -> tuple[time, ZoneInfo]:
    """`15:00 America/Chicago`: the bank's cut-off in the bank's own time zone."""
    match = re.fullmatch(r"\s*([0-2]?[0-9]):([0-5][0-9])\s+(\S+)\s*", value or "")
    if match is None or int(match.group(1)) > 23:
        raise NachaSettingsError("NACHA_CUTOFF must look like '15:00 America/Chicago'")
    try:
        zone = ZoneInfo(match.group(3))
    except (ZoneInfoNotFoundError, ValueError):
        raise NachaSettingsError(f"NACHA_CUTOFF names an unknown time zone {match.group(3)!r}") from None
    return time(int(match.group(1)), int(match.group(2))), zone


def parse_sftp(url: str | None, key_file: str | None, host_key: str | None, returns: str) -> SftpTarget:
    import asyncssh  # only with PROCESSOR=nacha: the worker's cold start does not pay for it

    if not url:
        raise NachaSettingsError(
            "NACHA_SFTP_URL is required when PROCESSOR=nacha (sftp://user@host:port/folder)"
        )
    parts = urlsplit(url)
    try:
        port = parts.port or 22
    except ValueError:
        raise NachaSettingsError("NACHA_SFTP_URL has a port that is not a number") from None
    if parts.scheme != "sftp" or not parts.hostname or not parts.username:
        raise NachaSettingsError("NACHA_SFTP_URL must look like sftp://user@host:port/outbound-folder")
    if parts.password:
        raise NachaSettingsError("NACHA_SFTP_URL must not hold a password: use NACHA_SFTP_KEY_FILE")
    if not key_file:
        raise NachaSettingsError("NACHA_SFTP_KEY_FILE is required when PROCESSOR=nacha")
    path = Path(key_file)
    try:
        asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError, ValueError) as exc:
        reason = "cannot be read" if isinstance(exc, OSError) else "is not an unencrypted OpenSSH private key"
        raise NachaSettingsError(f"NACHA_SFTP_KEY_FILE {reason}: {path}") from None
    if not host_key or not host_key.strip():
        raise NachaSettingsError("NACHA_SFTP_HOST_KEY is required when PROCESSOR=nacha (ssh-ed25519 AAAA…)")
    try:
        asyncssh.import_public_key(host_key.strip())
    except (asyncssh.KeyImportError, ValueError):
        raise NachaSettingsError(
            "NACHA_SFTP_HOST_KEY must be the server's public key as one OpenSSH line (ssh-ed25519 AAAA…)"
        ) from None
    if not returns.startswith("/"):
        raise NachaSettingsError("NACHA_RETURNS_FOLDER must be an absolute path on the SFTP server")
    return SftpTarget(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username),
        folder=unquote(parts.path) or "/",
        returns_folder=returns,
        key_file=path,
        host_key=host_key.strip(),
    )


def parse_nacha_config(
    *,
    immediate_destination: str | None,
    immediate_origin: str | None,
    destination_name: str | None,
    origin_name: str | None,
    company_name: str | None,
    company_id: str | None,
    odfi_id: str | None,
    entry_description: str,
    cutoff: str,
    sftp_url: str | None,
    sftp_key_file: str | None,
    sftp_host_key: str | None,
    returns_folder: str,
    prenote_wait_days: int,
    settle_after_banking_days: int,
) -> NachaConfig:
    destination = _digits("NACHA_IMMEDIATE_DESTINATION", immediate_destination, 9)
    if not is_valid_aba_routing(destination):
        raise NachaSettingsError("NACHA_IMMEDIATE_DESTINATION fails the ABA routing check digit")
    cutoff_time, zone = parse_cutoff(cutoff)
    config = NachaConfig(
        immediate_destination=destination,
        immediate_origin=_text("NACHA_IMMEDIATE_ORIGIN", immediate_origin, max_len=10, exact=True),
        destination_name=_text("NACHA_DESTINATION_NAME", destination_name, max_len=23),
        origin_name=_text("NACHA_ORIGIN_NAME", origin_name, max_len=23),
        company_name=_text("NACHA_COMPANY_NAME", company_name, max_len=16),
        company_id=_text("NACHA_COMPANY_ID", company_id, max_len=10, exact=True),
        odfi_id=_digits("NACHA_ODFI_ID", odfi_id, 8),
        entry_description=_text("NACHA_ENTRY_DESCRIPTION", entry_description, max_len=10),
        cutoff=cutoff_time,
        cutoff_zone=zone,
        sftp=parse_sftp(sftp_url, sftp_key_file, sftp_host_key, returns_folder),
        prenote_wait_days=prenote_wait_days,
        settle_after_banking_days=settle_after_banking_days,
    )
    # The writer's own rules for these values, so a file can never be refused at the cut-off.
    problems = originator_problems(config.originator())
    if problems:
        raise NachaSettingsError(problems[0])
    return config
