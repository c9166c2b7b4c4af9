//! The sensor application as the NONOS SDK runs it (feature `nonos-sdk`).
//!
//! The SDK owns the boot: its entry `call_user_start1` (libdriver, v3.0.6)
//! initialises the chip and calls `user_pre_init` (partition table, see
//! [`pre_init`]) and `user_init` (src/bin/sensor.rs: banner, ATECC probe,
//! [`start`]). `user_init` must return; from then on everything runs from
//! SDK callbacks:
//!
//! - the Wi-Fi event handler tells the transport when the station has an IP;
//! - a periodic `os_timer` ([`POLL_MS`]) runs the transport's
//!   [`pump`](crate::transport::sdk::pump) and resumes the node's coroutine
//!   (`sdk::node_task`: identity, ATECC, mutual TLS, `Node::poll`), which
//!   runs until it would block (network, chip) and then gives control back.
//!
//! Nothing here feeds a watchdog while callbacks return promptly (the SDK
//! does); the node's long computations feed it (`sdk::timing`).
use core::ffi::c_void;
use core::fmt::Write;
use core::ptr::null_mut;

use super::ffi::{self, EtsTimer, FastScanThreshold, PartitionItem, StationConfig, SystemEvent};
use super::identity_store::IDENTITY_SECTOR_ADDR;
use super::node_task::{self, NODE_STACK_BYTES};
use super::{SdkStatic, TaskCell};
use crate::config;
use crate::coroutine::{Coroutine, State};
use crate::hw::uart::Uart0;
use crate::transport::sdk as link;

/// Period of the poll timer.
pub const POLL_MS: u32 = 50;

/// `SPI_FLASH_SIZE_MAP` 4 = `FLASH_SIZE_32M_MAP_512_512` (user_interface.h):
/// a 4 MB flash, as on the usual ESP-12 modules. A different flash size
/// needs a different map and the partition addresses below.
pub const FLASH_SIZE_MAP: u32 = 4;

/// Non-FOTA layout (SDK v3.0.6 "documents/EN/ Partition Table.md"): the two
/// image files as customer partitions, the node's identity sector (a
/// customer partition of its own, just below RF calibration), RF calibration,
/// PHY init data and the SDK's parameter area at the top of a 4 MB flash
/// (the SDK examples' addresses for map 4).
static PARTITIONS: [PartitionItem; 6] = [
    PartitionItem {
        kind: ffi::SYSTEM_PARTITION_CUSTOMER_BEGIN + 1,
        addr: 0x0,
        size: 0x1_0000,
    },
    PartitionItem {
        kind: ffi::SYSTEM_PARTITION_CUSTOMER_BEGIN + 2,
        addr: 0x1_0000,
        // irom0_0_seg in link/sdk.ld.
        size: 0x5_C000,
    },
    PartitionItem {
        kind: ffi::SYSTEM_PARTITION_CUSTOMER_BEGIN + 3,
        addr: IDENTITY_SECTOR_ADDR,
        size: ffi::SPI_FLASH_SEC_SIZE,
    },
    PartitionItem {
        kind: ffi::SYSTEM_PARTITION_RF_CAL,
        addr: 0x3F_B000,
        size: 0x1000,
    },
    PartitionItem {
        kind: ffi::SYSTEM_PARTITION_PHY_DATA,
        addr: 0x3F_C000,
        size: 0x1000,
    },
    PartitionItem {
        kind: ffi::SYSTEM_PARTITION_SYSTEM_PARAMETER,
        addr: 0x3F_D000,
        size: 0x3000,
    },
];

/// The node's coroutine stack (see `sdk::node_task`), in .bss: part of the static DRAM the size report
/// budgets.
static NODE_STACK: SdkStatic<[u32; NODE_STACK_BYTES / 4]> =
    SdkStatic::new([0; NODE_STACK_BYTES / 4]);
static NODE: TaskCell<Option<Coroutine>> = TaskCell::new(None);
/// (ticks since the last look, high-water mark last logged) of the node's stack.
static STACK_MARK: TaskCell<(u32, usize)> = TaskCell::new((0, 0));
/// Look at the node's stack every this many ticks (1 s; a scan reads the whole painted stack).
const STACK_CHECK_TICKS: u32 = 20;
static POLL_TIMER: SdkStatic<EtsTimer> = SdkStatic::new(EtsTimer {
    next: null_mut(),
    expire: 0,
    period: 0,
    func: None,
    arg: null_mut(),
});

/// `user_pre_init`: registers the partition table (mandatory since SDK
/// 3.0). A refusal is a build/flash mismatch nothing can fix at run time:
/// report it and stop (the watchdog then resets, and the log repeats).
pub fn pre_init() {
    // SAFETY: static table, count matches.
    let ok = unsafe {
        ffi::system_partition_table_regist(
            PARTITIONS.as_ptr(),
            PARTITIONS.len() as u32,
            FLASH_SIZE_MAP,
        )
    };
    if ok == 0 {
        let _ = writeln!(
            Uart0,
            "\nsdk: partition table refused (flash map {FLASH_SIZE_MAP}, 4 MB expected)"
        );
        #[allow(clippy::empty_loop)]
        loop {}
    }
}

/// Banner for `user_init`.
pub fn banner(console: &mut Uart0) {
    // SAFETY: plain SDK call.
    let chip = unsafe { ffi::system_get_chip_id() };
    crate::write_banner(
        console,
        " (NONOS SDK)",
        chip,
        "sdk (Wi-Fi station, TCP, mutual TLS with the ATECC's key), sensor: system_adc_read (TOUT)",
    );
}

