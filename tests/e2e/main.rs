//! End-to-end tests: the real server on a random loopback port, driven over HTTP, once on
//! SQLite and once on PostgreSQL (`CASEFLOW_TEST_POSTGRES_URL`, started by `make test`).

// Test code: a panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod auth;
mod browser;
mod cases;
mod chat;
mod cli;
mod customers;
mod directory;
mod errors;
mod firefox;
mod inbound;
mod integrator;
mod mail;
mod mailservers;
mod openapi;
mod routing;
mod satisfaction;
mod sla;
mod ui;
mod webform;
mod webhooks;
