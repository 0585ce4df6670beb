//! Diesel table definitions. Written by hand to match both migration trees; the
//! `migration_trees_match` test proves the trees agree with each other.

diesel::table! {
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    skills (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    agents (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Nullable<Text>,
        team_id -> Nullable<Text>,
        presence -> Text,
        presence_changed_at -> Timestamp,
        max_load -> Integer,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_assigned_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    agent_skills (agent_id, skill_id) {
        agent_id -> Text,
        skill_id -> Text,
        level -> Integer,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        name -> Text,
        token_prefix -> Text,
        token_hash -> Text,
        scopes -> Text,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    customers (id) {
        id -> Text,
        name -> Text,
        tier -> Text,
        value -> BigInt,
        notes -> Text,
        merged_into -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    customer_identities (id) {
        id -> Text,
        customer_id -> Text,
        kind -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    customer_events (id) {
        id -> Text,
        customer_id -> Text,
        kind -> Text,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        data -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    cases (id) {
        id -> Text,
        number -> BigInt,
        subject -> Text,
        status -> Text,
        priority -> Text,
        channel -> Text,
        customer_id -> Text,
        team_id -> Nullable<Text>,
        assignee_id -> Nullable<Text>,
        linked_case_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_message_at -> Timestamp,
        first_response_at -> Nullable<Timestamp>,
        solved_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        version -> BigInt,
        topic -> Nullable<Text>,
        waiting_since -> Nullable<Timestamp>,
        pinned -> Bool,
        offered_to -> Nullable<Text>,
        offer_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        case_id -> Text,
        direction -> Text,
        channel -> Text,
        author_kind -> Text,
        author_id -> Nullable<Text>,
        body_text -> Text,
        body_html -> Nullable<Text>,
        external_id -> Nullable<Text>,
        message_id_header -> Nullable<Text>,
        in_reply_to -> Nullable<Text>,
        references_header -> Nullable<Text>,
        thread_rule -> Nullable<Text>,
        delivery_status -> Nullable<Text>,
        created_at -> Timestamp,
        body_full -> Nullable<Text>,
        delivery_error -> Nullable<Text>,
        seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    attachments (id) {
        id -> Text,
        message_id -> Text,
        filename -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        inline_cid -> Nullable<Text>,
        content -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    case_events (id) {
        id -> Text,
        case_id -> Text,
        kind -> Text,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        data -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        kind -> Text,
        case_id -> Nullable<Text>,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(agents -> teams (team_id));
diesel::joinable!(agent_skills -> agents (agent_id));
diesel::joinable!(agent_skills -> skills (skill_id));
diesel::joinable!(customer_identities -> customers (customer_id));
diesel::joinable!(cases -> customers (customer_id));
diesel::joinable!(messages -> cases (case_id));
diesel::joinable!(attachments -> messages (message_id));
diesel::joinable!(case_events -> cases (case_id));
diesel::joinable!(satisfaction_surveys -> cases (case_id));

diesel::joinable!(case_skills -> cases (case_id));

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        request_hash -> Text,
        state -> Text,
        locked_until -> Timestamp,
        response_status -> Nullable<Integer>,
        response_headers -> Nullable<Text>,
        response_body -> Nullable<Binary>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    inbound_messages (id) {
        id -> Text,
        channel -> Text,
        source -> Text,
        dedup_key -> Text,
        outcome -> Text,
        reason -> Text,
        case_id -> Nullable<Text>,
        message_id -> Nullable<Text>,
        raw -> Binary,
        created_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mailbox_state (mailbox) {
        mailbox -> Text,
        uid_validity -> BigInt,
        last_uid -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    chat_sessions (id) {
        id -> Text,
        customer_id -> Text,
        case_id -> Nullable<Text>,
        visitor_id -> Text,
        token_hash -> Text,
        name -> Text,
        topic -> Nullable<Text>,
        status -> Text,
        received_seq -> BigInt,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    case_viewers (case_id, agent_id) {
        case_id -> Text,
        agent_id -> Text,
        composing -> Bool,
        seen_at -> Timestamp,
    }
}

diesel::table! {
    macros (id) {
        id -> Text,
        name -> Text,
        body -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    revoked_sessions (token_hash) {
        token_hash -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    satisfaction_surveys (case_id) {
        case_id -> Text,
        token_hash -> Text,
        channel -> Text,
        status -> Text,
        sent_at -> Timestamp,
        expires_at -> Timestamp,
        rating -> Nullable<Text>,
        comment -> Nullable<Text>,
        rated_at -> Nullable<Timestamp>,
        team_id -> Nullable<Text>,
        agent_id -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    counters,
    teams,
    skills,
    agents,
    agent_skills,
    api_tokens,
    customers,
    customer_identities,
    customer_events,
    cases,
    messages,
    attachments,
    case_events,
    outbox,
    idempotency_keys,
    inbound_messages,
    mailbox_state,
    chat_sessions,
    case_skills,
    agent_capacities,
    routing_decisions,
    routing_signals,
    agent_events,
    sla_calendars,
    sla_policies,
    case_sla,
    sla_fired,
    alerts,
    webhook_subscriptions,
    webhook_deliveries,
    case_viewers,
    macros,
    revoked_sessions,
    satisfaction_surveys,
);

diesel::table! {
    case_skills (case_id, skill_id) {
        case_id -> Text,
        skill_id -> Text,
        min_level -> Integer,
        required -> Bool,
    }
}

diesel::table! {
    agent_capacities (agent_id, channel) {
        agent_id -> Text,
        channel -> Text,
        capacity -> Integer,
    }
}

diesel::table! {
    routing_decisions (id) {
        id -> Text,
        case_id -> Text,
        agent_id -> Nullable<Text>,
        outcome -> Text,
        explanation -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    routing_signals (kind, ref_id) {
        kind -> Text,
        ref_id -> Text,
        seq -> BigInt,
    }
}

diesel::table! {
    agent_events (id) {
        id -> Text,
        agent_id -> Text,
        kind -> Text,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        data -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sla_calendars (id) {
        id -> Text,
        name -> Text,
        spec -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sla_policies (id) {
        id -> Text,
        name -> Text,
        position -> Integer,
        spec -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    case_sla (case_id) {
        case_id -> Text,
        policy_id -> Nullable<Text>,
        due_at -> Nullable<Timestamp>,
        breached -> Bool,
        next_at -> Nullable<Timestamp>,
        evaluated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sla_fired (case_id, metric, cycle, milestone) {
        case_id -> Text,
        metric -> Text,
        cycle -> Integer,
        milestone -> Text,
        due_at -> Timestamp,
        fired_at -> Timestamp,
    }
}

diesel::table! {
    alerts (id) {
        id -> Text,
        case_id -> Text,
        team_id -> Nullable<Text>,
        agent_id -> Nullable<Text>,
        kind -> Text,
        metric -> Nullable<Text>,
        action -> Nullable<Text>,
        message -> Text,
        due_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        acknowledged_by -> Nullable<Text>,
        acknowledged_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_subscriptions (id) {
        id -> Text,
        url -> Text,
        secret -> Text,
        events -> Text,
        description -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        subscription_id -> Text,
        event_type -> Text,
        event_id -> Text,
        case_id -> Text,
        data -> Text,
        event_at -> Timestamp,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
    }
}
