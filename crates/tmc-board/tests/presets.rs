//! The shipped presets parse, and every kind of bad preset is refused with file, field and problem.

use std::path::PathBuf;

use tmc_board::{BoardError, BoardPreset, ChipSelectMode};
use tmc_radio::modem::ModemConfig;
use tmc_radio::{DutyCycle, Region};

fn preset_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../board-config")
        .join(name)
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(preset_path(name)).unwrap()
}

/// The Dragino preset with one line replaced.
fn dragino_with(from: &str, to: &str) -> String {
    let text = shipped("dragino-lora-hat.toml");
    assert!(text.contains(from), "{from:?} not in the preset");
    text.replacen(from, to, 1)
}

fn invalid(text: &str) -> (String, &'static str) {
    let err = BoardPreset::from_toml_str(text, "board-config/test.toml").unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("board-config/test.toml: "), "{message}");
    (message, err.field().unwrap_or("<syntax>"))
}

#[test]
fn dragino_preset() {
    let p = BoardPreset::from_file(preset_path("dragino-lora-hat.toml")).unwrap();
    assert_eq!(p.spi.device, PathBuf::from("/dev/spidev0.0"));
    assert_eq!(p.spi.chip_select, ChipSelectMode::Kernel);
    assert_eq!((p.gpio.dio0, p.gpio.reset), (4, 17));
    assert_eq!(p.radio.region, Region::Eu868);
    assert_eq!(p.radio.config.frequency_hz, 868_000_000);
    assert_eq!(p.radio.config.modem, ModemConfig::RADIOHEAD_DEFAULT);
    assert_eq!(p.radio.duty_cycle(), DutyCycle::ONE_PERCENT);
    assert_eq!(p.radio.node_address, 1);
    let pins = p.linux_pins();
    assert_eq!(pins.dio0_line, 4);
}

#[test]
fn dragino_with_our_chip_select() {
    let text = dragino_with(
        "chip_select = \"kernel\"\n# chip_select = \"gpio\"\n# cs_gpio = 25",
        "chip_select = \"gpio\"\ncs_gpio = 25",
    );
    let p = BoardPreset::from_toml_str(&text, "x.toml").unwrap();
    assert_eq!(p.spi.chip_select, ChipSelectMode::Gpio(25));
}

#[test]
fn adafruit_and_template_presets() {
    let p = BoardPreset::from_file(preset_path("adafruit-rfm9x-bonnet.toml")).unwrap();
    assert_eq!(
        (p.spi.device.to_str(), p.gpio.dio0, p.gpio.reset),
        (Some("/dev/spidev0.1"), 22, 25)
    );
    BoardPreset::from_file(preset_path("custom-template.toml")).unwrap();
}

