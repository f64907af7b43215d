//! ETSI GS MEC 021 v2.2.1, Application Mobility Service (`/amsi/v1`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{SelfLink, SubscriptionRef, TimeStamp, WebsockNotifConfig};

/// `subscriptionType` of a [`MobilityProcedureSubscription`].
pub const MOBILITY_PROCEDURE: &str = "MobilityProcedureSubscription";
/// `subscriptionType` of an [`AdjacentAppInfoSubscription`].
pub const ADJACENT_APP_INFO: &str = "AdjacentAppInfoSubscription";

/// `mobilityStatus` 1: the relocation was triggered (the 1006 went out).
pub const INTERHOST_MOVEOUT_TRIGGERED: u8 = 1;
/// `mobilityStatus` 2: the target instance is live.
pub const INTERHOST_MOVEOUT_COMPLETED: u8 = 2;
/// `mobilityStatus` 3: the target refused; the instance stays where it was.
pub const INTERHOST_MOVEOUT_FAILED: u8 = 3;

/// Who registers (§7.2.2): an application instance or a MEC platform.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConsumerId {
    /// The registering application instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_instance_id: Option<String>,
    /// The registering MEC platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mep_id: Option<String>,
}

/// `appMobilityServiceLevel`: 1 not allowed, 2 with confirmation, 3 without.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMobilityServiceLevel {
    /// 1, 2 or 3.
    #[schema(minimum = 1, maximum = 3)]
    pub app_mobility_service_level: u8,
}

/// One UE of a registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInformation {
    /// The UE's address (see `docs/api.md`: 10.45.0.0/16 plus the UE id).
    pub associate_id: String,
    /// Its mobility service level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_mobility_service_level: Option<AppMobilityServiceLevel>,
    /// 0 not transferred, 1 user context transfer completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub context_transfer_state: Option<u8>,
}

/// A registration with the AMS (§7.2.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationInfo {
    /// Assigned by the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_mobility_service_id: Option<String>,
    /// Who registers.
    pub service_consumer_id: ServiceConsumerId,
    /// The UEs the application serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_information: Option<Vec<DeviceInformation>>,
    /// Seconds the registration lasts (stored; registrations do not expire here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<u32>,
}

/// `filterCriteria` of a [`MobilityProcedureSubscription`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MobilityFilter {
    /// Only moves of this instance (or of the UEs this registered instance serves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_instance_id: Option<String>,
    /// Only moves for these UEs (addresses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub associate_id: Option<Vec<String>>,
    /// Only these statuses (1, 2, 3); empty or absent: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobility_status: Option<Vec<i64>>,
}

/// Subscription to relocations (§7.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MobilityProcedureSubscription {
    /// `MobilityProcedureSubscription`.
    #[schema(pattern = "^MobilityProcedureSubscription$")]
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
    pub filter_criteria: MobilityFilter,
    /// When the subscription ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_deadline: Option<TimeStamp>,
}

/// `filterCriteria` of an [`AdjacentAppInfoSubscription`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdjacentFilter {
    /// Only this instance's adjacent instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_instance_id: Option<String>,
}

/// Subscription to changes of the adjacent instances (§7.3.3): here, the shadows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdjacentAppInfoSubscription {
    /// `AdjacentAppInfoSubscription`.
    #[schema(pattern = "^AdjacentAppInfoSubscription$")]
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
    pub filter_criteria: AdjacentFilter,
    /// When the subscription ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_deadline: Option<TimeStamp>,
}

/// Either subscription of the AMS, told apart by `subscriptionType`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AmsSubscription {
    /// Relocations.
    MobilityProcedure(MobilityProcedureSubscription),
    /// Adjacent instances.
    AdjacentAppInfo(AdjacentAppInfoSubscription),
}

/// An address of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IpAddress {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// How to reach an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationInterface {
    /// Addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_addresses: Option<Vec<IpAddress>>,
}

/// The instance a service moves to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetAppInfo {
    /// The target instance (`me<server>.svc<service>`).
    pub app_instance_id: String,
    /// Its server's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm_interface: Option<CommunicationInterface>,
}

/// Extension of edgeshift (`x-edgeshift-relocation`): how and when the move happens.
/// Standard clients ignore it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelocationExt {
    /// The instance that moves out.
    pub source_app_instance_id: String,
    /// `hot` (onto a synced shadow), `cold` or `precopy`.
    pub mode: String,
    /// When the radio handover executes (the announced time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_time: Option<TimeStamp>,
}

/// A relocation notification (§7.4.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MobilityProcedureNotification {
    /// `MobilityProcedureNotification`.
    pub notification_type: String,
    /// When it happened.
    pub time_stamp: TimeStamp,
    /// The UE (its address).
    pub associate_id: Vec<String>,
    /// 1 triggered, 2 completed, 3 failed.
    pub mobility_status: u8,
    /// Where the instance goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_app_info: Option<TargetAppInfo>,
    /// The subscription.
    #[serde(rename = "_links")]
    pub links: SubscriptionRef,
    /// edgeshift's extension.
    #[serde(
        rename = "x-edgeshift-relocation",
        skip_serializing_if = "Option::is_none"
    )]
    pub relocation: Option<RelocationExt>,
}

/// One adjacent instance in an [`AdjacentAppInfoNotification`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdjacentAppInfo {
    /// The instance.
    pub app_instance_id: String,
    /// How to reach it.
    pub comm_interface: Vec<CommunicationInterface>,
}

/// The adjacent instances (shadows) of a service changed. MEC 021 v2.2.1's OpenAPI file
/// has no schema for it; this follows AdvantEDGE's (`go-apps/meep-ams/api`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdjacentAppInfoNotification {
    /// `AdjacentAppInfoNotification`.
    pub notification_type: String,
    /// When.
    pub time_stamp: TimeStamp,
    /// The instances that are adjacent now.
    pub adjacent_app_info: Vec<AdjacentAppInfo>,
    /// The subscription.
    #[serde(rename = "_links")]
    pub links: SubscriptionRef,
}

/// Sent once after a subscription that asked for it (§7.4.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestNotification {
    /// `TestNotification`.
    pub notification_type: String,
    /// The subscription.
    #[serde(rename = "_links")]
    pub links: SubscriptionRef,
}

/// Sent when a subscription reaches its `expiryDeadline` (§7.4.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpiryNotification {
    /// `ExpiryNotification`.
    pub notification_type: String,
    /// When.
    pub time_stamp: TimeStamp,
    /// The subscription.
    #[serde(rename = "_links")]
    pub links: SubscriptionRef,
    /// The deadline that passed.
    pub expiry_deadline: TimeStamp,
}

/// A MEC host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MecHostInformation {
    /// Its name (`me<server>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// Its identity.
    pub host_id: HostId,
}

/// `hostId`, an object in MEC 021.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostId {
    /// The ME server id.
    pub server_id: u32,
}

/// One adjacent instance (§7.2.3): a shadow of a service on another server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdjacentAppInstanceInfo {
    /// The shadow (`me<server>.svc<service>`).
    pub app_instance_id: String,
    /// The application descriptor: `edgeshift.svc<service>`.
    #[serde(rename = "appDId")]
    pub app_d_id: String,
    /// How to reach it.
    pub app_instance_comm_link: Vec<CommunicationInterface>,
    /// Where it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mec_host_information: Option<MecHostInformation>,
    /// The live instance it shadows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_instance_id: Option<String>,
}
