"""`artgen annotate` (label the corpus) and `artgen annotate report` (measure the labels).

Wired into the `artgen` CLI by artgen/app/cli.py. Imports stay light here: each command
imports its library module when it runs.
"""

from __future__ import annotations

from typing import Optional

import typer

from artgen.errors import ArtgenError

annotate_app = typer.Typer(
    help="Label paintings with 3-5 vocabulary adjectives (`artgen annotate`), or measure the labels "
         "(`artgen annotate report`).",
    invoke_without_command=True,
)


@annotate_app.callback()
def annotate(
    ctx: typer.Context,
    backend: str = typer.Option("heuristic", help="heuristic (offline, image statistics) or openai (any OpenAI-compatible server)."),
    mode: str = typer.Option("vision", help="openai: vision (the image is sent) or stats (measured statistics as text, for text-only "
                                            "models)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 "
                                                                    "(default: $OPENAI_BASE_URL, else OpenAI). Key from OPENAI_API_KEY."),
    model: Optional[str] = typer.Option(None, help="Model name on the server (default gpt-4o-mini)."),
    concurrency: int = typer.Option(8, help="Requests in flight (openai)."),
    limit: Optional[int] = typer.Option(None, help="Annotate at most N new images."),
    split: str = typer.Option("all", help="train, test or all."),
    price_in: Optional[float] = typer.Option(None, "--price-in", help="USD per million prompt tokens, for the cost estimate."),
    price_out: Optional[float] = typer.Option(None, "--price-out", help="USD per million completion tokens."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the exact prompt for one image and its token estimate; send nothing."),
    timeout: float = typer.Option(60.0, help="Seconds per request before it is retried."),
    max_retries: int = typer.Option(5, "--max-retries", help="Retries per request (429, 5xx, timeouts, dropped connections, malformed "
                                                             "replies)."),
    retry_delay: float = typer.Option(1.0, "--retry-delay", help="Base of the exponential backoff, seconds."),
    max_tokens: int = typer.Option(120, "--max-tokens", help="openai: token budget of each answer (sent as max_tokens, or "
                                                              "max_completion_tokens where the server wants it); "
                                                              "reasoning models think inside it: give them 1000 or more."),
    workers: int = typer.Option(0, help="heuristic: worker processes (0: one per CPU core)."),
) -> None:
    """Label every painting of the corpus with 3-5 adjectives; resumable (a rerun skips finished images)."""
    if ctx.invoked_subcommand is not None:
        return
    import math

    from annotate.pipeline import AnnotateConfig, run_annotation
    from artgen.progress import console

    if not math.isfinite(timeout) or timeout <= 0 or max_retries < 0 or not math.isfinite(retry_delay) or retry_delay < 0 \
            or workers < 0:
        raise ArtgenError("--timeout must be positive and --max-retries, --retry-delay, --workers 0 or more: fix the option")
    for flag, price in (("--price-in", price_in), ("--price-out", price_out)):
        if price is not None and (not math.isfinite(price) or price < 0):
            raise ArtgenError(f"{flag} must be a finite number of USD >= 0 (got {price}): fix the option")
    ws = ctx.find_root().obj
    summary = run_annotation(ws, AnnotateConfig(
        backend=backend, mode=mode, base_url=base_url, model=model, concurrency=concurrency, limit=limit,
        split=split, price_in=price_in, price_out=price_out, dry_run=dry_run, timeout=timeout,
        max_retries=max_retries, base_delay=retry_delay, max_tokens=max_tokens, workers=workers))
    if dry_run:
        return
    for line in summary.lines():
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if summary.interrupted:
        raise Interrupted("interrupted by Ctrl-C: rerun the same command to resume")
    if summary.failed and not summary.done:
        raise ArtgenError(f"no painting was labelled: all {summary.failed} requests failed (see the lines above): "
                          "check --base-url, --model and the API key, then rerun (finished labels are kept)")


class Interrupted(ArtgenError):
    """Ctrl-C during a run: the summary is printed, the exit status is 130."""

    exit_code = 130


@annotate_app.command("report")
def report(
    ctx: typer.Context,
    against: str = typer.Option("gt", help="gt (the corpus ground truth) or an annotation JSONL file to compare with."),
    labels: str = typer.Option("auto", help="Labels to measure: auto (openai if present, else heuristic), heuristic, openai, or a "
                                            "JSONL path."),
    split: str = typer.Option("test", help="train, test or all."),
) -> None:
    """Per-adjective precision/recall/F1, micro/macro F1, Cohen's kappa per facet -> reports/annotation/."""
    from annotate.report import write_report
    from artgen.progress import console

    ws = ctx.find_root().obj
    result = write_report(ws, labels=labels, against=against, split=split)
    console.print(f"{result['labels']} vs {result['against']} on {result['split']} ({result['n_images']} images): "
                  f"micro-F1 {result['micro_f1']:.3f}, macro-F1 {result['macro_f1']:.3f} -> {result['paths']['json']}",
                  highlight=False, markup=False, soft_wrap=True)
