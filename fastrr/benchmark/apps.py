"""The apps both servers serve, with the request wrk sends and a check of the answer.

Each app has an fpm front script (run per request by php-fpm behind nginx) and a
fastrr worker (booted once); they share the app code, so the same request gets
the same bytes back from both servers, which `check` verifies before measuring.

The framework apps (Slim, Laravel, Symfony) also have a hot-ceiling script in bench/hot/: the
app booted once and the same request served in a loop inside one PHP process (hot.py runs it).
Laravel and Symfony need their caches built first (`prepare`, frameworks.py) and an
environment (production mode, where storage and caches are) that both servers get.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fastrr import paths
from fastrr.benchmark import frameworks

ROOT = paths.tree()  # the checkout, or the wheel's copy of php/, bench/ and wrk-scripts/ (fastrr/paths.py)
APPS_DIR = ROOT / "bench" / "apps"
WRK_SCRIPTS = ROOT / "wrk-scripts"
DEMO_DIR = ROOT / "php" / "demo"
HOT_DIR = ROOT / "bench" / "hot"
LARAVEL_WORKER = ROOT / "php" / "bin" / "fastrr-laravel-worker"

UPLOAD_SIZE = 100 * 1024


def upload_body(size: int = UPLOAD_SIZE) -> bytes:
    """The body wrk-scripts/upload.lua sends: a fixed 256-byte pattern repeated."""
    block = bytes((i * 97 + 13) % 256 for i in range(256))
    return (block * (size // 256 + 1))[:size]


@dataclass(frozen=True)
class App:
    name: str
    title: str
    fpm_script: Path            # SCRIPT_FILENAME for php-fpm
    worker_script: Path         # the fastrr worker
    path: str                   # request target, the same on both servers
    wrk_script: str             # file in wrk-scripts/
    method: str = "GET"
    content_type: str | None = None
    body: Callable[[], bytes] | None = None
    wrk_args: tuple[str, ...] = ()
    check: Callable[[int, bytes], str | None] = field(default=lambda status, body: None)
    sapi: str = "cli"  # the fastrr worker's PHP: "cli", or "cgi" (php-cgi keeps header() for legacy pages)
    hot_script: Path | None = None      # bench/hot/<app>.php: the hot ceiling (hot.py)
    app_dir: Path | None = None         # a framework app's root (what `prepare` builds caches for)
    # (app_dir, a work dir of the run, the php command) → the environment of both servers
    prepare: Callable[[Path, Path, Sequence[str]], dict[str, str]] | None = None
    worker_env: tuple[tuple[str, str], ...] = ()  # only fastrr's workers get these (APP_RUNTIME)
    in_default: bool = True             # part of a plain `fastrr bench`

    def request_body(self) -> bytes:
        return self.body() if self.body is not None else b""

    def rebased(self, root: Path) -> App:
        """The same app with its PHP scripts under another copy of the tree (env.snapshot_code)."""
        def move(path: Path | None) -> Path | None:
            return None if path is None else root / path.relative_to(ROOT)

        return dataclasses.replace(self, fpm_script=root / self.fpm_script.relative_to(ROOT),
                                   worker_script=root / self.worker_script.relative_to(ROOT),
                                   hot_script=move(self.hot_script), app_dir=move(self.app_dir))


def _json_check(want_status: int, test: Callable[[dict], bool], what: str) -> Callable[[int, bytes], str | None]:
    def check(status: int, body: bytes) -> str | None:
        if status != want_status:
            return f"status {status}, expected {want_status}: {body[:200]!r}"
        try:
            doc = json.loads(body)
        except ValueError:
            return f"not JSON: {body[:200]!r}"
        if not isinstance(doc, dict) or not test(doc):
            return f"unexpected answer (wanted {what}): {body[:200]!r}"
        return None
    return check


def _payload() -> bytes:
    return (APPS_DIR / "api" / "payload.json").read_bytes()


def _upload_ok(doc: dict) -> bool:
    return doc.get("received") == UPLOAD_SIZE and doc.get("crc32") == f"{zlib.crc32(upload_body()):08x}"


def _legacy_ok(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"status {status}, expected 200: {body[:200]!r}"
    if b"<h1>books (15)</h1>" not in body or body.count(b"<tr>") != 15:
        return f"not the books page: {body[:200]!r}"
    return None


def _item_ok(framework: str) -> Callable[[dict], bool]:
    """GET /api/item/42 of the Laravel and Symfony apps: the service's item, the config's name."""
    def test(doc: dict) -> bool:
        price = doc.get("price")
        return (doc.get("id") == 42 and isinstance(price, dict) and price.get("currency") == "EUR"
                and price.get("gross") == 1539 and doc.get("app") == f"fastrr-bench-{framework}")
    return test


APPS: dict[str, App] = {app.name: app for app in (
    App("hello", "hello JSON", DEMO_DIR / "hello.php", DEMO_DIR / "worker.php", "/hello", "hello.lua",
        check=_json_check(200, lambda d: d == {"message": "Hello, World!"}, "the hello message")),
    App("slim", "Slim 3 JSON route", APPS_DIR / "slim" / "index.php", APPS_DIR / "slim" / "worker.php",
        "/api/users/42", "hello.lua", hot_script=HOT_DIR / "slim.php",
        check=_json_check(200, lambda d: d.get("id") == 42 and d.get("name") == "user42", "user 42")),
    App("api", "JSON API, 5 KB POST", APPS_DIR / "api" / "index.php", APPS_DIR / "api" / "worker.php",
        "/api/v1/orders", "post_json.lua", method="POST", content_type="application/json", body=_payload,
        wrk_args=(str(APPS_DIR / "api" / "payload.json"),),
        check=_json_check(201, lambda d: d.get("status") == "accepted" and d.get("total") == 529735,
                          "an accepted order, total 529735")),
    App("upload", "100 KB upload", APPS_DIR / "upload" / "index.php", APPS_DIR / "upload" / "worker.php",
        "/upload", "upload.lua", method="POST", content_type="application/octet-stream", body=upload_body,
        wrk_args=(str(UPLOAD_SIZE),),
        check=_json_check(200, _upload_ok, f"{UPLOAD_SIZE} bytes received with the right CRC-32")),
    App("legacy", "legacy superglobals page", APPS_DIR / "legacy" / "index.php", APPS_DIR / "legacy" / "worker.php",
        "/products.php?category=books", "hello.lua", sapi="cgi", check=_legacy_ok, in_default=False),
    App("laravel", "Laravel 8 JSON API route", APPS_DIR / "laravel" / "public" / "index.php", LARAVEL_WORKER,
        "/api/item/42", "hello.lua", hot_script=HOT_DIR / "laravel.php", app_dir=APPS_DIR / "laravel",
        prepare=frameworks.prepare_laravel, in_default=False,
        check=_json_check(200, _item_ok("laravel"), "item 42 in EUR from fastrr-bench-laravel")),
    App("symfony", "Symfony 5.4 JSON API route", APPS_DIR / "symfony" / "public" / "index.php",
        APPS_DIR / "symfony" / "public" / "index.php", "/api/item/42", "hello.lua",
        hot_script=HOT_DIR / "symfony.php", app_dir=APPS_DIR / "symfony", prepare=frameworks.prepare_symfony,
        worker_env=(("APP_RUNTIME", frameworks.SYMFONY_RUNTIME),), in_default=False,
        check=_json_check(200, _item_ok("symfony"), "item 42 in EUR from fastrr-bench-symfony")),
)}
# What a plain `fastrr bench` runs; `--apps all` (or naming them) adds the others (legacy, and the
# Laravel and Symfony apps, whose boot per request makes fpm slow: a minute more for little news).
DEFAULT_APPS = tuple(name for name, app in APPS.items() if app.in_default)


def select(names: str | None) -> list[App]:
    """`hello,slim` → those apps, in the order given; None → DEFAULT_APPS; 'all' → all of them."""
    if not names:
        return [APPS[name] for name in DEFAULT_APPS]
    if names == "all":
        return list(APPS.values())
    out = []
    for name in (n.strip() for n in names.split(",")):
        if name not in APPS:
            raise ValueError(f"unknown app {name!r}; choose from {', '.join(APPS)}")
        out.append(APPS[name])
    return out
