//! Assembles rt/start.S and rt/context.S with the Debian xtensa-lx106 toolchain into
//! `libtmcrt.a`, selects the linker script (QEMU `sim`, ESP8266, or with
//! feature `nonos-sdk` the NONOS SDK from `ESP8266_SDK`, checked here; the
//! first two also for hil-test, whose build script reads them back) and
//! compiles the sensor configuration (`sensor.toml`, or the file named by
//! `TMC_SENSOR_CONFIG`) into `$OUT_DIR/sensor_config.rs` (see src/config.rs).
use std::collections::BTreeMap;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

// The same limits `tmc-provision sensor-config` applies (a build-dependency: compiled for the host).
use tmc_sensor_core::config as limits;

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e} (run make deps)"));
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
    if get("ssid").len() > *limits::SSID_LEN.end() {
        config_error(&path, "field `ssid`: longer than 32 bytes".into());
    }
    let pass = get("passphrase");
    if !limits::PASSPHRASE_LEN.contains(&pass.len()) {
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
    if !limits::is_publish_topic(&topic) {
        config_error(
            &path,
            "field `topic`: no wildcards (+, #) or NUL in a publish topic".into(),
        );
    }
    let interval = num("interval_ms");
    if !limits::INTERVAL_MS.contains(&interval) {
        config_error(
            &path,
            format!("field `interval_ms`: {interval} outside 100..86400000"),
        );
    }
    let client_id = get("client_id");
    if !limits::is_guaranteed_client_id(&client_id) {
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

/// The NONOS SDK release the `nonos-sdk` feature is written against (its
/// `eagle.app.v6.ld` enters at `call_user_start1`, new in this tag).
const SDK_VERSION: &str = "ESP8266_NONOS_SDK v3.0.6";

/// SDK libraries linked by the `nonos-sdk` build (`lib/lib<name>.a`): the
/// Wi-Fi station + espconn TCP subset of the SDK examples' link line. `driver`
/// holds the v3.0.6 entry `call_user_start1` (ROM patch, then libmain's
/// `call_user_start`); `c`/`gcc` are the SDK's stripped newlib/libgcc (the
/// stripped functions come from the ROM via eagle.rom.addr.v6.ld).
const SDK_LIBS: &[&str] = &[
    "main", "net80211", "wpa", "lwip", "pp", "phy", "crypto", "hal", "driver", "c", "gcc",
];

/// SDK files checked before linking: the ROM symbol table we INCLUDE, the
/// SDK's own app script (only as a version marker: link/sdk.ld replaces it,
/// see there) and the version header.
const SDK_FILES: &[&str] = &[
    "ld/eagle.rom.addr.v6.ld",
    "ld/eagle.app.v6.ld",
    "include/version.h",
];

fn sdk_error(msg: String) -> ! {
    // One line: cargo shows it under "failed to run custom build command".
    eprintln!("error: ESP8266_SDK: {msg} (expected {SDK_VERSION}; see firmware/README.md)");
    std::process::exit(1);
}

/// Checks `ESP8266_SDK` and returns the directory (feature `nonos-sdk`).
fn sdk_dir() -> PathBuf {
    println!("cargo:rerun-if-env-changed=ESP8266_SDK");
    let Some(dir) = env::var_os("ESP8266_SDK").filter(|d| !d.is_empty()) else {
        sdk_error(
            "not set; the `nonos-sdk` feature links Espressif's NONOS SDK from ESP8266_SDK=<dir>"
                .into(),
        );
    };
    let dir = PathBuf::from(dir);
    if !dir.is_dir() {
        sdk_error(format!("{} is not a directory", dir.display()));
    }
    let files = SDK_FILES
        .iter()
        .map(|f| dir.join(f))
        .chain(SDK_LIBS.iter().map(|l| dir.join(format!("lib/lib{l}.a"))));
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        if !path.is_file() {
            sdk_error(format!("missing {}", path.display()));
        }
    }
    let version = std::fs::read_to_string(dir.join("include/version.h")).unwrap_or_default();
    let field = |name: &str| {
        version.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("#define") && w.next() == Some(name))
                .then(|| w.next().map(str::to_string))
                .flatten()
        })
    };
    // v3.0.6 still says 3.0.4 in version.h; only 3.0 is checked there.
    if field("ESP_SDK_VERSION_MAJOR").as_deref() != Some("3")
        || field("ESP_SDK_VERSION_MINOR").as_deref() != Some("0")
    {
        sdk_error(format!(
            "{} is not a 3.0.x SDK (ESP_SDK_VERSION_MAJOR/MINOR)",
            dir.join("include/version.h").display()
        ));
    }
    let app_ld = std::fs::read_to_string(dir.join("ld/eagle.app.v6.ld")).unwrap_or_default();
    if !app_ld.contains("call_user_start1") {
        sdk_error(format!(
            "{} does not enter at call_user_start1 (older than v3.0.6?)",
            dir.join("ld/eagle.app.v6.ld").display()
        ));
    }
    dir
}

