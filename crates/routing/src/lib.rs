//! Caseflow's routing engine: which agent takes which waiting case. Pure: time and data come
//! in as arguments (no clock, no I/O), so results are deterministic for equal inputs and the
//! engine is property-tested and benchmarked directly.
//!
//! - **Eligibility** (per case): the agent is online, has every required skill at its minimum
//!   level, has free capacity on the case's channel, and is in the case's team (until the team
//!   restriction is widened). Computed as the AND of bitsets over agent slots.
//! - **Choice** among eligible agents: least busy, longest idle or best skill match, with
//!   deterministic tie-breaks (then longest idle, then the smaller agent id).
//! - **Order of waiting cases**, in three classes: (1) *starving* — waiting longer than
//!   `fairness_after_ms`, served oldest first; (2) *SLA at risk* — due within `sla_risk_ms`,
//!   earliest due first; (3) the rest by score = priority + tier + customer value + aging.
//!   Aging is linear in waiting time with one slope for all cases, so the order within class
//!   3 never changes over time and a case's key is computed once.
//! - **Fairness bound**: a case that has waited longer than `fairness_after_ms` is assigned
//!   before any case enqueued after it, to every agent able to take both. Proven by property
//!   tests (`tests/properties.rs`).
//! - **Incremental**: waiting cases sit in queues keyed by their requirement (skills, channel,
//!   team); an agent that frees capacity looks at the heads of the queues it qualifies for, not
//!   at every case; a new case looks at agents through bitsets, not one by one.
//! - **Explanations**: every decision carries the candidates considered, why the others were
//!   excluded, and why this one was chosen.

pub mod bits;

use bits::Bits;
use caseflow_core::{Channel, Presence, Priority, Tier};
use serde::{Deserialize, Serialize};
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A fast, non-cryptographic hasher for the engine's small integer keys (FxHash's multiply
/// and rotate). The keys come from the caller's data, not from untrusted input sizes that
/// could be used to provoke collisions at scale.
#[derive(Default)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Milliseconds since the epoch; the caller's clock.
pub type Millis = i64;
/// The caller's id for an agent.
pub type AgentKey = u32;
/// The caller's id for a case.
pub type CaseKey = u64;

/// An agent's pick: the case, the runner-up case with its class, and the queues considered.
type Pick = (CaseKey, Option<(CaseKey, Class)>, usize);

/// A strategy's ordering key for one agent (smaller is better; the agent id breaks ties).
type AgentRank = (i64, i64, i64, AgentKey);

const CHANNELS: usize = 4;

fn channel_slot(c: Channel) -> usize {
    match c {
        Channel::Email => 0,
        Channel::Web => 1,
        Channel::Chat => 2,
        Channel::Api => 3,
    }
}

/// An agent as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentKey,
    pub team: Option<u32>,
    pub presence: Presence,
    /// (skill, level 1–5).
    pub skills: Vec<(u16, u8)>,
    /// Concurrent cases per channel (email, web, chat, api).
    pub capacity: [u16; CHANNELS],
    pub load: [u16; CHANNELS],
    pub last_assigned_at: Millis,
}

/// A waiting case as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub id: CaseKey,
    pub channel: Channel,
    pub priority: Priority,
    pub tier: Tier,
    /// The customer's value figure (≥ 0).
    pub value: i64,
    /// (skill, minimum level).
    pub required: Vec<(u16, u8)>,
    /// Preferred skills: they only break ties under best skill match, until relaxed.
    pub optional: Vec<u16>,
    /// Restricted to this team until `widen_team_after_ms`.
    pub team: Option<u32>,
    pub enqueued_at: Millis,
    pub sla_due: Option<Millis>,
}

/// How to choose among eligible agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Lowest load on the case's channel relative to capacity.
    LeastBusy,
    /// Longest since the last assignment.
    LongestIdle,
    /// Highest required-skill levels plus preferred skills held.
    BestSkillMatch,
}

/// Tunables; see the crate documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub strategy: Strategy,
    /// The fairness bound X.
    pub fairness_after_ms: Millis,
    pub sla_risk_ms: Millis,
    /// Score points per priority step (low 0 … urgent 3).
    pub priority_points: i64,
    /// Score points per tier step (standard 0 … platinum 3).
    pub tier_points: i64,
    /// Customer value counts one point per this much value, up to `value_cap_points`.
    pub value_unit: i64,
    pub value_cap_points: i64,
    /// Score points per minute of waiting.
    pub aging_points_per_minute: i64,
    /// After this long, preferred skills no longer matter.
    pub relax_optional_after_ms: Millis,
    /// After this long, a team restriction is dropped.
    pub widen_team_after_ms: Millis,
    /// After this long unassigned, the case is raised to supervisors.
    pub escalate_after_ms: Millis,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            strategy: Strategy::LongestIdle,
            fairness_after_ms: 30 * 60_000,
            sla_risk_ms: 15 * 60_000,
            priority_points: 100,
            tier_points: 40,
            value_unit: 1_000,
            value_cap_points: 100,
            aging_points_per_minute: 5,
            relax_optional_after_ms: 2 * 60_000,
            widen_team_after_ms: 10 * 60_000,
            escalate_after_ms: 20 * 60_000,
        }
    }
}

fn priority_rank(p: Priority) -> i64 {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

fn tier_rank(t: Tier) -> i64 {
    match t {
        Tier::Standard => 0,
        Tier::Silver => 1,
        Tier::Gold => 2,
        Tier::Platinum => 3,
    }
}

impl Config {
    /// The time-independent part of a case's score.
    pub fn base_score(&self, c: &Case) -> i64 {
        let value = if self.value_unit > 0 { (c.value.max(0) / self.value_unit).min(self.value_cap_points) } else { 0 };
        priority_rank(c.priority) * self.priority_points + tier_rank(c.tier) * self.tier_points + value
    }

    /// The score at `now` (explanations).
    pub fn score_at(&self, c: &Case, now: Millis) -> i64 {
        self.base_score(c) + self.aging_points_per_minute * (now - c.enqueued_at).max(0) / 60_000
    }

    /// A key whose order equals the order of scores at any common time (linear aging).
    fn order_key(&self, c: &Case) -> i128 {
        i128::from(self.base_score(c)) * 60_000 - i128::from(self.aging_points_per_minute) * i128::from(c.enqueued_at)
    }
}

/// Which class a case was served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Waited longer than the fairness bound: oldest first.
    Starving,
    /// Due within the risk window: earliest due first.
    SlaAtRisk,
    /// By score.
    Normal,
}

/// A step of overflow that applied to the case when it was routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    OptionalSkillsRelaxed,
    TeamWidened,
    Escalated,
}

/// Why a case went (or did not go) to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub case: CaseKey,
    pub at: Millis,
    pub strategy: Strategy,
    pub class: Class,
    pub score: i64,
    pub agents_total: usize,
    pub excluded_offline: usize,
    pub excluded_skills: usize,
    pub excluded_capacity: usize,
    pub excluded_team: usize,
    pub eligible: usize,
    /// The chosen agent first, with the values the strategy compared; when a new case was
    /// placed, up to two runners-up among the eligible agents.
    pub ranking: Vec<(AgentKey, Compared)>,
    /// When an agent with free capacity pulled the case: how many queue heads it looked at
    /// (walking the heads from the best down; or, for an agent who qualifies for few queues,
    /// how many queues it qualified for), and the best case it did not take.
    pub queues_considered: usize,
    pub runner_up_case: Option<(CaseKey, Class)>,
    pub overflow: Vec<Overflow>,
}

