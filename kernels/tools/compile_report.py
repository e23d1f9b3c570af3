"""Compile fgattn variants offline for sm_90 (no GPU) and print registers, spills and shared memory.

    PYTHONPATH=/path/to/triton-3.6:kernels python kernels/tools/compile_report.py [NAME-SUBSTRING ...]
    PYTHONPATH=/path/to/triton-3.6:kernels python kernels/tools/compile_report.py --table   # the launch table
    FGATTN_DUMP=DIR ... also writes each variant's TTGIR, PTX and SASS into DIR

``--table`` compiles an ``impl: gluon`` entry twice: its Gluon form (``fgattn.gluon_fg``, or ``fgattn.gluon_contig``
for a dense / block entry of form ``contig``; the knobs of ``extra["gluon"]``; name ``table ... gluon FORM ...``) and the tl kernel that runs where the Gluon form cannot (the
entry without ``impl`` / ``gluon``; named as any tl entry, so its SASS file is the one a tl entry would write).
Every variant reports the same figures (registers at launch, stack, shared memory, HGMMA / gsb0, the innermost
HGMMA loop's instructions, static stall cycles, MUFU and ``WARPGROUP.DEPBAR`` (wgmma waits)); a Gluon form adds
its partitions' register budgets (``setmaxnreg``): ``partition_regs`` [consumer, producer].

Uses the Triton on the path (the device machines run 3.6); pointer and stride arguments get the
16-divisibility the real launches get.  A variant that fails to compile here will fail there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = [
    # (name, mode, D, M, BN, GRAN, stages, warps, extra)
    ("fg g1 bn128 st3 ia1", 2, 128, 128, 128, 1, 3, 8, {"IDX_AHEAD": 1}),
    ("fg g1 bn128 st3 ia1 tail_reuse", 2, 128, 128, 128, 1, 3, 8, {"IDX_AHEAD": 1, "TAIL_REUSE": True}),
    ("fg g16 bn128 st3 ia1 tail_reuse", 2, 128, 128, 128, 16, 3, 8, {"IDX_AHEAD": 1, "TAIL_REUSE": True}),
    ("fg g1 bn128 st3 ia1 tma_q", 2, 128, 128, 128, 1, 3, 8, {"IDX_AHEAD": 1, "TMA_Q": True}),
    ("fg g1 bn128 st3 ia1 tma_q tail_reuse", 2, 128, 128, 128, 1, 3, 8, {"IDX_AHEAD": 1, "TMA_Q": True, "TAIL_REUSE": True}),
    ("fg g1 bn128 st3 ia1 tma_qo", 2, 128, 128, 128, 1, 3, 8, {"IDX_AHEAD": 1, "TMA_QO": True}),
    ("fg g1 M64 bn64 st2 ia1 w4", 2, 128, 64, 64, 1, 2, 4, {"IDX_AHEAD": 1}),
    ("fg g1 M64 bn64 st3 ia1 w4", 2, 128, 64, 64, 1, 3, 4, {"IDX_AHEAD": 1}),
    ("fg g1 M64 bn64 st5 ia0 w4", 2, 128, 64, 64, 1, 5, 4, {"IDX_AHEAD": 0}),
    ("fg g1 M64 bn32 st4 ia1 w4", 2, 128, 64, 32, 1, 4, 4, {"IDX_AHEAD": 1}),
    ("fg g1 M64 bn128 st2 ia1 w4", 2, 128, 64, 128, 1, 2, 4, {"IDX_AHEAD": 1}),
    ("fg g1 M64 bn128 st2 ia1 w8", 2, 128, 64, 128, 1, 2, 8, {"IDX_AHEAD": 1}),
    ("dense bn128 st3 tma", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True}),
    ("dense bn128 st3 tma ws", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True, "WARP_SPEC": True}),
    ("dense bn128 st3 tma tma_qo", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True, "TMA_QO": True}),
    ("dense M64 bn64 st2 tma w4", 0, 128, 64, 64, 1, 2, 4, {"USE_TMA": True}),
    ("dense M64 bn128 st2 tma w4", 0, 128, 64, 128, 1, 2, 4, {"USE_TMA": True}),
    ("dense M64 bn128 st3 tma w4", 0, 128, 64, 128, 1, 3, 4, {"USE_TMA": True}),
    ("block bn128 st3 tma", 1, 128, 128, 128, 128, 3, 8, {"USE_TMA": True}),
    ("fg g1 bn64 st2 ia1 r128", 2, 128, 128, 64, 1, 2, 8, {"IDX_AHEAD": 1, "maxnreg": 128}),
    ("fg g1 bn64 st2 ia0 r128", 2, 128, 128, 64, 1, 2, 8, {"IDX_AHEAD": 0, "maxnreg": 128}),
    ("fg g1 bn32 st3 ia1 r128", 2, 128, 128, 32, 1, 3, 8, {"IDX_AHEAD": 1, "maxnreg": 128}),
    ("dense bn64 st2 tma r128", 0, 128, 128, 64, 1, 2, 8, {"USE_TMA": True, "maxnreg": 128}),
    ("fg M64 bn64 st2 ia1 r168 w4", 2, 128, 64, 64, 1, 2, 4, {"IDX_AHEAD": 1, "maxnreg": 168}),
    # persistent FG kernel (_attn_fwd_persistent), issue 12 session 3
    ("pfg g1 bn128 st2", 2, 128, 128, 128, 1, 2, 8, {"persistent": True}),
    ("pfg g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8, {"persistent": True}),
    ("pfg g1 bn128 st4", 2, 128, 128, 128, 1, 4, 8, {"persistent": True}),
    ("pfg g1 bn64 st3", 2, 128, 128, 64, 1, 3, 8, {"persistent": True}),
    ("pfg g1 bn64 st4", 2, 128, 128, 64, 1, 4, 8, {"persistent": True}),
    ("pfg g1 bn64 st2 r128", 2, 128, 128, 64, 1, 2, 8, {"persistent": True, "maxnreg": 128}),
    ("pfg g16 bn128 st3", 2, 128, 128, 128, 16, 3, 8, {"persistent": True}),
    ("pfg g64 bn128 st3", 2, 128, 128, 128, 64, 3, 8, {"persistent": True}),
    ("pfg g64 bn64 st2 r128", 2, 128, 128, 64, 64, 2, 8, {"persistent": True, "maxnreg": 128}),
    ("pfg M64 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4, {"persistent": True}),
    ("pfg M64 bn64 st4 w4", 2, 128, 64, 64, 1, 4, 4, {"persistent": True}),
    ("pfg M64 bn128 st2 w4", 2, 128, 64, 128, 1, 2, 4, {"persistent": True}),
    ("pfg M64 bn64 st2 w4 r168", 2, 128, 64, 64, 1, 2, 4, {"persistent": True, "maxnreg": 168}),
    ("pfg D64 bn64 st4", 2, 64, 128, 64, 1, 4, 8, {"persistent": True}),
    ("pfg D64 bn128 st3", 2, 64, 128, 128, 1, 3, 8, {"persistent": True}),
    ("pfg nested g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8, {"persistent": True, "flatten": False}),
    ("pfg nested g1 bn64 st3", 2, 128, 128, 64, 1, 3, 8, {"persistent": True, "flatten": False}),
    ("pfg nested g1 bn128 st2", 2, 128, 128, 128, 1, 2, 8, {"persistent": True, "flatten": False}),
    ("pfg nested g16 bn128 st3", 2, 128, 128, 128, 16, 3, 8, {"persistent": True, "flatten": False}),
    ("pfg nested g64 bn128 st3", 2, 128, 128, 128, 64, 3, 8, {"persistent": True, "flatten": False}),
    ("pfg nested M64 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4, {"persistent": True, "flatten": False}),
    ("pfg nested M64 bn64 st5 w4", 2, 128, 64, 64, 1, 5, 4, {"persistent": True, "flatten": False}),
    ("pfg queue g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue idx_early g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "queue": True, "idx_early": True}),
    ("pfg queue g16 bn128 st3", 2, 128, 128, 128, 16, 3, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue g64 bn128 st3", 2, 128, 128, 128, 64, 3, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue M64 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue M64 bn64 st5 w4", 2, 128, 64, 64, 1, 5, 4, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue D64 bn64 st4", 2, 64, 128, 64, 1, 4, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue D64 bn128 st3", 2, 64, 128, 128, 1, 3, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("pblock queue bn128 st3", 1, 128, 128, 128, 128, 3, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("fg g16 bn128 st3 ia1 tma_q", 2, 128, 128, 128, 16, 3, 8, {"IDX_AHEAD": 1, "TMA_Q": True}),
    ("fg g64 bn64 st2 ia1 r128 tma_q", 2, 128, 128, 64, 64, 2, 8, {"IDX_AHEAD": 1, "TMA_Q": True, "maxnreg": 128}),
    ("fg g1 M64 bn64 st5 ia0 w4 tma_q", 2, 128, 64, 64, 1, 5, 4, {"IDX_AHEAD": 0, "TMA_Q": True}),
    ("pblock nested bn128 st3", 1, 128, 128, 128, 128, 3, 8, {"persistent": True, "flatten": False}),
    ("pdense nested bn128 st3", 0, 128, 128, 128, 1, 3, 8, {"persistent": True, "flatten": False}),
    ("pblock bn128 st3", 1, 128, 128, 128, 128, 3, 8, {"persistent": True}),
    ("pblock bn64 st3", 1, 128, 128, 64, 128, 3, 8, {"persistent": True}),
    ("pblock bn64 st2 r128", 1, 128, 128, 64, 128, 2, 8, {"persistent": True, "maxnreg": 128}),
    ("pdense bn128 st3", 0, 128, 128, 128, 1, 3, 8, {"persistent": True}),
    ("pdense bn64 st2 r128", 0, 128, 128, 64, 1, 2, 8, {"persistent": True, "maxnreg": 128}),
    # launch option tail_branch (dense: the masked tail under a scalar branch; without it ptxas serialises every
    # wgmma of the dense kernels, C7515)
    ("dense bn64 st2 tma r128 tail_branch", 0, 128, 128, 64, 1, 2, 8, {"USE_TMA": True, "maxnreg": 128,
                                                                      "TAIL_BRANCH": True}),
    ("dense M64 bn64 st3 tma tma_qo w4 tail_branch", 0, 128, 64, 64, 1, 3, 4, {"USE_TMA": True, "TMA_QO": True,
                                                                             "TAIL_BRANCH": True}),
    ("dense D64 bn64 st4 tma tma_qo tail_branch", 0, 64, 128, 64, 1, 4, 8, {"USE_TMA": True, "TMA_QO": True,
                                                                          "TAIL_BRANCH": True}),
    ("dense D64 bn64 st4 tma tma_qo", 0, 64, 128, 64, 1, 4, 8, {"USE_TMA": True, "TMA_QO": True}),
    ("dense M64 bn64 st3 tma tma_qo w4", 0, 128, 64, 64, 1, 3, 4, {"USE_TMA": True, "TMA_QO": True}),
    ("dense bn128 st3 tma tail_branch", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True, "TAIL_BRANCH": True}),
    ("dense bn128 st2 tma tail_branch", 0, 128, 128, 128, 1, 2, 8, {"USE_TMA": True, "TAIL_BRANCH": True}),
    # session 6 (helper K2): further tail_branch forms considered for the v7 sweep
    ("dense bn128 st3 tma tma_qo tail_branch", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True, "TMA_QO": True,
                                                                          "TAIL_BRANCH": True}),
    ("dense M64 bn128 st2 tma w4 tail_branch", 0, 128, 64, 128, 1, 2, 4, {"USE_TMA": True, "TAIL_BRANCH": True}),
    ("dense M64 bn64 st4 tma tma_qo w4 tail_branch", 0, 128, 64, 64, 1, 4, 4, {"USE_TMA": True, "TMA_QO": True,
                                                                             "TAIL_BRANCH": True}),
    ("dense D64 bn128 st3 tma tail_branch", 0, 64, 128, 128, 1, 3, 8, {"USE_TMA": True, "TAIL_BRANCH": True}),
    ("dense D64 bn128 st2 tma tma_qo tail_branch", 0, 64, 128, 128, 1, 2, 8, {"USE_TMA": True, "TMA_QO": True,
                                                                            "TAIL_BRANCH": True}),
    # session 6 after run 6: forms for the entries still serialised (dense D64 M64, fg M128 g64, block M128)
    ("dense D64 M64 bn64 st4 tma w4 tail_branch", 0, 64, 64, 64, 1, 4, 4, {"USE_TMA": True, "TAIL_BRANCH": True}),
    ("dense D64 M64 bn64 st4 tma tma_qo w4 tail_branch", 0, 64, 64, 64, 1, 4, 4, {"USE_TMA": True, "TMA_QO": True,
                                                                                "TAIL_BRANCH": True}),
    ("fg g64 bn128 st3 ia1 tma_q", 2, 128, 128, 128, 64, 3, 8, {"IDX_AHEAD": 1, "TMA_Q": True}),
    ("fg g64 bn128 st3 ia1 tail_reuse", 2, 128, 128, 128, 64, 3, 8, {"IDX_AHEAD": 1, "TAIL_REUSE": True}),
    ("fg g64 bn64 st3 ia1", 2, 128, 128, 64, 64, 3, 8, {"IDX_AHEAD": 1}),
    ("fg g64 bn64 st2 ia1 r168", 2, 128, 128, 64, 64, 2, 8, {"IDX_AHEAD": 1, "maxnreg": 168}),
    ("block bn64 st3 tma", 1, 128, 128, 64, 128, 3, 8, {"USE_TMA": True}),
    ("block bn64 st2 tma r168", 1, 128, 128, 64, 128, 2, 8, {"USE_TMA": True, "maxnreg": 168}),
    ("block bn128 st2 tma", 1, 128, 128, 128, 128, 2, 8, {"USE_TMA": True}),
    ("fg g64 bn64 st2 ia1 r128 tail_reuse", 2, 128, 128, 64, 64, 2, 8, {"IDX_AHEAD": 1, "TAIL_REUSE": True,
                                                                       "maxnreg": 128}),
    ("block bn64 st2 tma r128", 1, 128, 128, 64, 128, 2, 8, {"USE_TMA": True, "maxnreg": 128}),
    # launch option one_row (grid = rows) compiles the nested form: the fg M128 g1 entry since session 5
    ("pfg nested idx_early g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True}),
    ("pfg nested idx_early tma_q g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "TMA_Q": True}),
    ("pfg nested idx_early g16 bn128 st3", 2, 128, 128, 128, 16, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True}),
    ("pfg nested idx_early g64 bn128 st3", 2, 128, 128, 128, 64, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True}),
    ("pfg nested idx_early M64 g1 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True}),
    ("pfg nested idx_early M64 g16 bn64 st3 w4", 2, 128, 64, 64, 16, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True}),
    ("pfg nested idx_early M64 g64 bn64 st3 w4", 2, 128, 64, 64, 64, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True}),
    # session 7: the one-row form's per-row end (dead next-row loads in flight at exit, O store drain)
    ("pfg nested idx_early guard g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "GUARD": True}),
    ("pfg nested idx_early guard tma_o g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "GUARD": True, "TMA_O": True}),
    ("pfg nested idx_early tma_o g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "TMA_O": True}),
    ("pfg nested idx_early guard M64 g1 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True, "GUARD": True}),
    ("pfg nested idx_early guard tma_o M64 g1 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True, "GUARD": True, "TMA_O": True}),
    ("pfg nested idx_early fold g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "FOLD": True}),
    ("pfg nested idx_early fold guard tma_o g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "FOLD": True, "GUARD": True, "TMA_O": True}),
    ("pfg nested idx_early fold guard g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "FOLD": True, "GUARD": True}),
    ("pfg nested idx_early fold M64 g1 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True, "FOLD": True}),
    ("pfg nested idx_early fold guard tma_o M64 g1 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True, "FOLD": True, "GUARD": True, "TMA_O": True}),
    ("dense D64 M64 bn64 st4 tma w4", 0, 64, 64, 64, 1, 4, 4, {"USE_TMA": True}),
    ("pfg nested idx_early guard tma_o M64 g16 bn64 st3 w4", 2, 128, 64, 64, 16, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True, "GUARD": True, "TMA_O": True}),
    ("pfg nested idx_early guard tma_o M64 g64 bn64 st3 w4", 2, 128, 64, 64, 64, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True, "GUARD": True, "TMA_O": True}),
    # session 7c candidate: one (row, lo, hi) record per launch position (launch option row_rec)
    ("pfg nested idx_early rowrec g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "ROWREC": True}),
    ("pfg nested idx_early rowrec tma_q g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "ROWREC": True, "TMA_Q": True}),
    ("pfg nested idx_early prefetch g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "PREFETCH": True}),
    # session 8 candidate: a later row's Q and first index entries prefetched into L2 (launch option row_ahead)
    ("pfg nested idx_early ahead48 g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "AHEAD": 48}),
    # session 9 candidate: part of the softmax's exp2 by an FMA polynomial (launch option exp_poly = 1 / EXP_POLY)
    ("pfg nested idx_early poly2 g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "EXP_POLY": 2}),
    ("pfg nested idx_early poly4 g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "EXP_POLY": 4}),
    ("pfg nested idx_early poly8 g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "EXP_POLY": 8}),
    ("pfg nested idx_early fold poly8 g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "FOLD": True, "EXP_POLY": 8}),
    ("dense bn128 st3 tma tail_branch poly8", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True, "TAIL_BRANCH": True,
                                                                         "EXP_POLY": 8}),
    ("pfg nested idx_early poly8 M64 g1 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True, "EXP_POLY": 8}),
    ("pfg nested idx_early fold poly2 g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "FOLD": True, "EXP_POLY": 2}),
    ("pfg nested idx_early fold poly4 g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "FOLD": True, "EXP_POLY": 4}),
    ("pfg nested idx_early poly2 M64 g1 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True, "EXP_POLY": 2}),
    ("pfg nested idx_early poly4 M64 g1 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True, "EXP_POLY": 4}),
    ("dense bn128 st3 tma tail_branch poly2", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True, "TAIL_BRANCH": True,
                                                                         "EXP_POLY": 2}),
    ("dense bn128 st3 tma tail_branch poly4", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True, "TAIL_BRANCH": True,
                                                                         "EXP_POLY": 4}),
    ("pfg nested idx_early tailpf g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "TAIL_PF": True}),
    ("pfg nested idx_early tailpf poly4 g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "TAIL_PF": True, "EXP_POLY": 4}),
    ("block bn64 st2 tma r128 poly4", 1, 128, 128, 64, 128, 2, 8, {"USE_TMA": True, "maxnreg": 128, "EXP_POLY": 4}),
]


def compile_sm90(fn: Any, const: dict[str, Any], ptr: dict[str, str], num_warps: int, num_stages: int,
                 maxnreg: int | None = None, qdesc: str | None = None, odesc: str | None = None) -> Any:
    """Compile the Triton kernel ``fn`` for sm_90 without a GPU: ``const`` its constexprs, ``ptr`` the pointer
    arguments' types (16-byte aligned, as the real launches' tensors), strides 16-divisible, ``qk_scale`` fp32,
    other arguments i32; ``QDesc`` the TMA descriptor type ``qdesc`` or, without one, an unused pointer; ``ODesc``
    (persistent kernel) the descriptor type ``odesc`` or None."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = list(fn.arg_names)
    # constexpr switches the caller does not name take their defaults (compiled as constants, not i32 arguments)
    const = {**{p.name: p.default for p in fn.params if p.is_constexpr and p.has_default}, **const}
    sig: dict[str, str] = {}
    attrs: dict[tuple[int, ...], list[list[Any]]] = {}
    for i, a in enumerate(names):
        if a in const:
            sig[a] = "constexpr"
        elif a == "QDesc":
            sig[a] = qdesc or "*bf16"
        elif a == "ODesc":  # the O descriptor (TMA_O) or, without one, None (a constexpr, as the launch passes it)
            if odesc:
                sig[a] = odesc
            else:
                sig[a] = "constexpr"
                const[a] = None
        elif a in ptr:
            sig[a] = ptr[a]
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif a == "qk_scale":
            sig[a] = "fp32"
        else:
            sig[a] = "i32"
            if a.startswith("stride"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn, sig, constexprs={(names.index(k),): v for k, v in const.items()}, attrs=attrs)
    opts: dict[str, Any] = {"num_warps": num_warps, "num_stages": num_stages}
    if maxnreg:
        opts["maxnreg"] = int(maxnreg)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)


