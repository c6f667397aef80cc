"""Text encoders behind one small surface, chosen by name (like `clip.load`):

    encoder = load_encoder("tiny", texts=captions)    # or "clip", "distilbert", or a checkpoint dir
    tokens = encoder.tokenize(["warm, chaotic, vivid"])  # Tokens(ids (B, T) long, mask (B, T) bool)
    states, mask = encoder.encode(tokens)             # (B, T, d) text states, (B, T) bool

- `tiny`: our own pre-LN transformer (`TinyEncoderConfig`) with a sentencepiece unigram
  tokenizer trained on the captions plus the vocabulary definitions, so a word it never saw
  splits into known sub-words instead of one unknown token.
- `clip`: `transformers.CLIPTextModel`, the standard ViT-B/32 text config (~63M parameters).
- `distilbert`: `transformers.DistilBertModel`, the standard base config (~66M parameters).

`pretrained=DIR_OR_HUB_ID` loads real weights and tokenizer with `from_pretrained`; such an
encoder is frozen unless `finetune=True`. Without it the standard architecture is built from
its config, a tokenizer is trained on our captions with the `tokenizers` library, and the
encoder's `source` says "trained from scratch" - which every checkpoint, listing and log line
repeats. There is no silent fallback from one to the other.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn as nn

from artgen.data.vocabulary import ADJECTIVES, HELD_OUT_SYNONYMS, VOCABULARY
from artgen.errors import ArtgenError
from artgen.models.layers import MLP, Attention

FROM_SCRATCH = "trained from scratch"
ENCODER_CONFIG = "encoder.json"  # beside the weights in a checkpoint directory
TOKENIZER_DIR = "tokenizer"
MAX_TOKENS = 48  # a prompt is at most 16 words / 200 characters; sub-words rarely pass 40


class Tokens(NamedTuple):
    """A tokenised batch: ids (B, T) long, mask (B, T) bool (True for real tokens)."""

    ids: torch.Tensor
    mask: torch.Tensor

    def to(self, device) -> "Tokens":
        return Tokens(self.ids.to(device), self.mask.to(device))


def tokenizer_texts(captions: Sequence[str] = ()) -> list[str]:
    """The text a from-scratch tokenizer learns from: captions plus the vocabulary's own
    words and definitions. Held-out synonyms are removed so they stay unseen."""
    lines = list(captions)
    lines += [f"{a.word}: {a.definition}" for a in VOCABULARY]
    lines += [" ".join(ADJECTIVES)] * 4
    held = set(HELD_OUT_SYNONYMS)
    return [" ".join(w for w in line.split() if w.strip(",.;:").lower() not in held) for line in lines]


class TextEncoder(nn.Module):
    """What every encoder offers. Subclasses implement `_tokenize_ids` and `forward`."""

    name: str = ""
    tokenizer_kind: str = ""

    def __init__(self, source: str, frozen: bool):
        super().__init__()
        self.source = source  # FROM_SCRATCH, or the directory / hub id the weights came from
        self.frozen = frozen

    @property
    def width(self) -> int:
        raise NotImplementedError

    @property
    def trained_from_scratch(self) -> bool:
        return self.source == FROM_SCRATCH

    def describe_source(self) -> str:
        if self.trained_from_scratch:
            return FROM_SCRATCH
        return f"pretrained {self.source} ({'frozen' if self.frozen else 'fine-tuned'})"

    def _tokenize_ids(self, prompt: str) -> list[int]:
        raise NotImplementedError

    @property
    def pad_id(self) -> int:
        raise NotImplementedError

    def tokenize(self, prompts: str | Sequence[str]) -> Tokens:
        """Token ids padded to the longest prompt in the batch; an over-long prompt is an error."""
        if isinstance(prompts, str):
            prompts = [prompts]
        rows = [self._tokenize_ids(p.lower()) for p in prompts]
        for p, r in zip(prompts, rows):
            if len(r) > MAX_TOKENS:
                raise ArtgenError(f"the prompt {p[:40]!r}... is {len(r)} tokens long (limit {MAX_TOKENS}): use 3-5 adjectives")
        T = max(len(r) for r in rows)
        ids = torch.full((len(rows), T), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), T), dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = True
        return Tokens(ids, mask)  # (B, T), (B, T)

    def encode(self, tokens: Tokens) -> tuple[torch.Tensor, torch.Tensor]:
        """(states (B, T, d), mask (B, T) bool)."""
        return self(tokens.ids, tokens.mask), tokens.mask

    def train(self, mode: bool = True):
        super().train(mode and not self.frozen)  # a frozen encoder stays in eval mode (no dropout)
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- saving: the weights go into the checkpoint's model.safetensors with the predictor;
    #    the encoder's own description and tokenizer files go beside them.
    def spec(self) -> dict:
        raise NotImplementedError

    def save_description(self, directory: Path) -> None:
        directory = Path(directory)
        (directory / TOKENIZER_DIR).mkdir(parents=True, exist_ok=True)
        self._save_tokenizer(directory / TOKENIZER_DIR)
        spec = {"name": self.name, "source": self.source, "frozen": self.frozen,
                "tokenizer": self.tokenizer_kind, "parameters": self.num_parameters(), **self.spec()}
        (directory / ENCODER_CONFIG).write_text(json.dumps(spec, indent=2))

    def _save_tokenizer(self, directory: Path) -> None:
        raise NotImplementedError


# ----------------------------------------------------------------------------- tiny

@dataclass
class TinyEncoderConfig:
    vocab_size: int = 1024  # sentencepiece pieces (fewer when the text is too small for more)
    width: int = 192
    layers: int = 3
    heads: int = 4
    mlp_ratio: int = 4
    max_len: int = MAX_TOKENS
    dropout: float = 0.1


class TinyBlock(nn.Module):
    def __init__(self, cfg: TinyEncoderConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.width)
        self.attn = Attention(cfg.width, cfg.heads, dropout=cfg.dropout)
        self.ln2 = nn.LayerNorm(cfg.width)
        self.mlp = MLP(cfg.width, cfg.mlp_ratio, cfg.dropout)

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, mask)
        return x + self.mlp(self.ln2(x))


class TinyEncoder(TextEncoder):
    """Our own small transformer encoder over sentencepiece pieces."""

    name = "tiny"
    tokenizer_kind = "sentencepiece unigram"

    def __init__(self, cfg: TinyEncoderConfig, sp_model: bytes, source: str = FROM_SCRATCH, frozen: bool = False):
        super().__init__(source, frozen)
        import sentencepiece as spm

        self.sp_model = sp_model
        self.sp = spm.SentencePieceProcessor(model_proto=sp_model)
        cfg.vocab_size = self.sp.get_piece_size()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos_emb = nn.Parameter(torch.zeros(1, cfg.max_len, cfg.width))
        self.blocks = nn.ModuleList(TinyBlock(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.width)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb, std=0.02)

    @property
    def width(self) -> int:
        return self.cfg.width

    @property
    def pad_id(self) -> int:
        return self.sp.pad_id()

    def _tokenize_ids(self, prompt: str) -> list[int]:
        return [self.sp.bos_id(), *self.sp.encode(prompt), self.sp.eos_id()]

    def pieces(self, prompt: str) -> list[str]:
        """The sub-word pieces of a prompt, e.g. for showing how an unseen word was read."""
        return self.sp.encode(prompt.lower(), out_type=str)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        x = self.tok_emb(ids) + self.pos_emb[:, :T]  # (B, T, d)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x)  # (B, T, d) text states

    def spec(self) -> dict:
        return {"config": asdict(self.cfg)}

    def _save_tokenizer(self, directory: Path) -> None:
        (directory / "spm.model").write_bytes(self.sp_model)

    @classmethod
    def train_tokenizer(cls, texts: Sequence[str], vocab_size: int) -> bytes:
        import sentencepiece as spm

        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter([t.lower() for t in texts]), model_writer=model,
            vocab_size=vocab_size, model_type="unigram", character_coverage=1.0,
            hard_vocab_limit=False, pad_id=0, unk_id=1, bos_id=2, eos_id=3,
            num_threads=1, minloglevel=2, shuffle_input_sentence=False,
        )
        return model.getvalue()


def _build_tiny(texts, pretrained, finetune, overrides) -> TinyEncoder:
    if pretrained:
        raise ArtgenError("the tiny encoder has no pretrained weights: drop --pretrained, or use --encoder clip/distilbert")
    cfg = _with_overrides(TinyEncoderConfig(), overrides)
    sp_model = TinyEncoder.train_tokenizer(tokenizer_texts(texts), cfg.vocab_size)
    return TinyEncoder(cfg, sp_model)


# ----------------------------------------------------------------------------- transformers

class HFTextEncoder(TextEncoder):
    """A `transformers` text model and its fast tokenizer; the states are `last_hidden_state`."""

    def __init__(self, model, tokenizer, source: str, frozen: bool):
        super().__init__(source, frozen)
        self.model = model
        self.tokenizer = tokenizer
        if frozen:
            self.model.requires_grad_(False)

    @property
    def width(self) -> int:
        return self.model.config.hidden_size

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    def _tokenize_ids(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt, add_special_tokens=True)["input_ids"]

    def pieces(self, prompt: str) -> list[str]:
        return self.tokenizer.tokenize(prompt.lower())

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (B, T, d)

    def spec(self) -> dict:
        return {"config": self.model.config.to_diff_dict(), "model_class": type(self.model).__name__}

    def _save_tokenizer(self, directory: Path) -> None:
        self.tokenizer.save_pretrained(str(directory))


def _train_hf_tokenizer(kind: str, texts: Sequence[str], vocab_size: int):
    """A fast tokenizer trained on our captions with the `tokenizers` library:
    CLIP-style byte-level BPE, or BERT-style WordPiece, lower-cased like the originals."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [t.lower() for t in texts]
    if kind == "clip":
        bos, eos = "<|startoftext|>", "<|endoftext|>"
        tok = Tokenizer(models.BPE())
        tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[bos, eos],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(texts, trainer)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}", special_tokens=[(bos, tok.token_to_id(bos)), (eos, tok.token_to_id(eos))])
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=eos, unk_token=eos)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    alphabet = list("abcdefghijklmnopqrstuvwxyz0123456789-'")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials,
                                        initial_alphabet=alphabet, show_progress=False)
    tok.train_from_iterator(texts + [" ".join(alphabet)], trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def _hf_classes(kind: str):
    from transformers import CLIPTextConfig, CLIPTextModel, DistilBertConfig, DistilBertModel

    return (CLIPTextConfig, CLIPTextModel) if kind == "clip" else (DistilBertConfig, DistilBertModel)


class ClipEncoder(HFTextEncoder):
    name = "clip"

    @property
    def tokenizer_kind(self) -> str:
        return "CLIP BPE (pretrained)" if not self.trained_from_scratch else "byte-level BPE trained on our captions"


class DistilBertEncoder(HFTextEncoder):
    name = "distilbert"

    @property
    def tokenizer_kind(self) -> str:
        return "WordPiece (pretrained)" if not self.trained_from_scratch else "WordPiece trained on our captions"

    @property
    def width(self) -> int:
        return self.model.config.dim


_HF_ENCODERS = {"clip": ClipEncoder, "distilbert": DistilBertEncoder}
TOKENIZER_VOCAB = 4096  # the most pieces a from-scratch tokenizer learns (our captions need far fewer)


def _build_hf(kind: str, texts, pretrained, finetune, overrides) -> HFTextEncoder:
    from transformers import AutoTokenizer

    config_cls, model_cls = _hf_classes(kind)
    if pretrained:
        try:
            tokenizer = AutoTokenizer.from_pretrained(pretrained)
            model = model_cls.from_pretrained(pretrained, attn_implementation="eager")
        except Exception as e:  # a missing folder or an unreachable hub must not become a traceback
            raise ArtgenError(
                f"cannot load pretrained {kind} weights from {pretrained!r} ({type(e).__name__}: {str(e).splitlines()[0][:120]}): "
                "give a folder written by save_pretrained or a reachable hub id, or drop --pretrained to train from scratch"
            ) from e
        return _HF_ENCODERS[kind](model, tokenizer, source=str(pretrained), frozen=not finetune)
    tokenizer = _train_hf_tokenizer(kind, tokenizer_texts(texts), TOKENIZER_VOCAB)
    ids = {"pad_token_id": tokenizer.pad_token_id}
    if kind == "clip":
        ids.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = config_cls(**{**ids, **(overrides or {})})  # the standard size unless overridden
    config._attn_implementation = "eager"  # plain matmul attention: exports to ONNX as-is
    model = model_cls(config)
    return _HF_ENCODERS[kind](model, tokenizer, source=FROM_SCRATCH, frozen=False)


# ----------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class EncoderEntry:
    name: str
    description: str
    build: Callable[..., TextEncoder]  # (texts, pretrained, finetune, overrides) -> TextEncoder
    pretrained_hint: str = ""


ENCODERS: dict[str, EncoderEntry] = {
    "tiny": EncoderEntry("tiny", "own transformer, 3 layers x 192, sentencepiece unigram tokenizer", _build_tiny),
    "clip": EncoderEntry("clip", "CLIP text tower, standard ViT-B/32 text config (transformers CLIPTextModel)",
                         lambda *a: _build_hf("clip", *a), "openai/clip-vit-base-patch32"),
    "distilbert": EncoderEntry("distilbert", "DistilBERT, standard base config (transformers DistilBertModel)",
                               lambda *a: _build_hf("distilbert", *a), "distilbert-base-uncased"),
}


def list_encoders() -> list[str]:
    return list(ENCODERS)


def _with_overrides(cfg, overrides: dict | None):
    known = {f.name for f in fields(cfg)}
    for key, value in (overrides or {}).items():
        if key not in known:
            raise ArtgenError(f"unknown tiny encoder setting {key!r}: use one of {', '.join(sorted(known))}")
        setattr(cfg, key, value)
    return cfg


def unknown_encoder(name: str) -> ArtgenError:
    return ArtgenError(f"unknown encoder {name!r}: use one of {', '.join(ENCODERS)} (see `artgen encoders`)")


def load_encoder(name_or_path: str | Path, texts: Sequence[str] = (), pretrained: str | None = None,
                 finetune: bool = False, overrides: dict | None = None) -> TextEncoder:
    """An encoder by registry name (a fresh one; `texts` train its tokenizer when it has no
    pretrained one) or by checkpoint directory (its description, tokenizer and weights)."""
    name = str(name_or_path)
    if name in ENCODERS:
        return ENCODERS[name].build(texts, pretrained, finetune, overrides)
    path = Path(name_or_path)
    if path.is_dir() and (path / ENCODER_CONFIG).exists():
        return encoder_from_directory(path)
    if path.is_dir() or "/" in name or "\\" in name:
        raise ArtgenError(f"{name} holds no saved encoder ({ENCODER_CONFIG} missing): train one with `artgen train --encoder tiny`")
    raise unknown_encoder(name)


def encoder_from_directory(directory: Path, load_weights: bool = True) -> TextEncoder:
    """Rebuild the encoder a checkpoint describes; its weights are the `encoder.` entries of
    the checkpoint's model.safetensors when present."""
    directory = Path(directory)
    try:
        spec = json.loads((directory / ENCODER_CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ArtgenError(f"{directory / ENCODER_CONFIG} cannot be read ({type(e).__name__}): retrain with `artgen train --encoder "
                          "...`") from e
    kind = spec.get("name")
    if kind == "tiny":
        cfg = TinyEncoderConfig(**spec["config"])
        encoder = TinyEncoder(cfg, (directory / TOKENIZER_DIR / "spm.model").read_bytes(), spec["source"], spec["frozen"])
    elif kind in _HF_ENCODERS:
        from transformers import AutoTokenizer

        config_cls, model_cls = _hf_classes(kind)
        tokenizer = AutoTokenizer.from_pretrained(str(directory / TOKENIZER_DIR))
        config = config_cls(**spec["config"])
        config._attn_implementation = "eager"
        encoder = _HF_ENCODERS[kind](model_cls(config), tokenizer, spec["source"], spec["frozen"])
    else:
        raise unknown_encoder(str(kind))
    if load_weights and (directory / "model.safetensors").exists():
        from safetensors.torch import load_file

        state = load_file(str(directory / "model.safetensors"))
        enc_state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
        encoder.load_state_dict(enc_state)
    encoder.eval()
    return encoder
