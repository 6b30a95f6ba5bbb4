/*! altsock.js: the browser client of the altsock notification hub. No
 * dependencies. The browser's hub client id and its mailbox key come from
 * the server (POST /hub/client) and are kept in localStorage; the page tells
 * its application server only the id (hub.ready resolves to it), and only
 * the key reads the mailbox. One tab per browser (the leader, elected with
 * the Web Locks API, or with heartbeats on a BroadcastChannel where locks
 * are missing) holds one connection, GET /poll?client=ID&key=KEY&channels=...,
 * that carries the
 * browser's notifications for every application and every channel its tabs
 * subscribe to; the other tabs of the same origin receive through a
 * BroadcastChannel, so many tabs never exhaust the browser's six connections
 * per host. The connection uses SSE; where SSE fails twice without ever
 * opening (a proxy that buffers or blocks event streams) it falls back to
 * a WebSocket (one JSON envelope per frame), and where that fails twice
 * too, to long-poll: SSE, then WebSocket, then long-poll. It reconnects with exponential backoff and jitter and resumes from
 * the last id seen of each channel and of the mailbox, so nothing is lost
 * or repeated. Altsock.pipe shares any other held event stream the same
 * way (the presence pages use it for their /jchat pipe).
 *
 *   var hub = Altsock.connect({ url: "https://push.example" });
 *   hub.ready.then(function (client) { ... });             // tell the app server
 *   hub.subscribe("news", function (data, msg) { ... });   // a channel
 *   hub.subscribe("private-x", fn, { token: jwt });        // a private channel
 *   hub.app("mail", function (data, msg) { ... });         // POST /notify app "mail"
 *   hub.on("gap", function (msg) { ... });                 // a lost range
 */