def loop_figures(sass: str) -> dict[str, int] | None:
    """The innermost loop with HGMMA in ``cuobjdump -sass`` text (the shortest backward branch span holding one):
    instructions, the sum of ptxas's stall counts (control bits 41-44 of each instruction's second word: the static
    cycles the schedule waits before issuing the next instruction) and the instructions that wait on a scoreboard
    (bits 52-57).  None without such a loop."""
    ins: list[tuple[int, str, int]] = []
    lines = sass.splitlines()
    for i, ln in enumerate(lines[:-1]):
        m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?);\s+/\* (0x[0-9a-f]+) \*/", ln)
        hi = re.search(r"/\* (0x[0-9a-f]+) \*/", lines[i + 1]) if m else None
        if m and hi and not re.match(r"\s+/\*[0-9a-f]{4,}\*/", lines[i + 1]):
            ins.append((int(m.group(1), 16), m.group(2).strip(), int(hi.group(1), 16)))
    spans = []
    for a, text, _ in ins:
        b = re.search(r"BRA\s.*?0x([0-9a-f]+)", text)
        if b and int(b.group(1), 16) < a:
            lo = int(b.group(1), 16)
            if any(lo <= x <= a and "HGMMA" in t for x, t, _ in ins):
                spans.append((a - lo, lo, a))
    if not spans:
        return None
    _, lo, hi = min(spans)
    body = [h for a, _, h in ins if lo <= a <= hi]
    text = [t for a, t, _ in ins if lo <= a <= hi]
    return dict(loop_insts=len(body), loop_stall_cycles=sum((h >> 41) & 0xF for h in body),
                loop_sb_waits=sum(1 for h in body if (h >> 52) & 0x3F),
                loop_mufu=sum(1 for t in text if re.match(r"(@!?U?P\w+\s+)?MUFU", t)),
                loop_wgmma_waits=sum(1 for t in text if "WARPGROUP.DEPBAR" in t))


