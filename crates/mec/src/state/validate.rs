//! What a registration or subscription must satisfy beyond its JSON types (422 otherwise).

use edgeshift_proto::Instant;

use crate::etsi::TimeStamp;
use crate::etsi::ams::{self, AmsSubscription};
use crate::etsi::rnis::{self, RniSubscription};
use crate::problem::Problem;

/// A callback this server can POST to: an absolute `http` URL with a host.
fn check_callback(url: Option<&String>) -> Result<(), Problem> {
    let Some(url) = url else {
        return Err(Problem::unprocessable(
            "callbackReference is required: this server delivers notifications by HTTP POST \
             only (no websockets)"
                .into(),
        ));
    };
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Problem::unprocessable(format!("callbackReference {url:?}: {e}")))?;
    if parsed.scheme() != "http" || parsed.host_str().is_none_or(str::is_empty) {
        return Err(Problem::unprocessable(format!(
            "callbackReference {url:?}: only http://host[:port]/path callbacks are supported"
        )));
    }
    Ok(())
}

fn check_deadline(now: Instant, d: Option<TimeStamp>) -> Result<(), Problem> {
    match d {
        Some(d) if d.nano_seconds >= 1_000_000_000 => Err(Problem::unprocessable(
            "expiryDeadline.nanoSeconds must be below 10^9".into(),
        )),
        Some(d) if d.instant() <= now => Err(Problem::unprocessable(
            "expiryDeadline lies in the past".into(),
        )),
        _ => Ok(()),
    }
}

fn check_range(
    name: &str,
    v: Option<&Vec<i64>>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<(), Problem> {
    if let Some(bad) = v.into_iter().flatten().find(|x| !range.contains(x)) {
        return Err(Problem::unprocessable(format!(
            "{name} {bad} is not one of {}..={}",
            range.start(),
            range.end()
        )));
    }
    Ok(())
}

pub(super) fn check_ams(now: Instant, s: &AmsSubscription) -> Result<(), Problem> {
    match s {
        AmsSubscription::MobilityProcedure(s) => {
            if s.subscription_type != ams::MOBILITY_PROCEDURE {
                return Err(Problem::unprocessable(format!(
                    "subscriptionType {:?} is not {}",
                    s.subscription_type,
                    ams::MOBILITY_PROCEDURE
                )));
            }
            check_range(
                "mobilityStatus",
                s.filter_criteria.mobility_status.as_ref(),
                1..=3,
            )?;
            check_callback(s.callback_reference.as_ref())?;
            check_deadline(now, s.expiry_deadline)
        }
        AmsSubscription::AdjacentAppInfo(s) => {
            if s.subscription_type != ams::ADJACENT_APP_INFO {
                return Err(Problem::unprocessable(format!(
                    "subscriptionType {:?} is not {}",
                    s.subscription_type,
                    ams::ADJACENT_APP_INFO
                )));
            }
            check_callback(s.callback_reference.as_ref())?;
            check_deadline(now, s.expiry_deadline)
        }
    }
}

fn check_associates(ids: Option<&Vec<rnis::AssociateId>>) -> Result<(), Problem> {
    if let Some(a) = ids.into_iter().flatten().find(|a| a.type_ > 4) {
        return Err(Problem::unprocessable(format!(
            "associateId type {} is not one of 0..=4",
            a.type_
        )));
    }
    Ok(())
}

pub(super) fn check_rnis(now: Instant, s: &RniSubscription) -> Result<(), Problem> {
    match s {
        RniSubscription::CellChange(s) => {
            check_range(
                "hoStatus",
                s.filter_criteria_assoc_ho.ho_status.as_ref(),
                1..=5,
            )?;
            check_associates(s.filter_criteria_assoc_ho.associate_id.as_ref())?;
            check_callback(s.callback_reference.as_ref())?;
            check_deadline(now, s.expiry_deadline)
        }
        RniSubscription::MeasRepUe(s) => {
            check_associates(s.filter_criteria_assoc_tri.associate_id.as_ref())?;
            if let Some(t) = s
                .filter_criteria_assoc_tri
                .trigger
                .iter()
                .flatten()
                .find(|t| !rnis::TRIGGERS.contains(t))
            {
                return Err(Problem::unprocessable(format!(
                    "trigger {t} is not one of MEC 012's Trigger values"
                )));
            }
            check_callback(s.callback_reference.as_ref())?;
            check_deadline(now, s.expiry_deadline)
        }
    }
}

pub(super) fn check_registration(r: &ams::RegistrationInfo) -> Result<(), Problem> {
    for d in r.device_information.iter().flatten() {
        if let Some(l) = &d.app_mobility_service_level
            && !(1..=3).contains(&l.app_mobility_service_level)
        {
            return Err(Problem::unprocessable(format!(
                "appMobilityServiceLevel {} is not 1, 2 or 3",
                l.app_mobility_service_level
            )));
        }
        if d.context_transfer_state.is_some_and(|c| c > 1) {
            return Err(Problem::unprocessable(
                "contextTransferState is 0 or 1".into(),
            ));
        }
    }
    Ok(())
}

/// MEC 021 §7.3.2: without `mobilityStatus`, a subscription is for 1
/// (`INTERHOST_MOVEOUT_TRIGGERED`), and says so in the response.
pub(super) fn default_ams(s: &mut AmsSubscription) {
    if let AmsSubscription::MobilityProcedure(s) = s
        && s.filter_criteria.mobility_status.is_none()
    {
        s.filter_criteria.mobility_status = Some(vec![i64::from(ams::INTERHOST_MOVEOUT_TRIGGERED)]);
    }
}

/// MEC 012: without `hoStatus`, a cell change subscription is for 3 (`COMPLETED`), and
/// says so in the response.
pub(super) fn default_rnis(s: &mut RniSubscription) {
    if let RniSubscription::CellChange(s) = s
        && s.filter_criteria_assoc_ho.ho_status.is_none()
    {
        s.filter_criteria_assoc_ho.ho_status = Some(vec![i64::from(rnis::COMPLETED)]);
    }
}