(function (global) {
  "use strict";

  var MAX_DELAY = 30000;

  function randomId() {
    var bytes = new Uint8Array(12);
    if (global.crypto && global.crypto.getRandomValues) global.crypto.getRandomValues(bytes);
    else for (var i = 0; i < bytes.length; i++) bytes[i] = Math.random() * 256;
    return Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
  }

  /* ---- the browser's hub client: id and mailbox key from the server ---- */

  function storeGet(name) {
    try {
      var v = JSON.parse(global.localStorage.getItem(name) || "null");
      return v && v.client && v.key ? v : null;
    } catch (e) {
      return null;
    }
  }

  function storeSet(name, creds) {
    try {
      if (creds) global.localStorage.setItem(name, JSON.stringify(creds));
      else global.localStorage.removeItem(name);
    } catch (e) { /* private mode: this tab alone keeps them */ }
  }

  /* The stored {client, key}, else new ones from POST /hub/client; with
   * Web Locks one tab at a time asks, so all tabs share one client. */
  function credentials(base, name, fresh) {
    function get() {
      var have = fresh ? null : storeGet(name);
      fresh = false;
      if (have) return Promise.resolve(have);
      return global.fetch(base + "/hub/client", { method: "POST", cache: "no-store" })
        .then(function (r) {
          if (r.status !== 200) throw new Error("hub client: status " + r.status);
          return r.json();
        })
        .then(function (creds) {
          storeSet(name, { client: creds.client, key: creds.key });
          return creds;
        });
    }
    if (global.navigator && global.navigator.locks) {
      return global.navigator.locks.request(name, get);
    }
    return get();
  }

  /* The ws: or wss: URL of an http(s) URL, relative ones against this page. */
  function wsUrl(url) {
    var u = new global.URL(url, global.location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.href;
  }

  /* The transport after SSE failed: WebSocket where the browser has it. */
  function afterSse() {
    return global.WebSocket ? "websocket" : "longpoll";
  }

  /* Opens a WebSocket for a Stream or a Pipe (`self`): every frame goes to
   * onText, a close before it ever opened counts towards falling back to
   * long-poll, and any close retries with backoff. */
  function openWebSocket(self, url, onText, onOpen) {
    var opened = false, gen = self.generation;
    var ws = self.ws = new global.WebSocket(wsUrl(url));
    ws.onopen = function () { opened = true; self.failures = 0; onOpen(); };
    ws.onmessage = function (e) { if (gen === self.generation) onText(e.data); };
    ws.onclose = function () {
      if (gen !== self.generation) return;
      self.ws = null;
      if (!opened && ++self.wsFailures >= 2) self.mode = "longpoll";
      self.retry();
    };
  }

  /* Closes a Stream's or Pipe's WebSocket without it retrying. */
  function closeWebSocket(self) {
    if (self.ws) { self.ws.onclose = null; self.ws.close(1000); }
    self.ws = null;
  }

  /* The stream key of a message envelope: "c:NAME" or "mailbox". */
  function keyOf(msg) {
    return msg.channel != null ? "c:" + msg.channel : "mailbox";
  }

  /* ---- the one connection, held by the leader -------------------------- */

  function Stream(hub) {
    this.hub = hub;
    this.failures = 0;
    this.sseFailures = 0;
    this.wsFailures = 0;
    this.mode = hub.options.transport || (global.EventSource ? "sse" : afterSse());
    this.closed = false;
    this.generation = 0;
  }

  Stream.prototype.url = function (transport) {
    var hub = this.hub, channels = [];
    for (var key in hub.wants) {
      if (key.slice(0, 2) !== "c:") continue;
      var since = hub.last[key];
      channels.push(key.slice(2) + (since != null ? "@" + since : ""));
    }
    var tokens = [];
    for (var name in hub.tokens) if (hub.wants["c:" + name]) tokens.push(hub.tokens[name]);
    var mailbox = hub.last.mailbox;
    return hub.base + "/poll?client=" + encodeURIComponent(hub.client) +
      "&key=" + encodeURIComponent(hub.key) +
      "&channels=" + channels.join(",") + "&transport=" + transport +
      (tokens.length ? "&token=" + tokens.join(",") : "") +
      (mailbox != null ? "&since=" + mailbox : "");
  };

  Stream.prototype.start = function () {
    if (this.closed) return;
    this.generation += 1;
    if (this.mode === "sse") this.openSse();
    else if (this.mode === "websocket") this.openWs();
    else this.poll();
  };

  /* Reconnects at once, e.g. to follow a channel another tab wants. */
  Stream.prototype.restart = function () {
    this.stop();
    this.start();
  };

  Stream.prototype.openSse = function () {
    var self = this, opened = false, gen = this.generation;
    var es = this.es = new global.EventSource(this.url("sse"));
    es.onopen = function () { opened = true; self.failures = 0; self.hub.state("open"); };
    es.onmessage = function (e) { self.take(e.data); };
    es.onerror = function () {
      es.close();
      if (gen !== self.generation) return;
      self.es = null;
      if (!opened && ++self.sseFailures >= 2) self.mode = afterSse();
      self.retry();
    };
  };

  /* The same /poll as a WebSocket: one JSON envelope per text frame. */
  Stream.prototype.openWs = function () {
    var self = this;
    openWebSocket(this, this.url("websocket"), function (text) { self.take(text); },
      function () { self.hub.state("open"); });
  };

  Stream.prototype.poll = function () {
    var self = this, gen = this.generation;
    var abort = global.AbortController ? new global.AbortController() : null;
    this.abort = abort;
    global.fetch(this.url("longpoll"), { cache: "no-store", signal: abort && abort.signal })
      .then(function (r) {
        if (r.status === 204) return "";
        if (r.status === 401 && !self.renewed) {
          // The key is unknown here (the server's secret changed): a new client.
          self.renewed = true;
          if (gen === self.generation) self.hub.renew();
          return null;
        }
        if (r.status !== 200) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (text) {
        if (text == null || gen !== self.generation) return;
        self.failures = 0;
        self.renewed = false;
        text.split("\n").forEach(function (line) { if (line) self.take(line); });
        if (!self.closed) self.poll();
      })
      .catch(function () { if (gen === self.generation) self.retry(); });
  };

  /* One JSON envelope: a message, a gap, or where a channel starts. */
  Stream.prototype.take = function (text) {
    var msg = JSON.parse(text), hub = this.hub, key = keyOf(msg);
    if (msg.event !== "position") return hub.deliver(key, msg);
    if (hub.last[key] != null) return;
    hub.last[key] = msg.id;
    hub.post({ t: "last", key: key, id: msg.id });
  };

  Stream.prototype.retry = function () {
    if (this.closed) return;
    var self = this;
    var delay = Math.min(MAX_DELAY, this.hub.options.retryDelay * Math.pow(2, this.failures));
    this.failures += 1;
    this.hub.state("retry");
    this.timer = setTimeout(function () { self.start(); }, delay * (0.5 + Math.random() / 2));
  };

  Stream.prototype.stop = function () {
    this.generation += 1;
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    if (this.abort) this.abort.abort();
    closeWebSocket(this);
    this.es = this.abort = null;
  };

  Stream.prototype.close = function () {
    this.closed = true;
    this.stop();
  };

  /* ---- the hub: handlers, leader election, sharing across tabs --------- */

  function Hub(options) {
    this.options = options;
    this.base = (options.url || "").replace(/\/$/, "");
    this.client = null;       // the hub client id, once known
    this.key = null;          // its mailbox key
    this.handlers = {};       // "c:NAME" | "a:APP" | "gap" | "state" | "client" -> [fn]
    this.wants = {};          // "c:NAME" | "mailbox" this tab (leader: any tab) needs
    this.tokens = {};         // channel -> subscription token
    this.stream = null;       // the leader's connection
    this.last = {};           // key -> last id seen
    this.leader = false;
    this.id = randomId();
    var name = "altsock:" + (this.base || global.location.origin);
    this.storeName = "altsock.hubclient:" + (this.base || global.location.origin);
    this.bus = options.share !== false && global.BroadcastChannel
      ? new global.BroadcastChannel(name) : null;
    if (this.bus) this.bus.onmessage = this.onBus.bind(this);
    /** Resolves to this browser's hub client id (for the application server). */
    this.ready = this.identify(false);
    this.elect(name);
  }

  /* Gets the client id and key (given, stored, or issued; asking again
   * with backoff while the server cannot be reached), then connects. */
  Hub.prototype.identify = function (fresh) {
    var self = this, opts = this.options, delay = opts.retryDelay;
    function attempt() {
      if (opts.client && opts.key && !fresh) {
        return Promise.resolve({ client: String(opts.client), key: String(opts.key) });
      }
      return credentials(self.base, self.storeName, fresh).catch(function () {
        if (self.closed) throw new Error("closed");
        self.state("retry");
        var wait = delay * (0.5 + Math.random() / 2);
        delay = Math.min(MAX_DELAY, delay * 2);
        return new Promise(function (resolve) { setTimeout(resolve, wait); }).then(attempt);
      });
    }
    return attempt().then(function (creds) {
      var changed = self.client != null && self.client !== creds.client;
      self.client = creds.client;
      self.key = creds.key;
      if (changed) { self.last = {}; self.emit("client", [creds.client]); }
      self.connect();
      return creds.client;
    });
  };

  /* The server refused the key: forget it and get a new client. */
  Hub.prototype.renew = function () {
    var self = this;
    if (this.options.client) return this.state("refused");
    this.ready = this.identify(true);
    this.ready.catch(function () { if (self.stream) self.stream.retry(); });
  };

  Hub.prototype.elect = function (name) {
    var self = this;
    if (!this.bus) return this.lead();
    if (global.navigator && global.navigator.locks) {
      global.navigator.locks.request(name, function () {
        self.lead();
        return new Promise(function (resolve) { self.unlock = resolve; });
      });
    } else {
      this.heartbeats();
    }
    this.post({ t: "who" });
  };

  /* Election without locks: the leader beats every second; a tab that
   * hears none for three seconds claims, the lowest id winning. */
  Hub.prototype.heartbeats = function () {
    var self = this;
    this.heard = Date.now();
    this.beat = setInterval(function () {
      if (self.leader) return self.post({ t: "hb", from: self.id });
      if (Date.now() - self.heard > 3000 + Math.random() * 1000) self.lead();
    }, 1000);
  };

  Hub.prototype.lead = function () {
    if (this.leader || this.closed) return;
    this.leader = true;
    this.state("leader");
    this.post({ t: "who" });
    this.connect();
  };

  /* The leader's connection follows every wanted stream. */
  Hub.prototype.connect = function () {
    if (!this.leader || !this.key || Object.keys(this.wants).length === 0) return;
    if (this.stream) return this.stream.restart();
    this.stream = new Stream(this);
    this.stream.start();
  };

  Hub.prototype.want = function (key, token) {
    var name = key.slice(2);
    if (token && key.slice(0, 2) === "c:" && this.tokens[name] !== token) {
      this.tokens[name] = token;
      delete this.wants[key];
    }
    if (this.wants[key]) return;
    this.wants[key] = true;
    if (this.leader) this.connect(); else this.post({ t: "want", key: key, token: token });
  };

  Hub.prototype.onBus = function (e) {
    var m = e.data || {};
    if (m.t === "msg") return this.dispatch(m.key, m.msg);
    if (m.t === "want" && this.leader) return this.want(m.key, m.token);
    if (m.t === "who" && !this.leader) {
      for (var key in this.wants) {
        this.post({ t: "want", key: key, token: this.tokens[key.slice(2)] });
      }
      for (var k in this.last) this.post({ t: "last", key: k, id: this.last[k] });
      return;
    }
    if (m.t === "last" && !this.leader && !(this.last[m.key] >= m.id)) {
      this.last[m.key] = m.id;
      return;
    }
    if (m.t === "hb") {
      this.heard = Date.now();
      if (this.leader && m.from < this.id) this.stepDown();
    }
  };

  Hub.prototype.stepDown = function () {
    this.leader = false;
    if (this.stream) this.stream.close();
    this.stream = null;
    this.state("follower");
  };

  Hub.prototype.post = function (m) {
    if (this.bus) this.bus.postMessage(m);
  };

  /* The leader got a message: hand it to this tab and to the others. */
  Hub.prototype.deliver = function (key, msg) {
    if (this.dispatch(key, msg)) this.post({ t: "msg", key: key, msg: msg });
  };

  /* Hands a message to its handlers once; false if already seen. */
  Hub.prototype.dispatch = function (key, msg) {
    if (this.last[key] != null && msg.id <= this.last[key]) return false;
    this.last[key] = msg.id;
    if (msg.event === "gap") {
      this.emit("gap", [msg]);
    } else if (msg.app != null) {
      this.emit("a:" + msg.app, [msg.data, msg]);
      this.emit("a:*", [msg.data, msg]);
    } else {
      this.emit("c:" + msg.channel, [msg.data, msg]);
    }
    return true;
  };

  Hub.prototype.emit = function (name, args) {
    (this.handlers[name] || []).forEach(function (fn) {
      try { fn.apply(null, args); } catch (e) { setTimeout(function () { throw e; }); }
    });
  };

  Hub.prototype.state = function (what) {
    this.emit("state", [what]);
  };

  /** Calls fn for "gap" (a lost range), "state" ("leader", "follower",
   *  "open", "retry", "refused") or "client" (a new client id, after the
   *  server refused the old key: tell the application server). */
  Hub.prototype.on = function (name, fn) {
    (this.handlers[name] = this.handlers[name] || []).push(fn);
    return this;
  };

  /** Calls fn(data, msg) for each message of channel `name`. A private
   *  channel needs options.token (a subscription token from the application
   *  server or POST /hub/auth) unless the session owns it. */
  Hub.prototype.subscribe = function (name, fn, options) {
    this.on("c:" + name, fn);
    this.want("c:" + name, options && options.token);
    return this;
  };

  /** This browser's hub client id, or null until hub.ready resolves. */
  Hub.prototype.clientId = function () {
    return this.client;
  };

  /** Calls fn(data, msg) for each notification addressed to this browser's
   *  client for application `name` ("*": every application). */
  Hub.prototype.app = function (name, fn) {
    this.on("a:" + name, fn);
    this.want("mailbox");
    return this;
  };

  Hub.prototype.isLeader = function () {
    return this.leader;
  };

  Hub.prototype.close = function () {
    this.closed = true;
    this.stepDown();
    if (this.beat) clearInterval(this.beat);
    if (this.unlock) this.unlock();
    if (this.bus) this.bus.close();
  };

  /* ---- a shared pipe: any held event stream, one per browser ---------- */

  /* One named SSE stream (e.g. the presence server's /jchat pipe) held by
   * one tab of this origin, elected with the Web Locks API, and relayed to
   * the others over a BroadcastChannel. Events are JSON with a `seq`; the
   * pipe reconnects with backoff and jitter and resumes with `since=` the
   * last seq. Where SSE fails twice without opening it falls back to a
   * WebSocket on the same url (one `msg TYPE JSON` line per frame), then to
   * long-poll (`pollUrl`, answered with `msg TYPE JSON` lines). Without Web Locks or
   * BroadcastChannel each tab holds its own stream. */
  function Pipe(options) {
    this.options = options;
    this.handlers = {};
    this.last = null;
    this.failures = 0;
    this.sseFailures = 0;
    this.wsFailures = 0;
    this.mode = options.transport || (global.EventSource ? "sse" : afterSse());
    this.generation = 0;
    this.closed = false;
    var name = "altsock-pipe:" + options.name;
    var shared = options.share !== false && global.BroadcastChannel &&
      global.navigator && global.navigator.locks;
    this.bus = shared ? new global.BroadcastChannel(name) : null;
    if (!this.bus) return this.lead();
    this.bus.onmessage = this.onBus.bind(this);
    var self = this;
    global.navigator.locks.request(name, function () {
      if (self.closed) return null;
      self.lead();
      return new Promise(function (resolve) { self.unlock = resolve; });
    });
  }

  Pipe.prototype.lead = function () {
    if (this.closed) return;
    this.leader = true;
    this.emit("state", ["leader"]);
    this.start();
  };

  Pipe.prototype.withSince = function (url) {
    if (this.last == null) return url;
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "since=" + this.last;
  };

  Pipe.prototype.start = function () {
    if (this.closed) return;
    this.generation += 1;
    if (this.mode === "sse") this.openSse();
    else if (this.mode === "websocket") this.openWs();
    else this.poll();
  };

  Pipe.prototype.openSse = function () {
    var self = this, opened = false, gen = this.generation;
    var es = this.es = new global.EventSource(this.withSince(this.options.url));
    (this.options.events || []).forEach(function (event) {
      es.addEventListener(event, function (e) { self.take(event, e.data); });
    });
    es.onopen = function () { opened = true; self.failures = 0; self.emit("state", ["open"]); };
    es.onerror = function () {
      es.close();
      if (gen !== self.generation) return;
      self.es = null;
      if (!opened && ++self.sseFailures >= 2) self.mode = afterSse();
      self.retry();
    };
  };

  Pipe.prototype.openWs = function () {
    var self = this;
    openWebSocket(this, this.withSince(this.options.url), function (text) { self.line(text); },
      function () { self.emit("state", ["open"]); });
  };

  /* One `msg TYPE JSON` line (long-poll answers and WebSocket frames). */
  Pipe.prototype.line = function (line) {
    var m = /^msg (\S+) (.*)$/.exec(line.replace(/\n$/, ""));
    if (m) this.take(m[1], m[2]);
  };

  Pipe.prototype.poll = function () {
    var self = this, gen = this.generation;
    global.fetch(this.withSince(this.options.pollUrl), { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 204) return "";
        if (r.status !== 200) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (text) {
        if (gen !== self.generation) return;
        self.failures = 0;
        self.emit("state", ["open"]);
        text.split("\n").forEach(function (line) { self.line(line); });
        if (!self.closed) self.poll();
      })
      .catch(function () { if (gen === self.generation) self.retry(); });
  };

  /* One event from the server: hand it to this tab and to the others. */
  Pipe.prototype.take = function (event, text) {
    var data;
    try { data = JSON.parse(text); } catch (e) { return; }
    var ev = { event: event, data: data };
    if (this.dispatch(ev) && this.bus) this.bus.postMessage({ t: "ev", ev: ev });
  };

  /* Hands an event to its handlers once (by seq); false if already seen. */
  Pipe.prototype.dispatch = function (ev) {
    var seq = ev.data && typeof ev.data.seq === "number" ? ev.data.seq : null;
    if (seq != null && ev.event !== "hello") {
      if (this.last != null && seq <= this.last) return false;
    }
    if (seq != null) this.last = Math.max(this.last || 0, seq);
    this.emit(ev.event, [ev.data]);
    return true;
  };

  Pipe.prototype.onBus = function (e) {
    var m = e.data || {};
    if (m.t === "ev" && !this.leader) this.dispatch(m.ev);
  };

  Pipe.prototype.retry = function () {
    if (this.closed) return;
    var self = this, base = this.options.retryDelay || 500;
    var delay = Math.min(MAX_DELAY, base * Math.pow(2, this.failures));
    this.failures += 1;
    this.emit("state", ["retry"]);
    this.timer = setTimeout(function () { self.start(); }, delay * (0.5 + Math.random() / 2));
  };

  Pipe.prototype.emit = Hub.prototype.emit;
  Pipe.prototype.on = Hub.prototype.on;

  Pipe.prototype.isLeader = function () {
    return !!this.leader;
  };

  /** Stops the stream for good (all tabs stop when the server says so). */
  Pipe.prototype.close = function () {
    this.closed = true;
    this.generation += 1;
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    this.es = null;
    closeWebSocket(this);
    if (this.unlock) this.unlock();
    if (this.bus) this.bus.close();
  };

  global.Altsock = {
    /** Shares one held event stream across this origin's tabs.
     *  Options: name (what tabs share it by), url (SSE), pollUrl (long-poll
     *  fallback), events (event names to listen for), retryDelay (ms),
     *  transport ("sse" | "websocket" | "longpoll"; default SSE, then
     *  WebSocket, then long-poll as each fails), share (false: this tab alone).
     *  Returns an object with on(event, fn), isLeader() and close(). */
    pipe: function (options) {
      return new Pipe(options || {});
    },

    /** Connects to the hub at options.url (default: this page's origin).
     *  Options: client and key (both, minted by the application server
     *  with POST /hub/client and the publisher token; default: issued to
     *  this browser and kept in localStorage), transport ("sse" |
     *  "websocket" | "longpoll"; default SSE, then WebSocket, then
     *  long-poll as each fails), retryDelay (ms, default 500), share (false: no sharing
     *  across tabs). */
    connect: function (options) {
      options = options || {};
      if (options.retryDelay == null) options.retryDelay = 500;
      return new Hub(options);
    }
  };
})(typeof self !== "undefined" ? self : this);
