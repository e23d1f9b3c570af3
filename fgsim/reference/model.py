"""The reference DiT: diffusers' ``WanTransformer3DModel`` plus a learned label-token table, and its weights I/O.

The transformer is unmodified diffusers code (3D RoPE, RMS QK-norm across heads, cross-attention to conditioning
tokens, AdaLN timestep modulation), so fgsim's capture hooks see exactly the code path of a real Wan checkpoint
(``blocks.N.attn1`` self-attention through ``dispatch_attention_fn``, ``(B, S, H, D)`` post-RoPE tensors).
Instead of umT5 text features, :class:`LabelTokens` turns a clip's class ``(image, motion, shapes)`` into
``text_tokens`` = 4 vectors of ``text_dim`` (a ``bos`` token and one token per factor, each from its own learned
table; ``-1`` selects a factor's learned null row, used for classifier-free guidance).

Weights are one safetensors file: keys ``transformer.*`` and ``labels.*``, metadata ``config`` (the config dict
the model was built from, JSON) and ``info`` (training facts, JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fgsim.errors import FgsimError
from fgsim.reference.data import IMAGES, MOTIONS, SHAPES, load_config

if TYPE_CHECKING:
    import torch


def _modules() -> tuple[Any, Any]:
    try:
        import torch
        from diffusers import WanTransformer3DModel
    except ImportError as exc:
        raise FgsimError(f"the reference DiT needs torch and diffusers ({exc}): pip install 'fgsim[capture]'") from None
    return torch, WanTransformer3DModel


_CLASSES: dict[str, Any] = {}


def _classes() -> dict[str, Any]:
    """Build the torch module classes on first use (so importing this module needs no torch)."""
    if _CLASSES:
        return _CLASSES
    torch, wan_cls = _modules()
    nn = torch.nn

    class LabelTokens(nn.Module):
        """Class label ``(B, 3)`` int64 ``[image, motion, shapes]`` (``-1`` = null) → tokens ``(B, 4, text_dim)``."""

        def __init__(self, text_dim: int, sizes: tuple[int, ...] = (len(IMAGES), len(MOTIONS), len(SHAPES))) -> None:
            super().__init__()
            self.sizes = tuple(int(s) for s in sizes)
            self.bos = nn.Parameter(torch.randn(1, 1, text_dim))
            # row ``size`` of each table is the factor's null embedding
            self.tables = nn.ModuleList(nn.Embedding(s + 1, text_dim) for s in self.sizes)

        def forward(self, labels: torch.Tensor) -> torch.Tensor:
            if labels.dim() != 2 or labels.shape[1] != len(self.sizes):
                raise FgsimError(f"labels must be (B, {len(self.sizes)}), got {tuple(labels.shape)}")
            toks = [self.bos.expand(labels.shape[0], -1, -1)]
            for j, (table, size) in enumerate(zip(self.tables, self.sizes, strict=True)):
                idx = labels[:, j]
                idx = torch.where(idx < 0, torch.full_like(idx, size), idx)
                toks.append(table(idx)[:, None])
            return torch.cat(toks, dim=1)

    class ReferenceDiT(nn.Module):
        """``transformer`` (diffusers ``WanTransformer3DModel``) + ``labels`` (:class:`LabelTokens`).

        ``forward(latents (B, 768, T, h, w), t (B,) ∈ [0, 1], labels (B, 3))`` → velocity ``(B, 768, T, h, w)``
        of the rectified flow ``x_t = (1 − t)·x0 + t·ε`` (``v = ε − x0``). The transformer receives
        ``timestep = 1000·t``, as Wan's pipeline passes its scheduler's timesteps.
        """

        def __init__(self, config: dict[str, Any]) -> None:
            super().__init__()
            self.config = config
            tcfg = dict(config["transformer"])
            tcfg["patch_size"] = tuple(tcfg["patch_size"])
            self.transformer = wan_cls(**tcfg)
            self.labels = LabelTokens(int(tcfg["text_dim"]))

        def encode_labels(self, labels: torch.Tensor) -> torch.Tensor:
            """The conditioning tokens ``(B, 4, text_dim)`` of a label tensor."""
            return self.labels(labels)

        def forward(self, latents: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            tokens = self.labels(labels)
            return self.velocity(latents, t, tokens)

        def velocity(self, latents: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
            """One transformer pass on precomputed conditioning tokens, as a velocity ``ε − x0``."""
            timestep = t.float() * 1000.0  # float32 even for bf16 weights, as Wan's scheduler timesteps
            out = self.transformer(hidden_states=latents, timestep=timestep, encoder_hidden_states=tokens,
                                   return_dict=False)
            return self.to_velocity(latents, out[0], t)

        def to_velocity(self, latents: torch.Tensor, output: torch.Tensor, t: Any) -> torch.Tensor:
            """The velocity ``ε − x0`` from a transformer output at noise level ``t`` ((B,) tensor or float).

            ``config["prediction"]``: ``"v"`` (default, as Wan) — the output *is* the velocity; ``"x0"`` — the
            output is the clean latent and ``v = (x_t − x̂0) / max(t, 0.05)`` (x-prediction with a velocity loss,
            for a transformer narrower than its 3,072-value patches).
            """
            if self.config.get("prediction", "v") == "v":
                return output
            tt = t if isinstance(t, torch.Tensor) else torch.tensor([float(t)], device=latents.device)
            tt = tt.float().clamp_min(0.05).view(-1, 1, 1, 1, 1)
            return (latents.float() - output.float()) / tt

    _CLASSES.update(LabelTokens=LabelTokens, ReferenceDiT=ReferenceDiT)
    return _CLASSES


def __getattr__(name: str) -> Any:
    if name in ("LabelTokens", "ReferenceDiT"):
        return _classes()[name]
    raise AttributeError(name)


def build_model(config: dict[str, Any] | None = None, *, seed: int | None = 0) -> Any:
    """A freshly initialised :class:`ReferenceDiT` (float32, CPU) from ``config`` (default ``config.json``).

    ``seed`` seeds torch's generator for the initialisation (``None``: leave the global RNG as it is).
    """
    torch, _ = _modules()
    cfg = config or load_config()
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _classes()["ReferenceDiT"](cfg)
    return _classes()["ReferenceDiT"](cfg)


def count_parameters(model: Any) -> dict[str, int]:
    """Parameter counts: ``{"transformer": …, "labels": …, "total": …}``."""
    tr = sum(p.numel() for p in model.transformer.parameters())
    lab = sum(p.numel() for p in model.labels.parameters())
    return {"transformer": int(tr), "labels": int(lab), "total": int(tr + lab)}


def save_weights(model: Any, path: str | Path, info: dict[str, Any] | None = None, *,
                 dtype: str = "bfloat16") -> Path:
    """Write the model's weights to ``path`` (safetensors, atomically) in ``dtype`` (``"bfloat16"`` — the
    committed file, ≈ 15.5 MiB for the 8.1M-parameter config, under the 16 MiB a device call can return — or
    ``"float32"``), with its config and ``info`` as metadata. Returns the path."""
    import torch
    from safetensors.torch import save_file

    dt = {"bfloat16": torch.bfloat16, "float32": torch.float32}.get(dtype)
    if dt is None:
        raise FgsimError(f"weights dtype must be bfloat16 or float32, got {dtype!r}")
    path = Path(path)
    state = {k: v.detach().to(dt).cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps(model.config, sort_keys=True), "info": json.dumps(info or {}, sort_keys=True),
            "format": "fgsim-reference-dit/1"}
    tmp = path.with_name(f".{path.name}.partial")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)
    path.chmod(0o644)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """``{"config": dict | None, "info": dict}`` from a weights file's safetensors metadata."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    cfg = json.loads(meta["config"]) if "config" in meta else None
    info = json.loads(meta.get("info", "{}"))
    return {"config": cfg, "info": info}


def load_weights(path: str | Path, *, device: Any = "cpu", dtype: Any = None) -> Any:
    """:class:`ReferenceDiT` with the weights of ``path`` (see :func:`fgsim.reference.load`), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FgsimError(
            f"{path}: reference DiT weights not found; they are committed in the repository "
            f"(fgsim/data/reference/weights.safetensors, 16 MB) but not packaged in wheels: use a checkout "
            f"(pip install -e .), set FGSIM_REFERENCE_WEIGHTS or pass the path; or train them on a GPU with "
            f"'PYTHONPATH=.:kernels python3 validation/train_reference.py --minutes 8 --out OUT' (docs/reference_dit.md)")
    torch, _ = _modules()
    from safetensors.torch import load_file

    try:
        meta = read_metadata(path)
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise FgsimError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    model = build_model(meta["config"] or load_config(), seed=None)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise FgsimError(f"{path}: weights do not match the reference config ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model.to(device=torch.device(device), dtype=dtype or torch.float32)
