//! Codec properties: round trips, and arbitrary or truncated bytes never panic.

use edgeshift_proto::codec::{self, HEADER_LEN};
use edgeshift_proto::*;
use proptest::prelude::*;

/// One message of every type, filled from the given values.
fn every_message(a: u32, b: u64, bytes: &[u8], f: f32) -> Vec<Message> {
    let ue = UeId(a);
    let cell = CellId(a.wrapping_add(1));
    let server = ServerId(a.wrapping_add(2));
    let service = ServiceId(a.wrapping_add(3));
    let timing = Timing::at_within(
        Instant(b),
        std::time::Duration::from_millis(u64::from(a % 1000)),
    );
    let spec = ServiceSpec {
        code: CodeRef::Inline {
            kind: "mem".into(),
            bytes: bytes.to_vec(),
        },
        config: bytes.to_vec(),
        latency_budget_ms: a,
    };
    let input = InputRecord {
        seq: b,
        payload: bytes.to_vec(),
    };
    let delta = StateDelta {
        seq: b,
        digest: u128::from(b) << 64 | u128::from(a),
        len: b,
        chunk_size: 4096,
        chunks: vec![DeltaChunk {
            index: a,
            data: bytes.to_vec(),
        }],
        checksum: u128::from(a),
        answers: vec![Answer {
            seq: b,
            payload: bytes.to_vec(),
        }],
    };
    let route = Route {
        service,
        server,
        epoch: b,
    };
    vec![
        HandoverPrediction {
            ue,
            source: cell,
            candidates: vec![Candidate {
                cell,
                likelihood: f,
            }],
            timing: Some(timing),
        }
        .into(),
        PrepareShadow {
            service,
            ue,
            source: server,
            candidates: vec![server, ServerId(a)],
            sync: SyncMode::Delta,
            start: Timing {
                when: When::Class(TimingClass::Medium),
                uncertainty: None,
            },
            adopt: true,
        }
        .into(),
        ShadowTransfer {
            service,
            ue,
            source: server,
            transfer: a,
            seq: b,
            digest: u128::from(b),
            spec: Some(spec.clone()),
            total_len: b,
            offset: b / 2,
            data: bytes.to_vec().into(),
            state_checksum: Some(7),
            answers: vec![Answer {
                seq: b,
                payload: bytes.to_vec(),
            }],
        }
        .into(),
        HandoverExecution {
            ue,
            source: cell,
            target: cell,
            timing,
        }
        .into(),
        Relocate {
            service,
            action: match a % 5 {
                0 => RelocateAction::Relocate {
                    source: server,
                    target: server,
                    mode: RelocationMode::Precopy,
                    epoch: b,
                },
                1 => RelocateAction::Promote { epoch: b },
                2 => RelocateAction::Release {
                    host: server,
                    epoch: b,
                },
                3 => RelocateAction::Resume { epoch: b },
                _ => RelocateAction::Abort { epoch: b },
            },
            timing: Timing {
                when: When::After(std::time::Duration::from_nanos(b)),
                uncertainty: None,
            },
        }
        .into(),
        ShadowSync {
            service,
            source: server,
            body: SyncBody::Inputs(vec![input.clone()]),
        }
        .into(),
        ShadowSync {
            service,
            source: server,
            body: SyncBody::Delta(delta.clone()),
        }
        .into(),
        HandoverRequest {
            ue,
            source: cell,
            target: cell,
            route: Some(route),
        }
        .into(),
        HandoverRequestAck {
            ue,
            target: cell,
            admitted: a.is_multiple_of(2),
        }
        .into(),
        HandoverCommand { ue, target: cell }.into(),
        RelocateRequest {
            service,
            source: server,
            last_seq: b,
            digest: 5,
            epoch: b,
            transfer_pending: a.is_multiple_of(3),
            state_checksum: Some(u128::from(b)),
            answers: vec![Answer {
                seq: b,
                payload: bytes.to_vec(),
            }],
        }
        .into(),
        RelocateConfirm {
            service,
            target: server,
            verdict: Verdict::Reject(format!("x{a}")),
        }
        .into(),
        RelocateConfirm {
            service,
            target: server,
            verdict: Verdict::NeedFrom(b),
        }
        .into(),
        HandoverConfirm { ue, source: cell }.into(),
        UeContextRelease { ue }.into(),
        HandoverCancel {
            ue,
            source: cell,
            target: cell,
            reason: if a.is_multiple_of(2) {
                CancelReason::Rejected
            } else {
                CancelReason::Failed
            },
        }
        .into(),
        HandoverComplete {
            ue,
            source: cell,
            target: cell,
        }
        .into(),
        RadioReport {
            ue,
            cell,
            serving_dbm: f,
            neighbours: vec![(cell, -(b as f32))],
        }
        .into(),
        ServiceInput {
            ue,
            service,
            via: cell,
            answered_below: 0,
            input: input.clone(),
        }
        .into(),
        ServiceOutput {
            ue,
            service,
            via: cell,
            seq: b,
            payload: bytes.to_vec(),
        }
        .into(),
        InputRun {
            ue,
            service,
            via: cell,
            inputs: vec![input.clone(), input],
            answered_below: b,
        }
        .into(),
        OutputRun {
            ue,
            service,
            via: cell,
            answers: vec![Answer {
                seq: b,
                payload: bytes.to_vec(),
            }],
        }
        .into(),
        Probe {
            ue,
            service,
            via: cell,
            nonce: b,
            checksum: b.is_multiple_of(2),
        }
        .into(),
        ProbeReply {
            ue,
            service,
            via: cell,
            nonce: b,
            last_seq: b,
            checksum: Some(u128::from(b) << 64 | 7),
        }
        .into(),
        Attach { ue }.into(),
        Heartbeat {
            server,
            incarnation: b,
            seq: u64::from(a),
            live: vec![Tenure {
                service: ServiceId(a),
                epoch: b,
            }],
            shadows: vec![ServiceId(a.wrapping_add(1))],
        }
        .into(),
        HeartbeatAck { seq: b }.into(),
        Reattach { ue }.into(),
        ResendFrom {
            ue,
            service,
            via: cell,
            after: b,
        }
        .into(),
        RouteQuery { ue, cell }.into(),
        ShadowRefused {
            service,
            server,
            reason: String::from_utf8_lossy(bytes).into_owned(),
        }
        .into(),
        Hello {
            from: NodeId::Ue(ue),
            to: NodeId::Cell(cell),
            lane: Lane::Bulk,
        }
        .into(),
        RouteUpdate { ue, route }.into(),
        Deploy {
            service,
            ue,
            cell,
            spec: spec.clone(),
        }
        .into(),
        Instantiate { service, ue, spec }.into(),
        ShadowReady {
            service,
            server,
            seq: b,
            adoption: false,
        }
        .into(),
        RelocationDone {
            service,
            from: server,
            to: server,
            ok: true,
            epoch: b,
        }
        .into(),
        LoadReport {
            server,
            load: f,
            hosted: 1,
            services: vec![(service, b)],
        }
        .into(),
        CatchUp {
            service,
            source: server,
            body: SyncBody::Delta(delta),
        }
        .into(),
        SyncAck {
            service,
            server,
            seq: b,
            ok: false,
        }
        .into(),
        ServiceHandoff {
            service,
            ue,
            generation: b,
            record: bytes.to_vec(),
        }
        .into(),
        HandoffAck {
            service,
            generation: b,
        }
        .into(),
        ServerStatus {
            server,
            incarnation: b,
            down: a.is_multiple_of(2),
        }
        .into(),
        RejoinOrder {
            server,
            service,
            action: RelocateAction::Abort { epoch: b },
        }
        .into(),
        Relayed {
            origin: NodeId::Control(RegionId(a)),
            hops: (a % 5) as u8,
            frame: bytes.to_vec(),
        }
        .into(),
    ]
}

