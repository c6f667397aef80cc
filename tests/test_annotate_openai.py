"""The LLM backend with the real `openai` client against a loopback server that misbehaves
on a schedule: 429 with Retry-After, 500, slow replies, dropped connections, malformed JSON,
words outside the vocabulary, servers that refuse structured output."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, run_cli

import annotate.openai_backend as backend
from annotate.local_server import LocalChatServer
from annotate.pipeline import AnnotateConfig, run_annotation
from artgen.data.vocabulary import ADJECTIVES
from artgen.errors import ArtgenError
from artgen.workspace import Workspace

KEY = "sk-test-a1b2c3d4e5f6-never-print-me"


@pytest.fixture
def ws(small_corpus, tmp_path, monkeypatch):
    """A fresh workspace that shares the session's small corpus."""
    (tmp_path / "data").symlink_to(small_corpus / "data")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return Workspace(tmp_path)


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    """The backend's waits between retries, recorded instead of slept."""
    waits = []
    real_sleep = backend.asyncio.sleep

    async def recording_sleep(seconds):
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(backend.asyncio, "sleep", recording_sleep)
    return waits


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def config(server, **kw) -> AnnotateConfig:
    base = dict(backend="openai", mode="stats", base_url=server.base_url, model="local-test", concurrency=1,
                timeout=0.5, max_retries=3, base_delay=0.001, show_progress=False)
    return AnnotateConfig(**{**base, **kw})


def test_faults_on_a_schedule_are_retried_and_every_image_ends_labelled(ws, slept):
    # one image at a time: each fault hits a different image, whose retry then succeeds
    plan = {2: "429", 4: "500", 6: "slow", 8: "drop", 10: "malformed", 12: "oov", 14: "few"}
    with LocalChatServer(plan=plan, retry_after=0.25, slow_seconds=1.5) as server:
        summary = run_annotation(ws, config(server, limit=9))
    recs = records(ws.annotations / "openai.jsonl")
    assert [r["id"] for r in recs] == sorted(r["id"] for r in recs) and len({r["id"] for r in recs}) == 9
    for r in recs:
        assert 3 <= len(r["adjectives"]) <= 5 and set(r["adjectives"]) <= set(ADJECTIVES)
        assert r["backend"] == "openai" and r["model"] == "local-test" and r["mode"] == "stats"
        assert r["usage"]["prompt_tokens"] > 0 and r["usage"]["completion_tokens"] > 0
    # request 12 answered ["Warm!", "sparkly", "VIVID", "tranquil", "zigzaggy"]
    oov = [r for r in recs if "zigzaggy" in r["extra"]]
    assert len(oov) == 1 and oov[0]["adjectives"] == ["warm", "vivid", "calm"] and oov[0]["extra"] == ["sparkly", "zigzaggy"]
    assert dict(summary.retries) == {"rate_limit": 1, "server_error": 1, "timeout": 1, "connection": 1,
                                     "malformed": 1, "too_few_words": 1}
    assert 0.25 in slept  # the 429's Retry-After was obeyed instead of the tiny backoff
    assert summary.done == 9 and summary.failed == 0
    assert summary.prompt_tokens == sum(r["usage"]["prompt_tokens"] for r in recs)


def test_an_image_that_keeps_failing_goes_to_failures_and_the_run_continues(ws):
    def plan(n, body):
        if n <= 4:  # the first image: 500 on every attempt (1 + 3 retries)
            return "500"
        return "few_always" if n in (5, 6) else "ok"  # the second: too few words, twice

    with LocalChatServer(plan=plan) as server:
        summary = run_annotation(ws, config(server, limit=4, price_in=1.0, price_out=2.0))
    fails = records(ws.annotations / "openai.failures.jsonl")
    assert [f["reason"] for f in fails] == ["server_error: gave up after 4 attempts",
                                            "fewer than 3 vocabulary adjectives after a corrective retry: "
                                            "got ['warm'], outside the vocabulary ['sparkly']"]
    assert len(records(ws.annotations / "openai.jsonl")) == 2
    assert summary.failed == 2 and summary.done == 2 and summary.retries["server_error"] == 3
    assert summary.cost == pytest.approx((summary.prompt_tokens * 1.0 + summary.completion_tokens * 2.0) / 1e6)
    # a rerun retries the failed images (they are not in the label file) and skips the others
    with LocalChatServer() as server:
        again = run_annotation(ws, config(server, limit=3))
    assert again.skipped == 2 and again.done == 3 and again.failed == 0
    ids = [r["id"] for r in records(ws.annotations / "openai.jsonl")]
    assert len(ids) == len(set(ids)) == 5 and {f["id"] for f in fails} <= set(ids)


