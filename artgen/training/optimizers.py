"""The optimisers the training loop can use (`TrainConfig.optimizer`).

`adamw`: AdamW on every parameter, weight decay on the matrices only.
`muon`: Muon (Jordan et al. 2024; torch's `torch.optim.Muon`) on the hidden matrices — the 2-D
weights of modules inside a transformer's `blocks` — and AdamW on everything else (embeddings,
positions, norms, biases, the text projection and modulation, the output head), as Muon's
authors prescribe. Muon's step is the momentum's nearest orthogonal matrix (five Newton-Schulz
iterations); its learning rate is scaled to match AdamW's update size (`match_rms_adamw`, the
Moonlight paper's rule), so both halves take the same learning rate and schedule.

`MuonAdamW` holds the two and looks like one optimiser to the loop: its `param_groups` are
Muon's then AdamW's, and its `state_dict` numbers their parameters in that order, so the
loop's checkpoint format and exact resume are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from artgen.errors import ArtgenError

OPTIMIZERS = ("adamw", "muon")


def is_hidden_matrix(name: str, param: nn.Parameter) -> bool:
    """Whether Muon trains this parameter: a 2-D weight of a module inside `blocks`."""
    return param.ndim == 2 and ".blocks." in f".{name}" and name.endswith(".weight")


class MuonAdamW:
    """Muon on `hidden`, AdamW on `rest` (lists of parameter groups), stepped together."""

    def __init__(self, hidden: list[dict], rest: list[dict], lr: float, betas: tuple[float, float],
                 weight_decay: float):
        self.muon = torch.optim.Muon(hidden, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw")
        self.adamw = torch.optim.AdamW(rest, lr=lr, betas=betas)
        self._parts = (self.muon, self.adamw)

    @property
    def param_groups(self) -> list[dict]:
        return self.muon.param_groups + self.adamw.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self._parts:
            part.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None:
            raise ArtgenError("MuonAdamW does not take a closure")
        for part in self._parts:
            part.step()

    def state_dict(self) -> dict:
        out = {"state": {}, "param_groups": []}
        offset = 0
        for part in self._parts:
            sd = part.state_dict()
            n = sum(len(g["params"]) for g in sd["param_groups"])
            out["state"].update({pid + offset: st for pid, st in sd["state"].items()})
            out["param_groups"] += [{**g, "params": [p + offset for p in g["params"]]} for g in sd["param_groups"]]
            offset += n
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        groups, offset = list(state_dict["param_groups"]), 0
        for part in self._parts:
            mine = groups[:len(part.param_groups)]
            groups = groups[len(part.param_groups):]
            n = sum(len(g["params"]) for g in mine)
            state = {pid - offset: st for pid, st in state_dict["state"].items() if offset <= int(pid) < offset + n}
            part.load_state_dict({"state": state,
                                  "param_groups": [{**g, "params": [p - offset for p in g["params"]]} for g in mine]})
            offset += n


def build_optimizer(model: nn.Module, name: str, lr: float, betas: tuple[float, float],
                    weight_decay: float) -> torch.optim.Optimizer | MuonAdamW:
    """The optimiser `name` (one of OPTIMIZERS) over `model`'s trainable parameters."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if name == "adamw":
        decay = [p for _, p in named if p.ndim >= 2]
        no_decay = [p for _, p in named if p.ndim < 2]
        return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                  {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)
    if name == "muon":
        hidden = [p for n, p in named if is_hidden_matrix(n, p)]
        if not hidden:
            raise ArtgenError("--optimizer muon found no transformer block matrices in this model: use adamw")
        decay = [p for n, p in named if p.ndim >= 2 and not is_hidden_matrix(n, p)]
        no_decay = [p for _, p in named if p.ndim < 2]
        return MuonAdamW([{"params": hidden}],
                         [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                         lr=lr, betas=betas, weight_decay=weight_decay)
    raise ArtgenError(f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}")
