import pytest
import torch

from artgen.data.vocabulary import HELD_OUT_SYNONYMS
from artgen.errors import ArtgenError
from artgen.models.encoders import ENCODERS, FROM_SCRATCH, TinyEncoder, encoder_from_directory, list_encoders, load_encoder, tokenizer_texts
from artgen.models.predictor import IndexPredictor, PredictorConfig

CAPTIONS = ["a warm, chaotic and vivid painting", "cool, calm and minimal", "dark somber textured abstract art",
            "an abstract painting, bright, geometric, symmetric", "pastel soft hazy dotted"] * 20
SMALL = {
    "tiny": dict(width=32, layers=1, heads=2),
    "clip": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
    "distilbert": dict(dim=32, hidden_dim=64, n_layers=1, n_heads=2),
}


@pytest.fixture(scope="module", params=list(SMALL))
def small_encoder(request):
    torch.manual_seed(0)
    return load_encoder(request.param, texts=CAPTIONS, overrides=SMALL[request.param]).eval()


def test_registry_names_all_three_and_rejects_others():
    assert list_encoders() == ["tiny", "clip", "distilbert"]
    with pytest.raises(ArtgenError, match="tiny, clip, distilbert"):
        load_encoder("gpt5")


def test_tokenize_and_encode_shapes(small_encoder):
    tokens = small_encoder.tokenize(["warm, chaotic, vivid", "a cool calm minimal painting with soft edges"])
    assert tokens.ids.dtype == torch.long and tokens.ids.shape == tokens.mask.shape
    assert tokens.mask[0].sum() < tokens.mask[1].sum()  # padded to the longer prompt
    states, mask = small_encoder.encode(tokens)
    assert states.shape == (2, tokens.ids.shape[1], small_encoder.width)
    assert torch.equal(mask, tokens.mask)
    assert torch.isfinite(states).all()


def test_padding_does_not_change_the_states_of_real_tokens(small_encoder):
    alone, _ = small_encoder.encode(small_encoder.tokenize(["warm vivid"]))
    batch, mask = small_encoder.encode(small_encoder.tokenize(["warm vivid", "a very long prompt about cool calm minimal shapes"]))
    n = int(mask[0].sum())
    assert torch.allclose(alone[0, :n], batch[0, :n], atol=1e-5)


def test_unseen_words_split_into_known_subwords(small_encoder):
    pieces = small_encoder.pieces("fiery")
    assert len(pieces) > 1  # never seen whole, so split
    ids = small_encoder.tokenize(["fiery"]).ids[0].tolist()
    unk = small_encoder.sp.unk_id() if isinstance(small_encoder, TinyEncoder) else small_encoder.tokenizer.unk_token_id
    if unk != small_encoder.pad_id:  # clip-style tokenizers have no separate unknown token
        assert unk not in ids


def test_tokenizer_text_keeps_held_out_synonyms_unseen():
    text = " ".join(tokenizer_texts(["a fiery tranquil painting"])).lower().split()
    assert not set(HELD_OUT_SYNONYMS) & set(w.strip(",.:") for w in text)
    assert "painting" in text


def test_save_and_reload_gives_the_same_encoder(small_encoder, tmp_path):
    from safetensors.torch import save_file

    small_encoder.save_description(tmp_path)
    save_file({f"encoder.{k}": v.contiguous() for k, v in small_encoder.state_dict().items()}, str(tmp_path / "model.safetensors"))
    again = encoder_from_directory(tmp_path)
    tokens = small_encoder.tokenize(["warm, chaotic, vivid"])
    assert torch.equal(again.tokenize(["warm, chaotic, vivid"]).ids, tokens.ids)
    assert torch.allclose(again.encode(tokens)[0], small_encoder.encode(tokens)[0], atol=1e-6)
    assert again.source == FROM_SCRATCH


def test_over_long_prompt_is_an_error(small_encoder):
    with pytest.raises(ArtgenError, match="tokens long"):
        small_encoder.tokenize([" ".join(["xqzv"] * 40)])


@pytest.mark.parametrize("kind", ["clip", "distilbert"])
def test_pretrained_weights_load_frozen_and_exact(kind, tmp_path):
    torch.manual_seed(1)
    made = load_encoder(kind, texts=CAPTIONS, overrides=SMALL[kind])
    made.model.save_pretrained(str(tmp_path))
    made.tokenizer.save_pretrained(str(tmp_path))
    loaded = load_encoder(kind, pretrained=str(tmp_path))
    assert loaded.source == str(tmp_path) and loaded.frozen
    assert "pretrained" in loaded.describe_source() and "scratch" not in loaded.describe_source()
    assert not any(p.requires_grad for p in loaded.parameters())
    tokens = made.tokenize(["warm, chaotic, vivid"])
    assert torch.equal(loaded.tokenize(["warm, chaotic, vivid"]).ids, tokens.ids)
    assert torch.allclose(loaded.eval().encode(tokens)[0], made.eval().encode(tokens)[0], atol=1e-6)
    tuned = load_encoder(kind, pretrained=str(tmp_path), finetune=True)
    assert all(p.requires_grad for p in tuned.parameters()) and "fine-tuned" in tuned.describe_source()


def test_pretrained_from_a_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(ArtgenError, match="cannot load pretrained clip"):
        load_encoder("clip", pretrained=str(tmp_path / "nope"))
    with pytest.raises(ArtgenError, match="no pretrained weights"):
        load_encoder("tiny", pretrained=str(tmp_path))


def test_default_sizes_tiny_small_and_standard_large():
    with torch.device("meta"):
        tiny = ENCODERS["tiny"].build((), None, False, None)
        pred = IndexPredictor(PredictorConfig(text_width=tiny.width))
        clip = ENCODERS["clip"].build((), None, False, None)
        bert = ENCODERS["distilbert"].build((), None, False, None)
    assert tiny.num_parameters() + pred.num_parameters() < 10_000_000
    assert 60e6 < clip.num_parameters() < 66e6  # standard ViT-B/32 text tower: ~63M
    assert 64e6 < bert.num_parameters() < 68e6  # standard DistilBERT base: ~66M