def test_a_server_that_refuses_structured_output_gets_plain_json(ws):
    with LocalChatServer(reject_response_format=True) as server:
        summary = run_annotation(ws, config(server, limit=5, concurrency=3, mode="vision"))
        assert server.served["reject_response_format"] >= 1
        assert server.served["ok"] == 5  # every image answered after the fallback
    assert summary.events["structured_output_refused"] == 1 and summary.failed == 0
    assert len(records(ws.annotations / "openai.jsonl")) == 5
    assert any("plain JSON" in line for line in summary.lines())


def test_dry_run_prints_the_prompt_and_sends_nothing(ws, capsys):
    with LocalChatServer() as server:
        run_annotation(ws, config(server, dry_run=True, price_in=0.15, price_out=0.6))
        assert server.requests == 0
    out = capsys.readouterr().out
    assert "warm: dominated by reds, oranges and yellows" in out and "saturation_p90 = " in out
    assert "estimated tokens per image" in out and "estimated cost" in out
    assert not (ws.annotations / "openai.jsonl").exists()


def test_the_api_key_never_appears_in_output_files_or_errors(ws):
    with LocalChatServer(plan={1: "echo_key", 2: "ok", 3: "ok"}) as server:
        r = run_cli("annotate", "--backend", "openai", "--mode", "stats", "--base-url", server.base_url,
                    "--limit", "3", "--concurrency", "1", "--retry-delay", "0.001", workdir=ws.root,
                    env={"OPENAI_API_KEY": KEY})
        assert server.authorizations == {f"Bearer {KEY}"}  # the key was sent ...
    with LocalChatServer(plan=lambda n, body: "401") as server:  # a bad key stops the run
        with pytest.raises(ArtgenError) as err:
            run_annotation(ws, config(server, limit=2, model=backend.DEFAULT_MODEL))  # the CLI run's model: the same labelling
    assert r.returncode == 0 and "1 failed" in r.stderr and "[redacted]" in (ws.annotations / "openai.failures.jsonl").read_text()
    assert "refused the API key (401)" in str(err.value)
    texts = [r.stdout, r.stderr, str(err.value), repr(err.value)] + [p.read_text() for p in ws.annotations.iterdir()]
    assert all(KEY not in t and KEY[:12] not in t for t in texts)  # ... and never shown


def _popen(ws: Path, base_url: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "artgen", "--workdir", str(ws), "annotate", "--backend", "openai",
           "--mode", "stats", "--base-url", base_url, "--concurrency", "4", "--retry-delay", "0.001", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "OPENAI_API_KEY": KEY},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never reached {n} lines (rc {proc.poll()})")


def test_sigkill_at_any_moment_then_rerun_gives_every_image_exactly_once(ws):
    out = ws.annotations / "openai.jsonl"
    with LocalChatServer(latency=0.03) as server:  # slow enough that each kill lands mid-run
        for stop_after in (7, 40):
            proc = _popen(ws.root, server.base_url)
            _wait_for_lines(out, stop_after, proc)
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            assert proc.returncode == -signal.SIGKILL
        with open(out, "ab") as f:  # as if the kill had landed in the middle of a write
            f.write(b'{"id": "synth-7-00119", "adjectives": ["wa')
        proc = _popen(ws.root, server.base_url)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "repaired: cut a torn last line" in err
    ids = [r["id"] for r in records(out)]  # every line parses
    assert len(ids) == len(set(ids)) == 120


