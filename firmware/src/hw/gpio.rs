//! ESP8266 GPIO for the bit-banged I²C bus (`tmc_soft_i2c`):
//! SCL = GPIO14 (pad MTMS, NodeMCU D5), SDA = GPIO12 (pad MTDI, NodeMCU D6).
//!
//! Open drain is emulated: each pin's output latch is kept at 0, and the pin
//! is switched between output enabled (drives low) and output disabled (input,
//! the pull-up raises the line). Built, NOT run on hardware.
//!
//! Sources (see firmware/README.md, register table): NONOS SDK `eagle_soc.h`
//! (PERIPHS_GPIO_BASEADDR 0x60000300; GPIO_OUT_W1TS 0x04, GPIO_OUT_W1TC 0x08,
//! GPIO_ENABLE 0x0C, GPIO_ENABLE_W1TS 0x10, GPIO_ENABLE_W1TC 0x14, GPIO_IN
//! 0x18; PERIPHS_IO_MUX_FUNC 0x13 at shift 4, `PIN_FUNC_SELECT` places
//! FUNC bit 2 at bit 8 and bits 0..1 at bits 4..5; PERIPHS_IO_MUX_PULLUP BIT7)
//! and `pin_mux_register.h` (PERIPHS_IO_MUX 0x60000800, MTDI_U +0x04 with
//! FUNC_GPIO12 = 3, MTMS_U +0x0C with FUNC_GPIO14 = 3), read in copies of the
//! SDK headers found by code search.
//!
//! Note: the brief's 0x6000030C/0x60000310 for GPIO_ENABLE_W1TS/W1TC is off by
//! one register: 0x6000030C is GPIO_ENABLE itself; W1TS/W1TC are 0x10/0x14.

use super::{read_reg, write_reg};
use tmc_soft_i2c::Pins;

pub const GPIO_BASE: usize = 0x6000_0300;
pub const GPIO_OUT_W1TS: usize = GPIO_BASE + 0x04;
pub const GPIO_OUT_W1TC: usize = GPIO_BASE + 0x08;
pub const GPIO_ENABLE_W1TS: usize = GPIO_BASE + 0x10;
pub const GPIO_ENABLE_W1TC: usize = GPIO_BASE + 0x14;
pub const GPIO_IN: usize = GPIO_BASE + 0x18;

pub const IO_MUX_BASE: usize = 0x6000_0800;
/// Pad MTDI = GPIO12.
pub const IO_MUX_MTDI: usize = IO_MUX_BASE + 0x04;
/// Pad MTMS = GPIO14.
pub const IO_MUX_MTMS: usize = IO_MUX_BASE + 0x0C;
/// `PERIPHS_IO_MUX_FUNC` (0x13) << `PERIPHS_IO_MUX_FUNC_S` (4).
pub const IO_MUX_FUNC_MASK: u32 = 0x13 << 4;
/// FUNC_GPIO12 = FUNC_GPIO14 = 3.
pub const FUNC_GPIO: u32 = 3;
/// `PERIPHS_IO_MUX_PULLUP`.
pub const IO_MUX_PULLUP: u32 = 1 << 7;

pub const SCL_PIN: u32 = 14;
pub const SDA_PIN: u32 = 12;
const SCL: u32 = 1 << SCL_PIN;
const SDA: u32 = 1 << SDA_PIN;

/// IO_MUX field value for `func`, as the SDK's `PIN_FUNC_SELECT` computes it.
pub const fn mux_func_bits(func: u32) -> u32 {
    (((func & 0b100) << 2) | (func & 0b11)) << 4
}

fn select_gpio_with_pullup(mux: usize) {
    let v = read_reg(mux) & !IO_MUX_FUNC_MASK;
    write_reg(mux, v | mux_func_bits(FUNC_GPIO) | IO_MUX_PULLUP);
}

/// GPIO14/GPIO12 as open-drain I²C lines.
pub struct I2cPins(());

impl I2cPins {
    /// Selects function GPIO with the internal pull-up on both pads, sets the
    /// output latches to 0 and releases both lines (inputs). The internal
    /// pull-up (tens of kΩ) is weak: use external 4.7 kΩ pull-ups for 100 kHz.
    pub fn init() -> Self {
        write_reg(GPIO_ENABLE_W1TC, SCL | SDA);
        write_reg(GPIO_OUT_W1TC, SCL | SDA);
        select_gpio_with_pullup(IO_MUX_MTMS);
        select_gpio_with_pullup(IO_MUX_MTDI);
        I2cPins(())
    }
}

impl Pins for I2cPins {
    #[inline]
    fn set_scl_low(&mut self) {
        write_reg(GPIO_ENABLE_W1TS, SCL);
    }
    #[inline]
    fn release_scl(&mut self) {
        write_reg(GPIO_ENABLE_W1TC, SCL);
    }
    #[inline]
    fn set_sda_low(&mut self) {
        write_reg(GPIO_ENABLE_W1TS, SDA);
    }
    #[inline]
    fn release_sda(&mut self) {
        write_reg(GPIO_ENABLE_W1TC, SDA);
    }
    #[inline]
    fn read_sda(&mut self) -> bool {
        read_reg(GPIO_IN) & SDA != 0
    }
    #[inline]
    fn read_scl(&mut self) -> bool {
        read_reg(GPIO_IN) & SCL != 0
    }
}
