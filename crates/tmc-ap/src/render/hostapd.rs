//! hostapd: WPA2-PSK (CCMP only), regulatory domain, 2.4 GHz channel, control socket for `tmc-ap status`.

use std::fmt::Write;

use tmc_config::site::{ApSettings, Channel, WpaKey};

use super::GENERATED;
use crate::files::{
    ManagedFile, Service, HOSTAPD_CONF, HOSTAPD_CTRL_DIR, PUBLIC_MODE, SECRET_MODE,
};

/// `/etc/hostapd/hostapd.conf`, mode 0600: it holds the passphrase.
pub(super) fn conf(ap: &ApSettings) -> ManagedFile {
    let mut c = String::new();
    let mut line = |s: String| {
        c.push_str(&s);
        c.push('\n');
    };
    line(format!("# {GENERATED}"));
    line("# Access point for the TMC sensors (ESP8266: 2.4 GHz, WPA2-PSK/CCMP).".into());
    line(format!("interface={}", ap.interface));
    line("driver=nl80211".into());
    line(format!("ctrl_interface={HOSTAPD_CTRL_DIR}"));
    line("ctrl_interface_group=0".into());
    line(String::new());
    line(format!("ssid={}", ap.ssid));
    if !ap.ssid.is_ascii() {
        line("utf8_ssid=1".into());
    }
    line(format!(
        "ignore_broadcast_ssid={}",
        u8::from(ap.hidden_ssid)
    ));
    line(String::new());
    line(
        "# Regulatory domain: the country's channels and power limits, announced to stations."
            .into(),
    );
    line(format!("country_code={}", ap.country));
    line("ieee80211d=1".into());
    line("hw_mode=g".into());
    line(match ap.channel {
        Channel::Fixed(n) => format!("channel={n}"),
        Channel::Auto => {
            "# 0: automatic channel selection (the driver must support it).\nchannel=0".into()
        }
    });
    line("wmm_enabled=1".into());
    line(format!("ieee80211n={}", u8::from(ap.ieee80211n)));
    line(format!("ap_isolate={}", u8::from(ap.isolate_clients)));
    line(String::new());
    line("# WPA2 only, CCMP only: no WPA1, no TKIP, no WEP, no open network.".into());
    line("auth_algs=1".into());
    line("wpa=2".into());
    line("wpa_key_mgmt=WPA-PSK".into());
    line("wpa_pairwise=CCMP".into());
    line("rsn_pairwise=CCMP".into());
    match &ap.key {
        WpaKey::Passphrase(p) => line(format!("wpa_passphrase={p}")),
        WpaKey::Psk(hex) => line(format!("wpa_psk={hex}")),
    }
    ManagedFile::file(
        HOSTAPD_CONF,
        "hostapd.conf",
        Service::Hostapd,
        c,
        SECRET_MODE,
    )
}

/// A unit drop-in that starts hostapd with [`HOSTAPD_CONF`] on every distribution (Yocto's unit reads
/// `/etc/hostapd.conf`, Debian's `/etc/hostapd/hostapd.conf` through `/etc/default/hostapd`).
pub(super) fn service_override() -> ManagedFile {
    let mut c = String::new();
    let _ = writeln!(c, "# {GENERATED}");
    let _ = writeln!(
        c,
        "# Run hostapd with tmc-ap's configuration whatever the distribution's default."
    );
    let _ = writeln!(c, "[Unit]");
    let _ = writeln!(c, "Wants=systemd-networkd.service");
    let _ = writeln!(c);
    let _ = writeln!(c, "[Service]");
    let _ = writeln!(c, "Type=forking");
    let _ = writeln!(c, "PIDFile=/run/hostapd.pid");
    let _ = writeln!(c, "ExecStart=");
    let _ = writeln!(
        c,
        "ExecStart=/usr/sbin/hostapd -B -P /run/hostapd.pid {HOSTAPD_CONF}"
    );
    let _ = writeln!(c, "Restart=on-failure");
    let _ = writeln!(c, "RestartSec=2");
    ManagedFile::file(
        "/etc/systemd/system/hostapd.service.d/tmc-ap.conf",
        "hostapd.service.d-tmc-ap.conf",
        Service::Hostapd,
        c,
        PUBLIC_MODE,
    )
}
