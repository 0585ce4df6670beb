//! Customer satisfaction: a case's survey for the desk, the public JSON endpoints for sites that
//! render their own rating page, and the server-rendered rating page (`/satisfaction/{token}`,
//! works without JavaScript) the survey links to. Opening a link never records an answer (mail
//! scanners open links); sending the page does.

use crate::error::ApiError;
use crate::extract::Auth;
use crate::guard::{set_limit_headers, Limits};
use crate::pages::{html, page};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use caseflow_app::satisfaction::{NewRating, Rating, SatisfactionView, SurveyPage, MAX_COMMENT_BYTES};
use caseflow_app::{App, AppError};
use caseflow_core::html::escape as esc;
use serde::Deserialize;

type Res = Result<HttpResponse, ApiError>;

#[utoipa::path(get, path = "/api/v1/cases/{id}/satisfaction", tag = "satisfaction",
    summary = "The case's satisfaction survey and the customer's answer (404 while none was sent)",
    operation_id = "case_satisfaction",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the survey", body = SatisfactionView)))]
pub async fn case_satisfaction(app: web::Data<App>, Auth(who): Auth, id: web::Path<String>) -> Res {
    Ok(HttpResponse::Ok().json(app.case_satisfaction(&who, id.into_inner()).await?))
}

#[utoipa::path(get, path = "/api/v1/public/satisfaction/{token}", tag = "public",
    summary = "What a survey link shows: the case, and the answer given so far (no credentials: the link's token is one)",
    operation_id = "get_survey",
    params(("token" = String, Path, description = "The token of the survey link")),
    responses(
        (status = 200, description = "the survey", body = SurveyPage),
        (status = 410, description = "Error: expired (the survey can no longer be answered)", body = crate::openapi::ErrorBody),
    ),
    security(()))]
pub async fn get_survey(app: web::Data<App>, token: web::Path<String>) -> Res {
    Ok(HttpResponse::Ok().json(app.survey(token.into_inner()).await?))
}

#[utoipa::path(post, path = "/api/v1/public/satisfaction/{token}", tag = "public",
    summary = "Answer (or change the answer to) a satisfaction survey (no credentials; limited per client IP)",
    description = "Records `good` or `bad` and an optional comment, seen only by the desk. A bad answer \
        alerts the team's supervisors; every change is on the case's timeline and sent as the \
        `case.rated` webhook.",
    operation_id = "rate",
    params(("token" = String, Path, description = "The token of the survey link")),
    request_body = NewRating,
    responses(
        (status = 200, description = "recorded", body = SurveyPage),
        (status = 410, description = "Error: expired (the survey can no longer be answered)", body = crate::openapi::ErrorBody),
    ),
    security(()))]
pub async fn rate(
    req: HttpRequest,
    app: web::Data<App>,
    limits: web::Data<Limits>,
    token: web::Path<String>,
    body: web::Json<NewRating>,
) -> Res {
    if let Err(wait) = limits.check_public(&limits.client_ip(&req)) {
        return Ok(crate::guard::rate_limited(limits.public_limit(), wait, "too many answers from your address"));
    }
    Ok(HttpResponse::Ok().json(app.rate(token.into_inner(), body.into_inner()).await?))
}

/// `?rating=` on a survey link: the answer to preselect.
#[derive(Debug, Default, Deserialize)]
pub struct Preselect {
    rating: Option<String>,
}

fn rating_label(r: Rating) -> &'static str {
    match r {
        Rating::Good => "Good, I'm satisfied",
        Rating::Bad => "Bad, I'm not satisfied",
    }
}

fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%-d %B %Y").to_string()
}

