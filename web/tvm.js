// tvm.js keeps a web page subscribed to Momento topics with the short-lived
// tokens of the token vending machine: across token refreshes, sleeps and
// network losses, it hands the page every item once and in order, and
// reports every gap it cannot fill. It depends on nothing but the Momento
// web SDK (@gomomento/sdk-web) the page passes in.
//
//	import * as momento from '@gomomento/sdk-web';
//	import {subscribeTopics} from './tvm.js';
//	const orders = subscribeTopics({sdk: momento, url: TOKEN_URL, cache: 'pizza',
//	  topics: ['order-42-status-updated'], onItem: (item, topic) => show(item.valueString())});
//
// tvm.d.ts says what each option and state means; README.md how it works.

const TICK_MS = 1000; // how often the clocks are compared, and timers checked
const SLEEP_MS = 2000; // wall-clock time beyond the page's own clock that counts as a sleep
const GRACE_MS = 2000; // the longest an old subscription overlaps a live new one
const STALL_MS = 30000; // a subscription silent this long awake (Momento heartbeats every few seconds) is dead
const ASK_MS = 2000; // how long a tab waits for the tab that fetches before fetching itself
const FETCH_BACKOFF_MS = 1000; // the first back-off of a failed token fetch, doubling
const SUBSCRIBE_BACKOFF_MS = 200; // the first back-off of a failed subscription, doubling
const BACKOFF_CAP_MS = 60000;
const FALLBACK_MARGIN_S = 300; // a function without refresh_in serves tokens with 5 minutes left

/**
 * subscribeTopics subscribes to options.topics and keeps them subscribed
 * until stop() or a refusal; see tvm.d.ts.
 */
export function subscribeTopics(options) {
  const session = new Session(options);
  return {
    get state() {
      return session.snapshot();
    },
    stop() {
      session.stop('stopped', 'stopped by the page');
    },
  };
}

// Clock is the page's monotonic clock plus the time the machine slept:
// performance.now() may not count a sleep, Date.now() does. Only its
// differences are used, never the wall clock's reading.
class Clock {
  constructor() {
    this.mono = performance.now();
    this.wall = Date.now();
    this.slept = 0;
  }
  now() {
    const mono = performance.now(), wall = Date.now();
    const extra = wall - this.wall - (mono - this.mono);
    if (extra > SLEEP_MS) this.slept += extra;
    this.mono = mono;
    this.wall = wall;
    return mono + this.slept;
  }
}