#[test]
fn missing_file_names_it() {
    let err = BoardPreset::from_file("/nonexistent/board.toml").unwrap_err();
    assert!(matches!(err, BoardError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/board.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn error_names_the_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, dragino_with("dio0 = 4", "dio0 = 40")).unwrap();
    let err = BoardPreset::from_file(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: gpio.dio0: unknown pin GPIO40: the 40-pin header has GPIO0..=GPIO27 (BCM numbering)", path.display())
    );
}

#[test]
fn unknown_pin() {
    let (message, field) = invalid(&dragino_with("reset = 17", "reset = 99"));
    assert_eq!(field, "gpio.reset");
    assert!(message.contains("unknown pin GPIO99"), "{message}");
}

#[test]
fn pins_in_conflict() {
    let (message, field) = invalid(&dragino_with("reset = 17", "reset = 4"));
    assert_eq!(
        (
            field,
            message.contains("GPIO4 is already used by gpio.dio0")
        ),
        ("gpio.reset", true),
        "{message}"
    );
    let (message, field) = invalid(&dragino_with("dio0 = 4", "dio0 = 10"));
    assert_eq!(
        (field, message.contains("SPI0 MOSI")),
        ("gpio.dio0", true),
        "{message}"
    );
}

#[test]
fn out_of_band_frequency() {
    let (message, field) = invalid(&dragino_with(
        "frequency_mhz = 868.0",
        "frequency_mhz = 868.65",
    ));
    assert_eq!(field, "radio.frequency_mhz");
    assert!(
        message.contains("868.65 MHz is outside every EU868 band"),
        "{message}"
    );
    let (message, _) = invalid(&dragino_with(
        "frequency_mhz = 868.0",
        "frequency_mhz = 915.0",
    ));
    assert!(message.contains("outside every EU868 band"), "{message}");
    // The centre is in the band but the channel is not.
    let (message, _) = invalid(&dragino_with(
        "frequency_mhz = 868.0",
        "frequency_mhz = 868.55",
    ));
    assert!(message.contains("spills over the edge"), "{message}");
}

#[test]
fn power_above_the_legal_limit() {
    let (message, field) = invalid(&dragino_with("tx_power_dbm = 14", "tx_power_dbm = 20"));
    assert_eq!(field, "radio.tx_power_dbm");
    assert!(
        message.contains("20 dBm is above the legal limit of 14 dBm in EU868 h1."),
        "{message}"
    );
    // 869.525 MHz (h1.7) allows 27 dBm, more than the chip: 20 dBm is fine there.
    let text = dragino_with("tx_power_dbm = 14", "tx_power_dbm = 20")
        .replace("frequency_mhz = 868.0", "frequency_mhz = 869.525");
    assert_eq!(
        BoardPreset::from_toml_str(&text, "x.toml")
            .unwrap()
            .radio
            .duty_cycle(),
        DutyCycle::TEN_PERCENT
    );
    let (message, _) = invalid(&dragino_with("tx_power_dbm = 14", "tx_power_dbm = 23"));
    assert!(
        message.contains("outside the PA_BOOST range 2..=20 dBm"),
        "{message}"
    );
}

#[test]
fn spi_mistakes() {
    let (message, field) = invalid(&dragino_with("/dev/spidev0.0", "/dev/spi0"));
    assert_eq!(field, "spi.device");
    assert!(
        message.contains("not a device path like \"/dev/spidev0.0\""),
        "{message}"
    );
    let (_, field) = invalid(&dragino_with(
        "clock_hz = 1_000_000",
        "clock_hz = 20_000_000",
    ));
    assert_eq!(field, "spi.clock_hz");
    let (message, field) = invalid(&dragino_with(
        "chip_select = \"kernel\"\n",
        "chip_select = \"gpio\"\n",
    ));
    assert_eq!(
        (field, message.contains("missing")),
        ("spi.cs_gpio", true),
        "{message}"
    );
}

#[test]
fn modem_and_address_mistakes() {
    for (from, to, field) in [
        (
            "spreading_factor = 7",
            "spreading_factor = 6",
            "radio.modem.spreading_factor",
        ),
        (
            "bandwidth_khz = 125",
            "bandwidth_khz = 100",
            "radio.modem.bandwidth_khz",
        ),
        (
            "coding_rate = \"4/5\"",
            "coding_rate = \"5/4\"",
            "radio.modem.coding_rate",
        ),
        (
            "node_address = 1 ",
            "node_address = 255 ",
            "radio.node_address",
        ),
        ("region = \"EU868\"", "region = \"EU869\"", "radio.region"),
    ] {
        assert_eq!(invalid(&dragino_with(from, to)).1, field);
    }
}

#[test]
fn unknown_field_is_a_syntax_error_naming_it() {
    let (message, field) = invalid(&dragino_with("tx_power_dbm = 14", "tx_power = 14"));
    assert_eq!(field, "<syntax>");
    assert!(message.contains("unknown field `tx_power`"), "{message}");
    assert!(message.contains("line"), "{message}");
}

#[test]
fn a_channel_may_span_adjacent_sub_bands_and_the_strictest_governs() {
    // 868.0 MHz (RadioHead's default) spans h1.4 and h1.5: both 1 %, so it is accepted at 1 %.
    let preset = BoardPreset::from_toml_str(
        &dragino_with("tx_power_dbm = 14", "tx_power_dbm = 14"),
        "x.toml",
    )
    .unwrap();
    assert_eq!(preset.radio.duty_cycle(), DutyCycle::ONE_PERCENT);
    assert_eq!(preset.radio_config().frequency_hz, 868_000_000);
    // 865.0 MHz spans h1.3 (0.1 %) and h1.4 (1 %): the stricter 0.1 % governs.
    let text = dragino_with("frequency_mhz = 868.0", "frequency_mhz = 865.0");
    let preset = BoardPreset::from_toml_str(&text, "x.toml").unwrap();
    assert_eq!(preset.radio.duty_cycle(), DutyCycle::ONE_PERMILLE);
    // 868.6 MHz would reach into the gap between h1.5 and h1.6.
    let (message, _) = invalid(&dragino_with(
        "frequency_mhz = 868.0",
        "frequency_mhz = 868.6",
    ));
    assert!(message.contains("spills over the edge"), "{message}");
}
