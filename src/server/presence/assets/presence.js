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
  function rowFor(name) {
    var rows = document.querySelectorAll('#members tr');
    for (var i = 0; i < rows.length; i++) { if (rows[i].dataset.user === name) { return rows[i]; } }
    return null;
  }
  function setOnline(name, online) {
    var tr = rowFor(name);
    if (!tr) { return; }
    tr.className = online ? 'online' : 'offline';
    $('.status', tr).textContent = online ? 'online' : 'offline';
    $('button.chat', tr).disabled = !online;
  }
  function buildRow(m) {
    var tr = el('tr', m.online ? 'online' : 'offline');
    tr.dataset.user = m.name;
    var name = el('td', 'name'), a = el('a', '', m.name);
    a.href = '/call/' + encodeURIComponent(m.name);
    name.appendChild(a); tr.appendChild(name);
    tr.appendChild(el('td', 'status', m.online ? 'online' : 'offline'));
    var c = el('td'), b = el('button', 'chat', 'Chat');
    b.dataset.user = m.name; b.disabled = !m.online; c.appendChild(b); tr.appendChild(c);
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
    members.forEach(function (m) { body.appendChild(buildRow(m)); });
  }
  function reloadMembers() {
    if (boot.page !== 'home') { location.reload(); return; }
    send('GET', '/groups').then(function (r) {
      if (r.status !== 200) { return; }
      var active = r.body.active, members = r.body.contacts;
      (r.body.groups || []).forEach(function (g) { if (g.name === active) { members = g.members; } });
      showMembers(members || []);
    });
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
    update: function (d) { setOnline(d.user, d.online); },
    refresh: function () { reloadMembers(); },
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
    var q = boot.watch ? 'watch=' + encodeURIComponent(boot.watch) : '';
    pipe = window.Altsock.pipe({
      name: boot.me + '@' + (boot.watch || 'home'),
      url: '/jchat' + (q ? '?' + q : ''),
      pollUrl: '/jchat?mode=poll' + (q ? '&' + q : ''),
      events: Object.keys(handlers)
    });
    window.presencePipe = pipe;
    Object.keys(handlers).forEach(function (kind) { pipe.on(kind, handlers[kind]); });
    pipe.on('state', function (s) {
      var p = $('#pipe');
      if (p && s === 'retry') { p.textContent = 'reconnecting'; }
    });
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
        var d = { group: a.value };
        send('POST', '/active', d).then(function (r) { if (r.status === 200) { showMembers(r.body.members); } });
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
    wireInvites();
    if (boot.page === 'home' || boot.page === 'call') { openPipe(); }
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', init); } else { init(); }
}());
