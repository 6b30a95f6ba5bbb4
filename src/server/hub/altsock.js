/*! altsock.js: the browser client of the altsock notification hub. No
 * dependencies. One tab per browser (the leader, elected with the Web Locks
 * API, or with heartbeats on a BroadcastChannel where locks are missing)
 * holds the connections; every other tab of the same origin receives through
 * a BroadcastChannel, so many tabs never exhaust the browser's six
 * connections per host. Streams use SSE and fall back to long-poll where SSE
 * fails; they reconnect with exponential backoff and jitter and resume from
 * the last id seen, so nothing is lost or repeated.
 *
 *   var hub = Altsock.connect({ url: "https://push.example" });
 *   hub.subscribe("news", function (data, msg) { ... });   // GET /sub/news
 *   hub.app("mail", function (data, msg) { ... });         // GET /poll?client=..
 *   hub.on("gap", function (msg) { ... });                 // lost range
 */
(function (global) {
  "use strict";

  var MAX_DELAY = 30000;

  function randomId() {
    var bytes = new Uint8Array(12);
    (global.crypto || {}).getRandomValues
      ? global.crypto.getRandomValues(bytes)
      : bytes.forEach(function (_, i) { bytes[i] = Math.random() * 256; });
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

  /* ---- one stream, held by the leader ---------------------------------- */

  function Stream(hub, key) {
    this.hub = hub;
    this.key = key;
    this.failures = 0;
    this.sseFailures = 0;
    this.mode = hub.options.transport || (global.EventSource ? "sse" : "longpoll");
    this.closed = false;
  }

  Stream.prototype.url = function (transport) {
    var path = this.key === "mailbox"
      ? "/poll?client=" + encodeURIComponent(this.hub.client)
      : "/sub/" + this.key.slice(2) + "?";
    var since = this.hub.last[this.key];
    return this.hub.base + path + (path.slice(-1) === "?" ? "" : "&") +
      "transport=" + transport + (since != null ? "&since=" + since : "");
  };

  Stream.prototype.start = function () {
    if (this.closed) return;
    if (this.mode === "sse") this.openSse(); else this.poll();
  };

  Stream.prototype.openSse = function () {
    var self = this, opened = false;
    var es = this.es = new global.EventSource(this.url("sse"));
    es.onopen = function () { opened = true; self.failures = 0; self.hub.state("open", self.key); };
    es.onmessage = function (e) { self.take(e.data, e.lastEventId, "message"); };
    es.addEventListener("gap", function (e) { self.take(e.data, e.lastEventId, "gap"); });
    es.addEventListener("position", function (e) { self.position(e.lastEventId); });
    es.onerror = function () {
      es.close();
      self.es = null;
      if (!opened && ++self.sseFailures >= 2) self.mode = "longpoll";
      self.retry();
    };
  };

  Stream.prototype.poll = function () {
    var self = this;
    var abort = global.AbortController ? new global.AbortController() : null;
    this.abort = abort;
    global.fetch(this.url("longpoll"), { cache: "no-store", signal: abort && abort.signal })
      .then(function (r) {
        if (r.status === 204) {
          self.position(r.headers.get("X-Altsock-Last"));
          return "";
        }
        if (r.status !== 200) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (text) {
        self.failures = 0;
        text.split("\n").forEach(function (line) {
          if (line) self.takeLine(line);
        });
        if (!self.closed) self.poll();
      })
      .catch(function () { self.retry(); });
  };

  /* An SSE event: a channel's body, or a JSON envelope (mailbox, gaps). */
  Stream.prototype.take = function (data, id, event) {
    if (event === "gap" || this.key === "mailbox") {
      var env = JSON.parse(data);
      env.id = Number(id);
      if (event === "gap") env.event = "gap";
      this.hub.deliver(this.key, env);
    } else {
      this.hub.deliver(this.key, { id: Number(id), channel: this.key.slice(2), data: data });
    }
  };

  /* Where a stream of new messages only starts: resume from there. */
  Stream.prototype.position = function (id) {
    if (id == null || id === "" || this.hub.last[this.key] != null) return;
    this.hub.last[this.key] = Number(id);
    this.hub.post({ t: "last", key: this.key, id: Number(id) });
  };

  Stream.prototype.takeLine = function (line) {
    this.hub.deliver(this.key, JSON.parse(line));
  };

  Stream.prototype.retry = function () {
    if (this.closed) return;
    var self = this;
    var delay = Math.min(MAX_DELAY, this.hub.options.retryDelay * Math.pow(2, this.failures));
    this.failures += 1;
    this.hub.state("retry", this.key);
    setTimeout(function () { self.start(); }, delay * (0.5 + Math.random() / 2));
  };

  Stream.prototype.close = function () {
    this.closed = true;
    if (this.es) this.es.close();
    if (this.abort) this.abort.abort();
  };

  /* ---- the hub: handlers, leader election, sharing across tabs --------- */

  function Hub(options) {
    this.options = options;
    this.base = (options.url || "").replace(/\/$/, "");
    this.client = clientId(options.client);
    this.handlers = {};       // "c:NAME" | "a:APP" | "gap" | "state" -> [fn]
    this.wants = {};          // stream keys this tab needs
    this.streams = {};        // leader only: key -> Stream
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
    this.state("leader", null);
    this.post({ t: "who" });
    for (var key in this.wants) this.open(key);
  };

  Hub.prototype.open = function (key) {
    if (!this.leader || this.streams[key]) return;
    var stream = this.streams[key] = new Stream(this, key);
    stream.start();
  };

  Hub.prototype.want = function (key) {
    if (this.wants[key]) return;
    this.wants[key] = true;
    if (this.leader) this.open(key); else this.post({ t: "want", key: key });
  };

  Hub.prototype.onBus = function (e) {
    var m = e.data || {};
    if (m.t === "msg") return this.dispatch(m.key, m.msg);
    if (m.t === "want" && this.leader) return this.open(m.key);
    if (m.t === "who" && !this.leader) {
      for (var key in this.wants) this.post({ t: "want", key: key });
      for (var k in this.last) this.post({ t: "last", key: k, id: this.last[k] });
      return;
    }
    if (m.t === "last" && !this.streams[m.key] && !(this.last[m.key] >= m.id)) {
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
    for (var key in this.streams) this.streams[key].close();
    this.streams = {};
    this.state("follower", null);
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

  Hub.prototype.state = function (what, key) {
    this.emit("state", [what, key]);
  };

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

  global.Altsock = {
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
