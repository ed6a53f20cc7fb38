"""Mixed precision (``amp``): which dtype, whether a method and a device can train with it.

``amp=true`` trains the shared DCT classifier under ``torch.autocast`` (bfloat16 by default;
``amp_dtype=float16`` on CUDA). The DCT, the first convolution and every loss and score stay in
float32 (``osma_bench.nn.simple_cnn``, ``osma_bench.methods.common``). A method declares support
with the class attribute ``supports_amp = True``; the others refuse ``amp=true``.

On the CPU, PyTorch runs bfloat16 convolutions and matrix products through oneDNN, which has
bfloat16 kernels only for CPUs with AVX-512 (native bfloat16 arithmetic with ``avx512_bf16`` or
AMX; emulated with plain AVX-512) or ARM bf16. Elsewhere (an AVX2-only CPU) autocast falls back to
reference kernels: on the 2-core AVX2 development machine Base and POSE training steps ran 21-30x
slower in bfloat16 than in float32 (per CPU-second, ``benchmarks/bench_train.py``; README,
"Mixed precision"), so ``amp=true`` is refused there with one error line rather than run with a
warning.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

from osma_bench.errors import OsmaError
from osma_bench.hparams import Bool

AMP_DTYPES: dict[str, torch.dtype] = {"bfloat16": torch.bfloat16, "float16": torch.float16}
#: CPU flags (``/proc/cpuinfo`` names) that tell how a CPU runs bfloat16 and wide vectors.
PRECISION_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                   "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16")


def amp_dtype(name: Any) -> torch.dtype:
    """The autocast dtype named by the ``amp_dtype`` hyperparameter; OsmaError for another name."""
    if name not in AMP_DTYPES:
        raise OsmaError(f"amp_dtype must be one of {', '.join(AMP_DTYPES)}, got {name!r}")
    return AMP_DTYPES[name]


def supports_amp(method_cls: type) -> bool:
    """Whether a method class trains under mixed precision (class attribute ``supports_amp``)."""
    return bool(method_cls.supports_amp)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The flags of :data:`PRECISION_FLAGS` this CPU reports (``/proc/cpuinfo``; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in PRECISION_FLAGS if flag in present]
    except OSError:
        pass
    return []


def cpu_bf16_kernels() -> str:
    """How this CPU runs bfloat16 in PyTorch: ``native`` (avx512_bf16 or AMX), ``emulated``
    (oneDNN's AVX-512 or ARM kernels without bf16 arithmetic) or ``none`` (reference kernels).
    The checks are PyTorch's own (private) functions; a PyTorch without them answers ``unknown``."""
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return "none"
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    except (AttributeError, RuntimeError):
        return "unknown"
    if native:
        return "native"
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "native"  # oneDNN's bf16 check on ARM is the bf16 extension itself
    return "emulated"


def describe_cpu() -> dict[str, Any]:
    """The CPU facts a speed or precision figure depends on (for benchmarks and run records)."""
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    return {"name": cpu_name(), "flags": cpu_flags(), "capability": capability, "bf16_kernels": cpu_bf16_kernels()}


#: How ``--set amp=...`` is read before a method's declarations are consulted.
_AMP = Bool("amp", False, "mixed precision")


def check_amp_request(method_cls: type, overrides: dict[str, Any]) -> None:
    """Refuse ``--set amp=true`` for a method that does not support mixed precision (the value is
    text from the command line or already typed)."""
    if "amp" not in overrides or supports_amp(method_cls):
        return
    value = overrides["amp"]
    if not (_AMP.parse(value) if isinstance(value, str) else bool(value)):
        return
    raise OsmaError(f"method {method_cls.name!r} does not support amp=true (mixed precision): only methods "
                    "trained through the shared DCT classifier do (base, pose, openmax, proser, arpl_cs, dias); "
                    "run it without amp")


def check_amp_device(config: dict[str, Any], device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run on ``device`` (None without amp); OsmaError where the device
    cannot run it at a useful speed (see the module docstring)."""
    if not config.get("amp"):
        return None
    dtype = amp_dtype(config.get("amp_dtype", "bfloat16"))
    if device.type == "cuda":
        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise OsmaError(f"amp=true: {torch.cuda.get_device_name(device)} has no bfloat16 support; use "
                            "--set amp_dtype=float16 or amp=false")
        return dtype
    if device.type != "cpu":
        raise OsmaError(f"amp=true is supported on cpu and cuda devices, not {device.type}")
    if dtype != torch.bfloat16:
        raise OsmaError("amp=true on the CPU uses bfloat16; amp_dtype=float16 is for CUDA devices")
    if cpu_bf16_kernels() == "none":
        raise OsmaError(f"amp=true: this CPU ({cpu_name()}, {torch.backends.cpu.get_cpu_capability()}, no AVX-512) "
                        "has no bfloat16 kernels in PyTorch; bfloat16 would run on reference kernels, measured "
                        "21-30x slower than float32 on such a CPU; train in float32 (amp=false), or use a CPU "
                        "with AVX-512 (avx512_bf16 or AMX for native bfloat16) or a GPU")
    return dtype


def describe_precision(config: dict[str, Any], device: torch.device) -> str:
    """One log line on a run's arithmetic precision."""
    if not config.get("amp"):
        return "float32"
    where = (f"cpu, bfloat16 kernels {cpu_bf16_kernels()}" if device.type == "cpu"
             else str(device))
    return (f"{config.get('amp_dtype', 'bfloat16')} autocast ({where}); the DCT, the first "
            "convolution, every loss and the scores in float32")
