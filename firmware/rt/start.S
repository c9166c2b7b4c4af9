/*
 * TMC firmware runtime for ESP8266 / Xtensa lx106 (call0 ABI, no windows).
 *
 * Rust has no inline asm! for Xtensa, so everything that needs special
 * instructions lives here: reset entry, exception vectors, interrupt-level
 * helpers and the QEMU (Xtensa ISS style) semihosting calls.
 *
 * Semihosting (qemu target/xtensa/xtensa-semi.c, needs -semihosting):
 *   a2 = call number (1 = exit, 4 = write), a3, a4, a5 = arguments,
 *   `simcall`; result in a2, errno in a3.
 */

        .set    SYS_exit,  1
        .set    SYS_write, 4

#ifndef TMC_NONOS_SDK
/* Under the NONOS SDK (feature `nonos-sdk`) the SDK's libmain owns the
 * vectors and the reset path (call_user_start1 -> user_init), so only the
 * helpers below `#endif` are built. */
/* ------------------------------------------------------------------ */
/* Exception vectors (VECBASE-relative, lx106 layout).  Every exception
 * is fatal here: exit(0x80 | vector id) under QEMU, spin on hardware. */
        .section .vectors.text, "ax"
        .align  256
        .global _vector_table
_vector_table:
        .org    0x10
_debug_vector:
        movi    a2, 0x81
        j       _fatal_vector
        .org    0x20
_nmi_vector:
        rfi     3
        .org    0x30
_kernel_vector:
        movi    a2, 0x83
        j       _fatal_vector
        .org    0x50
_user_vector:
        movi    a2, 0x85
        j       _fatal_vector
        .org    0x70
_double_vector:
        movi    a2, 0x87
        j       _fatal_vector
        .org    0x80
_fatal_vector:
        mov     a3, a2
        movi    a2, SYS_exit
        simcall
1:      j       1b

/* ------------------------------------------------------------------ */
        .section .text.tmc_rt, "ax"
        .literal_position

/* Reset entry (ELF entry point).  Sets PS, VECBASE, stack, zeroes .bss,
 * calls `tmc_main() -> i32` and exits with its return value. */
        .global _start
        .type   _start, @function
        .align  4
_start:
        movi    a0, 0x2f                /* UM=1, EXCM=0, INTLEVEL=15 */
        wsr     a0, ps
        rsync
        movi    a0, _vector_table
        wsr     a0, vecbase
        rsync
        movi    a1, _stack_top
#ifdef TMC_ESP8266
        /* Real chip (DRAFT, untested on hardware): the ROM loader only
         * copied the IRAM/DRAM segments; map the first flash MiB at
         * 0x40200000 so .text in irom0 can run.  ROM Cache_Read_Enable
         * (eagle.rom.addr.v6.ld: 0x40004678), args (0, 0, 1). */
        movi    a2, 0
        movi    a3, 0
        movi    a4, 1
        movi    a0, 0x40004678
        callx0  a0
#endif
        movi    a2, _bss_start
        movi    a3, _bss_end
        movi    a4, 0
        bgeu    a2, a3, 2f
1:      s32i    a4, a2, 0
        addi    a2, a2, 4
        bltu    a2, a3, 1b
2:      movi    a0, 0
        call0   tmc_main
        call0   semihost_exit
3:      j       3b
        .size   _start, . - _start
#else
        .section .text.tmc_rt, "ax"
        .literal_position
#endif /* TMC_NONOS_SDK */

/* isize semihost_write(u32 fd, const u8 *ptr, usize len) */
        .global semihost_write
        .type   semihost_write, @function
        .align  4
semihost_write:
        mov     a5, a4
        mov     a4, a3
        mov     a3, a2
        movi    a2, SYS_write
        simcall
        ret
        .size   semihost_write, . - semihost_write

/* ! semihost_exit(i32 code) */
        .global semihost_exit
        .type   semihost_exit, @function
        .align  4
semihost_exit:
        mov     a3, a2
        movi    a2, SYS_exit
        simcall
1:      j       1b
        .size   semihost_exit, . - semihost_exit

/* i32 semihost_call(u32 nr, u32 a, u32 b, u32 c): any call of the table in
 * xtensa-semi.c (open 5, read 3, write 4, close 6, select_one 29): the
 * call0 ABI already has nr in a2 and the arguments in a3..a5, as simcall
 * wants them. Returns a2 (-1 on error; errno in a3 is not kept). In its own
 * section so that the SDK build, which never calls it, drops it. */
        .section .text.semihost_call, "ax"
        .global semihost_call
        .type   semihost_call, @function
        .align  4
semihost_call:
        simcall
        ret
        .size   semihost_call, . - semihost_call
        .section .text.tmc_rt, "ax"

/* void tmc_spin(u32 n): exactly 2n + 1 instructions (n >= 1), the yardstick
 * that turns CCOUNT under QEMU -icount into an instruction count. */
        .section .text.tmc_spin, "ax"
        .global tmc_spin
        .type   tmc_spin, @function
        .align  4
tmc_spin:
1:      addi    a2, a2, -1
        bnez    a2, 1b
        ret
        .size   tmc_spin, . - tmc_spin
        .section .text.tmc_rt, "ax"

/* Traps (core::intrinsics::abort, panics) land here: exit status 134. */
        .global abort
        .type   abort, @function
        .align  4
abort:
#ifdef TMC_NONOS_SDK
        /* No semihosting host on the chip: spin until the watchdog resets. */
1:      j       1b
#else
        movi    a2, 134
        j       semihost_exit
#endif
        .size   abort, . - abort

/* u32 tmc_irq_disable(void): raise INTLEVEL to 15, return old PS. */
        .global tmc_irq_disable
        .type   tmc_irq_disable, @function
        .align  4
tmc_irq_disable:
        rsil    a2, 15
        ret
        .size   tmc_irq_disable, . - tmc_irq_disable

/* void tmc_irq_restore(u32 ps): restore PS saved by tmc_irq_disable. */
        .global tmc_irq_restore
        .type   tmc_irq_restore, @function
        .align  4
tmc_irq_restore:
        wsr     a2, ps
        rsync
        ret
        .size   tmc_irq_restore, . - tmc_irq_restore

/* u32 tmc_ccount(void): cycle counter. */
        .global tmc_ccount
        .type   tmc_ccount, @function
        .align  4
tmc_ccount:
        rsr     a2, ccount
        ret
        .size   tmc_ccount, . - tmc_ccount

/* No executable stack needed. */
        .section .note.GNU-stack, "", @progbits
