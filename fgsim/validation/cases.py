"""Validation cases: deterministic masks and the disjoint case lists (calibration, development, frozen test).

Every synthetic case's mask is a pure function of its row (structure, N, H, M, density, seed) through a
counter-based hash (splitmix64), so the CPU regenerates exactly the mask the GPU ran and predictions never need
the GPU. The lists are written to ``validation/cases/<split>.csv`` and committed before the fit that uses them
(:func:`write_case_lists`); measurement reads the files, not the generators.

* ``calib`` — what ``fgsim calibrate`` measures: uniform masks (``uniform``, ``uniform-blocks``), the tuned launch
  configurations at D 64/128 x M 64/128, bf16, the whole GPU, N in {2048, 8192, 30720}, grids of one and of several
  waves, a few non-default launch configurations (BLOCK_N 32/64/128) and every persistent-program setting;
* ``dev`` — for choosing between model variants: the older synthetic families (random, skewed, band, stripes,
  mixed) at N in {6144, 20480, 40960}, a few non-default configs and SM partitions of 48 and 120 SMs;
* ``test`` — the first frozen list (development since its one scoring): other mask families (3-D windows per
  head, column stripes, text tokens, DiT traces), N in {4096, 12288, 24576, 49152, 75600}, every Hopper launch
  config of BLOCK_N 32/64/128 x stages 2-4 x warps 4/8, SM partitions of 16/32/64/96 SMs, fp16 as well as bf16;
* ``test3`` — revision 2's frozen list (development since its one scoring), see :func:`test3_cases`;
* ``dev4`` — revision 3's development rows on the final kernels (persistent programs, several waves, small
  tiles), see :func:`dev4_cases`;
* ``test4`` — revision 3's frozen list, scored once (development data since), see :func:`test4_cases`;
* ``dev5`` — revision 4's development rows on the final kernels (the issue-12 launch table), see
  :func:`dev5_cases`;
* ``test5`` — revision 4's frozen list, scored once (development data since), see :func:`test5_cases`;
* ``test6`` — revision 5's frozen list, scored once (development data since), see :func:`test6_cases`;
* ``test7`` — the frozen list on the final launch table (08559f8), scored once with revision 5, see :func:`test7_cases`;
* ``test8`` — the frozen list of the revision after 5 (committed 2ef4e01, unmeasured, before that revision's
  variants were fitted), scored once with revision 6 (development data since), see :func:`test8_cases`;
* ``test9`` — the frozen list of revision 7 (committed unmeasured, before any revision-7 variant was fitted), scored
  once with revision 7 (development data since: its per-entry biases motivated revision 8), see :func:`test9_cases`;
* ``test10`` — the frozen list of revision 8 (committed unmeasured, before any revision-8 variant was fitted), see
  :func:`test10_cases`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np

from fgsim.errors import FgsimError

#: synthetic mask families (index = generator kind)
STRUCTURES = ("uniform", "random", "skewed", "band", "stripes", "mixed", "uniform-blocks", "window3d",
              "colstripes", "text", "framewin", "dilated", "uniform-text", "wanwin", "wanwin-text", "radial",
              "causalwin", "svg", "tilewin", "vslash", "cubetopk", "clusterk", "moba")
#: families built by fgattn's benchmark generator on the CPU (torch, not the numba kernel): ``wanwin`` =
#: ``fgattn.masks.window_mask`` (per-head anisotropic 3-D windows on the Wan2.1 latent grid, bisected to the density,
#: + 64 sink keys; the case's seed seeds the per-head axis weights), ``wanwin-text`` = the same on N - min(512, N/8)
#: video tokens + ``fgattn.masks.with_text`` (text keys kept by every query block, text query blocks keep every key)
TORCH_STRUCTURES = ("wanwin", "wanwin-text")
#: calibration's families; ``uniform-text`` (calib11): iid keys at the density for video queries, plus the last
#: min(512, N/8) keys (text tokens) kept by every query and every key kept by the text query blocks (heavy rows that
#: fgattn's launch order promotes to the front)
CALIB_STRUCTURES = ("uniform", "uniform-blocks", "uniform-text")
DEV_STRUCTURES = ("random", "skewed", "band", "stripes", "mixed")
TEST_STRUCTURES = ("window3d", "colstripes", "text", "trace")
#: the mask families of test12 (revision 10): two families no earlier list took beside the test families
TEST12_STRUCTURES = TEST_STRUCTURES + ("framewin", "dilated")
CALIB_SEED = 7_000_000
DEV_SEED = 8_000_000
TEST_SEED = 9_000_000
TEST3_SEED = 9_500_000
DEV4_SEED = 8_500_000
TEST4_SEED = 9_700_000
TEST5_SEED = 9_800_000
DEV5_SEED = 8_600_000
TEST6_SEED = 9_900_000
TEST7_SEED = 9_960_000
TEST8_SEED = 9_980_000
TEST9_SEED = 9_990_000
TEST10_SEED = 9_993_000
TEST11_SEED = 9_996_000
TEST12_SEED = 9_997_000
TEST13_SEED = 9_998_000
TEST14_SEED = 9_999_000
#: the mask families of test14 (revision 10 of session 13) beside the benchmark generator's
TEST14_STRUCTURES = TEST12_STRUCTURES + TORCH_STRUCTURES
TEST15_SEED = 10_100_000
#: the mask families no list took before test15 (session 14): ``radial`` (radial attention on the Wan2.1 latent
#: frame grid: the spatial window halves each time the temporal distance doubles, Li et al., "Radial Attention",
#: arXiv 2506.19852) and ``causalwin`` (frame-causal: the query's frame and the L frames before it, inside a
#: spatial window, plus the first frame as a sink: autoregressive video diffusion, Yin et al., "CausVid", arXiv
#: 2412.07772)
TEST15_NEW_STRUCTURES = ("radial", "causalwin")
TEST15_STRUCTURES = TEST14_STRUCTURES + TEST15_NEW_STRUCTURES
TEST16_SEED = 10_200_000
#: the mask families no list took before test16 (session 14, helper M4): ``svg`` (Sparse VideoGen's head split:
#: a spatial head keeps whole frames near the query's frame plus frame 0, a temporal head keeps the keys at the query's
#: in-frame positions in every frame; Xi et al., "Sparse VideoGen", arXiv 2502.01776) and ``tilewin`` (sliding tile
#: attention: 1 x 10 x 13-token tiles of the Wan2.1 30 x 52 latent frame, keys in the tiles of a 3-D tile window
#: around the query's tile; Zhang et al., "Fast Video Generation with Sliding Tile Attention", arXiv 2502.04507)
TEST16_NEW_STRUCTURES = ("svg", "tilewin")
TEST16_STRUCTURES = TEST15_STRUCTURES + TEST16_NEW_STRUCTURES
TEST17_SEED = 10_300_000
#: the mask families no list took before test17 (session 15, helper M5): ``vslash`` (MInference's vertical-slash
#: pattern: per head, 8-key column groups kept by every query (about half the density) plus "slash" diagonals at the
#: query block's offset and at whole-frame offsets k x 1560 tokens, the same in-frame position in other Wan2.1 frames;
#: Jiang et al., "MInference 1.0", arXiv 2407.02490) and ``cubetopk`` (Video Sparse Attention's coarse stage: the
#: tokens grouped in cubes of 2 frames x 5 x 13 tokens, each query block keeps the top-k cubes of a score that falls
#: with the cube distance plus per-(head, block, cube) noise, k = density x cubes; Zhang et al., "VSA: Faster Video
#: Diffusion with Trainable Sparse Attention", arXiv 2505.13389)
TEST17_NEW_STRUCTURES = ("vslash", "cubetopk")
TEST17_STRUCTURES = TEST16_STRUCTURES + TEST17_NEW_STRUCTURES
TEST18_SEED = 10_400_000
#: the mask families no list took before test18 (session 16, helper M8): ``clusterk`` (Sparse VideoGen2's
#: semantic-aware clusters, before its permutation: per head the keys fall in 64 clusters -- each 2-frame x 3 x
#: 4-token patch of the Wan2.1 30 x 52 latent frames is one cluster's, chosen by a hash -- and each pair of query
#: blocks keeps the keys of its top-k clusters (its own centre's cluster first), k = density x 64; Yang et al.,
#: "Sparse VideoGen2", arXiv 2505.18875) and ``moba`` (Mixture of Block Attention, non-causal: the keys in
#: 1,536-token chunks, each query block keeps its own chunk and the top-scoring others, k = density x chunks; Lu et
#: al., "MoBA: Mixture of Block Attention for Long-Context LLMs", arXiv 2502.13189)
TEST18_NEW_STRUCTURES = ("clusterk", "moba")
TEST18_STRUCTURES = TEST17_STRUCTURES + TEST18_NEW_STRUCTURES
TEST19_SEED = 10_500_000
#: test19's mask families (session 17, helper M10): test families of earlier lists, none of calibration's; test19
#: adds no family (its new axis is the clock: long-run twins of the packaged entries, :func:`test19_long_ids`)
TEST19_STRUCTURES = ("cubetopk", "tilewin", "vslash")
#: clusterk's clusters per head; moba's chunk (tokens)
CLUSTERK_CLUSTERS = 64
MOBA_CHUNK = 1536
#: how test16's long-run rows are timed (the device script's second pass: each case's kernels replayed in CUDA
#: graphs of about ``target_ms`` per replay, ``rounds`` interleaved rounds, so the GPU runs under sustained load and
#: its SM clock drops as on long benchmark runs); every other test16 row: the harness's default (2 ms, 3 rounds)
TEST16_LONG = {"target_ms": 250.0, "rounds": 5}
#: test17's long-run twins are timed as test16's (session 15)
TEST17_LONG = dict(TEST16_LONG)
#: test19's long-run twins (session 17: the clock axis of the effective-clock calibration calib16) as test17's
TEST19_LONG = dict(TEST16_LONG)
SPLITS = ("calib", "dev", "test", "test3", "dev4", "test4", "dev5", "test5", "test6", "test7", "test8", "test9",
          "test10", "test11", "test12", "test13", "test14", "test15", "test16", "test17", "test18",
          "test19", "tiny")
#: Bound on H·QB·N per case (mask bytes).
MAX_MASK_ELEMS = 200_000_000
CASES_DIR = Path(__file__).resolve().parents[2] / "validation" / "cases"
#: launch configurations a user can ask predict/sweep for on Hopper: BLOCK_N x num_stages x num_warps
CONFIG_GRID = tuple((bn, st, w) for bn in (32, 64, 128) for st in (2, 3, 4) for w in (4, 8))
#: SM partitions measured through CUDA green contexts (0 = the whole GPU)
TEST_SM_PARTITIONS = (16, 32, 64, 96)
DEV_SM_PARTITIONS = (48, 120)


@dataclass(frozen=True)
class Case:
    """One measured situation: a mask and a shape, the kernels to time, and what the kernels run with."""

    case_id: str
    split: str  # calib | dev | test | tiny
    structure: str  # one of STRUCTURES, or "trace"
    n_tokens: int
    heads: int
    head_dim: int
    block_m: int
    density: float
    seed: int
    trace: str = ""
    pass_index: int = -1
    layer: int = -1
    kernels: tuple[str, ...] = ("fg", "block", "dense")
    block_n: int = 0  # 0: the launch table's value
    num_stages: int = 0
    num_warps: int = 0
    dtype: str = "bf16"
    sm_count: int = 0  # 0: the whole GPU; else a green-context SM partition
    axis: str = "tuned"  # what the case tests: tuned | config | sm | dtype | trace
    persistent: int = -1  # -1: the launch table's choice; 0: one program per query-block row; 1: persistent programs
    #                       (one flattened row x tile loop); 2: persistent programs, a row loop around the tile loop
    programs_per_sm: int = 0  # persistent programs per SM (0: the launch table's value)
    #: launch-option overrides merged into the entry's options (JSON object, e.g. '{"tail_branch": false}'; ''
    #: none): the serialised / pipelined twins of one tile in the calibration list
    options: str = ""

    @property
    def overridden(self) -> bool:
        return bool(self.block_n or self.num_stages or self.num_warps or self.persistent >= 0 or self.programs_per_sm
                    or self.options)

    def option_overrides(self) -> dict[str, Any]:
        """The launch-option overrides of :attr:`options` (FgsimError naming the case if not a JSON object)."""
        if not self.options:
            return {}
        import json

        try:
            d = json.loads(self.options)
        except ValueError:
            d = None
        if not isinstance(d, dict):
            raise FgsimError(f"case {self.case_id}: options must be a JSON object, got {self.options!r}")
        return d


#: the columns of a case list; ``options`` is written only by lists that use it (:func:`list_fields`), so the lists
#: written before it existed stay byte-identical to their generators
CASE_FIELDS = tuple(f.name for f in fields(Case) if f.name != "options")


def list_fields(cases: Sequence[Case]) -> tuple[str, ...]:
    """Columns of a case-list file of ``cases``: :data:`CASE_FIELDS`, plus ``options`` when a case sets it."""
    return CASE_FIELDS + ("options",) if any(c.options for c in cases) else CASE_FIELDS


# ---------------------------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------------------------


@nb.njit(cache=True, inline="always")
def _mix(x: np.uint64) -> np.uint64:
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@nb.njit(cache=True, inline="always")
def _u01(seed: np.uint64, a: int, b: int, c: int) -> float:
    x = _mix(seed + np.uint64(a) * np.uint64(0x9E3779B97F4A7C15))
    x = _mix(x + np.uint64(b) * np.uint64(0xC2B2AE3D27D4EB4F))
    x = _mix(x + np.uint64(c) * np.uint64(0x165667B19E3779F9))
    return (x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@nb.njit(cache=True, parallel=True)
def _gen(kind: int, n: int, heads: int, m: int, d: float, seed: np.uint64, out: np.ndarray) -> None:
    qb = (n + m - 1) // m
    # 3-D token grid for window3d: W = 40, H = 24 (a 720p-like aspect), T = ceil(N / 960)
    gw = 40
    gh = 24
    for row in nb.prange(heads * qb):
        h = row // qb
        q = row % qb
        hf = 0.5 + _u01(seed, h, 1 << 30, 1)  # per-head factor in [0.5, 1.5)
        dq = d
        if kind == 2:  # skewed: per-query-block density x 0.25..4 (log-uniform), mean-normalised roughly
            dq = min(1.0, d * math.exp((_u01(seed, h, q, 1 << 29) - 0.5) * 2.0 * math.log(4.0)) / 1.2)
        centre = q * m + m // 2
        half = 0.5 * d * n * hf
        ct = centre // (gw * gh)
        ch = (centre // gw) % gh
        cw = centre % gw
        nt = (n + gw * gh - 1) // (gw * gh)
        # per-axis window fraction of a 3-D window keeping about d of the keys (per-head factor on its volume)
        f3 = min(1.0, (d * hf) ** (1.0 / 3.0))
        text0 = n - min(512, n // 8)
        # radial / causalwin: the Wan2.1 latent frame (30 x 52 tokens), the query block centre's frame and position
        wg = 52
        hg = 30
        nf = (n + wg * hg - 1) // (wg * hg)
        rt = centre // (wg * hg)
        rh = (centre // wg) % hg
        rw = centre % wg
        rf = math.sqrt(d * hf * nf / 3.0)  # radial: the window fraction at distance 0 (about d kept while <= 1)
        cl = max(1, int(d * hf * nf))  # causalwin: frames before the query's
        cs = min(1.0, math.sqrt(d * hf * nf / (cl + 1.0)) * 1.2)  # causalwin: spatial window fraction
        fr = wg * hg
        ks = max(0, int(round((0.5 * d * hf * n / m - 1.0) / 2.0)))  # vslash: slash diagonals each side
        cube_thr = 0.0
        cube_s = np.zeros(1)
        if kind == 20:  # cubetopk: 2 frames x 5 x 13-token cubes (6 x 4 per frame pair); the row's top-k cubes
            nc = ((nf + 1) // 2) * 24
            cube_s = np.empty(nc)
            qc_t = rt // 2
            qc_h = rh // 5
            qc_w = rw // 13
            for c in range(nc):
                dist = abs(c // 24 - qc_t) + abs((c % 24) // 4 - qc_h) + abs(c % 4 - qc_w)
                cube_s[c] = 3.0 * hf * _u01(seed, h, q, c + (1 << 24)) - dist
            kc = max(1, min(nc, int(round(d * nc))))
            cube_thr = np.sort(cube_s)[nc - kc]
        sel_thr = 0.0
        sel_s = np.zeros(1)
        if kind == 21:  # clusterk: the pair of query blocks' cluster scores; the own centre's cluster first
            sel_s = np.empty(64)
            for c in range(64):
                sel_s[c] = hf * _u01(seed, h, q // 2, c + (1 << 23))
            cp = centre % fr
            own = int(64.0 * _u01(seed, h, ((rt // 2) * 10 + (cp // wg) // 3) * 13 + (cp % wg) // 4, 1 << 22))
            sel_s[own] += 2.0
            kc = max(1, min(64, int(round(d * 64))))
            sel_thr = np.sort(sel_s)[64 - kc]
        elif kind == 22:  # moba: 1,536-token chunks; the own chunk first, then the top-scoring others
            nck = (n + 1535) // 1536
            sel_s = np.empty(nck)
            for c in range(nck):
                sel_s[c] = _u01(seed, h, q, c + (1 << 22))
            sel_s[min(centre, n - 1) // 1536] += 2.0
            kc = max(1, min(nck, int(round(d * hf * nck))))
            sel_thr = np.sort(sel_s)[nck - kc]
        for j in range(n):
            keep = False
            if kind <= 2:
                keep = _u01(seed, h, q, j) < dq
            elif kind == 3:  # band around the query block + 64 sink keys
                keep = abs(j - centre) <= half or j < 64
            elif kind == 4:  # vertical stripes: 64-key blocks kept per (head, group of 4 query blocks)
                keep = _u01(seed, h, q // 4, (j // 64) + (1 << 28)) < d
            elif kind == 5:  # mixed: half band, half iid random
                keep = abs(j - centre) <= 0.5 * half or _u01(seed, h, q, j) < 0.5 * d
            elif kind == 6:  # uniform-blocks: each (query block, 64-key block) kept with probability d
                keep = _u01(seed, h, q, (j // 64) + (1 << 27)) < d
            elif kind == 7:  # window3d: keys inside a 3-D (T, H, W) window around the query block's centre
                jt = j // (gw * gh)
                jh = (j // gw) % gh
                jw = j % gw
                keep = (abs(jt - ct) <= 0.5 * f3 * nt and abs(jh - ch) <= 0.5 * f3 * gh
                        and abs(jw - cw) <= 0.5 * f3 * gw)
            elif kind == 8:  # colstripes: 16-key column stripes kept for every query block of a head + diagonal
                keep = _u01(seed, h, 0, (j // 16) + (1 << 26)) < d * hf or abs(j - centre) < m
            elif kind == 9:  # text: the last text tokens are kept by every query; text queries keep all; video: band
                keep = j >= text0 or q * m >= text0 or abs(j - centre) <= 0.5 * half
            elif kind == 10:  # framewin: whole 960-token frames within a temporal window + the first frame (a sink)
                keep = j < gw * gh or abs(j // (gw * gh) - ct) <= 0.5 * d * hf * nt
            elif kind == 11:  # dilated: every s-th key (phase per head), s = 1 / (d * head factor), + the diagonal block
                s = max(1, int(round(1.0 / max(d * hf, 1e-6))))
                keep = (j + h) % s == 0 or abs(j - centre) < m // 2
            elif kind == 15:  # radial: Wan2.1 frames (30 x 52), spatial window / 2 per doubling of the frame distance
                jt = j // (wg * hg)
                dt = abs(jt - rt)
                w = min(1.0, rf / (1 << int(math.log2(dt + 1.0))))
                keep = abs((j // wg) % hg - rh) <= 0.5 * w * hg and abs(j % wg - rw) <= 0.5 * w * wg
            elif kind == 16:  # causalwin: the query's frame and the cl frames before it in a spatial window + frame 0
                jt = j // (wg * hg)
                keep = jt == 0 or (0 <= rt - jt <= cl and abs((j // wg) % hg - rh) <= 0.5 * cs * hg
                                   and abs(j % wg - rw) <= 0.5 * cs * wg)
            elif kind == 17:  # svg: spatial heads keep whole frames near the query's + frame 0; temporal heads
                # keep the query block's in-frame positions (+- a window) in every frame; both + the diagonal block
                jt = j // (wg * hg)
                if _u01(seed, h, 1 << 30, 2) < 0.5:
                    keep = jt == 0 or abs(jt - rt) <= int(0.5 * d * hf * nf)
                else:
                    keep = abs(j % (wg * hg) - centre % (wg * hg)) <= 0.5 * d * hf * wg * hg
                keep = keep or abs(j - centre) < m // 2
            elif kind == 18:  # tilewin: 1 x 10 x 13 tiles (3 x 4 per frame), a (2 wt + 1) x 3 x 3 tile window
                jt = j // (wg * hg)
                wt = max(0, int(round((d * hf * nf / 0.5625 - 1.0) / 2.0)))  # 3 x 3 of 3 x 4 tiles: 9/16 of a frame
                keep = (abs(jt - rt) <= wt and abs((j // wg) % hg // 10 - rh // 10) <= 1
                        and abs(j % wg // 13 - rw // 13) <= 1)
            elif kind == 19:  # vslash: per-head 8-key column groups + slash diagonals at whole-frame offsets
                r = j - centre
                k = int(round(r / fr))
                keep = (_u01(seed, h, 0, (j // 8) + (1 << 25)) < 0.5 * d * hf
                        or (abs(k) <= ks and abs(r - k * fr) < m // 2))
            elif kind == 20:  # cubetopk: keys of the row's top-k cubes
                jp = j % fr
                keep = cube_s[(j // fr // 2) * 24 + (jp // wg) // 5 * 4 + (jp % wg) // 13] >= cube_thr
            elif kind == 21:  # clusterk: keys of the selected clusters (a cluster = a hash of the key's patch)
                jp = j % fr
                c = int(64.0 * _u01(seed, h, ((j // fr // 2) * 10 + (jp // wg) // 3) * 13 + (jp % wg) // 4, 1 << 22))
                keep = sel_s[c] >= sel_thr
            elif kind == 22:  # moba: keys of the selected chunks
                keep = sel_s[j // 1536] >= sel_thr
            else:  # uniform-text: iid keys for video queries + text keys kept by all; text queries keep every key
                keep = j >= text0 or q * m >= text0 or _u01(seed, h, q, j) < d
            out[h, q, j] = keep


def case_mask(case: Case) -> np.ndarray:
    """The bool (heads, QB, N) kept-slice mask of a case (deterministic; numba; traces read from the file)."""
    if case.structure == "trace":
        from fgsim.trace import open_trace

        with open_trace(case.trace) as tr:
            if tr.meta.block_m != case.block_m:
                raise FgsimError(f"case {case.case_id}: trace stored at M={tr.meta.block_m}, case asks M={case.block_m}")
            return np.asarray(tr.mask(case.pass_index, case.layer))
    if case.structure not in STRUCTURES:
        raise FgsimError(f"case {case.case_id}: unknown structure '{case.structure}'")
    if case.structure in TORCH_STRUCTURES:
        return _wan_mask(case)
    qb = -(-case.n_tokens // case.block_m)
    out = np.empty((case.heads, qb, case.n_tokens), dtype=np.bool_)
    _gen(STRUCTURES.index(case.structure), case.n_tokens, case.heads, case.block_m, float(case.density),
         np.uint64(case.seed), out)
    return out


def _wan_mask(case: Case) -> np.ndarray:
    """A :data:`TORCH_STRUCTURES` mask: fgattn's benchmark generator on the CPU (bool (heads, QB, N))."""
    try:
        import torch
        from fgattn.masks import window_mask, with_text  # type: ignore[import-not-found]
    except ImportError as exc:
        raise FgsimError(f"case {case.case_id}: structure {case.structure} needs fgattn (kernels/): {exc}") from None
    n_text = min(512, case.n_tokens // 8) if case.structure == "wanwin-text" else 0
    with torch.no_grad():
        m = window_mask(1, case.heads, case.n_tokens - n_text, case.block_m, float(case.density), device="cpu",
                        seed=int(case.seed))
        if n_text:
            m = with_text(m, n_text, case.block_m)
    return np.ascontiguousarray(m[0].numpy())


@nb.njit(cache=True, parallel=True)
def _tile_counts(mask: np.ndarray, n: int) -> np.ndarray:
    h, qb, nk = mask.shape
    nt = (nk + n - 1) // n
    out = np.zeros((h, qb), np.int32)
    for row in nb.prange(h * qb):
        a = row // qb
        b = row % qb
        c = 0
        for t in range(nt):
            lo = t * n
            hi = min(nk, lo + n)
            for j in range(lo, hi):
                if mask[a, b, j]:
                    c += 1
                    break
        out[a, b] = c
    return out


def case_counts(case: Case, ns: Iterable[int] = (1,), mask: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """{n: (heads, QB) kept n-tiles per query block at the case's M}."""
    mk = case_mask(case) if mask is None else mask
    return {n: _tile_counts(mk, int(n)) for n in ns}


# ---------------------------------------------------------------------------------------------------------
# case lists
# ---------------------------------------------------------------------------------------------------------


def fit_heads(n: int, heads: int, m: int) -> int:
    """Largest head count <= heads keeping H·QB·N under MAX_MASK_ELEMS."""
    per = -(-n // m) * n
    return max(1, min(heads, MAX_MASK_ELEMS // per))


DM = ((128, 128), (128, 64), (64, 128), (64, 64))
#: launch-option override naming the entry's tl kernel: on an ``impl: gluon`` entry (fgattn.launch) the measuring
#: harness then launches the same entry's tl fallback (``LaunchConfig.tl_config``); on a tl entry it changes nothing
IMPL_TL = '{"impl": "tl"}'
#: every kernel family (a case's default)
ALL_KERNELS = ("fg", "block", "dense")
#: case options of the fg D=128 M=128 g1 Gluon ws2 form (pipeline 1, no fence: the table's knobs) with an explicit row
#: schedule (``extra.gluon.schedule``; the override replaces the entry's whole ``gluon`` object) and the index's row
#: order (``order``: ``lpt`` = ``fgattn.build_index(..., order=True)``, the benchmarks' launch order; ``natural``: the
#: harness's default index). ``order`` is a harness option, not a launch option: the harness builds the index with it and
#: records ``"order": "lpt"`` in the row's launch_extra, which is what the model reads (:func:`fgsim.model.assemble.walks_lpt`)
ORDERS = ("lpt", "natural")


def gluon_options(schedule: str, order: str, epilogue: str | None = None) -> str:
    """Case options: the Gluon ws2 form (pipeline 1, no fence) with row ``schedule`` (walk | list) on an index in
    ``order`` (lpt | natural); ``epilogue``: the row end named explicitly (fgattn's ``extra.gluon.epilogue``; None:
    not named, the binary's default ``stg``)."""
    import json

    if schedule not in ("walk", "list") or order not in ORDERS:
        raise FgsimError(f"gluon_options: schedule {schedule!r} / order {order!r} not in walk|list / {ORDERS}")
    g: dict[str, Any] = {"form": "ws2", "pipeline": 1, "fence": False, "schedule": schedule}
    if epilogue is not None:
        g["epilogue"] = epilogue
    return json.dumps({"impl": "gluon", "gluon": g, **({"order": "lpt"} if order == "lpt" else {})})


def case_order(case: Case) -> str:
    """The row order of a case's fg index (``options`` key ``order``; default natural), FgsimError if unknown."""
    o = case.option_overrides().get("order", "natural")
    if o not in ORDERS:
        raise FgsimError(f"case {case.case_id}: options order must be one of {ORDERS}, got {o!r}")
    return str(o)


def calibration_cases() -> list[Case]:
    """The calibration list (uniform masks only)."""
    out: list[Case] = []

    def add(st: str, n: int, h: int, d_head: int, m: int, dens: float, kernels: tuple[str, ...], **kw: object) -> None:
        i = len(out)
        out.append(Case(f"c-{i:03d}", "calib", st, n, fit_heads(n, h, m), d_head, m, dens, CALIB_SEED + i,
                        kernels=kernels, **kw))  # type: ignore[arg-type]

    for d_head, m in DM:
        add("uniform", 2048, 1, d_head, m, 0.5, ("fg", "block", "dense"))  # a grid far below one wave
        add("uniform", 8192, 4, d_head, m, 0.05, ("fg", "block"))
        add("uniform", 8192, 4, d_head, m, 0.3, ("fg", "block"))
        add("uniform", 8192, 4, d_head, m, 1.0, ("fg", "block", "dense"))
        add("uniform", 30720, 1, d_head, m, 0.1, ("fg", "block"))
        add("uniform", 30720, 1, d_head, m, 0.5, ("fg", "block", "dense"))
        add("uniform-blocks", 8192, 8, d_head, m, 0.1, ("fg", "block"))
    # three non-default launch configurations at one shape (the rest of the config grid is test-only)
    for bn, st, w in ((64, 2, 8), (128, 2, 8), (32, 3, 8)):
        add("uniform", 8192, 8, 128, 128, 0.3, ("fg", "dense"), block_n=bn, num_stages=st, num_warps=w, axis="config")
    # revision 3 (before its fit): grids of several waves for every kernel (the rows above are all about one wave),
    # small tiles, and each persistent-program setting of the index-driven kernels at a low and a high density
    for d_head, m in DM:
        add("uniform", 8192, 16, d_head, m, 0.2, ("fg", "block", "dense"))
        add("uniform", 30720, 4, d_head, m, 0.03, ("fg", "block"))
    for d_head, m in ((128, 128), (64, 64)):
        add("uniform", 8192, 8, d_head, m, 0.3, ("fg", "dense"), block_n=32, num_stages=2, num_warps=4,
            axis="config")
    for d_head, m in DM:
        for pers, k in ((0, 0), (1, 1), (1, 2)):
            add("uniform", 30720, 2, d_head, m, 0.02, ("fg", "block"), persistent=pers, programs_per_sm=k,
                axis="config")
    for pers, k in ((0, 0), (1, 1), (1, 2), (2, 1)):
        add("uniform-blocks", 8192, 8, 128, 128, 0.3, ("fg", "block", "dense"), persistent=pers,
            programs_per_sm=k, axis="config")
    # revision 4 (before its fit): launch configurations whose compiled loop spills registers to local memory
    # (4 warps at D=128 M=128; BLOCK_N=128 under the 128-register cap) and warp-level mma.sync tiles (M=64 with 8
    # warps), so that the local-memory and mma.sync costs are fitted on calibration rows, not chosen on others
    for kernels, bn, st, w in ((("fg", "block", "dense"), 64, 3, 4), (("block", "dense"), 128, 2, 4),
                               (("block", "dense"), 128, 3, 8)):
        add("uniform", 8192, 8, 128, 128, 0.3, kernels, block_n=bn, num_stages=st, num_warps=w, axis="config")
    for d_head in (128, 64):
        add("uniform", 8192, 8, d_head, 64, 0.3, ("fg", "dense"), block_n=64, num_stages=3, num_warps=8,
            axis="config")
    # revision 5 (before its fit): co-residency pairs. The same launch configuration on a grid of at most one CTA
    # per SM (128 CTAs) and on one of several resident CTAs per SM (the rows above at 8 heads, or the second row
    # here), so that what co-resident CTAs gain over one alone is fitted on calibration rows (the 4-warp M=128
    # tile, the M=64 8-warp N-split tiles, small BLOCK_N, the block kernel's 4-warp tiles)
    for d_head, m, kernels, bn, st, w in ((128, 128, ("fg",), 32, 2, 4), (64, 64, ("fg",), 32, 2, 4),
                                          (128, 64, ("fg", "dense"), 64, 3, 8), (64, 64, ("fg",), 64, 3, 8)):
        add("uniform", 8192, 1 if m == 64 else 2, d_head, m, 0.3, kernels, block_n=bn, num_stages=st,
            num_warps=w, axis="config")
    for heads in (2, 8):
        add("uniform", 8192, heads, 64, 128, 0.3, ("block",), block_n=64, num_stages=3, num_warps=4,
            axis="config")
    for bn in (32, 128):
        add("uniform", 8192, 8, 128, 64, 0.3, ("fg", "dense"), block_n=bn, num_stages=3, num_warps=8,
            axis="config")
    add("uniform", 8192, 8, 64, 64, 0.3, ("fg",), block_n=32, num_stages=3, num_warps=8, axis="config")
    # revision 6 (before its calibration was measured): serialised / pipelined twins of one tile on the same case (same
    # mask and grid), so that the serialised forms' exposed wgmma latency, the TMA issue cost and the L2 rate are
    # fitted apart: the dense entries with and without tail_branch (every dense entry of the final launch table,
    # 05f21a8, has it; ptxas serialises the wgmma chain without it), several waves at one (M=128) and two or three
    # (M=64) CTAs per SM, and one CTA per SM at most (128 CTAs); the block D=128 M=128 entry without its 128-register
    # cap (serialised with it)
    from dataclasses import replace as _replace

    waves = {(c.head_dim, c.block_m): c for c in out if c.n_tokens == 8192 and c.heads == 16}
    for dm in ((128, 64), (128, 128), (64, 128), (64, 64)):
        out.append(_replace(waves[dm], case_id=f"c-{len(out):03d}", kernels=("dense",), axis="config",
                            options='{"tail_branch": false}'))
    out.append(_replace(waves[(128, 128)], case_id=f"c-{len(out):03d}", kernels=("block",), axis="config",
                        options='{"maxnreg": null}'))
    add("uniform", 8192, 1, 128, 64, 1.0, ("dense",))
    out.append(_replace(out[-1], case_id=f"c-{len(out):03d}", axis="config", options='{"tail_branch": false}'))
    # revision 9 (calib10, before its measurement): the fg D=128 M=128 g1 entry in both implementations on the same
    # cases -- its tl kernel (IMPL_TL) and fgattn's Gluon form ws2 with pipeline 1 (no fence; the adopted form) and
    # pipeline 0 (two exposed wgmma waits per tile instead of one) -- whatever the table names (a twin equal to the
    # entry is a repeat measurement); and exp_poly on / off twins of one tile (the option has no parameter of its
    # own: the twins separate it from the tile): the fg and dense D=128 M=128 entries without it, fg D=128 M=64
    # with 1/4
    by_id = {c.case_id: c for c in out}
    g1 = '{"impl": "gluon", "gluon": {"form": "ws2", "pipeline": 1, "fence": false}}'
    g0 = '{"impl": "gluon", "gluon": {"form": "ws2", "pipeline": 0, "fence": false}}'
    twins = [("c-001", "fg", IMPL_TL), ("c-002", "fg", IMPL_TL), ("c-004", "fg", IMPL_TL), ("c-031", "fg", IMPL_TL),
             ("c-001", "fg", g1), ("c-002", "fg", g1), ("c-004", "fg", g1), ("c-031", "fg", g1),
             ("c-002", "fg", g0), ("c-031", "fg", g0),
             ("c-002", "fg", '{"impl": "tl", "exp_poly": 0}'), ("c-031", "fg", '{"impl": "tl", "exp_poly": 0}'),
             ("c-003", "dense", '{"exp_poly": 0}'), ("c-031", "dense", '{"exp_poly": 0}')]
    for cid, kern, opt in twins:
        out.append(_replace(by_id[cid], case_id=f"c-{len(out):03d}", kernels=(kern,), axis="config", options=opt))
    m64 = next(c for c in out if (c.head_dim, c.block_m, c.n_tokens, c.heads) == (128, 64, 8192, 16))
    out.append(_replace(m64, case_id=f"c-{len(out):03d}", kernels=("fg",), axis="config",
                        options='{"exp_poly": 0.25}'))
    # calib11 (2026-11-30, after test13 was committed unmeasured and before this calibration was measured): the fg
    # D=128 M=128 g1 Gluon ws2 entry at benchmark-sized problems with many rows per SM (K/V of 8-34 MB per head, 12-40
    # heads: the working sets of the rows in flight against the L2), each mask with the list and the walk schedule
    # on a launch-ordered (fgattn's benchmark order) and a natural-order index; the uniform-text masks put heavy
    # text rows at the front of the launch order. The entry's tl kernel on one launch-ordered mask.
    for st, n, h, dens in (("uniform", 32768, 12, 0.1), ("uniform-text", 33280, 12, 0.05),
                           ("uniform", 65536, 4, 0.05), ("uniform-text", 16512, 40, 0.1)):
        seed = CALIB_SEED + len(out)
        for sched in ("list", "walk"):
            for order in ORDERS:
                out.append(Case(f"c-{len(out):03d}", "calib", st, n, h, 128, 128, dens, seed, kernels=("fg",),
                                axis="bench", options=gluon_options(sched, order)))
    a = next(c for c in out if c.n_tokens == 32768)
    out.append(_replace(a, case_id=f"c-{len(out):03d}", options='{"impl": "tl", "order": "lpt"}'))
    # calib13 (session 14, after test15 was committed unmeasured): the dense / block D=128 M=128 entries (the Gluon
    # contig form where the final launch table adopts it) at benchmark-sized problems with many rows per SM:
    # uniform-blocks masks (kept 64-key blocks, so the 128-key blocks are sparse) for block, dense at H12 / H40
    for st, n, h, dens, kern in (("uniform-blocks", 32768, 12, 0.05, "block"), ("uniform-blocks", 32768, 12, 0.3, "block"),
                                 ("uniform-blocks", 16512, 40, 0.1, "block"), ("uniform-blocks", 65536, 4, 0.02, "block"),
                                 ("uniform", 32768, 12, 1.0, "dense"), ("uniform", 16512, 40, 1.0, "dense")):
        out.append(Case(f"c-{len(out):03d}", "calib", st, n, h, 128, 128, dens, CALIB_SEED + len(out),
                        kernels=(kern,), axis="bench"))
    # calib14 (session 15, helper M5, after test17 was committed unmeasured, before this calibration was measured): the
    # fg D=128 M=128 g1 Gluon entry's row end. (a) The packaged entry alone (no option: the final table's row end,
    # fgattn's extra.gluon.epilogue) on the nine tuned calibration cases it ran in calib10-13 with the stg row end;
    # (b) at the four benchmark-sized masks of calib11 (list schedule, launch-ordered index) the row ends stg and
    # tma_sel named explicitly, measured in the same call: the reciprocal + TMA bulk-store row end's per-row cycles
    # (row_cycles_rcp) against the division row end's, whatever the final table adopts
    packaged = [by_id[c] for c in ("c-000", "c-001", "c-002", "c-003", "c-004", "c-005", "c-006", "c-031", "c-032")]
    for c in packaged:
        out.append(_replace(c, case_id=f"c-{len(out):03d}", kernels=("fg",), options=""))
    bench_fg = [c for c in out if c.axis == "bench" and c.options == gluon_options("list", "lpt")]
    for epi in ("stg", "tma_sel"):
        for c in bench_fg:
            out.append(_replace(c, case_id=f"c-{len(out):03d}", options=gluon_options("list", "lpt", epi)))
    return out


def development_cases() -> list[Case]:
    """The development list: older synthetic families; a few non-default configs and SM partitions."""
    rng = np.random.default_rng(DEV_SEED)
    out: list[Case] = []
    fams = DEV_STRUCTURES
    i = 0
    for n in (6144, 20480, 40960):
        for d_head, m in DM:
            st = fams[i % len(fams)]
            h = fit_heads(n, int(rng.choice([2, 4, 8, 12])), m)
            dens = round(float(np.exp(rng.uniform(np.log(0.03), np.log(0.8)))), 4)
            out.append(Case(f"d-{i:03d}", "dev", st, n, h, d_head, m, dens, DEV_SEED + i))
            i += 1
    for bn, st, w in ((64, 3, 4), (128, 4, 8), (32, 2, 4), (64, 4, 8)):
        for d_head, m in ((128, 128), (64, 64)):
            if st == 4 and bn == 128 and d_head == 128:
                continue
            out.append(Case(f"d-{i:03d}", "dev", fams[i % 5], 20480, 4, d_head, m, 0.2, DEV_SEED + i,
                            kernels=("fg", "dense"), block_n=bn, num_stages=st, num_warps=w, axis="config"))
            i += 1
    for sms in DEV_SM_PARTITIONS:
        for d_head, m in ((128, 128), (64, 64)):
            out.append(Case(f"d-{i:03d}", "dev", fams[i % 5], 12288, 8, d_head, m, 0.25, DEV_SEED + i,
                            sm_count=sms, axis="sm"))
            i += 1
    return out


def frozen_test_cases(traces_dir: str | os.PathLike[str] = "traces", per_trace: int = 2) -> list[Case]:
    """The frozen test list (see module docstring)."""
    rng = np.random.default_rng(TEST_SEED)
    out: list[Case] = []

    def add(**kw: object) -> None:
        i = len(out)
        out.append(Case(case_id=f"t-{i:03d}", split="test", seed=TEST_SEED + i, **kw))  # type: ignore[arg-type]

    fams = ("window3d", "colstripes", "text")
    # tuned configs, shapes not in calibration
    shapes = ((4096, 16), (12288, 8), (24576, 4), (49152, 2), (75600, 1))
    k = 0
    for n, h in shapes:
        for d_head, m in DM:
            dens = round(float(np.exp(rng.uniform(np.log(0.03), np.log(0.7)))), 4)
            add(structure=fams[k % 3], n_tokens=n, heads=fit_heads(n, h, m), head_dim=d_head, block_m=m,
                density=dens)
            k += 1
    # fp16
    for n, h in ((12288, 8), (24576, 4)):
        for d_head, m in DM:
            add(structure=fams[k % 3], n_tokens=n, heads=h, head_dim=d_head, block_m=m, density=0.2, dtype="fp16",
                axis="dtype")
            k += 1
    # every launch config of the grid: fg/block/dense at D=128 M=128 (two cases), fg/dense at D=64 M=64 (one)
    for bn, st, w in CONFIG_GRID:
        add(structure="window3d", n_tokens=12288, heads=8, head_dim=128, block_m=128, density=0.3,
            kernels=("fg", "block", "dense"), block_n=bn, num_stages=st, num_warps=w, axis="config")
        add(structure="text", n_tokens=24576, heads=4, head_dim=128, block_m=128, density=0.08,
            kernels=("fg", "block"), block_n=bn, num_stages=st, num_warps=w, axis="config")
        add(structure="colstripes", n_tokens=12288, heads=12, head_dim=64, block_m=64, density=0.2,
            kernels=("fg", "dense"), block_n=bn, num_stages=st, num_warps=w, axis="config")
    # SM partitions (green contexts)
    for sms in TEST_SM_PARTITIONS:
        for (n, h), (d_head, m), fam in (((12288, 8), (128, 128), "window3d"), ((4096, 16), (64, 64), "colstripes"),
                                         ((24576, 4), (128, 64), "text")):
            add(structure=fam, n_tokens=n, heads=h, head_dim=d_head, block_m=m, density=0.25, sm_count=sms,
                axis="sm")
    out.extend(trace_cases(traces_dir, per_trace, start=len(out)))
    return out


def test3_cases() -> list[Case]:
    """The second frozen test list (``test3``, written after the first test list had become development data):
    new seeds, N and head counts used by no other list, the structured families, tuned configs at D 64/128 x
    M 64/128, fp16, the whole Hopper launch-config grid at a (D, M) the first test list did not grid (D=128 M=64, fg /
    block / dense) and its 3-stage row at D=64 M=128 (fg / dense), SM partitions of 16/32/64/96 SMs; sized to be
    measured in about two minutes."""
    out: list[Case] = []

    def add(**kw: object) -> None:
        i = len(out)
        out.append(Case(case_id=f"u-{i:03d}", split="test3", seed=TEST3_SEED + i, **kw))  # type: ignore[arg-type]

    fams = ("window3d", "colstripes", "text")
    rng = np.random.default_rng(TEST3_SEED)
    k = 0
    for n, h in ((10240, 6), (16384, 5), (36864, 3)):
        for d_head, m in DM:
            dens = round(float(np.exp(rng.uniform(np.log(0.04), np.log(0.6)))), 4)
            add(structure=fams[k % 3], n_tokens=n, heads=fit_heads(n, h, m), head_dim=d_head, block_m=m,
                density=dens)
            k += 1
    for d_head, m in ((128, 128), (64, 64)):
        add(structure=fams[k % 3], n_tokens=14336, heads=5, head_dim=d_head, block_m=m, density=0.15, dtype="fp16",
            axis="dtype")
        k += 1
    for bn, st, w in CONFIG_GRID:
        add(structure="window3d", n_tokens=16384, heads=5, head_dim=128, block_m=64, density=0.2,
            kernels=("fg", "block", "dense"), block_n=bn, num_stages=st, num_warps=w, axis="config")
        if st == 3:
            add(structure="colstripes", n_tokens=10240, heads=10, head_dim=64, block_m=128, density=0.15,
                kernels=("fg", "dense"), block_n=bn, num_stages=st, num_warps=w, axis="config")
    for sms in TEST_SM_PARTITIONS:
        for (n, h), (d_head, m), fam in (((10240, 6), (128, 128), "text"), ((14336, 10), (64, 64), "window3d")):
            add(structure=fam, n_tokens=n, heads=h, head_dim=d_head, block_m=m, density=0.2, sm_count=sms,
                axis="sm")
    return out


#: persistent-program settings of the launch-config axis: (persistent, programs per SM); (0, 0) = one program per row
PERSISTENT_SETTINGS = ((0, 0), (1, 1), (1, 2))
TEST4_SM_PARTITIONS = (16, 32, 64, 96, 132)


def dev4_cases() -> list[Case]:
    """Development rows for revision 3 (written before its fit, measured with it): the persistent programs of the
    final kernels (each setting, every (D, M), low and high density), grids of several waves, BLOCK_N=32 and
    spilling what-ifs; N 11264 / 23552 and head counts used by no frozen list."""
    out: list[Case] = []

    def add(**kw: object) -> None:
        i = len(out)
        out.append(Case(case_id=f"e-{i:03d}", split="dev4", seed=DEV4_SEED + i, **kw))  # type: ignore[arg-type]

    fams = DEV_STRUCTURES
    k = 0
    for d_head, m in DM:
        for dens in (0.03, 0.3):
            for pers, pps in PERSISTENT_SETTINGS:
                add(structure=fams[k % 5], n_tokens=23552, heads=fit_heads(23552, 6, m), head_dim=d_head, block_m=m,
                    density=dens, kernels=("fg", "block") if (d_head, m) in ((128, 128), (64, 64)) else ("fg",),
                    persistent=pers, programs_per_sm=pps, axis="config")
            k += 1
    for d_head, m in DM:  # several waves, tuned
        add(structure=fams[k % 5], n_tokens=11264, heads=24, head_dim=d_head, block_m=m, density=0.15)
        k += 1
    for (d_head, m), (bn, st, w) in (((128, 128), (32, 3, 4)), ((64, 64), (32, 3, 4)), ((128, 64), (32, 2, 4)),
                                     ((128, 128), (64, 3, 4)), ((64, 128), (128, 2, 8))):
        add(structure=fams[k % 5], n_tokens=11264, heads=8, head_dim=d_head, block_m=m, density=0.2,
            kernels=("fg", "block", "dense"), block_n=bn, num_stages=st, num_warps=w, axis="config")
        k += 1
    for sms in (40, 100):
        add(structure=fams[k % 5], n_tokens=11264, heads=8, head_dim=128, block_m=128, density=0.1, sm_count=sms,
            axis="sm")
        k += 1
    # the nested persistent form (a row loop around the pipelined tile loop), added after the kernels' final note
    for d_head, m in ((128, 128), (64, 64)):
        for dens in (0.03, 0.3):
            for pps in (1, 2):
                add(structure=fams[k % 5], n_tokens=23552, heads=fit_heads(23552, 6, m), head_dim=d_head, block_m=m,
                    density=dens, kernels=("fg", "block", "dense") if dens == 0.03 else ("fg", "block"),
                    persistent=2, programs_per_sm=pps, axis="config")
            k += 1
    return out


class FrozenListBuilder:
    """Writes a frozen test list in the pattern test6 onwards share: tuned configs at every (D, M) on a few shapes
    with log-uniform densities, fp16 at every (D, M), launch-config what-ifs, SM partitions. Case ids
    ``{prefix}-000``…, seeds ``seed + i`` (what-ifs and partitions share a seed per group, so one mask serves all
    configs of a group). The cases come out in call order; a list's generator is its record."""

    def __init__(self, split: str, prefix: str, seed: int, families: tuple[str, ...]) -> None:
        self.split, self.prefix, self.seed, self.families = split, prefix, seed, families
        self.cases: list[Case] = []
        self.k = 0  # next family (round robin)
        self.rng = np.random.default_rng(seed)

    def add(self, seed: int | None = None, **kw: object) -> None:
        i = len(self.cases)
        self.cases.append(Case(case_id=f"{self.prefix}-{i:03d}", split=self.split,
                               seed=self.seed + i if seed is None else seed, **kw))  # type: ignore[arg-type]

    def tuned(self, shapes: Sequence[tuple[int, int]], lo: float, hi: float) -> None:
        """Tuned configs at every (D, M) of :data:`DM` on each (N, heads), density log-uniform in [lo, hi]."""
        for n, h in shapes:
            for d_head, m in DM:
                dens = round(float(np.exp(self.rng.uniform(np.log(lo), np.log(hi)))), 4)
                self.add(structure=self.families[self.k % 3], n_tokens=n, heads=fit_heads(n, h, m),
                         head_dim=d_head, block_m=m, density=dens)
                self.k += 1

    def fp16(self, n: int, heads: int, density: float) -> None:
        """fp16 at every (D, M)."""
        for d_head, m in DM:
            self.add(structure=self.families[self.k % 3], n_tokens=n, heads=heads, head_dim=d_head, block_m=m,
                     density=density, dtype="fp16", axis="dtype")
            self.k += 1

    def bench(self, rows: Sequence[tuple[Any, ...]], twins: Sequence[int]) -> None:
        """Benchmark-shape cases at M=128, one per (kernel, family, N, heads, D, density, options) row, seeds
        ``seed + 300 + j``; then a long-run twin of each row listed in ``twins`` (the same case, a second row)."""
        for j, (kern, fam, n, h, d_head, dens, opt) in enumerate(rows):
            self.add(seed=self.seed + 300 + j, structure=fam, n_tokens=n, heads=h, head_dim=d_head, block_m=128,
                     density=dens, kernels=(kern,), axis="bench", options=opt)
        short = self.cases[-len(rows):]
        for j in twins:
            c = short[j]
            self.add(seed=c.seed, structure=c.structure, n_tokens=c.n_tokens, heads=c.heads, head_dim=c.head_dim,
                     block_m=c.block_m, density=c.density, kernels=c.kernels, axis="bench", options=c.options)

    def whatifs(self, groups: Sequence[tuple[Any, ...]]) -> None:
        """(kernel, family, N, heads, D, M, density, ((BLOCK_N, stages, warps), …)) per group."""
        for j, (kern, fam, n, h, d_head, m, dens, grid) in enumerate(groups):
            for bn, st, w in grid:
                self.add(seed=self.seed + 500 + j, structure=fam, n_tokens=n, heads=h, head_dim=d_head, block_m=m,
                         density=dens, kernels=(kern,), block_n=bn, num_stages=st, num_warps=w, axis="config")

    def persistent_settings(self, n: int, heads: int, dens_both: float, dens_fg: float) -> None:
        """Persistent programs off / 1 / 2 per SM at every (D, M): all kernels at (128, 128) and (64, 64)
        (density ``dens_both``), fg alone elsewhere (``dens_fg``)."""
        for j, (d_head, m) in enumerate(DM):
            both = (d_head, m) in ((128, 128), (64, 64))
            for pers, pps in PERSISTENT_SETTINGS:
                self.add(seed=self.seed + 600 + j, structure=self.families[j % 3], n_tokens=n, heads=heads,
                         head_dim=d_head, block_m=m, density=dens_both if both else dens_fg,
                         kernels=ALL_KERNELS if both else ("fg",), persistent=pers, programs_per_sm=pps,
                         axis="config")

    def sm_partitions(self, groups: Sequence[tuple[Any, ...]], density: float = 0.15) -> None:
        """((N, heads), (D, M), family, kernels, SM counts) per group."""
        for j, ((n, h), (d_head, m), fam, kerns, parts) in enumerate(groups):
            for sms in parts:
                self.add(seed=self.seed + 700 + j, structure=fam, n_tokens=n, heads=h, head_dim=d_head, block_m=m,
                         density=density, sm_count=sms, kernels=kerns, axis="sm")

    def trace_entry(self, name: str, pick: tuple[int, int] | Callable[[list[tuple[int, int]]], tuple[int, int]]) -> None:
        """One DiT trace entry of ``traces/{name}`` as a case: ``pick`` is its (pass, layer) or chooses one from
        the trace's entries; density = the entry's mean kept fraction."""
        from fgsim.trace import open_trace

        path = f"traces/{name}"
        with open_trace(repo_path(path)) as tr:
            p, lay = pick(tr.entries()) if callable(pick) else pick
            self.add(seed=0, structure="trace", n_tokens=tr.n_tokens, heads=len(tr.meta.heads),
                     head_dim=tr.meta.head_dim, block_m=tr.meta.block_m,
                     density=round(float(tr.entry_density(p, lay).mean()), 4), trace=path, pass_index=p, layer=lay,
                     axis="trace")


def test4_cases() -> list[Case]:
    """The frozen test list of revision 3 (``test4``), written and committed before its fit and before any
    measurement of the final kernels: structured families (3-D windows, column stripes, text tokens), N 9216 /
    18432 / 28672 / 53248 and head counts 7 / 9 / 11 / 14 used by no other list; tuned configs at D 64/128 x
    M 64/128, fp16, every BLOCK_N 32/64/128 x stages 2-4 x warps 4/8 what-if of one case per kernel (fg and block
    at D=128 M=128, dense at D=64 M=128; the same mask for every config of a what-if), persistent programs
    off / 1 / 2 per SM, and SM partitions of 16/32/64/96/132 SMs (green contexts). About 150 kernel rows."""
    b = FrozenListBuilder("test4", "v", TEST4_SEED, ("window3d", "colstripes", "text"))
    b.tuned(((9216, 14), (28672, 7), (53248, 3)), 0.02, 0.6)
    for d_head, m in ((128, 128), (64, 64)):
        b.add(structure=b.families[b.k % 3], n_tokens=18432, heads=9, head_dim=d_head, block_m=m, density=0.12,
              dtype="fp16", axis="dtype")
        b.k += 1
    b.whatifs(tuple((*g, CONFIG_GRID) for g in (("fg", "window3d", 18432, 9, 128, 128, 0.1),
                                                ("block", "text", 18432, 9, 128, 128, 0.15),
                                                ("dense", "colstripes", 9216, 11, 64, 128, 0.2))))
    b.persistent_settings(28672, 7, 0.04, 0.25)
    b.sm_partitions((((18432, 9), (128, 128), "text", ALL_KERNELS, TEST4_SM_PARTITIONS),
                     ((9216, 14), (64, 64), "window3d", ALL_KERNELS, TEST4_SM_PARTITIONS)))
    return b.cases


def dev5_cases() -> list[Case]:
    """Development rows for revision 4 on the final kernels (tail_reuse / tma_q entries of the launch table): tuned
    configs at every (D, M) on the development families at N 15360 / 26624, and SM partitions of 48 / 120 SMs."""
    out: list[Case] = []

    def add(**kw: object) -> None:
        i = len(out)
        out.append(Case(case_id=f"f-{i:03d}", split="dev5", seed=DEV5_SEED + i, **kw))  # type: ignore[arg-type]

    k = 0
    for n, h, dens in ((15360, 8, 0.05), (26624, 4, 0.25)):
        for d_head, m in DM:
            add(structure=DEV_STRUCTURES[k % 5], n_tokens=n, heads=h, head_dim=d_head, block_m=m, density=dens)
            k += 1
    for sms in DEV_SM_PARTITIONS:
        add(structure=DEV_STRUCTURES[k % 5], n_tokens=15360, heads=8, head_dim=128, block_m=64, density=0.1,
            sm_count=sms, axis="sm")
        k += 1
    return out


def test5_cases() -> list[Case]:
    """The frozen test list of revision 4 (``test5``), written and committed before its calibration was measured
    and before any measurement of its rows: structured families (3-D windows, column stripes, text tokens), N 7168 /
    13312 / 22528 / 45056 and head counts 13 / 10 / 6 / 3 used by no other list, new seeds; tuned configs at D 64/128
    x M 64/128 (three shapes), fp16 at every (D, M); every BLOCK_N 32/64/128 x stages 2-4 x warps 4/8 what-if of four
    cases (fg at D=128 M=128 and at D=64 M=64, block at D=64 M=128, dense at D=128 M=64; one mask per what-if);
    persistent programs off / 1 / 2 per SM at every (D, M); SM partitions of 16/32/64/96/132 SMs (green contexts)."""
    b = FrozenListBuilder("test5", "w", TEST5_SEED, ("colstripes", "text", "window3d"))
    b.tuned(((7168, 13), (22528, 6), (45056, 3)), 0.02, 0.6)
    b.fp16(13312, 10, 0.1)
    b.whatifs(tuple((*g, CONFIG_GRID) for g in (("fg", "colstripes", 13312, 10, 128, 128, 0.12),
                                                ("fg", "text", 22528, 6, 64, 64, 0.1),
                                                ("block", "window3d", 22528, 6, 64, 128, 0.15),
                                                ("dense", "text", 7168, 13, 128, 64, 0.2))))
    b.persistent_settings(45056, 3, 0.03, 0.2)
    b.sm_partitions((((13312, 10), (128, 64), "window3d", ALL_KERNELS, TEST4_SM_PARTITIONS),
                     ((7168, 13), (64, 128), "colstripes", ALL_KERNELS, TEST4_SM_PARTITIONS)))
    return b.cases


def test6_cases() -> list[Case]:
    """The frozen test list of revision 5 (``test6``), written and committed before revision 5's calibration was
    written and before any measurement of its rows: structured families (3-D windows, column stripes, text tokens),
    N 8704 / 19456 / 34816 and head counts 12 / 7 / 4 used by no other list, new seeds; tuned configs at D 64/128 x
    M 64/128 (two shapes), fp16 at every (D, M); launch-config what-ifs with the M=64 one-warpgroup tiles in front:
    fg D=128 M=64 (every BLOCK_N 32/64/128 x stages 2-4 x warps 4/8), fg D=64 M=64 (4 warps, every BLOCK_N x stages),
    dense D=128 M=64 (4 warps, BLOCK_N x stages 2/3), block D=128 M=64 (BLOCK_N=64, stages 2/3, warps 4/8), fg
    D=128 M=128 (BLOCK_N=64, 3 stages, 4/8 warps); persistent programs off / 1 / 2 per SM for fg at M=64; SM
    partitions of 16/32/64/96/132 SMs (green contexts)."""
    b = FrozenListBuilder("test6", "z", TEST6_SEED, ("window3d", "text", "colstripes"))
    b.tuned(((8704, 12), (34816, 4)), 0.02, 0.6)
    b.fp16(19456, 7, 0.12)
    b.whatifs((("fg", "window3d", 19456, 7, 128, 64, 0.1, CONFIG_GRID),
               ("fg", "colstripes", 34816, 4, 64, 64, 0.08,
                tuple((bn, st, 4) for bn in (32, 64, 128) for st in (2, 3, 4))),
               ("dense", "text", 8704, 12, 128, 64, 0.2, tuple((bn, st, 4) for bn in (32, 64, 128) for st in (2, 3))),
               ("block", "text", 19456, 7, 128, 64, 0.15, tuple((64, st, w) for st in (2, 3) for w in (4, 8))),
               ("fg", "text", 8704, 12, 128, 128, 0.15, ((64, 3, 4), (64, 3, 8)))))
    for j, (d_head, m) in enumerate(((128, 64), (64, 64))):
        for pers, pps in PERSISTENT_SETTINGS:
            b.add(seed=TEST6_SEED + 600 + j, structure=b.families[j % 3], n_tokens=34816, heads=4, head_dim=d_head,
                  block_m=m, density=0.1, kernels=("fg",), persistent=pers, programs_per_sm=pps, axis="config")
    b.sm_partitions((((19456, 7), (128, 64), "colstripes", ("fg", "block", "dense"), TEST4_SM_PARTITIONS),
                     ((8704, 12), (64, 128), "window3d", ("fg",), TEST4_SM_PARTITIONS)))
    return b.cases


def test7_cases() -> list[Case]:
    """The frozen test list ``test7``, written and committed before any fit of the waited-wgmma term and before any
    measurement of its rows, on the final launch table (08559f8): structured families, N 9728 /
    17408 / 25600 / 11776 used by no other list, new seeds; the tuned entries at D 64/128 x M 64/128 at two shapes
    (fg M=128 g1 and M=64 g1 ``one_row``, dense D=128 M=128 / M=64 and D=64 M=128 ``tail_branch``, block), fp16 at
    every (D, M); what-ifs around the new entries (dense D=128 M=128 BLOCK_N 64/128 x stages 2/3, dense D=128 M=64
    BLOCK_N 32/64/128, fg D=128 M=64 BLOCK_N 32/64/128 x stages 2-4, fg D=128 M=128 BLOCK_N 64/128 x stages 2/3;
    each takes its entry's launch options); SM partitions of 24/40/72/88/112 SMs (green contexts). The harness
    builds indices at granularity 1, so the fg g16 / g64 entries (the same ``one_row`` form) are not timed."""
    b = FrozenListBuilder("test7", "y", TEST7_SEED, ("window3d", "text", "colstripes"))
    b.tuned(((9728, 12), (25600, 5)), 0.03, 0.5)
    b.fp16(17408, 6, 0.1)
    b.whatifs((("dense", "window3d", 17408, 6, 128, 128, 0.2, tuple((bn, st, 8) for bn in (64, 128) for st in (2, 3))),
               ("dense", "colstripes", 9728, 12, 128, 64, 0.2, tuple((bn, 3, 4) for bn in (32, 64, 128))),
               ("fg", "text", 17408, 6, 128, 64, 0.1,
                ((64, 2, 4), (64, 3, 4), (64, 4, 4), (32, 3, 4), (128, 3, 4))),
               ("fg", "window3d", 25600, 5, 128, 128, 0.08, tuple((bn, st, 8) for bn in (64, 128) for st in (2, 3)))))
    b.sm_partitions((((11776, 10), (128, 128), "colstripes", ("fg", "block", "dense"), (40, 88, 112)),
                     ((11776, 10), (128, 64), "text", ("fg", "dense"), (24, 72))))
    return b.cases


def test8_cases() -> list[Case]:
    """The frozen test list ``test8`` (43 cases, 75 kernel rows; written 2026-11-30 by
    ``validation/cases/make_test8.py`` and committed unmeasured in 2ef4e01, before any variant of the next revision
    was fitted; this generator reproduces that file byte for byte): structured mask families (text tokens, column
    stripes, 3-D windows), N 13824 / 21504 / 15872 / 27648 and seeds 9.98M used by no other list; the final launch
    table's (08559f8) tuned entries at D 64/128 x M 64/128 at two shapes, fp16 at every (D, M); what-ifs around the
    entries revision 5 misprices (dense ``tail_branch`` D=128 M=128 / M=64 and D=64 M=128, fg ``one_row`` D=128 M=64
    and M=128: BLOCK_N, stages and warps; each takes its entry's launch options); SM partitions (green contexts) of
    32/56/80/96/104 SMs."""
    b = FrozenListBuilder("test8", "s", TEST8_SEED, ("text", "colstripes", "window3d"))
    b.tuned(((13824, 10), (27648, 7)), 0.03, 0.5)
    b.fp16(21504, 5, 0.12)
    b.whatifs((
        ("dense", "window3d", 21504, 5, 128, 128, 0.2,
         ((64, 2, 8), (64, 3, 8), (128, 2, 8), (128, 3, 8), (64, 4, 8), (128, 3, 4))),
        ("dense", "text", 15872, 8, 128, 64, 0.2,
         ((32, 3, 4), (64, 2, 4), (64, 3, 4), (64, 4, 4), (128, 3, 4), (64, 3, 8))),
        ("dense", "colstripes", 15872, 8, 64, 128, 0.2, ((64, 3, 8), (64, 4, 8), (128, 2, 8), (128, 3, 8))),
        ("fg", "colstripes", 21504, 5, 128, 64, 0.1,
         ((64, 2, 4), (64, 3, 4), (64, 4, 4), (32, 3, 4), (128, 3, 4), (64, 3, 8))),
        ("fg", "text", 15872, 8, 128, 128, 0.08, ((64, 2, 8), (64, 3, 8), (128, 2, 8), (128, 3, 8))),
    ))
    b.sm_partitions((((13824, 9), (128, 128), "window3d", ("fg", "block", "dense"), (56, 80, 104)),
                     ((13824, 9), (128, 64), "colstripes", ("fg", "dense"), (32, 96))))
    return b.cases


def test9_cases() -> list[Case]:
    """The frozen test list ``test9`` of revision 7 (47 cases, 85 kernel rows; written 2026-11-30 by
    ``validation/cases/make_test9.py`` and committed unmeasured, before any revision-7 variant was fitted):
    structured mask families (column stripes, 3-D windows, text tokens), N 10752 / 29696 / 19968 / 14848 and seeds
    9.99M used by no other list; the final launch table's tuned entries at D 64/128 x M 64/128 at two shapes, fp16 at
    every (D, M); launch-config what-ifs (BLOCK_N 32/64/128 x stages 2-4 x warps 4/8; each takes its entry's launch
    options) around dense D=128 M=128, block D=128 M=64, fg D=64 M=128, dense D=64 M=64 and fg D=128 M=64;
    persistent programs off / 1 / 2 per SM (all kernels at D=64 M=64, fg at D=128 M=128); SM partitions (green
    contexts) of 16 / 48 / 132 SMs (all kernels, D=64 M=128) and 64 / 120 SMs (block and dense, D=128 M=64)."""
    b = FrozenListBuilder("test9", "q", TEST9_SEED, ("colstripes", "window3d", "text"))
    b.tuned(((10752, 11), (29696, 5)), 0.03, 0.5)
    b.fp16(19968, 6, 0.1)
    b.whatifs((
        ("dense", "window3d", 14848, 7, 128, 128, 0.2,
         ((64, 2, 8), (64, 3, 8), (128, 2, 8), (128, 3, 8), (32, 4, 8))),
        ("block", "text", 19968, 6, 128, 64, 0.15, ((64, 2, 4), (64, 3, 4), (64, 4, 4), (32, 3, 4), (64, 3, 8))),
        ("fg", "colstripes", 14848, 7, 64, 128, 0.1, ((64, 2, 8), (64, 4, 8), (128, 3, 8), (32, 3, 8), (64, 3, 4))),
        ("dense", "colstripes", 29696, 5, 64, 64, 0.2, ((32, 3, 4), (64, 2, 4), (64, 3, 4), (128, 2, 4), (128, 3, 8))),
        ("fg", "window3d", 10752, 11, 128, 64, 0.1, ((64, 2, 4), (64, 4, 4), (128, 2, 4), (32, 2, 4))),
    ))
    for j, (d_head, m, kerns) in enumerate(((64, 64, ALL_KERNELS), (128, 128, ("fg",)))):
        for pers, pps in PERSISTENT_SETTINGS:
            b.add(seed=TEST9_SEED + 600 + j, structure=b.families[j % 3], n_tokens=29696, heads=5, head_dim=d_head,
                  block_m=m, density=0.06 if len(kerns) > 1 else 0.2, kernels=kerns, persistent=pers,
                  programs_per_sm=pps, axis="config")
    b.sm_partitions((((10752, 11), (64, 128), "text", ALL_KERNELS, (16, 48, 132)),
                     ((19968, 6), (128, 64), "window3d", ("block", "dense"), (64, 120))))
    return b.cases


#: test10's exp_poly what-ifs: (kernel, D, M, density, the option overrides of each twin); the entry itself is timed too
TEST10_EXP_POLY = (("dense", 128, 128, 1.0, ('{"exp_poly": 0}', '{"exp_poly": 0.5}')),
                   ("fg", 128, 128, 0.15, ('{"exp_poly": 0}', '{"exp_poly": 0.125}')),
                   ("fg", 128, 64, 0.15, ('{"exp_poly": 0.25}',)),
                   ("dense", 128, 64, 1.0, ('{"exp_poly": 0.25}',)),
                   ("dense", 64, 128, 1.0, ('{"exp_poly": 0.25}',)))
#: the fg D=128 M=128 g16 entry's tile form (idx_ahead 1, tma_q, no one_row / exp_poly) on the g1 harness index
FG_G16_FORM = '{"one_row": false, "idx_early": false, "idx_ahead": 1, "tma_q": true, "exp_poly": 0}'


def test10_cases() -> list[Case]:
    """The frozen test list ``test10`` of revision 8 (46 cases, 79 kernel rows; written 2026-11-30 by
    ``validation/cases/make_test10.py`` and committed unmeasured, before any revision-8 variant was fitted):
    structured mask families (window3d, text tokens, column stripes), N 12800 / 23040 / 16896 / 31744 / 12544 and
    seeds 9.993M used by no other list; the launch table's (9245ed4) tuned entries at D 64/128 x M 64/128 at two
    shapes, fp16 at every (D, M); the ``exp_poly`` entries (fg and dense D=128 M=128, 1/4 of P by the FMA polynomial)
    with on / off and other-fraction twins, the option on entries without it (fg D=128 M=64, dense D=128 M=64 and
    D=64 M=128); a dense workload (density 1) for fg D=128 M=128 g1, fg in the g16 entry's tile form and the dense
    D=128 M=128 / M=64 entries; launch-config what-ifs (BLOCK_N 32/64/128 x stages 2-4 x warps 4/8) around dense
    D=128 M=128, fg D=128 M=128, block D=64 M=128 and fg D=64 M=64; persistent programs off / 1 / 2 per SM (fg
    D=128 M=64); SM partitions (green contexts) of 32 / 80 / 132 SMs (all kernels, D=128 M=128) and 24 / 104 SMs
    (block and dense, D=64 M=64)."""
    from dataclasses import replace as _replace

    b = FrozenListBuilder("test10", "p", TEST10_SEED, ("window3d", "text", "colstripes"))
    b.tuned(((12800, 9), (31744, 4)), 0.03, 0.5)
    b.fp16(23040, 5, 0.12)
    for j, (kern, d_head, m, dens, twins) in enumerate(TEST10_EXP_POLY):
        b.add(seed=TEST10_SEED + 400 + j, structure="colstripes" if dens == 1.0 else b.families[j % 3],
              n_tokens=16896, heads=5, head_dim=d_head, block_m=m, density=dens, kernels=(kern,))
        for opt in twins:
            b.cases.append(_replace(b.cases[-1], case_id=f"p-{len(b.cases):03d}", axis="config", options=opt))
    # a dense workload: the fg D=128 M=128 entries against the dense entries on the same all-ones mask
    b.add(seed=TEST10_SEED + 450, structure="colstripes", n_tokens=12544, heads=6, head_dim=128, block_m=128,
          density=1.0, kernels=("fg", "dense"))
    b.cases.append(_replace(b.cases[-1], case_id=f"p-{len(b.cases):03d}", kernels=("fg",), axis="config",
                            options=FG_G16_FORM))
    b.add(seed=TEST10_SEED + 450, structure="colstripes", n_tokens=12544, heads=6, head_dim=128, block_m=64,
          density=1.0, kernels=("dense",))
    b.whatifs((
        ("dense", "text", 16896, 5, 128, 128, 0.2, ((64, 3, 8), (64, 4, 8), (128, 2, 8))),
        ("fg", "window3d", 23040, 5, 128, 128, 0.1, ((64, 2, 8), (64, 3, 8), (128, 2, 8), (32, 4, 8))),
        ("block", "colstripes", 23040, 5, 64, 128, 0.15, ((32, 3, 8), (64, 3, 4))),
        ("fg", "text", 12800, 9, 64, 64, 0.1, ((32, 3, 4), (128, 3, 4))),
    ))
    for pers, pps in PERSISTENT_SETTINGS:
        b.add(seed=TEST10_SEED + 600, structure="window3d", n_tokens=31744, heads=4, head_dim=128, block_m=64,
              density=0.08, kernels=("fg",), persistent=pers, programs_per_sm=pps, axis="config")
    b.sm_partitions((((12800, 9), (128, 128), "text", ALL_KERNELS, (32, 80, 132)),
                     ((23040, 5), (64, 64), "window3d", ("block", "dense"), (24, 104))))
    return b.cases


def test11_cases() -> list[Case]:
    """The frozen test list ``test11`` of revision 9 (written 2026-11-30 by ``validation/cases/make_test11.py`` and
    committed unmeasured, before any revision-9 decision): structured mask families (text tokens, column stripes,
    3-D windows per head) and two DiT trace entries not on any earlier list, N 11520 / 26880 / 15600 / 18944 /
    24832 and seeds 9.996M used by no other list; the launch table's tuned entries at D 64/128 x M 64/128 at two
    shapes and fg D=128 M=128 (the table's entry, whatever implementation the final table gives it) at three
    densities of one shape (N 15600: a masked tail tile), fp16 at every (D, M); that entry's tl kernel beside it
    (``IMPL_TL``); launch-config what-ifs (BLOCK_N 32/64/128 x stages 2-4 x warps 4/8; a what-if of an
    ``impl: gluon`` entry is its tl kernel at that configuration) around fg D=128 M=128, dense D=64 M=128, block
    D=128 M=64, fg D=64 M=64 and fg D=128 M=64; persistent programs off / 1 / 2 per SM (fg D=64 M=128); SM
    partitions (green contexts) of 16 / 64 / 132 SMs (all kernels, D=128 M=128) and 32 / 96 SMs (all kernels,
    D=64 M=64)."""
    from dataclasses import replace as _replace

    b = FrozenListBuilder("test11", "r", TEST11_SEED, ("text", "colstripes", "window3d"))
    b.tuned(((11520, 10), (26880, 4)), 0.03, 0.5)
    for j, dens in enumerate((0.02, 0.1, 0.5)):  # the fg D=128 M=128 entry, short to long rows
        b.add(seed=TEST11_SEED + 300 + j, structure=b.families[j % 3], n_tokens=15600, heads=8, head_dim=128,
              block_m=128, density=dens, kernels=("fg",))
        if j != 1:  # its tl kernel on the same case (the entry itself where the entry is tl)
            b.cases.append(_replace(b.cases[-1], case_id=f"r-{len(b.cases):03d}", axis="config", options=IMPL_TL))
    b.fp16(18944, 6, 0.12)
    b.whatifs((
        ("fg", "window3d", 24832, 5, 128, 128, 0.12, ((64, 2, 8), (64, 3, 8), (128, 2, 8), (128, 4, 8), (32, 3, 8))),
        ("dense", "text", 18944, 6, 64, 128, 0.2, ((32, 2, 4), (64, 3, 4), (128, 2, 8), (64, 4, 8))),
        ("block", "colstripes", 24832, 5, 128, 64, 0.15, ((32, 3, 4), (64, 2, 8), (128, 3, 4))),
        ("fg", "text", 11520, 10, 64, 64, 0.1, ((32, 2, 4), (64, 4, 4), (128, 2, 4))),
        ("fg", "colstripes", 26880, 4, 128, 64, 0.1, ((64, 3, 8), (128, 3, 8), (32, 4, 4))),
    ))
    for pers, pps in PERSISTENT_SETTINGS:
        b.add(seed=TEST11_SEED + 600, structure="window3d", n_tokens=24832, heads=5, head_dim=64, block_m=128,
              density=0.08, kernels=("fg",), persistent=pers, programs_per_sm=pps, axis="config")
    b.sm_partitions((((15600, 8), (128, 128), "window3d", ALL_KERNELS, (16, 64, 132)),
                     ((18944, 6), (64, 64), "colstripes", ALL_KERNELS, (32, 96))))
    # two DiT trace entries (D=64 M=64) that no earlier list took: a third into each 21x30x52 trace's entries
    for name in ("refdit-21x30x52-exact.fgt", "refdit-21x30x52-pooled.fgt"):
        b.trace_entry(name, lambda e: e[len(e) // 3])
    return b.cases


def test12_cases() -> list[Case]:
    """The frozen test list ``test12`` of revision 10 (written 2026-11-30 by ``validation/cases/make_test12.py`` and
    committed unmeasured, before any revision-10 variant was looked at): two mask families no earlier list took
    (``framewin``: whole frames in a temporal window plus the first frame; ``dilated``: every s-th key plus the
    diagonal block) beside 3-D windows and text tokens, two DiT trace entries no earlier list took (the 8x16x28
    traces, two thirds in), N 13056 / 28160 / 17664 / 22272 / 20224 / 10496 and seeds 9.997M used by no other list;
    the launch table's tuned entries at D 64/128 x M 64/128 at two shapes; the fg D=128 M=128 g1 entry (the table's
    entry: the Gluon form on the H200) at densities 0.03 / 0.2 / 0.7 with its tl kernel (``IMPL_TL``) beside each;
    fp16 at every (D, M); launch-config what-ifs (BLOCK_N 32/64/128 x stages 2-4 x warps 4/8) around dense D=128
    M=128, dense D=128 M=64, fg D=64 M=64, fg D=128 M=128 (its tl kernel) and block D=64 M=64; persistent programs
    off / 1 / 2 per SM (fg D=128 M=64); SM partitions (green contexts) of 24 / 72 / 132 SMs (all kernels, D=128
    M=128) and 40 / 112 SMs (all kernels, D=64 M=64)."""
    from dataclasses import replace as _replace

    b = FrozenListBuilder("test12", "k", TEST12_SEED, ("framewin", "dilated", "window3d"))
    b.tuned(((13056, 9), (28160, 4)), 0.03, 0.5)
    for j, dens in enumerate((0.03, 0.2, 0.7)):  # the fg D=128 M=128 entry and its tl kernel, short to long rows
        b.add(seed=TEST12_SEED + 300 + j, structure=("text", "dilated", "framewin")[j], n_tokens=17664, heads=7,
              head_dim=128, block_m=128, density=dens, kernels=("fg",))
        b.cases.append(_replace(b.cases[-1], case_id=f"k-{len(b.cases):03d}", axis="config", options=IMPL_TL))
    b.fp16(22272, 5, 0.15)
    b.whatifs((
        ("dense", "framewin", 17664, 7, 128, 128, 0.25, ((64, 2, 8), (64, 3, 8), (128, 2, 8), (32, 3, 8))),
        ("dense", "dilated", 22272, 5, 128, 64, 0.2, ((64, 3, 4), (128, 2, 4), (32, 4, 4))),
        ("fg", "framewin", 13056, 9, 64, 64, 0.1, ((32, 3, 4), (64, 2, 4), (64, 3, 8))),
        ("fg", "dilated", 28160, 4, 128, 128, 0.1, ((64, 3, 8), (128, 2, 8), (32, 2, 8))),
        ("block", "text", 20224, 6, 64, 64, 0.15, ((32, 2, 4), (64, 3, 4), (128, 2, 4))),
    ))
    for pers, pps in PERSISTENT_SETTINGS:
        b.add(seed=TEST12_SEED + 600, structure="text", n_tokens=20224, heads=6, head_dim=128, block_m=64,
              density=0.08, kernels=("fg",), persistent=pers, programs_per_sm=pps, axis="config")
    b.sm_partitions((((17664, 7), (128, 128), "dilated", ALL_KERNELS, (24, 72, 132)),
                     ((10496, 12), (64, 64), "framewin", ALL_KERNELS, (40, 112))))
    # two DiT trace entries (D=64 M=64) that no earlier list took: two thirds into each 8x16x28 trace's entries
    for name in ("refdit-8x16x28-exact.fgt", "refdit-8x16x28-pooled.fgt"):
        b.trace_entry(name, lambda e: e[2 * len(e) // 3])
    return b.cases


def test13_cases() -> list[Case]:
    """The frozen test list ``test13`` of revision 9 + calib11 (written 2026-11-30 by ``validation/cases/make_test13.py``
    and committed unmeasured, before any calib11 / revision-10 decision and before the session's measurements were
    looked at): mask families other than calibration's (column stripes, framewin, dilated, 3-D windows, text tokens),
    N 14080 / 27136 / 19200 / 21760 / 16640 / 24064 / 12032 and seeds 9.998M used by no other list; the launch table's
    tuned entries at D 64/128 x M 64/128 at two shapes; fp16 at every (D, M); launch-config what-ifs around dense D=64
    M=64, fg D=128 M=64 and block D=128 M=128; persistent programs off / 1 / 2 (fg D=64 M=64); SM partitions of 32 / 100
    SMs (all kernels, D=128 M=128) and 56 SMs (all kernels, D=64 M=128); two DiT trace entries no earlier list took
    (refdit-21x30x52, half way). New, axis ``bench``: the fg D=128 M=128 g1 Gluon ws2 entry at benchmark-like shapes
    with many rows per SM (H12 N32760 3-D windows, H12 N33272 = 32760 + 512 text tokens, H40 N75600 3-D windows) with the
    list schedule on launch-ordered (``order: lpt``, the benchmarks' index) and natural-order indices and the walk
    schedule on the launch-ordered index as a what-if, plus the entry's tl kernel on one launch-ordered case."""
    b = FrozenListBuilder("test13", "n", TEST13_SEED, ("colstripes", "framewin", "dilated"))
    b.tuned(((14080, 8), (27136, 4)), 0.03, 0.5)
    lst_lpt, lst_nat, walk_lpt = (gluon_options("list", "lpt"), gluon_options("list", "natural"),
                                  gluon_options("walk", "lpt"))
    bench = (("window3d", 32760, 12, 0.03), ("window3d", 32760, 12, 0.2), ("text", 33272, 12, 0.05),
             ("text", 33272, 12, 0.25))
    for j, (fam, n, h, dens) in enumerate(bench):
        for opt in (lst_lpt, lst_nat, walk_lpt):
            b.add(seed=TEST13_SEED + 300 + j, structure=fam, n_tokens=n, heads=h, head_dim=128, block_m=128,
                  density=dens, kernels=("fg",), axis="bench", options=opt)
    b.add(seed=TEST13_SEED + 301, structure="window3d", n_tokens=32760, heads=12, head_dim=128, block_m=128,
          density=0.2, kernels=("fg",), axis="bench", options='{"impl": "tl", "order": "lpt"}')
    for opt in (lst_lpt, walk_lpt):  # 720p, 40 heads: 179 rows per SM (mask 1.8 GB: above fit_heads' bound)
        b.add(seed=TEST13_SEED + 310, structure="window3d", n_tokens=75600, heads=40, head_dim=128, block_m=128,
              density=0.03, kernels=("fg",), axis="bench", options=opt)
    b.fp16(19200, 6, 0.12)
    b.whatifs((
        ("dense", "colstripes", 21760, 5, 64, 64, 0.2, ((64, 2, 4), (32, 3, 8), (64, 4, 8))),
        ("fg", "dilated", 16640, 7, 128, 64, 0.1, ((64, 3, 8), (128, 2, 8), (32, 4, 4))),
        ("block", "framewin", 24064, 5, 128, 128, 0.15, ((64, 2, 8), (128, 3, 8), (32, 2, 4))),
    ))
    for pers, pps in PERSISTENT_SETTINGS:
        b.add(seed=TEST13_SEED + 600, structure="window3d", n_tokens=12032, heads=8, head_dim=64, block_m=64,
              density=0.08, kernels=("fg",), persistent=pers, programs_per_sm=pps, axis="config")
    b.sm_partitions((((16640, 7), (128, 128), "framewin", ALL_KERNELS, (32, 100)),
                     ((12032, 8), (64, 128), "dilated", ALL_KERNELS, (56,))))
    for name in ("refdit-21x30x52-exact.fgt", "refdit-21x30x52-pooled.fgt"):
        b.trace_entry(name, lambda e: e[len(e) // 2])
    return b.cases


def test14_cases() -> list[Case]:
    """The frozen test list ``test14`` of revision 10 (session 13, written 2026-11-30 20:15 UTC by
    ``validation/cases/make_test14.py`` and committed unmeasured, before any revision-10 variant was evaluated):
    the benchmark generator's masks (``wanwin`` / ``wanwin-text`` = ``fgattn.masks.window_mask`` with new seeds, the
    masks no frozen list took) beside 3-D windows, dilated and framewin; N 13568 / 25344 / 20736 / 17920 / 22784 /
    11008 / 29184 and seeds 9.999M used by no other list; the tuned entries at D 64/128 x M 64/128 at two shapes;
    fp16 at every (D, M); launch what-ifs around fg D=64 M=128, block D=64 M=64 and dense D=128 M=128; persistent
    off / 1 / 2 (fg D=128 M=64); SM partitions 48 / 116 SMs (all kernels, D=128 M=128) and 72 SMs (all kernels,
    D=64 M=64); two DiT trace entries no earlier list took (refdit-21x30x52, pass 1). Axis ``bench``: the fg D=128
    M=128 g1 Gluon ws2 entry on the benchmark generator's masks at benchmark shapes (H12 N32760, H12 N33272 =
    32760 + 512 text tokens, H20 N32760), the list schedule on launch-ordered (``order: lpt``, the benchmarks'
    index) and natural-order indices, the walk on the launch-ordered index as a what-if, the tl kernel on one."""
    b = FrozenListBuilder("test14", "j", TEST14_SEED, ("wanwin", "dilated", "wanwin-text"))
    b.tuned(((13568, 8), (25344, 4)), 0.03, 0.5)
    lst_lpt, lst_nat, walk_lpt = (gluon_options("list", "lpt"), gluon_options("list", "natural"),
                                  gluon_options("walk", "lpt"))
    bench = (("wanwin", 32760, 12, 0.05, (lst_lpt, lst_nat, walk_lpt)),
             ("wanwin", 32760, 12, 0.3, (lst_lpt, lst_nat, walk_lpt)),
             ("wanwin-text", 33272, 12, 0.03, (lst_lpt, lst_nat, walk_lpt)),
             ("wanwin-text", 33272, 12, 0.15, (lst_lpt, lst_nat, walk_lpt)),
             ("wanwin", 32760, 20, 0.1, (lst_lpt, lst_nat)))
    for j, (fam, n, h, dens, opts) in enumerate(bench):
        for opt in opts:
            b.add(seed=TEST14_SEED + 300 + j, structure=fam, n_tokens=n, heads=h, head_dim=128, block_m=128,
                  density=dens, kernels=("fg",), axis="bench", options=opt)
    b.add(seed=TEST14_SEED + 300, structure="wanwin", n_tokens=32760, heads=12, head_dim=128, block_m=128,
          density=0.05, kernels=("fg",), axis="bench", options='{"impl": "tl", "order": "lpt"}')
    b.fp16(20736, 6, 0.12)
    b.whatifs((
        ("fg", "wanwin", 17920, 6, 64, 128, 0.1, ((32, 3, 8), (64, 2, 8), (128, 3, 8))),
        ("block", "window3d", 22784, 5, 64, 64, 0.2, ((64, 2, 4), (32, 4, 4), (64, 3, 8))),
        ("dense", "framewin", 11008, 8, 128, 128, 0.3, ((64, 3, 8), (128, 2, 8), (32, 2, 4))),
    ))
    for pers, pps in PERSISTENT_SETTINGS:
        b.add(seed=TEST14_SEED + 600, structure="wanwin-text", n_tokens=22784, heads=5, head_dim=128, block_m=64,
              density=0.08, kernels=("fg",), persistent=pers, programs_per_sm=pps, axis="config")
    b.sm_partitions((((29184, 4), (128, 128), "wanwin", ALL_KERNELS, (48, 116)),
                     ((11008, 8), (64, 64), "window3d", ALL_KERNELS, (72,))))
    for name in ("refdit-21x30x52-exact.fgt", "refdit-21x30x52-pooled.fgt"):
        b.trace_entry(name, lambda e: e[1])
    return b.cases


def test15_cases() -> list[Case]:
    """The frozen test list ``test15`` (session 14, written 2026-11-30 22:00 UTC by ``validation/cases/make_test15.py``
    and committed unmeasured, before the Gluon contig pricing and the clock-aware variant were evaluated and before
    calib13 was measured): two mask families no list took (``radial``, ``causalwin``: Wan2.1 30 x 52 latent frames)
    beside the benchmark generator's ``wanwin``; N 19712 / 26112 / 23808 / 15104 / 18720 / 24960 / 31200 / 21632 and
    seeds 10.1M used by no other list; the tuned entries at D 64/128 x M 64/128 at two shapes (the dense / block
    D=128 M=128 entries are the Gluon contig form where the final launch table adopts it); fp16 at every (D, M);
    launch what-ifs around fg D=64 M=64, block D=128 M=128 (its tl kernel) and dense D=64 M=128; persistent off / 1 /
    2 (fg D=128 M=64); SM partitions 40 / 124 SMs (all kernels, D=128 M=128: the contig plan sized to the partition)
    and 88 SMs (D=64 M=64); two DiT trace entries no earlier list took (refdit-21x30x52, pass 98). Axis ``bench``:
    the dense / block D=128 M=128 entries at benchmark shapes (H12 N32760 / H12 N33272 = 32760 + 512 text tokens,
    block d 0.05 / 0.15 / 0.4; new shapes H8 N31200 radial, H10 N24960 causalwin) and the fg D=128 M=128 g1 Gluon
    entry (list on launch-ordered and natural indices, walk launch-ordered) on the benchmark generator's masks with
    new seeds at H12 N32760 / H16 N32760 / H12 N33272."""
    b = FrozenListBuilder("test15", "g", TEST15_SEED, ("radial", "causalwin", "wanwin"))
    b.tuned(((19712, 8), (26112, 4)), 0.03, 0.5)
    contig = (("block", "wanwin", 32760, 12, 0.05), ("block", "wanwin", 32760, 12, 0.4),
              ("block", "wanwin-text", 33272, 12, 0.15), ("dense", "wanwin", 32760, 12, 0.1),
              ("block", "radial", 31200, 8, 0.1), ("block", "causalwin", 24960, 10, 0.2),
              ("dense", "radial", 21632, 10, 0.1))
    for j, (kern, fam, n, h, dens) in enumerate(contig):
        b.add(seed=TEST15_SEED + 300 + j, structure=fam, n_tokens=n, heads=h, head_dim=128, block_m=128,
              density=dens, kernels=(kern,), axis="bench")
    lst_lpt, lst_nat, walk_lpt = (gluon_options("list", "lpt"), gluon_options("list", "natural"),
                                  gluon_options("walk", "lpt"))
    fg_bench = (("wanwin", 32760, 12, 0.15, (lst_lpt, lst_nat)), ("wanwin", 32760, 16, 0.04, (lst_lpt, walk_lpt)),
                ("wanwin-text", 33272, 12, 0.08, (lst_lpt, lst_nat)))
    for j, (fam, n, h, dens, opts) in enumerate(fg_bench):
        for opt in opts:
            b.add(seed=TEST15_SEED + 320 + j, structure=fam, n_tokens=n, heads=h, head_dim=128, block_m=128,
                  density=dens, kernels=("fg",), axis="bench", options=opt)
    b.fp16(23808, 6, 0.12)
    b.whatifs((
        ("fg", "radial", 15104, 8, 64, 64, 0.1, ((32, 3, 4), (64, 2, 4), (64, 4, 8))),
        ("block", "causalwin", 18720, 8, 128, 128, 0.15, ((64, 2, 8), (128, 2, 8), (32, 3, 4))),
        ("dense", "radial", 15104, 8, 64, 128, 0.2, ((64, 2, 4), (128, 3, 8), (32, 4, 8))),
    ))
    for pers, pps in PERSISTENT_SETTINGS:
        b.add(seed=TEST15_SEED + 600, structure="causalwin", n_tokens=18720, heads=6, head_dim=128, block_m=64,
              density=0.1, kernels=("fg",), persistent=pers, programs_per_sm=pps, axis="config")
    b.sm_partitions((((24960, 6), (128, 128), "radial", ALL_KERNELS, (40, 124)),
                     ((15104, 10), (64, 64), "causalwin", ALL_KERNELS, (88,))))
    for name, entry in (("refdit-21x30x52-exact.fgt", (98, 0)), ("refdit-21x30x52-pooled.fgt", (98, 2))):
        b.trace_entry(name, entry)
    return b.cases


def test16_cases() -> list[Case]:
    """The frozen test list ``test16`` (session 14, helper M4, written 2026-11-30 23:15 UTC by
    ``validation/cases/make_test16.py`` and committed unmeasured, before revision 12's clock terms were written down
    or evaluated and before any fg recalibration): two mask families no list took (``svg``, ``tilewin``: Wan2.1
    30 x 52 latent frames) beside ``causalwin``; N 17160 / 28080 / 20280 / 14040 / 23400 / 26520 / 12480 / 29640 and
    seeds 10.2M used by no other list; the tuned entries at D 64/128 x M 64/128 on two shapes, fp16 at every (D, M),
    launch what-ifs (fg D=128 M=64, block D=64 M=128, dense D=128 M=128's tl kernel), persistent off / 1 / 2 (block
    D=128 M=64), SM partitions 56 / 100 (D=128 M=128, every kernel) and 72 (D=64 M=128), two DiT trace entries no
    list took (refdit-21x30x52-pooled pass 40 layer 3, pass 98 layer 5). Axis ``bench``: the dense / block D=128 M=128
    entries (the Gluon contig form where the final launch table adopts it) and the fg D=128 M=128 g1 Gluon entry as
    the final table packages it (no option but the index's row order: launch-ordered or natural, so any row-end knob
    the table adopts is what runs) at benchmark shapes on the new families and ``wanwin`` with new seeds, plus the tl dense D=64 M=128 entry at H16
    N29640; four of these cases have a long-run twin (:func:`test16_long_ids`: the same mask and kernel timed in
    CUDA graphs of about 250 ms per replay, 5 rounds, see :data:`TEST16_LONG`) so the rows span the SM clocks of
    short and sustained runs. Every row records the SM clock sampled under load."""
    b = FrozenListBuilder("test16", "h", TEST16_SEED, ("svg", "tilewin", "causalwin"))
    b.tuned(((17160, 8), (28080, 4)), 0.03, 0.5)
    bench = (("dense", "svg", 32760, 12, 128, 0.1, ""), ("dense", "tilewin", 29640, 16, 128, 0.1, ""),
             ("block", "tilewin", 32760, 12, 128, 0.1, ""), ("block", "wanwin-text", 33272, 12, 128, 0.25, ""),
             ("block", "svg", 29640, 10, 128, 0.2, ""),
             ("fg", "wanwin", 32760, 12, 128, 0.08, '{"order": "lpt"}'),
             ("fg", "svg", 32760, 12, 128, 0.05, '{"order": "lpt"}'),
             ("fg", "tilewin", 32760, 16, 128, 0.12, ""),
             ("dense", "svg", 29640, 16, 64, 0.1, ""))
    b.bench(bench, twins=(0, 2, 5, 8))  # the long-run twins: the same case (mask, kernel, options), timed long
    b.fp16(20280, 6, 0.12)
    b.whatifs((
        ("fg", "svg", 14040, 8, 128, 64, 0.1, ((32, 3, 4), (64, 2, 8), (128, 2, 8))),
        ("block", "tilewin", 14040, 8, 64, 128, 0.15, ((64, 3, 4), (128, 2, 8), (32, 2, 4))),
        ("dense", "causalwin", 14040, 8, 128, 128, 0.2, ((64, 2, 8), (128, 2, 8), (64, 3, 4))),
    ))
    for pers, pps in PERSISTENT_SETTINGS:
        b.add(seed=TEST16_SEED + 600, structure="tilewin", n_tokens=23400, heads=6, head_dim=128, block_m=64,
              density=0.1, kernels=("block",), persistent=pers, programs_per_sm=pps, axis="config")
    b.sm_partitions((((26520, 6), (128, 128), "svg", ALL_KERNELS, (56, 100)),
                     ((12480, 10), (64, 128), "tilewin", ALL_KERNELS, (72,))))
    for name, entry in (("refdit-21x30x52-pooled.fgt", (40, 3)), ("refdit-21x30x52-pooled.fgt", (98, 5))):
        b.trace_entry(name, entry)
    return b.cases


def test16_long_ids(cases: Sequence[Case] | None = None) -> list[str]:
    """The case ids of test16's long-run twins (timed with :data:`TEST16_LONG`): the second of two bench cases with
    the same seed and shape."""
    cl = list(test16_cases() if cases is None else cases)
    seen: set[tuple[int, int, int, str]] = set()
    out = []
    for c in cl:
        if c.axis != "bench":
            continue
        key = (c.seed, c.n_tokens, c.heads, c.options)
        if key in seen:
            out.append(c.case_id)
        seen.add(key)
    return out


def test17_cases() -> list[Case]:
    """The frozen test list ``test17`` (session 15, helper M5, written 2026-12-01 00:30 UTC by
    ``validation/cases/make_test17.py`` and committed unmeasured, before the fg row end was priced, before the clock
    study's data, before calib14): two mask families no list took (``vslash``: MInference's vertical-slash with
    whole-frame slashes; ``cubetopk``: VSA's top-k cubes; :data:`TEST17_NEW_STRUCTURES`) beside ``radial``; N 21840 /
    34320 / 10920 / 16380 / 27300 / 35880 / 13260 and seeds 10.3M used by no other list; the tuned entries at D 64/128
    x M 64/128 on two shapes, fp16 at every (D, M), launch what-ifs (fg D=64 M=128, block D=128 M=64, dense D=64
    M=64), persistent off / 1 / 2 (fg D=64 M=128), SM partitions 80 / 108 (D=128 M=128, every kernel: the contig plan
    and the fg Gluon entry sized to the partition) and 96 (D=128 M=64), two DiT trace entries no list took
    (refdit-21x30x52-pooled pass 41 layer 2, refdit-8x16x28-pooled pass 1 layer 3). Axis ``bench``: the dense / block
    D=128 M=128 entries (the Gluon contig form) and the fg D=128 M=128 g1 Gluon entry as the final table packages it
    (no option but the index's row order, so the row end the final table adopts is what runs), at benchmark shapes
    (H12 N32760, H12 N33272 = 32760 + 512 text, H16 N34320, H10 N35880); three of them have a long-run twin
    (:func:`test17_long_ids`, timed with :data:`TEST17_LONG`: ~250 ms per CUDA-graph replay, 5 rounds) so the rows
    span the SM clocks of short and sustained runs. Every row records the SM clock sampled under load."""
    b = FrozenListBuilder("test17", "a", TEST17_SEED, ("vslash", "cubetopk", "radial"))
    b.tuned(((21840, 8), (34320, 4)), 0.03, 0.5)
    bench = (("dense", "vslash", 32760, 12, 128, 0.1, ""), ("dense", "cubetopk", 34320, 16, 128, 0.1, ""),
             ("block", "cubetopk", 32760, 12, 128, 0.1, ""), ("block", "vslash", 35880, 10, 128, 0.2, ""),
             ("block", "wanwin-text", 33272, 12, 128, 0.06, ""),
             ("fg", "vslash", 32760, 12, 128, 0.06, '{"order": "lpt"}'),
             ("fg", "cubetopk", 32760, 12, 128, 0.1, ""),
             ("fg", "wanwin", 34320, 16, 128, 0.04, '{"order": "lpt"}'))
    b.bench(bench, twins=(0, 2, 5))  # the long-run twins: the same case (mask, kernel, options), timed long
    b.fp16(10920, 10, 0.12)
    b.whatifs((
        ("fg", "cubetopk", 16380, 8, 64, 128, 0.1, ((64, 3, 4), (128, 2, 8), (32, 4, 8))),
        ("block", "vslash", 16380, 8, 128, 64, 0.15, ((64, 2, 4), (32, 3, 8), (128, 2, 8))),
        ("dense", "radial", 13260, 8, 64, 64, 0.2, ((64, 2, 4), (128, 2, 4), (32, 3, 4))),
    ))
    for pers, pps in PERSISTENT_SETTINGS:
        b.add(seed=TEST17_SEED + 600, structure="cubetopk", n_tokens=27300, heads=6, head_dim=64, block_m=128,
              density=0.1, kernels=("fg",), persistent=pers, programs_per_sm=pps, axis="config")
    b.sm_partitions((((27300, 6), (128, 128), "vslash", ALL_KERNELS, (80, 108)),
                     ((13260, 10), (128, 64), "cubetopk", ALL_KERNELS, (96,))))
    for name, entry in (("refdit-21x30x52-pooled.fgt", (41, 2)), ("refdit-8x16x28-pooled.fgt", (1, 3))):
        b.trace_entry(name, entry)
    return b.cases


def test17_long_ids(cases: Sequence[Case] | None = None) -> list[str]:
    """The case ids of test17's long-run twins (timed with :data:`TEST17_LONG`), as :func:`test16_long_ids`."""
    return test16_long_ids(test17_cases() if cases is None else cases)


def test18_cases() -> list[Case]:
    """The frozen test list ``test18`` (session 16, helper M8, written 2026-12-01 02:50 UTC by
    ``validation/cases/make_test18.py`` and committed unmeasured, before the softmax microbenchmark's timed FP32 work
    per score was measured and before calib15 was fitted): two mask families no list took (``clusterk``: SVG2's
    semantic clusters, fine-grained and scattered; ``moba``: MoBA's 1,536-token chunks, aligned to 128-key tiles;
    :data:`TEST18_NEW_STRUCTURES`) beside ``causalwin``; N 22620 / 30420 / 37440 / 19500 / 24180 / 25740 / 17940
    and seeds 10.4M used by no other list; the tuned entries at D 64/128 x M 64/128 on two shapes, fp16 at every
    (D, M), launch what-ifs (fg D=128 M=64, block D=64 M=64, dense D=128 M=64; every config valid for its kernel:
    block BLOCK_N divides BLOCK_M), persistent off / 1 / 2 (block D=64 M=128), SM partitions 44 / 92 (D=128 M=128,
    every kernel: the contig plan and the fg Gluon entry sized to the partition) and 68 (D=64 M=64), two DiT trace
    entries no list took (refdit-21x30x52-pooled pass 1 layer 4, refdit-8x16x28-exact pass 40 layer 2). Axis
    ``bench``: the dense / block D=128 M=128 entries (the Gluon contig form) and the packaged fg D=128 M=128 g1 Gluon
    entry (no option but the index's row order) at H12 N32760 and H10 N37440. No long-run twins (test16 / test17's
    answered the clock question; the effective clock is recorded on every row, ``sm_mhz_eff``)."""
    b = FrozenListBuilder("test18", "b", TEST18_SEED, ("clusterk", "moba", "causalwin"))
    b.tuned(((22620, 8), (30420, 4)), 0.03, 0.5)
    bench = (("dense", "clusterk", 32760, 12, 128, 0.1, ""), ("dense", "moba", 37440, 10, 128, 0.1, ""),
             ("block", "moba", 32760, 12, 128, 0.1, ""), ("block", "clusterk", 37440, 10, 128, 0.15, ""),
             ("fg", "clusterk", 32760, 12, 128, 0.05, '{"order": "lpt"}'),
             ("fg", "moba", 37440, 10, 128, 0.1, ""),
             ("fg", "causalwin", 32760, 12, 128, 0.08, '{"order": "lpt"}'))
    b.bench(bench, twins=())
    b.fp16(19500, 10, 0.12)
    b.whatifs((
        ("fg", "moba", 17940, 8, 128, 64, 0.1, ((64, 2, 4), (32, 3, 8), (128, 2, 8))),
        ("block", "clusterk", 17940, 8, 64, 64, 0.15, ((32, 2, 4), (64, 3, 4), (32, 4, 8))),
        ("dense", "causalwin", 17940, 8, 128, 64, 0.2, ((64, 2, 8), (128, 2, 8), (32, 3, 4))),
    ))
    for pers, pps in PERSISTENT_SETTINGS:
        b.add(seed=TEST18_SEED + 600, structure="clusterk", n_tokens=24180, heads=6, head_dim=64, block_m=128,
              density=0.1, kernels=("block",), persistent=pers, programs_per_sm=pps, axis="config")
    b.sm_partitions((((24180, 6), (128, 128), "moba", ALL_KERNELS, (44, 92)),
                     ((25740, 10), (64, 64), "clusterk", ALL_KERNELS, (68,))))
    for name, entry in (("refdit-21x30x52-pooled.fgt", (1, 4)), ("refdit-8x16x28-exact.fgt", (40, 2))):
        b.trace_entry(name, entry)
    return b.cases


def test19_cases() -> list[Case]:
    """The frozen test list ``test19`` (session 17, helper M10, written 2026-12-01 05:50 UTC by
    ``validation/cases/make_test19.py`` and committed unmeasured, before calibration rows c-117..c-132 and the four
    corrected what-if rows were measured and before calib16 (the effective-clock calibration) was fitted; the
    composition pre-registered by M9, validation/MODEL_NOTES.md "Session 16, helper M9"): test18's axes on test
    families of earlier lists (:data:`TEST19_STRUCTURES`: ``cubetopk``, ``tilewin``, ``vslash``; none of
    calibration's), N 21060 / 28860 / 14820 / 11700 / 33540 / 31980 / 35100 / 38220 and seeds 10.5M no list took:
    the tuned entries at D 64/128 x M 64/128 on two shapes, fp16 at every (D, M), launch what-ifs (fg D=64 M=128,
    block D=128 M=64, dense D=128 M=128: the entry's tl kernel, its table entry being the Gluon contig form; every
    config valid for its kernel), persistent off / 1 / 2 (fg D=128 M=64), SM partitions 52 / 116 (D=128 M=128, every
    kernel) and 84 (D=64 M=128) through green contexts, two DiT trace entries no list took
    (refdit-21x30x52-pooled pass 99 layer 1, refdit-8x16x28-exact pass 1 layer 5). Axis ``bench``: the dense /
    block D=128 M=128 entries (the Gluon contig form) and the packaged fg D=128 M=128 g1 Gluon entry (no option but
    the index's row order) at H12 N32760 and H10 N38220, and **the clock axis**: one long-run twin per kernel
    (:func:`test19_long_ids`, timed with :data:`TEST19_LONG`: ~250 ms per CUDA-graph replay, 5 rounds), so the rows
    span the effective SM clocks of short and sustained runs. Every row records NVML's SM clock and the SMs'
    effective clock (``sm_mhz_eff``)."""
    b = FrozenListBuilder("test19", "o", TEST19_SEED, TEST19_STRUCTURES)
    b.tuned(((21060, 8), (28860, 4)), 0.03, 0.5)
    bench = (("dense", "vslash", 32760, 12, 128, 0.1, ""), ("dense", "tilewin", 38220, 10, 128, 0.1, ""),
             ("block", "cubetopk", 32760, 12, 128, 0.1, ""), ("block", "vslash", 38220, 10, 128, 0.15, ""),
             ("fg", "tilewin", 32760, 12, 128, 0.06, '{"order": "lpt"}'),
             ("fg", "cubetopk", 38220, 10, 128, 0.1, ""),
             ("fg", "vslash", 32760, 12, 128, 0.05, '{"order": "lpt"}'))
    b.bench(bench, twins=(0, 2, 4))  # the clock axis: one long-run twin per kernel (same mask, kernel, options)
    b.fp16(14820, 10, 0.12)
    b.whatifs((
        ("fg", "vslash", 11700, 8, 64, 128, 0.1, ((64, 2, 4), (32, 3, 8), (128, 2, 8))),
        ("block", "tilewin", 11700, 8, 128, 64, 0.15, ((32, 2, 4), (64, 4, 8), (32, 3, 8))),
        ("dense", "cubetopk", 11700, 8, 128, 128, 0.2, ((64, 2, 8), (128, 2, 8), (64, 3, 4))),
    ))
    for pers, pps in PERSISTENT_SETTINGS:
        b.add(seed=TEST19_SEED + 600, structure="tilewin", n_tokens=33540, heads=6, head_dim=128, block_m=64,
              density=0.1, kernels=("fg",), persistent=pers, programs_per_sm=pps, axis="config")
    b.sm_partitions((((31980, 6), (128, 128), "cubetopk", ALL_KERNELS, (52, 116)),
                     ((35100, 4), (64, 128), "vslash", ALL_KERNELS, (84,))))
    for name, entry in (("refdit-21x30x52-pooled.fgt", (99, 1)), ("refdit-8x16x28-exact.fgt", (1, 5))):
        b.trace_entry(name, entry)
    return b.cases


def test19_long_ids(cases: Sequence[Case] | None = None) -> list[str]:
    """The case ids of test19's long-run twins (timed with :data:`TEST19_LONG`), as :func:`test16_long_ids`."""
    return test16_long_ids(test19_cases() if cases is None else cases)


def trace_cases(traces_dir: str | os.PathLike[str] = "traces", per_trace: int = 2, start: int = 0) -> list[Case]:
    """Test cases from every committed self-attention trace: ``per_trace`` entries spread over each trace."""
    from fgsim.trace import open_trace

    out = []
    for path in sorted(Path(traces_dir).glob("*.fgt")):
        with open_trace(path) as tr:
            if tr.meta.is_cross:
                continue
            ents = tr.entries()
            if 0 < per_trace < len(ents):
                ents = [ents[i] for i in np.linspace(0, len(ents) - 1, per_trace).round().astype(int)]
            heads = len(tr.meta.heads)
            for p, lay in ents:
                if heads * tr.n_qblocks * tr.n_tokens > MAX_MASK_ELEMS:
                    continue
                i = start + len(out)
                out.append(Case(f"t-{i:03d}", "test", "trace", tr.n_tokens, heads, tr.meta.head_dim, tr.meta.block_m,
                                round(float(tr.entry_density(p, lay).mean()), 4), 0, trace=str(path), pass_index=p,
                                layer=lay, axis="trace"))
    return out


def tiny_cases() -> list[Case]:
    """A handful of tiny cases for CPU tests under TRITON_INTERPRET=1."""
    return [Case("x-000", "tiny", "random", 256, 1, 64, 64, 0.3, 11, dtype="fp16"),
            Case("x-001", "tiny", "window3d", 384, 2, 64, 64, 0.5, 12, kernels=("fg", "dense"), block_n=32,
                 num_stages=2, num_warps=4, dtype="fp16", axis="config"),
            Case("x-002", "tiny", "uniform", 256, 1, 64, 64, 0.5, 13, dtype="fp16")]


def generate(split: str, traces_dir: str = "traces") -> list[Case]:
    """The case list of ``split`` from its generator (what :func:`write_case_lists` writes)."""
    if split == "calib":
        return calibration_cases()
    if split == "dev":
        return development_cases()
    if split == "test":
        return frozen_test_cases(traces_dir)
    if split == "test3":
        return test3_cases()
    if split == "dev4":
        return dev4_cases()
    if split == "test4":
        return test4_cases()
    if split == "dev5":
        return dev5_cases()
    if split == "test5":
        return test5_cases()
    if split == "test6":
        return test6_cases()
    if split == "test7":
        return test7_cases()
    if split == "test8":
        return test8_cases()
    if split == "test9":
        return test9_cases()
    if split == "test10":
        return test10_cases()
    if split == "test11":
        return test11_cases()
    if split == "test12":
        return test12_cases()
    if split == "test13":
        return test13_cases()
    if split == "test14":
        return test14_cases()
    if split == "test15":
        return test15_cases()
    if split == "test16":
        return test16_cases()
    if split == "test17":
        return test17_cases()
    if split == "test18":
        return test18_cases()
    if split == "test19":
        return test19_cases()
    if split == "tiny":
        return tiny_cases()
    raise FgsimError(f"unknown case list '{split}'; choose {', '.join(SPLITS)}")


# ---------------------------------------------------------------------------------------------------------
# case-list files
# ---------------------------------------------------------------------------------------------------------


def repo_path(path: str) -> str:
    """A trace path from a CSV: relative paths are relative to the repository root (where the committed CSVs
    were written), not to the current directory."""
    if not path or Path(path).is_absolute():
        return path
    repo = Path(__file__).resolve().parents[2] / path
    return str(repo) if repo.exists() or not Path(path).exists() else path


def case_row(c: Case) -> dict[str, str]:
    d = asdict(c)
    d["kernels"] = "+".join(c.kernels)
    return {k: str(d[k]) for k in CASE_FIELDS + (("options",) if c.options else ())}


def render_case_list(cases: Sequence[Case], fieldnames: Sequence[str]) -> str:
    """A case list's CSV text (header + one :func:`case_row` per case, ``\\n`` line ends), as frozen lists are
    committed."""
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fieldnames), lineterminator="\n")
    w.writeheader()
    for c in cases:
        w.writerow(case_row(c))
    return buf.getvalue()


def frozen_list_main(out: Path, text: str, n_cases: int, description: str | None,
                     argv: Sequence[str] | None = None) -> int:
    """The command line of a frozen list's generator script: write ``out`` atomically, or with ``--check`` exit 1
    when the committed file differs from ``text`` in any byte."""
    import argparse

    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help=f"exit 1 if the committed {out.name} differs")
    a = ap.parse_args(argv)
    if a.check:
        ok = out.is_file() and out.read_bytes() == text.encode()  # byte for byte: no newline translation
        print(f"{out}: {'matches its generator' if ok else 'DIFFERS from its generator'}")
        return 0 if ok else 1
    from fgsim.fileio import write_text_atomic

    write_text_atomic(out, text)
    print(f"wrote {out} ({n_cases} cases)")
    return 0


def _int(v: str | None, default: int) -> int:
    """An integer CSV field; ``default`` when the column is absent or empty (lists written before it existed)."""
    return int(v) if v not in (None, "") else default


def case_from_row(row: dict[str, str], kernel: str | None = None) -> Case:
    """Rebuild a Case from a case-list or results CSV row (``kernel``: a results row's one kernel)."""
    try:
        kern = (kernel,) if kernel else tuple(x for x in (row.get("kernels") or row.get("kernel", "")).split("+") if x)
        return Case(row["case_id"], row["split"], row["structure"], int(row["n_tokens"]), int(row["heads"]),
                    int(row["head_dim"]), int(row["block_m"]), float(row["density"]), int(row["seed"]),
                    repo_path(row.get("trace", "")), int(row.get("pass_index") or -1), int(row.get("layer") or -1), kern,
                    int(row.get("req_block_n") or row.get("block_n_req") or 0) if kernel else int(row.get("block_n") or 0),
                    int(row.get("req_num_stages") or 0) if kernel else int(row.get("num_stages") or 0),
                    int(row.get("req_num_warps") or 0) if kernel else int(row.get("num_warps") or 0),
                    row.get("dtype") or "bf16", int(row.get("sm_count") or 0), row.get("axis") or "tuned",
                    _int(row.get("req_persistent") if kernel else row.get("persistent"), -1),
                    _int(row.get("req_programs_per_sm") if kernel else row.get("programs_per_sm"), 0),
                    (row.get("req_options") if kernel else row.get("options")) or "")
    except (KeyError, ValueError) as exc:
        raise FgsimError(f"row {row.get('case_id', '?')}: bad or missing field ({exc})") from None


def write_case_lists(out_dir: str | os.PathLike[str] = CASES_DIR, traces_dir: str = "traces",
                     splits: Sequence[str] = ("calib", "dev5", "test5")) -> list[Path]:
    """Write ``<split>.csv`` for ``splits`` into ``out_dir`` (default: the lists revision 4 wrote; the earlier lists
    stay as committed, and their generators still reproduce them)."""
    from fgsim.fileio import write_text_atomic

    od = Path(out_dir)
    od.mkdir(parents=True, exist_ok=True)
    paths = []
    for split in splits:
        import io

        buf = io.StringIO()
        cl = generate(split, traces_dir)
        w = csv.DictWriter(buf, fieldnames=list_fields(cl), lineterminator="\n")
        w.writeheader()
        for c in cl:
            w.writerow(case_row(c))
        paths.append(write_text_atomic(od / f"{split}.csv", buf.getvalue()))
    return paths


def load_case_list(split_or_path: str, cases_dir: str | os.PathLike[str] = CASES_DIR) -> list[Case]:
    """A committed case list by split name (``calib``/``dev``/``test``; ``tiny`` from its generator) or path."""
    if split_or_path == "tiny":
        return tiny_cases()
    p = Path(split_or_path) if split_or_path.endswith(".csv") else Path(cases_dir) / f"{split_or_path}.csv"
    if not p.is_file():
        raise FgsimError(f"case list {p} not found (write it with `python -m fgsim.validation.cases`)")
    with p.open(newline="") as fh:
        return [case_from_row(r) for r in csv.DictReader(fh)]


def check_disjoint(lists: Sequence[Sequence[Case]]) -> None:
    """FgsimError unless the lists share no case id, seed, or (structure family, N) with calibration."""
    ids: set[str] = set()
    for cl in lists:
        cur = {c.case_id for c in cl}
        if ids & cur:
            raise FgsimError(f"case lists share ids {sorted(ids & cur)[:3]}")
        ids |= cur
    cal = lists[0]
    cal_n = {c.n_tokens for c in cal}
    for cl in lists[1:]:
        for c in cl:
            if c.structure in CALIB_STRUCTURES or c.n_tokens in cal_n:
                raise FgsimError(f"case {c.case_id} repeats a calibration family or N ({c.structure}, {c.n_tokens})")


if __name__ == "__main__":  # pragma: no cover - writes the committed lists
    for path in write_case_lists():
        print(path)