def gluon_compile_sm90(knobs: dict[str, Any], dtype: str = "bf16") -> Any:
    """Compile the Gluon form of an ``impl: gluon`` entry (``extra["gluon"]`` knobs, validated as the launch table
    does) for sm_90 without a GPU, with the constexprs ``fgattn.gluon_fg.fg_attention_gluon`` launches it with
    (ordered index, 16-byte aligned pointers and strides, Q descriptor [1, 1, 64 or 128, 128] boxes)."""
    from fgattn import gluon_fg as g
    from fgattn.launch import check_impl

    # an fg gran-16 / 64 entry's ``expand`` (session 17, K) runs this same gran-1 binary on the expanded index
    knobs = {k: v for k, v in knobs.items() if k != "expand"}
    check_impl("fg", g.HEAD_DIM, g.BLOCK_M, g.GRAN_N, {"impl": "gluon", "gluon": knobs}, "gluon knobs")
    form = knobs["form"]
    fn = {"one_row": g._fg_gluon_row, "persistent": g._fg_gluon_persistent, "ws": g._fg_gluon_ws,
          "ws2": g._fg_gluon_ws2}[form]
    ws2 = form == "ws2"
    const: dict[str, Any] = {p.name: p.default for p in fn.params if p.is_constexpr and p.has_default}
    const.update(HEAD_DIM=g.HEAD_DIM, BLOCK_M=g.BLOCK_M, BLOCK_N=g.BLOCK_N, STAGES=g.STAGES,
                 num_warps=4 if ws2 else g.NUM_WARPS)
    if form in ("ws", "ws2"):
        const.update(PRODUCER_REGS=g.PRODUCER_REGS, CONSUMER_FENCE=bool(knobs.get("fence", True)))
        if ws2:
            regs = knobs.get("regs")
            const.update(g.check_ws2_knobs("ws2", pipeline=knobs.get("pipeline", 0), exp_poly=knobs.get("exp_poly", 0),
                                           pingpong=knobs.get("pingpong", False),
                                           regs=None if regs is None else tuple(regs),
                                           epilogue=knobs.get("epilogue", "stg"),
                                           tail64=bool(knobs.get("tail64", False))),
                         PLANNED=knobs.get("schedule", "walk") == "list")  # the list schedule: rows from a plan
    else:
        const.update(ORDERED=True)
    return g.compile_sm90(fn, const, dtype, g.BLOCK_M, g.HEAD_DIM, ws2)


