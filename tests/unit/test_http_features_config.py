"""Config keys of the HTTP features: uploads, static, gzip, headers/CORS, trusted subnets, ssl, http2."""

from __future__ import annotations

import pytest

from fastrr.config.schema import DEFAULT_TRUSTED_SUBNETS, build_config
from fastrr.config.units import ConfigError
from fastrr.http.engine import engine_blockers

BASE = {"version": "3", "server": {"command": "php w.php"}}


def http(**keys):
    return build_config({**BASE, "http": {"address": "127.0.0.1:1", **keys}}, "/tmp").http


def test_defaults_keep_the_plain_front():
    cfg = http()
    assert cfg.uploads.dir == "" and cfg.uploads.max_parts == 1000
    assert cfg.trusted_subnets == DEFAULT_TRUSTED_SUBNETS
    assert cfg.ssl is None and not cfg.http2.h2c and cfg.http2.max_concurrent_streams == 128
    assert engine_blockers(cfg) == []  # the C engine serves the defaults (multipart included)
    assert engine_blockers(http(middleware=["static"])) == []
    assert engine_blockers(http(middleware=["static", "gzip"])) == ["http.middleware"]


def test_feature_keys(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    cfg = http(uploads={"dir": str(tmp_path), "forbid": ".PHP,.exe", "allow": [".jpg"], "max_file_size": 5},
               middleware="static,headers,gzip", static={"dir": str(tmp_path), "calculate_etag": "true"},
               headers={"request": {"A": "1"}, "cors": {"allowed_origin": ["https://a", "https://b"],
                                                        "max_age": "60"}},
               trusted_subnets=["10.0.0.0/8"], http2={"h2c": True, "max_concurrent_streams": 8},
               ssl={"address": "127.0.0.1:8443", "cert": str(cert), "key": str(cert), "redirect": True})
    assert cfg.uploads.forbid == [".php", ".exe"] and cfg.uploads.max_file_size == 5
    assert cfg.static.calculate_etag is True
    assert cfg.headers.cors.allowed_origin == "https://a,https://b" and cfg.headers.cors.max_age == 60
    assert cfg.ssl.redirect and cfg.http2.max_concurrent_streams == 8
    assert engine_blockers(cfg) == ["http.middleware", "http.ssl", "http.http2.h2c"]


@pytest.mark.parametrize("keys, path", [
    ({"uploads": {"forbid": ["php"]}}, "http.uploads.forbid"),
    ({"uploads": {"dir": "/nonexistent/dir"}}, "http.uploads.dir"),
    ({"middleware": ["static"], "static": {"dir": "/nonexistent/dir"}}, "http.static.dir"),
    ({"trusted_subnets": ["10.0.0.0/8", "nope"]}, "http.trusted_subnets[1]"),
    ({"headers": {"cors": {"allowed_origin_regex": "("}}}, "http.headers.cors.allowed_origin_regex"),
    ({"ssl": {"address": "127.0.0.1:8443"}}, "http.ssl.cert"),
    ({"http2": {"max_concurrent_streams": 0}}, "http.http2.max_concurrent_streams"),
    ({"gzip": {"level": 11}}, "http.gzip.level"),
])
def test_errors_name_the_key(keys, path):
    with pytest.raises(ConfigError) as err:
        http(**keys)
    assert err.value.path == path