/// What the strategy compared for one agent (formatted only when shown: `Display`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Compared {
    pub strategy: Strategy,
    /// Load and capacity on the case's channel.
    pub load: u16,
    pub capacity: u16,
    /// 0 = never assigned.
    pub last_assigned_at: Millis,
    /// Best skill match: the agent's levels in the required skills, and preferred skills held.
    pub skill_levels: u32,
    pub preferred_skills: u32,
}

impl std::fmt::Display for Compared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Compared { load, capacity, last_assigned_at: idle, skill_levels, preferred_skills, .. } = *self;
        match self.strategy {
            Strategy::LeastBusy => write!(f, "load {load}/{capacity}, last assigned {idle}"),
            Strategy::LongestIdle => write!(f, "last assigned {idle}"),
            Strategy::BestSkillMatch => {
                write!(f, "skill levels {skill_levels}, preferred skills {preferred_skills}, load {load}/{capacity}")
            }
        }
    }
}

/// A case assigned to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub case: CaseKey,
    pub agent: AgentKey,
    pub explanation: Explanation,
}

/// Up to four skill ids, sorted: the lookup key of `by_skills` (no allocation per lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SkillKey {
    len: u8,
    skills: [u16; 4],
}

impl SkillKey {
    fn of(skills: impl Iterator<Item = u16>) -> Option<Self> {
        let mut k = SkillKey { len: 0, skills: [0; 4] };
        for s in skills {
            *k.skills.get_mut(usize::from(k.len))? = s;
            k.len += 1;
        }
        Some(k)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct QueueKey {
    required: Vec<(u16, u8)>,
    channel: usize,
    team: Option<u32>,
}

#[derive(Debug, Clone, Default)]
struct Queue {
    by_age: BTreeSet<(Millis, CaseKey)>,
    by_due: BTreeSet<(Millis, Millis, CaseKey)>,
    by_score: BTreeSet<(Reverse<i128>, Millis, CaseKey)>,
}

/// The heads of a queue's three orders (what the global head index holds for it).
type Heads = (Option<(Millis, CaseKey)>, Option<(Millis, Millis, CaseKey)>, Option<(Reverse<i128>, Millis, CaseKey)>);

impl Queue {
    fn heads(&self) -> Heads {
        (self.by_age.first().copied(), self.by_due.first().copied(), self.by_score.first().copied())
    }
}

/// Per normalized requirement: the online agents with it, and how many.
type SkilledCache = HashMap<Vec<(u16, u8)>, (Bits, usize)>;

/// A queue's oldest case in the global index: (enqueued, case, queue id).
type AgeHead = (Millis, CaseKey, u32);
/// A queue's earliest-due case: (due, enqueued, case, queue id).
type DueHead = (Millis, Millis, CaseKey, u32);
/// A queue's best-scored case: (order key, enqueued, case, queue id).
type ScoreHead = (Reverse<i128>, Millis, CaseKey, u32);

/// What an agent must have to take a queue's cases, stored flat for the head scan.
#[derive(Debug, Clone, Default)]
struct QInfo {
    team: Option<u32>,
    /// Up to four requirements held inline (one cache line with the team: the head walk
    /// reads this for every head it passes); more in `wide`.
    len: u8,
    short: [(u16, u8); 4],
    wide: Vec<(u16, u8)>,
}

impl QInfo {
    fn new(required: &[(u16, u8)], team: Option<u32>) -> Self {
        let mut info = QInfo { team, len: 0, short: [(0, 0); 4], wide: Vec::new() };
        if required.len() > info.short.len() {
            info.wide = required.to_vec();
        } else {
            for (i, r) in required.iter().enumerate() {
                info.short[i] = *r;
            }
            info.len = u8::try_from(required.len()).unwrap_or(0);
        }
        info
    }

    fn required(&self) -> &[(u16, u8)] {
        if self.wide.is_empty() {
            self.short.get(..usize::from(self.len)).unwrap_or(&[])
        } else {
            &self.wide
        }
    }
}

#[cfg(test)]
thread_local! {
    /// How often `best_case_for` handed over to the subset lookup (tests check both paths run).
    static FALLBACKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Queue heads examined per channel by the global scan before it leaves the rest to the
/// per-skill-subset lookup (an agent who qualifies for few queues).
const HEAD_SCAN_LIMIT: usize = 192;

#[derive(Clone)]
struct Waiting {
    case: Case,
    /// Its queue (`Router::qinfo` holds what the queue requires).
    qid: u32,
    widened: bool,
    escalated: bool,
}

/// The routing state of one node: agents and waiting cases.
#[derive(Clone)]
pub struct Router {
    config: Config,
    slots: Vec<Agent>,
    slot_of: HashMap<AgentKey, usize>,
    online: Bits,
    free: [Bits; CHANNELS],
    /// The same sets as lists (slot → position in `free_pos`), for counting agents with room
    /// when few have any: a busy system, where most decisions happen.
    free_list: [Vec<u32>; CHANNELS],
    free_pos: [Vec<u32>; CHANNELS],
    /// (skill, level) → agents holding the skill at least at that level.
    skill_at_least: HashMap<(u16, u8), Bits>,
    teams: HashMap<u32, Bits>,
    /// (channel, required skill ids) → the queues with exactly those skills (any levels,
    /// teams): an agent finds its queues by enumerating subsets of its own skills, and reads
    /// them in place (no second lookup).
    by_skills: HashMap<(usize, SkillKey), BTreeMap<QueueKey, u32>>,
    /// Queues requiring more than four skills: always looked at.
    wide_queues: BTreeMap<QueueKey, u32>,
    queue_count: usize,
    /// Per requirement (normalized skills and levels): the agents online with those skills,
    /// and how many. A cache for the explanation counts, which otherwise scan every agent's
    /// bits on every decision; emptied whenever an agent's presence or skills change (load
    /// and capacity changes, the frequent ones, do not touch it).
    skilled: std::cell::RefCell<SkilledCache>,
    online_count: usize,
    /// Per queue id: what taking its cases requires. Ids are reused (`free_ids`).
    qinfo: Vec<QInfo>,
    /// Per queue id: its cases in the three orders (a waiting case knows its queue's id, so
    /// a dequeue goes straight to it).
    queues: Vec<Queue>,
    free_ids: Vec<u32>,
    /// Per channel, every queue's head in each order: an agent with room walks these from
    /// the best down to the first queue it qualifies for, instead of looking at every queue
    /// its skills allow (see `best_case_for`).
    head_age: [BTreeSet<AgeHead>; CHANNELS],
    head_due: [BTreeSet<DueHead>; CHANNELS],
    head_score: [BTreeSet<ScoreHead>; CHANNELS],
    waiting: HashMap<CaseKey, Waiting>,
    /// Pending overflow steps: (due, case); entries of cases no longer waiting are skipped.
    timers: BTreeSet<(Millis, CaseKey)>,
    /// Timer entries left behind by cases that stopped waiting since the last sweep.
    stale_timers: usize,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").field("agents", &self.slots.len()).field("waiting", &self.waiting.len()).finish()
    }
}

fn normalized(required: &[(u16, u8)]) -> Vec<(u16, u8)> {
    let mut r: Vec<(u16, u8)> = required.iter().map(|&(s, l)| (s, l.clamp(1, 5))).collect();
    r.sort_unstable();
    // The highest minimum per skill.
    r.dedup_by(|b, a| {
        if a.0 == b.0 {
            a.1 = a.1.max(b.1);
            true
        } else {
            false
        }
    });
    r
}

impl Router {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            slots: Vec::new(),
            slot_of: HashMap::default(),
            online: Bits::default(),
            free: Default::default(),
            free_list: Default::default(),
            free_pos: Default::default(),
            skill_at_least: HashMap::default(),
            teams: HashMap::default(),
            by_skills: HashMap::default(),
            wide_queues: BTreeMap::new(),
            queue_count: 0,
            skilled: Default::default(),
            online_count: 0,
            qinfo: Vec::new(),
            queues: Vec::new(),
            free_ids: Vec::new(),
            head_age: Default::default(),
            head_due: Default::default(),
            head_score: Default::default(),
            waiting: HashMap::default(),
            timers: BTreeSet::new(),
            stale_timers: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of waiting cases.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// An agent's current state, if known.
    pub fn agent(&self, id: AgentKey) -> Option<&Agent> {
        self.slot_of.get(&id).map(|&s| &self.slots[s])
    }

    /// Whether a case is waiting.
    pub fn is_waiting(&self, id: CaseKey) -> bool {
        self.waiting.contains_key(&id)
    }

    /// Whether the agent in `slot` has room on channel `ch` (the bitset and the list).
    fn set_free(&mut self, ch: usize, slot: usize, on: bool) {
        self.free[ch].set(slot, on);
        let pos = &mut self.free_pos[ch];
        if pos.len() <= slot {
            pos.resize(slot + 1, u32::MAX);
        }
        let list = &mut self.free_list[ch];
        let Ok(slot32) = u32::try_from(slot) else { return };
        match (on, pos[slot]) {
            (true, u32::MAX) => {
                pos[slot] = u32::try_from(list.len()).unwrap_or(u32::MAX);
                list.push(slot32);
            }
            (false, p) if p != u32::MAX => {
                let p = p as usize;
                list.swap_remove(p);
                if let Some(&moved) = list.get(p) {
                    pos[moved as usize] = u32::try_from(p).unwrap_or(u32::MAX);
                }
                pos[slot] = u32::MAX;
            }
            _ => {}
        }
    }

    fn index_agent(&mut self, slot: usize) {
        let a = self.slots[slot].clone();
        let (was, is) = (self.online.get(slot), a.presence == Presence::Online);
        if was != is {
            if is {
                self.online_count += 1;
            } else {
                self.online_count -= 1;
            }
        }
        self.online.set(slot, is);
        for ch in 0..CHANNELS {
            self.set_free(ch, slot, a.load[ch] < a.capacity[ch]);
        }
        for bits in self.skill_at_least.values_mut() {
            bits.set(slot, false);
        }
        for &(skill, level) in &a.skills {
            for l in 1..=level.clamp(1, 5) {
                self.skill_at_least.entry((skill, l)).or_default().set(slot, true);
            }
        }
        for bits in self.teams.values_mut() {
            bits.set(slot, false);
        }
        if let Some(t) = a.team {
            self.teams.entry(t).or_default().set(slot, true);
        }
    }

    /// Adds or replaces an agent (presence, skills, capacity or load changed), then assigns
    /// waiting cases the agent can now take.
    pub fn upsert_agent(&mut self, agent: Agent, now: Millis) -> Vec<Decision> {
        let id = agent.id;
        self.set_agent(agent);
        self.fill(id, now)
    }

    /// Adds or replaces an agent without assigning anything yet: a caller applying several
    /// changes at once sets every agent first, then lets them [`Router::fill`].
    pub fn set_agent(&mut self, agent: Agent) {
        let slot = match self.slot_of.get(&agent.id) {
            Some(&s) => {
                let old = &self.slots[s];
                if old.presence != agent.presence || old.skills != agent.skills {
                    self.skilled.get_mut().clear();
                }
                self.slots[s] = agent;
                s
            }
            None => {
                self.skilled.get_mut().clear();
                self.slots.push(agent.clone());
                let s = self.slots.len() - 1;
                self.slot_of.insert(agent.id, s);
                s
            }
        };
        self.index_agent(slot);
    }

    /// Assigns the agent the waiting cases it can take now (best first).
    pub fn fill(&mut self, agent: AgentKey, now: Millis) -> Vec<Decision> {
        match self.slot_of.get(&agent) {
            Some(&slot) => self.fill_agent(slot, now),
            None => Vec::new(),
        }
    }

    /// An agent finished a case on `channel` (load − 1), then takes more work.
    pub fn release(&mut self, agent: AgentKey, channel: Channel, now: Millis) -> Vec<Decision> {
        let Some(&slot) = self.slot_of.get(&agent) else { return Vec::new() };
        let ch = channel_slot(channel);
        let a = &mut self.slots[slot];
        a.load[ch] = a.load[ch].saturating_sub(1);
        let free = a.load[ch] < a.capacity[ch];
        self.set_free(ch, slot, free);
        self.fill_agent(slot, now)
    }

    /// The agents eligible for the case (when `want_set`) and the explanation's counts, in
    /// one pass over the words of the bitsets, without intermediate sets.
    fn eligible_for(
        &self,
        case: &Case,
        required: &[(u16, u8)],
        team: Option<u32>,
        want_set: bool,
    ) -> (Bits, Explanation) {
        let ch = channel_slot(case.channel);
        let total = self.slots.len();
        let words = total.div_ceil(64);
        let mut cache = self.skilled.borrow_mut();
        if !cache.contains_key(required) {
            if cache.len() >= 4_096 {
                cache.clear();
            }
            let entry = self.skilled_set(required, words);
            cache.insert(required.to_vec(), entry);
        }
        let Some((skilled_set, skilled)) = cache.get(required) else {
            return (Bits::default(), self.explanation(case, total, 0, 0, 0));
        };
        let skilled = *skilled;
        let team_set = team.map(|t| self.teams.get(&t));
        let free = self.free[ch].words();
        let skilled_words = skilled_set.words();
        let (mut room, mut eligible) = (0usize, 0usize);
        if self.free_list[ch].len() < words {
            // Few agents have room (a busy system): look at those, not at every agent.
            let mut out = if want_set { vec![0u64; words] } else { Vec::new() };
            for &slot in &self.free_list[ch] {
                let slot = slot as usize;
                if !skilled_set.get(slot) {
                    continue;
                }
                room += 1;
                let in_team = match team_set {
                    None => true,
                    Some(Some(t)) => t.get(slot),
                    Some(None) => false,
                };
                if in_team {
                    eligible += 1;
                    if let Some(w) = out.get_mut(slot / 64) {
                        *w |= 1 << (slot % 64);
                    }
                }
            }
            return (Bits::from_words(out), self.explanation(case, total, skilled, room, eligible));
        }
        let mut out = Vec::with_capacity(if want_set { words } else { 0 });
        for (i, &w) in skilled_words.iter().enumerate() {
            let r = w & free.get(i).copied().unwrap_or(0);
            let e = match team_set {
                None => r,
                Some(Some(t)) => r & t.word(i),
                Some(None) => 0,
            };
            room += r.count_ones() as usize;
            eligible += e.count_ones() as usize;
            if want_set {
                out.push(e);
            }
        }
        if want_set {
            out.resize(words, 0);
        }
        (Bits::from_words(out), self.explanation(case, total, skilled, room, eligible))
    }

    /// The agents online with every (skill, level) of `required`, and how many.
    fn skilled_set(&self, required: &[(u16, u8)], words: usize) -> (Bits, usize) {
        let mut sets: Vec<&Bits> = Vec::with_capacity(required.len());
        for key in required {
            match self.skill_at_least.get(key) {
                Some(b) => sets.push(b),
                None => return (Bits::default(), 0),
            }
        }
        let mut n = 0;
        let set: Vec<u64> = (0..words)
            .map(|i| {
                let w = sets.iter().fold(self.online.word(i), |w, b| w & b.word(i));
                n += w.count_ones() as usize;
                w
            })
            .collect();
        (Bits::from_words(set), n)
    }

    /// The explanation's counts (the rest is filled in by the caller).
    fn explanation(&self, case: &Case, total: usize, skilled: usize, room: usize, eligible: usize) -> Explanation {
        let online = self.online_count;
        Explanation {
            case: case.id,
            at: 0,
            strategy: self.config.strategy,
            class: Class::Normal,
            score: 0,
            agents_total: total,
            excluded_offline: total - online,
            excluded_skills: online - skilled,
            excluded_capacity: skilled - room,
            excluded_team: room - eligible,
            eligible,
            ranking: Vec::new(),
            queues_considered: 0,
            runner_up_case: None,
            overflow: Vec::new(),
        }
    }

    /// The strategy's key for an agent (smaller is better; the agent id breaks ties).
    fn agent_rank(&self, slot: usize, case: &Case, now: Millis) -> AgentRank {
        let a = &self.slots[slot];
        let ch = channel_slot(case.channel);
        // Load relative to capacity, in thousandths.
        let ratio = i64::from(a.load[ch]) * 1000 / i64::from(a.capacity[ch].max(1));
        match self.config.strategy {
            Strategy::LeastBusy => (ratio, a.last_assigned_at, 0, a.id),
            Strategy::LongestIdle => (a.last_assigned_at, 0, 0, a.id),
            Strategy::BestSkillMatch => {
                let (levels, optional) = self.skill_match(a, case, now);
                (-(levels * 10 + optional), ratio, a.last_assigned_at, a.id)
            }
        }
    }

    /// (the agent's levels summed over the required skills, preferred skills held unless
    /// relaxed).
    fn skill_match(&self, a: &Agent, case: &Case, now: Millis) -> (i64, i64) {
        let levels =
            case.required.iter().map(|&(s, _)| a.skills.iter().find(|k| k.0 == s).map_or(0, |k| i64::from(k.1))).sum();
        let relaxed = now - case.enqueued_at >= self.config.relax_optional_after_ms;
        let optional = if relaxed {
            0
        } else {
            case.optional.iter().filter(|o| a.skills.iter().any(|k| k.0 == **o)).count() as i64
        };
        (levels, optional)
    }

    /// The strategy's key for an agent and a description of what was compared.
    fn agent_key(&self, slot: usize, case: &Case, now: Millis) -> Compared {
        let a = &self.slots[slot];
        let ch = channel_slot(case.channel);
        let strategy = self.config.strategy;
        let (skill_levels, preferred_skills) = match strategy {
            Strategy::BestSkillMatch => {
                let (levels, optional) = self.skill_match(a, case, now);
                (u32::try_from(levels).unwrap_or(u32::MAX), u32::try_from(optional).unwrap_or(u32::MAX))
            }
            _ => (0, 0),
        };
        Compared {
            strategy,
            load: a.load[ch],
            capacity: a.capacity[ch],
            last_assigned_at: a.last_assigned_at,
            skill_levels,
            preferred_skills,
        }
    }

    fn effective_team(&self, case: &Case, now: Millis) -> Option<u32> {
        case.team.filter(|_| now - case.enqueued_at < self.config.widen_team_after_ms)
    }

    fn queue_key(&self, case: &Case, now: Millis) -> QueueKey {
        QueueKey {
            required: normalized(&case.required),
            channel: channel_slot(case.channel),
            team: self.effective_team(case, now),
        }
    }

    fn enqueue(&mut self, case: Case, now: Millis) {
        let key = self.queue_key(&case, now);
        let bucket = match SkillKey::of(key.required.iter().map(|r| r.0)) {
            Some(sk) => self.by_skills.entry((key.channel, sk)).or_default(),
            None => &mut self.wide_queues,
        };
        let (ch, team) = (key.channel, key.team);
        let qid = match bucket.get(&key) {
            Some(&id) => id,
            None => {
                self.queue_count += 1;
                let info = QInfo::new(&key.required, key.team);
                let id = match self.free_ids.pop() {
                    Some(id) => {
                        if let Some(slot) = self.qinfo.get_mut(id as usize) {
                            *slot = info;
                        }
                        id
                    }
                    None => {
                        self.qinfo.push(info);
                        self.queues.push(Queue::default());
                        u32::try_from(self.qinfo.len() - 1).unwrap_or(u32::MAX)
                    }
                };
                bucket.insert(key, id);
                id
            }
        };
        let Some(q) = self.queues.get_mut(qid as usize) else { return };
        let before = q.heads();
        q.by_age.insert((case.enqueued_at, case.id));
        if let Some(due) = case.sla_due {
            q.by_due.insert((due, case.enqueued_at, case.id));
        }
        q.by_score.insert((Reverse(self.config.order_key(&case)), case.enqueued_at, case.id));
        let after = q.heads();
        self.move_heads(ch, qid, before, after);
        let c = &self.config;
        for t in [c.widen_team_after_ms, c.escalate_after_ms] {
            self.timers.insert((case.enqueued_at.saturating_add(t), case.id));
        }
        let widened = case.team.is_some() && team.is_none();
        self.waiting.insert(case.id, Waiting { case, qid, widened, escalated: false });
    }

    /// Keeps the global head index in step with one queue's heads.
    fn move_heads(&mut self, ch: usize, qid: u32, before: Heads, after: Heads) {
        if before.0 != after.0 {
            if let Some((e, c)) = before.0 {
                self.head_age[ch].remove(&(e, c, qid));
            }
            if let Some((e, c)) = after.0 {
                self.head_age[ch].insert((e, c, qid));
            }
        }
        if before.1 != after.1 {
            if let Some((d, e, c)) = before.1 {
                self.head_due[ch].remove(&(d, e, c, qid));
            }
            if let Some((d, e, c)) = after.1 {
                self.head_due[ch].insert((d, e, c, qid));
            }
        }
        if before.2 != after.2 {
            if let Some((k, e, c)) = before.2 {
                self.head_score[ch].remove(&(k, e, c, qid));
            }
            if let Some((k, e, c)) = after.2 {
                self.head_score[ch].insert((k, e, c, qid));
            }
        }
    }

    fn dequeue(&mut self, id: CaseKey) -> Option<Waiting> {
        let w = self.waiting.remove(&id)?;
        let order_key = self.config.order_key(&w.case);
        let (qid, ch) = (w.qid, channel_slot(w.case.channel));
        if let Some(q) = self.queues.get_mut(qid as usize) {
            let before = q.heads();
            q.by_age.remove(&(w.case.enqueued_at, id));
            if let Some(due) = w.case.sla_due {
                q.by_due.remove(&(due, w.case.enqueued_at, id));
            }
            q.by_score.remove(&(Reverse(order_key), w.case.enqueued_at, id));
            let (after, empty) = (q.heads(), q.by_age.is_empty());
            if empty {
                // The last case: the queue goes, and its id is reused.
                self.free_ids.push(qid);
                self.queue_count -= 1;
                // (Its requirement stays readable in `qinfo` until the id is reused by a new
                // queue: `take_one` reads it after the dequeue.)
                let key = match self.qinfo.get(qid as usize) {
                    Some(info) => QueueKey { required: info.required().to_vec(), channel: ch, team: info.team },
                    None => QueueKey { required: Vec::new(), channel: ch, team: None },
                };
                let index = SkillKey::of(key.required.iter().map(|r| r.0)).map(|sk| (ch, sk));
                let bucket = match index {
                    Some(i) => self.by_skills.get_mut(&i),
                    None => Some(&mut self.wide_queues),
                };
                if let Some(bucket) = bucket {
                    bucket.remove(&key);
                    if bucket.is_empty() {
                        if let Some(i) = index {
                            self.by_skills.remove(&i);
                        }
                    }
                }
            }
            self.move_heads(ch, qid, before, after);
        }
        // Its overflow timers stay: `tick` skips cases no longer waiting, and judges a case
        // waiting again by its current enqueue time (removing them cost two searches of a set
        // twice as large as the backlog on every assignment: 1.3 of 3.3 µs). Stale ones are
        // swept when they outnumber the live ones, so memory stays bounded.
        self.stale_timers += 2;
        if self.stale_timers > 4 * self.waiting.len() + 4_096 {
            self.rebuild_timers();
        }
        Some(w)
    }

    /// The overflow timers rebuilt from the waiting cases: a widening for each case still
    /// restricted to a team, an escalation for each case not yet escalated (both possibly
    /// already due: the next `tick` takes them). One sequential pass over the waiting cases
    /// and a sort, instead of a lookup per timer entry (the old sweep: six random lookups
    /// per entry kept, about 0.3 µs per decision at 100,000 waiting cases).
    fn rebuild_timers(&mut self) {
        let c = &self.config;
        let mut timers: Vec<(Millis, CaseKey)> = Vec::with_capacity(2 * self.waiting.len());
        for (&id, w) in &self.waiting {
            let enqueued = w.case.enqueued_at;
            if self.qinfo.get(w.qid as usize).is_some_and(|q| q.team.is_some()) {
                timers.push((enqueued.saturating_add(c.widen_team_after_ms), id));
            }
            if !w.escalated {
                timers.push((enqueued.saturating_add(c.escalate_after_ms), id));
            }
        }
        timers.sort_unstable();
        self.timers = timers.into_iter().collect();
        self.stale_timers = 0;
    }

    /// A new case: queued, then assigned if an eligible agent has room. Returns every
    /// assignment made (an agent with room may take an older case first: the fairness
    /// bound).
    pub fn route(&mut self, case: Case, now: Millis) -> (Vec<Decision>, Option<Explanation>) {
        let id = case.id;
        if self.waiting.contains_key(&id) {
            return (Vec::new(), None);
        }
        self.enqueue(case, now);
        let mut decisions = Vec::new();
        while let Some(w) = self.waiting.get(&id) {
            let case = w.case.clone();
            let required = normalized(&case.required);
            let (eligible, mut why) = self.eligible_for(&case, &required, self.effective_team(&case, now), true);
            let mut top: Vec<(AgentRank, usize)> = Vec::with_capacity(4);
            for s in eligible.iter() {
                let k = self.agent_rank(s, &case, now);
                if top.len() < 3 || top.last().is_some_and(|t| k < t.0) {
                    top.push((k, s));
                    top.sort_by_key(|t| t.0);
                    top.truncate(3);
                }
            }
            let Some(&(_, slot)) = top.first() else {
                why.at = now;
                why.class = self.class_of(&case, now);
                why.score = self.config.score_at(&case, now);
                return (decisions, Some(why));
            };
            let before = decisions.len();
            let others: Vec<usize> = top.iter().skip(1).map(|t| t.1).collect();
            decisions.extend(self.take_one(slot, now, Some((id, &others))));
            if decisions.len() == before {
                // Cannot happen (the agent is eligible for this case); stop rather than spin.
                break;
            }
        }
        (decisions, None)
    }

    fn class_of(&self, c: &Case, now: Millis) -> Class {
        if now - c.enqueued_at > self.config.fairness_after_ms {
            Class::Starving
        } else if c.sla_due.is_some_and(|d| d - now < self.config.sla_risk_ms) {
            Class::SlaAtRisk
        } else {
            Class::Normal
        }
    }

    fn agent_qualifies(&self, slot: usize, key: &QueueKey) -> bool {
        let a = &self.slots[slot];
        if a.presence != Presence::Online || a.load[key.channel] >= a.capacity[key.channel] {
            return false;
        }
        if key.team.is_some() && a.team != key.team {
            return false;
        }
        key.required.iter().all(|&(s, l)| a.skills.iter().any(|k| k.0 == s && k.1 >= l))
    }

    /// The queues an agent might qualify for: those whose skills are a subset of the agent's
    /// (looked up per subset), or every queue when the agent has so many skills that
    /// enumerating subsets would cost more.
    fn queues_for(&self, slot: usize) -> Vec<(&QueueKey, u32)> {
        let a = &self.slots[slot];
        if a.presence != Presence::Online {
            return Vec::new();
        }
        let mut skills: Vec<u16> = a.skills.iter().map(|k| k.0).collect();
        skills.sort_unstable();
        skills.dedup();
        let subsets = 1usize.checked_shl(u32::try_from(skills.len()).unwrap_or(u32::MAX)).unwrap_or(usize::MAX);
        if subsets.saturating_mul(CHANNELS) > self.queue_count {
            return self
                .by_skills
                .values()
                .flat_map(|b| b.iter())
                .chain(self.wide_queues.iter())
                .map(|(k, &q)| (k, q))
                .collect();
        }
        let mut out: Vec<(&QueueKey, u32)> = self.wide_queues.iter().map(|(k, &q)| (k, q)).collect();
        for ch in (0..CHANNELS).filter(|&ch| a.load[ch] < a.capacity[ch]) {
            for mask in 0..subsets {
                if mask.count_ones() > 4 {
                    continue;
                }
                let picked = skills.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, s)| *s);
                if let Some(keys) = SkillKey::of(picked).and_then(|sk| self.by_skills.get(&(ch, sk))) {
                    out.extend(keys.iter().map(|(k, &q)| (k, q)));
                }
            }
        }
        out
    }

