"""multipart/form-data end to end: curl uploads, PHP sees $_FILES-like trees and
PSR-7 UploadedFile objects, files stream to disk (flat RSS), temp files go away."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import raw_request


def curl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "--max-time", str(int(timeout)), *args],
                          capture_output=True, timeout=timeout + 5)


def curl_json(*args: str, timeout: float = 60) -> dict:
    out = curl(*args, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def emptied(directory: Path, timeout: float = 5.0) -> list[Path]:
    """What is left in `directory` once the server has had `timeout` s to remove it: the
    temp files go once the response is written, which the client can see a moment before."""
    deadline = time.monotonic() + timeout
    while (left := list(directory.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


@pytest.fixture
def upload_dir(tmp_path):
    d = tmp_path / "uploads"
    d.mkdir()
    return d


@pytest.fixture(params=["arrays", "psr7"])
def server(request, fastrr, upload_dir):
    env = {"APP_MODE": "psr7"} if request.param == "psr7" else {}
    return fastrr.start({"http": {"uploads": {"dir": str(upload_dir)}}}, env=env)


def test_one_file_and_fields(server, tmp_path, upload_dir):
    f = tmp_path / "hello.txt"
    f.write_bytes(b"hello upload\n")
    body = curl_json("-F", f"doc=@{f};type=text/plain", "-F", "title=My doc", server.url("/echo"))
    assert body["parsed"] is True
    assert body["parsedBody"] == {"title": "My doc"}
    assert body["uploads"] == {"doc": {"name": "hello.txt", "mime": "text/plain", "size": 13, "error": 0,
                                       "sha256": sha256(f)}}
    assert emptied(upload_dir) == []  # removed once the response was written


def test_many_files_and_nested_names(server, tmp_path, upload_dir):
    files = []
    for i in range(6):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(os.urandom(1000 * (i + 1)))
        files.append(p)
    args = []
    for p in files[:3]:
        args += ["-F", f"gallery[]=@{p}"]
    args += ["-F", f"user[profile][avatar]=@{files[3]};type=image/png",
             "-F", f"user[profile][cv]=@{files[4]}",
             "-F", f"single=@{files[5]}",
             "-F", "user[name]=Ann", "-F", "user[tags][]=x", "-F", "user[tags][]=y", "-F", "plain=1"]
    body = curl_json(*args, server.url("/echo"))
    assert body["parsedBody"] == {"user": {"name": "Ann", "tags": ["x", "y"]}, "plain": "1"}
    up = body["uploads"]
    assert [g["sha256"] for g in up["gallery"]] == [sha256(p) for p in files[:3]]
    assert [g["name"] for g in up["gallery"]] == ["f0.bin", "f1.bin", "f2.bin"]
    assert up["user"]["profile"]["avatar"]["mime"] == "image/png"
    assert up["user"]["profile"]["avatar"]["sha256"] == sha256(files[3])
    assert up["user"]["profile"]["cv"]["size"] == 5000
    assert up["single"]["sha256"] == sha256(files[5])
    assert emptied(upload_dir) == []


def test_php_files_layout(fastrr, tmp_path, upload_dir):
    """Request::getFiles() gives exactly the $_FILES PHP builds for the same form
    (checked against php -S; only the random tmp_name values differ)."""
    server = fastrr.start({"http": {"uploads": {"dir": str(upload_dir), "max_file_size": 1}}})
    parts = [("single", "a.txt", "text/plain", b"hello"),
             ("f[]", "a.txt", "text/plain", b"hello"), ("f[]", "b.txt", "text/plain", b"xy"),
             ("docs[a][]", "a.txt", "text/plain", b"hello"), ("docs[a][]", "b.txt", "text/plain", b"xy"),
             ("docs[b]", "b.txt", "text/plain", b"xy"),
             ("none", "", "application/octet-stream", b""),
             ("big", "big.bin", "application/octet-stream", b"b" * (2 << 20))]
    body = b"".join(b'--B\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\nContent-Type: %s\r\n\r\n%s\r\n'
                    % (name.encode(), filename.encode(), mime.encode(), data)
                    for name, filename, mime, data in parts) + b"--B--\r\n"
    form = tmp_path / "form.bin"
    form.write_bytes(body)
    files = curl_json("-H", "Content-Type: multipart/form-data; boundary=B", "--data-binary", f"@{form}",
                      server.url("/echo"))["files"]
    tmp_names = [files["single"]["tmp_name"], *files["f"]["tmp_name"], *files["docs"]["tmp_name"]["a"],
                 files["docs"]["tmp_name"]["b"]]
    assert all(t.startswith(str(upload_dir) + os.sep) for t in tmp_names)
    assert len(set(tmp_names)) == 6
    files["single"]["tmp_name"] = "T0"
    files["f"]["tmp_name"] = ["T1", "T2"]
    files["docs"]["tmp_name"] = {"a": ["T3", "T4"], "b": "T5"}
    assert files == {
        "single": {"name": "a.txt", "full_path": "a.txt", "type": "text/plain", "tmp_name": "T0",
                   "error": 0, "size": 5},
        "f": {"name": ["a.txt", "b.txt"], "full_path": ["a.txt", "b.txt"], "type": ["text/plain", "text/plain"],
              "tmp_name": ["T1", "T2"], "error": [0, 0], "size": [5, 2]},
        "docs": {"name": {"a": ["a.txt", "b.txt"], "b": "b.txt"},
                 "full_path": {"a": ["a.txt", "b.txt"], "b": "b.txt"},
                 "type": {"a": ["text/plain", "text/plain"], "b": "text/plain"},
                 "tmp_name": {"a": ["T3", "T4"], "b": "T5"},
                 "error": {"a": [0, 0], "b": 0},
                 "size": {"a": [5, 2], "b": 2}},
        "none": {"name": "", "full_path": "", "type": "", "tmp_name": "", "error": 4, "size": 0},
        "big": {"name": "big.bin", "full_path": "big.bin", "type": "", "tmp_name": "", "error": 1, "size": 0},
    }
    # The keys come in PHP's order.
    assert list(files["single"]) == ["name", "full_path", "type", "tmp_name", "error", "size"]
    assert emptied(upload_dir) == []


def test_chunked_multipart_upload(server, tmp_path):
    f = tmp_path / "c.bin"
    f.write_bytes(os.urandom(300_000))
    body = curl_json("-H", "Transfer-Encoding: chunked", "-F", f"file=@{f}", "-F", "k=v", server.url("/echo"))
    assert body["uploads"]["file"]["sha256"] == sha256(f)
    assert body["parsedBody"] == {"k": "v"}


def _rss_sampler(pid: int, stop: threading.Event, samples: list[int]) -> None:
    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            samples.append(proc.memory_info().rss)
        except psutil.NoSuchProcess:
            return
        time.sleep(0.02)


def test_50mb_upload_streams_to_disk_with_flat_rss(fastrr, tmp_path, upload_dir):
    server = fastrr.start({"http": {"uploads": {"dir": str(upload_dir)}}}, workers=1)
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        block = os.urandom(1 << 20)
        for _ in range(50):
            fh.write(block)
    curl_json("-F", "x=@" + str(tmp_path / "big.bin"), server.url("/hello"))  # warm up the path
    base = psutil.Process(server.proc.pid).memory_info().rss
    samples: list[int] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_rss_sampler, args=(server.proc.pid, stop, samples))
    sampler.start()
    try:
        # --limit-rate keeps the upload going long enough to sample it.
        body = curl_json("--limit-rate", "40M", "-F", f"big=@{big}", server.url("/echo"), timeout=120)
    finally:
        stop.set()
        sampler.join()
    assert body["uploads"]["big"]["size"] == 50 << 20
    assert body["uploads"]["big"]["sha256"] == sha256(big)
    growth = max(samples) - base
    print(f"fastrr RSS: base {base >> 20} MB, max {max(samples) >> 20} MB over {len(samples)} samples")
    assert len(samples) > 5
    assert growth < 16 << 20, f"fastrr RSS grew by {growth >> 20} MB while receiving 50 MB"
    assert emptied(upload_dir) == []


def test_forbidden_and_not_allowed_extensions(fastrr, tmp_path, upload_dir):
    server = fastrr.start({"http": {"uploads": {"dir": str(upload_dir), "forbid": [".php", ".exe"],
                                                "allow": [".txt", ".php", ".png"]}}})
    files = {}
    for name in ("ok.txt", "shell.PHP", "tool.exe", "pic.png", "data.csv"):
        p = tmp_path / name
        p.write_bytes(b"data")
        files[name] = p
    args = []
    for i, name in enumerate(files):
        args += ["-F", f"f{i}=@{files[name]}"]
    up = curl_json(*args, server.url("/echo"))["uploads"]
    assert [up[f"f{i}"]["error"] for i in range(5)] == [0, 8, 8, 0, 8]
    assert up["f1"]["sha256"] is None and up["f0"]["sha256"] == sha256(files["ok.txt"])


def test_file_over_max_file_size(fastrr, tmp_path, upload_dir):
    server = fastrr.start({"http": {"uploads": {"dir": str(upload_dir), "max_file_size": 1}}})
    big, small = tmp_path / "big.bin", tmp_path / "small.bin"
    big.write_bytes(b"b" * (2 << 20))
    small.write_bytes(b"s" * 100)
    up = curl_json("-F", f"big=@{big}", "-F", f"small=@{small}", server.url("/echo"))["uploads"]
    assert up["big"]["error"] == 1 and up["big"]["size"] == 0
    assert up["small"]["error"] == 0 and up["small"]["size"] == 100
    assert emptied(upload_dir) == []


def test_raw_body_passes_multipart_through(fastrr, tmp_path):
    server = fastrr.start({"http": {"raw_body": True}})
    f = tmp_path / "a.txt"
    f.write_bytes(b"raw bytes")
    body = curl_json("-F", f"a=@{f}", server.url("/echo"))
    assert body["parsed"] is False
    assert body["uploads"] == {}
    assert b"raw bytes" in body["body"].encode() and "Content-Disposition" in body["body"]


def test_malformed_multipart_is_400_with_a_reason(fastrr):
    server = fastrr.start()
    payload = b"--XYZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno closing boundary"
    resp = raw_request(server.port, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; "
                       b"boundary=XYZ\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
    assert resp.startswith(b"HTTP/1.1 400")
    assert b"closing boundary" in resp
    resp = raw_request(server.port, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data\r\n"
                       b"Content-Length: 4\r\n\r\nabcd")
    assert resp.startswith(b"HTTP/1.1 400") and b"boundary" in resp


def test_too_many_parts_is_413(fastrr):
    server = fastrr.start({"http": {"uploads": {"max_parts": 5}}})
    args = []
    for i in range(10):
        args += ["-F", f"f{i}=v"]
    out = curl("-o", "/dev/null", "-w", "%{http_code}", *args, server.url("/echo"))
    assert out.stdout == b"413"


def test_body_over_max_request_size_is_413_early(fastrr, tmp_path):
    server = fastrr.start({"http": {"max_request_size": 1}})
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (3 << 20))
    out = curl("-o", "/dev/null", "-w", "%{http_code}", "-F", f"f=@{big}", server.url("/echo"))
    assert out.stdout == b"413"
    # The same limit holds for a chunked multipart body, which has no Content-Length.
    out = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Transfer-Encoding: chunked",
               "-F", f"f=@{big}", server.url("/echo"))
    assert out.stdout == b"413"


def test_temp_files_removed_when_client_leaves_mid_upload(fastrr, upload_dir):
    server = fastrr.start({"http": {"uploads": {"dir": str(upload_dir)}}})
    import socket
    head = (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=B\r\n"
            b"Content-Length: 10000000\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"f\"; "
            b"filename=\"a.bin\"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + b"x" * 100_000)
        deadline = time.monotonic() + 5
        while not list(upload_dir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(list(upload_dir.iterdir())) == 1
    deadline = time.monotonic() + 5
    while list(upload_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emptied(upload_dir) == []
