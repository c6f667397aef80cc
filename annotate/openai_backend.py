"""The LLM annotator: any OpenAI-compatible chat server (OpenAI, vLLM, Ollama, LM Studio)
through the official async `openai` client.

The client's own retries are off (`max_retries=0`): this module retries by itself so it can
count retries by cause, honour `Retry-After`, and answer a reply it cannot read with one reminder of the
format (not the same request again). Structured output (`response_format` with a JSON schema) is tried first; a server
that refuses it with a 400 naming it is asked again, for the rest of the run, with plain JSON
parsing. A 400 that names `max_tokens` or `temperature` as unsupported (OpenAI's reasoning
models) is answered the same way: `max_completion_tokens` instead, the model's own
temperature. A run whose first requests all fail the same hopeless way (no server at the
URL, no chat completion, retries that time out too, answers unreadable after the reminder,
the same 4xx refusal, every answer cut by the token limit) stops with one line instead of
retrying painting after painting. The API key is redacted from every message this module
produces.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import openai
from openai import AsyncOpenAI

from annotate.normalise import normalise
from annotate.prompt import RESPONSE_FORMAT, corrective_message, format_reminder, parse_answer
from artgen.errors import ArtgenError

DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_URL = "https://api.openai.com/v1"
# A key for servers that ignore it (vLLM, Ollama, LM Studio) when OPENAI_API_KEY is unset.
PLACEHOLDER_KEY = "not-needed"
# Statuses retried besides 5xx (as the openai client does), by cause.
RETRIED_STATUS = {408: "timeout", 409: "conflict", 429: "rate_limit"}
# The run stops when this many attempts failed the same hopeless way before any painting was
# answered: retrying each of 9,735 paintings would take hours to fail.
GIVE_UP_AFTER = 8
# A 400 that names one of these is the server refusing structured output.
STRUCTURED_WORDS = ("response_format", "response format", "json_schema", "json schema", "structured output",
                    "structured_output", "guided", "grammar")
# What the summary says about each change made during a run.
EVENT_NOTES = {
    "structured_output_refused": "the server refused structured output (response_format): fell back to plain JSON "
                                 "answers",
    "max_tokens_unsupported": "the server does not accept max_tokens: sent max_completion_tokens instead",
    "max_completion_tokens_unsupported": "the server does not accept max_completion_tokens either: sent no token limit",
    "temperature_unsupported": "the server does not accept the temperature: left it at the model's default",
}


@dataclass
class ClientConfig:
    base_url: str | None = None  # None: OpenAI
    default_query: dict | None = None  # query parameters every request carries (Azure's api-version)
    model: str = DEFAULT_MODEL
    timeout: float = 60.0  # seconds per request
    max_retries: int = 5  # retries per request after the first attempt
    base_delay: float = 1.0  # backoff: base_delay * 2**attempt, times a jitter in [0.5, 1.5)
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # a server asking to wait longer than this is not obeyed in full
    temperature: float = 0.0
    max_tokens: int = 120  # the answer's token budget (a reasoning model thinks inside it)
    structured: bool = True  # try response_format with the JSON schema first


def resolve_api_key(base_url: str | None) -> str:
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if key:
        return key
    if base_url is None or "api.openai.com" in base_url:
        raise ArtgenError("OPENAI_API_KEY is not set: export your key, or pass --base-url for a local "
                          "server (vLLM, Ollama, LM Studio) that needs none")
    return PLACEHOLDER_KEY


class Failure(Exception):
    """This image could not be annotated (after retries); the run goes on."""


class Stopped(Exception):
    """The run is being stopped (Ctrl-C): this painting is left for the next run, not failed."""


class NotChatCompletion(ValueError):
    """A 200 reply that is not an OpenAI chat completion (an HTML page, an SSE stream, ...)."""


@dataclass
class Annotation:
    adjectives: list[str]
    extra: list[str]
    overflow: list[str]  # vocabulary words beyond the fifth
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0


def _retry_after(response) -> float | None:
    """Seconds from `Retry-After` (seconds or an HTTP date) or `retry-after-ms`, else None."""
    if response is None:
        return None
    headers = response.headers
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


@dataclass
class OpenAIAnnotator:
    cfg: ClientConfig
    api_key: str
    retries: Counter = field(default_factory=Counter)  # cause -> retries made
    events: Counter = field(default_factory=Counter)  # e.g. structured output refused

    def __post_init__(self):
        self.structured = self.cfg.structured
        self.token_param: str | None = "max_tokens"  # then max_completion_tokens, then none
        self.send_temperature = True
        self.answered = 0  # replies parsed into a word list, in this run
        self.hopeless: Counter = Counter()  # kind -> attempts failed that way while answered == 0
        self.fatal: str | None = None  # set once the run cannot go on; every request then stops
        self.stop: asyncio.Event | None = None  # set on Ctrl-C: no more retries or waits, answers in flight still kept
        self.client = AsyncOpenAI(base_url=self.cfg.base_url or OPENAI_URL, api_key=self.api_key,
                                  max_retries=0, timeout=self.cfg.timeout, default_query=self.cfg.default_query)

    def redact(self, text: str) -> str:
        text = str(text)
        if self.api_key and self.api_key != PLACEHOLDER_KEY:
            text = text.replace(self.api_key, "[redacted]")
        return text

    async def close(self) -> None:
        await self.client.close()

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.cfg.max_delay, self.cfg.base_delay * 2 ** attempt) * (0.5 + random.random())
        if retry_after is not None and retry_after > 0:  # the server said how long: obey (up to a cap)
            return min(retry_after, self.cfg.max_retry_after)
        return backoff

    def _request(self, messages: list[dict]) -> dict:
        kwargs = dict(model=self.cfg.model, messages=messages)
        if self.send_temperature:
            kwargs["temperature"] = self.cfg.temperature
        if self.token_param:
            kwargs[self.token_param] = self.cfg.max_tokens
        if self.structured:
            kwargs["response_format"] = RESPONSE_FORMAT
        return kwargs

    def _adapt(self, kwargs: dict, e: openai.BadRequestError) -> bool:
        """After a 400: stop sending, for the rest of the run, the parameter it refused. True
        when the request is to be sent again (the settings have changed since it was sent)."""
        param = _unsupported_parameter(e)
        if param == "temperature" and "temperature" in kwargs:
            if self.send_temperature:
                self.send_temperature = False
                self.events["temperature_unsupported"] += 1
            return True
        if param in ("max_tokens", "max_completion_tokens") and param in kwargs:
            if self.token_param == param:
                self.token_param = "max_completion_tokens" if param == "max_tokens" else None
                self.events[f"{param}_unsupported"] += 1
            return True
        if "response_format" in kwargs and _names_structured_output(e):
            if self.structured:
                self.structured = False
                self.events["structured_output_refused"] += 1
            return True
        return False

    def _token_limit(self) -> str:
        """Where a cut answer stopped, as the failure messages say it."""
        return f"at {self.cfg.max_tokens} tokens" if self.token_param else "by the server's token limit"

    def _give_up_if_hopeless(self, kind: str, detail: str) -> None:
        """Count an attempt that failed in a way no retry mends while no painting was answered;
        after GIVE_UP_AFTER of one kind the run cannot go on."""
        if self.answered or self.fatal:
            return
        self.hopeless[kind] += 1
        n = self.hopeless[kind]
        if n < GIVE_UP_AFTER:
            return
        url = self.cfg.base_url or OPENAI_URL
        if kind == "connection":
            self.fatal = (f"the server at {url} is not reachable ({n} connection attempts failed, no painting "
                          "answered): start it or fix --base-url")
        elif kind == "not_chat":
            self.fatal = (f"the server at {url} did not answer with an OpenAI chat completion ({n} replies, {detail}): "
                          "check --base-url (an OpenAI-compatible API usually ends in /v1)")
        elif kind == "timeout":
            self.fatal = (f"the server at {url} answered none of {n} retried requests within --timeout {self.cfg.timeout:g} s "
                          "(no painting answered): check that it is serving the model, or raise --timeout for a slow one")
        elif kind == "unreadable":
            self.fatal = (f"none of {n} answers of model {self.cfg.model!r} could be read as a list of adjectives, "
                          f"even after asking again for JSON (last: {detail}): try another --model, or --mode stats")
        elif kind.startswith("rejected: "):
            self.fatal = (f"the server rejected the first {n} requests the same way ({kind[len('rejected: '):]}): "
                          "check --model and --base-url")
        else:
            self.fatal = (f"every answer was cut {self._token_limit()} (finish_reason length, {n} replies) before any painting "
                          "was labelled: raise --max-tokens (reasoning models need 1000 or more)")
        self.fatal = self.redact(self.fatal)

    def _rejected(self, status: int, e) -> Failure:
        """A request the server refused (4xx, not retried): this painting fails; the same refusal
        of every first request ends the run."""
        message = self.redact(_message(e))
        self._give_up_if_hopeless(f"rejected: {status}: {message}", "")  # per message: one painting's own refusal is not the run's
        return Failure(f"the server rejected the request ({status}): {message}")

    async def _wait(self, seconds: float) -> None:
        """Sleep before a retry; returns early (raising Stopped) when the run is being stopped."""
        if self.stop is None:
            await asyncio.sleep(seconds)
            return
        sleeper, stopper = asyncio.ensure_future(asyncio.sleep(seconds)), asyncio.ensure_future(self.stop.wait())
        try:
            done, _ = await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this wait is itself cancelled
            sleeper.cancel()
            stopper.cancel()
        if stopper in done:
            raise Stopped()

    async def _complete(self, messages: list[dict], usage: Usage) -> tuple[list[str], str]:
        """One answer's raw word list and text, retrying transient failures; an answer that
        cannot be read is followed by one reminder of the format instead of the same request."""
        failures = 0
        asked = messages
        while True:
            if self.fatal:
                raise ArtgenError(self.fatal)
            if self.stop is not None and self.stop.is_set():
                raise Stopped()
            kwargs = self._request(asked)
            retry_after, detail = None, ""
            usage.attempts += 1
            try:
                resp = await self.client.chat.completions.create(**kwargs)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as e:
                if self._adapt(kwargs, e):
                    continue
                raise self._rejected(e.status_code, e) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
                if self.api_key == PLACEHOLDER_KEY:
                    raise ArtgenError(self.redact(
                        f"the server at {self.cfg.base_url or OPENAI_URL} asks for an API key ({e.status_code}) and "
                        "OPENAI_API_KEY is not set: export OPENAI_API_KEY=<the server's key>")) from None
                raise ArtgenError(self.redact(
                    f"the server refused the API key ({e.status_code}): check OPENAI_API_KEY and --base-url")) from None
            except openai.NotFoundError as e:
                raise ArtgenError(self.redact(
                    f"the server has no model {self.cfg.model!r} or no chat endpoint at this URL (404): "
                    f"check --model and --base-url{_v1_hint(self.cfg.base_url)} ({_message(e)})")) from None
            except openai.APITimeoutError:
                cause = "timeout"
                if failures:  # a retry that timed out too: a first wave of timeouts may be a model still loading
                    self._give_up_if_hopeless("timeout", "")
            except openai.APIConnectionError:
                cause = "connection"
                self._give_up_if_hopeless("connection", "")
            except openai.APIStatusError as e:
                cause = RETRIED_STATUS.get(e.status_code) or ("server_error" if e.status_code >= 500 else None)
                if cause is None:
                    raise self._rejected(e.status_code, e) from None
                retry_after = _retry_after(e.response)  # on any retried status, as the server asked
            else:
                _count_usage(resp, usage)
                try:
                    text, finish_reason = _chat_content(resp)
                except NotChatCompletion as e:
                    cause, detail = "malformed", str(e)
                    self._give_up_if_hopeless("not_chat", detail)
                else:
                    try:
                        try:
                            words = parse_answer(text)
                        except ValueError:
                            reasoning = None if (text or "").strip() else _reasoning(resp)
                            if reasoning is None or finish_reason == "length":  # cut while thinking: no answer in it
                                raise
                            words = parse_answer(reasoning, bare=False)  # the JSON in it, else that text's error
                    except ValueError as e:
                        if finish_reason == "length":
                            cause = "length"
                            detail = f"the answer was cut {self._token_limit()} (finish_reason length): raise --max-tokens"
                            self._give_up_if_hopeless("length", detail)
                        else:
                            cause, detail = "malformed", str(e)
                            if asked is not messages:  # unreadable even after the reminder
                                self._give_up_if_hopeless("unreadable", " ".join(str(text or "")[:60].split()) or "empty")
                            if text and text.strip():  # the same request would get the same answer: remind it of the format
                                asked = [*messages, {"role": "assistant", "content": text[:1000]}, format_reminder()]
                    else:
                        self.answered += 1
                        return words, text
            if self.fatal:
                raise ArtgenError(self.fatal)
            if failures >= self.cfg.max_retries:
                raise Failure(self.redact(f"{cause}: gave up after {failures + 1} attempts" + (f": {detail}" if detail else "")))
            self.retries[cause] += 1
            await self._wait(self._delay(failures, retry_after))
            failures += 1

    async def annotate(self, messages: list[dict]) -> Annotation:
        """3-5 vocabulary adjectives for one painting's prompt; raises Failure."""
        usage = Usage()
        try:
            words, text = await self._complete(messages, usage)
            norm = normalise(words)
            extra = list(norm.extra)
            if len(norm.adjectives) < 3:
                # one corrective retry, then give up on this image
                self.retries["too_few_words"] += 1
                follow = [*messages, {"role": "assistant", "content": text},
                          corrective_message(norm.adjectives, norm.extra)]
                words, _ = await self._complete(follow, usage)
                norm = normalise(words)
                extra += [w for w in norm.extra if w not in extra]
                if len(norm.adjectives) < 3:
                    raise Failure(f"fewer than 3 vocabulary adjectives after a corrective retry: "
                                  f"got {norm.adjectives}, outside the vocabulary {extra}")
        except (Failure, Stopped) as e:  # the tokens of the attempts made are billed all the same
            e.usage = usage
            raise
        return Annotation(norm.adjectives[:5], extra, norm.adjectives[5:], usage.prompt_tokens,
                          usage.completion_tokens, usage.attempts)


