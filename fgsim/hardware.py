"""GPU hardware descriptions, loaded from JSON data files (``fgsim/data/gpus/*.json`` plus user files).

A description holds datasheet / microbenchmark constants with their sources; the cost model works in SM
cycles, so every rate here is per SM per clock, and clocks convert cycles to time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgsim.errors import FgsimError

GPU_DIR = Path(__file__).parent / "data" / "gpus"
#: Directories searched for extra GPU files (``:``-separated), in addition to ``GPU_DIR``.
GPU_PATH_ENV = "FGSIM_GPU_PATH"
DTYPES = ("bf16", "fp16", "fp8", "tf32")

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "arch": str,
    "sm_count": int,
    "boost_clock_mhz": (int, float),
    "sustained_clock_mhz": (int, float),
    "tensor_flop_per_clk_per_sm": dict,
    "mufu_exp_per_clk_per_sm": (int, float),
    "hbm_bandwidth_gbs": (int, float),
    "l2_bandwidth_gbs": (int, float),
    "l2_size_mb": (int, float),
    "smem_per_sm_kb": (int, float),
    "smem_per_cta_kb": (int, float),
    "registers_per_sm": int,
    "max_ctas_per_sm": int,
    "max_threads_per_sm": int,
    "sources": dict,
}
_OPTIONAL_DEFAULTS: dict[str, float] = {
    "fp32_flop_per_clk_per_sm": 256.0,
    "smem_bytes_per_clk_per_sm": 128.0,
    "memory_latency_cycles": 650.0,
    "l2_port_bytes_per_clk": 64.0,
    "l1_smem_kb": 256.0,
    "mma_sync_fraction": 0.5,
}
#: Plausible ranges of the GPU file's numbers (far around any GPU): a count or rate outside them is a typo, and an
#: absurd one (an SM count of 10^9, a clock of 10^-300 MHz) would exhaust memory or print meaningless times.
_RANGES: dict[str, tuple[float, float]] = {
    "sm_count": (1, 4096), "max_ctas_per_sm": (1, 1024), "max_threads_per_sm": (32, 1 << 16),
    "registers_per_sm": (1024, 1 << 24), "boost_clock_mhz": (100, 10_000), "sustained_clock_mhz": (100, 10_000),
    "mufu_exp_per_clk_per_sm": (0.1, 4096), "hbm_bandwidth_gbs": (1, 1e6), "l2_bandwidth_gbs": (1, 1e7),
    "l2_size_mb": (0.01, 1e5), "smem_per_sm_kb": (1, 1e5), "smem_per_cta_kb": (1, 1e5),
    "fp32_flop_per_clk_per_sm": (1, 1e5), "smem_bytes_per_clk_per_sm": (1, 1e5), "memory_latency_cycles": (1, 1e5),
    "l2_port_bytes_per_clk": (0.1, 1e5), "l1_smem_kb": (1, 1e5), "mma_sync_fraction": (1e-3, 1.0),
}
#: Architecture features the kernels' launch options need; a GPU file may list its own under "features".
ARCH_FEATURES: dict[str, tuple[str, ...]] = {
    "hopper": ("wgmma", "tma"),
    "blackwell": ("tma",),
    "ampere": (),
    "ada": (),
}


#: GPU file ``arch`` -> CUDA compute architecture (``sm_XY`` without the underscore, as fgattn names it)
SM_ARCH = {"ampere": "sm80", "ada": "sm89", "hopper": "sm90", "blackwell": "sm100"}


@dataclass(frozen=True)
class GPU:
    """One GPU model. Rates are per SM per clock; bandwidths in bytes/s; sizes in bytes."""

    name: str
    full_name: str
    arch: str
    sm_count: int
    boost_clock_mhz: float
    sustained_clock_mhz: float
    tensor_flop_per_clk_per_sm: dict[str, float]
    mufu_exp_per_clk_per_sm: float
    fp32_flop_per_clk_per_sm: float
    smem_bytes_per_clk_per_sm: float
    hbm_bandwidth_gbs: float
    l2_bandwidth_gbs: float
    l2_size_mb: float
    smem_per_sm_kb: float
    smem_per_cta_kb: float
    registers_per_sm: int
    max_ctas_per_sm: int
    max_threads_per_sm: int
    memory_latency_cycles: float
    l2_port_bytes_per_clk: float = 64.0
    l1_smem_kb: float = 256.0
    mma_sync_fraction: float = 0.5
    features: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    path: str = field(default="", compare=False)

    @property
    def clock_hz(self) -> float:
        """Clock used to turn model cycles into seconds (Hz): the sustained tensor-load clock."""
        return self.sustained_clock_mhz * 1e6

    def tensor_flops(self, dtype: str) -> float:
        """Dense tensor-core FLOP per clock per SM for ``dtype`` (FgsimError if the GPU lacks it)."""
        f = float(self.tensor_flop_per_clk_per_sm.get(dtype, 0.0))
        if f <= 0:
            raise FgsimError(f"GPU {self.name} has no {dtype} tensor-core rate in {self.path or 'its description'}")
        return f

    def peak_tflops(self, dtype: str = "bf16") -> float:
        """Dense tensor peak in TFLOP/s at the sustained clock."""
        return self.tensor_flops(dtype) * self.sm_count * self.clock_hz / 1e12

    @property
    def sm_arch(self) -> str:
        """CUDA compute architecture name as fgattn's launch table spells it (``"sm90"`` for Hopper), the key of
        ``fgattn.launch.impl_for_arch``; ``""`` for an architecture fgattn does not name."""
        return SM_ARCH.get(self.arch, "")

    @property
    def has_tma(self) -> bool:
        """Tensor-memory-accelerator copies (Hopper and later)."""
        return "tma" in self.features

    @property
    def has_wgmma(self) -> bool:
        """Warpgroup MMA (Hopper): one warpgroup drives all four tensor cores of the SM."""
        return "wgmma" in self.features

    def with_sms(self, sm_count: int) -> GPU:
        """The same GPU restricted to ``sm_count`` SMs (a green-context SM partition: L2, HBM and clocks shared
        by fewer SMs)."""
        from dataclasses import replace

        if not 1 <= int(sm_count) <= self.sm_count:
            raise FgsimError(f"{self.name}: an SM partition needs 1..{self.sm_count} SMs, got {sm_count}")
        return replace(self, name=f"{self.name}@{int(sm_count)}sm", sm_count=int(sm_count))

    @property
    def hbm_bytes_per_s(self) -> float:
        return self.hbm_bandwidth_gbs * 1e9

    @property
    def l2_bytes_per_s(self) -> float:
        return self.l2_bandwidth_gbs * 1e9

    @property
    def l2_bytes(self) -> float:
        return self.l2_size_mb * 1e6

    def scaled(self, factor: float) -> GPU:
        """A hypothetical GPU with clock and bandwidths multiplied by ``factor`` (for what-if studies)."""
        from dataclasses import replace

        return replace(
            self,
            name=f"{self.name}x{factor:g}",
            boost_clock_mhz=self.boost_clock_mhz * factor,
            sustained_clock_mhz=self.sustained_clock_mhz * factor,
            hbm_bandwidth_gbs=self.hbm_bandwidth_gbs * factor,
            l2_bandwidth_gbs=self.l2_bandwidth_gbs * factor,
        )


def search_dirs(builtin: Path, env_var: str) -> list[Path]:
    """``builtin`` followed by the directories listed in the environment variable ``env_var`` (os.pathsep)."""
    return [builtin, *(Path(p) for p in os.environ.get(env_var, "").split(os.pathsep) if p)]


def _search_dirs() -> list[Path]:
    return search_dirs(GPU_DIR, GPU_PATH_ENV)


def check_range(path: Path | str, key: str, val: float) -> None:
    """FgsimError naming the file and field when ``val`` lies outside :data:`_RANGES` (fields without one pass);
    also for a calibration's measured ``gpu_properties``, which replace the GPU file's values."""
    lo, hi = _RANGES.get(key, (float("-inf"), float("inf")))
    if not lo <= val <= hi:
        raise FgsimError(f"{path}: field '{key}' must be in [{lo:g}, {hi:g}], got {val:g}")


def _parse(path: Path, data: Any) -> GPU:
    if not isinstance(data, dict):
        raise FgsimError(f"{path}: GPU description must be a JSON object")
    for key, typ in _REQUIRED.items():
        if key not in data:
            raise FgsimError(f"{path}: missing field '{key}'")
        val = data[key]
        if isinstance(val, bool) or not isinstance(val, typ):
            raise FgsimError(f"{path}: field '{key}' has the wrong type ({type(val).__name__})")
        if typ is not str and typ is not dict:
            if val <= 0:
                raise FgsimError(f"{path}: field '{key}' must be positive, got {val}")
            check_range(path, key, val)
    tf = data["tensor_flop_per_clk_per_sm"]
    for k, v in tf.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise FgsimError(f"{path}: field 'tensor_flop_per_clk_per_sm.{k}' must be a non-negative number")
        if v > 1e6:
            raise FgsimError(f"{path}: field 'tensor_flop_per_clk_per_sm.{k}' must be at most 1e6, got {v}")
    if float(tf.get("bf16", 0)) <= 0 and float(tf.get("fp16", 0)) <= 0:
        raise FgsimError(f"{path}: field 'tensor_flop_per_clk_per_sm' needs a positive bf16 or fp16 rate")
    extra = {}
    for key, default in _OPTIONAL_DEFAULTS.items():
        val = data.get(key, default)
        if isinstance(val, bool) or not isinstance(val, (int, float)) or val <= 0:
            raise FgsimError(f"{path}: field '{key}' must be a positive number")
        check_range(path, key, val)
        extra[key] = float(val)
    name = data["name"].lower()
    feats = data.get("features", list(ARCH_FEATURES.get(data["arch"].lower(), ())))
    if not isinstance(feats, list) or not all(isinstance(f, str) for f in feats):
        raise FgsimError(f"{path}: field 'features' must be a list of strings")
    return GPU(
        name=name,
        full_name=str(data.get("full_name", name)),
        arch=data["arch"].lower(),
        sm_count=int(data["sm_count"]),
        boost_clock_mhz=float(data["boost_clock_mhz"]),
        sustained_clock_mhz=float(data["sustained_clock_mhz"]),
        tensor_flop_per_clk_per_sm={k: float(v) for k, v in tf.items()},
        mufu_exp_per_clk_per_sm=float(data["mufu_exp_per_clk_per_sm"]),
        hbm_bandwidth_gbs=float(data["hbm_bandwidth_gbs"]),
        l2_bandwidth_gbs=float(data["l2_bandwidth_gbs"]),
        l2_size_mb=float(data["l2_size_mb"]),
        smem_per_sm_kb=float(data["smem_per_sm_kb"]),
        smem_per_cta_kb=float(data["smem_per_cta_kb"]),
        registers_per_sm=int(data["registers_per_sm"]),
        max_ctas_per_sm=int(data["max_ctas_per_sm"]),
        max_threads_per_sm=int(data["max_threads_per_sm"]),
        sources={str(k): str(v) for k, v in data["sources"].items()},
        features=tuple(str(f).lower() for f in feats),
        path=str(path),
        **extra,
    )


def load_gpu_file(path: str | os.PathLike[str]) -> GPU:
    """Load one GPU description file (FgsimError naming the file and field if it is malformed)."""
    from fgsim.fileio import read_json

    p = Path(path)
    return _parse(p, read_json(p, "GPU description"))  # bounded: a device, NaN or deep nesting fails here


def list_gpus() -> list[str]:
    """Names of all GPUs with a description file (built-in and from ``$FGSIM_GPU_PATH``)."""
    names: set[str] = set()
    for d in _search_dirs():
        if d.is_dir():
            names.update(p.stem.lower() for p in d.glob("*.json"))
    return sorted(names)


#: GPU properties a calibration may measure (``fgsim calibrate``'s microbenchmarks) and that then replace the GPU
#: file's spec value for that GPU (the file keeps the spec value for uncalibrated what-ifs)
MEASURED_PROPERTIES = ("l2_port_bytes_per_clk", "mufu_exp_per_clk_per_sm", "fp32_flop_per_clk_per_sm")


def with_measured(gpu: GPU, props: dict[str, float], source: str = "") -> GPU:
    """``gpu`` with measured values of :data:`MEASURED_PROPERTIES` (others ignored); ``source`` goes to the
    GPU's ``sources`` note of each replaced field."""
    from dataclasses import replace

    kw = {k: float(v) for k, v in props.items() if k in MEASURED_PROPERTIES and float(v) > 0}
    if not kw:
        return gpu
    src = dict(gpu.sources)
    for k, v in kw.items():
        src[k] = f"{v:.2f} measured ({source or 'calibration'}); GPU file value {getattr(gpu, k):g}"
    return replace(gpu, sources=src, **kw)


