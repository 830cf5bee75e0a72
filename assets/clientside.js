/*
 * The dashboard's clientside callbacks (wired up in the page modules with ClientsideFunction).
 *
 * Component ids come from dashboard/ids.py; the few used here are listed in IDS, and a test
 * checks they match. Job state arrives in two root stores that ws-client.js fills from the
 * WebSocket streams: the job being watched, and every job.
 */
(function () {
  "use strict";

  const IDS = {
    jobEvents: "job-events",
    allJobs: "all-jobs",
    mainGraph: "main-graph",
    figureSvgButton: "figure-svg-button",
  };
  const TERMINAL = ["succeeded", "failed", "cancelled", "deleted"];
  const TRANSPORT = {
    websocket: "live",
    reconnecting: "connection lost, reconnecting…",
    polling: "live updates unavailable, checking every 2 s",
    connecting: "connecting…",
  };

  function noUpdate() {
    return window.dash_clientside.no_update;
  }

  function appPrefix() {
    return JSON.parse(document.getElementById("_dash-config").textContent).requests_pathname_prefix;
  }

  function rememberView(names, values) {
    const params = new URLSearchParams(window.location.search);
    values.forEach(function (value, i) {
      if (names[i] && value) {
        params.set(names[i], value);
      }
    });
    window.history.replaceState(null, "", window.location.pathname + "?" + params.toString());
    return Object.fromEntries(params.entries());
  }

  function analysisProgress(result, state) {
    if (!result || !result.job_ids || !result.job_ids.length) {
      return null;
    }
    if (window.rtcheck && (!state || !state.jobs)) {
      window.rtcheck.watchAllJobs(IDS.allJobs);
    }
    const byId = {};
    ((state && state.jobs) || []).forEach(function (job) {
      byId[job.id] = job;
    });
    const jobs = result.job_ids.map(function (id) {
      return byId[id] || { id: id, status: "queued", percent: 0, message: "waiting for a worker" };
    });
    const ended = function (job) {
      return TERMINAL.indexOf(job.status) >= 0;
    };
    const percent = Math.round(
      jobs.reduce(function (sum, job) {
        return sum + (ended(job) ? 100 : job.percent || 0);
      }, 0) / jobs.length
    );
    const current = jobs.find(function (job) {
      return !ended(job);
    });
    let status;
    if (current) {
      const which = jobs.length > 1 ? "file " + (jobs.indexOf(current) + 1) + " of " + jobs.length + ": " : "";
      status = which + (current.message || current.status);
    } else {
      status = jobs.length === 1 ? jobs[0].status : "all " + jobs.length + " files done";
    }
    return { percent: percent, status: status, done: !current };
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    rtcheck: {
      // Upload page: the jobs an Analyze click queued, followed on the all-jobs stream. The bar
      // is the mean progress of those jobs; when all have ended the page moves to the first one's
      // results (unless the user went elsewhere meanwhile).
      analysisBar: function (result, state, _bar) {
        const progress = analysisProgress(result, state);
        return progress ? [progress.percent, progress.percent + "%", progress.status] : [0, "", ""];
      },
      analysisDone: function (result, state) {
        const progress = analysisProgress(result, state);
        if (progress && progress.done && result.href && window.location.pathname === appPrefix()) {
          return result.href;
        }
        return noUpdate();
      },

      // Jobs page: start the all-jobs stream, then filter its rows on the client.
      watchAllJobs: function () {
        if (window.rtcheck) {
          window.rtcheck.watchAllJobs(IDS.allJobs);
        }
        return noUpdate();
      },
      jobRows: function (state, statuses, search) {
        if (!state) {
          return [[], "connecting…"];
        }
        const needle = (search || "").toLowerCase();
        const rows = (state.jobs || []).filter(function (job) {
          if (statuses && statuses.length && statuses.indexOf(job.status) < 0) {
            return false;
          }
          return !needle || (String(job.filename) + " " + String(job.message)).toLowerCase().indexOf(needle) >= 0;
        });
        const transport = {
          websocket: "● live",
          reconnecting: "reconnecting…",
          polling: "checking every 2 s",
          connecting: "connecting…",
        };
        return [rows, transport[state.transport] || ""];
      },

      // Job page: follow the job (again after a retry: `restart` changes), render its progress.
      watchJob: function (jobId, _restart) {
        if (jobId && window.rtcheck) {
          window.rtcheck.watchJob(jobId, IDS.jobEvents);
        }
        return noUpdate();
      },
      jobProgress: function (events, jobId) {
        if (!events || events.job_id !== jobId) {
          return [noUpdate(), noUpdate(), noUpdate(), noUpdate(), noUpdate()];
        }
        const lines = (events.log || []).map(function (e) {
          return "[" + String(e.percent).padStart(3) + "%] " + e.step + ": " + e.message;
        });
        const text = lines.length ? lines.join("\n") : events.message || "";
        const active = TERMINAL.indexOf(events.status) < 0;
        const transport = active ? TRANSPORT[events.transport] || "" : "";
        return [events.percent, events.percent + "%", text, transport, active];
      },
      rememberPeaksView: function (head, plot) {
        return rememberView(["head", "plot"], [head, plot]);
      },
      rememberTab: function (tab, _id) {
        return rememberView(["tab", null], [tab, null]);
      },
      downloadImage: function (_png, _svg) {
        const which = window.dash_clientside.callback_context.triggered_id;
        const graph = document.querySelector("#" + IDS.mainGraph + " .js-plotly-plot");
        if (graph && window.Plotly) {
          window.Plotly.downloadImage(graph, {
            format: which === IDS.figureSvgButton ? "svg" : "png",
            filename: "rt-check",
            width: 1400,
            height: 900,
          });
        }
        return noUpdate();
      },
    },
  });
})();
