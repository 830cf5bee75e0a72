"""Entry point: builds the Dash app from settings.

    python app.py                               serve on HOST:PORT (embedded mode unless REDIS_URL is set)
    gunicorn -k gthread --threads 32 app:server  production web server
    celery -A app:celery_app worker             analysis workers (full stack)
    celery -A app:celery_app beat               periodic tasks (exactly one)

Workers import this module too, so every page and background callback is registered in
the same way in the web process and in the workers (Dash names a background callback's
task after its code).
"""

from __future__ import annotations

import os
import sys

from dashboard.factory import create_app, make_celery_app
from settings import get_settings

# An embedded analysis process loads this file again as __mp_main__ (multiprocessing does so for
# every process it starts); it runs only the engine, so it builds nothing here.
if __name__ != "__mp_main__":
    _settings = get_settings()
    celery_app = make_celery_app(_settings)
    app = create_app(_settings, celery=celery_app)
    server = app.server

if __name__ != "__mp_main__" and "gunicorn" in os.path.basename(sys.argv[0]):
    # A cold gunicorn worker can fail its first script requests ("dash is not a registered
    # library"); serving the index once at import registers everything (plotly/dash#3971).
    server.test_client().get(_settings.url_prefix)

if __name__ == "__main__":
    app.run(host=_settings.host, port=_settings.port, debug=False, threaded=True)
