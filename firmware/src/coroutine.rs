//! A coroutine: code that runs on a stack of its own and can give control back to whoever resumed it
//! ([`suspend`]) in the middle of any call chain, to continue there at the next [`Coroutine::resume`].
//!
//! # Why
//!
//! Under the NONOS SDK there are no threads: the SDK calls our callbacks (timers, espconn) one at a time
//! and must get control back within a few hundred milliseconds, and bytes from the network only arrive in
//! espconn callbacks that run *after* ours returned. The node's TLS client (embedded-tls, through
//! `tmc_node_tls`) is blocking: its `read` does not return until bytes are there. So the node runs in a
//! coroutine; where it would block (waiting for bytes, for send space, for the TCP connection, for the
//! ATECC to finish a command) it calls [`suspend`], which returns from the SDK callback that resumed it.
//! The next timer tick resumes it exactly where it stopped.
//!
//! # How
//!
//! `rt/context.S` `tmc_context_switch(save, load)` saves the call0 ABI's callee-saved state (a0 = return
//! address, a1 = stack pointer, a12..a15) into `save` and loads `load`; to the compiler it is an ordinary
//! function call, so every other register is already assumed clobbered. A new coroutine's first context
//! enters `tmc_context_entry`, which calls [`coroutine_main`] on the new stack.
//!
//! # Safety argument
//!
//! - One core, no preemption of task code (SDK callbacks never interrupt each other; interrupts do not
//!   run Rust code): at most one coroutine runs at a time, tracked by `CURRENT`. Nested resumes (from
//!   inside a coroutine) are refused.
//! - The stack is `&'static mut`: nobody else can touch it while the coroutine's frames live there. The
//!   coroutine's locals stay valid across a suspension because nothing else runs on that stack.
//! - While the coroutine runs, the [`Coroutine`] is only accessed through the raw pointer in `CURRENT`
//!   (derived from the `&mut` that `resume` holds and does not use meanwhile).
//! - Whatever the coroutine's frames borrow must not be touched from outside while it is suspended: the
//!   node keeps its whole state in the coroutine's own frames; the state it shares with SDK callbacks is
//!   in `RefCell`s whose borrows never span a [`suspend`].
//! - `panic = "abort"`: no unwinding across the switch.
//! - Interrupts: the NONOS SDK's interrupt handlers run on whatever stack is active, so while the
//!   coroutine runs they run on its stack; their frames must fit into its margin (UNVERIFIED depth: part of
//!   why the node's stack has ~4 KB above the measured TLS high-water mark, see `sdk::node_task`).
//! - Overflow: the stack is painted at creation; [`Coroutine::resume`] panics when the lowest word is no
//!   longer paint (memory below it may then be damaged already: size the stack from
//!   [`Coroutine::stack_used`] with margin, see the README's DRAM budget).
use core::cell::Cell;
use core::fmt;
use core::ptr::null_mut;

/// What `rt/context.S` saves: the call0 ABI's callee-saved state.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct Context {
    a0: u32,
    a1: u32,
    a12: u32,
    a13: u32,
    a14: u32,
    a15: u32,
}

extern "C" {
    fn tmc_context_switch(save: *mut Context, load: *const Context);
    fn tmc_context_entry();
}

/// Paint for unused stack words (the high-water mark is the lowest word that is no longer paint).
pub const STACK_PAINT: u32 = 0xA5C3_5A3C;
/// The node's stack in the SDK image (`sdk::node_task`): everything the connection needs lives in its
/// frames (chip drivers, TLS client with its record buffers, the node). Measured on the lx106, release,
/// with the full mutual-TLS handshake against mosquitto, CONNECT, PUBLISH and PUBACK on a coroutine
/// stack of exactly this size (QEMU check `mtls_handshake_mosquitto`, which prints the high-water mark:
/// 17 452 bytes release, 18 412 debug); the ~3 KB above it are for the SDK's interrupt handlers, which
/// run on whatever stack is active, and for the differences between the check's frames and the image's.
pub const NODE_STACK_BYTES: usize = 20 * 1024;

/// Smallest stack [`Coroutine::new`] takes (bytes).
pub const MIN_STACK_BYTES: usize = 256;

/// Where a coroutine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Created, not resumed yet.
    New,
    /// Running (only seen from inside).
    Running,
    /// Stopped in [`suspend`]; the next resume continues there.
    Suspended,
    /// Its entry function returned; resuming does nothing.
    Finished,
}

/// Why a resume or suspend was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoroutineError {
    /// `resume` from inside a coroutine.
    Nested,
    /// `suspend` outside any coroutine (nothing to return to).
    NotInCoroutine,
}

impl fmt::Display for CoroutineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoroutineError::Nested => f.write_str("coroutine: resume from inside a coroutine"),
            CoroutineError::NotInCoroutine => f.write_str("coroutine: suspend outside a coroutine"),
        }
    }
}

