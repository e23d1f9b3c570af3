"""The Gluon SASS reader (fgsim.validation.sass.gluon_loop_traffic) on a hand-written warp-specialized listing whose
mbarrier try-wait retry block sits behind EXIT and branches back into the consumer loop: the Gluon reader takes the
consumer and producer tile loops; the tl reader, with its EXIT rule (revision 9), the same consumer loop (before it
picked the retry span)."""

from __future__ import annotations

from fgsim.validation.sass import gluon_loop_traffic, loop_traffic

LISTING = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   LDG.E R2, desc[UR4][R4.64] ;
        /*0020*/                   LDGSTS.E.BYPASS.128 [R3], desc[UR6][R8.64] ;
        /*0030*/                   LDGSTS.E.BYPASS.128 [R3+0x10], desc[UR6][R10.64] ;
        /*0040*/                   NOP ;
        /*0050*/               @P2 BRA 0x10 ;
        /*0060*/                   SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR8], R0 ;
        /*0070*/              @!P0 BRA 0x150 ;
        /*0080*/                   HGMMA.64x128x16.F32.BF16 R24, gdesc[UR8], RZ, !UPT ;
        /*0090*/                   HGMMA.64x128x16.F32.BF16 R24, gdesc[UR10], R24, gsb0 ;
        /*00a0*/                   MUFU.EX2 R40, R41 ;
        /*00b0*/                   FMNMX R42, R40, R43, !PT ;
        /*00c0*/                   FFMA R44, R42, R45, -R46 ;
        /*00d0*/                   HGMMA.64x128x16.F32.BF16 R88, R152, gdesc[UR12], R88, gsb0 ;
        /*00e0*/               @P1 BRA 0x60 ;
        /*00f0*/                   STG.E.128 desc[UR4][R6.64], R88 ;
        /*0100*/                   EXIT ;
        /*0110*/                   BRA 0x110;
        /*0150*/                   SYNCS.PHASECHK.TRANS64 P0, [UR8], R0 ;
        /*0160*/              @!P0 BRA 0x150 ;
        /*0170*/                   HGMMA.64x128x16.F32.BF16 R24, gdesc[UR14], R24, gsb0 ;
        /*0180*/                   BRA 0x80 ;
"""


def test_gluon_reader_takes_the_consumer_loop_not_the_retry_span() -> None:
    got = gluon_loop_traffic(LISTING)
    # consumer loop 0x60..0xe0: 9 instructions (the forward branch to the retry block leaves the loop, so nothing
    # inside is skipped), 3 HGMMA of which 2 wait (gsb0), 1 MUFU, 2 FP32 (FMNMX, FFMA)
    assert got == {"loop_ldst": 0, "loop_ldst_bytes": 0, "loop_mma": 3, "loop_instr": 9, "loop_mma_wait": 2,
                   "loop_mufu": 1, "loop_fp32": 2, "producer_loop_instr": 4}  # producer 0x10..0x50 less its NOP


def test_tl_reader_leaves_out_the_retry_span_on_the_same_listing() -> None:
    # the retry block's back edge (0x180 -> 0x80) spans 4 HGMMA through EXIT: the EXIT rule leaves it out, so the tl
    # reader takes the consumer loop as the Gluon reader does (revisions 1-8 picked the span: loop_mma 4)
    got = loop_traffic(LISTING)
    want = {k: v for k, v in gluon_loop_traffic(LISTING).items() if k != "producer_loop_instr"}
    assert got == want and got["loop_mma"] == 3


def test_gluon_reader_without_loops() -> None:
    got = gluon_loop_traffic("        /*0000*/   LDL R1, [R1] ;\n        /*0010*/  @P0 BRA 0x0 ;\n")
    assert got["loop_mma"] == 0 and got["loop_instr"] == 0 and got["producer_loop_instr"] == 0


def test_gluon_reader_takes_a_tma_producer_loop_when_there_is_no_gather() -> None:
    """fgattn.gluon_contig's producer issues UTMALDG (TMA) instead of LDGSTS: its tile loop is the producer loop; a
    kernel with a cp.async loop keeps that one (the ws2 reading is unchanged)."""
    tma = LISTING.replace("LDGSTS.E.BYPASS.128 [R3], desc[UR6][R8.64]", "UTMALDG.2D [UR8], [UR10]").replace(
        "LDGSTS.E.BYPASS.128 [R3+0x10], desc[UR6][R10.64]", "UTMALDG.2D [UR12], [UR10]")
    got = gluon_loop_traffic(tma)
    assert got["producer_loop_instr"] == 4 and got["loop_mma"] == 3
    both = LISTING.replace("        /*0040*/                   NOP ;",
                           "        /*0040*/                   UTMALDG.2D [UR8], [UR10] ;")
    assert gluon_loop_traffic(both)["producer_loop_instr"] == 5  # the LDGSTS loop (now with a TMA copy) still
    no_prod = LISTING.replace("LDGSTS", "STS")
    assert gluon_loop_traffic(no_prod)["producer_loop_instr"] == 0
