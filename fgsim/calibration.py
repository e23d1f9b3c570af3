"""Calibration files: the fitted parameters of one GPU, and how an uncalibrated GPU gets parameters.

File format (JSON, ``fgsim/data/calibrations/<gpu>.json``), written only by ``fgsim calibrate``::

    {"format": "fgsim-calibration", "version": 2, "gpu": "h200", "arch": "hopper", "created": "...",
     "commit": "<git commit the measurement ran at>", "source_digest": "<fgsim.provenance.source_digest of the
     measured tree, '' in files made before it was recorded>", "fitted_with": {"commit", "source_digest"} (of the
     fitting code), "device": {"gpu_name", "sm_clock_mhz" (median under load),
     "mem_clock_mhz", "driver", ...}, "env": {"torch", "triton", "cuda", "fgsim"},
     "inputs": [{"path": "validation/results/....csv", "sha256": "...", "rows": n}],
     "gpu_properties": {"l2_port_bytes_per_clk": {"value", "unit", "measured_by", "gpu_file_value"}} (GPU
     properties measured by the microbenchmarks: they replace the GPU file's spec values for this GPU),
     "params": {<ModelParams>}, "resources": {<config key>: {"n_regs", "shared"}},
     "fit": {"n", "mape", "max_ape", "median_ape", "per_kind": {...}, "free": [...], ...}}

Parameters are GPU properties in SM cycles, bytes or efficiencies; another GPU of the same architecture uses them
through its own GPU file (SMs, clocks, bandwidths): for an H100, everything but the memory system transfers from
the H200 (same SM). Other architectures are extrapolations and are reported as such.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fgsim.errors import FgsimError
from fgsim.hardware import GPU, load_gpu
from fgsim.model.params import PARAM_BOUNDS, ModelParams

CAL_DIR = Path(__file__).parent / "data" / "calibrations"
CAL_PATH_ENV = "FGSIM_CALIBRATION_PATH"
FORMAT = "fgsim-calibration"
VERSION = 2
UNCALIBRATED = "uncalibrated: using spec-derived parameters"
#: uncertainty band (± %) quoted for an architecture the parameters were not fitted on, when the calibration
#: records none (REPORT.md's transfer errors set the recorded one)
DEFAULT_EXTRAPOLATION_BAND_PCT = 30.0


@dataclass(frozen=True)
class Calibration:
    gpu: str
    arch: str
    params: ModelParams
    created: str
    device: dict[str, Any]
    env: dict[str, Any]
    fit: dict[str, Any]
    inputs: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, dict[str, int]] = field(default_factory=dict)
    commit: str = ""
    transfer: dict[str, Any] = field(default_factory=dict)
    source_digest: str = ""  # fgsim.provenance.source_digest of the measured tree ('' before it was recorded)
    fitted_with: dict[str, str] = field(default_factory=dict)  # commit / source_digest of the fitting code
    #: GPU properties measured by calibrate's microbenchmarks ({name: {"value", "unit", "source"}}): they replace
    #: the GPU file's spec values for this GPU (fgsim.hardware.MEASURED_PROPERTIES)
    gpu_properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "gpu": self.gpu, "arch": self.arch, "created": self.created,
                "commit": self.commit, "source_digest": self.source_digest, "fitted_with": self.fitted_with,
                "device": self.device, "env": self.env, "inputs": self.inputs,
                "gpu_properties": self.gpu_properties, "params": self.params.as_dict(),
                "resources": self.resources, "fit": self.fit, "transfer": self.transfer}


@dataclass(frozen=True)
class Resolved:
    """Parameters for one GPU and what a prediction must say about them."""

    params: ModelParams
    note: str
    resources: dict[str, dict[str, int]] = field(default_factory=dict)
    extrapolated: bool = False
    band_pct: float = 0.0  # ± uncertainty band for an extrapolated architecture (0: within the calibrated one)


def _cal_dirs() -> list[Path]:
    from fgsim.hardware import search_dirs

    return search_dirs(CAL_DIR, CAL_PATH_ENV)


_MEASURED_CACHE: dict[tuple[str, int], dict[str, float]] = {}


def gpu_properties_of(data: dict[str, Any], where: str) -> dict[str, float]:
    """{property: value} of a calibration's ``gpu_properties`` ({name: {"value", "unit", ...}}); FgsimError
    naming ``where`` for a malformed entry or a property the model does not take from measurements."""
    from fgsim.hardware import MEASURED_PROPERTIES, check_range

    out: dict[str, float] = {}
    gp = data.get("gpu_properties") or {}
    if not isinstance(gp, dict):
        raise FgsimError(f"{where}: field 'gpu_properties' must map property names to {{value, unit}}")
    for k, v in gp.items():
        val = v.get("value") if isinstance(v, dict) else None
        if k not in MEASURED_PROPERTIES:
            raise FgsimError(f"{where}: gpu_properties: '{k}' is not a measured GPU property "
                             f"({', '.join(MEASURED_PROPERTIES)})")
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not val > 0:
            raise FgsimError(f"{where}: gpu_properties.{k}: 'value' must be a positive number")
        check_range(f"{where}: gpu_properties", k, val)  # they replace the GPU file's values: the same ranges
        out[k] = float(val)
    return out


def measured_gpu_properties(gpu_name: str) -> tuple[dict[str, float], str]:
    """({property: value}, source) the GPU's own calibration file measured (its ``gpu_properties``; empty when
    the GPU has no calibration or the calibration records none). Cached per file and modification time."""
    p = available_calibrations().get(gpu_name.lower())
    if p is None:
        return {}, ""
    key = (str(p), p.stat().st_mtime_ns)
    if key not in _MEASURED_CACHE:
        from fgsim.fileio import read_json

        try:  # bounded (a device or deep nesting in a user's calibration directory); load_calibration reports it
            data = read_json(p, "calibration")
        except FgsimError:
            data = {}
        _MEASURED_CACHE[key] = gpu_properties_of(data if isinstance(data, dict) else {}, str(p))
    return dict(_MEASURED_CACHE[key]), f"fgsim calibrate, {p.name}"


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read and check a calibration file (FgsimError naming the file and the bad field)."""
    from fgsim.fileio import read_json

    p = Path(path)
    data = read_json(p, "calibration")  # bounded: a device, NaN or deep nesting fails here, naming the file
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FgsimError(f"{p}: not an fgsim calibration file (field 'format' must be '{FORMAT}')")
    if data.get("version") != VERSION:
        raise FgsimError(f"{p}: unsupported calibration version {data.get('version')!r} (expected {VERSION}; "
                         "re-run `fgsim calibrate`)")
    for key, typ in (("gpu", str), ("arch", str), ("params", dict)):
        if not isinstance(data.get(key), typ):
            raise FgsimError(f"{p}: missing or invalid field '{key}'")
    params = ModelParams.from_dict(data["params"], where=str(p))
    gpu_properties_of(data, str(p))  # a malformed entry fails here, naming the file
    res = data.get("resources") or {}
    if not isinstance(res, dict) or not all(isinstance(v, dict) for v in res.values()):
        raise FgsimError(f"{p}: field 'resources' must map config keys to {{n_regs, shared}}")
    return Calibration(gpu=data["gpu"].lower(), arch=data["arch"].lower(), params=params,
                       created=str(data.get("created", "")), device=dict(data.get("device") or {}),
                       env=dict(data.get("env") or {}), fit=dict(data.get("fit") or {}),
                       inputs=list(data.get("inputs") or []),
                       resources={str(k): {kk: int(vv) for kk, vv in v.items()} for k, v in res.items()},
                       commit=str(data.get("commit", "")), transfer=dict(data.get("transfer") or {}),
                       source_digest=str(data.get("source_digest") or ""),
                       fitted_with={str(k): str(v) for k, v in (data.get("fitted_with") or {}).items()},
                       gpu_properties=dict(data.get("gpu_properties") or {}), path=str(p))


