"""The library holds the CPU kernels four times (DEFAULT, AVX2, AVX512,
AVX512BF16) and picks one at run time. Code compiled for AVX2 or AVX512 must
run only when that build is picked; anything else in the library must run on
any x86-64 CPU, and the BF16 instructions only in the AVX512BF16 build.

Checked on the disassembly: no function whose name does not carry an ISA
(ATen's CPU_CAPABILITY namespaces, AVX2 / AVX512, which template arguments
carry too) may contain AVX, AVX512 or BMI2 instructions. That catches what the
per-ISA builds can leak:
- a dynamic initializer of an ISA file (runs when the library loads, on any
  CPU: the kernel tables were built that way until they became constexpr);
- an inline helper outside the ISA namespaces, compiled in an ISA file, whose
  copy the linker kept for every caller (the ODR clash that vec_math.h's
  detail::CPU_CAPABILITY avoids).

Also checked there: the kernel files are built with -falign-loops=64
(csrc/cpu/isa_flags.txt), so that a short inner loop does not straddle two
64-byte fetch windows (benchmarks/RESULTS.md, AVX2 section).
"""

import platform
import re
import shutil
import subprocess

import pytest

import artderiv

FUNCTION = re.compile(r"^[0-9a-f]+ <(.*)>:$")
INSTRUCTION = re.compile(r"^\s*(?P<address>[0-9a-f]+):\s+(?P<mnemonic>[a-z][a-z0-9]*)\s*(?P<operands>.*)$")
# ATen's ISA namespaces (at::vec::AVX2::, artderiv::cpu::AVX512::, also inside
# template arguments). Case-sensitive on purpose: the initializer of
# activation_kernels_avx2.cpp is named after the file and must be checked.
ISA_NAME = re.compile(r"\b(AVX2|AVX512|AVX512BF16)::")
# VEX/EVEX-encoded instructions all start with "v" in AT&T syntax, AVX512 mask
# instructions with "k". Then the non-VEX ones that the ISA flags allow:
# BMI2 (-mbmi2), popcnt and crc32 (SSE4.2, implied by -mavx2), fisttp (SSE3).
NON_VEX = {"shlx", "shrx", "sarx", "rorx", "pdep", "pext", "mulx", "bzhi", "popcnt",
           "crc32b", "crc32w", "crc32l", "crc32q", "fisttp", "fisttps", "fisttpl", "fisttpll"}


def is_extended(mnemonic: str, operands: str) -> bool:
    return (mnemonic.startswith(("v", "k")) or mnemonic in NON_VEX
            or re.search(r"%[yz]mm\d|%xmm(1[6-9]|2\d|3[01])\b", operands) is not None)


def first_instructions(disassembly: str, wanted) -> dict:
    """{function: its first instruction line for which wanted(function, insn) holds}."""
    found, function = {}, None
    for line in disassembly.splitlines():
        header = FUNCTION.match(line)
        if header:
            function = header.group(1)
            continue
        insn = INSTRUCTION.match(line)
        if insn and function is not None and function not in found and wanted(function, insn):
            found[function] = line.strip()
    return found


def extended_outside_isa_code(disassembly: str) -> dict:
    """{function: first offending instruction} for functions without an ISA in their name."""
    return first_instructions(disassembly, lambda function, insn: not ISA_NAME.search(function)
                              and is_extended(insn["mnemonic"], insn["operands"]))


