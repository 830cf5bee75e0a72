/*
 * Live job progress for the dashboard.
 *
 * rtcheck.watchJob(jobId, storeId)   follows /ws/jobs/<id> and writes its state into a dcc.Store
 * rtcheck.watchAllJobs(storeId)      follows /ws/jobs (every job) for the status page
 *
 * URLs are built from window.location and the app's path prefix. A dropped socket is reopened
 * with exponential backoff (0.5 s doubling to 10 s); the server replays what was missed from
 * its stored events. A socket that never opens falls back to polling the JSON API. The client
 * closes first once it has the terminal message, as the server expects.
 */
(function () {
  "use strict";

  const TERMINAL = ["succeeded", "failed", "cancelled", "deleted"];
  const LOG_LENGTH = 200;
  const watchers = {};

  function prefix() {
    const config = document.getElementById("_dash-config");
    if (config) {
      try {
        return JSON.parse(config.textContent).requests_pathname_prefix || "/";
      } catch (error) {
        /* fall through */
      }
    }
    return "/";
  }

  function socketUrl(path) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + prefix() + path;
  }

  // The target stores live in the root layout, so they exist on every page.
  function publish(storeId, data) {
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props(storeId, { data: Object.assign({}, data) });
    }
  }

  class Watcher {
    constructor(path, storeId, apiPath) {
      this.path = path;
      this.storeId = storeId;
      this.apiPath = apiPath;
      this.delay = 500;
      this.opened = false;
      this.stopped = false;
      this.socket = null;
      this.pollTimer = null;
      this.retryTimer = null;
    }

    start() {
      this.connect();
      return this;
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.retryTimer);
      clearTimeout(this.pollTimer);
      if (this.socket && this.socket.readyState <= 1) {
        this.socket.close(1000, "page closed");
      }
    }

    connect() {
      if (this.stopped) {
        return;
      }
      let socket;
      try {
        socket = new WebSocket(socketUrl(this.path));
      } catch (error) {
        this.fallBackToPolling();
        return;
      }
      this.socket = socket;
      socket.onopen = () => {
        this.opened = true;
        this.delay = 500;
        this.transport("websocket");
      };
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (this.receive(message)) {
          this.stopped = true;
          socket.close(1000, "done");
        }
      };
      socket.onclose = (event) => {
        if (this.stopped) {
          return;
        }
        if (event.code === 4404) {
          this.stopped = true;
          this.gone(event.reason || "unknown job");
          return;
        }
        if (!this.opened && this.delay >= 4000) {
          this.fallBackToPolling();
          return;
        }
        this.transport("reconnecting");
        this.retryTimer = setTimeout(() => this.connect(), this.delay);
        this.delay = Math.min(this.delay * 2, 10000);
      };
    }

    fallBackToPolling() {
      this.transport("polling");
      const poll = () => {
        if (this.stopped) {
          return;
        }
        fetch(prefix() + this.apiPath, { headers: { Accept: "application/json" } })
          .then((response) => {
            if (response.status === 404) {
              this.stopped = true;
              this.gone("unknown job");
              return null;
            }
            return response.ok ? response.json() : null;
          })
          .then((body) => {
            if (body && this.receivePolled(body)) {
              this.stopped = true;
              return;
            }
            this.pollTimer = setTimeout(poll, 2000);
          })
          .catch(() => {
            this.pollTimer = setTimeout(poll, 4000);
          });
      };
      poll();
    }
  }

  class JobWatcher extends Watcher {
    constructor(jobId, storeId) {
      super("ws/jobs/" + jobId, storeId, "api/jobs/" + jobId);
      this.state = { job_id: jobId, status: null, percent: 0, step: "", message: "", seq: 0, log: [],
                     transport: "connecting", terminal: false };
    }

    transport(kind) {
      this.state.transport = kind;
      publish(this.storeId, this.state);
    }

    gone(reason) {
      this.state.error = reason;
      this.state.terminal = true;
      publish(this.storeId, this.state);
    }

    apply(update) {
      if (update.seq !== undefined && update.seq < this.state.seq) {
        return this.state.terminal;
      }
      ["status", "percent", "step", "message", "seq", "error"].forEach((key) => {
        if (update[key] !== undefined) {
          this.state[key] = update[key];
        }
      });
      this.state.terminal = TERMINAL.indexOf(this.state.status) >= 0;
      return this.state.terminal;
    }

    receive(message) {
      let done;
      if (message.type === "snapshot") {
        done = this.apply(message.job);
      } else {
        done = this.apply(message);
        this.state.log = this.state.log.concat([
          { seq: message.seq, percent: message.percent, step: message.step, message: message.message,
            ts: message.ts },
        ]).slice(-LOG_LENGTH);
      }
      publish(this.storeId, this.state);
      return done;
    }

    receivePolled(body) {
      const done = this.apply(body);
      publish(this.storeId, this.state);
      return done;
    }
  }

  class AllJobsWatcher extends Watcher {
    constructor(storeId) {
      super("ws/jobs", storeId, "api/jobs?limit=200");
      this.jobs = {};
      this.state = { jobs: [], counts: {}, transport: "connecting", version: 0 };
      this.refreshing = false;
    }

    transport(kind) {
      this.state.transport = kind;
      this.emit();
    }

    gone() {}

    emit() {
      this.state.jobs = Object.values(this.jobs).sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
      this.state.version += 1;
      publish(this.storeId, this.state);
    }

    replaceAll(jobs, counts) {
      // A listing can be older than events that arrived while it was fetched: per job, the
      // state with the higher event number wins.
      const previous = this.jobs;
      this.jobs = {};
      jobs.forEach((job) => {
        const known = previous[job.id];
        this.jobs[job.id] = known && known.seq > job.seq ? Object.assign({}, job, known) : job;
      });
      if (counts) {
        this.state.counts = counts;
      }
      this.emit();
    }

    refresh() {
      if (this.refreshing) {
        this.refreshAgain = true; // asked while a listing is in flight: fetch once more after it
        return;
      }
      this.refreshing = true;
      this.refreshAgain = false;
      const done = () => {
        this.refreshing = false;
        if (this.refreshAgain) {
          this.refresh();
        }
      };
      fetch(prefix() + "api/jobs?limit=200", { headers: { Accept: "application/json" } })
        .then((response) => (response.ok ? response.json() : null))
        .then((body) => {
          if (body) {
            this.replaceAll(body.jobs, body.counts);
          }
          done();
        })
        .catch(done);
    }

    receive(message) {
      if (message.type === "snapshot") {
        this.replaceAll(message.jobs, message.counts);
        return false;
      }
      const job = this.jobs[message.job_id];
      if (message.status === "deleted") {
        delete this.jobs[message.job_id];
        this.emit();
        return false;
      }
      if (!job || message.status === "queued" || TERMINAL.indexOf(message.status) >= 0) {
        this.refresh(); // new jobs and finished ones: fetch names, durations and counts
      }
      if (job && (job.seq === undefined || message.seq > job.seq)) {
        Object.assign(job, { status: message.status, percent: message.percent, step: message.step,
                             message: message.message, seq: message.seq });
        this.emit();
      }
      return false;
    }

    receivePolled(body) {
      this.replaceAll(body.jobs, body.counts);
      return false;
    }
  }

  function watch(key, make) {
    if (watchers[key]) {
      watchers[key].stop();
    }
    watchers[key] = make().start();
    return watchers[key];
  }

  window.rtcheck = {
    watchJob: function (jobId, storeId) {
      return watch(storeId, () => new JobWatcher(jobId, storeId));
    },
    watchAllJobs: function (storeId) {
      return watch(storeId, () => new AllJobsWatcher(storeId));
    },
    stop: function (storeId) {
      if (watchers[storeId]) {
        watchers[storeId].stop();
        delete watchers[storeId];
      }
    },
  };
})();
