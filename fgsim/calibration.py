"""Calibration files: fitted model parameters for one GPU, and how an uncalibrated GPU gets parameters.

File format (JSON, ``fgsim/data/calibrations/<gpu>.json``)::

    {"format": "fgsim-calibration", "version": 1, "gpu": "h200", "arch": "hopper", "created": "...",
     "device": {"name": ..., "sm_clock_mhz": ..., "mem_clock_mhz": ..., "driver": ...},
     "env": {"torch": ..., "triton": ..., "cuda": ..., "fgsim": ...},
     "params": {<ModelParams fields>}, "fit": {"n": ..., "mape": ..., "max_ape": ..., "cost": ...},
     "measurements": [{"case": {...}, "kernel": ..., "config": {...}, "measured_ms": ...}, ...]}

Parameters are in SM cycles or dimensionless efficiencies, so they transfer to another GPU of the same
architecture through that GPU's spec file (clock, SMs, bandwidths): "spec ratios".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fgsim.costmodel import PARAM_BOUNDS, ModelParams, param_bounds
from fgsim.errors import FgsimError
from fgsim.hardware import GPU, load_gpu

CAL_DIR = Path(__file__).parent / "data" / "calibrations"
CAL_PATH_ENV = "FGSIM_CALIBRATION_PATH"
FORMAT = "fgsim-calibration"
VERSION = 1
UNCALIBRATED = "uncalibrated: using spec-derived parameters"


@dataclass(frozen=True)
class Calibration:
    gpu: str
    arch: str
    params: ModelParams
    created: str
    device: dict[str, Any]
    env: dict[str, Any]
    fit: dict[str, Any]
    measurements: list[dict[str, Any]]
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "gpu": self.gpu, "arch": self.arch, "created": self.created,
                "device": self.device, "env": self.env, "params": self.params.as_dict(), "fit": self.fit,
                "measurements": self.measurements}


def _cal_dirs() -> list[Path]:
    from fgsim.hardware import search_dirs

    return search_dirs(CAL_DIR, CAL_PATH_ENV)


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read and check a calibration file (FgsimError naming the file and the bad field)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise FgsimError(f"{p}: cannot read calibration ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise FgsimError(f"{p}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FgsimError(f"{p}: not an fgsim calibration file (field 'format' must be '{FORMAT}')")
    if data.get("version") != VERSION:
        raise FgsimError(f"{p}: unsupported calibration version {data.get('version')!r} (expected {VERSION})")
    for key, typ in (("gpu", str), ("arch", str), ("params", dict)):
        if not isinstance(data.get(key), typ):
            raise FgsimError(f"{p}: missing or invalid field '{key}'")
    params = ModelParams.from_dict(data["params"], where=str(p))
    return Calibration(gpu=data["gpu"].lower(), arch=data["arch"].lower(), params=params,
                       created=str(data.get("created", "")), device=dict(data.get("device") or {}),
                       env=dict(data.get("env") or {}), fit=dict(data.get("fit") or {}),
                       measurements=list(data.get("measurements") or []), path=str(p))


def save_calibration(cal: Calibration, path: str | os.PathLike[str]) -> Path:
    """Write ``cal`` as JSON (atomically); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(cal.to_json(), indent=1) + "\n")
    os.replace(tmp, p)
    return p


def available_calibrations() -> dict[str, Path]:
    """GPU name → calibration file (user directories override built-ins)."""
    out: dict[str, Path] = {}
    for d in _cal_dirs():
        if d.is_dir():
            for f in sorted(d.glob("*.json")):
                out[f.stem.lower()] = f
    return out


