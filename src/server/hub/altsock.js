/*! altsock.js: the browser client of the altsock notification hub. No
 * dependencies. One tab per browser (the leader, elected with the Web Locks
 * API, or with heartbeats on a BroadcastChannel where locks are missing)
 * holds one connection, GET /poll?client=ID&channels=..., that carries the
 * browser's notifications for every application and every channel its tabs
 * subscribe to; the other tabs of the same origin receive through a
 * BroadcastChannel, so many tabs never exhaust the browser's six connections
 * per host. The connection uses SSE and falls back to long-poll where SSE
 * fails; it reconnects with exponential backoff and jitter and resumes from
 * the last id seen of each channel and of the mailbox, so nothing is lost
 * or repeated. Altsock.pipe shares any other held event stream the same
 * way (the presence pages use it for their /jchat pipe).
 *
 *   var hub = Altsock.connect({ url: "https://push.example" });
 *   hub.subscribe("news", function (data, msg) { ... });   // a channel
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

  /* The browser's communication client id, shared by its tabs. */
  function clientId(given) {
    if (given) return String(given);
    try {
      var id = global.localStorage.getItem("altsock.client");
      if (!id) {
        id = randomId();
        global.localStorage.setItem("altsock.client", id);
      }
      return id;
    } catch (e) {
      return randomId();
    }
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
    this.mode = hub.options.transport || (global.EventSource ? "sse" : "longpoll");
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
    var mailbox = hub.last.mailbox;
    return hub.base + "/poll?client=" + encodeURIComponent(hub.client) +
      "&channels=" + channels.join(",") + "&transport=" + transport +
      (mailbox != null ? "&since=" + mailbox : "");
  };

  Stream.prototype.start = function () {
    if (this.closed) return;
    this.generation += 1;
    if (this.mode === "sse") this.openSse(); else this.poll();
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
      if (!opened && ++self.sseFailures >= 2) self.mode = "longpoll";
      self.retry();
    };
  };

  Stream.prototype.poll = function () {
    var self = this, gen = this.generation;
    var abort = global.AbortController ? new global.AbortController() : null;
    this.abort = abort;
    global.fetch(this.url("longpoll"), { cache: "no-store", signal: abort && abort.signal })
      .then(function (r) {
        if (r.status === 204) return "";
        if (r.status !== 200) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (text) {
        if (gen !== self.generation) return;
        self.failures = 0;
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
    this.client = clientId(options.client);
    this.handlers = {};       // "c:NAME" | "a:APP" | "gap" | "state" -> [fn]
    this.wants = {};          // "c:NAME" | "mailbox" this tab (leader: any tab) needs
    this.stream = null;       // the leader's connection
    this.last = {};           // key -> last id seen
    this.leader = false;
    this.id = randomId();
    var name = "altsock:" + (this.base || global.location.origin);
    this.bus = options.share !== false && global.BroadcastChannel
      ? new global.BroadcastChannel(name) : null;
    if (this.bus) this.bus.onmessage = this.onBus.bind(this);
    this.elect(name);
  }

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
    if (!this.leader || Object.keys(this.wants).length === 0) return;
    if (this.stream) return this.stream.restart();
    this.stream = new Stream(this);
    this.stream.start();
  };

  Hub.prototype.want = function (key) {
    if (this.wants[key]) return;
    this.wants[key] = true;
    if (this.leader) this.connect(); else this.post({ t: "want", key: key });
  };

  Hub.prototype.onBus = function (e) {
    var m = e.data || {};
    if (m.t === "msg") return this.dispatch(m.key, m.msg);
    if (m.t === "want" && this.leader) return this.want(m.key);
    if (m.t === "who" && !this.leader) {
      for (var key in this.wants) this.post({ t: "want", key: key });
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

  /** Calls fn for "gap" (a lost range) or "state" ("leader", "follower",
   *  "open", "retry"). */
  Hub.prototype.on = function (name, fn) {
    (this.handlers[name] = this.handlers[name] || []).push(fn);
    return this;
  };

  /** Calls fn(data, msg) for each message of channel `name`. */
  Hub.prototype.subscribe = function (name, fn) {
    this.on("c:" + name, fn);
    this.want("c:" + name);
    return this;
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
   * last seq, and falls back to long-poll (`pollUrl`, answered with
   * `msg TYPE JSON` lines) where SSE fails. Without Web Locks or
   * BroadcastChannel each tab holds its own stream. */
  function Pipe(options) {
    this.options = options;
    this.handlers = {};
    this.last = null;
    this.failures = 0;
    this.sseFailures = 0;
    this.mode = options.transport || (global.EventSource ? "sse" : "longpoll");
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
    if (this.mode === "sse") this.openSse(); else this.poll();
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
      if (!opened && ++self.sseFailures >= 2) self.mode = "longpoll";
      self.retry();
    };
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
        text.split("\n").forEach(function (line) {
          var m = /^msg (\S+) (.*)$/.exec(line);
          if (m) self.take(m[1], m[2]);
        });
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
    if (this.unlock) this.unlock();
    if (this.bus) this.bus.close();
  };

  global.Altsock = {
    /** Shares one held event stream across this origin's tabs.
     *  Options: name (what tabs share it by), url (SSE), pollUrl (long-poll
     *  fallback), events (event names to listen for), retryDelay (ms),
     *  transport ("sse" | "longpoll"), share (false: this tab alone).
     *  Returns an object with on(event, fn), isLeader() and close(). */
    pipe: function (options) {
      return new Pipe(options || {});
    },

    /** Connects to the hub at options.url (default: this page's origin).
     *  Options: client (id; default one per browser in localStorage),
     *  transport ("sse" | "longpoll"), retryDelay (ms, default 500),
     *  share (false: no sharing across tabs). */
    connect: function (options) {
      options = options || {};
      if (options.retryDelay == null) options.retryDelay = 500;
      return new Hub(options);
    }
  };
})(typeof self !== "undefined" ? self : this);
