"""Callback URL checks at request time (and again before each send): scheme, shape, host.

The resolved address is checked at send time (``sender.py``); here a URL is refused for what
its text alone shows: not http(s), user info (``http://a@127.0.0.1``), no host, a bad port, a
fragment, an IP literal that is not public, a number-shaped host that is not a plain dotted
quad (``2130706433``, ``0177.0.0.1``, ``0x7f.1``: resolvers read these as IP addresses), or a
host outside ``SNAPSHOT_API_WEBHOOK_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from snapshot_api.webhooks.addresses import IPAddress, refusal

MAX_URL_CHARS = 2048
SCHEMES = ("http", "https")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


class CallbackUrlError(ValueError):
    """The callback URL cannot be used; the message says why."""


@dataclass(frozen=True)
class CallbackUrl:
    url: str  # normalised: lower-case scheme and host
    scheme: str
    host: str  # lower case, no trailing dot, IDNA (ASCII)
    port: int
    ip: IPAddress | None  # when the host is an IP literal


def parse(url: str, allowed_hosts: tuple[str, ...], allow_loopback: bool) -> CallbackUrl:
    """The checked URL, or ``CallbackUrlError`` saying what is wrong with it."""
    if len(url) > MAX_URL_CHARS:
        raise CallbackUrlError(f"callback_url is longer than {MAX_URL_CHARS} characters")
    if _BAD_CHARS.search(url):
        raise CallbackUrlError("callback_url contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackUrlError(f"callback_url is not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise CallbackUrlError("callback_url must be an http or https URL")
    if "@" in parts.netloc:
        raise CallbackUrlError("callback_url must not contain user info (user@host)")
    if parts.fragment or url.endswith("#"):
        raise CallbackUrlError("callback_url must not contain a fragment (#...)")
    host = _host(parts.hostname or "")
    ip = _ip_literal(host, allow_loopback)
    if ip is None:
        _check_name(host, allow_loopback)
    if allowed_hosts and not allowed(host, allowed_hosts):
        raise CallbackUrlError(
            f"callback_url's host {host} is not in SNAPSHOT_API_WEBHOOK_ALLOWED_HOSTS"
        )
    port = port or (443 if scheme == "https" else 80)
    netloc = f"[{host}]" if ip is not None and ip.version == 6 else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    rest = parts.path or "/"
    if parts.query:
        rest += f"?{parts.query}"
    return CallbackUrl(f"{scheme}://{netloc}{rest}", scheme, host, port, ip)


def allowed(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    """``host`` equals an entry, or is below an entry written ``*.example.com``."""
    for entry in allowed_hosts:
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def _host(raw: str) -> str:
    host = raw.rstrip(".").lower()
    if not host:
        raise CallbackUrlError("callback_url has no host")
    if ":" in host:  # an IPv6 literal (urlsplit removed the brackets)
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise CallbackUrlError("callback_url's host is not a valid domain name") from exc


def _ip_literal(host: str, allow_loopback: bool) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
            raise CallbackUrlError(
                "callback_url's host looks like an IP address in an unusual form; write IPv4"
                " addresses as four decimal numbers (a.b.c.d)"
            ) from None
        return None
    why = refusal(ip, allow_loopback)
    if why:
        raise CallbackUrlError(f"callback_url points to {why}")
    return ip


def _check_name(host: str, allow_loopback: bool) -> None:
    if (host == "localhost" or host.endswith(".localhost")) and not allow_loopback:
        raise CallbackUrlError("callback_url points to a loopback address (localhost)")
    if len(host) > 253 or any(not 0 < len(label) < 64 for label in host.split(".")):
        raise CallbackUrlError("callback_url's host is not a valid domain name")