fn station_config() -> StationConfig {
    let mut sta = StationConfig {
        ssid: [0; 32],
        password: [0; 64],
        channel: 0,
        bssid_set: 0,
        bssid: [0; 6],
        threshold: FastScanThreshold {
            rssi: 0,
            authmode: ffi::AUTH_WPA2_PSK,
        },
        open_and_wep_mode_disable: 1,
        all_channel_scan: 0,
    };
    // build.rs limits ssid to 32 and the passphrase to 63 bytes; `min` keeps
    // this in bounds regardless. The SDK takes the SSID unterminated when it
    // is 32 bytes, the passphrase NUL-terminated (64-byte field).
    let ssid = config::SSID.as_bytes();
    let n = ssid.len().min(sta.ssid.len());
    sta.ssid[..n].copy_from_slice(&ssid[..n]);
    let pass = config::PASSPHRASE.as_bytes();
    let n = pass.len().min(sta.password.len() - 1);
    sta.password[..n].copy_from_slice(&pass[..n]);
    sta
}

/// `user_init` after the banner: Wi-Fi station with the compiled-in
/// network, the event handler, the node and the poll timer. Returns at once.
pub fn start() {
    let mut sta = station_config();
    // SAFETY: SDK calls from user_init; `sta` is copied by the SDK.
    // `_current` variants: nothing is written to flash on every boot. Per the
    // SDK API reference the station connects by itself after user_init when
    // the config is set here (UNVERIFIED on a chip); the reconnect policy
    // makes it rejoin after losing the AP.
    let ok = unsafe {
        ffi::wifi_set_opmode_current(ffi::STATION_MODE) != 0
            && ffi::wifi_station_set_config_current(&mut sta) != 0
            && ffi::wifi_station_set_reconnect_policy(1) != 0
    };
    if !ok {
        let _ = writeln!(Uart0, "wifi: station set-up refused by the SDK");
    }
    // SAFETY: registers a `extern "C"` handler with the SDK's signature.
    unsafe { ffi::wifi_set_event_handler_cb(on_wifi_event) };

    // SAFETY: `start` runs once (from user_init), so this is the only reference to the stack ever made;
    // from here on only the coroutine uses it.
    let stack: &'static mut [u32] = unsafe { &mut *NODE_STACK.get() };
    NODE.with(|slot| *slot = Some(Coroutine::new(stack, node_task::run)));

    let timer = POLL_TIMER.get();
    // SAFETY: static timer, handler with the SDK's signature; armed once.
    unsafe {
        ffi::ets_timer_setfn(timer, on_poll, null_mut());
        ffi::ets_timer_arm_new(timer, POLL_MS, 1, 1);
    }
}

extern "C" fn on_poll(_arg: *mut c_void) {
    link::pump();
    // The node runs until it would block (or until its next tick), then we return to the SDK.
    let state = NODE.with(|slot| slot.as_mut().map(Coroutine::resume));
    if let Some(Some(Err(e))) = state {
        let _ = writeln!(Uart0, "node: {e}");
    } else if let Some(Some(Ok(State::Finished))) = state {
        // `node_task::run` never returns; say so once if it ever does.
        let _ = writeln!(Uart0, "node: stopped");
        NODE.with(|slot| *slot = None);
    }
    log_stack_growth();
}

/// Logs the node stack's high-water mark whenever it grew by 256 bytes or more: the on-chip number for
/// the README's DRAM budget (measured so far in QEMU only).
fn log_stack_growth() {
    let due = STACK_MARK
        .with(|(ticks, _)| {
            *ticks += 1;
            *ticks >= STACK_CHECK_TICKS && {
                *ticks = 0;
                true
            }
        })
        .unwrap_or(false);
    if !due {
        return;
    }
    let Some(Some((used, len))) =
        NODE.with(|slot| slot.as_ref().map(|co| (co.stack_used(), co.stack_len())))
    else {
        return;
    };
    let grew = STACK_MARK
        .with(|(_, reported)| {
            let grew = used >= *reported + 256;
            if grew {
                *reported = used;
            }
            grew
        })
        .unwrap_or(false);
    if grew {
        let _ = writeln!(Uart0, "node: stack high-water mark {used} of {len} bytes");
    }
}

extern "C" fn on_wifi_event(event: *mut SystemEvent) {
    if event.is_null() {
        return;
    }
    // SAFETY: the SDK passes a valid event for the duration of the call.
    let kind = unsafe { (*event).event };
    match kind {
        ffi::EVENT_STAMODE_GOT_IP => {
            // SAFETY: for GOT_IP the union starts with the IPv4 address.
            let ip = unsafe { ffi::event_got_ip(event) };
            let _ = writeln!(
                Uart0,
                "wifi: got ip {}.{}.{}.{}",
                ip[0], ip[1], ip[2], ip[3]
            );
            link::wifi_event(true);
        }
        ffi::EVENT_STAMODE_DISCONNECTED => {
            // SAFETY: the union holds the disconnected member for this event.
            let reason = unsafe { (*event).disconnected.reason };
            let _ = writeln!(Uart0, "wifi: disconnected (reason {reason})");
            link::wifi_event(false);
        }
        ffi::EVENT_STAMODE_CONNECTED => {
            let _ = writeln!(Uart0, "wifi: associated");
        }
        ffi::EVENT_STAMODE_DHCP_TIMEOUT => {
            let _ = writeln!(Uart0, "wifi: DHCP timeout");
        }
        _ => {}
    }
}
