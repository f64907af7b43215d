//! Registrations, subscriptions and their expiry, the adjacent-instance query: what the
//! HTTP handlers change and read.

use edgeshift_proto::Instant;

use super::subscription::{
    ams_common, ams_deadline, ams_type, parse_id, rni_common, rni_deadline, rni_type, set_ams_link,
    set_rni_link,
};
use super::validate::{check_ams, check_registration, check_rnis, default_ams, default_rnis};
use super::{ApiKind, Delivery, MecState, ser, server_name};
use crate::etsi::ams::{self, AmsSubscription};
use crate::etsi::rnis::{self, RniSubscription};
use crate::etsi::{
    LinkType, SubscriptionLink, SubscriptionLinkList, SubscriptionLinks, SubscriptionRef,
    TimeStamp, instance_id,
};
use crate::problem::Problem;

impl MecState {
    // Registrations (MEC 021 app_mobility_services).

    /// Registers an application.
    ///
    /// # Errors
    /// 429 when full, 422 when a field is out of range.
    pub fn register(
        &mut self,
        mut r: ams::RegistrationInfo,
    ) -> Result<ams::RegistrationInfo, Problem> {
        if self.registrations.len() >= self.limits.registrations {
            return Err(Problem::too_many(format!(
                "at most {} registrations",
                self.limits.registrations
            )));
        }
        check_registration(&r)?;
        let id = self.take_id();
        r.app_mobility_service_id = Some(id.to_string());
        self.registrations.insert(id, r.clone());
        self.reindex();
        Ok(r)
    }

    /// Every registration.
    #[must_use]
    pub fn registrations(&self) -> Vec<ams::RegistrationInfo> {
        self.registrations.values().cloned().collect()
    }

    /// One registration.
    #[must_use]
    pub fn registration(&self, id: &str) -> Option<ams::RegistrationInfo> {
        self.registrations.get(&id.parse().ok()?).cloned()
    }

    /// Replaces a registration.
    ///
    /// # Errors
    /// 404 unknown, 422 bad fields or a changed id.
    pub fn update_registration(
        &mut self,
        id: &str,
        mut r: ams::RegistrationInfo,
    ) -> Result<ams::RegistrationInfo, Problem> {
        let key = parse_id(id)?;
        if !self.registrations.contains_key(&key) {
            return Err(Problem::not_found(format!("no registration {id}")));
        }
        if r.app_mobility_service_id
            .as_deref()
            .is_some_and(|x| x != id)
        {
            return Err(Problem::unprocessable(
                "appMobilityServiceId does not match the resource".into(),
            ));
        }
        check_registration(&r)?;
        r.app_mobility_service_id = Some(id.to_owned());
        self.registrations.insert(key, r.clone());
        self.reindex();
        Ok(r)
    }

    /// Removes a registration.
    ///
    /// # Errors
    /// 404 unknown.
    pub fn deregister(&mut self, id: &str) -> Result<(), Problem> {
        let key = parse_id(id)?;
        self.registrations
            .remove(&key)
            .ok_or_else(|| Problem::not_found(format!("no registration {id}")))?;
        self.reindex();
        Ok(())
    }

    // Subscriptions.

    fn sub_count(&self, api: ApiKind) -> usize {
        match api {
            ApiKind::Ams => self.ams_subs.len(),
            ApiKind::Rnis => self.rni_subs.len(),
        }
    }

    /// Creates an AMS subscription; returns it with its `_links` and the test
    /// notification, if asked for.
    ///
    /// # Errors
    /// 422 bad fields, 429 full.
    pub fn subscribe_ams(
        &mut self,
        now: Instant,
        mut s: AmsSubscription,
    ) -> Result<(u64, AmsSubscription, Option<Delivery>), Problem> {
        if self.sub_count(ApiKind::Ams) >= self.limits.subscriptions {
            return Err(Problem::too_many(format!(
                "at most {} subscriptions",
                self.limits.subscriptions
            )));
        }
        default_ams(&mut s);
        check_ams(now, &s)?;
        let id = self.take_id();
        let href = self.href(ApiKind::Ams, id);
        set_ams_link(&mut s, &href);
        self.ams_subs.insert(id, s.clone());
        let (url, test) = ams_common(&s);
        let test = test.then(|| Delivery {
            url: url.to_owned(),
            body: ser(&ams::TestNotification {
                notification_type: "TestNotification".into(),
                links: SubscriptionRef {
                    subscription: LinkType { href },
                },
            }),
        });
        Ok((id, s, test))
    }

