//! Who may send what: [`may_send`] is the protocol's table of senders per message (as
//! `docs/protocol.md` lists them), with the identities a message carries checked against
//! its sender (a UE speaks only for itself, a cell only for its own cell). Every role
//! drops, and reports, a message its sender may not send; behind an authenticating
//! transport, a peer can then only act within its role.

use crate::{Message, NodeId};

/// Whether `from` may send `msg` to `to`.
#[must_use]
pub fn may_send(from: NodeId, to: NodeId, msg: &Message) -> bool {
    use Message as M;
    use NodeId::{Cell, Control, Server, Ue};
    match (msg, from, to) {
        // The RAN reports to its region's control node about its own cell.
        (M::HandoverPrediction(m), Cell(c), Control(_)) => m.source == c,
        (M::HandoverExecution(m), Cell(c), Control(_)) => m.source == c,
        (M::HandoverCancel(m), Cell(c), Control(_)) => m.source == c,
        (M::HandoverComplete(m), Cell(c), Control(_)) => m.target == c,
        (M::RadioReport(m), Cell(c), Control(_)) => m.cell == c,
        (M::RouteQuery(m), Cell(c), Control(_)) => m.cell == c,
        // A UE deploys its own service; an operator acts as the control node itself.
        (M::Deploy(m), Ue(u), Control(_)) => m.ue == u,
        (M::Deploy(_), Control(_), Control(_)) => true,
        // Servers report to the control nodes that command them.
        (M::RelocationDone(_) | M::ShadowReady(_) | M::LoadReport(_), Server(_), Control(_)) => {
            true
        }
        (M::Heartbeat(m), Server(s), Control(_)) => m.server == s,
        (M::ShadowRefused(m), Server(s), Control(_)) => m.server == s,
        (M::ShadowRefused(m), Server(a), Server(b)) => m.server == a && a != b,
        (M::HeartbeatAck(_), Control(_), Server(_)) => true,
        // Only control nodes command servers and route cells (any region's: a service
        // prepared across a border is commanded by the region that holds it).
        (M::PrepareShadow(_) | M::Relocate(_) | M::Instantiate(_), Control(_), Server(_)) => true,
        (M::RouteUpdate(_), Control(_), Cell(_)) => true,
        // Control nodes of two regions: handoffs, liveness, and what reached the region
        // a service has left, passed on (the receiver checks the relayed message against
        // its origin).
        (
            M::ServiceHandoff(_)
            | M::HandoffAck(_)
            | M::ServerStatus(_)
            | M::RejoinOrder(_)
            | M::Relayed(_),
            Control(a),
            Control(b),
        ) => a != b,
        // Servers among themselves: state, sync, the 2004/2005 exchange, readiness.
        (
            M::ShadowTransfer(_)
            | M::ShadowSync(_)
            | M::CatchUp(_)
            | M::SyncAck(_)
            | M::RelocateRequest(_)
            | M::RelocateConfirm(_)
            | M::ShadowReady(_),
            Server(a),
            Server(b),
        ) => a != b,
        // Service traffic: a UE for itself to its cell, the cell it came through to the
        // server, and the answers back the same way.
        (M::ServiceInput(m), Ue(u), Cell(c)) => m.ue == u && m.via == c,
        (M::InputRun(m), Ue(u), Cell(c)) => m.ue == u && m.via == c,
        (M::Probe(m), Ue(u), Cell(c)) => m.ue == u && m.via == c,
        (M::ServiceInput(m), Cell(c), Server(_)) => m.via == c,
        (M::InputRun(m), Cell(c), Server(_)) => m.via == c,
        (M::Probe(m), Cell(c), Server(_)) => m.via == c,
        // A frozen source hands the traffic it held to the new host.
        (M::ServiceInput(_) | M::Probe(_), Server(a), Server(b)) => a != b,
        (M::ServiceOutput(m), Server(_), Cell(c)) => m.via == c,
        (M::OutputRun(m), Server(_), Cell(c)) => m.via == c,
        (M::ProbeReply(m), Server(_), Cell(c)) => m.via == c,
        (M::ServiceOutput(m), Cell(c), Ue(u)) => m.ue == u && m.via == c,
        (M::OutputRun(m), Cell(c), Ue(u)) => m.ue == u && m.via == c,
        (M::ProbeReply(m), Cell(c), Ue(u)) => m.ue == u && m.via == c,
        (M::ResendFrom(m), Server(_), Cell(c)) => m.via == c,
        (M::ResendFrom(m), Cell(c), Ue(u)) => m.ue == u && m.via == c,
        (M::Reattach(m), Cell(_), Ue(u)) => m.ue == u,
        // The radio side of a handover.
        (M::Attach(m), Ue(u), Cell(_)) => m.ue == u,
        (M::HandoverConfirm(m), Ue(u), Cell(_)) => m.ue == u,
        (M::HandoverCommand(m), Cell(_), Ue(u)) => m.ue == u,
        (M::HandoverRequest(m), Cell(a), Cell(b)) => m.source == a && m.target == b,
        (M::HandoverRequestAck(m), Cell(a), Cell(_)) => m.target == a,
        (M::UeContextRelease(_), Cell(a), Cell(b)) => a != b,
        _ => false,
    }
}

