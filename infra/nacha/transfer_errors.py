"""Failures of the transfer to and from the bank's SFTP server, importable without asyncssh."""


class SftpFailed(Exception):
    """The bank's server could not be reached, refused us, or showed another host key."""


class UploadFailed(SftpFailed):
    """The file is not on the bank's server: its entries are not sent."""