    /// Creates an RNIS subscription.
    ///
    /// # Errors
    /// 422 bad fields, 429 full.
    pub fn subscribe_rnis(
        &mut self,
        now: Instant,
        mut s: RniSubscription,
    ) -> Result<(u64, RniSubscription, Option<Delivery>), Problem> {
        if self.sub_count(ApiKind::Rnis) >= self.limits.subscriptions {
            return Err(Problem::too_many(format!(
                "at most {} subscriptions",
                self.limits.subscriptions
            )));
        }
        default_rnis(&mut s);
        check_rnis(now, &s)?;
        let id = self.take_id();
        let href = self.href(ApiKind::Rnis, id);
        set_rni_link(&mut s, &href);
        self.rni_subs.insert(id, s.clone());
        let (url, test) = rni_common(&s);
        let test = test.then(|| Delivery {
            url: url.to_owned(),
            body: ser(&rnis::RniTestNotification {
                notification_type: "TestNotification".into(),
                links: SubscriptionRef {
                    subscription: LinkType { href },
                },
            }),
        });
        Ok((id, s, test))
    }

    /// The AMS subscriptions, optionally of one type.
    #[must_use]
    pub fn ams_list(&self, kind: Option<&str>) -> SubscriptionLinkList {
        let subs = self.ams_subs.iter().map(|(id, s)| (*id, ams_type(s)));
        self.link_list(ApiKind::Ams, kind, subs)
    }

    /// The RNIS subscriptions, optionally of one type.
    #[must_use]
    pub fn rni_list(&self, kind: Option<&str>) -> SubscriptionLinkList {
        let subs = self.rni_subs.iter().map(|(id, s)| (*id, rni_type(s)));
        self.link_list(ApiKind::Rnis, kind, subs)
    }

