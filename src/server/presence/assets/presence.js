// altsock presence pages: forms, live presence rows and chat boxes over the
// held /jchat pipe, which the hub library (/altsock.js) shares across tabs.
// Live data is always written with textContent, never as HTML. Requests are
// authenticated by the HttpOnly session cookie alone: the page never sees its
// session id. Chat boxes are kept in a Map by user name, so any name (even
// "constructor" or "__proto__") is just a key.
(function () {
  'use strict';
  if (window.__altsock) { return; }
  window.__altsock = true;

  var boot = {}, pipe = null, boxes = new Map();

  function $(sel, root) { return (root || document).querySelector(sel); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function readJson(id) {
    var s = document.getElementById(id);
    if (!s) { return null; }
    try { return JSON.parse(s.textContent); } catch (e) { return null; }
  }
  function say(text) { var s = $('#status'); if (s) { s.textContent = text; } }
  function send(method, url, data) {
    var opts = { method: method, headers: { 'Content-Type': 'application/json' }, credentials: 'same-origin' };
    if (data) { opts.body = JSON.stringify(data); }
    return fetch(url, opts).then(function (r) {
      return r.text().then(function (t) {
        var j = {}; try { j = JSON.parse(t); } catch (e) { j = {}; }
        return { status: r.status, body: j };
      });
    });
  }
  function formData(form) {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (i) { if (i.name) { out[i.name] = i.value; } });
    return out;
  }
  function onSubmit(id, fn) {
    var f = document.getElementById(id);
    if (f) { f.addEventListener('submit', function (ev) { ev.preventDefault(); fn(formData(f), f); }); }
  }

  // ---- presence rows -------------------------------------------------
  // The member list is shown a page at a time (GET /members: online first,
  // search); the pipe (/jchat?v=2) keeps `online`, the online set of what
  // this page shows, exact: `resync` pages replace it, `updates` batches
  // change it. A group's members are known by roster index (`i` in
  // GET /members; `updates` carry indices as gaps, `resync` the online bits
  // in base64), an address book's by name: `keyOf` gives either. Rows shown
  // are found through `rows`, by key. Indices hold for one roster `epoch`:
  // the page is fetched again when the pipe names another.
  var online = new Set(), synced = false, rows = new Map();
  var roster = { group: null, page: 1, pages: 1, q: '', per: 100, seq: 0, epoch: null };
  function keyOf(m) { return typeof m.i === 'number' ? m.i : m.name; }
  function rowFor(key) { return rows.get(key) || null; }
  function setOnline(key, on) {
    var tr = rowFor(key);
    if (!tr) { return; }
    tr.className = on ? 'online' : 'offline';
    $('.status', tr).textContent = on ? 'online' : 'offline';
    $('button.chat', tr).disabled = !on;
  }
  function setText(sel, text) { var e = $(sel); if (e) { e.textContent = String(text); } }
  function isOnline(m) { return synced ? online.has(keyOf(m)) : !!m.online; }
  function buildRow(m) {
    var on = isOnline(m), tr = el('tr', on ? 'online' : 'offline');
    tr.dataset.user = m.name;
    var name = el('td', 'name'), a = el('a', '', m.name);
    a.href = '/call/' + encodeURIComponent(m.name);
    name.appendChild(a); tr.appendChild(name);
    tr.appendChild(el('td', 'status', on ? 'online' : 'offline'));
    var c = el('td'), b = el('button', 'chat', 'Chat');
    b.dataset.user = m.name; b.disabled = !on; c.appendChild(b); tr.appendChild(c);
    var l = el('td'), lb = el('button', 'leave', 'Leave a message');
    lb.dataset.user = m.name; l.appendChild(lb); tr.appendChild(l);
    var t = el('td');
    if (m.phone) { var ta = el('a', 'call', 'call ' + m.phone); ta.href = 'tel:' + m.phone; t.appendChild(ta); }
    tr.appendChild(t);
    return tr;
  }
  function showMembers(members) {
    var body = $('#members tbody');
    if (!body) { return; }
    while (body.firstChild) { body.removeChild(body.firstChild); }
    rows = new Map();
    members.forEach(function (m) { var tr = buildRow(m); rows.set(keyOf(m), tr); body.appendChild(tr); });
  }
  // One page of a member list as GET /members (or POST /active) answers it.
  function showPage(list) {
    roster.page = list.page || 1; roster.pages = list.pages || 1;
    roster.epoch = list.roster || null;
    showMembers(list.members || []);
    setText('#member-count', list.total || 0);
    if (!synced) { setText('#online-count', list.online || 0); }
    setText('#page-info', 'page ' + roster.page + ' of ' + roster.pages +
      (list.search ? ' (' + list.matched + ' matching)' : ''));
    var prev = $('#prev'), next = $('#next');
    if (prev) { prev.disabled = roster.page <= 1; }
    if (next) { next.disabled = roster.page >= roster.pages; }
  }
  function fetchPage() {
    if (!roster.group) { return; }
    var mine = ++roster.seq;
    var q = '/members?group=' + encodeURIComponent(roster.group) + '&page=' + roster.page +
      '&per=' + roster.per + (roster.q ? '&q=' + encodeURIComponent(roster.q) : '');
    send('GET', q).then(function (r) {
      if (r.status === 200 && mine === roster.seq) { showPage(r.body); }
    });
  }
  function reloadMembers() { fetchPage(); }
  function wireRoster() {
    roster.group = boot.page === 'home' ? boot.active : (boot.group || null);
    roster.per = boot.per || 100;
    roster.pages = boot.pages || 1;
    var search = $('#search'), timer = null;
    if (search) {
      search.addEventListener('input', function () {
        clearTimeout(timer);
        timer = setTimeout(function () { roster.q = search.value.trim(); roster.page = 1; fetchPage(); }, 150);
      });
    }
    var prev = $('#prev'), next = $('#next');
    if (prev) { prev.addEventListener('click', function () { if (roster.page > 1) { roster.page--; fetchPage(); } }); }
    if (next) { next.addEventListener('click', function () { if (roster.page < roster.pages) { roster.page++; fetchPage(); } }); }
    Array.prototype.forEach.call(document.querySelectorAll('#members tr'), function (tr) {
      rows.set(tr.dataset.user, tr);
    });
  }
  function applyChange(key, on) {
    if (on) { online.add(key); } else { online.delete(key); }
    setOnline(key, on);
  }
  // Roster indices from their gaps (the first as is).
  function fromGaps(list, fn) {
    var at = 0;
    (list || []).forEach(function (g, k) { at = k === 0 ? g : at + g; fn(at); });
  }
  // The roster indices whose bit is set in a resync page.
  function fromBits(text, from, fn) {
    var bytes = atob(text || '');
    for (var b = 0; b < bytes.length; b++) {
      var v = bytes.charCodeAt(b);
      for (var k = 0; v && k < 8; k++, v >>= 1) { if (v & 1) { fn(from + b * 8 + k); } }
    }
  }
  // A group's pipe numbers its members with another roster than the rows
  // shown (the page came from the HTML, or the server restarted): the rows
  // are fetched again, with their indices (once per epoch).
  function adoptEpoch(d) {
    if (typeof d.roster === 'string' && d.roster !== roster.epoch) { roster.epoch = d.roster; fetchPage(); }
  }

  // ---- chat boxes ----------------------------------------------------
  function wireBox(box, other) {
    boxes.set(other, box);
    var form = $('form.reply', box);
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var input = $('input', form), text = input.value;
      if (!text) { return; }
      var data = { to: other, msg: text };
      send('POST', '/chat', data).then(function (r) {
        if (r.status === 202) { addLine(other, boot.me, text, 'mine'); input.value = ''; }
        else { addLine(other, '!', (r.body && r.body.error) || ('error ' + r.status), 'error'); }
      });
    });
  }
  function openBox(other) {
    if (boxes.has(other)) { return boxes.get(other); }
    var box = el('section', 'chatwin');
    box.dataset['with'] = other;
    box.appendChild(el('header', '', 'Chat with ' + other));
    box.appendChild(el('div', 'log'));
    var form = el('form', 'reply'), input = el('input');
    input.name = 'msg'; input.maxLength = 4096; input.autocomplete = 'off';
    input.placeholder = 'Message to ' + other;
    form.appendChild(input); form.appendChild(el('button', '', 'Send'));
    box.appendChild(form);
    ($('#chats') || document.body).appendChild(box);
    wireBox(box, other);
    return box;
  }
  function addLine(other, from, text, cls) {
    var box = openBox(other), line = el('p', 'line ' + (cls || ''));
    line.appendChild(el('b', 'from', from + ': '));
    line.appendChild(el('span', 'text', text));
    $('.log', box).appendChild(line);
  }

  // ---- the pipe ------------------------------------------------------
  var handlers = {
    hello: function () { var p = $('#pipe'); if (p) { p.textContent = 'connected'; } },
    update: function (d) { applyChange(d.user, d.online); },
    updates: function (d) {
      (d.online || []).forEach(function (u) { applyChange(u, true); });
      (d.offline || []).forEach(function (u) { applyChange(u, false); });
      fromGaps(d.on, function (i) { applyChange(i, true); });
      fromGaps(d.off, function (i) { applyChange(i, false); });
      if (typeof d.count === 'number') { setText('#online-count', d.count); }
      adoptEpoch(d);
    },
    resync: function (d) {
      if (d.page === 1) { online = new Set(); synced = false; }
      (d.online || []).forEach(function (u) { online.add(u); });
      if (typeof d.bits === 'string') { fromBits(d.bits, d.from || 0, function (i) { online.add(i); }); }
      if (d.page === d.pages) {
        synced = true;
        rows.forEach(function (tr, key) { setOnline(key, online.has(key)); });
        setText('#online-count', d.count);
        adoptEpoch(d);
      }
    },
    // Someone joined or left the list shown: counts at once; the page is
    // fetched again only when that member is (or would be) on it.
    refresh: function (d) {
      var key = typeof d.i === 'number' ? d.i : d.user;
      if (d.joined && d.online) { online.add(key); } else if (!d.joined) { online.delete(key); }
      if (typeof d.total === 'number') { setText('#member-count', d.total); }
      if (typeof d.count === 'number') { setText('#online-count', d.count); }
      if (d.joined ? roster.pages <= 1 : rows.has(key)) { fetchPage(); }
    },
    initChat: function (d) { openBox(d['with']); },
    chat: function (d) { addLine(d.from, d.from, d.msg, 'theirs'); },
    message: function (d) {
      var ul = $('#messages');
      if (ul) { var li = el('li'); li.textContent = d.from + ': ' + d.msg; ul.appendChild(li); }
      addLine(d.from, d.from, d.msg, 'stored');
    },
    replaced: function () {
      if (pipe) { pipe.close(); }
      var p = $('#pipe'); if (p) { p.textContent = 'replaced by another window'; }
    }
  };
  // The pipe is the hub library's shared stream (/altsock.js): one tab of
  // this browser holds /jchat for the others, reconnects with backoff and
  // resumes from the last seq, with long-poll where SSE fails.
  function openPipe() {
    if (pipe || !boot.me || !window.Altsock) { return; }
    var q = 'v=2' + (boot.watch ? '&watch=' + encodeURIComponent(boot.watch) : '');
    pipe = window.Altsock.pipe({
      name: boot.me + '@' + (boot.watch || 'home'),
      url: '/jchat' + (q ? '?' + q : ''),
      pollUrl: '/jchat?mode=poll' + (q ? '&' + q : ''),
      events: Object.keys(handlers)
    });
    window.presencePipe = pipe;
    // For tests and the console: what this tab's view holds.
    window.presenceView = function () { return { synced: synced, online: online.size, epoch: roster.epoch }; };
    Object.keys(handlers).forEach(function (kind) { pipe.on(kind, handlers[kind]); });
    pipe.on('state', function (s) {
      var p = $('#pipe');
      if (p && s === 'retry') { p.textContent = 'reconnecting'; }
    });
    askForView(1);
  }
  // A tab that follows another tab's pipe did not see the resync the pipe
  // opened with: it asks the server to send one down the pipe (POST
  // /resync), which every tab sharing it then takes, in order with the
  // other events. 409 (no pipe yet: the leader's is still opening and its
  // opening resync will reach this tab) is asked again, a few times.
  function askForView(attempt) {
    setTimeout(function () {
      if (synced || !pipe || pipe.isLeader() || attempt > 5) { return; }
      send('POST', '/resync', {}).then(function (r) {
        if (r.status !== 200) { askForView(attempt + 1); }
      });
    }, 500 * attempt);
  }

  // ---- page wiring ---------------------------------------------------
  function wireIndex() {
    onSubmit('register', function (d) {
      send('POST', '/register', d).then(function (r) {
        say(r.status === 201 ? 'Registered ' + d.username + '; now log in.' : 'Register failed: ' + (r.body.error || r.status));
      });
    });
    onSubmit('login', function (d) {
      send('POST', '/login', d).then(function (r) {
        if (r.status === 200) { location.href = '/home'; } else { say('Log in failed: ' + (r.body.error || r.status)); }
      });
    });
  }
  function wireHome() {
    var a = $('#active');
    if (a) {
      a.addEventListener('change', function () {
        // The new group's rows from here on: a page fetched for the old one
        // (still in flight) is not shown.
        var d = { group: a.value, per: roster.per }, was = roster.group, mine = ++roster.seq;
        roster.group = a.value;
        send('POST', '/active', d).then(function (r) {
          if (r.status !== 200) { if (mine === roster.seq) { roster.group = was; } return; }
          roster.q = ''; var s = $('#search'); if (s) { s.value = ''; }
          if (mine === roster.seq) { showPage(r.body); }
        });
      });
    }
    var lo = $('#logout');
    if (lo) { lo.addEventListener('click', function () { send('POST', '/logout', {}).then(function () { location.href = '/'; }); }); }
    function act(url, d, ok) {
      send('POST', url, d).then(function (r) {
        say(r.status < 300 ? ok : 'Failed: ' + (r.body.error || r.status));
        if (r.status < 300) { reloadMembers(); }
      });
    }
    onSubmit('add-contact', function (d) { act('/contacts', d, 'Contact added.'); });
    function reloadOnSuccess(url, d) {
      send('POST', url, d).then(function (r) {
        if (r.status < 300) { location.reload(); } else { say('Failed: ' + (r.body.error || r.status)); }
      });
    }
    onSubmit('create-group', function (d) { reloadOnSuccess('/groups', d); });
    onSubmit('join-group', function (d) { reloadOnSuccess('/groups/' + encodeURIComponent(d.name) + '/join', d); });
    onSubmit('leave-group', function (d) { reloadOnSuccess('/groups/' + encodeURIComponent(d.name) + '/leave', {}); });
    onSubmit('remove-contact', function (d) {
      send('DELETE', '/contacts/' + encodeURIComponent(d.name)).then(function (r) {
        say(r.status < 300 ? 'Contact removed.' : 'Failed: ' + (r.body.error || r.status));
        if (r.status < 300) { reloadMembers(); }
      });
    });
    var lm = $('#load-messages');
    if (lm) {
      lm.addEventListener('click', function () {
        send('GET', '/messages').then(function (r) {
          var ul = $('#messages'); if (!ul || r.status !== 200) { return; }
          while (ul.firstChild) { ul.removeChild(ul.firstChild); }
          r.body.messages.forEach(function (m) { ul.appendChild(el('li', '', m.from + ': ' + m.msg)); });
        });
      });
    }
  }
  function wireRows() {
    document.addEventListener('click', function (ev) {
      var b = ev.target;
      if (!b || b.tagName !== 'BUTTON' || !b.dataset.user) { return; }
      var other = b.dataset.user;
      if (b.classList.contains('chat')) {
        openBox(other);
        send('POST', '/initchat', { to: other });
      } else if (b.classList.contains('leave')) {
        var text = window.prompt('Message for ' + other);
        if (text) {
          var d = { to: other, msg: text };
          send('POST', '/messages', d).then(function (r) { say(r.status === 202 ? 'Message left.' : 'Failed: ' + (r.body.error || r.status)); });
        }
      }
    });
  }
  function wireInvites() {
    var inv = readJson('altsock-invite');
    if (inv && !boot.me) { boot.me = inv.me; }
    var wins = document.querySelectorAll('.chatwin.invite');
    Array.prototype.forEach.call(wins, function (w) { wireBox(w, w.dataset['with']); });
    if (wins.length) { openPipe(); }
  }
  function init() {
    boot = readJson('altsock-boot') || {};
    wireIndex();
    wireHome();
    wireRows();
    wireRoster();
    wireInvites();
    if (boot.page === 'home' || boot.page === 'call') { openPipe(); }
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', init); } else { init(); }
}());
