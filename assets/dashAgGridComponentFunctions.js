/* Cell renderers for the dashboard's AG Grid tables (dash-ag-grid reads them from here). */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

/* A peak's or a job's status as a coloured badge; the word stays, so colour is never needed. */
dagcomponentfuncs.StatusBadge = function (props) {
  if (!props.value) {
    return null;
  }
  return React.createElement("span", { className: "badge status-badge status-" + props.value }, props.value);
};

/* Flags of a row as small outlined badges. */
dagcomponentfuncs.Flags = function (props) {
  const flags = Array.isArray(props.value) ? props.value : props.value ? String(props.value).split(";") : [];
  return React.createElement(
    "span",
    null,
    flags.filter(Boolean).map(function (flag) {
      return React.createElement("span", { key: flag, className: "badge text-bg-light border me-1 flag-badge" },
                                 flag.replace(/_/g, " "));
    })
  );
};

/* A job's progress as a thin Bootstrap progress bar with its percentage. */
dagcomponentfuncs.ProgressBar = function (props) {
  const percent = Math.max(0, Math.min(100, Number(props.value) || 0));
  const status = props.data ? props.data.status : "";
  const running = status === "running" || status === "queued";
  return React.createElement(
    "div",
    { className: "progress job-progress", role: "progressbar", "aria-valuenow": percent, "aria-valuemin": 0,
      "aria-valuemax": 100, "aria-label": "progress" },
    React.createElement("div", {
      className: "progress-bar" + (running ? " progress-bar-striped progress-bar-animated" : "") +
        (status === "failed" ? " bg-danger" : status === "cancelled" ? " bg-secondary" : ""),
      style: { width: percent + "%" },
    }, percent + "%")
  );
};

/* A link to a job's page. */
dagcomponentfuncs.JobLink = function (props) {
  if (!props.value) {
    return null;
  }
  const prefix = (function () {
    const config = document.getElementById("_dash-config");
    try {
      return JSON.parse(config.textContent).requests_pathname_prefix || "/";
    } catch (error) {
      return "/";
    }
  })();
  return React.createElement("a", { href: prefix + "jobs/" + props.data.id }, props.value);
};
