"""Constants for the Polytomic source. Facts come from the official SDK (polytomic 25.9.10)."""

from typing import Final

DEFAULT_BASE_URL: Final = "https://app.polytomic.com"
# Without this header the API silently serves version 2021-05-23.
DEFAULT_API_VERSION: Final = "2025-09-18"

SYNCS_PATH: Final = "/api/bulk/syncs"
EXECUTIONS_PATH: Final = "/api/bulk/syncs/{sync_id}/executions"
EXECUTION_PATH: Final = "/api/bulk/syncs/{sync_id}/executions/{execution_id}"

PAGE_LIMIT: Final = 100  # the documented maximum page size of the executions list

# Statuses that `only_terminal=true` is documented to return. The first three are documented;
# `errors` and `interrupted` are UNVERIFIED but read as terminal by their meaning.
DOCUMENTED_TERMINAL: Final = frozenset({"completed", "failed", "canceled"})
TERMINAL_STATUSES: Final = DOCUMENTED_TERMINAL | {"errors", "interrupted"}
IN_FLIGHT_STATUSES: Final = frozenset(
    {"created", "scheduled", "running", "exporting", "processing", "canceling"}
)

DEFAULT_LOOKBACK_SECONDS: Final = 600
DEFAULT_CHECKPOINT_PAGES: Final = 50  # pages per sync per load: 5,000 executions
# Execution plus schema rows per load, all syncs together: bounds a load's memory.
DEFAULT_MAX_ROWS_PER_LOAD: Final = 50_000
DEFAULT_CONCURRENCY: Final = 4  # syncs walked at once
DEFAULT_HYDRATION_CONCURRENCY: Final = 8
DEFAULT_TIMEOUT_SECONDS: Final = 60.0
DEFAULT_MAX_ATTEMPTS: Final = 5
DEFAULT_MAX_RETRY_AFTER_SECONDS: Final = 300.0
MAX_REWALKS_PER_SYNC: Final = 3
MAX_RECENT_IDS: Final = 200  # ids remembered inside the lookback window, per sync
DEFAULT_MAX_EMPTY_PAGES: Final = 3  # consecutive empty pages whose token is still followed
DEFAULT_VERIFY_PAGES_PER_RUN: Final = 20  # rolling verification: list requests per run
MAX_RETRY_IDS: Final = 50  # executions whose detail request failed, retried on each run
MAX_SUSPECT_IDS: Final = 50  # executions possibly deleted upstream, re-checked next run
MAX_INFLIGHT_IDS: Final = 100
MAX_BACKFILL_CHECKPOINTS: Final = 5  # unfinished backfill windows kept in state
RESUME_SLACK_ROWS: Final = 10  # rows of a resume page that must lie behind the lookback

EXECUTION_TIMESTAMPS: Final = ("created_at", "started_at", "completed_at", "updated_at")
EXECUTION_COUNTS: Final = ("record_count", "error_count", "warning_count")
EXECUTION_BOOLEANS: Final = ("is_partial", "is_resync", "is_test")
SYNC_JSON_FIELDS: Final = (
    "default_schedule",
    "additional_schedules",
    "destination_configuration",
    "source_configuration",
    "policies",
    "created_by",
    "updated_by",
)

# Completed dlt load packages kept in the working directory for debugging (the rest go).
DEFAULT_KEEP_LOAD_PACKAGES: Final = 3
