"""What the split-hidden kernels cost per time step, read from their compiled code: no GPU needed.

Compiles `triton_split`'s forward and backward kernels for sm_90a (Triton's own ptxas and
nvdisasm, from its wheel) at the launch shape `triton_lstm.split_config` picks, with the K chunk
`triton_split.k_chunk` picks for each direction, and with the 16-divisibility hints Triton's
launcher gives the pointers and B, H, P at such shapes. For each kernel it prints registers,
spill bytes and shared memory, and for the time loop, per step and thread: SASS instructions,
tensor-core MMA instructions and barriers within the program (``BAR``), the K loop counted as
often as it runs. Counts, not times: the GPU measures those (`bench/kernels.py`).

    python bench/sass_count.py                   # plain cell, H = 128-1024, TF32 and bf16
    python bench/sass_count.py --variants        # every variant: registers, spills, memory
    python bench/sass_count.py --units 256 --batch 256
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

VARIANTS = {
    "plain": {},
    "mask": dict(KEEP_C=2, KEEP_H=2, MASKED=True),  # the keeps from the mask itself
    "peephole": dict(PEEPHOLE=True),
    "layer_norm": dict(LAYER_NORM=True),
    "projection": dict(PROJ=True),
    "zoneout": dict(KEEP_C=True, KEEP_H=True),
    "recurrent_dropout": dict(RDROP=True),
    "everything": dict(
        PEEPHOLE=True, LAYER_NORM=True, PROJ=True, RDROP=True, KEEP_C=True, KEEP_H=True, MASKED=True
    ),
    "go_backwards": dict(REVERSE=True),
    "no_backward": dict(SAVE=False),  # a forward under no_grad: no cell states stored
}
OFF = dict.fromkeys([*VARIANTS["everything"], "REVERSE"], False)
INTS = {"B", "T", "H", "P", "S_BEGIN", "S_END"}
INTS |= {f"s_k{w}_{a}" for w in "ch" for a in "btu"}
INTS |= {"s_d_b", "s_d_t", "s_dh_b", "s_dc_b", "s_r_b", "s_sums"}
ALIGNED = {"B", "H", "P", "S_BEGIN", "s_d_b", "s_d_t", "s_dh_b", "s_dc_b", "s_sums"}
ALIGNED |= {f"s_k{w}_{a}" for w in "ch" for a in "btu"}
LOW_PRECISION = (  # bf16 buffers under autocast (layer norm keeps its zx and dz in fp32)
    "p_u", "p_wr", "p_h0", "p_hs", "p_dhs", "p_cs", "p_hd", "p_dzd", "p_dhd", "p_dh_T",
    "p_dc_T", "p_h_last",
)  # fmt: skip
LOW_PRECISION_NO_LN = ("p_zx", "p_dz", "p_dzh", "p_gates", "p_at_first")


def compile_kernel(triton, fn, consts: dict, pointers: dict, warps: int):
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    consts = {k: v for k, v in consts.items() if k in fn.arg_names}
    sig = {}
    for name in fn.arg_names:
        if name in consts:
            sig[name] = "constexpr"
        elif name in INTS:
            sig[name] = "i32"
        elif name in ("p_count", "p_first"):
            sig[name] = "*i32"
        else:
            sig[name] = pointers.get(name, "*fp32")
    attrs = {
        (i,): [["tt.divisibility", 16]]
        for i, name in enumerate(fn.arg_names)
        if name not in consts and (sig[name].startswith("*") or name in ALIGNED)
    }
    src = ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs)
    return triton.compile(
        src, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps, "num_stages": 1}
    )


def disassemble(triton, kernel) -> tuple[list[str], list[tuple[int, int]], dict]:
    """The SASS instructions, the loops (first, last instruction) and ptxas's resource use."""
    tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    ptxas = next(p for p in (tools / "ptxas-blackwell", tools / "ptxas") if p.exists())
    with tempfile.TemporaryDirectory() as tmp:
        ptx, cubin = Path(tmp) / "k.ptx", Path(tmp) / "k.cubin"
        ptx.write_text(kernel.asm["ptx"])
        report = subprocess.run(
            [ptxas, "-arch=sm_90a", "-v", ptx, "-o", cubin], capture_output=True, text=True
        )
        report.check_returncode()
        sass = subprocess.run(
            [tools / "nvdisasm", "-c", cubin], capture_output=True, text=True, check=True
        ).stdout
    used = dict(
        registers=int(re.search(r"Used (\d+) registers", report.stderr).group(1)),
        spill=int(re.search(r"(\d+) bytes spill stores", report.stderr).group(1)),
        shared_kb=kernel.metadata.shared // 1024,
    )
    instructions, labels, loops = [], {}, []
    for line in sass.splitlines():
        if m := re.match(r"\s+/\*[0-9a-f]{4,}\*/\s+(.*?);", line):
            instructions.append(m.group(1))
        elif m := re.match(r"^(\.L_x_\d+):", line):
            labels[m.group(1)] = len(instructions)
    for i, text in enumerate(instructions):
        m = re.search(r"\bBRA\b.*?\((\.L_x_\d+)\)", text)
        if m and labels.get(m.group(1), i + 1) <= i:
            loops.append((labels[m.group(1)], i))
    return instructions, loops, used


