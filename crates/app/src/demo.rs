//! Realistic demo data for `make run` and `caseflow demo`: teams, agents with skills,
//! customers with several identities, and cases across every channel.

use crate::auth::Principal;
use crate::cases::{CasePatch, MessageKind, NewCase, NewMessage};
use crate::customers::{CustomerRef, NewCustomer, NewIdentity};
use crate::directory::{NamedInput, NewAgent, PresenceRequest, SetSkills, SkillLevel};
use crate::error::AppResult;
use crate::routing::CaseSkill;
use crate::App;
use caseflow_core::*;
use caseflow_store::queries;

/// The admin account the demo creates.
pub const DEMO_ADMIN_EMAIL: &str = "admin@caseflow.test";

/// Whether the database has no agents yet.
pub async fn is_empty(app: &App) -> AppResult<bool> {
    app.read(|conn| Ok(queries::agents::count(conn)? == 0)).await
}

/// Seeds the demo data set with every agent's password set to `password`.
pub async fn seed(app: &App, password: &str) -> AppResult<()> {
    let sys = Principal::System;
    let team =
        |name: &str, description: &str| NamedInput { name: Some(name.into()), description: Some(description.into()) };
    let billing = app.create_team(&sys, team("Billing", "Invoices, refunds, payment methods")).await?;
    let tech = app.create_team(&sys, team("Technical Support", "Product problems and integrations")).await?;
    let success = app.create_team(&sys, team("Customer Success", "Key accounts and onboarding")).await?;

    let mut skill_ids = std::collections::HashMap::new();
    for (name, description) in [
        ("billing", "Invoices, refunds, payment methods"),
        ("technical", "Troubleshooting and integrations"),
        ("english", "Written English"),
        ("german", "Written German"),
        ("french", "Written French"),
        ("vip", "Trusted with key accounts"),
    ] {
        let s = app.create_skill(&sys, team(name, description)).await?;
        skill_ids.insert(name, s.id.into_inner());
    }
    seed_sla(app).await?;

    type Person<'a> = (&'a str, &'a str, Role, Option<&'a str>, &'a [(&'a str, i32)], Presence);
    let people: [Person; 6] = [
        (DEMO_ADMIN_EMAIL, "Ada Admin", Role::Admin, None, &[("english", 5)], Presence::Online),
        (
            "sam.supervisor@caseflow.test",
            "Sam Supervisor",
            Role::Supervisor,
            Some(success.id.as_str()),
            &[("vip", 5), ("english", 5)],
            Presence::Online,
        ),
        (
            "alice@caseflow.test",
            "Alice Novak",
            Role::Agent,
            Some(billing.id.as_str()),
            &[("billing", 4), ("english", 5)],
            Presence::Online,
        ),
        (
            "bob@caseflow.test",
            "Bob Keller",
            Role::Agent,
            Some(tech.id.as_str()),
            &[("technical", 5), ("german", 5), ("english", 4)],
            Presence::Online,
        ),
        (
            "chen@caseflow.test",
            "Chen Wei",
            Role::Agent,
            Some(tech.id.as_str()),
            &[("technical", 3), ("billing", 2), ("french", 4)],
            Presence::Away,
        ),
        (
            "dana@caseflow.test",
            "Dana Okafor",
            Role::Agent,
            Some(success.id.as_str()),
            &[("vip", 4), ("english", 5)],
            Presence::Offline,
        ),
    ];
    let mut agent_ids = Vec::new();
    for (email, name, role, team_id, skills, presence) in people {
        let a = app
            .create_agent(
                &sys,
                NewAgent {
                    email: email.into(),
                    name: name.into(),
                    role,
                    password: Some(password.into()),
                    team_id: team_id.map(str::to_owned),
                    max_load: Some(if role == Role::Agent { 6 } else { 3 }),
                },
            )
            .await?;
        let levels = skills
            .iter()
            .filter_map(|(s, level)| skill_ids.get(s).map(|id| SkillLevel { skill_id: id.clone(), level: *level }))
            .collect();
        app.set_agent_skills(&sys, a.id.to_string(), SetSkills { skills: levels }).await?;
        app.set_presence(&sys, a.id.to_string(), PresenceRequest { presence }).await?;
        agent_ids.push(a.id.into_inner());
    }

    let customers = [
        (
            "Maria González",
            Tier::Gold,
            48_000,
            vec![
                (IdentityKind::Email, "maria.gonzalez@example.com"),
                (IdentityKind::External, "CRM-1001"),
                (IdentityKind::ChatVisitor, "v-7f3a9c"),
            ],
        ),
        (
            "Oskar Berg",
            Tier::Platinum,
            250_000,
            vec![(IdentityKind::Email, "oskar@berg-logistik.example"), (IdentityKind::Email, "o.berg@example.net")],
        ),
        (
            "Priya Raman",
            Tier::Standard,
            120,
            vec![(IdentityKind::Email, "priya.r@example.org"), (IdentityKind::ChatVisitor, "v-19be02")],
        ),
        ("Lukas Meier", Tier::Silver, 3_400, vec![(IdentityKind::Email, "lukas.meier@meier-bau.example")]),
        (
            "Amélie Dubois",
            Tier::Standard,
            0,
            vec![(IdentityKind::Email, "amelie.dubois@example.fr"), (IdentityKind::External, "CRM-1042")],
        ),
    ];
    let mut customer_ids = Vec::new();
    for (name, tier, value, idents) in customers {
        let c = app
            .create_customer(
                &sys,
                NewCustomer {
                    name: Some(name.into()),
                    tier: Some(tier),
                    value: Some(value),
                    notes: None,
                    identities: idents.into_iter().map(|(kind, v)| NewIdentity { kind, value: v.into() }).collect(),
                },
            )
            .await?;
        customer_ids.push(c.customer.id.into_inner());
    }

    struct Demo {
        customer: usize,
        channel: Channel,
        priority: Priority,
        subject: &'static str,
        body: &'static str,
        team: Option<String>,
        assignee: Option<usize>,
        reply: Option<&'static str>,
        status: Option<CaseStatus>,
    }
    let cases = [
        Demo { customer: 0, channel: Channel::Email, priority: Priority::High, subject: "Charged twice for my November invoice",
            body: "Hello,\n\nmy card was charged twice for invoice INV-2026-1187. Can you refund one of the payments?\n\nThanks, Maria",
            team: Some(billing.id.to_string()), assignee: Some(2), reply: Some("Hi Maria, I can see both charges and have started the refund of the duplicate. It will arrive in 3-5 business days."), status: Some(CaseStatus::Pending) },
        Demo { customer: 0, channel: Channel::Chat, priority: Priority::Normal, subject: "Chat: how do I export my invoices?",
            body: "Hi! Where can I download all my invoices as PDF?", team: Some(billing.id.to_string()), assignee: None, reply: None, status: None },
        Demo { customer: 1, channel: Channel::Email, priority: Priority::Urgent, subject: "API returns 502 for all shipment updates",
            body: "Since 09:12 CET every call to /shipments returns 502. Our warehouse is blocked. Please call me.",
            team: Some(tech.id.to_string()), assignee: Some(3), reply: Some("Hello Oskar, we are on it: the gateway in eu-west lost its pool. Workaround: use the eu-central endpoint. Next update within 30 minutes."), status: None },
        Demo { customer: 2, channel: Channel::Web, priority: Priority::Low, subject: "Suggestion: dark mode for the dashboard",
            body: "Love the product. A dark mode would be great for late shifts.", team: None, assignee: None, reply: None, status: None },
        Demo { customer: 3, channel: Channel::Web, priority: Priority::Normal, subject: "Passwort-Reset funktioniert nicht",
            body: "Ich bekomme keine E-Mail zum Zurücksetzen meines Passworts.", team: Some(tech.id.to_string()), assignee: Some(3),
            reply: Some("Hallo Lukas, die E-Mail ist im Spam-Ordner gelandet? Ich habe den Link erneut geschickt."), status: Some(CaseStatus::Solved) },
        Demo { customer: 4, channel: Channel::Chat, priority: Priority::Normal, subject: "Chat: question about the French VAT on my invoice",
            body: "Bonjour, la TVA sur ma facture semble incorrecte.", team: Some(billing.id.to_string()), assignee: Some(4), reply: None, status: None },
        Demo { customer: 1, channel: Channel::Api, priority: Priority::High, subject: "Renewal: 500 extra seats from January",
            body: "Created from the CRM: Oskar wants a quote for 500 extra seats.", team: Some(success.id.to_string()), assignee: Some(1), reply: None, status: Some(CaseStatus::OnHold) },
        Demo { customer: 2, channel: Channel::Email, priority: Priority::Normal, subject: "Complaint: agent was rude on the phone",
            body: "I was treated badly on my last call and want this looked at.", team: Some(success.id.to_string()), assignee: None, reply: None, status: None },
    ];
    // Routing requires the team's skill for the demo cases.
    let skill_for_team: std::collections::HashMap<&str, &str> =
        [(billing.id.as_str(), "billing"), (tech.id.as_str(), "technical"), (success.id.as_str(), "vip")]
            .into_iter()
            .collect();
    for d in cases {
        let created = app
            .create_case(
                &sys,
                NewCase {
                    subject: d.subject.into(),
                    body: d.body.into(),
                    customer: CustomerRef { id: Some(customer_ids[d.customer].clone()), ..CustomerRef::default() },
                    priority: Some(d.priority),
                    channel: Some(d.channel),
                    team_id: d.team.clone(),
                    assignee_id: d.assignee.map(|i| agent_ids[i].clone()),
                    external_id: None,
                    skills: skill_for_team
                        .get(d.team.as_deref().unwrap_or_default())
                        .and_then(|name| skill_ids.get(name))
                        .map(|id| vec![CaseSkill { skill_id: id.clone(), min_level: 1, required: true }])
                        .unwrap_or_default(),
                },
            )
            .await?;
        let id = created.case.case.id.to_string();
        if let Some(reply) = d.reply {
            app.add_message(
                &sys,
                id.clone(),
                NewMessage { kind: MessageKind::Reply, body: reply.into(), status: None, external_id: None },
            )
            .await?;
        }
        if let Some(status) = d.status {
            if status != CaseStatus::Open {
                app.update_case(
                    &sys,
                    id.clone(),
                    CasePatch { status: Some(CaseStatus::Open), ..CasePatch::default() },
                    None,
                )
                .await?;
            }
            app.update_case(&sys, id.clone(), CasePatch { status: Some(status), ..CasePatch::default() }, None).await?;
            if status == CaseStatus::Solved {
                // The customer already answered the satisfaction survey (the console's CSAT).
                app.demo_rating(id, crate::satisfaction::Rating::Good, "Quick and friendly, thank you!").await?;
            }
        }
    }
    app.add_message(
        &sys,
        customer_case_hint(app).await?,
        NewMessage {
            kind: MessageKind::Note,
            body: "Customer is on the Gold plan; renewal is due in January. Be extra careful with refunds.".into(),
            status: None,
            external_id: None,
        },
    )
    .await?;
    tracing::info!("demo data seeded");
    Ok(())
}

