// The representatives' console (/assist/console?site=S): the live visitor
// list (page, title, cookies of interest, referrer, time on site, pages this
// visit, earlier visits, state), offers to accept, chats with typing notices
// and canned texts, transfer, invitations, push URL / pull / push card,
// presenter mode to all visitors or the ticked ones, and away. One held
// stream per console (GET /assist/stream, SSE; the browser resumes it with
// Last-Event-ID), whatever the number of visitors. Requests carry the
// HttpOnly session cookie and the page's own Origin; the page never sees its
// session id. The server's HTML is a shell: this script builds the page.
// Live data is written with textContent only; visitors, chats, offers and
// canned texts are kept in Maps, so any id or name is just a key.
(function () {
  'use strict';
  if (window.__altsockConsole) { return; }
  window.__altsockConsole = true;

  var SITE = new URLSearchParams(location.search).get('site') || '';
  var me = null;
  var visitors = new Map(), chats = new Map(), canned = new Map(), reps = new Map(), offers = new Map();
  var queue = [], selected = new Set();

  function $(sel, root) { return (root || document).querySelector(sel); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function button(cls, text, fn) {
    var b = el('button', cls, text);
    b.type = 'button';
    b.addEventListener('click', fn);
    return b;
  }
  function say(text) { var s = $('#status'); if (s) { s.textContent = text; } }
  function ago(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) { return s + ' s'; }
    if (s < 3600) { return Math.floor(s / 60) + ' min ' + (s % 60) + ' s'; }
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }
  function parse(text) { try { return JSON.parse(text); } catch (e) { return {}; } }

  // ---- requests ----------------------------------------------------------
  function request(method, url, data) {
    var opts = { method: method, credentials: 'same-origin', cache: 'no-store' };
    if (data) { opts.headers = { 'Content-Type': 'application/json' }; opts.body = JSON.stringify(data); }
    return fetch(url, opts).then(function (r) {
      return r.text().then(function (t) {
        var j = parse(t);
        if (r.status >= 300) { say((j.error || 'status ' + r.status) + ' (' + url.split('?')[0] + ')'); }
        return { status: r.status, body: j };
      });
    });
  }
  /** POST /assist/console/COMMAND with the site. */
  function command(name, data) {
    data = data || {};
    data.site = SITE;
    return request('POST', '/assist/console/' + name, data);
  }
  function cannedCall(name, data) {
    data.site = SITE;
    return request('POST', '/assist/canned/' + name, data);
  }

  // ---- the page: built here, so the server's HTML is only a shell --------
  function labelled(input, text) {
    var l = el('label', '', ' ' + text);
    l.insertBefore(input, l.firstChild);
    return l;
  }
  function withId(node, id) { node.id = id; return node; }
  function layout() {
    var main = $('main') || document.body.appendChild(el('main'));
    var head = el('header');
    var h1 = el('h1', '', 'Live assist: ');
    h1.appendChild(withId(el('span', '', SITE), 'site-name'));
    head.appendChild(h1);
    var who = el('p', '', 'Signed in as ');
    who.appendChild(withId(el('b', '', '\u2026'), 'me'));
    who.appendChild(document.createTextNode(' \u00b7 '));
    var away = withId(el('input'), 'away'); away.type = 'checkbox';
    who.appendChild(labelled(away, 'away'));
    who.appendChild(document.createTextNode(' \u00b7 stream: '));
    who.appendChild(withId(el('span', '', 'connecting'), 'pipe'));
    head.appendChild(who);
    head.appendChild(withId(el('p', 'status', ''), 'status'));
    main.appendChild(head);

    var list = el('section', 'list');
    var h2 = el('h2', '', 'Visitors (');
    h2.appendChild(withId(el('span', '', '0'), 'visitor-count'));
    h2.appendChild(document.createTextNode(') \u00b7 queue: '));
    h2.appendChild(withId(el('span', '', '0'), 'queue-length'));
    list.appendChild(h2);
    var table = withId(el('table'), 'visitors');
    var thead = el('thead'), tr = el('tr');
    var all = withId(el('input'), 'select-all'); all.type = 'checkbox'; all.title = 'tick all';
    var th0 = el('th'); th0.appendChild(all); tr.appendChild(th0);
    ['Visitor', 'State', 'Page', 'Cookies', 'Referrer', 'On site', 'Pages', 'Earlier visits', 'Skills', ''].forEach(function (t) {
      tr.appendChild(el('th', '', t));
    });
    thead.appendChild(tr); table.appendChild(thead); table.appendChild(el('tbody'));
    list.appendChild(table);
    main.appendChild(list);

    var pres = withId(el('section', 'presenter'), 'presenter');
    pres.appendChild(el('h2', '', 'Presenter'));
    var toAll = withId(el('input'), 'to-all'); toAll.type = 'checkbox';
    pres.appendChild(labelled(toAll, 'every visitor of the site (else: the ticked ones)'));
    var bar = el('p');
    bar.appendChild(withId(el('button', '', 'Push URL'), 'present-url'));
    bar.appendChild(withId(el('button', '', 'Push card'), 'present-card'));
    bar.appendChild(withId(el('button', '', 'Say'), 'present-chat'));
    pres.appendChild(bar);
    var inv = withId(el('input'), 'invite-text'); inv.placeholder = 'invitation text (optional)';
    pres.appendChild(inv);
    pres.appendChild(withId(el('p', 'pulled', ''), 'pulled'));
    main.appendChild(pres);

    main.appendChild(withId(el('section', 'chats'), 'chats'));

    var side = el('section', 'side');
    side.appendChild(el('h2', '', 'Representatives'));
    side.appendChild(withId(el('ul'), 'reps'));
    side.appendChild(el('h2', '', 'Canned texts'));
    var cf = withId(el('form'), 'canned-form');
    var hid = el('input'); hid.type = 'hidden'; hid.name = 'id'; cf.appendChild(hid);
    var ct = el('input'); ct.name = 'title'; ct.placeholder = 'title'; ct.required = true; cf.appendChild(ct);
    var cx = el('input'); cx.name = 'text'; cx.placeholder = 'text'; cx.required = true; cf.appendChild(cx);
    cf.appendChild(el('button', 'save', 'Save'));
    side.appendChild(cf);
    side.appendChild(withId(el('ul'), 'canned-list'));
    side.appendChild(el('h2', '', 'Push allowlist'));
    var af = withId(el('form'), 'allow-form');
    var ai = el('input'); ai.name = 'allow'; ai.placeholder = 'https://a.example, https://b.example'; af.appendChild(ai);
    af.appendChild(el('button', 'save', 'Save'));
    side.appendChild(af);
    main.appendChild(side);
  }

  // ---- the visitor list --------------------------------------------------
  function rowOf(id) {
    var found = null;
    document.querySelectorAll('#visitors tbody tr').forEach(function (tr) {
      if (tr.dataset.visitor === id) { found = tr; }
    });
    return found;
  }
  function cookieText(c) {
    if (!c) { return ''; }
    return Object.keys(c).map(function (k) { return k + '=' + c[k]; }).join('; ');
  }
  function stateText(v) {
    if (v.state === 'chatting') { return 'chatting with ' + (v.rep || '?'); }
    if (v.state === 'waiting') {
      var offer = offers.get(v.id);
      if (offer) { return 'waiting (offered to ' + offer.rep + ')'; }
      return v.position ? 'waiting (#' + v.position + ' in queue)' : 'waiting';
    }
    return v.state || 'browsing';
  }
  function earlierText(v) {
    var e = v.earlier || [];
    if (!e.length) { return v.visit > 1 ? String(v.visit - 1) : 'none'; }
    return e.length + ': ' + e.map(function (x) { return new Date(x.started).toLocaleString() + ' (' + x.pages + ' p.)'; }).join(', ');
  }
  function upsertVisitor(v) {
    if (!v || !v.id) { return; }
    var merged = Object.assign({}, visitors.get(v.id) || {}, v);
    visitors.set(v.id, merged);
    // A waiting visitor with a representative is offered to them.
    if (merged.state === 'waiting' && merged.rep) {
      var known = offers.get(v.id);
      offers.set(v.id, { rep: merged.rep, expires: known && known.rep === merged.rep ? known.expires : null });
    } else {
      offers.delete(v.id);
    }
    renderRow(merged);
    if (chats.has(v.id)) { chatHeader(v.id); showTranscript(v.id); }
  }
  function removeVisitor(id) {
    visitors.delete(id);
    selected.delete(id);
    offers.delete(id);
    var tr = rowOf(id);
    if (tr) { tr.remove(); }
    counts();
  }
  function renderRow(v) {
    var tr = rowOf(v.id), fresh = !tr;
    if (fresh) { tr = el('tr'); tr.dataset.visitor = v.id; }
    tr.textContent = '';
    tr.className = v.state || 'browsing';
    var pick = el('input');
    pick.type = 'checkbox'; pick.className = 'pick'; pick.checked = selected.has(v.id);
    pick.addEventListener('change', function () {
      if (pick.checked) { selected.add(v.id); } else { selected.delete(v.id); }
    });
    var td0 = el('td'); td0.appendChild(pick); tr.appendChild(td0);
    var idCell = el('td', 'id', v.id.slice(0, 8)); idCell.title = v.id; tr.appendChild(idCell);
    tr.appendChild(el('td', 'state', stateText(v)));
    var page = el('td', 'page');
    page.appendChild(el('div', 'title', v.title || '(no title)'));
    page.appendChild(el('div', 'url', v.url || ''));
    tr.appendChild(page);
    tr.appendChild(el('td', 'cookies', cookieText(v.cookies)));
    tr.appendChild(el('td', 'referrer', v.referrer || ''));
    var since = el('td', 'since', v.since ? ago(Date.now() - v.since) : '');
    since.dataset.since = v.since || '';
    tr.appendChild(since);
    tr.appendChild(el('td', 'pages', v.pages != null ? v.pages : ''));
    tr.appendChild(el('td', 'earlier', earlierText(v)));
    tr.appendChild(el('td', 'skills', (v.skills || []).join(', ')));
    tr.appendChild(actions(v));
    if (fresh) { $('#visitors tbody').appendChild(tr); }
    counts();
  }
  function actions(v) {
    var acts = el('td', 'acts'), offer = offers.get(v.id);
    if (offer && offer.rep === me) {
      acts.appendChild(button('accept', 'Accept', function () { accept(v.id); }));
      acts.appendChild(button('decline', 'Decline', function () { command('decline', { visitor: v.id }); }));
    }
    if (!v.state || v.state === 'browsing') {
      acts.appendChild(button('invite', 'Invite', function () {
        var text = $('#invite-text').value;
        command('invite', text ? { visitor: v.id, text: text } : { visitor: v.id });
      }));
    }
    acts.appendChild(button('open', 'Open', function () { openChat(v.id); }));
    return acts;
  }
  function counts() {
    $('#visitor-count').textContent = String(visitors.size);
    $('#queue-length').textContent = String(queue.length);
  }
  setInterval(function () {
    document.querySelectorAll('#visitors td.since').forEach(function (td) {
      var s = Number(td.dataset.since);
      if (s) { td.textContent = ago(Date.now() - s); }
    });
  }, 1000);

  // ---- chats -------------------------------------------------------------
  function openChat(id) {
    if (chats.has(id)) { return chats.get(id); }
    var box = el('section', 'chat');
    box.dataset.visitor = id;
    var head = el('header'), log = el('div', 'log'), typing = el('div', 'typing', ''), earlier = el('div', 'earlier', '');
    var form = el('form', 'reply'), input = el('input'), pick = el('select', 'canned');
    input.name = 'msg'; input.autocomplete = 'off'; input.placeholder = 'Reply';
    form.appendChild(input); form.appendChild(pick); form.appendChild(el('button', 'send', 'Send'));
    var tools = el('div', 'tools'), extra = el('div', 'extra');
    tools.appendChild(button('pull', 'Pull page', function () { command('pull', { visitor: id }); }));
    tools.appendChild(button('push-url', 'Push URL\u2026', function () {
      miniForm(extra, ['url'], 'Push', function (o) {
        command('push_url', { visitor: id, url: o.url }).then(function (r) {
          if (r.status !== 200) { say('Push of ' + o.url + ' refused: ' + (r.body.error || r.status)); }
        });
      });
    }));
    tools.appendChild(button('push-card', 'Push card\u2026', function () {
      miniForm(extra, ['title', 'text', 'image', 'link'], 'Push card', function (o) { command('card', { visitor: id, card: o }); });
    }));
    tools.appendChild(button('clear-card', 'Clear card', function () { command('card', { visitor: id, card: null }); }));
    tools.appendChild(button('transfer', 'Transfer\u2026', function () { transferForm(id, extra); }));
    tools.appendChild(button('end', 'End chat', function () { command('end', { visitor: id }); }));
    tools.appendChild(button('hide', 'Close', function () { box.remove(); chats.delete(id); }));
    [head, earlier, log, typing, form, tools, extra].forEach(function (c) { box.appendChild(c); });
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var text = input.value;
      if (!text.trim()) { return; }
      input.value = '';
      command('chat', { visitor: id, text: text });
    });
    var lastTyping = 0;
    input.addEventListener('input', function () {
      var now = Date.now();
      if (now - lastTyping < 2000) { return; }
      lastTyping = now;
      command('typing', { visitor: id, typing: true });
    });
    pick.addEventListener('change', function () {
      var c = canned.get(pick.value);
      if (c) { input.value = c.text; input.focus(); }
      pick.value = '';
    });
    var chat = { box: box, log: log, typing: typing, head: head, canned: pick, earlier: earlier, timer: null, shown: new Set() };
    chats.set(id, chat);
    $('#chats').appendChild(box);
    fillCanned(pick);
    chatHeader(id);
    showTranscript(id);
    loadHistory(id, chat);
    return chat;
  }
  /** The lines of the visitor's current chat the server keeps (lines sent
   *  while waiting, or before this console opened), each shown once. */
  function showTranscript(id) {
    var v = visitors.get(id);
    (v && v.transcript || []).forEach(function (line) { chatLine(id, line); });
  }
  function chatLine(id, d) {
    var chat = openChat(id);
    if (d.id != null) {
      if (chat.shown.has(d.id)) { return; }
      chat.shown.add(d.id);
    }
    addLine(id, d.from === 'rep' ? 'rep' : 'visitor', d.name || (d.from === 'visitor' ? 'visitor' : ''), d.text);
  }
  function chatHeader(id) {
    var chat = chats.get(id), v = visitors.get(id) || { id: id };
    if (!chat) { return; }
    chat.head.textContent = '';
    chat.head.appendChild(el('b', '', 'Visitor ' + id.slice(0, 8)));
    chat.head.appendChild(el('span', 'where', ' ' + (v.title || '') + ' \u2014 ' + (v.url || '')));
    chat.head.appendChild(el('span', 'vstate', ' [' + stateText(v) + ']'));
  }
  function addLine(id, kind, name, text) {
    var chat = openChat(id);
    var row = el('div', 'line ' + kind);
    if (name) { row.appendChild(el('span', 'who', name + ':')); }
    row.appendChild(el('span', 'text', text));
    chat.log.appendChild(row);
    chat.log.scrollTop = chat.log.scrollHeight;
    if (kind === 'visitor') { chat.typing.textContent = ''; }
  }
  function note(id, text) { addLine(id, 'note', null, text); }
  /** The visitor's log: earlier chat lines of this visit and what happened. */
  function loadHistory(id, chat) {
    request('GET', '/assist/log?site=' + encodeURIComponent(SITE) + '&visitor=' + encodeURIComponent(id)).then(function (r) {
      var events = (r.body && r.body.events) || [];
      var opens = events.filter(function (e) { return e.kind === 'open'; }).length;
      chat.earlier.textContent = events.length ? opens + ' page view(s) and ' + events.length + ' event(s) on record' : '';
    });
  }
  function accept(id) {
    command('accept', { visitor: id }).then(function (r) {
      if (r.status === 200) { offers.delete(id); openChat(id); }
    });
  }
  function miniForm(where, fields, label, fn) {
    where.textContent = '';
    var f = el('form', 'mini');
    fields.forEach(function (name) {
      var i = el('input'); i.name = name; i.placeholder = name; f.appendChild(i);
    });
    f.appendChild(el('button', 'go', label));
    f.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var out = {};
      fields.forEach(function (name) { out[name] = f.elements[name].value; });
      f.remove();
      fn(out);
    });
    where.appendChild(f);
    return f;
  }
  function transferForm(id, where) {
    where.textContent = '';
    var f = el('form', 'mini'), pick = el('select');
    pick.name = 'to';
    reps.forEach(function (r, name) {
      if (name === me || !r.present) { return; }
      var o = el('option', '', name + (r.available ? '' : ' (busy or away)'));
      o.value = name; pick.appendChild(o);
    });
    f.appendChild(pick);
    f.appendChild(el('button', 'go', 'Transfer'));
    f.addEventListener('submit', function (ev) {
      ev.preventDefault();
      f.remove();
      command('transfer', { visitor: id, to: pick.value });
    });
    where.appendChild(f);
  }

  // ---- canned texts and the allowlist -------------------------------------
  function setCanned(list) {
    canned.clear();
    (list || []).forEach(function (c) { canned.set(String(c.id), c); });
    var ul = $('#canned-list');
    ul.textContent = '';
    canned.forEach(function (c, id) {
      var li = el('li');
      li.dataset.id = id;
      li.appendChild(el('b', 'title', c.title));
      li.appendChild(el('span', 'text', ' ' + c.text + ' '));
      li.appendChild(button('edit', 'Edit', function () {
        var f = $('#canned-form');
        f.elements.id.value = id; f.elements.title.value = c.title; f.elements.text.value = c.text;
      }));
      li.appendChild(button('delete', 'Delete', function () { cannedCall('delete', { canned: c.id }); }));
      ul.appendChild(li);
    });
    chats.forEach(function (chat) { fillCanned(chat.canned); });
  }
  function fillCanned(select) {
    select.textContent = '';
    var none = el('option', '', 'Canned text\u2026'); none.value = ''; select.appendChild(none);
    canned.forEach(function (c, id) {
      var o = el('option', '', c.title); o.value = id; select.appendChild(o);
    });
  }
  function setAllow(list) { $('#allow-form').elements.allow.value = (list || []).join(', '); }

  // ---- events from the stream ----------------------------------------------
  function setReps(list) { (list || []).forEach(function (r) { reps.set(r.name, r); }); showReps(); }
  function showReps() {
    var ul = $('#reps');
    ul.textContent = '';
    reps.forEach(function (r, name) {
      if (!r.present) { return; }
      var state = r.away ? 'away' : r.available ? 'available' : 'busy';
      var li = el('li', state, name + ': ' + state + ', ' + (r.chats || 0) + ' chat(s)');
      li.dataset.rep = name;
      ul.appendChild(li);
    });
    var mine = reps.get(me);
    if (mine) { $('#away').checked = !!mine.away; }
  }
  function setQueue(ids) {
    queue = ids || [];
    counts();
  }
  var handlers = {
    snapshot: function (d) {
      me = d.me;
      $('#me').textContent = me;
      visitors.clear(); offers.clear(); reps.clear();
      $('#visitors tbody').textContent = '';
      setQueue(d.queue);
      setReps(d.reps);
      (d.visitors || []).forEach(upsertVisitor);
      setCanned(d.canned);
      setAllow(d.allow);
    },
    visitor: function (d) { upsertVisitor(d.visitor); },
    visitor_left: function (d) { removeVisitor(d.visitor); },
    queue: function (d) { setQueue(d.queue); },
    rep: function (d) { setReps([d.rep]); },
    offer: function (d) {
      offers.set(d.visitor, { rep: d.rep, expires: d.expires });
      var v = visitors.get(d.visitor);
      if (v) { renderRow(v); }
      if (d.rep === me) { note(d.visitor, 'Offered to you: accept to answer.'); }
    },
    chat: function (d) { chatLine(d.visitor, d); },
    typing: function (d) {
      var chat = chats.get(d.visitor);
      if (!chat || d.from !== 'visitor') { return; }
      clearTimeout(chat.timer);
      chat.typing.textContent = d.typing ? 'visitor is typing\u2026' : '';
      if (d.typing) { chat.timer = setTimeout(function () { chat.typing.textContent = ''; }, 6000); }
    },
    invite: function (d) { if (chats.has(d.visitor)) { note(d.visitor, d.rep + ' invited the visitor.'); } },
    push_url: function (d) { if (chats.has(d.visitor)) { note(d.visitor, d.rep + ' pushed ' + d.url); } },
    push_refused: function (d) { say('Push of ' + d.url + ' refused: ' + d.reason); },
    consent: function (d) { note(d.visitor, 'The visitor ' + (d.given ? 'agreed to' : 'refused') + ' the pushed page.'); },
    pull: function () {},
    pulled: function (d) {
      note(d.visitor, 'The visitor is on ' + (d.title || '') + ' \u2014 ' + d.url);
      upsertVisitor({ id: d.visitor, url: d.url, title: d.title });
      showPulled(d);
    },
    card: function (d) { if (chats.has(d.visitor)) { note(d.visitor, d.rep + (d.card ? ' pushed a card: ' + (d.card.title || '') : ' cleared the card')); } },
    present: function (d) {
      var refused = (d.refused || []).length;
      say(d.rep + ' presented a ' + d.kind + ' to ' + d.sent + ' visitor(s)' + (refused ? ' (' + refused + ' refused)' : '') + '.');
    },
    canned: function (d) { setCanned(d.canned); },
    allow: function (d) { setAllow(d.allow); }
  };
  /** A pulled page: a link, and a tab opened on it for an http(s) URL. */
  function showPulled(d) {
    var p = $('#pulled');
    p.textContent = '';
    p.appendChild(el('span', '', 'Pulled from ' + d.visitor.slice(0, 8) + ': ' + (d.title || '') + ' '));
    if (!/^https?:/i.test(d.url || '')) { return; }
    var a = el('a', 'pulled-url', d.url);
    a.href = d.url; a.target = '_blank'; a.rel = 'noopener noreferrer';
    p.appendChild(a);
    window.open(d.url, '_blank', 'noopener');
  }
  function take(text) {
    var d = parse(text), fn = handlers[d.type];
    if (fn) { fn(d); }
  }
  function connect() {
    var url = '/assist/stream?site=' + encodeURIComponent(SITE);
    if (window.EventSource) {
      var es = new EventSource(url + '&framing=sse');
      es.onopen = function () { $('#pipe').textContent = 'connected'; };
      es.onmessage = function (e) { take(e.data); };
      es.onerror = function () { $('#pipe').textContent = es.readyState === 2 ? 'closed (reload)' : 'reconnecting'; };
      return;
    }
    var since = null;
    (function poll() {
      fetch(url + '&framing=longpoll' + (since != null ? '&since=' + since : ''), { credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) { if (r.status === 204) { return ''; } if (r.status !== 200) { throw new Error(r.status); } return r.text(); })
        .then(function (t) {
          $('#pipe').textContent = 'connected';
          t.split('\n').forEach(function (line) {
            if (!line) { return; }
            var d = parse(line);
            if (typeof d.id === 'number') { since = d.id; }
            take(line);
          });
          poll();
        })
        .catch(function () { $('#pipe').textContent = 'reconnecting'; setTimeout(poll, 2000); });
    })();
  }

  // ---- the page's own controls ---------------------------------------------
  function wire() {
    $('#away').addEventListener('change', function () { command('away', { away: $('#away').checked }); });
    $('#select-all').addEventListener('change', function () {
      var on = $('#select-all').checked;
      visitors.forEach(function (v, id) { if (on) { selected.add(id); } else { selected.delete(id); } });
      document.querySelectorAll('#visitors .pick').forEach(function (p) { p.checked = on; });
    });
    var bar = $('#presenter');
    function present(what) {
      var body = $('#to-all').checked ? { all: true } : { visitors: Array.from(selected) };
      Object.keys(what).forEach(function (k) { body[k] = what[k]; });
      return command('present', body).then(function (r) {
        if (r.status === 200) {
          say('Presented to ' + (r.body.sent || []).length + ' visitor(s)' +
            ((r.body.refused || []).length ? ', refused for ' + r.body.refused.length : '') + '.');
        }
      });
    }
    var slot = el('div', 'slot');
    bar.appendChild(slot);
    $('#present-url').addEventListener('click', function () {
      miniForm(slot, ['url'], 'Push to visitors', function (o) { present({ url: o.url }); });
    });
    $('#present-card').addEventListener('click', function () {
      miniForm(slot, ['title', 'text', 'image', 'link'], 'Push card to visitors', function (o) { present({ card: o }); });
    });
    $('#present-chat').addEventListener('click', function () {
      miniForm(slot, ['text'], 'Say to visitors', function (o) { present({ text: o.text }); });
    });
    var cf = $('#canned-form');
    cf.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var id = cf.elements.id.value, body = { title: cf.elements.title.value, text: cf.elements.text.value };
      if (id) { body.canned = canned.has(id) ? canned.get(id).id : id; }
      cannedCall(id ? 'update' : 'create', body).then(function (r) {
        if (r.status < 300) { cf.reset(); cf.elements.id.value = ''; }
      });
    });
    var af = $('#allow-form');
    af.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var list = af.elements.allow.value.split(',').map(function (s) { return s.trim(); }).filter(Boolean);
      command('allow', { allow: list });
    });
  }

  layout();
  wire();
  connect();
})();
