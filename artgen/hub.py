"""Where a checkpoint lives: a local folder, or a Hugging Face Hub repo id fetched into the
local Hub cache, so `from_pretrained` loads both the same way (as `transformers` does).

    local_dir("artgen-work/checkpoints/tiny-ar", MODEL_FILES, "model")   # a folder: as it is
    local_dir("someone/artgen-tiny-ar", MODEL_FILES, "model")            # a repo id: its snapshot

A name that is a folder here is always the folder; one that is not, and reads like
`owner/name`, is a repo id. Offline (`HF_HUB_OFFLINE=1`) only the local Hub cache is read.
An unreachable hub or a missing repo is one ArtgenError naming the fix.
"""

from __future__ import annotations

import re
from pathlib import Path

from artgen.errors import ArtgenError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def local_dir(name_or_dir: str | Path, files: list[str], what: str) -> Path:
    """The folder to read `files` (glob patterns) from: `name_or_dir` itself, or the snapshot
    of the hub repo it names."""
    path = Path(name_or_dir).expanduser()
    if path.exists() or not HUB_ID.match(str(name_or_dir)):
        return path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(name_or_dir), allow_patterns=files))
    except Exception as e:  # offline, unreachable, no such repo, no access: never a traceback
        first = (str(e).splitlines() or [""])[0][:120]
        raise ArtgenError(
            f"{what} {str(name_or_dir)!r} is not a folder here and could not be fetched from the Hugging Face Hub "
            f"({type(e).__name__}: {first}): give a local folder, or download it where the hub is reachable "
            f"(`hf download {name_or_dir} --local-dir DIR`) and pass DIR") from e
