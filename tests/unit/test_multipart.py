"""The incremental multipart parser, fed in every way a socket can split a body."""

from __future__ import annotations

import json
import os
import random

import pytest

from fastrr.http.uploads import (
    MultipartError,
    MultipartReceiver,
    UploadPolicy,
    boundary_from_content_type,
    parse_header_params,
)

BOUNDARY = b"----fastrrBoundary7MA4YWxkTrZu0gW"


def body(*parts: tuple[str, str | None, str | None, bytes], preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    out = [preamble]
    for name, filename, mime, data in parts:
        out.append(b"--" + BOUNDARY + b"\r\n")
        disp = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out.append(disp.encode() + b"\r\n")
        if mime:
            out.append(f"Content-Type: {mime}\r\n".encode())
        out.append(b"\r\n" + data + b"\r\n")
    out.append(b"--" + BOUNDARY + b"--\r\n" + epilogue)
    return b"".join(out)


def receive(data: bytes, policy: UploadPolicy, splits: int | None = None, seed: int = 0) -> MultipartReceiver:
    rec = MultipartReceiver(policy, BOUNDARY)
    if splits is None:
        rec.feed(data)
    else:
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(data)), min(splits, len(data) - 1)))
        prev = 0
        for cut in [*cuts, len(data)]:
            rec.feed(data[prev:cut])
            prev = cut
    rec.finish()
    return rec


@pytest.fixture
def policy(tmp_path):
    return UploadPolicy(dir=str(tmp_path))


@pytest.mark.parametrize("splits", [None, 1, 7, 50, 10_000])
def test_fields_and_files_whatever_the_split(policy, tmp_path, splits):
    payload = os.urandom(20_000) + b"\r\n--" + BOUNDARY[:-1] + b"\r\n--"  # near-delimiters inside the data
    data = body(("title", None, None, b"hello"), ("tags[]", None, None, b"a"), ("tags[]", None, None, b"b"),
                ("doc", "r\u00e9sum\u00e9.pdf", "application/pdf", payload),
                ("pics[]", "a.png", "image/png", b"PNG1"), ("pics[]", "b.png", "image/png", b""),
                preamble=b"ignored preamble\r\n", epilogue=b"ignored epilogue")
    rec = receive(data, policy, splits, seed=splits or 0)
    assert json.loads(rec.fields_json()) == {"title": "hello", "tags": ["a", "b"]}
    tree = json.loads(rec.uploads_json())
    assert tree["doc"]["name"] == "r\u00e9sum\u00e9.pdf"
    assert tree["doc"]["mime"] == "application/pdf"
    assert tree["doc"]["size"] == len(payload) and tree["doc"]["error"] == 0
    with open(tree["doc"]["tmpName"], "rb") as fh:
        assert fh.read() == payload
    assert os.path.basename(tree["doc"]["tmpName"]).startswith("upload")
    assert [f["name"] for f in tree["pics"]] == ["a.png", "b.png"]
    assert [f["size"] for f in tree["pics"]] == [4, 0]
    rec.cleanup()
    assert os.listdir(tmp_path) == []


def test_forbid_allow_and_no_file(tmp_path):
    policy = UploadPolicy(dir=str(tmp_path), forbid=frozenset({".php"}), allow=frozenset({".txt", ".php"}))
    data = body(("a", "x.PHP", "text/plain", b"<?php"), ("b", "notes.txt", "text/plain", b"ok"),
                ("c", "img.png", "image/png", b"png"), ("d", "", "application/octet-stream", b""),
                ("e", "../../etc/passwd.txt", None, b"x"))
    rec = receive(data, policy)
    tree = json.loads(rec.uploads_json())
    assert tree["a"]["error"] == 8 and tree["a"]["tmpName"] == ""
    assert tree["b"]["error"] == 0
    assert tree["c"]["error"] == 8
    assert tree["d"]["error"] == 4
    assert tree["e"]["name"] == "passwd.txt"
    rec.cleanup()


def test_file_over_max_file_size_gets_error_1(tmp_path):
    policy = UploadPolicy(dir=str(tmp_path), max_file_size=1000)
    rec = receive(body(("big", "b.bin", None, b"x" * 5000), ("small", "s.bin", None, b"y" * 10)), policy, 20)
    tree = json.loads(rec.uploads_json())
    assert tree["big"] == {"name": "b.bin", "mime": "", "size": 0, "error": 1, "tmpName": "", "fullPath": "b.bin"}
    assert tree["small"]["error"] == 0 and tree["small"]["size"] == 10
    assert len(os.listdir(tmp_path)) == 1
    rec.cleanup()


@pytest.mark.parametrize("data, status", [
    (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated", 400),
    (b"--" + BOUNDARY + b"garbage\r\n", 400),
    (b"--" + BOUNDARY + b"\r\n" + b"X-Long: " + b"a" * 20000 + b"\r\n\r\nx\r\n--" + BOUNDARY + b"--", 400),
    (b"--" + BOUNDARY + b"\r\nbad header line\r\n\r\nx\r\n--" + BOUNDARY + b"--", 400),
    (b"no boundary at all", 400),
])
def test_malformed_bodies(policy, data, status):
    rec = MultipartReceiver(policy, BOUNDARY)
    with pytest.raises(MultipartError) as err:
        rec.feed(data)
        rec.finish()
    assert err.value.status == status
    rec.cleanup()


def test_too_many_parts(tmp_path):
    policy = UploadPolicy(dir=str(tmp_path), max_parts=3)
    with pytest.raises(MultipartError) as err:
        receive(body(*[(f"f{i}", None, None, b"v") for i in range(5)]), policy)
    assert err.value.status == 413


def test_conflicting_keys_are_400(policy):
    rec = receive(body(("a", None, None, b"1"), ("a[b]", None, None, b"2")), policy)
    with pytest.raises(MultipartError):
        rec.fields_json()


def test_header_params():
    assert parse_header_params('form-data; name="a;b\\"c"; filename=x.txt') == \
        ("form-data", {"name": 'a;b"c', "filename": "x.txt"})
    assert parse_header_params("form-data; name=f; filename=\"a.txt\"; filename*=UTF-8''%E2%82%AC.txt")[1][
        "filename"] == "\u20ac.txt"
    assert boundary_from_content_type('multipart/form-data; boundary="abc def"') == b"abc def"
    with pytest.raises(MultipartError):
        boundary_from_content_type("multipart/form-data")