#[test]
fn every_type_code_is_covered() {
    let codes: Vec<u16> = every_message(1, 2, b"x", 0.5)
        .iter()
        .map(Message::type_code)
        .collect();
    for code in Message::TYPE_CODES {
        assert!(codes.contains(code), "type {code} has no sample");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn round_trip(a: u32, b: u64, bytes in proptest::collection::vec(any::<u8>(), 0..300), f in 0.0f32..1.0) {
        for msg in every_message(a, b, &bytes, f) {
            let frame = codec::encode(&msg).expect("encode");
            prop_assert_eq!(codec::decode_exact(&frame).expect("decode"), msg);
        }
    }

    /// The decoder that shares the frame decodes every message as the copying one does,
    /// and a 1004's chunk is the frame's own bytes, not a copy.
    #[test]
    fn shared_decoding_equals_copying_and_a_chunk_stays_in_its_frame(a: u32, b: u64, bytes in proptest::collection::vec(any::<u8>(), 1..300), f in 0.0f32..1.0) {
        for msg in every_message(a, b, &bytes, f) {
            let frame = Bytes::from(codec::encode(&msg).expect("encode"));
            let shared = codec::decode_shared(&frame).expect("decode");
            if let Message::ShadowTransfer(t) = &shared {
                let inside = frame.as_ptr_range();
                prop_assert!(inside.contains(&t.data.as_ptr()), "the chunk was copied");
            }
            prop_assert_eq!(shared, msg);
        }
    }

    /// On any bytes, and on any corruption of a valid frame, both decoders agree.
    #[test]
    fn shared_decoding_fails_as_copying_does(a: u32, b: u64, pos: usize, bit in 0u8..8, cut in 0usize..10_000, junk in proptest::collection::vec(any::<u8>(), 0..64)) {
        for msg in every_message(a, b, b"payload", 0.5) {
            let mut frame = codec::encode(&msg).expect("encode");
            let p = pos % frame.len();
            frame[p] ^= 1 << bit;
            let cut = cut % (frame.len() + 1);
            for bad in [frame.clone(), frame[..cut].to_vec(), [frame.clone(), junk.clone()].concat()] {
                let copied = codec::decode_exact(&bad);
                let shared = codec::decode_shared(&Bytes::from(bad));
                prop_assert_eq!(shared, copied);
            }
        }
    }

    #[test]
    fn truncated_frames_ask_for_more(a: u32, b: u64, bytes in proptest::collection::vec(any::<u8>(), 0..64), cut in 0usize..10_000) {
        for msg in every_message(a, b, &bytes, 0.25) {
            let frame = codec::encode(&msg).expect("encode");
            let cut = cut % frame.len();
            match codec::decode(&frame[..cut]) {
                Err(DecodeError::Incomplete { needed }) => prop_assert!(needed > 0),
                other => prop_assert!(false, "cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::decode(&bytes);
    }

    #[test]
    fn random_payload_behind_a_valid_header_never_panics(
        code_index in 0usize..64,
        payload in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let code = Message::TYPE_CODES[code_index % Message::TYPE_CODES.len()];
        let mut frame = Vec::from(codec::MAGIC);
        frame.extend_from_slice(&[codec::VERSION, 0]);
        frame.extend_from_slice(&code.to_be_bytes());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&payload);
        let _ = codec::decode(&frame);
    }

    #[test]
    fn flipped_bytes_never_panic(a: u32, b: u64, pos: usize, bit in 0u8..8) {
        for msg in every_message(a, b, b"payload", 0.5) {
            let mut frame = codec::encode(&msg).expect("encode");
            let p = pos % frame.len();
            frame[p] ^= 1 << bit;
            let _ = codec::decode(&frame);
        }
    }
}

#[test]
fn header_errors_are_typed() {
    let msg: Message = UeContextRelease { ue: UeId(9) }.into();
    let good = codec::encode(&msg).expect("encode");
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(matches!(codec::decode(&bad), Err(DecodeError::BadMagic(_))));
    let mut bad = good.clone();
    bad[2] = codec::VERSION + 1;
    assert_eq!(
        codec::decode(&bad),
        Err(DecodeError::UnsupportedVersion(codec::VERSION + 1))
    );
    let mut bad = good.clone();
    bad[4..6].copy_from_slice(&9999u16.to_be_bytes());
    assert_eq!(codec::decode(&bad), Err(DecodeError::UnknownType(9999)));
    let mut bad = good.clone();
    bad[6..10].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        codec::decode(&bad),
        Err(DecodeError::TooLarge { .. })
    ));
    let mut two = good.clone();
    two.extend_from_slice(&good);
    assert_eq!(codec::decode(&two).expect("first frame").1, good.len());
    assert!(matches!(
        codec::decode_exact(&two),
        Err(DecodeError::TrailingBytes(_))
    ));
    assert_eq!(
        codec::decode(&good[..3]),
        Err(DecodeError::Incomplete {
            needed: HEADER_LEN - 3
        })
    );
}
