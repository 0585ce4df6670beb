// Caseflow agent inbox and supervisor console. Plain JavaScript, no build step, no
// third-party code. It talks to the same REST API integrators use (/api/v1), authenticated by
// the browser session cookie (HttpOnly) with the CSRF token echoed in X-CSRF-Token.
// Every value from the server is put into the page with textContent or as an attribute
// value, never parsed as HTML; sanitized email HTML is shown only in a sandboxed frame.
'use strict';

(function () {
  const API = '/api/v1';
  const state = {
    me: null,
    agents: new Map(),
    teams: new Map(),
    skills: [],
    csrf: readCookie('cf_csrf'),
    filters: { status: '', priority: '', channel: '', tier: '', skill: '', q: '' },
    caseStream: null,
    alertStream: null,
    current: null, // what the main area shows: {kind, id}
    refreshTimer: null,
    unseenAlerts: 0,
    skew: 0, // the server's clock minus this browser's (from the inbox's as_of)
    macros: [],
    viewing: null, // {caseId, timer, composing}: heartbeats for the collision warning
    chat: null, // the agents' chat socket, opened when a chat case is shown
    chatTyping: 0, // when this agent last said it was typing (ms)
  };

  // ---------- small helpers ----------

  function readCookie(name) {
    const m = document.cookie.split(';').map((c) => c.trim()).find((c) => c.startsWith(name + '='));
    return m ? decodeURIComponent(m.slice(name.length + 1)) : '';
  }

  // el('tag', {class, text, attrs..., onclick}, children...)
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') node.textContent = String(v);
      else if (k === 'class') node.className = v;
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else if (k === 'value') node.value = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function label(s) {
    return String(s || '').replace(/_/g, ' ');
  }

  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  }

  // Whole minutes, rounded towards the deadline: "in 59m" until a full hour is left.
  function fmtSpan(ms) {
    const m = ms >= 0 ? Math.floor(ms / 60000) : Math.ceil(-ms / 60000);
    if (m < 60) return m + 'm';
    const h = Math.floor(m / 60);
    if (h < 48) return h + 'h ' + (m % 60) + 'm';
    return Math.floor(h / 24) + 'd ' + (h % 24) + 'h';
  }

  // "in 2h 10m" / "overdue 5m", with a class for colour.
  function due(iso, breached) {
    if (!iso && !breached) return el('span', { class: 'cf-due cf-due-none', text: '—' });
    if (!iso) return el('span', { class: 'cf-due cf-due-breached', text: 'breached' });
    const ms = new Date(iso).getTime() - (Date.now() + state.skew);
    const cls = breached || ms < 0 ? 'cf-due-breached' : ms < 3600000 ? 'cf-due-soon' : 'cf-due-ok';
    const text = ms < 0 ? 'overdue ' + fmtSpan(ms) : breached ? 'breached, due in ' + fmtSpan(ms) : 'in ' + fmtSpan(ms);
    return el('time', { class: 'cf-due ' + cls, datetime: iso, title: new Date(iso).toString(), text });
  }

  // Deadlines are shown relative to the server's clock (the one that computed them).
  function noteServerTime(iso) {
    const t = Date.parse(iso || '');
    if (!Number.isNaN(t)) state.skew = t - Date.now();
  }

  function skillName(id) {
    const k = state.skills.find((s) => s.id === id);
    return k ? k.name : id;
  }

  function agentName(id) {
    if (!id) return 'Unassigned';
    const a = state.agents.get(id);
    return a ? a.name : id.slice(0, 8);
  }

  function toast(message, kind) {
    const t = document.getElementById('cf-toast');
    clear(t).append(el('p', { class: 'cf-toast cf-toast-' + (kind || 'info'), text: message }));
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => clear(t), 6000);
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body, extraHeaders) {
    const headers = Object.assign({ Accept: 'application/json' }, extraHeaders || {});
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET') headers['X-CSRF-Token'] = state.csrf;
    const res = await fetch(API + path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 204) return null;
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      if (res.status === 401 && path !== '/auth/session') {
        showLogin(path === '/me' ? '' : 'Your session ended. Please log in again.');
      }
      throw new ApiError(res.status, data && data.code, (data && data.message) || 'request failed (' + res.status + ')');
    }
    return data;
  }

  // Every item of a paged list (oldest first), following next_cursor.
  async function allPages(path) {
    let items = [];
    let cursor = null;
    for (let i = 0; i < 50; i += 1) {
      const page = await api('GET', path + (cursor ? '?cursor=' + encodeURIComponent(cursor) : ''));
      items = items.concat(page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    return items;
  }

  function qs(params) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) p.set(k, v);
    const s = p.toString();
    return s ? '?' + s : '';
  }

  function option(value, text, selected) {
    return el('option', { value, selected: selected ? true : null, text });
  }

  function select(id, labelText, options, current, onchange) {
    return el('label', { class: 'cf-field-inline', for: id }, labelText,
      el('select', { id, onchange }, options.map(([v, t]) => option(v, t, v === current))));
  }

  const STATUSES = ['new', 'open', 'pending', 'on_hold', 'solved', 'closed'];
  const PRIORITIES = ['low', 'normal', 'high', 'urgent'];
  const CHANNELS = ['email', 'web', 'chat', 'api'];
  const TIERS = ['standard', 'silver', 'gold', 'platinum'];
  const VIEWS = [
    ['mine', 'My cases'],
    ['team', "My team's unassigned"],
    ['open', 'All open'],
    ['pending', 'Pending'],
    ['breaching', 'Breaching soon'],
  ];

  // ---------- login ----------

  function showLogin(notice) {
    stopStreams();
    state.superTeam = undefined;
    stopViewing(false);
    if (state.chat) state.chat.close();
    state.chat = null;
    state.me = null;
    state.unseenAlerts = 0;
    document.title = 'Caseflow';
    document.getElementById('cf-alert-banner').hidden = true;
    document.getElementById('cf-alert-badge').hidden = true;
    document.getElementById('cf-nav').hidden = true;
    const main = clear(document.getElementById('cf-main'));
    const err = el('p', { class: 'cf-error', role: 'alert', id: 'cf-login-error' });
    const form = el('form', { class: 'cf-login', id: 'cf-login', novalidate: true },
      el('h1', { text: 'Log in to Caseflow' }),
      notice ? el('p', { class: 'cf-notice', text: notice }) : null,
      err,
      el('div', { class: 'cf-field' }, el('label', { for: 'cf-email', text: 'Email' }),
        el('input', { id: 'cf-email', type: 'email', name: 'email', autocomplete: 'username', required: true })),
      el('div', { class: 'cf-field' }, el('label', { for: 'cf-password', text: 'Password' }),
        el('input', { id: 'cf-password', type: 'password', name: 'password', autocomplete: 'current-password', required: true })),
      el('button', { type: 'submit', id: 'cf-login-submit', text: 'Log in' }));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      err.textContent = '';
      try {
        const s = await api('POST', '/auth/session', {
          email: form.querySelector('#cf-email').value,
          password: form.querySelector('#cf-password').value,
        });
        state.csrf = s.csrf_token;
        await start(s.agent);
      } catch (ex) {
        err.textContent = ex.message;
      }
    });
    main.append(form);
    form.querySelector('#cf-email').focus();
  }

  async function logout() {
    await stopViewing();
    try {
      await api('DELETE', '/auth/session');
    } catch (_) {
      // The cookies are cleared or already gone.
    }
    state.csrf = '';
    location.hash = '';
    showLogin('You are logged out.');
  }

  // ---------- start-up ----------

  async function loadDirectory() {
    const [agents, teams, skills, macros] = await Promise.all([
      api('GET', '/agents'),
      api('GET', '/teams'),
      api('GET', '/skills'),
      api('GET', '/macros'),
    ]);
    state.macros = macros.items || [];
    state.agents = new Map(agents.items.map((a) => [a.id, a]));
    state.teams = new Map((teams.items || []).map((t) => [t.id, t]));
    state.skills = skills.items || [];
  }

  async function start(me) {
    state.me = me;
    state.csrf = state.csrf || readCookie('cf_csrf');
    await loadDirectory();
    const nav = document.getElementById('cf-nav');
    nav.hidden = false;
    document.getElementById('cf-me').textContent = me.name + ' (' + me.role + ')';
    document.getElementById('cf-nav-supervisor').hidden = !(me.role === 'supervisor' || me.role === 'admin');
    const presence = document.getElementById('cf-presence');
    presence.value = me.presence;
    startStreams();
    if (!location.hash || location.hash === '#' || location.hash === '#/login') location.hash = '#/inbox/mine';
    else route();
  }

  async function setPresence(e) {
    const value = e.target.value;
    try {
      const a = await api('PUT', '/agents/' + state.me.id + '/presence', { presence: value });
      state.me = a;
      toast('You are ' + value + '.');
    } catch (ex) {
      toast(ex.message, 'error');
      e.target.value = state.me.presence;
    }
  }

  // ---------- live streams ----------

  function startStreams() {
    stopStreams();
    state.caseStream = new EventSource(API + '/cases/stream');
    state.caseStream.addEventListener('case', (ev) => {
      let change = null;
      try {
        change = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      onCaseChange(change);
    });
    state.caseStream.addEventListener('error', checkSession);
    state.alertStream = new EventSource(API + '/alerts/stream');
    state.alertStream.addEventListener('error', checkSession);
    state.alertStream.addEventListener('alert', (ev) => {
      try {
        onAlert(JSON.parse(ev.data));
      } catch (_) {
        // A malformed event is skipped.
      }
    });
  }

  // A stream that the server closed for good (an ended session answers 401): find out why.
  async function checkSession(ev) {
    if (!ev.target || ev.target.readyState !== EventSource.CLOSED || !state.me) return;
    try {
      await api('GET', '/me');
      startStreams(); // still logged in: the server restarted; listen again
    } catch (ex) {
      if (ex.status === 401) showLogin('Your session ended. Please log in again.');
    }
  }

  function stopStreams() {
    if (state.caseStream) state.caseStream.close();
    if (state.alertStream) state.alertStream.close();
    state.caseStream = state.alertStream = null;
  }

  // Coalesces bursts of changes into one refresh.
  function onCaseChange(change) {
    const cur = state.current;
    if (!cur) return;
    if (cur.kind === 'case' && cur.id !== change.case_id) return;
    // At most one refresh per 300 ms, however many changes arrive: a pending one covers them.
    if (state.refreshTimer) return;
    state.refreshTimer = setTimeout(() => {
      state.refreshTimer = null;
      if (cur !== state.current) return;
      if (cur.kind === 'inbox') loadInbox(cur.view, false, true);
      else if (cur.kind === 'case') loadCase(cur.id, true);
      else if (cur.kind === 'supervisor') refreshBreaching();
    }, 300);
  }

  // What an alert is, in words: SLA milestones by their name; a case opened on a topic that
  // alerts supervisors (a complaint) is feedback.
  function alertLabel(kind) {
    return kind === 'topic' ? 'feedback' : label(kind);
  }

  function onAlert(alert) {
    state.unseenAlerts += 1;
    document.title = '(' + state.unseenAlerts + ') Caseflow';
    const badge = document.getElementById('cf-alert-badge');
    badge.textContent = String(state.unseenAlerts);
    badge.hidden = false;
    const banner = document.getElementById('cf-alert-banner');
    clear(banner).append(
      el('strong', { text: alertLabel(alert.kind).toUpperCase() + ': ' }),
      alert.message + ' ',
      el('a', { href: '#/case/' + alert.case_id, text: 'Open case' }));
    banner.hidden = false;
    banner.classList.remove('cf-flash');
    void banner.offsetWidth; // restart the animation
    banner.classList.add('cf-flash');
    beep(alert.kind === 'breach' ? 880 : 660);
    if (state.current && state.current.kind === 'supervisor') {
      prependAlert(alert, true);
      refreshBreaching(true);
    }
  }

  let audio = null;
  function beep(freq) {
    try {
      audio = audio || new AudioContext();
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.frequency.value = freq;
      g.gain.value = 0.05;
      o.connect(g).connect(audio.destination);
      o.start();
      o.stop(audio.currentTime + 0.15);
    } catch (_) {
      // No audio (no user gesture yet, or no device): the visual cue stays.
    }
  }

  // ---------- router ----------

  function route() {
    if (!state.me) return;
    const hash = location.hash.replace(/^#\/?/, '');
    const [section, rawArg] = hash.split('/');
    let arg = rawArg;
    try {
      arg = rawArg === undefined ? undefined : decodeURIComponent(rawArg);
    } catch (_) {
      arg = undefined;
    }
    document.querySelectorAll('#cf-nav a[data-section]').forEach((a) => {
      a.setAttribute('aria-current', a.dataset.section === section ? 'page' : 'false');
    });
    if (!(section === 'case' && arg && state.viewing && state.viewing.caseId === arg)) stopViewing();
    if (state.chatTypingCase && state.chatTypingCase !== arg) chatTyping(state.chatTypingCase, false);
    document.getElementById('cf-nav-admin').hidden = state.me.role !== 'admin';
    if (section === 'case' && arg) return loadCase(arg, false);
    if (section === 'admin') return loadAdmin(arg || 'macros');
    if (section === 'supervisor') return loadSupervisor(false);
    const view = VIEWS.some(([v]) => v === arg) ? arg : 'mine';
    return loadInbox(view, true);
  }

  // ---------- inbox ----------

  async function loadInbox(view, focus, live) {
    const same = live && state.current && state.current.kind === 'inbox' && state.current.view === view;
    if (!same) state.current = { kind: 'inbox', view };
    const current = state.current;
    const params = Object.assign({ view }, state.filters);
    let page, offers;
    try {
      [page, offers] = await Promise.all([api('GET', '/inbox' + qs(params)), api('GET', '/cases?offered_to=me')]);
    } catch (ex) {
      if (ex.status !== 401) toast(ex.message, 'error');
      return;
    }
    if (current !== state.current) return;
    noteServerTime(page.as_of);
    const shownOffers = document.getElementById('cf-offers');
    if (shownOffers) shownOffers.replaceWith(offersPanel(offers.items));
    const rows = document.getElementById('cf-case-rows');
    if (same && rows) {
      // A live refresh: new rows and counts; the filters, focus and what is typed stay.
      clear(rows);
      appendRows(rows, page.items);
      for (const [v] of VIEWS) {
        const n = page.counts && page.counts[v];
        const span = document.getElementById('cf-count-' + v);
        if (span) span.textContent = n === undefined || n === null ? '' : String(n);
      }
      const more = document.getElementById('cf-more');
      if (more) {
        more.hidden = !page.next_cursor;
        more.dataset.cursor = page.next_cursor || '';
      }
      const empty = document.getElementById('cf-empty');
      if (empty) empty.hidden = page.items.length !== 0;
      return;
    }
    renderInbox(view, page, focus);
    document.getElementById('cf-offers').replaceWith(offersPanel(offers.items));
  }

  // Offer mode: cases routing offers this agent, to accept or decline before they expire.
  function offersPanel(cases) {
    const box = el('section', { id: 'cf-offers', class: 'cf-offers', 'aria-label': 'Offered to you', hidden: cases.length === 0 });
    if (!cases.length) return box;
    box.append(el('h2', { text: 'Offered to you' }), el('ul', {}, cases.map((c) => {
      const answer = async (what) => {
        try {
          await api('POST', '/cases/' + encodeURIComponent(c.id) + '/offer/' + what);
          if (what === 'accept') {
            toast('Case #' + c.number + ' is yours.');
            location.hash = '#/case/' + c.id;
          } else {
            const me = await api('GET', '/me');
            state.me = me;
            document.getElementById('cf-presence').value = me.presence;
            toast('Declined; you are now ' + me.presence + '.');
            loadInbox(state.current.view, false, true);
          }
        } catch (ex) {
          toast(ex.message, 'error');
          loadInbox(state.current.view, false, true);
        }
      };
      return el('li', { 'data-offer': c.id },
        el('strong', { text: '#' + c.number + ' ' }), c.subject, ' ',
        c.offer_expires_at ? el('span', { class: 'cf-muted' }, '(until ', fmtTime(c.offer_expires_at), ') ') : null,
        el('button', { type: 'button', class: 'cf-accept', text: 'Accept', onclick: () => answer('accept') }), ' ',
        el('button', { type: 'button', class: 'cf-secondary cf-decline', text: 'Decline', onclick: () => answer('decline') }));
    })));
    return box;
  }

  function renderInbox(view, page, focus) {
    const main = clear(document.getElementById('cf-main'));
    const counts = page.counts || {};
    const views = el('nav', { class: 'cf-views', 'aria-label': 'Views' },
      el('ul', {}, VIEWS.map(([v, t]) => el('li', {},
        el('a', { href: '#/inbox/' + v, 'aria-current': v === view ? 'page' : 'false', id: 'cf-view-' + v },
          el('span', { text: t }),
          el('span', { class: 'cf-count', id: 'cf-count-' + v, text: counts[v] === undefined || counts[v] === null ? '' : counts[v] }))))));
    const f = state.filters;
    const skillOptions = [['', 'Any skill']].concat(state.skills.map((s) => [s.id, s.name]));
    const search = el('input', { id: 'cf-q', type: 'search', value: f.q, placeholder: 'Subject or #number', 'aria-label': 'Search' });
    const filters = el('form', { class: 'cf-filters', role: 'search', id: 'cf-filters' },
      select('cf-f-status', 'Status', [['', 'Any']].concat(STATUSES.map((s) => [s, label(s)])), f.status),
      select('cf-f-priority', 'Priority', [['', 'Any']].concat(PRIORITIES.map((s) => [s, s])), f.priority),
      select('cf-f-channel', 'Channel', [['', 'Any']].concat(CHANNELS.map((s) => [s, s])), f.channel),
      select('cf-f-tier', 'Tier', [['', 'Any']].concat(TIERS.map((s) => [s, s])), f.tier),
      select('cf-f-skill', 'Skill', skillOptions, f.skill),
      search,
      el('button', { type: 'submit', text: 'Filter' }),
      el('button', { type: 'button', class: 'cf-secondary', text: 'Clear', onclick: () => {
        state.filters = { status: '', priority: '', channel: '', tier: '', skill: '', q: '' };
        loadInbox(view, false);
      } }));
    filters.addEventListener('submit', (e) => {
      e.preventDefault();
      state.filters = {
        status: filters.querySelector('#cf-f-status').value,
        priority: filters.querySelector('#cf-f-priority').value,
        channel: filters.querySelector('#cf-f-channel').value,
        tier: filters.querySelector('#cf-f-tier').value,
        skill: filters.querySelector('#cf-f-skill').value,
        q: search.value.trim(),
      };
      loadInbox(view, false);
    });
    const tbody = el('tbody', { id: 'cf-case-rows' });
    appendRows(tbody, page.items);
    const title = VIEWS.find(([v]) => v === view)[1];
    const table = el('table', { class: 'cf-cases', id: 'cf-cases' },
      el('caption', { class: 'cf-visually-hidden', text: title + ', sorted by SLA due time' }),
      el('thead', {}, el('tr', {}, ['#', 'Subject', 'Customer', 'Status', 'Priority', 'Channel', 'Assignee', 'SLA due']
        .map((h) => el('th', { scope: 'col', text: h })))),
      tbody);
    const more = el('button', { type: 'button', class: 'cf-secondary', id: 'cf-more', text: 'Load more', hidden: !page.next_cursor });
    more.dataset.cursor = page.next_cursor || '';
    more.addEventListener('click', async () => {
      try {
        const p = await api('GET', '/inbox' + qs(Object.assign({ view, cursor: more.dataset.cursor }, state.filters)));
        appendRows(tbody, p.items);
        more.dataset.cursor = p.next_cursor || '';
        more.hidden = !p.next_cursor;
      } catch (ex) {
        toast(ex.message, 'error');
      }
    });
    const empty = el('p', { class: 'cf-empty', id: 'cf-empty', text: 'No cases in this view.', hidden: page.items.length !== 0 });
    main.append(el('div', { class: 'cf-inbox' }, views,
      el('section', { class: 'cf-inbox-list', 'aria-labelledby': 'cf-inbox-title' },
        el('h1', { id: 'cf-inbox-title', text: title }), el('section', { id: 'cf-offers', hidden: true }), filters, table, empty, more)));
    if (focus) document.getElementById('cf-inbox-title').focus();
    // For the benchmark (bench/inbox_render.py): when the first inbox of this page load was on screen.
    if (performance.getEntriesByName('cf-inbox-rendered').length === 0) performance.mark('cf-inbox-rendered');
  }

  function appendRows(tbody, items) {
    for (const it of items) {
      const c = it.case;
      const open = () => { location.hash = '#/case/' + c.id; };
      tbody.append(el('tr', { 'data-case': c.id, class: it.sla_breached ? 'cf-row-breached' : null },
        el('td', { text: c.number }),
        el('td', {}, el('a', { href: '#/case/' + c.id, class: 'cf-subject', text: c.subject })),
        el('td', {}, it.customer_name || el('span', { class: 'cf-muted', text: '(no name)' }), ' ', el('span', { class: 'cf-tier cf-tier-' + it.customer_tier, text: it.customer_tier })),
        el('td', {}, el('span', { class: 'cf-status cf-status-' + c.status, text: label(c.status) })),
        el('td', { class: 'cf-priority-' + c.priority, text: c.priority }),
        el('td', { text: c.channel }),
        el('td', { text: agentName(c.assignee_id) }),
        el('td', {}, due(it.sla_due_at, it.sla_breached))));
      tbody.lastChild.addEventListener('dblclick', open);
    }
  }

  // ---------- case view ----------

  async function loadCase(id, refresh) {
    state.current = state.current && state.current.kind === 'case' && state.current.id === id && refresh
      ? state.current : { kind: 'case', id };
    const current = state.current;
    let c, messages, events, sla, routing;
    try {
      [c, messages, events, sla, routing] = await Promise.all([
        api('GET', '/cases/' + encodeURIComponent(id)),
        allPages('/cases/' + encodeURIComponent(id) + '/messages'),
        allPages('/cases/' + encodeURIComponent(id) + '/events'),
        api('GET', '/cases/' + encodeURIComponent(id) + '/sla').catch(() => null),
        api('GET', '/cases/' + encodeURIComponent(id) + '/routing').catch(() => null),
      ]);
    } catch (ex) {
      if (ex.status !== 401) toast(ex.message, 'error');
      return;
    }
    if (current !== state.current) return;
    let customer = null;
    try {
      customer = await api('GET', '/customers/' + encodeURIComponent(c.customer.id));
    } catch (_) {
      customer = null;
    }
    if (current !== state.current) return;
    // Keep what the agent is typing across live refreshes.
    const draft = refresh ? document.getElementById('cf-compose-body') : null;
    const kept = draft ? { body: draft.value, kind: (document.querySelector('input[name=cf-kind]:checked') || {}).value } : null;
    renderCase(c, messages, events, sla, routing, customer, kept, !refresh);
  }

  function renderCase(c, messages, events, sla, routing, customer, kept, focus) {
    const main = document.getElementById('cf-main');
    state.customerName = c.customer.name;
    const patch = async (body) => {
      try {
        await api('PATCH', '/cases/' + c.id, body, { 'If-Match': '"' + c.version + '"' });
        toast('Saved.');
        loadCase(c.id, true);
      } catch (ex) {
        toast(ex.code === 'version_conflict' ? 'Someone else changed this case; reloaded.' : ex.message, 'error');
        loadCase(c.id, true);
      }
    };
    const agentOptions = [['', 'Unassigned']].concat([...state.agents.values()].filter((a) => a.active).map((a) => [a.id, a.name]));
    const controls = el('div', { class: 'cf-case-controls' },
      select('cf-status', 'Status', STATUSES.map((s) => [s, label(s)]), c.status, (e) => patch({ status: e.target.value })),
      select('cf-priority', 'Priority', PRIORITIES.map((s) => [s, s]), c.priority, (e) => patch({ priority: e.target.value })),
      select('cf-assignee', 'Assignee', agentOptions, c.assignee_id || '', (e) => patch({ assignee_id: e.target.value || null })));

    const timeline = el('ol', { class: 'cf-timeline', id: 'cf-timeline', 'aria-label': 'Timeline' });
    const items = messages.map((m) => ({ at: m.created_at, m })).concat(
      events.filter((e) => e.kind !== 'message_added' && e.kind !== 'note_added').map((e) => ({ at: e.created_at, e })));
    // By time (parsed: the server writes 0 to 9 fraction digits); ties keep their order.
    items.forEach((it, i) => { it.t = Date.parse(it.at); it.i = i; });
    items.sort((a, b) => a.t - b.t || a.i - b.i);
    for (const it of items) timeline.append(it.m ? messageItem(it.m) : eventItem(it.e));

    const body = el('textarea', { id: 'cf-compose-body', rows: 5, required: true, 'aria-label': 'Message' });
    const kind = (k, t) => el('label', { class: 'cf-radio' },
      el('input', { type: 'radio', name: 'cf-kind', value: k, id: 'cf-kind-' + k, checked: (kept && kept.kind ? kept.kind === k : k === 'reply') ? true : null }), t);
    const after = select('cf-after', 'Then set status', [['', 'unchanged'], ['pending', 'pending'], ['solved', 'solved']], '');
    const canned = state.macros.length
      ? select('cf-macro', 'Canned reply', [['', 'Insert…']].concat(state.macros.map((m) => [m.id, m.name])), '', async (e) => {
        const id = e.target.value;
        e.target.value = '';
        if (!id) return;
        try {
          const r = await api('POST', '/cases/' + c.id + '/macros/' + encodeURIComponent(id) + '/render');
          body.value = body.value.trim() ? body.value.replace(/\s*$/, '') + '\n\n' + r.body : r.body;
          body.focus();
          setComposing(true);
        } catch (ex) {
          toast(ex.message, 'error');
        }
      })
      : null;
    const composer = el('form', { class: 'cf-composer', id: 'cf-composer' },
      el('fieldset', {}, el('legend', { text: 'Write' }), kind('reply', 'Reply to customer (' + c.channel + ')'), kind('note', 'Internal note')),
      body, el('div', { class: 'cf-composer-actions' }, el('div', { class: 'cf-composer-tools' }, canned, after),
        el('button', { type: 'submit', id: 'cf-send', text: 'Send' })));
    const chatTypingNow = () => {
      if (c.channel !== 'chat') return;
      const reply = composer.querySelector('input[name=cf-kind]:checked').value === 'reply';
      chatTyping(c.id, reply && body.value.trim() !== '');
    };
    body.addEventListener('input', () => {
      setComposing(body.value.trim() !== '');
      chatTypingNow();
    });
    composer.addEventListener('change', (e) => {
      if (e.target.name === 'cf-kind') chatTypingNow();
    });
    if (kept) body.value = kept.body;
    composer.addEventListener('submit', async (e) => {
      e.preventDefault();
      const text = body.value.trim();
      if (!text) {
        toast('Write something first.', 'error');
        body.focus();
        return;
      }
      const k = composer.querySelector('input[name=cf-kind]:checked').value;
      const status = composer.querySelector('#cf-after').value || undefined;
      try {
        await api('POST', '/cases/' + c.id + '/messages', { kind: k, body: text, status });
        body.value = '';
        setComposing(false);
        if (c.channel === 'chat') chatTyping(c.id, false);
        toast(k === 'note' ? 'Note added.' : 'Reply sent.');
        loadCase(c.id, true);
      } catch (ex) {
        toast(ex.message, 'error');
      }
    });

    const side = el('aside', { class: 'cf-case-side', 'aria-label': 'Customer, SLA and routing' },
      customerPanel(c, customer), satisfactionPanel(events), slaPanel(sla), routingPanel(routing));
    const shown = main.querySelector('.cf-case');
    if (!focus && shown && shown.dataset.case === c.id) {
      // A live refresh of the case on screen: new timeline, state and side panels; the
      // composer (what is typed, the focus, the buttons under the pointer) stays as it is.
      const stay = document.getElementById('cf-timeline');
      const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 4;
      stay.replaceWith(timeline);
      main.querySelector('.cf-case-controls').replaceWith(controls);
      main.querySelector('.cf-case-side').replaceWith(side);
      const status = document.getElementById('cf-case-status');
      status.className = 'cf-status cf-status-' + c.status;
      status.textContent = label(c.status);
      if (atBottom) window.scrollTo(0, document.body.scrollHeight);
      if (c.channel === 'chat') chatSocket();
      return;
    }
    clear(main);
    main.append(el('div', { class: 'cf-case', 'data-case': c.id },
      el('section', { class: 'cf-case-main', 'aria-labelledby': 'cf-case-title' },
        el('p', { class: 'cf-back' }, el('a', { href: '#/inbox/' + ((state.lastView) || 'mine'), text: '← Back to the inbox' })),
        el('h1', { id: 'cf-case-title', tabindex: '-1' }, el('span', { class: 'cf-number', text: '#' + c.number + ' ' }), c.subject),
        el('p', { class: 'cf-meta' }, 'Channel ', el('strong', { text: c.channel }), ' · opened ', fmtTime(c.created_at),
          ' · ', el('span', { class: 'cf-status cf-status-' + c.status, id: 'cf-case-status', text: label(c.status) })),
        controls, timeline,
        c.channel === 'chat' ? el('p', { class: 'cf-chat-typing', id: 'cf-chat-typing', 'aria-live': 'polite' }) : null,
        el('p', { class: 'cf-viewers', id: 'cf-viewers', role: 'status', hidden: true }),
        composer),
      side));
    startViewing(c.id);
    if (c.channel === 'chat') chatSocket();
    if (focus) document.getElementById('cf-case-title').focus();
  }

  // ---------- live chat in the case view ----------

  // The agents' chat socket (authenticated by the session cookie; same origin only): visitor
  // lines and typing arrive at once, and this agent's typing goes to the visitor.
  function chatSocket() {
    if (state.chat && state.chat.readyState <= 1) {
      const t = document.getElementById('cf-chat-typing');
      if (t && state.chat.readyState === 1) t.dataset.socket = 'open';
      return state.chat;
    }
    const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + API + '/chat/ws', ['caseflow']);
    ws.addEventListener('message', (ev) => {
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      const cur = state.current;
      if (!cur || cur.kind !== 'case' || f.case_id !== cur.id) return;
      if (f.type === 'message') onChatLine(f);
      else if (f.type === 'typing') showChatTyping(f.typing ? f.name + ' is typing…' : '', f.typing);
      else if (f.type === 'resync') loadCase(cur.id, true);
      else if (f.type === 'presence') showChatTyping(f.state === 'joined' ? '' : (f.customer_name || 'The visitor') + (f.state === 'ended' ? ' ended the chat.' : ' left the chat.'));
    });
    ws.addEventListener('open', () => {
      const t = document.getElementById('cf-chat-typing');
      if (t) t.dataset.socket = 'open';
    });
    ws.addEventListener('close', () => {
      if (state.chat !== ws) return;
      state.chat = null;
      // Still showing a chat case: listen again shortly (a restart, a lost heartbeat).
      setTimeout(() => {
        const cur = state.current;
        if (state.me && cur && cur.kind === 'case' && document.getElementById('cf-chat-typing')) chatSocket();
      }, 2000);
    });
    state.chat = ws;
    return ws;
  }

  function onChatLine(f) {
    const timeline = document.getElementById('cf-timeline');
    if (!timeline || timeline.querySelector('[data-message="' + CSS.escape(f.message_id) + '"]')) return;
    const m = {
      id: f.message_id,
      direction: f.author === 'customer' ? 'inbound' : 'outbound',
      author_kind: f.author === 'customer' ? 'customer' : f.author,
      author_id: null,
      channel: 'chat',
      body_text: f.body,
      created_at: f.created_at,
      attachments: [],
    };
    const item = messageItem(m);
    if (f.author_name && f.author !== 'customer') item.querySelector('header strong').textContent = f.author_name;
    timeline.append(item);
    if (f.author === 'customer') showChatTyping('');
  }

  // Shows who is typing; a "typing" that is not renewed fades after 6 s (the visitor may
  // have erased the draft without sending).
  function showChatTyping(text, expires) {
    const t = document.getElementById('cf-chat-typing');
    if (!t) return;
    t.textContent = text;
    clearTimeout(showChatTyping.timer);
    if (expires) showChatTyping.timer = setTimeout(() => { t.textContent = ''; }, 6000);
  }

  // Tells the visitor this agent is typing (at most once a second).
  function chatTyping(caseId, typing) {
    const ws = state.chat;
    if (!ws || ws.readyState !== 1) return;
    const now = Date.now();
    if (typing && now - state.chatTyping < 1000) return;
    if (!typing && !state.chatTyping) return;
    state.chatTyping = typing ? now : 0;
    state.chatTypingCase = typing ? caseId : null;
    ws.send(JSON.stringify({ type: 'typing', case_id: caseId, typing }));
  }

  // ---------- collision warning ----------

  async function heartbeat() {
    const v = state.viewing;
    if (!v) return;
    try {
      const r = await api('PUT', '/cases/' + encodeURIComponent(v.caseId) + '/viewers/me', { composing: v.composing });
      if (state.viewing === v) showViewers(r.viewers);
    } catch (_) {
      // The next beat tries again.
    }
  }

  function startViewing(caseId) {
    if (state.viewing && state.viewing.caseId === caseId) return;
    stopViewing();
    state.viewing = { caseId, composing: false, timer: setInterval(heartbeat, 15000) };
    heartbeat();
  }

  // Stops the heartbeats; tells the server unless the session is already gone.
  function stopViewing(tell) {
    const v = state.viewing;
    if (!v) return Promise.resolve();
    clearInterval(v.timer);
    state.viewing = null;
    if (tell === false) return Promise.resolve();
    return api('DELETE', '/cases/' + encodeURIComponent(v.caseId) + '/viewers/me').catch(() => {});
  }

  function setComposing(on) {
    const v = state.viewing;
    if (!v || v.composing === on) return;
    v.composing = on;
    heartbeat();
  }

  function showViewers(viewers) {
    const box = document.getElementById('cf-viewers');
    if (!box) return;
    clear(box);
    box.hidden = viewers.length === 0;
    if (!viewers.length) return;
    const writing = viewers.filter((v) => v.composing).map((v) => v.name);
    const looking = viewers.filter((v) => !v.composing).map((v) => v.name);
    const parts = [];
    if (writing.length) parts.push(writing.join(', ') + (writing.length > 1 ? ' are' : ' is') + ' writing a reply');
    if (looking.length) parts.push(looking.join(', ') + (looking.length > 1 ? ' are' : ' is') + ' also viewing this case');
    box.append(el('strong', { text: 'Careful: ' }), parts.join('; ') + '.');
  }

  function messageItem(m) {
    const who = m.direction === 'inbound' ? state.customerName || 'Customer' : m.author_id ? agentName(m.author_id) : label(m.author_kind);
    const internal = m.direction === 'note';
    const cls = 'cf-msg cf-msg-' + m.direction;
    const text = el('div', { class: 'cf-msg-body', text: m.body_text });
    const parts = [
      el('header', {}, el('strong', { text: internal ? who + ' (internal note)' : who }), ' · ', m.channel, ' · ',
        el('time', { datetime: m.created_at, text: fmtTime(m.created_at) }),
        m.delivery_status ? el('span', { class: 'cf-delivery cf-delivery-' + m.delivery_status, text: ' ' + m.delivery_status }) : null),
      text,
    ];
    if (m.body_html) {
      // Sanitized on ingest, and shown only in a sandboxed frame without scripts.
      const btn = el('button', { type: 'button', class: 'cf-link', text: 'Show formatted' });
      btn.addEventListener('click', () => {
        const frame = el('iframe', { class: 'cf-html', sandbox: '', title: 'Formatted email', referrerpolicy: 'no-referrer' });
        frame.srcdoc = m.body_html;
        text.replaceWith(frame);
        btn.remove();
      });
      parts.push(btn);
    }
    if (m.attachments && m.attachments.length) {
      parts.push(el('ul', { class: 'cf-attachments' }, m.attachments.map((a) => el('li', { text: a.filename + ' (' + a.size_bytes + ' bytes)' }))));
    }
    return el('li', { class: cls, 'data-message': m.id }, parts);
  }

  function eventItem(e) {
    const by = e.actor_id && state.agents.has(e.actor_id) ? agentName(e.actor_id) : label(e.actor_kind);
    let what = label(e.kind);
    const d = e.data || {};
    const name = (v) => (v && state.agents.has(v) ? agentName(v) : label(v || 'none'));
    if (d.from !== undefined && d.to !== undefined) what += ': ' + name(d.from) + ' → ' + name(d.to);
    if (e.kind === 'case_rated') {
      // The customer's answer to the satisfaction survey: private to the desk.
      what = 'Customer rated the support ' + (d.rating === 'good' ? 'good' : 'bad') +
        (d.previous ? ' (was ' + d.previous + ')' : '') + (d.comment ? ': “' + d.comment + '”' : '');
      return el('li', { class: 'cf-event cf-rated cf-rated-' + (d.rating === 'good' ? 'good' : 'bad') },
        el('time', { datetime: e.created_at, text: fmtTime(e.created_at) }), ' ', what);
    }
    if (e.kind === 'satisfaction_survey_sent') what = 'Satisfaction survey sent (' + (d.channel || 'email') + ')';
    if (e.kind === 'satisfaction_survey_skipped') what = 'No satisfaction survey: ' + (d.reason || 'the customer cannot be reached');
    return el('li', { class: 'cf-event' }, el('time', { datetime: e.created_at, text: fmtTime(e.created_at) }), ' ', what, ' — ', by);
  }

  function customerPanel(c, customer) {
    const p = el('section', { class: 'cf-panel', 'aria-labelledby': 'cf-customer-title' },
      el('h2', { id: 'cf-customer-title', text: 'Customer' }),
      el('p', {}, el('strong', { id: 'cf-customer-name', text: c.customer.name }), ' ',
        el('span', { class: 'cf-tier cf-tier-' + c.customer.tier, text: c.customer.tier })));
    if (!customer) return p;
    p.append(el('h3', { text: 'Identities' }),
      el('ul', { class: 'cf-identities' }, customer.identities.map((i) => el('li', {}, el('span', { class: 'cf-kind', text: i.kind }), ' ', i.value))));
    const past = customer.cases.filter((x) => x.id !== c.id);
    p.append(el('h3', { text: 'Other cases (' + past.length + ')' }),
      past.length ? el('ul', { class: 'cf-past' }, past.slice(0, 20).map((x) => el('li', {},
        el('a', { href: '#/case/' + x.id, text: '#' + x.number + ' ' + x.subject }), ' ',
        el('span', { class: 'cf-status cf-status-' + x.status, text: label(x.status) }), ' · ', x.channel))) : el('p', { class: 'cf-muted', text: 'None.' }));
    return p;
  }

  // The survey and the answer as it stands, from the case's audit log (nothing when no
  // survey was sent).
  function satisfactionPanel(events) {
    const sent = events.find((e) => e.kind === 'satisfaction_survey_sent');
    if (!sent) return null;
    const rated = events.filter((e) => e.kind === 'case_rated').pop();
    const p = el('section', { class: 'cf-panel', 'aria-labelledby': 'cf-csat-title', id: 'cf-csat' },
      el('h2', { id: 'cf-csat-title', text: 'Satisfaction' }));
    if (!rated) {
      p.append(el('p', { class: 'cf-muted', text: 'Survey sent ' + fmtTime(sent.created_at) + '; no answer yet.' }));
      return p;
    }
    const d = rated.data || {};
    p.append(el('p', {}, el('strong', { class: 'cf-rated-' + (d.rating === 'good' ? 'good' : 'bad'), text: d.rating === 'good' ? 'Good' : 'Bad' }),
      ' · ' + fmtTime(rated.created_at)));
    if (d.comment) p.append(el('blockquote', { class: 'cf-csat-comment', text: d.comment }));
    return p;
  }

  function slaPanel(sla) {
    const p = el('section', { class: 'cf-panel', 'aria-labelledby': 'cf-sla-title', id: 'cf-sla' }, el('h2', { id: 'cf-sla-title', text: 'SLA' }));
    if (!sla || !sla.policy_id) {
      p.append(el('p', { class: 'cf-muted', text: 'No SLA policy applies.' }));
      return p;
    }
    p.append(el('p', {}, 'Policy ', el('strong', { text: sla.policy_name || sla.policy_id }),
      sla.calendar ? ' · ' + sla.calendar : '', sla.time_zone ? ' (' + sla.time_zone + ')' : ''));
    p.append(el('ul', { class: 'cf-clocks' }, sla.clocks.map((k) => el('li', { class: 'cf-clock cf-clock-' + k.state + (k.breached ? ' cf-clock-breached' : '') },
      el('strong', { text: label(k.metric) }), ' ', el('span', { class: 'cf-muted', text: label(k.state) }), ' ',
      k.due_at && k.state === 'running' ? due(k.due_at, k.breached) : k.breached ? el('span', { class: 'cf-due cf-due-breached', text: 'breached' }) : null,
      el('p', { class: 'cf-explain', text: k.explanation })))));
    return p;
  }

  function routingPanel(r) {
    const p = el('section', { class: 'cf-panel', 'aria-labelledby': 'cf-routing-title' }, el('h2', { id: 'cf-routing-title', text: 'Routing' }));
    if (!r) return p;
    p.append(el('p', {}, 'State ', el('strong', { text: r.state }),
      r.skills.length ? ' · needs ' + r.skills.map((s) => skillName(s.skill_id) + ' ≥ ' + s.min_level).join(', ') : ''));
    const d = r.decisions[0];
    if (d) {
      const x = d.explanation || {};
      p.append(el('p', { class: 'cf-explain' },
        label(d.outcome) + (d.agent_id ? ' to ' + agentName(d.agent_id) : '') + ' · ' + fmtTime(d.created_at) +
        ' · strategy ' + label(x.strategy) + ', class ' + label(x.class) + ', score ' + x.score +
        ' · ' + x.agents_total + ' agents: ' + x.excluded_offline + ' offline, ' + x.excluded_skills + ' lacking skills, ' +
        x.excluded_capacity + ' at capacity, ' + x.excluded_team + ' other team'));
    }
    return p;
  }

  // ---------- supervisor console ----------

  // The team the console shows: chosen in its selector, at first the supervisor's own.
  function superTeamParam() {
    if (state.superTeam === undefined) state.superTeam = (state.me && state.me.team_id) || '';
    return state.superTeam ? '&team=' + encodeURIComponent(state.superTeam) : '';
  }

  async function loadSupervisor(refresh, focusTeam) {
    state.current = refresh && state.current && state.current.kind === 'supervisor' ? state.current : { kind: 'supervisor' };
    const current = state.current;
    // Only the latest load draws (a team switch while an older one is on its way).
    const seq = (state.superSeq = (state.superSeq || 0) + 1);
    state.unseenAlerts = 0;
    document.title = 'Caseflow';
    document.getElementById('cf-alert-badge').hidden = true;
    let alerts, breaching, agents, overview;
    const team = superTeamParam();
    try {
      [alerts, breaching, agents, overview] = await Promise.all([
        api('GET', '/alerts?unacknowledged=true'),
        api('GET', '/inbox?view=breaching&limit=20' + team),
        api('GET', '/agents'),
        api('GET', '/stats/overview?days=7' + team),
      ]);
    } catch (ex) {
      if (ex.status === 422 && state.superTeam) {
        // The chosen team is gone (deleted meanwhile): back to every team.
        state.superTeam = '';
        toast('That team no longer exists; showing every team.', 'error');
        return loadSupervisor(true);
      }
      if (ex.status !== 401) toast(ex.message, 'error');
      return;
    }
    if (current !== state.current || seq !== state.superSeq) return;
    noteServerTime(breaching.as_of);
    state.overview = overview;
    state.overviewAt = Date.now();
    state.agents = new Map(agents.items.map((a) => [a.id, a]));
    const main = clear(document.getElementById('cf-main'));
    const log = el('ol', { class: 'cf-alerts', id: 'cf-alerts', role: 'log', 'aria-live': 'assertive', 'aria-label': 'Live alerts' });
    // Which team the figures and "breaching next" cover (alerts are the supervisor's own).
    const teamPick = select('cf-super-team', 'Team', [['', 'All teams'], ['none', 'No team']]
      .concat([...state.teams.entries()].map(([id, t]) => [id, t.name])), state.superTeam, (e) => {
      state.superTeam = e.target.value;
      state.overviewAt = 0;
      loadSupervisor(true, true);
    });
    main.append(el('div', { class: 'cf-super-filter' }, teamPick));
    main.append(el('div', { class: 'cf-super', 'data-team': state.superTeam },
      el('section', { class: 'cf-panel', 'aria-labelledby': 'cf-alerts-title' },
        el('h1', { id: 'cf-alerts-title', text: 'Live alerts' }),
        el('p', { class: 'cf-muted', text: 'New SLA warnings, breaches, escalations, bad satisfaction ratings and complaints appear here as they happen.' }), log),
      supervisorSections(breaching, overview)));
    // Oldest first from the server: prepending each leaves the newest on top.
    for (const a of alerts.items) prependAlert(a, false);
    if (!alerts.items.length) log.append(el('li', { class: 'cf-muted cf-none', text: 'No open alerts.' }));
    // Redrawn after a choice in the selector: the keyboard stays on it.
    if (focusTeam) document.getElementById('cf-super-team').focus();
  }

  // The soonest deadlines, each with a selector to (re)assign the case at once.
  function breachingRows(items) {
    const agents = [...state.agents.values()].filter((a) => a.active);
    return items.map((it) => {
      const c = it.case;
      const pick = el('select', { 'aria-label': 'Assign case ' + c.number, class: 'cf-assign', 'data-case': c.id },
        option('', 'Unassigned', !c.assignee_id),
        agents.map((a) => option(a.id, a.name + ' (' + a.presence + ')', a.id === c.assignee_id)));
      pick.addEventListener('change', async () => {
        try {
          await api('PATCH', '/cases/' + c.id, { assignee_id: pick.value || null }, { 'If-Match': '"' + c.version + '"' });
          toast('Case #' + c.number + (pick.value ? ' assigned to ' + agentName(pick.value) : ' unassigned') + '.');
        } catch (ex) {
          toast(ex.message, 'error');
        }
        refreshBreaching();
      });
      return el('tr', {},
        el('td', { text: c.number }),
        el('td', {}, el('a', { href: '#/case/' + c.id, text: c.subject })),
        el('td', {}, pick),
        el('td', {}, due(it.sla_due_at, it.sla_breached)));
    });
  }

  // Everything on the console but the alert log: replaced as a whole on each refresh.
  function supervisorSections(breaching, overview) {
    return [
      el('section', { class: 'cf-panel', 'aria-labelledby': 'cf-next-title', id: 'cf-sec-next' },
        el('h2', { id: 'cf-next-title', text: 'Breaching next' }),
        el('table', { class: 'cf-cases', id: 'cf-breaching' },
          el('thead', {}, el('tr', {}, ['#', 'Subject', 'Assignee', 'SLA due'].map((h) => el('th', { scope: 'col', text: h })))),
          el('tbody', {}, breachingRows(breaching.items)))),
      el('section', { class: 'cf-panel', 'aria-labelledby': 'cf-agents-title', id: 'cf-sec-agents' },
        el('h2', { id: 'cf-agents-title', text: 'Agents' }),
        el('table', { class: 'cf-cases', id: 'cf-agents' },
          el('thead', {}, el('tr', {}, ['Agent', 'Team', 'Presence', 'Load'].map((h) => el('th', { scope: 'col', text: h })))),
          el('tbody', {}, overview.agents.map((a) => el('tr', { 'data-agent': a.agent_id },
            el('td', { text: a.name }),
            el('td', { text: a.team_id ? (state.teams.get(a.team_id) || {}).name || a.team_id : '—' }),
            el('td', {}, el('span', { class: 'cf-presence cf-presence-' + a.presence, text: a.presence })),
            el('td', {}, el('span', { class: 'cf-load', text: a.load + ' / ' + a.max_load }), ' ',
              el('meter', { min: 0, max: Math.max(a.max_load, 1), value: Math.min(a.load, Math.max(a.max_load, 1)), high: Math.max(a.max_load, 1) * 0.8, 'aria-label': a.name + ' load' }))))))),
      el('section', { class: 'cf-panel', 'aria-labelledby': 'cf-queues-title', id: 'cf-sec-queues' },
        el('h2', { id: 'cf-queues-title', text: 'Waiting for an agent' }),
        countTable('cf-queue-teams', 'Team', overview.waiting_per_team, 'Nobody is waiting.'),
        countTable('cf-queue-skills', 'Skill needed', overview.waiting_per_skill, 'No case waits for a skill.')),
      el('section', { class: 'cf-panel cf-charts', 'aria-labelledby': 'cf-charts-title', id: 'cf-sec-charts' },
        el('h2', { id: 'cf-charts-title', text: 'The last 24 hours and 7 days' }),
        el('div', { class: 'cf-chart-grid' },
          barChart({
            id: 'cf-chart-hourly',
            title: 'Cases in and out per hour (UTC)',
            labels: overview.hourly.map((h) => h.start.slice(11, 13) + 'h'),
            series: [
              { name: 'created', color: '#1f5fbf', values: overview.hourly.map((h) => h.created) },
              { name: 'solved', color: '#1e6b35', values: overview.hourly.map((h) => h.solved) },
            ],
            every: 3,
          }),
          barChart({
            id: 'cf-chart-first-response',
            title: 'Median first response (minutes), by day created (UTC)',
            labels: overview.daily.map((d) => fmtDay(d.day)),
            series: [{ name: 'median minutes', color: '#6a3fb5', values: overview.daily.map((d) => Math.round(d.first_response_median_mins || 0)) }],
          }),
          barChart({
            id: 'cf-chart-breaches',
            title: 'SLA breaches per day (UTC), by channel',
            labels: overview.daily.map((d) => fmtDay(d.day)),
            series: CHANNELS.map((ch, i) => ({ name: ch, color: CHANNEL_COLORS[i], values: overview.daily.map((d) => d.breaches_by_channel[ch] || 0) })),
            stacked: true,
          }),
          el('div', {}, el('h3', { text: 'Breaches per team (7 days)' }),
            countTable('cf-breaches-teams', 'Team', overview.breaches_per_team, 'No breaches.')))),
      satisfactionSection(overview.satisfaction),
    ];
  }

  // New figures after an alert or a change: the deadlines at once; load, queues and charts
  // (they scan the last days) at most every 2 s after an alert, every 15 s after other
  // changes. A section in use (a focused selector) is left alone until the next refresh.
  async function refreshBreaching(alerted) {
    try {
      const now = Date.now();
      const gap = alerted ? 2000 : 15000;
      const figures = !state.overviewAt || now - state.overviewAt >= gap;
      if (!figures && !state.figuresTimer) {
        // Not now: once the gap has passed (a trailing refresh, so the last change counts).
        state.figuresTimer = setTimeout(() => {
          state.figuresTimer = null;
          if (state.current && state.current.kind === 'supervisor') refreshBreaching(alerted);
        }, gap - (now - state.overviewAt) + 50);
      }
      const team = superTeamParam();
      const seq = state.superSeq;
      const [page, overview] = await Promise.all([
        api('GET', '/inbox?view=breaching&limit=20' + team),
        figures ? api('GET', '/stats/overview?days=7' + team) : Promise.resolve(state.overview),
      ]);
      if (!state.current || state.current.kind !== 'supervisor') return;
      // Asked for another team than the one now chosen, or a full load ran since: not drawn.
      if (team !== superTeamParam() || seq !== state.superSeq) return;
      if (figures) {
        state.overview = overview;
        state.overviewAt = now;
      }
      noteServerTime(page.as_of);
      for (const section of supervisorSections(page, overview)) {
        const old = document.getElementById(section.id);
        if (!old || (!figures && section.id !== 'cf-sec-next')) continue;
        if (old.contains(document.activeElement) && document.activeElement.tagName === 'SELECT') continue;
        old.replaceWith(section);
      }
    } catch (_) {
      // The next alert or a reload tries again.
    }
  }

  const CHANNEL_COLORS = ['#1f5fbf', '#b35c00', '#1e6b35', '#6a3fb5'];

  function fmtDay(day) {
    return new Date(day + 'T00:00:00Z').toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
  }

  // Customer satisfaction of the window: good answers in percent, per team and per agent.
  function satisfactionSection(sat) {
    const score = (v) => (v === null || v === undefined ? '–' : v + ' %');
    const table = (id, what, rows) => (rows.length
      ? el('table', { class: 'cf-cases cf-compact', id },
        el('thead', {}, el('tr', {}, ['', 'Good', 'Bad', 'CSAT'].map((h, i) => el('th', { scope: 'col', text: i ? h : what })))),
        el('tbody', {}, rows.map((r) => el('tr', {}, el('td', { text: r.name }), el('td', { text: r.good }), el('td', { text: r.bad }), el('td', { text: score(r.score) })))))
      : el('p', { class: 'cf-muted', id, text: 'No answers yet.' }));
    return el('section', { class: 'cf-panel', 'aria-labelledby': 'cf-csat-sec-title', id: 'cf-sec-csat' },
      el('h2', { id: 'cf-csat-sec-title', text: 'Customer satisfaction (7 days)' }),
      el('p', { id: 'cf-csat-total' }, el('strong', { text: score(sat.score) }), ' satisfied · ' + sat.good + ' good, ' + sat.bad + ' bad'),
      el('div', { class: 'cf-chart-grid' },
        el('div', {}, el('h3', { text: 'Per team' }), table('cf-csat-teams', 'Team', sat.per_team)),
        el('div', {}, el('h3', { text: 'Per agent' }), table('cf-csat-agents', 'Agent', sat.per_agent))));
  }

  function countTable(id, what, rows, none) {
    if (!rows.length) return el('p', { class: 'cf-muted', id, text: none });
    return el('table', { class: 'cf-cases cf-compact', id },
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: what }), el('th', { scope: 'col', text: 'Cases' }))),
      el('tbody', {}, rows.map((r) => el('tr', {}, el('td', { text: r.name }), el('td', { text: r.count })))));
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    for (const c of children.flat()) {
      if (c !== null && c !== undefined && c !== false) n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }

  // A bar chart (grouped, or stacked) in SVG, with a legend and each bar's value as its title.
  function barChart({ id, title, labels, series, stacked, every }) {
    const W = 520, H = 170, left = 34, bottom = 20, top = 8;
    const totals = labels.map((_, i) => series.reduce((sum, s) => sum + s.values[i], 0));
    const max = Math.max(1, ...(stacked ? totals : series.flatMap((s) => s.values)));
    const slot = (W - left) / labels.length;
    const y = (v) => top + (H - top - bottom) * (1 - v / max);
    const g = svg('g', {});
    g.append(svg('line', { x1: left, x2: W, y1: y(0), y2: y(0), class: 'cf-axis' }),
      svg('line', { x1: left, x2: W, y1: y(max), y2: y(max), class: 'cf-grid' }),
      svg('text', { x: left - 4, y: y(max) + 4, 'text-anchor': 'end', class: 'cf-tick' }, max),
      svg('text', { x: left - 4, y: y(0), 'text-anchor': 'end', class: 'cf-tick' }, 0));
    labels.forEach((label, i) => {
      const x0 = left + i * slot;
      if (i % (every || 1) === 0) g.append(svg('text', { x: x0 + slot / 2, y: H - 5, 'text-anchor': 'middle', class: 'cf-tick' }, label));
      let base = 0;
      series.forEach((s, k) => {
        const v = s.values[i];
        if (!v) return;
        const w = stacked ? slot * 0.7 : (slot * 0.8) / series.length;
        const x = stacked ? x0 + slot * 0.15 : x0 + slot * 0.1 + k * w;
        const from = stacked ? base : 0;
        g.append(svg('rect', { x, width: Math.max(w - 1, 1), y: y(from + v), height: y(from) - y(from + v), fill: s.color },
          svg('title', {}, label + ': ' + v + ' ' + s.name)));
        if (stacked) base += v;
      });
    });
    const summary = title + ': ' + series.map((s) => s.name + ' ' + s.values.reduce((a, b) => a + b, 0)).join(', ');
    return el('figure', { class: 'cf-chart', id },
      el('figcaption', { text: title }),
      svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': summary, class: 'cf-chart-svg' }, g),
      el('p', { class: 'cf-legend' }, series.map((s) => el('span', {},
        svg('svg', { width: 10, height: 10, 'aria-hidden': 'true' }, svg('rect', { width: 10, height: 10, fill: s.color })), ' ' + s.name))));
  }

  function prependAlert(a, fresh) {
    const log = document.getElementById('cf-alerts');
    if (!log || log.querySelector('[data-alert="' + CSS.escape(a.id) + '"]')) return;
    const none = log.querySelector('.cf-none');
    if (none) none.remove();
    const ack = el('button', { type: 'button', class: 'cf-secondary', text: 'Acknowledge' });
    const item = el('li', { class: 'cf-alert cf-alert-' + a.kind + (fresh ? ' cf-flash' : ''), 'data-alert': a.id },
      el('strong', { text: alertLabel(a.kind) }), ' ', a.message, ' ',
      el('a', { href: '#/case/' + a.case_id, text: 'Open case' }), ' ',
      el('time', { datetime: a.created_at, text: fmtTime(a.created_at) }), ' ', ack);
    ack.addEventListener('click', async () => {
      try {
        await api('POST', '/alerts/' + encodeURIComponent(a.id) + '/acknowledge');
        item.remove();
        toast('Alert acknowledged.');
      } catch (ex) {
        toast(ex.message, 'error');
      }
    });
    log.prepend(item);
  }

  // ---------- admin: canned replies ----------

  // A fresh random password for a new agent's template (shown once, here): 20 characters.
  function randomPassword() {
    const alphabet = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
    const bytes = crypto.getRandomValues(new Uint8Array(20));
    return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
  }

  const pick = (obj, keys) => Object.fromEntries(keys.filter((k) => k in obj).map((k) => [k, obj[k]]));
  const omit = (obj, keys) => Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));
  const STAMPS = ['id', 'created_at', 'updated_at'];

  // Rows of inputs that grow and shrink: `make(value)` builds one row and returns
  // { node, get }; `list.get()` collects every row's value, `list.set(values)` rebuilds.
  function rowList(id, addLabel, make) {
    const rows = [];
    const box = el('div', { class: 'cf-rows', id });
    const add = (value) => {
      const r = make(value);
      const remove = el('button', { type: 'button', class: 'cf-secondary cf-remove-row', text: 'Remove', 'aria-label': 'Remove this row' });
      const node = el('div', { class: 'cf-row' }, r.node, remove);
      remove.addEventListener('click', () => {
        rows.splice(rows.indexOf(r), 1);
        node.remove();
      });
      rows.push(r);
      box.append(node);
      return r;
    };
    const addButton = el('button', { type: 'button', class: 'cf-secondary', id: id + '-add', text: addLabel, onclick: () => add(undefined) });
    return {
      node: el('div', {}, box, addButton),
      get: () => rows.map((r) => r.get()),
      set: (values) => {
        rows.length = 0;
        clear(box);
        for (const v of values || []) add(v);
      },
    };
  }

  const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

  // SLA calendar: a time zone, opening hours as rows of weekdays and times, holidays and
  // closures; the JSON the API takes (docs/sla.md), with the server checking it.
  function calendarForm() {
    const name = el('input', { id: 'cf-cal-name', required: true, maxlength: 200 });
    const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
    const zone = el('input', { id: 'cf-cal-zone', list: 'cf-cal-zones', required: true, placeholder: 'Europe/Paris', autocomplete: 'off' });
    const time = (cls, value, labelText) => el('input', { class: cls, value: value || '', placeholder: 'hh:mm', pattern: '([01]?[0-9]|2[0-3]):[0-5][0-9]|24:00', size: 5, 'aria-label': labelText });
    const hours = rowList('cf-cal-hours', 'Add opening hours', (h) => {
      h = h || { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' };
      const days = WEEKDAYS.map((d) => el('input', { type: 'checkbox', class: 'cf-day-' + d, checked: h.days.includes(d), 'aria-label': label(d) }));
      const from = time('cf-cal-from', h.from, 'Opens');
      const to = time('cf-cal-to', h.to, 'Closes');
      return {
        node: el('div', { class: 'cf-cal-hours-row' },
          WEEKDAYS.map((d, i) => el('label', { class: 'cf-day' }, days[i], ' ' + d.charAt(0).toUpperCase() + d.slice(1, 3))),
          el('span', { class: 'cf-muted', text: 'from' }), from, el('span', { class: 'cf-muted', text: 'to' }), to),
        get: () => ({ days: WEEKDAYS.filter((d, i) => days[i].checked), from: from.value.trim(), to: to.value.trim() }),
      };
    });
    const holidays = rowList('cf-cal-holidays', 'Add holiday', (h) => {
      h = h || { date: '', name: '', yearly: false };
      const date = el('input', { type: 'date', class: 'cf-hol-date', value: h.date, 'aria-label': 'Date' });
      const hname = el('input', { class: 'cf-hol-name', value: h.name || '', placeholder: 'Name', 'aria-label': 'Holiday name' });
      const yearly = el('input', { type: 'checkbox', class: 'cf-hol-yearly', checked: !!h.yearly });
      return {
        node: el('div', { class: 'cf-cal-hours-row' }, date, hname, el('label', {}, yearly, ' every year')),
        get: () => ({ date: date.value, name: hname.value.trim(), yearly: yearly.checked }),
      };
    });
    const closures = rowList('cf-cal-closures', 'Add closure', (c) => {
      c = c || { from: '', to: '', reason: '' };
      const from = el('input', { class: 'cf-clo-from', value: c.from, placeholder: '2026-12-31T12:00:00Z', 'aria-label': 'Closed from (UTC)' });
      const to = el('input', { class: 'cf-clo-to', value: c.to, placeholder: '2027-01-02T08:00:00Z', 'aria-label': 'Closed until (UTC)' });
      const reason = el('input', { class: 'cf-clo-reason', value: c.reason || '', placeholder: 'Reason', 'aria-label': 'Reason' });
      return {
        node: el('div', { class: 'cf-cal-hours-row' }, from, el('span', { class: 'cf-muted', text: 'to' }), to, reason),
        get: () => ({ from: from.value.trim(), to: to.value.trim(), reason: reason.value.trim() }),
      };
    });
    const field = (id, text, input) => el('div', { class: 'cf-field' }, el('label', { for: id, text }), input);
    const group = (text, list) => el('fieldset', { class: 'cf-fieldset' }, el('legend', { text }), list.node);
    return {
      node: el('div', { class: 'cf-structured', id: 'cf-cal-form' },
        field('cf-cal-name', 'Name', name),
        field('cf-cal-zone', 'Time zone', zone), el('datalist', { id: 'cf-cal-zones' }, zones.map((z) => el('option', { value: z }))),
        group('Opening hours (several rows a day make split shifts; "to" may be 24:00 or past midnight)', hours),
        group('Holidays (closed all day, local date)', holidays),
        group('Closures (instants in UTC)', closures)),
      get: () => ({ name: name.value.trim(), time_zone: zone.value.trim(), hours: hours.get(), holidays: holidays.get(), closures: closures.get() }),
      set: (v) => {
        name.value = v.name || '';
        zone.value = v.time_zone || '';
        hours.set(v.hours);
        holidays.set(v.holidays);
        closures.set(v.closures);
      },
    };
  }

  const METRICS = ['first_response', 'next_response', 'resolution'];
  const LADDER_ACTIONS = ['notify_assignee', 'alert_supervisors', 'raise_priority', 'reassign'];

  // A row of checkboxes for a list value: `get` gives the checked values in `values` order.
  function checks(cls, values, checked, text) {
    const boxes = values.map((v) => el('input', { type: 'checkbox', class: cls + ' ' + cls + '-' + v, value: v, checked: (checked || []).includes(v) }));
    return {
      node: el('span', { class: 'cf-checks' }, values.map((v, i) => el('label', { class: 'cf-day' }, boxes[i], ' ' + (text ? text(v) : label(v))))),
      get: () => values.filter((v, i) => boxes[i].checked),
      set: (list) => boxes.forEach((b) => { b.checked = (list || []).includes(b.value); }),
    };
  }

  // An optional whole number: empty is "none" (null), anything else is sent as typed and
  // checked by the server.
  const numberOrNull = (input) => (input.value.trim() === '' ? null : Number(input.value));

  // SLA policy: what it applies to, its calendar, targets, warning, pauses and the escalation
  // ladder (docs/sla.md), in the JSON the API takes.
  function policyForm() {
    const name = el('input', { id: 'cf-pol-name', required: true, maxlength: 200 });
    const position = el('input', { id: 'cf-pol-position', type: 'number', step: 1, placeholder: 'after the last' });
    const priorities = checks('cf-pol-priority', PRIORITIES, []);
    const tiers = checks('cf-pol-tier', TIERS, []);
    const channels = checks('cf-pol-channel', CHANNELS, []);
    // Team boxes are made for the teams known here plus any the policy names (a team this
    // page has not loaded, or one deleted since), so saving never drops a condition.
    const teamName = (id) => ((state.teams.get(id) || {}).name || 'unknown team ' + id);
    let teams = checks('cf-pol-team', [...state.teams.keys()], [], teamName);
    const teamLine = el('span', {}, teams.node);
    const setTeams = (wanted) => {
      teams = checks('cf-pol-team', [...new Set([...state.teams.keys(), ...(wanted || [])])], wanted, teamName);
      clear(teamLine).append(teams.node);
    };
    const calendar = el('select', { id: 'cf-pol-calendar' }, option('', 'None: around the clock, UTC', true));
    const ensureCalendar = (n) => {
      if (n && ![...calendar.options].some((o) => o.value === n)) calendar.append(option(n, n, false));
    };
    api('GET', '/sla/calendars').then((list) => {
      const wanted = calendar.value;
      for (const c of list.items) ensureCalendar(c.name);
      calendar.value = wanted;
    }).catch((ex) => toast('Calendars: ' + ex.message, 'error'));
    const metricSelect = (cls, current) => el('select', { class: cls, 'aria-label': 'Metric' }, METRICS.map((m) => option(m, label(m), m === current)));
    const targets = rowList('cf-pol-targets', 'Add target', (t) => {
      // A new target counts business hours when the policy has a calendar (it needs one).
      t = t || { metric: 'first_response', minutes: 240, business_hours: calendar.value !== '' };
      const metric = metricSelect('cf-pol-metric', t.metric);
      const minutes = el('input', { type: 'number', class: 'cf-pol-minutes', min: 1, step: 1, value: String(t.minutes), 'aria-label': 'Minutes' });
      const business = el('input', { type: 'checkbox', class: 'cf-pol-business', checked: t.business_hours !== false });
      return {
        node: el('div', { class: 'cf-cal-hours-row' }, metric, el('span', { class: 'cf-muted', text: 'within' }), minutes,
          el('span', { class: 'cf-muted', text: 'minutes' }), el('label', {}, business, ' in business hours')),
        get: () => ({ metric: metric.value, minutes: Number(minutes.value), business_hours: business.checked }),
      };
    });
    const warnPercent = el('input', { id: 'cf-pol-warn-percent', type: 'number', min: 1, max: 99, step: 1, placeholder: 'none' });
    const warnBefore = el('input', { id: 'cf-pol-warn-before', type: 'number', min: 0, step: 1, placeholder: 'none' });
    const pauses = checks('cf-pol-pause', ['pending', 'on_hold'], ['pending', 'on_hold']);
    const ack = el('input', { id: 'cf-pol-ack', type: 'number', min: 0, step: 1 });
    const ladder = rowList('cf-pol-ladder', 'Add escalation step', (st) => {
      st = st || { on: 'breach', after_minutes: 0, action: 'alert_supervisors', metrics: [] };
      const on = el('select', { class: 'cf-pol-on', 'aria-label': 'On' }, ['warning', 'breach'].map((v) => option(v, 'on ' + v, v === st.on)));
      const after = el('input', { type: 'number', class: 'cf-pol-after', min: 0, step: 1, value: String(st.after_minutes || 0), 'aria-label': 'Minutes after' });
      const action = el('select', { class: 'cf-pol-action', 'aria-label': 'Action' }, LADDER_ACTIONS.map((a) => option(a, label(a), a === st.action)));
      const metrics = checks('cf-pol-step-metric', METRICS, st.metrics);
      return {
        node: el('div', { class: 'cf-cal-hours-row' }, on, el('span', { class: 'cf-muted', text: '+' }), after,
          el('span', { class: 'cf-muted', text: 'min:' }), action, el('span', { class: 'cf-muted', text: 'for' }), metrics.node,
          el('span', { class: 'cf-muted', text: '(none ticked: every metric)' })),
        get: () => ({ on: on.value, after_minutes: Number(after.value || 0), action: action.value, metrics: metrics.get() }),
      };
    });
    const field = (id, text, input) => el('div', { class: 'cf-field' }, el('label', { for: id, text }), input);
    const group = (text, ...nodes) => el('fieldset', { class: 'cf-fieldset' }, el('legend', { text }), ...nodes);
    // A labelled line: the text labels the input (by id) or names the group of boxes.
    let lines = 0;
    const line = (text, node, inputId) => {
      const labelId = 'cf-pol-line-' + (++lines);
      return el('div', { class: 'cf-cal-hours-row', role: inputId ? null : 'group', 'aria-labelledby': inputId ? null : labelId },
        inputId ? el('label', { class: 'cf-pol-label', for: inputId, text }) : el('span', { class: 'cf-pol-label', id: labelId, text }), node);
    };
    return {
      node: el('div', { class: 'cf-structured', id: 'cf-pol-form' },
        field('cf-pol-name', 'Name', name),
        field('cf-pol-position', 'Place in the matching order (the first policy that matches applies)', position),
        group('Applies to (nothing ticked in a line: any)', line('Priority', priorities.node), line('Customer tier', tiers.node),
          line('Channel', channels.node), line('Team', teamLine)),
        field('cf-pol-calendar', 'Business calendar', calendar),
        group('Targets', targets.node),
        group('Warning before a breach (with both, the earlier)',
          line('at % of the target used', warnPercent, 'cf-pol-warn-percent'), line('minutes before the deadline', warnBefore, 'cf-pol-warn-before')),
        group('Clocks pause while the case is', pauses.node),
        field('cf-pol-ack', 'Acknowledge a new case within (seconds)', ack),
        group('Escalation ladder', ladder.node)),
      get: () => {
        const v = {
          name: name.value.trim(),
          conditions: { priorities: priorities.get(), tiers: tiers.get(), channels: channels.get(), teams: teams.get() },
          calendar: calendar.value || null,
          targets: targets.get(),
          warning: { percent: numberOrNull(warnPercent), minutes_before: numberOrNull(warnBefore) },
          pause_on: pauses.get(),
          acknowledge_within_secs: numberOrNull(ack) ?? 60,
          ladder: ladder.get(),
        };
        const pos = numberOrNull(position);
        return pos === null ? v : Object.assign({ position: pos }, v);
      },
      set: (v) => {
        const c = v.conditions || {};
        name.value = v.name || '';
        position.value = v.position ?? '';
        priorities.set(c.priorities);
        tiers.set(c.tiers);
        channels.set(c.channels);
        setTeams(c.teams);
        ensureCalendar(v.calendar);
        calendar.value = v.calendar || '';
        targets.set(v.targets);
        // No warning given means the server's default: at 75 % of the target.
        const w = v.warning || { percent: 75 };
        warnPercent.value = w.percent ?? '';
        warnBefore.value = w.minutes_before ?? '';
        pauses.set(v.pause_on || ['pending', 'on_hold']);
        ack.value = v.acknowledge_within_secs ?? 60;
        ladder.set(v.ladder);
      },
    };
  }

  const WEBHOOK_EVENTS = ['*', 'case.created', 'case.assigned', 'case.unassigned', 'case.status_changed',
    'case.priority_changed', 'message.created', 'sla.warning', 'sla.breached', 'case.escalated', 'case.rated'];

  // A form for a flat object, one control per field. Only the fields the edited value has are
  // shown and sent back: a new agent has an email and a password, a change to one does not.
  function fieldsForm(prefix, fields) {
    const controls = fields.map((f) => {
      const id = prefix + '-' + f.key;
      let input;
      let get;
      let set;
      if (f.type === 'select') {
        input = el('select', { id });
        get = () => (input.value === '' && f.nullable ? null : input.value);
        set = (v) => {
          clear(input);
          const opts = f.options();
          // A value this page does not know (a team not loaded here) stays as it is.
          if (v && !opts.some(([value]) => value === v)) opts.push([v, f.unknown ? f.unknown(v) : v]);
          for (const [value, text] of opts) input.append(option(value, text, false));
          input.value = v ?? '';
        };
      } else if (f.type === 'checkbox') {
        input = el('input', { type: 'checkbox', id });
        get = () => input.checked;
        set = (v) => { input.checked = !!v; };
      } else if (f.type === 'checks') {
        const c = checks(id, f.values, [], f.text);
        input = c.node;
        get = c.get;
        set = c.set;
      } else if (f.type === 'number') {
        input = el('input', { type: 'number', id, min: f.min, step: 1, placeholder: f.placeholder });
        get = () => numberOrNull(input);
        set = (v) => { input.value = v ?? ''; };
      } else {
        input = el('input', { id, maxlength: f.max, autocomplete: 'off', spellcheck: 'false' });
        // A password is sent as typed; an empty optional field is "none".
        get = () => {
          const v = f.key === 'password' ? input.value : input.value.trim();
          return v === '' && f.nullable ? null : v;
        };
        set = (v) => { input.value = v ?? ''; };
      }
      const hint = f.hint ? el('small', { class: 'cf-muted', id: id + '-hint', text: f.hint }) : null;
      if (hint) input.setAttribute('aria-describedby', id + '-hint');
      const wrap = f.type === 'checks' || f.type === 'checkbox'
        ? el('fieldset', { class: 'cf-fieldset', id: id + '-field' }, el('legend', { text: f.label }),
          f.type === 'checkbox' ? el('label', {}, input, ' ' + (f.box || f.label)) : input, hint)
        : el('div', { class: 'cf-field', id: id + '-field' }, el('label', { for: id, text: f.label }), input, hint);
      return { key: f.key, wrap, get, set };
    });
    let keys = [];
    return {
      node: el('div', { class: 'cf-structured', id: prefix + '-form' }, controls.map((c) => c.wrap)),
      get: () => Object.fromEntries(controls.filter((c) => keys.includes(c.key)).map((c) => [c.key, c.get()])),
      set: (v) => {
        keys = Object.keys(v);
        for (const c of controls) {
          c.wrap.hidden = !keys.includes(c.key);
          if (!c.wrap.hidden) c.set(v[c.key]);
        }
      },
    };
  }

  const teamOptions = () => [['', '— no team']].concat([...state.teams.entries()].map(([id, t]) => [id, t.name]));
  const nameAndDescription = (prefix) => () => fieldsForm(prefix, [
    { key: 'name', label: 'Name', max: 100 },
    { key: 'description', label: 'Description', max: 2000 },
  ]);

  // Everything the API configures, one section each. Most are edited as the JSON the API
  // takes (the server validates it and says what is wrong); canned replies have a form.
  const ADMIN = [
    { key: 'macros', title: 'Canned replies' },
    { key: 'agents', title: 'Agents', path: '/agents', update: 'PATCH',
      columns: [['Name', (x) => x.name], ['Email', (x) => x.email], ['Role', (x) => x.role],
        ['Team', (x) => (x.team_id ? (state.teams.get(x.team_id) || {}).name || x.team_id : '—')], ['Active', (x) => (x.active ? 'yes' : 'no')]],
      template: () => ({ email: 'new.agent@example.org', name: 'New Agent', role: 'agent', password: randomPassword(), team_id: null, max_load: 5 }),
      editable: (x) => pick(x, ['name', 'role', 'team_id', 'max_load', 'active']),
      form: () => fieldsForm('cf-f-agent', [
        { key: 'email', label: 'Email (their login)', max: 254 },
        { key: 'name', label: 'Name', max: 200 },
        { key: 'role', label: 'Role', type: 'select', options: () => [['agent', 'Agent'], ['supervisor', 'Supervisor'], ['admin', 'Admin']] },
        { key: 'password', label: 'Password', max: 200, nullable: true, hint: 'Generated in this browser: copy it for them now, it is not shown again. Empty: they cannot log in until one is set.' },
        { key: 'team_id', label: 'Team', type: 'select', nullable: true, options: teamOptions, unknown: (id) => 'unknown team ' + id },
        { key: 'max_load', label: 'Most open cases at once (routing; 0 takes none)', type: 'number', min: 0, placeholder: 'default 5' },
        { key: 'active', label: 'Active', type: 'checkbox', box: 'can log in and receive cases' },
      ]) },
    { key: 'teams', title: 'Teams', path: '/teams', update: 'PATCH', remove: true,
      columns: [['Name', (x) => x.name], ['Description', (x) => x.description]],
      template: { name: 'Billing', description: '' }, editable: (x) => pick(x, ['name', 'description']), form: nameAndDescription('cf-f-team') },
    { key: 'skills', title: 'Skills', path: '/skills', update: 'PATCH', remove: true,
      columns: [['Name', (x) => x.name], ['Description', (x) => x.description]],
      template: { name: 'german', description: '' }, editable: (x) => pick(x, ['name', 'description']), form: nameAndDescription('cf-f-skill') },
    { key: 'calendars', title: 'SLA calendars', path: '/sla/calendars', update: 'PUT', remove: true,
      columns: [['Name', (x) => x.name], ['Time zone', (x) => x.time_zone], ['Opening hours', (x) => (x.hours || []).map((h) => h.days.join(',') + ' ' + h.from + '–' + h.to).join('; ')]],
      template: { name: 'Support hours', time_zone: 'Europe/Paris', hours: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }], holidays: [], closures: [] },
      editable: (x) => omit(x, STAMPS), form: calendarForm },
    { key: 'policies', title: 'SLA policies', path: '/sla/policies', update: 'PUT', remove: true,
      columns: [['#', (x) => x.position], ['Name', (x) => x.name], ['Targets', (x) => (x.targets || []).map((t) => label(t.metric) + ' ' + t.minutes + 'm').join(', ')]],
      template: { name: 'Standard', calendar: null, targets: [{ metric: 'first_response', minutes: 240, business_hours: false }], warning: { percent: 75 }, ladder: [] },
      editable: (x) => omit(x, STAMPS), form: policyForm },
    { key: 'webhooks', title: 'Webhooks', path: '/webhooks', update: 'PATCH', remove: true,
      columns: [['URL', (x) => x.url, 'cf-wrap'], ['Events', (x) => x.events.join(', ')], ['Active', (x) => (x.active ? 'yes' : 'no')],
        ['Signing secret', (x) => x.secret, 'cf-wrap'], ['Previous secret signs until', (x) => fmtTime(x.previous_secret_expires_at) || '—']],
      template: { url: 'https://hooks.example.org/caseflow', events: ['case.created'], description: '' },
      editable: (x) => pick(x, ['url', 'events', 'description', 'active']),
      form: () => fieldsForm('cf-f-hook', [
        { key: 'url', label: 'URL that receives the POSTs', max: 2000 },
        { key: 'events', label: 'Events', type: 'checks', values: WEBHOOK_EVENTS, text: (v) => (v === '*' ? 'every event' : v) },
        { key: 'description', label: 'Description', max: 500 },
        { key: 'active', label: 'Active', type: 'checkbox', box: 'deliver new events' },
      ]),
      // A new secret; the current one keeps signing beside it for a day (docs/webhooks.md).
      actions: [{ label: 'Rotate secret', cls: 'cf-rotate-secret',
        confirm: (x) => 'Give "' + x.url + '" a new signing secret? The current one keeps signing deliveries for a day.',
        run: (x) => api('POST', '/webhooks/' + encodeURIComponent(x.id) + '/rotate-secret', {}) }] },
    { key: 'tokens', title: 'API tokens', path: '/api-tokens', remove: true, removeLabel: 'Revoke',
      columns: [['Name', (x) => x.name], ['Starts with', (x) => x.prefix], ['Scopes', (x) => x.scopes.join(', ')],
        ['Last used', (x) => fmtTime(x.last_used_at) || '—'], ['Revoked', (x) => fmtTime(x.revoked_at) || '—']],
      template: { name: 'CRM sync', scopes: ['read', 'write'] },
      form: () => fieldsForm('cf-f-token', [
        { key: 'name', label: 'Name', max: 100 },
        { key: 'scopes', label: 'Scopes', type: 'checks', values: ['read', 'write', 'admin'],
          text: (v) => ({ read: 'read', write: 'write (cases, messages, customers)', admin: 'admin (everything)' })[v] },
      ]) },
  ];

  async function loadAdmin(key) {
    const section = ADMIN.find((a) => a.key === key) || ADMIN[0];
    state.current = { kind: 'admin', key: section.key };
    const main = clear(document.getElementById('cf-main'));
    const nav = el('nav', { class: 'cf-views', 'aria-label': 'Admin sections' },
      el('ul', {}, ADMIN.map((a) => el('li', {}, el('a', { href: '#/admin/' + a.key, id: 'cf-admin-' + a.key, 'aria-current': a === section ? 'page' : 'false', text: a.title })))));
    const body = el('section', { class: 'cf-admin', id: 'cf-admin-body' });
    main.append(el('div', { class: 'cf-inbox' }, nav, body));
    if (section.key === 'macros') return loadMacros(body);
    return loadResource(section, body);
  }

  async function loadResource(section, body) {
    const current = state.current;
    let list;
    try {
      list = await api('GET', section.path);
    } catch (ex) {
      if (ex.status !== 401) toast(ex.message, 'error');
      return;
    }
    if (current !== state.current) return;
    const err = el('p', { class: 'cf-error', role: 'alert', id: 'cf-admin-error' });
    const notice = el('div', { id: 'cf-admin-notice' });
    const editor = el('textarea', { id: 'cf-admin-json', rows: 12, spellcheck: 'false', class: 'cf-json', 'aria-label': 'JSON' });
    // Sections with a structured form show it; the JSON the API takes stays one click away.
    const structured = section.form ? section.form() : null;
    let asJson = !structured;
    const modeButton = el('button', { type: 'button', class: 'cf-secondary', id: 'cf-admin-mode' });
    const showMode = () => {
      // The hidden side is not what is saved: its checks must not block the save.
      form.noValidate = asJson;
      editor.hidden = !asJson;
      if (structured) structured.node.hidden = asJson;
      modeButton.hidden = !structured;
      modeButton.textContent = asJson ? 'Edit in the form' : 'Edit as JSON';
    };
    // The editor's JSON, or undefined with the reason shown.
    const editorValue = () => {
      try {
        return JSON.parse(editor.value);
      } catch (ex) {
        err.textContent = 'Not valid JSON: ' + ex.message;
        return undefined;
      }
    };
    modeButton.addEventListener('click', () => {
      err.textContent = '';
      if (asJson) {
        const parsed = editorValue();
        if (parsed === undefined) return;
        try {
          structured.set(parsed);
        } catch (ex) {
          err.textContent = 'This JSON does not fit the form (' + ex.message + '); fix it here or save it as it is.';
          return;
        }
      } else {
        editor.value = JSON.stringify(structured.get(), null, 2);
      }
      asJson = !asJson;
      showMode();
    });
    let editing = null;
    const heading = el('h2', { id: 'cf-admin-form-title', text: 'New' });
    const setEditing = (item) => {
      editing = item;
      heading.textContent = item ? 'Change ' + (item.name || item.url || item.id) : 'New';
      const template = typeof section.template === 'function' ? section.template() : section.template;
      const value = item ? section.editable(item) : template;
      editor.value = JSON.stringify(value, null, 2);
      if (structured) structured.set(value);
      err.textContent = '';
    };
    const form = el('form', { class: 'cf-panel cf-admin-form', id: 'cf-admin-form' }, heading, err,
      structured ? structured.node : null, editor,
      el('div', { class: 'cf-composer-actions' },
        el('button', { type: 'button', class: 'cf-secondary', id: 'cf-admin-new', text: 'New', onclick: () => setEditing(null) }),
        modeButton,
        el('button', { type: 'submit', id: 'cf-admin-save', text: 'Save' })));
    if (!section.editable) form.querySelector('#cf-admin-new').hidden = true;
    showMode();
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      err.textContent = '';
      const value = asJson ? editorValue() : structured.get();
      if (value === undefined) return;
      try {
        const saved = editing
          ? await api(section.update, section.path + '/' + encodeURIComponent(editing.id), value)
          : await api('POST', section.path, value);
        if (saved && saved.token) {
          // A new API token: its only showing.
          toast('Token created.');
          await loadResource(section, clear(document.getElementById('cf-admin-body')));
          const n = document.getElementById('cf-admin-notice');
          if (n) n.append(el('p', { class: 'cf-notice', id: 'cf-new-token' }, 'Copy the token now; it is not shown again: ', el('code', { text: saved.token })));
          return;
        }
        toast('Saved.');
        if (section.key === 'agents' || section.key === 'teams' || section.key === 'skills') await loadDirectory();
        loadResource(section, clear(document.getElementById('cf-admin-body')));
      } catch (ex) {
        err.textContent = ex.message;
      }
    });
    const rows = list.items.map((item) => {
      const actions = el('td', {});
      if (section.editable) {
        actions.append(el('button', { type: 'button', class: 'cf-secondary', text: 'Edit', onclick: () => {
          setEditing(item);
          const first = [...form.querySelectorAll('input, select')].find((i) => !i.closest('[hidden]'));
          (asJson || !first ? editor : first).focus();
        } }), ' ');
      }
      for (const a of section.actions || []) {
        actions.append(el('button', { type: 'button', class: 'cf-secondary ' + a.cls, text: a.label, onclick: async () => {
          if (!window.confirm(a.confirm(item))) return;
          try {
            await a.run(item);
            toast('Done.');
            loadResource(section, clear(document.getElementById('cf-admin-body')));
          } catch (ex) {
            toast(ex.message, 'error');
          }
        } }), ' ');
      }
      if (section.remove && !item.revoked_at) {
        actions.append(el('button', { type: 'button', class: 'cf-secondary', text: section.removeLabel || 'Delete', onclick: async () => {
          if (!window.confirm((section.removeLabel || 'Delete') + ' "' + (item.name || item.url || item.id) + '"?')) return;
          try {
            await api('DELETE', section.path + '/' + encodeURIComponent(item.id));
            toast('Done.');
            loadResource(section, clear(document.getElementById('cf-admin-body')));
          } catch (ex) {
            toast(ex.message, 'error');
          }
        } }));
      }
      return el('tr', {}, section.columns.map(([, f, cls]) => el('td', { text: f(item), class: cls })), actions);
    });
    body.append(el('h1', { id: 'cf-admin-title', tabindex: '-1', text: section.title }), notice,
      el('table', { class: 'cf-cases', id: 'cf-admin-list' },
        el('thead', {}, el('tr', {}, section.columns.map(([h]) => el('th', { scope: 'col', text: h })), el('th', { scope: 'col', text: '' }))),
        el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: section.columns.length + 1, class: 'cf-muted', text: 'None yet.' })))),
      form);
    setEditing(null);
    document.getElementById('cf-admin-title').focus();
  }

  async function loadMacros(body) {
    const current = state.current;
    let macros;
    try {
      macros = await api('GET', '/macros');
    } catch (ex) {
      if (ex.status !== 401) toast(ex.message, 'error');
      return;
    }
    if (current !== state.current) return;
    state.macros = macros.items;
    const err = el('p', { class: 'cf-error', role: 'alert', id: 'cf-macro-error' });
    const name = el('input', { id: 'cf-macro-name', required: true, maxlength: 100 });
    const text = el('textarea', { id: 'cf-macro-body', rows: 6, required: true });
    let editing = null;
    const save = el('button', { type: 'submit', id: 'cf-macro-save', text: 'Add canned reply' });
    const form = el('form', { class: 'cf-panel cf-admin-form', id: 'cf-macro-form' },
      el('h2', { text: 'New or changed canned reply' }), err,
      el('div', { class: 'cf-field' }, el('label', { for: 'cf-macro-name', text: 'Name' }), name),
      el('div', { class: 'cf-field' }, el('label', { for: 'cf-macro-body', text: 'Text' }), text),
      el('p', { class: 'cf-muted', text: 'Placeholders: {{customer.name}}, {{customer.first_name}}, {{case.number}}, {{case.subject}}, {{agent.name}}, {{agent.first_name}}' }),
      save);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      err.textContent = '';
      try {
        if (editing) await api('PUT', '/macros/' + encodeURIComponent(editing.id), { name: name.value, body: text.value, version: editing.version });
        else await api('POST', '/macros', { name: name.value, body: text.value });
        toast('Saved.');
        loadAdmin('macros');
      } catch (ex) {
        err.textContent = ex.message;
      }
    });
    const rows = macros.items.map((m) => {
      const edit = el('button', { type: 'button', class: 'cf-secondary', text: 'Edit' });
      const del = el('button', { type: 'button', class: 'cf-secondary', text: 'Delete' });
      edit.addEventListener('click', () => {
        editing = m;
        name.value = m.name;
        text.value = m.body;
        save.textContent = 'Save "' + m.name + '"';
        name.focus();
      });
      del.addEventListener('click', async () => {
        if (!window.confirm('Delete the canned reply "' + m.name + '"?')) return;
        try {
          await api('DELETE', '/macros/' + encodeURIComponent(m.id));
          loadAdmin('macros');
        } catch (ex) {
          toast(ex.message, 'error');
        }
      });
      return el('tr', {}, el('td', { text: m.name }), el('td', { class: 'cf-macro-text', text: m.body }), el('td', {}, edit, ' ', del));
    });
    body.append(el('div', { class: 'cf-admin' },
      el('h1', { id: 'cf-admin-title', tabindex: '-1', text: 'Canned replies' }),
      el('table', { class: 'cf-cases', id: 'cf-macros' },
        el('thead', {}, el('tr', {}, ['Name', 'Text', ''].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 3, class: 'cf-muted', text: 'None yet.' })))),
      form));
    document.getElementById('cf-admin-title').focus();
  }

  // ---------- boot ----------

  window.addEventListener('hashchange', () => {
    const m = location.hash.match(/^#\/inbox\/(\w+)/);
    if (m) state.lastView = m[1];
    route();
  });

  document.addEventListener('DOMContentLoaded', async () => {
    document.getElementById('cf-logout').addEventListener('click', logout);
    document.getElementById('cf-presence').addEventListener('change', setPresence);
    document.getElementById('cf-alert-banner').addEventListener('click', (e) => {
      if (e.target.tagName === 'A') e.currentTarget.hidden = true;
    });
    try {
      const me = await api('GET', '/me');
      await start(me);
    } catch (ex) {
      if (ex.status !== 401) showLogin(ex.message);
    }
  });
})();