    /// Whether the agent (online, with room on the channel: checked by the caller) has what
    /// queue `qid` requires.
    fn qualifies(&self, a: &Agent, qid: u32) -> bool {
        let Some(info) = self.qinfo.get(qid as usize) else { return false };
        if info.team.is_some() && a.team != info.team {
            return false;
        }
        info.required().iter().all(|&(s, l)| a.skills.iter().any(|k| k.0 == s && k.1 >= l))
    }

    /// The agent's best waiting case, the runner-up, and how many queue heads were examined.
    /// Walks the global head index of each channel with room from the best head down and
    /// stops at the second queue the agent qualifies for (a few dozen heads when agents hold
    /// a few of many skills). An agent who qualifies for few queues would walk far: past
    /// `HEAD_SCAN_LIMIT` heads the per-skill-subset lookup answers instead. Both give the
    /// same answer: the best head of the queues the agent qualifies for, by class, then key.
    fn best_case_for(&self, slot: usize, now: Millis) -> Option<Pick> {
        type Candidate = ((Class, i128, Millis, CaseKey), CaseKey);
        let a = &self.slots[slot];
        if a.presence != Presence::Online {
            return None;
        }
        let x = self.config.fairness_after_ms;
        let risk = self.config.sla_risk_ms;
        let mut best: Option<Candidate> = None;
        let mut second: Option<Candidate> = None;
        let mut examined = 0;
        let offer = |c: Candidate, best: &mut Option<Candidate>, second: &mut Option<Candidate>| {
            if best.as_ref().is_none_or(|b| c.0.cmp(&b.0) == Ordering::Less) {
                *second = best.take();
                *best = Some(c);
            } else if second.as_ref().is_none_or(|b| c.0.cmp(&b.0) == Ordering::Less) {
                *second = Some(c);
            }
        };
        for ch in (0..CHANNELS).filter(|&ch| a.load[ch] < a.capacity[ch]) {
            // Up to two candidates from distinct queues, in order.
            let mut found: [Option<(Candidate, u32)>; 2] = [None, None];
            let mut n = 0;
            let mut budget = HEAD_SCAN_LIMIT;
            let take = |c: Candidate, qid: u32, found: &mut [Option<(Candidate, u32)>; 2], n: &mut usize| {
                if found[..*n].iter().any(|f| f.as_ref().is_some_and(|f| f.1 == qid)) {
                    return;
                }
                found[*n] = Some((c, qid));
                *n += 1;
            };
            for &(enq, id, qid) in &self.head_age[ch] {
                if n == 2 || now - enq <= x || budget == 0 {
                    break;
                }
                budget -= 1;
                if self.qualifies(a, qid) {
                    take(((Class::Starving, i128::from(enq), enq, id), id), qid, &mut found, &mut n);
                }
            }
            for &(due, enq, id, qid) in &self.head_due[ch] {
                if n == 2 || due - now >= risk || budget == 0 {
                    break;
                }
                budget -= 1;
                if self.qualifies(a, qid) {
                    take(((Class::SlaAtRisk, i128::from(due), enq, id), id), qid, &mut found, &mut n);
                }
            }
            for &(Reverse(k), enq, id, qid) in &self.head_score[ch] {
                if n == 2 || budget == 0 {
                    break;
                }
                budget -= 1;
                if self.qualifies(a, qid) {
                    take(((Class::Normal, -k, enq, id), id), qid, &mut found, &mut n);
                }
            }
            examined += HEAD_SCAN_LIMIT - budget;
            let exhausted = n < 2
                && budget == 0
                && self.head_age[ch].len() + self.head_due[ch].len() + self.head_score[ch].len() > HEAD_SCAN_LIMIT;
            if exhausted {
                #[cfg(test)]
                FALLBACKS.with(|f| f.set(f.get() + 1));
                return self.best_case_by_subsets(slot, now);
            }
            for (c, _) in found.into_iter().flatten() {
                offer(c, &mut best, &mut second);
            }
        }
        best.map(|b| (b.1, second.map(|s| (s.1, s.0 .0)), examined))
    }