def test_ctrl_c_stops_cleanly_with_a_summary_and_the_rerun_finishes(ws):
    out = ws.annotations / "openai.jsonl"
    with LocalChatServer(latency=0.1) as server:
        proc = _popen(ws.root, server.base_url)
        _wait_for_lines(out, 5, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "annotate interrupted" in err and "rerun the same command to resume" in err and "Traceback" not in err
        first = len(records(out))
        assert 5 <= first < 120
        proc = _popen(ws.root, server.base_url)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and f"{120 - first} done, {first} skipped" in err
    assert len({r["id"] for r in records(out)}) == len(records(out)) == 120


def test_a_run_in_which_every_request_failed_exits_non_zero(ws):
    with LocalChatServer(plan=lambda n, body: "500") as server:
        r = run_cli("annotate", "--backend", "openai", "--mode", "stats", "--base-url", server.base_url, "--limit", "2",
                    "--concurrency", "1", "--max-retries", "1", "--retry-delay", "0.001", "--split", "test",
                    workdir=ws.root, env={"OPENAI_API_KEY": KEY})
    assert r.returncode == 2 and "no painting was labelled" in r.stderr and "Traceback" not in r.stderr


def test_two_annotate_runs_at_once_label_and_bill_every_painting_once(ws):
    out = ws.annotations / "openai.jsonl"
    with LocalChatServer(latency=0.03) as server:
        first = _popen(ws.root, server.base_url)
        _wait_for_lines(out, 3, first)  # the first run holds the lock and is writing
        second = _popen(ws.root, server.base_url)
        _, err2 = second.communicate(timeout=120)
        _, err1 = first.communicate(timeout=120)
        requests = server.requests
    assert first.returncode == 0, err1
    assert second.returncode == 2 and len(err2.strip().splitlines()) == 1, err2
    assert f"pid {first.pid}" in err2 and "annotate" in err2 and "Traceback" not in err2
    ids = [r["id"] for r in records(out)]
    assert len(ids) == len(set(ids)) == 120 and requests == 120  # labelled once, billed once


def test_a_base_url_without_a_scheme_is_refused_up_front(ws, capsys):
    from artgen.app.cli import main

    with pytest.raises(ArtgenError) as err:
        run_annotation(ws, AnnotateConfig(backend="openai", mode="stats", base_url="localhost:11434/v1", limit=2,
                                          max_retries=0, base_delay=0.001, show_progress=False))
    assert "http://localhost:11434/v1" in str(err.value) and not (ws.annotations / "openai.failures.jsonl").exists()
    assert main(["--workdir", str(ws.root), "annotate", "--backend", "openai", "--base-url", "localhost:8000/v1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not start with http:// or https://" in err[0] and "--base-url" in err[0]


def test_a_dead_server_stops_the_run_after_a_few_attempts_and_keeps_the_finished_labels(ws):
    with LocalChatServer() as server:
        run_annotation(ws, config(server, limit=3))
    # the server is gone: nothing listens on its port any more
    t0 = time.monotonic()
    with pytest.raises(ArtgenError) as err:
        run_annotation(ws, config(server, concurrency=2))  # 117 paintings pending
    msg = str(err.value)
    assert f"the server at {server.base_url} is not reachable" in msg and "start it or fix --base-url" in msg
    assert "\n" not in msg and time.monotonic() - t0 < 30
    assert len(records(ws.annotations / "openai.jsonl")) == 3  # finished work is kept
    assert len(records(ws.annotations / "openai.failures.jsonl")) <= 2  # not 117 paintings tried in turn


def test_connection_drops_after_the_server_has_answered_are_retried_not_fatal(ws):
    with LocalChatServer(plan=lambda n, body: "drop" if 2 <= n <= 9 else "ok") as server:
        summary = run_annotation(ws, config(server, limit=4))
    assert summary.done == 2 and summary.failed == 2 and summary.retries["connection"] == 6


def test_a_reasoning_model_that_refuses_max_tokens_and_temperature_gets_what_it_accepts(ws):
    bodies = []
    with LocalChatServer(reject_params=("max_tokens", "temperature"),
                         plan=lambda n, body: bodies.append(body) or "ok") as server:
        summary = run_annotation(ws, config(server, limit=4, concurrency=2, max_tokens=2000))
    assert summary.done == 4 and summary.failed == 0
    assert dict(summary.events) == {"max_tokens_unsupported": 1, "temperature_unsupported": 1}
    assert all(b["max_completion_tokens"] == 2000 and "max_tokens" not in b and "temperature" not in b
               and "response_format" in b for b in bodies)  # structured output was never turned off
    notes = [line for line in summary.lines() if "note:" in line]
    assert len(notes) == 2 and not any("plain JSON" in line for line in notes)
    assert any("max_completion_tokens" in line for line in notes)


def test_a_400_that_does_not_name_structured_output_fails_the_painting_only(ws):
    bodies = []
    with LocalChatServer(plan=lambda n, body: bodies.append(body) or ("400" if n == 1 else "ok")) as server:
        summary = run_annotation(ws, config(server, limit=2))
    assert not summary.events and summary.done == 1 and summary.failed == 1
    assert all("response_format" in b for b in bodies)  # structured output stays on
    [fail] = records(ws.annotations / "openai.failures.jsonl")
    assert fail["reason"] == "the server rejected the request (400): the image is too large"


def test_an_answer_cut_by_the_token_limit_says_so(ws, capsys):
    from artgen.app.cli import main

    bodies = []
    with LocalChatServer(plan=lambda n, body: bodies.append(body) or "length") as server:
        summary = run_annotation(ws, config(server, limit=3, max_retries=1, max_tokens=64))
        assert summary.failed == 3 and summary.retries["length"] == 3 and {b["max_tokens"] for b in bodies} == {64}
        reasons = {f["reason"] for f in records(ws.annotations / "openai.failures.jsonl")}
        assert reasons == {"length: gave up after 2 attempts: the answer was cut at 64 tokens (finish_reason length): "
                           "raise --max-tokens"}
        # when every answer is cut, the run stops early with one line
        rc = main(["--workdir", str(ws.root), "annotate", "--backend", "openai", "--mode", "stats", "--base-url",
                   server.base_url, "--max-tokens", "80", "--concurrency", "1", "--retry-delay", "0.001"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]  # not the progress bar
    assert rc == 2 and len(err) == 1 and "cut at 80 tokens" in err[0] and "raise --max-tokens" in err[0], err
    assert bodies[-1]["max_tokens"] == 80 and len(bodies) < 20


def test_a_reply_that_is_not_a_chat_completion_is_retried_then_a_failure_not_a_crash(ws):
    faults = {1: "html", 2: "html", 3: "sse", 4: "no_message"}
    with LocalChatServer(plan=lambda n, body: faults.get(n, "ok")) as server:
        summary = run_annotation(ws, config(server, limit=3, max_retries=1))
    assert summary.done == 1 and summary.failed == 2 and summary.retries["malformed"] == 2
    reasons = [f["reason"] for f in records(ws.annotations / "openai.failures.jsonl")]
    assert all(r.startswith("malformed: gave up after 2 attempts: the server did not answer with an OpenAI chat "
                            "completion") for r in reasons)
    assert "<!doctype html>" in reasons[0] and "no choices[0].message" in reasons[1]
    # a server that never answers with one (a web page on the wrong port) stops the run
    with LocalChatServer(plan=lambda n, body: "html") as server:
        with pytest.raises(ArtgenError) as err:
            run_annotation(ws, config(server, max_retries=1))
        assert server.requests < 20
    assert "did not answer with an OpenAI chat completion" in str(err.value) and "--base-url" in str(err.value)
    assert len(records(ws.annotations / "openai.jsonl")) == 1


def test_retry_after_is_obeyed_on_any_retried_status_and_408_409_are_retried(ws, slept):
    with LocalChatServer(plan={1: "503", 3: "408", 5: "409"}, retry_after=7) as server:
        summary = run_annotation(ws, config(server, limit=3))
    assert summary.done == 3 and summary.failed == 0
    assert dict(summary.retries) == {"server_error": 1, "timeout": 1, "conflict": 1}
    assert slept[0] == 7  # the 503's Retry-After, not the 1 ms backoff


def test_an_unreadable_answer_is_followed_by_a_format_reminder_not_the_same_request(ws):
    bodies = []

    def plan(n, body):
        bodies.append(body)
        return "malformed" if n == 1 else "ok"

    with LocalChatServer(plan=plan) as server:
        summary = run_annotation(ws, config(server, limit=1))
    assert summary.done == 1 and len(bodies) == 2
    second = bodies[1]["messages"]
    assert second[:-2] == bodies[0]["messages"] and second[-2]["role"] == "assistant"
    assert "could not be read" in second[-1]["content"] and '{"adjectives"' in second[-1]["content"]


def test_a_model_whose_answers_are_never_readable_stops_the_run(ws):
    with LocalChatServer(plan=lambda n, body: "malformed") as server:
        with pytest.raises(ArtgenError) as err:
            run_annotation(ws, config(server, concurrency=1, max_retries=1))
        requests = server.requests
    assert "could be read as a list of adjectives" in str(err.value) and "--model" in str(err.value)
    assert requests <= 2 * backend.GIVE_UP_AFTER  # not 2 attempts for each of 120 paintings


def test_an_answer_a_reasoning_parser_put_in_reasoning_content_is_read(ws):
    answer = 'reasoning:{"adjectives": ["warm", "vivid", "chaotic"]}'
    with LocalChatServer(plan=lambda n, body: answer) as server:
        summary = run_annotation(ws, config(server, limit=2))
    assert summary.done == 2 and [r["adjectives"] for r in records(ws.annotations / "openai.jsonl")] == [
        ["warm", "vivid", "chaotic"]] * 2


def test_a_second_model_does_not_silently_join_another_models_labelling(ws):
    with LocalChatServer() as server:
        run_annotation(ws, config(server, limit=2, model="llava"))
        with pytest.raises(ArtgenError) as err:
            run_annotation(ws, config(server, limit=2, model="gpt-4o-mini"))
        assert server.requests == 2
    msg = str(err.value)
    assert "2 paintings labelled by model 'llava' (stats mode)" in msg and "--model llava" in msg and "move openai.jsonl" in msg
    assert len(records(ws.annotations / "openai.jsonl")) == 2  # kept as it was


def test_openai_base_url_from_the_environment_is_used_and_cleaned(ws, monkeypatch):
    with LocalChatServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", f" {server.base_url}/chat/completions ")
        summary = run_annotation(ws, config(server, base_url=None, limit=2))
        assert summary.done == 2 and server.requests == 2


def test_a_query_string_on_the_base_url_goes_with_every_request(ws):
    with LocalChatServer() as server:
        summary = run_annotation(ws, config(server, base_url=server.base_url + "?api-version=2024-06-01", limit=1))
    assert summary.done == 1 and server.paths == ["/v1/chat/completions?api-version=2024-06-01"]


def test_a_server_that_rejects_every_request_the_same_way_stops_the_run(ws):
    with LocalChatServer(plan=lambda n, body: "400") as server:
        with pytest.raises(ArtgenError) as err:
            run_annotation(ws, config(server, concurrency=1))
        requests = server.requests
    assert "rejected the first 8 requests the same way (400:" in str(err.value) and requests == backend.GIVE_UP_AFTER


def test_a_server_that_wants_a_key_when_none_is_set_says_so(ws, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with LocalChatServer(plan=lambda n, body: "401") as server:
        with pytest.raises(ArtgenError) as err:
            run_annotation(ws, config(server, limit=1))
    assert "asks for an API key (401) and OPENAI_API_KEY is not set" in str(err.value)


def test_a_server_that_never_answers_in_time_stops_the_run(ws):
    with LocalChatServer(plan=lambda n, body: "slow", slow_seconds=1.0) as server:
        t0 = time.monotonic()
        with pytest.raises(ArtgenError) as err:
            run_annotation(ws, config(server, concurrency=4, timeout=0.2, max_retries=1))
    assert "answered none of 8 retried requests within --timeout 0.2 s" in str(err.value) and time.monotonic() - t0 < 20


def test_a_first_wave_of_timeouts_is_retried_not_fatal(ws):
    """A local server still loading its model times out every first request: retried, not the end."""
    with LocalChatServer(plan=lambda n, body: "slow" if n <= 8 else "ok", slow_seconds=1.0) as server:
        summary = run_annotation(ws, config(server, concurrency=8, timeout=0.2, max_retries=2, limit=8))
    assert summary.done == 8 and summary.retries["timeout"] >= 8


def test_parse_answer_survives_answers_that_break_a_python_literal():
    from annotate.prompt import parse_answer

    assert parse_answer('{["warm", "vivid", "calm"]}') == ["warm", "vivid", "calm"]  # the list inside is read
    assert parse_answer('{"adjectives": {["warm"]}}') == ["warm"]
    with pytest.raises(ValueError):  # a ValueError (the painting is retried), not a TypeError that ends the run
        parse_answer("{{'warm': 1}: 2}")


def test_ctrl_c_ends_a_retry_wait_at_once_and_leaves_the_painting_for_the_next_run(ws):
    import threading

    with LocalChatServer(plan=lambda n, body: "503", retry_after=30) as server:  # every retry waits 30 s
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        summary = run_annotation(ws, config(server, limit=2, max_retries=3))
    assert summary.interrupted and summary.failed == 0 and time.monotonic() - t0 < 10
    assert not records(ws.annotations / "openai.failures.jsonl")


def test_the_summary_hints_at_rate_limits_and_says_when_the_server_counted_no_tokens(tmp_path):
    from collections import Counter

    from annotate.pipeline import Summary

    summary = Summary("openai", "m", "stats", tmp_path / "a.jsonl", tmp_path / "f.jsonl", done=3, failed=2,
                      retries=Counter(rate_limit=12))
    text = "\n".join(summary.lines())
    assert "lower --concurrency" in text and "reported no token usage" in text
    summary = Summary("openai", "m", "stats", tmp_path / "a.jsonl", tmp_path / "f.jsonl", done=3, prompt_tokens=900)
    text = "\n".join(summary.lines())
    assert "--concurrency" not in text and "no token usage" not in text
