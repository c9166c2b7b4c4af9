//! Assembles rt/start.S with the Debian xtensa-lx106 toolchain into
//! `libtmcrt.a`, selects the linker script (QEMU `sim` or ESP8266) and
//! compiles the sensor configuration (`sensor.toml`, or the file named by
//! `TMC_SENSOR_CONFIG`) into `$OUT_DIR/sensor_config.rs` (see src/config.rs).
use std::collections::BTreeMap;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e} (run scripts/firmware-deps.sh)"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// The config fields: (name, is_string).
const FIELDS: &[(&str, bool)] = &[
    ("ssid", true),
    ("passphrase", true),
    ("broker_host", true),
    ("broker_port", false),
    ("topic", true),
    ("interval_ms", false),
    ("client_id", true),
];

fn config_error(path: &Path, msg: String) -> ! {
    // cargo prints a failed build script's stderr.
    eprintln!("error: sensor config {}: {msg}", path.display());
    std::process::exit(1);
}

/// Parses the flat `key = value` TOML subset and writes the Rust constants.
fn sensor_config(manifest: &Path, out: &Path) {
    println!("cargo:rerun-if-env-changed=TMC_SENSOR_CONFIG");
    let path = match env::var_os("TMC_SENSOR_CONFIG") {
        Some(p) => PathBuf::from(p),
        None => manifest.join("sensor.toml"),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| config_error(&path, format!("cannot read: {e}")));
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        // Strip a comment outside quotes.
        let mut in_str = false;
        let mut end = raw.len();
        for (i, c) in raw.char_indices() {
            match c {
                '"' => in_str = !in_str,
                '#' if !in_str => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let line = raw[..end].trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            config_error(&path, format!("line {line_no}: expected `key = value`"));
        };
        let key = key.trim();
        let value = value.trim();
        let Some(&(_, is_string)) = FIELDS.iter().find(|(k, _)| *k == key) else {
            config_error(&path, format!("line {line_no}: unknown field `{key}`"));
        };
        let parsed = if is_string {
            let inner = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .filter(|v| !v.contains('"') && !v.contains('\\'))
                .unwrap_or_else(|| {
                    config_error(
                        &path,
                        format!("field `{key}`: expected a double-quoted string without escapes, got `{value}`"),
                    )
                });
            inner.to_string()
        } else {
            value
                .replace('_', "")
                .parse::<u64>()
                .unwrap_or_else(|_| {
                    config_error(
                        &path,
                        format!("field `{key}`: expected an integer, got `{value}`"),
                    )
                })
                .to_string()
        };
        if values.insert(key.to_string(), parsed).is_some() {
            config_error(&path, format!("line {line_no}: field `{key}` given twice"));
        }
    }
    for (key, _) in FIELDS {
        if !values.contains_key(*key) {
            config_error(&path, format!("field `{key}` is missing"));
        }
    }
    let get = |k: &str| values[k].clone();
    let num = |k: &str| values[k].parse::<u64>().unwrap();
    for key in ["ssid", "broker_host", "topic", "client_id"] {
        if get(key).is_empty() {
            config_error(&path, format!("field `{key}` must not be empty"));
        }
    }
    if get("ssid").len() > 32 {
        config_error(&path, "field `ssid`: longer than 32 bytes".into());
    }
    let pass = get("passphrase");
    if !(8..=63).contains(&pass.len()) {
        config_error(
            &path,
            "field `passphrase`: WPA2 needs 8..63 characters".into(),
        );
    }
    let port = num("broker_port");
    if port == 0 || port > 65535 {
        config_error(
            &path,
            format!("field `broker_port`: {port} is not a TCP port (1..65535)"),
        );
    }
    let topic = get("topic");
    if topic.contains(['+', '#', '\0']) {
        config_error(
            &path,
            "field `topic`: no wildcards (+, #) or NUL in a publish topic".into(),
        );
    }
    let interval = num("interval_ms");
    if !(100..=86_400_000).contains(&interval) {
        config_error(
            &path,
            format!("field `interval_ms`: {interval} outside 100..86400000"),
        );
    }
    let client_id = get("client_id");
    if client_id.len() > 23 || !client_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        config_error(
            &path,
            "field `client_id`: MQTT 3.1.1 guarantees 1..23 ASCII letters/digits".into(),
        );
    }
    let code = format!(
        "// Generated by build.rs from {path:?}. Do not edit.\n\
         pub const SSID: &str = {ssid:?};\n\
         pub const PASSPHRASE: &str = {pass:?};\n\
         pub const BROKER_HOST: &str = {host:?};\n\
         pub const BROKER_PORT: u16 = {port};\n\
         pub const TOPIC: &str = {topic:?};\n\
         pub const INTERVAL_MS: u64 = {interval};\n\
         pub const CLIENT_ID: &str = {client_id:?};\n",
        path = path.display().to_string(),
        ssid = get("ssid"),
        host = get("broker_host"),
    );
    std::fs::write(out.join("sensor_config.rs"), code).expect("write sensor_config.rs");
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let prefix = env::var("XTENSA_PREFIX").unwrap_or_else(|_| "xtensa-lx106-elf-".into());

    sensor_config(&manifest, &out);

    let src = manifest.join("rt/start.S");
    let obj = out.join("start.o");
    let lib = out.join("libtmcrt.a");
    let esp8266 = env::var_os("CARGO_FEATURE_ESP8266").is_some();
    let mut cc = Command::new(format!("{prefix}gcc"));
    cc.args(["-c", "-mlongcalls"]);
    if esp8266 {
        cc.arg("-DTMC_ESP8266");
    }
    run(cc.arg("-o").arg(&obj).arg(&src));
    let _ = std::fs::remove_file(&lib);
    run(Command::new(format!("{prefix}ar"))
        .arg("crs")
        .arg(&lib)
        .arg(&obj));

    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static:+whole-archive=tmcrt");

    let script = if esp8266 { "esp8266.ld" } else { "sim.ld" };
    let link_dir = manifest.join("link");
    println!("cargo:rustc-link-arg=-L{}", link_dir.display());
    println!("cargo:rustc-link-arg=-T{}", link_dir.join(script).display());
    println!("cargo:rerun-if-changed=rt/start.S");
    println!("cargo:rerun-if-changed=link");
    println!("cargo:rerun-if-env-changed=XTENSA_PREFIX");
}
