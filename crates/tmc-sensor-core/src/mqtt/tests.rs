//! Byte-exact packets from the MQTT 3.1.1 specification's layouts, and a decoder that refuses what it
//! should and never panics.

use super::*;
use std::string::ToString;
use std::vec::Vec;

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn encoded(f: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = f(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn connect_esp8266_keep_alive_60_clean_session() {
    // Fixed header 10 13 (19 bytes follow): protocol name 00 04 "MQTT", level 4, flags 02 (clean
    // session), keep-alive 00 3C, then the client id 00 07 "esp8266". 2+4+1+1+2 + 2+7 = 19.
    let connect = Connect::new("esp8266", 60, true);
    assert_eq!(
        encoded(|b| connect.encode(b)),
        [
            0x10, 0x13, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3C, 0x00, 0x07,
            0x65, 0x73, 0x70, 0x38, 0x32, 0x36, 0x36
        ]
    );
    assert_eq!(connect.encoded_len(), Ok(21));
    // Without clean session the flags byte is 0.
    let resume = encoded(|b| Connect::new("esp8266", 60, false).encode(b));
    assert_eq!(resume[9], 0x00);
}

#[test]
fn connect_with_credentials() {
    let connect = Connect {
        username: Some("u"),
        password: Some(b"pw"),
        ..Connect::new("c", 0x0102, true)
    };
    assert_eq!(
        encoded(|b| connect.encode(b)),
        [
            0x10, 0x14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0x01, 0x02, 0, 1, b'c', 0, 1, b'u',
            0, 2, b'p', b'w'
        ]
    );
    let only_user = Connect {
        username: Some("u"),
        ..Connect::new("c", 0, false)
    };
    assert_eq!(encoded(|b| only_user.encode(b))[9], 0x80);
    let bad = Connect {
        password: Some(b"pw"),
        ..Connect::new("c", 0, true)
    };
    assert_eq!(
        bad.encode(&mut [0; 64]),
        Err(EncodeError::PasswordWithoutUsername)
    );
    // An empty client id is allowed by the codec (the broker decides, MQTT-3.1.3-6).
    assert_eq!(encoded(|b| Connect::new("", 60, true).encode(b)).len(), 14);
}

#[test]
fn publish_qos1_on_the_legacy_topic() {
    let mut publish = Publish {
        topic: "/esp8266",
        payload: b"hi",
        qos: QoS::AtLeastOnce {
            packet_id: id(1),
            dup: false,
        },
        retain: false,
    };
    // 32 = PUBLISH, QoS 1; 0E = 2 + 8 (topic) + 2 (packet id) + 2 (payload).
    let want = [
        0x32, 0x0E, 0x00, 0x08, 0x2F, 0x65, 0x73, 0x70, 0x38, 0x32, 0x36, 0x36, 0x00, 0x01, 0x68,
        0x69,
    ];
    assert_eq!(encoded(|b| publish.encode(b)), want);
    assert_eq!(publish.encoded_len(), Ok(want.len()));
    // The retry: DUP set (bit 3), nothing else changes.
    publish.qos = QoS::AtLeastOnce {
        packet_id: id(1),
        dup: true,
    };
    let dup = encoded(|b| publish.encode(b));
    assert_eq!(dup[0], 0x3A);
    assert_eq!(dup[1..], want[1..]);
    // QoS 0 has no packet id; retain is bit 0.
    let qos0 = Publish {
        topic: "a/b",
        payload: br#"{"id":"sensor1","seq":17,"adc":647}"#,
        qos: QoS::AtMostOnce,
        retain: true,
    };
    let bytes = encoded(|b| qos0.encode(b));
    assert_eq!(bytes[..7], [0x31, 5 + 35, 0, 3, b'a', b'/', b'b']);
    assert_eq!(&bytes[7..], qos0.payload);
}

#[test]
fn publish_topics_are_checked() {
    for topic in ["", "a/+", "#", "a\u{0}b"] {
        let p = Publish {
            topic,
            payload: b"",
            qos: QoS::AtMostOnce,
            retain: false,
        };
        assert_eq!(
            p.encode(&mut [0; 64]),
            Err(EncodeError::InvalidTopic),
            "{topic:?}"
        );
    }
    let long = "t".repeat(65_536);
    let p = Publish {
        topic: &long,
        payload: b"",
        qos: QoS::AtMostOnce,
        retain: false,
    };
    assert_eq!(p.encoded_len(), Err(EncodeError::StringTooLong));
    assert_eq!(
        Connect::new(&long, 1, true).encode(&mut [0; 16]),
        Err(EncodeError::StringTooLong)
    );
}

#[test]
fn the_small_fixed_packets() {
    assert_eq!(
        encoded(|b| encode_puback(id(1), b)),
        [0x40, 0x02, 0x00, 0x01]
    );
    assert_eq!(
        encoded(|b| encode_puback(id(0xABCD), b)),
        [0x40, 2, 0xAB, 0xCD]
    );
    assert_eq!(encoded(encode_pingreq), [0xC0, 0x00]);
    assert_eq!(encoded(encode_disconnect), [0xE0, 0x00]);
    assert_eq!(encoded(encode_pingreq), PINGREQ);
    assert_eq!(encoded(encode_disconnect), DISCONNECT);
}

#[test]
fn a_short_buffer_is_refused_and_left_alone() {
    let publish = Publish {
        topic: "/esp8266",
        payload: b"hi",
        qos: QoS::AtLeastOnce {
            packet_id: id(1),
            dup: false,
        },
        retain: false,
    };
    for available in 0..16 {
        let mut buf = [0xAAu8; 16];
        assert_eq!(
            publish.encode(&mut buf[..available]),
            Err(EncodeError::BufferTooSmall {
                needed: 16,
                available
            })
        );
        assert!(buf.iter().all(|&b| b == 0xAA));
    }
    assert_eq!(
        Connect::new("esp8266", 60, true).encode(&mut [0; 20]),
        Err(EncodeError::BufferTooSmall {
            needed: 21,
            available: 20
        })
    );
    assert!(encode_puback(id(1), &mut [0; 3]).is_err());
    assert!(encode_pingreq(&mut [0; 1]).is_err());
    assert!(encode_disconnect(&mut []).is_err());
}

#[test]
fn connack_accepted_and_refused() {
    let (packet, used) = decode(&[0x20, 0x02, 0x00, 0x00]).unwrap();
    assert_eq!(used, 4);
    let Packet::ConnAck(ack) = packet else {
        panic!("{packet:?}")
    };
    assert_eq!(ack.result(), Ok(false));

    let (packet, _) = decode(&[0x20, 0x02, 0x01, 0x00]).unwrap();
    assert_eq!(
        packet,
        Packet::ConnAck(ConnAck {
            session_present: true,
            refused: None
        })
    );

    let (packet, _) = decode(&[0x20, 0x02, 0x00, 0x05]).unwrap();
    let Packet::ConnAck(ack) = packet else {
        panic!("{packet:?}")
    };
    assert_eq!(ack.result(), Err(ConnectRefused::NotAuthorized));
    assert_eq!(
        ConnectRefused::NotAuthorized.to_string(),
        "connection refused: not authorized (CONNACK 5)"
    );
    for code in 1..=5u8 {
        let bytes = [0x20, 0x02, 0x00, code];
        let (packet, _) = decode(&bytes).unwrap();
        let refused = ConnectRefused::from_code(code).unwrap();
        assert_eq!(refused.code(), code);
        assert_eq!(
            packet,
            Packet::ConnAck(ConnAck {
                session_present: false,
                refused: Some(refused)
            })
        );
    }
    assert_eq!(
        decode(&[0x20, 0x02, 0x00, 0x06]),
        Err(DecodeError::UnknownConnectReturnCode(6))
    );
    assert_eq!(
        decode(&[0x20, 0x02, 0x02, 0x00]),
        Err(DecodeError::InvalidConnAckFlags(2))
    );
    assert_eq!(
        decode(&[0x20, 0x02, 0x01, 0x05]),
        Err(DecodeError::InvalidConnAckFlags(1)),
        "session present with a refusal"
    );
    assert_eq!(
        decode(&[0x20, 0x03, 0x00, 0x00, 0x00]),
        Err(DecodeError::InvalidLength {
            packet_type: 2,
            len: 3
        })
    );
    assert_eq!(
        decode(&[0x21, 0x02, 0x00, 0x00]),
        Err(DecodeError::InvalidFlags {
            packet_type: 2,
            flags: 1
        })
    );
}

#[test]
fn puback_pingresp_suback() {
    assert_eq!(
        decode(&[0x40, 0x02, 0x00, 0x01]),
        Ok((Packet::PubAck(id(1)), 4))
    );
    assert_eq!(
        decode(&[0x40, 0x02, 0x00, 0x00]),
        Err(DecodeError::ZeroPacketId)
    );
    assert_eq!(decode(&[0xD0, 0x00]), Ok((Packet::PingResp, 2)));
    assert_eq!(
        decode(&[0xD0, 0x01, 0x00]),
        Err(DecodeError::InvalidLength {
            packet_type: 13,
            len: 1
        })
    );
    assert_eq!(
        decode(&[0x90, 0x04, 0x00, 0x0A, 0x01, 0x80]),
        Ok((
            Packet::SubAck(SubAck {
                packet_id: id(10),
                return_codes: &[0x01, 0x80]
            }),
            6
        ))
    );
    assert_eq!(
        decode(&[0x90, 0x03, 0x00, 0x0A, 0x03]),
        Err(DecodeError::InvalidSubAckCode(3))
    );
    assert!(matches!(
        decode(&[0x90, 0x02, 0x00, 0x0A]),
        Err(DecodeError::InvalidLength { .. })
    ));
}

#[test]
fn publish_from_the_broker() {
    let qos1 = [
        0x3B, 0x0C, 0x00, 0x03, b'a', b'/', b'b', 0x12, 0x34, b'h', b'e', b'l', b'l', b'o',
    ];
    assert_eq!(
        decode(&qos1),
        Ok((
            Packet::Publish(Publish {
                topic: "a/b",
                payload: b"hello",
                qos: QoS::AtLeastOnce {
                    packet_id: id(0x1234),
                    dup: true
                },
                retain: true,
            }),
            14
        ))
    );
    let qos0 = [0x30, 0x03, 0x00, 0x01, b'x'];
    assert_eq!(
        decode(&qos0),
        Ok((
            Packet::Publish(Publish {
                topic: "x",
                payload: b"",
                qos: QoS::AtMostOnce,
                retain: false,
            }),
            5
        ))
    );
    let cases: [(&[u8], DecodeError); 9] = [
        (
            &[0x34, 0x05, 0, 1, b'x', 0, 1],
            DecodeError::UnsupportedQos2,
        ),
        (&[0x36, 0x05, 0, 1, b'x', 0, 1], DecodeError::InvalidQos),
        (&[0x38, 0x03, 0, 1, b'x'], DecodeError::DupWithoutQos),
        (&[0x32, 0x05, 0, 1, b'x', 0, 0], DecodeError::ZeroPacketId),
        (&[0x30, 0x03, 0, 2, b'x'], DecodeError::StringOverrun),
        (&[0x30, 0x04, 0, 2, 0xC3, 0x28], DecodeError::InvalidUtf8),
        (&[0x30, 0x03, 0, 1, b'#'], DecodeError::InvalidTopic),
        (&[0x30, 0x04, 0, 0, b'x', b'y'], DecodeError::InvalidTopic),
        (
            &[0x32, 0x04, 0, 1, b'x', 0],
            DecodeError::InvalidLength {
                packet_type: 3,
                len: 4,
            },
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(decode(bytes), Err(want), "{bytes:02x?}");
    }
}

#[test]
fn packets_the_broker_does_not_send_are_refused_at_the_first_byte() {
    for first in [
        0x00u8, 0x10, 0x50, 0x62, 0x70, 0x82, 0xA2, 0xB0, 0xC0, 0xE0, 0xF0,
    ] {
        assert_eq!(
            decode(&[first]),
            Err(DecodeError::UnexpectedPacketType(first >> 4)),
            "{first:#04x}"
        );
    }
    // Wrong reserved flags are refused before the length arrives, too.
    assert_eq!(
        decode(&[0x42]),
        Err(DecodeError::InvalidFlags {
            packet_type: 4,
            flags: 2
        })
    );
}

#[test]
fn every_prefix_of_a_packet_needs_more() {
    let packets: [&[u8]; 5] = [
        &[0x20, 0x02, 0x00, 0x00],
        &[0x40, 0x02, 0x00, 0x01],
        &[0xD0, 0x00],
        &[0x90, 0x03, 0x00, 0x0A, 0x00],
        &[
            0x32, 0x0E, 0x00, 0x08, 0x2F, 0x65, 0x73, 0x70, 0x38, 0x32, 0x36, 0x36, 0x00, 0x01,
            0x68, 0x69,
        ],
    ];
    for packet in packets {
        for cut in 0..packet.len() {
            assert_eq!(
                decode(&packet[..cut]),
                Err(DecodeError::NeedMore),
                "{packet:02x?} / {cut}"
            );
            assert!(decode(&packet[..cut]).unwrap_err().is_need_more());
        }
        assert_eq!(packet_len(packet), Ok(packet.len()));
        // Followed by the next packet: only the first is consumed.
        let mut two = packet.to_vec();
        two.extend_from_slice(&[0xD0, 0x00]);
        let (_, used) = decode(&two).unwrap();
        assert_eq!(used, packet.len());
        assert_eq!(decode(&two[used..]), Ok((Packet::PingResp, 2)));
    }
    // A big PUBLISH announces its size as soon as the length is there.
    assert_eq!(packet_len(&[0x30, 0xFF, 0xFF, 0x7F]), Ok(4 + 2_097_151));
    assert_eq!(
        decode(&[0x30, 0xFF, 0xFF, 0x7F, 0, 1, b'x']),
        Err(DecodeError::NeedMore)
    );
}

#[test]
fn remaining_length_edges() {
    let extra: (u32, &[u8]) = (321, &[0xC1, 0x02]);
    for (value, bytes) in crate::sim::REMAINING_LENGTH_VECTORS
        .into_iter()
        .chain([extra])
    {
        let mut buf = [0u8; 4];
        let n = encode_remaining_length(value, &mut buf).unwrap();
        assert_eq!(&buf[..n], bytes, "{value}");
        assert_eq!(remaining_length_len(value), n);
        assert_eq!(decode_remaining_length(bytes), Ok((value, n)));
        for cut in 0..n {
            assert_eq!(
                decode_remaining_length(&bytes[..cut]),
                Err(DecodeError::NeedMore)
            );
        }
        assert_eq!(
            encode_remaining_length(value, &mut buf[..n - 1]),
            Err(EncodeError::BufferTooSmall {
                needed: n,
                available: n - 1
            })
        );
    }
    assert_eq!(
        encode_remaining_length(MAX_REMAINING_LENGTH + 1, &mut [0; 8]),
        Err(EncodeError::TooLarge)
    );
    assert_eq!(
        encode_remaining_length(u32::MAX, &mut [0; 8]),
        Err(EncodeError::TooLarge)
    );
    // A continuation bit in the fourth byte: malformed, known without a fifth byte.
    assert_eq!(
        decode_remaining_length(&[0xFF, 0xFF, 0xFF, 0xFF]),
        Err(DecodeError::MalformedRemainingLength)
    );
    assert_eq!(
        decode_remaining_length(&[0x80, 0x80, 0x80, 0x80, 0x01]),
        Err(DecodeError::MalformedRemainingLength)
    );
    assert_eq!(
        decode(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF]),
        Err(DecodeError::MalformedRemainingLength)
    );
    // Non-minimal but within four bytes: accepted (3.1.1 does not forbid it).
    assert_eq!(decode_remaining_length(&[0x80, 0x00]), Ok((0, 2)));
    assert_eq!(decode(&[0xD0, 0x80, 0x00]), Ok((Packet::PingResp, 3)));
    // Every value round-trips (sampled).
    let mut value = 0u32;
    while value <= MAX_REMAINING_LENGTH {
        let mut buf = [0u8; 4];
        let n = encode_remaining_length(value, &mut buf).unwrap();
        assert_eq!(decode_remaining_length(&buf[..n]), Ok((value, n)));
        value += 997;
    }
}

#[test]
fn encoded_packets_of_every_kind_decode_back() {
    let packets = [
        Packet::ConnAck(ConnAck {
            session_present: true,
            refused: None,
        }),
        Packet::ConnAck(ConnAck {
            session_present: false,
            refused: Some(ConnectRefused::ServerUnavailable),
        }),
        Packet::PubAck(id(65_535)),
        Packet::PingResp,
        Packet::SubAck(SubAck {
            packet_id: id(3),
            return_codes: &[0, 1, 2, 0x80],
        }),
        Packet::Publish(Publish {
            topic: "sensors/sensor1/reading",
            payload: &[0x55; 300],
            qos: QoS::AtLeastOnce {
                packet_id: id(9),
                dup: false,
            },
            retain: false,
        }),
    ];
    for packet in packets {
        let bytes = encoded(|b| packet.encode(b));
        assert_eq!(decode(&bytes), Ok((packet, bytes.len())));
    }
    assert_eq!(
        Packet::ConnAck(ConnAck {
            session_present: true,
            refused: Some(ConnectRefused::NotAuthorized)
        })
        .encode(&mut [0; 8]),
        Err(EncodeError::SessionPresentWithRefusal)
    );
    assert_eq!(
        Packet::SubAck(SubAck {
            packet_id: id(1),
            return_codes: &[]
        })
        .encode(&mut [0; 8]),
        Err(EncodeError::InvalidSubAck)
    );
}

/// What the fuzz target checks, on a deterministic stream of inputs: no panic, and whatever decodes
/// re-encodes to the same bytes (when its length field was minimal).
pub(crate) fn check_round_trip(data: &[u8]) {
    match decode(data) {
        Ok((packet, used)) => {
            assert!(used <= data.len());
            let mut buf = std::vec![0u8; used + 8];
            let n = packet.encode(&mut buf).unwrap();
            let (again, again_used) = decode(&buf[..n]).unwrap();
            assert_eq!(again, packet);
            assert_eq!(again_used, n);
            let (len, len_bytes) = decode_remaining_length(&data[1..]).unwrap();
            if remaining_length_len(len) == len_bytes {
                assert_eq!(&buf[..n], &data[..used]);
            } else {
                assert!(n < used);
            }
        }
        Err(DecodeError::NeedMore) => {
            assert!(packet_len(data).is_ok() || packet_len(data) == Err(DecodeError::NeedMore));
        }
        Err(_) => {}
    }
}

#[test]
fn no_panic_on_short_inputs_and_random_bytes() {
    for a in 0..=255u8 {
        check_round_trip(&[a]);
        for b in 0..=255u8 {
            check_round_trip(&[a, b]);
            check_round_trip(&[a, b & 0x0f, 0, b]);
            check_round_trip(&[a, 2, 0, b]);
            check_round_trip(&[a, 3, 0, 1, b]);
        }
    }
    // xorshift: fast, reproducible.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200_000 {
        let len = (next() % 40) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Bias towards plausible headers so the bodies get exercised.
        if let Some(first) = data.first_mut() {
            *first = [0x20, 0x30, 0x32, 0x3B, 0x40, 0x90, 0xD0, *first][(next() % 8) as usize];
        }
        if let Some(second) = data.get_mut(1) {
            *second %= 40;
        }
        check_round_trip(&data);
    }
}

#[test]
fn a_sensor_session_end_to_end() {
    use super::client::{InFlight, KeepAlive, KeepAliveAction, PacketIds};
    use crate::reading::{adc, write_reading};

    let mut out = [0u8; 128];
    // CONNECT, then the broker's CONNACK arrives in two pieces.
    let n = Connect::new("esp8266", 60, true).encode(&mut out).unwrap();
    assert_eq!(out[..2], [0x10, 0x13]);
    let connack = [0x20, 0x02, 0x00, 0x00];
    assert_eq!(decode(&connack[..1]), Err(DecodeError::NeedMore));
    let (packet, _) = decode(&connack).unwrap();
    let Packet::ConnAck(ack) = packet else {
        panic!("{packet:?}")
    };
    assert_eq!(ack.result(), Ok(false));
    let mut keep_alive = KeepAlive::new(60, 0);
    keep_alive.packet_sent(0);
    keep_alive.packet_received(10);

    // One reading at QoS 1; no PUBACK within 5 s, so it goes again with DUP.
    let mut ids = PacketIds::new();
    let mut payload = [0u8; 64];
    let len = write_reading("esp8266", 1, adc("esp8266", 1), &mut payload).unwrap();
    let mut in_flight = InFlight::sent(ids.next_id(), 1_000, 5_000);
    let publish = |qos| Publish {
        topic: "/esp8266",
        payload: &payload[..len],
        qos,
        retain: false,
    };
    let first = publish(in_flight.first_qos()).encode(&mut out).unwrap();
    assert_eq!(out[0], 0x32);
    keep_alive.packet_sent(1_000);
    assert_eq!(in_flight.poll(3_000), None);
    let qos = in_flight.poll(6_000).unwrap();
    let again = publish(qos).encode(&mut out).unwrap();
    assert_eq!((out[0], again), (0x3A, first));
    keep_alive.packet_sent(6_000);
    // The broker's PUBACK for packet id 1 settles it.
    let (packet, _) = decode(&[0x40, 0x02, 0x00, 0x01]).unwrap();
    keep_alive.packet_received(6_100);
    let Packet::PubAck(acked) = packet else {
        panic!("{packet:?}")
    };
    assert!(in_flight.is_acked_by(acked));
    // Idle for a minute: PINGREQ; the PINGRESP keeps the connection.
    assert_eq!(keep_alive.poll(66_000), KeepAliveAction::SendPingReq);
    assert_eq!(encode_pingreq(&mut out), Ok(2));
    assert_eq!(decode(&[0xD0, 0x00]).unwrap().0, Packet::PingResp);
    keep_alive.packet_received(66_050);
    assert_eq!(keep_alive.poll(67_000), KeepAliveAction::Wait);
    assert_eq!((n, encode_disconnect(&mut out)), (21, Ok(2)));
}
