//! Accessors over the two kinds of subscription of each API.

use super::Problem;
use crate::etsi::ams::{self, AmsSubscription};
use crate::etsi::rnis::{self, RniSubscription};
use crate::etsi::{LinkType, SelfLink, TimeStamp};

pub(super) fn parse_id(id: &str) -> Result<u64, Problem> {
    id.parse()
        .map_err(|_| Problem::not_found(format!("no resource {id:?}")))
}

pub(super) fn ams_type(s: &AmsSubscription) -> &'static str {
    match s {
        AmsSubscription::MobilityProcedure(_) => ams::MOBILITY_PROCEDURE,
        AmsSubscription::AdjacentAppInfo(_) => ams::ADJACENT_APP_INFO,
    }
}

pub(super) fn rni_type(s: &RniSubscription) -> &'static str {
    match s {
        RniSubscription::CellChange(_) => rnis::CELL_CHANGE,
        RniSubscription::MeasRepUe(_) => rnis::MEAS_REP_UE,
    }
}

/// Callback URL and whether a test notification was asked for.
pub(super) fn ams_common(s: &AmsSubscription) -> (&str, bool) {
    let (url, test) = match s {
        AmsSubscription::MobilityProcedure(s) => {
            (&s.callback_reference, s.request_test_notification)
        }
        AmsSubscription::AdjacentAppInfo(s) => (&s.callback_reference, s.request_test_notification),
    };
    (url.as_deref().unwrap_or_default(), test.unwrap_or(false))
}

pub(super) fn rni_common(s: &RniSubscription) -> (&str, bool) {
    let (url, test) = match s {
        RniSubscription::CellChange(s) => (&s.callback_reference, s.request_test_notification),
        RniSubscription::MeasRepUe(s) => (&s.callback_reference, s.request_test_notification),
    };
    (url.as_deref().unwrap_or_default(), test.unwrap_or(false))
}

pub(super) fn ams_deadline(s: &AmsSubscription) -> Option<TimeStamp> {
    match s {
        AmsSubscription::MobilityProcedure(s) => s.expiry_deadline,
        AmsSubscription::AdjacentAppInfo(s) => s.expiry_deadline,
    }
}

pub(super) fn rni_deadline(s: &RniSubscription) -> Option<TimeStamp> {
    match s {
        RniSubscription::CellChange(s) => s.expiry_deadline,
        RniSubscription::MeasRepUe(s) => s.expiry_deadline,
    }
}

pub(super) fn set_ams_link(s: &mut AmsSubscription, href: &str) {
    let link = Some(SelfLink {
        self_: LinkType { href: href.into() },
    });
    match s {
        AmsSubscription::MobilityProcedure(s) => s.links = link,
        AmsSubscription::AdjacentAppInfo(s) => s.links = link,
    }
}

pub(super) fn set_rni_link(s: &mut RniSubscription, href: &str) {
    let link = Some(SelfLink {
        self_: LinkType { href: href.into() },
    });
    match s {
        RniSubscription::CellChange(s) => s.links = link,
        RniSubscription::MeasRepUe(s) => s.links = link,
    }
}