    /// The same answer as `best_case_for`, by looking at every queue the agent's skills
    /// allow (each subset of its skills is a lookup).
    fn best_case_by_subsets(&self, slot: usize, now: Millis) -> Option<Pick> {
        type Candidate = ((Class, i128, Millis, CaseKey), CaseKey);
        let x = self.config.fairness_after_ms;
        let risk = self.config.sla_risk_ms;
        let mut best: Option<Candidate> = None;
        let mut second: Option<Candidate> = None;
        let mut considered = 0;
        for (key, qid) in self.queues_for(slot) {
            let Some(q) = self.queues.get(qid as usize) else { continue };
            if !self.agent_qualifies(slot, key) {
                continue;
            }
            considered += 1;
            let candidate = match q.by_age.first() {
                Some(&(enq, id)) if now - enq > x => Some(((Class::Starving, i128::from(enq), enq, id), id)),
                _ => None,
            }
            .or_else(|| match q.by_due.first() {
                Some(&(due, enq, id)) if due - now < risk => Some(((Class::SlaAtRisk, i128::from(due), enq, id), id)),
                _ => None,
            })
            .or_else(|| q.by_score.first().map(|&(Reverse(k), enq, id)| ((Class::Normal, -k, enq, id), id)));
            if let Some(c) = candidate {
                if best.as_ref().is_none_or(|b| c.0.cmp(&b.0) == Ordering::Less) {
                    second = best.take();
                    best = Some(c);
                } else if second.as_ref().is_none_or(|b| c.0.cmp(&b.0) == Ordering::Less) {
                    second = Some(c);
                }
            }
        }
        best.map(|b| (b.1, second.map(|s| (s.1, s.0 .0)), considered))
    }

