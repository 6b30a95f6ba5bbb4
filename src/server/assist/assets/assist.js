/*! assist.js: the live-assist widget (seeds 000 and 001). A site owner adds
 * one tag to any page on an allowed origin (--assist-origin):
 *
 *   <script src="https://ALTSOCK/assist.js" data-site="support"
 *           data-cookies="plan,cart" data-skills="billing"
 *           data-open="interaction" async></script>
 *
 * The server mints the visitor's id (128 random bits from the OS) and its
 * secret; the widget keeps both in a first-party cookie of the page's origin
 * (altsock_assist=ID.SECRET) and proves itself with the secret on every
 * request. It receives through /altsock.js (the hub's one connection per
 * browser, shared by every tab and every service; the events come to the
 * hub mailbox under the app "assist") and sends with fetch (text/plain
 * bodies, so no preflight). On open it sends the page's URL, title, referrer,
 * the cookies of interest and the skills; on each page change inside the
 * page (history API, hash change) or when another tab comes to the front it
 * reports the page again. See docs/assist.md for the endpoints. Its panel lives in a shadow root: a chat, a "talk to
 * someone" button, the queue position, the card a representative pushes,
 * invitations. It asks for consent once per browser session before it
 * follows a pushed URL. Every text it shows is set with textContent, never
 * parsed as HTML; pushed links and images must be http(s).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__altsockAssist) return;
  window.__altsockAssist = true;

  var BASE = script.src.replace(/\/assist\.js(\?.*)?$/, "");
  var ds = script.dataset;
  var SITE = ds.site || "";
  var COOKIES = list(ds.cookies);
  var SKILLS = list(ds.skills);
  var COOKIE = "altsock_assist";
  var CONSENT = "altsock_assist_consent";
  var MAX_LINE = 2000;
  var YEAR = 365 * 24 * 3600;

  function list(text) {
    return (text || "").split(",").map(function (s) { return s.trim(); })
      .filter(function (s) { return s.length > 0; });
  }

  /* ---- the visitor's id and secret, and the cookies of interest -------- */

  function readCookie(name) {
    var found = null;
    document.cookie.split(";").forEach(function (part) {
      var eq = part.indexOf("=");
      if (eq < 0) return;
      if (part.slice(0, eq).trim() !== name) return;
      try { found = decodeURIComponent(part.slice(eq + 1).trim()); } catch (e) { found = null; }
    });
    return found;
  }

  function writeCookie(name, value, maxAge) {
    var secure = location.protocol === "https:" ? "; Secure" : "";
    var age = maxAge != null ? "; Max-Age=" + maxAge : "";
    document.cookie = name + "=" + encodeURIComponent(value) + "; Path=/; SameSite=Lax" + age + secure;
  }

  /* The visitor's {id, secret} from the cookie; null on a first visit
   * (the server mints them on open). */
  function identity() {
    var v = readCookie(COOKIE), m = v && /^([0-9a-f]{32})\.([A-Za-z0-9_-]{16,128})$/.exec(v);
    return m ? { id: m[1], secret: m[2] } : null;
  }

  function remember(id, secret) {
    me = { id: id, secret: secret };
    writeCookie(COOKIE, id + "." + secret, YEAR);
  }

  function forget() {
    me = null;
    writeCookie(COOKIE, "", 0);
  }

  function cookiesOfInterest() {
    var out = {};
    COOKIES.forEach(function (name) {
      var v = readCookie(name);
      if (v != null) out[name] = v;
    });
    return out;
  }

  /* ---- talking to the server -------------------------------------------- */

  var me = identity(), client = null, opened = false, hub = null, visitKnown = false;
  var resolveVisit, visitReady = new Promise(function (resolve) { resolveVisit = resolve; });

  /* One visitor request; resolves to {status, body}. Any but open waits
   * until this page's open has been answered (the visitor's id and secret,
   * fresh on a first visit). */
  function post(path, body) {
    if (path !== "/assist/open" && !visitKnown) {
      return visitReady.then(function () { return post(path, body); });
    }
    body.site = SITE;
    if (me) {
      body.visitor = me.id;
      body.secret = me.secret;
    }
    return fetch(BASE + path, {
      method: "POST",
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      keepalive: true
    }).then(function (r) {
      return r.text().then(function (t) {
        var j = {};
        try { j = JSON.parse(t); } catch (e) { j = {}; }
        return { status: r.status, body: j };
      });
    });
  }

  function pageInfo() {
    return { url: location.href, title: document.title, referrer: document.referrer };
  }

  function loadHubLibrary() {
    if (window.Altsock) return Promise.resolve(window.Altsock);
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = BASE + "/altsock.js";
      s.async = true;
      s.onload = function () { resolve(window.Altsock); };
      s.onerror = function () { reject(new Error("altsock.js did not load")); };
      document.head.appendChild(s);
    });
  }

  /* Opens the channel: the hub connection (shared by all tabs), then the
   * visit with this page, the cookies of interest and the skills. */
  function open() {
    if (opened) return;
    opened = true;
    loadHubLibrary().then(function (Altsock) {
      hub = Altsock.connect({ url: BASE });
      hub.app("assist", onEvent);
      hub.on("client", function (id) { client = id; sendOpen(false); });
      hub.on("state", function (s) {
        if (s === "retry") ui.setLink(false);
        else if (s === "open" && visitKnown) ui.setLink(true);
      });
      return hub.ready;
    }).then(function (id) {
      client = id;
      sendOpen(false);
    }).catch(function (e) { ui.note("Live help is unavailable (" + e.message + ")."); });
  }

  /* POST /assist/open: this page, the cookies of interest, the hub client.
   * A refused secret (401 naming the visitor) means a stale cookie: forget
   * it and open once more as a new visitor. */
  function sendOpen(retried) {
    var body = pageInfo();
    body.client = client;
    body.key = hub.key;
    body.cookies = cookiesOfInterest();
    body.skills = SKILLS;
    post("/assist/open", body).then(function (r) {
      if (r.status === 401 && me && !retried) {
        forget();
        return sendOpen(true);
      }
      if (r.status !== 200) return ui.note("Live help is unavailable: " + (r.body.error || r.status));
      remember(r.body.visitor, r.body.secret);
      visitKnown = true;
      resolveVisit();
      ui.setLink(true);
      ui.state(r.body);
      if (r.body.card) ui.card(r.body.card, true);
      (r.body.transcript || []).forEach(chatLine);
    });
  }

  /* A page change without a load (pushState, replaceState, back, hash). */
  var lastUrl = location.href;
  function pageChanged() {
    if (!opened || location.href === lastUrl || !me) return;
    lastUrl = location.href;
    post("/assist/page", pageInfo());
  }
  /* Another tab of this visitor came to the front: its page is current. */
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible" || !opened || !me) return;
    lastUrl = location.href;
    post("/assist/page", pageInfo());
  });
  window.addEventListener("pagehide", function () {
    if (!opened || !me || !navigator.sendBeacon) return;
    navigator.sendBeacon(BASE + "/assist/close", JSON.stringify({ site: SITE, visitor: me.id, secret: me.secret }));
  });
  ["pushState", "replaceState"].forEach(function (name) {
    var orig = history[name];
    history[name] = function () {
      var out = orig.apply(this, arguments);
      setTimeout(pageChanged, 0);
      return out;
    };
  });
  window.addEventListener("popstate", pageChanged);
  window.addEventListener("hashchange", pageChanged);

  /* ---- what the server pushes -------------------------------------------- */

  /* The hub replays a mailbox's buffer to a new page (its stream starts
   * without `since`). What pages of this origin had already been handed
   * when this one loaded (the highest hub message id, kept in localStorage
   * per hub client) is not handled again here, or a replayed push_url would
   * navigate in a loop; messages after it are handled by every tab. */
  var SEEN = "altsock_assist_seen";
  var seenAtLoad = readSeen();
  function readSeen() {
    try { return JSON.parse(localStorage.getItem(SEEN) || "null"); } catch (e) { return null; }
  }
  function seenBefore(msg) {
    var id = hub && hub.clientId();
    if (!msg || typeof msg.id !== "number" || !id) return false;
    if (seenAtLoad && seenAtLoad.client === id && msg.id <= seenAtLoad.id) return true;
    var now = readSeen();
    if (!now || now.client !== id || now.id < msg.id) {
      try { localStorage.setItem(SEEN, JSON.stringify({ client: id, id: msg.id })); } catch (e) { /* private mode */ }
    }
    return false;
  }

  function onEvent(data, msg) {
    if (!data || typeof data !== "object" || seenBefore(msg)) return;
    switch (data.type) {
      case "chat": return chatLine(data);
      case "typing": return ui.typing(data.name, data.typing !== false);
      case "state": return ui.state(data);
      case "queue": return ui.state({ state: "waiting", position: data.position });
      case "invite": return ui.invite(data.rep, data.text);
      case "push_url": return pushedUrl(data);
      case "card": return ui.card(data.card, false);
      case "pull": return answerPull(data);
      case "ended": return ui.ended(data.by);
    }
  }

  /* The representative asked where the visitor is: only the tab in front
   * (or, with none in front, the hub's leader tab) answers. */
  function chatLine(d) {
    ui.line(d.from === "visitor" ? "me" : "rep", d.from === "visitor" ? "You" : d.name, d.text, d.id);
  }

  function answerPull(data) {
    if (!inFront()) return;
    var body = pageInfo();
    body.pull = data.id;
    post("/assist/pulled", body);
  }

  function inFront() {
    if (document.visibilityState === "visible") return true;
    return !!(hub && hub.isLeader());
  }

  function httpUrl(text) {
    try {
      var u = new URL(String(text), location.href);
      return u.protocol === "http:" || u.protocol === "https:" ? u : null;
    } catch (e) {
      return null;
    }
  }

  /* A pushed URL: followed once the visitor has said yes this session. */
  /* A pushed URL is followed by the tab in front, once the visitor has
   * said yes in this browser session (a session cookie); asked once, the
   * answer is told to the server either way. */
  function pushedUrl(data) {
    var u = httpUrl(data.url);
    if (!u || !inFront()) return;
    if (readCookie(CONSENT) === "yes") return go(u);
    ui.consent(u.href, data.rep, function (yes) {
      if (yes) writeCookie(CONSENT, "yes", null);
      post("/assist/consent", { push: data.id, given: yes }).then(function () {
        if (yes) go(u);
      });
    });
  }

  function go(u) {
    if (u.href === location.href) return;
    location.assign(u.href);
  }

  /* ---- the panel, in a shadow root ---------------------------------------- */

  var STYLE = [
    ":host { all: initial; }",
    ".wrap { position: fixed; right: 16px; bottom: 16px; z-index: 2147483000; font: 14px/1.4 system-ui, sans-serif; color: #222; }",
    ".toggle { background: #0a58ca; color: #fff; border: 0; border-radius: 20px; padding: 8px 16px; cursor: pointer; }",
    ".panel { width: 300px; background: #fff; border: 1px solid #999; border-radius: 6px; box-shadow: 0 4px 16px rgba(0,0,0,.25); margin-bottom: 8px; display: flex; flex-direction: column; }",
    ".panel[hidden] { display: none; }",
    "header { background: #0a58ca; color: #fff; padding: 6px 10px; border-radius: 6px 6px 0 0; display: flex; justify-content: space-between; }",
    "header button { background: none; border: 0; color: #fff; cursor: pointer; font-size: 16px; }",
    ".status { padding: 4px 10px; color: #555; font-size: 12px; }",
    ".card { margin: 6px 10px; border: 1px solid #ccc; border-radius: 4px; padding: 6px; }",
    ".card[hidden], .ask[hidden], .consent[hidden], .invite[hidden] { display: none; }",
    ".card img { max-width: 100%; display: block; }",
    ".card h3 { margin: 0 0 4px; font-size: 15px; }",
    ".card p { margin: 0 0 4px; white-space: pre-wrap; }",
    ".log { height: 180px; overflow-y: auto; padding: 4px 10px; border-top: 1px solid #eee; }",
    ".line { margin: 2px 0; white-space: pre-wrap; overflow-wrap: anywhere; }",
    ".line.me { text-align: right; color: #0a58ca; }",
    ".line.note { color: #777; font-style: italic; }",
    ".who { font-weight: bold; margin-right: 4px; }",
    ".typing { height: 16px; padding: 0 10px; color: #777; font-size: 12px; }",
    ".consent, .invite { margin: 6px 10px; padding: 6px; background: #fff6d6; border: 1px solid #e0c060; border-radius: 4px; }",
    ".consent .url { overflow-wrap: anywhere; font-family: monospace; }",
    "form { display: flex; padding: 6px 10px; gap: 4px; border-top: 1px solid #eee; }",
    "input { flex: 1; padding: 4px; font: inherit; }",
    "button { font: inherit; }",
    ".ask { margin: 6px 10px; }"
  ].join("\n");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }

  /* A constructed style sheet where the browser has them: a host page's
   * strict CSP (style-src without 'unsafe-inline') blocks a <style> element
   * even in a shadow root, but not the CSSOM. */
  function styleRoot(root) {
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      var style = el("style");
      style.textContent = STYLE;
      root.appendChild(style);
    }
  }

  var ui = (function () {
    var host = el("div"), root = host.attachShadow({ mode: "open" });
    host.id = "altsock-assist";
    var wrap = el("div", "wrap"), panel = el("section", "panel");
    panel.hidden = true;
    var head = el("header"), titleEl = el("span", "title", "Live help"), close = el("button", "close", "\u00d7");
    close.title = "Close";
    head.appendChild(titleEl);
    head.appendChild(close);
    var status = el("div", "status", "");
    var invite = el("div", "invite"), inviteText = el("p", "text");
    var inviteYes = el("button", "accept", "Chat now"), inviteNo = el("button", "decline", "No thanks");
    invite.hidden = true;
    [inviteText, inviteYes, inviteNo].forEach(function (c) { invite.appendChild(c); });
    var card = el("div", "card");
    card.hidden = true;
    var consent = el("div", "consent"), consentText = el("p", "text"), consentUrl = el("p", "url");
    var consentYes = el("button", "yes", "Go there"), consentNo = el("button", "no", "Stay here");
    consent.hidden = true;
    [consentText, consentUrl, consentYes, consentNo].forEach(function (c) { consent.appendChild(c); });
    var ask = el("button", "ask", "Talk to someone"), end = el("button", "end", "End chat");
    end.hidden = true;
    var log = el("div", "log"), typingEl = el("div", "typing", "");
    var form = el("form"), input = el("input");
    input.name = "msg";
    input.maxLength = MAX_LINE;
    input.placeholder = "Type a message";
    input.autocomplete = "off";
    form.appendChild(input);
    form.appendChild(el("button", "send", "Send"));
    [head, status, invite, card, consent, ask, end, log, typingEl, form].forEach(function (c) { panel.appendChild(c); });
    var toggle = el("button", "toggle", "Live help");
    wrap.appendChild(panel);
    wrap.appendChild(toggle);
    styleRoot(root);
    root.appendChild(wrap);

    var current = { state: "browsing" }, typingTimer = null, consentFn = null, lastTyping = 0, typingSent = null;
    var shown = new Set();

    function show() { panel.hidden = false; open(); }
    toggle.addEventListener("click", function () {
      if (panel.hidden) show(); else panel.hidden = true;
    });
    close.addEventListener("click", function () { panel.hidden = true; });
    ask.addEventListener("click", function () { askToTalk(); });
    end.addEventListener("click", function () {
      post("/assist/end", {}).then(function (r) { if (r.status === 200) state(r.body); });
    });
    inviteYes.addEventListener("click", function () { answerInvite(true); });
    inviteNo.addEventListener("click", function () { answerInvite(false); });
    consentYes.addEventListener("click", function () { answerConsent(true); });
    consentNo.addEventListener("click", function () { answerConsent(false); });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var text = input.value;
      if (!text.trim()) return;
      input.value = "";
      stopTyping();
      var send = function () {
        post("/assist/chat", { text: text }).then(function (r) {
          if (r.status !== 200) note("Not sent (" + (r.body.error || r.status) + "): " + text);
        });
      };
      // A line typed while browsing asks to talk first, and goes with it.
      if (current.state === "browsing" || current.state === "invited") askToTalk(text);
      else send();
    });
    input.addEventListener("input", function () {
      var now = Date.now();
      if (current.state !== "chatting" || now - lastTyping < 2000) return;
      lastTyping = now;
      typingSent = setTimeout(stopTyping, 5000);
      post("/assist/typing", { typing: true });
    });
    function stopTyping() {
      if (!typingSent) return;
      clearTimeout(typingSent);
      typingSent = null;
      lastTyping = 0;
      post("/assist/typing", { typing: false });
    }

    function askToTalk(firstLine) {
      show();
      var body = { skills: SKILLS };
      if (firstLine) body.text = firstLine;
      post("/assist/ask", body).then(function (r) {
        if (r.status !== 200) return note("Could not ask (" + (r.body.error || r.status) + ")");
        state(r.body);
      });
    }

    function answerInvite(yes) {
      invite.hidden = true;
      post("/assist/invite", { accept: yes }).then(function (r) {
        if (r.status === 200) state(r.body);
      });
    }

    function answerConsent(yes) {
      consent.hidden = true;
      var fn = consentFn;
      consentFn = null;
      if (fn) fn(yes);
    }

    /* One chat line (each server line id once: the chat of an earlier page
     * comes back with open, and may also arrive as an event). */
    function line(kind, who, text, id) {
      if (id != null) {
        if (shown.has(id)) return;
        shown.add(id);
      }
      show();
      var row = el("div", "line " + kind);
      if (who && kind !== "note") row.appendChild(el("span", "who", who + ":"));
      row.appendChild(el("span", "text", text));
      log.appendChild(row);
      log.scrollTop = log.scrollHeight;
      if (kind === "rep") typingEl.textContent = "";
    }

    function note(text) { line("note", null, text); }

    /* The visitor's state: browsing, invited, waiting (position), chatting (rep). */
    function state(s) {
      if (!s || !s.state) return;
      current = { state: s.state, position: s.position, rep: s.rep };
      host.dataset.state = s.state;
      host.dataset.position = s.state === "waiting" && s.position != null ? String(s.position) : "";
      var text = "";
      if (s.state === "waiting") {
        text = s.position > 0 ? "You are number " + s.position + " in the queue."
          : "Finding someone to help you\u2026";
      } else if (s.state === "chatting") {
        text = "Chatting with " + (s.rep || "a representative") + ".";
      } else if (s.state === "invited") {
        text = "You are invited to chat.";
      }
      status.textContent = text;
      ask.hidden = s.state === "waiting" || s.state === "chatting";
      end.hidden = !ask.hidden;
      end.textContent = s.state === "waiting" ? "Leave the queue" : "End chat";
      if (s.state !== "invited") invite.hidden = true;
      if (s.state !== "browsing") show();
    }

    function ended(by) {
      state({ state: "browsing" });
      note(by === "visitor" ? "You ended the chat." : "The chat has ended.");
    }

    function typing(name, on) {
      clearTimeout(typingTimer);
      typingEl.textContent = on ? (name || "The representative") + " is typing\u2026" : "";
      if (on) typingTimer = setTimeout(function () { typingEl.textContent = ""; }, 6000);
    }

    function showInvite(name, text) {
      show();
      inviteText.textContent = text || ((name || "Someone") + " would like to help you. Chat now?");
      invite.hidden = false;
      state({ state: "invited" });
    }

    /* The display space: a card with a title, text, image and link (or
     * nothing); `quiet` restores it after a page change without opening. */
    function showCard(c, quiet) {
      while (card.firstChild) card.removeChild(card.firstChild);
      if (!c || (!c.title && !c.text && !c.image && !c.link)) {
        card.hidden = true;
        return;
      }
      if (c.image) {
        var u = httpUrl(c.image);
        if (u) { var img = el("img"); img.src = u.href; img.alt = c.title || ""; card.appendChild(img); }
      }
      if (c.title) card.appendChild(el("h3", "", c.title));
      if (c.text) card.appendChild(el("p", "", c.text));
      var lu = c.link && httpUrl(c.link);
      if (lu) {
        var a = el("a", "link", c.linkText || lu.href);
        a.href = lu.href;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        card.appendChild(a);
      }
      card.hidden = false;
      if (!quiet) show();
    }

    function askConsent(url, name, fn) {
      show();
      consentFn = fn;
      consentText.textContent = (name || "Your representative") + " would like to take you to:";
      consentUrl.textContent = url;
      consent.hidden = false;
    }

    function setLink(up) { host.dataset.link = up ? "open" : "retry"; }

    function attach() { (document.body || document.documentElement).appendChild(host); }
    if (document.body) attach(); else document.addEventListener("DOMContentLoaded", attach);

    return {
      line: line, note: note, state: state, ended: ended, typing: typing, invite: showInvite,
      card: showCard, consent: askConsent, setLink: setLink
    };
  })();

  if (ds.open === "interaction") {
    var first = function () {
      ["pointerdown", "keydown", "scroll", "touchstart"].forEach(function (t) {
        window.removeEventListener(t, first, true);
      });
      open();
    };
    ["pointerdown", "keydown", "scroll", "touchstart"].forEach(function (t) {
      window.addEventListener(t, first, { capture: true, passive: true });
    });
  } else {
    open();
  }
})();
