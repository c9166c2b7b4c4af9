//! The site owns node addresses and sender ids: provisioning assigns free ones, keeps a board's own, refuses
//! one another board holds (the card and the inventory stay as they were), and the card carries the
//! assignment the relay checks itself against.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use tmc_provision::{Boards, Role, WriteOptions, BOARDS_FILE};

/// A second (third, ...) freshly flashed card.
fn card(f: &Fixture, n: u32) -> PathBuf {
    let boot = f.dir.join(format!("boot-{n}"));
    write_mode(&boot.join("config.txt"), "dtparam=spi=on\n", 0o644);
    boot
}

fn on(f: &Fixture, boot: &Path, role: Role, name: &str) -> WriteOptions {
    WriteOptions {
        boot: boot.to_owned(),
        ..f.options(role, name)
    }
}

fn assignment(boot: &Path) -> tmc_config::assignment::Assignment {
    toml::from_str(&fs::read_to_string(boot.join("tmc/assignment.toml")).unwrap()).unwrap()
}

/// Expects `write` to refuse with `want`, leaving the card and the site's inventory unchanged.
fn refused(f: &Fixture, options: &WriteOptions, want: &str) {
    let inventory = f.site.dir().join(BOARDS_FILE);
    let (card, boards) = (snapshot(&options.boot), fs::read(&inventory).unwrap());
    let err = tmc_provision::write(options).unwrap_err().to_string();
    assert!(err.contains(want), "want {want:?} in: {err}");
    assert!(!err.contains('\n'), "one line: {err}");
    assert_eq!(
        snapshot(&options.boot),
        card,
        "the card changed after: {err}"
    );
    assert_eq!(
        fs::read(&inventory).unwrap(),
        boards,
        "the inventory changed after: {err}"
    );
}

#[test]
fn two_concentrators_without_addresses_get_their_own_and_keep_them() {
    let f = Fixture::new();
    let first = tmc_provision::write(&on(&f, &f.boot, Role::Concentrator, "c1")).unwrap();
    assert_eq!((first.board.address, first.board.sender), (10, Some(10)));
    let second_card = card(&f, 2);
    let second = tmc_provision::write(&on(&f, &second_card, Role::Concentrator, "c2")).unwrap();
    assert_eq!((second.board.address, second.board.sender), (11, Some(11)));
    // The cards say so: the relay's configuration and the assignment it checks itself against.
    for (boot, n) in [(&f.boot, 10), (&second_card, 11)] {
        let relay = fs::read_to_string(boot.join("tmc/relay.toml")).unwrap();
        assert!(relay.contains(&format!("address = {n}\n")), "{relay}");
        assert!(relay.contains(&format!("sender = {n}\n")), "{relay}");
        let a = assignment(boot);
        assert_eq!((a.address, a.sender), (n, u32::from(n)));
    }

    // A new card for c1 keeps its address; a gateway accepts both relays.
    let again = tmc_provision::write(&on(&f, &card(&f, 3), Role::Concentrator, "c1")).unwrap();
    assert_eq!((again.board.address, again.board.sender), (10, Some(10)));
    let gateway_card = card(&f, 4);
    let gateway = tmc_provision::write(&on(&f, &gateway_card, Role::Gateway, "gw")).unwrap();
    assert_eq!((gateway.board.address, gateway.board.sender), (1, None));
    let receiver = fs::read_to_string(gateway_card.join("tmc/receiver.toml")).unwrap();
    assert!(receiver.contains("peers = [10, 11]"), "{receiver}");

    let boards = Boards::load(f.site.dir()).unwrap();
    let listed: Vec<_> = boards
        .boards
        .iter()
        .map(|b| (b.name.as_str(), b.role, b.address, b.sender))
        .collect();
    assert_eq!(
        listed,
        [
            ("c1", Role::Concentrator, 10, Some(10)),
            ("c2", Role::Concentrator, 11, Some(11)),
            ("gw", Role::Gateway, 1, None),
        ]
    );
    // The listing, through the command.
    // Through the test runner (qemu for the aarch64 build), as every test-started binary.
    let out = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-provision"))
        .args(["list", "--site"])
        .arg(f.site.dir())
        .output()
        .unwrap();
    let table = tmc_testkit::success_stdout(&out);
    assert!(
        table
            .lines()
            .nth(2)
            .unwrap()
            .split_whitespace()
            .eq(["c2", "concentrator", "11", "11"]),
        "{table}"
    );
}

#[test]
fn an_address_or_sender_id_another_board_holds_is_refused() {
    let f = Fixture::new();
    tmc_provision::write(&on(&f, &f.boot, Role::Concentrator, "c1")).unwrap();
    let gateway_card = card(&f, 2);
    tmc_provision::write(&on(&f, &gateway_card, Role::Gateway, "gw")).unwrap();
    let boot = card(&f, 3);
    // An explicit duplicate.
    let mut options = on(&f, &boot, Role::Concentrator, "c2");
    options.address = Some(10);
    refused(
        &f,
        &options,
        "node address 10 belongs to concentrator \"c1\"",
    );
    let mut options = on(&f, &boot, Role::Gateway, "gw2");
    options.address = Some(1);
    refused(&f, &options, "node address 1 belongs to gateway \"gw\"");
    // A custom relay.toml is held to the same rule: another address, but c1's sender id.
    let config = f.dir.join("custom/relay.toml");
    write_mode(
        &config,
        "state_dir = \"/var/lib/tmc\"\n[mqtt]\nhost = \"mqtt.com\"\nca = \"ecc.ca.cert.pem\"\n\
         cert = \"ecc.c2.cert.pem\"\nkey = \"ecc.c2.key.pem\"\n\
         [radio]\nboard = \"board.toml\"\naddress = 12\n[envelope]\nkeys = \"keys.toml\"\nsender = 10\n",
        0o644,
    );
    let mut options = on(&f, &boot, Role::Concentrator, "c2");
    options.config = Some(config.clone());
    refused(&f, &options, "sender id 10 belongs to concentrator \"c1\"");
    // Nothing was issued for the refused board, and with its own sender id it goes through.
    assert!(f.site.list().unwrap().iter().all(|i| i.name != "c2"));
    fs::write(
        &config,
        fs::read_to_string(&config)
            .unwrap()
            .replace("sender = 10", "sender = 12"),
    )
    .unwrap();
    let report = tmc_provision::write(&options).unwrap();
    assert_eq!((report.board.address, report.board.sender), (12, Some(12)));
    assert_eq!(assignment(&boot).sender, 12);
}