/// A function running on its own stack (see the module doc).
pub struct Coroutine {
    stack: *mut u32,
    words: usize,
    entry: fn(),
    /// The resumer's context while the coroutine runs.
    caller: Context,
    /// The coroutine's context while it is suspended.
    own: Context,
    state: State,
}

/// The running coroutine (null: none). Task context only (module doc).
struct Current(Cell<*mut Coroutine>);
// SAFETY: one core, only used from task context, never from interrupts.
unsafe impl Sync for Current {}
static CURRENT: Current = Current(Cell::new(null_mut()));

impl Coroutine {
    /// A coroutine that runs `entry` on `stack` from its first [`resume`](Self::resume). Paints the stack.
    ///
    /// # Panics
    /// When `stack` is shorter than [`MIN_STACK_BYTES`].
    pub fn new(stack: &'static mut [u32], entry: fn()) -> Self {
        assert!(
            stack.len() * 4 >= MIN_STACK_BYTES,
            "coroutine stack too small"
        );
        stack.fill(STACK_PAINT);
        Coroutine {
            stack: stack.as_mut_ptr(),
            words: stack.len(),
            entry,
            caller: Context::default(),
            own: Context::default(),
            state: State::New,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Stack size in bytes.
    pub fn stack_len(&self) -> usize {
        self.words * 4
    }

    /// High-water mark: bytes of the stack ever written (from the top down to the lowest word that is not
    /// paint). A frame that reserved space without writing it is not counted: read it as a lower bound
    /// close to the truth, and keep a margin.
    pub fn stack_used(&self) -> usize {
        // SAFETY: the stack is ours for 'static (`new`); reading words the coroutine may be using is a
        // plain read of initialised u32s on one core (it is not running while we are).
        let words = unsafe { core::slice::from_raw_parts(self.stack, self.words) };
        let untouched = words.iter().take_while(|&&w| w == STACK_PAINT).count();
        (self.words - untouched) * 4
    }

    /// Runs the coroutine until it suspends or finishes; returns its state then.
    ///
    /// # Panics
    /// When the coroutine overran its stack (the lowest word is no longer paint).
    pub fn resume(&mut self) -> Result<State, CoroutineError> {
        if !CURRENT.0.get().is_null() {
            return Err(CoroutineError::Nested);
        }
        match self.state {
            State::Finished => return Ok(State::Finished),
            State::New => {
                // The stack grows down from a 16-byte aligned top (Xtensa ABI).
                let top = (self.stack as usize + self.words * 4) & !15;
                self.own = Context {
                    a0: tmc_context_entry as *const () as usize as u32,
                    a1: top as u32,
                    a12: coroutine_main as *const () as usize as u32,
                    a13: 0,
                    a14: 0,
                    a15: 0,
                };
            }
            State::Running | State::Suspended => {}
        }
        let this: *mut Coroutine = self;
        // SAFETY: see the module doc. `this` is the only path to the coroutine until the switch returns
        // (`self` is not used meanwhile); `own` holds a context saved by `suspend` or made above.
        unsafe {
            (*this).state = State::Running;
            CURRENT.0.set(this);
            tmc_context_switch(&mut (*this).caller, &(*this).own);
            CURRENT.0.set(null_mut());
        }
        // SAFETY: as in `stack_used`.
        let guard = unsafe { *self.stack };
        assert!(guard == STACK_PAINT, "coroutine stack overflow");
        Ok(self.state)
    }
}

/// Whether the caller runs inside a coroutine (so [`suspend`] works).
pub fn in_coroutine() -> bool {
    !CURRENT.0.get().is_null()
}

/// Gives control back to whoever resumed the running coroutine; returns when it is resumed again.
pub fn suspend() -> Result<(), CoroutineError> {
    let this = CURRENT.0.get();
    if this.is_null() {
        return Err(CoroutineError::NotInCoroutine);
    }
    // SAFETY: `this` is the running coroutine (set by `resume`, which waits in the switch); the
    // resumer's context was saved there.
    unsafe {
        (*this).state = State::Suspended;
        tmc_context_switch(&mut (*this).own, &(*this).caller);
    }
    Ok(())
}

/// First Rust code on a new stack (called by `tmc_context_entry`): runs the entry function, then
/// switches back for good.
extern "C" fn coroutine_main(_arg: u32) {
    let this = CURRENT.0.get();
    // SAFETY: only ever entered from `resume`, which set CURRENT.
    let entry = unsafe { (*this).entry };
    entry();
    // SAFETY: as in `suspend`; the saved `own` is never loaded again (Finished).
    unsafe {
        (*this).state = State::Finished;
        tmc_context_switch(&mut (*this).own, &(*this).caller);
    }
    // Not reached: a finished coroutine is never switched to.
    #[allow(clippy::empty_loop)]
    loop {}
}