    fn link_list(
        &self,
        api: ApiKind,
        kind: Option<&str>,
        subs: impl Iterator<Item = (u64, &'static str)>,
    ) -> SubscriptionLinkList {
        let subscription = subs
            .filter(|(_, t)| kind.is_none_or(|k| k == *t))
            .map(|(id, t)| SubscriptionLink {
                href: self.href(api, id),
                subscription_type: t.to_owned(),
            })
            .collect();
        SubscriptionLinkList {
            links: SubscriptionLinks {
                self_: LinkType {
                    href: format!("{}{}/subscriptions", self.base, api.root()),
                },
                subscription,
            },
        }
    }

    /// One AMS subscription.
    #[must_use]
    pub fn ams_get(&self, id: &str) -> Option<AmsSubscription> {
        self.ams_subs.get(&id.parse().ok()?).cloned()
    }

    /// One RNIS subscription.
    #[must_use]
    pub fn rni_get(&self, id: &str) -> Option<RniSubscription> {
        self.rni_subs.get(&id.parse().ok()?).cloned()
    }

    /// Replaces an AMS subscription (same type only).
    ///
    /// # Errors
    /// 404 unknown, 422 bad fields or another type.
    pub fn ams_put(
        &mut self,
        now: Instant,
        id: &str,
        mut s: AmsSubscription,
    ) -> Result<AmsSubscription, Problem> {
        let key = parse_id(id)?;
        let Some(old) = self.ams_subs.get(&key) else {
            return Err(Problem::not_found(format!("no subscription {id}")));
        };
        if ams_type(old) != ams_type(&s) {
            return Err(Problem::unprocessable(
                "a subscription keeps its subscriptionType".into(),
            ));
        }
        default_ams(&mut s);
        check_ams(now, &s)?;
        let href = self.href(ApiKind::Ams, key);
        set_ams_link(&mut s, &href);
        self.ams_subs.insert(key, s.clone());
        Ok(s)
    }

    /// Replaces an RNIS subscription (same type only).
    ///
    /// # Errors
    /// 404 unknown, 422 bad fields or another type.
    pub fn rni_put(
        &mut self,
        now: Instant,
        id: &str,
        mut s: RniSubscription,
    ) -> Result<RniSubscription, Problem> {
        let key = parse_id(id)?;
        let Some(old) = self.rni_subs.get(&key) else {
            return Err(Problem::not_found(format!("no subscription {id}")));
        };
        if rni_type(old) != rni_type(&s) {
            return Err(Problem::unprocessable(
                "a subscription keeps its subscriptionType".into(),
            ));
        }
        default_rnis(&mut s);
        check_rnis(now, &s)?;
        let href = self.href(ApiKind::Rnis, key);
        set_rni_link(&mut s, &href);
        self.rni_subs.insert(key, s.clone());
        Ok(s)
    }

    /// Cancels a subscription.
    ///
    /// # Errors
    /// 404 unknown.
    pub fn unsubscribe(&mut self, api: ApiKind, id: &str) -> Result<(), Problem> {
        let key = parse_id(id)?;
        let gone = match api {
            ApiKind::Ams => self.ams_subs.remove(&key).is_some(),
            ApiKind::Rnis => self.rni_subs.remove(&key).is_some(),
        };
        if gone {
            Ok(())
        } else {
            Err(Problem::not_found(format!("no subscription {id}")))
        }
    }

    /// Removes the subscriptions whose `expiryDeadline` passed; returns their expiry
    /// notifications.
    pub fn expire(&mut self, now: Instant) -> Vec<Delivery> {
        let now_ts = TimeStamp::of(now);
        let due = |d: Option<TimeStamp>| d.is_some_and(|d| d.instant() <= now);
        // (API, id, callback, deadline) of every subscription that expired.
        let mut gone = Vec::new();
        self.ams_subs.retain(|id, s| {
            let d = ams_deadline(s);
            let keep = !due(d);
            if !keep {
                gone.push((ApiKind::Ams, *id, ams_common(s).0.to_owned(), d));
            }
            keep
        });
        self.rni_subs.retain(|id, s| {
            let d = rni_deadline(s);
            let keep = !due(d);
            if !keep {
                gone.push((ApiKind::Rnis, *id, rni_common(s).0.to_owned(), d));
            }
            keep
        });
        gone.into_iter()
            .map(|(api, id, url, deadline)| Delivery {
                url,
                body: ser(&ams::ExpiryNotification {
                    notification_type: "ExpiryNotification".into(),
                    time_stamp: now_ts,
                    links: SubscriptionRef {
                        subscription: LinkType {
                            href: self.href(api, id),
                        },
                    },
                    expiry_deadline: deadline.unwrap_or(now_ts),
                }),
            })
            .collect()
    }

    // Adjacent instances.

    /// The adjacent instances (shadows) of every service, or of the service whose
    /// instance is `of`.
    #[must_use]
    pub fn adjacent(&self, of: Option<&str>) -> Vec<ams::AdjacentAppInstanceInfo> {
        let mut out = Vec::new();
        for (service, host) in &self.hosts {
            let live = instance_id(*service, *host);
            if of.is_some_and(|o| o != live) {
                continue;
            }
            for server in self.view.shadows_of(*service) {
                out.push(ams::AdjacentAppInstanceInfo {
                    app_instance_id: instance_id(*service, server),
                    app_d_id: format!("edgeshift.svc{}", service.0),
                    app_instance_comm_link: vec![
                        self.address(server)
                            .unwrap_or(ams::CommunicationInterface { ip_addresses: None }),
                    ],
                    mec_host_information: Some(ams::MecHostInformation {
                        host_name: Some(server_name(server)),
                        host_id: ams::HostId {
                            server_id: server.0,
                        },
                    }),
                    registered_instance_id: Some(live.clone()),
                });
            }
        }
        out
    }
}
