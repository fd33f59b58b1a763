import pytest

from b24app.bitrix.endpoints import EndpointGuard
from b24app.bitrix.errors import TransportError, UnsafeEndpoint

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


def resolver_for(table):
    """Resolve names from a dict, like DNS would."""
    calls = []

    def resolve(host, port):
        calls.append(host)
        if host not in table:
            raise OSError("no such host")
        return table[host]

    resolve.calls = calls
    return resolve


def guard(table=None, allow=False):
    return EndpointGuard(allow, resolver=resolver_for(table or {}))


def test_public_https_portal_is_allowed_unchanged():
    url = "https://portal.bitrix24.com/rest/"
    assert guard({"portal.bitrix24.com": [PUBLIC_V4, PUBLIC_V6]}).check(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://portal.bitrix24.com/rest/",
        "ftp://portal.bitrix24.com/rest/",
        "portal.bitrix24.com/rest/",
        "https://user:pass@portal.bitrix24.com/rest/",
        "https://user@portal.bitrix24.com/rest/",
        "https://portal.bitrix24.com\\@evil.example/rest/",
        "https:///rest/",
        "https://portal.bitrix24.com:99999/rest/",
    ],
)
def test_non_https_userinfo_and_malformed_urls_are_refused(url):
    with pytest.raises(UnsafeEndpoint):
        guard({"portal.bitrix24.com": [PUBLIC_V4]}).check(url)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1.2.3",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "[fe80::1]",
        "[fd00::1]",
        "0.0.0.0",
        "[::]",
        "224.0.0.1",
        "[ff02::1]",
        "240.0.0.1",
        "100.64.0.1",
        "[::ffff:169.254.169.254]",
        "[::ffff:10.0.0.1]",
    ],
)
def test_literal_non_public_addresses_are_refused(host):
    with pytest.raises(UnsafeEndpoint):
        guard().check(f"https://{host}/rest/")


def test_names_resolving_to_metadata_or_private_addresses_are_refused():
    table = {
        "metadata.evil.example": ["169.254.169.254"],
        "intranet.evil.example": ["10.1.2.3"],
        "mixed.evil.example": [PUBLIC_V4, "192.168.0.10"],
        "v6private.evil.example": ["fd12:3456::1"],
    }
    for host in table:
        with pytest.raises(UnsafeEndpoint):
            guard(table).check(f"https://{host}/rest/")


def test_loopback_is_refused_unless_development_allows_it():
    table = {"localhost": ["127.0.0.1", "::1"]}
    with pytest.raises(UnsafeEndpoint):
        guard(table).check("http://localhost:5001/rest/")
    with pytest.raises(UnsafeEndpoint):
        guard(table).check("https://localhost:5001/rest/")
    dev = guard(table, allow=True)
    assert dev.check("http://localhost:5001/rest/") == "http://localhost:5001/rest/"
    assert dev.check("http://127.0.0.1:5001/rest/") == "http://127.0.0.1:5001/rest/"
    assert dev.check("https://[::1]:5001/rest/") == "https://[::1]:5001/rest/"


def test_development_mode_still_refuses_private_metadata_and_public_http():
    table = {"portal.bitrix24.com": [PUBLIC_V4], "both.example": ["127.0.0.1", "10.0.0.1"]}
    dev = guard(table, allow=True)
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/rest/",
        "http://portal.bitrix24.com/rest/",
        "http://both.example/rest/",
    ):
        with pytest.raises(UnsafeEndpoint):
            dev.check(url)
    assert dev.check("https://portal.bitrix24.com/rest/") == "https://portal.bitrix24.com/rest/"


def test_unresolvable_host_is_a_transport_error_that_never_left():
    with pytest.raises(TransportError) as info:
        guard({}).check("https://nowhere.example/rest/")
    assert info.value.maybe_sent is False


def test_resolutions_are_cached_briefly():
    now = [1000.0]
    resolve = resolver_for({"portal.bitrix24.com": [PUBLIC_V4]})
    g = EndpointGuard(False, resolver=resolve, cache_seconds=30, clock=lambda: now[0])
    for _ in range(3):
        g.check("https://portal.bitrix24.com/rest/")
    assert resolve.calls == ["portal.bitrix24.com"]
    now[0] += 31
    g.check("https://portal.bitrix24.com/rest/")
    assert len(resolve.calls) == 2
