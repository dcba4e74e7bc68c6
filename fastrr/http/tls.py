"""`http.ssl`: the TLS context of the HTTPS listener (standard library ssl).

ALPN offers h2 then http/1.1 (RoadRunner turns HTTP/2 on with TLS); TLS 1.2
is the floor. `client_auth_type` maps Go's tls.ClientAuthType onto what
OpenSSL can do: Python cannot ask for a certificate without verifying it, so
`request_client_cert` and `verify_client_cert_if_given` both verify a
certificate when one is sent (CERT_OPTIONAL), and `require_any_client_cert`
and `require_and_verify_client_cert` both require a verified one
(CERT_REQUIRED) against `root_ca`.
"""

from __future__ import annotations

import ssl
from typing import Any

_VERIFY = {
    "no_client_certs": ssl.CERT_NONE,
    "request_client_cert": ssl.CERT_OPTIONAL,
    "verify_client_cert_if_given": ssl.CERT_OPTIONAL,
    "require_any_client_cert": ssl.CERT_REQUIRED,
    "require_and_verify_client_cert": ssl.CERT_REQUIRED,
}


def build_ssl_context(cfg: Any, http2: bool = True) -> ssl.SSLContext:  # cfg: SslConfig
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.load_cert_chain(cfg.cert, cfg.key)
    ctx.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
    ctx.verify_mode = _VERIFY[cfg.client_auth_type]
    if cfg.root_ca:
        ctx.load_verify_locations(cafile=cfg.root_ca)
    return ctx


def https_location(host: str | None, target: str, https_port: int) -> str:
    """Where `redirect: true` sends a plain-HTTP request: same host and target,
    the HTTPS listener's port (omitted when 443)."""
    name = host or "localhost"
    if name.startswith("["):
        name = name[:name.find("]") + 1]
    elif ":" in name:
        name = name.rsplit(":", 1)[0]
    port = "" if https_port == 443 else f":{https_port}"
    if "://" in target:  # absolute-form
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    return f"https://{name}{port}{target}"