def cuobjdump(k: Any) -> tuple[str, str]:
    """(``cuobjdump -res-usage``, ``cuobjdump -sass``) text of a compiled kernel ``k``'s cubin, by the
    cuobjdump of the Triton on the path."""
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(k.asm["cubin"])
        f.flush()
        res = subprocess.run([str(tool), "-res-usage", f.name], capture_output=True, text=True).stdout
        sass = subprocess.run([str(tool), "-sass", f.name], capture_output=True, text=True).stdout
    return res, sass


def _figures(name: str, k: Any, t0: float, **more: Any) -> dict:
    """The report of a compiled kernel ``k`` (tl or Gluon): resources, HGMMA chain, inner loop; FGATTN_DUMP."""
    md = k.metadata
    ttgir = k.asm.get("ttgir", "")
    ptx = k.asm.get("ptx", "")
    res, sass = cuobjdump(k)
    dump = os.environ.get("FGATTN_DUMP")  # a folder: write the variant's TTGIR, PTX and SASS there
    if dump:
        stem = Path(dump) / re.sub(r"[^\w.-]+", "_", name)
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".ttgir").write_text(ttgir)
        stem.with_suffix(".ptx").write_text(ptx)
        stem.with_suffix(".sass").write_text(sass)
    hgmma = [ln for ln in sass.splitlines() if "HGMMA" in ln]
    gsb0 = sum("gsb0" in ln for ln in hgmma)
    regs = re.search(r"REG:(\d+)", res)
    stack = re.search(r"STACK:(\d+)", res)
    return dict(name=name, ok=True, regs=int(regs.group(1)) if regs else None,
                stack=int(stack.group(1)) if stack else None,
                smem_kb=round(md.shared / 1024, 1), ws="warp_specialize" in ttgir,
                wgmma="wgmma" in ptx, cp_async="cp.async" in ptx, tma="cp.async.bulk.tensor" in ptx,
                async_copies=ttgir.count("ttg.async_copy_global_to_local"),
                async_waits=ttgir.count("ttg.async_wait"), hgmma=len(hgmma), hgmma_gsb0=gsb0,
                wgmma_serialized=len(hgmma) > 4 and gsb0 == len(hgmma),
                **(loop_figures(sass) or {}), **more, s=round(time.time() - t0, 1))


