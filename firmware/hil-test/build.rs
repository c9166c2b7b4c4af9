//! Links every check binary with the linker script tmc-firmware's build script chose for its features
//! (QEMU `sim`, or the ESP8266 memory map with feature `esp8266`): link arguments reach only the
//! binaries of the package that prints them, so they are passed on through `links = "tmcrt"`.
use std::env;

fn main() {
    let dir = env::var("DEP_TMCRT_LINK_DIR").expect("tmc-firmware's build script sets link_dir");
    let script =
        env::var("DEP_TMCRT_LINK_SCRIPT").expect("tmc-firmware's build script sets link_script");
    println!("cargo:rustc-link-arg=-L{dir}");
    println!("cargo:rustc-link-arg=-T{script}");
}
