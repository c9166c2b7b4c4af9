//! Assembles rt/start.S with the Debian xtensa-lx106 toolchain into
//! `libtmcrt.a` and selects the linker script (QEMU `sim` or ESP8266).
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e} (run scripts/firmware-deps.sh)"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let prefix = env::var("XTENSA_PREFIX").unwrap_or_else(|_| "xtensa-lx106-elf-".into());

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
