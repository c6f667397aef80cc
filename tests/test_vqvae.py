"""VQ-VAE, quantiser variants, codebook metrics, checkpoints and ONNX export of the decoder."""

import json
import math

import numpy as np
import pytest
import torch

from artgen.errors import ArtgenError
from artgen.models.quantizer import QUANTIZER_VARIANTS, QuantizerConfig, VectorQuantizer, nearest_code
from artgen.models.vqvae import VQVAE, VQVAEConfig
from artgen.training.codebook_metrics import CodebookPerplexity, CodebookUsage

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(variant="ema-kmeans-restart", image_size=32, **q):
    return VQVAEConfig.with_variant(variant, image_size=image_size, hidden=16, res_hidden=8, res_blocks=1,
                                    quantizer={"codebook_size": 64, "dim": 16, **q})


def test_matmul_lookup_equals_brute_force_distances():
    g = torch.Generator().manual_seed(0)
    z, codebook = torch.randn(500, 16, generator=g), torch.randn(64, 16, generator=g)
    brute = ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1).argmin(1)
    assert torch.equal(nearest_code(z, codebook), brute)


def test_cosine_variant_picks_the_code_of_highest_cosine_similarity():
    q = VectorQuantizer(QuantizerConfig(codebook_size=32, dim=8, l2_normalized=True, kmeans_init=False)).eval()
    z = torch.randn(2, 8, 4, 4)
    codes = q.encode(z)                                               # (2, 4, 4)
    flat = torch.nn.functional.normalize(z.permute(0, 2, 3, 1).reshape(-1, 8), dim=1)
    cos = flat @ torch.nn.functional.normalize(q.embed, dim=1).t()
    assert torch.equal(codes.reshape(-1), cos.argmax(1))


def _usage_after_training(variant_options, steps=40):
    """Feed a quantiser data far from its random initial codebook; return test-set usage."""
    torch.manual_seed(0)
    cfg = QuantizerConfig(codebook_size=64, dim=8, **variant_options)
    q = VectorQuantizer(cfg).train()
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        z = torch.randn(4, 8, 16, 16, generator=g) + 6.0             # (B, D, h, w), shifted off the codebook
        q(z)
    q.eval()
    codes = q.encode(torch.randn(8, 8, 16, 16, generator=g) + 6.0)
    usage = CodebookUsage(64)
    usage.update(codes)
    return usage.compute()


def test_dead_code_restart_brings_the_codebook_back_to_life():
    without = _usage_after_training(QUANTIZER_VARIANTS["ema"])
    with_restart = _usage_after_training({**QUANTIZER_VARIANTS["ema"], "dead_code_threshold": 1.0})
    with_kmeans = _usage_after_training(QUANTIZER_VARIANTS["ema-kmeans"])
    assert without < 0.3
    assert with_restart > 0.9
    assert with_kmeans > without


@pytest.mark.parametrize("variant", list(QUANTIZER_VARIANTS))
def test_every_quantiser_variant_trains(variant):
    torch.manual_seed(0)
    model = VQVAE(tiny_config(variant))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = torch.rand(8, 3, 32, 32)
    losses = []
    for _ in range(15):
        out = model(x)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["recon_mse"].item())
    assert out["codes"].shape == (8, 8, 8) and out["counts"].sum() == 8 * 64
    assert math.isfinite(losses[-1]) and losses[-1] < losses[0]


def test_encode_decode_shapes_and_range():
    model = VQVAE(tiny_config()).eval()
    codes = model.encode_indices(torch.rand(3, 3, 32, 32))
    assert codes.shape == (3, 8, 8) and codes.dtype == torch.long
    images = model.decode_indices(codes)
    assert images.shape == (3, 3, 32, 32)
    assert images.min() >= 0 and images.max() <= 1
    with pytest.raises(ArtgenError, match="shape"):
        model.encode_indices(torch.rand(3, 32, 32))


def test_codebook_metrics_follow_their_definitions():
    usage, ppl = CodebookUsage(8), CodebookPerplexity(8)
    for m in (usage, ppl):
        m.update(torch.arange(8).repeat(5))
    assert usage.compute() == 1.0 and ppl.compute() == pytest.approx(8.0)
    ppl.reset()
    ppl.update(torch.tensor([3, 3, 3, 5]))  # p = (3/4, 1/4)
    assert ppl.compute() == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))
    usage.reset()
    usage.update(torch.zeros(10, dtype=torch.long))
    assert usage.compute() == 1 / 8


def test_save_and_load_pretrained_round_trip(tmp_path):
    model = VQVAE(tiny_config("cosine-ema-kmeans-restart")).eval()
    model.save_pretrained(tmp_path / "vq")
    assert json.loads((tmp_path / "vq" / "config.json").read_text())["quantizer"]["l2_normalized"] is True
    loaded = VQVAE.from_pretrained(tmp_path / "vq")
    codes = torch.randint(0, 64, (2, 8, 8))
    assert torch.equal(model.decode_indices(codes), loaded.decode_indices(codes))


def test_missing_or_corrupt_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ArtgenError, match="artgen train vqvae"):
        VQVAE.from_pretrained(tmp_path / "nothing")
    VQVAE(tiny_config()).save_pretrained(tmp_path / "vq")
    f = tmp_path / "vq" / "model.safetensors"
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    with pytest.raises(ArtgenError, match="damaged"):
        VQVAE.from_pretrained(tmp_path / "vq")


class _Decoder(torch.nn.Module):
    def __init__(self, vq):
        super().__init__()
        self.vq = vq

    def forward(self, codes):
        return self.vq.decode_indices(codes)


def test_decoder_exports_to_onnx_and_matches_torch(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = VQVAE(tiny_config()).eval()
    codes = torch.randint(0, 64, (2, 8, 8))
    path = tmp_path / "decoder.onnx"
    torch.onnx.export(_Decoder(model), (codes,), str(path), opset_version=17, dynamo=False,
                      input_names=["codes"], output_names=["images"], dynamic_axes={"codes": {0: "batch"}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    other = torch.randint(0, 64, (3, 8, 8))
    got = sess.run(None, {"codes": other.numpy()})[0]
    want = model.decode_indices(other).detach().numpy()
    assert got.shape == (3, 3, 32, 32)
    assert np.abs(got - want).max() < 1e-4


def test_vqvae_training_resumes_exactly_with_restarts_and_kmeans(tmp_path):
    from artgen.training.trainer import TrainConfig, train
    from artgen.training.vqvae import VQVAETask

    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (40, 3, 32, 32), generator=g, dtype=torch.uint8)

    class Crashing(VQVAETask):
        def batch(self, step, generator, batch_size):
            if step == 4:
                raise KeyboardInterrupt
            return super().batch(step, generator, batch_size)

    cfg = TrainConfig(steps=6, batch_size=4, lr=3e-3, warmup_steps=1, checkpoint_every=3,
                      show_progress=False, device="cpu")
    full = train(VQVAETask(tiny_config(), pixels, pixels[:8]), cfg, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        train(Crashing(tiny_config(), pixels, pixels[:8]), cfg, tmp_path / "killed")
    resumed = train(VQVAETask(tiny_config(), pixels, pixels[:8], init_seed=5), cfg, tmp_path / "killed", resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) <= 1e-6