// backoff returns a wait of about base * 2^attempt, capped, with jitter.
function backoff(attempt, base) {
  const ceiling = Math.min(BACKOFF_CAP_MS, base * 2 ** Math.min(attempt, 16));
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

// A Session is one subscribeTopics call. Times are on its Clock, in ms.
class Session {
  constructor(o) {
    if (!o || !o.sdk || !o.url || !o.cache || !Array.isArray(o.topics) || o.topics.length === 0) {
      throw new TypeError('subscribeTopics needs sdk, url, cache and a list of topics');
    }
    this.o = o;
    this.clock = new Clock();
    // Per topic: the last sequence number handed to the page, the open
    // subscriptions (two while a refresh overlaps them), and a retry's timer.
    this.topics = new Map(
      o.topics.map(name => [name, {name, last: undefined, streams: [], status: 'subscribing', message: '', retries: 0, due: 0, timer: 0, dropped: false, covered: false}]),
    );
    this.token = null; // {value, client, gen, deadline, refreshAt}
    this.gen = 0;
    this.refreshes = 0;
    this.gaps = 0;
    this.fault = null; // {reason, message}: why the last fetch failed, or why stopped
    this.retryAt = 0;
    this.attempts = 0; // failed fetches in a row
    this.fetching = false;
    this.due = 0; // when to fetch (or ask for) the next token; 0: not scheduled
    this.timer = 0;
    this.rejected = ''; // the last token Momento refused
    this.same = 0; // fetches in a row that returned the token held
    this.stopped = false;
    this.leader = true; // false while another tab fetches for this one
    this.lastKey = '';
    this.unlisten = [];
    this.listen(globalThis, 'online', () => this.wake(true));
    this.listen(globalThis, 'pageshow', () => this.wake(false));
    this.listen(globalThis.document, 'visibilitychange', () => document.visibilityState === 'visible' && this.wake(false));
    this.ticker = setInterval(() => this.check(), TICK_MS);
    const share = o.share ?? (o.credential ? false : 'anonymous');
    if (share !== false && globalThis.BroadcastChannel && globalThis.navigator?.locks) {
      this.share(`tvm ${o.url} ${share}`);
    } else {
      this.fetchToken();
    }
    this.changed();
  }

  listen(target, type, fn) {
    if (!target?.addEventListener) return;
    target.addEventListener(type, fn);
    this.unlisten.push(() => target.removeEventListener(type, fn));
  }

  // Sharing among the tabs of one origin: the tab holding the Web Lock
  // named after the function and the caller fetches tokens and posts each
  // on a BroadcastChannel of that name; the others ask it on start, and one
  // of them takes the lock when that tab closes.
  share(name) {
    this.leader = false;
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = e => this.onMessage(e.data);
    this.abort = new AbortController();
    navigator.locks
      .request(name, {signal: this.abort.signal}, () => {
        if (this.stopped) return undefined;
        this.leader = true;
        this.unschedule();
        if (this.token && this.clock.now() < this.token.refreshAt) this.schedule(this.token.refreshAt);
        else this.fetchToken();
        this.changed();
        return new Promise(resolve => (this.release = resolve));
      })
      .catch(() => {}); // aborted by stop
    this.post({t: 'want'});
    this.schedule(this.clock.now() + ASK_MS); // no answer: fetch alone
  }

  post(message) {
    try {
      this.channel?.postMessage(message);
    } catch {
      // closed by stop
    }
  }

  postToken() {
    const now = this.clock.now();
    this.post({t: 'token', token: this.token.value, expiresInMs: this.token.deadline - now, refreshInMs: this.token.refreshAt - now});
  }

  postState() {
    const s = this.snapshot();
    this.post({t: 'state', status: s.status, reason: s.reason, message: s.message, retryInMs: this.retryAt - this.clock.now()});
  }

  onMessage(m) {
    if (this.stopped || !m) return;
    if (m.t === 'want' && this.leader) {
      if (this.token && m.stale !== this.token.value) this.postToken();
      else if (this.token && (m.refused || this.clock.now() >= this.token.refreshAt)) this.tokenRefused(m.refused ? this.token.value : '');
      else this.postState();
    } else if (m.t === 'token' && !this.leader) {
      const now = this.clock.now();
      this.accept(m.token, now + m.expiresInMs, now + m.refreshInMs);
    } else if (m.t === 'state' && !this.leader) {
      if (m.status === 'stopped') return this.stop(m.reason, m.message);
      if (!this.token) this.unschedule(); // the fetching tab answered: wait for it
      if (m.status === 'retrying') {
        this.fault = {reason: m.reason, message: m.message};
        this.retryAt = this.clock.now() + m.retryInMs;
      }
      this.changed();
    }
  }

  // schedule fetches (or asks for) the next token at at. The timer acts
  // itself: browsers may fire it a millisecond before the clock reads at.
  schedule(at) {
    clearTimeout(this.timer);
    this.due = at;
    this.timer = setTimeout(() => !this.stopped && this.due === at && this.fire(), Math.max(0, at - this.clock.now()));
  }

  unschedule() {
    clearTimeout(this.timer);
    this.due = 0;
  }

  // check runs what is due. Timers may fire late or, after a sleep, not
  // yet: the ticker and the page's events call it too.
  check() {
    if (this.stopped) return;
    const now = this.clock.now();
    if (this.due && now >= this.due) this.fire();
    for (const topic of this.topics.values()) {
      if (topic.due && now >= topic.due && this.token) this.subscribe(topic);
      // A connection that died without a word (in a sleep, say) leaves a
      // subscription that will never deliver: end it, and subscribe anew.
      // Silence is counted awake only, so a sleep alone ends nothing.
      for (const st of topic.streams) {
        if (st.live && performance.now() - st.heard > STALL_MS) this.onEnd(topic, st, {errorCode: () => 'STALLED', message: () => `nothing heard for ${STALL_MS / 1000} s`});
      }
    }
    this.changed();
  }

  // wake is called when the page is shown again or the network is back:
  // what waits for the network is retried now, with a little jitter.
  wake(online) {
    if (this.stopped) return;
    const soon = this.clock.now() + Math.random() * 1000;
    if (online && this.fault && ['network', 'offline'].includes(this.fault.reason)) this.schedule(soon);
    for (const topic of this.topics.values()) {
      if (online && topic.due > soon) this.later(topic, soon - this.clock.now());
    }
    this.check();
  }

  // fire is the moment to get the next token: fetch it, or, while another
  // tab fetches, ask that tab, and fetch alone once the token expires.
  fire() {
    this.unschedule();
    if (this.leader) return this.fetchToken();
    if (this.token && this.clock.now() < this.token.deadline) {
      this.post({t: 'want', stale: this.token.value});
      this.schedule(this.token.deadline);
    } else {
      this.fetchToken();
    }
  }

  async fetchToken() {
    if (this.fetching || this.stopped) return;
    this.fetching = true;
    this.unschedule();
    this.changed();
    let r = await this.request(false);
    if (r.status === 401 && this.o.credential && !this.stopped) r = await this.request(true);
    this.fetching = false;
    if (!this.stopped) this.settle(r);
  }

  // request asks the function for a token, with a fresh credential from the
  // page's callback, if any; rejected tells the callback the last was refused.
  async request(rejected) {
    let credential = null;
    try {
      if (this.o.credential) credential = await this.o.credential({rejected});
    } catch (err) {
      return {status: 0, reason: 'credential', message: String(err?.message ?? err)};
    }
    const sent = this.clock.now();
    try {
      const resp = await fetch(this.o.url, {headers: credential ? {Authorization: `Bearer ${credential}`} : {}, cache: 'no-store'});
      const body = await resp.json().catch(() => null);
      return {status: resp.status, body, retryAfter: resp.headers.get('Retry-After'), sent, received: this.clock.now()};
    } catch (err) {
      const offline = globalThis.navigator?.onLine === false;
      return {status: 0, reason: offline ? 'offline' : 'network', message: String(err?.message ?? err)};
    }
  }

  // settle acts on the function's answer.
  settle(r) {
    const b = r.body;
    if (r.status === 200 && typeof b?.token === 'string' && b.token && Number.isFinite(b.expires_in) && b.token !== this.rejected) {
      // refresh_in is the function's choice; without it, the deployed
      // function's rule: 5 minutes before expiry, jittered over the next 2.5.
      const refreshS = Number.isFinite(b.refresh_in) && b.refresh_in >= 0 && b.refresh_in <= b.expires_in
        ? b.refresh_in
        : Math.max(0, b.expires_in - FALLBACK_MARGIN_S) + Math.random() * Math.min(FALLBACK_MARGIN_S / 2, b.expires_in / 4);
      // expires_in counts from when the function answered, after the request
      // was sent; refresh_in is the earliest a new token comes, so count it
      // from when the answer arrived.
      return this.accept(b.token, r.sent + b.expires_in * 1000, r.received + refreshS * 1000);
    }
    const message = (typeof b?.message === 'string' && b.message) || r.message || (r.status === 200 ? 'a malformed or refused token' : `HTTP ${r.status}`);
    if (r.status === 401) return this.stop('unauthorized', message);
    if (r.status === 403) return this.stop('forbidden', message);
    if ([400, 404, 405].includes(r.status)) return this.stop('refused', `HTTP ${r.status}: ${message}`);
    const seconds = Number(r.retryAfter);
    let wait = backoff(this.attempts++, FETCH_BACKOFF_MS);
    if ((r.status === 429 || r.status === 503) && r.retryAfter?.trim() && seconds >= 0) wait = seconds * 1000 * (1 + Math.random() / 4);
    if (r.reason === 'offline') wait = BACKOFF_CAP_MS; // or sooner, when the page hears it is online
    this.fail(r.reason ?? (r.status === 200 ? 'bad-token' : `http-${r.status}`), message, wait);
  }

  fail(reason, message, wait) {
    this.fault = {reason, message};
    this.retryAt = this.clock.now() + wait;
    this.schedule(this.retryAt);
    if (this.leader && this.channel) this.postState();
    this.changed();
  }

  // accept takes a token, from the function or another tab, and subscribes
  // every topic with it; open subscriptions are kept until the new ones
  // have taken over.
  accept(value, deadline, refreshAt) {
    if (this.stopped) return;
    this.fault = null;
    this.attempts = 0;
    if (this.token?.value === value) {
      // The same token (our refresh was early, or another tab answered):
      // ask again when it says, but should it keep saying now, after a
      // pause that grows.
      const now = this.clock.now();
      if (refreshAt > now) this.same = 0;
      else refreshAt = now + Math.min(BACKOFF_CAP_MS, 100 * 2 ** Math.min(this.same++, 16));
      Object.assign(this.token, {deadline, refreshAt});
    } else {
      this.same = 0;
      let client;
      try {
        client = this.client(value);
      } catch (err) {
        return this.fail('bad-token', String(err?.message ?? err), backoff(this.attempts++, FETCH_BACKOFF_MS));
      }
      if (this.token) this.refreshes++;
      this.token = {value, client, gen: ++this.gen, deadline, refreshAt};
      if (this.leader && this.channel) this.postToken();
      for (const topic of this.topics.values()) this.subscribe(topic);
      try {
        this.o.onToken?.(value);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    this.schedule(this.leader ? this.token.refreshAt : this.token.refreshAt + ASK_MS);
    this.changed();
  }

  client(token) {
    const {TopicClient, TopicConfigurations, CredentialProvider} = this.o.sdk;
    const e = this.o.endpoint;
    const credentialProvider = CredentialProvider.fromDisposableToken(
      e ? {authToken: token, endpointOverrides: {cacheEndpoint: e, controlEndpoint: e, tokenEndpoint: e}} : {authToken: token},
    );
    return new TopicClient({configuration: TopicConfigurations.Browser.latest(), credentialProvider});
  }

  // tokenRefused is called when Momento refuses the current token (it
  // expired, during a sleep say, or was revoked): get another now.
  tokenRefused(value) {
    if (value) this.rejected = value;
    if (!this.leader) {
      this.post({t: 'want', stale: this.token?.value, refused: true});
      return this.schedule(this.clock.now() + ASK_MS);
    }
    if (!this.fetching && !this.fault) this.fetchToken();
  }

  // subscribe opens a subscription to topic with the current token. If one
  // is open already, both run until the new one has caught up (retire).
  async subscribe(topic) {
    clearTimeout(topic.timer);
    topic.due = 0;
    const tok = this.token;
    const st = {gen: tok.gen, sub: null, live: false, done: false, first: undefined, pending: [], overlap: false, heard: 0};
    if (topic.streams.length) for (const s of [...topic.streams, st]) s.overlap = true;
    topic.streams.push(st);
    if (topic.status !== 'live') topic.status = 'subscribing';
    let resp;
    try {
      resp = await tok.client.subscribe(this.o.cache, topic.name, {
        onItem: item => this.onItem(topic, st, item),
        onDiscontinuity: d => this.onServerGap(topic, st, d),
        onHeartbeat: () => (st.heard = performance.now()),
        onError: err => this.onEnd(topic, st, err),
      });
    } catch (err) {
      resp = err;
    }
    if (st.done || this.stopped) return resp?.unsubscribe?.();
    if (resp?.type !== 'Subscription') return this.onEnd(topic, st, resp);
    st.sub = resp;
    st.live = true;
    st.heard = performance.now();
    topic.status = 'live';
    topic.message = '';
    topic.retries = 0;
    this.resubscribed(topic);
    if (topic.streams.length > 1) setTimeout(() => this.graceOver(topic, st), GRACE_MS);
    this.retire(topic);
    this.changed();
  }

  // resubscribed says, once a subscription is open again after none was,
  // that items published meanwhile are lost: the web SDK cannot resume at a
  // sequence number. It says so at once, not when (or if) the next item
  // shows the gap. A subscription is open once subscribe() returns, or once
  // its first item or discontinuity is in, whichever is first: the web SDK
  // hands over what came with the first heartbeat before subscribe()
  // returns.
  resubscribed(topic) {
    if (!topic.dropped) return;
    topic.dropped = false;
    topic.covered = true;
    this.gap(topic, 'resubscribed', topic.last, undefined);
  }

  onItem(topic, st, item) {
    if (st.done || this.stopped) return;
    st.heard = performance.now();
    this.resubscribed(topic);
    const seq = item.sequenceNumber();
    if (st.first === undefined) st.first = seq;
    if (topic.last !== undefined && seq <= topic.last) {
      if (st.overlap) return this.retire(topic); // the other subscription handed it over already
      this.gap(topic, 'reset', topic.last, seq - 1); // the numbers restarted: the topic was made anew
      topic.last = seq - 1;
    } else if (topic.last !== undefined && seq > topic.last + 1 && this.older(topic, st)) {
      st.pending.push(item); // the older subscription is still to bring what comes first
      return this.retire(topic);
    }
    this.deliver(topic, item, seq);
    this.flush(topic);
    this.retire(topic);
  }

  older(topic, st) {
    return topic.streams.some(s => !s.done && s.gen < st.gen);
  }

  deliver(topic, item, seq) {
    if (topic.last !== undefined && seq > topic.last + 1 && !topic.covered) this.gap(topic, 'gap', topic.last, seq - 1);
    topic.covered = false;
    topic.last = seq;
    try {
      this.o.onItem?.(item, topic.name);
    } catch (err) {
      queueMicrotask(() => {
        throw err; // the page's bug: report it, and go on
      });
    }
  }

  // flush hands over what newer subscriptions hold once nothing older can
  // bring what comes before it.
  flush(topic) {
    for (const s of topic.streams) {
      while (s.pending.length) {
        const seq = s.pending[0].sequenceNumber();
        if (seq > topic.last + 1 && this.older(topic, s)) break;
        const item = s.pending.shift();
        if (seq > topic.last) this.deliver(topic, item, seq);
      }
    }
  }

  // retire ends the older subscriptions once the newest has caught up
  // with them: its first item is the next, or was handed over already.
  retire(topic) {
    const open = topic.streams.filter(s => !s.done);
    const newest = open[open.length - 1];
    if (open.length < 2 || !newest.live || newest.first === undefined || newest.first > topic.last + 1) return;
    for (const s of open) if (s !== newest) this.end(topic, s);
    this.flush(topic);
    this.changed();
  }

  // graceOver ends what a live new subscription still overlaps after
  // GRACE_MS: on a quiet topic there is nothing to catch up on, and an old
  // subscription that lags (or hangs on a dead connection) by that much
  // gives way. What it still had then shows as a gap, never silently.
  graceOver(topic, st) {
    if (st.done || this.stopped) return;
    for (const s of topic.streams) if (!s.done && s.gen < st.gen) this.end(topic, s);
    this.flush(topic);
    this.changed();
  }

  end(topic, st) {
    st.done = true;
    topic.streams = topic.streams.filter(s => s !== st);
    try {
      st.sub?.unsubscribe();
    } catch {
      // already ended
    }
  }

  onServerGap(topic, st, d) {
    st.heard = performance.now();
    if (st.done || this.stopped || topic.last === undefined) return;
    this.resubscribed(topic);
    const next = d.newSequenceNumber();
    if (next < topic.last && !st.overlap) {
      this.gap(topic, 'reset', topic.last, next);
      topic.last = next;
    } else if (next > topic.last && !this.older(topic, st)) {
      this.gap(topic, 'server', topic.last, next); // Momento could not send these
      topic.last = next;
    }
  }

  // onEnd handles a subscription that failed or ended other than by us.
  onEnd(topic, st, err) {
    if (st.done || this.stopped) return;
    const wasLive = st.live;
    this.end(topic, st);
    const code = typeof err?.errorCode === 'function' ? err.errorCode() : 'UNKNOWN_ERROR';
    const message = typeof err?.message === 'function' ? err.message() : String(err?.message ?? err);
    if (topic.streams.length && this.older(topic, st)) {
      // A new subscription failed while the old one carries on: try again,
      // unless the new token lacks the topic (refused once the old one ends).
      if (code === 'PERMISSION_ERROR') return;
    } else if (topic.streams.length) {
      // An old one ended (its token expired) while a new one carries on. If
      // that one is not live yet, items in between may be lost.
      if (wasLive && !topic.streams.some(s => s.live)) topic.dropped = true;
      this.flush(topic);
      this.retire(topic);
      return this.changed();
    } else if (wasLive) {
      topic.dropped = true;
    }
    if (code === 'PERMISSION_ERROR' && !topic.streams.length) {
      topic.status = 'refused';
      topic.message = message;
      if ([...this.topics.values()].every(t => t.status === 'refused')) return this.stop('refused', `no topic is allowed for this caller: ${message}`);
      return this.changed();
    }
    if (code === 'AUTHENTICATION_ERROR' && this.token) {
      if (st.gen < this.token.gen) return this.subscribe(topic); // a newer token is here
      if (!topic.streams.length) topic.status = 'subscribing';
      this.changed();
      return this.tokenRefused(this.token.value); // every topic is subscribed again with the next
    }
    if (!topic.streams.length) {
      topic.status = 'retrying';
      topic.message = message;
    }
    this.later(topic, backoff(topic.retries++, SUBSCRIBE_BACKOFF_MS));
    this.changed();
  }

  // later subscribes to topic again in wait ms, when there is a token.
  later(topic, wait) {
    clearTimeout(topic.timer);
    const due = (topic.due = this.clock.now() + wait);
    topic.timer = setTimeout(() => !this.stopped && topic.due === due && this.token && this.subscribe(topic), wait);
  }

  gap(topic, reason, last, next) {
    this.gaps++;
    try {
      this.o.onDiscontinuity?.({topic: topic.name, reason, lastSequenceNumber: last, newSequenceNumber: next});
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  stop(reason, message) {
    if (this.stopped) return;
    this.fault = {reason, message};
    if (this.leader && this.channel && reason !== 'stopped') {
      this.stopped = true;
      this.postState(); // the other tabs are the same caller: they stop too
    }
    this.stopped = true;
    clearInterval(this.ticker);
    this.unschedule();
    for (const topic of this.topics.values()) {
      clearTimeout(topic.timer);
      for (const st of [...topic.streams]) this.end(topic, st);
    }
    for (const off of this.unlisten) off();
    this.abort?.abort();
    this.release?.();
    this.channel?.close();
    this.changed();
  }

  snapshot() {
    const now = this.clock.now(), wall = Date.now();
    const at = t => (t ? Math.round(wall + t - now) : undefined);
    const topics = {};
    for (const t of this.topics.values()) topics[t.name] = t.message ? {status: t.status, message: t.message} : {status: t.status};
    const wanted = [...this.topics.values()].filter(t => t.status !== 'refused');
    let status = 'connecting';
    if (this.stopped) status = 'stopped';
    else if (this.fault) status = 'retrying';
    else if (this.token && (this.fetching || wanted.some(t => t.streams.length > 1))) status = 'refreshing';
    else if (this.token && wanted.every(t => t.status === 'live')) status = 'live';
    return {
      status,
      reason: this.fault?.reason,
      message: this.fault?.message,
      retryAt: status === 'retrying' ? at(this.retryAt) : undefined,
      expiresAt: at(this.token?.deadline),
      refreshAt: this.stopped ? undefined : at(this.token?.refreshAt),
      refreshes: this.refreshes,
      discontinuities: this.gaps,
      sharing: !this.channel ? 'off' : this.leader ? 'fetching' : 'receiving',
      topics,
    };
  }

  // changed tells the page the state, when it changed.
  changed() {
    const s = this.snapshot();
    const key = JSON.stringify([s.status, s.reason, s.message, s.retryAt, s.refreshes, s.discontinuities, s.sharing, s.topics, this.gen]);
    if (key === this.lastKey) return;
    this.lastKey = key;
    try {
      this.o.onState?.(s);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}
