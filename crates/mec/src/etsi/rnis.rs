//! ETSI GS MEC 012 v2.2.1, Radio Network Information (`/rni/v2`): cell changes and UE
//! measurement reports.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Ecgi, LinkType, SelfLink, TimeStamp, WebsockNotifConfig};

/// `subscriptionType` of a [`CellChangeSubscription`].
pub const CELL_CHANGE: &str = "CellChangeSubscription";
/// `subscriptionType` of a [`MeasRepUeSubscription`].
pub const MEAS_REP_UE: &str = "MeasRepUeSubscription";

/// `hoStatus` 1: the handover is being prepared (edgeshift: a 1002 prediction, with
/// every candidate in `trgEcgi`).
pub const IN_PREPARATION: u8 = 1;
/// `hoStatus` 2: the handover executes (1005).
pub const IN_EXECUTION: u8 = 2;
/// `hoStatus` 3: the UE joined the target (2006).
pub const COMPLETED: u8 = 3;
/// `hoStatus` 4: the target refused admission.
pub const REJECTED: u8 = 4;
/// `hoStatus` 5: the handover failed or its prediction was withdrawn.
pub const CANCELLED: u8 = 5;

/// Every `Trigger` value of MEC 012 v2.2.1.
pub const TRIGGERS: &[i64] = &[
    0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 20, 21, 30, 31, 40, 41, 42, 50, 51, 60, 61,
];

/// `trigger` 1: periodical report of the strongest cells.
pub const PERIODICAL_REPORT_STRONGEST_CELLS: u8 = 1;

/// `associateId.type` 1: the UE's IPv4 address.
pub const UE_IPV4_ADDRESS: u8 = 1;

/// How a UE is named (§6.5.2): here always its IPv4 address (type 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssociateId {
    /// 1 = UE IPv4 address (0 reserved, 2 IPv6, 3 NATed IP, 4 GTP TEID).
    #[serde(rename = "type")]
    #[schema(minimum = 0, maximum = 4)]
    pub type_: u8,
    /// The address.
    pub value: String,
}

/// `filterCriteriaAssocHo` of a [`CellChangeSubscription`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilterCriteriaAssocHo {
    /// Only UEs whose service is this instance (or that this registered instance serves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_instance_id: Option<String>,
    /// Only these UEs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub associate_id: Option<Vec<AssociateId>>,
    /// Only handovers from or to these cells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecgi: Option<Vec<Ecgi>>,
    /// Only these statuses (1..5); empty or absent: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ho_status: Option<Vec<i64>>,
}

/// Subscription to cell changes (§6.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CellChangeSubscription {
    /// `CellChangeSubscription`.
    #[schema(pattern = "^CellChangeSubscription$")]
    pub subscription_type: String,
    /// Where notifications are POSTed: required here, an `http://` URL (docs/api.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, pattern = "^http://[^/?#@]+")]
    pub callback_reference: Option<String>,
    /// Send a `TestNotification` first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_test_notification: Option<bool>,
    /// Accepted, not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websock_notif_config: Option<WebsockNotifConfig>,
    /// Set by the server.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<SelfLink>,
    /// What to notify about.
    pub filter_criteria_assoc_ho: FilterCriteriaAssocHo,
    /// When the subscription ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_deadline: Option<TimeStamp>,
}

/// `filterCriteriaAssocTri` of a [`MeasRepUeSubscription`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilterCriteriaAssocTri {
    /// Only UEs whose service is this instance (or that this registered instance serves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_instance_id: Option<String>,
    /// Only these UEs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub associate_id: Option<Vec<AssociateId>>,
    /// Only reports from these serving cells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecgi: Option<Vec<Ecgi>>,
    /// Only these triggers; reports here are periodical (1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Vec<i64>>,
}

/// Subscription to UE measurement reports (§6.3.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasRepUeSubscription {
    /// `MeasRepUeSubscription`.
    #[schema(pattern = "^MeasRepUeSubscription$")]
    pub subscription_type: String,
    /// Where notifications are POSTed: required here, an `http://` URL (docs/api.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, pattern = "^http://[^/?#@]+")]
    pub callback_reference: Option<String>,
    /// Send a `TestNotification` first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_test_notification: Option<bool>,
    /// Accepted, not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websock_notif_config: Option<WebsockNotifConfig>,
    /// Set by the server.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<SelfLink>,
    /// What to notify about.
    pub filter_criteria_assoc_tri: FilterCriteriaAssocTri,
    /// When the subscription ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_deadline: Option<TimeStamp>,
}

/// Either subscription of the RNIS served here, told apart by `subscriptionType`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RniSubscription {
    /// Cell changes.
    CellChange(CellChangeSubscription),
    /// Measurement reports.
    MeasRepUe(MeasRepUeSubscription),
}