async fn customer_case_hint(app: &App) -> AppResult<String> {
    let page = app
        .list_cases(
            &Principal::System,
            crate::cases::CaseQuery { sort: Some("created_at".into()), limit: Some(1), ..Default::default() },
        )
        .await?;
    page.items.into_iter().next().map(|c| c.id.into_inner()).ok_or(crate::AppError::NotFound("case"))
}

/// A support-hours calendar and three SLA policies (docs/sla.md): urgent cases around the
/// clock, gold and platinum customers in business hours with a short first response, and a
/// catch-all standard policy.
fn spec<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> AppResult<T> {
    serde_json::from_value(v).map_err(|e| crate::AppError::Internal(e.to_string()))
}

async fn seed_sla(app: &App) -> AppResult<()> {
    let sys = Principal::System;
    app.create_calendar(
        &sys,
        spec(serde_json::json!({
            "name": "Support hours",
            "time_zone": "Europe/Paris",
            "hours": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:30", "to": "12:30"},
                {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "13:30", "to": "18:00"},
                {"days": ["sat"], "from": "10:00", "to": "14:00"}
            ],
            "holidays": [
                {"date": "2026-01-01", "name": "New Year", "yearly": true},
                {"date": "2026-05-01", "name": "Labour Day", "yearly": true},
                {"date": "2026-12-25", "name": "Christmas", "yearly": true}
            ]
        }))?,
    )
    .await?;
    let ladder = serde_json::json!([
        {"on": "warning", "action": "notify_assignee"},
        {"on": "breach", "action": "alert_supervisors"},
        {"on": "breach", "after_minutes": 60, "action": "reassign", "metrics": ["first_response"]}
    ]);
    for policy in [
        serde_json::json!({
            "name": "Urgent, around the clock",
            "conditions": {"priorities": ["urgent"]},
            "targets": [
                {"metric": "first_response", "minutes": 30, "business_hours": false},
                {"metric": "next_response", "minutes": 60, "business_hours": false},
                {"metric": "resolution", "minutes": 480, "business_hours": false}
            ],
            "warning": {"percent": 75},
            "ladder": ladder
        }),
        serde_json::json!({
            "name": "Gold and Platinum",
            "conditions": {"tiers": ["gold", "platinum"]},
            "calendar": "Support hours",
            "targets": [
                {"metric": "first_response", "minutes": 60},
                {"metric": "next_response", "minutes": 120},
                {"metric": "resolution", "minutes": 960}
            ],
            "warning": {"percent": 75, "minutes_before": 15},
            "ladder": ladder
        }),
        serde_json::json!({
            "name": "Standard",
            "calendar": "Support hours",
            "targets": [
                {"metric": "first_response", "minutes": 480},
                {"metric": "next_response", "minutes": 480},
                {"metric": "resolution", "minutes": 2400}
            ],
            "ladder": [
                {"on": "warning", "action": "notify_assignee"},
                {"on": "breach", "action": "alert_supervisors"},
                {"on": "breach", "action": "raise_priority"}
            ]
        }),
    ] {
        app.create_policy(&sys, spec(policy)?).await?;
    }
    Ok(())
}