def _count_usage(resp, usage: Usage) -> None:
    u = getattr(resp, "usage", None)
    for name in ("prompt_tokens", "completion_tokens"):
        n = getattr(u, name, None)
        if isinstance(n, int):
            setattr(usage, name, getattr(usage, name) + n)


def _chat_content(resp) -> tuple[str | None, str | None]:
    """(text, finish_reason) of a chat completion's first choice; NotChatCompletion for a
    reply that is not one (the openai client hands over an HTML page or an SSE stream as str)."""
    if isinstance(resp, (str, bytes)):
        got = " ".join(str(resp[:60] if isinstance(resp, str) else resp[:60].decode(errors="replace")).split())
        raise NotChatCompletion(f"the server did not answer with an OpenAI chat completion: got {got!r}")
    choices = getattr(resp, "choices", None)
    message = getattr(choices[0], "message", None) if isinstance(choices, list) and choices else None
    if message is None:
        raise NotChatCompletion("the server did not answer with an OpenAI chat completion: no choices[0].message")
    content, finish_reason = getattr(message, "content", None), getattr(choices[0], "finish_reason", None)
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    if content is not None and not isinstance(content, str):
        raise NotChatCompletion(f"the server did not answer with an OpenAI chat completion: content is a "
                                f"{type(content).__name__}")
    if not (content or "").strip():  # the answer as a tool call's arguments (servers that turn a JSON schema into a tool)
        calls = getattr(message, "tool_calls", None) or []
        arguments = getattr(getattr(calls[0], "function", None), "arguments", None) if calls else None
        content = arguments if isinstance(arguments, str) and arguments.strip() else content
    return content, finish_reason


