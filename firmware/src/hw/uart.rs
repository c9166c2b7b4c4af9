//! UART0 console, polled TX, 115200 8N1.
//!
//! Registers ([SDK-UART], `REG_UART_BASE(i) = 0x60000000 + i*0xf00`):
//!
//! | reg | addr | use |
//! |-----|------|-----|
//! | `UART_FIFO(0)`   | 0x60000000 | write: push a TX byte; read: pop RX byte (bits 0..7) |
//! | `UART_CLKDIV(0)` | 0x60000014 | bits 0..19, baud = `UART_CLK_FREQ / CLKDIV` |
//! | `UART_STATUS(0)` | 0x6000001C | `UART_TXFIFO_CNT` bits 16..23, `UART_RXFIFO_CNT` bits 0..7 |
//! | `UART_CONF0(0)`  | 0x60000020 | `UART_PARITY_EN` bit 1, `UART_BIT_NUM` bits 2..3 (3 = 8 bits), `UART_STOP_BIT_NUM` bits 4..5 (1 = 1 stop bit); reset value 0x1C = 8N1 |
//!
//! TX FIFO depth 128 bytes (SDK `uart.h`: `UART_FIFO_LEN 128`).
//!
//! Clock: the SDK's `UART_CLK_FREQ` is `APB_CLK_FREQ` = 80 MHz, so the divider
//! is 80_000_000 / 115_200 = 694 (115_273 baud, +0.06 %). UNVERIFIED for a
//! bare-metal boot: without the SDK's PLL set-up a 26 MHz-crystal module may
//! run the APB at 52 MHz (this is why the ROM prints at 74_880 baud); then
//! the console comes out at 74_880 baud, see [`crate::hw::clock::CPU_HZ`].
//! The TX pin mux (GPIO1 = U0TXD) is left as the ROM configured it.
use core::fmt;

use super::{read_reg, write_reg};
use crate::hw::clock::CPU_HZ;

pub const UART0_BASE: usize = 0x6000_0000;
pub const UART_FIFO: usize = UART0_BASE + 0x00;
pub const UART_CLKDIV: usize = UART0_BASE + 0x14;
pub const UART_STATUS: usize = UART0_BASE + 0x1C;
pub const UART_CONF0: usize = UART0_BASE + 0x20;

pub const TXFIFO_CNT_SHIFT: u32 = 16;
pub const TXFIFO_CNT_MASK: u32 = 0xFF;
pub const RXFIFO_CNT_MASK: u32 = 0xFF;
pub const FIFO_LEN: u32 = 128;
/// CONF0 for 8N1: BIT_NUM = 3 (<< 2), STOP_BIT_NUM = 1 (<< 4), no parity.
pub const CONF0_8N1: u32 = (3 << 2) | (1 << 4);
pub const CONF0_FORMAT_MASK: u32 = 0x3F;

pub const BAUD: u32 = 115_200;
/// 80 MHz / 115200 = 694.
pub const CLKDIV_115200: u32 = CPU_HZ / BAUD;
const _: () = assert!(CLKDIV_115200 == 694);

/// UART0 (zero-sized handle; polled, no interrupts).
#[derive(Clone, Copy, Default)]
pub struct Uart0;

impl Uart0 {
    /// Sets 115200 8N1 (keeps the other CONF0 bits) after the ROM's output
    /// has drained.
    pub fn init() -> Self {
        Self::flush();
        write_reg(UART_CLKDIV, CLKDIV_115200 & 0xF_FFFF);
        let conf0 = read_reg(UART_CONF0);
        write_reg(UART_CONF0, (conf0 & !CONF0_FORMAT_MASK) | CONF0_8N1);
        Uart0
    }

    fn tx_count() -> u32 {
        (read_reg(UART_STATUS) >> TXFIFO_CNT_SHIFT) & TXFIFO_CNT_MASK
    }

    /// Blocks while the TX FIFO is full, then pushes `b`.
    pub fn write_byte(b: u8) {
        while Self::tx_count() >= FIFO_LEN - 1 {}
        write_reg(UART_FIFO, b as u32);
    }

    pub fn write_bytes(bytes: &[u8]) {
        for &b in bytes {
            Self::write_byte(b);
        }
    }

    /// Waits until the TX FIFO is empty (the shifter may still hold a byte).
    pub fn flush() {
        while Self::tx_count() != 0 {}
    }

    /// A received byte, if any (non-blocking).
    pub fn read_byte() -> Option<u8> {
        if read_reg(UART_STATUS) & RXFIFO_CNT_MASK == 0 {
            None
        } else {
            Some((read_reg(UART_FIFO) & 0xFF) as u8)
        }
    }
}

impl fmt::Write for Uart0 {
    /// `\n` becomes `\r\n` for serial terminals.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if b == b'\n' {
                Self::write_byte(b'\r');
            }
            Self::write_byte(b);
        }
        Ok(())
    }
}
