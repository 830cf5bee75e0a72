"""The OpenAPI 3.1 document of /api, served at /api/openapi.json (tests check it against the routes)."""

from __future__ import annotations

from analysis import __version__
from analysis.params import PARAMETER_SPECS
from analysis.result import METRIC_KEYS
from dashboard.errors import ERRORS
from store.models import JOB_STATUSES

JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, schema: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema}}}}


def _file(description: str, media: str) -> dict:
    return {"description": description, "content": {media: {"schema": {"type": "string", "format": "binary"}}}}


def document(prefix: str = "/") -> dict:
    parameters_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            spec.name: (
                {"type": "string", "enum": list(spec.choices), "default": spec.default}
                if spec.choices
                else {
                    "type": "integer" if spec.kind is int else "number",
                    "default": spec.default,
                    "description": f"{spec.help} Allowed {spec.describe_range()}.",
                }
            )
            for spec in PARAMETER_SPECS
        },
    }
    job_paths = {
        "/jobs": {
            "post": {
                "summary": "Submit a peak table; it is checked completely, stored and queued.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {
                                        "type": "string",
                                        "format": "binary",
                                        "description": "CSV, TSV or XLSX: Name, RT, Volume, Anchor, optional Log P.",
                                    },
                                    "params": {
                                        "type": "string",
                                        "description": "JSON object of analysis parameters "
                                        "(see the Parameters schema).",
                                    },
                                    "mapping": {
                                        "type": "string",
                                        "description": "JSON object {field: column} naming the columns "
                                        'of other names, e.g. {"RT": "Average Rt(min)"}; fields Name, '
                                        "RT, Volume, Log P, Anchor.",
                                    },
                                    "notify_email": {
                                        "type": "string",
                                        "format": "email",
                                        "description": "Mailed when the job finishes (if SMTP_URL is set).",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json("Accepted and queued.", "#/components/schemas/Accepted"),
                    "400": _error("No file, or params is not a JSON object."),
                    "413": _error("The file is larger than MAX_UPLOAD_MB."),
                    "415": _error("Not a table format the app reads (binary, legacy .xls, not UTF-8)."),
                    "422": _error("The table or the parameters are invalid; details list each bad cell."),
                    "503": _error("The queue is unreachable; the job was stored as failed."),
                },
            },
            "get": {
                "summary": "List jobs, newest first.",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": f"Comma-separated statuses out of {', '.join(JOB_STATUSES)}.",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                    },
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
                    {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "Part of the file name."},
                ],
                "responses": {
                    "200": _json("Jobs and counts by status.", "#/components/schemas/JobList"),
                    "400": _error("Unknown status or a limit that is not a number."),
                },
            },
        },
        "/jobs/{job_id}": {
            "get": {
                "summary": "One job's state.",
                "parameters": [JOB_ID],
                "responses": {"200": _json("The job.", "#/components/schemas/Job"), "404": _error("No such job.")},
            },
            "delete": {
                "summary": "Delete a finished job and all its results.",
                "parameters": [JOB_ID],
                "responses": {
                    "204": {"description": "Deleted."},
                    "404": _error("No such job."),
                    "409": _error("The job is queued or running; cancel it first."),
                },
            },
        },
        "/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a queued or running job.",
                "parameters": [JOB_ID],
                "responses": {
                    "200": _json("Cancelled.", "#/components/schemas/Job"),
                    "404": _error("No such job."),
                    "409": _error("The job has already finished."),
                },
            }
        },
        "/jobs/{job_id}/retry": {
            "post": {
                "summary": "Queue a failed or cancelled job again.",
                "parameters": [JOB_ID],
                "responses": {
                    "202": _json("Queued again.", "#/components/schemas/Job"),
                    "404": _error("No such job."),
                    "409": _error("Only failed or cancelled jobs can be retried."),
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Database, Redis, workers and queue depth.",
                "responses": {
                    "200": _json(
                        "Usable (status ok, or degraded when no worker answers).", "#/components/schemas/Health"
                    ),
                    "503": _json("The database (or Redis in full mode) is unavailable.", "#/components/schemas/Health"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3.1 document.", "content": {"application/json": {}}}},
            }
        },
    }
    for suffix, media, description in (
        ("", "application/json", "The result document (JSON)."),
        (".json", "application/json", "The result document (JSON), as a download named after the input file."),
        (".csv", "text/csv", "The per-row table as CSV."),
        (
            ".xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "A workbook: rows, models, fragments, O-acetylation, isomer series, invalid rows, parameters & provenance.",
        ),
    ):
        success = (
            _json(description, "#/components/schemas/Result")
            if media == "application/json"
            else _file(description, media)
        )
        job_paths[f"/jobs/{{job_id}}/results{suffix}"] = {
            "get": {
                "summary": f"Results of a succeeded job{' as ' + suffix[1:].upper() if suffix else ''}.",
                "parameters": [JOB_ID],
                "responses": {
                    "200": success,
                    "404": _error("No such job."),
                    "409": _error("The job has not succeeded (yet)."),
                },
            }
        }
    job_state = {
        "type": "object",
        "required": ["id", "status", "seq", "percent", "step", "message", "created_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": list(JOB_STATUSES)},
            "seq": {"type": "integer", "description": "Number of the job's latest event."},
            "percent": {"type": "integer", "minimum": 0, "maximum": 100},
            "step": {"type": "string"},
            "message": {"type": "string"},
            "error": {"type": ["string", "null"]},
            "attempts": {"type": "integer"},
            "parameters": {"$ref": "#/components/schemas/Parameters"},
            "filename": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "heartbeat_at": {"type": ["string", "null"], "format": "date-time"},
            "duration_seconds": {"type": ["number", "null"]},
            "worker": {"type": ["string", "null"]},
            "links": {"$ref": "#/components/schemas/Links"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ganglioside RT check API",
            "version": __version__,
            "description": "Submit peak tables, follow jobs, fetch results. Live progress is on the "
            "WebSockets /ws/jobs/{job_id} and /ws/jobs (see docs/api.md).",
        },
        "servers": [{"url": f"{prefix}api"}],
        "paths": job_paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message", "details"],
                            "properties": {
                                "code": {"type": "string", "enum": list(ERRORS)},
                                "message": {"type": "string"},
                                "details": {"type": "array", "items": {"type": "object"}},
                            },
                        }
                    },
                },
                "Links": {
                    "type": "object",
                    "required": ["self", "results", "ws", "page"],
                    "properties": {k: {"type": "string"} for k in ("self", "results", "ws", "page")},
                },
                "Accepted": {
                    "type": "object",
                    "required": ["id", "status", "links"],
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": ["queued"]},
                        "links": {"$ref": "#/components/schemas/Links"},
                    },
                },
                "Parameters": parameters_schema,
                "Job": job_state,
                "JobList": {
                    "type": "object",
                    "required": ["jobs", "counts"],
                    "properties": {
                        "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "mode", "database", "workers"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
                        "mode": {"type": "string", "enum": ["embedded", "full"]},
                        "database": {"type": "object"},
                        "redis": {"type": "object"},
                        "workers": {"type": "object"},
                        "queue_depth": {"type": ["integer", "null"]},
                        "jobs": {"type": ["object", "null"]},
                    },
                },
                "Result": {
                    "type": "object",
                    "required": ["summary", "metrics", "rows", "models", "parameters", "provenance"],
                    "properties": {
                        "summary": {"type": "object"},
                        "metrics": {
                            "type": "object",
                            "required": list(METRIC_KEYS),
                        },
                        "rows": {"type": "array", "items": {"type": "object"}},
                        "models": {"type": "array", "items": {"type": "object"}},
                        "fragments": {"type": "array"},
                        "oacetylation": {"type": "array"},
                        "isomer_pairs": {"type": "array"},
                        "invalid_rows": {"type": "array"},
                        "parameters": {"$ref": "#/components/schemas/Parameters"},
                        "provenance": {"type": "object"},
                    },
                },
            }
        },
    }