    /// Assigns the agent's best waiting case, if any. `others`: when a new case chose this
    /// agent, that case and the runners-up among the agents (shown if it is the case taken).
    fn take_one(&mut self, slot: usize, now: Millis, others: Option<(CaseKey, &[usize])>) -> Option<Decision> {
        let (id, runner_up, considered) = self.best_case_for(slot, now)?;
        let w = self.dequeue(id)?;
        let class = self.class_of(&w.case, now);
        let (_, mut why) = match self.qinfo.get(w.qid as usize) {
            Some(info) => self.eligible_for(&w.case, info.required(), info.team, false),
            None => return None,
        };
        let agent = self.slots[slot].id;
        let others = others.filter(|(c, _)| *c == id).map_or(&[][..], |(_, o)| o);
        why.ranking = std::iter::once(slot)
            .chain(others.iter().copied())
            .map(|s| (self.slots[s].id, self.agent_key(s, &w.case, now)))
            .collect();
        why.queues_considered = considered;
        why.runner_up_case = runner_up;
        why.at = now;
        why.class = class;
        why.score = self.config.score_at(&w.case, now);
        if now - w.case.enqueued_at >= self.config.relax_optional_after_ms && !w.case.optional.is_empty() {
            why.overflow.push(Overflow::OptionalSkillsRelaxed);
        }
        if w.widened {
            why.overflow.push(Overflow::TeamWidened);
        }
        if w.escalated {
            why.overflow.push(Overflow::Escalated);
        }
        let ch = channel_slot(w.case.channel);
        let a = &mut self.slots[slot];
        a.load[ch] += 1;
        a.last_assigned_at = now;
        let free = a.load[ch] < a.capacity[ch];
        self.set_free(ch, slot, free);
        Some(Decision { case: id, agent, explanation: why })
    }

