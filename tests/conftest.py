import pytest


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """A 120-painting synthetic corpus at 32 px, built once per test session."""
    from artgen.data.corpus import SynthConfig, synthesize

    ws = tmp_path_factory.mktemp("ws")
    synthesize(ws / "data", SynthConfig(count=120, size=32, seed=7, workers=1), show_progress=False)
    return ws


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: on the shared 2-core test machine, two threads ran
    tiny models ~8x slower. Opt in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
