/* Compile-only check of src/sdk/ffi.rs against a real ESP8266 NONOS SDK's
 * headers: `tools/check-sdk-link --real-sdk DIR` compiles this with
 * xtensa-lx106-elf-gcc -fsyntax-only -I DIR/include. Every number here is
 * also asserted on the Rust side (the `const _` block at the end of ffi.rs);
 * keep the two in sync. */
#include "c_types.h"
#include "ets_sys.h"
#include "os_type.h"
#include "ip_addr.h"
#include "user_interface.h"
#include "espconn.h"
#include <stddef.h>

#define CHECK(x) _Static_assert(x, #x)

/* struct station_config */
CHECK(sizeof(wifi_fast_scan_threshold_t) == 8);
CHECK(offsetof(struct station_config, channel) == 96);
CHECK(offsetof(struct station_config, bssid) == 98);
CHECK(offsetof(struct station_config, threshold) == 104);
CHECK(offsetof(struct station_config, open_and_wep_mode_disable) == 112);
CHECK(sizeof(struct station_config) == 116);
/* System_Event_t */
CHECK(offsetof(Event_StaMode_Disconnected_t, reason) == 39);
CHECK(offsetof(System_Event_t, event_info) == 4);
CHECK(offsetof(Event_StaMode_Got_IP_t, ip) == 0);
CHECK(sizeof(System_Event_t) == 44);
/* partition_item_t, os_timer_t, ip_addr_t */
CHECK(sizeof(partition_item_t) == 12);
CHECK(sizeof(os_timer_t) == 20);
CHECK(sizeof(ip_addr_t) == 4);
/* esp_tcp, struct espconn */
CHECK(offsetof(esp_tcp, remote_ip) == 12);
CHECK(offsetof(esp_tcp, connect_callback) == 16);
CHECK(sizeof(esp_tcp) == 32);
CHECK(offsetof(struct espconn, proto) == 8);
CHECK(offsetof(struct espconn, recv_callback) == 12);
CHECK(offsetof(struct espconn, link_cnt) == 20);
CHECK(offsetof(struct espconn, reverse) == 24);
CHECK(sizeof(struct espconn) == 28);
/* constants */
CHECK(sizeof(bool) == 1);
CHECK(STATION_MODE == 1);
CHECK(AUTH_WPA2_PSK == 3);
CHECK(EVENT_STAMODE_CONNECTED == 0);
CHECK(EVENT_STAMODE_DISCONNECTED == 1);
CHECK(EVENT_STAMODE_GOT_IP == 3);
CHECK(EVENT_STAMODE_DHCP_TIMEOUT == 4);
CHECK(ESPCONN_OK == 0);
CHECK(ESPCONN_INPROGRESS == -5);
CHECK(ESPCONN_TCP == 0x10);
CHECK(ESPCONN_NONE == 0);
CHECK(SYSTEM_PARTITION_RF_CAL == 4);
CHECK(SYSTEM_PARTITION_PHY_DATA == 5);
CHECK(SYSTEM_PARTITION_SYSTEM_PARAMETER == 6);
CHECK(SYSTEM_PARTITION_CUSTOMER_BEGIN == 100);
CHECK(FLASH_SIZE_32M_MAP_512_512 == 4);