/// Why [`may_send`] refused, for the report.
#[must_use]
pub fn refusal(from: NodeId, msg: &Message) -> String {
    format!(
        "{} {} from {from} is not allowed",
        msg.type_code(),
        msg.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Attach, CellId, HandoverPrediction, InputRecord, Relocate, RelocateAction, ServerId,
        ServiceId, ServiceInput, Timing, UeId,
    };

    fn input(ue: u32, via: u32) -> Message {
        ServiceInput {
            ue: UeId(ue),
            service: ServiceId(ue),
            via: CellId(via),
            answered_below: 0,
            input: InputRecord {
                seq: 1,
                payload: vec![1],
            },
        }
        .into()
    }

    #[test]
    fn only_the_control_node_commands_servers() {
        let discard: Message = Relocate {
            service: ServiceId(1),
            action: RelocateAction::Discard {
                servers: vec![ServerId(2)],
            },
            timing: Timing::at(crate::Instant(0)),
        }
        .into();
        let me2 = NodeId::Server(ServerId(2));
        assert!(may_send(NodeId::CONTROL, me2, &discard));
        for forger in [
            NodeId::Ue(UeId(1)),
            NodeId::Cell(CellId(1)),
            NodeId::Server(ServerId(1)),
        ] {
            assert!(!may_send(forger, me2, &discard), "{forger}");
        }
    }

    #[test]
    fn a_ue_speaks_only_for_itself_and_a_cell_only_for_its_cell() {
        let cell1 = NodeId::Cell(CellId(1));
        let me1 = NodeId::Server(ServerId(1));
        assert!(may_send(NodeId::Ue(UeId(1)), cell1, &input(1, 1)));
        assert!(
            !may_send(NodeId::Ue(UeId(2)), cell1, &input(1, 1)),
            "as another UE"
        );
        assert!(
            !may_send(NodeId::Ue(UeId(1)), me1, &input(1, 1)),
            "past its cell"
        );
        assert!(may_send(cell1, me1, &input(1, 1)));
        assert!(
            !may_send(NodeId::Cell(CellId(2)), me1, &input(1, 1)),
            "not via it"
        );
        let attach: Message = Attach { ue: UeId(3) }.into();
        assert!(!may_send(NodeId::Ue(UeId(1)), cell1, &attach));
        let predict: Message = HandoverPrediction {
            ue: UeId(1),
            source: CellId(1),
            candidates: vec![],
            timing: None,
        }
        .into();
        assert!(may_send(cell1, NodeId::CONTROL, &predict));
        assert!(!may_send(
            NodeId::Cell(CellId(2)),
            NodeId::CONTROL,
            &predict
        ));
        assert!(!may_send(me1, NodeId::CONTROL, &predict));
    }
}