def resolve_params(gpu: GPU, calibration: str | os.PathLike[str] | None = None) -> tuple[ModelParams, str]:
    """Model parameters for ``gpu`` and a one-line note of where they came from.

    Order: an explicit calibration file; the GPU's own calibration; a calibrated GPU of the same architecture
    (parameters transfer through spec ratios); any calibrated GPU; spec-derived priors ("uncalibrated").
    """
    if calibration is not None:
        cal = load_calibration(calibration)
        note = f"calibration {cal.path} ({cal.gpu}, {cal.created[:10]})"
        if cal.gpu != gpu.name:
            note += f"; applied to {gpu.name} through spec ratios"
        return cal.params, note
    cals = available_calibrations()
    if gpu.name in cals:
        cal = load_calibration(cals[gpu.name])
        return cal.params, f"calibrated on {cal.gpu} ({cal.created[:10]})"
    loaded = []
    for _name, path in cals.items():
        cal = load_calibration(path)
        loaded.append(cal)
    same = [c for c in loaded if c.arch == gpu.arch]
    if same:
        c = same[0]
        return c.params, (f"no calibration for {gpu.name}: using {c.gpu}'s calibration scaled by spec ratios "
                          f"(same architecture, {gpu.arch})")
    if loaded:
        c = loaded[0]
        return c.params, (f"no calibration for {gpu.name}: using {c.gpu}'s calibration ({c.arch}) scaled by spec "
                          f"ratios; different architecture ({gpu.arch}), expect larger errors")
    return ModelParams(), UNCALIBRATED


def fit_params(predict: Callable[[ModelParams], np.ndarray], measured_s: np.ndarray, *,
               start: ModelParams | None = None, free: Sequence[str] | None = None,
               prior_weight: float = 0.02, robust_scale: float = 0.05) -> tuple[ModelParams, dict[str, Any]]:
    """Fit ``free`` parameters by least squares on log(predicted / measured) (scipy ``least_squares``).

    ``predict(params)`` returns predicted seconds for every measurement. A weak pull toward ``start``
    (``prior_weight`` per log-unit) keeps parameters the benchmarks do not constrain at their priors.
    The loss is robust (scipy ``soft_l1``, ``robust_scale`` in log units, about 5 %): a measurement disturbed
    by a host stall or a clock dip (2x on a few tiny calls, see validation/REPORT.md) does not drag the fit;
    ``robust_scale=0`` gives plain least squares.
    """
    from scipy.optimize import least_squares

    p0 = start or ModelParams()
    names = list(free or PARAM_BOUNDS)
    meas = np.asarray(measured_s, dtype=np.float64)
    if meas.size == 0 or np.any(meas <= 0):
        raise FgsimError("calibration needs positive measured times")
    base = p0.as_dict()
    for n in names:
        base.setdefault(n, 1.0)  # a new tile_scale entry starts at 1
    lo = np.array([param_bounds(n)[0] for n in names])
    hi = np.array([param_bounds(n)[1] for n in names])
    scale = np.maximum(np.abs(np.array([base[n] for n in names])), 1e-3)
    x0 = np.clip(np.array([base[n] for n in names]), lo, hi) / scale

    def params_of(x: np.ndarray) -> ModelParams:
        d = dict(base)
        for n, v in zip(names, x * scale, strict=True):
            d[n] = float(v)
        return ModelParams.from_dict(d, where="fit")

    def resid(x: np.ndarray) -> np.ndarray:
        pred = predict(params_of(x))
        r = np.log(np.maximum(pred, 1e-12) / meas)
        return np.concatenate([r, prior_weight * (x - x0)])

    kw: dict[str, Any] = {"loss": "soft_l1", "f_scale": robust_scale} if robust_scale > 0 else {}
    res = least_squares(resid, x0, bounds=(lo / scale, hi / scale), x_scale="jac", diff_step=1e-3,
                        max_nfev=200 * len(names), xtol=1e-10, ftol=1e-10, **kw)
    best = params_of(res.x)
    pred = predict(best)
    ape = np.abs(pred / meas - 1.0) * 100
    return best, {"n": int(meas.size), "mape": float(ape.mean()), "max_ape": float(ape.max()),
                  "median_ape": float(np.median(ape)), "cost": float(res.cost), "free": names, "nfev": int(res.nfev),
                  "status": int(res.status), "loss": kw.get("loss", "linear")}


def new_calibration(gpu: str, params: ModelParams, fit: dict[str, Any], device: dict[str, Any],
                    env: dict[str, Any], measurements: list[dict[str, Any]]) -> Calibration:
    """A Calibration record for ``gpu`` (its architecture read from the GPU file)."""
    g = load_gpu(gpu)
    return Calibration(gpu=g.name, arch=g.arch, params=params,
                       created=datetime.now(UTC).isoformat(timespec="seconds"), device=device, env=env,
                       fit=fit, measurements=measurements)
