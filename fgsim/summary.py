"""What a trace holds, in numbers: densities at every granularity and how they spread (``fgsim inspect``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fgsim.errors import counted
from fgsim.trace import Trace
from fgsim.views import N_LEVELS, density_from_counts, m_levels_for


@dataclass
class TraceSummary:
    """Densities of one trace. ``per_entry[i, h]`` is the kept fraction of entry i, head h at stored M×1."""

    info: dict[str, Any]
    density: dict[tuple[int, int], float]  # (M, N) → kept fraction of the attention area
    entries: list[tuple[int, int]]  # (pass, layer), row order of per_entry
    per_entry: np.ndarray  # float64 (entries, heads)
    kept_keys: np.ndarray  # int32: kept keys of every (entry, head, query block) at stored M
    block_compare: tuple[int, float, float]  # (M, density at M×1, density at M×M) for M = 64 (or stored M)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``fgsim inspect --json``)."""
        m_cmp, fine, block = self.block_compare
        layers = sorted({layer for _, layer in self.entries})
        passes = sorted({p for p, _ in self.entries})
        by_layer = {layer: self.per_entry[[i for i, (_, x) in enumerate(self.entries) if x == layer]] for layer in layers}
        by_pass = {p: self.per_entry[[i for i, (x, _) in enumerate(self.entries) if x == p]] for p in passes}
        q = np.percentile(self.kept_keys, [0, 10, 50, 90, 100]) if self.kept_keys.size else np.zeros(5)
        return {
            **self.info,
            "density": {f"{m}x{n}": round(v, 6) for (m, n), v in self.density.items()},
            "per_layer": {str(k): _spread(v) for k, v in by_layer.items()},
            "per_pass": {str(k): _spread(v) for k, v in by_pass.items()},
            "per_head": {str(h): _spread(self.per_entry[:, i]) for i, h in enumerate(self.info["heads"])},
            "kept_keys_per_query_block": dict(zip(("min", "p10", "median", "p90", "max"), map(float, q), strict=True)),
            "slices_vs_blocks": {"M": m_cmp, "density_Mx1": round(fine, 6), "density_MxM": round(block, 6),
                                 "work_saved": round(1 - fine / block, 6) if block else 0.0},
        }


def _spread(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"mean": round(float(v.mean()), 6), "min": round(float(v.min()), 6), "max": round(float(v.max()), 6)}


def summarize(trace: Trace, progress: bool = False) -> TraceSummary:
    """Summarize a trace from its stored counts (masks are never unpacked)."""
    meta = trace.meta
    entries = trace.entries()
    m_levels = m_levels_for(meta.block_m)
    area: dict[tuple[int, int], list[float]] = {(m, n): [] for m in m_levels for n in N_LEVELS}
    per_entry = np.zeros((len(entries), len(meta.heads)))
    kept = []
    iterator: Any = entries
    if progress:
        from tqdm import tqdm

        iterator = tqdm(entries, desc="inspect", unit="entry")
    for i, (p, layer) in enumerate(iterator):
        for m in m_levels:
            for n in N_LEVELS:
                covered = trace.covered_keys(p, layer, m, n)
                area[(m, n)].append(density_from_counts(covered, trace.n_tokens, trace.n_keys, m))
        base = trace.covered_keys(p, layer)
        per_entry[i] = [density_from_counts(base[h:h + 1], trace.n_tokens, trace.n_keys, meta.block_m)
                        for h in range(base.shape[0])]
        kept.append(trace.counts(p, layer).ravel())
    density = {k: float(np.mean(v)) for k, v in area.items()}
    m_cmp = 64 if 64 in m_levels else meta.block_m
    n_cmp = m_cmp if m_cmp in N_LEVELS else max(N_LEVELS)
    block_compare = (m_cmp, density[(m_cmp, 1)], density[(m_cmp, n_cmp)])
    t, h, w = meta.grid
    info = {
        "path": str(trace.path),
        "model": meta.model,
        "provenance": meta.provenance.get("kind"),
        "provenance_detail": {k: v for k, v in meta.provenance.items() if k != "kind"},
        "predictor": meta.predictor,
        "grid": [t, h, w],
        "tokens": trace.n_tokens,
        "attention": meta.attention,
        "key_tokens": trace.n_keys,
        "video_tokens": meta.n_video_tokens,
        "text_tokens": meta.text_tokens,
        "text_position": meta.text_position,
        "block_m": meta.block_m,
        "query_blocks": trace.n_qblocks,
        "head_dim": meta.head_dim,
        "heads": list(meta.heads),
        "num_heads": meta.num_heads,
        "layers": list(meta.layers),
        "num_layers": meta.num_layers,
        "passes": [{"index": p.index, "step": p.step, "branch": p.branch} for p in meta.passes],
        "num_steps": meta.num_steps,
        "passes_per_step": meta.passes_per_step,
        "entries": len(entries),
        "fgsim_version": meta.fgsim_version,
    }
    return TraceSummary(info, density, entries, per_entry, np.concatenate(kept) if kept else np.zeros(0, np.int32),
                        block_compare)


