"""SuperglobalsWorker end to end: a legacy-style page (tests/workers/legacy_page.php)
that reads superglobals and php://input, prints, calls header()/setcookie()/exit,
served hot by real php-cgi (and php-cli) workers behind a real fastrr."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import WORKERS

LEGACY = WORKERS / "legacy.php"
CGI = f"php-cgi -q -d max_execution_time=0 {LEGACY}"


@pytest.fixture
def server(fastrr):
    return fastrr.start({"server": {"command": CGI}}, workers=1)


def dump(server, path: str = "/dump", **kwargs) -> dict:
    r = httpx.request(kwargs.pop("method", "GET"), server.url(path), timeout=10, **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return r.json()


def test_server_get_cookie_and_headers(server):
    before = time.time()
    body = dump(server, "/dump/page?a=1&b[]=2&b[]=3&x.y=z&e=%C3%A9+x",
                headers={"Cookie": "sid=abc; c.d=e", "X-Many": "1", "Accept": "text/html"})
    assert body["sapi"] == "cgi-fcgi"
    assert body["get"] == {"a": "1", "b": ["2", "3"], "x_y": "z", "e": "é x"}
    assert body["request"] == body["get"]
    assert body["post"] == [] and body["files"] == [] and body["input"] == ""
    assert body["cookie"] == {"sid": "abc", "c_d": "e"}
    s = body["server"]
    assert s["REQUEST_METHOD"] == "GET"
    assert s["REQUEST_URI"] == "/dump/page?a=1&b[]=2&b[]=3&x.y=z&e=%C3%A9+x"
    assert s["QUERY_STRING"] == "a=1&b[]=2&b[]=3&x.y=z&e=%C3%A9+x"
    assert s["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert s["REQUEST_SCHEME"] == "http" and "HTTPS" not in s
    assert s["SERVER_NAME"] == "127.0.0.1" and s["SERVER_PORT"] == str(server.port)
    assert s["HTTP_HOST"] == f"127.0.0.1:{server.port}"
    assert s["HTTP_COOKIE"] == "sid=abc; c.d=e"
    assert s["HTTP_X_MANY"] == "1" and s["HTTP_ACCEPT"] == "text/html"
    assert s["REMOTE_ADDR"] == "127.0.0.1"
    assert s["SCRIPT_NAME"] == s["PHP_SELF"] == "/dump/page"
    assert s["SCRIPT_FILENAME"] == str(LEGACY)
    assert s["CONTENT_TYPE"] == s["CONTENT_LENGTH"] == ""  # as nginx's stock fastcgi_params pass them
    assert "HTTP_CONTENT_TYPE" not in s
    assert before - 1 <= s["REQUEST_TIME_FLOAT"] <= time.time() + 1
    assert s["REQUEST_TIME"] == int(s["REQUEST_TIME_FLOAT"])


def test_post_form_and_request_merge(server):
    body = dump(server, "/dump?a=get&only=g", method="POST", data={"a": "post", "arr[k]": "v", "p": "1"},
                headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert body["post"] == {"a": "post", "arr": {"k": "v"}, "p": "1"}
    assert body["request"] == {"a": "post", "only": "g", "arr": {"k": "v"}, "p": "1"}
    s = body["server"]
    assert s["REQUEST_METHOD"] == "POST"
    assert s["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert s["CONTENT_LENGTH"] == str(len("a=post&arr%5Bk%5D=v&p=1"))
    # php-fpm behind nginx also has every request header as HTTP_*, these two included
    assert s["HTTP_CONTENT_TYPE"] == s["CONTENT_TYPE"] and s["HTTP_CONTENT_LENGTH"] == s["CONTENT_LENGTH"]
    assert s["PHP_AUTH_USER"] == s["REMOTE_USER"] == "user" and s["PHP_AUTH_PW"] == "pass"
    assert body["input"] == "a=post&arr%5Bk%5D=v&p=1"  # php://input keeps a form, as under php-fpm


def test_php_input_json(server):
    r = httpx.post(server.url("/json"), content=b'{"k":[1,2],"s":"x"}',
                   headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 200
    assert r.json() == {"got": {"k": [1, 2], "s": "x"}, "method": "POST", "type": "application/json"}
    # the raw body through the default page too, and gone on the next request
    assert dump(server, method="PUT", content=b"raw \x00 bytes?")["input"] == "raw \u0000 bytes?"
    assert dump(server)["input"] == ""


def test_multipart_upload_reaches_files(server, tmp_path: Path):
    f = tmp_path / "hello.txt"
    f.write_bytes(b"hello upload\n")
    with f.open("rb") as fh:
        body = dump(server, method="POST", data={"title": "doc"},
                    files={"doc": ("hello.txt", fh, "text/plain")})
    assert body["post"] == {"title": "doc"}
    doc = body["files"]["doc"]
    assert doc["name"] == "hello.txt" and doc["full_path"] == "hello.txt"
    assert doc["type"] == "text/plain" and doc["error"] == 0 and doc["size"] == 13
    assert doc["tmp_name"] and doc["content"] == "hello upload\n"
    assert body["input"] == ""


def test_headers_cookies_and_status(server):
    r = httpx.get(server.url("/headers"), timeout=10)
    assert r.status_code == 201
    assert r.text.startswith("created by ")
    assert r.headers["x-legacy"] == "yes"
    assert r.headers.get_list("x-multi") == ["a", "b"]
    assert r.headers.get_list("set-cookie") == ["first=one", "second=two; path=/p; HttpOnly"]
    assert r.headers["content-type"] == "text/html; charset=UTF-8"  # PHP's default
    assert "x-powered-by" not in r.headers
    # nothing of it sticks to the next response
    r2 = httpx.get(server.url("/status-header"), timeout=10)
    assert r2.status_code == 404 and r2.text == "nope"
    assert "x-legacy" not in r2.headers and "set-cookie" not in r2.headers and "status" not in r2.headers


def test_nothing_leaks_between_requests(server, tmp_path: Path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"x")
    with f.open("rb") as fh:
        first = dump(server, "/dump?q=1", method="POST", data={"p": "1"}, files={"up": fh},
                     headers={"Cookie": "c=1", "X-Once": "yes", "Authorization": "Basic dTpw"})
    assert first["get"] and first["post"] and first["files"] and first["cookie"]
    second = dump(server)
    assert second["pid"] == first["pid"]
    assert second["served"] == first["served"] + 1
    assert (second["get"], second["post"], second["files"], second["cookie"], second["request"]) == ([],) * 5
    s = second["server"]
    assert "HTTP_X_ONCE" not in s and "HTTP_COOKIE" not in s and "PHP_AUTH_USER" not in s
    assert s["CONTENT_TYPE"] == "" and s["QUERY_STRING"] == "" and s["REQUEST_URI"] == "/dump"


def test_nested_buffers_left_open(server):
    r = httpx.get(server.url("/nested-buffers"), timeout=10)
    assert (r.status_code, r.text) == (200, "abc")
    assert dump(server)["served"] >= 2  # the same worker goes on, frames intact


def test_exit_sends_the_response_and_the_worker_is_replaced(server):
    pid = dump(server)["pid"]
    r = httpx.get(server.url("/redirect"), timeout=10)
    assert r.status_code == 302
    assert r.headers["location"] == "/x"
    assert r.headers["x-before-exit"] == "1"
    assert r.text == "moving"
    r = httpx.get(server.url("/die"), timeout=10)
    assert r.status_code == 403
    new_pid = int(r.text.removeprefix("forbidden by "))
    assert new_pid != pid
    after = dump(server)
    assert after["pid"] not in (pid, new_pid)
    assert after["served"] == 1


def test_many_exits_in_a_row_are_not_taken_for_a_boot_loop(server):
    # Each exit() answers, then ends its worker: a worker that served a request
    # is replaced at once, never counted as "left right after its handshake".
    for _ in range(8):
        r = httpx.get(server.url("/redirect"), timeout=10)
        assert r.status_code == 302 and r.text == "moving"
    assert server.proc.poll() is None, server.output()
    assert "right after it was ready" not in server.output()
    assert dump(server)["served"] == 1


def test_throw_gives_500_and_the_worker_goes_on(server):
    first = dump(server)
    r = httpx.get(server.url("/throw"), timeout=10)
    assert r.status_code == 500
    assert r.text == "500 Internal Server Error\n"
    assert "secret" not in r.text and "half a page" not in r.text
    assert "x-not-sent" not in r.headers
    after = dump(server)
    assert after["pid"] == first["pid"]
    assert after["served"] == first["served"] + 2
    deadline = time.monotonic() + 5
    while "boom: secret details" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "boom: secret details" in server.output()


def test_php_cli_runs_without_headers_and_warns(fastrr):
    server = fastrr.start({"server": {"command": f"php {LEGACY}"}}, workers=1)
    r = httpx.get(server.url("/headers"), timeout=10)
    assert r.status_code == 201
    assert r.text.startswith("created by ")
    assert "x-legacy" not in r.headers and "set-cookie" not in r.headers
    r = httpx.get(server.url("/dump?a=1"), timeout=10)
    assert r.status_code == 200
    body = json.loads(r.text)
    assert body["sapi"] == "cli" and body["get"] == {"a": "1"}
    deadline = time.monotonic() + 5
    while "runs under php-cli" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    out = server.output()
    assert out.count("runs under php-cli, which discards header() and setcookie()") == 1
    assert "php-cgi -q -d max_execution_time=0" in out


def test_php_cgi_time_limit_turned_off_with_a_warning(fastrr):
    server = fastrr.start({"server": {"command": f"php-cgi -q {LEGACY}"}}, workers=1)
    assert dump(server)["sapi"] == "cgi-fcgi"
    deadline = time.monotonic() + 5
    while "max_execution_time=30" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "max_execution_time=30 would end this long-lived php-cgi worker" in server.output()