    fn fill_agent(&mut self, slot: usize, now: Millis) -> Vec<Decision> {
        let mut out = Vec::new();
        while let Some(d) = self.take_one(slot, now, None) {
            out.push(d);
        }
        out
    }

    /// Removes a waiting case (solved, withdrawn, assigned by hand).
    pub fn withdraw(&mut self, id: CaseKey) -> bool {
        self.dequeue(id).is_some()
    }

    /// Applies due overflow steps: team restrictions dropped (then routed again), escalations
    /// raised. Returns the assignments made and the cases escalated now.
    pub fn tick(&mut self, now: Millis) -> (Vec<Decision>, Vec<CaseKey>) {
        let mut decisions = Vec::new();
        let mut escalated = Vec::new();
        while let Some(&(due, id)) = self.timers.first() {
            if due > now {
                break;
            }
            self.timers.remove(&(due, id));
            let escalate_after = self.config.escalate_after_ms;
            let Some(w) = self.waiting.get_mut(&id) else { continue };
            if !w.escalated && now - w.case.enqueued_at >= escalate_after {
                w.escalated = true;
                escalated.push(id);
            }
            let team = self.qinfo.get(w.qid as usize).and_then(|q| q.team);
            let widen = team.is_some() && now - w.case.enqueued_at >= self.config.widen_team_after_ms;
            if widen {
                let Some(mut w) = self.dequeue(id) else { continue };
                w.widened = true;
                let escalated_before = w.escalated;
                let (d, _) = self.route(w.case, now);
                if let Some(again) = self.waiting.get_mut(&id) {
                    again.widened = true;
                    again.escalated = escalated_before;
                }
                decisions.extend(d);
            }
        }
        (decisions, escalated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: AgentKey, skills: &[(u16, u8)], capacity: u16, last: Millis) -> Agent {
        Agent {
            id,
            team: None,
            presence: Presence::Online,
            skills: skills.to_vec(),
            capacity: [capacity; CHANNELS],
            load: [0; CHANNELS],
            last_assigned_at: last,
        }
    }

    fn case(id: CaseKey, required: &[(u16, u8)], at: Millis) -> Case {
        Case {
            id,
            channel: Channel::Email,
            priority: Priority::Normal,
            tier: Tier::Standard,
            value: 0,
            required: required.to_vec(),
            optional: Vec::new(),
            team: None,
            enqueued_at: at,
            sla_due: None,
        }
    }

    #[test]
    fn required_skills_and_levels_decide_eligibility_with_a_reason_for_each_exclusion() {
        let mut r = Router::new(Config::default());
        r.upsert_agent(agent(1, &[(7, 2)], 1, 0), 0);
        r.upsert_agent(agent(2, &[(7, 4)], 1, 0), 0);
        r.upsert_agent(Agent { presence: Presence::Away, ..agent(3, &[(7, 5)], 1, 0) }, 0);
        let (d, why) = r.route(case(10, &[(7, 3)], 0), 0);
        assert!(why.is_none());
        assert_eq!((d.len(), d[0].agent), (1, 2));
        let e = &d[0].explanation;
        assert_eq!((e.agents_total, e.excluded_offline, e.excluded_skills, e.eligible), (3, 1, 1, 1));
        // Agent 2 is now full: the next case waits, and says why.
        let (d, why) = r.route(case(11, &[(7, 3)], 1), 1);
        assert!(d.is_empty());
        let why = why.unwrap();
        assert_eq!((why.excluded_capacity, why.eligible), (1, 0));
        assert!(r.is_waiting(11));
        // Agent 2 finishes: it takes the waiting case.
        let d = r.release(2, Channel::Email, 5);
        assert_eq!((d.len(), d[0].case), (1, 11));
    }

    #[test]
    fn strategies_choose_deterministically() {
        for (strategy, expected) in
            [(Strategy::LongestIdle, 2), (Strategy::LeastBusy, 3), (Strategy::BestSkillMatch, 1)]
        {
            let mut r = Router::new(Config { strategy, ..Config::default() });
            r.upsert_agent(Agent { load: [1; CHANNELS], ..agent(1, &[(1, 5)], 4, 50) }, 0);
            r.upsert_agent(Agent { load: [1; CHANNELS], ..agent(2, &[(1, 1)], 4, 10) }, 0);
            r.upsert_agent(agent(3, &[(1, 1)], 4, 40), 0);
            let (d, _) = r.route(case(9, &[(1, 1)], 100), 100);
            assert_eq!(d[0].agent, expected, "{strategy:?}");
        }
    }

    #[test]
    fn a_starving_case_goes_before_newer_valuable_ones() {
        let cfg = Config { fairness_after_ms: 60_000, ..Config::default() };
        let mut r = Router::new(cfg);
        r.route(case(1, &[], 0), 0);
        r.route(case(3, &[], 25_000), 25_000);
        let mut rich = case(2, &[], 50_000);
        rich.tier = Tier::Platinum;
        rich.priority = Priority::Urgent;
        rich.value = 1_000_000;
        r.route(rich, 50_000);
        // Before the bound, value wins; after it, the old case does.
        let d = r.upsert_agent(agent(5, &[], 1, 0), 59_000);
        assert_eq!(d[0].case, 2);
        let mut rich = case(4, &[], 80_000);
        rich.priority = Priority::Urgent;
        r.route(rich, 80_000);
        // At 90 s, cases 1 and 3 have waited past the bound: oldest first, both before the
        // urgent newcomer 4.
        let order: Vec<(CaseKey, Class)> = (0..3)
            .map(|i| {
                let d = r.release(5, Channel::Email, 90_000 + i);
                (d[0].case, d[0].explanation.class)
            })
            .collect();
        assert_eq!(order, [(1, Class::Starving), (3, Class::Starving), (4, Class::Normal)]);
    }

    #[test]
    fn team_restrictions_widen_and_cases_escalate_on_time() {
        let cfg = Config { widen_team_after_ms: 1_000, escalate_after_ms: 2_000, ..Config::default() };
        let mut r = Router::new(cfg);
        r.upsert_agent(Agent { team: Some(2), ..agent(1, &[], 1, 0) }, 0);
        let mut c = case(1, &[], 0);
        c.team = Some(9);
        let (d, why) = r.route(c, 0);
        assert!(d.is_empty());
        assert_eq!(why.unwrap().excluded_team, 1);
        let (d, esc) = r.tick(999);
        assert!(d.is_empty() && esc.is_empty());
        let (d, _) = r.tick(1_000);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].explanation.overflow, [Overflow::TeamWidened]);
        // Escalation of a case nobody can take.
        r.route(case(2, &[(3, 1)], 1_000), 1_000);
        let (_, esc) = r.tick(3_000);
        assert_eq!(esc, [2]);
    }

    impl Router {
        /// The head index equals one rebuilt from the queues, and every indexed queue id
        /// names a live queue with the requirement stored for it.
        fn check_heads(&self) {
            let mut age: [BTreeSet<AgeHead>; CHANNELS] = Default::default();
            let mut due: [BTreeSet<DueHead>; CHANNELS] = Default::default();
            let mut score: [BTreeSet<ScoreHead>; CHANNELS] = Default::default();
            let queues = self.by_skills.values().flat_map(|b| b.iter()).chain(self.wide_queues.iter());
            for (key, &id) in queues {
                let q = &self.queues[id as usize];
                let ch = key.channel;
                let (a, d, sc) = q.heads();
                if let Some((e, c)) = a {
                    age[ch].insert((e, c, id));
                }
                if let Some((x, e, c)) = d {
                    due[ch].insert((x, e, c, id));
                }
                if let Some((k, e, c)) = sc {
                    score[ch].insert((k, e, c, id));
                }
                let info = &self.qinfo[id as usize];
                assert_eq!((info.required(), info.team), (&key.required[..], key.team), "qinfo of queue {id}");
                assert!(!self.free_ids.contains(&id), "live queue id {id} is free");
                assert!(!q.by_age.is_empty(), "live queue {id} is empty");
            }
            assert_eq!(age, self.head_age);
            assert_eq!(due, self.head_due);
            assert_eq!(score, self.head_score);
        }
    }

    /// The head-index walk and the per-skill-subset lookup pick the same best case and
    /// runner-up for every agent, in random states with starving, SLA-at-risk and scored
    /// cases, teams and levels, including states large enough to need the fallback.
    #[test]
    fn the_head_walk_and_the_subset_lookup_agree() {
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for round in 0..12 {
            let mut r = Router::new(Config { fairness_after_ms: 50_000, sla_risk_ms: 5_000, ..Config::default() });
            let skills_n = if round % 3 == 0 { 12 } else { 5 };
            let cases = if round % 4 == 0 { 3_000 } else { 300 };
            for id in 0..40u32 {
                // Rounds with many skills give agents one weak skill: they qualify for few
                // queues, which is what the fallback is for.
                let (held, top) = if skills_n > 5 { (1, 1) } else { (3, 5) };
                let mut sk: Vec<(u16, u8)> = Vec::new();
                while sk.len() < held {
                    let s = next(skills_n) as u16;
                    if !sk.iter().any(|k| k.0 == s) {
                        sk.push((s, 1 + next(top) as u8));
                    }
                }
                let mut a = agent(id, &sk, 2, next(1_000) as Millis);
                a.team = (next(3) == 0).then_some(next(2) as u32);
                a.load = [2; CHANNELS];
                r.upsert_agent(a, 0);
            }
            for id in 0..cases {
                let n = 1 + next(2) as usize;
                let req: Vec<(u16, u8)> = (0..n).map(|_| (next(skills_n) as u16, 1 + next(3) as u8)).collect();
                let mut c = case(id, &req, id as Millis * 30);
                c.channel = [Channel::Email, Channel::Web, Channel::Chat, Channel::Api][next(4) as usize];
                c.priority = [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent][next(4) as usize];
                c.sla_due = (next(5) == 0).then(|| id as Millis * 30 + next(200_000) as Millis);
                c.team = (next(6) == 0).then_some(next(2) as u32);
                c.value = next(500_000) as i64;
                let (d, _) = r.route(c, id as Millis * 30);
                assert!(d.is_empty(), "every agent is full");
            }
            let now = cases as Millis * 30;
            // Cases leave queues (withdrawn, assigned) before the comparison, so that heads
            // move and queue ids are freed and reused.
            for _ in 0..cases / 3 {
                r.withdraw(next(cases));
            }
            for i in 0..10u32 {
                let ch = [Channel::Email, Channel::Web, Channel::Chat, Channel::Api][(i % 4) as usize];
                r.release(i, ch, now);
            }
            for id in cases..cases + 50 {
                let c = case(id, &[(next(skills_n) as u16, 1)], now);
                r.route(c, now);
            }
            r.check_heads();
            let before = FALLBACKS.with(std::cell::Cell::get);
            for slot in 0..r.slots.len() {
                for ch in 0..CHANNELS {
                    let mut probe = r.clone();
                    probe.slots[slot].load = [2; CHANNELS];
                    probe.slots[slot].load[ch] = 1;
                    let walk = probe.best_case_for(slot, now).map(|p| (p.0, p.1));
                    let lookup = probe.best_case_by_subsets(slot, now).map(|p| (p.0, p.1));
                    assert_eq!(walk, lookup, "round {round}, slot {slot}, channel {ch}");
                }
            }
            let fell_back = FALLBACKS.with(std::cell::Cell::get) - before;
            if skills_n > 5 && cases > 1_000 {
                assert!(fell_back > 0, "round {round}: the fallback was not exercised");
            } else {
                assert_eq!(fell_back, 0, "round {round}: the walk itself must answer");
            }
        }
    }

    /// The explanation's counts (from the cached skilled sets and the online counter) equal a
    /// count over every agent, while presence, skills, teams and loads keep changing.
    #[test]
    fn explanation_counts_match_a_full_count_as_agents_change() {
        // A few agents, half with room (the counts scan words); many agents, almost all full
        // (the counts walk the short list of agents with room).
        for (agents, busy) in [(150u32, false), (3_000, true)] {
            let mut seed = 11u64;
            let mut next = |n: u64| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 33) % n
            };
            let mut r = Router::new(Config::default());
            let random_agent = |id: u32, next: &mut dyn FnMut(u64) -> u64| {
                let skills: Vec<(u16, u8)> = (0..1 + next(3)).map(|_| (next(6) as u16, 1 + next(5) as u8)).collect();
                let mut a = agent(id, &skills, 1 + next(2) as u16, 0);
                a.presence = [Presence::Online, Presence::Away, Presence::Offline][next(3) as usize];
                a.team = (next(2) == 0).then_some(next(2) as u32);
                a.load = if busy && next(100) != 0 { [2; CHANNELS] } else { [next(3) as u16; CHANNELS] };
                a
            };
            for id in 0..agents {
                let a = random_agent(id, &mut next);
                r.set_agent(a);
            }
            for step in 0..400 {
                match next(4) {
                    0 => {
                        let a = random_agent(next(u64::from(agents) + 50) as u32, &mut next);
                        r.set_agent(a);
                    }
                    1 => {
                        r.release(next(u64::from(agents)) as u32, Channel::Email, 0);
                    }
                    2 => {
                        // Only the skills change (same presence, team, load).
                        let mut a = r.agent(next(u64::from(agents)) as u32).cloned().expect("agent");
                        a.skills = vec![(next(6) as u16, 1 + next(5) as u8)];
                        r.set_agent(a);
                    }
                    _ => {}
                }
                let req: Vec<(u16, u8)> = (0..next(3)).map(|_| (next(7) as u16, 1 + next(5) as u8)).collect();
                let mut c = case(10_000 + step, &req, 0);
                c.channel = [Channel::Email, Channel::Web, Channel::Chat, Channel::Api][next(4) as usize];
                let team = (next(2) == 0).then_some(next(3) as u32);
                let need = normalized(&c.required);
                let (set, why) = r.eligible_for(&c, &need, team, true);
                let ch = channel_slot(c.channel);
                let (mut online, mut skilled, mut room, mut eligible) = (0, 0, 0, 0);
                for (slot, a) in r.slots.iter().enumerate() {
                    if a.presence != Presence::Online {
                        continue;
                    }
                    online += 1;
                    if !need.iter().all(|&(s, l)| a.skills.iter().any(|k| k.0 == s && k.1 >= l)) {
                        continue;
                    }
                    skilled += 1;
                    if a.load[ch] >= a.capacity[ch] {
                        continue;
                    }
                    room += 1;
                    if team.is_some() && a.team != team {
                        continue;
                    }
                    eligible += 1;
                    assert!(set.get(slot), "step {step}: slot {slot} is eligible");
                }
                let got = (
                    why.agents_total - why.excluded_offline,
                    why.eligible + why.excluded_team + why.excluded_capacity,
                    why.eligible + why.excluded_team,
                    why.eligible,
                );
                assert_eq!(got, (online, skilled, room, eligible), "step {step}");
                assert_eq!(set.count(), eligible, "step {step}");
            }
        }
    }

    /// Timers of cases that stopped waiting are left behind and swept in bulk: they never
    /// fire for a case no longer waiting, a case waiting again is judged by its new enqueue
    /// time, and the set stays bounded.
    #[test]
    fn stale_overflow_timers_never_fire_and_are_swept() {
        let config = Config { escalate_after_ms: 1_000, widen_team_after_ms: 500, ..Config::default() };
        let mut r = Router::new(config);
        // Every case waits and is withdrawn again at once: 20,000 stale timer pairs.
        for id in 0..20_000u64 {
            r.route(case(id, &[(1, 1)], 0), 0);
            assert!(r.withdraw(id));
        }
        assert!(r.timers.len() <= 2 * 4_096 + 2, "swept: {} timers left", r.timers.len());
        // One case waits since 0; one was withdrawn and waits again since 900.
        r.route(case(1, &[(1, 1)], 0), 0);
        r.route(case(2, &[(1, 1)], 0), 0);
        r.withdraw(2);
        r.route(case(2, &[(1, 1)], 900), 900);
        let (_, escalated) = r.tick(1_000);
        assert_eq!(escalated, vec![1], "case 2 has waited 100 ms, not 1 s");
        let (_, escalated) = r.tick(1_900);
        assert_eq!(escalated, vec![2]);
        let (_, escalated) = r.tick(10_000);
        assert!(escalated.is_empty(), "each wait escalates once");

        // Timers of cases still waiting survive a sweep: a team case not yet widened nor
        // escalated, swept while 20,000 others come and go, is widened (and taken by an agent
        // of another team) and escalated on time.
        let config = Config { escalate_after_ms: 1_000, widen_team_after_ms: 500, ..Config::default() };
        let mut r = Router::new(config);
        r.upsert_agent(Agent { team: Some(9), ..agent(1, &[(1, 5)], 1, 0) }, 0);
        r.route(Case { team: Some(7), ..case(1, &[(1, 1)], 0) }, 0);
        r.route(case(2, &[(2, 1)], 0), 0);
        for id in 10..20_010u64 {
            r.route(case(id, &[(3, 1)], 10), 10);
            assert!(r.withdraw(id));
        }
        assert!(r.timers.len() <= 2 * 4_096 + 4, "swept: {} timers left", r.timers.len());
        for live in [(500, 1), (1_000, 1), (1_000, 2)] {
            assert!(r.timers.contains(&live), "timer {live:?} kept");
        }
        assert!(!r.timers.contains(&(500, 2)), "case 2 has no team to widen");
        let (decisions, escalated) = r.tick(600);
        assert!(escalated.is_empty());
        assert_eq!(decisions.iter().map(|d| (d.case, d.agent)).collect::<Vec<_>>(), vec![(1, 1)]);
        let (_, escalated) = r.tick(1_000);
        assert_eq!(escalated, vec![2], "case 1 was assigned; case 2 escalates");
    }
}