def opcode(text: str) -> str:
    return re.sub(r"^@!?U?P\w+\s+", "", text).split()[0].split(".")[0]


def per_step(instructions: list[str], loops: list, trips: int) -> collections.Counter:
    """Opcodes of one step: the time loop (the largest loop with the barrier's atomic) and its
    K loop (nested, not the barrier's wait) counted ``trips`` times in all."""
    ops = [opcode(t) for t in instructions]
    timed = [(a, b) for a, b in loops if "REDG" in ops[a : b + 1] or "RED" in ops[a : b + 1]]
    first, last = max(timed, key=lambda loop: loop[1] - loop[0])
    count = collections.Counter(ops[first : last + 1])
    for a, b in loops:
        if first < a and b < last and "CCTL" not in ops[a : b + 1]:
            for op, n in collections.Counter(ops[a : b + 1]).items():
                count[op] += n * (trips - 1)
    return count


def kernels(tl_mod, split, batch: int, units: int, dtype: str, variant: dict):
    """(direction, kernel function, constexprs, pointer dtypes, warps, trips) for one case."""
    cfg = tl_mod.split_config(batch, units, 132)
    layer_norm = variant.get("LAYER_NORM", False)
    dot = "tf32" if dtype == "fp32" else "low"
    dot_u = "tf32x3" if dot == "tf32" and layer_norm else dot
    pointers = {}
    if dot == "low":
        names = LOW_PRECISION + (() if layer_norm else LOW_PRECISION_NO_LN)
        pointers = dict.fromkeys(names, "*bf16")
    pointers["p_real"] = "*i1"  # the mask: bool
    if variant == VARIANTS["mask"]:  # a mask alone: its keeps are bool too (with zoneout fp32)
        pointers.update(p_keep_c="*i1", p_keep_h="*i1")
    itemsize = 4 if dot == "tf32" else 2
    for direction, fn, k_width in (
        ("forward", split._split_fwd_kernel, units),
        ("backward", split._split_bwd_kernel, units),
    ):
        held, block_k = split.k_chunk(cfg, units, itemsize, dot_u, direction)
        consts = dict(
            GATE_ACT=2, CELL_ACT=1, DOT=dot, DOT_U=dot_u, SYNC=True, PHASES=15, FINISH=True,
            # contiguous gradients of the outputs, h_T and c_T: Triton specializes strides of 1
            DHS=True, s_d_p=1, START_H=True, s_dh_p=1, START_C=True, s_dc_h=1, s_r_t=1,
            RESIDENT=held, BLOCK_B=cfg.block_b, BLOCK_H=cfg.block_h, BLOCK_K=block_k,
            PROGRAMS=split._programs_block(-(-units // cfg.block_h), cfg.block_h),
            **{**OFF, "SAVE": True, **variant},  # SAVE: a training call's forward
        )  # fmt: skip
        consts["BIAS_SUMS"] = not consts["LAYER_NORM"]  # a bias, summed by the kernel
        chunks = 1 if held else -(-k_width // block_k)
        label = "held" if held else f"k{block_k} x{chunks}"
        # a streamed K loop runs once a chunk but the first, whose loads come before it
        yield direction, fn, consts, pointers, cfg.num_warps, max(chunks - 1, 1), label


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", default="128,256,512,1024", help="hidden sizes, comma-separated")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--variants", action="store_true", help="every variant, not the plain cell")
    args = parser.parse_args()
    os.environ.pop("TRITON_INTERPRET", None)  # compiled code, not the interpreter's
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # the default, and no warning
    try:
        import triton
    except ImportError:
        print("triton is not installed (pip install 'lstmkit[dev]'); nothing compiled.")
        return 0
    from rich.console import Console
    from rich.table import Table

    from lstmkit.kernels import triton_lstm as tl_mod
    from lstmkit.kernels import triton_split as split

    tl_mod._triton()
    variants = VARIANTS if args.variants else {"plain": {}}
    table = Table(title=f"Split kernels compiled for sm_90a, B={args.batch}: per step and thread")
    for column in ("H", "dtype", "variant", "kernel", "U", "instructions", "MMA", "BAR"):
        table.add_column(column, justify="right")
    for column in ("registers", "spill B", "shared KB"):
        table.add_column(column, justify="right")
    for units in (int(u) for u in args.units.split(",")):
        for dtype in ("fp32", "bf16"):
            for name, variant in variants.items():
                for direction, fn, consts, pointers, warps, trips, label in kernels(
                    tl_mod, split, args.batch, units, dtype, variant
                ):
                    kernel = compile_kernel(triton, fn, consts, pointers, warps)
                    instructions, loops, used = disassemble(triton, kernel)
                    ops = per_step(instructions, loops, trips)
                    table.add_row(
                        str(units), dtype, name, direction, label, str(sum(ops.values())),
                        str(ops["HMMA"] + ops["HGMMA"]), str(ops["BAR"]),
                        str(used["registers"]), str(used["spill"]), str(used["shared_kb"]),
                    )  # fmt: skip
    Console(width=140).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
