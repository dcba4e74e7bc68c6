"""wrk's command line and both kinds of output it gives us."""

from __future__ import annotations

import math

import pytest

from fastrr.benchmark import wrk

TEXT = """\
Running 5s test @ http://127.0.0.1:8080/hello
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.52ms    1.02ms  21.40ms   90.12%
    Req/Sec    18.31k     1.20k   20.01k    80.00%
  Latency Distribution
     50%    3.31ms
     75%  812.00us
     90%    4.50ms
     99%    1.20s
  91234 requests in 5.00s, 12.34MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  18246.80
Transfer/sec:      2.47MB
"""

JSON_LINE = ('WRK_JSON {"requests":91234,"duration_us":5000000,"bytes":12939000,'
             '"errors":{"connect":0,"read":3,"write":1,"status":7,"timeout":2},'
             '"latency_us":{"min":120,"max":21400,"mean":3520.5,"stdev":1020},'
             '"percentiles_us":{"50":3310,"75":3600,"90":4500,"99":7900,"99.9":15000}}')


def test_text_report_is_parsed_with_units():
    r = wrk.from_text(TEXT)
    assert r.requests == 91234
    assert r.duration_s == pytest.approx(5.0)
    assert r.rps == pytest.approx(18246.80)
    assert r.latency_ms == {"50": pytest.approx(3.31), "75": pytest.approx(0.812), "90": pytest.approx(4.5),
                            "99": pytest.approx(1200.0)}
    assert r.mean_ms == pytest.approx(3.52) and r.max_ms == pytest.approx(21.4)
    assert r.errors == {"connect": 0, "read": 3, "write": 1, "timeout": 2, "status": 7}
    assert r.non_2xx == 7 and r.socket_errors == 6
    assert r.source == "text"


def test_text_report_without_errors_or_latency_lines():
    text = "  10 requests in 1.00s, 1KB read\nRequests/sec:     10.00\n"
    r = wrk.from_text(text)
    assert r.requests == 10 and r.rps == 10.0
    assert r.errors["status"] == 0 and r.latency_ms == {}
    assert math.isnan(r.mean_ms)


def test_text_without_result_raises():
    with pytest.raises(wrk.WrkError):
        wrk.from_text("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_json_line_wins_over_text():
    r = wrk.parse_output(TEXT + JSON_LINE + "\n")
    assert r.source == "json"
    assert r.requests == 91234
    assert r.rps == pytest.approx(91234 / 5.0)
    assert r.latency_ms["99.9"] == pytest.approx(15.0)
    assert r.latency_ms["50"] == pytest.approx(3.31)
    assert r.mean_ms == pytest.approx(3.5205) and r.max_ms == pytest.approx(21.4)
    assert r.non_2xx == 7 and r.socket_errors == 6


def test_json_nulls_become_nan():
    doc = wrk.parse_json_line('noise\nWRK_JSON {"requests":0,"duration_us":1000000,"latency_us":{"mean":null},'
                              '"percentiles_us":{"50":null}}')
    r = wrk.from_json(doc)
    assert r.requests == 0 and r.rps == 0.0
    assert math.isnan(r.latency_ms["50"]) and math.isnan(r.mean_ms)


def test_percent_keys_match_report_lua():
    assert wrk._pct_key("50.000") == "50"
    assert wrk._pct_key("99.900") == "99.9"


def test_command_line():
    argv = wrk.command("http://127.0.0.1:1/x", connections=64, duration=1.5, threads=2, script=None,
                       prefix=["taskset", "-c", "1"])
    assert argv[:4] == ["taskset", "-c", "1", "wrk"]
    assert "-t2" in argv and "-c64" in argv and "-d2s" in argv and "--latency" in argv
    assert argv[-1] == "http://127.0.0.1:1/x"


def test_command_line_script_args_and_thread_cap(tmp_path):
    argv = wrk.command("http://h/", connections=1, duration=5, threads=4, script=tmp_path / "s.lua",
                       script_args=["body.json"])
    assert "-t1" in argv  # wrk needs a connection per thread
    assert argv[argv.index("-s") + 1] == str(tmp_path / "s.lua")
    assert argv[-3:] == ["http://h/", "--", "body.json"]


@pytest.mark.parametrize(("seconds", "arg"), [(1, "1s"), (5.0, "5s"), (1.2, "2s"), (0.3, "1s"), (0, "1s")])
def test_durations_are_whole_seconds(seconds, arg):
    assert wrk._duration_arg(seconds) == arg
