//! Hand-written `extern "C"` bindings for the part of Espressif's ESP8266
//! NONOS SDK v3.0.6 C API this firmware uses (no bindgen for this target).
//!
//! Every declaration was written from the v3.0.6 headers (espressif/
//! ESP8266_NONOS_SDK, tag v3.0.6): `include/user_interface.h`,
//! `include/espconn.h`, `include/ets_sys.h`, `include/osapi.h`,
//! `include/ip_addr.h`, `include/c_types.h`, `include/spi_flash.h`. The SDK's `bool` is
//! `unsigned char` (c_types.h), hence `u8` below, never Rust `bool` (a
//! value other than 0/1 would be undefined behaviour in Rust). Enums are
//! C `int`-sized (the SDK builds without -fshort-enums).
//!
//! The layouts are pinned by the size/offset asserts at the end, so a
//! mistake shows up at compile time, not on the chip.
use core::ffi::{c_char, c_void};

/// `wifi_set_opmode*`: station only (`STATION_MODE`, user_interface.h).
pub const STATION_MODE: u8 = 0x01;
/// `AUTH_WPA2_PSK` of `AUTH_MODE` (user_interface.h): the weakest security
/// the station accepts (open and WEP networks are ignored).
pub const AUTH_WPA2_PSK: u32 = 3;

/// `System_Event_t.event` values (user_interface.h, anonymous enum).
pub const EVENT_STAMODE_CONNECTED: u32 = 0;
pub const EVENT_STAMODE_DISCONNECTED: u32 = 1;
pub const EVENT_STAMODE_GOT_IP: u32 = 3;
pub const EVENT_STAMODE_DHCP_TIMEOUT: u32 = 4;

/// espconn.h return codes used here.
pub const ESPCONN_OK: i8 = 0;
pub const ESPCONN_INPROGRESS: i8 = -5;
/// `enum espconn_type`: `ESPCONN_TCP`.
pub const ESPCONN_TCP: u32 = 0x10;
/// `enum espconn_state`: `ESPCONN_NONE`.
pub const ESPCONN_NONE: u32 = 0;

/// `partition_type_t` (user_interface.h).
pub const SYSTEM_PARTITION_RF_CAL: u32 = 4;
pub const SYSTEM_PARTITION_PHY_DATA: u32 = 5;
pub const SYSTEM_PARTITION_SYSTEM_PARAMETER: u32 = 6;
pub const SYSTEM_PARTITION_CUSTOMER_BEGIN: u32 = 100;

/// `SpiFlashOpResult` (spi_flash.h): `SPI_FLASH_RESULT_OK`; 1 = ERR, 2 = TIMEOUT.
pub const SPI_FLASH_RESULT_OK: u32 = 0;
/// `SPI_FLASH_SEC_SIZE` (spi_flash.h).
pub const SPI_FLASH_SEC_SIZE: u32 = 4096;

/// `wifi_fast_scan_threshold_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FastScanThreshold {
    pub rssi: i8,
    /// `AUTH_MODE`.
    pub authmode: u32,
}

/// `struct station_config`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StationConfig {
    pub ssid: [u8; 32],
    pub password: [u8; 64],
    pub channel: u8,
    pub bssid_set: u8,
    pub bssid: [u8; 6],
    pub threshold: FastScanThreshold,
    pub open_and_wep_mode_disable: u8,
    pub all_channel_scan: u8,
}

/// `Event_StaMode_Disconnected_t`, the only `Event_Info_u` member read here.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EventStaDisconnected {
    pub ssid: [u8; 32],
    pub ssid_len: u8,
    pub bssid: [u8; 6],
    pub reason: u8,
}

/// `System_Event_t` = `{ uint32 event; Event_Info_u event_info; }`. The union
/// is 40 bytes (its largest members, Connected/Disconnected) with 4-byte
/// alignment (it holds `struct ip_addr`); only read as `disconnected` when
/// `event == EVENT_STAMODE_DISCONNECTED`. Always received by pointer.
#[repr(C)]
pub struct SystemEvent {
    pub event: u32,
    pub disconnected: EventStaDisconnected,
}

/// The station's address from an `EVENT_STAMODE_GOT_IP` event
/// (`Event_StaMode_Got_IP_t.ip`, first member of the union), as 4 bytes in
/// network order.
///
/// # Safety
/// `event` must point to a valid GOT_IP event.
pub unsafe fn event_got_ip(event: *const SystemEvent) -> [u8; 4] {
    let ip = event.cast::<u8>().add(4).cast::<IpAddr>();
    (*ip).addr.to_ne_bytes()
}

/// `partition_item_t`.
#[repr(C)]
pub struct PartitionItem {
    /// `partition_type_t`.
    pub kind: u32,
    pub addr: u32,
    pub size: u32,
}

/// `ETSTimer` (= `os_timer_t`): owned by the SDK's timer list while armed,
/// so it must live in static memory.
#[repr(C)]
pub struct EtsTimer {
    pub next: *mut EtsTimer,
    pub expire: u32,
    pub period: u32,
    pub func: Option<extern "C" fn(arg: *mut c_void)>,
    pub arg: *mut c_void,
}

/// `ip_addr_t` (`struct ip_addr { uint32 addr; }`), network byte order in
/// memory.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IpAddr {
    pub addr: u32,
}

pub type ConnectCb = extern "C" fn(arg: *mut c_void);
pub type ReconnectCb = extern "C" fn(arg: *mut c_void, err: i8);
pub type RecvCb = extern "C" fn(arg: *mut c_void, data: *mut c_char, len: u16);
pub type SentCb = extern "C" fn(arg: *mut c_void);
pub type DnsFoundCb = extern "C" fn(name: *const c_char, ip: *mut IpAddr, arg: *mut c_void);
pub type EventCb = extern "C" fn(event: *mut SystemEvent);
pub type TimerCb = extern "C" fn(arg: *mut c_void);

