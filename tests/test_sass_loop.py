"""The tile loop's SASS figures (fgsim.validation.sass) from a hand-written listing: the innermost loop with the
tensor-core instructions, its local-memory traffic on the path every iteration runs, its instruction count and its
waited (gsb0) wgmma."""

from __future__ import annotations

from fgsim.validation.sass import loop_traffic

LISTING = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   STL [R1+0x8], R4 ;
        /*0020*/                   LDL.64 R2, [R1+0x10] ;
        /*0030*/                   HGMMA.64x64x16.F32.BF16 R24, gdesc[UR8], RZ, !UPT ;
        /*0040*/                   LDL.128 R8, [R1+0x20] ;
        /*0050*/                   HGMMA.64x128x16.F32.BF16 R40, R152, gdesc[UR4], R40, gsb0 ;
        /*0060*/               @P1 BRA 0x90 ;
        /*0070*/                   STL.64 [R1+0x30], R10 ;
        /*0080*/                   LDL R12, [R1+0x38] ;
        /*0090*/                   STL [R1+0x40], R14 ;
        /*00a0*/                   NOP ;
        /*00b0*/               @P0 BRA 0x30 ;
        /*00c0*/                   LDL R5, [R1+0x8] ;
        /*00d0*/                   EXIT ;
        /*00e0*/                   BRA 0xe0;
"""


def test_loop_traffic_counts_the_always_path_of_the_mma_loop() -> None:
    got = loop_traffic(LISTING)
    # loop 0x30..0xb0: LDL.128 (16 B) and STL (4 B) always run; the STL.64 / LDL the @P1 branch skips do not;
    # the prologue STL / LDL.64 and the epilogue LDL are outside the loop; NOPs are not instructions issued; one of
    # the two HGMMA carries gsb0 (waited for before the next)
    assert got == {"loop_ldst": 2, "loop_ldst_bytes": 20, "loop_mma": 2, "loop_instr": 6, "loop_mma_wait": 1,
                   "loop_mufu": 0, "loop_fp32": 0}


def test_no_mma_loop_gives_zeros() -> None:
    assert loop_traffic("        /*0000*/   LDL R1, [R1] ;\n        /*0010*/  @P0 BRA 0x0 ;\n") == {
        "loop_ldst": 0, "loop_ldst_bytes": 0, "loop_mma": 0, "loop_instr": 0, "loop_mma_wait": 0, "loop_mufu": 0,
        "loop_fp32": 0}


SOFTMAX = """
        /*0000*/                   MUFU.EX2 R3, R4 ;
        /*0010*/                   HGMMA.64x64x16.F32.BF16 R24, gdesc[UR8], RZ, !UPT, gsb0 ;
        /*0020*/                   FMNMX R5, R24, R25, !PT ;
        /*0030*/                   FFMA R6, R24, R2, -R5 ;
        /*0040*/                   MUFU.EX2 R6, R6 ;
        /*0050*/                   FADD R7, R6, R7 ;
        /*0060*/                   FMUL.FTZ R8, R8, R9 ;
        /*0070*/                   F2FP.BF16.F32.PACK_AB R10, R6, R6 ;
        /*0080*/                   SHF.L.U32 R11, R6, 0x17, RZ ;
        /*0090*/               @P0 BRA 0x10 ;
        /*00a0*/                   MUFU.EX2 R3, R4 ;
"""


def test_loop_traffic_counts_the_softmax_pipes() -> None:
    """MUFU (exp2) and FP32-pipe instructions of the tile loop only: the MUFU before and after the loop are not
    counted, the conversion and the shift are neither MUFU nor FP32."""
    got = loop_traffic(SOFTMAX)
    assert (got["loop_mufu"], got["loop_fp32"], got["loop_mma"], got["loop_instr"]) == (1, 4, 1, 9)


# the dense tail_branch layout (revision 9's fix): the tile loop 0x10..0x60, then the masked tail tile, the epilogue's
# store and EXIT, and behind EXIT a block that branches back into the middle of the loop (ptxas's layout back edge
# 0xe0 -> 0x30): its span overlaps the loop without nesting and holds more HGMMA (0x40, 0x70, 0x80)
BEHIND_EXIT = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   HGMMA.64x128x16.F32.BF16 R24, gdesc[UR8], RZ, !UPT, gsb0 ;
        /*0020*/                   MUFU.EX2 R6, R6 ;
        /*0030*/                   FFMA R6, R24, R2, -R5 ;
        /*0040*/                   HGMMA.64x128x16.F32.BF16 R88, R152, gdesc[UR12], R88, gsb0 ;
        /*0050*/                   NOP ;
        /*0060*/               @P0 BRA 0x10 ;
        /*0070*/                   HGMMA.64x128x16.F32.BF16 R24, gdesc[UR8], RZ, !UPT, gsb0 ;
        /*0080*/                   HGMMA.64x128x16.F32.BF16 R88, R152, gdesc[UR12], R88, gsb0 ;
        /*0090*/                   FMUL R9, R9, R8 ;
        /*00a0*/                   STG.E.128 desc[UR4][R6.64], R88 ;
        /*00b0*/                   EXIT ;
        /*00c0*/                   FADD R10, R10, R11 ;
        /*00d0*/                   ISETP.NE.AND P0, PT, R10, RZ, PT ;
        /*00e0*/                   BRA 0x30 ;
"""


def test_loop_traffic_leaves_out_spans_through_exit() -> None:
    """The span of the back edge behind EXIT (0x30..0xe0: 3 HGMMA, 12 instructions) is not a loop iteration: the
    reader takes the tile loop 0x10..0x60 (2 HGMMA, 5 instructions without the NOP, 1 MUFU, 1 FP32). The reader of
    revisions 1-8 took the span (it holds the most HGMMA)."""
    got = loop_traffic(BEHIND_EXIT)
    assert got == {"loop_ldst": 0, "loop_ldst_bytes": 0, "loop_mma": 2, "loop_instr": 5, "loop_mma_wait": 2,
                   "loop_mufu": 1, "loop_fp32": 1}
