"""`proxy_ip_parser`: the client's address from proxy headers, only from trusted proxies.

The headers are believed only when the TCP peer is inside `http.trusted_subnets`
(RoadRunner's default: loopback, private and link-local ranges). They are tried
in RoadRunner's order: Forwarded (`for=`), X-Forwarded-For, X-Real-Ip,
True-Client-IP, CF-Connecting-IP; the first that yields a valid IP wins and
becomes the request's `remoteAddr`.

X-Forwarded-For / Forwarded lists are read from the right, skipping proxies
that are themselves trusted: the first untrusted hop is the client (the
leftmost entries are whatever the client chose to send). If every hop is
trusted, the leftmost one is taken. With a single proxy that is the same
answer RoadRunner gives.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastrr.http.middleware import Middleware, RequestInfo
from fastrr.http.response import Response

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str) -> IpAddress | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class ProxyIpMiddleware(Middleware):
    name = "proxy_ip_parser"
    has_response = False

    def __init__(self, subnets: Any):
        self.networks = [ipaddress.ip_network(net, strict=False) for net in subnets]

    def trusted(self, ip: IpAddress | None) -> bool:
        return ip is not None and any(ip in net for net in self.networks)

    def request(self, info: RequestInfo) -> Response | None:
        if not self.trusted(parse_ip(info.remote)):
            return None
        client = self._from_list(self._forwarded_for(info)) \
            or self._from_list(self._header_list(info, b"x-forwarded-for"))
        if client is None:
            for name in (b"x-real-ip", b"true-client-ip", b"cf-connecting-ip"):
                value = info.header(name)
                if value:
                    client = parse_ip(value.decode("latin-1"))
                    if client is not None:
                        break
        if client is not None:
            info.remote = str(client)
        return None

    @staticmethod
    def _header_list(info: RequestInfo, name: bytes) -> list[str]:
        values = [v.decode("latin-1") for k, v in info.req.headers if k.lower() == name]
        return [part.strip() for value in values for part in value.split(",") if part.strip()]

    def _forwarded_for(self, info: RequestInfo) -> list[str]:
        out = []
        for element in self._header_list(info, b"forwarded"):
            for pair in element.split(";"):
                key, _, value = pair.strip().partition("=")
                if key.strip().lower() == "for":
                    out.append(value)
        return out

    def _from_list(self, hops: list[str]) -> IpAddress | None:
        ips = [ip for ip in (parse_ip(h) for h in hops) if ip is not None]
        if not ips:
            return None
        for ip in reversed(ips):
            if not self.trusted(ip):
                return ip
        return ips[0]