def compile_gluon_one(v: tuple) -> dict:
    """A Gluon variant (``extra = {"impl": "gluon", "gluon": knobs, "dtype": ...}``) as :func:`compile_one`."""
    name, extra = v[0], dict(v[-1])
    t0 = time.time()
    try:
        knobs = dict(extra["gluon"])
        if knobs["form"] == "contig":  # dense / block D128 M128: fgattn.gluon_contig (launch.CONTIG_KNOBS)
            from fgattn.gluon_contig import compile_contig_sm90
            from fgattn.launch import CONTIG_KNOBS

            kw = {n: knobs.get(n, d) for n, (_, d) in CONTIG_KNOBS.items() if n != "form"}
            kw["regs"] = tuple(kw["regs"])
            k = compile_contig_sm90(v[1] == 0, extra.get("dtype", "bf16"), **kw)
        else:
            k = gluon_compile_sm90(knobs, extra.get("dtype", "bf16"))
        from fgattn import gluon_fg as g

        # the register values the PTX's setmaxnreg.inc / .dec set (warp-specialized forms; transitions included)
        setmax = sorted({int(x) for x in re.findall(r"setmaxnreg\.(?:inc|dec)\.sync\.aligned\.u32\s+(\d+)",
                                                     k.asm.get("ptx", ""))}, reverse=True)
        more: dict[str, Any] = dict(impl="gluon", setmaxnreg=setmax)
        if knobs["form"] in ("ws2", "contig"):  # [consumer half 0 (default partition), consumer half 1, producer]
            cr, pr = kw["regs"] if knobs["form"] == "contig" else knobs.get("regs") or (g.CONSUMER_REGS,
                                                                                          g.PRODUCER_REGS)
            more["partition_regs"] = [504 - cr - pr, cr, pr]
        return _figures(name, k, t0, **more)
    except Exception as e:  # noqa: BLE001
        return dict(name=name, ok=False, impl="gluon", err=repr(e)[-400:], s=round(time.time() - t0, 1))