/// Names the SDK's ROM table PROVIDEs (`PROVIDE ( name = 0x... );`), one per
/// line, for tools/xtensa-link to localize in compiler_builtins: the SDK
/// expects the ROM's memcpy/__udivdi3/soft-float (it strips them from its
/// libc/libgcc), and compiler_builtins' copies would otherwise win.
fn rom_symbols(sdk: &Path, out: &Path) -> PathBuf {
    let rom = sdk.join("ld/eagle.rom.addr.v6.ld");
    let text = std::fs::read_to_string(&rom)
        .unwrap_or_else(|e| sdk_error(format!("cannot read {}: {e}", rom.display())));
    let names: String = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("PROVIDE"))
        .filter_map(|l| l.trim_start().strip_prefix('('))
        .filter_map(|l| l.split('=').next())
        .map(|name| format!("{}\n", name.trim()))
        .collect();
    let path = out.join("rom-symbols.txt");
    std::fs::write(&path, names).expect("write rom-symbols.txt");
    path
}

/// Link arguments for the SDK build: our link/sdk.ld (SDK memory map, Rust
/// code in irom0) INCLUDEs the SDK's eagle.rom.addr.v6.ld from `-L<sdk>/ld`.
fn sdk_link(sdk: &Path, link_dir: &Path, out: &Path) {
    let rom = rom_symbols(sdk, out);
    println!("cargo:rustc-link-arg=--tmc-rom-symbols={}", rom.display());
    println!("cargo:rustc-link-arg=-L{}", link_dir.display());
    println!("cargo:rustc-link-arg=-L{}", sdk.join("ld").display());
    println!("cargo:rustc-link-arg=-L{}", sdk.join("lib").display());
    println!(
        "cargo:rustc-link-arg=-T{}",
        link_dir.join("sdk.ld").display()
    );
    // The link map beside the ELF (target/<triple>/<profile>/sensor.map; OUT_DIR is
    // <profile>/build/<pkg>/out): tools/size-report tells the SDK's static DRAM from ours with it.
    if let Some(profile_dir) = out.ancestors().nth(3) {
        println!(
            "cargo:rustc-link-arg-bin=sensor=-Wl,-Map={}",
            profile_dir.join("sensor.map").display()
        );
    }
    println!("cargo:rustc-link-arg=-Wl,--start-group");
    for lib in SDK_LIBS {
        println!("cargo:rustc-link-arg=-l{lib}");
    }
    println!("cargo:rustc-link-arg=-Wl,--end-group");
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
    let nonos_sdk = env::var_os("CARGO_FEATURE_NONOS_SDK").is_some();
    // Checked first: a bad SDK directory is the likelier mistake.
    let sdk = nonos_sdk.then(sdk_dir);
    let mut cc = Command::new(format!("{prefix}gcc"));
    cc.args(["-c", "-mlongcalls"]);
    if esp8266 {
        cc.arg("-DTMC_ESP8266");
    }
    if nonos_sdk {
        // The SDK brings the reset entry and exception vectors.
        cc.arg("-DTMC_NONOS_SDK");
    }
    run(cc.arg("-o").arg(&obj).arg(&src));
    // The coroutine's stack switch (src/coroutine.rs), in every build.
    let context_obj = out.join("context.o");
    run(Command::new(format!("{prefix}gcc"))
        .args(["-c", "-mlongcalls", "-o"])
        .arg(&context_obj)
        .arg(manifest.join("rt/context.S")));
    let _ = std::fs::remove_file(&lib);
    run(Command::new(format!("{prefix}ar"))
        .arg("crs")
        .arg(&lib)
        .arg(&obj)
        .arg(&context_obj));

    println!("cargo:rustc-link-search=native={}", out.display());
    // Not bundled into the rlib: tools/xtensa-link swaps every rlib for its re-assembled `.s`, so the
    // runtime must reach the link line as `-ltmcrt` (also for the binaries of dependents, hil-test).
    println!("cargo:rustc-link-lib=static:-bundle,+whole-archive=tmcrt");

    let link_dir = manifest.join("link");
    if let Some(sdk) = &sdk {
        sdk_link(sdk, &link_dir, &out);
    } else {
        let script = if esp8266 { "esp8266.ld" } else { "sim.ld" };
        println!("cargo:rustc-link-arg=-L{}", link_dir.display());
        println!("cargo:rustc-link-arg=-T{}", link_dir.join(script).display());
        // Link arguments only reach this package's binaries: hil-test's build script passes the same
        // script to its own (DEP_TMCRT_LINK_DIR / DEP_TMCRT_LINK_SCRIPT).
        println!("cargo:link_dir={}", link_dir.display());
        println!("cargo:link_script={}", link_dir.join(script).display());
    }
    println!("cargo:rerun-if-changed=rt/start.S");
    println!("cargo:rerun-if-changed=rt/context.S");
    println!("cargo:rerun-if-changed=link");
    println!("cargo:rerun-if-env-changed=XTENSA_PREFIX");
}
