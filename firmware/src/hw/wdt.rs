//! Hardware watchdog feed.
//!
//! [WDT]: base 0x60000900 (esp-open-rtos `WDT_BASE`, Cesanta `REG_WDT_BASE`);
//! +0x00 CTL (bit 0 enable), +0x04/+0x08 stage 0/1 reload, +0x14 RST/FEED
//! (esp-open-rtos `FEED` at 0x14; alt header `WDT_RESET = 0x60000914`).
//! Feed value 0x73: see the note on [`WDT_FEED_MAGIC`].
//! The Technical Reference does not document these registers; the offsets
//! agree in several independent open-source headers but are UNVERIFIED on a
//! chip. Whether (and with which timeout) the ROM leaves the hardware WDT
//! running for a non-SDK image is also UNVERIFIED; feeding every main-loop
//! iteration (<= 20 ms apart) is harmless either way.
use super::write_reg;

pub const WDT_BASE: usize = 0x6000_0900;
pub const WDT_CTL: usize = WDT_BASE + 0x00;
pub const WDT_RST: usize = WDT_BASE + 0x14;
/// Value written to RST to feed (0x73, `WDT_FEED_MAGIC` / `WDT_ESP8266_RST_FEED`
/// in the open-source headers above; see the README for its verification status).
pub const WDT_FEED_MAGIC: u32 = 0x73;

/// Restarts the watchdog count.
#[inline]
pub fn feed() {
    write_reg(WDT_RST, WDT_FEED_MAGIC);
}
