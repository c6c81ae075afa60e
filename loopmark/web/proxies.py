"""Which proxies' ``X-Forwarded-*`` headers the site believes: the client's address (rate limits,
logs), the original scheme (HSTS, Secure cookies) and host.

A request is believed only when it comes straight from a trusted proxy (LOOPMARK_TRUSTED_PROXIES:
addresses or networks), and then only for LOOPMARK_PROXY_HOPS hops, by Werkzeug's ProxyFix. From
anyone else every forwarding header is removed, so a client cannot choose its own address. The
app does this itself, not the server: a CDN or a load balancer reaches the site from many
addresses, and doing it here makes the test client and the real server behave the same (cheroot,
``loopmark.web.server``, passes the headers through untouched; tests/web/test_server.py checks
it through the real server).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDING_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_FORWARDED",
)
# LOOPMARK_TRUSTED_PROXIES="*": any peer (only where a firewall lets nothing else reach the site).
ANY_PEER = "*"


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...] | None:
    """Networks from addresses or CIDRs ("10.0.0.0/8", "::1"); None for "*" (any peer).
    ValueError naming the entry that does not parse."""
    networks: list[Network] = []
    for entry in entries:
        entry = entry.strip()
        if entry == ANY_PEER:
            return None
        if entry:
            networks.append(ipaddress.ip_network(entry, strict=False))
    return tuple(networks)


class TrustedProxies:
    """WSGI middleware: ProxyFix for requests from a trusted peer, forwarding headers removed
    from everyone else."""

    def __init__(self, app: WSGIApplication, hops: int, networks: tuple[Network, ...] | None):
        self.app = app
        self.networks = networks
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops) if hops else None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.fixed is not None and self.trusts(environ.get("REMOTE_ADDR", "")):
            return self.fixed(environ, start_response)
        for name in FORWARDING_HEADERS:
            environ.pop(name, None)
        return self.app(environ, start_response)

    def trusts(self, peer: str) -> bool:
        if self.networks is None:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def init_app(app: Flask, hops: int, trusted: tuple[str, ...]) -> None:
    """Wrap the app's WSGI callable; call last, so the wrapper sees the request first."""
    networks = parse_networks(trusted)
    if hops:
        log.info(
            "trusting X-Forwarded-* for %d hop(s) from %s",
            hops,
            "any peer" if networks is None else ", ".join(map(str, networks)),
        )
    app.wsgi_app = TrustedProxies(app.wsgi_app, hops, networks)  # type: ignore[method-assign]