def save_calibration(cal: Calibration, path: str | os.PathLike[str]) -> Path:
    """Write ``cal`` as JSON (atomically); returns the path."""
    from fgsim.fileio import write_text_atomic

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(p, json.dumps(cal.to_json(), indent=1) + "\n")


def available_calibrations() -> dict[str, Path]:
    """GPU name → calibration file (user directories override built-ins); files whose name is not a known GPU
    (e.g. other models' calibrations kept beside them) are not cost-model calibrations and are skipped."""
    from fgsim.hardware import list_gpus

    known = set(list_gpus())
    out: dict[str, Path] = {}
    for d in _cal_dirs():
        if d.is_dir():
            for f in sorted(d.glob("*.json")):
                if f.stem.lower() in known:
                    out[f.stem.lower()] = f
    return out


def resolve(gpu: GPU, calibration: str | os.PathLike[str] | None = None) -> Resolved:
    """Parameters for ``gpu`` and a one-line note of where they came from.

    Order: an explicit calibration file; the GPU's own calibration; a calibrated GPU of the same architecture
    (same SM: only the GPU file's memory system, SM count and clocks differ); a calibrated GPU of another
    architecture (an extrapolation, with the calibration's uncertainty band); spec-derived priors.
    """
    if calibration is not None:
        cal = load_calibration(calibration)
        cands = [cal]
    else:
        cals = available_calibrations()
        if gpu.name in cals:
            cal = load_calibration(cals[gpu.name])
            return Resolved(cal.params, f"calibrated on {cal.gpu} ({cal.created[:10]})", cal.resources)
        cands = [load_calibration(p) for p in cals.values()]
    same = [c for c in cands if c.arch == gpu.arch]
    if same:
        c = same[0]
        note = (f"calibration {c.path} ({c.gpu}, {c.created[:10]})" if calibration is not None else
                f"no calibration for {gpu.name}: {c.gpu}'s calibration (same architecture, {gpu.arch}: the same SM"
                + (f" and L2 design, with the L2 -> SM port measured on the {c.gpu}" if
                   measured_gpu_properties(c.gpu)[0] else "")
                + f"; memory bandwidths, SM count and clocks from the {gpu.name} GPU file)")
        return Resolved(c.params, note, c.resources)  # same architecture: the same compiled kernels
    if cands:
        c = cands[0]
        band = extrapolation_band_pct()
        from fgsim.hardware import ARCH_FEATURES

        lacks = [f.upper() if f == "tma" else f for f in ARCH_FEATURES.get(c.arch, ()) if f not in gpu.features]
        opts = f"{c.arch} options {gpu.name} lacks ({', '.join(lacks)}) are priced without them; " if lacks else ""
        return Resolved(c.params, (f"EXTRAPOLATION: {gpu.name} is {gpu.arch}, the parameters were fitted on "
                                   f"{c.gpu} ({c.arch}); {opts}uncertainty about ±{band:.0f} %"), {}, True, band)
    return Resolved(ModelParams(), UNCALIBRATED)