/// `esp_tcp`.
#[repr(C)]
pub struct EspTcp {
    pub remote_port: i32,
    pub local_port: i32,
    pub local_ip: [u8; 4],
    pub remote_ip: [u8; 4],
    pub connect_callback: Option<ConnectCb>,
    pub reconnect_callback: Option<ReconnectCb>,
    pub disconnect_callback: Option<ConnectCb>,
    pub write_finish_fn: Option<ConnectCb>,
}

/// `struct espconn` (the `proto` union holds only pointers; TCP here).
#[repr(C)]
pub struct Espconn {
    /// `enum espconn_type`.
    pub kind: u32,
    /// `enum espconn_state`.
    pub state: u32,
    pub tcp: *mut EspTcp,
    pub recv_callback: Option<RecvCb>,
    pub sent_callback: Option<SentCb>,
    pub link_cnt: u8,
    pub reverse: *mut c_void,
}

extern "C" {
    // user_interface.h
    pub fn system_partition_table_regist(table: *const PartitionItem, num: u32, map: u32) -> u8;
    pub fn system_get_time() -> u32;
    pub fn system_get_chip_id() -> u32;
    pub fn system_adc_read() -> u16;
    pub fn wifi_set_opmode_current(mode: u8) -> u8;
    pub fn wifi_station_set_config_current(config: *mut StationConfig) -> u8;
    pub fn wifi_station_set_reconnect_policy(set: u8) -> u8;
    pub fn wifi_set_event_handler_cb(cb: EventCb);
    /// `bool system_update_cpu_freq(uint8 freq)`: 80 or 160 (`SYS_CPU_80MHZ`, `SYS_CPU_160MHZ`); the
    /// peripheral (APB) clock stays at 80 MHz, so UART baud rates do not change.
    pub fn system_update_cpu_freq(freq: u8) -> u8;
    /// `void system_soft_wdt_feed(void)`: restarts the SDK's software watchdog.
    pub fn system_soft_wdt_feed();

    // spi_flash.h: `SpiFlashOpResult spi_flash_read(uint32 src_addr, uint32 *des_addr, uint32 size)`;
    // flash address, destination and size 4-byte aligned; returns `SpiFlashOpResult` (an int enum).
    pub fn spi_flash_read(src_addr: u32, des_addr: *mut u32, size: u32) -> u32;

    // osapi.h (os_timer_setfn / os_timer_arm are macros over these)
    pub fn ets_timer_setfn(timer: *mut EtsTimer, func: TimerCb, arg: *mut c_void);
    pub fn ets_timer_arm_new(timer: *mut EtsTimer, time: u32, repeat: u8, ms: u8);

    // espconn.h
    pub fn espconn_gethostbyname(
        conn: *mut Espconn,
        host: *const c_char,
        addr: *mut IpAddr,
        found: DnsFoundCb,
    ) -> i8;
    pub fn espconn_port() -> u32;
    pub fn espconn_connect(conn: *mut Espconn) -> i8;
    pub fn espconn_disconnect(conn: *mut Espconn) -> i8;
    pub fn espconn_send(conn: *mut Espconn, data: *mut u8, len: u16) -> i8;
    pub fn espconn_regist_connectcb(conn: *mut Espconn, cb: ConnectCb) -> i8;
    pub fn espconn_regist_reconcb(conn: *mut Espconn, cb: ReconnectCb) -> i8;
    pub fn espconn_regist_disconcb(conn: *mut Espconn, cb: ConnectCb) -> i8;
    pub fn espconn_regist_recvcb(conn: *mut Espconn, cb: RecvCb) -> i8;
    pub fn espconn_regist_sentcb(conn: *mut Espconn, cb: SentCb) -> i8;
}

// The identity sector's writes (`sdk::identity_store::write_record`, from the provisioning console).
extern "C" {
    // spi_flash.h: `SpiFlashOpResult spi_flash_erase_sector(uint16 sec)` (sector = address / 4096).
    pub fn spi_flash_erase_sector(sector: u16) -> u32;
    // spi_flash.h: `SpiFlashOpResult spi_flash_write(uint32 des_addr, uint32 *src_addr, uint32 size)`.
    pub fn spi_flash_write(des_addr: u32, src_addr: *mut u32, size: u32) -> u32;
}

// Layouts as the SDK's gcc (xtensa-lx106, ILP32) lays out the C structs.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<FastScanThreshold>() == 8);
    assert!(offset_of!(StationConfig, channel) == 96);
    assert!(offset_of!(StationConfig, bssid) == 98);
    assert!(offset_of!(StationConfig, threshold) == 104);
    assert!(offset_of!(StationConfig, open_and_wep_mode_disable) == 112);
    assert!(size_of::<StationConfig>() == 116);
    assert!(offset_of!(EventStaDisconnected, reason) == 39);
    assert!(offset_of!(SystemEvent, disconnected) == 4);
    assert!(size_of::<PartitionItem>() == 12);
    assert!(size_of::<EtsTimer>() == 20);
    assert!(offset_of!(EspTcp, remote_ip) == 12);
    assert!(offset_of!(EspTcp, connect_callback) == 16);
    assert!(size_of::<EspTcp>() == 32);
    assert!(offset_of!(Espconn, tcp) == 8);
    assert!(offset_of!(Espconn, recv_callback) == 12);
    assert!(offset_of!(Espconn, link_cnt) == 20);
    assert!(offset_of!(Espconn, reverse) == 24);
    assert!(size_of::<Espconn>() == 28);
};
