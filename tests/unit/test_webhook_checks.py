"""Webhook pieces without services: the address classifier, callback URL checks, signatures
(checked against the reference ``standardwebhooks`` library), the retry schedule and what the
sender puts on the wire for a pinned https request."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid

import httpx
import pytest
from snapshot_api.webhooks import signing, urls
from snapshot_api.webhooks.addresses import refusal
from snapshot_api.webhooks.delivery import RetryPolicy
from snapshot_api.webhooks.sender import Outcome, Sender, SenderConfig
from standardwebhooks import Webhook

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "private"),  # documentation (TEST-NET-1): special-purpose
    ("2001:db8::1", "private"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::127.0.0.1", "loopback"),  # IPv4-compatible
    ("::169.254.169.254", "metadata"),
    ("64:ff9b::7f00:1", "loopback"),  # NAT64
    ("2002:7f00:1::", "loopback"),  # 6to4
    ("2002:a9fe:a9fe::", "metadata"),
    ("fe80::1%eth0", "zone"),
]
PUBLIC = ["93.184.215.14", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "::ffff:1.1.1.1"]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    reason = refusal(ipaddress.ip_address(address))
    assert reason is not None and why in reason, (address, reason)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_allow_loopback_allows_loopback_only() -> None:
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert refusal(ipaddress.ip_address(address), allow_loopback=True) is None
    for address in ("10.0.0.1", "169.254.169.254", "0.0.0.0", "::ffff:192.168.0.1"):
        assert refusal(ipaddress.ip_address(address), allow_loopback=True) is not None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://hooks.example.com/", "http or https"),
        ("//hooks.example.com/x", "http or https"),
        ("http://a@127.0.0.1/", "user info"),
        ("http://hooks.example.com@127.0.0.1/", "user info"),
        ("http://user:pw@hooks.example.com/", "user info"),
        ("http:///path", "no host"),
        ("http://hooks.example.com:99999/", "not a valid URL"),
        ("http://hooks.example.com/#x", "fragment"),
        ("http://hooks.example.com/ x", "spaces"),
        ("http://hooks.example.com\\@127.0.0.1/", "backslash"),
        ("http://127.0.0.1/", "loopback"),
        ("HTTP://127.0.0.1/", "loopback"),
        ("http://127.0.0.1./", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://LOCALHOST./", "loopback"),
        ("http://api.localhost/", "loopback"),
        ("http://2130706433/", "unusual form"),
        ("http://0177.0.0.1/", "unusual form"),
        ("http://0x7f.0.0.1/", "unusual form"),
        ("http://0x7f000001/", "unusual form"),
        ("http://127.1/", "unusual form"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "metadata"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("https://" + "a" * 64 + ".example.com/", "not a valid domain"),
        ("https://hooks.example.com/" + "a" * 2048, "longer than"),
    ],
)
def test_bad_callback_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    with pytest.raises(urls.CallbackUrlError, match=message):
        urls.parse(url, (), allow_loopback=False)


def test_good_callback_urls_are_normalised() -> None:
    got = urls.parse("HTTPS://Hooks.Example.COM.:8443/in?x=1", (), allow_loopback=False)
    assert got.url == "https://hooks.example.com:8443/in?x=1"
    assert (got.scheme, got.host, got.port, got.ip) == ("https", "hooks.example.com", 8443, None)
    assert urls.parse("http://bücher.example/", (), False).host == "xn--bcher-kva.example"
    v6 = urls.parse("http://[2606:4700:4700::1111]/h", (), False)
    assert v6.url == "http://[2606:4700:4700::1111]/h" and v6.port == 80
    assert urls.parse("http://127.0.0.1:8080/h", (), allow_loopback=True).port == 8080


def test_the_allow_list_takes_names_and_subdomain_wildcards() -> None:
    allowed = ("hooks.example.com", "*.partner.example")
    assert urls.parse("https://hooks.example.com/", allowed, False)
    assert urls.parse("https://a.b.partner.example/", allowed, False)
    for url in (
        "https://example.com/",
        "https://evilhooks.example.com/",
        "https://partner.example/",
        "https://partner.example.evil.com/",
        "https://xpartner.example/",
    ):
        with pytest.raises(urls.CallbackUrlError, match="ALLOWED_HOSTS"):
            urls.parse(url, allowed, False)


def test_signatures_verify_with_the_reference_library() -> None:
    secret = signing.new_secret()
    assert len(secret) == 32
    encoded = signing.encode(secret)
    assert encoded.startswith("whsec_")
    body = b'{"type":"snapshot.completed","data":{"snapshot_id":"s"}}'
    msg_id, timestamp = str(uuid.uuid4()), int(dt.datetime.now(dt.UTC).timestamp())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.sign(secret, msg_id, timestamp, body),
    }
    assert Webhook(encoded).verify(body, headers)["type"] == "snapshot.completed"
    reference = Webhook(encoded).sign(msg_id, dt.datetime.fromtimestamp(timestamp), body.decode())
    assert headers["webhook-signature"] == reference


def test_retries_back_off_with_jitter_and_stop_at_the_limits() -> None:
    policy = RetryPolicy(max_attempts=5, retry_seconds=3600, backoff_seconds=10)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    failed = Outcome(False, 500, "HTTP 500")
    delays = []
    for attempt in range(1, 5):
        when = policy.next_attempt(attempt, start, start, failed)
        assert when is not None
        delays.append((when - start).total_seconds())
    for attempt, delay in enumerate(delays, start=1):
        base = 10 * 2 ** (attempt - 1)
        assert 0.8 * base <= delay <= 1.2 * base, delays
    assert policy.next_attempt(5, start, start, failed) is None  # max attempts
    late = start + dt.timedelta(seconds=3595)  # + at least 8 s: past the hour
    assert policy.next_attempt(1, start, late, failed) is None  # past RETRY_SECONDS
    refused = Outcome(False, error="refused: a loopback address", final=True)
    assert policy.next_attempt(1, start, start, refused) is None
    slow = Outcome(False, 503, "HTTP 503", retry_after=120)
    when = policy.next_attempt(1, start, start, slow)
    assert when is not None and (when - start).total_seconds() >= 120


async def test_an_https_request_goes_to_the_checked_address_with_the_name_for_tls() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example.com", 8443)
        return ["93.184.215.14"]

    sender = Sender(SenderConfig((), False, 5.0), resolver)
    sender.client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    secret = signing.new_secret()
    delivery = uuid.uuid4()
    outcome = await sender.send("https://Hooks.Example.com:8443/in", delivery, b"{}", secret)
    await sender.close()
    assert outcome == Outcome(True, 200)
    (request,) = seen
    assert str(request.url) == "https://93.184.215.14:8443/in"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.headers["webhook-id"] == str(delivery)
    assert Webhook(signing.encode(secret)).verify(b"{}", dict(request.headers)) == {}


async def test_a_name_resolving_to_any_refused_address_is_not_contacted() -> None:
    seen: list[httpx.Request] = []

    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]

    sender = Sender(SenderConfig((), False, 5.0), resolver)
    sender.client = httpx.AsyncClient(transport=httpx.MockTransport(seen.append))  # type: ignore[arg-type]
    outcome = await sender.send("https://hooks.example.com/", uuid.uuid4(), b"{}", b"k" * 32)
    await sender.close()
    assert outcome.final and not outcome.delivered and seen == []
    assert outcome.error == "refused: hooks.example.com resolves to a private address (10.0.0.7)"


def test_the_allowed_hosts_setting_is_read_as_lower_case_names() -> None:
    from snapshot_api.settings import Settings

    settings = Settings(
        env="development", webhook_allowed_hosts=" Hooks.Example.COM. , *.Partner.example ,"
    )
    assert settings.webhook_hosts == ("hooks.example.com", "*.partner.example")
    assert Settings(env="development").webhook_hosts == ()  # empty: any public host
    assert not Settings(env="development").webhook_allow_loopback
