"""Sending one signed webhook attempt, to an address checked at send time and pinned.

The host is resolved once; every address it resolves to must be public (``addresses.py``), and
the request then connects to the checked address itself, so a second resolution (DNS
rebinding) cannot send it elsewhere. The URL keeps its name where it matters: the ``Host``
header and, for https, the TLS SNI and certificate check (httpcore's ``sni_hostname``
extension). Redirects are not followed, proxies from the environment are not used, and each
attempt opens its own connection (a pooled connection keyed by IP could carry another host's
TLS session).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

import httpx

from snapshot_api.settings import Settings
from snapshot_api.webhooks import signing, urls
from snapshot_api.webhooks.addresses import IPAddress, refusal

USER_AGENT = "room-snapshots-webhooks/1"
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to; ``final`` outcomes are not retried."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None
    final: bool = False
    retry_after: float | None = None


class Refused(Exception):
    """The callback URL or the address it resolves to may not receive webhooks."""


@dataclass(frozen=True)
class SenderConfig:
    allowed_hosts: tuple[str, ...]
    allow_loopback: bool
    timeout: float

    @classmethod
    def of(cls, settings: Settings) -> SenderConfig:
        s = settings
        return cls(s.webhook_hosts, s.webhook_allow_loopback, s.webhook_timeout_seconds)


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (as text, IPv6 zones kept)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Sender:
    """One httpx client per API worker (opened in the lifespan, closed at shutdown).
    ``resolver`` is the one place a host name becomes addresses (tests substitute it)."""

    def __init__(
        self,
        config: SenderConfig,
        resolver: Resolver = system_resolver,
        verify: ssl.SSLContext | bool = True,  # tests: a context that trusts their own CA
    ) -> None:
        self.config = config
        self.resolver = resolver
        self.client = httpx.AsyncClient(
            verify=verify,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(config.timeout),
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def send(self, url: str, delivery_id: UUID, body: bytes, secret: bytes) -> Outcome:
        try:
            target = urls.parse(url, self.config.allowed_hosts, self.config.allow_loopback)
            ip = await self.resolve(target)
        except (urls.CallbackUrlError, Refused) as exc:
            return Outcome(False, error=f"refused: {exc}", final=True)
        except (OSError, TimeoutError) as exc:
            return Outcome(False, error=f"cannot resolve the host: {exc}"[:MAX_ERROR_CHARS])
        msg_id = str(delivery_id)
        timestamp = int(time.time())
        headers = {
            "Host": _host_header(target),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signing.sign(secret, msg_id, timestamp, body),
        }
        pinned = httpx.URL(target.url).copy_with(host=str(ip))
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            async with asyncio.timeout(self.config.timeout):
                return await self._post(pinned, headers, body, extensions)
        except TimeoutError:
            return Outcome(False, error=f"no answer within {self.config.timeout:g}s")
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])

    async def _post(
        self, url: httpx.URL, headers: dict[str, str], body: bytes, extensions: dict[str, str]
    ) -> Outcome:
        request = self.client.build_request(
            "POST", url, headers=headers, content=body, extensions=extensions
        )
        response = await self.client.send(request, stream=True)  # the body is never read
        await response.aclose()
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(True, code)
        if code == 410:
            return Outcome(False, code, "the receiver answered 410 Gone", final=True)
        if 300 <= code < 400:
            return Outcome(False, code, "redirects are not followed; update the callback_url")
        return Outcome(False, code, f"HTTP {code}", retry_after=_retry_after(response))

    async def resolve(self, target: urls.CallbackUrl) -> IPAddress:
        """The address to connect to: the literal, or the first of the host's addresses,
        all of which must be allowed."""
        if target.ip is not None:
            return target.ip
        async with asyncio.timeout(self.config.timeout):
            addresses = await self.resolver(target.host, target.port)
        found: list[IPAddress] = []
        for address in addresses:
            ip = ipaddress.ip_address(address)  # keeps an IPv6 zone, which refusal() turns down
            why = refusal(ip, self.config.allow_loopback)
            if why:
                raise Refused(f"{target.host} resolves to {why} ({ip})")
            found.append(ip)
        if not found:
            raise OSError(f"{target.host} has no address")
        return found[0]


def _host_header(target: urls.CallbackUrl) -> str:
    host = f"[{target.host}]" if target.ip is not None and target.ip.version == 6 else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None
