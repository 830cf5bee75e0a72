"""Every component id the pages and callbacks share, in one place.

assets/clientside.js names the few it needs itself (its IDS object); a test checks they match.
"""

# Root layout (outlives page changes: background-callback outputs and socket stores live here)
REDIRECT = "redirect"
JOB_EVENTS = "job-events"  # state of the job being watched (ws-client.js → watchJob)
ALL_JOBS = "all-jobs"  # every job's state for the status page (ws-client.js → watchAllJobs)
ANALYZE_RUNNING = "analyze-running"
ANALYZE_RESULT = "analyze-result"
GLOBAL_ALERT = "global-alert"

# Upload page
UPLOAD = "upload"
EXAMPLE_BUTTON = "example-button"
STAGED = "staged-uploads"
FILE_CARDS = "file-cards"
PARAMS_TOGGLE = "params-toggle"
PARAMS_COLLAPSE = "params-collapse"
PARAM_INPUT = "param-input"  # pattern-matching: {"type": PARAM_INPUT, "name": <parameter>}
PARAM_FEEDBACK = "param-feedback"
NOTIFY_EMAIL = "notify-email"
ANALYZE_BUTTON = "analyze-button"
ANALYZE_STATUS = "analyze-status"
ANALYZE_BAR = "analyze-bar"
UPLOAD_ALERT = "upload-alert"

# Job page
JOB_ID = "job-id"
JOB_TITLE = "job-title"
JOB_WATCH = "job-watch"  # output of the clientside call that starts following the job
JOB_REQUEUED = "job-requeued"  # the event number of a retry: follow the job again
JOB_TRANSPORT = "job-transport"
JOB_PROGRESS = "job-progress"
JOB_PROGRESS_BAR = "job-progress-bar"
JOB_LOG = "job-log"
JOB_RESULTS = "job-results"
JOB_URL = "job-url"
HEAD_SELECT = "head-select"
PLOT_TABS = "plot-tabs"
MAIN_TABS = "main-tabs"
TAB_CONTENT = "tab-content"
VIEW_STATE = "job-url-state"
MAIN_GRAPH = "main-graph"
ROWS_GRID = "rows-grid"
QUICK_SEARCH = "quick-search"
STATUS_FILTER = "status-filter"
DOWNLOAD_FIGURE = "download-figure"
FIGURE_HTML_BUTTON = "figure-html-button"
FIGURE_PNG_BUTTON = "figure-png-button"
FIGURE_SVG_BUTTON = "figure-svg-button"
RETRY_BUTTON = "retry-button"
CANCEL_BUTTON = "cancel-button"
JOB_ALERT = "job-alert"

# Jobs page
JOBS_GRID = "jobs-grid"
JOBS_STATUS_FILTER = "jobs-status-filter"
JOBS_SEARCH = "jobs-search"
JOBS_HEALTH = "jobs-health"
JOBS_HEALTH_TIMER = "jobs-health-timer"
JOBS_CANCEL = "jobs-cancel"
JOBS_RETRY = "jobs-retry"
JOBS_DELETE = "jobs-delete"
JOBS_CONFIRM_DELETE = "jobs-confirm-delete"
JOBS_ALERT = "jobs-alert"
JOBS_TRANSPORT = "jobs-transport"

# Accounts (navbar, account and admin pages)
SIGNED_IN = "signed-in"
SIGN_OUT = "sign-out"
ACCOUNT_ALERT = "account-alert"
PASSWORD_CURRENT = "password-current"
PASSWORD_NEW = "password-new"
PASSWORD_REPEAT = "password-repeat"
PASSWORD_SAVE = "password-save"
TOKEN_LABEL = "token-label"
TOKEN_CREATE = "token-create"
TOKEN_LIST = "token-list"
TOKEN_REVOKE = "token-revoke"
ADMIN_ALERT = "admin-alert"
ADMIN_USERS = "admin-users"
ADMIN_USER = "admin-user"
ADMIN_ROLE = "admin-role"
ADMIN_GROUP = "admin-group"
ADMIN_APPLY = "admin-apply"
ADMIN_DISABLE = "admin-disable"
ADMIN_ENABLE = "admin-enable"
ADMIN_NEW_NAME = "admin-new-name"
ADMIN_NEW_PASSWORD = "admin-new-password"
ADMIN_ADD = "admin-add"
ADMIN_AUDIT = "admin-audit"