def format_summary(s: TraceSummary) -> str:
    """The human-readable table of ``fgsim inspect``."""
    j = s.to_json()
    lines = [
        f"trace       {j['path']}",
        f"model       {j['model']}  ({j['provenance']}; predictor {j['predictor'].get('name')})",
        f"tokens      {j['tokens']:,} = grid {'×'.join(map(str, j['grid']))} ({j['video_tokens']:,} video)"
        + (f" + {j['text_tokens']} text ({j['text_position']})" if j["text_tokens"] else ""),
        *([f"attention   cross-attention: {j['tokens']:,} queries × {j['key_tokens']:,} keys"]
          if j.get("attention") == "cross" else []),
        f"captured    {len(j['passes'])} of {counted(j['num_steps'] * j['passes_per_step'], 'pass', 'passes')}, "
        f"{len(j['layers'])} of {counted(j['num_layers'], 'layer')}, {len(j['heads'])} of "
        f"{counted(j['num_heads'], 'head')} ({counted(j['entries'], 'entry', 'entries')}); head dim {j['head_dim']}",
        f"query block M = {j['block_m']} ({counted(j['query_blocks'], 'block', fmt=',')} per head)",
        "",
        "density (kept fraction of the attention map) at M×N tiles:",
    ]
    ms = sorted({m for m, _ in s.density})
    lines.append("  M \\ N " + "".join(f"{n:>9}" for n in N_LEVELS))
    for m in ms:
        lines.append(f"  {m:>5} " + "".join(f"{s.density[(m, n)]:>9.3f}" for n in N_LEVELS))
    sv = j["slices_vs_blocks"]
    lines += [
        "",
        f"slices vs blocks: {sv['M']}×1 slices keep {sv['density_Mx1']:.3f}, {sv['M']}×{sv['M']} blocks keep "
        f"{sv['density_MxM']:.3f}: fine-grained skipping saves {100 * sv['work_saved']:.1f}% of block-sparse work",
        "",
        "per layer (density at stored M×1: mean [min, max] over passes and heads):",
    ]
    for layer, v in j["per_layer"].items():
        lines.append(f"  layer {layer:>3}: {v['mean']:.3f} [{v['min']:.3f}, {v['max']:.3f}]")
    lines.append("per pass:")
    for p, v in j["per_pass"].items():
        lines.append(f"  pass {p:>4}: {v['mean']:.3f} [{v['min']:.3f}, {v['max']:.3f}]")
    heads = j["per_head"]
    means = np.array([v["mean"] for v in heads.values()])
    lines.append(f"per head: mean density ranges {means.min():.3f}–{means.max():.3f} across "
                 f"{counted(len(means), 'head')}")
    k = j["kept_keys_per_query_block"]
    lines.append(f"kept keys per query block: min {k['min']:.0f}, p10 {k['p10']:.0f}, median {k['median']:.0f}, "
                 f"p90 {k['p90']:.0f}, max {k['max']:.0f} (of {j['key_tokens']:,})")
    return "\n".join(lines)


def plot_summary(s: TraceSummary, path: str) -> None:
    """Density heatmaps (layer × head, one per pass) and a histogram of kept keys per query block → PNG file
    (written atomically)."""
    from fgsim.fileio import write_bytes_atomic

    write_bytes_atomic(path, plot_summary_png(s))


def plot_summary_png(s: TraceSummary) -> bytes:
    """:func:`plot_summary`'s figure as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fgsim.fileio import figure_png

    passes = sorted({p for p, _ in s.entries})
    layers = sorted({layer for _, layer in s.entries})
    ncols = min(4, len(passes))
    nrows = -(-len(passes) // ncols) + 1
    fig = plt.figure(figsize=(3.6 * ncols + 1, 2.6 * nrows + 0.5), constrained_layout=True)
    grid = fig.add_gridspec(nrows, ncols)
    image = None
    for k, p in enumerate(passes):
        ax = fig.add_subplot(grid[k // ncols, k % ncols])
        data = np.full((len(layers), s.per_entry.shape[1]), np.nan)
        for i, (pp, layer) in enumerate(s.entries):
            if pp == p:
                data[layers.index(layer)] = s.per_entry[i]
        image = ax.imshow(data, aspect="auto", vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
        ax.set_title(f"pass {p}", fontsize=9)
        ax.set_xlabel("head", fontsize=8)
        ax.set_ylabel("layer", fontsize=8)
        ax.set_yticks(range(len(layers)), [str(x) for x in layers], fontsize=6)
    if image is not None:
        fig.colorbar(image, ax=fig.axes, shrink=0.8, label="density (M×1)")
    ax = fig.add_subplot(grid[nrows - 1, :])
    ax.hist(s.kept_keys, bins=60, color="#4477aa")
    ax.set_xlabel(f"kept keys per query block (M = {s.info['block_m']}, N_k = {s.info['key_tokens']:,})")
    ax.set_ylabel("query blocks")
    fig.suptitle(f"{s.info['model']} — {s.info['provenance']} trace", fontsize=11)
    return figure_png(fig)