/// The rating form, with `chosen` selected and `comment` filled in.
fn form(s: &SurveyPage, chosen: Option<Rating>, comment: &str, error: Option<&str>, notice: Option<&str>) -> String {
    let mut out = String::from("<h1>How did we do?</h1>\n");
    out.push_str(&format!("<p>Case <strong>#{}</strong>: {}</p>\n", s.case_number, esc(&s.subject)));
    if let Some(n) = notice {
        out.push_str(&format!("<p class=\"cf-notice\" role=\"status\">{}</p>\n", esc(n)));
    } else if let Some(r) = s.rating {
        out.push_str(&format!(
            "<p class=\"cf-notice\" role=\"status\">Your answer: <strong>{}</strong>. You can change it until {}.</p>\n",
            esc(rating_label(r)),
            day(s.expires_at)
        ));
    }
    if let Some(e) = error {
        out.push_str(&format!(
            "<div class=\"cf-summary\" role=\"alert\" tabindex=\"-1\"><p class=\"cf-error\">{}</p></div>\n",
            esc(e)
        ));
    }
    out.push_str(
        "<form class=\"cf-form\" method=\"post\">\n<fieldset class=\"cf-field\">\n<legend>Your rating</legend>\n",
    );
    for &r in Rating::ALL {
        let checked = if chosen == Some(r) { " checked" } else { "" };
        out.push_str(&format!(
            "<label><input type=\"radio\" name=\"rating\" value=\"{v}\" required{checked}> {l}</label>\n",
            v = r.as_str(),
            l = esc(rating_label(r))
        ));
    }
    out.push_str(&format!(
        "</fieldset>\n<div class=\"cf-field\">\n<label for=\"f-comment\">Anything you want to tell us? (optional)</label>\n\
         <textarea id=\"f-comment\" name=\"comment\" rows=\"5\" maxlength=\"{MAX_COMMENT_BYTES}\">{}</textarea>\n</div>\n\
         <p>Only our support team sees your answer.</p>\n<button type=\"submit\">Send my answer</button>\n</form>\n",
        esc(comment)
    ));
    out
}

/// The page for a link that does not work (unknown, or expired), or `None` for other errors.
fn broken_link(e: &AppError) -> Option<HttpResponse> {
    let (status, text) = match e {
        AppError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            "This survey link is not valid. Please check that you opened the whole link from our message.",
        ),
        AppError::Expired(_) => {
            (StatusCode::GONE, "This survey has closed. Thank you all the same; you can always write to us.")
        }
        _ => return None,
    };
    Some(html(status, page("Survey", &format!("<h1>Survey</h1>\n<p role=\"status\">{}</p>\n", esc(text)))))
}

/// `GET /satisfaction/{token}`: the rating page (records nothing).
pub async fn survey_page(app: web::Data<App>, token: web::Path<String>, q: web::Query<Preselect>) -> Res {
    match app.survey(token.into_inner()).await {
        Ok(s) => {
            let chosen = q.rating.as_deref().and_then(|r| r.parse().ok()).or(s.rating);
            let body = form(&s, chosen, s.comment.as_deref().unwrap_or_default(), None, None);
            Ok(html(StatusCode::OK, page("How did we do?", &body)))
        }
        Err(e) => broken_link(&e).ok_or_else(|| e.into()),
    }
}

/// `POST /satisfaction/{token}` (`application/x-www-form-urlencoded`: `rating`, `comment`).
pub async fn survey_submit(
    req: HttpRequest,
    app: web::Data<App>,
    limits: web::Data<Limits>,
    token: web::Path<String>,
    body: web::Bytes,
) -> Res {
    let token = token.into_inner();
    let survey = match app.survey(token.clone()).await {
        Ok(s) => s,
        Err(e) => return broken_link(&e).ok_or_else(|| e.into()),
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let rating = field("rating").and_then(|r| r.parse().ok());
    let comment = field("comment").unwrap_or_default().to_owned();
    let again = |status: StatusCode, error: &str| {
        html(status, page("How did we do?", &form(&survey, rating, &comment, Some(error), None)))
    };
    if let Err(wait) = limits.check_public(&limits.client_ip(&req)) {
        let mut res = again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many answers from your network. Please wait {wait} seconds and send it again."),
        );
        set_limit_headers(&mut res, limits.public_limit(), wait);
        return Ok(res);
    }
    let Some(rating) = rating else {
        return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, "Please choose Good or Bad."));
    };
    match app.rate(token, NewRating { rating, comment: Some(comment.clone()) }).await {
        Ok(s) => {
            let thanks = format!(
                "Thank you! We have your answer: {}. You can change it here until {}.",
                rating_label(rating),
                day(s.expires_at)
            );
            let body = form(&s, s.rating, s.comment.as_deref().unwrap_or_default(), None, Some(&thanks));
            Ok(html(StatusCode::OK, page("Thank you", &body)))
        }
        Err(AppError::Validation(why)) => Ok(again(StatusCode::UNPROCESSABLE_ENTITY, &why)),
        Err(e) => broken_link(&e).ok_or_else(|| e.into()),
    }
}
