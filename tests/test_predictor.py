import numpy as np
import pytest
import torch

from artgen.models.encoders import load_encoder
from artgen.models.predictor import IndexPredictor, PredictorConfig, mask_schedule, training_inputs

CFG = PredictorConfig(grid=4, codebook_size=16, text_width=24, width=32, layers=2, heads=4, mlp_ratio=2)


def _predictor():
    torch.manual_seed(0)
    return IndexPredictor(CFG).eval()


def test_logits_cover_every_position_and_code():
    p = _predictor()
    codes = torch.full((3, CFG.positions), CFG.mask_id)
    logits = p(codes, torch.randn(3, 5, CFG.text_width), torch.ones(3, 5, dtype=torch.bool))
    assert logits.shape == (3, CFG.positions, CFG.codebook_size)
    assert torch.isfinite(logits).all()


def test_dropped_text_ignores_the_text_states_and_kept_text_does_not():
    p = _predictor()
    codes = torch.randint(0, CFG.mask_id + 1, (2, CFG.positions))
    a, b = torch.randn(2, 5, CFG.text_width), torch.randn(2, 5, CFG.text_width)
    off = torch.zeros(2, 5, dtype=torch.bool)
    assert torch.allclose(p(codes, a, off), p(codes, b, off), atol=1e-6)  # the unconditional model
    on = torch.ones(2, 5, dtype=torch.bool)
    assert not torch.allclose(p(codes, a, on), p(codes, b, on), atol=1e-3)


def test_padding_tokens_are_ignored():
    p = _predictor()
    codes = torch.full((1, CFG.positions), CFG.mask_id)
    states = torch.randn(1, 5, CFG.text_width)
    mask = torch.tensor([[True, True, True, False, False]])
    changed = states.clone()
    changed[:, 3:] = 100.0
    assert torch.allclose(p(codes, states, mask), p(codes, changed, mask), atol=1e-6)


def test_given_codes_change_the_prediction():
    p = _predictor()
    states, mask = torch.randn(1, 5, CFG.text_width), torch.ones(1, 5, dtype=torch.bool)
    empty = torch.full((1, CFG.positions), CFG.mask_id)
    some = empty.clone()
    some[0, :4] = torch.tensor([1, 2, 3, 4])
    assert not torch.allclose(p(empty, states, mask), p(some, states, mask), atol=1e-4)


def test_training_inputs_follow_the_schedule_and_are_reproducible():
    cfg = PredictorConfig(grid=8, codebook_size=16, text_drop=0.25, full_mask=0.5)
    codes = torch.randint(0, 16, (4000, 64))
    text_mask = torch.ones(4000, 3, dtype=torch.bool)
    inputs, masked, tm = training_inputs(codes, text_mask, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(inputs[masked], torch.full_like(inputs[masked], cfg.mask_id))
    assert torch.equal(inputs[~masked], codes[~masked])
    assert masked.any(dim=1).all()  # every sample has something to predict
    full = masked.all(dim=1).float().mean().item()
    assert 0.45 < full < 0.62  # full_mask plus the schedule's own draws near ratio 1
    dropped = (~tm.any(dim=1)).float().mean().item()
    assert 0.2 < dropped < 0.3
    # the schedule's mean masked share is E[cos(pi u / 2)] = 2/pi for the other half
    partial = masked[~masked.all(dim=1)].float().mean().item()
    assert 0.5 < partial < 0.7
    again = training_inputs(codes, text_mask, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], inputs) and torch.equal(again[2], tm)


def test_mask_schedule_runs_from_all_to_none():
    s = mask_schedule(torch.tensor([0.0, 0.5, 1.0]))
    assert s[0] == 1.0 and abs(s[1] - 2 ** -0.5) < 1e-6 and abs(s[2]) < 1e-6


def test_encoder_and_predictor_export_to_onnx_and_match(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    enc = load_encoder("tiny", texts=["warm vivid chaotic", "cool calm"] * 20,
                       overrides=dict(width=24, layers=1, heads=2)).eval()
    pred = IndexPredictor(PredictorConfig(grid=4, codebook_size=16, text_width=24, width=32, layers=1, heads=4)).eval()

    class Both(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.pred = enc, pred

        def forward(self, ids, mask, codes):
            return self.pred(codes, self.enc(ids, mask), mask)

    ids, mask = enc.tokenize(["warm, chaotic, vivid", "cool"])
    codes = torch.full((2, 16), 16)
    path = tmp_path / "m.onnx"
    both = Both().eval()
    torch.onnx.export(both, (ids, mask, codes), str(path), opset_version=17, dynamo=False,
                      input_names=["ids", "mask", "codes"], output_names=["logits"],
                      dynamic_axes={"ids": {0: "b", 1: "t"}, "mask": {0: "b", 1: "t"}, "codes": {0: "b"}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids2, mask2 = enc.tokenize(["a much longer prompt, warm and vivid and calm", "dark", "cool"])
    codes2 = torch.randint(0, 17, (3, 16))
    got = sess.run(None, {"ids": ids2.numpy(), "mask": mask2.numpy(), "codes": codes2.numpy()})[0]
    with torch.no_grad():
        want = both(ids2, mask2, codes2).numpy()
    assert np.abs(got - want).max() < 1e-4
