"""Checkpoints by Hugging Face Hub repo id: a repo id loads through its snapshot exactly as the
folder does, and an unreachable hub is one line naming the fix (no network here: the hub's
download is replaced by the local cache it would fill, or refused offline)."""

import subprocess
import sys

import pytest
import torch

from artgen.errors import ArtgenError
from artgen.generate import Generator
from artgen.hub import local_dir
from artgen.models.text_to_codes import TextToCodes


def test_a_repo_id_loads_its_snapshot_as_the_folder_loads(trained_workspace, monkeypatch):
    import huggingface_hub

    ws = trained_workspace
    folders = {"someone/artgen-tiny": ws.checkpoint("tiny"), "someone/artgen-vqvae": ws.checkpoint("vqvae")}
    asked = []

    def snapshot_download(repo_id, allow_patterns=None, **kwargs):  # what the hub cache would hold
        asked.append((repo_id, tuple(allow_patterns)))
        return str(folders[repo_id])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    by_id = Generator.from_pretrained("someone/artgen-tiny", "someone/artgen-vqvae")
    by_folder = Generator.from_pretrained(*folders.values())
    assert {r for r, _ in asked} == set(folders)
    assert ("someone/artgen-tiny", ("config.json", "model.safetensors", "encoder.json", "tokenizer/*")) in asked
    a = by_id.sample_codes(["warm, vivid"], seed=3)
    assert torch.equal(a, by_folder.sample_codes(["warm, vivid"], seed=3))
    # an existing folder is never taken for a repo id, even when its name reads like one
    monkeypatch.chdir(ws.root)
    asked.clear()
    TextToCodes.from_pretrained("checkpoints/tiny")
    assert asked == []


def test_a_name_that_is_neither_a_folder_nor_a_repo_id_keeps_the_train_hint(tmp_path):
    with pytest.raises(ArtgenError, match="artgen train"):
        TextToCodes.from_pretrained(tmp_path / "no" / "such" / "model")
    assert local_dir(tmp_path / "x", ["config.json"], "model") == tmp_path / "x"


def test_an_unreachable_hub_is_one_line_naming_the_fix(tmp_path):
    code = ("from artgen.models.text_to_codes import TextToCodes\n"
            "from artgen.errors import ArtgenError\n"
            "try:\n    TextToCodes.from_pretrained('nobody/no-such-artgen-model')\n"
            "except ArtgenError as e:\n    print('ERROR', e)\n")
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR model 'nobody/no-such-artgen-model' is not a folder here")
    assert "hf download nobody/no-such-artgen-model --local-dir DIR" in lines[0]