def compile_one(v: tuple) -> dict:
    from fgattn.attention import _attn_fwd, _attn_fwd_persistent

    name, mode, d, m, bn, gran, st, w, extra = v
    extra = dict(extra)
    if extra.get("impl") == "gluon":
        return compile_gluon_one(v)
    persistent = bool(extra.pop("persistent", False))
    fn = _attn_fwd_persistent if persistent else _attn_fwd
    names = list(fn.arg_names)
    ptr = {"Q": "*bf16", "K": "*bf16", "V": "*bf16", "Out": "*bf16", "Lse": "*fp32", "Offsets": "*i64",
           "Indices": "*i32", "Order": "*i32", "Counter": "*i32"}
    if persistent:
        const = dict(HEAD_DIM=d, BLOCK_M=m, BLOCK_N=bn, GRAN_N=gran if mode == 2 else (m if mode == 1 else 1),
                     MODE=mode, ORDERED=mode != 0, NUM_STAGES=st, RETURN_LSE=False,
                     FLAT=bool(extra.pop("flatten", True)), QUEUE=bool(extra.pop("queue", False)),
                     IDX_EARLY=bool(extra.pop("idx_early", False)))
    else:
        const = dict(HEAD_DIM=d, BLOCK_M=m, BLOCK_N=bn, GRAN_N=gran if mode == 2 else (m if mode == 1 else 1),
                     MODE=mode, IDX_AHEAD=0, ORDERED=mode != 0, NUM_STAGES=st, USE_TMA=False, WARP_SPEC=False,
                     OVERLAP=False, RETURN_LSE=False, TMA_QO=False, TMA_Q=False,
                     TAIL_REUSE=False)
    const.update({a: 0 for a in names if a.startswith("_DIAG_")})  # diagnosis-only switches: off unless given
    const.update({k: val for k, val in extra.items() if k != "maxnreg"})
    t0 = time.time()
    try:
        maxnreg = extra.pop("maxnreg", None)
        const.pop("maxnreg", None)
        qdesc = f"tensordesc<bf16[1, 1, {m}, {d}]>" if const.get("TMA_Q") else None
        odesc = f"tensordesc<bf16[1, 1, {m}, {d}]>" if const.get("TMA_O") else None
        k = compile_sm90(fn, const, ptr, w, st, maxnreg=maxnreg, qdesc=qdesc, odesc=odesc)
        return _figures(name, k, t0)
    except Exception as e:  # noqa: BLE001
        return dict(name=name, ok=False, err=repr(e)[-400:], s=round(time.time() - t0, 1))


