//! The ETSI data types this API speaks, as in the OpenAPI files of ETSI GS MEC 021 v2.2.1
//! (`ams`) and MEC 012 v2.2.1 (`rnis`), with the types both share here. Field names are
//! the specification's (camelCase); integer enums are integers, as in v2.2.1.

pub mod ams;
pub mod rnis;

use std::net::Ipv4Addr;

use edgeshift_proto::{CellId, Instant, UeId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeStamp {
    /// Seconds since 1970-01-01 UTC.
    pub seconds: u32,
    /// Nanoseconds within the second.
    pub nano_seconds: u32,
}

impl TimeStamp {
    /// The time stamp of an instant of the common time reference (Unix nanoseconds).
    #[must_use]
    pub fn of(at: Instant) -> Self {
        let ns = at.as_nanos();
        Self {
            seconds: u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX),
            nano_seconds: u32::try_from(ns % 1_000_000_000).unwrap_or(0),
        }
    }

    /// Back to an instant.
    #[must_use]
    pub fn instant(self) -> Instant {
        Instant(u64::from(self.seconds) * 1_000_000_000 + u64::from(self.nano_seconds))
    }
}

/// A hyperlink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkType {
    /// The URI.
    pub href: String,
}

/// `_links` with a `self` link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SelfLink {
    /// The resource itself.
    #[serde(rename = "self")]
    pub self_: LinkType,
}

/// `_links` of a notification: the subscription it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionRef {
    /// The subscription.
    pub subscription: LinkType,
}

/// One subscription in a [`SubscriptionLinkList`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionLink {
    /// The subscription's URI.
    pub href: String,
    /// Its type.
    pub subscription_type: String,
}

/// `_links` of a [`SubscriptionLinkList`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionLinks {
    /// The list itself.
    #[serde(rename = "self")]
    pub self_: LinkType,
    /// The subscriptions.
    pub subscription: Vec<SubscriptionLink>,
}

/// The subscriptions of a consumer (MEC 021 §7.3.4, MEC 012 §6.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionLinkList {
    /// Links.
    #[serde(rename = "_links")]
    pub links: SubscriptionLinks,
}

/// Where a websocket delivery would go; accepted and stored, never used: notifications are
/// POSTed to `callbackReference`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebsockNotifConfig {
    /// Websocket URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websocket_uri: Option<String>,
    /// Whether the consumer asks for a websocket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_websocket_uri: Option<bool>,
}

/// An error body (IETF RFC 7807), served as `application/problem+json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProblemDetails {
    /// A URI that names the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary.
    pub title: String,
    /// The HTTP status code.
    pub status: u32,
    /// What went wrong with this request.
    pub detail: String,
    /// The request URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// Public land mobile network identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Plmn {
    /// Mobile country code.
    pub mcc: String,
    /// Mobile network code.
    pub mnc: String,
}

/// E-UTRAN cell global identifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ecgi {
    /// The network.
    pub plmn: Plmn,
    /// The 28-bit cell identity as 7 hexadecimal digits.
    pub cell_id: String,
}

/// The test network's PLMN (MCC 001, MNC 01: 3GPP TS 23.003's test code).
pub const MCC: &str = "001";
/// See [`MCC`].
pub const MNC: &str = "01";

impl Ecgi {
    /// The identifier of one of our cells.
    #[must_use]
    pub fn of(cell: CellId) -> Self {
        Self {
            plmn: Plmn {
                mcc: MCC.into(),
                mnc: MNC.into(),
            },
            cell_id: format!("{:07X}", cell.0 & 0x0FFF_FFFF),
        }
    }

    /// The cell it names, if it is one of ours.
    #[must_use]
    pub fn cell(&self) -> Option<CellId> {
        if self.plmn.mcc != MCC || self.plmn.mnc != MNC {
            return None;
        }
        u32::from_str_radix(&self.cell_id, 16).ok().map(CellId)
    }
}

/// The address a UE is known by in both APIs: 10.45.0.0 (open5gs' default UE pool) plus
/// its id, so that an application can name a UE the way it sees its client. Ids from
/// 65,536 on continue past 10.45.255.255 (10.46.0.0 …).
#[must_use]
pub fn ue_address(ue: UeId) -> Ipv4Addr {
    Ipv4Addr::from(0x0A2D_0000u32.wrapping_add(ue.0))
}

/// The unextended name of a service instance on a server, as application instance id.
#[must_use]
pub fn instance_id(
    service: edgeshift_proto::ServiceId,
    server: edgeshift_proto::ServerId,
) -> String {
    format!("me{}.svc{}", server.0, service.0)
}