/// One candidate of the prediction extension.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictedCell {
    /// The candidate cell.
    pub ecgi: Ecgi,
    /// Likelihood that it becomes the target, in [0, 1].
    pub likelihood: f32,
}

/// Extension of edgeshift (`x-edgeshift-prediction`) on `IN_PREPARATION`: the RAN's
/// prediction (the seed patent's first control message). Standard clients ignore it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictionExt {
    /// Candidates, most likely first.
    pub candidates: Vec<PredictedCell>,
    /// When the handover is expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_time: Option<TimeStamp>,
    /// ± this many milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncertainty_ms: Option<f64>,
}

/// A cell change (§6.4.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CellChangeNotification {
    /// `CellChangeNotification`.
    pub notification_type: String,
    /// When.
    pub time_stamp: TimeStamp,
    /// The UE.
    pub associate_id: Vec<AssociateId>,
    /// The serving (source) cell.
    pub src_ecgi: Ecgi,
    /// The target; every candidate while `IN_PREPARATION`.
    pub trg_ecgi: Vec<Ecgi>,
    /// 1 in preparation, 2 in execution, 3 completed, 4 rejected, 5 cancelled.
    pub ho_status: u8,
    /// The subscription (as v2.2.1's file has it: an array of `self` links).
    #[serde(rename = "_links")]
    pub links: Vec<SelfLink>,
    /// The subscription.
    pub subscription: Vec<LinkType>,
    /// edgeshift's extension.
    #[serde(
        rename = "x-edgeshift-prediction",
        skip_serializing_if = "Option::is_none"
    )]
    pub prediction: Option<PredictionExt>,
}

/// One neighbour in a [`MeasRepUeNotification`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EutranNeighbourCellMeasInfo {
    /// The neighbour.
    pub ecgi: Ecgi,
    /// RSRP index (TS 36.133: 0 below -140 dBm, 97 at -44 dBm and above).
    pub rsrp: u8,
    /// RSRQ index (TS 36.133: 0 below -19.5 dB, 34 at -3 dB and above).
    pub rsrq: u8,
}

/// A UE measurement report (§6.4.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasRepUeNotification {
    /// `MeasRepUeNotification`.
    pub notification_type: String,
    /// When.
    pub time_stamp: TimeStamp,
    /// The serving cell.
    pub ecgi: Ecgi,
    /// The UE.
    pub associate_id: Vec<AssociateId>,
    /// Serving RSRP index.
    pub rsrp: u8,
    /// Serving RSRQ index (derived from the RSRPs: see `docs/api.md`).
    pub rsrq: u8,
    /// 1: periodical.
    pub trigger: u8,
    /// The neighbours.
    pub eutran_neighbour_cell_meas_info: Vec<EutranNeighbourCellMeasInfo>,
    /// The subscription (array of `self` links, as in v2.2.1's file).
    #[serde(rename = "_links")]
    pub links: Vec<SelfLink>,
    /// The subscription.
    pub subscription: Vec<LinkType>,
}

/// Sent once after a subscription that asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RniTestNotification {
    /// `TestNotification`.
    pub notification_type: String,
    /// The subscription.
    #[serde(rename = "_links")]
    pub links: super::SubscriptionRef,
}

/// RSRP (dBm) to its TS 36.133 report index.
#[must_use]
pub fn rsrp_index(dbm: f32) -> u8 {
    if !dbm.is_finite() {
        return 0;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = (dbm + 141.0).floor().clamp(0.0, 97.0) as u8;
    i
}

/// RSRQ (dB) to its TS 36.133 report index.
#[must_use]
pub fn rsrq_index(db: f32) -> u8 {
    if !db.is_finite() {
        return 0;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((db + 20.0) * 2.0).floor().clamp(0.0, 34.0) as u8;
    i
}

/// Noise per resource element (dBm): thermal noise over 15 kHz plus a 9 dB noise figure.
const NOISE_RE_DBM: f32 = -123.0;

/// RSRQ (dB) of `cell` at full load, from the RSRPs the UE measured: RSRQ = N·RSRP/RSSI
/// with RSSI over N resource blocks of 12 subcarriers, every cell transmitting
/// (TS 36.214), so RSRP / (12 · (Σ RSRP + noise)).
#[must_use]
pub fn rsrq_db(cell_dbm: f32, all_dbm: impl Iterator<Item = f32>) -> f32 {
    let mw = |d: f32| 10f32.powf(d / 10.0);
    let total: f32 = all_dbm.map(mw).sum::<f32>() + mw(NOISE_RE_DBM);
    10.0 * (mw(cell_dbm) / (12.0 * total)).log10()
}