def table_variants(gpu: str = "h200", path: str | None = None) -> list[tuple]:
    """The launch table's entries for ``gpu`` as variants, with the constexprs ``attention._launch`` gives them
    (bf16, an ordered index for fg / block; one_row = the nested persistent kernel).  An ``impl: gluon`` entry
    gives its Gluon form (extra ``{"impl": "gluon", "gluon": knobs}``) and then its tl kernel."""
    from fgattn.launch import launch_config, load_table

    out = []
    for kernel, g, d, m, gran in load_table(path):
        if g != gpu:
            continue
        e = launch_config(kernel, g, d, m, gran, table_path=path)
        if e.impl == "gluon":
            kn = e.extra["gluon"]
            tag = " ".join(f"{k}={json.dumps(kn[k])}" for k in sorted(kn) if k != "form")
            out.append((f"table {e.kernel} D{e.head_dim} M{e.block_m} g{e.gran_n} gluon {kn['form']} {tag}".strip(),
                        {"dense": 0, "block": 1, "fg": 2}[e.kernel], e.head_dim, e.block_m, 128, e.gran_n, 3,
                        4 if kn["form"] in ("ws2", "contig") else 8,
                        {"impl": "gluon", "gluon": dict(kn)}))
            e = e.tl_config()
        mode = {"dense": 0, "block": 1, "fg": 2}[e.kernel]
        o = e.extra
        name = f"table {e.kernel} D{e.head_dim} M{e.block_m} g{e.gran_n} bn{e.block_n} st{e.num_stages} w{e.num_warps}"
        extra: dict[str, Any] = {}
        if o.get("maxnreg") is not None:
            extra["maxnreg"] = int(o["maxnreg"])
        tma_q = bool(o.get("tma_q", False)) and not o.get("tma_qo", False)
        if o.get("one_row") or o.get("persistent"):
            one_row = bool(o.get("one_row"))
            flat = bool(o.get("flatten", True)) and not one_row
            extra.update(persistent=True, flatten=flat, queue=bool(o.get("queue", False)),
                         idx_early=bool(o.get("idx_early", False)) and not flat, TMA_Q=tma_q,
                         GUARD=bool(o.get("guard_next", False)) and not flat, TMA_O=bool(o.get("tma_o", False)) and not flat,
                         FOLD=bool(o.get("tail_fold", False)) and not flat and mode == 2 and e.gran_n == 1)
        else:
            use_tma = mode != 2 and bool(o.get("tma", False))
            ia = int(o.get("idx_ahead", 0))
            extra.update(USE_TMA=use_tma, TMA_QO=bool(o.get("tma_qo", False)), TMA_Q=tma_q, IDX_AHEAD=ia,
                         OVERLAP=bool(o.get("overlap", False)), WARP_SPEC=use_tma and bool(o.get("warp_specialize")),
                         TAIL_REUSE=bool(o.get("tail_reuse", False)) and mode == 2 and ia == 1,
                         TAIL_BRANCH=bool(o.get("tail_branch", False)) and mode == 0)
        from fgattn.attention import EXP_POLY_FRACTIONS

        if o.get("exp_poly"):  # a fraction of P's exp2 by the FMA polynomial (session 9)
            extra["EXP_POLY"] = EXP_POLY_FRACTIONS[o["exp_poly"]]
        if o.get("tail_prefetch"):
            extra["TAIL_PF"] = True
        out.append((name, mode, e.head_dim, e.block_m, e.block_n, e.gran_n, e.num_stages, e.num_warps, extra))
    return out


def main() -> None:
    """``compile_report.py [NAME-SUBSTRING ...]``; ``--table`` compiles the launch table's H200 entries instead."""
    only = sys.argv[1:]
    if only[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return
    if only[:1] == ["--table"]:
        vs = table_variants()
    else:
        vs = [v for v in VARIANTS if not only or any(o in v[0] for o in only)]
    with ProcessPoolExecutor(max_workers=2) as ex:
        for r in ex.map(compile_one, vs):
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
