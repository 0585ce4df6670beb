//! Webhook subscriptions, their delivery log and replay (admins).

use crate::error::ApiError;
use crate::extract::Auth;
use actix_web::{web, HttpResponse};
use caseflow_app::webhooks::{DeliveryView, NewWebhook, RotateSecret, WebhookPatch, WebhookView};
use caseflow_app::App;
use serde::Deserialize;

type Res = Result<HttpResponse, ApiError>;
type Id = web::Path<String>;

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    summary = "Subscribe a URL to event types (admin); the answer carries the signing secret",
    operation_id = "create_webhook",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = NewWebhook,
    responses((status = 201, description = "subscribed", body = WebhookView)))]
pub async fn create_webhook(app: web::Data<App>, Auth(who): Auth, body: web::Json<NewWebhook>) -> Res {
    let w = app.create_webhook(&who, body.into_inner()).await?;
    Ok(crate::handlers::created(format!("/api/v1/webhooks/{}", w.id), w))
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", summary = "Webhook subscriptions (admin)",
    operation_id = "list_webhooks",
    responses((status = 200, description = "every subscription", body = crate::handlers::Items<WebhookView>)))]
pub async fn list_webhooks(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(crate::handlers::Items { items: app.list_webhooks(&who).await? }))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", summary = "One subscription (admin)",
    operation_id = "get_webhook",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the subscription", body = WebhookView)))]
pub async fn get_webhook(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.get_webhook(&who, id.into_inner()).await?))
}

#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    summary = "Change a subscription's URL, events, description or active flag (admin)",
    operation_id = "update_webhook",
    params(("id" = String, Path, description = "Resource id")),
    request_body = WebhookPatch,
    responses((status = 200, description = "changed", body = WebhookView)))]
pub async fn update_webhook(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<WebhookPatch>) -> Res {
    Ok(HttpResponse::Ok().json(app.update_webhook(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    summary = "Delete a subscription and its delivery log (admin)",
    operation_id = "delete_webhook",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 204, description = "deleted")))]
pub async fn delete_webhook(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    app.delete_webhook(&who, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    summary = "Give a subscription a new signing secret; the previous one keeps signing beside it for a while (admin)",
    operation_id = "rotate_webhook_secret",
    params(("id" = String, Path, description = "Resource id")),
    request_body = RotateSecret,
    responses((status = 200, description = "rotated; the answer carries the new secret", body = WebhookView)))]
pub async fn rotate_secret(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<RotateSecret>) -> Res {
    Ok(HttpResponse::Ok().json(app.rotate_webhook_secret(&who, id.into_inner(), body.into_inner()).await?))
}

/// Page size of the delivery log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    summary = "A subscription's delivery log, newest first: status, attempts, last HTTP status, body (admin)",
    operation_id = "list_webhook_deliveries",
    params(("id" = String, Path, description = "Resource id"), DeliveryQuery),
    responses((status = 200, description = "deliveries", body = crate::handlers::Items<DeliveryView>)))]
pub async fn list_deliveries(app: web::Data<App>, Auth(who): Auth, id: Id, q: web::Query<DeliveryQuery>) -> Res {
    Ok(HttpResponse::Ok()
        .json(crate::handlers::Items { items: app.list_deliveries(&who, id.into_inner(), q.limit).await? }))
}

#[utoipa::path(post, path = "/api/v1/webhooks/deliveries/{id}/replay", tag = "webhooks",
    summary = "Send a delivery again now: same id and body, a new signature (admin)",
    operation_id = "replay_webhook_delivery",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "queued", body = DeliveryView)))]
pub async fn replay_delivery(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.replay_delivery(&who, id.into_inner()).await?))
}
