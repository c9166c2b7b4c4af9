//! Register-level ESP8266 drivers (no PAC). Every address below names its
//! source; anything marked UNVERIFIED has not been checked against an
//! Espressif document or the chip and must be confirmed on hardware.
//!
//! Sources used:
//! - [SDK-UART] Espressif NONOS SDK `driver_lib/include/driver/uart_register.h`
//!   (read via a vendored copy, `AbdullahJalloul/UDP_SPI_project`
//!   `app/include/driver/uart_registers.h`, "Copyright 2013-2014 Espressif").
//! - [WDT] esp-open-rtos `core/include/esp/wdt_regs.h` (WDT_BASE 0x60000900,
//!   FEED at +0x14) and Cesanta mongoose-os `esp_hw_wdt_register.h`
//!   (REG_WDT_BASE 0x60000900, reset/feed register +0x14, feed value 0x73);
//!   the Technical Reference does not document the WDT registers.
//! - [GPIO] NONOS SDK `eagle_soc.h` / `pin_mux_register.h` / `gpio_register.h`
//!   (GPIO and IO_MUX registers, see `gpio.rs` and the README's table).
//! - [ROM] `eagle.rom.addr.v6.ld` (ROM function addresses, see rt/start.S).
//!
//! None of this has run on a chip yet: the sensor binary is built, not tested
//! on hardware (QEMU `-M sim` has no ESP8266 peripherals).

pub mod adc;
pub mod clock;
pub mod gpio;
pub mod uart;
pub mod wdt;

#[inline(always)]
pub(crate) fn read_reg(addr: usize) -> u32 {
    // SAFETY: callers pass fixed, documented MMIO addresses.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

#[inline(always)]
pub(crate) fn write_reg(addr: usize, value: u32) {
    // SAFETY: callers pass fixed, documented MMIO addresses.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

/// eFuse words holding the factory MAC/chip id.
/// UNVERIFIED: 0x3FF00050 / 0x3FF00054 and the formula below are what the
/// NONOS SDK's `system_get_chip_id()` is reported to compute
/// (`(efuse1 & 0xFFFF) << 8 | efuse0 >> 24`, the low 3 MAC bytes); not checked
/// against an Espressif document.
pub const EFUSE_DATA0: usize = 0x3FF0_0050;
pub const EFUSE_DATA1: usize = 0x3FF0_0054;

/// Chip id (low 24 bits of the factory MAC), see [`EFUSE_DATA0`] (UNVERIFIED).
pub fn chip_id() -> u32 {
    let e0 = read_reg(EFUSE_DATA0);
    let e1 = read_reg(EFUSE_DATA1);
    ((e1 & 0xFFFF) << 8) | (e0 >> 24)
}
