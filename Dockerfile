# One image for every process of the full stack: web (gunicorn), worker, beat, flower and
# the migrate step. docker-compose.yml chooses the command; the default is the web server.
FROM python:3.11.13-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_ENV=production \
    DATA_DIR=/var/lib/rtcheck

# A fixed uid/gid, so files written to bind-mounted folders have a predictable owner.
RUN groupadd --system --gid 10001 rtcheck \
    && useradd --system --uid 10001 --gid rtcheck --home-dir /var/lib/rtcheck --no-create-home \
       --shell /usr/sbin/nologin rtcheck \
    && install -d -o rtcheck -g rtcheck -m 0750 /var/lib/rtcheck /var/lib/rtcheck/beat

WORKDIR /app

# Runtime dependencies only (requirements.txt pins every version); a layer of its own so a
# code change does not reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The code stays owned by root: the service user can read it but not change it. Compiling
# here saves every process the work at start, since it cannot write __pycache__ itself.
COPY . .
RUN python -m compileall -q /app

USER rtcheck

EXPOSE 8050 5555

# gthread: Flask-Sock holds one thread per open WebSocket (waitress and sync workers cannot
# serve the /ws/ routes).
CMD ["gunicorn", "-k", "gthread", "--threads", "32", "-w", "2", "-b", "0.0.0.0:8050", "--timeout", "120", "app:server"]