def _measured_for(gpu: GPU) -> tuple[dict[str, float], str]:
    """The measured properties that apply to ``gpu``: its own calibration's; without one, those of a calibrated
    GPU of the same architecture (the SM and L2 design the H100 and H200 share: the L2 -> SM port is a per-SM,
    per-clock property of that design, while memory transfers keep the GPU file's own bandwidths), as
    :func:`fgsim.calibration.resolve` takes that GPU's fitted parameters."""
    from fgsim.calibration import available_calibrations, measured_gpu_properties
    from fgsim.fileio import read_json

    props, src = measured_gpu_properties(gpu.name)
    if props:
        return props, src
    for name, path in available_calibrations().items():
        if name == gpu.name:
            continue
        try:
            arch = read_json(path, "calibration").get("arch")
        except (FgsimError, AttributeError):
            continue
        if arch == gpu.arch:
            props, src = measured_gpu_properties(name)
            if props:
                return props, f"{src}, measured on the {name}: the same {arch} SM and L2 design as the {gpu.name}"
    return {}, ""


def load_gpu(name_or_path: str | os.PathLike[str], measured: bool = True) -> GPU:
    """A GPU by name (``h200``) or by the path of a JSON description file. By name and with ``measured``, the
    properties the GPU's own calibration measured (:data:`MEASURED_PROPERTIES`, the calibration file's
    ``gpu_properties``; for a GPU without one, a calibrated GPU's of the same architecture, e.g. the H200's L2 ->
    SM port for the H100) replace the description's spec values; a file path gives the file as written."""
    s = str(name_or_path)
    if s.endswith(".json") or os.sep in s:
        return load_gpu_file(s)
    key = s.strip().lower()
    for d in reversed(_search_dirs()):  # user directories override built-ins
        p = d / f"{key}.json"
        if p.is_file():
            g = load_gpu_file(p)
            if measured:
                props, src = _measured_for(g)
                g = with_measured(g, props, src)
            return g
    raise FgsimError(f"unknown GPU '{s}'; known GPUs: {', '.join(list_gpus())} (or pass a .json file)")
