"""A loopback OpenAI-compatible chat server with scripted faults.

The fault-injection tests and `scripts/bench_annotate_server.py` run the real `openai`
client against it. It answers `POST /v1/chat/completions` after `latency` seconds with a
well-formed chat completion, unless the plan says otherwise for that request:

    ok          a JSON answer with three vocabulary adjectives
    429         rate limited, with `Retry-After: <retry_after>`
    503         service unavailable, with `Retry-After: <retry_after>`
    408, 409    request timeout / conflict (the openai client retries both)
    500         internal server error
    400         a bad request that has nothing to do with structured output
    slow        answers after `slow_seconds` (longer than the client's timeout)
    drop        closes the connection without answering
    malformed   200 with a reply that is not JSON
    oov         JSON with words outside the vocabulary (and synonyms, odd case, punctuation)
    few         JSON with fewer than 3 vocabulary words (a corrective retry follows)
    echo_key    422 whose error message repeats the request's Authorization header
    401         unauthorised, also repeating the Authorization header
    html        200 with an HTML page (a proxy or web UI on the wrong port)
    sse         200 with an SSE `data:` stream instead of one JSON completion
    no_message  200 with a choice that has no `message`
    length      200 with `content: null`, `reasoning_content` and `finish_reason: "length"`
                (a reasoning model that ran out of tokens while thinking)
    text:<s>    a well-formed completion whose content is <s>
    reasoning:<s>  `content: null` and <s> in `reasoning_content` (a vLLM reasoning parser that
                took the whole answer for reasoning)

`plan` maps a 1-based request number to a fault, or is a callable (n, body) -> fault.
`reject_params` (e.g. ("max_tokens", "temperature")) makes the server answer 400 as OpenAI's
reasoning models do when a request carries one of them (`unsupported_parameter`; for a
temperature other than 1, `unsupported_value`). Only 127.0.0.1 is bound.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

ANSWERS = (
    ["warm", "vivid", "chaotic"], ["cool", "calm", "geometric", "muted"], ["dark", "dense", "textured"],
    ["bright", "circular", "playful", "colorful", "rhythmic"],
)
OOV_ANSWER = ["Warm!", "sparkly", "VIVID", "tranquil", "zigzaggy"]  # -> warm, vivid, calm + extra
FEW_ANSWER = ["sparkly", "warm"]


class LocalChatServer:
    def __init__(self, latency: float = 0.0, plan: dict[int, str] | Callable[[int, dict], str] | None = None,
                 reject_response_format: bool = False, retry_after: float = 0.05, slow_seconds: float = 2.0,
                 reject_params: tuple[str, ...] = ()):
        self.latency = latency
        self.reject_params = reject_params
        self.plan = plan or {}
        self.reject_response_format = reject_response_format
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.requests = 0
        self.served: Counter = Counter()  # fault -> times served
        self.authorizations: set[str] = set()
        self.paths: list[str] = []  # each request's path, query string included
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _fault(self, n: int, body: dict) -> str:
        if callable(self.plan):
            return self.plan(n, body)
        return self.plan.get(n, "ok")

    def start(self) -> "LocalChatServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload, headers: dict | None = None,
                      content_type: str = "application/json") -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests += 1
                    n = server.requests
                    server.authorizations.add(self.headers.get("Authorization", ""))
                    server.paths.append(self.path)
                if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if server.reject_response_format and "response_format" in body:
                    with server._lock:
                        server.served["reject_response_format"] += 1
                    return self._send(400, {"error": {"message": "response_format is not supported", "type": "invalid_request_error"}})
                for param in server.reject_params:
                    if param in body and not (param == "temperature" and body[param] == 1):
                        with server._lock:
                            server.served[f"reject_{param}"] += 1
                        if param == "temperature":  # OpenAI's own wording
                            code, message = "unsupported_value", (f"Unsupported value: 'temperature' does not support "
                                                                  f"{body[param]} with this model. Only the default (1) "
                                                                  "value is supported.")
                        else:
                            code, message = "unsupported_parameter", (
                                f"Unsupported parameter: '{param}' is not supported with this model."
                                + (" Use 'max_completion_tokens' instead." if param == "max_tokens" else ""))
                        return self._send(400, {"error": {"message": message, "type": "invalid_request_error",
                                                          "param": param, "code": code}})
                fault = server._fault(n, body)
                with server._lock:
                    server.served[fault] += 1
                if server.latency:
                    time.sleep(server.latency)
                if fault == "429":
                    return self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                                      {"Retry-After": f"{server.retry_after:g}"})
                if fault == "503":
                    return self._send(503, {"error": {"message": "overloaded"}}, {"Retry-After": f"{server.retry_after:g}"})
                if fault in ("408", "409"):
                    return self._send(int(fault), {"error": {"message": f"try again ({fault})"}})
                if fault == "500":
                    return self._send(500, {"error": {"message": "boom"}})
                if fault == "400":
                    return self._send(400, {"error": {"message": "the image is too large", "type": "invalid_request_error"}})
                if fault == "html":
                    return self._send(200, b"<!doctype html><html><body>Open WebUI</body></html>", content_type="text/html")
                if fault == "sse":
                    chunk = {"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "choices": [
                        {"index": 0, "delta": {"content": json.dumps({"adjectives": ANSWERS[0]})}}]}
                    return self._send(200, f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode(),
                                      content_type="text/event-stream")
                if fault == "echo_key":
                    auth = self.headers.get("Authorization", "")
                    return self._send(422, {"error": {"message": f"cannot process request with {auth}"}})
                if fault == "401":
                    auth = self.headers.get("Authorization", "")
                    return self._send(401, {"error": {"message": f"invalid key {auth}", "type": "invalid_api_key"}})
                if fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "slow":
                    time.sleep(server.slow_seconds)
                corrective = len(body.get("messages", [])) > 2
                if fault == "no_message":
                    choice = {"index": 0, "finish_reason": "stop"}
                elif fault == "length":
                    choice = {"index": 0, "finish_reason": "length", "message": {
                        "role": "assistant", "content": None, "reasoning_content": "Okay, the user wants"}}
                elif fault.startswith("reasoning:"):
                    choice = {"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": None, "reasoning_content": fault[len("reasoning:"):]}}
                if fault in ("no_message", "length") or fault.startswith("reasoning:"):
                    return self._send(200, {
                        "id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
                        "model": body.get("model", "local"), "choices": [choice],
                        "usage": {"prompt_tokens": max(1, length // 4), "completion_tokens": 120,
                                  "total_tokens": max(1, length // 4) + 120}})
                if fault.startswith("text:"):
                    content = fault[len("text:"):]
                elif fault == "malformed":
                    content = "Sure! Here are some adjectives: warm, vivid"
                elif fault == "oov":
                    content = json.dumps({"adjectives": OOV_ANSWER})
                elif fault in ("few", "few_always") and (not corrective or fault == "few_always"):
                    content = json.dumps({"adjectives": FEW_ANSWER})
                else:
                    content = json.dumps({"adjectives": ANSWERS[n % len(ANSWERS)]})
                prompt_tokens = max(1, length // 4)
                return self._send(200, {
                    "id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "local"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 12, "total_tokens": prompt_tokens + 12},
                })

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> "LocalChatServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