def _reasoning(resp) -> str | None:
    """The reasoning field a server's reasoning parser fills (vLLM `reasoning_content`, others
    `reasoning`): where some put the whole answer, content left empty."""
    message = getattr(resp.choices[0], "message", None)
    return next((r for r in (getattr(message, k, None) for k in ("reasoning_content", "reasoning"))
                 if isinstance(r, str) and r.strip()), None)


def _v1_hint(base_url: str | None) -> str:
    """A hint for a base URL whose path has no /v1, where OpenAI-compatible servers serve the API."""
    from urllib.parse import urlsplit

    if base_url and "/v1" not in urlsplit(base_url).path:
        return " (an OpenAI-compatible API usually ends in /v1, e.g. http://localhost:8000/v1)"
    return ""


def _error_fields(e) -> dict:
    body = getattr(e, "body", None)
    err = body.get("error", body) if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {}


def _unsupported_parameter(e) -> str | None:
    """`max_tokens`, `max_completion_tokens` or `temperature` when a 400 says that parameter
    (or its value) is not supported, as OpenAI's reasoning models answer; else None."""
    names = ("max_tokens", "max_completion_tokens", "temperature")
    err = _error_fields(e)
    text = f"{err.get('code') or ''} {_message(e)}".lower()
    if "unsupported" not in text and "not supported" not in text:  # e.g. "max_tokens is too large": not ours to change
        return None
    if err.get("param") in names:
        return err["param"]
    found = [(text.find(n), n) for n in names if n in text]
    return min(found)[1] if found else None


def _names_structured_output(e) -> bool:
    text = f"{_message(e)} {getattr(e, 'body', '')}".lower()
    return any(w in text for w in STRUCTURED_WORDS)


def _message(e) -> str:
    """The server's own words: OpenAI's error.message, else a plain `error` string or FastAPI's
    `detail` (a string, or a list of {"msg": ...}), else the response text."""
    msg = _error_fields(e).get("message")
    body = getattr(e, "body", None)
    if not msg and isinstance(body, dict):
        detail = body.get("error") if isinstance(body.get("error"), str) else body.get("detail")
        if isinstance(detail, list):
            detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail[:3])
        msg = detail if isinstance(detail, str) else None
    if not msg and body is None and getattr(e, "response", None) is not None:
        try:
            msg = e.response.text[:200]
        except Exception:  # a streamed or closed response
            msg = None
    if msg:
        return " ".join(str(msg).split())[:200]
    return " ".join(str(getattr(e, "message", e)).split())[:200]
