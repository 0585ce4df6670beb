//! Agents, teams, skills and presence.

use crate::both_backends;
use crate::helpers::*;
use serde_json::json;

async fn teams_skills_and_agents_can_be_administered(app: &TestApp) {
    let team = app.post("/api/v1/teams", json!({"name": "Billing", "description": "Money"})).await.expect(201);
    let team_id = team["id"].as_str().unwrap().to_owned();
    app.post("/api/v1/teams", json!({"name": "Billing"})).await.expect_error(409, "already_exists");
    let renamed = app.patch(&format!("/api/v1/teams/{team_id}"), json!({"name": "Billing EU"})).await.expect(200);
    assert_eq!(renamed["name"], "Billing EU");

    let skill = app.post("/api/v1/skills", json!({"name": "german"})).await.expect(201);
    let skill_id = skill["id"].as_str().unwrap().to_owned();
    let other = app.post("/api/v1/skills", json!({"name": "billing"})).await.expect(201);

    let agent = app
        .post(
            "/api/v1/agents",
            json!({"email": "Hans@Caseflow.test", "name": "Hans", "role": "agent", "team_id": team_id, "max_load": 4}),
        )
        .await
        .expect(201);
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(agent["email"], "hans@caseflow.test");
    assert_eq!(agent["presence"], "offline");
    app.post("/api/v1/agents", json!({"email": "hans@caseflow.test", "name": "Dup", "role": "agent"}))
        .await
        .expect_error(409, "already_exists");
    app.post(
        "/api/v1/agents",
        json!({"email": "weak@caseflow.test", "name": "W", "role": "agent", "password": "short"}),
    )
    .await
    .expect_error(422, "validation_failed");
    app.post("/api/v1/agents", json!({"email": "r@caseflow.test", "name": "R", "role": "overlord"}))
        .await
        .expect_error(422, "validation_failed");

    let skilled = app
        .put(
            &format!("/api/v1/agents/{agent_id}/skills"),
            json!({"skills": [{"skill_id": skill_id, "level": 4}, {"skill_id": other["id"], "level": 2}]}),
        )
        .await
        .expect(200);
    assert_eq!(skilled["skills"].as_array().unwrap().len(), 2);
    app.put(&format!("/api/v1/agents/{agent_id}/skills"), json!({"skills": [{"skill_id": skill_id, "level": 9}]}))
        .await
        .expect_error(422, "validation_failed");
    app.put(&format!("/api/v1/agents/{agent_id}/skills"), json!({"skills": [{"skill_id": "nope", "level": 1}]}))
        .await
        .expect_error(422, "validation_failed");

    let online =
        app.put(&format!("/api/v1/agents/{agent_id}/presence"), json!({"presence": "online"})).await.expect(200);
    assert_eq!(online["presence"], "online");
    let listed = app.get("/api/v1/agents").await.expect(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);

    // A team with members cannot be deleted; an unused skill can, and agents lose it.
    app.delete(&format!("/api/v1/teams/{team_id}")).await.expect_error(409, "in_use");
    let r = app.delete(&format!("/api/v1/skills/{skill_id}")).await;
    assert_eq!(r.status.as_u16(), 204);
    assert_eq!(app.get(&format!("/api/v1/agents/{agent_id}")).await.expect(200)["skills"].as_array().unwrap().len(), 1);
    app.get(&format!("/api/v1/skills/{skill_id}")).await.expect_error(404, "not_found");
    app.patch(&format!("/api/v1/agents/{agent_id}"), json!({"team_id": null})).await.expect(200);
    assert_eq!(app.delete(&format!("/api/v1/teams/{team_id}")).await.status.as_u16(), 204);
}

both_backends!(teams_skills_and_agents_can_be_administered);
