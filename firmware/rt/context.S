/*
 * Stack switching for src/coroutine.rs (Xtensa lx106, call0 ABI).
 *
 * Why: under the NONOS SDK received bytes only arrive in callbacks that run
 * after ours returned, but the TLS client (embedded-tls) blocks in `read`.
 * The node therefore runs on a stack of its own and gives control back to
 * the SDK (switches to the callback's stack) wherever it would block.
 *
 * call0 ABI (Xtensa ISA, "CALL0 ABI"): a0 = return address, a1 = stack
 * pointer, a2..a7 arguments, a12..a15 callee-saved, everything else
 * (a2..a11, SAR) caller-saved. A switch is an ordinary function call to the
 * compiler, so saving a0, a1 and a12..a15 is all it takes. lx106 has no FPU,
 * no loop registers and no register windows. PS is not touched: switches
 * only happen between function calls in task context.
 *
 * struct Context { u32 a0, a1, a12, a13, a14, a15; }   (24 bytes)
 */

        .section .text.tmc_rt, "ax"
        .literal_position

/* void tmc_context_switch(Context *save, const Context *load)
 * Saves the caller's context in *save and continues the one in *load: it
 * "returns" into whoever saved *load (or into tmc_context_entry for a new
 * context). */
        .global tmc_context_switch
        .type   tmc_context_switch, @function
        .align  4
tmc_context_switch:
        s32i    a0,  a2, 0
        s32i    a1,  a2, 4
        s32i    a12, a2, 8
        s32i    a13, a2, 12
        s32i    a14, a2, 16
        s32i    a15, a2, 20
        l32i    a0,  a3, 0
        l32i    a1,  a3, 4
        l32i    a12, a3, 8
        l32i    a13, a3, 12
        l32i    a14, a3, 16
        l32i    a15, a3, 20
        ret
        .size   tmc_context_switch, . - tmc_context_switch

/* First code run on a new stack (a new Context has a0 = this, a1 = the
 * stack top, a12 = the entry function, a13 = its argument): calls
 * entry(arg), which must never return (src/coroutine.rs's entry switches
 * back for good instead). */
        .global tmc_context_entry
        .type   tmc_context_entry, @function
        .align  4
tmc_context_entry:
        mov     a2, a13
        callx0  a12
1:      j       1b
        .size   tmc_context_entry, . - tmc_context_entry

        .section .note.GNU-stack, "", @progbits
