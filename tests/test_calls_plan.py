"""The calibration fit's cached path (:class:`fgsim.model.assemble.CallsPlan`: launch orders and the counts the calls
use worked out once, tables of those counts only) prices calls exactly as ``KernelPlan.build(...).run(counts)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fgsim.calibration import available_calibrations, load_calibration
from fgsim.errors import FgsimError
from fgsim.hardware import load_gpu
from fgsim.model.assemble import CallsPlan, KernelPlan, counts_m_n
from fgsim.model.cta_cost import skip_n
from fgsim.model.params import PARAM_BOUNDS
from fgsim.validation.report import CountsCache, predict_rows, read_results, row_config, row_gpu

REPO = Path(__file__).resolve().parents[1]


def _one_row_per_form() -> list[dict[str, str]]:
    """One committed calibration row per (kernel, structure, Gluon form, persistent, order, schedule): every launch
    form the fit prices (tl fg / block / dense, persistent, Gluon ws2 walk / list, contig, LPT order)."""
    cal = load_calibration(available_calibrations()["h200"])
    rows = [r for r in read_results([REPO / i["path"] for i in cal.inputs])
            if r.get("split") == "calib" and (r.get("kind") or "kernel") == "kernel" and r.get("measured_ms")]
    out: dict[tuple[object, ...], dict[str, str]] = {}
    for r in rows:
        cfg = row_config(r)
        g = cfg.extra.get("gluon") or {}
        out.setdefault((cfg.kernel, r["structure"], g.get("form"), g.get("schedule"), bool(cfg.extra.get("persistent")),
                        cfg.extra.get("order")), r)
    assert len(out) >= 12, sorted(map(str, out))
    return list(out.values())


def _random_params(rng: np.random.Generator, base: dict[str, float]) -> dict[str, float]:
    return {k: float(rng.uniform(*PARAM_BOUNDS[k])) if k in PARAM_BOUNDS else v for k, v in base.items()}


def test_calls_plan_prices_exactly_as_the_full_plan(rng: np.random.Generator) -> None:
    """Random calls (the conftest's printed seed) of every launch form, at the committed and at random parameters:
    per-call seconds, breakdown and FLOP equal to the full plan's, bit for bit."""
    cal = load_calibration(available_calibrations()["h200"])
    props = {k: float(v["value"]) for k, v in cal.gpu_properties.items()}
    forms = _one_row_per_form()
    for r in forms:
        cfg, gpu = row_config(r), row_gpu(r, "h200", props)
        n_tok, heads = int(r["n_tokens"]), int(r["heads"])
        counts_m_n(cfg, cfg.block_m)
        qb = -(-n_tok // cfg.block_m)
        c_max = 0 if cfg.kernel == "dense" else -(-n_tok // skip_n(cfg))
        calls = [rng.integers(0, c_max + 1, size=(heads, qb)) for _ in range(3)]
        calls[1][0, 0], calls[1][-1, -1] = 0, c_max  # the ends of the count range
        calls += [calls[0], calls[2].copy()]  # the same object again and an equal copy: simulated once
        plan = CallsPlan.build(cfg, gpu, n_tok, heads, calls, resources=cal.resources)
        if cfg.kernel != "dense":  # the tables hold exactly the counts the calls use
            assert plan.domain is not None and np.array_equal(plan.domain, np.unique(np.stack(calls)))
        for p in (cal.params, cal.params.replace(**_random_params(rng, cal.params.as_dict()))):
            want = KernelPlan.build(cfg, gpu, p, n_tok, heads, resources=cal.resources).run(calls)
            got = plan.run(p)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]) and got[2] == want[2], \
                (r["case_id"], cfg.describe(), got[0], want[0])


def test_predict_rows_cached_equals_uncached() -> None:
    """predict_rows with a fit's cache (second call: the held CallsPlans) is bit-identical to a fresh call, and a
    changed resources table rebuilds the held plans (a cache never prices with another call's figures)."""
    cal = load_calibration(available_calibrations()["h200"])
    props = {k: float(v["value"]) for k, v in cal.gpu_properties.items()}
    rows = [r for r in _one_row_per_form() if r["structure"] == "uniform" and int(r["n_tokens"]) <= 16384][:6]
    assert len(rows) >= 4
    cache = CountsCache()
    kw = {"gpu": "h200", "gpu_properties": props}
    first = predict_rows(rows, params=cal.params, resources=cal.resources, cache=cache, **kw)
    p2 = cal.params.replace(mem_latency_cycles=cal.params.mem_latency_cycles * 1.3)
    again = predict_rows(rows, params=p2, resources=cal.resources, cache=cache, **kw)
    fresh = predict_rows(rows, params=p2, resources=cal.resources, cache=CountsCache(), **kw)
    assert np.array_equal(again, fresh) and not np.array_equal(first, again)
    est = predict_rows(rows, params=p2, resources={}, cache=cache, **kw)  # rows' own figures only
    assert np.array_equal(est, predict_rows(rows, params=p2, resources={}, cache=CountsCache(), **kw))


def test_calls_plan_refuses_counts_out_of_range() -> None:
    gpu = load_gpu("h200")
    cal = load_calibration(available_calibrations()["h200"])
    r = next(x for x in _one_row_per_form() if row_config(x).kernel == "fg" and not row_config(x).extra.get("impl"))
    cfg = row_config(r)
    n_tok, heads = int(r["n_tokens"]), int(r["heads"])
    qb = -(-n_tok // cfg.block_m)
    bad = np.full((heads, qb), -(-n_tok // skip_n(cfg)) + 1)
    with pytest.raises(FgsimError, match="out of range"):
        CallsPlan.build(cfg, gpu, n_tok, heads, [bad], resources=cal.resources)
    with pytest.raises(FgsimError, match="expected"):
        CallsPlan.build(cfg, gpu, n_tok, heads, [np.zeros((heads, qb + 1), np.int64)], resources=cal.resources)


def test_generated_mask_counts_are_shared_across_caches_and_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second CountsCache (another fit / scoring in the same process) takes a generated mask's counts from the
    process-wide table instead of regenerating them; they are read-only; a trace case is never shared."""
    import fgsim.validation.report as report

    row = next(r for r in _one_row_per_form() if r["structure"] == "uniform" and int(r["n_tokens"]) <= 16384)
    monkeypatch.setattr(report, "SHARED_COUNTS", {})
    calls: list[str] = []
    real = report.case_counts
    monkeypatch.setattr(report, "case_counts", lambda case, ns: calls.append(case.case_id) or real(case, ns))
    a = CountsCache().get(row, 1)
    b = CountsCache().get(row, 1)
    assert calls == [row["case_id"]] and b is a and not a.flags.writeable
    with pytest.raises(ValueError):
        a[0, 0] = 1
    assert len(report.SHARED_COUNTS) == 1
