import pytest


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """A 120-painting synthetic corpus at 32 px, built once per test session."""
    from artgen.data.corpus import SynthConfig, synthesize

    ws = tmp_path_factory.mktemp("ws")
    synthesize(ws / "data", SynthConfig(count=120, size=32, seed=7, workers=1), show_progress=False)
    return ws


@pytest.fixture(scope="session")
def trained_workspace(small_corpus, tmp_path_factory):
    """The small corpus with a 2-step VQ-VAE, its latents and a 4-step tiny encoder + masked
    predictor (helpers.TINY), trained once per session for the bench, export and generate tests.
    Shared: a test that writes into a workspace works on `helpers.copy_workspace` of it."""
    import shutil

    import torch
    from helpers import TINY

    from artgen.training.predictor import train_predictor
    from artgen.training.vqvae import train_vqvae
    from artgen.workspace import Workspace

    root = tmp_path_factory.mktemp("trained")
    shutil.copytree(small_corpus / "data", root / "data")
    ws = Workspace(root)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # whichever module asks first: test_generate resumes it on one thread, to 1e-6
    try:
        train_vqvae(ws, preset="quick", steps=2, batch_size=8, device="cpu", show_progress=False)
        train_predictor(ws, "tiny", preset=TINY, annotations="gt", device="cpu", show_progress=False)
    finally:
        torch.set_num_threads(before)
    return ws


@pytest.fixture(scope="session")
def trained_ar_workspace(small_corpus, tmp_path_factory):
    """The small corpus with a 2-step VQ-VAE and a 4-step tiny autoregressive model
    (helpers.TINY_AR), trained once per session for the AR, alignment and best-of-N tests; returns
    (workspace, training metrics). Shared: a module that writes into it works on
    `helpers.copy_workspace` of it."""
    import shutil

    import torch
    from helpers import TINY_AR

    from artgen.training.predictor import train_predictor
    from artgen.training.vqvae import train_vqvae
    from artgen.workspace import Workspace

    root = tmp_path_factory.mktemp("trained-ar")
    shutil.copytree(small_corpus / "data", root / "data")
    ws = Workspace(root)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_vqvae(ws, preset="quick", steps=2, batch_size=8, device="cpu", show_progress=False)
        metrics = train_predictor(ws, "tiny", preset=TINY_AR, annotations="gt", device="cpu", show_progress=False,
                                  generator="ar")
    finally:
        torch.set_num_threads(before)
    return ws, metrics


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: on the shared 2-core test machine, two threads ran
    tiny models ~8x slower. Opt in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