def extrapolation_band_pct() -> float:
    """± % uncertainty quoted for an architecture the parameters were not fitted on: ``fgsim validate`` derives
    it from the frozen test set's transfer errors (``fgsim/data/transfer_bands.json``)."""
    p = Path(__file__).parent / "data" / "transfer_bands.json"
    try:
        return float(json.loads(p.read_text())["band_pct"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_EXTRAPOLATION_BAND_PCT


def resolve_params(gpu: GPU, calibration: str | os.PathLike[str] | None = None) -> tuple[ModelParams, str]:
    """(parameters, note) for ``gpu``; see :func:`resolve`."""
    r = resolve(gpu, calibration)
    return r.params, r.note


def fit_params(predict: Callable[[ModelParams], np.ndarray], measured_s: np.ndarray, *,
               start: ModelParams | None = None, free: Sequence[str] | None = None,
               robust_scale: float = 0.05, max_nfev: int | None = None,
               bounds: dict[str, tuple[float, float]] | None = None) -> tuple[ModelParams, dict[str, Any]]:
    """Fit ``free`` parameters inside their ranges by least squares on log(predicted / measured) (scipy
    ``least_squares``, robust ``soft_l1`` loss at ``robust_scale`` log units; 0 = plain least squares).
    ``bounds``: narrower (lower, upper) ranges of some parameters, from measurements (inside their ranges).

    ``predict(params)`` returns predicted seconds for every measurement."""
    from scipy.optimize import least_squares

    p0 = start or ModelParams()
    names = list(free or PARAM_BOUNDS)
    meas = np.asarray(measured_s, dtype=np.float64)
    if meas.size == 0 or np.any(meas <= 0):
        raise FgsimError("calibration needs positive measured times")
    base = p0.as_dict()
    rng = {**PARAM_BOUNDS, **{k: (max(PARAM_BOUNDS[k][0], a), min(PARAM_BOUNDS[k][1], b))
                              for k, (a, b) in (bounds or {}).items()}}
    bad = [k for k, (a, b) in rng.items() if not a < b]
    if bad:
        raise FgsimError(f"fit bounds of {bad[0]}: empty range {rng[bad[0]]}")
    lo = np.array([rng[n][0] for n in names])
    hi = np.array([rng[n][1] for n in names])
    x0 = np.clip(np.array([base[n] for n in names]), lo, hi)
    x0 = np.minimum(np.maximum(x0, lo + 1e-6 * (hi - lo)), hi - 1e-6 * (hi - lo))
    span = hi - lo

    def params_of(z: np.ndarray) -> ModelParams:
        d = dict(base)
        for n, v in zip(names, lo + z * span, strict=True):
            d[n] = float(v)
        return ModelParams(**d)

    def resid(z: np.ndarray) -> np.ndarray:
        pred = predict(params_of(z))
        return np.log(np.maximum(pred, 1e-12) / meas)

    kw: dict[str, Any] = {"loss": "soft_l1", "f_scale": robust_scale} if robust_scale > 0 else {}
    res = least_squares(resid, (x0 - lo) / span, bounds=(0.0, 1.0), diff_step=1e-3,
                        max_nfev=max_nfev or 60 * len(names), xtol=1e-8, ftol=1e-8, **kw)
    best = params_of(res.x)
    pred = predict(best)
    ape = np.abs(pred / meas - 1.0) * 100
    return best, {"n": int(meas.size), "mape": float(ape.mean()), "max_ape": float(ape.max()),
                  "median_ape": float(np.median(ape)), "cost": float(res.cost), "free": names, "nfev": int(res.nfev),
                  "status": int(res.status), "loss": kw.get("loss", "linear"),
                  "at_bound": [n for n, z in zip(names, res.x, strict=True) if z < 1e-3 or z > 1 - 1e-3]}


def new_calibration(gpu: str, params: ModelParams, fit: dict[str, Any], device: dict[str, Any],
                    env: dict[str, Any], *, inputs: list[dict[str, Any]], resources: dict[str, dict[str, int]],
                    commit: str, transfer: dict[str, Any] | None = None, source_digest: str = "",
                    gpu_properties: dict[str, dict[str, Any]] | None = None) -> Calibration:
    """A Calibration record for ``gpu`` (its architecture read from the GPU file): ``commit`` / ``source_digest``
    name the measured code (from the measurement rows); the fitting code's are recorded as ``fitted_with``."""
    from fgsim.provenance import git_commit
    from fgsim.provenance import source_digest as digest_here

    g = load_gpu(gpu, measured=False)
    return Calibration(gpu=g.name, arch=g.arch, params=params,
                       created=datetime.now(UTC).isoformat(timespec="seconds"), device=device, env=env,
                       fit=fit, inputs=inputs, resources=resources, commit=commit, transfer=transfer or {},
                       source_digest=source_digest, fitted_with={"commit": git_commit(),
                                                                 "source_digest": digest_here()},
                       gpu_properties=dict(gpu_properties or {}))


def _runs_rcp_row_end(row: Mapping[str, str]) -> bool:
    """Whether a measured kernel row ran a Gluon row end of the reciprocal + TMA bulk-store path
    (:func:`fgsim.model.gluon.row_end_path`; its ``launch_extra``)."""
    from fgsim.model.gluon import row_end_path
    from fgsim.validation.report import row_config

    try:
        cfg = row_config(row)
        return cfg.extra.get("impl") == "gluon" and row_end_path(cfg) == "rcp"
    except (FgsimError, KeyError, ValueError):
        return False


def fit_rows(rows: Sequence[dict[str, str]], gpu_name: str, *, start: ModelParams | None = None,
             resources: dict[str, dict[str, int]] | None = None, free: Sequence[str] | None = None,
             max_nfev: int | None = None, gpu_properties: dict[str, float] | None = None,
             bounds: dict[str, tuple[float, float]] | None = None) -> tuple[ModelParams, dict[str, Any]]:
    """Fit the parameters to measured calibration rows of ``gpu_name``: kernel rows (``kind`` kernel or empty)
    and microbenchmark rows (``kind`` micro, priced by :mod:`fgsim.calibrate_micro`). The GPU is its description
    file with ``gpu_properties`` (measured by the same calibration) replacing spec values, never the committed
    calibration's measurements (a refit depends on its inputs only)."""
    from fgsim.calibrate_micro import predict_micro
    from fgsim.validation.report import CountsCache, predict_rows

    bad = [r["case_id"] for r in rows if r.get("split") != "calib"]
    if bad:
        raise FgsimError(f"calibration fits calibration rows only; got split != calib for {bad[:3]}")
    krows = [r for r in rows if (r.get("kind") or "kernel") == "kernel"]
    mrows = [r for r in rows if r.get("kind") == "micro"]
    if len(krows) < 8:
        raise FgsimError(f"only {len(krows)} calibration kernel rows: too few to calibrate")
    from fgsim.hardware import with_measured

    props = dict(gpu_properties or {})
    gpu = with_measured(load_gpu(gpu_name, measured=False), props)
    meas = np.array([float(r["measured_ms"]) * 1e-3 for r in krows + mrows])
    cache = CountsCache()
    res = resources or {}

    def predict(p: ModelParams) -> np.ndarray:
        a = predict_rows(krows, gpu=gpu_name, params=p, resources=res, cache=cache, gpu_properties=props)
        b = np.array([predict_micro(r, gpu, p) for r in mrows])
        return np.concatenate([a, b])

    # session 15: row_cycles_rcp prices the reciprocal + TMA bulk-store row end; without a calibration row that ran
    # one it is not identified: held equal to row_cycles (every prediction as before), not fitted
    names = [n for n in (free if free is not None else PARAM_BOUNDS)]
    tied = not any(_runs_rcp_row_end(r) for r in krows)
    if tied and "row_cycles_rcp" in names:
        names.remove("row_cycles_rcp")

    def predict_tied(p: ModelParams) -> np.ndarray:
        return predict(p.replace(row_cycles_rcp=p.row_cycles) if tied else p)

    params, fit = fit_params(predict_tied, meas, start=start, free=names, max_nfev=max_nfev, bounds=bounds)
    if tied:
        params = params.replace(row_cycles_rcp=params.row_cycles)
        fit["tied"] = {"row_cycles_rcp": "row_cycles (no calibration row ran a reciprocal + TMA bulk-store row end)"}
    pred = predict(params)
    ape = np.abs(pred / meas - 1) * 100
    kinds = np.array([r["kernel"] for r in krows] + ["micro:" + r.get("micro", "") for r in mrows])
    fit["per_kind"] = {k: {"n": int((kinds == k).sum()), "mape": float(ape[kinds == k].mean()),
                           "max_ape": float(ape[kinds == k].max())} for k in sorted(set(kinds))}
    return params, fit
