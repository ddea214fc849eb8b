"""SFTP to the company's bank (SPEC §13), with the bank's host key pinned: any other key is refused.

A file is written under a temporary name and renamed once complete, so the bank never picks up half
a file; a file already there under its final name with the same bytes counts as uploaded (a run
that crashed after the rename and before recording it). Every failure is `UploadFailed`: the
caller treats the file as not sent.
"""

import hashlib
import posixpath
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncssh

from infra.nacha.transfer_errors import SftpFailed, UploadFailed
from infra.nacha_config import SftpTarget

__all__ = ["RemoteFile", "SftpFailed", "UploadFailed", "bank_sftp", "list_returns", "upload"]

CONNECT_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class RemoteFile:
    name: str
    body: bytes


@asynccontextmanager
async def bank_sftp(target: SftpTarget) -> AsyncIterator[asyncssh.SFTPClient]:
    try:
        pinned = asyncssh.import_public_key(target.host_key)
        async with (
            asyncssh.connect(
                target.host,
                target.port,
                username=target.username,
                client_keys=[str(target.key_file)],
                # Only this key is trusted, and only its algorithm is offered, so the server must
                # show exactly it; no known_hosts file, no agent, no password.
                known_hosts=([pinned], [], []),
                server_host_key_algs=[pinned.get_algorithm()],
                agent_path=None,
                password=None,
                kbdint_auth=False,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
            ) as conn,
            conn.start_sftp_client() as sftp,
        ):
            yield sftp
    except (OSError, asyncssh.Error, asyncssh.KeyImportError) as exc:
        raise SftpFailed(_reason(exc)) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return "the server's host key is not NACHA_SFTP_HOST_KEY: refused"
    if isinstance(exc, asyncssh.PermissionDenied):
        return "the server refused our key (NACHA_SFTP_KEY_FILE)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


async def upload(target: SftpTarget, name: str, body: bytes) -> None:
    final = posixpath.join(target.folder, name)
    temp = posixpath.join(target.folder, f".{name}.part")
    try:
        async with bank_sftp(target) as sftp:
            if await _already_there(sftp, final, body):
                return
            async with sftp.open(temp, "wb") as remote:
                await remote.write(body)
            if await sftp.exists(final):
                await sftp.remove(final)  # ours, from a run that wrote other bytes under the name
            await sftp.rename(temp, final)
    except SftpFailed as exc:
        raise UploadFailed(str(exc)) from None
    except (OSError, asyncssh.Error) as exc:
        raise UploadFailed(_reason(exc)) from None


async def _already_there(sftp: asyncssh.SFTPClient, path: str, body: bytes) -> bool:
    if not await sftp.exists(path):
        return False
    async with sftp.open(path, "rb") as remote:
        found = await remote.read()
    data = found.encode() if isinstance(found, str) else found
    return hashlib.sha256(data).digest() == hashlib.sha256(body).digest()


async def list_returns(target: SftpTarget, *, known: Collection[tuple[str, int]] = ()) -> list[RemoteFile]:
    """The regular files in NACHA_RETURNS_FOLDER, except those `known` by name and size (already
    ingested: not downloaded again; the caller still skips any other copy by its sha256)."""
    found: list[RemoteFile] = []
    try:
        async with bank_sftp(target) as sftp:
            for entry in await sftp.readdir(target.returns_folder):
                name = str(entry.filename)
                if name.startswith(".") or entry.attrs.type != asyncssh.FILEXFER_TYPE_REGULAR:
                    continue
                if (name, entry.attrs.size) in known:
                    continue
                async with sftp.open(posixpath.join(target.returns_folder, name), "rb") as remote:
                    data = await remote.read()
                found.append(RemoteFile(name, data.encode() if isinstance(data, str) else data))
    except SftpFailed:
        raise
    except (OSError, asyncssh.Error) as exc:
        raise SftpFailed(_reason(exc)) from None
    return found