@pytest.fixture(scope="module")
def disassembly() -> str:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("x86-64 only: other CPUs have a single kernel build")
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("no objdump (binutils)")
    done = subprocess.run([objdump, "-d", "--no-show-raw-insn", "-C", artderiv.library_path()],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    functions = sum(1 for line in done.stdout.splitlines() if FUNCTION.match(line))
    isa_functions = sum(1 for line in done.stdout.splitlines()
                        if FUNCTION.match(line) and ISA_NAME.search(line))
    assert functions > 1000 and isa_functions > 100, (
        f"{functions} functions, {isa_functions} of them ISA-named: no symbols (a stripped library?)")
    return done.stdout


def test_only_isa_named_code_uses_avx_instructions(disassembly):
    leaks = extended_outside_isa_code(disassembly)
    assert not leaks, "AVX/BMI2 code outside the ISA builds (built with -march=native or similar?):\n" + "\n".join(
        f"{name[:160]}: {insn}" for name, insn in list(leaks.items())[:20])


def test_the_check_sees_an_initializer_with_avx_code():
    # What the AVX512 file's dynamic initializer compiled to before the
    # kernel tables became constexpr.
    before = """
000000000001a6c0 <_GLOBAL__sub_I_activation_kernels_avx512.cpp>:
   1a6c0:	push   %rbx
   1a6fc:	vmovq  %rcx,%xmm0
   1a716:	ret
0000000000030000 <artderiv::cpu::AVX512::forward(artderiv::cpu::Operands const&)>:
   30000:	vmovups %zmm0,(%rdi)
0000000000040000 <artderiv::resolve_save(int)>:
   40000:	shlx   %rdi,%rax,%rax
0000000000050000 <artderiv::check_input(int) [clone .cold]>:
   50000:	popcnt %rdi,%rax
0000000000060000 <artderiv::catalog_json()>:
   60000:	movsd  (%rdi),%xmm0
   60004:	lock cmpxchg %rdx,(%rdi)
"""
    leaks = extended_outside_isa_code(before)
    assert set(leaks) == {"_GLOBAL__sub_I_activation_kernels_avx512.cpp", "artderiv::resolve_save(int)",
                          "artderiv::check_input(int) [clone .cold]"}


# Conditional jumps only: a loop closes with one, while an unconditional jmp
# may go back to shared setup or return code.
BRANCH = re.compile(r"^\s*([0-9a-f]+):\s+j(?!mp)[a-z]+\s+([0-9a-f]+) <")
FLOAT_FORWARD_BLOCK = re.compile(r"artderiv::cpu::(AVX2|AVX512|AVX512BF16)::forward_block<artderiv::(\w+), float>\(")


def loop_heads(disassembly: str, name: re.Pattern) -> dict:
    """{function: address of its main loop, None if it has none} for the
    functions whose name matches: the lowest target of a backward conditional
    jump (the code after the loop, the tail and the return path, only jumps
    back to higher addresses)."""
    heads, function, start = {}, None, 0
    for line in disassembly.splitlines():
        header = FUNCTION.match(line)
        if header:
            function = header.group(1) if name.search(header.group(1)) else None
            start = int(line.split()[0], 16)
            if function is not None:
                heads[function] = None
            continue
        jump = BRANCH.match(line)
        if function is not None and jump:
            source, target = int(jump.group(1), 16), int(jump.group(2), 16)
            if start <= target < source:
                heads[function] = target if heads[function] is None else min(heads[function], target)
    return heads


def test_kernel_loops_start_on_64_byte_boundaries(disassembly):
    heads = loop_heads(disassembly, FLOAT_FORWARD_BLOCK)
    isas = {FLOAT_FORWARD_BLOCK.search(f).group(1) for f in heads}
    assert len(heads) >= 20 and isas == {"AVX2", "AVX512", "AVX512BF16"}, (
        f"{len(heads)} float forward blocks found, ISAs {isas}")
    no_loop = sorted(f for f, a in heads.items() if a is None)
    assert not no_loop, f"no loop found in: {no_loop[:5]}"
    # Without -falign-loops=64, GCC aligns loops to 16 bytes: in the build
    # before the flag, 8 of these 40 loops sat on a 64-byte boundary.
    misplaced = {f: hex(a) for f, a in heads.items() if a % 64}
    assert not misplaced, f"{len(misplaced)} of {len(heads)} loops not 64-byte aligned: {misplaced}"


CLAMPING_FORWARD_BLOCK = re.compile(
    r"artderiv::cpu::(AVX2|AVX512|AVX512BF16)::forward_block<artderiv::(Relu|Relu6|Hardtanh), (float|double)>\(")


def loop_lines(disassembly: str, name: re.Pattern) -> dict:
    """{function: instruction lines of its main loop} for the functions whose
    name matches: from the head that loop_heads finds to the first
    conditional jump back to it."""
    heads = loop_heads(disassembly, name)
    loops, function = {}, None
    for line in disassembly.splitlines():
        header = FUNCTION.match(line)
        if header:
            function = header.group(1) if heads.get(header.group(1)) is not None else None
            continue
        insn = INSTRUCTION.match(line)
        if function is None or insn is None or int(insn["address"], 16) < heads[function]:
            continue
        loops.setdefault(function, []).append(line)
        jump = BRANCH.match(line)
        if jump and int(jump.group(2), 16) == heads[function]:
            function = None  # the loop is closed; ignore the rest
    return loops


def loop_instructions(disassembly: str, name: re.Pattern) -> dict:
    """{function: mnemonics of its main loop} (see loop_lines)."""
    return {f: [INSTRUCTION.match(l)["mnemonic"] for l in lines]
            for f, lines in loop_lines(disassembly, name).items()}


def test_clamping_forwards_are_one_max_or_min_per_vector(disassembly):
    # relu is x < 0 ? 0 : x, which maxps(0, x) computes, NaN and -0.0
    # included (math::clamp_min, as torch.relu). Written with select(), it
    # compiled to a compare, an integer compare and an and-not: 3 instructions
    # where torch.relu has 1, and about 10% slower than torch on data from L3
    # (benchmarks/RESULTS.md, AVX2 section).
    loops = loop_instructions(disassembly, CLAMPING_FORWARD_BLOCK)
    assert len(loops) == 18, sorted(loops)  # {AVX2, AVX512, AVX512BF16} x {relu, relu6, hardtanh} x {float, double}
    for function, mnemonics in loops.items():
        selects = [m for m in mnemonics if m.startswith(("vcmp", "vpcmp", "vblendv", "vpblend", "vpternlog"))]
        assert not selects, f"{function[:120]}: {selects} in its loop {mnemonics}"
        wanted = ("vmax",) if "Relu," in function else ("vmax", "vmin")  # relu6, hardtanh: both bounds
        missing = [w for w in wanted if not any(m.startswith(w) for m in mnemonics)]
        assert not missing, f"{function[:120]}: no {missing} in {mnemonics}"


def test_step_forward_is_a_compare_and_an_and(disassembly):
    # x > threshold ? 1 : 0 (math::select_or_zero): the compare's mask AND 1.0.
    # select()'s blendv against a zero compiled to the compare, an integer
    # compare that rebuilt the mask from its sign bits, and the AND.
    loops = loop_instructions(disassembly, re.compile(
        r"artderiv::cpu::(AVX2|AVX512|AVX512BF16)::forward_block<artderiv::Step, (float|double)>\("))
    assert len(loops) == 6, sorted(loops)
    for function, mnemonics in loops.items():
        # Per vector (the loop does a pack of several) at most the compare and
        # one AND (a compiler may fold the AND into a zero-masked AVX512 move);
        # never the mask rebuilt from its sign bits.
        vector_ops = [m for m in mnemonics if m.startswith(("vcmp", "vpcmp", "vblend", "vpblend", "vand", "vpand",
                                                            "vpternlog"))]
        rebuilt = [m for m in vector_ops if m.startswith(("vpcmp", "vblend", "vpblend", "vpternlog"))]
        compares = [m for m in vector_ops if m.startswith("vcmp")]
        assert vector_ops and vector_ops[0].startswith("vcmp") and len(vector_ops) <= 2 * len(compares), (
            f"{function[:120]}: {mnemonics}")
        assert not rebuilt, f"{function[:120]}: {mnemonics}"


def test_backward_gate_is_a_compare_and_an_and(disassembly):
    # grad * d, or +0 where d == 0 (math::gate): the mask of d != 0 AND the
    # product. Written as blendv(grad * d, 0, d == 0), it compiled to the
    # compare, an integer compare that rebuilt the mask (AVX2 vpcmpgtd, AVX512
    # vpcmpeqd) and an and-not or masked move. Atan and fast_sigmoid have no
    # select of their own, so every mask operation in their loops is the gate's.
    loops = loop_instructions(disassembly, re.compile(
        r"artderiv::cpu::(AVX2|AVX512|AVX512BF16)::backward_(half_)?block<artderiv::(Atan|FastSigmoid), false, true, "
        r"(float|double|c10::Half|c10::BFloat16)>\("))
    assert len(loops) == 24, sorted(loops)  # {AVX2, AVX512, AVX512BF16} x {atan, fast_sigmoid} x 4 dtypes
    for function, mnemonics in loops.items():
        rebuilt = [m for m in mnemonics if m.startswith(("vpcmp", "vblendv"))]
        assert any(m.startswith("vcmpneq") for m in mnemonics) and not rebuilt, f"{function[:120]}: {mnemonics}"


# Instructions that move values across 128-bit lanes (vpmovzxwd from a
# 128-bit source into a 256-bit register counts: it spreads one lane over two).
CROSS_LANE = ("vperm", "vextract", "vinsert", "vpmovzx", "vpmovsx", "vshuff", "vshufi")
BFLOAT16_HALF_BLOCK = re.compile(r"artderiv::cpu::(AVX2|AVX512|AVX512BF16)::\w+_half_block<[^()]*c10::BFloat16>\(")


def test_bfloat16_blocks_widen_and_narrow_within_lanes(disassembly):
    # HalfConvert<BFloat16> (csrc/cpu/half_io.h): one unpack per float vector
    # in, one vpackusdw per two out. ATen's convert_to_float / convert_from_float
    # keep the array order with an extract, two vpmovzxwd and a vpermq; without
    # them relu's bfloat16 forward loop took 37% less time on data in L1 (AMD
    # EPYC, benchmarks/block_loops.cpp). The AVX512BF16 build rounds two
    # vectors with one vcvtne2ps2bf16, whose output one vpermq puts back in
    # lane order (vpackusdw stays, outside the loop, for pairs holding a subnormal).
    loops = loop_instructions(disassembly, BFLOAT16_HALF_BLOCK)
    isas = {BFLOAT16_HALF_BLOCK.search(f).group(1) for f in loops}
    assert len(loops) > 150 and isas == {"AVX2", "AVX512", "AVX512BF16"}, f"{len(loops)} loops, ISAs {isas}"
    allowed = {"AVX2": (), "AVX512": (), "AVX512BF16": ("vpermq",)}
    crossing = {f: [m for m in ms if m.startswith(CROSS_LANE) and m not in allowed[BFLOAT16_HALF_BLOCK.search(f).group(1)]]
                for f, ms in loops.items()}
    crossing = {f[:120]: c for f, c in crossing.items() if c}
    assert not crossing, f"{len(crossing)} of {len(loops)} bfloat16 loops cross lanes: {list(crossing.items())[:3]}"
    forward = {f: ms for f, ms in loops.items() if "::forward_half_block<" in f}
    assert len(forward) >= 60  # 20 activations, 3 ISAs
    for function, mnemonics in forward.items():
        narrow = {"vcvtne2ps2bf16", "vpermq"} if "AVX512BF16::" in function else {"vpackusdw"}
        assert {"vpunpcklwd", "vpunpckhwd"} | narrow <= set(mnemonics), f"{function[:120]}: {mnemonics}"


# AVX512-BF16 instructions (the AVX512 CPUs before Cooper Lake lack them).
BF16_INSTRUCTION = ("vcvtne2ps2bf16", "vcvtneps2bf16", "vdpbf16ps")


def test_bf16_instructions_only_in_the_avx512bf16_build(disassembly):
    # That build's own CPU_CAPABILITY namespace keeps its inline code (ATen's
    # vector types and the kernels' templates) out of the AVX512 build's, which
    # runs on AVX512 CPUs without BF16: a shared name would let the linker keep
    # one copy for both.
    found = first_instructions(disassembly, lambda function, insn: insn["mnemonic"] in BF16_INSTRUCTION)
    assert found, "no BF16 instruction at all: is the AVX512BF16 build in the library?"
    outside = {f[:140]: m for f, m in found.items() if "AVX512BF16::" not in f}
    assert not outside, f"BF16 instructions outside the AVX512BF16 build: {list(outside.items())[:5]}"


def test_loop_heads_finds_the_loop_not_the_tail():
    # forward_block<Relu, float> (AVX2) as GCC 12 compiled it before
    # -falign-loops=64 (signature shortened, instructions left out): the loop
    # at 12b330, then the tail jumping back to 12b35a, and a jmp further up.
    before = """
000000000012b310 <void artderiv::cpu::AVX2::forward_block<artderiv::Relu, float>(float const*, float*, long)>:
  12b310:	cmp    $0x7,%rdx
  12b314:	jle    12b3c8 <void artderiv::cpu::AVX2::forward_block<artderiv::Relu, float>(float const*, float*, long)+0xb8>
  12b330:	vmovups -0x20(%rdi,%rax,4),%ymm5
  12b353:	jge    12b330 <void artderiv::cpu::AVX2::forward_block<artderiv::Relu, float>(float const*, float*, long)+0x20>
  12b35a:	vzeroupper
  12b35d:	ret
  12b3c8:	jmp    12b35a <void artderiv::cpu::AVX2::forward_block<artderiv::Relu, float>(float const*, float*, long)+0x4a>
  12b3d0:	jmp    12b310 <void artderiv::cpu::AVX2::forward_block<artderiv::Relu, float>(float const*, float*, long)>
0000000000130000 <void artderiv::cpu::AVX2::forward_block<artderiv::Relu, double>(double const*, double*, long)>:
  130010:	jne    130000 <void artderiv::cpu::AVX2::forward_block<artderiv::Relu, double>(double const*, double*, long)>
"""
    heads = loop_heads(before, FLOAT_FORWARD_BLOCK)
    assert heads == {"void artderiv::cpu::AVX2::forward_block<artderiv::Relu, float>(float const*, float*, long)": 0x12b330}


# Every block function of the kernels (csrc/cpu/activation_kernels.h), any ISA.
BLOCK = re.compile(r"artderiv::cpu::(AVX2|AVX512|AVX512BF16|DEFAULT)::\w+_block<")
CALL = re.compile(r"^\s*[0-9a-f]+:\s+call\s+[0-9a-f]+ <(?P<target>.*)>")


def test_block_loops_call_no_formula(disassembly):
    # The formulas, the Lanes operators and the exp of vec_math.h must be
    # inlined into the loops. GCC stops inlining in a large translation unit
    # (its unit-growth limits), and the per-ISA kernel file is one: with the
    # formulas only `inline`, logistic and Atan::eval became calls that passed
    # each pack through memory, and relu:sigmoid's bfloat16 backward took twice
    # as long through the op as the same block in the small block_loops.cpp
    # (benchmarks/RESULTS.md). Calls to the vector math library are expected
    # (Sleef: the float tanh, erf, expm1, log1p and every double function; libm
    # in the DEFAULT build); a call to artderiv's or ATen's vector code is not.
    loops = loop_lines(disassembly, BLOCK)
    assert len(loops) > 500, f"only {len(loops)} block loops found"
    calls = {f: [m["target"] for m in map(CALL.match, lines) if m] for f, lines in loops.items()}
    assert any("Sleef_" in t for ts in calls.values() for t in ts), "the check sees no call at all"
    bad = {f[:140]: sorted({t[:100] for t in ts if "artderiv::" in t or "at::vec::" in t})
           for f, ts in calls.items()}
    bad = {f: ts for f, ts in bad.items() if ts}
    assert not bad, f"{len(bad)} block loops call out: " + "\n".join(f"{f}: {t}" for f, t in list(bad.items())[:8])
