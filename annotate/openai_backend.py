"""The LLM annotator: any OpenAI-compatible chat server (OpenAI, vLLM, Ollama, LM Studio)
through the official async `openai` client.

The client's own retries are off (`max_retries=0`): this module retries by itself so it can
count retries by cause, honour `Retry-After`, and treat a malformed reply like a failed
request. Structured output (`response_format` with a JSON schema) is tried first; a server
that refuses it with 400 is asked again, for the rest of the run, with plain JSON parsing.
The API key is redacted from every message this module produces.
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
from annotate.prompt import RESPONSE_FORMAT, corrective_message, parse_answer
from artgen.errors import ArtgenError

DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_URL = "https://api.openai.com/v1"
# A key for servers that ignore it (vLLM, Ollama, LM Studio) when OPENAI_API_KEY is unset.
PLACEHOLDER_KEY = "not-needed"


@dataclass
class ClientConfig:
    base_url: str | None = None  # None: OpenAI
    model: str = DEFAULT_MODEL
    timeout: float = 60.0  # seconds per request
    max_retries: int = 5  # retries per request after the first attempt
    base_delay: float = 1.0  # backoff: base_delay * 2**attempt, times a jitter in [0.5, 1.5)
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # a server asking to wait longer than this is not obeyed in full
    temperature: float = 0.0
    max_tokens: int = 120
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
        self.client = AsyncOpenAI(base_url=self.cfg.base_url or OPENAI_URL, api_key=self.api_key,
                                  max_retries=0, timeout=self.cfg.timeout)

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

    async def _complete(self, messages: list[dict], usage: Usage) -> tuple[list[str], str]:
        """One answer's raw word list and text, retrying transient failures."""
        failures = 0
        while True:
            structured = self.structured
            kwargs = dict(model=self.cfg.model, messages=messages, temperature=self.cfg.temperature,
                          max_tokens=self.cfg.max_tokens)
            if structured:
                kwargs["response_format"] = RESPONSE_FORMAT
            retry_after = None
            usage.attempts += 1
            try:
                resp = await self.client.chat.completions.create(**kwargs)
            except openai.BadRequestError as e:
                if structured:  # the server refuses the JSON schema: plain JSON from now on
                    if self.structured:
                        self.structured = False
                        self.events["structured_output_refused"] += 1
                    continue
                raise Failure(self.redact(f"the server rejected the request (400): {_message(e)}")) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
                raise ArtgenError(self.redact(
                    f"the server refused the API key ({e.status_code}): check OPENAI_API_KEY and --base-url")) from None
            except openai.NotFoundError as e:
                raise ArtgenError(self.redact(
                    f"the server has no model {self.cfg.model!r} or no chat endpoint at this URL (404): "
                    f"check --model and --base-url ({_message(e)})")) from None
            except openai.RateLimitError as e:
                cause, retry_after = "rate_limit", _retry_after(e.response)
            except openai.APITimeoutError:
                cause = "timeout"
            except openai.APIConnectionError:
                cause = "connection"
            except openai.APIStatusError as e:
                if e.status_code < 500:
                    raise Failure(self.redact(f"the server answered {e.status_code}: {_message(e)}")) from None
                cause = "server_error"
            else:
                if resp.usage is not None:
                    usage.prompt_tokens += resp.usage.prompt_tokens or 0
                    usage.completion_tokens += resp.usage.completion_tokens or 0
                text = resp.choices[0].message.content if resp.choices else None
                try:
                    return parse_answer(text), text or ""
                except ValueError:
                    cause = "malformed"
            if failures >= self.cfg.max_retries:
                raise Failure(f"{cause}: gave up after {failures + 1} attempts")
            self.retries[cause] += 1
            await asyncio.sleep(self._delay(failures, retry_after))
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
        except Failure as e:
            e.usage = usage
            raise
        return Annotation(norm.adjectives[:5], extra, norm.adjectives[5:], usage.prompt_tokens,
                          usage.completion_tokens, usage.attempts)


def _message(e) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else None
        if msg:
            return " ".join(str(msg).split())[:200]
    return " ".join(str(getattr(e, "message", e)).split())[:200]
